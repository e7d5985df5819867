#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Ingest (CONTRACTS §3): ids normalised once, canonical keys, one alias index per side and
//! matching through it ("Items and keys"); present vs delta snapshots, persistence flags and the
//! drop guard ("Index semantics", "Guardrails"); rating normalisation; history play keys.

use std::collections::BTreeSet;

use admit_core::Severity;
use cw_orchestrator::ingest::{
    Baseline, IndexedBaseline, IndexedSnapshot, IngestOptions, Snapshot, baseline_stands_in, ingest, ingest_indexed,
    ingest_owned, ingest_with, normalize_rating, persistable,
};
use cw_orchestrator::ingest::{DROP_GUARD_RULE, Inventory, UNRATED_RULE};
use pal::inventory::{Feature, IndexSemantics, InventoryItem};
use proptest::prelude::*;
use serde_json::{Value, json};

fn item(json: Value) -> InventoryItem {
    serde_json::from_value(json).unwrap()
}

fn items_of(values: &[Value]) -> Vec<InventoryItem> {
    values.iter().cloned().map(item).collect()
}

fn inventory(feature: Feature, items: &[Value]) -> Inventory {
    Inventory::new(feature, &items_of(items))
}

fn keys(side: &Inventory) -> Vec<&str> {
    side.entries().map(|e| e.key()).collect()
}

/// Whether `probe` (ingested on its own side) finds a match on `side`.
fn finds(side: &Inventory, probe: Value) -> Vec<String> {
    let probe = Inventory::new(side.feature(), &[item(probe)]);
    let entry = probe.entries().next().unwrap();
    side.same_item(entry).into_iter().map(|e| e.key().to_owned()).collect()
}

fn movies(n: usize) -> Vec<InventoryItem> {
    (1..=n).map(|i| item(json!({"type": "movie", "ids": {"tmdb": i.to_string()}}))).collect()
}

// ---------------------------------------------------------------------------------------------
// Items and keys

#[test]
fn ids_are_normalised_once_at_ingest() {
    let side = inventory(
        Feature::Watchlist,
        &[json!({"type": "movie", "imdb": "https://www.imdb.com/title/TT0113277/", "tmdb": 949,
                  "ids": {"trakt": " 1,234 ", "tvdb": "null", "guid": "com.plexapp.agents.thetvdb://81189?lang=en"}})],
    );
    let entry = side.get("tmdb:949").expect("keyed by tmdb, the first of the key priority");
    let item = entry.item();
    let ids = &item.ids;
    assert_eq!(ids.get("imdb"), Some("tt0113277"));
    assert_eq!(ids.get("tmdb"), Some("949"));
    assert_eq!(ids.get("trakt"), Some("1234"));
    assert_eq!(ids.get("tvdb"), Some("81189"), "parsed out of the guid; the sentinel was dropped");
    assert!(!entry.item().extra.contains_key("imdb"), "top-level ids moved into ids");
    let expected = ["imdb:tt0113277", "tmdb:949", "trakt:1234", "tvdb:81189"];
    assert_eq!(entry.tokens().iter().collect::<Vec<_>>(), expected);
}

#[test]
fn keys_are_lower_case() {
    let side = inventory(
        Feature::Watchlist,
        &[
            json!({"ids": {"slug": "HEAT-1995"}}),
            json!({"title": "The THING", "year": 1982}),
            json!({"ids": {"IMDB": "TT1"}}),
        ],
    );
    assert_eq!(keys(&side), ["imdb:tt1", "movie|title:the thing|year:1982", "slug:heat-1995"]);
}

#[test]
fn same_canonical_key_matches() {
    let side = inventory(Feature::Watchlist, &[json!({"ids": {"tmdb": "949"}})]);
    assert_eq!(finds(&side, json!({"ids": {"tmdb": " 949 ", "imdb": "tt0113277"}})), ["tmdb:949"]);
    // Title/year keys too (no strong tokens at all).
    let side2 = self::inventory(Feature::Watchlist, &[json!({"title": "Heat", "year": 1995})]);
    assert_eq!(finds(&side2, json!({"title": " HEAT ", "year": 1995})), ["movie|title:heat|year:1995"]);
    assert!(finds(&side2, json!({"title": "Heat", "year": 1996})).is_empty());
}

#[test]
fn a_shared_strong_token_matches_items_keyed_differently() {
    // Keyed imdb on one side, tmdb on the other; they share the imdb token.
    let side = inventory(Feature::Watchlist, &[json!({"ids": {"imdb": "tt0113277", "trakt": "7"}})]);
    assert_eq!(finds(&side, json!({"ids": {"tmdb": "949", "imdb": "TT0113277"}})), ["imdb:tt0113277"]);
    // ... or only a trakt token.
    assert_eq!(finds(&side, json!({"ids": {"tmdb": "949", "trakt": "7"}})), ["imdb:tt0113277"]);
    // Nothing shared: no match.
    assert!(finds(&side, json!({"ids": {"tmdb": "949", "trakt": "8"}})).is_empty());
}

#[test]
fn weak_ids_alone_do_not_match() {
    // slug, plex, simkl are not strong tokens: sharing them is not enough when keys differ.
    let side =
        inventory(Feature::Watchlist, &[json!({"ids": {"tmdb": "1", "slug": "heat", "plex": "5", "simkl": "9"}})]);
    assert!(finds(&side, json!({"ids": {"tmdb": "2", "slug": "heat", "plex": "5", "simkl": "9"}})).is_empty());
}

#[test]
fn episodes_match_by_show_tokens_with_their_fragment() {
    let side = inventory(
        Feature::History,
        &[json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 2,
                  "watched_at": "2026-01-01T00:00:00Z"})],
    );
    // Keyed imdb#s01e02 here, tvdb#s01e02 there: the shared token is tvdb:81189#s01e02.
    let same =
        json!({"type": "episode", "show_ids": {"imdb": "tt0903747", "tvdb": "81189"}, "season": 1, "episode": 2});
    assert_eq!(finds(&side, same), ["tvdb:81189#s01e02@1767225600"]);
    // Another episode of the same show does not match.
    let other = json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 3});
    assert!(finds(&side, other).is_empty());
    // An episode known only by its own id matches the same episode keyed by its show.
    let side = self::inventory(
        Feature::Watchlist,
        &[
            json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "349232"}, "season": 1, "episode": 2}),
        ],
    );
    assert_eq!(finds(&side, json!({"type": "episode", "ids": {"tvdb": "349232"}})), ["tvdb:81189#s01e02"]);
}

#[test]
fn duplicates_in_one_snapshot_keep_the_first_and_every_token() {
    let side = inventory(
        Feature::Watchlist,
        &[
            json!({"ids": {"tmdb": "1", "imdb": "tt1"}, "title": "first"}),
            json!({"ids": {"tmdb": "1", "trakt": "3"}, "title": "second"}),
        ],
    );
    assert_eq!(side.len(), 1);
    let entry = side.get("tmdb:1").unwrap();
    assert_eq!(entry.item().title.as_deref(), Some("first"));
    assert!(entry.tokens().contains("trakt:3"));
    assert_eq!(finds(&side, json!({"ids": {"trakt": "3"}})), ["tmdb:1"]);
}

#[test]
fn history_plays_are_keyed_by_watched_at_epoch_seconds() {
    let side = inventory(
        Feature::History,
        &[
            json!({"ids": {"tmdb": "1"}, "watched_at": "2026-01-01T01:00:00+01:00"}),
            json!({"ids": {"tmdb": "1"}, "watched_at": "2026-01-02T00:00:00Z"}),
            json!({"ids": {"tmdb": "1"}, "watched_at": "1767225600"}),
            json!({"ids": {"tmdb": "2"}}),
        ],
    );
    // 01:00+01:00 and the epoch string are the same instant: one play.
    assert_eq!(keys(&side), ["tmdb:1@1767225600", "tmdb:1@1767312000", "tmdb:2@unknown"]);
    assert_eq!(side.get("tmdb:1@1767312000").unwrap().watched_at(), Some(1_767_312_000));
}

prop_compose! {
    fn movie()(tmdb in proptest::option::of(1u8..6), imdb in proptest::option::of(1u8..6),
               trakt in proptest::option::of(1u8..6), slug in proptest::option::of(1u8..3),
               title in proptest::option::of(1u8..3)) -> InventoryItem {
        let mut ids = pal::inventory::Ids::new();
        if let Some(v) = tmdb { ids.insert("tmdb", v.to_string()); }
        if let Some(v) = imdb { ids.insert("imdb", format!("tt{v}")); }
        if let Some(v) = trakt { ids.insert("trakt", v.to_string()); }
        if let Some(v) = slug { ids.insert("slug", format!("s{v}")); }
        InventoryItem { ids, title: title.map(|t| format!("T{t}")), ..Default::default() }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// The alias index finds exactly the items `pal::keys::same_item` calls the same.
    #[test]
    fn the_alias_index_agrees_with_same_item(items in proptest::collection::vec(movie(), 0..8), probe in movie()) {
        let side = Inventory::new(Feature::Watchlist, &items);
        let probe_side = Inventory::new(Feature::Watchlist, std::slice::from_ref(&probe));
        let found: BTreeSet<&str> = side.same_item(probe_side.entries().next().unwrap()).iter().map(|e| e.key()).collect();
        // Brute force over the raw items: which entries hold an item that is the same as the
        // probe (an entry stands for every raw item with its key, duplicates included).
        let expected: BTreeSet<&str> = side
            .entries()
            .filter(|e| items.iter().any(|raw| pal::keys::canonical_key(raw) == e.key() && pal::keys::same_item(raw, &probe)))
            .map(|e| e.key())
            .collect();
        prop_assert_eq!(found, expected);
    }
}

prop_compose! {
    /// A play: a movie (with titles whose fallback keys extend one another after an `@`, the
    /// separator of play keys) watched at one of a few times, or at no readable time.
    fn play()(movie in movie(), title in proptest::option::of(prop_oneof![Just("a"), Just("a|year:@1")]),
              watched in proptest::option::of(0u8..3)) -> InventoryItem {
        let ids = if title.is_some() { pal::inventory::Ids::new() } else { movie.ids };
        let title = title.map(str::to_owned).or(movie.title);
        let watched_at = watched.map(|w| if w == 2 { "yesterday".to_owned() } else { format!("{}", 1_700_000_000 + u64::from(w) * 3600) });
        InventoryItem { ids, title, watched_at, ..Default::default() }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// For history, the index finds every play of every item `pal::keys::same_item` calls the
    /// same as the probe, and only those, whatever the play keys look like.
    #[test]
    fn history_matching_finds_every_play_of_the_same_items(items in proptest::collection::vec(play(), 0..10), probe in play()) {
        let side = Inventory::new(Feature::History, &items);
        let probe_side = Inventory::new(Feature::History, std::slice::from_ref(&probe));
        let found: BTreeSet<&str> = side.same_item(probe_side.entries().next().unwrap()).iter().map(|e| e.key()).collect();
        let items_matched: BTreeSet<String> =
            items.iter().filter(|raw| pal::keys::same_item(raw, &probe)).map(pal::keys::canonical_key).collect();
        let expected: BTreeSet<&str> =
            side.entries().filter(|e| items_matched.contains(e.item_key())).map(|e| e.key()).collect();
        prop_assert_eq!(found, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Matching many entries at once finds what matching them one by one finds, whichever way
    /// it goes (walking the side with the queries' tokens indexed, or through the side's index,
    /// built before or during the call), for every feature's keying.
    #[test]
    fn batched_matching_agrees_with_one_by_one(
        items in proptest::collection::vec(play(), 0..60),
        queries in proptest::collection::vec(play(), 0..6),
        history in any::<bool>(),
        index_first in any::<bool>(),
    ) {
        let feature = if history { Feature::History } else { Feature::Watchlist };
        let side = Inventory::new(feature, &items);
        let probes = Inventory::new(feature, &queries);
        let probes: Vec<&cw_orchestrator::ingest::Entry> = probes.entries().collect();
        if index_first && let Some(first) = probes.first() {
            side.same_item(first);
        }
        let expected: Vec<Vec<&str>> = probes.iter().map(|q| side.same_item(q).iter().map(|e| e.key()).collect()).collect();
        let fresh = Inventory::new(feature, &items);
        let batched: Vec<Vec<&str>> = fresh.same_items(&probes).iter().map(|found| found.iter().map(|e| e.key()).collect()).collect();
        prop_assert_eq!(&batched, &expected);
        // `any_matches` with a condition that refuses some candidates.
        let accept = |q: &cw_orchestrator::ingest::Entry, c: &cw_orchestrator::ingest::Entry| c.key() != q.key();
        let fresh = Inventory::new(feature, &items);
        let any = fresh.any_matches(&probes, |q, c, _| accept(q, c));
        let one_by_one: Vec<bool> = probes.iter().map(|q| side.any_match(q, |c| accept(q, c))).collect();
        prop_assert_eq!(any, one_by_one);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// `holds` answers, for each item, what looking it up alone answers: the same item, and for
    /// history the same play within a minute.
    #[test]
    fn holds_agrees_with_looking_each_item_up(
        items in proptest::collection::vec(play(), 0..40),
        probes in proptest::collection::vec(play(), 0..8),
        history in any::<bool>(),
    ) {
        let feature = if history { Feature::History } else { Feature::Watchlist };
        let side = Inventory::new(feature, &items);
        let expected: Vec<bool> = probes
            .iter()
            .map(|item| {
                let probe = Inventory::new(feature, std::slice::from_ref(item));
                probe.entries().next().is_some_and(|entry| {
                    side.same_item(entry).iter().any(|e| {
                        !history || match (e.watched_at(), entry.watched_at()) {
                            (Some(a), Some(b)) => a.abs_diff(b) < 60,
                            (None, None) => true,
                            _ => false,
                        }
                    })
                })
            })
            .collect();
        let probes: Vec<&InventoryItem> = probes.iter().collect();
        prop_assert_eq!(Inventory::new(feature, &items).holds(&probes), expected);
    }
}

/// A side large enough to be built on several threads is the side built on one: the same
/// entries, the same first-of-duplicates, the same tokens.
#[test]
fn a_large_side_built_in_parallel_is_the_side_built_on_one_thread() {
    let items: Vec<InventoryItem> = (0..60_000u32)
        .map(|n| {
            // Every 7th item repeats an earlier key with other ids and another title.
            let tmdb = if n % 7 == 0 { n / 2 } else { n };
            item(json!({"title": format!("t{n}"), "ids": {"tmdb": tmdb.to_string(), "imdb": format!("tt{n}")}}))
        })
        .collect();
    let borrowed = Inventory::new(Feature::Watchlist, &items);
    let owned = Inventory::from_items(Feature::Watchlist, items);
    assert_eq!(owned.len(), borrowed.len());
    assert!(owned == borrowed, "the entries differ");
}

// ---------------------------------------------------------------------------------------------
// Index semantics

#[test]
fn a_present_snapshot_is_the_inventory() {
    let baseline = Baseline { items: movies(3), checkpoint: None };
    let ingested = ingest(Feature::Watchlist, &Snapshot::present(movies(2)), Some(&baseline));
    assert_eq!(keys(&ingested.current), ["tmdb:1", "tmdb:2"]);
    assert_eq!(ingested.baseline.as_ref().map(Inventory::len), Some(3));
    assert!(!ingested.suspect);
}

#[test]
fn a_delta_snapshot_is_laid_over_the_baseline() {
    let baseline = Baseline {
        items: vec![item(json!({"ids": {"imdb": "tt1"}, "title": "old"})), item(json!({"ids": {"tmdb": "2"}}))],
        checkpoint: None,
    };
    // The delta re-keys tt1 (now with a tmdb id: same item, new key) and adds tmdb:3.
    let delta = Snapshot {
        items: vec![
            item(json!({"ids": {"imdb": "tt1", "tmdb": "1"}, "title": "new"})),
            item(json!({"ids": {"tmdb": "3"}})),
        ],
        semantics: IndexSemantics::Delta,
        checkpoint: None,
    };
    let ingested = ingest(Feature::Watchlist, &delta, Some(&baseline));
    assert_eq!(keys(&ingested.current), ["tmdb:1", "tmdb:2", "tmdb:3"], "baseline ∪ delta, the same item once");
    assert_eq!(ingested.current.get("tmdb:1").unwrap().item().title.as_deref(), Some("new"));
    // Without a baseline a delta is all there is.
    assert_eq!(keys(&ingest(Feature::Watchlist, &delta, None).current), ["tmdb:1", "tmdb:3"]);
}

#[test]
fn a_delta_snapshot_has_no_drop_guard() {
    let baseline = Baseline { items: movies(100), checkpoint: None };
    let delta = Snapshot { items: vec![], semantics: IndexSemantics::Delta, checkpoint: None };
    let ingested = ingest(Feature::Watchlist, &delta, Some(&baseline));
    assert!(!ingested.suspect);
    assert!(ingested.findings.is_empty());
    assert_eq!(ingested.current.len(), 100);
}

#[test]
fn persistence_flags_keep_items_out_of_baselines() {
    let table = [
        (json!({"_cw_transient": true}), false),
        (json!({"_cw_transient": false}), true),
        (json!({"_cw_skip_persist": true}), false),
        (json!({"_cw_persist": false}), false),
        (json!({"_cw_persist": true}), true),
        (json!({"plex": {"ignored": true, "ratingKey": "5"}}), false),
        (json!({"jellyfin": {"ignored": false}}), true),
        (json!({"_cw_transient": "yes"}), true), // flags are booleans
        (json!({}), true),
    ];
    for (flags, expected) in table {
        let mut raw = json!({"ids": {"tmdb": "1"}});
        raw.as_object_mut().unwrap().extend(flags.as_object().unwrap().clone());
        let item = item(raw);
        assert_eq!(persistable(&item), expected, "{flags}");
        let side = Inventory::new(Feature::Watchlist, std::slice::from_ref(&item));
        assert_eq!(side.len(), 1, "flagged items are still synced");
        assert_eq!(side.persistable_items().len(), usize::from(expected), "{flags}");
    }
    // Baselines are keyed by entry key: a history baseline keeps every play.
    let plays = items_of(&[
        json!({"ids": {"tmdb": "1"}, "watched_at": "100"}),
        json!({"ids": {"tmdb": "1"}, "watched_at": "200"}),
        json!({"ids": {"tmdb": "1"}, "watched_at": "300", "_cw_transient": true}),
    ]);
    let history = Inventory::new(Feature::History, &plays);
    assert_eq!(history.persistable_items().keys().collect::<Vec<_>>(), ["tmdb:1@100", "tmdb:1@200"]);
    {}
}

// ---------------------------------------------------------------------------------------------
// Drop guard (at ingest)

#[test]
fn a_suspect_empty_snapshot_is_replaced_by_its_baseline() {
    let baseline = Baseline { items: movies(40), checkpoint: Some("2026-01-01T00:00:00Z".into()) };
    let empty = Snapshot { checkpoint: Some("2026-01-01T00:00:00Z".into()), ..Snapshot::present(vec![]) };
    let ingested = ingest(Feature::Watchlist, &empty, Some(&baseline));
    assert!(ingested.suspect);
    assert_eq!(ingested.current.len(), 40, "the baseline stands in");
    let finding = ingested.findings.iter().find(|f| f.rule_id == DROP_GUARD_RULE).expect("a finding says why");
    assert_eq!(finding.severity, Severity::Warning);
    let evidence = finding.evidence.as_ref().unwrap();
    assert_eq!(evidence["snapshot_count"], 0);
    assert_eq!(evidence["baseline_count"], 40);
    assert_eq!(evidence["threshold"], 4);
}

#[test]
fn the_drop_guard_needs_a_collapse_a_big_baseline_and_a_still_checkpoint() {
    let at = |s: &'static str| Some(s);
    // (baseline size, snapshot size, previous checkpoint, current checkpoint, suspect)
    type Case = (usize, usize, Option<&'static str>, Option<&'static str>, bool);
    let table: &[Case] = &[
        (20, 0, None, None, true),
        (19, 0, None, None, false), // baseline too small to judge
        (20, 2, None, None, true),  // max(1, 10 % of 20) = 2
        (20, 3, None, None, false),
        (100, 10, None, None, true), // 10 % of 100
        (100, 11, None, None, false),
        (100, 0, at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z"), true),
        (100, 0, at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"), false), // advanced
        (100, 0, at("2026-01-02T00:00:00Z"), at("2026-01-01T00:00:00Z"), true),  // went back
        (100, 0, None, at("2026-01-02T00:00:00Z"), true),                        // no previous checkpoint: no evidence
    ];
    for (previous, current, previous_checkpoint, checkpoint, suspect) in table {
        let baseline = Baseline { items: movies(*previous), checkpoint: previous_checkpoint.map(str::to_owned) };
        let snapshot = Snapshot { checkpoint: checkpoint.map(str::to_owned), ..Snapshot::present(movies(*current)) };
        let ingested = ingest(Feature::Watchlist, &snapshot, Some(&baseline));
        assert_eq!(ingested.suspect, *suspect, "{previous} → {current}, {previous_checkpoint:?} → {checkpoint:?}");
        assert_eq!(ingested.findings.iter().any(|f| f.rule_id == DROP_GUARD_RULE), *suspect);
        assert_eq!(ingested.current.len(), if *suspect { *previous } else { *current });
        // A run reads the baseline keys-only first, and whole when it stands in: the same test.
        let indexed = IndexedSnapshot::new(Feature::Watchlist, snapshot);
        let keys_only = keys_only(Feature::Watchlist, baseline);
        assert_eq!(baseline_stands_in(&indexed, &keys_only, IngestOptions::default()), *suspect);
    }
    // No baseline: nothing to compare with.
    assert!(!ingest(Feature::Watchlist, &Snapshot::present(vec![]), None).suspect);
}

fn keys_only(feature: Feature, baseline: Baseline) -> IndexedBaseline {
    let mut keys_only = IndexedBaseline::keys_only(feature, baseline.items.len());
    baseline.items.into_iter().for_each(|item| keys_only.push(item));
    keys_only.finish(baseline.checkpoint)
}

#[test]
fn a_keys_only_baseline_keeps_what_matching_needs_and_never_stands_in() {
    let rated = |tmdb: u32, rating: u8| item(json!({"ids": {"tmdb": tmdb.to_string()}, "rating": rating}));
    let baseline = Baseline { items: (1..=40).map(|n| rated(n, 7)).collect(), checkpoint: None };
    let healthy = IndexedSnapshot::new(Feature::Ratings, Snapshot::present(baseline.items[..39].to_vec()));
    let ingested = ingest_indexed(
        Feature::Ratings,
        healthy,
        Some(keys_only(Feature::Ratings, baseline.clone())),
        IngestOptions::default(),
    );
    assert!(!ingested.suspect);
    let kept = ingested.baseline.as_ref().unwrap();
    assert_eq!(kept.len(), 40);
    let forty = kept.get("tmdb:40").unwrap();
    assert_eq!((forty.rating(), forty.tokens().iter().collect::<Vec<_>>()), (Some(7), vec!["tmdb:40"]));
    assert_eq!(ingested.current.get("tmdb:1").unwrap().item().rating, Some(7), "the snapshot keeps its items");

    // A collapsed snapshot: the baseline should stand in, but it was read without its items.
    // Nothing may be removed because of this side, and it says so.
    let collapsed = IndexedSnapshot::new(Feature::Ratings, Snapshot::present(vec![]));
    let baseline = keys_only(Feature::Ratings, baseline);
    assert!(baseline_stands_in(&collapsed, &baseline, IngestOptions::default()));
    let ingested = ingest_indexed(Feature::Ratings, collapsed, Some(baseline), IngestOptions::default());
    assert!(ingested.suspect, "no removals are planned from this side and its baseline is kept");
    assert!(ingested.current.is_empty(), "entries without items never stand in for a snapshot");
    let finding = ingested.findings.iter().find(|f| f.rule_id == DROP_GUARD_RULE).unwrap();
    assert_eq!(finding.severity, Severity::Error);
}

#[test]
fn turning_the_drop_guard_off_takes_a_collapsed_snapshot_at_its_word() {
    let baseline = Baseline { items: movies(40), checkpoint: None };
    let off = IngestOptions { drop_guard: false };
    let ingested = ingest_with(Feature::Watchlist, &Snapshot::present(vec![]), Some(&baseline), off);
    assert!(!ingested.suspect);
    assert!(ingested.current.is_empty());
    assert!(ingested.findings.iter().all(|f| f.rule_id != DROP_GUARD_RULE));
    // The default keeps it on.
    assert!(
        ingest_with(Feature::Watchlist, &Snapshot::present(vec![]), Some(&baseline), IngestOptions::default()).suspect
    );
}

// ---------------------------------------------------------------------------------------------
// Ratings

#[test]
fn ratings_normalise_to_integers_one_to_ten() {
    let table: &[(f64, Option<u8>)] = &[
        (-1.0, None),
        (0.0, None),
        (f64::NAN, None),
        (0.4, Some(1)), // positive: never unrated
        (1.0, Some(1)),
        (7.0, Some(7)),
        (7.5, Some(8)), // half up
        (7.49, Some(7)),
        (10.0, Some(10)),
        (11.0, Some(1)), // (10, 100]: divided by 10
        (15.0, Some(2)), // 1.5 → 2, half up
        (85.0, Some(9)),
        (84.0, Some(8)),
        (100.0, Some(10)),
        (100.5, None),
        (150.0, None),
    ];
    for (value, expected) in table {
        assert_eq!(normalize_rating(*value), *expected, "{value}");
    }
}

#[test]
fn ratings_are_normalised_at_ingest_and_unrated_items_left_out() {
    let ingested = ingest(
        Feature::Ratings,
        &Snapshot::present(vec![
            item(json!({"ids": {"tmdb": "1"}, "rating": 85})),
            item(json!({"ids": {"tmdb": "2"}, "rating": 0})),
            item(json!({"ids": {"tmdb": "3"}, "rating": 150})),
            item(json!({"ids": {"tmdb": "4"}})),
            item(json!({"ids": {"tmdb": "5"}, "rating": 6})),
        ]),
        None,
    );
    let ratings: Vec<(&str, Option<u8>)> = ingested.current.entries().map(|e| (e.key(), e.item().rating)).collect();
    assert_eq!(ratings, [("tmdb:1", Some(9)), ("tmdb:5", Some(6))]);
    let finding = ingested.findings.iter().find(|f| f.rule_id == UNRATED_RULE).unwrap();
    assert_eq!(finding.evidence.as_ref().unwrap()["count"], 3);
}

#[test]
fn consuming_ingest_gives_what_borrowing_ingest_gives() {
    let items = items_of(&[
        json!({"type": "movie", "ids": {"tmdb": "1"}, "rating": 8}),
        json!({"type": "movie", "ids": {"imdb": "TT0000002"}, "rating": 0}),
        json!({"type": "movie", "ids": {"tmdb": "1", "trakt": "9"}, "rating": 7}),
        json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 2, "rating": 9}),
    ]);
    let mut suspects = 0;
    for semantics in [IndexSemantics::Present, IndexSemantics::Delta] {
        let rated: Vec<InventoryItem> =
            movies(40).into_iter().map(|m| InventoryItem { rating: Some(5), ..m }).collect();
        for baseline in [None, Some(Baseline { items: rated, checkpoint: Some("c1".into()) })] {
            for snapshot_items in [items.clone(), Vec::new()] {
                let snapshot = Snapshot { items: snapshot_items, semantics, checkpoint: Some("c1".into()) };
                let borrowed = ingest(Feature::Ratings, &snapshot, baseline.as_ref());
                let owned =
                    ingest_owned(Feature::Ratings, snapshot.clone(), baseline.clone(), IngestOptions::default());
                assert_eq!(owned, borrowed, "{semantics:?}, baseline: {}", baseline.is_some());
                suspects += usize::from(owned.suspect);
            }
        }
    }
    // The drop guard's path was among those compared (present, with the baseline: both a
    // collapsed and an empty snapshot are suspect next to 40 items).
    assert_eq!(suspects, 2);
}
