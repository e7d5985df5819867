#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! providers-local's conformance: the inventory kit against `local` (a temp SQLite library
//! seeded through `add`) and `file` (a temp JSON file, an IMDb ratings export and an IMDb
//! watchlist export).
//!
//! What a local file or database cannot stage is not applicable, with the kit's reason: rate
//! limits, 5xx, refused credentials (there are none), hangs, and — for `local` — an
//! unreachable vendor. Staged: `Rejecting` as a damaged library (its items table dropped by
//! another connection) or a file edited into an invalid state, and, for `file`,
//! `Unreachable` as the file deleted after the adapter was built.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conformance::{
    BuiltInventory, CheckStatus, ConformanceReport, InventoryHarness, KitReport, Scenario, VendorProbe,
    run_inventory_kit,
};
use pal::Secret;
use pal::inventory::{Feature, Ids, InventoryItem};
use providers_local::{FileFormat, FileInventory, FileSettings, LocalLibrary, LocalSettings};
use serde_json::{Value, json};
use tempfile::TempDir;

fn ids(pairs: &[(&str, &str)]) -> Ids {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn items(value: Value) -> Vec<InventoryItem> {
    serde_json::from_value(value).unwrap()
}

/// What a healthy library holds (none of the samples).
fn seed() -> Vec<(Feature, Vec<InventoryItem>)> {
    vec![
        (
            Feature::Watchlist,
            items(json!([
                {"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949", "imdb": "tt0113277"}},
                {"type": "movie", "title": "Alien", "year": 1979, "ids": {"tmdb": "348"}},
                {"type": "show", "title": "Breaking Bad", "year": 2008, "ids": {"tvdb": "81189"}}
            ])),
        ),
        (
            Feature::Ratings,
            items(json!([{"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949"}, "rating": 9}])),
        ),
        (
            Feature::History,
            items(json!([
                {"type": "movie", "title": "Heat", "ids": {"tmdb": "949"}, "watched_at": "2024-03-01T20:00:00Z"},
                {"type": "movie", "title": "Heat", "ids": {"tmdb": "949"}, "watched_at": "2024-04-01T20:00:00Z"},
                {"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "349232"}, "season": 1,
                 "episode": 2, "watched_at": "2024-03-02T20:00:00Z"}
            ])),
        ),
        (
            Feature::Progress,
            items(json!([{"type": "movie", "ids": {"tmdb": "348"}, "progress_ms": 600_000, "duration_ms": 7_020_000}])),
        ),
        (Feature::Playlists, items(json!([{"type": "movie", "title": "Alien", "ids": {"tmdb": "348"}}]))),
    ]
}

/// Items not in any healthy inventory: the kit's standard samples.
fn samples(feature: Feature) -> Vec<InventoryItem> {
    conformance::inventory::standard_sample_items(feature)
}

fn not_applicable(report: &KitReport) -> BTreeSet<&str> {
    report.names_with(CheckStatus::NotApplicable).into_iter().collect()
}

// =============================================================================================
// local

struct LocalProbe(Arc<LocalLibrary>);

impl VendorProbe for LocalProbe {
    fn requests(&self) -> u64 {
        self.0.requests()
    }
    fn writes(&self) -> u64 {
        self.0.writes()
    }
}

/// `local` over a fresh temp database per build, seeded through `add`.
struct LocalHarness {
    dir: TempDir,
    builds: AtomicU32,
}

impl LocalHarness {
    fn new() -> Self {
        LocalHarness { dir: tempfile::tempdir().unwrap(), builds: AtomicU32::new(0) }
    }
}

impl InventoryHarness for LocalHarness {
    fn provider_crate(&self) -> &str {
        "providers-local"
    }

    fn build(&self, scenario: Scenario) -> Option<BuiltInventory> {
        if !matches!(scenario, Scenario::Healthy | Scenario::Rejecting) {
            return None;
        }
        let path = self.dir.path().join(format!("library-{}.db", self.builds.fetch_add(1, Ordering::SeqCst)));
        let library = Arc::new(
            LocalLibrary::open(LocalSettings { path: path.clone(), name: None, label: None, chunk_size: None }).ok()?,
        );
        for (feature, items) in seed() {
            let written = library.add_now(&items, feature, false).ok()?;
            assert!(written.unresolved.is_empty(), "{written:?}");
        }
        if scenario == Scenario::Rejecting {
            // A damaged library: another program dropped its items table.
            rusqlite::Connection::open(&path).ok()?.execute_batch("DROP TABLE items").ok()?;
        }
        Some((library.clone(), Arc::new(LocalProbe(library))))
    }

    fn config_schema(&self) -> Option<Value> {
        providers_local::settings_schema(LocalLibrary::NAME)
    }

    fn sample_items(&self, feature: Feature) -> Vec<InventoryItem> {
        samples(feature)
    }

    fn unresolvable_item(&self, feature: Feature) -> Option<InventoryItem> {
        let lost = InventoryItem {
            title: Some("Lost Film".into()),
            year: Some(1999),
            ids: ids(&[("tmdb", "404")]),
            ..Default::default()
        };
        match feature {
            Feature::Ratings => Some(InventoryItem { rating: Some(11), ..lost }),
            Feature::Progress => Some(lost),
            Feature::Watchlist | Feature::History | Feature::Playlists => None,
        }
    }

    fn secret(&self) -> Option<Secret> {
        None
    }
}

// =============================================================================================
// file

/// The file fixtures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixture {
    Json,
    ImdbRatings,
    ImdbWatchlist,
}

const JSON_FILE: &str = r#"[
  {"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949", "imdb": "tt0113277"}},
  {"type": "movie", "title": "Alien", "year": 1979, "ids": {"tmdb": "348"}},
  {"type": "show", "title": "Breaking Bad", "year": 2008, "ids": {"tvdb": "81189"}},
  {"type": "episode", "title": "Cat's in the Bag...", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "349232"},
   "season": 1, "episode": 2}
]
"#;

const IMDB_RATINGS: &str = "\u{feff}Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors
tt0113277,9,2024-03-01,Heat,Heat,https://www.imdb.com/title/tt0113277/,Movie,8.3,170,1995,\"Action, Crime, Drama\",730512,1995-12-15,Michael Mann
tt0078748,8,2023-11-12,Alien,Alien,https://www.imdb.com/title/tt0078748/,Movie,8.5,117,1979,\"Horror, Sci-Fi\",951020,1979-05-25,Ridley Scott
tt0903747,10,2022-01-05,Breaking Bad,Breaking Bad,https://www.imdb.com/title/tt0903747/,TV Series,9.5,49,2008,\"Crime, Drama, Thriller\",2154321,2008-01-20,
";

const IMDB_WATCHLIST: &str = "Position,Const,Created,Modified,Description,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors,Your Rating,Date Rated
1,tt0118715,2024-01-02,2024-01-02,,The Big Lebowski,https://www.imdb.com/title/tt0118715/,movie,8.1,117,1998,\"Comedy, Crime\",850000,1998-03-06,\"Joel Coen, Ethan Coen\",,
2,tt0108778,2024-01-05,2024-01-05,,Friends,https://www.imdb.com/title/tt0108778/,tvSeries,8.9,22,1994,\"Comedy, Romance\",1100000,1994-09-22,,,
3,tt1475582,2024-02-11,2024-02-11,,Sherlock,https://www.imdb.com/title/tt1475582/,tvMiniSeries,9.1,88,2010,\"Crime, Drama\",970000,2010-07-25,,9,2023-06-01
";

impl Fixture {
    fn file_name(self) -> &'static str {
        match self {
            Fixture::Json => "watchlist.json",
            Fixture::ImdbRatings => "ratings.csv",
            Fixture::ImdbWatchlist => "watchlist.csv",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Fixture::Json => JSON_FILE,
            Fixture::ImdbRatings => IMDB_RATINGS,
            Fixture::ImdbWatchlist => IMDB_WATCHLIST,
        }
    }

    /// The file edited into an invalid state.
    fn invalid(self) -> &'static str {
        match self {
            Fixture::Json => r#"[{"type": "film", "ids": {"tmdb": "949"}}]"#,
            Fixture::ImdbRatings => {
                "Const,Your Rating,Date Rated,Title,Title Type,Year\ntt0113277,eleven,2024-03-01,Heat,movie,1995\n"
            }
            Fixture::ImdbWatchlist => "Position,Const,Title,Title Type,Year\n1,,Heat,movie,1995\n",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fixture::Json => "FILE_JSON",
            Fixture::ImdbRatings => "IMDB_RATINGS",
            Fixture::ImdbWatchlist => "IMDB_WATCHLIST",
        }
    }
}

/// What the file's bytes were when the adapter was handed out: a changed file is a write.
struct FileProbe {
    inventory: Arc<FileInventory>,
    path: PathBuf,
    staged: Option<Vec<u8>>,
}

impl FileProbe {
    fn new(inventory: Arc<FileInventory>, path: &Path) -> Self {
        FileProbe { inventory, path: path.to_owned(), staged: std::fs::read(path).ok() }
    }
}

impl VendorProbe for FileProbe {
    fn requests(&self) -> u64 {
        self.inventory.requests()
    }
    fn writes(&self) -> u64 {
        u64::from(std::fs::read(&self.path).ok() != self.staged)
    }
}

/// `file` over a fresh temp copy of a fixture per build.
struct FileHarness {
    fixture: Fixture,
    dir: TempDir,
    builds: AtomicU32,
}

impl FileHarness {
    fn new(fixture: Fixture) -> Self {
        FileHarness { fixture, dir: tempfile::tempdir().unwrap(), builds: AtomicU32::new(0) }
    }
}

impl InventoryHarness for FileHarness {
    fn provider_crate(&self) -> &str {
        "providers-local"
    }

    fn build(&self, scenario: Scenario) -> Option<BuiltInventory> {
        if !matches!(scenario, Scenario::Healthy | Scenario::Rejecting | Scenario::Unreachable) {
            return None;
        }
        let n = self.builds.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.path().join(format!("{n}-{}", self.fixture.file_name()));
        std::fs::write(&path, self.fixture.text()).ok()?;
        let settings = FileSettings {
            path: path.clone(),
            format: FileFormat::Auto,
            feature: None,
            name: Some(self.fixture.name().to_owned()),
            label: None,
        };
        let inventory = Arc::new(FileInventory::open(settings).ok()?);
        match scenario {
            Scenario::Rejecting => std::fs::write(&path, self.fixture.invalid()).ok()?,
            Scenario::Unreachable => std::fs::remove_file(&path).ok()?,
            _ => {}
        }
        let probe = FileProbe::new(inventory.clone(), &path);
        Some((inventory, Arc::new(probe)))
    }

    fn config_schema(&self) -> Option<Value> {
        providers_local::settings_schema(FileInventory::NAME)
    }

    fn sample_items(&self, feature: Feature) -> Vec<InventoryItem> {
        samples(feature)
    }

    fn unresolvable_item(&self, _: Feature) -> Option<InventoryItem> {
        None
    }

    fn secret(&self) -> Option<Secret> {
        None
    }
}

// =============================================================================================
// The run

const CANNOT_STAGE_LOCAL: [&str; 6] = [
    "health.invalid_credentials",
    "health.unreachable",
    "errors.rate_limited_retryable",
    "errors.server_error_retryable",
    "errors.unauthorized_not_retried",
    "errors.hang_times_out",
];

const WRITE_CHECKS: [&str; 7] = [
    "writes.add_confirms_keys",
    "writes.add_idempotent",
    "writes.remove_idempotent",
    "writes.added_visible",
    "writes.dry_run_no_writes",
    "writes.unresolved_have_ids",
    "writes.counts_reported",
];

const DELTA_CHECKS: [&str; 2] = ["snapshot.delta_since_checkpoint", "snapshot.future_checkpoint_empty"];

#[tokio::test]
async fn providers_local_passes_the_inventory_kit() {
    let reports = vec![
        run_inventory_kit(&LocalHarness::new()).await,
        run_inventory_kit(&FileHarness::new(Fixture::Json)).await,
        run_inventory_kit(&FileHarness::new(Fixture::ImdbRatings)).await,
        run_inventory_kit(&FileHarness::new(Fixture::ImdbWatchlist)).await,
    ];
    let report = ConformanceReport::new(reports);
    // Written before asserting, so `cargo xtask conformance` can show what failed.
    report.write_if_requested("providers-local").unwrap();
    assert!(report.pass(), "{}", report.to_json());

    let by_adapter = |name: &str| report.reports.iter().find(|r| r.adapter == name).unwrap();
    let local = by_adapter("LOCAL");
    let expected: BTreeSet<&str> =
        CANNOT_STAGE_LOCAL.into_iter().chain(DELTA_CHECKS).chain(["errors.no_secret_in_errors"]).collect();
    assert_eq!(not_applicable(local), expected, "{}", report.to_json());
    for name in ["FILE_JSON", "IMDB_RATINGS", "IMDB_WATCHLIST"] {
        let file = by_adapter(name);
        let expected: BTreeSet<&str> = CANNOT_STAGE_LOCAL
            .into_iter()
            .filter(|c| *c != "health.unreachable")
            .chain(DELTA_CHECKS)
            .chain(WRITE_CHECKS)
            .chain(["errors.no_secret_in_errors"])
            .collect();
        assert_eq!(not_applicable(file), expected, "{name}: {}", report.to_json());
        assert_eq!(file.check("writes.add_idempotent").unwrap().reason.as_deref(), Some(conformance::READ_ONLY));
        assert_eq!(file.check("describe.features_consistent").unwrap().status, CheckStatus::Passed);
    }
    let text = report.to_json();
    assert!(!text.contains(std::env::temp_dir().to_string_lossy().as_ref()), "no temp path in the report");
}
