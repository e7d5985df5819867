//! `providers-local` holds the embedded default inventory providers — no account, no server:
//! `local`, a read/write media library in an SQLite file (every feature, key-confirmed writes,
//! one transaction per write, checkpoints), and `file`, a read-only inventory of one feature
//! read from a JSON file or an IMDb CSV export (ratings or list/watchlist). They let cw sync
//! to and from the user's own disk: a library to mirror a vendor into, or an export to import.
//! [`factories`] registers both; [`settings_schema`] gives each one's settings schema.
//!
//! It must never know another provider crate, the orchestrator or the `cw` binary: it depends
//! on `pal` and `admit_core` for the inventory contract and on SQLite and CSV for storage.

pub mod file;
pub mod imdb;
pub mod local;
pub mod store;

use std::sync::Arc;

use pal::{AdapterFactory, AdapterHandle, BuiltAdapter, Capability};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use file::{FileError, FileFormat, FileInventory, FileSettings};
pub use local::{LocalLibrary, LocalSettings, OpenError};

/// Every adapter name this crate provides, in the order of [`factories`].
pub const ADAPTER_NAMES: [&str; 2] = [LocalLibrary::NAME, FileInventory::NAME];

/// Parses adapter settings (`null` counts as `{}`); serde's error names the offending key.
fn parse_settings<T: DeserializeOwned>(settings: &Value) -> Result<T, String> {
    let value = match settings {
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    serde_json::from_value(value).map_err(|e| format!("invalid settings: {e}"))
}

/// A provider name from settings (or `default`): non-empty, `[A-Za-z0-9_.-]` only.
fn provider_name(name: Option<String>, default: &str) -> Result<String, String> {
    let name = name.unwrap_or_else(|| default.to_owned());
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        Ok(name)
    } else {
        Err(format!("invalid name `{name}`: use letters, digits, `_`, `-` and `.` only"))
    }
}

/// The factories of `local` and `file` (capability inventory).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("library.db");
/// let factories = providers_local::factories();
/// assert_eq!(factories.iter().map(|f| f.name).collect::<Vec<_>>(), ["local", "file"]);
/// let built = (factories[0].build)(&serde_json::json!({"path": path})).unwrap();
/// assert_eq!(built.handle.capability(), pal::Capability::Inventory);
/// let error = (factories[1].build)(&serde_json::json!({"path": dir.path().join("missing.json")})).unwrap_err();
/// assert!(error.contains("missing.json"), "{error}");
/// ```
pub fn factories() -> Vec<AdapterFactory> {
    vec![
        AdapterFactory {
            name: LocalLibrary::NAME,
            capability: Capability::Inventory,
            build: |settings| {
                let library = LocalLibrary::open(parse_settings(settings)?).map_err(|e| e.to_string())?;
                Ok(BuiltAdapter { handle: AdapterHandle::Inventory(Arc::new(library)), secrets: vec![] })
            },
        },
        AdapterFactory {
            name: FileInventory::NAME,
            capability: Capability::Inventory,
            build: |settings| {
                let file = FileInventory::open(parse_settings(settings)?).map_err(|e| e.to_string())?;
                Ok(BuiltAdapter { handle: AdapterHandle::Inventory(Arc::new(file)), secrets: vec![] })
            },
        },
    ]
}

/// The JSON Schema of the settings of `adapter` (derived with `schemars`; unknown keys are
/// refused), or `None` for a name this crate does not have.
///
/// ```
/// let schema = providers_local::settings_schema("local").unwrap();
/// assert_eq!(schema["type"], "object");
/// assert_eq!(schema["required"], serde_json::json!(["path"]));
/// assert!(providers_local::settings_schema("file").unwrap()["properties"]["format"].is_object());
/// assert!(providers_local::settings_schema("plex").is_none());
/// ```
pub fn settings_schema(adapter: &str) -> Option<Value> {
    match adapter {
        LocalLibrary::NAME => Some(schemars::schema_for!(LocalSettings).to_value()),
        FileInventory::NAME => Some(schemars::schema_for!(FileSettings).to_value()),
        _ => None,
    }
}
