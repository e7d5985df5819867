#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Crash safety of `cw sync`: the process is killed with SIGKILL at pseudo-random points (a
//! fixed seed) while it syncs history plays, [`KILLS`] times, and after every kill the state
//! store and the library are checked:
//!
//! - the state store opens read-only, passes `PRAGMA quick_check`, and every baseline is whole:
//!   its `item_count` is the number of items its `baseline_chunks` rows say they hold, its chunks are
//!   numbered without a gap, no chunk lacks its baseline, and no baseline that existed before
//!   disappears or shrinks (no lost baseline);
//! - the library holds no history play twice (by key and play time, by IMDb id and play time, by
//!   strong id token and play time), no play the source does not have, never fewer plays than
//!   before the kill, and at least as many as the target baseline records.
//!
//! A one-way `file` → `local` history pair (plus a watchlist pair, so two pairs commit) is first
//! synced completely from a subset; the source then grows to the full set (150 titles × 8 plays
//! at distinct times), so a run has 1,080 plays to write in three chunks of 500. (A debug build
//! spends about 0.7 ms per item before it writes anything, so the set is sized to keep the test
//! near a minute on two cores.) Kills run in short chains (a killed run is followed by another
//! killed run, up to [`CHAIN`]); then the library and state store are put back to the
//! post-subset snapshot so later kills find work to interrupt. A third of the delays are uniform
//! over the length of a whole run (kills before, during and after apply); the others are uniform
//! over the length of what is left of the apply, counted from the moment the library first
//! changes (its first chunk committed). Both lengths are measured by one uninterrupted run and
//! refined by what every later run shows, so a fair share of kills lands mid-apply however fast
//! or loaded the machine is, and the test insists that at least [`MIN_MID_APPLY`] did, so it
//! cannot pass vacuously. A run that ends before its kill is checked too but is not a kill.
//!
//! Finally a run that is not killed converges: exit 0, every play exactly once, baselines of the
//! full size, and a further `cw sync --json` has nothing to do. `--nocapture` prints the
//! calibration and where the kills landed.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

/// Titles in the full history.
const TITLES: usize = 150;
/// Plays of each title in the full history (distinct `watched_at`).
const PLAYS_PER_TITLE: usize = 8;
/// The subset synced first: the first [`SUBSET_PLAYS`] plays of the first [`SUBSET_TITLES`].
const SUBSET_TITLES: usize = 60;
/// See [`SUBSET_TITLES`].
const SUBSET_PLAYS: usize = 2;
/// Watchlist entries of the full and of the subset watchlist.
const WATCHLIST_FULL: usize = 100;
/// See [`WATCHLIST_FULL`].
const WATCHLIST_SUBSET: usize = 50;
/// SIGKILLed runs.
const KILLS: usize = 50;
/// Kills that must land mid-apply (the library had more plays than before the run, but not all).
const MIN_MID_APPLY: usize = 10;
/// Longest chain of killed runs before the snapshot is restored.
const CHAIN: usize = 3;
/// The `local` adapter's chunk size (plays per write call and transaction).
const CHUNK: usize = 500;
/// The seed of the delays.
const SEED: u64 = 0x5eed_c0ff_ee15_bad5;

const FULL_PLAYS: usize = TITLES * PLAYS_PER_TITLE;
const SUBSET_PLAY_COUNT: usize = SUBSET_TITLES * SUBSET_PLAYS;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn duration(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }
}

fn imdb(title: usize) -> String {
    format!("tt{:07}", 1_000_000 + title)
}

/// A play's `watched_at`: a different year per play, so every play of a title is distinct.
fn watched_at(title: usize, play: usize) -> String {
    format!(
        "20{:02}-{:02}-{:02}T{:02}:{:02}:00Z",
        10 + play,
        1 + title % 12,
        1 + title % 28,
        title % 24,
        (title * 7) % 60
    )
}

fn movie(title: usize) -> Value {
    json!({
        "type": "movie",
        "title": format!("Crash Test {title}"),
        "year": 1950 + title % 70,
        "ids": {"imdb": imdb(title), "tmdb": (50_000 + title).to_string()},
    })
}

/// The history plays: every play of every title, or the subset.
fn history(full: bool) -> Vec<Value> {
    let (titles, plays) = if full { (TITLES, PLAYS_PER_TITLE) } else { (SUBSET_TITLES, SUBSET_PLAYS) };
    let mut items = Vec::new();
    for play in 0..plays {
        for title in 0..titles {
            let mut item = movie(title);
            item["watched_at"] = Value::String(watched_at(title, play));
            items.push(item);
        }
    }
    items
}

fn watchlist(full: bool) -> Vec<Value> {
    (0..if full { WATCHLIST_FULL } else { WATCHLIST_SUBSET }).map(|t| movie(t * 7 % TITLES)).collect()
}

/// Every play of the full history as (imdb id, play time).
fn full_plays() -> BTreeSet<(String, String)> {
    (0..TITLES).flat_map(|t| (0..PLAYS_PER_TITLE).map(move |p| (imdb(t), watched_at(t, p)))).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let config = root.join("cw.yaml");
        std::fs::write(
            &config,
            "state_dir: state\n\
             providers:\n  \
               plays: { adapter: file, path: history.json, feature: history }\n  \
               wishes: { adapter: file, path: watchlist.json, feature: watchlist }\n  \
               library: { adapter: local, path: library.db, chunk_size: 500 }\n\
             pairs:\n  \
               - id: history\n    source: plays\n    target: library\n    mode: one-way\n    \
                 features:\n      history: { add: true, remove: false }\n  \
               - id: watchlist\n    source: wishes\n    target: library\n    mode: one-way\n    \
                 features:\n      watchlist: { add: true, remove: true, remove_mode: source_deletes }\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("state")).unwrap();
        Fixture { _dir: dir, root, config }
    }

    fn write_sources(&self, full: bool) {
        std::fs::write(self.root.join("history.json"), Value::Array(history(full)).to_string()).unwrap();
        std::fs::write(self.root.join("watchlist.json"), Value::Array(watchlist(full)).to_string()).unwrap();
    }

    fn library(&self) -> PathBuf {
        self.root.join("library.db")
    }

    fn state(&self) -> PathBuf {
        self.root.join("state").join("state.sqlite3")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cw"));
        command.current_dir(&self.root).arg("sync").arg("--config").arg(&self.config).arg("--json");
        command
    }

    fn sync(&self) -> Output {
        self.command().output().expect("cw sync runs")
    }

    fn spawn(&self) -> Child {
        self.command().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("cw sync starts")
    }

    /// The SQLite files of the library and the state store, with their WAL and shared memory.
    fn db_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for db in [self.library(), self.state()] {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                files.push(PathBuf::from(name));
            }
        }
        files
    }

    /// Copies the databases (after a clean exit: no WAL left) into `snapshot/`.
    fn save_snapshot(&self) {
        let dir = self.root.join("snapshot");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, file) in self.db_files().iter().enumerate() {
            if file.exists() {
                std::fs::copy(file, dir.join(i.to_string())).unwrap();
            }
        }
    }

    /// Puts the databases back as [`Fixture::save_snapshot`] found them, stale WAL files removed.
    fn restore_snapshot(&self) {
        let dir = self.root.join("snapshot");
        for (i, file) in self.db_files().iter().enumerate() {
            let saved = dir.join(i.to_string());
            if saved.exists() {
                std::fs::copy(&saved, file).unwrap();
            } else if file.exists() {
                std::fs::remove_file(file).unwrap();
            }
        }
    }
}

fn read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .unwrap_or_else(|e| panic!("{} cannot be opened: {e}", path.display()))
}

fn count(conn: &Connection, sql: &str) -> usize {
    let n: i64 = conn.query_row(sql, [], |row| row.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    usize::try_from(n).unwrap()
}

/// What the library holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Library {
    /// History rows.
    plays: usize,
    /// Watchlist rows.
    watchlist: usize,
}

/// Reads the library and checks that no play is stored twice and none is foreign.
fn inspect_library(path: &Path, context: &str) -> Library {
    let conn = read_only(path);
    let plays = count(&conn, "SELECT count(*) FROM items WHERE feature = 'history'");
    let by_key = count(
        &conn,
        "SELECT count(*) FROM (SELECT 1 FROM items WHERE feature = 'history' \
         GROUP BY key, play HAVING count(*) > 1)",
    );
    let by_id = count(
        &conn,
        "SELECT count(*) FROM (SELECT 1 FROM items WHERE feature = 'history' \
         GROUP BY json_extract(item, '$.ids.imdb'), play HAVING count(*) > 1)",
    );
    let by_token = count(
        &conn,
        "SELECT count(*) FROM (SELECT 1 FROM tokens t JOIN items i ON i.id = t.item_id \
         WHERE i.feature = 'history' GROUP BY t.token, i.play HAVING count(DISTINCT i.id) > 1)",
    );
    assert_eq!(
        (by_key, by_id, by_token),
        (0, 0, 0),
        "{context}: duplicate history plays (by key, by imdb id, by token)"
    );
    let known = full_plays();
    let mut statement =
        conn.prepare("SELECT json_extract(item, '$.ids.imdb'), play FROM items WHERE feature = 'history'").unwrap();
    let stored: Vec<(String, String)> =
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
    for play in &stored {
        assert!(known.contains(play), "{context}: the library holds a play the source never had: {play:?}");
    }
    let watchlist = count(&conn, "SELECT count(*) FROM items WHERE feature = 'watchlist'");
    assert!(watchlist <= WATCHLIST_FULL, "{context}: {watchlist} watchlist entries, the source has {WATCHLIST_FULL}");
    Library { plays, watchlist }
}

/// The baselines' item counts by `pair/side/feature`, after checking that each is whole.
fn inspect_state(path: &Path, context: &str) -> BTreeMap<String, usize> {
    let conn = read_only(path);
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0)).unwrap();
    assert_eq!(check, "ok", "{context}: the state store fails quick_check");
    let mut statement = conn
        .prepare(
            "SELECT b.pair, b.side, b.feature, b.item_count, \
             (SELECT coalesce(sum(c.count), 0) FROM baseline_chunks c \
              WHERE c.pair = b.pair AND c.side = b.side AND c.feature = b.feature), \
             (SELECT count(*) - coalesce(max(c.chunk) + 1, 0) FROM baseline_chunks c \
              WHERE c.pair = b.pair AND c.side = b.side AND c.feature = b.feature) \
             FROM baselines b",
        )
        .unwrap();
    let rows: Vec<(String, String, String, i64, i64, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut baselines = BTreeMap::new();
    for (pair, side, feature, item_count, items, missing_chunks) in rows {
        let name = format!("{pair}/{side}/{feature}");
        assert_eq!(item_count, items, "{context}: baseline {name} says {item_count} items but holds {items}");
        assert_eq!(missing_chunks, 0, "{context}: baseline {name} has a gap in its chunks");
        baselines.insert(name, usize::try_from(items).unwrap());
    }
    let orphans = count(
        &conn,
        "SELECT count(*) FROM (SELECT DISTINCT pair, side, feature FROM baseline_chunks) i \
         WHERE NOT EXISTS (SELECT 1 FROM baselines b WHERE b.pair = i.pair AND b.side = i.side AND b.feature = i.feature)",
    );
    assert_eq!(orphans, 0, "{context}: baseline chunks without their baseline");
    baselines
}

fn expected_baselines(full: bool) -> BTreeMap<String, usize> {
    let (plays, wishes) = if full { (FULL_PLAYS, WATCHLIST_FULL) } else { (SUBSET_PLAY_COUNT, WATCHLIST_SUBSET) };
    BTreeMap::from([
        ("history/source/history".to_owned(), plays),
        ("history/target/history".to_owned(), plays),
        ("watchlist/source/watchlist".to_owned(), wishes),
        ("watchlist/target/watchlist".to_owned(), wishes),
    ])
}

/// Every stored play of the library as (imdb id, play time).
fn stored_plays(path: &Path) -> BTreeSet<(String, String)> {
    let conn = read_only(path);
    let mut statement =
        conn.prepare("SELECT json_extract(item, '$.ids.imdb'), play FROM items WHERE feature = 'history'").unwrap();
    statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// The counts of every feature of a `cw sync --json` report, which must be all zero.
fn assert_nothing_to_do(report: &Value) {
    let pairs = report["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 2, "{report:#}");
    for pair in pairs {
        assert_eq!(pair["status"], "ok", "{report:#}");
        for (feature, counts) in pair["features"].as_object().expect("features") {
            for field in ["added", "updated", "removed", "blocked", "unresolved", "unconfirmed"] {
                assert_eq!(counts[field], 0, "{}/{feature}: {field} in {report:#}", pair["pair"]);
            }
        }
    }
}

fn assert_clean_exit(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn library_rows(conn: &Connection) -> Option<usize> {
    // A reader never blocks the writer (WAL); a failed read is simply "no news".
    conn.query_row("SELECT count(*) FROM items", [], |row| row.get::<_, i64>(0))
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

/// When to kill a run.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// This long after the start.
    After(Duration),
    /// This long after the library first changes (the apply's first chunk is committed).
    AfterFirstWrite(Duration),
    /// Never: let the run finish.
    Never,
}

/// What was seen of one run from outside: the library's row count over time, and the exit.
#[derive(Debug)]
struct Watched {
    /// (time since start, library rows) at every change seen.
    changes: Vec<(Duration, usize)>,
    /// How the run ended.
    status: ExitStatus,
    /// Whether it ended by our SIGKILL.
    killed: bool,
    /// When it ended (or was killed).
    ended: Duration,
}

/// Runs `cw sync`, polls the library every 2 ms, and SIGKILLs the run when `trigger` says.
fn watch(fixture: &Fixture, rows_before: usize, trigger: Trigger, give_up: Duration) -> Watched {
    let conn = read_only(&fixture.library());
    let start = Instant::now();
    let mut child = fixture.spawn();
    let mut deadline = match trigger {
        Trigger::After(delay) => Some(delay),
        Trigger::AfterFirstWrite(_) | Trigger::Never => None,
    };
    let mut changes = Vec::new();
    let mut rows = rows_before;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Watched { changes, status, killed: false, ended: start.elapsed() };
        }
        let now = start.elapsed();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if let Some(seen) = library_rows(&conn).filter(|&seen| seen != rows) {
            rows = seen;
            changes.push((now, rows));
            if let (Trigger::AfterFirstWrite(delay), None) = (trigger, deadline) {
                deadline = Some(now + delay);
            }
        }
        if deadline.is_none() && !matches!(trigger, Trigger::Never) && now >= give_up {
            deadline = Some(now);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL on Unix; an error only means the process exited meanwhile.
    let _ = child.kill();
    let ended = start.elapsed();
    let status = child.wait().unwrap();
    Watched { changes, status, killed: status.signal() == Some(9), ended }
}

/// Intervals between consecutive history chunk commits seen in a run (the watchlist held
/// `watchlist` entries throughout the history pair's apply).
fn chunk_intervals(changes: &[(Duration, usize)], watchlist: usize) -> Vec<Duration> {
    let history: Vec<Duration> =
        changes.iter().filter(|(_, rows)| rows.saturating_sub(watchlist) <= FULL_PLAYS).map(|(at, _)| *at).collect();
    history.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Where a kill landed, judged from the library and the state store afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landing {
    /// Nothing committed yet (before apply, or inside the first chunk's transaction).
    BeforeApply,
    /// Some plays committed, not all.
    MidApply,
    /// Every play written, the history baseline not yet committed (verify, commit).
    BeforeHistoryCommit,
    /// History committed, the watchlist pair not yet.
    BeforeWatchlistCommit,
    /// Nothing left to write; the kill came at the run's very end or during a commit-only run.
    AfterCommit,
}

/// The running estimates the delays are drawn from, refined by what each run shows.
#[derive(Debug)]
struct Estimates {
    /// A whole run from the snapshot.
    total: Duration,
    /// One chunk of 500 plays, committed.
    chunk: Duration,
}

impl Estimates {
    fn refine_chunk(&mut self, samples: &[Duration]) {
        for &sample in samples {
            self.chunk = (self.chunk + sample) / 2;
        }
    }
}

#[test]
fn sigkilled_syncs_leave_consistent_state_and_converge() {
    let began = Instant::now();
    let fixture = Fixture::new();

    // 1. A complete sync of the subset: the baselines exist.
    fixture.write_sources(false);
    let output = fixture.sync();
    assert_clean_exit(&output, "the subset sync");
    let subset_baselines = inspect_state(&fixture.state(), "after the subset sync");
    assert_eq!(subset_baselines, expected_baselines(false));
    let subset = inspect_library(&fixture.library(), "after the subset sync");
    assert_eq!(subset, Library { plays: SUBSET_PLAY_COUNT, watchlist: WATCHLIST_SUBSET });
    fixture.save_snapshot();

    // 2. The source grows to the full set: every run from the snapshot has over a thousand
    //    plays to write, in several chunks. One uninterrupted run measures the phases.
    fixture.write_sources(true);
    let calibration = watch(&fixture, SUBSET_PLAY_COUNT + WATCHLIST_SUBSET, Trigger::Never, Duration::MAX);
    assert!(calibration.status.success(), "the calibration run failed: {:?}", calibration.status);
    let full = Library { plays: FULL_PLAYS, watchlist: WATCHLIST_FULL };
    assert_eq!(inspect_library(&fixture.library(), "after the calibration run"), full);
    assert_eq!(inspect_state(&fixture.state(), "after the calibration run"), expected_baselines(true));
    fixture.restore_snapshot();
    let intervals = chunk_intervals(&calibration.changes, WATCHLIST_SUBSET);
    let mut estimates = Estimates {
        total: calibration.ended,
        chunk: intervals.iter().sum::<Duration>().checked_div(intervals.len() as u32).unwrap_or(calibration.ended / 10),
    };
    println!("calibration: library changes at {:?}; exit after {:?}", calibration.changes, calibration.ended);

    // 3. Kill, check, repeat.
    let mut rng = Rng(SEED);
    let mut landings: BTreeMap<Landing, usize> = BTreeMap::new();
    let (mut kills, mut exits, mut restores, mut converged_chains, mut chain) = (0, 0, 0, 0, 0);
    let mut previous = subset;
    let mut previous_baselines = subset_baselines.clone();
    let mut round = 0;
    while kills < KILLS {
        round += 1;
        assert!(round <= 3 * KILLS, "{round} runs for {kills} kills: the runs end before the kills");
        let context = format!("run {round} (kill {kills}, chain step {chain})");
        // Chunks left to commit; the apply-relative trigger needs two (the first is seen).
        let chunks_left = (FULL_PLAYS - previous.plays).div_ceil(CHUNK);
        let trigger = if rng.unit() < 1.0 / 3.0 || chunks_left < 2 {
            Trigger::After(rng.duration(estimates.total))
        } else {
            Trigger::AfterFirstWrite(rng.duration(estimates.chunk.mul_f64(1.25 * (chunks_left - 1) as f64)))
        };
        let watched = watch(&fixture, previous.plays + previous.watchlist, trigger, estimates.total * 2);
        if watched.killed {
            kills += 1;
        } else {
            assert!(watched.status.success(), "{context}: the run exited on its own with {:?}", watched.status);
            exits += 1;
            if chain == 0 {
                // A whole run from the snapshot (later runs of a chain have less to do).
                estimates.total = (estimates.total + watched.ended) / 2;
            }
        }
        estimates.refine_chunk(&chunk_intervals(&watched.changes, previous.watchlist));

        let library = inspect_library(&fixture.library(), &context);
        let baselines = inspect_state(&fixture.state(), &context);
        for (name, &count) in &subset_baselines {
            let now = baselines.get(name).copied();
            assert!(now.is_some_and(|n| n >= count), "{context}: baseline {name} was {count}, now {now:?}");
            let before = previous_baselines[name];
            assert!(now.is_some_and(|n| n >= before), "{context}: baseline {name} shrank from {before} to {now:?}");
        }
        assert!(library.plays >= previous.plays, "{context}: plays went from {} to {}", previous.plays, library.plays);
        let target = baselines["history/target/history"];
        assert!(
            target <= library.plays,
            "{context}: the target baseline has {target} plays, the library {}",
            library.plays
        );
        if watched.killed {
            let landing = if library.plays > previous.plays && library.plays < FULL_PLAYS {
                Landing::MidApply
            } else if library.plays < FULL_PLAYS {
                Landing::BeforeApply
            } else if target < FULL_PLAYS {
                Landing::BeforeHistoryCommit
            } else if baselines["watchlist/target/watchlist"] < WATCHLIST_FULL {
                Landing::BeforeWatchlistCommit
            } else {
                Landing::AfterCommit
            };
            *landings.entry(landing).or_default() += 1;
        }

        let done = baselines == expected_baselines(true);
        if done {
            // The runs of this chain converged: every play exactly once.
            assert_eq!(stored_plays(&fixture.library()), full_plays(), "{context}: converged, but not on the source");
            assert_eq!(library, full, "{context}");
            converged_chains += 1;
        }
        chain += 1;
        if (done || chain >= CHAIN) && kills < KILLS {
            fixture.restore_snapshot();
            restores += 1;
            chain = 0;
            previous = subset;
            previous_baselines = subset_baselines.clone();
        } else {
            previous = library;
            previous_baselines = baselines;
        }
    }
    let mid_apply = landings.get(&Landing::MidApply).copied().unwrap_or_default();
    println!(
        "{kills} runs killed, {exits} ended before their kill; {restores} snapshot restores, {converged_chains} \
         chains converged between kills; where the kills landed: {landings:?}; final estimates: {estimates:?}"
    );
    assert!(
        mid_apply >= MIN_MID_APPLY,
        "only {mid_apply} of {kills} kills landed mid-apply (want ≥ {MIN_MID_APPLY}): {landings:?}"
    );

    // 4. An uninterrupted run converges from whatever the last kill left.
    let output = fixture.sync();
    assert_clean_exit(&output, "the sync after the kills");
    assert_eq!(stored_plays(&fixture.library()), full_plays(), "the library after the final sync");
    assert_eq!(inspect_library(&fixture.library(), "after the final sync"), full);
    assert_eq!(inspect_state(&fixture.state(), "after the final sync"), expected_baselines(true));
    let output = fixture.sync();
    assert_clean_exit(&output, "the sync after convergence");
    let report: Value = serde_json::from_slice(&output.stdout).expect("cw sync --json prints JSON");
    assert_nothing_to_do(&report);
    assert_eq!(inspect_library(&fixture.library(), "at the end"), full);
    println!("whole test: {:?}", began.elapsed());
}
