//! Executing a run: the plan store's claim, chunked writes through the pipeline with exact
//! accounting, verify-after-write, and one state commit per pair.

use super::prepare::empty_plan;
use super::report::{dry_report, pair_status};
use super::*;

impl Engine<'_> {
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
            Ok(items) => Inventory::from_items(feature, items),
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
        let seen = |planned: &[&PlannedItem]| {
            let items: Vec<&InventoryItem> = planned.iter().map(|p| &p.item).collect();
            live.holds(&items)
        };
        let adds = std::mem::take(&mut outcome.confirmed_adds);
        let (mut kept, mut lost) = (Vec::new(), Vec::new());
        for (planned, seen) in adds.iter().zip(seen(&adds)) {
            if seen { kept.push(*planned) } else { lost.push(*planned) }
        }
        outcome.confirmed_adds = kept;
        let removals = std::mem::take(&mut outcome.confirmed_removals);
        let (mut gone, mut still) = (Vec::new(), Vec::new());
        for (planned, seen) in removals.iter().zip(seen(&removals)) {
            if seen { still.push(*planned) } else { gone.push(*planned) }
        }
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
/// changed it. Keyed by entry key, so every history play is kept; written by the store straight
/// from the side, without a copy of its items.
fn next_baseline(state: &SideState, outcome: &SideOutcome<'_>) -> BaselineItems {
    if let Some(live) = &outcome.verified {
        return BaselineItems::Side { side: live.clone(), removed: BTreeSet::new(), added: BTreeMap::new() };
    }
    BaselineItems::Side {
        side: state.ingested.current.clone(),
        removed: outcome.confirmed_removals.iter().map(|p| p.key.clone()).collect(),
        added: outcome
            .confirmed_adds
            .iter()
            .filter(|p| persistable(&p.item))
            .map(|p| (p.key.clone(), p.item.clone()))
            .collect(),
    }
}
