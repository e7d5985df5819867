//! `local`: a read/write media library in an SQLite file — every feature, key-confirmed writes,
//! honest dry runs, per-feature checkpoints.
//!
//! Calls run their SQLite statements directly on the calling task, under the adapter's
//! `Mutex<Connection>`, rather than on `tokio::task::spawn_blocking`: each call is one short
//! transaction on a local file (no network), the sync engine calls a provider one chunk at a
//! time, and staying on the task keeps the adapter free of any runtime requirement. The
//! longest a call can block is the busy timeout ([`crate::store::BUSY_TIMEOUT`]) when another
//! process holds the write lock.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use admit_core::{ErrorCode, ProviderError, ProviderPhase};
use pal::inventory::{
    Activities, Feature, Features, IndexSemantics, InventoryCapabilities, InventoryItem, InventoryProvider,
    UnresolvedItem, WriteResult,
};
use pal::{Capability, Extra, HealthReport, HealthStatus, async_trait, keys};
use rusqlite::{Connection, TransactionBehavior};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::store::{self, Clock, Entry, OpenFailure};

/// The error scope of `local`.
pub const SCOPE: &str = "inventory/local";

/// Settings of `local`.
///
/// ```
/// use providers_local::LocalSettings;
/// let settings: LocalSettings = serde_json::from_value(serde_json::json!({"path": "library.db"})).unwrap();
/// assert_eq!(settings.path.to_str(), Some("library.db"));
/// assert!(serde_json::from_value::<LocalSettings>(serde_json::json!({"path": "x", "paht": "y"})).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// The SQLite file of the library, created with its schema on first open (its directory
    /// must exist). A relative path is relative to the working directory of the process.
    pub path: PathBuf,
    /// The provider name in config and state (default `LOCAL`): `[A-Za-z0-9_.-]+`.
    #[serde(default)]
    pub name: Option<String>,
    /// The human-readable name (default `Local library`).
    #[serde(default)]
    pub label: Option<String>,
    /// Items per write call, each one transaction (default [`DEFAULT_CHUNK_SIZE`], from 1 to
    /// [`MAX_CHUNK_SIZE`]).
    #[serde(default)]
    pub chunk_size: Option<u32>,
}

/// Items per write call when the settings do not say. One transaction per chunk: a new item's
/// tokens land on pages spread over the token index, so a large chunk rewrites each such page
/// once where small ones rewrite it again and again.
pub const DEFAULT_CHUNK_SIZE: u32 = 5000;

/// The largest chunk size the settings may ask for.
pub const MAX_CHUNK_SIZE: u32 = 100_000;

/// Why a local library could not be opened. Names the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("local library `{}`: {message}", path.display())]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The capabilities `local` declares (with the default chunk size).
pub fn local_capabilities() -> InventoryCapabilities {
    InventoryCapabilities {
        index_semantics: IndexSemantics::Present,
        verify_after_write: true,
        observed_deletes: true,
        checkpoint: true,
        chunk_size: DEFAULT_CHUNK_SIZE,
        confirms_keys: true,
        read_only: false,
    }
}

/// `local`: an inventory in an SQLite file.
pub struct LocalLibrary {
    name: String,
    label: String,
    path: PathBuf,
    clock: Clock,
    chunk_size: u32,
    conn: Mutex<Connection>,
    requests: AtomicU64,
    writes: AtomicU64,
}

impl fmt::Debug for LocalLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLibrary")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("requests", &self.requests())
            .field("writes", &self.writes())
            .finish_non_exhaustive()
    }
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Add,
    Remove,
}

impl Write {
    fn op(self) -> &'static str {
        match self {
            Write::Add => "add",
            Write::Remove => "remove",
        }
    }
}

fn phase(op: &str) -> ProviderPhase {
    Capability::Inventory.op(op).map(|spec| spec.phase).unwrap_or(ProviderPhase::Execute)
}

fn unresolved(item: &InventoryItem, reason: &str) -> UnresolvedItem {
    let mut extra = Extra::new();
    if let Some(title) = &item.title {
        extra.insert("title".to_owned(), Value::String(title.clone()));
    }
    if let Some(year) = item.year {
        extra.insert("year".to_owned(), Value::from(year));
    }
    UnresolvedItem { ids: item.ids.clone(), reason: Some(reason.to_owned()), extra }
}

/// Whether the item can be keyed at all: an id, a show id with its numbers, or a title.
fn has_identity(item: &InventoryItem) -> bool {
    !item.ids.is_empty()
        || (item.show_ids.as_ref().is_some_and(|ids| !ids.is_empty()) && keys::fragment(item).is_some())
        || item.title.as_deref().is_some_and(|t| !t.trim().is_empty())
}

/// The entry of an incoming item, or why it cannot be applied (normalises the item once).
fn prepare(write: Write, feature: Feature, item: &InventoryItem) -> Result<Entry, UnresolvedItem> {
    let item = keys::normalize_item(item);
    if !has_identity(&item) {
        return Err(unresolved(&item, "the item has no ids and no title: it cannot be keyed"));
    }
    if write == Write::Add {
        match feature {
            Feature::Ratings if !item.rating.is_some_and(|r| (1..=10).contains(&r)) => {
                return Err(unresolved(&item, "a rating must be an integer from 1 to 10"));
            }
            Feature::Progress if item.progress_ms.is_none() => {
                return Err(unresolved(&item, "a progress entry needs progress_ms"));
            }
            _ => {}
        }
    }
    Ok(Entry::new(feature, item))
}

impl LocalLibrary {
    /// The adapter name.
    pub const NAME: &'static str = "local";

    /// Opens the library at `settings.path`, creating the file and its schema on first use.
    /// A file that is not an SQLite database, an SQLite database of another program, or a
    /// library of a newer schema version is refused with an error naming the path.
    pub fn open(settings: LocalSettings) -> Result<Self, OpenError> {
        LocalLibrary::open_with_clock(settings, OffsetDateTime::now_utc)
    }

    /// [`LocalLibrary::open`] with the clock checkpoints are taken from (they still advance by
    /// at least one second per change whatever the clock says).
    pub fn open_with_clock(settings: LocalSettings, clock: Clock) -> Result<Self, OpenError> {
        let path = settings.path;
        let fail = |message: String| OpenError { path: path.clone(), message };
        let name = crate::provider_name(settings.name, "LOCAL").map_err(fail)?;
        let chunk_size = match settings.chunk_size {
            None => DEFAULT_CHUNK_SIZE,
            Some(size @ 1..=MAX_CHUNK_SIZE) => size,
            Some(size) => return Err(fail(format!("chunk_size: {size} is not from 1 to {MAX_CHUNK_SIZE}"))),
        };
        let conn = store::open(&path, clock).map_err(|failure| {
            fail(match failure {
                OpenFailure::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
                    format!("not an SQLite database, or a corrupt one ({e})")
                }
                OpenFailure::Sqlite(e) => format!("cannot open: {e}"),
                OpenFailure::Incompatible(message) => message,
            })
        })?;
        Ok(LocalLibrary {
            name,
            label: settings.label.unwrap_or_else(|| "Local library".to_owned()),
            path,
            clock,
            chunk_size,
            conn: Mutex::new(conn),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls received (every operation but the identity ones, dry runs included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Write transactions committed that changed the library (dry runs and no-op writes
    /// excluded).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock rolled its transaction back (rusqlite's Drop): the
        // connection is still consistent.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, op: &str, error: &rusqlite::Error) -> ProviderError {
        let message = format!("{op}: local library `{}`: {error}", self.path.display());
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                ProviderError::retryable(SCOPE, phase(op), message).with_code(ErrorCode::Unavailable)
            }
            _ => ProviderError::new(SCOPE, phase(op), message).with_code(ErrorCode::Io),
        }
    }

    /// `add` without the async wrapper (for seeding and tools outside an async context).
    pub fn add_now(
        &self,
        items: &[InventoryItem],
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.write(Write::Add, items, feature, dry_run)
    }

    /// `remove` without the async wrapper.
    pub fn remove_now(
        &self,
        items: &[InventoryItem],
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.write(Write::Remove, items, feature, dry_run)
    }

    fn write(
        &self,
        write: Write,
        items: &[InventoryItem],
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut confirmed = Vec::new();
        let mut seen = HashSet::new();
        let mut unresolved_items = Vec::new();
        let mut entries = Vec::new();
        for item in items {
            match prepare(write, feature, item) {
                Ok(entry) => {
                    if seen.insert(entry.key.clone()) {
                        confirmed.push(entry.key.clone());
                    }
                    entries.push(entry);
                }
                Err(unresolved) => unresolved_items.push(unresolved),
            }
        }
        // A dry run reports what it would confirm without touching the database: no
        // transaction is opened, so nothing can be written.
        if !dry_run && !entries.is_empty() {
            let changed = self.apply(write, feature, &entries).map_err(|e| self.error(write.op(), &e))?;
            if changed {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(WriteResult {
            ok: true,
            confirmed_keys: Some(confirmed),
            unresolved: unresolved_items,
            dry_run,
            ..WriteResult::default()
        })
    }

    /// One transaction: every entry, then the checkpoint when anything changed.
    fn apply(&self, write: Write, feature: Feature, entries: &[Entry]) -> rusqlite::Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = false;
        for entry in entries {
            changed |= match write {
                Write::Add => store::put(&tx, feature, entry)?,
                // History without `watched_at`: every play of the item.
                Write::Remove => {
                    let any_play = feature == Feature::History && entry.item.watched_at.is_none();
                    store::delete(&tx, feature, entry, any_play)? > 0
                }
            };
        }
        if changed {
            store::advance(&tx, feature, self.clock)?;
        }
        tx.commit()?;
        Ok(changed)
    }
}

#[async_trait]
impl InventoryProvider for LocalLibrary {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn features(&self) -> Features {
        Features::ALL
    }

    fn capabilities(&self) -> InventoryCapabilities {
        InventoryCapabilities { chunk_size: self.chunk_size, ..local_capabilities() }
    }

    async fn build_index(&self, feature: Feature) -> Result<Vec<InventoryItem>, ProviderError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        store::items(&self.lock(), feature).map_err(|e| self.error("build_index", &e))
    }

    async fn add(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.write(Write::Add, &items, feature, dry_run)
    }

    async fn remove(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.write(Write::Remove, &items, feature, dry_run)
    }

    async fn health(&self) -> HealthReport {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match store::probe(&self.lock()) {
            Ok(_) => HealthReport::ok(),
            Err(reason) => HealthReport {
                reason: Some(format!("local library `{}`: {reason}", self.path.display())),
                ..HealthReport::with_status(HealthStatus::Down)
            },
        }
    }

    async fn activities(&self) -> Result<Activities, ProviderError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        store::activities(&self.lock()).map_err(|e| self.error("activities", &e))
    }
}
