//! Reference harnesses over `providers-mock`: the mocks staged in every [`Scenario`]. They
//! certify the mocks in `providers-mock`'s own `tests/conformance.rs`, and the kits' tests use
//! them as the known-good baseline their broken providers are measured against.

use std::sync::Arc;

use pal::inventory::{Feature, Ids, InventoryItem};
use pal::{AdapterHandle, Capability, Secret};
use providers_mock::{
    AdapterSettings, FaultSettings, MockAds, MockCdp, MockExperiments, MockInventory, MockLifecycle, MockLlmGateway,
    MockLlmObservability, MockVectorStore, NoopAds,
};
use serde_json::{Value, json};

use crate::capability::CapabilityHarness;
use crate::inventory::{BuiltInventory, InventoryHarness};
use crate::scenario::{Scenario, VendorProbe};

/// The token every reference mock is built with.
pub const MOCK_TOKEN: &str = "tok-mock-c0nformance";

fn ids(pairs: &[(&str, &str)]) -> Ids {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn movie(tmdb: &str, title: &str, year: i32) -> InventoryItem {
    InventoryItem { title: Some(title.to_owned()), year: Some(year), ids: ids(&[("tmdb", tmdb)]), ..Default::default() }
}

// Capability mocks

/// The mock settings that stage `scenario` (every scenario of the kit is stageable).
pub fn mock_settings(scenario: Scenario) -> Option<AdapterSettings> {
    let faults = match scenario {
        Scenario::Healthy => FaultSettings::default(),
        Scenario::ServerError { times } => FaultSettings { fail_times: times, ..FaultSettings::default() },
        Scenario::RateLimited { times, retry_after_ms } => {
            FaultSettings { fail_times: times, retry_after_ms: Some(retry_after_ms), ..FaultSettings::default() }
        }
        Scenario::Rejecting => FaultSettings { fail_permanently: true, ..FaultSettings::default() },
        Scenario::Hang => FaultSettings { hang: true, ..FaultSettings::default() },
        Scenario::Unreachable => FaultSettings { unreachable: true, ..FaultSettings::default() },
        Scenario::InvalidCredentials => FaultSettings { auth_failed: true, ..FaultSettings::default() },
    };
    Some(AdapterSettings { faults, token: Some(Secret::new(MOCK_TOKEN)) })
}

/// Reads a mock's counters.
/// A probe reading a mock's counters through two accessors.
#[allow(missing_debug_implementations, reason = "holds function pointers and an adapter; nothing to show")]
pub struct Counters<T> {
    adapter: Arc<T>,
    requests: fn(&T) -> u64,
    writes: fn(&T) -> u64,
}

impl<T: Send + Sync> VendorProbe for Counters<T> {
    fn requests(&self) -> u64 {
        (self.requests)(&self.adapter)
    }
    fn writes(&self) -> u64 {
        (self.writes)(&self.adapter)
    }
}

pub fn counters<T: Send + Sync + 'static>(
    adapter: &Arc<T>,
    requests: fn(&T) -> u64,
    writes: fn(&T) -> u64,
) -> Arc<dyn VendorProbe> {
    Arc::new(Counters { adapter: adapter.clone(), requests, writes })
}

/// An adapter with the probe reading its counters.
pub type Staged = (AdapterHandle, Arc<dyn VendorProbe>);

/// A providers-mock adapter by name, with its probe.
pub fn build_mock(adapter: &str, settings: AdapterSettings) -> Option<Staged> {
    Some(match adapter {
        "mock_ads" => {
            let m = Arc::new(MockAds::new(settings));
            (AdapterHandle::Ads(m.clone()), counters(&m, |m| m.faults().calls(), MockAds::writes))
        }
        "noop_ads" => {
            let m = Arc::new(NoopAds::new(settings));
            (AdapterHandle::Ads(m.clone()), counters(&m, |m| m.faults().calls(), |_| 0))
        }
        "mock_lifecycle" => {
            let m = Arc::new(MockLifecycle::new(settings));
            (AdapterHandle::Lifecycle(m.clone()), counters(&m, |m| m.faults().calls(), MockLifecycle::writes))
        }
        "mock_experiments" => {
            let m = Arc::new(MockExperiments::new(settings));
            (AdapterHandle::Experiments(m.clone()), counters(&m, |m| m.faults().calls(), MockExperiments::writes))
        }
        "mock_cdp" => {
            let m = Arc::new(MockCdp::new(settings));
            (AdapterHandle::Cdp(m.clone()), counters(&m, |m| m.faults().calls(), MockCdp::writes))
        }
        "mock_llm_gateway" => {
            let m = Arc::new(MockLlmGateway::new(settings));
            // Stateless: routing stores nothing.
            (AdapterHandle::LlmGateway(m.clone()), counters(&m, |m| m.faults().calls(), |_| 0))
        }
        "mock_llm_observability" => {
            let m = Arc::new(MockLlmObservability::new(settings));
            let probe = counters(&m, |m| m.faults().calls(), MockLlmObservability::writes);
            (AdapterHandle::LlmObservability(m), probe)
        }
        name => {
            let name = MockVectorStore::NAMES.into_iter().find(|n| *n == name)?;
            let m = Arc::new(MockVectorStore::named(name, settings));
            (AdapterHandle::Vectorstore(m.clone()), counters(&m, |m| m.faults().calls(), MockVectorStore::writes))
        }
    })
}

/// providers-mock's capability adapters. `noop_ads` is deliberately not certified: it is a
/// poor candidate that fails shape parity with `mock_ads` (see `noop_ads_fails_shape_parity`);
/// leaving it out of `adapters()` keeps the run green without hiding a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockCapabilityHarness;

impl CapabilityHarness for MockCapabilityHarness {
    fn provider_crate(&self) -> &str {
        "providers-mock"
    }
    fn adapters(&self) -> Vec<(Capability, String)> {
        providers_mock::factories()
            .into_iter()
            .filter(|f| f.capability != Capability::Inventory && f.name != "noop_ads")
            .map(|f| (f.capability, f.name.to_owned()))
            .collect()
    }
    fn build(&self, _: Capability, adapter: &str, scenario: Scenario) -> Option<Staged> {
        build_mock(adapter, mock_settings(scenario)?)
    }
    fn secret(&self) -> Option<Secret> {
        Some(Secret::new(MOCK_TOKEN))
    }
}

// mock_inventory

/// Reads `mock_inventory`'s request and write counters.
#[derive(Debug)]
pub struct MockProbe(pub Arc<MockInventory>);

impl VendorProbe for MockProbe {
    fn requests(&self) -> u64 {
        self.0.requests()
    }
    fn writes(&self) -> u64 {
        self.0.writes()
    }
}

/// `mock_inventory`, staged per scenario through its settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockInventoryHarness {
    /// Build the mock so that its injected errors echo its token (to show the kit catches it).
    pub echo_token: bool,
}

fn mock_seed() -> Value {
    json!({
        "watchlist": [
            {"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949", "imdb": "tt0113277"}},
            {"type": "movie", "title": "Alien", "year": 1979, "ids": {"tmdb": "348"}},
            {"type": "show", "title": "Breaking Bad", "year": 2008, "ids": {"tvdb": "81189"}}
        ],
        "ratings": [{"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949"}, "rating": 9}],
        "history": [
            {"type": "movie", "title": "Heat", "ids": {"tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"},
            {"type": "movie", "title": "Heat", "ids": {"tmdb": "949"}, "watched_at": "2024-04-01T20:00:00Z"},
            {"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "349232"}, "season": 1, "episode": 2,
             "watched_at": "2024-03-02T20:00:00Z"}
        ],
        "progress": [{"type": "movie", "ids": {"tmdb": "348"}, "progress_ms": 600_000, "duration_ms": 7_020_000}],
        "playlists": [{"type": "movie", "title": "Alien", "ids": {"tmdb": "348"}}]
    })
}

impl InventoryHarness for MockInventoryHarness {
    fn provider_crate(&self) -> &str {
        "providers-mock"
    }

    fn build(&self, scenario: Scenario) -> Option<BuiltInventory> {
        let mut faults = match scenario {
            Scenario::Healthy => json!({}),
            Scenario::RateLimited { times, retry_after_ms } => {
                json!({"fail_times": times, "retry_after_ms": retry_after_ms})
            }
            Scenario::ServerError { times } => json!({"fail_times": times}),
            Scenario::InvalidCredentials => json!({"auth_failed": true}),
            Scenario::Unreachable => json!({"unreachable": true}),
            Scenario::Hang => json!({"hang": true}),
            Scenario::Rejecting => json!({"fail_permanently": true}),
        };
        faults["echo_token_in_errors"] = json!(self.echo_token);
        let settings =
            json!({"token": MOCK_TOKEN, "faults": faults, "unresolvable": ["tmdb:404"], "items": mock_seed()});
        let inventory = Arc::new(MockInventory::new(serde_json::from_value(settings).ok()?).ok()?);
        Some((inventory.clone(), Arc::new(MockProbe(inventory))))
    }

    fn config_schema(&self) -> Option<Value> {
        providers_mock::settings_schema(MockInventory::NAME)
    }

    fn sample_items(&self, feature: Feature) -> Vec<InventoryItem> {
        crate::inventory::standard_sample_items(feature)
    }

    fn unresolvable_item(&self, feature: Feature) -> Option<InventoryItem> {
        let lost = movie("404", "Lost Film", 1999);
        Some(match feature {
            Feature::Ratings => InventoryItem { rating: Some(11), ..lost },
            Feature::History => InventoryItem { watched_at: Some("2024-05-03T20:00:00Z".into()), ..lost },
            _ => lost,
        })
    }

    fn secret(&self) -> Option<Secret> {
        Some(Secret::new(MOCK_TOKEN))
    }
}
