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
//! [`Engine::execute`] runs a prepared plan only after the state store's plan store
//! ([`admit_core::PlanStore`]) has authorised it: `cw sync` records and claims its own plan at
//! once; `cw plan` records it for approval, and `cw apply` re-snapshots, proves the plan is
//! still fresh, and executes exactly the plan that was approved.
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

use std::collections::{BTreeMap, HashMap};
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
    Baseline, IngestOptions, Ingested, Inventory, Snapshot, all_persistable, ingest_owned, ingest_unchanged,
    ingest_unchanged_owned, ingest_with, persistable,
};
use crate::planner::{self, FeaturePlan, PlanConfig, PlanInput, PlannedItem, Reason};
use crate::state::{
    BaselineWrite, BlackboxUpdate, CheckpointWrite, ItemOutcome, RunCommit, RunRecord, RunStatus, StateError,
    StateStore, TombstoneWrite, UnresolvedWrite,
};

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
// Prepared runs

/// One side of a feature, snapshotted and ingested.
#[derive(Debug, Clone)]
pub struct SideState {
    /// The provider instance.
    pub instance: String,
    /// Its declared behaviour.
    pub capabilities: InventoryCapabilities,
    /// The snapshot hash (the admit snapshot hash of the raw items as facts).
    pub snapshot_hash: Digest,
    /// The feature's checkpoint when the snapshot was taken.
    pub checkpoint: Option<String>,
    /// The stored baseline is this very snapshot (same hash): it was not read back.
    pub baseline_is_snapshot: bool,
    /// The ingested side (in a [`FeatureRun`], without its baseline: it is let go once the
    /// plan is made).
    pub ingested: Ingested,
}

/// A write the guards held back and the run records as unresolved (its side was down or
/// read-only), so it is retried when the side can take it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldWrite {
    /// The side it was for.
    pub side: Side,
    /// The item.
    pub item: PlannedItem,
    /// Why it was held.
    pub reason: String,
}

/// One feature of a pair, planned and guarded.
#[derive(Debug, Clone)]
pub struct FeatureRun {
    /// The feature.
    pub feature: Feature,
    /// The source side.
    pub source: SideState,
    /// The target side.
    pub target: SideState,
    /// What will execute.
    pub plan: FeaturePlan,
    /// Writes recorded as unresolved instead of sent.
    pub held: Vec<HeldWrite>,
    /// Writes the guards blocked (mass delete, blackbox quarantine, held writes).
    pub blocked: usize,
    /// Whether this feature's baselines and checkpoints may advance (nothing held its removals
    /// back).
    pub settled: bool,
    /// What ingest, the planner and the guards found.
    pub findings: Vec<Finding>,
}

/// A feature that could not be planned (a snapshot failed).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedFeature {
    /// The feature.
    pub feature: Feature,
    /// Why.
    pub finding: Finding,
}

/// One pair, prepared.
#[derive(Debug, Clone)]
pub struct PairRun {
    /// The pair's configuration.
    pub pair: PairConfig,
    /// What health allowed.
    pub gate: HealthGate,
    /// The features planned.
    pub features: Vec<FeatureRun>,
    /// The features that could not be planned.
    pub failed: Vec<FailedFeature>,
    /// Pair-level findings (health, unsupported features).
    pub findings: Vec<Finding>,
}

/// A run, planned and guarded, not yet executed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The run's id (also part of the plan's intent, so every run's plan is its own).
    pub run_id: String,
    /// What was asked.
    pub options: RunOptions,
    /// The pairs.
    pub pairs: Vec<PairRun>,
    /// The plan, as an admit artifact.
    pub bundle: PlanBundle,
    /// The intent it was planned for.
    pub intent: PlanIntent,
    /// The guards' witness: every guard evaluated, and what it found.
    pub witness: Witness,
}

/// What `cw plan --out` writes and `cw apply` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Always [`PLAN_FILE_SCHEMA_ID`].
    pub schema_id: String,
    /// The plan.
    pub plan: PlanBundle,
    /// The intent (the run id, the options and the configuration planned for).
    pub intent: PlanIntent,
    /// The guards' witness.
    pub witness: Witness,
    /// Each step's writes, by step id; each must have the digest its step names.
    pub steps: BTreeMap<String, FeaturePlan>,
}

/// The digest a plan step records for its writes.
fn feature_plan_digest(plan: &FeaturePlan, step_id: &str) -> Result<Digest, RunError> {
    DigestAlgorithm::Blake3
        .digest_canonical(plan)
        .map_err(|e| RunError::Hash { what: format!("plan of {step_id}"), message: e.to_string() })
}

impl Prepared {
    /// The plan's hash.
    pub fn plan_hash(&self) -> Digest {
        self.bundle.plan_hash
    }

    /// The plan file of this run.
    pub fn plan_file(&self) -> PlanFile {
        PlanFile {
            schema_id: PLAN_FILE_SCHEMA_ID.to_owned(),
            plan: self.bundle.clone(),
            intent: self.intent.clone(),
            witness: self.witness.clone(),
            steps: self
                .pairs
                .iter()
                .flat_map(|pair| {
                    pair.features.iter().map(|run| (step_id(&pair.pair.id, run.feature), run.plan.clone()))
                })
                .collect(),
        }
    }

    /// What the state store keeps of the plan: its identity and steps, not its items (the
    /// plan file, when one is written, has them).
    fn record_json(&self) -> Value {
        json!({
            "plan_hash": self.bundle.plan_hash,
            "intent": self.intent,
            "steps": self.bundle.steps,
            "source_snapshots": self.bundle.source_snapshots,
            "witness": self.witness,
        })
    }

    /// Every finding of the run so far.
    pub fn findings(&self) -> Vec<Finding> {
        self.witness.findings.clone()
    }

    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.pairs.iter().all(|p| p.features.iter().all(|f| f.plan.to_source.is_empty() && f.plan.to_target.is_empty()))
    }
}

/// The hash of a witness (what an approval records).
pub fn witness_hash(witness: &Witness) -> Result<Digest, RunError> {
    DigestAlgorithm::Blake3
        .digest_canonical(witness)
        .map_err(|e| RunError::Hash { what: "witness".to_owned(), message: e.to_string() })
}

// ---------------------------------------------------------------------------------------------
// Reports

/// Counts of one feature of one pair (both directions together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureCounts {
    /// Items added (confirmed; planned, in a dry run).
    pub added: u64,
    /// Items whose value was updated (ratings, progress).
    pub updated: u64,
    /// Items removed.
    pub removed: u64,
    /// Writes the guards blocked.
    pub blocked: u64,
    /// Writes not applied (the provider said so, the call failed, or the side could not be
    /// written): recorded, retried next run.
    pub unresolved: u64,
    /// Writes sent whose effect the provider did not confirm item by item.
    pub unconfirmed: u64,
}

impl FeatureCounts {
    fn is_quiet(&self) -> bool {
        self.unresolved == 0 && self.unconfirmed == 0
    }
}

/// One feature's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReport {
    /// The counts.
    #[serde(flatten)]
    pub counts: FeatureCounts,
    /// What the guards, planner and applier found.
    pub findings: Vec<Finding>,
}

/// One pair's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairReport {
    /// The pair.
    pub pair: String,
    /// How it ended.
    pub status: RunStatus,
    /// Per feature.
    pub features: BTreeMap<Feature, FeatureReport>,
    /// Pair-level findings (health, capabilities, snapshot failures).
    pub findings: Vec<Finding>,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// The plan executed (or planned, when dry).
    pub plan_hash: Digest,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Per pair.
    pub pairs: Vec<PairReport>,
}

impl RunReport {
    /// Whether the run changed nothing and had nothing to change.
    pub fn nothing_to_do(&self) -> bool {
        self.pairs
            .iter()
            .all(|p| p.status == RunStatus::Ok && p.features.values().all(|f| f.counts == FeatureCounts::default()))
    }

    /// The totals over every pair and feature.
    pub fn totals(&self) -> FeatureCounts {
        let mut total = FeatureCounts::default();
        for feature in self.pairs.iter().flat_map(|p| p.features.values()) {
            let c = feature.counts;
            total.added += c.added;
            total.updated += c.updated;
            total.removed += c.removed;
            total.blocked += c.blocked;
            total.unresolved += c.unresolved;
            total.unconfirmed += c.unconfirmed;
        }
        total
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
                admit_core::snapshot_hash(&self.snapshot.items, DigestAlgorithm::Blake3).map_err(|e| e.to_string())
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

    /// Health, snapshots, ingest, plans and guards for the selected pairs; writes nothing.
    pub async fn prepare(&self, options: &RunOptions, run_id: &str) -> Result<Prepared, RunError> {
        // Snapshots are shared within one run only: a later run (or `apply` proving a plan
        // fresh) on the same engine must read the sides again.
        let selected = self.selected_pairs(options)?;
        {
            let mut cache = self.lock_cache();
            *cache = SnapshotCache::default();
            for pair in &selected {
                for feature in
                    pair.features.keys().filter(|f| options.features.is_empty() || options.features.contains(f))
                {
                    for side in [Side::Source, Side::Target] {
                        *cache.uses.entry((pair.provider(side).to_owned(), *feature)).or_default() += 1;
                    }
                }
            }
        }
        let mut pairs = Vec::new();
        for pair in selected {
            pairs.push(self.prepare_pair(pair, options).await?);
        }
        let intent = PlanIntent {
            scope_id: ScopeId::new(SYNC_SCOPE),
            description: format!("sync {}", pairs.iter().map(|p| p.pair.id.as_str()).collect::<Vec<_>>().join(", ")),
            params: json!({
                "run_id": run_id,
                "options": options,
                "pairs": pairs.iter().map(|p| &p.pair).collect::<Vec<_>>(),
                "sync": self.config.sync,
            }),
        };
        let bundle = self.bundle(&pairs, &intent)?;
        let witness = witness(&pairs);
        Ok(Prepared { run_id: run_id.to_owned(), options: options.clone(), pairs, bundle, intent, witness })
    }

    fn bundle(&self, pairs: &[PairRun], intent: &PlanIntent) -> Result<PlanBundle, RunError> {
        let hash_err = |what: &str| {
            let what = what.to_owned();
            move |e: admit_core::CanonicalError| RunError::Hash { what: what.clone(), message: e.to_string() }
        };
        let intent_hash = admit_core::intent_hash(intent, DigestAlgorithm::Blake3).map_err(hash_err("intent"))?;
        let mut steps = Vec::new();
        let mut source_snapshots = BTreeMap::new();
        for pair in pairs {
            for run in &pair.features {
                let step_id = step_id(&pair.pair.id, run.feature);
                for (side, state) in [(Side::Source, &run.source), (Side::Target, &run.target)] {
                    source_snapshots.insert(format!("{step_id}/{side}"), state.snapshot_hash);
                }
                let plan = &run.plan;
                steps.push(PlanStep {
                    description: format!(
                        "{}: {} to the target ({} add(s), {} removal(s)), {} to the source ({} add(s), {} removal(s))",
                        step_id,
                        pair.pair.target,
                        plan.to_target.adds.len(),
                        plan.to_target.removals.len(),
                        pair.pair.source,
                        plan.to_source.adds.len(),
                        plan.to_source.removals.len(),
                    ),
                    reversible: plan.to_source.removals.is_empty() && plan.to_target.removals.is_empty(),
                    // The step names its writes by digest: the plan hash covers every item through
                    // it, without a JSON tree of a million items inside the bundle.
                    params: json!({
                        "pair": pair.pair.id,
                        "feature": run.feature,
                        "plan_digest": feature_plan_digest(plan, &step_id)?,
                    }),
                    step_id,
                });
            }
        }
        let plan_hash = admit_core::plan_hash(
            PLAN_SCHEMA_ID,
            &intent.scope_id,
            &intent_hash,
            &steps,
            &source_snapshots,
            DigestAlgorithm::Blake3,
        )
        .map_err(hash_err("plan"))?;
        Ok(PlanBundle {
            schema_id: PLAN_SCHEMA_ID.to_owned(),
            scope_id: intent.scope_id.clone(),
            intent_hash,
            steps,
            source_snapshots,
            plan_hash,
            created_at: timestamp(self.store.now()),
        })
    }

    async fn prepare_pair(&self, pair: &PairConfig, options: &RunOptions) -> Result<PairRun, RunError> {
        let source = self.provider(pair, Side::Source)?;
        let target = self.provider(pair, Side::Target)?;
        let (source_health, target_health) =
            (self.health(&pair.source, source).await, self.health(&pair.target, target).await);
        let mut gate = guards::health_gate(pair.mode, &source_health, &target_health);
        let mut findings = std::mem::take(&mut gate.findings);
        let mut run = PairRun { pair: pair.clone(), gate, features: Vec::new(), failed: Vec::new(), findings: vec![] };
        if !run.gate.run {
            run.findings = findings;
            return Ok(run);
        }
        for (side, provider) in [(Side::Source, source), (Side::Target, target)] {
            let may_write = match side {
                Side::Source => run.gate.write_source,
                Side::Target => run.gate.write_target,
            };
            if provider.capabilities().read_only
                && (side == Side::Target || pair.mode == crate::config::SyncMode::TwoWay)
            {
                let finding = Finding {
                    rule_id: CAPABILITY_RULE.to_owned(),
                    severity: if side == Side::Target { Severity::Error } else { Severity::Warning },
                    message: format!(
                        "{side} `{}` is read-only: writes planned for it are held{}",
                        pair.provider(side),
                        if may_write { "" } else { " (it is also not writable this run)" }
                    ),
                    scope_id: None,
                    evidence: Some(json!({ "side": side, "instance": pair.provider(side) })),
                };
                findings.push(finding);
            }
        }
        let activities = (self.activities(&pair.source, source).await, self.activities(&pair.target, target).await);
        let features: Vec<Feature> = pair
            .features
            .keys()
            .copied()
            .filter(|f| options.features.is_empty() || options.features.contains(f))
            .collect();
        let total = features.len() as u64 * 2;
        self.observer.start(&pair.id, None, Phase::Snapshot, total);
        for feature in features {
            let mut unsupported = Vec::new();
            for (side, provider) in [(Side::Source, source), (Side::Target, target)] {
                if !provider.features().supports(feature) {
                    unsupported.push(format!("{side} `{}`", pair.provider(side)));
                }
            }
            if !unsupported.is_empty() {
                findings.push(Finding {
                    rule_id: CAPABILITY_RULE.to_owned(),
                    severity: Severity::Warning,
                    message: format!("{feature} skipped: {} do(es) not hold it", unsupported.join(" and ")),
                    scope_id: None,
                    evidence: Some(json!({ "feature": feature })),
                });
                self.observer.advance(2);
                continue;
            }
            match self.prepare_feature(pair, &run.gate, feature, &activities, options).await? {
                Ok(feature_run) => run.features.push(feature_run),
                Err(failed) => run.failed.push(failed),
            }
            self.observer.advance(2);
        }
        self.observer.finish();
        run.findings = findings;
        Ok(run)
    }

    async fn side_state(
        &self,
        pair: &PairConfig,
        side: Side,
        feature: Feature,
        activities: &Activities,
    ) -> Result<(InventoryCapabilities, Arc<Taken>), ProviderError> {
        let instance = pair.provider(side);
        let provider = self.providers.get(instance).ok_or_else(|| {
            ProviderError::new(SYNC_SCOPE, admit_core::ProviderPhase::Snapshot, format!("no provider `{instance}`"))
        })?;
        let checkpoint = activities.get(feature.as_str()).cloned();
        let taken = self.snapshot(instance, provider, feature, checkpoint).await?;
        Ok((provider.capabilities(), taken))
    }

    async fn prepare_feature(
        &self,
        pair: &PairConfig,
        gate: &HealthGate,
        feature: Feature,
        activities: &(Activities, Activities),
        options: &RunOptions,
    ) -> Result<Result<FeatureRun, FailedFeature>, RunError> {
        let failed = |side: Side, message: String, class: Value| FailedFeature {
            feature,
            finding: Finding {
                rule_id: SNAPSHOT_RULE.to_owned(),
                severity: Severity::Error,
                message: format!(
                    "{feature}: the {side} `{}` snapshot failed ({message}); the feature is skipped this run",
                    pair.provider(side)
                ),
                scope_id: None,
                evidence: Some(json!({ "side": side, "feature": feature, "class": class })),
            },
        };
        let mut sides = Vec::new();
        for (side, side_activities) in [(Side::Source, &activities.0), (Side::Target, &activities.1)] {
            match self.side_state(pair, side, feature, side_activities).await {
                Ok(taken) => sides.push((side, taken)),
                Err(error) => return Ok(Err(failed(side, error.message, json!(error.class)))),
            }
        }
        // Hashing and ingest are CPU work on two independent sides: one thread each.
        let hashes = parallel(sides.iter().map(|(_, (_, taken))| || taken.hash()).collect());
        let ingest_options = IngestOptions { drop_guard: self.config.sync.drop_guard };
        let mut jobs = Vec::new();
        for ((side, (capabilities, taken)), hash) in sides.into_iter().zip(hashes) {
            let snapshot_hash = match hash {
                Ok(hash) => hash,
                Err(message) => return Ok(Err(failed(side, message, json!("invalid_input")))),
            };
            let meta = self.store.baseline_meta(&pair.id, side, feature)?;
            let unchanged = capabilities.index_semantics == IndexSemantics::Present
                && meta.as_ref().and_then(|m| m.snapshot_hash.as_deref()) == Some(snapshot_hash.to_string().as_str());
            let baseline = match (unchanged, meta) {
                (false, Some(_)) => {
                    let stored = self.store.baseline(&pair.id, side, feature)?;
                    let checkpoint = self.store.checkpoint(&pair.id, side, feature)?;
                    stored.map(|b| Baseline {
                        items: b.items.into_values().collect(),
                        checkpoint: checkpoint.map(|c| c.value),
                    })
                }
                _ => None,
            };
            jobs.push((side, capabilities, taken, snapshot_hash, unchanged, baseline));
        }
        let checkpoints: Vec<Option<String>> =
            jobs.iter().map(|(_, _, taken, ..)| taken.snapshot.checkpoint.clone()).collect();
        let mut work = Vec::new();
        let mut sides_done = Vec::new();
        for (side, capabilities, taken, snapshot_hash, unchanged, baseline) in jobs {
            work.push(move || match Arc::try_unwrap(taken) {
                // The run's last reader of this snapshot: ingest consumes it.
                Ok(Taken { snapshot, .. }) if unchanged => ingest_unchanged_owned(feature, snapshot),
                Ok(Taken { snapshot, .. }) => ingest_owned(feature, snapshot, baseline, ingest_options),
                Err(shared) if unchanged => ingest_unchanged(feature, &shared.snapshot),
                Err(shared) => ingest_with(feature, &shared.snapshot, baseline.as_ref(), ingest_options),
            });
            sides_done.push((side, capabilities, snapshot_hash, unchanged));
        }
        let ingested = parallel(work);
        let mut states: Vec<SideState> = sides_done
            .into_iter()
            .zip(checkpoints)
            .zip(ingested)
            .map(|(((side, capabilities, snapshot_hash, unchanged), checkpoint), ingested)| SideState {
                instance: pair.provider(side).to_owned(),
                capabilities,
                snapshot_hash,
                checkpoint,
                baseline_is_snapshot: unchanged,
                ingested,
            })
            .collect();
        let (Some(target), Some(source)) = (states.pop(), states.pop()) else {
            return Err(RunError::InvalidPlan("internal: two sides expected".to_owned()));
        };
        let Some(config) = PlanConfig::for_pair(pair, feature) else {
            return Err(RunError::InvalidPlan(format!("pair `{}` does not sync {feature}", pair.id)));
        };
        let tombstones: Vec<planner::Tombstone> =
            self.store.tombstones(&pair.id, feature)?.iter().map(|t| t.to_planned()).collect();
        let observed = gate.observed_deletes;
        let input = PlanInput {
            source: &source.ingested,
            target: &target.ingested,
            tombstones: &tombstones,
            config,
            source_observed_deletes: observed
                && (config.mode == crate::config::SyncMode::OneWay || source.capabilities.observed_deletes),
            target_observed_deletes: observed && target.capabilities.observed_deletes,
        };
        let outcome = planner::plan(&input).map_err(|e| RunError::InvalidPlan(e.to_string()))?;
        let mut findings = source.ingested.findings.clone();
        findings.extend(target.ingested.findings.iter().cloned());
        findings.extend(outcome.findings);
        let mut plan = outcome.plan;
        // A side down turns observed deletes off: the deletions it hides must stay observable.
        let mut settled = !source.ingested.suspect && !target.ingested.suspect && gate.observed_deletes;
        let mut blocked = 0usize;

        // Mass delete: judged against each side's inventory before the plan.
        let before = plan.to_source.removals.len() + plan.to_target.removals.len();
        let mass = guards::enforce_mass_delete(
            &mut plan,
            source.ingested.current.len(),
            target.ingested.current.len(),
            &self.config.sync.mass_delete,
            options.allow_mass_delete,
        );
        let after = plan.to_source.removals.len() + plan.to_target.removals.len();
        if after < before {
            blocked += before - after;
            settled = false;
        }
        findings.extend(mass);

        // Blackbox: quarantined items are left out until their quarantine ends.
        let quarantined = self.store.quarantined_keys(&pair.id, feature)?;
        if !quarantined.is_empty() {
            let mut held_back = 0usize;
            for side in [Side::Source, Side::Target] {
                let writes = plan.writes_mut(side);
                for list in [&mut writes.adds, &mut writes.removals] {
                    let len = list.len();
                    list.retain(|p| !quarantined.contains(&p.key));
                    held_back += len - list.len();
                }
            }
            if held_back > 0 {
                blocked += held_back;
                settled = false;
                findings.push(Finding {
                    rule_id: BLACKBOX_RULE.to_owned(),
                    severity: Severity::Warning,
                    message: format!(
                        "{feature}: {held_back} write(s) left out: the item failed {} runs in a row and is quarantined \
                         (see `cw blackbox list`)",
                        self.config.sync.blackbox.failures
                    ),
                    scope_id: None,
                    evidence: Some(json!({ "feature": feature, "count": held_back })),
                });
            }
        }

        // Sides that cannot be written this run: the writes are held and recorded as unresolved.
        let mut held = Vec::new();
        for (side, may_write, state) in
            [(Side::Source, gate.write_source, &source), (Side::Target, gate.write_target, &target)]
        {
            let reason = if state.capabilities.read_only {
                format!("`{}` is read-only", state.instance)
            } else if !may_write {
                format!("`{}` cannot be written this run (health)", state.instance)
            } else {
                continue;
            };
            let writes = std::mem::take(plan.writes_mut(side));
            if !writes.removals.is_empty() {
                settled = false;
            }
            for item in writes.adds.into_iter().chain(writes.removals) {
                held.push(HeldWrite { side, item, reason: reason.clone() });
            }
        }
        blocked += held.len();
        // The baselines have served (the plan is made); what follows needs only the sides as
        // they are. Freed now, they do not add to the run's peak memory.
        let (mut source, mut target) = (source, target);
        source.ingested.baseline = None;
        target.ingested.baseline = None;
        Ok(Ok(FeatureRun { feature, source, target, plan, held, blocked, settled, findings }))
    }

    // -----------------------------------------------------------------------------------------
    // Execution

    /// Records the plan of a `cw sync` run, claims it and executes it (or, dry, reports it).
    pub async fn sync(&self, prepared: &Prepared) -> Result<RunReport, RunError> {
        if prepared.options.dry_run {
            return Ok(dry_report(prepared));
        }
        let record = PlanRecord::pending(&prepared.bundle, false);
        self.store.record_plan(record, &prepared.record_json())?;
        self.execute(prepared, None).await
    }

    /// Records the plan for `cw plan`: it must be approved before `cw apply` runs it; with
    /// `approve`, the approval is recorded at once.
    pub fn record_for_approval(&self, prepared: &Prepared, approve: bool) -> Result<Option<Digest>, RunError> {
        let record = PlanRecord::pending(&prepared.bundle, true);
        self.store.record_plan(record, &prepared.record_json())?;
        if !approve {
            return Ok(None);
        }
        let approval = witness_hash(&prepared.witness)?;
        self.store.approve(&prepared.bundle.plan_hash, approval)?;
        Ok(Some(approval))
    }

    /// Approves a recorded plan (the plan file's witness is what the approval binds).
    pub fn approve(&self, file: &PlanFile) -> Result<Digest, RunError> {
        check_plan_file(file)?;
        let approval = witness_hash(&file.witness)?;
        if self.store.get(&file.plan.plan_hash)?.is_none() {
            return Err(RunError::Refused(format!(
                "plan {} is unknown to this state store: make it with `cw plan`",
                file.plan.plan_hash
            )));
        }
        self.store.approve(&file.plan.plan_hash, approval)?;
        Ok(approval)
    }

    /// `cw apply`: re-plans against live snapshots to prove the plan fresh (and the config
    /// unchanged), then executes exactly the plan in `file`.
    pub async fn apply(&self, file: &PlanFile) -> Result<RunReport, RunError> {
        check_plan_file(file)?;
        let run_id = file.intent.params.get("run_id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let options: RunOptions = file
            .intent
            .params
            .get("options")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| RunError::InvalidPlan(format!("plan file: intent options: {e}")))?
            .unwrap_or_default();
        if self.store.get(&file.plan.plan_hash)?.is_none() {
            return Err(RunError::Refused(format!(
                "plan {} is unknown to this state store: make it with `cw plan`",
                file.plan.plan_hash
            )));
        }
        let mut fresh = self.prepare(&options, &run_id).await?;
        if fresh.bundle.intent_hash != file.plan.intent_hash {
            return Err(RunError::Refused(format!(
                "plan {} was made for another configuration: {} changed since; make a new plan",
                file.plan.plan_hash,
                self.config.file.display()
            )));
        }
        let mut steps: BTreeMap<&str, FeaturePlan> =
            file.steps.iter().map(|(id, plan)| (id.as_str(), plan.clone())).collect();
        for pair in &mut fresh.pairs {
            for run in &mut pair.features {
                let id = step_id(&pair.pair.id, run.feature);
                match steps.remove(id.as_str()) {
                    Some(plan) => run.plan = plan,
                    // The live state has a feature the plan did not: it is stale.
                    None => run.plan = empty_plan(run.feature, pair.pair.mode),
                }
            }
        }
        let live = fresh.bundle.source_snapshots.clone();
        fresh.bundle = file.plan.clone();
        fresh.witness = file.witness.clone();
        let approval = self.store.get(&file.plan.plan_hash)?.and_then(|r| r.approval_witness_hash);
        let presented = approval.map(|_| witness_hash(&file.witness)).transpose()?;
        self.execute_claimed(&fresh, presented, &live).await
    }

    async fn execute(&self, prepared: &Prepared, approval: Option<Digest>) -> Result<RunReport, RunError> {
        let live = prepared.bundle.source_snapshots.clone();
        self.execute_claimed(prepared, approval, &live).await
    }

    async fn execute_claimed(
        &self,
        prepared: &Prepared,
        approval: Option<Digest>,
        live: &BTreeMap<String, Digest>,
    ) -> Result<RunReport, RunError> {
        let plan_ref = PlanRef { plan_hash: prepared.bundle.plan_hash, approval_witness_hash: approval };
        self.store.claim(&plan_ref, live)?;
        let mut reports = Vec::new();
        let mut all_ok = true;
        let mut any_ok = false;
        for pair in &prepared.pairs {
            let report = self.execute_pair(&prepared.run_id, pair).await?;
            all_ok &= report.status == RunStatus::Ok;
            any_ok |= matches!(report.status, RunStatus::Ok | RunStatus::Partial | RunStatus::Blocked);
            reports.push(report);
        }
        let status = if all_ok {
            ExecutionStatus::Complete
        } else if any_ok {
            ExecutionStatus::Partial
        } else {
            ExecutionStatus::Failed
        };
        self.store.finish(&prepared.bundle.plan_hash, status)?;
        Ok(RunReport {
            run_id: prepared.run_id.clone(),
            plan_hash: prepared.bundle.plan_hash,
            dry_run: false,
            pairs: reports,
        })
    }

    async fn execute_pair(&self, run_id: &str, run: &PairRun) -> Result<PairReport, RunError> {
        let started_at = self.store.now();
        let pair = &run.pair;
        let mut commit = RunCommit { pair: pair.id.clone(), ..RunCommit::default() };
        let mut features = BTreeMap::new();
        for feature_run in &run.features {
            let (report, feature_commit) = self.execute_feature(pair, feature_run).await?;
            commit.baselines.extend(feature_commit.baselines);
            commit.checkpoints.extend(feature_commit.checkpoints);
            commit.tombstones_added.extend(feature_commit.tombstones_added);
            commit.unresolved.extend(feature_commit.unresolved);
            commit.blackbox.extend(feature_commit.blackbox);
            features.insert(feature_run.feature, report);
        }
        let mut findings = run.findings.clone();
        findings.extend(run.failed.iter().map(|f| f.finding.clone()));
        let status = pair_status(run, &features);
        let counts = json!({
            "features": features.iter().map(|(f, r)| (f.as_str(), r.counts)).collect::<BTreeMap<_, _>>(),
        });
        commit.run = Some(RunRecord {
            run_id: format!("{run_id}/{}", pair.id),
            pair: pair.id.clone(),
            started_at,
            finished_at: self.store.now(),
            status,
            counts,
        });
        self.store.commit(&commit)?;
        Ok(PairReport { pair: pair.id.clone(), status, features, findings })
    }

    async fn execute_feature(
        &self,
        pair: &PairConfig,
        run: &FeatureRun,
    ) -> Result<(FeatureReport, RunCommit), RunError> {
        let feature = run.feature;
        let mut counts = FeatureCounts { blocked: run.blocked as u64, ..FeatureCounts::default() };
        let mut findings = run.findings.clone();
        let mut commit = RunCommit::default();
        let mut unresolved: BTreeMap<String, pal::inventory::UnresolvedItem> = BTreeMap::new();
        let mut settled = run.settled;
        for held in &run.held {
            counts.unresolved += 1;
            unresolved
                .insert(held.item.key.clone(), applier::unresolved_record(&held.item.item, Some(held.reason.clone())));
        }
        for side in [Side::Target, Side::Source] {
            let state = match side {
                Side::Source => &run.source,
                Side::Target => &run.target,
            };
            let writes = run.plan.writes(side);
            let provider = self.provider(pair, side)?.clone();
            let outcome = if writes.is_empty() {
                SideOutcome::default()
            } else {
                self.write_side(pair, side, state, &provider, feature, writes).await
            };
            counts.added += outcome.confirmed_adds.iter().filter(|p| p.reason != Reason::Changed).count() as u64;
            counts.updated += outcome.confirmed_adds.iter().filter(|p| p.reason == Reason::Changed).count() as u64;
            counts.removed += outcome.confirmed_removals.len() as u64;
            counts.unresolved += outcome.unresolved.len() as u64;
            counts.unconfirmed += outcome.unconfirmed as u64;
            findings.extend(outcome.findings.iter().cloned());
            if outcome.removals_incomplete {
                settled = false;
            }
            for (item, reason) in &outcome.unresolved {
                commit.blackbox.push(BlackboxUpdate {
                    feature,
                    key: item.key.clone(),
                    outcome: ItemOutcome::Failed { reason: reason.clone() },
                });
                if guards::has_ids(&applier::unresolved_record(&item.item, None)) {
                    unresolved.insert(item.key.clone(), applier::unresolved_record(&item.item, reason.clone()));
                }
            }
            for item in outcome.confirmed_adds.iter().chain(&outcome.confirmed_removals) {
                commit.blackbox.push(BlackboxUpdate {
                    feature,
                    key: item.key.clone(),
                    outcome: ItemOutcome::Succeeded,
                });
            }
            if settled {
                // The baseline is exactly this snapshot when nothing was written to the side
                // and every item of it is persisted; then its hash is recorded with it, and a
                // baseline that already is this snapshot is not rewritten.
                let exact = outcome.confirmed_adds.is_empty()
                    && outcome.confirmed_removals.is_empty()
                    && outcome.verified.is_none()
                    && state.capabilities.index_semantics == IndexSemantics::Present
                    && !state.ingested.suspect
                    && all_persistable(&state.ingested.current);
                if !(exact && state.baseline_is_snapshot) {
                    commit.baselines.push(BaselineWrite {
                        side,
                        feature,
                        items: next_baseline(state, &outcome),
                        snapshot_hash: exact.then(|| state.snapshot_hash.to_string()),
                    });
                }
                let checkpoint = outcome.checkpoint_after.clone().or_else(|| state.checkpoint.clone());
                if let Some(value) = checkpoint {
                    commit.checkpoints.push(CheckpointWrite { side, feature, value });
                }
            }
        }
        if !settled {
            // Both sides keep their previous baselines, so what was held back is observed again.
            commit.baselines.clear();
            commit.checkpoints.clear();
        }
        commit.tombstones_added = run.plan.tombstones.iter().map(TombstoneWrite::planned).collect();
        commit.unresolved.push(UnresolvedWrite { feature, items: unresolved });
        Ok((FeatureReport { counts, findings }, commit))
    }

    async fn write_side<'p>(
        &self,
        pair: &PairConfig,
        side: Side,
        state: &SideState,
        provider: &Arc<dyn InventoryProvider>,
        feature: Feature,
        writes: &'p planner::Writes,
    ) -> SideOutcome<'p> {
        let instance = pair.provider(side);
        let chunk_size = state.capabilities.chunk_size.max(1) as usize;
        let mut outcome = SideOutcome::default();
        self.observer.start(&pair.id, Some(feature), Phase::Apply, (writes.adds.len() + writes.removals.len()) as u64);
        for (op, items) in [(WriteOp::Add, &writes.adds), (WriteOp::Remove, &writes.removals)] {
            for chunk in items.chunks(chunk_size) {
                let mut spec = Self::spec(instance, op.name());
                // Presence and values are upserts; only a history add creates something new.
                spec.idempotent = op == WriteOp::Remove || feature != Feature::History;
                let payload: Vec<InventoryItem> = chunk.iter().map(|p| p.item.clone()).collect();
                let result = self
                    .pipeline
                    .call(&spec, || {
                        let payload = payload.clone();
                        let provider = provider.clone();
                        async move {
                            match op {
                                WriteOp::Add => provider.add(payload, feature, false).await,
                                WriteOp::Remove => provider.remove(payload, feature, false).await,
                            }
                        }
                    })
                    .await;
                outcome.record(instance, feature, op, chunk, result);
                self.observer.advance(chunk.len() as u64);
            }
        }
        self.observer.finish();
        self.forget_snapshot(instance, feature);
        if state.capabilities.verify_after_write
            && !(outcome.confirmed_adds.is_empty() && outcome.confirmed_removals.is_empty())
        {
            self.observer.start(&pair.id, Some(feature), Phase::Verify, 1);
            self.verify(instance, provider, feature, &mut outcome).await;
            self.observer.finish();
        }
        if state.capabilities.checkpoint {
            outcome.checkpoint_after = self.activities(instance, provider).await.get(feature.as_str()).cloned();
        }
        outcome
    }

    /// Re-reads the side and downgrades confirmations the live snapshot does not show.
    async fn verify(
        &self,
        instance: &str,
        provider: &Arc<dyn InventoryProvider>,
        feature: Feature,
        outcome: &mut SideOutcome<'_>,
    ) {
        let spec = Self::spec(instance, "build_index");
        let live = match self.pipeline.call(&spec, || provider.build_index(feature)).await {
            Ok(items) => Inventory::new(feature, &items),
            Err(error) => {
                outcome.findings.push(Finding {
                    rule_id: applier::APPLIER_RULE.to_owned(),
                    severity: Severity::Warning,
                    message: format!(
                        "{feature}: verify-after-write of `{instance}` failed ({}); confirmations stand",
                        error.message
                    ),
                    scope_id: None,
                    evidence: None,
                });
                return;
            }
        };
        let seen = |item: &PlannedItem| {
            let probe = Inventory::new(feature, std::slice::from_ref(&item.item));
            probe.entries().next().is_some_and(|entry| {
                live.same_item(entry).iter().any(|e| {
                    feature != Feature::History || crate::ingest::same_play_time(e.watched_at(), entry.watched_at())
                })
            })
        };
        let (kept, lost): (Vec<&PlannedItem>, Vec<&PlannedItem>) =
            std::mem::take(&mut outcome.confirmed_adds).into_iter().partition(|p| seen(p));
        outcome.confirmed_adds = kept;
        let (gone, still): (Vec<&PlannedItem>, Vec<&PlannedItem>) =
            std::mem::take(&mut outcome.confirmed_removals).into_iter().partition(|p| !seen(p));
        outcome.confirmed_removals = gone;
        if !still.is_empty() {
            outcome.removals_incomplete = true;
        }
        let downgraded = lost.len() + still.len();
        for item in lost.into_iter().chain(still) {
            outcome.unresolved.push((item, Some("confirmed, but not seen after the write".to_owned())));
        }
        if downgraded > 0 {
            outcome.findings.push(Finding {
                rule_id: applier::APPLIER_RULE.to_owned(),
                severity: Severity::Warning,
                message: format!("{feature}: {downgraded} confirmed write(s) on `{instance}` not seen after the write"),
                scope_id: None,
                evidence: Some(json!({ "feature": feature, "count": downgraded })),
            });
        }
        outcome.verified = Some(live);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteOp {
    Add,
    Remove,
}

impl WriteOp {
    fn name(self) -> &'static str {
        match self {
            WriteOp::Add => "add",
            WriteOp::Remove => "remove",
        }
    }
}

/// What the writes to one side achieved.
#[derive(Debug, Default)]
struct SideOutcome<'p> {
    confirmed_adds: Vec<&'p PlannedItem>,
    confirmed_removals: Vec<&'p PlannedItem>,
    unresolved: Vec<(&'p PlannedItem, Option<String>)>,
    unconfirmed: usize,
    removals_incomplete: bool,
    findings: Vec<Finding>,
    verified: Option<Inventory>,
    checkpoint_after: Option<String>,
}

impl<'p> SideOutcome<'p> {
    fn record(
        &mut self,
        instance: &str,
        feature: Feature,
        op: WriteOp,
        chunk: &'p [PlannedItem],
        result: Result<WriteResult, ProviderError>,
    ) {
        let verdict = match result {
            Ok(result) => applier::judge(instance, feature, chunk, &result),
            Err(error) => {
                let reason = Some(format!("{} failed: {}", op.name(), error.message));
                ChunkVerdict {
                    unresolved: (0..chunk.len()).map(|i| (i, reason.clone())).collect(),
                    ..Default::default()
                }
            }
        };
        let confirmed = match op {
            WriteOp::Add => &mut self.confirmed_adds,
            WriteOp::Remove => &mut self.confirmed_removals,
        };
        confirmed.extend(verdict.confirmed.iter().map(|&i| &chunk[i]));
        self.unresolved.extend(verdict.unresolved.iter().map(|(i, reason)| (&chunk[*i], reason.clone())));
        self.unconfirmed += verdict.unconfirmed.len();
        if op == WriteOp::Remove && verdict.confirmed.len() < chunk.len() {
            self.removals_incomplete = true;
        }
        self.findings.extend(verdict.findings);
    }
}

/// The next baseline of a side: what it holds now, as verified, or as the confirmed writes
/// changed it. Keyed by entry key, so every history play is kept.
fn next_baseline(state: &SideState, outcome: &SideOutcome<'_>) -> BTreeMap<String, InventoryItem> {
    if let Some(live) = &outcome.verified {
        return live.persistable_items();
    }
    let mut items = state.ingested.current.persistable_items();
    for removed in &outcome.confirmed_removals {
        items.remove(&removed.key);
    }
    for added in &outcome.confirmed_adds {
        if persistable(&added.item) {
            items.insert(added.key.clone(), added.item.clone());
        }
    }
    items
}

fn pair_status(run: &PairRun, features: &BTreeMap<Feature, FeatureReport>) -> RunStatus {
    if !run.gate.run {
        return RunStatus::Skipped;
    }
    if !run.failed.is_empty() {
        return if run.features.is_empty() { RunStatus::Failed } else { RunStatus::Partial };
    }
    if features.values().any(|f| !f.counts.is_quiet()) {
        return RunStatus::Partial;
    }
    if features.values().any(|f| f.counts.blocked > 0) {
        return RunStatus::Blocked;
    }
    RunStatus::Ok
}

fn dry_report(prepared: &Prepared) -> RunReport {
    let pairs = prepared
        .pairs
        .iter()
        .map(|pair| {
            let features = pair
                .features
                .iter()
                .map(|run| {
                    let mut counts = FeatureCounts {
                        blocked: run.blocked as u64,
                        unresolved: run.held.len() as u64,
                        ..Default::default()
                    };
                    for writes in [&run.plan.to_source, &run.plan.to_target] {
                        counts.added += writes.adds.iter().filter(|p| p.reason != Reason::Changed).count() as u64;
                        counts.updated += writes.adds.iter().filter(|p| p.reason == Reason::Changed).count() as u64;
                        counts.removed += writes.removals.len() as u64;
                    }
                    (run.feature, FeatureReport { counts, findings: run.findings.clone() })
                })
                .collect::<BTreeMap<_, _>>();
            let mut findings = pair.findings.clone();
            findings.extend(pair.failed.iter().map(|f| f.finding.clone()));
            let status = if !pair.gate.run {
                RunStatus::Skipped
            } else if !pair.failed.is_empty() {
                RunStatus::Partial
            } else if features.values().any(|f| f.counts.blocked > 0) {
                RunStatus::Blocked
            } else {
                RunStatus::Ok
            };
            PairReport { pair: pair.pair.id.clone(), status, features, findings }
        })
        .collect();
    RunReport { run_id: prepared.run_id.clone(), plan_hash: prepared.bundle.plan_hash, dry_run: true, pairs }
}

/// The guards' witness: one `predicate_evaluated` fact per guard, pair and feature, triggered or
/// not, and every finding.
fn witness(pairs: &[PairRun]) -> Witness {
    let mut facts = Vec::new();
    let mut findings = Vec::new();
    let fact = |rule_id: &str, name: &str, found: usize| Fact::PredicateEvaluated {
        rule_id: rule_id.to_owned(),
        scope_id: ScopeId::new(SYNC_SCOPE),
        predicate_id: format!("{SYNC_SCOPE}/{name}@1"),
        triggered: found > 0,
        findings: found as u64,
    };
    let count = |all: &[Finding], rule: &str| all.iter().filter(|f| f.rule_id == rule).count();
    for pair in pairs {
        facts.push(fact(&format!("{}/health", pair.pair.id), "health", count(&pair.findings, guards::HEALTH_RULE)));
        findings.extend(pair.findings.iter().cloned());
        findings.extend(pair.failed.iter().map(|f| f.finding.clone()));
        for run in &pair.features {
            let step = step_id(&pair.pair.id, run.feature);
            for (name, rule) in [
                ("drop_guard", crate::ingest::DROP_GUARD_RULE),
                ("mass_delete", guards::MASS_DELETE_RULE),
                ("blackbox", BLACKBOX_RULE),
            ] {
                facts.push(fact(&format!("{step}/{name}"), name, count(&run.findings, rule)));
            }
            findings.extend(run.findings.iter().cloned());
        }
    }
    let verdict = if findings.iter().any(|f| f.severity == Severity::Error) {
        Verdict::Inadmissible
    } else {
        Verdict::Admissible
    };
    let mut witness = Witness::new(SYNC_SCOPE, verdict);
    witness.facts = facts;
    witness.findings = findings;
    witness
}

fn step_id(pair: &str, feature: Feature) -> String {
    format!("{pair}/{feature}")
}

fn empty_plan(feature: Feature, mode: crate::config::SyncMode) -> FeaturePlan {
    FeaturePlan {
        feature,
        mode,
        bootstrap: false,
        to_source: planner::Writes::default(),
        to_target: planner::Writes::default(),
        tombstones: Vec::new(),
    }
}

fn timestamp(at: time::OffsetDateTime) -> Timestamp {
    at.format(&Rfc3339).ok().and_then(|text| Timestamp::parse(&text).ok()).unwrap_or_else(Timestamp::now_utc)
}

/// Checks a plan file's own integrity: its schema, and that its hashes are those of its content.
pub fn check_plan_file(file: &PlanFile) -> Result<(), RunError> {
    if file.schema_id != PLAN_FILE_SCHEMA_ID {
        return Err(RunError::InvalidPlan(format!(
            "not a cw plan file: schema_id is `{}`, expected `{PLAN_FILE_SCHEMA_ID}`",
            file.schema_id
        )));
    }
    let hash_err =
        |e: admit_core::CanonicalError| RunError::Hash { what: "plan file".to_owned(), message: e.to_string() };
    let algorithm = file.plan.plan_hash.algorithm();
    let intent_hash = admit_core::intent_hash(&file.intent, algorithm).map_err(hash_err)?;
    if intent_hash != file.plan.intent_hash {
        return Err(RunError::InvalidPlan(format!(
            "plan file: the intent does not match the plan's intent_hash ({} ≠ {}): the file was altered",
            intent_hash, file.plan.intent_hash
        )));
    }
    let plan_hash = admit_core::plan_hash(
        &file.plan.schema_id,
        &file.plan.scope_id,
        &file.plan.intent_hash,
        &file.plan.steps,
        &file.plan.source_snapshots,
        algorithm,
    )
    .map_err(hash_err)?;
    if plan_hash != file.plan.plan_hash {
        return Err(RunError::InvalidPlan(format!(
            "plan file: the steps do not match plan_hash ({plan_hash} ≠ {}): the file was altered",
            file.plan.plan_hash
        )));
    }
    if file.steps.len() != file.plan.steps.len() {
        return Err(RunError::InvalidPlan(format!(
            "plan file: {} step(s) of writes for {} plan step(s): the file was altered",
            file.steps.len(),
            file.plan.steps.len()
        )));
    }
    for step in &file.plan.steps {
        let recorded = step.params.get("plan_digest").and_then(Value::as_str).unwrap_or_default();
        let Some(plan) = file.steps.get(&step.step_id) else {
            return Err(RunError::InvalidPlan(format!(
                "plan file: no writes for step `{}`: the file was altered",
                step.step_id
            )));
        };
        let digest = DigestAlgorithm::Blake3
            .digest_canonical(plan)
            .map_err(|e| RunError::Hash { what: format!("plan of {}", step.step_id), message: e.to_string() })?;
        if digest.to_string() != recorded {
            return Err(RunError::InvalidPlan(format!(
                "plan file: the writes of step `{}` do not match its plan_digest ({digest} ≠ {recorded}): the file \
                 was altered",
                step.step_id
            )));
        }
    }
    Ok(())
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
