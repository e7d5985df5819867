//! Guardrails (CONTRACTS §3, "Guardrails"), as pure functions that return findings: health
//! gating, the drop guard's rule, the mass-delete guard, unresolved items without ids, and the
//! blackbox quarantine rule. They are on by default; only the mass-delete guard can be lifted, and
//! only explicitly.
//!
//! Bookkeeping (failure counts, quarantines, baselines) is the state store's; these functions only
//! decide. The tunable limits come from the configuration ([`MassDeleteConfig`],
//! [`BlackboxConfig`]), whose defaults are the contract's values.

use admit_core::{Finding, Severity};
use pal::inventory::{Feature, UnresolvedItem};
use pal::keys::normalize_id_map;
use pal::{HealthReport, HealthStatus};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::config::{BlackboxConfig, MassDeleteConfig, Side, SyncMode};
use crate::ingest::parse_instant;
use crate::planner::FeaturePlan;

/// Rule id of health-gate findings.
pub const HEALTH_RULE: &str = "cw.health";
/// Rule id of mass-delete findings.
pub const MASS_DELETE_RULE: &str = "cw.mass_delete";
/// Rule id of findings about unresolved items without ids.
pub const UNRESOLVED_WITHOUT_IDS_RULE: &str = "cw.unresolved_without_ids";

/// The drop guard applies only to baselines of at least this many items.
pub const DROP_GUARD_MIN_BASELINE: usize = 20;

// ---------------------------------------------------------------------------------------------
// Drop guard

/// The largest snapshot that counts as collapsed next to a baseline of `previous` items:
/// `max(1, 10 % of previous)` (rounded down).
pub fn drop_guard_threshold(previous: usize) -> usize {
    (previous / 10).max(1)
}

/// The drop guard's rule: a `present` snapshot of `current` items, after a baseline of
/// `previous` items, is suspect when the baseline has at least [`DROP_GUARD_MIN_BASELINE`]
/// items, the snapshot has 0 items or at most [`drop_guard_threshold`], and the checkpoint has
/// not advanced.
///
/// ```
/// use cw_orchestrator::guards::is_suspect_drop;
/// assert!(is_suspect_drop(500, 0, false));
/// assert!(!is_suspect_drop(500, 0, true)); // the provider says something changed
/// assert!(!is_suspect_drop(19, 0, false)); // too small a baseline to judge
/// ```
pub fn is_suspect_drop(previous: usize, current: usize, checkpoint_advanced: bool) -> bool {
    previous >= DROP_GUARD_MIN_BASELINE && current <= drop_guard_threshold(previous) && !checkpoint_advanced
}

/// Whether a checkpoint advanced: both are known and the current one is strictly later (as RFC
/// 3339 instants, or epoch seconds; other text compares as strings). An unknown checkpoint on
/// either side has not advanced: without evidence of a change, a collapsed snapshot stays
/// suspect.
pub fn checkpoint_advanced(previous: Option<&str>, current: Option<&str>) -> bool {
    let (Some(previous), Some(current)) = (previous, current) else {
        return false;
    };
    match (parse_instant(previous), parse_instant(current)) {
        (Some(p), Some(c)) => c > p,
        _ => current > previous,
    }
}

// ---------------------------------------------------------------------------------------------
// Mass delete

/// The most removals one feature may make on a side holding `inventory` items:
/// `max(min, max_ratio × inventory)`, rounded down (by default `max(10, 10 % of inventory)`).
pub fn mass_delete_limit(inventory: usize, policy: &MassDeleteConfig) -> usize {
    // The epsilon keeps a product like 0.1 × 70 = 7.000…01 or 6.999…9 on the integer it means.
    let share = (policy.max_ratio * inventory as f64 + 1e-9).floor();
    // `share` is finite and non-negative (max_ratio is validated to (0, 1]); the cast saturates.
    (share as usize).max(policy.min as usize)
}

/// The mass-delete guard for `removals` on `side` (holding `inventory` items): `None` within
/// the limit; above it, an error finding (blocked) or, when `allow` is set, a warning (lifted).
pub fn check_mass_delete(
    feature: Feature,
    side: Side,
    removals: usize,
    inventory: usize,
    policy: &MassDeleteConfig,
    allow: bool,
) -> Option<Finding> {
    let limit = mass_delete_limit(inventory, policy);
    if removals <= limit {
        return None;
    }
    let (severity, verdict) = if allow {
        (Severity::Warning, "allowed explicitly")
    } else {
        (Severity::Error, "blocked; allow mass deletes explicitly to run them")
    };
    Some(Finding {
        rule_id: MASS_DELETE_RULE.to_owned(),
        severity,
        message: format!(
            "{feature}: {removals} removal(s) on the {side} exceed the limit of {limit} ({inventory} item(s)): {verdict}"
        ),
        scope_id: None,
        evidence: Some(json!({
            "feature": feature, "side": side, "removals": removals, "inventory": inventory,
            "limit": limit, "allowed": allow,
        })),
    })
}

/// Applies the mass-delete guard to both sides of a plan, given each side's inventory size
/// (its effective snapshot, before the plan). A blocked side loses its removals, and the plan
/// loses the tombstones of the deletions those removals propagated (so the same deletions are
/// observed again next run, when the caller must not have advanced that feature's baselines).
pub fn enforce_mass_delete(
    plan: &mut FeaturePlan,
    source_inventory: usize,
    target_inventory: usize,
    policy: &MassDeleteConfig,
    allow: bool,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (side, inventory) in [(Side::Source, source_inventory), (Side::Target, target_inventory)] {
        let removals = plan.writes(side).removals.len();
        let Some(finding) = check_mass_delete(plan.feature, side, removals, inventory, policy, allow) else {
            continue;
        };
        if finding.severity == Severity::Error {
            plan.writes_mut(side).removals.clear();
            plan.tombstones.retain(|t| t.deleted_on == side);
        }
        findings.push(finding);
    }
    findings
}

// ---------------------------------------------------------------------------------------------
// Health

/// What a pair may do this run, given both sides' health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthGate {
    /// Whether the pair runs at all.
    pub run: bool,
    /// Whether writes may be sent to the source side (two-way only).
    pub write_source: bool,
    /// Whether writes may be sent to the target side. When the pair runs but a side may not be
    /// written, the writes planned for it are recorded as unresolved.
    pub write_target: bool,
    /// Whether deletions observed in snapshots may be acted on (off while a side is down).
    pub observed_deletes: bool,
    /// Why.
    pub findings: Vec<Finding>,
}

/// The health gate (CONTRACTS §3): `auth_failed` on either side skips the pair; a `down`
/// source skips it; a `down` target gets no writes (record them as unresolved); observed
/// deletes are disabled while a side is down. `degraded` runs, with a warning.
///
/// Two-way, each side is the source of the other: a `down` side means the direction it feeds is
/// skipped and the direction that writes to it is recorded as unresolved, so neither side is
/// written; both `down` skips the pair.
pub fn health_gate(mode: SyncMode, source: &HealthReport, target: &HealthReport) -> HealthGate {
    let mut findings = Vec::new();
    let mut note = |side: Side, report: &HealthReport, severity: Severity, effect: &str| {
        let reason = report.reason.as_deref().unwrap_or("no reason given");
        findings.push(Finding {
            rule_id: HEALTH_RULE.to_owned(),
            severity,
            message: format!("{side} is {:?} ({reason}): {effect}", report.status),
            scope_id: None,
            evidence: Some(json!({ "side": side, "status": report.status, "reason": report.reason })),
        });
    };
    let statuses = [(Side::Source, source), (Side::Target, target)];
    for (side, report) in statuses {
        if report.status == HealthStatus::Degraded {
            note(side, report, Severity::Warning, "running anyway");
        }
    }
    let skip = HealthGate {
        run: false,
        write_source: false,
        write_target: false,
        observed_deletes: false,
        findings: Vec::new(),
    };
    if statuses.iter().any(|(_, r)| r.status == HealthStatus::AuthFailed) {
        for (side, report) in statuses.iter().filter(|(_, r)| r.status == HealthStatus::AuthFailed) {
            note(*side, report, Severity::Error, "pair skipped");
        }
        return HealthGate { findings, ..skip };
    }
    let source_down = source.status == HealthStatus::Down;
    let target_down = target.status == HealthStatus::Down;
    match mode {
        SyncMode::OneWay if source_down => {
            note(Side::Source, source, Severity::Error, "pair skipped");
            HealthGate { findings, ..skip }
        }
        SyncMode::OneWay if target_down => {
            note(Side::Target, target, Severity::Warning, "no writes; planned writes recorded as unresolved");
            HealthGate { run: true, findings, ..skip }
        }
        SyncMode::OneWay => {
            HealthGate { run: true, write_source: false, write_target: true, observed_deletes: true, findings }
        }
        SyncMode::TwoWay if source_down && target_down => {
            note(Side::Source, source, Severity::Error, "pair skipped");
            note(Side::Target, target, Severity::Error, "pair skipped");
            HealthGate { findings, ..skip }
        }
        SyncMode::TwoWay if source_down || target_down => {
            let (side, report) = if source_down { (Side::Source, source) } else { (Side::Target, target) };
            note(
                side,
                report,
                Severity::Warning,
                "no writes either way; writes planned for it recorded as unresolved; observed deletes off",
            );
            HealthGate { run: true, findings, ..skip }
        }
        SyncMode::TwoWay => {
            HealthGate { run: true, write_source: true, write_target: true, observed_deletes: true, findings }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unresolved items

/// Whether an unresolved item carries at least one usable id (after normalisation: sentinels
/// such as `"0"` or `"null"` are no ids). Only such items can be tracked and retried.
pub fn has_ids(item: &UnresolvedItem) -> bool {
    !normalize_id_map(&item.ids).is_empty()
}

/// Reports unresolved items without ids as a provider bug: one error finding naming the provider
/// and how many, `None` when every item has ids. The caller records and retries only the items
/// [`has_ids`] accepts; these are not retried.
pub fn unresolved_without_ids(provider: &str, feature: Feature, items: &[UnresolvedItem]) -> Option<Finding> {
    let bad: Vec<&UnresolvedItem> = items.iter().filter(|i| !has_ids(i)).collect();
    if bad.is_empty() {
        return None;
    }
    let reasons: Vec<Option<&str>> = bad.iter().map(|i| i.reason.as_deref()).collect();
    Some(Finding {
        rule_id: UNRESOLVED_WITHOUT_IDS_RULE.to_owned(),
        severity: Severity::Error,
        message: format!(
            "{provider} reported {} unresolved {feature} item(s) without ids: a provider bug; they cannot be tracked \
             and are not retried",
            bad.len()
        ),
        scope_id: None,
        evidence: Some(json!({ "provider": provider, "feature": feature, "count": bad.len(), "reasons": reasons })),
    })
}

// ---------------------------------------------------------------------------------------------
// Blackbox

/// An item's blackbox state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blackbox {
    /// Fewer consecutive failures than the policy allows: keep trying.
    Clear,
    /// Quarantined: leave it out of plans until then.
    Quarantined {
        /// When the quarantine ends.
        until: OffsetDateTime,
    },
    /// The quarantine is over: try again (one more failure quarantines it again at once; a
    /// success clears the count).
    Released,
}

/// The blackbox rule: an item that failed `policy.failures` consecutive runs (default 3), the
/// last at `last_failure_at`, is quarantined for `policy.quarantine_days` (default 30) from that
/// failure. The state store keeps the counts.
///
/// ```
/// use cw_orchestrator::config::BlackboxConfig;
/// use cw_orchestrator::guards::{Blackbox, blackbox};
/// use time::{Duration, OffsetDateTime};
/// let policy = BlackboxConfig::default();
/// let failed = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01
/// let until = failed + Duration::days(30);
/// assert_eq!(blackbox(2, failed, failed, &policy), Blackbox::Clear);
/// assert_eq!(blackbox(3, failed, failed, &policy), Blackbox::Quarantined { until });
/// assert_eq!(blackbox(3, failed, until, &policy), Blackbox::Released);
/// ```
pub fn blackbox(
    consecutive_failures: u32,
    last_failure_at: OffsetDateTime,
    now: OffsetDateTime,
    policy: &BlackboxConfig,
) -> Blackbox {
    if consecutive_failures < policy.failures.max(1) {
        return Blackbox::Clear;
    }
    let until = last_failure_at + Duration::days(i64::from(policy.quarantine_days));
    if now < until { Blackbox::Quarantined { until } } else { Blackbox::Released }
}
