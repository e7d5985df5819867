#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The run layer (`cw_orchestrator::run`, CONTRACTS §3 "Guardrails" and "Applier"), end to end
//! against an in-test scripted inventory provider that records every write call:
//!
//! - a one-way sync converges: the re-sync plans nothing, and both sides are baselined;
//! - the mass-delete guard blocks (and keeps the deletions observable) until a run explicitly
//!   lifts it, for that run only;
//! - the drop guard keeps a collapsed snapshot from removing anything (and can be switched off);
//! - the blackbox quarantines an item after 3 failing runs and stops sending it;
//! - the applier's accounting (`applier::judge`): exact keys, count-only and `{ok: true}`
//!   responses, unresolved items with and without ids, attribution by shared id token; and
//!   through the engine, unconfirmed writes are never baselined;
//! - a dry run makes no write call, commits nothing and reports what a real run does (also as a
//!   property over arbitrary small inventories);
//! - a two-way deletion propagates across sides that key the item differently, tombstones it,
//!   and it is not re-added;
//! - history adds are never re-sent after an ambiguous failure, and plays are never duplicated;
//! - plan / approve / apply: unapproved, already executed, stale and tampered plans are refused;
//! - health: a down target gets no writes (recorded unresolved, baselines kept), an
//!   `auth_failed` side skips the pair; a read-only target gets no writes;
//! - verify-after-write downgrades a confirmation the live side does not show.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use admit_core::{ErrorCode, Finding, PlanStore, ProviderError, ProviderPhase};
use cw_orchestrator::applier::{self, APPLIER_RULE};
use cw_orchestrator::config::{CwConfig, Side};
use cw_orchestrator::guards::{MASS_DELETE_RULE, UNRESOLVED_WITHOUT_IDS_RULE};
use cw_orchestrator::ingest::DROP_GUARD_RULE;
use cw_orchestrator::planner::{PlannedItem, Reason};
use cw_orchestrator::run::{
    BLACKBOX_RULE, CAPABILITY_RULE, Engine, FeatureCounts, PlanFile, Providers, Quiet, RunError, RunOptions, RunReport,
    new_run_id,
};
use cw_orchestrator::state::{ManualClock, RunStatus, StateOptions, StateStore};
use pal::inventory::{
    Feature, Features, InventoryCapabilities, InventoryItem, InventoryProvider, UnresolvedItem, WriteResult,
};
use pal::keys::canonical_key;
use pal::{HealthReport, HealthStatus, Pipeline, RetryPolicy, SeededJitter};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// A clock for the pipeline that never sleeps for real

/// Sleeping advances the clock at once (when the sleep is polled), so retries and backoffs
/// cost no wall time.
#[derive(Debug, Default)]
struct InstantClock {
    elapsed: Arc<Mutex<Duration>>,
}

impl pal::Clock for InstantClock {
    fn now(&self) -> Duration {
        *self.elapsed.lock().unwrap()
    }

    fn sleep(&self, duration: Duration) -> pal::pipeline::BoxFuture<'static, ()> {
        let elapsed = self.elapsed.clone();
        Box::pin(async move {
            *elapsed.lock().unwrap() += duration;
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The scripted provider

/// Behaviour switches of a [`Scripted`] provider.
#[derive(Debug, Clone)]
struct Knobs {
    features: Features,
    /// Canonical keys the provider does not apply and reports unresolved (with their ids).
    unresolved: BTreeSet<String>,
    /// Report the unresolved items above without ids.
    unresolved_without_ids: bool,
    /// Answer with a `confirmed` count (this many short of what was applied), no keys.
    count_only_short: Option<u64>,
    /// Answer `{ok: true}` with neither keys nor a count.
    bare_ok: bool,
    /// Every write call fails with a permanent error, applying nothing.
    fail_writes: bool,
    /// The next this-many `add` calls apply, then return a retryable error anyway.
    applied_then_error: u32,
    /// Canonical keys the provider confirms but does not store.
    lost: BTreeSet<String>,
    verify_after_write: bool,
    read_only: bool,
    observed_deletes: bool,
    chunk_size: u32,
    health: HealthStatus,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            features: Features::ALL,
            unresolved: BTreeSet::new(),
            unresolved_without_ids: false,
            count_only_short: None,
            bare_ok: false,
            fail_writes: false,
            applied_then_error: 0,
            lost: BTreeSet::new(),
            verify_after_write: false,
            read_only: false,
            observed_deletes: false,
            chunk_size: 100,
            health: HealthStatus::Ok,
        }
    }
}

/// One write call, as received.
#[derive(Debug, Clone)]
struct Call {
    op: &'static str,
    feature: Feature,
    items: Vec<InventoryItem>,
    dry_run: bool,
}

impl Call {
    fn keys(&self) -> Vec<String> {
        self.items.iter().map(play_key).collect()
    }
}

#[derive(Debug, Default)]
struct Inner {
    items: BTreeMap<Feature, Vec<InventoryItem>>,
    knobs: Knobs,
    writes: Vec<Call>,
}

/// An inventory held in memory. Presence features are keyed by canonical key (an add is an
/// upsert); history keeps every play it is sent, so a duplicate send is a duplicate play.
#[derive(Debug)]
struct Scripted {
    name: String,
    inner: Mutex<Inner>,
}

fn play_key(item: &InventoryItem) -> String {
    match &item.watched_at {
        Some(at) => format!("{}@{at}", canonical_key(item)),
        None => canonical_key(item),
    }
}

impl Scripted {
    fn new(name: &str) -> Arc<Scripted> {
        Arc::new(Scripted { name: name.to_owned(), inner: Mutex::new(Inner::default()) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    fn knobs(&self, change: impl FnOnce(&mut Knobs)) {
        change(&mut self.lock().knobs);
    }

    fn set(&self, feature: Feature, items: Vec<InventoryItem>) {
        self.lock().items.insert(feature, items);
    }

    fn items(&self, feature: Feature) -> Vec<InventoryItem> {
        self.lock().items.get(&feature).cloned().unwrap_or_default()
    }

    /// The canonical keys held (history: play keys, with repeats).
    fn keys(&self, feature: Feature) -> Vec<String> {
        let mut keys: Vec<String> = self.items(feature).iter().map(play_key).collect();
        keys.sort();
        keys
    }

    fn key_set(&self, feature: Feature) -> BTreeSet<String> {
        self.items(feature).iter().map(play_key).collect()
    }

    fn writes(&self) -> Vec<Call> {
        self.lock().writes.clone()
    }

    fn write_count(&self) -> usize {
        self.lock().writes.len()
    }

    fn sent_keys(&self, op: &str) -> BTreeSet<String> {
        self.writes().iter().filter(|c| c.op == op).flat_map(Call::keys).collect()
    }

    fn clear_writes(&self) {
        self.lock().writes.clear();
    }

    fn write(
        &self,
        op: &'static str,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        let mut inner = self.lock();
        inner.writes.push(Call { op, feature, items: items.clone(), dry_run });
        let knobs = inner.knobs.clone();
        if knobs.read_only {
            return Err(ProviderError::unsupported(self.name.as_str(), ProviderPhase::Execute));
        }
        if knobs.fail_writes {
            return Err(ProviderError::new(self.name.as_str(), ProviderPhase::Execute, "scripted failure")
                .with_code(ErrorCode::InvalidInput));
        }
        let mut confirmed = Vec::new();
        let mut unresolved = Vec::new();
        for item in items {
            let key = canonical_key(&item);
            if knobs.unresolved.contains(&key) {
                let ids = if knobs.unresolved_without_ids { pal::inventory::Ids::new() } else { item.ids.clone() };
                unresolved.push(UnresolvedItem { ids, reason: Some("scripted".to_owned()), ..Default::default() });
                continue;
            }
            confirmed.push(key.clone());
            if dry_run || knobs.lost.contains(&key) {
                continue;
            }
            let held = inner.items.entry(feature).or_default();
            match (op, feature) {
                ("add", Feature::History) => held.push(item),
                ("add", _) => {
                    held.retain(|i| canonical_key(i) != key);
                    held.push(item);
                }
                (_, Feature::History) => held.retain(|i| play_key(i) != play_key(&item)),
                _ => held.retain(|i| canonical_key(i) != key),
            }
        }
        if op == "add" && inner.knobs.applied_then_error > 0 {
            inner.knobs.applied_then_error -= 1;
            return Err(ProviderError::retryable(self.name.as_str(), ProviderPhase::Execute, "503 after applying")
                .with_code(ErrorCode::Unavailable));
        }
        let n = confirmed.len() as u64;
        confirmed.sort();
        confirmed.dedup();
        let result = if knobs.bare_ok {
            WriteResult { ok: true, ..Default::default() }
        } else if let Some(short) = knobs.count_only_short {
            WriteResult { ok: true, confirmed: Some(n.saturating_sub(short)), unresolved, ..Default::default() }
        } else {
            WriteResult { ok: true, confirmed_keys: Some(confirmed), unresolved, ..Default::default() }
        };
        Ok(WriteResult { dry_run, ..result })
    }
}

#[pal::async_trait]
impl InventoryProvider for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> &str {
        &self.name
    }

    fn features(&self) -> Features {
        self.lock().knobs.features
    }

    fn capabilities(&self) -> InventoryCapabilities {
        let knobs = &self.lock().knobs;
        InventoryCapabilities {
            verify_after_write: knobs.verify_after_write,
            observed_deletes: knobs.observed_deletes,
            chunk_size: knobs.chunk_size,
            confirms_keys: knobs.count_only_short.is_none() && !knobs.bare_ok,
            read_only: knobs.read_only,
            ..InventoryCapabilities::default()
        }
    }

    async fn build_index(&self, feature: Feature) -> Result<Vec<InventoryItem>, ProviderError> {
        Ok(self.items(feature))
    }

    async fn add(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.write("add", items, feature, dry_run)
    }

    async fn remove(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.write("remove", items, feature, dry_run)
    }

    async fn health(&self) -> HealthReport {
        HealthReport::with_status(self.lock().knobs.health)
    }
}

// ---------------------------------------------------------------------------------------------
// Items and configs

const PAIR: &str = "p";
const W: Feature = Feature::Watchlist;

fn item(value: Value) -> InventoryItem {
    serde_json::from_value(value).unwrap()
}

/// A movie known by its TMDB id only: canonical key `tmdb:<n>`.
fn movie(n: u32) -> InventoryItem {
    item(json!({ "type": "movie", "title": format!("Movie {n}"), "year": 2000, "ids": { "tmdb": n.to_string() } }))
}

fn movies(range: impl IntoIterator<Item = u32>) -> Vec<InventoryItem> {
    range.into_iter().map(movie).collect()
}

fn tmdb_keys(range: impl IntoIterator<Item = u32>) -> BTreeSet<String> {
    range.into_iter().map(|n| format!("tmdb:{n}")).collect()
}

/// A play of movie `n` on day `day` of January 2024.
fn play(n: u32, day: u32) -> InventoryItem {
    item(json!({
        "type": "movie",
        "title": format!("Movie {n}"),
        "ids": { "tmdb": n.to_string() },
        "watched_at": format!("2024-01-{day:02}T20:00:00Z"),
    }))
}

/// A config with a source instance `src`, a target instance `dst` and one pair `p` between them
/// syncing `features` (YAML flow mapping) in `mode`, plus `sync` settings (YAML flow mapping).
fn config(mode: &str, features: &str, sync: &str) -> CwConfig {
    let text = format!(
        "providers:\n  src: {{ adapter: scripted }}\n  dst: {{ adapter: scripted }}\n\
         pairs:\n  - id: {PAIR}\n    source: src\n    target: dst\n    mode: {mode}\n    features: {features}\n\
         sync: {sync}\n"
    );
    CwConfig::parse(&text, Path::new("/virtual/cw.yaml")).unwrap()
}

fn one_way(features: &str) -> CwConfig {
    config("one-way", features, "{}")
}

/// One-way watchlist with removals (`source_deletes`).
fn one_way_removing() -> CwConfig {
    one_way("{ watchlist: { add: true, remove: true } }")
}

/// A state store, two scripted providers and a pipeline that never sleeps.
struct World {
    config: CwConfig,
    store: StateStore,
    pipeline: Pipeline,
    providers: Providers,
    src: Arc<Scripted>,
    dst: Arc<Scripted>,
    clock: Arc<ManualClock>,
}

impl World {
    fn new(config: CwConfig) -> World {
        let clock = Arc::new(ManualClock::at_unix(1_767_225_600)); // 2026-01-01
        let store = StateStore::open_in_memory(StateOptions::default(), clock.clone()).unwrap();
        let pipeline =
            Pipeline::new(Arc::new(InstantClock::default()), Arc::new(SeededJitter::new(7)), RetryPolicy::default());
        let (src, dst) = (Scripted::new("src"), Scripted::new("dst"));
        let mut providers = Providers::new();
        providers.insert("src".to_owned(), src.clone() as Arc<dyn InventoryProvider>);
        providers.insert("dst".to_owned(), dst.clone() as Arc<dyn InventoryProvider>);
        World { config, store, pipeline, providers, src, dst, clock }
    }

    fn engine(&self) -> Engine<'_> {
        Engine::new(&self.config, &self.store, &self.pipeline, &self.providers, &Quiet)
    }

    fn run_id(&self) -> String {
        self.clock.advance(time::Duration::minutes(10));
        new_run_id(self.store.now())
    }

    async fn run_with(&self, options: RunOptions) -> RunReport {
        let engine = self.engine();
        let prepared = engine.prepare(&options, &self.run_id()).await.unwrap();
        engine.sync(&prepared).await.unwrap()
    }

    async fn sync(&self) -> RunReport {
        self.run_with(RunOptions::default()).await
    }

    async fn dry(&self) -> RunReport {
        self.run_with(RunOptions { dry_run: true, ..RunOptions::default() }).await
    }

    fn baseline_keys(&self, side: Side, feature: Feature) -> Option<BTreeSet<String>> {
        self.store.baseline(PAIR, side, feature).unwrap().map(|b| b.items.into_keys().collect())
    }

    fn run_count(&self) -> usize {
        self.store.runs(None, 1000).unwrap().len()
    }
}

fn counts(report: &RunReport, feature: Feature) -> FeatureCounts {
    report.pairs[0].features.get(&feature).map(|f| f.counts).unwrap_or_default()
}

/// Every finding of a report: pair-level and per feature.
fn findings(report: &RunReport) -> Vec<&Finding> {
    report.pairs.iter().flat_map(|p| p.findings.iter().chain(p.features.values().flat_map(|f| &f.findings))).collect()
}

fn has_rule(report: &RunReport, rule: &str) -> bool {
    findings(report).iter().any(|f| f.rule_id == rule)
}

// ---------------------------------------------------------------------------------------------
// 1. Convergence

#[tokio::test]
async fn one_way_sync_converges_and_baselines_both_sides() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=5));
    world.dst.set(W, movies([4, 5, 6]));

    let first = world.sync().await;
    assert_eq!(counts(&first, W).added, 3, "{first:?}");
    assert_eq!(first.pairs[0].status, RunStatus::Ok);
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=6));
    assert_eq!(world.baseline_keys(Side::Source, W), Some(tmdb_keys(1..=5)));
    assert_eq!(world.baseline_keys(Side::Target, W), Some(tmdb_keys(1..=6)));

    world.dst.clear_writes();
    let engine = world.engine();
    let prepared = engine.prepare(&RunOptions::default(), &world.run_id()).await.unwrap();
    assert!(prepared.is_empty(), "the re-sync plans nothing: {:?}", prepared.pairs[0].features[0].plan);
    let second = engine.sync(&prepared).await.unwrap();
    assert!(second.nothing_to_do(), "{second:?}");
    assert_eq!(world.dst.write_count(), 0);
    assert_eq!(world.baseline_keys(Side::Source, W), Some(tmdb_keys(1..=5)));
    assert_eq!(world.baseline_keys(Side::Target, W), Some(tmdb_keys(1..=6)));
}

// ---------------------------------------------------------------------------------------------
// 2. Mass delete

#[tokio::test]
async fn mass_delete_is_blocked_until_allowed_for_one_run() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=30));
    world.sync().await;
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=30));

    // 15 removals on a target of 30: above max(10, 3).
    world.src.set(W, movies(1..=15));
    world.dst.clear_writes();
    let blocked = world.sync().await;
    let c = counts(&blocked, W);
    assert_eq!((c.blocked, c.removed), (15, 0), "{blocked:?}");
    assert_eq!(blocked.pairs[0].status, RunStatus::Blocked);
    assert!(has_rule(&blocked, MASS_DELETE_RULE));
    assert!(world.dst.sent_keys("remove").is_empty(), "nothing is sent for removal");
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=30), "nothing removed on the target");
    assert_eq!(
        world.baseline_keys(Side::Source, W),
        Some(tmdb_keys(1..=30)),
        "the source baseline is not advanced: the deletions stay observable"
    );

    // Still blocked on the next run: the deletions were not forgotten.
    let again = world.sync().await;
    assert_eq!(counts(&again, W).blocked, 15, "{again:?}");

    let allowed = world.run_with(RunOptions { allow_mass_delete: true, ..RunOptions::default() }).await;
    assert_eq!(counts(&allowed, W).removed, 15, "{allowed:?}");
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=15));
    assert_eq!(world.dst.sent_keys("remove"), tmdb_keys(16..=30));

    // The flag lifted the guard for that run only: nothing is left to block now …
    let after = world.sync().await;
    assert_eq!(counts(&after, W).blocked, 0, "{after:?}");
    assert!(after.nothing_to_do(), "{after:?}");

    // … and a fresh batch of deletions is blocked again without it (12 > max(10, 1)).
    world.src.set(W, movies(1..=3));
    world.dst.clear_writes();
    let fresh = world.sync().await;
    assert_eq!((counts(&fresh, W).blocked, counts(&fresh, W).removed), (12, 0), "{fresh:?}");
    assert_eq!(world.dst.write_count(), 0);
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=15));
}

// ---------------------------------------------------------------------------------------------
// 3. Drop guard

#[tokio::test]
async fn suspect_empty_snapshot_removes_nothing_unless_the_drop_guard_is_off() {
    // The mass-delete guard is lifted in every run: only the drop guard stands in the way.
    let allow = RunOptions { allow_mass_delete: true, ..RunOptions::default() };
    for mode in ["source_deletes", "mirror"] {
        let features = format!("{{ watchlist: {{ add: true, remove: true, remove_mode: {mode} }} }}");

        let world = World::new(config("one-way", &features, "{}"));
        world.src.set(W, movies(1..=25));
        world.run_with(allow.clone()).await;
        assert_eq!(world.dst.key_set(W), tmdb_keys(1..=25));
        world.src.set(W, Vec::new());
        world.dst.clear_writes();
        let guarded = world.run_with(allow.clone()).await;
        assert!(has_rule(&guarded, DROP_GUARD_RULE), "{mode}: {guarded:?}");
        assert_eq!(counts(&guarded, W).removed, 0, "{mode}");
        assert_eq!(world.dst.write_count(), 0, "{mode}: no write call");
        assert_eq!(world.dst.key_set(W), tmdb_keys(1..=25), "{mode}: nothing removed on the target");
        assert_eq!(world.baseline_keys(Side::Source, W), Some(tmdb_keys(1..=25)), "{mode}: baseline kept");

        let world = World::new(config("one-way", &features, "{ drop_guard: false }"));
        world.src.set(W, movies(1..=25));
        world.run_with(allow.clone()).await;
        world.src.set(W, Vec::new());
        let unguarded = world.run_with(allow.clone()).await;
        assert!(!has_rule(&unguarded, DROP_GUARD_RULE), "{mode}: {unguarded:?}");
        assert_eq!(counts(&unguarded, W).removed, 25, "{mode}: {unguarded:?}");
        assert!(world.dst.items(W).is_empty(), "{mode}: the removals happen");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Blackbox

#[tokio::test]
async fn an_item_unresolved_three_runs_in_a_row_is_quarantined_and_not_sent() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=3));
    world.dst.knobs(|k| k.unresolved = tmdb_keys([2]));
    for run in 1..=3 {
        let report = world.sync().await;
        assert_eq!(counts(&report, W).unresolved, 1, "run {run}: {report:?}");
        assert!(world.dst.sent_keys("add").contains("tmdb:2"), "run {run}: it is still tried");
        let unresolved = world.store.unresolved(PAIR, W).unwrap();
        assert_eq!(unresolved.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["tmdb:2"], "run {run}");
    }
    let blackbox = world.store.list_blackbox(Some(PAIR)).unwrap();
    assert_eq!(blackbox.len(), 1, "{blackbox:?}");
    assert_eq!((blackbox[0].key.as_str(), blackbox[0].failures), ("tmdb:2", 3));
    assert!(blackbox[0].quarantined, "{blackbox:?}");

    world.dst.clear_writes();
    let engine = world.engine();
    let prepared = engine.prepare(&RunOptions::default(), &world.run_id()).await.unwrap();
    let plan = &prepared.pairs[0].features[0].plan;
    assert!(plan.to_target.adds.iter().all(|p| p.key != "tmdb:2"), "left out of the plan: {plan:?}");
    let fourth = engine.sync(&prepared).await.unwrap();
    assert_eq!(counts(&fourth, W).blocked, 1, "{fourth:?}");
    assert!(has_rule(&fourth, BLACKBOX_RULE), "{fourth:?}");
    assert!(!world.dst.sent_keys("add").contains("tmdb:2"), "the provider is not sent it");
    assert_eq!(world.dst.key_set(W), tmdb_keys([1, 3]));
}

// ---------------------------------------------------------------------------------------------
// 5. The applier's accounting

fn planned(value: Value) -> PlannedItem {
    let item = item(value);
    PlannedItem { key: canonical_key(&item), reason: Reason::Missing, item }
}

fn chunk(range: impl IntoIterator<Item = u32>) -> Vec<PlannedItem> {
    range.into_iter().map(|n| planned(json!({ "ids": { "tmdb": n.to_string() } }))).collect()
}

fn unresolved(ids: Value) -> UnresolvedItem {
    UnresolvedItem { ids: serde_json::from_value(ids).unwrap(), reason: Some("nope".to_owned()), ..Default::default() }
}

fn judge(chunk: &[PlannedItem], result: WriteResult) -> applier::ChunkVerdict {
    applier::judge("dst", W, chunk, &result)
}

#[test]
fn confirmed_keys_confirm_exactly_the_items_they_name() {
    let verdict = judge(
        &chunk(1..=3),
        WriteResult { ok: true, confirmed_keys: Some(vec!["tmdb:1".into(), "tmdb:3".into()]), ..Default::default() },
    );
    assert_eq!(verdict.confirmed, [0, 2]);
    assert_eq!(verdict.unconfirmed, [1], "an item not named is unconfirmed");
    assert!(verdict.unresolved.is_empty());
    assert_eq!(verdict.counted_only, 0);
    assert!(verdict.findings.is_empty(), "{:?}", verdict.findings);
    // A key the chunk does not hold confirms nothing.
    let stray = judge(
        &chunk(1..=2),
        WriteResult { ok: true, confirmed_keys: Some(vec!["tmdb:9".into()]), ..Default::default() },
    );
    assert!(stray.confirmed.is_empty());
    assert_eq!(stray.unconfirmed, [0, 1]);
}

#[test]
fn a_count_covering_the_chunk_without_unresolved_items_confirms_all() {
    let verdict = judge(&chunk(1..=3), WriteResult { ok: true, confirmed: Some(3), ..Default::default() });
    assert_eq!(verdict.confirmed, [0, 1, 2]);
    assert!(verdict.unconfirmed.is_empty() && verdict.unresolved.is_empty());
    assert!(verdict.findings.is_empty(), "{:?}", verdict.findings);
}

#[test]
fn a_count_smaller_than_the_chunk_confirms_none() {
    let verdict = judge(&chunk(1..=3), WriteResult { ok: true, confirmed: Some(2), ..Default::default() });
    assert!(verdict.confirmed.is_empty(), "{verdict:?}");
    assert_eq!(verdict.unconfirmed, [0, 1, 2]);
    assert_eq!(verdict.counted_only, 2);
    assert!(verdict.findings.iter().any(|f| f.rule_id == APPLIER_RULE), "a warning: {:?}", verdict.findings);
}

#[test]
fn a_count_next_to_unresolved_items_confirms_none() {
    // The count covers the chunk, but one item is reported unresolved: which ones did it mean?
    let verdict = judge(
        &chunk(1..=3),
        WriteResult {
            ok: true,
            confirmed: Some(3),
            unresolved: vec![unresolved(json!({"tmdb": "2"}))],
            ..Default::default()
        },
    );
    assert!(verdict.confirmed.is_empty(), "{verdict:?}");
    assert_eq!(verdict.unresolved, [(1, Some("nope".to_owned()))]);
    assert_eq!(verdict.unconfirmed, [0, 2]);
    assert!(verdict.findings.iter().any(|f| f.rule_id == APPLIER_RULE), "{:?}", verdict.findings);
    // The same with an unresolved item that names none of the chunk.
    let stray = judge(
        &chunk(1..=2),
        WriteResult {
            ok: true,
            confirmed: Some(2),
            unresolved: vec![unresolved(json!({"tmdb": "99"}))],
            ..Default::default()
        },
    );
    assert!(stray.confirmed.is_empty(), "{stray:?}");
    assert_eq!(stray.unconfirmed, [0, 1]);
}

#[test]
fn ok_without_keys_or_count_confirms_nothing_and_warns() {
    let verdict = judge(&chunk(1..=2), WriteResult { ok: true, ..Default::default() });
    assert!(verdict.confirmed.is_empty());
    assert_eq!(verdict.unconfirmed, [0, 1]);
    let warning = verdict.findings.iter().find(|f| f.rule_id == APPLIER_RULE).expect("an applier warning");
    assert_eq!(warning.severity, admit_core::Severity::Warning);
}

#[test]
fn an_unresolved_item_without_ids_is_reported() {
    let verdict = judge(
        &chunk(1..=2),
        WriteResult {
            ok: true,
            confirmed_keys: Some(vec!["tmdb:1".into()]),
            unresolved: vec![unresolved(json!({})), unresolved(json!({"tmdb": "0", "imdb": "null"}))],
            ..Default::default()
        },
    );
    let finding = verdict.findings.iter().find(|f| f.rule_id == UNRESOLVED_WITHOUT_IDS_RULE).expect("reported");
    assert_eq!(finding.evidence.as_ref().unwrap()["count"], 2, "{finding:?}");
    assert_eq!(verdict.confirmed, [0]);
    assert!(verdict.unresolved.is_empty(), "it cannot be attributed to any item: {verdict:?}");
    assert_eq!(verdict.unconfirmed, [1]);
}

#[test]
fn unresolved_items_are_attributed_by_a_shared_id_token() {
    let chunk = vec![
        planned(json!({ "ids": { "tmdb": "603", "imdb": "tt0133093" } })),
        planned(json!({ "ids": { "tmdb": "604", "imdb": "tt0234215" } })),
    ];
    assert_eq!(chunk[0].key, "tmdb:603");
    let verdict = judge(
        &chunk,
        WriteResult {
            ok: true,
            confirmed_keys: Some(vec!["tmdb:604".into()]),
            // Only the IMDb id, spelled differently: normalised, it still names the first item.
            unresolved: vec![unresolved(json!({ "imdb": "TT0133093" }))],
            ..Default::default()
        },
    );
    assert_eq!(verdict.unresolved, [(0, Some("nope".to_owned()))], "{verdict:?}");
    assert_eq!(verdict.confirmed, [1]);
    assert!(verdict.unconfirmed.is_empty());
    // A rejection wins over a confirmation of the same item.
    let both = judge(
        &chunk,
        WriteResult {
            ok: true,
            confirmed_keys: Some(vec!["tmdb:603".into(), "tmdb:604".into()]),
            unresolved: vec![unresolved(json!({ "imdb": "tt0133093" }))],
            ..Default::default()
        },
    );
    assert_eq!(both.unresolved.len(), 1);
    assert_eq!(both.confirmed, [1]);
}

// ---------------------------------------------------------------------------------------------
// 6. Unconfirmed writes, through the engine

#[tokio::test]
async fn writes_without_attributable_confirmation_are_unconfirmed_and_not_baselined() {
    for (label, knob) in [("count-only", 0u8), ("ok-only", 1u8)] {
        let world = World::new(one_way_removing());
        world.src.set(W, movies(1..=5));
        world.dst.set(W, movies([9]));
        world.dst.knobs(|k| {
            k.chunk_size = 2;
            if knob == 0 {
                k.count_only_short = Some(1);
            } else {
                k.bare_ok = true;
            }
        });
        let report = world.sync().await;
        let c = counts(&report, W);
        assert_eq!((c.added, c.unconfirmed, c.unresolved), (0, 5, 0), "{label}: {report:?}");
        assert_eq!(report.pairs[0].status, RunStatus::Partial, "{label}");
        assert!(has_rule(&report, APPLIER_RULE), "{label}: a warning");
        assert_eq!(world.dst.writes().len(), 3, "{label}: chunks of 2");
        assert_eq!(
            world.baseline_keys(Side::Target, W),
            Some(tmdb_keys([9])),
            "{label}: unconfirmed items are not in the target's baseline"
        );
        assert!(world.store.list_blackbox(None).unwrap().is_empty(), "{label}: nor blackboxed");
    }

    // A count that covers each chunk confirms it: the items are baselined.
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=5));
    world.dst.knobs(|k| {
        k.chunk_size = 2;
        k.count_only_short = Some(0);
    });
    let report = world.sync().await;
    assert_eq!((counts(&report, W).added, counts(&report, W).unconfirmed), (5, 0), "{report:?}");
    assert_eq!(world.baseline_keys(Side::Target, W), Some(tmdb_keys(1..=5)));
}

// ---------------------------------------------------------------------------------------------
// 7. Dry runs

#[tokio::test]
async fn a_dry_run_writes_nothing_commits_nothing_and_reports_the_real_plan() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=6));
    world.dst.set(W, movies([5, 6, 7]));

    let engine = world.engine();
    let prepared =
        engine.prepare(&RunOptions { dry_run: true, ..RunOptions::default() }, &world.run_id()).await.unwrap();
    let plan_hash = prepared.plan_hash();
    let dry = engine.sync(&prepared).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(counts(&dry, W).added, 4, "{dry:?}");
    assert_eq!(world.dst.write_count() + world.src.write_count(), 0, "no write call");
    assert_eq!(world.dst.key_set(W), tmdb_keys(5..=7));
    assert_eq!(world.baseline_keys(Side::Source, W), None, "no baseline");
    assert_eq!(world.baseline_keys(Side::Target, W), None, "no baseline");
    assert_eq!(world.run_count(), 0, "no run record");
    assert!(world.store.get(&plan_hash).unwrap().is_none(), "no plan record");

    // With baselines, adds and removals: the dry report is what the real run then does.
    world.sync().await;
    world.src.set(W, movies([1, 2, 3, 10, 11]));
    let runs = world.run_count();
    let (source_baseline, target_baseline) =
        (world.baseline_keys(Side::Source, W), world.baseline_keys(Side::Target, W));
    world.dst.clear_writes();
    let dry = world.dry().await;
    assert_eq!(world.dst.write_count(), 0);
    assert_eq!(world.run_count(), runs);
    assert_eq!(world.baseline_keys(Side::Source, W), source_baseline);
    assert_eq!(world.baseline_keys(Side::Target, W), target_baseline);
    let real = world.sync().await;
    assert!(!real.dry_run);
    assert_eq!(counts(&dry, W), counts(&real, W), "dry {dry:?} vs real {real:?}");
    assert_eq!(counts(&real, W), FeatureCounts { added: 2, removed: 3, ..FeatureCounts::default() });
    assert_eq!(dry.pairs[0].status, real.pairs[0].status);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// For arbitrary small inventories, modes and histories, a dry run sends no write and
    /// commits nothing, and a real run then does what it reported.
    #[test]
    fn dry_runs_never_write(
        earlier in proptest::option::of(proptest::collection::btree_set(1u32..16, 0..12)),
        source in proptest::collection::btree_set(1u32..16, 0..12),
        target in proptest::collection::btree_set(1u32..16, 0..12),
        two_way in any::<bool>(),
        remove in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let features = format!("{{ watchlist: {{ add: true, remove: {remove} }} }}");
            let world = World::new(config(if two_way { "two-way" } else { "one-way" }, &features, "{}"));
            world.src.knobs(|k| k.observed_deletes = true);
            world.dst.knobs(|k| k.observed_deletes = true);
            world.dst.set(W, movies(target.iter().copied()));
            if let Some(earlier) = &earlier {
                world.src.set(W, movies(earlier.iter().copied()));
                world.sync().await;
            }
            world.src.set(W, movies(source.iter().copied()));
            let (src_before, dst_before) = (world.src.keys(W), world.dst.keys(W));
            let (writes, runs) = (world.src.write_count() + world.dst.write_count(), world.run_count());
            let baselines = (world.baseline_keys(Side::Source, W), world.baseline_keys(Side::Target, W));

            let dry = world.dry().await;
            prop_assert_eq!(world.src.write_count() + world.dst.write_count(), writes, "a dry run sent writes");
            prop_assert_eq!(world.run_count(), runs);
            prop_assert_eq!((world.src.keys(W), world.dst.keys(W)), (src_before, dst_before));
            prop_assert_eq!((world.baseline_keys(Side::Source, W), world.baseline_keys(Side::Target, W)), baselines);

            let real = world.sync().await;
            prop_assert_eq!(counts(&dry, W), counts(&real, W));
            Ok(())
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Two-way deletions across different keys

#[tokio::test]
async fn a_two_way_deletion_propagates_across_keys_and_is_not_re_added() {
    let world = World::new(config("two-way", "{ watchlist: { add: true, remove: true } }", "{}"));
    world.src.knobs(|k| k.observed_deletes = true);
    world.dst.knobs(|k| k.observed_deletes = true);
    // Side A knows the film by IMDb only (key imdb:tt0133093); side B by TMDB and IMDb (key
    // tmdb:603). The keys differ, the strong token imdb:tt0133093 is shared.
    let on_a = item(json!({ "type": "movie", "title": "The Matrix", "ids": { "imdb": "tt0133093" } }));
    let on_b = item(json!({ "type": "movie", "title": "The Matrix", "ids": { "tmdb": "603", "imdb": "tt0133093" } }));
    assert_ne!(canonical_key(&on_a), canonical_key(&on_b));
    let mut a = movies([1, 2]);
    a.push(on_a.clone());
    let mut b = movies([3]);
    b.push(on_b.clone());
    world.src.set(W, a);
    world.dst.set(W, b);

    let bootstrap = world.sync().await;
    assert_eq!(counts(&bootstrap, W).removed, 0, "{bootstrap:?}");
    assert_eq!(
        world.src.key_set(W),
        BTreeSet::from(["imdb:tt0133093".into(), "tmdb:1".into(), "tmdb:2".into(), "tmdb:3".into()])
    );
    assert_eq!(
        world.dst.key_set(W),
        BTreeSet::from(["tmdb:603".into(), "tmdb:1".into(), "tmdb:2".into(), "tmdb:3".into()])
    );
    assert!(world.sync().await.nothing_to_do(), "the union converged");

    // Deleted on A.
    world.src.set(W, movies(1..=3));
    world.src.clear_writes();
    world.dst.clear_writes();
    let deletion = world.sync().await;
    assert_eq!(counts(&deletion, W).removed, 1, "{deletion:?}");
    assert_eq!(world.dst.sent_keys("remove"), BTreeSet::from(["tmdb:603".to_owned()]));
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=3));
    let tombstones = world.store.tombstones(PAIR, W).unwrap();
    let tokens: BTreeSet<&str> = tombstones.iter().map(|t| t.token.as_str()).collect();
    assert!(tokens.contains("imdb:tt0133093"), "{tombstones:?}");
    assert!(tombstones.iter().all(|t| t.deleted_on == Side::Source), "{tombstones:?}");

    let third = world.sync().await;
    assert!(third.nothing_to_do(), "{third:?}");
    assert!(world.src.sent_keys("add").is_empty(), "not re-added to A");

    // Even when B shows it again (a stale replica), the tombstone keeps it off A.
    world.dst.set(W, {
        let mut b = movies(1..=3);
        b.push(on_b);
        b
    });
    world.sync().await;
    assert!(!world.src.key_set(W).contains("imdb:tt0133093"), "re-added to A: {:?}", world.src.key_set(W));
    assert!(!world.src.sent_keys("add").contains("tmdb:603"));
}

// ---------------------------------------------------------------------------------------------
// 9. History: no re-send, no duplicate plays

#[tokio::test]
async fn history_adds_are_not_re_sent_and_plays_are_never_duplicated() {
    let world = World::new(one_way("{ history: { add: true } }"));
    let h = Feature::History;
    world.src.set(h, vec![play(1, 1), play(1, 5), play(2, 3)]);
    world.dst.set(h, vec![play(3, 2)]);

    let first = world.sync().await;
    assert_eq!(counts(&first, h).added, 3, "{first:?}");
    assert!(world.sync().await.nothing_to_do());

    // New plays; the target applies the add, then answers with a retryable error.
    world.src.set(h, vec![play(1, 1), play(1, 5), play(2, 3), play(2, 9), play(4, 9)]);
    world.dst.knobs(|k| k.applied_then_error = 1);
    world.dst.clear_writes();
    let failed = world.sync().await;
    let adds: Vec<Call> = world.dst.writes().into_iter().filter(|c| c.op == "add").collect();
    assert_eq!(adds.len(), 1, "a non-idempotent history add is not re-sent: {adds:?}");
    assert!(adds.iter().all(|c| c.feature == h && !c.dry_run));
    assert_eq!(counts(&failed, h).unresolved, 2, "{failed:?}");
    assert_eq!(counts(&failed, h).added, 0);

    let next = world.sync().await;
    assert_eq!(counts(&next, h).added, 0, "the applied plays are not added again: {next:?}");
    let held = world.dst.keys(h);
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(held.len(), unique.len(), "every play exactly once: {held:?}");
    assert_eq!(held.len(), 6);
    assert!(world.store.unresolved(PAIR, h).unwrap().is_empty(), "resolved by the fresh snapshot");

    // A watchlist add (an idempotent upsert) failing the same way is retried.
    let world = World::new(one_way("{ watchlist: { add: true } }"));
    world.src.set(W, movies([1]));
    world.dst.knobs(|k| k.applied_then_error = 1);
    let retried = world.sync().await;
    assert_eq!(world.dst.writes().len(), 2, "retried once");
    assert_eq!(counts(&retried, W).added, 1, "{retried:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. Plan, approve, apply

fn refused(result: Result<RunReport, RunError>, what: &str) {
    match result {
        Err(RunError::Refused(message)) => assert!(message.contains(what), "expected `{what}`: {message}"),
        other => panic!("expected a refusal ({what}), got {other:?}"),
    }
}

#[tokio::test]
async fn plans_must_be_approved_fresh_untampered_and_run_once() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=3));
    let engine = world.engine();

    let prepared = engine.prepare(&RunOptions::default(), &world.run_id()).await.unwrap();
    assert_eq!(engine.record_for_approval(&prepared, false).unwrap(), None);
    let file: PlanFile = serde_json::from_value(serde_json::to_value(prepared.plan_file()).unwrap()).unwrap();
    refused(engine.apply(&file).await, "not approved");
    assert_eq!(world.dst.write_count(), 0);

    engine.approve(&file).unwrap();
    let applied = engine.apply(&file).await.unwrap();
    assert_eq!(counts(&applied, W).added, 3, "{applied:?}");
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=3));
    assert_eq!(world.baseline_keys(Side::Source, W), Some(tmdb_keys(1..=3)));

    world.dst.clear_writes();
    refused(engine.apply(&file).await, "already executed");
    assert_eq!(world.dst.write_count(), 0);

    // Stale: the source changed after planning (and approval).
    world.src.set(W, movies(1..=5));
    let prepared = engine.prepare(&RunOptions::default(), &world.run_id()).await.unwrap();
    assert!(engine.record_for_approval(&prepared, true).unwrap().is_some());
    let file = prepared.plan_file();
    world.src.set(W, movies(1..=6));
    refused(engine.apply(&file).await, "stale");
    assert_eq!(world.dst.write_count(), 0);
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=3));

    // Tampered: a step edited after planning (an add swapped for another item).
    world.src.set(W, movies(1..=5));
    let prepared = engine.prepare(&RunOptions::default(), &world.run_id()).await.unwrap();
    engine.record_for_approval(&prepared, true).unwrap();
    let mut tampered = prepared.plan_file();
    let adds = &mut tampered.steps.values_mut().next().unwrap().to_target.adds;
    assert_eq!(adds.len(), 2);
    adds[0].item.ids.insert("tmdb", "666");
    assert!(matches!(engine.apply(&tampered).await, Err(RunError::InvalidPlan(_))));
    assert!(matches!(engine.approve(&tampered), Err(RunError::InvalidPlan(_))));
    // Or the step itself (its description is part of what was approved).
    let mut tampered = prepared.plan_file();
    tampered.plan.steps[0].description.push_str(" and more");
    assert!(matches!(engine.apply(&tampered).await, Err(RunError::InvalidPlan(_))));
    // Or a step's writes dropped from the file.
    let mut tampered = prepared.plan_file();
    tampered.steps.clear();
    assert!(matches!(engine.apply(&tampered).await, Err(RunError::InvalidPlan(_))));
    let mut tampered = prepared.plan_file();
    tampered.intent.params["options"] = json!({ "allow_mass_delete": true });
    assert!(matches!(engine.apply(&tampered).await, Err(RunError::InvalidPlan(_))));
    assert_eq!(world.dst.write_count(), 0);

    // The untampered file still applies.
    let applied = engine.apply(&prepared.plan_file()).await.unwrap();
    assert_eq!(counts(&applied, W).added, 2);
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=5));
}

// ---------------------------------------------------------------------------------------------
// 11. Health

#[tokio::test]
async fn a_down_target_gets_no_writes_and_the_run_is_remembered() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=5));
    world.sync().await;

    // The source deletes 5 and adds 6 while the target is down.
    world.src.set(W, movies([1, 2, 3, 4, 6]));
    world.dst.knobs(|k| k.health = HealthStatus::Down);
    world.dst.clear_writes();
    let down = world.sync().await;
    assert_eq!(world.dst.write_count(), 0, "no write call");
    assert_eq!(counts(&down, W).unresolved, 1, "{down:?}");
    assert_eq!(counts(&down, W).added + counts(&down, W).removed, 0);
    let unresolved = world.store.unresolved(PAIR, W).unwrap();
    assert_eq!(unresolved.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["tmdb:6"], "{unresolved:?}");
    assert_eq!(
        world.baseline_keys(Side::Source, W),
        Some(tmdb_keys(1..=5)),
        "the source baseline is not advanced: the deletion of tmdb:5 stays observable"
    );

    world.dst.knobs(|k| k.health = HealthStatus::Ok);
    let up = world.sync().await;
    assert_eq!((counts(&up, W).added, counts(&up, W).removed), (1, 1), "{up:?}");
    assert_eq!(world.dst.key_set(W), tmdb_keys([1, 2, 3, 4, 6]));
    assert!(world.store.unresolved(PAIR, W).unwrap().is_empty());
}

#[tokio::test]
async fn an_auth_failed_side_skips_the_pair() {
    for side in [Side::Source, Side::Target] {
        let world = World::new(one_way_removing());
        world.src.set(W, movies(1..=3));
        let failing = if side == Side::Source { &world.src } else { &world.dst };
        failing.knobs(|k| k.health = HealthStatus::AuthFailed);
        let report = world.sync().await;
        assert_eq!(report.pairs[0].status, RunStatus::Skipped, "{side}: {report:?}");
        assert!(has_rule(&report, cw_orchestrator::guards::HEALTH_RULE));
        assert_eq!(world.dst.write_count() + world.src.write_count(), 0, "{side}");
        assert_eq!(world.baseline_keys(Side::Source, W), None, "{side}");
        assert!(!report.nothing_to_do(), "a skipped pair is not `nothing to do`");
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Read-only target

#[tokio::test]
async fn a_read_only_target_gets_no_writes() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=3));
    world.dst.knobs(|k| k.read_only = true);
    let report = world.sync().await;
    assert_eq!(world.dst.write_count(), 0, "writes are held, not sent");
    assert!(has_rule(&report, CAPABILITY_RULE), "{report:?}");
    assert_eq!(counts(&report, W).unresolved, 3, "{report:?}");
    assert_eq!(counts(&report, W).added, 0);
    assert_eq!(world.store.unresolved(PAIR, W).unwrap().len(), 3);

    // A target that turns read-only after a sync: a held removal keeps the deletion observable.
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=3));
    world.sync().await;
    world.src.set(W, movies(1..=2));
    world.dst.knobs(|k| k.read_only = true);
    world.dst.clear_writes();
    let held = world.sync().await;
    assert_eq!(world.dst.write_count(), 0);
    assert_eq!((counts(&held, W).removed, counts(&held, W).unresolved), (0, 1), "{held:?}");
    assert_eq!(world.baseline_keys(Side::Source, W), Some(tmdb_keys(1..=3)), "the source baseline is kept");
    world.dst.knobs(|k| k.read_only = false);
    let writable = world.sync().await;
    assert_eq!(counts(&writable, W).removed, 1, "{writable:?}");
    assert_eq!(world.dst.key_set(W), tmdb_keys(1..=2));
}

// ---------------------------------------------------------------------------------------------
// 13. Verify after write

#[tokio::test]
async fn verify_after_write_downgrades_confirmations_not_seen_live() {
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=3));
    world.dst.knobs(|k| {
        k.verify_after_write = true;
        k.lost = tmdb_keys([2]);
    });
    let report = world.sync().await;
    let c = counts(&report, W);
    assert_eq!((c.added, c.unresolved), (2, 1), "{report:?}");
    assert!(
        findings(&report).iter().any(|f| f.rule_id == APPLIER_RULE && f.message.contains("not seen")),
        "{report:?}"
    );
    assert_eq!(world.dst.key_set(W), tmdb_keys([1, 3]));
    assert_eq!(world.baseline_keys(Side::Target, W), Some(tmdb_keys([1, 3])), "baselined as seen live");
    let unresolved = world.store.unresolved(PAIR, W).unwrap();
    assert_eq!(unresolved.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["tmdb:2"]);

    // Without verify-after-write the same provider's word is taken (the contrast that shows the
    // downgrade is the verification's doing).
    let world = World::new(one_way_removing());
    world.src.set(W, movies(1..=3));
    world.dst.knobs(|k| k.lost = tmdb_keys([2]));
    let report = world.sync().await;
    assert_eq!(counts(&report, W).added, 3, "{report:?}");
}
