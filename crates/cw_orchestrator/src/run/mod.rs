//! The run layer: one sync run of the pairs of a `cw.yaml`, end to end (ARCHITECTURE, "Data flow
//! of one sync run").
//!
//! ```text
//! health gate ─► snapshot each side (through the pal pipeline; once per run and instance)
//!   ─► ingest (present | delta over the baseline; drop guard) ─► planner (per feature)
//!   ─► guards (mass delete, blackbox, read-only / down sides) ─► PlanBundle + witness
//!   ─► claim the plan (approved, fresh, not yet executed) ─► applier (chunked writes through
//!      the pipeline; exact accounting) ─► verify after write ─► one state commit per pair
//! ```
//!
//! [`Engine::prepare`] does everything up to the plan and writes nothing anywhere.
//! A prepared plan runs only after the state store's plan store ([`admit_core::PlanStore`])
//! has authorised it: [`Engine::sync`] records and claims its own plan at once;
//! [`Engine::record_for_approval`] records it for approval (`cw plan`), and [`Engine::apply`]
//! re-snapshots, proves the plan still fresh, and executes exactly the plan that was approved.
//!
//! Safety rules this layer owns (the others live in the planner and guards):
//! - A feature's baselines and checkpoints advance only when nothing held its removals back (a
//!   suspect snapshot, the mass-delete guard, a side that could not be written, a removal that
//!   did not go through): the deletions stay observable until they are applied.
//! - History adds are never re-sent after an ambiguous failure (the pipeline's rule for
//!   non-idempotent calls); the next run re-plans from a fresh snapshot, and the planner never
//!   adds a play the target already has.
//! - A dry run makes no write call at all and commits nothing.
//! - Checkpoints are read again after this run's own writes, so our writes never count as
//!   evidence that a later collapsed snapshot is genuine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use admit_core::{
    ClaimError, Digest, DigestAlgorithm, ExecutionStatus, Fact, Finding, PlanBundle, PlanIntent, PlanRecord, PlanRef,
    PlanStep, PlanStore, ProviderError, ScopeId, Severity, Timestamp, Verdict, Witness,
};
use pal::inventory::{
    Activities, Feature, IndexSemantics, InventoryCapabilities, InventoryItem, InventoryProvider, WriteResult,
};
use pal::{CallSpec, CallTarget, Capability, HealthReport, HealthStatus, Pipeline};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::applier::{self, ChunkVerdict};
use crate::config::{CwConfig, PairConfig, Side};
use crate::guards::{self, HealthGate};
use crate::ingest::{
    Baseline, IndexedBaseline, IndexedSnapshot, IngestOptions, Ingested, Inventory, Snapshot, all_persistable,
    baseline_stands_in, ingest_indexed, ingest_indexed_unchanged, persistable,
};
use crate::planner::{self, FeaturePlan, PlanConfig, PlanInput, PlannedItem, Reason};
use crate::state::{
    BaselineItems, BaselineWrite, BlackboxUpdate, CheckpointWrite, ItemOutcome, RunCommit, RunRecord, RunStatus,
    StateError, StateStore, TombstoneWrite, UnresolvedWrite,
};

mod execute;
mod prepare;
mod report;

pub use prepare::{
    FailedFeature, FeatureRun, HeldWrite, PairRun, PlanFile, Prepared, SideState, check_plan_file, witness_hash,
};
pub use report::{FeatureCounts, FeatureReport, PairReport, RunReport};

/// The admit scope of sync plans and witnesses.
pub const SYNC_SCOPE: &str = "cw.sync";
/// The schema id of a sync plan bundle.
pub const PLAN_SCHEMA_ID: &str = "plan-bundle/cw.sync@1";
/// The schema id of a plan file (`cw plan --out`).
pub const PLAN_FILE_SCHEMA_ID: &str = "cw-plan-file@1";
/// Rule id of blackbox findings.
pub const BLACKBOX_RULE: &str = "cw.blackbox";
/// Rule id of findings about features a side cannot hold or sides that cannot be written.
pub const CAPABILITY_RULE: &str = "cw.capability";
/// Rule id of snapshot failures.
pub const SNAPSHOT_RULE: &str = "cw.snapshot";

/// Provider instances by their `cw.yaml` name.
pub type Providers = BTreeMap<String, Arc<dyn InventoryProvider>>;

/// The phases a run reports to an [`Observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Snapshotting the sides of a pair.
    Snapshot,
    /// Writing.
    Apply,
    /// Re-reading after writes.
    Verify,
}

/// Watches a run (progress bars, logs). Every method defaults to nothing.
pub trait Observer: Send + Sync {
    /// A phase of `pair` (and `feature`) starts with `total` units of work.
    fn start(&self, _pair: &str, _feature: Option<Feature>, _phase: Phase, _total: u64) {}
    /// `done` more units of the current phase are done.
    fn advance(&self, _done: u64) {}
    /// The current phase ended.
    fn finish(&self) {}
}

/// An observer that watches nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {}

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Only this pair (default: every pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// Only these features (default: every feature each pair syncs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Plan and report, write nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Lift the mass-delete guard for this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_mass_delete: bool,
}

/// Why a run could not be made or executed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--pair` names no pair of the config.
    #[error("no pair `{pair}` in {}; pairs: {known}", config.display())]
    UnknownPair {
        /// The pair asked for.
        pair: String,
        /// The config file.
        config: std::path::PathBuf,
        /// The pairs it has.
        known: String,
    },
    /// A pair names an instance no provider was built for.
    #[error("pair `{pair}`: provider instance `{instance}` is not available")]
    MissingProvider {
        /// The pair.
        pair: String,
        /// The instance.
        instance: String,
    },
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A plan or snapshot could not be hashed (a value canonical CBOR refuses).
    #[error("cannot hash the {what}: {message}")]
    Hash {
        /// What was being hashed.
        what: String,
        /// Why.
        message: String,
    },
    /// The plan store refused the plan (unknown, unapproved, already executed, stale).
    #[error("{0}")]
    Refused(String),
    /// A plan file is not a plan this config can execute.
    #[error("{0}")]
    InvalidPlan(String),
}

impl From<ClaimError> for RunError {
    fn from(error: ClaimError) -> Self {
        match error {
            ClaimError::Refused(refusal) => RunError::Refused(refusal.to_string()),
            ClaimError::Store(store) => RunError::Refused(store.to_string()),
        }
    }
}

impl From<admit_core::PlanStoreError> for RunError {
    fn from(error: admit_core::PlanStoreError) -> Self {
        RunError::Refused(error.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The engine

/// A snapshot taken this run, shared by every pair that reads the same instance and feature.
#[derive(Debug)]
struct Taken {
    snapshot: Snapshot,
    /// Computed once, on first need (the two sides of a feature hash in parallel).
    hash: std::sync::OnceLock<Result<Digest, String>>,
}

impl Taken {
    fn hash(&self) -> Result<Digest, String> {
        self.hash
            .get_or_init(|| {
                pal::inventory::snapshot_hash(&self.snapshot.items, DigestAlgorithm::Blake3).map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// The snapshots of one run, kept only while a later pair of the run still needs them (a
/// snapshot of a million items is worth freeing as soon as its last reader has ingested it).
#[derive(Debug, Default)]
struct SnapshotCache {
    snapshots: HashMap<(String, Feature), Arc<Taken>>,
    /// How many reads of each instance and feature the run has left.
    uses: HashMap<(String, Feature), usize>,
}

impl SnapshotCache {
    /// A cached snapshot for one more read (forgotten after its last).
    fn take(&mut self, key: &(String, Feature)) -> Option<Arc<Taken>> {
        let taken = self.snapshots.get(key)?.clone();
        self.used(key);
        Some(taken)
    }

    /// Keeps a fresh snapshot if a later read will want it.
    fn keep(&mut self, key: (String, Feature), taken: &Arc<Taken>) {
        if self.used(&key) > 0 {
            self.snapshots.insert(key, taken.clone());
        }
    }

    /// Counts one read; returns the reads left, forgetting the snapshot when none are.
    fn used(&mut self, key: &(String, Feature)) -> usize {
        let left = self.uses.get(key).map_or(0, |n| n.saturating_sub(1));
        self.uses.insert(key.clone(), left);
        if left == 0 {
            self.snapshots.remove(key);
        }
        left
    }
}

/// Runs the pairs of one configuration against built providers and one state store.
pub struct Engine<'a> {
    config: &'a CwConfig,
    store: &'a StateStore,
    pipeline: &'a Pipeline,
    providers: &'a Providers,
    observer: &'a dyn Observer,
    cache: Mutex<SnapshotCache>,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.config.file).finish_non_exhaustive()
    }
}

impl<'a> Engine<'a> {
    /// An engine over `config`, with `providers` built for its instances.
    pub fn new(
        config: &'a CwConfig,
        store: &'a StateStore,
        pipeline: &'a Pipeline,
        providers: &'a Providers,
        observer: &'a dyn Observer,
    ) -> Self {
        Engine { config, store, pipeline, providers, observer, cache: Mutex::new(SnapshotCache::default()) }
    }

    fn provider(&self, pair: &PairConfig, side: Side) -> Result<&Arc<dyn InventoryProvider>, RunError> {
        let instance = pair.provider(side);
        self.providers
            .get(instance)
            .ok_or_else(|| RunError::MissingProvider { pair: pair.id.clone(), instance: instance.to_owned() })
    }

    fn spec(instance: &str, op: &str) -> CallSpec {
        // The op names are the inventory capability's own; a typo is a bug caught by every test.
        let op = Capability::Inventory.op(op).unwrap_or_else(|_| &Capability::Inventory.ops()[0]);
        CallSpec::new(CallTarget::new(Capability::Inventory, instance), op)
    }

    async fn health(&self, instance: &str, provider: &Arc<dyn InventoryProvider>) -> HealthReport {
        let spec = Self::spec(instance, "health");
        match self.pipeline.call(&spec, || async { Ok::<_, ProviderError>(provider.health().await) }).await {
            Ok(report) => report,
            Err(error) => {
                HealthReport { status: HealthStatus::Down, reason: Some(error.message), ..HealthReport::default() }
            }
        }
    }

    async fn activities(&self, instance: &str, provider: &Arc<dyn InventoryProvider>) -> Activities {
        if !provider.capabilities().checkpoint {
            return Activities::new();
        }
        let spec = Self::spec(instance, "activities");
        // A provider that cannot say what changed gives no evidence: the drop guard stays strict.
        self.pipeline.call(&spec, || provider.activities()).await.unwrap_or_default()
    }

    /// The snapshot of `feature` on `instance`, once per run.
    async fn snapshot(
        &self,
        instance: &str,
        provider: &Arc<dyn InventoryProvider>,
        feature: Feature,
        checkpoint: Option<String>,
    ) -> Result<Arc<Taken>, ProviderError> {
        let cache_key = (instance.to_owned(), feature);
        if let Some(taken) = self.lock_cache().take(&cache_key) {
            return Ok(taken);
        }
        let spec = Self::spec(instance, "build_index");
        let items = self.pipeline.call(&spec, || provider.build_index(feature)).await?;
        let semantics = provider.capabilities().index_semantics;
        let taken = Arc::new(Taken { snapshot: Snapshot { items, semantics, checkpoint }, hash: Default::default() });
        self.lock_cache().keep(cache_key, &taken);
        Ok(taken)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, SnapshotCache> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget_snapshot(&self, instance: &str, feature: Feature) {
        self.lock_cache().snapshots.remove(&(instance.to_owned(), feature));
    }

    fn selected_pairs(&self, options: &RunOptions) -> Result<Vec<&'a PairConfig>, RunError> {
        match &options.pair {
            None => Ok(self.config.pairs.iter().collect()),
            Some(id) => match self.config.pairs.iter().find(|p| &p.id == id) {
                Some(pair) => Ok(vec![pair]),
                None => Err(RunError::UnknownPair {
                    pair: id.clone(),
                    config: self.config.file.clone(),
                    known: self.config.pairs.iter().map(|p| format!("`{}`", p.id)).collect::<Vec<_>>().join(", "),
                }),
            },
        }
    }
}

fn step_id(pair: &str, feature: Feature) -> String {
    format!("{pair}/{feature}")
}

fn timestamp(at: time::OffsetDateTime) -> Timestamp {
    at.format(&Rfc3339).ok().and_then(|text| Timestamp::parse(&text).ok()).unwrap_or_else(Timestamp::now_utc)
}

/// A fresh run id: the time and process, so two runs never share one.
pub fn new_run_id(now: time::OffsetDateTime) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}", now.unix_timestamp_nanos(), std::process::id())
}

/// Runs each job on its own thread and returns the results in order (the machine has few
/// cores; a run has two sides).
fn parallel<'a, T: Send>(jobs: Vec<impl FnOnce() -> T + Send + 'a>) -> Vec<T> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken() -> Arc<Taken> {
        Arc::new(Taken { snapshot: Snapshot::default(), hash: Default::default() })
    }

    #[test]
    fn a_snapshot_is_kept_exactly_as_long_as_a_later_read_wants_it() {
        let key = ("library".to_owned(), Feature::Watchlist);
        let mut cache = SnapshotCache::default();
        cache.uses.insert(key.clone(), 3);
        // First read: fetched, kept for the two reads left.
        assert!(cache.take(&key).is_none());
        cache.keep(key.clone(), &taken());
        // Second read: served from the cache, still kept for the last.
        assert!(cache.take(&key).is_some());
        assert!(cache.snapshots.contains_key(&key));
        // Last read: served, then forgotten.
        assert!(cache.take(&key).is_some());
        assert!(cache.snapshots.is_empty());
        // A snapshot nobody will read again is not kept at all.
        let other = ("file".to_owned(), Feature::Ratings);
        cache.uses.insert(other.clone(), 1);
        cache.keep(other.clone(), &taken());
        assert!(cache.snapshots.is_empty());
    }
}
