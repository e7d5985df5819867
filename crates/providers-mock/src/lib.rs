//! `providers-mock` holds the deterministic, in-memory mock adapter of every PAL capability —
//! `mock_ads`, `noop_ads`, `mock_lifecycle`, `mock_experiments`, `mock_cdp`,
//! `mock_vectorstore` (and its twins `_a`, `_b`), `mock_llm_gateway`,
//! `mock_llm_observability` and `mock_inventory` — with the goldens of the contracts, and
//! fault injection (fail N times retryably, fail permanently, refuse the credentials, be
//! unreachable, hang, add latency, report a given health, echo a token) so the registry, the
//! call pipeline, the conformance kit and the sync engine can be tested against them.
//! [`factories`] registers them all; [`settings_schema`] gives each one's settings schema.
//!
//! It must never know the network, another provider crate, or the orchestrator: it depends on
//! `pal` and `admit_core` only, keeps all state in memory, and derives every id and timestamp
//! from its inputs and counters (no wall clock, no randomness; latency sleeps on tokio time).

pub mod ads;
pub mod cdp;
pub mod experiments;
pub mod faults;
pub mod inventory;
pub mod lifecycle;
pub mod llm;
pub mod vectorstore;

use std::sync::Arc;

use pal::{AdapterFactory, AdapterHandle, BuiltAdapter, Capability, Secret};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use ads::{MockAds, NoopAds};
pub use cdp::MockCdp;
pub use experiments::MockExperiments;
pub use faults::{AdapterSettings, FaultInjector, FaultSettings};
pub use inventory::{MockInventory, MockInventorySettings};
pub use lifecycle::MockLifecycle;
pub use llm::{MockLlmGateway, MockLlmObservability};
pub use vectorstore::MockVectorStore;

/// Every adapter name this crate provides, in the order of [`factories`].
pub const ADAPTER_NAMES: [&str; 11] = [
    "mock_ads",
    "noop_ads",
    "mock_lifecycle",
    "mock_experiments",
    "mock_cdp",
    "mock_vectorstore",
    "mock_vectorstore_a",
    "mock_vectorstore_b",
    "mock_llm_gateway",
    "mock_llm_observability",
    "mock_inventory",
];

/// Parses adapter settings (`{}` or `null` when none). The error is serde's, which names the
/// offending key (``unknown field `fail_tims` ``). Serde quotes a malformed *value* too (e.g. an
/// unknown `health` variant); string values under secret-looking keys are scrubbed by the
/// registry before it reports the error.
pub fn parse_settings<T: DeserializeOwned>(settings: &Value) -> Result<T, String> {
    let value = match settings {
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    serde_json::from_value(value).map_err(|e| format!("invalid settings: {e}"))
}

fn secrets(token: Option<&Secret>) -> Vec<Secret> {
    token.filter(|t| !t.is_empty()).cloned().into_iter().collect()
}

fn basic(settings: &Value, handle: impl FnOnce(AdapterSettings) -> AdapterHandle) -> Result<BuiltAdapter, String> {
    let settings: AdapterSettings = parse_settings(settings)?;
    let secrets = secrets(settings.token.as_ref());
    Ok(BuiltAdapter { handle: handle(settings), secrets })
}

/// One factory per adapter name (see [`ADAPTER_NAMES`]).
///
/// ```
/// let factories = providers_mock::factories();
/// assert_eq!(factories.len(), providers_mock::ADAPTER_NAMES.len());
/// let built = (factories[0].build)(&serde_json::json!({"faults": {"fail_times": 1}})).unwrap();
/// assert_eq!(built.handle.capability(), pal::Capability::Ads);
/// ```
pub fn factories() -> Vec<AdapterFactory> {
    vec![
        AdapterFactory {
            name: "mock_ads",
            capability: Capability::Ads,
            build: |s| basic(s, |s| AdapterHandle::Ads(Arc::new(MockAds::new(s)))),
        },
        AdapterFactory {
            name: "noop_ads",
            capability: Capability::Ads,
            build: |s| basic(s, |s| AdapterHandle::Ads(Arc::new(NoopAds::new(s)))),
        },
        AdapterFactory {
            name: "mock_lifecycle",
            capability: Capability::Lifecycle,
            build: |s| basic(s, |s| AdapterHandle::Lifecycle(Arc::new(MockLifecycle::new(s)))),
        },
        AdapterFactory {
            name: "mock_experiments",
            capability: Capability::Experiments,
            build: |s| basic(s, |s| AdapterHandle::Experiments(Arc::new(MockExperiments::new(s)))),
        },
        AdapterFactory {
            name: "mock_cdp",
            capability: Capability::Cdp,
            build: |s| basic(s, |s| AdapterHandle::Cdp(Arc::new(MockCdp::new(s)))),
        },
        AdapterFactory {
            name: "mock_vectorstore",
            capability: Capability::Vectorstore,
            build: |s| {
                basic(s, |s| AdapterHandle::Vectorstore(Arc::new(MockVectorStore::named("mock_vectorstore", s))))
            },
        },
        AdapterFactory {
            name: "mock_vectorstore_a",
            capability: Capability::Vectorstore,
            build: |s| {
                basic(s, |s| AdapterHandle::Vectorstore(Arc::new(MockVectorStore::named("mock_vectorstore_a", s))))
            },
        },
        AdapterFactory {
            name: "mock_vectorstore_b",
            capability: Capability::Vectorstore,
            build: |s| {
                basic(s, |s| AdapterHandle::Vectorstore(Arc::new(MockVectorStore::named("mock_vectorstore_b", s))))
            },
        },
        AdapterFactory {
            name: "mock_llm_gateway",
            capability: Capability::LlmGateway,
            build: |s| basic(s, |s| AdapterHandle::LlmGateway(Arc::new(MockLlmGateway::new(s)))),
        },
        AdapterFactory {
            name: "mock_llm_observability",
            capability: Capability::LlmObservability,
            build: |s| basic(s, |s| AdapterHandle::LlmObservability(Arc::new(MockLlmObservability::new(s)))),
        },
        AdapterFactory {
            name: "mock_inventory",
            capability: Capability::Inventory,
            build: |s| {
                let settings: MockInventorySettings = parse_settings(s)?;
                let secrets = secrets(settings.token.as_ref());
                let inventory = MockInventory::new(settings)?;
                Ok(BuiltAdapter { handle: AdapterHandle::Inventory(Arc::new(inventory)), secrets })
            },
        },
    ]
}

/// The JSON Schema of the settings of the adapter `adapter` (as its factory receives them:
/// `pal` removes the pipeline keys `timeout_ms` and `rate_limit` first), or `None` when this
/// crate has no adapter of that name.
///
/// ```
/// let schema = providers_mock::settings_schema("mock_inventory").unwrap();
/// assert_eq!(schema["type"], "object");
/// assert!(schema["properties"]["faults"].is_object());
/// assert!(providers_mock::settings_schema("mock_ads").unwrap()["properties"]["token"].is_object());
/// assert!(providers_mock::settings_schema("plex").is_none());
/// ```
pub fn settings_schema(adapter: &str) -> Option<Value> {
    match adapter {
        MockInventory::NAME => Some(schemars::schema_for!(MockInventorySettings).to_value()),
        name if ADAPTER_NAMES.contains(&name) => Some(schemars::schema_for!(AdapterSettings).to_value()),
        _ => None,
    }
}

/// The factory named `name`, if this crate has one.
pub fn factory(name: &str) -> Option<AdapterFactory> {
    factories().into_iter().find(|f| f.name == name)
}
