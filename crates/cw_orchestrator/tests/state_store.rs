#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The SQLite state store: round trips, TTLs, the blackbox, the plan store, atomic commits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use admit_core::{
    ClaimError, Digest, DigestAlgorithm, ExecutionStatus, InMemoryPlanStore, PlanRecord, PlanRef, PlanRefusal,
    PlanState, PlanStore, PlanStoreError, ScopeId,
};
use cw_orchestrator::config::Side;
use cw_orchestrator::state::*;
use pal::inventory::{Feature, InventoryItem, UnresolvedItem};
use serde_json::json;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_unix(T0))
}

fn open(path: &Path, clock: &Arc<ManualClock>) -> StateStore {
    StateStore::open_with(path, StateOptions::default(), clock.clone()).unwrap()
}

fn item(value: serde_json::Value) -> InventoryItem {
    serde_json::from_value(value).unwrap()
}

fn movie(tmdb: u32) -> InventoryItem {
    item(json!({"type": "movie", "title": format!("Movie {tmdb}"), "ids": {"tmdb": tmdb.to_string()}}))
}

fn run(id: &str, pair: &str, status: RunStatus) -> RunRecord {
    RunRecord {
        run_id: id.to_owned(),
        pair: pair.to_owned(),
        started_at: time::OffsetDateTime::from_unix_timestamp(T0).unwrap(),
        finished_at: time::OffsetDateTime::from_unix_timestamp(T0 + 5).unwrap(),
        status,
        counts: json!({"watchlist": {"added": 2}}),
    }
}

fn failed(feature: Feature, key: &str) -> BlackboxUpdate {
    BlackboxUpdate { feature, key: key.to_owned(), outcome: ItemOutcome::Failed { reason: Some("HTTP 422".into()) } }
}

fn digest(text: &str) -> Digest {
    DigestAlgorithm::Blake3.digest(text.as_bytes())
}

#[test]
fn baselines_checkpoints_tombstones_unresolved_and_runs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("deeper").join(DEFAULT_FILE_NAME);
    let clock = clock();
    let store = open(&path, &clock);
    assert!(path.is_file(), "open creates parent directories and the file");

    // Never committed: None (distinct from an empty baseline).
    assert_eq!(store.baseline("p", Side::Source, Feature::Watchlist).unwrap(), None);

    let transient = item(json!({"ids": {"tmdb": "3"}, "_cw_transient": true}));
    let ignored = item(json!({"ids": {"tmdb": "4"}, "plex": {"ignored": true}}));
    let commit = RunCommit {
        pair: "p".into(),
        baselines: vec![
            BaselineWrite::keyed(Side::Source, Feature::Watchlist, [movie(1), movie(2), transient, ignored]),
            BaselineWrite {
                side: Side::Target,
                feature: Feature::Watchlist,
                items: BTreeMap::new().into(),
                snapshot_hash: None,
            },
        ],
        checkpoints: vec![CheckpointWrite {
            side: Side::Source,
            feature: Feature::Watchlist,
            value: "2026-01-01T00:00:00Z".into(),
        }],
        tombstones_added: TombstoneWrite::for_item(
            Feature::Watchlist,
            Side::Target,
            &item(json!({"ids": {"tmdb": "9", "imdb": "tt0000009"}})),
        ),
        unresolved: vec![UnresolvedWrite {
            feature: Feature::Ratings,
            items: BTreeMap::from([(
                "tmdb:5".to_owned(),
                UnresolvedItem {
                    ids: [("tmdb".to_owned(), "5".to_owned())].into(),
                    reason: Some("not found".into()),
                    ..Default::default()
                },
            )]),
        }],
        run: Some(run("r1", "p", RunStatus::Ok)),
        ..Default::default()
    };
    let outcome = store.commit(&commit).unwrap();
    assert_eq!(outcome.baseline_items, 2);
    assert_eq!(outcome.baseline_items_skipped, 2);
    assert_eq!(outcome.tombstones_added, 2);

    let baseline = store.baseline("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!(baseline.items.keys().collect::<Vec<_>>(), ["tmdb:1", "tmdb:2"]);
    assert_eq!(baseline.items["tmdb:1"], movie(1));
    assert_eq!(baseline.run_id.as_deref(), Some("r1"));
    assert_eq!(baseline.updated_at.unix_timestamp(), T0);
    let empty = store.baseline("p", Side::Target, Feature::Watchlist).unwrap().unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(store.baseline("other", Side::Source, Feature::Watchlist).unwrap(), None);

    assert_eq!(store.checkpoint("p", Side::Source, Feature::Watchlist).unwrap().unwrap().value, "2026-01-01T00:00:00Z");
    assert_eq!(store.checkpoint("p", Side::Target, Feature::Watchlist).unwrap(), None);

    let tombstones = store.tombstones("p", Feature::Watchlist).unwrap();
    assert_eq!(tombstones.iter().map(|t| t.token.as_str()).collect::<Vec<_>>(), ["imdb:tt0000009", "tmdb:9"]);
    assert!(tombstones.iter().all(|t| t.key.as_deref() == Some("tmdb:9")));
    assert_eq!(tombstones[0].expires_at.unix_timestamp() - tombstones[0].created_at.unix_timestamp(), 30 * 86_400);
    assert!(store.tombstones("p", Feature::Ratings).unwrap().is_empty());

    let unresolved = store.unresolved("p", Feature::Ratings).unwrap();
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0].key, "tmdb:5");
    assert_eq!(unresolved[0].item.reason.as_deref(), Some("not found"));

    // A second run: the baseline is replaced, the unresolved set too (first_seen kept),
    // a tombstone removed, the run history grows.
    clock.advance(time::Duration::hours(1));
    let commit = RunCommit {
        pair: "p".into(),
        baselines: vec![BaselineWrite::keyed(Side::Source, Feature::Watchlist, [movie(2), movie(7)])],
        tombstones_removed: vec![TombstoneRef {
            feature: Feature::Watchlist,
            token: "tmdb:9".into(),
            deleted_on: Side::Target,
        }],
        unresolved: vec![UnresolvedWrite {
            feature: Feature::Ratings,
            items: BTreeMap::from([
                ("tmdb:5".to_owned(), UnresolvedItem { reason: Some("still not found".into()), ..Default::default() }),
                ("tmdb:6".to_owned(), UnresolvedItem::default()),
            ]),
        }],
        run: Some(run("r2", "p", RunStatus::Partial)),
        ..Default::default()
    };
    store.commit(&commit).unwrap();
    let baseline = store.baseline("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!(baseline.items.keys().collect::<Vec<_>>(), ["tmdb:2", "tmdb:7"]);
    assert_eq!(store.tombstones("p", Feature::Watchlist).unwrap().len(), 1);
    let unresolved = store.unresolved("p", Feature::Ratings).unwrap();
    assert_eq!(unresolved.len(), 2);
    assert_eq!(unresolved[0].first_seen.unix_timestamp(), T0);
    assert_eq!(unresolved[0].last_seen.unix_timestamp(), T0 + 3600);
    assert_eq!(unresolved[1].first_seen.unix_timestamp(), T0 + 3600);

    let runs = store.runs(Some("p"), 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["r2", "r1"]);
    assert_eq!(runs[1], run("r1", "p", RunStatus::Ok));
    assert!(store.runs(Some("q"), 10).unwrap().is_empty());
    assert_eq!(store.runs(None, 1).unwrap().len(), 1);

    // Reopening keeps everything.
    drop(store);
    let store = open(&path, &clock);
    assert_eq!(
        store.baseline("p", Side::Source, Feature::Watchlist).unwrap().unwrap().items.keys().collect::<Vec<_>>(),
        ["tmdb:2", "tmdb:7"]
    );
    assert_eq!(store.runs(None, 10).unwrap().len(), 2);
    assert_eq!(store.unresolved("p", Feature::Ratings).unwrap().len(), 2);
}

#[test]
fn wal_and_schema_version_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.path(), path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(app, APPLICATION_ID);
}

#[test]
fn a_custom_persist_filter_replaces_the_default() {
    let store = StateStore::open_in_memory(StateOptions::default(), clock())
        .unwrap()
        .with_persist_filter(|i| i.ids.get("tmdb").is_some_and(|id| id != "2"));
    let outcome = store
        .commit(&RunCommit {
            pair: "p".into(),
            baselines: vec![BaselineWrite::keyed(Side::Source, Feature::Ratings, [movie(1), movie(2)])],
            ..Default::default()
        })
        .unwrap();
    assert_eq!((outcome.baseline_items, outcome.baseline_items_skipped), (1, 1));
}

#[test]
fn tombstones_expire_after_the_ttl_and_are_pruned() {
    let clock = clock();
    let store = StateStore::open_in_memory(StateOptions::default(), clock.clone()).unwrap();
    let add = |token: &str| RunCommit {
        pair: "p".into(),
        tombstones_added: vec![TombstoneWrite {
            feature: Feature::Watchlist,
            token: token.into(),
            deleted_on: Side::Target,
            key: None,
        }],
        ..Default::default()
    };
    store.commit(&add("tmdb:1")).unwrap();
    clock.advance(time::Duration::days(10));
    store.commit(&add("tmdb:2")).unwrap();
    // Re-adding an existing token keeps its original age.
    store.commit(&add("tmdb:1")).unwrap();

    clock.set(
        time::OffsetDateTime::from_unix_timestamp(T0).unwrap() + time::Duration::days(30) - time::Duration::seconds(1),
    );
    assert_eq!(store.tombstones("p", Feature::Watchlist).unwrap().len(), 2);
    clock.advance(time::Duration::seconds(1)); // exactly 30 days after the first
    let live = store.tombstones("p", Feature::Watchlist).unwrap();
    assert_eq!(
        live.iter().map(|t| t.token.as_str()).collect::<Vec<_>>(),
        ["tmdb:2"],
        "expired tombstones are not served"
    );
    assert_eq!(store.prune_tombstones().unwrap(), 1);
    assert_eq!(store.prune_tombstones().unwrap(), 0);

    // A commit prunes too.
    clock.advance(time::Duration::days(10));
    let outcome = store.commit(&RunCommit { pair: "other".into(), ..Default::default() }).unwrap();
    assert_eq!(outcome.tombstones_pruned, 1);
    assert!(store.tombstones("p", Feature::Watchlist).unwrap().is_empty());
}

#[test]
fn the_tombstone_ttl_is_one_setting() {
    let clock = clock();
    let options = StateOptions { tombstone_ttl: time::Duration::days(2), ..StateOptions::default() };
    let store = StateStore::open_in_memory(options, clock.clone()).unwrap();
    store
        .commit(&RunCommit {
            pair: "p".into(),
            tombstones_added: vec![TombstoneWrite {
                feature: Feature::History,
                token: "tmdb:1".into(),
                deleted_on: Side::Target,
                key: None,
            }],
            ..Default::default()
        })
        .unwrap();
    clock.advance(time::Duration::days(1));
    assert_eq!(store.tombstones("p", Feature::History).unwrap().len(), 1);
    clock.advance(time::Duration::days(1));
    assert!(store.tombstones("p", Feature::History).unwrap().is_empty());
}

#[test]
fn blackbox_quarantines_after_three_consecutive_failing_runs() {
    let clock = clock();
    let store = StateStore::open_in_memory(StateOptions::default(), clock.clone()).unwrap();
    let commit = |updates: Vec<BlackboxUpdate>| {
        store.commit(&RunCommit { pair: "p".into(), blackbox: updates, ..Default::default() }).unwrap()
    };

    // Run 1: several failures of the same key in one run count once.
    commit(vec![failed(Feature::Ratings, "tmdb:1"), failed(Feature::Ratings, "tmdb:1")]);
    assert_eq!(store.list_blackbox(None).unwrap()[0].failures, 1);
    clock.advance(time::Duration::hours(6));
    commit(vec![failed(Feature::Ratings, "tmdb:1")]);
    let entry = &store.list_blackbox(Some("p")).unwrap()[0];
    assert_eq!((entry.failures, entry.quarantined, entry.quarantined_until), (2, false, None));
    assert!(store.quarantined_keys("p", Feature::Ratings).unwrap().is_empty());

    clock.advance(time::Duration::hours(6));
    let outcome = commit(vec![failed(Feature::Ratings, "tmdb:1")]);
    assert_eq!(outcome.quarantined, 1);
    let entry = &store.list_blackbox(Some("p")).unwrap()[0];
    assert_eq!(entry.failures, 3);
    assert!(entry.quarantined);
    assert_eq!(entry.reason.as_deref(), Some("HTTP 422"));
    assert_eq!(entry.last_failed_at.unix_timestamp(), T0 + 12 * 3600);
    assert_eq!(entry.quarantined_until.unwrap().unix_timestamp(), T0 + 12 * 3600 + 30 * 86_400);
    assert!(store.quarantined_keys("p", Feature::Ratings).unwrap().contains("tmdb:1"));
    assert!(store.quarantined_keys("p", Feature::Watchlist).unwrap().is_empty(), "per feature");
    assert!(store.quarantined_keys("q", Feature::Ratings).unwrap().is_empty(), "per pair");

    // The quarantine lasts 30 days, then the item is retried (listed, not quarantined).
    clock.advance(time::Duration::days(30));
    assert!(store.quarantined_keys("p", Feature::Ratings).unwrap().is_empty());
    assert!(!store.list_blackbox(None).unwrap()[0].quarantined);

    // A success resets.
    commit(vec![BlackboxUpdate { feature: Feature::Ratings, key: "tmdb:1".into(), outcome: ItemOutcome::Succeeded }]);
    assert!(store.list_blackbox(None).unwrap().is_empty());
    commit(vec![failed(Feature::Ratings, "tmdb:1")]);
    assert_eq!(store.list_blackbox(None).unwrap()[0].failures, 1, "counting restarts after a success");

    // Within one run, a failure wins over a success of the same key.
    commit(vec![
        BlackboxUpdate { feature: Feature::Ratings, key: "tmdb:1".into(), outcome: ItemOutcome::Succeeded },
        failed(Feature::Ratings, "tmdb:1"),
    ]);
    assert_eq!(store.list_blackbox(None).unwrap()[0].failures, 2);
}

#[test]
fn blackbox_threshold_and_quarantine_come_from_options() {
    let clock = clock();
    let options = StateOptions { blackbox_failures: 1, quarantine: time::Duration::days(2), ..StateOptions::default() };
    let store = StateStore::open_in_memory(options, clock.clone()).unwrap();
    store
        .commit(&RunCommit { pair: "p".into(), blackbox: vec![failed(Feature::History, "k")], ..Default::default() })
        .unwrap();
    assert!(store.quarantined_keys("p", Feature::History).unwrap().contains("k"));
    clock.advance(time::Duration::days(2));
    assert!(store.quarantined_keys("p", Feature::History).unwrap().is_empty());
}

#[test]
fn blackbox_is_clearable_by_pair_key_or_all() {
    let store = StateStore::open_in_memory(StateOptions::default(), clock()).unwrap();
    for pair in ["p", "q"] {
        store
            .commit(&RunCommit {
                pair: pair.into(),
                blackbox: vec![failed(Feature::Ratings, "tmdb:1"), failed(Feature::Watchlist, "tmdb:2")],
                ..Default::default()
            })
            .unwrap();
    }
    assert_eq!(store.list_blackbox(None).unwrap().len(), 4);
    let listed: Vec<_> =
        store.list_blackbox(None).unwrap().into_iter().map(|e| format!("{}/{}/{}", e.pair, e.feature, e.key)).collect();
    assert_eq!(listed, ["p/ratings/tmdb:1", "p/watchlist/tmdb:2", "q/ratings/tmdb:1", "q/watchlist/tmdb:2"]);

    assert_eq!(store.clear_blackbox(BlackboxFilter { pair: Some("p"), key: Some("tmdb:1") }).unwrap(), 1);
    assert_eq!(store.clear_blackbox(BlackboxFilter { pair: None, key: Some("tmdb:2") }).unwrap(), 2);
    assert_eq!(store.clear_blackbox(BlackboxFilter { pair: Some("nope"), key: None }).unwrap(), 0);
    assert_eq!(store.list_blackbox(None).unwrap().len(), 1);
    assert_eq!(store.clear_blackbox(BlackboxFilter::default()).unwrap(), 1);
    assert!(store.list_blackbox(None).unwrap().is_empty());
}

// --- the plan store -------------------------------------------------------------------------

fn plan_record(name: &str, requires_approval: bool) -> PlanRecord {
    PlanRecord {
        plan_hash: digest(name),
        scope_id: ScopeId::new("cw.sync"),
        source_snapshots: BTreeMap::from([
            ("source".to_owned(), digest("source v1")),
            ("target".to_owned(), digest("target v1")),
        ]),
        requires_approval,
        approval_witness_hash: None,
        state: PlanState::Pending,
    }
}

fn live() -> BTreeMap<String, Digest> {
    BTreeMap::from([("source".to_owned(), digest("source v1")), ("target".to_owned(), digest("target v1"))])
}

fn plan_ref(name: &str, approval: Option<&str>) -> PlanRef {
    PlanRef { plan_hash: digest(name), approval_witness_hash: approval.map(digest) }
}

/// The same scenario against a store; returns every observable result, so two stores can be
/// compared.
fn plan_scenario(store: &dyn PlanStore) -> Vec<String> {
    let mut log = Vec::new();
    let mut note = |label: &str, result: String| log.push(format!("{label}: {result}"));
    let show = |r: Result<PlanRecord, ClaimError>| match r {
        Ok(record) => format!("claimed {:?}", record.state),
        Err(ClaimError::Refused(refusal)) => format!("refused {refusal:?}"),
        Err(ClaimError::Store(e)) => format!("store error {e:?}"),
    };

    note("unknown", show(store.claim(&plan_ref("never recorded", None), &live())));

    store.record(plan_record("a", false)).unwrap();
    note("record twice", format!("{:?}", store.record(plan_record("a", false))));
    let mut different = plan_record("a", false);
    different.requires_approval = true;
    note("record conflict", format!("{:?}", store.record(different)));

    let mut moved = live();
    moved.insert("target".to_owned(), digest("target v2"));
    note("stale", show(store.claim(&plan_ref("a", None), &moved)));
    let mut missing = live();
    missing.remove("source");
    note("stale (missing)", show(store.claim(&plan_ref("a", None), &missing)));
    note("fresh", show(store.claim(&plan_ref("a", None), &live())));
    note("again while executing", show(store.claim(&plan_ref("a", None), &live())));
    store.finish(&digest("a"), ExecutionStatus::Complete).unwrap();
    note("again after finish", show(store.claim(&plan_ref("a", None), &live())));
    note("get", format!("{:?}", store.get(&digest("a")).unwrap().map(|r| r.state)));

    store.record(plan_record("b", true)).unwrap();
    note("unapproved", show(store.claim(&plan_ref("b", None), &live())));
    note("approve unknown", format!("{:?}", store.approve(&digest("zzz"), digest("w"))));
    store.approve(&digest("b"), digest("witness")).unwrap();
    note("no approval presented", show(store.claim(&plan_ref("b", None), &live())));
    note("wrong approval", show(store.claim(&plan_ref("b", Some("other witness")), &live())));
    note("approved", show(store.claim(&plan_ref("b", Some("witness")), &live())));
    note("finish unknown", format!("{:?}", store.finish(&digest("zzz"), ExecutionStatus::Failed)));
    log
}

#[test]
fn plan_store_refusals_match_the_shared_rule() {
    let sqlite = StateStore::open_in_memory(StateOptions::default(), clock()).unwrap();
    let from_sqlite = plan_scenario(&sqlite);
    let from_memory = plan_scenario(&InMemoryPlanStore::new());
    assert_eq!(from_sqlite, from_memory);

    // And the specific refusals, in the shared order.
    let expect = |label: &str, needle: &str| {
        let line = from_sqlite.iter().find(|l| l.starts_with(&format!("{label}: "))).unwrap();
        assert!(line.contains(needle), "{line}");
    };
    expect("unknown", "Unknown");
    expect("record twice", "Ok(())");
    expect("record conflict", "Conflict");
    expect("stale", "Stale");
    expect("stale (missing)", "live: None");
    expect("fresh", "claimed Executing");
    expect("again while executing", "AlreadyExecuted");
    expect("again after finish", "Executed(Complete)");
    expect("unapproved", "Unapproved");
    expect("approve unknown", "NotRecorded");
    expect("wrong approval", "presented: Some");
    expect("approved", "claimed Executing");
    expect("finish unknown", "NotRecorded");
}

#[test]
fn plans_persist_with_their_json_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    let clock = clock();
    let store = open(&path, &clock);
    let plan = json!({"steps": [{"op": "add", "key": "tmdb:1"}]});
    store.record_plan(plan_record("a", true), &plan).unwrap();
    assert_eq!(store.record_plan(plan_record("a", true), &plan), Ok(()));
    assert!(matches!(
        store.record_plan(plan_record("a", true), &json!({"steps": []})),
        Err(PlanStoreError::Conflict { .. })
    ));
    store.record(plan_record("b", false)).unwrap();
    assert_eq!(store.plan_json(&digest("b")).unwrap(), None);
    store.record_plan(plan_record("b", false), &plan).unwrap();
    store.approve(&digest("a"), digest("w")).unwrap();
    drop(store);

    let store = open(&path, &clock);
    assert_eq!(store.plan_json(&digest("a")).unwrap(), Some(plan.clone()));
    assert_eq!(store.plan_json(&digest("b")).unwrap(), Some(plan));
    assert_eq!(store.plan_json(&digest("zzz")).unwrap(), None);
    let record = store.get(&digest("a")).unwrap().unwrap();
    assert_eq!(record.approval_witness_hash, Some(digest("w")));
    assert_eq!(record.source_snapshots, live());
    store.claim(&plan_ref("a", Some("w")), &live()).unwrap();
    store.finish(&digest("a"), ExecutionStatus::RolledBack).unwrap();
    drop(store);
    let store = open(&path, &clock);
    assert_eq!(store.get(&digest("a")).unwrap().unwrap().state, PlanState::Executed(ExecutionStatus::RolledBack));
}

#[test]
fn two_handles_on_one_file_claim_a_plan_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    let plans = 25;
    {
        let store = StateStore::open(&path).unwrap();
        for i in 0..plans {
            store.record(plan_record(&format!("plan {i}"), false)).unwrap();
        }
    }
    // Two independent connections, as two processes would have.
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let store = StateStore::open(&path).unwrap();
                let mut won = Vec::new();
                for i in 0..plans {
                    barrier.wait();
                    match store.claim(&plan_ref(&format!("plan {i}"), None), &live()) {
                        Ok(_) => won.push(i),
                        Err(ClaimError::Refused(refusal)) => {
                            assert!(matches!(*refusal, PlanRefusal::AlreadyExecuted { .. }), "{refusal:?}")
                        }
                        Err(other) => panic!("store error: {other}"),
                    }
                }
                won
            })
        })
        .collect();
    let results: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for i in 0..plans {
        let winners = results.iter().filter(|won| won.contains(&i)).count();
        assert_eq!(winners, 1, "plan {i} claimed {winners} times");
    }
}

// --- atomicity ------------------------------------------------------------------------------

fn snapshot_of_state(store: &StateStore) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        store.baseline("p", Side::Source, Feature::Watchlist).unwrap().map(|b| b.items),
        store.checkpoint("p", Side::Source, Feature::Watchlist).unwrap(),
        store.tombstones("p", Feature::Watchlist).unwrap(),
        store.unresolved("p", Feature::Watchlist).unwrap(),
        store.list_blackbox(None).unwrap(),
        store.runs(None, 100).unwrap(),
    )
}

#[test]
fn a_commit_that_fails_midway_leaves_the_previous_state_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    let clock = clock();
    let store = open(&path, &clock);
    store
        .commit(&RunCommit {
            pair: "p".into(),
            baselines: vec![BaselineWrite::keyed(Side::Source, Feature::Watchlist, [movie(1), movie(2)])],
            checkpoints: vec![CheckpointWrite { side: Side::Source, feature: Feature::Watchlist, value: "c1".into() }],
            tombstones_added: vec![TombstoneWrite {
                feature: Feature::Watchlist,
                token: "tmdb:9".into(),
                deleted_on: Side::Target,
                key: None,
            }],
            blackbox: vec![failed(Feature::Watchlist, "tmdb:3")],
            run: Some(run("r1", "p", RunStatus::Ok)),
            ..Default::default()
        })
        .unwrap();
    let before = snapshot_of_state(&store);
    clock.advance(time::Duration::hours(1));

    let next = |run_id: &str, extra_baseline_key: &str| RunCommit {
        pair: "p".into(),
        baselines: vec![BaselineWrite {
            side: Side::Source,
            feature: Feature::Watchlist,
            items: BTreeMap::from([("tmdb:5".to_owned(), movie(5)), (extra_baseline_key.to_owned(), movie(6))]).into(),
            snapshot_hash: None,
        }],
        checkpoints: vec![CheckpointWrite { side: Side::Source, feature: Feature::Watchlist, value: "c2".into() }],
        tombstones_added: vec![TombstoneWrite {
            feature: Feature::Watchlist,
            token: "tmdb:10".into(),
            deleted_on: Side::Target,
            key: None,
        }],
        tombstones_removed: vec![TombstoneRef {
            feature: Feature::Watchlist,
            token: "tmdb:9".into(),
            deleted_on: Side::Target,
        }],
        unresolved: vec![UnresolvedWrite {
            feature: Feature::Watchlist,
            items: BTreeMap::from([("tmdb:4".to_owned(), UnresolvedItem::default())]),
        }],
        blackbox: vec![failed(Feature::Watchlist, "tmdb:3")],
        run: Some(run(run_id, "p", RunStatus::Ok)),
    };

    // The last statement fails: the run id is already taken (a primary-key violation), after
    // every other write of the commit has been executed.
    let err = store.commit(&next("r1", "tmdb:6")).unwrap_err();
    assert!(matches!(err, StateError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert_eq!(snapshot_of_state(&store), before);

    // A write in the middle fails (a baseline item with an empty key is refused).
    let err = store.commit(&next("r2", "")).unwrap_err();
    assert!(err.to_string().contains("empty key"), "{err}");
    assert_eq!(snapshot_of_state(&store), before);

    // Nothing half-written survives a reopen either.
    drop(store);
    let store = open(&path, &clock);
    assert_eq!(snapshot_of_state(&store), before);

    // And the same commit, valid, applies entirely.
    store.commit(&next("r2", "tmdb:6")).unwrap();
    let after = store.baseline("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!(after.items.keys().collect::<Vec<_>>(), ["tmdb:5", "tmdb:6"]);
    assert_eq!(store.list_blackbox(None).unwrap()[0].failures, 2);
}

#[test]
fn a_commit_is_refused_before_writing_when_the_run_names_another_pair() {
    let store = StateStore::open_in_memory(StateOptions::default(), clock()).unwrap();
    let err =
        store.commit(&RunCommit { pair: "p".into(), run: Some(run("r", "q", RunStatus::Ok)), ..Default::default() });
    assert!(matches!(err, Err(StateError::Invalid { .. })), "{err:?}");
    let err = store.commit(&RunCommit::default());
    assert!(matches!(err, Err(StateError::Invalid { .. })), "{err:?}");
}

const CRASH_CHILD_ENV: &str = "CW_STATE_CRASH_CHILD";
const CRASH_ITEMS: u32 = 300;

/// Child half of the crash test: commits generation after generation until killed.
#[test]
#[ignore = "run by crash_at_any_point_leaves_the_old_or_the_new_state"]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else { return };
    let store = StateStore::open(PathBuf::from(path)).unwrap();
    let start = store.runs(None, 1).unwrap().first().map(|r| r.run_id.parse::<u64>().unwrap()).unwrap_or(0);
    for generation in start + 1.. {
        let items = (0..CRASH_ITEMS).map(|i| {
            let mut item = movie(i + 1);
            item.extra.insert("generation".into(), json!(generation));
            item
        });
        let mut record = run(&generation.to_string(), "p", RunStatus::Ok);
        record.counts = json!({"generation": generation});
        store
            .commit(&RunCommit {
                pair: "p".into(),
                baselines: vec![BaselineWrite::keyed(Side::Source, Feature::Watchlist, items)],
                checkpoints: vec![CheckpointWrite {
                    side: Side::Source,
                    feature: Feature::Watchlist,
                    value: generation.to_string(),
                }],
                tombstones_added: vec![TombstoneWrite {
                    feature: Feature::Watchlist,
                    token: format!("tmdb:{}", 100_000 + generation),
                    deleted_on: Side::Target,
                    key: None,
                }],
                run: Some(record),
                ..Default::default()
            })
            .unwrap();
    }
}

#[test]
fn crash_at_any_point_leaves_the_old_or_the_new_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    drop(StateStore::open(&path).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut last_generation = 0u64;
    for (round, delay_ms) in [7u64, 23, 41, 3, 60].into_iter().enumerate() {
        let mut child = std::process::Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child has committed at least one more generation, then kill it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let store = StateStore::open(&path).unwrap();
            let latest = store.runs(None, 1).unwrap().first().map(|r| r.run_id.parse::<u64>().unwrap()).unwrap_or(0);
            if latest > last_generation {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: the child made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no destructors, no rollback by the process
        child.wait().unwrap();

        let store = StateStore::open(&path).unwrap();
        let runs = store.runs(None, usize::MAX).unwrap();
        let generation: u64 = runs[0].run_id.parse().unwrap();
        assert!(generation > last_generation);
        assert_eq!(runs.len() as u64, generation, "one run record per committed generation");
        let baseline = store.baseline("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
        assert_eq!(baseline.items.len() as u32, CRASH_ITEMS);
        assert_eq!(baseline.run_id.as_deref(), Some(generation.to_string().as_str()));
        assert!(
            baseline.items.values().all(|i| i.extra["generation"] == json!(generation)),
            "round {round}: a baseline mixes generations"
        );
        assert_eq!(
            store.checkpoint("p", Side::Source, Feature::Watchlist).unwrap().unwrap().value,
            generation.to_string()
        );
        assert_eq!(store.tombstones("p", Feature::Watchlist).unwrap().len() as u64, generation);
        last_generation = generation;
    }
}

// --- bad files ------------------------------------------------------------------------------

#[test]
fn a_file_that_is_not_sqlite_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite3");
    std::fs::write(
        &path,
        "this is not a database, it is a grocery list: eggs, milk, bread, and more text\n".repeat(20),
    )
    .unwrap();
    let err = StateStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::NotADatabase { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("not a usable cw state database"), "{text}");
    // The file was not touched.
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("this is not a database"));
}

#[test]
fn another_programs_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE songs (title TEXT);").unwrap();
    drop(conn);
    let err = StateStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("foreign.db"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    drop(StateStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    let err = StateStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

#[test]
fn a_directory_path_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = StateStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StateError::Open { .. }), "{err:?}");
    let store = StateStore::open_dir(dir.path()).unwrap();
    assert_eq!(store.path(), dir.path().join(DEFAULT_FILE_NAME));
}

#[test]
fn store_errors_become_backend_plan_store_errors() {
    let err: PlanStoreError = StateError::Poisoned { path: "/x/state.sqlite3".into() }.into();
    assert!(matches!(&err, PlanStoreError::Backend { message } if message.contains("/x/state.sqlite3")), "{err}");
}

#[test]
fn tombstones_remember_the_side_they_hold_the_item_back_from() {
    let store = StateStore::open_in_memory(StateOptions::default(), clock()).unwrap();
    let write =
        |side| TombstoneWrite { feature: Feature::Watchlist, token: "imdb:tt1".into(), deleted_on: side, key: None };
    store
        .commit(&RunCommit {
            pair: "p".into(),
            tombstones_added: vec![write(Side::Source), write(Side::Target)],
            ..Default::default()
        })
        .unwrap();
    let sides: Vec<Side> = store.tombstones("p", Feature::Watchlist).unwrap().iter().map(|t| t.deleted_on).collect();
    assert_eq!(sides, [Side::Source, Side::Target]);
    store
        .commit(&RunCommit {
            pair: "p".into(),
            tombstones_removed: vec![TombstoneRef {
                feature: Feature::Watchlist,
                token: "imdb:tt1".into(),
                deleted_on: Side::Source,
            }],
            ..Default::default()
        })
        .unwrap();
    let left = store.tombstones("p", Feature::Watchlist).unwrap();
    assert_eq!(left.len(), 1);
    let planned = left[0].to_planned();
    assert_eq!((planned.key.as_str(), planned.deleted_on), ("imdb:tt1", Side::Target));
}

#[test]
fn a_version_1_file_migrates_its_baselines_and_keeps_its_tombstones_for_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_FILE_NAME);
    // More items than one chunk holds, so the conversion to chunks is seen to split and order.
    let count = 4100;
    {
        // The version 1 tables later versions change, as that schema created them.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE baselines (pair TEXT NOT NULL, side TEXT NOT NULL, feature TEXT NOT NULL,
                 item_count INTEGER NOT NULL, updated_at INTEGER NOT NULL, run_id TEXT,
                 PRIMARY KEY (pair, side, feature)) WITHOUT ROWID;
             CREATE TABLE baseline_items (pair TEXT NOT NULL, side TEXT NOT NULL CHECK (side IN ('source', 'target')),
                 feature TEXT NOT NULL, key TEXT NOT NULL CHECK (key <> ''), item TEXT NOT NULL,
                 PRIMARY KEY (pair, side, feature, key)) WITHOUT ROWID;
             CREATE TABLE tombstones (pair TEXT NOT NULL, feature TEXT NOT NULL, token TEXT NOT NULL, key TEXT,
                 created_at INTEGER NOT NULL, PRIMARY KEY (pair, feature, token)) WITHOUT ROWID;
             INSERT INTO tombstones VALUES ('p', 'watchlist', 'tmdb:7', 'tmdb:7', 1767225600);",
        )
        .unwrap();
        conn.execute("INSERT INTO baselines VALUES ('p', 'source', 'watchlist', ?1, 1767225600, 'r0')", [count])
            .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for n in 1..=count {
            let item = serde_json::to_string(&movie(n)).unwrap();
            tx.execute(
                "INSERT INTO baseline_items VALUES ('p', 'source', 'watchlist', ?1, ?2)",
                rusqlite::params![format!("tmdb:{n}"), item],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
    }
    let store = StateStore::open_with(&path, StateOptions::default(), clock()).unwrap();
    let sides: Vec<Side> = store.tombstones("p", Feature::Watchlist).unwrap().iter().map(|t| t.deleted_on).collect();
    assert_eq!(sides, [Side::Source, Side::Target]);
    let baseline = store.baseline("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!(baseline.items.len(), count as usize);
    assert_eq!(baseline.items["tmdb:4100"], movie(4100));
    let items = store.baseline_items("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    let mut keys: Vec<String> = (1..=count).map(|n| format!("tmdb:{n}")).collect();
    keys.sort();
    assert_eq!(items.iter().map(pal::keys::canonical_key).collect::<Vec<_>>(), keys, "in key order");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_new_baseline_replaces_the_old_one() {
    let store = StateStore::open_in_memory(StateOptions::default(), clock()).unwrap();
    let write = |items: Vec<InventoryItem>| RunCommit {
        pair: "p".into(),
        baselines: vec![BaselineWrite::keyed(Side::Target, Feature::Ratings, items)],
        ..Default::default()
    };
    store.commit(&write(vec![movie(1), movie(2), movie(3)])).unwrap();
    let mut changed = movie(2);
    changed.rating = Some(4);
    store.commit(&write(vec![changed.clone(), movie(4)])).unwrap();
    let baseline = store.baseline("p", Side::Target, Feature::Ratings).unwrap().unwrap();
    assert_eq!(baseline.items.keys().collect::<Vec<_>>(), ["tmdb:2", "tmdb:4"]);
    assert_eq!(baseline.items["tmdb:2"], changed);
}

#[test]
fn a_baseline_remembers_the_snapshot_it_is() {
    let store = StateStore::open_in_memory(StateOptions::default(), clock()).unwrap();
    assert_eq!(store.baseline_meta("p", Side::Source, Feature::Watchlist).unwrap(), None);
    let mut write = BaselineWrite::keyed(Side::Source, Feature::Watchlist, [movie(1), movie(2)]);
    write.snapshot_hash = Some("blake3:00".into());
    store.commit(&RunCommit { pair: "p".into(), baselines: vec![write], ..Default::default() }).unwrap();
    let meta = store.baseline_meta("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!((meta.item_count, meta.snapshot_hash.as_deref()), (2, Some("blake3:00")));
    // Items the persistence filter leaves out make the baseline differ from the snapshot.
    let filtered = StateStore::open_in_memory(StateOptions::default(), clock())
        .unwrap()
        .with_persist_filter(|i| i.ids.get("tmdb").is_some_and(|id| id != "2"));
    let mut write = BaselineWrite::keyed(Side::Source, Feature::Watchlist, [movie(1), movie(2)]);
    write.snapshot_hash = Some("blake3:00".into());
    filtered.commit(&RunCommit { pair: "p".into(), baselines: vec![write], ..Default::default() }).unwrap();
    let meta = filtered.baseline_meta("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!((meta.item_count, meta.snapshot_hash), (1, None));
    // A baseline written from anything else forgets it.
    let write = BaselineWrite::keyed(Side::Source, Feature::Watchlist, [movie(1)]);
    store.commit(&RunCommit { pair: "p".into(), baselines: vec![write], ..Default::default() }).unwrap();
    let meta = store.baseline_meta("p", Side::Source, Feature::Watchlist).unwrap().unwrap();
    assert_eq!((meta.item_count, meta.snapshot_hash), (1, None));
}
