//! The inventory kit: what every media inventory provider (the contract of seed 000) must do.
//!
//! Every provider operation goes through a [`pal::Pipeline`] from [`kit_pipeline`] (per-attempt
//! timeout, retries of retryable errors, one metrics event per call), exactly as the sync engine
//! will call it; the few raw observations (the provider's own error for a 429 or a 5xx) are
//! direct calls bounded by the policy's total deadline. Checks, in [`INVENTORY_CHECKS`] order:
//!
//! - `describe.stable_id` — `name()` is non-empty, made of `[A-Za-z0-9_.-]`, and the same on
//!   every call and every build;
//! - `describe.label` — `label()` is non-empty and stable;
//! - `describe.features_consistent` — at least one feature; `features()` and `capabilities()`
//!   stable; `chunk_size` ≥ 1; `checkpoint: true` ⇒ `activities()` has a checkpoint for every
//!   declared feature; `delta` ⇒ `checkpoint: true`; an undeclared feature is refused with an
//!   `unsupported` error; `read_only` ⇒ `add` and `remove` of every declared feature fail with
//!   class `unsupported` and make no vendor write (a read-only provider that accepts writes
//!   fails);
//! - `describe.config_schema` — the harness gives a JSON Schema (an object schema with
//!   properties) of the adapter's settings; none **fails** (the contract requires one);
//! - `health.valid` / `health.invalid_credentials` / `health.unreachable` — `ok`,
//!   `auth_failed`, `down` ([`Scenario::Healthy`], [`Scenario::InvalidCredentials`],
//!   [`Scenario::Unreachable`]);
//! - `snapshot.items_typed_with_ids` — every item has at least one id of a known namespace
//!   (seasons and episodes: or show ids and their numbers), seasons have a season number,
//!   episodes season and episode numbers;
//! - `snapshot.unique_keys` — canonical keys ([`pal::keys::canonical_key`]) are unique
//!   (history: per play, `<key>@<watched_at>`);
//! - `snapshot.stable_hash` — two snapshots of an unchanged inventory have the same
//!   [`admit_core::snapshot_hash`] (over the items' JSON);
//! - `snapshot.delta_since_checkpoint` / `snapshot.future_checkpoint_empty` — delta providers
//!   only: positioned at a checkpoint from `activities()` (see
//!   [`InventoryHarness::build_since`]), `build_index` returns exactly what changed since;
//!   positioned at [`FUTURE_CHECKPOINT`], nothing;
//! - `writes.add_confirms_keys` — providers declaring `confirms_keys`: `add` returns
//!   `confirmed_keys` naming every item (its canonical key, another of its keys, or a strong
//!   token);
//! - `writes.add_idempotent` — adding the same items again changes no snapshot entry count;
//! - `writes.remove_idempotent` — `remove` takes the items out and nothing else; removing them
//!   again succeeds and changes nothing;
//! - `writes.added_visible` — added items appear in the next snapshot (ratings: with their
//!   rating);
//! - `writes.dry_run_no_writes` — dry-run `add` and `remove` make zero vendor writes (the
//!   probe), leave the snapshot as it was and say `dry_run: true`;
//! - `writes.unresolved_have_ids` — every unresolved item carries ids; the harness's
//!   unresolvable item is reported unresolved, not confirmed, and does not fail the call;
//! - `writes.counts_reported` — no write returns `{ok: true}` without `confirmed_keys` or
//!   `confirmed`;
//! - `errors.rate_limited_retryable` — a 429 ([`RATE_LIMITED`]) is a retryable `rate_limited`
//!   error carrying the Retry-After, and the pipeline call succeeds within the cap after
//!   waiting it;
//! - `errors.server_error_retryable` — a 5xx ([`SERVER_ERROR`]) is retryable and the pipeline
//!   call succeeds within the cap;
//! - `errors.unauthorized_not_retried` — a 401 is a permanent `auth_failed` error after one
//!   pipeline attempt and one vendor request (a provider retrying internally fails);
//! - `errors.bad_request_not_retried` — a 400 ([`Scenario::Rejecting`]) is permanent, one
//!   attempt, one vendor request;
//! - `errors.hang_times_out` — a hanging vendor gives a `timeout` error within the policy's
//!   total deadline;
//! - `errors.no_secret_in_errors` — the harness's secret appears in no provider error, health
//!   report or provider `Debug` output;
//! - `metrics.event_fields` — one metrics event per pipeline call, each with capability
//!   `inventory`, the provider's name as adapter, the operation called, 1 ≤ attempts ≤ cap,
//!   an outcome consistent with its error class, and a latency within the total deadline.
//!
//! Per-feature checks run for every declared feature and are recorded once, with every
//! feature's failure (`<feature>: …`). A check no feature could exercise (no sample items, an
//! empty snapshot, a scenario the harness cannot stage) is not applicable, with the reason.
//!
//! A provider declaring `read_only` ([`InventoryCapabilities::read_only`]) cannot be written to:
//! every `writes.*` check and the delta checks (which need a write) are not applicable with the
//! reason [`READ_ONLY`], and `describe.features_consistent` checks that its writes are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use admit_core::{DigestAlgorithm, ErrorClass, ErrorCode, ProviderError, ProviderPhase, snapshot_hash};
use pal::inventory::{
    Activities, Feature, Features, IndexSemantics, InventoryCapabilities, InventoryItem, InventoryProvider, ItemType,
    WriteResult,
};
use pal::keys;
use pal::pipeline::Outcome;
use pal::{CallSpec, CallTarget, Capability, HealthReport, HealthStatus, MetricsRecorder, Pipeline, Redactor};
use pal::{RetryPolicy, Secret};
use serde_json::Value;
use tokio::time::Instant;

use crate::report::{Checks, Kit, KitReport};
use crate::scenario::{Scenario, VendorProbe, kit_pipeline, kit_policy};

/// Check names of the inventory kit, in order.
pub const INVENTORY_CHECKS: [&str; 26] = [
    "describe.stable_id",
    "describe.label",
    "describe.features_consistent",
    "describe.config_schema",
    "health.valid",
    "health.invalid_credentials",
    "health.unreachable",
    "snapshot.items_typed_with_ids",
    "snapshot.unique_keys",
    "snapshot.stable_hash",
    "snapshot.delta_since_checkpoint",
    "snapshot.future_checkpoint_empty",
    "writes.add_confirms_keys",
    "writes.add_idempotent",
    "writes.remove_idempotent",
    "writes.added_visible",
    "writes.dry_run_no_writes",
    "writes.unresolved_have_ids",
    "writes.counts_reported",
    "errors.rate_limited_retryable",
    "errors.server_error_retryable",
    "errors.unauthorized_not_retried",
    "errors.bad_request_not_retried",
    "errors.hang_times_out",
    "errors.no_secret_in_errors",
    "metrics.event_fields",
];

/// The rate-limit scenario the kit stages: two 429s with a 200 ms Retry-After, then success
/// (within the kit policy's cap of 3 attempts).
pub const RATE_LIMITED: Scenario = Scenario::RateLimited { times: 2, retry_after_ms: 200 };

/// The server-error scenario the kit stages: two 5xx, then success.
pub const SERVER_ERROR: Scenario = Scenario::ServerError { times: 2 };

/// The checkpoint after every change: a delta provider positioned here returns nothing.
pub const FUTURE_CHECKPOINT: &str = "9999-12-31T23:59:59Z";

/// Why the checks that need a write do not apply to a provider declaring `read_only`.
pub const READ_ONLY: &str = "read-only provider";

/// A provider under test and the probe of its vendor.
pub type BuiltInventory = (Arc<dyn InventoryProvider>, Arc<dyn VendorProbe>);

/// What the kit needs from a provider crate to test its inventory provider.
pub trait InventoryHarness: Send + Sync {
    /// The provider crate, e.g. `providers-mock`.
    fn provider_crate(&self) -> &str;

    /// A provider against a vendor (emulator) in `scenario`, with the probe of that vendor, or
    /// `None` when the emulator cannot stage the scenario (the checks needing it are then not
    /// applicable, naming the scenario). Every call builds a fresh vendor state, except that
    /// [`InventoryHarness::build_since`] reuses the state of the latest healthy build.
    /// A healthy vendor holds some items in each feature (the snapshot checks need them) and
    /// none of [`InventoryHarness::sample_items`].
    fn build(&self, scenario: Scenario) -> Option<BuiltInventory>;

    /// Delta providers only: a provider of the **same vendor state as the latest
    /// `build(Scenario::Healthy)`** whose `build_index` returns what changed since
    /// `checkpoints` (per feature, as `activities()` reported them, or [`FUTURE_CHECKPOINT`]).
    /// `None` (the default): the delta checks are not applicable.
    fn build_since(&self, checkpoints: &Activities) -> Option<Arc<dyn InventoryProvider>> {
        let _ = checkpoints;
        None
    }

    /// The JSON Schema of the adapter's settings. `None` fails `describe.config_schema`: the
    /// contract requires one.
    fn config_schema(&self) -> Option<Value>;

    /// Items the vendor can resolve, not in a healthy vendor's inventory, for the write checks
    /// (at most `chunk_size` are used). Empty: the write checks of `feature` do not apply.
    /// A read-only provider is offered these (or a probe item) to show it refuses writes.
    fn sample_items(&self, feature: Feature) -> Vec<InventoryItem>;

    /// An item with ids the vendor will report as unresolved. `None`: not applicable.
    fn unresolvable_item(&self, feature: Feature) -> Option<InventoryItem>;

    /// The credential in the adapter's settings, which must never appear in its errors.
    /// `None`: `errors.no_secret_in_errors` is not applicable.
    fn secret(&self) -> Option<Secret>;
}

// -------------------------------------------------------------------------------------------
// Verdicts

#[derive(Debug)]
enum Verdict {
    Pass,
    Fail(String),
    NotApplicable(String),
}

impl From<Result<(), String>> for Verdict {
    fn from(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Verdict::Pass,
            Err(error) => Verdict::Fail(error),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    passed: bool,
    failures: Vec<String>,
    not_applicable: Vec<String>,
}

/// Verdicts by check, aggregated over features, recorded in [`INVENTORY_CHECKS`] order.
#[derive(Debug, Default)]
struct Board {
    tallies: BTreeMap<&'static str, Tally>,
}

impl Board {
    fn add(&mut self, check: &'static str, verdict: impl Into<Verdict>) {
        let tally = self.tallies.entry(check).or_default();
        match verdict.into() {
            Verdict::Pass => tally.passed = true,
            Verdict::Fail(error) => tally.failures.push(error),
            Verdict::NotApplicable(reason) => {
                if !tally.not_applicable.contains(&reason) {
                    tally.not_applicable.push(reason);
                }
            }
        }
    }

    fn feature(&mut self, check: &'static str, feature: Feature, verdict: impl Into<Verdict>) {
        let verdict = match verdict.into() {
            Verdict::Fail(error) => Verdict::Fail(format!("{feature}: {error}")),
            other => other,
        };
        self.add(check, verdict);
    }

    fn all(&mut self, checks: &[&'static str], verdict: &Verdict) {
        for check in checks {
            self.add(
                check,
                match verdict {
                    Verdict::Pass => Verdict::Pass,
                    Verdict::Fail(e) => Verdict::Fail(e.clone()),
                    Verdict::NotApplicable(r) => Verdict::NotApplicable(r.clone()),
                },
            );
        }
    }

    fn finish(mut self, checks: &mut Checks) {
        for name in INVENTORY_CHECKS {
            let tally = self.tallies.remove(name).unwrap_or_default();
            if !tally.failures.is_empty() {
                checks.record(name, Err(tally.failures.join("; ")));
            } else if tally.passed {
                checks.record(name, Ok(()));
            } else if tally.not_applicable.is_empty() {
                checks.not_applicable(name, "not evaluated");
            } else {
                checks.not_applicable(name, tally.not_applicable.join("; "));
            }
        }
    }
}

fn na(reason: impl Into<String>) -> Verdict {
    Verdict::NotApplicable(reason.into())
}

fn cannot_stage(scenario: Scenario) -> Verdict {
    na(format!("the harness cannot stage scenario {scenario:?}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// -------------------------------------------------------------------------------------------
// Calls

/// One pipeline call's result, attempts (calls of the provider) and wall time.
#[derive(Debug)]
struct Called<T> {
    result: Result<T, ProviderError>,
    attempts: u32,
    elapsed: Duration,
}

type Snapshot = Result<Vec<InventoryItem>, ProviderError>;
type Written = Result<WriteResult, ProviderError>;

struct Run<'h> {
    harness: &'h dyn InventoryHarness,
    pipeline: Arc<Pipeline>,
    recorder: Arc<MetricsRecorder>,
    policy: RetryPolicy,
    /// Operations called through the pipeline, in order.
    calls: Mutex<Vec<&'static str>>,
    /// Provider errors, health reports and provider `Debug` outputs: where a secret must
    /// never appear.
    exposures: Mutex<Vec<String>>,
    /// Provider errors seen.
    errors_seen: AtomicU32,
}

impl Run<'_> {
    fn build(&self, scenario: Scenario) -> Option<BuiltInventory> {
        let built = self.harness.build(scenario)?;
        lock(&self.exposures).push(format!("{:?}", built.0));
        Some(built)
    }

    fn build_since(&self, checkpoints: &Activities) -> Option<Arc<dyn InventoryProvider>> {
        let provider = self.harness.build_since(checkpoints)?;
        lock(&self.exposures).push(format!("{provider:?}"));
        Some(provider)
    }

    fn saw_error(&self, error: &ProviderError) {
        self.errors_seen.fetch_add(1, Ordering::SeqCst);
        lock(&self.exposures).push(format!("{error:?} / {error}"));
    }

    /// Calls `op` through the pipeline; `f` makes one attempt.
    async fn call<T, F, Fut>(&self, provider: &Arc<dyn InventoryProvider>, op: &'static str, f: F) -> Called<T>
    where
        T: Send,
        F: Fn(Arc<dyn InventoryProvider>) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ProviderError>> + Send,
    {
        let started = Instant::now();
        let spec = match Capability::Inventory.op(op) {
            Ok(spec) => CallSpec::new(CallTarget::new(Capability::Inventory, provider.name()), spec),
            Err(message) => {
                let error = ProviderError::new("inventory", ProviderPhase::Describe, message);
                return Called {
                    result: Err(error.with_code(ErrorCode::Internal)),
                    attempts: 0,
                    elapsed: started.elapsed(),
                };
            }
        };
        lock(&self.calls).push(op);
        let attempts = AtomicU32::new(0);
        let result = self
            .pipeline
            .call(&spec, || {
                attempts.fetch_add(1, Ordering::SeqCst);
                let attempt = f(provider.clone());
                async move {
                    let result = attempt.await;
                    if let Err(error) = &result {
                        self.saw_error(error);
                    }
                    result
                }
            })
            .await;
        Called { result, attempts: attempts.load(Ordering::SeqCst), elapsed: started.elapsed() }
    }

    /// A direct call (no pipeline), bounded by the total deadline.
    async fn direct<T>(&self, call: impl Future<Output = Result<T, ProviderError>>) -> Result<T, ProviderError> {
        let result = match tokio::time::timeout(self.policy.total_deadline, call).await {
            Ok(result) => result,
            Err(_) => {
                let message = format!("no answer within {} ms", self.policy.total_deadline.as_millis());
                return Err(ProviderError::retryable("inventory", ProviderPhase::Snapshot, message)
                    .with_code(ErrorCode::Timeout));
            }
        };
        if let Err(error) = &result {
            self.saw_error(error);
        }
        result
    }

    async fn name(&self, provider: &Arc<dyn InventoryProvider>) -> Result<String, ProviderError> {
        self.call(provider, "name", |p| async move { Ok(p.name().to_owned()) }).await.result
    }

    async fn label(&self, provider: &Arc<dyn InventoryProvider>) -> Result<String, ProviderError> {
        self.call(provider, "label", |p| async move { Ok(p.label().to_owned()) }).await.result
    }

    async fn features(&self, provider: &Arc<dyn InventoryProvider>) -> Result<Features, ProviderError> {
        self.call(provider, "features", |p| async move { Ok(p.features()) }).await.result
    }

    async fn capabilities(
        &self,
        provider: &Arc<dyn InventoryProvider>,
    ) -> Result<InventoryCapabilities, ProviderError> {
        self.call(provider, "capabilities", |p| async move { Ok(p.capabilities()) }).await.result
    }

    async fn health(&self, provider: &Arc<dyn InventoryProvider>) -> Result<HealthReport, ProviderError> {
        let result = self.call(provider, "health", |p| async move { Ok(p.health().await) }).await.result;
        if let Ok(report) = &result {
            lock(&self.exposures).push(serde_json::to_string(report).unwrap_or_default());
        }
        result
    }

    async fn activities(&self, provider: &Arc<dyn InventoryProvider>) -> Result<Activities, ProviderError> {
        self.call(provider, "activities", |p| async move { p.activities().await }).await.result
    }

    async fn snapshot_call(
        &self,
        provider: &Arc<dyn InventoryProvider>,
        feature: Feature,
    ) -> Called<Vec<InventoryItem>> {
        self.call(provider, "build_index", |p| async move { p.build_index(feature).await }).await
    }

    async fn snapshot(&self, provider: &Arc<dyn InventoryProvider>, feature: Feature) -> Snapshot {
        self.snapshot_call(provider, feature).await.result
    }

    async fn add(
        &self,
        provider: &Arc<dyn InventoryProvider>,
        items: &[InventoryItem],
        feature: Feature,
        dry_run: bool,
    ) -> Written {
        self.call(provider, "add", |p| {
            let items = items.to_vec();
            async move { p.add(items, feature, dry_run).await }
        })
        .await
        .result
    }

    async fn remove(
        &self,
        provider: &Arc<dyn InventoryProvider>,
        items: &[InventoryItem],
        feature: Feature,
        dry_run: bool,
    ) -> Written {
        self.call(provider, "remove", |p| {
            let items = items.to_vec();
            async move { p.remove(items, feature, dry_run).await }
        })
        .await
        .result
    }
}

// -------------------------------------------------------------------------------------------
// Item helpers

/// `<canonical key> "<title>"`, for messages.
fn describe_item(item: &InventoryItem) -> String {
    match &item.title {
        Some(title) => format!("{} \"{title}\"", keys::canonical_key(item)),
        None => keys::canonical_key(item),
    }
}

fn list(items: &[&InventoryItem]) -> String {
    items.iter().map(|i| describe_item(i)).collect::<Vec<_>>().join(", ")
}

/// The snapshot entry key: the canonical key, per play for history.
fn entry_key(feature: Feature, item: &InventoryItem) -> String {
    let key = keys::canonical_key(item);
    if feature == Feature::History { format!("{key}@{}", item.watched_at.as_deref().unwrap_or_default()) } else { key }
}

fn multiset<'a>(feature: Feature, items: impl IntoIterator<Item = &'a InventoryItem>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(entry_key(feature, item)).or_insert(0) += 1;
    }
    counts
}

/// Whether a snapshot entry is the sample item (history: the same play).
fn matches(feature: Feature, sample: &InventoryItem, entry: &InventoryItem) -> bool {
    keys::same_item(sample, entry) && (feature != Feature::History || sample.watched_at == entry.watched_at)
}

fn count(feature: Feature, sample: &InventoryItem, snapshot: &[InventoryItem]) -> usize {
    snapshot.iter().filter(|entry| matches(feature, sample, entry)).count()
}

fn snapshot_of<'a>(snapshot: &'a Snapshot, what: &str) -> Result<&'a [InventoryItem], String> {
    snapshot.as_deref().map_err(|e| format!("{what} failed: {e}"))
}

fn accepted<'a>(written: &'a Written, what: &str) -> Result<&'a WriteResult, String> {
    match written {
        Err(e) => Err(format!("{what} failed: {e}")),
        Ok(result) if !result.ok => Err(format!("{what} returned ok: false")),
        Ok(result) => Ok(result),
    }
}

fn hash(items: &[InventoryItem]) -> Result<admit_core::Digest, String> {
    let values =
        items.iter().map(serde_json::to_value).collect::<Result<Vec<Value>, _>>().map_err(|e| e.to_string())?;
    snapshot_hash(&values, DigestAlgorithm::Blake3).map_err(|e| e.to_string())
}

/// What is wrong with a snapshot item, if anything.
fn item_problem(item: &InventoryItem) -> Option<String> {
    let ids = keys::normalize_ids(item);
    let has_id = keys::ID_NAMESPACES.iter().any(|ns| ids.contains_key(ns));
    let numbered = keys::fragment(item).is_some();
    let has_show = !keys::normalize_show_ids(item).is_empty();
    match item.item_type {
        ItemType::Season if item.season.is_none() => Some("a season without a season number".to_owned()),
        ItemType::Episode if !numbered => Some("an episode without season and episode numbers".to_owned()),
        ItemType::Season | ItemType::Episode if !has_id && !has_show => Some("no ids and no show ids".to_owned()),
        ItemType::Movie | ItemType::Show if !has_id => Some("no ids".to_owned()),
        _ => None,
    }
}

fn join_limited(problems: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if problems.len() > SHOWN {
        let _ = write!(text, "; and {} more", problems.len() - SHOWN);
    }
    text
}

fn problems_verdict(problems: Vec<String>) -> Verdict {
    if problems.is_empty() { Verdict::Pass } else { Verdict::Fail(join_limited(&problems)) }
}

// -------------------------------------------------------------------------------------------
// The kit

/// What the healthy provider declared.
#[derive(Debug)]
struct Declared {
    name: String,
    features: Vec<Feature>,
    capabilities: InventoryCapabilities,
}

/// Runs the inventory kit.
pub async fn run_inventory_kit(harness: &dyn InventoryHarness) -> KitReport {
    let (pipeline, recorder) = kit_pipeline();
    let run = Run {
        harness,
        pipeline,
        recorder,
        policy: kit_policy(),
        calls: Mutex::default(),
        exposures: Mutex::default(),
        errors_seen: AtomicU32::new(0),
    };
    let mut board = Board::default();
    let mut checks = Checks::new();
    let Some((provider, _)) = run.build(Scenario::Healthy) else {
        board.all(&INVENTORY_CHECKS, &Verdict::Fail("the harness cannot build a healthy provider".to_owned()));
        board.finish(&mut checks);
        return checks.into_report(Kit::Inventory, harness.provider_crate(), "inventory", "");
    };

    let declared = describe(&run, &mut board, &provider).await;
    health(&run, &mut board, &provider).await;
    snapshots(&run, &mut board, &provider, &declared).await;
    delta(&run, &mut board, &declared).await;
    writes(&run, &mut board, &declared).await;
    errors(&run, &mut board, &declared).await;
    secrets(&run, &mut board);
    metrics(&run, &mut board, &declared);

    for event in run.recorder.events() {
        checks.add_metrics(event.latency_ms, u64::from(event.attempts));
    }
    board.finish(&mut checks);
    checks.into_report(Kit::Inventory, harness.provider_crate(), "inventory", &declared.name)
}

async fn describe(run: &Run<'_>, board: &mut Board, provider: &Arc<dyn InventoryProvider>) -> Declared {
    let first = run.name(provider).await;
    let second = run.name(provider).await;
    let rebuilt = match run.build(Scenario::Healthy) {
        Some((other, _)) => Some(run.name(&other).await),
        None => None,
    };
    let name = first.as_ref().cloned().unwrap_or_default();
    board.add(
        "describe.stable_id",
        (|| {
            let first = first.as_ref().map_err(|e| format!("name() failed: {e}"))?;
            if first.is_empty() {
                return Err("name() is empty".to_owned());
            }
            if !first.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
                return Err(format!("name() `{first}` has characters outside [A-Za-z0-9_.-]"));
            }
            match &second {
                Ok(again) if again == first => {}
                other => return Err(format!("name() changed between calls: `{first}`, then {other:?}")),
            }
            match &rebuilt {
                Some(Ok(again)) if again != first => {
                    Err(format!("name() differs between two builds: `{first}` and `{again}`"))
                }
                Some(Err(e)) => Err(format!("name() of a second build failed: {e}")),
                _ => Ok(()),
            }
        })(),
    );

    let labels = (run.label(provider).await, run.label(provider).await);
    board.add(
        "describe.label",
        match labels {
            (Ok(a), Ok(b)) if a.trim().is_empty() => Err(format!("label() is empty ({a:?}, then {b:?})")),
            (Ok(a), Ok(b)) if a != b => Err(format!("label() changed between calls: {a:?}, then {b:?}")),
            (Ok(_), Ok(_)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(format!("label() failed: {e}")),
        },
    );

    let (features, features_again) = (run.features(provider).await, run.features(provider).await);
    let (capabilities, capabilities_again) = (run.capabilities(provider).await, run.capabilities(provider).await);
    let declared = Declared {
        name,
        features: features.as_ref().map(Features::list).unwrap_or_default(),
        capabilities: capabilities.as_ref().cloned().unwrap_or_default(),
    };
    let mut problems = Vec::new();
    if features.as_ref().ok() != features_again.as_ref().ok() {
        problems.push(format!("features() changed between calls: {features:?}, then {features_again:?}"));
    }
    if capabilities.as_ref().ok() != capabilities_again.as_ref().ok() {
        problems.push(format!("capabilities() changed between calls: {capabilities:?}, then {capabilities_again:?}"));
    }
    if declared.features.is_empty() {
        problems.push("declares no feature".to_owned());
    }
    let caps = &declared.capabilities;
    if caps.chunk_size == 0 {
        problems.push("capabilities.chunk_size is 0".to_owned());
    }
    if caps.index_semantics == IndexSemantics::Delta && !caps.checkpoint {
        problems.push("delta index semantics need checkpoints, but capabilities.checkpoint is false".to_owned());
    }
    if caps.checkpoint {
        match run.activities(provider).await {
            Err(e) => problems.push(format!("declares checkpoints but activities() failed: {e}")),
            Ok(activities) => {
                let missing: Vec<&str> = declared
                    .features
                    .iter()
                    .map(|f| f.as_str())
                    .filter(|f| activities.get(*f).is_none_or(|c| c.trim().is_empty()))
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "declares checkpoints but activities() has none for {} (got {activities:?})",
                        missing.join(", ")
                    ));
                }
            }
        }
    }
    if caps.read_only {
        problems.extend(read_only_problems(run, &declared).await);
    }
    for feature in Feature::ALL.into_iter().filter(|f| !declared.features.contains(f)) {
        match run.snapshot(provider, feature).await {
            Ok(items) => problems.push(format!(
                "serves the undeclared feature `{feature}` ({} items) instead of refusing it as unsupported",
                items.len()
            )),
            Err(e) if e.class != ErrorClass::Unsupported => problems.push(format!(
                "the undeclared feature `{feature}` fails with class {:?} instead of unsupported: {e}",
                e.class
            )),
            Err(_) => {}
        }
    }
    board.add("describe.features_consistent", problems_verdict(problems));

    board.add(
        "describe.config_schema",
        match run.harness.config_schema() {
            None => {
                Err("the harness gives no JSON Schema of the adapter's settings (the contract requires one)".to_owned())
            }
            Some(schema) => match schema.as_object() {
                None => Err(format!("the settings schema is not a JSON object: {schema}")),
                Some(object) if object.get("type").and_then(Value::as_str) != Some("object") => {
                    Err(format!("the settings schema's type is {:?}, not \"object\"", object.get("type")))
                }
                Some(object) if !object.get("properties").is_some_and(Value::is_object) => {
                    Err("the settings schema has no `properties`".to_owned())
                }
                Some(_) => Ok(()),
            },
        },
    );
    declared
}

/// An item for a write a read-only provider must refuse (when the harness gives no samples).
fn probe_item(feature: Feature) -> InventoryItem {
    let item = InventoryItem {
        title: Some("Conformance probe".to_owned()),
        year: Some(2000),
        ids: [("tmdb".to_owned(), "1".to_owned())].into(),
        ..InventoryItem::default()
    };
    match feature {
        Feature::Ratings => InventoryItem { rating: Some(5), ..item },
        Feature::History => InventoryItem { watched_at: Some("2024-01-01T00:00:00Z".to_owned()), ..item },
        Feature::Progress => InventoryItem { progress_ms: Some(600_000), duration_ms: Some(6_000_000), ..item },
        Feature::Watchlist | Feature::Playlists => item,
    }
}

/// What is wrong with a read-only provider's writes: each declared feature's `add` and `remove`
/// must fail with class `unsupported` and reach no vendor write. Tried on a fresh healthy build.
async fn read_only_problems(run: &Run<'_>, declared: &Declared) -> Vec<String> {
    let Some((provider, probe)) = run.build(Scenario::Healthy) else {
        return vec!["declares read_only, but the harness cannot build a provider to try a write on".to_owned()];
    };
    let mut problems = Vec::new();
    for &feature in &declared.features {
        let mut items = run.harness.sample_items(feature);
        items.truncate(usize::try_from(declared.capabilities.chunk_size.max(1)).unwrap_or(usize::MAX));
        if items.is_empty() {
            items.push(probe_item(feature));
        }
        for op in ["add", "remove"] {
            let before = probe.writes();
            let result = match op {
                "add" => run.add(&provider, &items, feature, false).await,
                _ => run.remove(&provider, &items, feature, false).await,
            };
            let writes = probe.writes().saturating_sub(before);
            match result {
                Ok(written) => problems.push(format!(
                    "{feature}: declares read_only, but {op} succeeded (ok: {}, confirmed_keys: {:?}, confirmed: {:?}) \
                     instead of failing as unsupported",
                    written.ok, written.confirmed_keys, written.confirmed
                )),
                Err(e) if e.class != ErrorClass::Unsupported => problems.push(format!(
                    "{feature}: declares read_only, but {op} fails with class {:?} instead of unsupported: {e}",
                    e.class
                )),
                Err(_) => {}
            }
            if writes > 0 {
                problems.push(format!("{feature}: declares read_only, but {op} made {writes} vendor write(s)"));
            }
        }
    }
    problems
}

async fn health(run: &Run<'_>, board: &mut Board, provider: &Arc<dyn InventoryProvider>) {
    async fn expect(run: &Run<'_>, provider: &Arc<dyn InventoryProvider>, status: HealthStatus, when: &str) -> Verdict {
        match run.health(provider).await {
            Ok(report) if report.status == status => Verdict::Pass,
            Ok(report) => Verdict::Fail(format!(
                "health reports {} {when}, expected {} (reason: {})",
                report.status.as_str(),
                status.as_str(),
                report.reason.as_deref().unwrap_or("none")
            )),
            Err(e) => Verdict::Fail(format!("health failed {when}: {e}")),
        }
    }
    board.add("health.valid", expect(run, provider, HealthStatus::Ok, "with valid credentials").await);
    for (check, scenario, status, when) in [
        (
            "health.invalid_credentials",
            Scenario::InvalidCredentials,
            HealthStatus::AuthFailed,
            "with refused credentials",
        ),
        ("health.unreachable", Scenario::Unreachable, HealthStatus::Down, "when the vendor is unreachable"),
    ] {
        let verdict = match run.build(scenario) {
            Some((provider, _)) => expect(run, &provider, status, when).await,
            None => cannot_stage(scenario),
        };
        board.add(check, verdict);
    }
}

async fn snapshots(run: &Run<'_>, board: &mut Board, provider: &Arc<dyn InventoryProvider>, declared: &Declared) {
    const CHECKS: [&str; 3] = ["snapshot.items_typed_with_ids", "snapshot.unique_keys", "snapshot.stable_hash"];
    if declared.features.is_empty() {
        board.all(&CHECKS, &na("the provider declares no feature"));
    }
    for &feature in &declared.features {
        let (first, second) = (run.snapshot(provider, feature).await, run.snapshot(provider, feature).await);
        let (first, second) = match (first, second) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                for check in CHECKS {
                    board.feature(check, feature, Verdict::Fail(format!("build_index failed: {e}")));
                }
                continue;
            }
        };
        if first.is_empty() {
            let reason = format!("the healthy {feature} snapshot is empty (the harness seeds nothing)");
            board.all(&CHECKS, &na(reason));
            continue;
        }

        let problems = first
            .iter()
            .enumerate()
            .filter_map(|(i, item)| item_problem(item).map(|p| format!("item {i} ({}): {p}", describe_item(item))))
            .collect();
        board.feature("snapshot.items_typed_with_ids", feature, problems_verdict(problems));

        let duplicates: Vec<String> = multiset(feature, &first)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(key, n)| format!("`{key}` ×{n}"))
            .collect();
        board.feature(
            "snapshot.unique_keys",
            feature,
            problems_verdict(if duplicates.is_empty() {
                vec![]
            } else {
                vec![format!("duplicate canonical keys: {}", duplicates.join(", "))]
            }),
        );

        board.feature(
            "snapshot.stable_hash",
            feature,
            match (hash(&first), hash(&second)) {
                (Ok(a), Ok(b)) if a == b => Verdict::Pass,
                (Ok(a), Ok(b)) => Verdict::Fail(format!("two snapshots of an unchanged inventory hash {a} and {b}")),
                (Err(e), _) | (_, Err(e)) => Verdict::Fail(format!("the snapshot cannot be hashed: {e}")),
            },
        );
    }
}

async fn delta(run: &Run<'_>, board: &mut Board, declared: &Declared) {
    const CHECKS: [&str; 2] = ["snapshot.delta_since_checkpoint", "snapshot.future_checkpoint_empty"];
    if declared.capabilities.index_semantics == IndexSemantics::Present {
        board.all(&CHECKS, &na("present index semantics"));
        return;
    }
    if declared.capabilities.read_only {
        // Positioning at a checkpoint and seeing the change needs a write.
        board.all(&CHECKS, &na(READ_ONLY));
        return;
    }
    let Some((provider, _)) = run.build(Scenario::Healthy) else {
        board.all(&CHECKS, &Verdict::Fail("the harness cannot build a healthy provider".to_owned()));
        return;
    };
    let mut tested = false;
    for &feature in &declared.features {
        let samples = run.harness.sample_items(feature);
        if samples.is_empty() {
            continue;
        }
        tested = true;
        let checkpoints = match run.activities(&provider).await {
            Ok(activities) if activities.contains_key(feature.as_str()) => activities,
            Ok(activities) => {
                let error = format!("activities() has no checkpoint for the feature (got {activities:?})");
                board.all(&CHECKS, &Verdict::Fail(format!("{feature}: {error}")));
                continue;
            }
            Err(e) => {
                board.all(&CHECKS, &Verdict::Fail(format!("{feature}: activities() failed: {e}")));
                continue;
            }
        };
        if let Err(e) = accepted(&run.add(&provider, &samples, feature, false).await, "add") {
            board.all(&CHECKS, &Verdict::Fail(format!("{feature}: {e}")));
            continue;
        }
        let Some(since) = run.build_since(&checkpoints) else {
            board.all(&CHECKS, &na("the harness cannot position a provider at a checkpoint (build_since)"));
            return;
        };
        let verdict = match run.snapshot(&since, feature).await {
            Err(e) => Verdict::Fail(format!("build_index since {checkpoints:?} failed: {e}")),
            Ok(changes) => {
                let missing: Vec<&InventoryItem> =
                    samples.iter().filter(|s| count(feature, s, &changes) == 0).collect();
                let unchanged: Vec<&InventoryItem> =
                    changes.iter().filter(|c| !samples.iter().any(|s| matches(feature, s, c))).collect();
                let mut problems = Vec::new();
                if !missing.is_empty() {
                    problems.push(format!("items added since the checkpoint are missing: {}", list(&missing)));
                }
                if !unchanged.is_empty() {
                    problems.push(format!("items unchanged since the checkpoint are returned: {}", list(&unchanged)));
                }
                problems_verdict(problems)
            }
        };
        board.feature("snapshot.delta_since_checkpoint", feature, verdict);

        let mut future: Activities = checkpoints.keys().map(|k| (k.clone(), FUTURE_CHECKPOINT.to_owned())).collect();
        future.extend(declared.features.iter().map(|f| (f.as_str().to_owned(), FUTURE_CHECKPOINT.to_owned())));
        let verdict = match run.build_since(&future) {
            None => na("the harness cannot position a provider at a checkpoint (build_since)"),
            Some(since) => match run.snapshot(&since, feature).await {
                Err(e) => Verdict::Fail(format!("build_index since {FUTURE_CHECKPOINT} failed: {e}")),
                Ok(changes) if changes.is_empty() => Verdict::Pass,
                Ok(changes) => Verdict::Fail(format!(
                    "{} item(s) returned since the future checkpoint {FUTURE_CHECKPOINT}: {}",
                    changes.len(),
                    list(&changes.iter().collect::<Vec<_>>())
                )),
            },
        };
        board.feature("snapshot.future_checkpoint_empty", feature, verdict);
    }
    if !tested {
        board.all(&CHECKS, &na("the harness gives no sample items"));
    }
}

/// Everything one feature's write round observed.
struct Round<'a> {
    feature: Feature,
    samples: &'a [InventoryItem],
    /// Snapshot before anything, after the dry-run add, after each add, after the dry-run
    /// remove, after each remove.
    s0: Snapshot,
    s0_dry: Snapshot,
    s1: Snapshot,
    s2: Snapshot,
    s2_dry: Snapshot,
    s3: Snapshot,
    s4: Snapshot,
    dry_add: Written,
    add: Written,
    add_again: Written,
    dry_remove: Written,
    remove: Written,
    remove_again: Written,
    /// Vendor writes made by the dry-run add and the dry-run remove.
    dry_writes: (u64, u64),
}

impl Round<'_> {
    fn results(&self) -> [(&'static str, &Written); 6] {
        [
            ("dry-run add", &self.dry_add),
            ("add", &self.add),
            ("second add", &self.add_again),
            ("dry-run remove", &self.dry_remove),
            ("remove", &self.remove),
            ("second remove", &self.remove_again),
        ]
    }

    fn confirms_keys(&self) -> Result<(), String> {
        let result = accepted(&self.add, "add")?;
        let Some(confirmed) = &result.confirmed_keys else {
            return Err("add returned no confirmed_keys although the provider declares confirms_keys".to_owned());
        };
        let confirmed: BTreeSet<String> = confirmed.iter().map(|k| k.trim().to_lowercase()).collect();
        let unconfirmed: Vec<&InventoryItem> = self
            .samples
            .iter()
            .filter(|s| {
                let mut names = keys::alias_keys(s);
                names.extend(keys::strong_tokens(s));
                confirmed.is_disjoint(&names)
            })
            .collect();
        let mut problems = Vec::new();
        if !unconfirmed.is_empty() {
            problems.push(format!("confirmed_keys {confirmed:?} do not name {}", list(&unconfirmed)));
        }
        if !result.unresolved.is_empty() {
            problems.push(format!("add left resolvable sample items unresolved: {:?}", result.unresolved));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    fn add_idempotent(&self) -> Result<(), String> {
        accepted(&self.add_again, "second add")?;
        let s1 = snapshot_of(&self.s1, "build_index after the add")?;
        let s2 = snapshot_of(&self.s2, "build_index after the second add")?;
        let mut problems: Vec<String> = self
            .samples
            .iter()
            .filter_map(|s| {
                let (once, twice) = (count(self.feature, s, s1), count(self.feature, s, s2));
                (once != twice)
                    .then(|| format!("{}: {once} entries after one add, {twice} after two", describe_item(s)))
            })
            .collect();
        if s1.len() != s2.len() {
            problems.push(format!("the snapshot went from {} to {} items on a repeated add", s1.len(), s2.len()));
        }
        if problems.is_empty() { Ok(()) } else { Err(join_limited(&problems)) }
    }

    fn added_visible(&self) -> Result<(), String> {
        accepted(&self.add, "add")?;
        let s0 = snapshot_of(&self.s0, "build_index before the add")?;
        let s1 = snapshot_of(&self.s1, "build_index after the add")?;
        let present: Vec<&InventoryItem> = self.samples.iter().filter(|s| count(self.feature, s, s0) > 0).collect();
        if !present.is_empty() {
            return Err(format!(
                "sample items already present before the add (the harness must give items the inventory lacks): {}",
                list(&present)
            ));
        }
        let missing: Vec<&InventoryItem> = self
            .samples
            .iter()
            .filter(|s| {
                !s1.iter()
                    .any(|e| matches(self.feature, s, e) && (self.feature != Feature::Ratings || e.rating == s.rating))
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("added items missing from the next snapshot: {}", list(&missing)))
        }
    }

    fn remove_idempotent(&self) -> Result<(), String> {
        accepted(&self.remove, "remove")?;
        accepted(&self.remove_again, "second remove")?;
        let s2 = snapshot_of(&self.s2, "build_index before the remove")?;
        let s3 = snapshot_of(&self.s3, "build_index after the remove")?;
        let s4 = snapshot_of(&self.s4, "build_index after the second remove")?;
        let mut problems = Vec::new();
        let left: Vec<&InventoryItem> = self.samples.iter().filter(|s| count(self.feature, s, s3) > 0).collect();
        if !left.is_empty() {
            problems.push(format!("removed items are still in the snapshot: {}", list(&left)));
        }
        let others =
            multiset(self.feature, s2.iter().filter(|e| !self.samples.iter().any(|s| matches(self.feature, s, e))));
        let after =
            multiset(self.feature, s3.iter().filter(|e| !self.samples.iter().any(|s| matches(self.feature, s, e))));
        if others != after {
            problems.push(format!("remove changed other items: {others:?} became {after:?}"));
        }
        if multiset(self.feature, s4) != multiset(self.feature, s3) {
            problems.push("the second remove changed the snapshot".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    fn dry_run(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (what, result, writes, before, after) in [
            ("dry-run add", &self.dry_add, self.dry_writes.0, &self.s0, &self.s0_dry),
            ("dry-run remove", &self.dry_remove, self.dry_writes.1, &self.s2, &self.s2_dry),
        ] {
            match accepted(result, what) {
                Err(e) => problems.push(e),
                Ok(result) if !result.dry_run => problems.push(format!("the {what} result does not say dry_run: true")),
                Ok(_) => {}
            }
            if writes > 0 {
                problems.push(format!("a {what} made {writes} vendor write(s)"));
            }
            match (snapshot_of(before, "build_index"), snapshot_of(after, "build_index")) {
                (Ok(before), Ok(after)) if multiset(self.feature, before) != multiset(self.feature, after) => {
                    problems.push(format!("a {what} changed the snapshot"));
                }
                (Err(e), _) | (_, Err(e)) => problems.push(format!("around the {what}: {e}")),
                _ => {}
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

async fn writes(run: &Run<'_>, board: &mut Board, declared: &Declared) {
    const ROUND_CHECKS: [&str; 6] = [
        "writes.add_confirms_keys",
        "writes.add_idempotent",
        "writes.remove_idempotent",
        "writes.added_visible",
        "writes.dry_run_no_writes",
        "writes.counts_reported",
    ];
    if declared.features.is_empty() {
        board.all(&ROUND_CHECKS, &na("the provider declares no feature"));
        board.add("writes.unresolved_have_ids", na("the provider declares no feature"));
        return;
    }
    if declared.capabilities.read_only {
        board.all(&ROUND_CHECKS, &na(READ_ONLY));
        board.add("writes.unresolved_have_ids", na(READ_ONLY));
        return;
    }
    if !declared.capabilities.confirms_keys {
        board.add("writes.add_confirms_keys", na("the provider declares confirms_keys: false (counts only)"));
    }
    let Some((provider, probe)) = run.build(Scenario::Healthy) else {
        let cannot = Verdict::Fail("the harness cannot build a healthy provider".to_owned());
        board.all(&ROUND_CHECKS, &cannot);
        board.add("writes.unresolved_have_ids", cannot);
        return;
    };
    let chunk = usize::try_from(declared.capabilities.chunk_size.max(1)).unwrap_or(usize::MAX);
    for &feature in &declared.features {
        let mut samples = run.harness.sample_items(feature);
        samples.truncate(chunk);
        let mut written: Vec<(&'static str, Written)> = Vec::new();
        if samples.is_empty() {
            board.all(&ROUND_CHECKS, &na("the harness gives no sample items"));
        } else {
            let p = &provider;
            let s0 = run.snapshot(p, feature).await;
            let before = probe.writes();
            let dry_add = run.add(p, &samples, feature, true).await;
            let dry_add_writes = probe.writes().saturating_sub(before);
            let s0_dry = run.snapshot(p, feature).await;
            let add = run.add(p, &samples, feature, false).await;
            let s1 = run.snapshot(p, feature).await;
            let add_again = run.add(p, &samples, feature, false).await;
            let s2 = run.snapshot(p, feature).await;
            let before = probe.writes();
            let dry_remove = run.remove(p, &samples, feature, true).await;
            let dry_remove_writes = probe.writes().saturating_sub(before);
            let s2_dry = run.snapshot(p, feature).await;
            let remove = run.remove(p, &samples, feature, false).await;
            let s3 = run.snapshot(p, feature).await;
            let remove_again = run.remove(p, &samples, feature, false).await;
            let s4 = run.snapshot(p, feature).await;
            let round = Round {
                feature,
                samples: &samples,
                s0,
                s0_dry,
                s1,
                s2,
                s2_dry,
                s3,
                s4,
                dry_add,
                add,
                add_again,
                dry_remove,
                remove,
                remove_again,
                dry_writes: (dry_add_writes, dry_remove_writes),
            };
            if declared.capabilities.confirms_keys {
                board.feature("writes.add_confirms_keys", feature, round.confirms_keys());
            }
            board.feature("writes.add_idempotent", feature, round.add_idempotent());
            board.feature("writes.remove_idempotent", feature, round.remove_idempotent());
            board.feature("writes.added_visible", feature, round.added_visible());
            board.feature("writes.dry_run_no_writes", feature, round.dry_run());
            written.extend(round.results().map(|(what, result)| (what, result.clone())));
        }

        let unresolvable = run.harness.unresolvable_item(feature);
        if let Some(item) = &unresolvable {
            let result = run.add(&provider, std::slice::from_ref(item), feature, false).await;
            written.push(("add of the unresolvable item", result));
        }

        if !written.is_empty() {
            let succeeded: Vec<&WriteResult> = written.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
            let bare: Vec<&str> = written
                .iter()
                .filter(|(_, r)| r.as_ref().is_ok_and(|w| w.ok && w.confirmed_keys.is_none() && w.confirmed.is_none()))
                .map(|(what, _)| *what)
                .collect();
            board.feature(
                "writes.counts_reported",
                feature,
                if succeeded.is_empty() {
                    Verdict::Fail("no write call succeeded, so none could report counts".to_owned())
                } else if bare.is_empty() {
                    Verdict::Pass
                } else {
                    Verdict::Fail(format!(
                        "{{ok: true}} with neither confirmed_keys nor confirmed from: {}",
                        bare.join(", ")
                    ))
                },
            );
        }

        let mut problems = Vec::new();
        let mut observed = false;
        for (what, result) in &written {
            for entry in result.as_ref().map(|w| w.unresolved.as_slice()).unwrap_or_default() {
                observed = true;
                if keys::normalize_id_map(&entry.ids).is_empty() {
                    problems.push(format!(
                        "{what} reported an unresolved item without ids (reason: {})",
                        entry.reason.as_deref().unwrap_or("none")
                    ));
                }
            }
        }
        if let (Some(item), Some((_, result))) = (&unresolvable, written.last()) {
            observed = true;
            match result {
                Err(e) => problems.push(format!("adding an unresolvable item failed the whole call: {e}")),
                Ok(w) => {
                    if w.unresolved.is_empty() {
                        problems
                            .push(format!("the unresolvable item {} was not reported unresolved", describe_item(item)));
                    }
                    let mut names = keys::alias_keys(item);
                    names.extend(keys::strong_tokens(item));
                    if w.confirmed_keys.iter().flatten().any(|k| names.contains(&k.trim().to_lowercase())) {
                        problems.push(format!("the unresolvable item {} was confirmed", describe_item(item)));
                    }
                }
            }
        }
        board.feature(
            "writes.unresolved_have_ids",
            feature,
            if observed { problems_verdict(problems) } else { na("the harness gives no unresolvable item") },
        );
    }
}

async fn errors(run: &Run<'_>, board: &mut Board, declared: &Declared) {
    const CHECKS: [&str; 5] = [
        "errors.rate_limited_retryable",
        "errors.server_error_retryable",
        "errors.unauthorized_not_retried",
        "errors.bad_request_not_retried",
        "errors.hang_times_out",
    ];
    let Some(&feature) = declared.features.first() else {
        board.all(&CHECKS, &na("the provider declares no feature"));
        return;
    };

    // Retryable refusals: the provider's own error, then the pipeline's success.
    for (check, scenario) in
        [("errors.rate_limited_retryable", RATE_LIMITED), ("errors.server_error_retryable", SERVER_ERROR)]
    {
        let (Some((raw, _)), Some((piped, _))) = (run.build(scenario), run.build(scenario)) else {
            board.add(check, cannot_stage(scenario));
            continue;
        };
        let mut problems = Vec::new();
        match run.direct(raw.build_index(feature)).await {
            Ok(_) => problems.push(format!("build_index succeeded in scenario {scenario:?}")),
            Err(e) => {
                if e.class != ErrorClass::Retryable {
                    problems.push(format!("the error's class is {:?}, not retryable: {e}", e.class));
                }
                if let Scenario::RateLimited { retry_after_ms, .. } = scenario {
                    if e.code != Some(ErrorCode::RateLimited) {
                        problems.push(format!("the error's code is {:?}, not rate_limited", e.code));
                    }
                    if e.retry_after_ms != Some(retry_after_ms) {
                        problems.push(format!(
                            "the error carries retry_after_ms {:?}, not the vendor's Retry-After {retry_after_ms}",
                            e.retry_after_ms
                        ));
                    }
                } else if matches!(e.code, Some(ErrorCode::AuthFailed | ErrorCode::InvalidInput)) {
                    problems.push(format!("a 5xx has the code {:?}", e.code));
                }
            }
        }
        let called = run.snapshot_call(&piped, feature).await;
        match &called.result {
            Err(e) => problems.push(format!(
                "the pipeline call failed after {} attempt(s) (cap {}): {e}",
                called.attempts, run.policy.max_attempts
            )),
            Ok(_) => {
                if let Scenario::RateLimited { times, retry_after_ms } = scenario {
                    let waited = Duration::from_millis(u64::from(times) * retry_after_ms);
                    if called.elapsed < waited {
                        problems.push(format!(
                            "the call succeeded after {} ms, before the {} ms of Retry-After had passed",
                            called.elapsed.as_millis(),
                            waited.as_millis()
                        ));
                    }
                }
            }
        }
        board.add(check, problems_verdict(problems));
    }

    // Permanent refusals: one attempt, one request.
    for (check, scenario) in [
        ("errors.unauthorized_not_retried", Scenario::InvalidCredentials),
        ("errors.bad_request_not_retried", Scenario::Rejecting),
    ] {
        let Some((provider, probe)) = run.build(scenario) else {
            board.add(check, cannot_stage(scenario));
            continue;
        };
        let before = probe.requests();
        let called = run.snapshot_call(&provider, feature).await;
        let requests = probe.requests().saturating_sub(before);
        let mut problems = Vec::new();
        match &called.result {
            Ok(_) => problems.push(format!("build_index succeeded in scenario {scenario:?}")),
            Err(e) => {
                if e.class != ErrorClass::Permanent {
                    problems.push(format!("the error's class is {:?}, not permanent: {e}", e.class));
                }
                if scenario == Scenario::InvalidCredentials && e.code != Some(ErrorCode::AuthFailed) {
                    problems.push(format!("the error's code is {:?}, not auth_failed: {e}", e.code));
                }
            }
        }
        if called.attempts != 1 {
            problems.push(format!("the pipeline made {} attempts, not 1", called.attempts));
        }
        if requests != 1 {
            problems.push(format!("the vendor received {requests} requests for one call, not 1"));
        }
        board.add(check, problems_verdict(problems));
        // More error paths for the secret check: writes, checkpoints, health.
        let samples = run.harness.sample_items(feature);
        let _ = run.add(&provider, &samples, feature, false).await;
        let _ = run.remove(&provider, &samples, feature, false).await;
        let _ = run.activities(&provider).await;
        let _ = run.health(&provider).await;
    }

    board.add(
        "errors.hang_times_out",
        match run.build(Scenario::Hang) {
            None => cannot_stage(Scenario::Hang),
            Some((provider, _)) => {
                let called = run.snapshot_call(&provider, feature).await;
                let deadline = run.policy.total_deadline;
                let mut problems = Vec::new();
                match &called.result {
                    Ok(items) => problems.push(format!(
                        "build_index against a hanging vendor returned {} item(s) instead of a timeout",
                        items.len()
                    )),
                    Err(e) if e.code != Some(ErrorCode::Timeout) => {
                        problems.push(format!("the error's code is {:?}, not timeout: {e}", e.code));
                    }
                    Err(_) => {}
                }
                if called.elapsed > deadline {
                    problems.push(format!(
                        "the call took {} ms, beyond the {} ms total deadline",
                        called.elapsed.as_millis(),
                        deadline.as_millis()
                    ));
                }
                problems_verdict(problems)
            }
        },
    );
}

fn secrets(run: &Run<'_>, board: &mut Board) {
    let verdict = match run.harness.secret().filter(|s| !s.is_empty()) {
        None => na("the harness names no secret"),
        Some(_) if run.errors_seen.load(Ordering::SeqCst) == 0 => na("no provider error was observed"),
        Some(secret) => {
            let exposures = lock(&run.exposures);
            let leaks: Vec<&String> = exposures.iter().filter(|text| text.contains(secret.expose())).collect();
            match leaks.first() {
                None => Verdict::Pass,
                Some(first) => {
                    let redactor = Redactor::new([&secret]);
                    Verdict::Fail(format!(
                        "the secret appears in {} of {} errors, health reports and Debug outputs, e.g. {}",
                        leaks.len(),
                        exposures.len(),
                        redactor.scrub(first)
                    ))
                }
            }
        }
    };
    board.add("errors.no_secret_in_errors", verdict);
}

fn metrics(run: &Run<'_>, board: &mut Board, declared: &Declared) {
    let events = run.recorder.events();
    let calls = lock(&run.calls).clone();
    let mut problems = Vec::new();
    if calls.is_empty() {
        problems.push("no pipeline call was made".to_owned());
    }
    if events.len() != calls.len() {
        problems.push(format!("{} pipeline calls but {} metrics events", calls.len(), events.len()));
    }
    let deadline_ms = u64::try_from(run.policy.total_deadline.as_millis()).unwrap_or(u64::MAX);
    for (i, (event, op)) in events.iter().zip(&calls).enumerate() {
        let mut wrong = Vec::new();
        if event.capability != Capability::Inventory {
            wrong.push(format!("capability {}", event.capability));
        }
        if event.adapter != declared.name {
            wrong.push(format!("adapter `{}` (the provider is `{}`)", event.adapter, declared.name));
        }
        if event.op != *op {
            wrong.push(format!("op `{}`", event.op));
        }
        if event.attempts == 0 || event.attempts > run.policy.max_attempts {
            wrong.push(format!("attempts {}", event.attempts));
        }
        match (event.outcome, event.error_class) {
            (Outcome::Ok, None) | (Outcome::Error, Some(_)) => {}
            (outcome, class) => wrong.push(format!("outcome {outcome:?} with error class {class:?}")),
        }
        if event.latency_ms > deadline_ms {
            wrong.push(format!("latency {} ms beyond the total deadline", event.latency_ms));
        }
        if !wrong.is_empty() {
            problems.push(format!("event {i} ({op}): {}", wrong.join(", ")));
        }
    }
    board.add("metrics.event_fields", problems_verdict(problems));
}

/// The kit's standard sample items for write checks: titles with TMDB or TVDB ids (a film, a
/// show, a rating, two plays including an episode, a playback position) that any vendor able to
/// resolve those ids accepts. Harnesses may return these from
/// [`InventoryHarness::sample_items`], or items their emulator knows better.
pub fn standard_sample_items(feature: Feature) -> Vec<InventoryItem> {
    fn ids(pairs: &[(&str, &str)]) -> pal::inventory::Ids {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }
    fn movie(tmdb: &str, title: &str, year: i32) -> InventoryItem {
        InventoryItem {
            title: Some(title.to_owned()),
            year: Some(year),
            ids: ids(&[("tmdb", tmdb)]),
            ..Default::default()
        }
    }
    let se7en = movie("807", "Se7en", 1995);
    match feature {
        Feature::Watchlist => vec![
            se7en,
            InventoryItem {
                item_type: ItemType::Show,
                title: Some("Friends".into()),
                ids: ids(&[("tvdb", "79168")]),
                ..Default::default()
            },
        ],
        Feature::Ratings => vec![InventoryItem { rating: Some(8), ..se7en }],
        Feature::History => vec![
            InventoryItem { watched_at: Some("2024-05-01T20:00:00Z".into()), ..se7en },
            InventoryItem {
                item_type: ItemType::Episode,
                show_ids: Some(ids(&[("tvdb", "81189")])),
                ids: ids(&[("tvdb", "349233")]),
                season: Some(1),
                episode: Some(3),
                watched_at: Some("2024-05-02T20:00:00Z".into()),
                ..Default::default()
            },
        ],
        Feature::Progress => {
            vec![InventoryItem { progress_ms: Some(1_200_000), duration_ms: Some(7_620_000), ..se7en }]
        }
        Feature::Playlists => vec![se7en],
    }
}
