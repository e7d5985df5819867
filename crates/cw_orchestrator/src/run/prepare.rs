//! Preparing a run: snapshots, ingest, plans and guards for each pair, bound into a
//! `PlanBundle` and a witness. Nothing here writes to a provider or the state store.

use super::*;

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
    pub(super) fn record_json(&self) -> Value {
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

impl<'a> Engine<'a> {
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
        let mut prepared = Vec::new();
        for ((side, (capabilities, taken)), hash) in sides.into_iter().zip(hashes) {
            let snapshot_hash = match hash {
                Ok(hash) => hash,
                Err(message) => return Ok(Err(failed(side, message, json!("invalid_input")))),
            };
            let meta = self.store.baseline_meta(&pair.id, side, feature)?;
            let unchanged = capabilities.index_semantics == IndexSemantics::Present
                && meta.as_ref().and_then(|m| m.snapshot_hash.as_deref()) == Some(snapshot_hash.to_string().as_str());
            let read_baseline = (!unchanged).then_some(meta).flatten().map(|meta| meta.item_count);
            prepared.push((side, capabilities, taken, snapshot_hash, unchanged, read_baseline));
        }
        let checkpoints: Vec<Option<String>> =
            prepared.iter().map(|(_, _, taken, ..)| taken.snapshot.checkpoint.clone()).collect();
        // Each side's snapshot, and each baseline to read back, is indexed on a thread of its
        // own: reading and indexing a large baseline takes as long as indexing a snapshot.
        let mut work: Vec<Box<dyn FnOnce() -> Result<Part, StateError> + Send + '_>> = Vec::new();
        let mut sides_done = Vec::new();
        for (side, capabilities, taken, snapshot_hash, unchanged, read_baseline) in prepared {
            // A baseline that only has to be matched against is read without its items (a third
            // of the memory); see `whole_baseline_if_it_stands_in` for when it is not.
            let keys_only = taken.snapshot.semantics == IndexSemantics::Present;
            work.push(Box::new(move || {
                Ok(Part::Snapshot(match Arc::try_unwrap(taken) {
                    // The run's last reader of this snapshot: indexing consumes it.
                    Ok(Taken { snapshot, .. }) => IndexedSnapshot::new(feature, snapshot),
                    Err(shared) => IndexedSnapshot::of_shared(feature, &shared.snapshot),
                }))
            }));
            if let Some(count) = read_baseline {
                let (store, pair_id) = (self.store, pair.id.as_str());
                work.push(Box::new(move || {
                    if !keys_only {
                        return read_whole_baseline(store, pair_id, side, feature).map(Part::Baseline);
                    }
                    let checkpoint = store.checkpoint(pair_id, side, feature)?.map(|c| c.value);
                    let mut baseline = IndexedBaseline::keys_only(feature, count);
                    let found = store.each_baseline_item(pair_id, side, feature, |item| baseline.push(item))?;
                    Ok(Part::Baseline(found.then(|| baseline.finish(checkpoint))))
                }));
            }
            sides_done.push((side, capabilities, snapshot_hash, unchanged, read_baseline.is_some()));
        }
        let mut parts = parallel(work).into_iter();
        let mut ingested = Vec::new();
        for (side, _, _, unchanged, read_baseline) in &sides_done {
            let Some(Part::Snapshot(snapshot)) = parts.next().transpose()? else {
                return Err(RunError::InvalidPlan("internal: a snapshot part expected".to_owned()));
            };
            let baseline = match read_baseline.then(|| parts.next()).flatten().transpose()? {
                Some(Part::Baseline(Some(baseline)))
                    if !baseline.keeps_items() && baseline_stands_in(&snapshot, &baseline, ingest_options) =>
                {
                    // Rare (a delta snapshot, or the drop guard fires): the baseline's items are
                    // needed after all.
                    drop(baseline);
                    read_whole_baseline(self.store, &pair.id, *side, feature)?
                }
                Some(Part::Baseline(baseline)) => baseline,
                _ => None,
            };
            ingested.push(if *unchanged {
                ingest_indexed_unchanged(feature, snapshot)
            } else {
                ingest_indexed(feature, snapshot, baseline, ingest_options)
            });
        }
        let mut states: Vec<SideState> = sides_done
            .into_iter()
            .zip(checkpoints)
            .zip(ingested)
            .map(|(((side, capabilities, snapshot_hash, unchanged, _), checkpoint), ingested)| SideState {
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
}

/// A side's snapshot or baseline, indexed on a thread of its own.
enum Part {
    Snapshot(IndexedSnapshot),
    Baseline(Option<IndexedBaseline>),
}

/// A side's committed baseline, with its items, indexed (`None` if none was committed).
fn read_whole_baseline(
    store: &StateStore,
    pair: &str,
    side: Side,
    feature: Feature,
) -> Result<Option<IndexedBaseline>, StateError> {
    let checkpoint = store.checkpoint(pair, side, feature)?.map(|c| c.value);
    let items = store.baseline_items(pair, side, feature)?;
    Ok(items.map(|items| IndexedBaseline::new(feature, Baseline { items, checkpoint })))
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

pub(super) fn empty_plan(feature: Feature, mode: crate::config::SyncMode) -> FeaturePlan {
    FeaturePlan {
        feature,
        mode,
        bootstrap: false,
        to_source: planner::Writes::default(),
        to_target: planner::Writes::default(),
        tombstones: Vec::new(),
    }
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
