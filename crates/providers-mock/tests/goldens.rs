#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The goldens of CONTRACTS §2, fault injection, and the factories.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pal::ads::{AdsProvider, CampaignPlan, ReportQuery};
use pal::cdp::{Audience, CdpProvider, Event, Profile};
use pal::experiments::ExperimentsProvider;
use pal::inventory::{Feature, Features, IndexSemantics, InventoryItem, InventoryProvider, ItemType};
use pal::lifecycle::{LifecycleProvider, Message, SchedulePolicy};
use pal::llm::{LlmGateway, LlmObservability};
use pal::vectorstore::{Document, VectorStore};
use pal::{
    AdapterHandle, CallSpec, CallTarget, Capability, ErrorClass, ErrorCode, HealthStatus, Pipeline, ProviderPhase,
    Registry, RetryPolicy, SeededJitter, TokioClock,
};
use providers_mock::faults::FaultSettings;
use providers_mock::*;
use serde_json::{Value, json};

fn faults(value: Value) -> AdapterSettings {
    serde_json::from_value(json!({ "faults": value })).unwrap()
}

fn build(name: &str, settings: Value) -> AdapterHandle {
    (factory(name).unwrap().build)(&settings).unwrap().handle
}

fn plan(budget_cents: u64, geo: &str) -> CampaignPlan {
    CampaignPlan { budget_cents: Some(budget_cents), geo: Some(geo.to_owned()), ..Default::default() }
}

fn movie(tmdb: &str, title: &str) -> InventoryItem {
    InventoryItem {
        item_type: ItemType::Movie,
        title: Some(title.to_owned()),
        ids: [("tmdb".to_owned(), tmdb.to_owned())].into(),
        ..Default::default()
    }
}

fn play(tmdb: &str, watched_at: &str) -> InventoryItem {
    InventoryItem { watched_at: Some(watched_at.to_owned()), ..movie(tmdb, "Played") }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Ads

#[tokio::test]
async fn mock_ads_goldens() {
    let ads = MockAds::default();
    let created = ads.create_campaign(plan(1000, "US")).await.unwrap();
    assert!(created.id.starts_with("cmp_") && created.id.len() == 16, "{}", created.id);
    assert!(created.id[4..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        to_json(&created),
        json!({"id": created.id, "status": "active", "plan": {"budget_cents": 1000, "geo": "US"}})
    );
    // Deterministic across instances, and no duplicate on repeat.
    assert_eq!(MockAds::default().create_campaign(plan(1000, "US")).await.unwrap().id, created.id);
    assert_eq!(ads.create_campaign(plan(1000, "US")).await.unwrap(), created);
    assert_ne!(ads.create_campaign(plan(1001, "US")).await.unwrap().id, created.id);
    assert_eq!(ads.campaigns().len(), 2);

    let keyed = CampaignPlan { id: Some("c-1".into()), ..plan(5, "FR") };
    assert_eq!(ads.create_campaign(keyed.clone()).await.unwrap().id, "c-1");
    assert_eq!(ads.create_campaign(keyed).await.unwrap().id, "c-1");
    assert_eq!(ads.campaigns().len(), 3);

    let rows = ads.report(ReportQuery::default()).await.unwrap();
    assert_eq!(
        to_json(&rows),
        json!([
            {"date": "2024-01-01", "impressions": 100, "clicks": 10, "spend_cents": 123},
            {"date": "2024-01-02", "impressions": 110, "clicks": 11, "spend_cents": 145}
        ])
    );
    let second_day = ReportQuery { from: Some("2024-01-02".into()), ..Default::default() };
    assert_eq!(ads.report(second_day).await.unwrap().len(), 1);

    let paused = ads.pause("c-1").await.unwrap();
    assert_eq!((paused.id.as_str(), paused.status.as_str()), ("c-1", "paused"));
    assert_eq!(ads.pause("c-1").await.unwrap().status, "paused");
    // Re-creating a paused campaign returns it as it is.
    assert_eq!(
        ads.create_campaign(CampaignPlan { id: Some("c-1".into()), ..Default::default() }).await.unwrap().status,
        "paused"
    );

    let err = ads.pause("nope").await.unwrap_err();
    assert_eq!(
        (err.class, err.code, err.phase),
        (ErrorClass::Permanent, Some(ErrorCode::NotFound), ProviderPhase::Execute)
    );
    assert_eq!(err.scope.as_str(), "ads/mock_ads");
}

#[tokio::test]
async fn noop_ads_goldens() {
    let ads = NoopAds::default();
    assert_eq!(
        to_json(&ads.create_campaign(plan(1000, "US")).await.unwrap()),
        json!({"id": "noop", "status": "active"})
    );
    assert_eq!(
        to_json(&ads.report(ReportQuery::default()).await.unwrap()),
        json!([{"date": "2024-01-01", "impressions": 1, "clicks": 0}])
    );
    assert_eq!(to_json(&ads.pause("x").await.unwrap()), json!({"id": "x", "status": "paused"}));
}

#[tokio::test]
async fn shadow_compare_of_mock_and_noop_ads_has_two_mismatches() {
    let control = to_json(&MockAds::default().create_campaign(plan(1000, "US")).await.unwrap());
    let candidate = to_json(&NoopAds::default().create_campaign(plan(1000, "US")).await.unwrap());
    let (control, candidate) = (control.as_object().unwrap(), candidate.as_object().unwrap());
    let mut keys: Vec<&String> = control.keys().chain(candidate.keys()).collect();
    keys.sort();
    keys.dedup();
    let mismatched: Vec<&str> =
        keys.into_iter().filter(|k| control.get(*k) != candidate.get(*k)).map(String::as_str).collect();
    assert_eq!(mismatched, ["id", "plan"]);
}

// ---------------------------------------------------------------------------------------------
// Vector store

#[tokio::test]
async fn mock_vectorstore_goldens() {
    let store = MockVectorStore::default();
    let doc = |id: &str, text: &str| Document { id: id.into(), text: text.into(), ..Default::default() };
    let receipt =
        store.index(vec![doc("d1", "Hello World"), doc("d2", "goodbye"), doc("d3", "hello again")]).await.unwrap();
    assert_eq!(to_json(&receipt), json!({"indexed": 3, "index": "index-v1"}));

    let hits = store.search("HELLO", 10).await.unwrap();
    assert_eq!(
        to_json(&hits),
        json!([{"id": "d1", "text": "Hello World", "score": 1.0}, {"id": "d3", "text": "hello again", "score": 1.0}])
    );
    assert_eq!(store.search("hello", 1).await.unwrap().len(), 1);
    assert!(store.search("absent", 5).await.unwrap().is_empty());

    // Re-indexing replaces in place, keeping the first insertion order.
    store.index(vec![doc("d1", "farewell")]).await.unwrap();
    let ids: Vec<String> = store.search("", 10).await.unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(ids, ["d1", "d2", "d3"]);
    assert_eq!(store.search("hello", 10).await.unwrap()[0].id, "d3");

    assert_eq!(to_json(&store.swap("index-v2").await.unwrap()), json!({"active": "index-v2"}));
    assert_eq!(store.index(vec![doc("d4", "x")]).await.unwrap().index, "index-v2");
}

#[tokio::test]
async fn vectorstore_twins_carry_their_own_names() {
    for name in ["mock_vectorstore", "mock_vectorstore_a", "mock_vectorstore_b"] {
        let AdapterHandle::Vectorstore(store) = build(name, json!({"faults": {"fail_permanently": true}})) else {
            panic!("{name} is not a vector store");
        };
        let err = store.search("x", 1).await.unwrap_err();
        assert_eq!(err.scope.as_str(), format!("vectorstore/{name}"));
        assert_eq!(err.phase, ProviderPhase::Snapshot);
    }
}

// ---------------------------------------------------------------------------------------------
// LLM

#[tokio::test]
async fn mock_llm_gateway_goldens() {
    let gateway = MockLlmGateway::default();
    assert_eq!(
        to_json(&gateway.models().await.unwrap()),
        json!([
            {"id": "mock/small", "cost": 1.0, "latency_ms": 10.0, "quality": 0.8, "safety": 0.99},
            {"id": "mock/medium", "cost": 2.0, "latency_ms": 15.0, "quality": 0.9, "safety": 0.98},
            {"id": "mock/large", "cost": 4.0, "latency_ms": 30.0, "quality": 0.95, "safety": 0.98}
        ])
    );
    let route = |tags: &[&str]| {
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        let gateway = &gateway;
        async move { gateway.route("Summarise this text", &tags).await.unwrap() }
    };
    let small = route(&[]).await;
    assert_eq!(
        to_json(&small),
        json!({"model": "mock/small", "output": "[mock/small] Summarise this text",
               "metrics": {"latency_ms": 10, "cost": 1.0, "tokens": 3}})
    );
    assert_eq!(route(&["balanced"]).await.model, "mock/medium");
    let large = route(&["balanced", "quality"]).await;
    assert_eq!((large.model.as_str(), large.metrics.latency_ms, large.metrics.cost), ("mock/large", 30, 4.0));
    assert_eq!(large.output, "[mock/large] Summarise this text");
}

#[tokio::test]
async fn mock_llm_observability_goldens() {
    let obs = MockLlmObservability::default();
    let meta: pal::Extra = [("model".to_owned(), json!("mock/small"))].into_iter().collect();
    let trace = obs.trace_start("run-1", meta).await.unwrap();
    assert_eq!(
        to_json(&trace),
        json!({"trace_id": "trace_run-1", "run_id": "run-1", "status": "open", "meta": {"model": "mock/small"}})
    );
    assert_eq!(obs.trace_start("run-1", Default::default()).await.unwrap(), trace);

    let stopped = obs.trace_stop("trace_run-1", Default::default()).await.unwrap();
    assert_eq!(stopped.status, "closed");
    assert_eq!(obs.trace_stop("trace_run-1", Default::default()).await.unwrap(), stopped);
    let err = obs.trace_stop("trace_nope", Default::default()).await.unwrap_err();
    assert_eq!(err.code, Some(ErrorCode::NotFound));
    assert_eq!(err.scope.as_str(), "llm_observability/mock_llm_observability");

    assert_eq!(
        to_json(&obs.log_eval("faithfulness", 0.9, Default::default()).await.unwrap()),
        json!({"id": "eval_1", "name": "faithfulness", "score": 0.9})
    );
    assert_eq!(obs.log_eval("faithfulness", 0.9, Default::default()).await.unwrap().id, "eval_2");

    let link = obs.link("run-1", "trace_run-1").await.unwrap();
    assert_eq!(to_json(&link), json!({"run_id": "run-1", "trace_id": "trace_run-1"}));
    obs.link("run-1", "trace_run-1").await.unwrap();
    assert_eq!(obs.links().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle, experiments, CDP

#[tokio::test]
async fn mock_lifecycle_goldens() {
    let lifecycle = MockLifecycle::default();
    let keyed = Message {
        to: "u1".into(),
        template: Some("welcome".into()),
        idempotency_key: Some("k1".into()),
        ..Default::default()
    };
    let first = lifecycle.send(keyed.clone()).await.unwrap();
    assert_eq!(to_json(&first), json!({"message_id": "msg_1", "status": "sent"}));
    let again = lifecycle.send(keyed.clone()).await.unwrap();
    assert_eq!(to_json(&again), json!({"message_id": "msg_1", "status": "duplicate"}));
    let unkeyed = Message { to: "u2".into(), body: Some("hi".into()), ..Default::default() };
    assert_eq!(lifecycle.send(unkeyed.clone()).await.unwrap().message_id, "msg_2");
    assert_eq!(lifecycle.send(unkeyed.clone()).await.unwrap().message_id, "msg_3");
    assert_eq!(lifecycle.delivered(), [keyed.clone(), unkeyed.clone(), unkeyed.clone()]);

    let receipt = lifecycle.schedule(vec![keyed.clone(), unkeyed.clone()], SchedulePolicy::default()).await.unwrap();
    assert_eq!(to_json(&receipt), json!({"batch_id": "batch_1", "scheduled": 2}));
    assert_eq!(lifecycle.schedule(vec![], SchedulePolicy::default()).await.unwrap().batch_id, "batch_2");
    assert_eq!(lifecycle.delivered().len(), 3);

    let preview = lifecycle.preview(Message { subject: Some("Welcome".into()), ..keyed }).await.unwrap();
    assert_eq!(to_json(&preview), json!({"subject": "Welcome", "body": "template:welcome to:u1"}));
    assert_eq!(to_json(&lifecycle.preview(unkeyed).await.unwrap()), json!({"body": "hi"}));
    assert_eq!(lifecycle.delivered().len(), 3);
}

#[tokio::test]
async fn mock_experiments_goldens() {
    let exp = MockExperiments::default();
    assert_eq!(exp.get_flag("f", json!(false)).await.unwrap(), json!(false));
    assert_eq!(to_json(&exp.set_flag("f", json!("on")).await.unwrap()), json!({"key": "f", "value": "on"}));
    assert_eq!(exp.get_flag("f", json!(false)).await.unwrap(), json!("on"));

    assert_eq!(to_json(&exp.ramp("f", 25).await.unwrap()), json!({"key": "f", "stage": 25}));
    let err = exp.ramp("f", 101).await.unwrap_err();
    assert_eq!((err.class, err.code), (ErrorClass::Permanent, Some(ErrorCode::InvalidInput)));
    assert_eq!(exp.ramp_stage("f"), Some(25));

    let arms = vec!["control".to_owned(), "new".to_owned()];
    let started = exp.start_ab("checkout", arms.clone()).await.unwrap();
    assert_eq!(to_json(&started), json!({"key": "checkout", "kind": "ab", "arms": ["control", "new"]}));
    assert_eq!(exp.start_ab("checkout", arms.clone()).await.unwrap(), started);
    let err = exp.start_ab("checkout", vec!["a".into(), "b".into()]).await.unwrap_err();
    assert_eq!((err.class, err.code), (ErrorClass::Permanent, Some(ErrorCode::InvalidInput)));
    assert_eq!(exp.start_bandit("arms", vec!["x".into(), "y".into(), "z".into()]).await.unwrap().kind, "bandit");

    let mut counts = [0u64; 2];
    for unit in ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"] {
        let assignment = exp.assign("checkout", unit).await.unwrap();
        let index = experiments::arm_index("checkout", unit, 2);
        assert_eq!(assignment.variant, arms[index]);
        counts[index] += 1;
        // Same unit, same arm, not counted twice.
        assert_eq!(exp.assign("checkout", unit).await.unwrap(), assignment);
    }
    let report = exp.report("checkout").await.unwrap();
    assert_eq!(
        to_json(&report),
        json!({"key": "checkout", "arms": [
            {"arm": "control", "assignments": counts[0]},
            {"arm": "new", "assignments": counts[1]}
        ]})
    );
    assert_eq!(counts.iter().sum::<u64>(), 8);

    for err in [exp.assign("nope", "u1").await.unwrap_err(), exp.report("nope").await.unwrap_err()] {
        assert_eq!((err.class, err.code), (ErrorClass::Permanent, Some(ErrorCode::NotFound)));
    }
}

#[test]
fn arm_index_is_the_first_eight_digest_bytes_modulo_the_arms() {
    let digest = admit_core::DigestAlgorithm::Blake3.digest(b"exp/unit-7");
    let value = u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap());
    assert_eq!(experiments::arm_index("exp", "unit-7", 3), (value % 3) as usize);
}

#[tokio::test]
async fn mock_cdp_goldens() {
    let cdp = MockCdp::default();
    let traits = |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    cdp.upsert_profile(Profile { id: "u1".into(), traits: traits(&[("plan", json!("free")), ("age", json!(30))]) })
        .await
        .unwrap();
    let merged =
        cdp.upsert_profile(Profile { id: "u1".into(), traits: traits(&[("plan", json!("pro"))]) }).await.unwrap();
    assert_eq!(to_json(&merged), json!({"id": "u1", "traits": {"age": 30, "plan": "pro"}}));
    assert_eq!(cdp.get_profile("u1").await.unwrap(), Some(merged));
    assert_eq!(cdp.get_profile("u2").await.unwrap(), None);

    let event =
        Event { profile_id: "u1".into(), name: "signup".into(), event_id: Some("e1".into()), ..Default::default() };
    assert_eq!(to_json(&cdp.ingest_event(event.clone()).await.unwrap()), json!({"event_id": "e1", "accepted": true}));
    assert_eq!(to_json(&cdp.ingest_event(event.clone()).await.unwrap()), json!({"event_id": "e1", "accepted": false}));
    let anonymous = Event { event_id: None, ..event };
    assert_eq!(
        to_json(&cdp.ingest_event(anonymous.clone()).await.unwrap()),
        json!({"event_id": "evt_1", "accepted": true})
    );
    assert_eq!(to_json(&cdp.ingest_event(anonymous).await.unwrap()), json!({"event_id": "evt_2", "accepted": true}));
    assert_eq!(cdp.events().len(), 3);

    let audience =
        Audience { id: "vip".into(), profile_ids: vec!["u1".into(), "u2".into(), "u1".into()], ..Default::default() };
    assert_eq!(to_json(&cdp.sync_audience(audience).await.unwrap()), json!({"id": "vip", "synced": 2}));
    let replaced = Audience { id: "vip".into(), profile_ids: vec!["u3".into()], ..Default::default() };
    assert_eq!(cdp.sync_audience(replaced).await.unwrap().synced, 1);
    assert_eq!(cdp.audience("vip"), Some(vec!["u3".to_owned()]));
}

// ---------------------------------------------------------------------------------------------
// Inventory

#[tokio::test]
async fn mock_inventory_identity_and_capabilities() {
    let inventory = MockInventory::default();
    assert_eq!((inventory.name(), inventory.label()), ("MOCK", "Mock inventory"));
    assert_eq!(inventory.features(), Features::ALL);
    assert_eq!(
        to_json(&inventory.capabilities()),
        json!({"index_semantics": "present", "verify_after_write": true, "observed_deletes": true,
               "checkpoint": true, "chunk_size": 100, "confirms_keys": true})
    );
    assert_eq!(inventory.capabilities().index_semantics, IndexSemantics::Present);
}

#[tokio::test]
async fn mock_inventory_add_confirms_keys_and_reports_unresolved() {
    let inventory = MockInventory::default();
    let no_ids = InventoryItem { title: Some("Mystery".into()), year: Some(2001), ..Default::default() };
    let imdb_only = InventoryItem { ids: [("imdb".to_owned(), "tt1".to_owned())].into(), ..Default::default() };
    let plex_only = InventoryItem {
        title: Some("Some Title".into()),
        year: Some(1999),
        ids: [("plex".to_owned(), "55".to_owned())].into(),
        ..Default::default()
    };
    let result = inventory
        .add(vec![movie("1", "A"), no_ids, imdb_only, plex_only, movie("1", "A again")], Feature::Watchlist, false)
        .await
        .unwrap();
    assert_eq!(
        to_json(&result),
        json!({"ok": true, "confirmed_keys": ["tmdb:1", "imdb:tt1", "title:some title|year:1999"],
               "unresolved": [{"ids": {}, "reason": "no ids", "title": "Mystery", "year": 2001}]})
    );
    let index = inventory.build_index(Feature::Watchlist).await.unwrap();
    assert_eq!(index.len(), 3);
    assert_eq!(index[0].title.as_deref(), Some("A again"));
    assert_eq!(inventory.writes(), 1);

    // Ratings: an upsert replaces the rating.
    let rated = |r: u8| InventoryItem { rating: Some(r), ..movie("7", "Rated") };
    inventory.add(vec![rated(6)], Feature::Ratings, false).await.unwrap();
    inventory.add(vec![rated(9)], Feature::Ratings, false).await.unwrap();
    let ratings = inventory.build_index(Feature::Ratings).await.unwrap();
    assert_eq!(ratings.iter().map(|i| i.rating).collect::<Vec<_>>(), [Some(9)]);
    let out_of_range = inventory.add(vec![rated(11)], Feature::Ratings, false).await.unwrap();
    assert_eq!(out_of_range.confirmed_keys, Some(vec![]));
    assert_eq!(out_of_range.unresolved.len(), 1);
}

#[tokio::test]
async fn mock_inventory_dry_run_writes_nothing() {
    let inventory = MockInventory::default();
    let before = inventory.activities().await.unwrap();
    let result = inventory.add(vec![movie("1", "A"), movie("2", "B")], Feature::Watchlist, true).await.unwrap();
    assert!(result.ok && result.dry_run);
    assert_eq!(result.confirmed_keys, Some(vec!["tmdb:1".to_owned(), "tmdb:2".to_owned()]));
    assert_eq!(inventory.writes(), 0);
    assert!(inventory.build_index(Feature::Watchlist).await.unwrap().is_empty());
    assert_eq!(inventory.activities().await.unwrap(), before);

    inventory.seed(Feature::Watchlist, vec![movie("1", "A")]).unwrap();
    let removal = inventory.remove(vec![movie("1", "A"), movie("3", "C")], Feature::Watchlist, true).await.unwrap();
    assert_eq!(to_json(&removal), json!({"ok": true, "confirmed_keys": ["tmdb:1"], "unresolved": [], "dry_run": true}));
    assert_eq!(inventory.items(Feature::Watchlist).len(), 1);
    assert_eq!(inventory.writes(), 0);
}

#[tokio::test]
async fn mock_inventory_history_does_not_duplicate_plays() {
    let inventory = MockInventory::default();
    let first = play("1", "2024-05-01T20:00:00Z");
    inventory.add(vec![first.clone()], Feature::History, false).await.unwrap();
    let again = inventory.add(vec![first.clone()], Feature::History, false).await.unwrap();
    assert_eq!(again.confirmed_keys, Some(vec!["tmdb:1".to_owned()]));
    assert_eq!(inventory.build_index(Feature::History).await.unwrap().len(), 1);

    // Another play of the same title is another play.
    inventory.add(vec![play("1", "2024-05-02T20:00:00Z"), first.clone()], Feature::History, false).await.unwrap();
    assert_eq!(inventory.keys(Feature::History), ["tmdb:1", "tmdb:1"]);

    // Removing one play keeps the other; removing without watched_at removes every play.
    inventory.remove(vec![first.clone()], Feature::History, false).await.unwrap();
    assert_eq!(inventory.items(Feature::History)[0].watched_at.as_deref(), Some("2024-05-02T20:00:00Z"));
    let all = InventoryItem { watched_at: None, ..first };
    assert_eq!(inventory.remove(vec![all], Feature::History, false).await.unwrap().confirmed_keys.unwrap(), ["tmdb:1"]);
    assert!(inventory.items(Feature::History).is_empty());
}

#[tokio::test]
async fn mock_inventory_remove_confirms_only_what_was_there() {
    let inventory = MockInventory::default();
    inventory.add(vec![movie("1", "A"), movie("2", "B")], Feature::Watchlist, false).await.unwrap();
    let result =
        inventory.remove(vec![movie("2", "B"), movie("9", "Absent")], Feature::Watchlist, false).await.unwrap();
    assert_eq!(to_json(&result), json!({"ok": true, "confirmed_keys": ["tmdb:2"], "unresolved": []}));
    assert_eq!(inventory.keys(Feature::Watchlist), ["tmdb:1"]);
    assert_eq!(inventory.writes(), 2);
}

#[tokio::test]
async fn mock_inventory_activities_advance_per_feature() {
    let inventory = MockInventory::default();
    let start = inventory.activities().await.unwrap();
    let expected: Value = json!({
        "watchlist": "2024-01-01T00:00:00Z", "ratings": "2024-01-01T00:00:00Z", "history": "2024-01-01T00:00:00Z",
        "progress": "2024-01-01T00:00:00Z", "playlists": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"
    });
    assert_eq!(to_json(&start), expected);

    inventory.add(vec![movie("1", "A")], Feature::Watchlist, false).await.unwrap();
    inventory.add(vec![InventoryItem { rating: Some(8), ..movie("1", "A") }], Feature::Ratings, false).await.unwrap();
    inventory.add(vec![movie("2", "B")], Feature::Watchlist, true).await.unwrap();
    let after = inventory.activities().await.unwrap();
    assert_eq!(after["watchlist"], "2024-01-01T00:00:01Z");
    assert_eq!(after["ratings"], "2024-01-01T00:00:02Z");
    assert_eq!(after["history"], "2024-01-01T00:00:00Z");
    assert_eq!(after["updated_at"], "2024-01-01T00:00:02Z");

    assert_eq!(inventory::checkpoint_time(3_661), "2024-01-01T01:01:01Z");
    assert_eq!(inventory::checkpoint_time(60 * 86_400), "2024-03-01T00:00:00Z");
    assert_eq!(inventory::checkpoint_time(366 * 86_400 + 59), "2025-01-01T00:00:59Z");
}

#[tokio::test]
async fn mock_inventory_seeds_from_settings() {
    let settings = json!({
        "items": {
            "watchlist": [{"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949"}}],
            "history": [
                {"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 2, "ids": {},
                 "watched_at": "2024-02-01T00:00:00Z"}
            ]
        },
        "name": "MOCK_B"
    });
    let AdapterHandle::Inventory(inventory) = build("mock_inventory", settings) else { panic!("not inventory") };
    assert_eq!(inventory.name(), "MOCK_B");
    assert_eq!(inventory.build_index(Feature::Watchlist).await.unwrap()[0].title.as_deref(), Some("Heat"));
    assert_eq!(inventory.build_index(Feature::History).await.unwrap().len(), 1);
    // Seeding is not a write: the checkpoints did not move.
    assert_eq!(inventory.activities().await.unwrap()["updated_at"], "2024-01-01T00:00:00Z");

    let episode = serde_json::from_value::<InventoryItem>(
        json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 2}),
    )
    .unwrap();
    assert_eq!(inventory::item_key(&episode).as_deref(), Some("tvdb:81189#s1e2"));

    let err =
        (factory("mock_inventory").unwrap().build)(&json!({"items": {"ratings": [{"title": "No ids"}]}})).unwrap_err();
    assert!(err.contains("items.ratings[0]") && err.contains("no ids"), "{err}");
    let err = (factory("mock_inventory").unwrap().build)(&json!({"items": {"watchlistt": []}})).unwrap_err();
    assert!(err.contains("watchlistt"), "{err}");
}

#[tokio::test]
async fn mock_inventory_limited_features_are_unsupported() {
    let settings = MockInventorySettings {
        features: Some(Features { watchlist: true, ..Default::default() }),
        ..Default::default()
    };
    let inventory = MockInventory::new(settings).unwrap();
    let err = inventory.add(vec![movie("1", "A")], Feature::Ratings, false).await.unwrap_err();
    assert_eq!((err.class, err.code), (ErrorClass::Unsupported, Some(ErrorCode::Unsupported)));
    assert_eq!(inventory.writes(), 0);
    let activities = inventory.activities().await.unwrap();
    assert_eq!(activities.keys().collect::<Vec<_>>(), ["updated_at", "watchlist"]);
}

// ---------------------------------------------------------------------------------------------
// Fault injection

#[tokio::test]
async fn fail_times_fails_retryably_without_side_effects_then_succeeds() {
    let lifecycle = MockLifecycle::new(faults(json!({"fail_times": 2})));
    let message = Message { to: "u1".into(), ..Default::default() };
    for nth in 1..=2 {
        let err = lifecycle.send(message.clone()).await.unwrap_err();
        assert_eq!((err.class, err.code), (ErrorClass::Retryable, Some(ErrorCode::Unavailable)));
        assert_eq!((err.scope.as_str(), err.phase), ("lifecycle/mock_lifecycle", ProviderPhase::Execute));
        assert!(err.message.contains(&format!("{nth} of 2")), "{}", err.message);
        assert!(lifecycle.delivered().is_empty());
    }
    assert_eq!(lifecycle.send(message).await.unwrap().message_id, "msg_1");
    assert_eq!(lifecycle.delivered().len(), 1);
    assert_eq!(lifecycle.faults().injected_failures(), 2);

    let inventory = MockInventory::new(MockInventorySettings {
        faults: FaultSettings { fail_times: 2, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    for _ in 0..2 {
        let err = inventory.add(vec![movie("1", "A")], Feature::History, false).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(inventory.writes(), 0);
        assert!(inventory.items(Feature::History).is_empty());
    }
    inventory.add(vec![movie("1", "A")], Feature::History, false).await.unwrap();
    assert_eq!(inventory.writes(), 1);
}

#[tokio::test]
async fn retry_after_makes_injected_failures_rate_limits() {
    let ads = MockAds::new(faults(json!({"fail_times": 1, "retry_after_ms": 1500})));
    let err = ads.report(ReportQuery::default()).await.unwrap_err();
    assert_eq!(
        (err.class, err.code, err.retry_after_ms),
        (ErrorClass::Retryable, Some(ErrorCode::RateLimited), Some(1500))
    );
    assert_eq!(err.phase, ProviderPhase::Snapshot);
    assert_eq!(ads.report(ReportQuery::default()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn fail_permanently_fails_every_call_without_side_effects() {
    let ads = MockAds::new(faults(json!({"fail_permanently": true, "fail_times": 1})));
    for _ in 0..3 {
        let err = ads.create_campaign(plan(1, "US")).await.unwrap_err();
        assert_eq!((err.class, err.code), (ErrorClass::Permanent, Some(ErrorCode::InvalidInput)));
    }
    assert!(ads.campaigns().is_empty());
    // Health is not an operation faults fail.
    assert_eq!(ads.health().await.status, HealthStatus::Ok);
    ads.faults().set_fail_permanently(false);
    ads.create_campaign(plan(1, "US")).await.unwrap_err(); // the one `fail_times` failure
    ads.create_campaign(plan(1, "US")).await.unwrap();
    assert_eq!(ads.campaigns().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn latency_advances_tokio_time() {
    let store = MockVectorStore::new(faults(json!({"latency_ms": 250})));
    let started = tokio::time::Instant::now();
    store.search("x", 1).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    store.health().await;
    assert_eq!(started.elapsed(), Duration::from_millis(500));

    // Latency comes before the injected failure.
    store.faults().fail_next(1);
    let started = tokio::time::Instant::now();
    store.search("x", 1).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(250));
}

#[tokio::test]
async fn health_reports_the_configured_status() {
    for (status, expected) in [
        ("ok", HealthStatus::Ok),
        ("degraded", HealthStatus::Degraded),
        ("down", HealthStatus::Down),
        ("auth_failed", HealthStatus::AuthFailed),
    ] {
        for name in ADAPTER_NAMES {
            let handle = build(name, json!({"faults": {"health": status}}));
            let report = handle.health().await;
            assert_eq!(report.status, expected, "{name}");
            assert_eq!(report.reason.is_some(), expected != HealthStatus::Ok, "{name}");
        }
    }
    let inventory = MockInventory::default();
    assert_eq!(inventory.health().await, pal::HealthReport::ok());
    inventory.set_health(HealthStatus::Down);
    assert_eq!(inventory.health().await.status, HealthStatus::Down);
    inventory.set_health(HealthStatus::Ok);
    assert!(inventory.health().await.status.is_usable());
}

#[tokio::test(start_paused = true)]
async fn the_pipeline_retries_injected_failures() {
    let pipeline = Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::new(7)), RetryPolicy::default());
    let handle = build("mock_ads", json!({"faults": {"fail_times": 2}}));
    let target = CallTarget::new(Capability::Ads, "mock_ads");
    let op = Capability::Ads.op("create_campaign").unwrap();
    let input = json!({"plan": {"id": "c-9", "budget_cents": 1000, "geo": "US"}});
    let spec = CallSpec { idempotent: op.is_idempotent_for(&input), ..CallSpec::new(target.clone(), op) };
    let result = pipeline.call(&spec, || pal::invoke(&handle, &target, op, &input)).await.unwrap();
    assert_eq!(
        result,
        json!({"id": "c-9", "status": "active", "plan": {"id": "c-9", "budget_cents": 1000, "geo": "US"}})
    );

    // Without a plan id the call is not idempotent: the first failure is returned as is.
    let handle = build("mock_ads", json!({"faults": {"fail_times": 1}}));
    let input = json!({"plan": {"budget_cents": 1000}});
    let spec = CallSpec { idempotent: op.is_idempotent_for(&input), ..CallSpec::new(target.clone(), op) };
    let err = pipeline.call(&spec, || pal::invoke(&handle, &target, op, &input)).await.unwrap_err();
    assert!(err.is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Factories

#[tokio::test]
async fn every_factory_builds_with_empty_settings() {
    let factories = factories();
    let names: Vec<&str> = factories.iter().map(|f| f.name).collect();
    assert_eq!(names, ADAPTER_NAMES);
    for factory in &factories {
        for settings in [json!({}), Value::Null] {
            let built = (factory.build)(&settings).unwrap();
            assert_eq!(built.handle.capability(), factory.capability, "{}", factory.name);
            assert!(built.secrets.is_empty());
            assert_eq!(built.handle.health().await.status, HealthStatus::Ok);
        }
    }
}

#[tokio::test]
async fn the_built_in_default_registry_resolves_every_capability_to_a_mock() {
    let pipeline = Arc::new(Pipeline::default());
    let registry = Registry::with_environment(
        factories(),
        pipeline,
        PathBuf::from("/nonexistent/providers-mock-test"),
        Box::new(|| None),
    )
    .unwrap();
    let listing = registry.list(false).await;
    assert_eq!(listing.len(), Capability::ALL.len());
    assert!(listing.iter().all(|row| row.healthy && row.adapter.starts_with("mock_")));
    let result = registry
        .call_json(Capability::LlmGateway, "route", &json!({"prompt": "hi", "tags": ["quality"]}), None)
        .await
        .unwrap();
    assert_eq!(result["model"], "mock/large");
    let result = registry
        .call_json(
            Capability::Inventory,
            "add",
            &json!({"items": [{"ids": {"tmdb": "1"}}], "feature": "watchlist"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(result, json!({"ok": true, "confirmed_keys": ["tmdb:1"], "unresolved": []}));
}

#[test]
fn unknown_settings_are_refused_by_name() {
    for factory in factories() {
        let err = (factory.build)(&json!({"fail_tims": 2})).unwrap_err();
        assert!(err.contains("fail_tims"), "{}: {err}", factory.name);
        let err = (factory.build)(&json!({"faults": {"latency": 5}})).unwrap_err();
        assert!(err.contains("latency"), "{}: {err}", factory.name);
        let err = (factory.build)(&json!({"faults": {"health": "sick"}})).unwrap_err();
        assert!(err.contains("sick"), "{}: {err}", factory.name);
    }
}

#[tokio::test]
async fn tokens_stay_out_of_debug_and_errors_unless_echoed() {
    const TOKEN: &str = "tok-SECRET-123";
    for factory in factories() {
        let built = (factory.build)(&json!({"token": TOKEN, "faults": {"fail_permanently": true}})).unwrap();
        assert_eq!(built.secrets.iter().map(|s| s.expose()).collect::<Vec<_>>(), [TOKEN], "{}", factory.name);
        let debug = format!("{:?} {:?}", built.handle, built.secrets);
        assert!(!debug.contains(TOKEN), "{}: {debug}", factory.name);
        assert!(debug.contains("[REDACTED]"), "{}: {debug}", factory.name);
    }

    let quiet = MockAds::new(serde_json::from_value(json!({"token": TOKEN, "faults": {"fail_times": 1}})).unwrap());
    let err = quiet.report(ReportQuery::default()).await.unwrap_err();
    assert!(!err.to_string().contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
    assert!(!quiet.pause("nope").await.unwrap_err().message.contains(TOKEN));

    let leaky = MockAds::new(
        serde_json::from_value(json!({"token": TOKEN, "faults": {"fail_times": 1, "echo_token_in_errors": true}}))
            .unwrap(),
    );
    let err = leaky.report(ReportQuery::default()).await.unwrap_err();
    assert!(err.message.contains(TOKEN), "{}", err.message);
    // Echo applies to injected failures only.
    assert!(!leaky.pause("nope").await.unwrap_err().message.contains(TOKEN));
    let inventory = MockInventory::new(
        serde_json::from_value(
            json!({"token": TOKEN, "faults": {"fail_permanently": true, "echo_token_in_errors": true}}),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(inventory.activities().await.unwrap_err().message.contains(TOKEN));
}
