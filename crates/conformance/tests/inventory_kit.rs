#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The inventory kit can pass and can fail: `mock_inventory` and a correct fake pass every
//! applicable check, and each deliberately broken fake fails exactly the checks it breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use admit_core::{ErrorCode, ProviderError};
use conformance::{
    BuiltInventory, CheckStatus, INVENTORY_CHECKS, InventoryHarness, Kit, KitReport, Scenario, VendorProbe,
    run_inventory_kit,
};
use pal::inventory::{
    Activities, Feature, Features, Ids, IndexSemantics, InventoryCapabilities, InventoryItem, InventoryProvider,
    UnresolvedItem, WriteResult,
};
use pal::keys::{canonical_key, normalize_ids};
use pal::{Capability, HealthReport, HealthStatus, ProviderPhase, Secret, async_trait};
use providers_mock::inventory::checkpoint_time;
use serde_json::{Value, json};

fn ids(pairs: &[(&str, &str)]) -> Ids {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn movie(tmdb: &str, title: &str, year: i32) -> InventoryItem {
    InventoryItem { title: Some(title.to_owned()), year: Some(year), ids: ids(&[("tmdb", tmdb)]), ..Default::default() }
}

fn failed(report: &KitReport) -> BTreeSet<&str> {
    report.names_with(CheckStatus::Failed).into_iter().collect()
}

fn not_applicable(report: &KitReport) -> BTreeSet<&str> {
    report.names_with(CheckStatus::NotApplicable).into_iter().collect()
}

fn assert_complete(report: &KitReport) {
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, INVENTORY_CHECKS, "every check, once, in order");
    for check in &report.checks {
        match check.status {
            CheckStatus::NotApplicable => assert!(check.reason.is_some(), "{check:?}"),
            CheckStatus::Failed => assert!(!check.errors.is_empty(), "{check:?}"),
            CheckStatus::Passed => assert!(check.errors.is_empty() && check.reason.is_none(), "{check:?}"),
        }
    }
    assert_eq!(report.pass, failed(report).is_empty());
}

fn pretty(report: &KitReport) -> String {
    serde_json::to_string_pretty(report).unwrap()
}

// =============================================================================================
// mock_inventory

use conformance::mocks::{MOCK_TOKEN, MockInventoryHarness as MockHarness};

const DELTA_CHECKS: [&str; 2] = ["snapshot.delta_since_checkpoint", "snapshot.future_checkpoint_empty"];

#[tokio::test(start_paused = true)]
async fn mock_inventory_passes_every_applicable_check() {
    let report = run_inventory_kit(&MockHarness { echo_token: false }).await;
    assert_complete(&report);
    assert!(report.pass, "{}", pretty(&report));
    assert_eq!(not_applicable(&report), BTreeSet::from(DELTA_CHECKS), "only the delta checks do not apply");
    for name in DELTA_CHECKS {
        assert_eq!(report.check(name).unwrap().reason.as_deref(), Some("present index semantics"));
    }
    assert_eq!(
        (report.kit, report.provider.as_str(), report.capability.as_str(), report.adapter.as_str()),
        (Kit::Inventory, "providers-mock", "inventory", "MOCK")
    );
    assert!(report.errors.is_empty());
    // Retries happened (429, 5xx, timeouts), so there were more attempts than calls.
    assert!(report.metrics.attempts > 100, "{:?}", report.metrics);
}

#[tokio::test]
async fn mock_inventory_passes_in_real_time() {
    let started = std::time::Instant::now();
    let report = run_inventory_kit(&MockHarness { echo_token: false }).await;
    assert!(report.pass, "{}", pretty(&report));
    assert_eq!(not_applicable(&report), BTreeSet::from(DELTA_CHECKS));
    // Bounded: the hang costs three attempt timeouts, the 429s two Retry-Afters.
    assert!(started.elapsed() < conformance::kit_policy().total_deadline * 2, "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn mock_inventory_echoing_its_token_fails_only_the_secret_check() {
    let report = run_inventory_kit(&MockHarness { echo_token: true }).await;
    assert_complete(&report);
    assert_eq!(failed(&report), BTreeSet::from(["errors.no_secret_in_errors"]), "{}", pretty(&report));
    let error = &report.check("errors.no_secret_in_errors").unwrap().errors[0];
    assert!(error.contains("[REDACTED]") && !error.contains(MOCK_TOKEN), "{error}");
    assert!(!pretty(&report).contains(MOCK_TOKEN), "the report itself never shows the secret");
}

// =============================================================================================
// A configurable fake provider

/// Ways the fake breaks the contract (all off: a correct provider).
#[derive(Debug, Clone, Copy)]
struct Breakage {
    // describe
    unstable_name: bool,
    empty_label: bool,
    checkpoint_without_activities: bool,
    /// Declares `read_only` and refuses writes as unsupported (correct on its own).
    read_only: bool,
    /// Declares `read_only` but accepts writes.
    read_only_accepts_writes: bool,
    /// Declares `read_only` and refuses writes, but as permanent errors, not unsupported.
    read_only_refuses_as_permanent: bool,
    // health
    health_down_when_healthy: bool,
    health_ok_when_unauthorized: bool,
    health_ok_when_unreachable: bool,
    // snapshot
    item_without_ids: bool,
    duplicate_keys: bool,
    nondeterministic_snapshot: bool,
    delta: bool,
    delta_ignores_checkpoint: bool,
    // writes
    wrong_confirmed_keys: bool,
    duplicates_on_add: bool,
    silent_add: bool,
    remove_absent_fails: bool,
    ignores_dry_run: bool,
    unresolved_without_ids: bool,
    no_counts: bool,
    honest_counts_only: bool,
    hangs_on_remove: bool,
    // errors
    rate_limit_permanent: bool,
    server_error_permanent: bool,
    retries_401: bool,
    bad_request_retryable: bool,
    swallows_hang: bool,
    leaks_token: bool,
}

const CORRECT: Breakage = Breakage {
    unstable_name: false,
    empty_label: false,
    checkpoint_without_activities: false,
    read_only: false,
    read_only_accepts_writes: false,
    read_only_refuses_as_permanent: false,
    health_down_when_healthy: false,
    health_ok_when_unauthorized: false,
    health_ok_when_unreachable: false,
    item_without_ids: false,
    duplicate_keys: false,
    nondeterministic_snapshot: false,
    delta: false,
    delta_ignores_checkpoint: false,
    wrong_confirmed_keys: false,
    duplicates_on_add: false,
    silent_add: false,
    remove_absent_fails: false,
    ignores_dry_run: false,
    unresolved_without_ids: false,
    no_counts: false,
    honest_counts_only: false,
    hangs_on_remove: false,
    rate_limit_permanent: false,
    server_error_permanent: false,
    retries_401: false,
    bad_request_retryable: false,
    swallows_hang: false,
    leaks_token: false,
};

const FAKE_TOKEN: &str = "fake-s3cret-token";
const SCOPE: &str = "inventory/fake";
const FEATURES: Features =
    Features { watchlist: true, ratings: true, history: true, progress: false, playlists: false };

/// The vendor behind the fake: items with the sequence number of their last change.
#[derive(Debug, Default)]
struct Vendor {
    state: Mutex<State>,
    requests: AtomicU64,
    writes: AtomicU64,
    failures_left: AtomicU32,
}

#[derive(Debug, Default)]
struct State {
    items: BTreeMap<Feature, Vec<(InventoryItem, u64)>>,
    changed: BTreeMap<Feature, u64>,
    seq: u64,
}

impl Vendor {
    fn seeded(failures: u32) -> Self {
        let seed = BTreeMap::from([
            (Feature::Watchlist, vec![movie("949", "Heat", 1995), movie("348", "Alien", 1979)]),
            (Feature::Ratings, vec![InventoryItem { rating: Some(9), ..movie("949", "Heat", 1995) }]),
            (
                Feature::History,
                vec![InventoryItem { watched_at: Some("2024-03-01T20:00:00Z".into()), ..movie("949", "Heat", 1995) }],
            ),
        ]);
        let items = seed.into_iter().map(|(f, items)| (f, items.into_iter().map(|i| (i, 0)).collect())).collect();
        Vendor {
            state: Mutex::new(State { items, ..State::default() }),
            failures_left: AtomicU32::new(failures),
            ..Vendor::default()
        }
    }

    fn take_failure(&self) -> bool {
        self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

struct FakeProbe(Arc<Vendor>);

impl VendorProbe for FakeProbe {
    fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::SeqCst)
    }
    fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct Fake {
    vendor: Arc<Vendor>,
    scenario: Scenario,
    breakage: Breakage,
    token: Secret,
    since: Option<Activities>,
    names: Vec<String>,
    name_calls: AtomicU32,
}

fn same_entry(feature: Feature, a: &InventoryItem, b: &InventoryItem) -> bool {
    canonical_key(a) == canonical_key(b) && (feature != Feature::History || a.watched_at == b.watched_at)
}

impl Fake {
    fn phase(op: &str) -> ProviderPhase {
        Capability::Inventory.op(op).map(|o| o.phase).unwrap()
    }

    /// One vendor request, as the scenario answers it.
    async fn request(&self, op: &str) -> Result<(), ProviderError> {
        let b = self.breakage;
        self.vendor.requests.fetch_add(1, Ordering::SeqCst);
        let phase = Fake::phase(op);
        let leak = if b.leaks_token {
            format!(" (sent Authorization: Bearer {})", self.token.expose())
        } else {
            String::new()
        };
        match self.scenario {
            Scenario::Healthy => Ok(()),
            Scenario::RateLimited { retry_after_ms, .. } if self.vendor.take_failure() => {
                Err(if b.rate_limit_permanent {
                    ProviderError::new(SCOPE, phase, format!("{op}: HTTP 429")).with_code(ErrorCode::RateLimited)
                } else {
                    ProviderError::retryable(SCOPE, phase, format!("{op}: HTTP 429"))
                        .with_code(ErrorCode::RateLimited)
                        .with_retry_after_ms(retry_after_ms)
                })
            }
            Scenario::ServerError { .. } if self.vendor.take_failure() => Err(if b.server_error_permanent {
                ProviderError::new(SCOPE, phase, format!("{op}: HTTP 503")).with_code(ErrorCode::Unavailable)
            } else {
                ProviderError::retryable(SCOPE, phase, format!("{op}: HTTP 503")).with_code(ErrorCode::Unavailable)
            }),
            Scenario::RateLimited { .. } | Scenario::ServerError { .. } => Ok(()),
            Scenario::InvalidCredentials => {
                if b.retries_401 {
                    // "Maybe the token was refreshed meanwhile": two more tries.
                    self.vendor.requests.fetch_add(2, Ordering::SeqCst);
                }
                Err(ProviderError::new(SCOPE, phase, format!("{op}: HTTP 401{leak}")).with_code(ErrorCode::AuthFailed))
            }
            Scenario::Unreachable => Err(ProviderError::retryable(SCOPE, phase, format!("{op}: connection refused"))
                .with_code(ErrorCode::Unavailable)),
            Scenario::Hang => std::future::pending().await,
            Scenario::Rejecting => Err(if b.bad_request_retryable {
                ProviderError::retryable(SCOPE, phase, format!("{op}: HTTP 400{leak}"))
            } else {
                ProviderError::invalid_input(SCOPE, phase, format!("{op}: HTTP 400{leak}"))
            }),
        }
    }

    fn declared(&self, op: &str, feature: Feature) -> Result<(), ProviderError> {
        if FEATURES.supports(feature) { Ok(()) } else { Err(ProviderError::unsupported(SCOPE, Fake::phase(op))) }
    }

    /// A read-only fake refuses writes (as unsupported, unless broken).
    fn writable(&self, op: &str) -> Result<(), ProviderError> {
        let b = self.breakage;
        if b.read_only {
            Err(ProviderError {
                message: format!("{op}: read-only"),
                ..ProviderError::unsupported(SCOPE, Fake::phase(op))
            })
        } else if b.read_only_refuses_as_permanent {
            Err(ProviderError::new(SCOPE, Fake::phase(op), format!("{op}: HTTP 405")))
        } else {
            Ok(())
        }
    }

    fn write_result(&self, confirmed: Vec<String>, unresolved: Vec<UnresolvedItem>, dry_run: bool) -> WriteResult {
        let b = self.breakage;
        let base = WriteResult { ok: true, unresolved, dry_run, ..WriteResult::default() };
        if b.no_counts {
            base
        } else if b.honest_counts_only {
            WriteResult { confirmed: Some(confirmed.len() as u64), ..base }
        } else if b.wrong_confirmed_keys {
            WriteResult { confirmed_keys: Some(vec!["fake:internal-1".to_owned()]), ..base }
        } else {
            WriteResult { confirmed_keys: Some(confirmed), ..base }
        }
    }

    fn record_write(&self, state: &mut State, feature: Feature) -> u64 {
        state.seq += 1;
        state.changed.insert(feature, state.seq);
        self.vendor.writes.fetch_add(1, Ordering::SeqCst);
        state.seq
    }
}

#[async_trait]
impl InventoryProvider for Fake {
    fn name(&self) -> &str {
        if self.breakage.unstable_name {
            let n = self.name_calls.fetch_add(1, Ordering::SeqCst) as usize;
            &self.names[n % self.names.len()]
        } else {
            &self.names[0]
        }
    }

    fn label(&self) -> &str {
        if self.breakage.empty_label { " " } else { "Fake inventory" }
    }

    fn features(&self) -> Features {
        FEATURES
    }

    fn capabilities(&self) -> InventoryCapabilities {
        let b = self.breakage;
        InventoryCapabilities {
            index_semantics: if b.delta || b.delta_ignores_checkpoint {
                IndexSemantics::Delta
            } else {
                IndexSemantics::Present
            },
            checkpoint: true,
            confirms_keys: !b.honest_counts_only,
            chunk_size: 50,
            read_only: b.read_only || b.read_only_accepts_writes || b.read_only_refuses_as_permanent,
            ..InventoryCapabilities::default()
        }
    }

    async fn build_index(&self, feature: Feature) -> Result<Vec<InventoryItem>, ProviderError> {
        let b = self.breakage;
        if b.swallows_hang && self.scenario == Scenario::Hang {
            // An internal short timeout, reported as an empty inventory.
            return Ok(vec![]);
        }
        self.request("build_index").await?;
        self.declared("build_index", feature)?;
        let state = self.vendor.state.lock().unwrap();
        let since = self.since.as_ref().map(|a| a.get(feature.as_str()).cloned().unwrap_or_default());
        let mut items: Vec<InventoryItem> = state
            .items
            .get(&feature)
            .into_iter()
            .flatten()
            .filter(|(_, seq)| match &since {
                Some(checkpoint) if !b.delta_ignores_checkpoint => checkpoint_time(*seq) > *checkpoint,
                _ => true,
            })
            .map(|(item, _)| item.clone())
            .collect();
        if feature == Feature::Watchlist && since.is_none() {
            if b.item_without_ids {
                items.push(InventoryItem { title: Some("Mystery".into()), ..Default::default() });
            }
            if b.duplicate_keys {
                items.push(InventoryItem { title: Some("Heat (director's cut)".into()), ..movie("949", "", 1995) });
            }
        }
        if b.nondeterministic_snapshot {
            let nonce = self.vendor.requests.load(Ordering::SeqCst);
            for item in &mut items {
                item.extra.insert("fetched_at".into(), json!(nonce));
            }
        }
        Ok(items)
    }

    async fn add(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        let b = self.breakage;
        self.request("add").await?;
        self.declared("add", feature)?;
        self.writable("add")?;
        let apply = !dry_run || b.ignores_dry_run;
        let mut state = self.vendor.state.lock().unwrap();
        let seq = if apply { self.record_write(&mut state, feature) } else { 0 };
        let entries = state.items.entry(feature).or_default();
        let (mut confirmed, mut unresolved) = (Vec::new(), Vec::new());
        for item in items {
            if normalize_ids(&item).get("tmdb") == Some("404") {
                let ids = if b.unresolved_without_ids { Ids::new() } else { item.ids.clone() };
                unresolved.push(UnresolvedItem { ids, reason: Some("HTTP 404".into()), ..Default::default() });
                continue;
            }
            confirmed.push(canonical_key(&item));
            if !apply || b.silent_add {
                continue;
            }
            match entries.iter_mut().find(|(e, _)| same_entry(feature, e, &item)) {
                Some(entry) if !b.duplicates_on_add => *entry = (item, seq),
                _ => entries.push((item, seq)),
            }
        }
        Ok(self.write_result(confirmed, unresolved, dry_run))
    }

    async fn remove(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        let b = self.breakage;
        self.request("remove").await?;
        if b.hangs_on_remove {
            std::future::pending::<()>().await;
        }
        self.declared("remove", feature)?;
        self.writable("remove")?;
        let apply = !dry_run || b.ignores_dry_run;
        let mut state = self.vendor.state.lock().unwrap();
        let mut confirmed = Vec::new();
        for item in &items {
            let entries = state.items.entry(feature).or_default();
            let hit = |e: &InventoryItem| {
                canonical_key(e) == canonical_key(item)
                    && (feature != Feature::History || item.watched_at.is_none() || e.watched_at == item.watched_at)
            };
            if entries.iter().any(|(e, _)| hit(e)) {
                confirmed.push(canonical_key(item));
                if apply {
                    entries.retain(|(e, _)| !hit(e));
                }
            }
        }
        if b.remove_absent_fails && confirmed.is_empty() && !items.is_empty() {
            return Err(ProviderError::new(SCOPE, Fake::phase("remove"), "HTTP 404: nothing to remove")
                .with_code(ErrorCode::NotFound));
        }
        if apply {
            self.record_write(&mut state, feature);
        }
        Ok(self.write_result(confirmed, vec![], dry_run))
    }

    async fn health(&self) -> HealthReport {
        let b = self.breakage;
        self.vendor.requests.fetch_add(1, Ordering::SeqCst);
        let status = match self.scenario {
            Scenario::Hang => std::future::pending().await,
            Scenario::InvalidCredentials if !b.health_ok_when_unauthorized => HealthStatus::AuthFailed,
            Scenario::Unreachable if !b.health_ok_when_unreachable => HealthStatus::Down,
            Scenario::InvalidCredentials | Scenario::Unreachable => HealthStatus::Ok,
            _ if b.health_down_when_healthy => HealthStatus::Down,
            _ => HealthStatus::Ok,
        };
        HealthReport::with_status(status)
    }

    async fn activities(&self) -> Result<Activities, ProviderError> {
        self.request("activities").await?;
        if self.breakage.checkpoint_without_activities {
            return Ok(Activities::new());
        }
        let state = self.vendor.state.lock().unwrap();
        let mut activities: Activities = FEATURES
            .list()
            .into_iter()
            .map(|f| (f.as_str().to_owned(), checkpoint_time(state.changed.get(&f).copied().unwrap_or(0))))
            .collect();
        activities.insert("updated_at".into(), checkpoint_time(state.seq));
        Ok(activities)
    }
}

struct FakeHarness {
    breakage: Breakage,
    schema: bool,
    /// The vendor of the latest healthy build, for `build_since`.
    healthy: Mutex<Option<Arc<Vendor>>>,
}

impl FakeHarness {
    fn new(breakage: Breakage, schema: bool) -> Self {
        FakeHarness { breakage, schema, healthy: Mutex::new(None) }
    }

    fn fake(&self, vendor: Arc<Vendor>, scenario: Scenario, since: Option<Activities>) -> Fake {
        Fake {
            vendor,
            scenario,
            breakage: self.breakage,
            token: Secret::new(FAKE_TOKEN),
            since,
            names: (0..8).map(|n| if n == 0 { "FAKE".to_owned() } else { format!("FAKE{n}") }).collect(),
            name_calls: AtomicU32::new(0),
        }
    }
}

impl InventoryHarness for FakeHarness {
    fn provider_crate(&self) -> &str {
        "fake"
    }

    fn build(&self, scenario: Scenario) -> Option<BuiltInventory> {
        let failures = match scenario {
            Scenario::RateLimited { times, .. } | Scenario::ServerError { times } => times,
            _ => 0,
        };
        let vendor = Arc::new(Vendor::seeded(failures));
        if scenario == Scenario::Healthy {
            *self.healthy.lock().unwrap() = Some(vendor.clone());
        }
        Some((Arc::new(self.fake(vendor.clone(), scenario, None)), Arc::new(FakeProbe(vendor))))
    }

    fn build_since(&self, checkpoints: &Activities) -> Option<Arc<dyn InventoryProvider>> {
        let vendor = self.healthy.lock().unwrap().clone()?;
        Some(Arc::new(self.fake(vendor, Scenario::Healthy, Some(checkpoints.clone()))))
    }

    fn config_schema(&self) -> Option<Value> {
        self.schema.then(|| json!({"type": "object", "properties": {"token": {"type": "string"}}}))
    }

    fn sample_items(&self, feature: Feature) -> Vec<InventoryItem> {
        match feature {
            Feature::Watchlist => vec![movie("807", "Se7en", 1995), movie("275", "Fargo", 1996)],
            Feature::Ratings => vec![InventoryItem { rating: Some(8), ..movie("807", "Se7en", 1995) }],
            Feature::History => {
                vec![InventoryItem { watched_at: Some("2024-05-01T20:00:00Z".into()), ..movie("807", "Se7en", 1995) }]
            }
            Feature::Progress | Feature::Playlists => vec![],
        }
    }

    fn unresolvable_item(&self, _: Feature) -> Option<InventoryItem> {
        Some(movie("404", "Lost Film", 1999))
    }

    fn secret(&self) -> Option<Secret> {
        Some(Secret::new(FAKE_TOKEN))
    }
}

// =============================================================================================
// Correct fakes pass

#[tokio::test(start_paused = true)]
async fn a_correct_present_provider_passes() {
    let report = run_inventory_kit(&FakeHarness::new(CORRECT, true)).await;
    assert_complete(&report);
    assert!(report.pass, "{}", pretty(&report));
    assert_eq!(not_applicable(&report), BTreeSet::from(DELTA_CHECKS));
    assert_eq!(report.adapter, "FAKE");
}

#[tokio::test(start_paused = true)]
async fn a_correct_delta_provider_passes_every_check() {
    let report = run_inventory_kit(&FakeHarness::new(Breakage { delta: true, ..CORRECT }, true)).await;
    assert_complete(&report);
    assert!(report.pass, "{}", pretty(&report));
    assert!(not_applicable(&report).is_empty(), "{:?}", not_applicable(&report));
}

#[tokio::test(start_paused = true)]
async fn a_count_only_provider_passes_without_the_confirmed_keys_check() {
    let report = run_inventory_kit(&FakeHarness::new(Breakage { honest_counts_only: true, ..CORRECT }, true)).await;
    assert!(report.pass, "{}", pretty(&report));
    let expected = BTreeSet::from(["writes.add_confirms_keys", DELTA_CHECKS[0], DELTA_CHECKS[1]]);
    assert_eq!(not_applicable(&report), expected);
    assert_eq!(
        report.check("writes.add_confirms_keys").unwrap().reason.as_deref(),
        Some("the provider declares confirms_keys: false (counts only)")
    );
}

const WRITE_CHECKS: [&str; 7] = [
    "writes.add_confirms_keys",
    "writes.add_idempotent",
    "writes.remove_idempotent",
    "writes.added_visible",
    "writes.dry_run_no_writes",
    "writes.unresolved_have_ids",
    "writes.counts_reported",
];

#[tokio::test(start_paused = true)]
async fn a_correct_read_only_provider_passes_without_the_write_checks() {
    let report = run_inventory_kit(&FakeHarness::new(Breakage { read_only: true, ..CORRECT }, true)).await;
    assert_complete(&report);
    assert!(report.pass, "{}", pretty(&report));
    let expected: BTreeSet<&str> = WRITE_CHECKS.into_iter().chain(DELTA_CHECKS).collect();
    assert_eq!(not_applicable(&report), expected);
    for name in WRITE_CHECKS {
        assert_eq!(report.check(name).unwrap().reason.as_deref(), Some(conformance::READ_ONLY), "{name}");
    }
    assert_eq!(report.check(DELTA_CHECKS[0]).unwrap().reason.as_deref(), Some("present index semantics"));
    assert_eq!(report.check("describe.features_consistent").unwrap().status, CheckStatus::Passed);
}

#[tokio::test(start_paused = true)]
async fn a_read_only_delta_provider_skips_the_delta_checks_too() {
    let breakage = Breakage { read_only: true, delta: true, ..CORRECT };
    let report = run_inventory_kit(&FakeHarness::new(breakage, true)).await;
    assert_complete(&report);
    assert!(report.pass, "{}", pretty(&report));
    for name in WRITE_CHECKS.into_iter().chain(DELTA_CHECKS) {
        assert_eq!(report.check(name).unwrap().reason.as_deref(), Some(conformance::READ_ONLY), "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_read_only_provider_refusing_writes_as_permanent_fails() {
    let breakage = Breakage { read_only_refuses_as_permanent: true, ..CORRECT };
    let report = run_inventory_kit(&FakeHarness::new(breakage, true)).await;
    assert_complete(&report);
    assert_eq!(failed(&report), BTreeSet::from(["describe.features_consistent"]), "{}", pretty(&report));
    let error = &report.check("describe.features_consistent").unwrap().errors[0];
    assert!(error.contains("fails with class Permanent instead of unsupported"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_harness_that_stages_nothing_gets_not_applicable_not_passed() {
    /// Builds healthy providers only, with no samples, no unresolvable item and no secret.
    struct Minimal(FakeHarness);
    impl InventoryHarness for Minimal {
        fn provider_crate(&self) -> &str {
            "minimal"
        }
        fn build(&self, scenario: Scenario) -> Option<BuiltInventory> {
            (scenario == Scenario::Healthy).then(|| self.0.build(scenario)).flatten()
        }
        fn config_schema(&self) -> Option<Value> {
            self.0.config_schema()
        }
        fn sample_items(&self, _: Feature) -> Vec<InventoryItem> {
            vec![]
        }
        fn unresolvable_item(&self, _: Feature) -> Option<InventoryItem> {
            None
        }
        fn secret(&self) -> Option<Secret> {
            None
        }
    }
    let report = run_inventory_kit(&Minimal(FakeHarness::new(CORRECT, true))).await;
    assert_complete(&report);
    assert!(report.pass, "{}", pretty(&report));
    let passed: BTreeSet<&str> = report.names_with(CheckStatus::Passed).into_iter().collect();
    let expected = [
        "describe.stable_id",
        "describe.label",
        "describe.features_consistent",
        "describe.config_schema",
        "health.valid",
        "snapshot.items_typed_with_ids",
        "snapshot.unique_keys",
        "snapshot.stable_hash",
        "metrics.event_fields",
    ];
    assert_eq!(passed, BTreeSet::from(expected));
    let reason = |name: &str| report.check(name).unwrap().reason.clone().unwrap();
    assert_eq!(reason("health.unreachable"), "the harness cannot stage scenario Unreachable");
    assert_eq!(reason("errors.hang_times_out"), "the harness cannot stage scenario Hang");
    assert_eq!(reason("writes.add_idempotent"), "the harness gives no sample items");
    assert_eq!(reason("writes.unresolved_have_ids"), "the harness gives no unresolvable item");
    assert_eq!(reason("errors.no_secret_in_errors"), "the harness names no secret");
}

#[tokio::test(start_paused = true)]
async fn a_harness_without_a_healthy_build_fails_everything() {
    struct Nothing;
    impl InventoryHarness for Nothing {
        fn provider_crate(&self) -> &str {
            "nothing"
        }
        fn build(&self, _: Scenario) -> Option<BuiltInventory> {
            None
        }
        fn config_schema(&self) -> Option<Value> {
            None
        }
        fn sample_items(&self, _: Feature) -> Vec<InventoryItem> {
            vec![]
        }
        fn unresolvable_item(&self, _: Feature) -> Option<InventoryItem> {
            None
        }
        fn secret(&self) -> Option<Secret> {
            None
        }
    }
    let report = run_inventory_kit(&Nothing).await;
    assert_complete(&report);
    assert_eq!(failed(&report), INVENTORY_CHECKS.into_iter().collect());
}

// =============================================================================================
// Broken fakes fail exactly what they break

struct Case {
    name: &'static str,
    breakage: Breakage,
    schema: bool,
    fails: &'static [&'static str],
}

const fn case(name: &'static str, breakage: Breakage, fails: &'static [&'static str]) -> Case {
    Case { name, breakage, schema: true, fails }
}

const CASES: &[Case] = &[
    case("unstable_name", Breakage { unstable_name: true, ..CORRECT }, &["describe.stable_id", "metrics.event_fields"]),
    case("empty_label", Breakage { empty_label: true, ..CORRECT }, &["describe.label"]),
    case(
        "read_only_accepting_writes",
        Breakage { read_only_accepts_writes: true, ..CORRECT },
        &["describe.features_consistent"],
    ),
    case(
        "checkpoint_without_activities",
        Breakage { checkpoint_without_activities: true, ..CORRECT },
        &["describe.features_consistent"],
    ),
    Case { name: "no_config_schema", breakage: CORRECT, schema: false, fails: &["describe.config_schema"] },
    case("health_down_when_healthy", Breakage { health_down_when_healthy: true, ..CORRECT }, &["health.valid"]),
    case(
        "health_ok_with_invalid_credentials",
        Breakage { health_ok_when_unauthorized: true, ..CORRECT },
        &["health.invalid_credentials"],
    ),
    case(
        "health_ok_when_unreachable",
        Breakage { health_ok_when_unreachable: true, ..CORRECT },
        &["health.unreachable"],
    ),
    case("items_missing_ids", Breakage { item_without_ids: true, ..CORRECT }, &["snapshot.items_typed_with_ids"]),
    case("duplicate_canonical_keys", Breakage { duplicate_keys: true, ..CORRECT }, &["snapshot.unique_keys"]),
    case(
        "nondeterministic_snapshot",
        Breakage { nondeterministic_snapshot: true, ..CORRECT },
        &["snapshot.stable_hash"],
    ),
    case(
        "delta_ignoring_the_checkpoint",
        Breakage { delta_ignores_checkpoint: true, ..CORRECT },
        &["snapshot.delta_since_checkpoint", "snapshot.future_checkpoint_empty"],
    ),
    case("wrong_confirmed_keys", Breakage { wrong_confirmed_keys: true, ..CORRECT }, &["writes.add_confirms_keys"]),
    case("non_idempotent_add", Breakage { duplicates_on_add: true, ..CORRECT }, &["writes.add_idempotent"]),
    case(
        "remove_of_absent_items_fails",
        Breakage { remove_absent_fails: true, ..CORRECT },
        &["writes.remove_idempotent"],
    ),
    case("add_that_stores_nothing", Breakage { silent_add: true, ..CORRECT }, &["writes.added_visible"]),
    case("ignoring_dry_run", Breakage { ignores_dry_run: true, ..CORRECT }, &["writes.dry_run_no_writes"]),
    case(
        "unresolved_without_ids",
        Breakage { unresolved_without_ids: true, ..CORRECT },
        &["writes.unresolved_have_ids"],
    ),
    case(
        "count_only_writes",
        Breakage { no_counts: true, ..CORRECT },
        &["writes.add_confirms_keys", "writes.counts_reported"],
    ),
    case(
        "hanging_forever_on_remove",
        Breakage { hangs_on_remove: true, ..CORRECT },
        &["writes.remove_idempotent", "writes.dry_run_no_writes"],
    ),
    case(
        "rate_limit_as_permanent",
        Breakage { rate_limit_permanent: true, ..CORRECT },
        &["errors.rate_limited_retryable"],
    ),
    case(
        "server_error_as_permanent",
        Breakage { server_error_permanent: true, ..CORRECT },
        &["errors.server_error_retryable"],
    ),
    case(
        "retrying_permanent_errors_internally",
        Breakage { retries_401: true, ..CORRECT },
        &["errors.unauthorized_not_retried"],
    ),
    case(
        "bad_request_as_retryable",
        Breakage { bad_request_retryable: true, ..CORRECT },
        &["errors.bad_request_not_retried"],
    ),
    case("hang_swallowed_as_empty", Breakage { swallows_hang: true, ..CORRECT }, &["errors.hang_times_out"]),
    case("leaking_the_token_in_errors", Breakage { leaks_token: true, ..CORRECT }, &["errors.no_secret_in_errors"]),
];

async fn run_case(name: &str) {
    let case = CASES.iter().find(|c| c.name == name).unwrap();
    let report = run_inventory_kit(&FakeHarness::new(case.breakage, case.schema)).await;
    assert_complete(&report);
    assert!(!report.pass);
    let expected: BTreeSet<&str> = case.fails.iter().copied().collect();
    assert_eq!(failed(&report), expected, "{name}: {}", pretty(&report));
    assert!(!pretty(&report).contains(FAKE_TOKEN), "{name}: the report shows the secret");
}

macro_rules! broken {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(start_paused = true)]
            async fn $name() {
                run_case(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_case_has_a_test() {
            let tested = BTreeSet::from([$(stringify!($name)),*]);
            let cases: BTreeSet<&str> = CASES.iter().map(|c| c.name).collect();
            assert_eq!(tested, cases);
        }
    };
}

broken!(
    unstable_name,
    empty_label,
    read_only_accepting_writes,
    checkpoint_without_activities,
    no_config_schema,
    health_down_when_healthy,
    health_ok_with_invalid_credentials,
    health_ok_when_unreachable,
    items_missing_ids,
    duplicate_canonical_keys,
    nondeterministic_snapshot,
    delta_ignoring_the_checkpoint,
    wrong_confirmed_keys,
    non_idempotent_add,
    remove_of_absent_items_fails,
    add_that_stores_nothing,
    ignoring_dry_run,
    unresolved_without_ids,
    count_only_writes,
    hanging_forever_on_remove,
    rate_limit_as_permanent,
    server_error_as_permanent,
    retrying_permanent_errors_internally,
    bad_request_as_retryable,
    hang_swallowed_as_empty,
    leaking_the_token_in_errors,
);

#[test]
fn every_check_can_fail() {
    let covered: BTreeSet<&str> = CASES.iter().flat_map(|c| c.fails.iter().copied()).collect();
    let all: BTreeSet<&str> = INVENTORY_CHECKS.into_iter().collect();
    assert_eq!(all.difference(&covered).collect::<Vec<_>>(), Vec::<&&str>::new(), "checks no broken provider fails");
    assert!(covered.is_subset(&all));
}

#[test]
fn the_kit_can_run_on_a_spawned_task() {
    fn is_send<T: Send>(_: &T) {}
    let harness = FakeHarness::new(CORRECT, true);
    let future = run_inventory_kit(&harness);
    is_send(&future);
}
