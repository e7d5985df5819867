#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Guardrails (CONTRACTS §3, "Guardrails"): health gating, the drop guard's rule, mass delete,
//! unresolved items without ids, the blackbox quarantine.

use admit_core::Severity;
use cw_orchestrator::config::{BlackboxConfig, MassDeleteConfig};
use cw_orchestrator::guards::{
    Blackbox, HEALTH_RULE, MASS_DELETE_RULE, UNRESOLVED_WITHOUT_IDS_RULE, blackbox, check_mass_delete,
    checkpoint_advanced, enforce_mass_delete, has_ids, health_gate, is_suspect_drop, mass_delete_limit,
    unresolved_without_ids,
};
use cw_orchestrator::ingest::{Baseline, Snapshot, ingest};
use cw_orchestrator::planner::{PlanConfig, PlanInput, Side, SyncMode, Tombstone, plan};
use pal::inventory::{Feature, InventoryItem, UnresolvedItem};
use pal::{HealthReport, HealthStatus};
use serde_json::json;
use time::OffsetDateTime;

fn movies(range: std::ops::Range<usize>) -> Vec<InventoryItem> {
    range
        .map(|i| serde_json::from_value(json!({"ids": {"tmdb": i.to_string(), "imdb": format!("tt{i}")}})).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Health

#[test]
fn health_gate_table() {
    use HealthStatus::{AuthFailed, Degraded, Down, Ok};
    // (mode, source, target) → (run, write_source, write_target, observed_deletes)
    let table = [
        (SyncMode::OneWay, Ok, Ok, (true, false, true, true)),
        (SyncMode::OneWay, Degraded, Ok, (true, false, true, true)),
        (SyncMode::OneWay, AuthFailed, Ok, (false, false, false, false)),
        (SyncMode::OneWay, Ok, AuthFailed, (false, false, false, false)),
        (SyncMode::OneWay, Down, Ok, (false, false, false, false)), // source down: skip
        (SyncMode::OneWay, Ok, Down, (true, false, false, false)),  // target down: no writes
        (SyncMode::OneWay, Down, AuthFailed, (false, false, false, false)),
        (SyncMode::TwoWay, Ok, Ok, (true, true, true, true)),
        (SyncMode::TwoWay, AuthFailed, Ok, (false, false, false, false)),
        (SyncMode::TwoWay, Ok, AuthFailed, (false, false, false, false)),
        (SyncMode::TwoWay, Down, Ok, (true, false, false, false)),
        (SyncMode::TwoWay, Ok, Down, (true, false, false, false)),
        (SyncMode::TwoWay, Down, Down, (false, false, false, false)),
        (SyncMode::TwoWay, Degraded, Degraded, (true, true, true, true)),
    ];
    for (mode, source, target, (run, write_source, write_target, observed_deletes)) in table {
        let gate = health_gate(mode, &HealthReport::with_status(source), &HealthReport::with_status(target));
        let got = (gate.run, gate.write_source, gate.write_target, gate.observed_deletes);
        assert_eq!(got, (run, write_source, write_target, observed_deletes), "{mode:?} {source:?} {target:?}");
        let healthy = source == Ok && target == Ok;
        assert_eq!(gate.findings.is_empty(), healthy, "{mode:?} {source:?} {target:?}: findings say why");
        assert!(gate.findings.iter().all(|f| f.rule_id == HEALTH_RULE));
        if !run {
            assert!(gate.findings.iter().any(|f| f.severity == Severity::Error), "a skipped pair is an error");
        }
    }
}

#[test]
fn health_findings_carry_the_reason() {
    let mut down = HealthReport::with_status(HealthStatus::AuthFailed);
    down.reason = Some("token expired".into());
    let gate = health_gate(SyncMode::OneWay, &HealthReport::ok(), &down);
    assert!(gate.findings[0].message.contains("token expired"));
    assert_eq!(gate.findings[0].evidence.as_ref().unwrap()["side"], "target");
}

// ---------------------------------------------------------------------------------------------
// Drop guard rule

#[test]
fn drop_guard_rule_table() {
    // (previous, current, checkpoint advanced) → suspect
    let table = [
        (0, 0, false, false),
        (19, 0, false, false),
        (20, 0, false, true),
        (20, 1, false, true),
        (20, 2, false, true),
        (20, 3, false, false),
        (25, 2, false, true),
        (25, 3, false, false),
        (1000, 100, false, true),
        (1000, 101, false, false),
        (1000, 0, true, false),
    ];
    for (previous, current, advanced, suspect) in table {
        assert_eq!(is_suspect_drop(previous, current, advanced), suspect, "{previous} → {current}, {advanced}");
    }
}

#[test]
fn checkpoint_advance_table() {
    let table = [
        (None, None, false),
        (Some("2026-01-01T00:00:00Z"), None, false),
        (None, Some("2026-01-01T00:00:00Z"), false),
        (Some("2026-01-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"), false),
        (Some("2026-01-01T00:00:00Z"), Some("2026-01-01T00:00:01Z"), true),
        (Some("2026-01-01T00:00:01Z"), Some("2026-01-01T00:00:00Z"), false),
        // The same instant written with another offset has not advanced.
        (Some("2026-01-01T00:00:00Z"), Some("2026-01-01T01:00:00+01:00"), false),
        // Epoch seconds, numerically (10 > 9 though "10" < "9" as text).
        (Some("9"), Some("10"), true),
        // Opaque checkpoints compare as text.
        (Some("v1"), Some("v2"), true),
    ];
    for (previous, current, advanced) in table {
        assert_eq!(checkpoint_advanced(previous, current), advanced, "{previous:?} → {current:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Mass delete

#[test]
fn mass_delete_limit_is_ten_or_ten_percent() {
    let policy = MassDeleteConfig::default();
    let table = [(0, 10), (50, 10), (70, 10), (100, 10), (109, 10), (110, 11), (700, 70), (1000, 100), (2345, 234)];
    for (inventory, limit) in table {
        assert_eq!(mass_delete_limit(inventory, &policy), limit, "{inventory}");
    }
    assert!(check_mass_delete(Feature::Watchlist, Side::Target, 10, 50, &policy, false).is_none());
    let blocked = check_mass_delete(Feature::Watchlist, Side::Target, 11, 50, &policy, false).unwrap();
    assert_eq!((blocked.rule_id.as_str(), blocked.severity), (MASS_DELETE_RULE, Severity::Error));
    assert!(check_mass_delete(Feature::Watchlist, Side::Target, 100, 1000, &policy, false).is_none());
    assert!(check_mass_delete(Feature::Watchlist, Side::Target, 101, 1000, &policy, false).is_some());
    // The configured policy is what counts.
    let strict = MassDeleteConfig { max_ratio: 0.5, min: 2 };
    assert_eq!((mass_delete_limit(3, &strict), mass_delete_limit(100, &strict)), (2, 50));
}

/// A two-way plan in which the source deleted `deleted` of `total` items.
fn two_way_deletions(total: usize, deleted: usize) -> cw_orchestrator::planner::FeaturePlan {
    let all = movies(0..total);
    let baseline = Baseline { items: all.clone(), checkpoint: None };
    let source = ingest(Feature::Watchlist, &Snapshot::present(all[deleted..].to_vec()), Some(&baseline));
    let target = ingest(Feature::Watchlist, &Snapshot::present(all.clone()), Some(&baseline));
    let input = PlanInput {
        source: &source,
        target: &target,
        tombstones: &[],
        config: PlanConfig { mode: SyncMode::TwoWay, remove: true, ..PlanConfig::default() },
        source_observed_deletes: true,
        target_observed_deletes: true,
    };
    plan(&input).unwrap().plan
}

#[test]
fn mass_delete_guard_blocks_and_an_explicit_allow_lifts_it() {
    // 15 of 100 deleted on the source: 15 > max(10, 10) → blocked on the target.
    let planned = two_way_deletions(100, 15);
    assert_eq!(planned.to_target.removals.len(), 15);
    assert!(!planned.tombstones.is_empty());

    let mut blocked = planned.clone();
    let findings = enforce_mass_delete(&mut blocked, 85, 100, &MassDeleteConfig::default(), false);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(findings[0].evidence.as_ref().unwrap()["side"], "target");
    assert!(blocked.to_target.removals.is_empty(), "blocked removals are dropped");
    assert!(blocked.tombstones.iter().all(|t: &Tombstone| t.deleted_on != Side::Source), "and their tombstones");

    let mut allowed = planned.clone();
    let findings = enforce_mass_delete(&mut allowed, 85, 100, &MassDeleteConfig::default(), true);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Warning);
    assert_eq!(allowed, planned, "an explicit allow runs the plan as planned");

    // Within the limit: nothing to say, nothing changed.
    let small = two_way_deletions(100, 10);
    let mut unchanged = small.clone();
    assert!(enforce_mass_delete(&mut unchanged, 90, 100, &MassDeleteConfig::default(), false).is_empty());
    assert_eq!(unchanged, small);
}

// ---------------------------------------------------------------------------------------------
// Unresolved items

#[test]
fn unresolved_items_without_ids_are_reported_as_a_provider_bug() {
    let with_ids = UnresolvedItem { ids: [("imdb".to_owned(), "tt1".to_owned())].into(), ..Default::default() };
    let sentinel = UnresolvedItem {
        ids: [("tmdb".to_owned(), "0".to_owned())].into(),
        reason: Some("not found".into()),
        ..Default::default()
    };
    let empty = UnresolvedItem::default();
    assert!(has_ids(&with_ids));
    assert!(!has_ids(&sentinel), "a sentinel is no id");
    assert!(!has_ids(&empty));

    assert!(unresolved_without_ids("PLEX", Feature::Ratings, std::slice::from_ref(&with_ids)).is_none());
    let finding = unresolved_without_ids("PLEX", Feature::Ratings, &[with_ids, sentinel, empty]).unwrap();
    assert_eq!((finding.rule_id.as_str(), finding.severity), (UNRESOLVED_WITHOUT_IDS_RULE, Severity::Error));
    let evidence = finding.evidence.unwrap();
    assert_eq!(evidence["count"], 2);
    assert_eq!(evidence["provider"], "PLEX");
    assert!(finding.message.contains("not retried"));
}

// ---------------------------------------------------------------------------------------------
// Blackbox

#[test]
fn blackbox_quarantines_after_three_consecutive_failures_for_thirty_days() {
    let failed = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let day = time::Duration::days(1);
    let policy = BlackboxConfig::default();
    assert_eq!((policy.failures, policy.quarantine_days), (3, 30));
    let until = failed + day * 30;
    let table = [
        (0, failed, Blackbox::Clear),
        (2, failed + day * 100, Blackbox::Clear),
        (3, failed, Blackbox::Quarantined { until }),
        (3, until - time::Duration::SECOND, Blackbox::Quarantined { until }),
        (7, failed + day, Blackbox::Quarantined { until }),
        (3, until, Blackbox::Released),
        (3, until + day, Blackbox::Released),
    ];
    for (failures, now, expected) in table {
        assert_eq!(blackbox(failures, failed, now, &policy), expected, "{failures} failures, now {now}");
    }
    // The configured policy is what counts.
    let quick = BlackboxConfig { failures: 1, quarantine_days: 2 };
    assert_eq!(blackbox(1, failed, failed, &quick), Blackbox::Quarantined { until: failed + day * 2 });
}
