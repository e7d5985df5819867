#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `file`: JSON (array and object forms) and IMDb CSV exports (ratings, watchlist), hostile
//! input refused with file, line and field, and writes refused as unsupported.

use std::path::{Path, PathBuf};

use admit_core::{ErrorClass, ErrorCode, ProviderPhase};
use pal::HealthStatus;
use pal::inventory::{Feature, Features, InventoryItem, InventoryProvider, ItemType};
use providers_local::file::{self, ItemOrder, Kind};
use providers_local::imdb::CsvKind;
use providers_local::{FileError, FileFormat, FileInventory, FileSettings};
use serde_json::json;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn settings(path: &Path) -> FileSettings {
    FileSettings { path: path.to_owned(), format: FileFormat::Auto, feature: None, name: None, label: None }
}

fn open(dir: &TempDir, name: &str, text: &str) -> FileInventory {
    FileInventory::open(settings(&write(dir, name, text))).unwrap()
}

fn open_err(dir: &TempDir, name: &str, text: &str) -> FileError {
    FileInventory::open(settings(&write(dir, name, text))).unwrap_err()
}

/// A ratings export as IMDb writes it (the older camel-case title types).
const RATINGS: &str = "Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors
tt0113277,9,2024-03-01,Heat,Heat,https://www.imdb.com/title/tt0113277/,movie,8.3,170,1995,\"Action, Crime, Drama\",730512,1995-12-15,Michael Mann
tt0903747,10,2022-01-05,Breaking Bad,Breaking Bad,https://www.imdb.com/title/tt0903747/,tvSeries,9.5,49,2008,\"Crime, Drama, Thriller\",2154321,2008-01-20,
tt0959621,8,2022-01-06,Pilot,Pilot,https://www.imdb.com/title/tt0959621/,tvEpisode,9.0,58,2008,\"Crime, Drama\",40000,2008-01-20,Vince Gilligan
tt0118589,3,2021-07-30,Glitter,,https://www.imdb.com/title/tt0118589/,tvMovie,2.3,104,2001,Drama,24000,2001-09-21,Vondie Curtis-Hall
";

/// A watchlist export (list format; newer display-form title types).
const WATCHLIST: &str = "Position,Const,Created,Modified,Description,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors,Your Rating,Date Rated
1,tt0118715,2024-01-02,2024-01-02,,The Big Lebowski,The Big Lebowski,https://www.imdb.com/title/tt0118715/,Movie,8.1,117,1998,\"Comedy, Crime\",850000,1998-03-06,\"Joel Coen, Ethan Coen\",,
2,tt0108778,2024-01-05,2024-01-05,,Friends,Friends,https://www.imdb.com/title/tt0108778/,TV Series,8.9,22,1994,\"Comedy, Romance\",1100000,1994-09-22,,,
3,tt1475582,2024-02-11,2024-02-11,great,Sherlock,Sherlock,https://www.imdb.com/title/tt1475582/,TV Mini Series,9.1,88,2010,\"Crime, Drama\",970000,2010-07-25,,9,2023-06-01
";

fn imdb(id: &str) -> pal::inventory::Ids {
    [("imdb".to_owned(), id.to_owned())].into()
}

// ---------------------------------------------------------------------------------------------
// JSON

#[tokio::test]
async fn json_array_of_items() {
    let dir = tempfile::tempdir().unwrap();
    let file = open(
        &dir,
        "list.json",
        r#"[
          {"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949", "imdb": "TT0113277"}},
          {"type": "show", "title": "Breaking Bad", "tvdb": 81189},
          {"title": "Home Movie", "year": 2003}
        ]"#,
    );
    assert_eq!(file.kind(), Kind::Json);
    assert_eq!(file.feature(), Feature::Watchlist);
    assert_eq!(file.features(), Features { watchlist: true, ..Features::default() });
    let items = file.build_index(Feature::Watchlist).await.unwrap();
    let keys: Vec<String> = items.iter().map(pal::keys::canonical_key).collect();
    assert_eq!(keys, ["tmdb:949", "tvdb:81189", "movie|title:home movie|year:2003"]);
    assert_eq!(items[0].ids.get("imdb"), Some("tt0113277"), "normalised");
    assert_eq!(items[1].item_type, ItemType::Show);
    assert_eq!(file.name(), "FILE");
    assert_eq!(file.label(), "File list.json");
}

#[tokio::test]
async fn json_object_of_items_and_the_feature_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "history.json",
        r#"{
          "b": {"ids": {"tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"},
          "a": {"ids": {"tmdb": "949"}, "watched_at": "2024-04-01T20:00:00Z"},
          "c": {"ids": {"tmdb": "949"}, "watched_at": "2024-03-01T21:00:00+01:00"}
        }"#,
    );
    let file = FileInventory::open(FileSettings { feature: Some(Feature::History), ..settings(&path) }).unwrap();
    assert_eq!(file.features(), Features { history: true, ..Features::default() });
    let plays = file.build_index(Feature::History).await.unwrap();
    // In key order; "c" is the play of "b" spelled differently: one play, the later entry's.
    assert_eq!(
        plays.iter().map(|p| p.watched_at.as_deref().unwrap()).collect::<Vec<_>>(),
        ["2024-04-01T20:00:00Z", "2024-03-01T21:00:00+01:00"]
    );
    let unsupported = file.build_index(Feature::Watchlist).await.unwrap_err();
    assert_eq!((unsupported.class, unsupported.code), (ErrorClass::Unsupported, Some(ErrorCode::Unsupported)));
}

#[test]
fn json_errors_name_the_file_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let error = open_err(&dir, "bad.json", "[\n  {\"ids\": {\"tmdb\": \"1\"}},\n  {\"type\": \"film\"}\n]");
    assert_eq!((error.line, error.column.is_some()), (Some(3), true), "{error}");
    let text = error.to_string();
    assert!(text.starts_with(&format!("{}:3:", dir.path().join("bad.json").display())), "{text}");
    assert!(text.contains("unknown variant `film`"), "{text}");

    let error = open_err(&dir, "anonymous.json", r#"[{"ids": {"tmdb": "1"}}, {"year": 1999}]"#);
    assert_eq!(error.field.as_deref(), Some("[1]"));
    assert!(error.to_string().contains("no ids and no title"), "{error}");

    let path = write(&dir, "ratings.json", r#"{"heat": {"ids": {"tmdb": "949"}, "rating": 11}}"#);
    let error = FileInventory::open(FileSettings { feature: Some(Feature::Ratings), ..settings(&path) }).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("\"heat\".rating"));
    assert!(error.message.contains("1 to 10") && error.message.contains("11"), "{error}");

    let scalar = write(&dir, "scalar.json", r#""not a list""#);
    let error = FileInventory::open(FileSettings { format: FileFormat::Json, ..settings(&scalar) }).unwrap_err();
    assert!(error.to_string().contains("an array of items or an object of items"), "{error}");

    let truncated = open_err(&dir, "truncated.json", "[{\"ids\": {\"tmdb\": \"1\"}},");
    assert!(truncated.line.is_some(), "{truncated}");
}

#[test]
fn a_bom_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let file = open(&dir, "bom.json", "\u{feff}[{\"ids\": {\"tmdb\": \"949\"}}]");
    assert_eq!(file.items().unwrap().len(), 1);
    let file = open(&dir, "bom.csv", &format!("\u{feff}{RATINGS}"));
    assert_eq!(file.kind(), Kind::ImdbCsv(CsvKind::Ratings));
    assert_eq!(file.items().unwrap().len(), 4);
}

/// `load_with` reads a large JSON array in runs straight from the file (its text never held
/// whole): one item per key, the last winning, in file order or in key order as asked; for a
/// broken file, the error reading it whole gives (line and column, the byte that is not UTF-8,
/// the index of an unusable item).
#[test]
fn a_large_array_is_read_in_runs_as_it_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let title = |n: usize| format!("Título {n}, \"}},{{\" 日本");
    // 15,000 items over 14,000 keys: the last 1,000 repeat the first 1,000.
    let items: Vec<serde_json::Value> = (0..15_000)
        .map(|n| json!({"title": title(n), "ids": {"tmdb": (n % 14_000 + 1).to_string()}, "rating": n % 10 + 1}))
        .collect();
    let text = format!("\u{feff}{}\n", serde_json::to_string_pretty(&items).unwrap());
    assert!(text.len() > 1 << 20);
    let path = write(&dir, "large.json", &text);
    let load = |path: &Path, order| {
        file::load_with(path, FileFormat::Auto, Some(Feature::Ratings), order, &|_, item, _| Some(item))
    };
    let titles = |items: Vec<InventoryItem>| items.into_iter().map(|item| item.title.unwrap()).collect::<Vec<_>>();
    let in_place: Vec<String> = (0..14_000).map(|n| title(if n < 1_000 { n + 14_000 } else { n })).collect();
    let (kind, feature, read) = load(&path, ItemOrder::File).unwrap();
    assert_eq!((kind, feature), (Kind::Json, Feature::Ratings));
    assert_eq!(titles(read), in_place);
    let mut by_key: Vec<(String, String)> =
        in_place.into_iter().enumerate().map(|(n, title)| (format!("tmdb:{}", n + 1), title)).collect();
    by_key.sort();
    let (_, _, read) = load(&path, ItemOrder::Key).unwrap();
    assert_eq!(titles(read), by_key.into_iter().map(|(_, title)| title).collect::<Vec<_>>());

    let broken = |name: &str, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = load(&path, ItemOrder::Key).unwrap_err();
        (error, FileInventory::open(FileSettings { feature: Some(Feature::Ratings), ..settings(&path) }).unwrap_err())
    };
    let syntax = text.replacen("\"tmdb\": \"9001\"", "\"tmdb\": 9001", 1);
    let (error, whole) = broken("syntax.json", syntax.into_bytes());
    assert!(error.line.is_some_and(|line| line > 1_000), "{error}");
    assert_eq!(error, whole);
    let written = |n: usize| text.find(&serde_json::to_string(&title(n)).unwrap()).unwrap();
    let at = written(9_000) + 4;
    let mut not_utf8 = text.clone().into_bytes();
    not_utf8[at] = 0xff;
    let (error, whole) = broken("not-utf8.json", not_utf8);
    assert!(error.message.contains("not UTF-8") && error.line.is_some_and(|line| line > 1_000), "{error}");
    assert_eq!(error, whole);
    let (error, whole) = broken("truncated.json", text.as_bytes()[..text.len() / 2].to_vec());
    assert!(error.line.is_some(), "{error}");
    assert_eq!(error, whole);
    // Item 12,345 is rated 6 (one digit): 11 is out of range.
    let rating = text[..written(12_345)].rfind("\"rating\": ").unwrap() + "\"rating\": ".len();
    let unusable = format!("{}11{}", &text[..rating], &text[rating + 1..]);
    let (error, whole) = broken("unusable.json", unusable.into_bytes());
    assert_eq!(error.field.as_deref(), Some("[12345].rating"), "{error}");
    assert_eq!(error, whole);
}

// ---------------------------------------------------------------------------------------------
// IMDb CSV

#[tokio::test]
async fn imdb_ratings_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = open(&dir, "ratings.csv", RATINGS);
    assert_eq!(file.kind(), Kind::ImdbCsv(CsvKind::Ratings));
    assert_eq!(file.feature(), Feature::Ratings);
    assert_eq!(file.features(), Features { ratings: true, ..Features::default() });
    let items = file.build_index(Feature::Ratings).await.unwrap();
    let expected = vec![
        InventoryItem {
            item_type: ItemType::Movie,
            title: Some("Heat".into()),
            year: Some(1995),
            ids: imdb("tt0113277"),
            rating: Some(9),
            rated_at: Some("2024-03-01T00:00:00Z".into()),
            ..InventoryItem::default()
        },
        InventoryItem {
            item_type: ItemType::Show,
            title: Some("Breaking Bad".into()),
            year: Some(2008),
            ids: imdb("tt0903747"),
            rating: Some(10),
            rated_at: Some("2022-01-05T00:00:00Z".into()),
            ..InventoryItem::default()
        },
        InventoryItem {
            item_type: ItemType::Episode,
            title: Some("Pilot".into()),
            year: Some(2008),
            ids: imdb("tt0959621"),
            rating: Some(8),
            rated_at: Some("2022-01-06T00:00:00Z".into()),
            ..InventoryItem::default()
        },
        InventoryItem {
            item_type: ItemType::Movie,
            title: Some("Glitter".into()),
            year: Some(2001),
            ids: imdb("tt0118589"),
            rating: Some(3),
            rated_at: Some("2021-07-30T00:00:00Z".into()),
            ..InventoryItem::default()
        },
    ];
    assert_eq!(items, expected);
}

#[tokio::test]
async fn imdb_watchlist_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = open(&dir, "watchlist.csv", WATCHLIST);
    assert_eq!(file.kind(), Kind::ImdbCsv(CsvKind::List));
    assert_eq!(file.feature(), Feature::Watchlist);
    let items = file.build_index(Feature::Watchlist).await.unwrap();
    let summary: Vec<(ItemType, &str, Option<u8>)> =
        items.iter().map(|i| (i.item_type, i.ids.get("imdb").unwrap_or_default(), i.rating)).collect();
    assert_eq!(
        summary,
        [
            (ItemType::Movie, "tt0118715", None),
            (ItemType::Show, "tt0108778", None),
            (ItemType::Show, "tt1475582", None)
        ],
        "a watchlist carries no ratings"
    );
    // The same export as ratings: only the rated rows.
    let path = write(&dir, "rated.csv", WATCHLIST);
    let rated = FileInventory::open(FileSettings { feature: Some(Feature::Ratings), ..settings(&path) }).unwrap();
    let items = rated.items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].rating, items[0].rated_at.as_deref()), (Some(9), Some("2023-06-01T00:00:00Z")));
}

#[test]
fn columns_are_matched_by_name_in_any_order_with_extra_columns() {
    let dir = tempfile::tempdir().unwrap();
    let reordered = "Directors,Year,Title Type,Extra Column,title,CONST,Date Rated, Your Rating \r\n\
                     Michael Mann,1995,movie,whatever,Heat,tt0113277,2024-03-01,9\r\n";
    let file = open(&dir, "reordered.csv", reordered);
    assert_eq!(file.kind(), Kind::ImdbCsv(CsvKind::Ratings));
    let items = file.items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].title.as_deref(), items[0].year, items[0].rating, items[0].ids.get("imdb").unwrap_or_default()),
        (Some("Heat"), Some(1995), Some(9), "tt0113277")
    );
}

#[test]
fn malformed_rows_are_errors_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let header = "Const,Your Rating,Date Rated,Title,Title Type,Year\n";
    let cases: &[(&str, &str, u64, &str, &str)] = &[
        (
            "eleven.csv",
            "tt0113277,9,2024-03-01,Heat,movie,1995\ntt0078748,eleven,2023-11-12,Alien,movie,1979\n",
            3,
            "Your Rating",
            "`eleven` is not a rating from 1 to 10",
        ),
        ("zero.csv", "tt0113277,0,2024-03-01,Heat,movie,1995\n", 2, "Your Rating", "`0` is not a rating"),
        ("unrated.csv", "tt0113277,,2024-03-01,Heat,movie,1995\n", 2, "Your Rating", "empty"),
        (
            "no-const.csv",
            "tt0113277,9,2024-03-01,Heat,movie,1995\n,8,2023-11-12,Alien,movie,1979\n",
            3,
            "Const",
            "empty",
        ),
        (
            "person.csv",
            "nm0000123,8,2023-11-12,George Clooney,movie,1961\n",
            2,
            "Const",
            "`nm0000123` is not an IMDb title id",
        ),
        ("date.csv", "tt0113277,9,01/03/2024,Heat,movie,1995\n", 2, "Date Rated", "`01/03/2024` is not a date"),
        ("feb30.csv", "tt0113277,9,2024-02-30,Heat,movie,1995\n", 2, "Date Rated", "is not a date"),
        ("year.csv", "tt0113277,9,2024-03-01,Heat,movie,nineteen\n", 2, "Year", "`nineteen` is not a year"),
        ("type.csv", "tt0113277,9,2024-03-01,Heat,podcast,1995\n", 2, "Title Type", "unknown title type `podcast`"),
    ];
    for (name, rows, line, field, message) in cases {
        let error = open_err(&dir, name, &format!("{header}{rows}"));
        assert_eq!((error.line, error.field.as_deref()), (Some(*line), Some(*field)), "{name}: {error}");
        assert!(error.message.contains(message), "{name}: {error}");
        let text = error.to_string();
        let prefix = format!("{}:{line}: {field}: ", dir.path().join(name).display());
        assert!(text.starts_with(&prefix), "{name}: {text}");
    }
    // A row with the wrong number of fields.
    let error = open_err(&dir, "short.csv", &format!("{header}tt0113277,9,2024-03-01,Heat,movie,1995\ntt0078748,8\n"));
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.message.contains("2 fields, but the header has 6"), "{error}");
}

#[test]
fn missing_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let error = open_err(&dir, "no-type.csv", "Const,Your Rating,Title,Year\ntt0113277,9,Heat,1995\n");
    assert_eq!(error.field.as_deref(), Some("Title Type"));
    assert!(error.to_string().contains("Title Type: missing required column"), "{error}");
    let error = open_err(&dir, "no-const.csv", "Position,Title,Title Type\n1,Heat,movie\n");
    assert_eq!(error.field.as_deref(), Some("Const"));
    let error = open_err(&dir, "neither.csv", "Const,Title,Title Type\ntt0113277,Heat,movie\n");
    assert!(error.message.contains("not an IMDb export"), "{error}");
    // The ratings feature needs `Your Rating`, even from a list export.
    let path = write(&dir, "list.csv", "Position,Const,Title,Title Type\n1,tt0113277,Heat,movie\n");
    let error = FileInventory::open(FileSettings { feature: Some(Feature::Ratings), ..settings(&path) }).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("Your Rating"));
    let empty = open_err(&dir, "empty.csv", "");
    assert!(empty.message.contains("not an IMDb export"), "{empty}");
}

// ---------------------------------------------------------------------------------------------
// Read-only, health, edits

#[tokio::test]
async fn writes_are_refused_as_unsupported_and_the_file_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ratings.csv", RATINGS);
    let file = FileInventory::open(settings(&path)).unwrap();
    assert!(file.capabilities().read_only);
    assert!(!file.capabilities().checkpoint && !file.capabilities().confirms_keys);
    let item: InventoryItem = serde_json::from_value(json!({"ids": {"imdb": "tt0078748"}, "rating": 8})).unwrap();
    for dry_run in [false, true] {
        for error in [
            file.add(vec![item.clone()], Feature::Ratings, dry_run).await.unwrap_err(),
            file.remove(vec![item.clone()], Feature::Ratings, dry_run).await.unwrap_err(),
            file.add(vec![item.clone()], Feature::Watchlist, dry_run).await.unwrap_err(),
        ] {
            assert_eq!(error.class, ErrorClass::Unsupported, "{error}");
            assert_eq!(error.code, Some(ErrorCode::Unsupported));
            assert_eq!(error.phase, ProviderPhase::Execute);
            assert_eq!(error.scope.to_string(), "inventory/file");
        }
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), RATINGS);
    assert!(file.activities().await.unwrap().is_empty(), "no checkpoints");
}

#[tokio::test]
async fn edits_show_up_and_a_broken_or_missing_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ratings.csv", RATINGS);
    let file = FileInventory::open(settings(&path)).unwrap();
    assert_eq!(file.health().await.status, HealthStatus::Ok);
    std::fs::write(&path, "Const,Your Rating,Title,Title Type\ntt0113277,7,Heat,movie\n").unwrap();
    assert_eq!(file.build_index(Feature::Ratings).await.unwrap()[0].rating, Some(7));

    std::fs::write(&path, "Const,Your Rating,Title,Title Type\ntt0113277,eleven,Heat,movie\n").unwrap();
    let error = file.build_index(Feature::Ratings).await.unwrap_err();
    assert_eq!((error.class, error.code), (ErrorClass::Permanent, Some(ErrorCode::InvalidInput)));
    assert!(error.message.contains("ratings.csv:2: Your Rating"), "{error}");
    let health = file.health().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert!(health.reason.unwrap().contains("ratings.csv:2"));

    std::fs::remove_file(&path).unwrap();
    assert_eq!(file.health().await.status, HealthStatus::Down);
    let error = file.build_index(Feature::Ratings).await.unwrap_err();
    assert_eq!(error.code, Some(ErrorCode::Io), "{error}");
    assert!(error.message.contains("ratings.csv"), "{error}");
}

#[test]
fn formats_can_be_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "data.txt", RATINGS);
    let file = FileInventory::open(FileSettings { format: FileFormat::ImdbCsv, ..settings(&path) }).unwrap();
    assert_eq!(file.items().unwrap().len(), 4);
    let error = FileInventory::open(FileSettings { format: FileFormat::Json, ..settings(&path) }).unwrap_err();
    assert!(error.message.contains("array of items"), "{error}");
    let json = write(&dir, "data.json", "[]");
    let error = FileInventory::open(FileSettings { format: FileFormat::ImdbCsv, ..settings(&json) }).unwrap_err();
    assert!(error.message.contains("not an IMDb export"), "{error}");
}

#[test]
fn repeated_rows_keep_one_entry_the_last_one_in_the_first_place() {
    let dir = tempfile::tempdir().unwrap();
    let header = "Const,Your Rating,Title,Title Type\n";
    let file = open(&dir, "twice.csv", &format!("{header}tt1,5,A,movie\ntt2,6,B,movie\ntt1,9,A,movie\n"));
    let items = file.items().unwrap();
    assert_eq!(
        items.iter().map(|i| (i.ids.get("imdb").unwrap_or_default(), i.rating)).collect::<Vec<_>>(),
        [("tt1", Some(9)), ("tt2", Some(6))]
    );
}

#[test]
fn the_factory_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ratings.csv", RATINGS);
    let factory = providers_local::factories().into_iter().find(|f| f.name == "file").unwrap();
    let built = (factory.build)(&json!({"path": path, "name": "IMDB", "label": "My IMDb ratings"})).unwrap();
    let pal::AdapterHandle::Inventory(inventory) = built.handle else { panic!("not an inventory") };
    assert_eq!((inventory.name(), inventory.label()), ("IMDB", "My IMDb ratings"));
    let error = (factory.build)(&json!({"path": path, "format": "xml"})).unwrap_err();
    assert!(error.contains("unknown variant `xml`"), "{error}");
    let error = (factory.build)(&json!({"path": path, "feature": "favourites"})).unwrap_err();
    assert!(error.contains("favourites"), "{error}");
    let error = (factory.build)(&json!({"path": path, "colour": "red"})).unwrap_err();
    assert!(error.contains("unknown field `colour`"), "{error}");
    let bad = write(&dir, "bad.csv", "Const,Your Rating,Title,Title Type\ntt1,eleven,A,movie\n");
    let error = (factory.build)(&json!({"path": bad})).unwrap_err();
    assert!(error.contains("bad.csv:2: Your Rating"), "{error}");
    let schema = providers_local::settings_schema("file").unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["required"], json!(["path"]));
}
