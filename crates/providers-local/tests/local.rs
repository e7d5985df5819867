#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `local`: round trips of every feature, upserts, plays never duplicated (also across two
//! adapters on one file), honest dry runs, removals, checkpoints, persistence, and refusal of
//! files that are not a library.

use std::path::{Path, PathBuf};

use admit_core::{ErrorClass, ErrorCode};
use pal::HealthStatus;
use pal::inventory::{Feature, Features, IndexSemantics, InventoryItem, InventoryProvider};
use providers_local::store::SCHEMA_VERSION;
use providers_local::{LocalLibrary, LocalSettings};
use rusqlite::Connection;
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;

fn settings(path: &Path) -> LocalSettings {
    LocalSettings { path: path.to_owned(), name: None, label: None, chunk_size: None }
}

fn library() -> (TempDir, PathBuf, LocalLibrary) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.db");
    let library = LocalLibrary::open(settings(&path)).unwrap();
    (dir, path, library)
}

fn item(value: Value) -> InventoryItem {
    serde_json::from_value(value).unwrap()
}

fn rows(path: &Path, feature: Feature) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM items WHERE feature = ?1", [feature.as_str()], |r| r.get(0)).unwrap()
}

fn heat() -> InventoryItem {
    item(json!({"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949", "imdb": "tt0113277"}}))
}

#[tokio::test]
async fn identity_features_and_capabilities() {
    let (_dir, _, library) = library();
    assert_eq!((library.name(), library.label()), ("LOCAL", "Local library"));
    assert_eq!(library.features(), Features::ALL);
    assert_eq!(
        serde_json::to_value(library.capabilities()).unwrap(),
        json!({"index_semantics": "present", "verify_after_write": true, "observed_deletes": true,
               "checkpoint": true, "chunk_size": 5000, "confirms_keys": true})
    );
    assert_eq!(library.capabilities().index_semantics, IndexSemantics::Present);
    assert!(!library.capabilities().read_only);
    assert_eq!(library.health().await.status, HealthStatus::Ok);
}

#[test]
fn the_chunk_size_is_a_setting_from_1_to_100000() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.db");
    let with = |chunk_size| LocalLibrary::open(LocalSettings { chunk_size, ..settings(&path) });
    assert_eq!(with(Some(200)).unwrap().capabilities().chunk_size, 200);
    assert_eq!(with(Some(100_000)).unwrap().capabilities().chunk_size, 100_000);
    for bad in [0, 100_001] {
        let error = with(Some(bad)).unwrap_err();
        assert!(error.to_string().contains(&format!("chunk_size: {bad} is not from 1 to 100000")), "{error}");
    }
}

#[tokio::test]
async fn every_feature_round_trips() {
    let (_dir, _, library) = library();
    let cases = [
        (Feature::Watchlist, heat()),
        (
            Feature::Ratings,
            item(json!({"title": "Heat", "ids": {"tmdb": "949"}, "rating": 9, "rated_at": "2024-03-01T00:00:00Z"})),
        ),
        (Feature::History, item(json!({"ids": {"tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"}))),
        (
            Feature::Progress,
            item(
                json!({"ids": {"tmdb": "949"}, "progress_ms": 600_000, "duration_ms": 6_000_000, "progress_at": "2024-03-01T21:00:00Z"}),
            ),
        ),
        (
            Feature::Playlists,
            item(
                json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 2, "ids": {"tvdb": "349232"},
                        "plex": {"ratingKey": "12"}}),
            ),
        ),
    ];
    for (feature, sent) in cases {
        let written = library.add(vec![sent.clone()], feature, false).await.unwrap();
        let key = pal::keys::canonical_key(&sent);
        assert!(written.ok && !written.dry_run, "{feature}: {written:?}");
        assert_eq!(written.confirmed_keys, Some(vec![key.clone()]), "{feature}");
        assert!(written.unresolved.is_empty());
        let snapshot = library.build_index(feature).await.unwrap();
        assert_eq!(snapshot, vec![pal::keys::normalize_item(&sent)], "{feature}");
        // Other features are untouched (earlier ones were emptied again below).
        for other in Feature::ALL.into_iter().filter(|f| *f != feature) {
            assert!(library.build_index(other).await.unwrap().is_empty(), "{feature} leaked into {other}");
        }
        let removed = library.remove(vec![sent], feature, false).await.unwrap();
        assert_eq!(removed.confirmed_keys, Some(vec![key]));
        assert!(library.build_index(feature).await.unwrap().is_empty(), "{feature}");
    }
}

#[tokio::test]
async fn items_are_normalised_once_on_write() {
    let (_dir, path, library) = library();
    let raw = item(
        json!({"type": "movie", "title": "Heat", "tmdb": 949, "ids": {"IMDB": "https://www.imdb.com/title/TT0113277/", "trakt": "0"}}),
    );
    let written = library.add(vec![raw], Feature::Watchlist, false).await.unwrap();
    assert_eq!(written.confirmed_keys, Some(vec!["tmdb:949".to_owned()]));
    let stored = library.build_index(Feature::Watchlist).await.unwrap();
    assert_eq!(
        stored[0].ids,
        [("imdb".to_owned(), "tt0113277".to_owned()), ("tmdb".to_owned(), "949".to_owned())].into()
    );
    assert!(!stored[0].extra.contains_key("tmdb"));
    let conn = Connection::open(&path).unwrap();
    let key: String = conn.query_row("SELECT key FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!(key, "tmdb:949");
}

#[tokio::test]
async fn ratings_upsert_replaces_the_rating() {
    let (_dir, path, library) = library();
    let rate = |rating: u8| item(json!({"ids": {"tmdb": "949"}, "title": "Heat", "rating": rating}));
    library.add(vec![rate(7)], Feature::Ratings, false).await.unwrap();
    library.add(vec![rate(9)], Feature::Ratings, false).await.unwrap();
    let snapshot = library.build_index(Feature::Ratings).await.unwrap();
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].rating, Some(9));
    assert_eq!(rows(&path, Feature::Ratings), 1);
}

#[tokio::test]
async fn an_item_keyed_differently_updates_its_entry_instead_of_duplicating_it() {
    let (_dir, path, library) = library();
    library
        .add(
            vec![item(json!({"title": "Heat", "ids": {"tmdb": "949", "imdb": "tt0113277"}, "rating": 7}))],
            Feature::Ratings,
            false,
        )
        .await
        .unwrap();
    // Another provider knows Heat by its IMDb id only.
    let written = library
        .add(vec![item(json!({"title": "Heat", "ids": {"imdb": "tt0113277"}, "rating": 10}))], Feature::Ratings, false)
        .await
        .unwrap();
    assert_eq!(written.confirmed_keys, Some(vec!["imdb:tt0113277".to_owned()]));
    let snapshot = library.build_index(Feature::Ratings).await.unwrap();
    assert_eq!(snapshot.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot[0].rating, Some(10));
    assert_eq!(snapshot[0].ids.get("tmdb"), Some("949"), "ids are merged, never forgotten");
    assert_eq!(rows(&path, Feature::Ratings), 1);
    // And removing by the IMDb id removes it.
    library.remove(vec![item(json!({"ids": {"imdb": "tt0113277"}}))], Feature::Ratings, false).await.unwrap();
    assert!(library.build_index(Feature::Ratings).await.unwrap().is_empty());
}

#[tokio::test]
async fn history_never_stores_a_play_twice() {
    let (_dir, path, library) = library();
    let play = |at: &str| item(json!({"ids": {"tmdb": "949"}, "watched_at": at}));
    library
        .add(vec![play("2024-03-01T20:00:00Z"), play("2024-03-01T20:00:00Z")], Feature::History, false)
        .await
        .unwrap();
    library.add(vec![play("2024-03-01T20:00:00Z")], Feature::History, false).await.unwrap();
    // The same instant spelled differently is the same play.
    library.add(vec![play("2024-03-01T21:00:00+01:00")], Feature::History, false).await.unwrap();
    // The same play known by another id is the same play.
    library
        .add(
            vec![item(json!({"ids": {"imdb": "tt0113277", "tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"}))],
            Feature::History,
            false,
        )
        .await
        .unwrap();
    assert_eq!(rows(&path, Feature::History), 1);
    // Another time is another play.
    library.add(vec![play("2024-04-01T20:00:00Z")], Feature::History, false).await.unwrap();
    assert_eq!(rows(&path, Feature::History), 2);
    let snapshot = library.build_index(Feature::History).await.unwrap();
    assert_eq!(snapshot.len(), 2);
}

#[tokio::test]
async fn two_adapters_on_one_file_never_duplicate_a_play() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let first = LocalLibrary::open(settings(&path)).unwrap();
    let second = LocalLibrary::open(settings(&path)).unwrap();
    let play = item(json!({"ids": {"tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"}));
    first.add(vec![play.clone()], Feature::History, false).await.unwrap();
    let again = second.add(vec![play.clone()], Feature::History, false).await.unwrap();
    assert_eq!(again.confirmed_keys, Some(vec!["tmdb:949".to_owned()]));
    assert_eq!(rows(&path, Feature::History), 1);
    assert_eq!(second.build_index(Feature::History).await.unwrap().len(), 1);
    assert_eq!(first.build_index(Feature::History).await.unwrap().len(), 1);
    // Concurrent writers from two threads: still one row per play.
    let plays: Vec<InventoryItem> = (0..50)
        .map(|i| item(json!({"ids": {"tmdb": "348"}, "watched_at": format!("2024-05-01T20:{:02}:00Z", i % 25)})))
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| first.add_now(&plays, Feature::History, false).unwrap());
        scope.spawn(|| second.add_now(&plays, Feature::History, false).unwrap());
    });
    assert_eq!(rows(&path, Feature::History), 1 + 25);
}

#[test]
fn the_schema_itself_refuses_a_second_row_for_a_play() {
    let (_dir, path, library) = library();
    library
        .add_now(
            &[item(json!({"ids": {"tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"}))],
            Feature::History,
            false,
        )
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    let duplicate = conn.execute(
        "INSERT INTO items (feature, key, play, item) VALUES ('history', 'tmdb:949', '2024-03-01T20:00:00Z', '{}')",
        [],
    );
    let error = duplicate.unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation), "{error}");
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let (_dir, path, library) = library();
    library.add(vec![heat()], Feature::Watchlist, false).await.unwrap();
    let before_writes = library.writes();
    let activities = library.activities().await.unwrap();
    let db_bytes = || std::fs::read(&path).unwrap();
    let wal_bytes = || std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    let (db, wal) = (db_bytes(), wal_bytes());

    let alien = item(json!({"title": "Alien", "ids": {"tmdb": "348"}}));
    let added = library.add(vec![alien.clone()], Feature::Watchlist, true).await.unwrap();
    assert!(added.ok && added.dry_run);
    assert_eq!(added.confirmed_keys, Some(vec!["tmdb:348".to_owned()]));
    let removed = library.remove(vec![heat()], Feature::Watchlist, true).await.unwrap();
    assert!(removed.dry_run);
    assert_eq!(removed.confirmed_keys, Some(vec!["tmdb:949".to_owned()]));

    assert_eq!((db_bytes(), wal_bytes()), (db, wal), "not a byte changed");
    assert_eq!(rows(&path, Feature::Watchlist), 1);
    assert_eq!(library.writes(), before_writes);
    assert_eq!(library.activities().await.unwrap(), activities);
    assert_eq!(library.build_index(Feature::Watchlist).await.unwrap(), vec![pal::keys::normalize_item(&heat())]);
}

#[tokio::test]
async fn remove_takes_out_the_items_and_nothing_else() {
    let (_dir, path, library) = library();
    let play = |tmdb: &str, at: &str| item(json!({"ids": {"tmdb": tmdb}, "watched_at": at}));
    library
        .add(
            vec![
                play("949", "2024-03-01T20:00:00Z"),
                play("949", "2024-04-01T20:00:00Z"),
                play("348", "2024-03-01T20:00:00Z"),
            ],
            Feature::History,
            false,
        )
        .await
        .unwrap();
    // One play.
    library.remove(vec![play("949", "2024-03-01T20:00:00Z")], Feature::History, false).await.unwrap();
    assert_eq!(rows(&path, Feature::History), 2);
    // Without watched_at: every play of the item.
    let every = library.remove(vec![item(json!({"ids": {"tmdb": "949"}}))], Feature::History, false).await.unwrap();
    assert_eq!(every.confirmed_keys, Some(vec!["tmdb:949".to_owned()]));
    let left = library.build_index(Feature::History).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].ids.get("tmdb"), Some("348"));
    // Removing what is absent succeeds and changes nothing.
    let writes = library.writes();
    let again = library.remove(vec![item(json!({"ids": {"tmdb": "949"}}))], Feature::History, false).await.unwrap();
    assert!(again.ok);
    assert_eq!(library.writes(), writes);
    assert_eq!(rows(&path, Feature::History), 1);
}

#[tokio::test]
async fn unresolved_items_say_why_and_carry_their_ids() {
    let (_dir, _, library) = library();
    let written = library
        .add(
            vec![
                item(json!({"ids": {"tmdb": "1"}, "rating": 11})),
                item(json!({"ids": {"tmdb": "2"}})),
                item(json!({"ids": {"tmdb": "3"}, "rating": 8})),
            ],
            Feature::Ratings,
            false,
        )
        .await
        .unwrap();
    assert_eq!(written.confirmed_keys, Some(vec!["tmdb:3".to_owned()]));
    assert_eq!(written.unresolved.len(), 2);
    for unresolved in &written.unresolved {
        assert!(!unresolved.ids.is_empty());
        assert!(unresolved.reason.as_deref().unwrap().contains("1 to 10"), "{unresolved:?}");
    }
    let progress = library.add(vec![item(json!({"ids": {"tmdb": "4"}}))], Feature::Progress, false).await.unwrap();
    assert_eq!(progress.unresolved[0].reason.as_deref(), Some("a progress entry needs progress_ms"));
    // No ids but a title: stored under the title/year fallback key.
    let untitled =
        library.add(vec![item(json!({"title": "Home Movie", "year": 2003}))], Feature::Watchlist, false).await.unwrap();
    assert_eq!(untitled.confirmed_keys, Some(vec!["movie|title:home movie|year:2003".to_owned()]));
    // Nothing to key it by at all.
    let nothing = library.add(vec![item(json!({"year": 2003}))], Feature::Watchlist, false).await.unwrap();
    assert_eq!(nothing.confirmed_keys, Some(vec![]));
    assert!(nothing.unresolved[0].reason.as_deref().unwrap().contains("cannot be keyed"));
}

#[tokio::test]
async fn checkpoints_advance_on_every_change() {
    let (_dir, _, library) = library();
    let start = library.activities().await.unwrap();
    for feature in Feature::ALL {
        assert!(start.contains_key(feature.as_str()), "{start:?}");
    }
    let updated = start["updated_at"].clone();
    let mut last = start["watchlist"].clone();
    for tmdb in ["1", "2", "3"] {
        library.add(vec![item(json!({"ids": {"tmdb": tmdb}}))], Feature::Watchlist, false).await.unwrap();
        let now = library.activities().await.unwrap();
        assert!(now["watchlist"] > last, "{} then {}", last, now["watchlist"]);
        assert!(now["updated_at"] >= now["watchlist"] && now["updated_at"] > updated);
        assert_eq!(now["ratings"], start["ratings"], "other features keep their checkpoints");
        last = now["watchlist"].clone();
    }
    // A write that changes nothing does not move the checkpoint.
    library.add(vec![item(json!({"ids": {"tmdb": "3"}}))], Feature::Watchlist, false).await.unwrap();
    assert_eq!(library.activities().await.unwrap()["watchlist"], last);
    library.remove(vec![item(json!({"ids": {"tmdb": "3"}}))], Feature::Watchlist, false).await.unwrap();
    assert!(library.activities().await.unwrap()["watchlist"] > last);
    for value in library.activities().await.unwrap().values() {
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).unwrap();
        assert!(value.ends_with('Z'), "{value}");
    }
}

#[tokio::test]
async fn checkpoints_advance_even_when_the_clock_stands_still() {
    fn frozen() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }
    let dir = tempfile::tempdir().unwrap();
    let library = LocalLibrary::open_with_clock(settings(&dir.path().join("frozen.db")), frozen).unwrap();
    assert_eq!(library.activities().await.unwrap()["ratings"], "1970-01-01T00:00:00Z");
    for (n, rating) in [(1, 5), (2, 6), (3, 7)] {
        library
            .add(vec![item(json!({"ids": {"tmdb": "1"}, "rating": rating}))], Feature::Ratings, false)
            .await
            .unwrap();
        let activities = library.activities().await.unwrap();
        assert_eq!(activities["ratings"], format!("1970-01-01T00:00:0{n}Z"));
        assert_eq!(activities["updated_at"], activities["ratings"]);
    }
}

#[tokio::test]
async fn reopening_keeps_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.db");
    let activities = {
        let library = LocalLibrary::open(settings(&path)).unwrap();
        library.add(vec![heat()], Feature::Watchlist, false).await.unwrap();
        library.add(vec![item(json!({"ids": {"tmdb": "949"}, "rating": 9}))], Feature::Ratings, false).await.unwrap();
        library.activities().await.unwrap()
    };
    let reopened = LocalLibrary::open(settings(&path)).unwrap();
    assert_eq!(reopened.build_index(Feature::Watchlist).await.unwrap(), vec![pal::keys::normalize_item(&heat())]);
    assert_eq!(reopened.build_index(Feature::Ratings).await.unwrap()[0].rating, Some(9));
    assert_eq!(reopened.activities().await.unwrap(), activities);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_file_that_is_not_a_library_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("notes.db");
    std::fs::write(&garbage, "These are my notes, not a database. ".repeat(200)).unwrap();
    let error = LocalLibrary::open(settings(&garbage)).unwrap_err();
    assert_eq!(error.path, garbage);
    let text = error.to_string();
    assert!(text.contains(&garbage.display().to_string()) && text.contains("not an SQLite database"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&garbage).unwrap(),
        "These are my notes, not a database. ".repeat(200),
        "untouched"
    );

    // Another program's SQLite database.
    let foreign = dir.path().join("other.db");
    Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE songs (title TEXT)").unwrap();
    let text = LocalLibrary::open(settings(&foreign)).unwrap_err().to_string();
    assert!(text.contains("other.db") && text.contains("not a cw local library"), "{text}");

    // A library from a newer cw.
    let newer = dir.path().join("newer.db");
    drop(LocalLibrary::open(settings(&newer)).unwrap());
    Connection::open(&newer).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    let text = LocalLibrary::open(settings(&newer)).unwrap_err().to_string();
    assert!(text.contains("newer.db") && text.contains("newer than this build supports"), "{text}");

    // A directory that does not exist.
    let nowhere = dir.path().join("missing").join("library.db");
    let text = LocalLibrary::open(settings(&nowhere)).unwrap_err().to_string();
    assert!(text.contains("missing") && text.contains("cannot open"), "{text}");
}

#[tokio::test]
async fn a_damaged_library_reports_down_and_permanent_errors() {
    let (_dir, path, library) = library();
    library.add(vec![heat()], Feature::Watchlist, false).await.unwrap();
    Connection::open(&path).unwrap().execute_batch("DROP TABLE items").unwrap();
    let health = library.health().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert!(health.reason.unwrap().contains("library.db"));
    let error = library.build_index(Feature::Watchlist).await.unwrap_err();
    assert_eq!((error.class, error.code), (ErrorClass::Permanent, Some(ErrorCode::Io)));
    assert!(error.message.contains("library.db"), "{error}");
    assert_eq!(error.scope.to_string(), "inventory/local");
}

#[tokio::test]
async fn a_locked_library_is_a_retryable_error() {
    let (_dir, path, library) = library();
    let mut conn = Connection::open(&path).unwrap();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive).unwrap();
    // Waiting out the 5 s busy timeout once is the price of this test.
    let error = library.add(vec![heat()], Feature::Watchlist, false).await.unwrap_err();
    assert_eq!((error.class, error.code), (ErrorClass::Retryable, Some(ErrorCode::Unavailable)), "{error}");
    drop(tx);
    assert!(library.add(vec![heat()], Feature::Watchlist, false).await.is_ok());
}

#[test]
fn the_factory_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.db");
    let factory = providers_local::factories().into_iter().find(|f| f.name == "local").unwrap();
    let built = (factory.build)(&json!({"path": path, "name": "MY_LIBRARY", "label": "Mine"})).unwrap();
    assert!(built.secrets.is_empty());
    let pal::AdapterHandle::Inventory(inventory) = built.handle else { panic!("not an inventory") };
    assert_eq!((inventory.name(), inventory.label()), ("MY_LIBRARY", "Mine"));
    let unknown = (factory.build)(&json!({"path": path, "paht": "x"})).unwrap_err();
    assert!(unknown.contains("unknown field `paht`"), "{unknown}");
    let missing = (factory.build)(&json!({})).unwrap_err();
    assert!(missing.contains("missing field `path`"), "{missing}");
    let bad_name = (factory.build)(&json!({"path": path, "name": "my library"})).unwrap_err();
    assert!(bad_name.contains("invalid name `my library`"), "{bad_name}");
    let schema = providers_local::settings_schema("local").unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
}

/// A large library is read on two threads, batch by batch: every row comes back, in the order
/// the rows were written; a damaged row in the middle is an error naming it, not a hang.
#[tokio::test]
async fn a_large_library_reads_whole_and_in_order_and_a_bad_row_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.db");
    drop(LocalLibrary::open(settings(&path)).unwrap());
    let count = 60_000;
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for n in 0..count {
            // Written in an order that is not the keys' order.
            let tmdb = (n * 7919) % count + 1;
            let item = json!({"type": "movie", "title": format!("t{n}"), "ids": {"tmdb": tmdb.to_string()}});
            tx.execute(
                "INSERT INTO items (feature, key, play, item) VALUES ('watchlist', ?1, '', ?2)",
                rusqlite::params![format!("tmdb:{tmdb}"), item.to_string()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let library = LocalLibrary::open(settings(&path)).unwrap();
    let items = library.build_index(Feature::Watchlist).await.unwrap();
    assert_eq!(items.len(), count);
    assert!(items.iter().enumerate().all(|(n, item)| item.title.as_deref() == Some(format!("t{n}").as_str())));
    drop(library);
    // Rows parsed by the second thread (batch 7) and by the reading one (batch 2).
    for id in [30_001, 10_001] {
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute("UPDATE items SET item = '{\"title\": 7}' WHERE id = ?1", [id]).unwrap();
        }
        let library = LocalLibrary::open(settings(&path)).unwrap();
        let error = library.build_index(Feature::Watchlist).await.unwrap_err();
        assert!(error.message.contains(&format!("row {id}")), "{}", error.message);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE items SET item = '{\"title\": \"t\"}' WHERE id = ?1", [id]).unwrap();
    }
}
