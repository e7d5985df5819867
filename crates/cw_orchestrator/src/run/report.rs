//! What a run reports: counts per pair and feature, findings, and the run's status.

use super::*;

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

pub(super) fn pair_status(run: &PairRun, features: &BTreeMap<Feature, FeatureReport>) -> RunStatus {
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

pub(super) fn dry_report(prepared: &Prepared) -> RunReport {
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
