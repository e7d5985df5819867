//! The durable state store: one embedded SQLite file per data directory.
//!
//! It keeps, per sync pair: **baselines** (the last committed inventory of each side and
//! feature, by canonical key), **checkpoints** (the providers' activity stamps),
//! **tombstones** (observed deletions, kept for a TTL), **unresolved** items, the
//! **blackbox** (items that keep failing, quarantined after N consecutive failing runs),
//! **plans** (the [`PlanStore`] of the plan/execute binding) and **run history**.
//!
//! Everything a run changes is applied by [`StateStore::commit`] in **one transaction**: a
//! crash at any point leaves the old state or the new one, never a mix.
//!
//! # Durability
//!
//! The file runs in WAL mode with `synchronous=FULL`. WAL alone (with `NORMAL`) already makes
//! every transaction atomic across a *process* crash, and never corrupts the file on power
//! loss — but with `NORMAL` the last transactions before an OS crash or power cut may be rolled
//! back on recovery. Most of this state would survive that (a lost baseline makes the next run
//! re-plan idempotent work), but a lost plan *claim* could let a plan execute twice, which the
//! plan/execute binding forbids. A sync commits a handful of transactions per run, so the cost
//! of `FULL` (one extra fsync of the WAL per commit) is negligible; we pay it.
//!
//! Concurrency: every write is a `BEGIN IMMEDIATE` transaction, so two processes (or two
//! handles in one process) serialise on the write lock (waiting up to
//! [`StateOptions::busy_timeout`]) and a read-check-write such as [`PlanStore::claim`] cannot
//! interleave.
//!
//! Time is injected ([`Clock`]) so TTLs and quarantines are testable; timestamps are stored as
//! Unix seconds (UTC).
//!
//! ```
//! use std::collections::BTreeMap;
//! use cw_orchestrator::config::Side;
//! use cw_orchestrator::state::*;
//! use pal::inventory::{Feature, InventoryItem};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = StateStore::open(dir.path().join("state").join(DEFAULT_FILE_NAME)).unwrap();
//! let item: InventoryItem = serde_json::from_value(serde_json::json!({"ids": {"tmdb": "949"}})).unwrap();
//! store.commit(&RunCommit {
//!     pair: "imdb-to-lib".into(),
//!     baselines: vec![BaselineWrite::keyed(Side::Source, Feature::Watchlist, [item])],
//!     ..Default::default()
//! }).unwrap();
//! let baseline = store.baseline("imdb-to-lib", Side::Source, Feature::Watchlist).unwrap().unwrap();
//! assert!(baseline.items.contains_key("tmdb:949"));
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use admit_core::{
    ClaimError, Digest, ExecutionStatus, PlanRecord, PlanRef, PlanState, PlanStore, PlanStoreError, ScopeId, authorize,
};
use pal::inventory::{Feature, InventoryItem, UnresolvedItem};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::codec::{ChunkDecoder, ChunkEncoder};
use crate::config::Side;
use crate::ingest::Inventory;

/// The state file's name inside a data directory.
pub const DEFAULT_FILE_NAME: &str = "state.sqlite3";

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// `PRAGMA application_id` of a cw state file (`"cwst"`), so a foreign SQLite file is refused.
pub const APPLICATION_ID: i64 = 0x6377_7374;

/// Migrations: entry `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: [&str; 4] = [
    r#"
CREATE TABLE baselines (
    pair        TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('source', 'target')),
    feature     TEXT    NOT NULL,
    item_count  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    run_id      TEXT,
    PRIMARY KEY (pair, side, feature)
) WITHOUT ROWID;

CREATE TABLE baseline_items (
    pair     TEXT NOT NULL,
    side     TEXT NOT NULL CHECK (side IN ('source', 'target')),
    feature  TEXT NOT NULL,
    key      TEXT NOT NULL CHECK (key <> ''),
    item     TEXT NOT NULL,
    PRIMARY KEY (pair, side, feature, key)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    pair        TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('source', 'target')),
    feature     TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (pair, side, feature)
) WITHOUT ROWID;

CREATE TABLE tombstones (
    pair        TEXT    NOT NULL,
    feature     TEXT    NOT NULL,
    token       TEXT    NOT NULL CHECK (token <> ''),
    key         TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (pair, feature, token)
) WITHOUT ROWID;
CREATE INDEX tombstones_by_age ON tombstones (created_at);

CREATE TABLE unresolved (
    pair        TEXT    NOT NULL,
    feature     TEXT    NOT NULL,
    key         TEXT    NOT NULL CHECK (key <> ''),
    item        TEXT    NOT NULL,
    reason      TEXT,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (pair, feature, key)
) WITHOUT ROWID;

CREATE TABLE blackbox (
    pair               TEXT    NOT NULL,
    feature            TEXT    NOT NULL,
    key                TEXT    NOT NULL CHECK (key <> ''),
    failures           INTEGER NOT NULL CHECK (failures > 0),
    last_failed_at     INTEGER NOT NULL,
    quarantined_until  INTEGER,
    reason             TEXT,
    PRIMARY KEY (pair, feature, key)
) WITHOUT ROWID;

CREATE TABLE plans (
    plan_hash          TEXT    NOT NULL PRIMARY KEY,
    scope_id           TEXT    NOT NULL,
    source_snapshots   TEXT    NOT NULL,
    requires_approval  INTEGER NOT NULL CHECK (requires_approval IN (0, 1)),
    approval           TEXT,
    state              TEXT    NOT NULL CHECK (state IN ('pending', 'executing', 'executed')),
    status             TEXT,
    plan               TEXT,
    recorded_at        INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
    run_id       TEXT    NOT NULL PRIMARY KEY CHECK (run_id <> ''),
    pair         TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    counts       TEXT    NOT NULL
);
CREATE INDEX runs_by_pair ON runs (pair, started_at);
"#,
    // Version 2: a tombstone records the side the deletion was observed on, so it holds back
    // re-adding the item to that side only. Version 1 tombstones did not say; they are kept
    // for both sides, which holds back more than needed and never resurrects a deletion.
    r#"
CREATE TABLE tombstones_v2 (
    pair        TEXT    NOT NULL,
    feature     TEXT    NOT NULL,
    token       TEXT    NOT NULL CHECK (token <> ''),
    deleted_on  TEXT    NOT NULL CHECK (deleted_on IN ('source', 'target')),
    key         TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (pair, feature, token, deleted_on)
) WITHOUT ROWID;
INSERT INTO tombstones_v2 (pair, feature, token, deleted_on, key, created_at)
    SELECT pair, feature, token, side.name, key, created_at
    FROM tombstones, (SELECT 'source' AS name UNION ALL SELECT 'target') AS side;
DROP TABLE tombstones;
ALTER TABLE tombstones_v2 RENAME TO tombstones;
CREATE INDEX tombstones_by_age ON tombstones (created_at);
"#,
    // Version 3: a baseline that is exactly the persisted form of a snapshot records that
    // snapshot's hash, so a run that reads the same snapshot again need not load it.
    r#"
ALTER TABLE baselines ADD COLUMN snapshot_hash TEXT;
"#,
    // Version 4: a baseline's items are stored in chunks of up to 4096 items, in key order, a
    // row each, rather than a row per item: a baseline is only ever read and written whole, and
    // per-row work dominated both for large libraries. A chunk is the binary form of `codec`;
    // the chunks this migration makes from rows are JSON arrays of `[key, item]` pairs, read as
    // such until the baseline is next written. `count` is how many items a chunk holds.
    r#"
CREATE TABLE baseline_chunks (
    pair     TEXT    NOT NULL,
    side     TEXT    NOT NULL CHECK (side IN ('source', 'target')),
    feature  TEXT    NOT NULL,
    chunk    INTEGER NOT NULL CHECK (chunk >= 0),
    count    INTEGER NOT NULL CHECK (count > 0),
    items    BLOB    NOT NULL,
    PRIMARY KEY (pair, side, feature, chunk)
);
INSERT INTO baseline_chunks (pair, side, feature, chunk, count, items)
    SELECT pair, side, feature, n / 4096, count(*), json_group_array(json_array(key, json(item)) ORDER BY key)
    FROM (SELECT pair, side, feature, key, item,
                 row_number() OVER (PARTITION BY pair, side, feature ORDER BY key) - 1 AS n
          FROM baseline_items)
    GROUP BY pair, side, feature, n / 4096;
DROP TABLE baseline_items;
"#,
];

/// How many items one row of `baseline_chunks` holds at most.
const BASELINE_CHUNK: u64 = 4096;

// ---------------------------------------------------------------------------------------------
// Errors

/// Why the state store failed. Every variant names the state file (`:memory:` in memory).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The file or its directory could not be created or opened.
    #[error("state file {}: cannot open: {message}", path.display())]
    Open {
        /// The state file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// The file is not an SQLite database, is damaged, or belongs to another program.
    #[error(
        "state file {}: not a usable cw state database ({message}); move it away or choose another state directory",
        path.display()
    )]
    NotADatabase {
        /// The state file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The file was written by a newer build.
    #[error(
        "state file {}: schema version {found} is newer than this build understands ({supported}); upgrade cw",
        path.display()
    )]
    NewerSchema {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// An SQLite operation failed (including constraint violations).
    #[error("state file {}: {context}: {message}", path.display())]
    Sqlite {
        /// The state file.
        path: PathBuf,
        /// What the store was doing.
        context: String,
        /// SQLite's message.
        message: String,
    },
    /// A stored value could not be decoded.
    #[error("state file {}: {context}: stored value is invalid: {message}", path.display())]
    Decode {
        /// The state file.
        path: PathBuf,
        /// What was being read.
        context: String,
        /// The decoder's message.
        message: String,
    },
    /// The caller passed something the store cannot accept.
    #[error("state store: {message}")]
    Invalid {
        /// What was wrong.
        message: String,
    },
    /// No state directory could be determined.
    #[error(
        "no state directory: pass --state <dir>, set `state_dir` in cw.yaml, or set HOME (or XDG_DATA_HOME / LOCALAPPDATA)"
    )]
    NoStateDir,
    /// A thread panicked while holding the connection.
    #[error("state file {}: connection lock poisoned by a panicked thread", path.display())]
    Poisoned {
        /// The state file.
        path: PathBuf,
    },
}

impl From<StateError> for PlanStoreError {
    fn from(error: StateError) -> Self {
        PlanStoreError::Backend { message: error.to_string() }
    }
}

fn sqlite_error(path: &Path, context: &str, error: rusqlite::Error) -> StateError {
    let message = error.to_string();
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            StateError::NotADatabase { path: path.to_path_buf(), message }
        }
        _ => StateError::Sqlite { path: path.to_path_buf(), context: context.to_owned(), message },
    }
}

// ---------------------------------------------------------------------------------------------
// Time

/// Wall-clock time for the store (TTLs, quarantines, run stamps). Injected so tests are exact.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to, to the second.
///
/// ```
/// use cw_orchestrator::state::{Clock, ManualClock};
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(time::Duration::days(1));
/// assert_eq!(clock.now().unix_timestamp(), 1_700_086_400);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    unix: AtomicI64,
}

impl ManualClock {
    /// A clock reading `unix` seconds since the epoch.
    pub fn at_unix(unix: i64) -> Self {
        ManualClock { unix: AtomicI64::new(unix) }
    }

    /// A clock reading `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock::at_unix(at.unix_timestamp())
    }

    /// Sets the time.
    pub fn set(&self, at: OffsetDateTime) {
        self.unix.store(at.unix_timestamp(), Ordering::SeqCst);
    }

    /// Moves the time forward (or back, for a negative duration).
    pub fn advance(&self, by: time::Duration) {
        self.unix.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        from_unix(self.unix.load(Ordering::SeqCst))
    }
}

fn from_unix(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

// ---------------------------------------------------------------------------------------------
// Options and inputs

/// Store settings. The defaults are the contract's: tombstones live 30 days; 3 consecutive
/// failing runs quarantine an item for 30 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    /// How long a tombstone lives (the one TTL setting).
    pub tombstone_ttl: time::Duration,
    /// Consecutive failing runs after which an item is quarantined. When a quarantine ends the
    /// item is retried: one more failure quarantines it again at once, a success clears it.
    pub blackbox_failures: u32,
    /// How long a quarantine lasts.
    pub quarantine: time::Duration,
    /// How long a write waits for another process's write lock before failing.
    pub busy_timeout: std::time::Duration,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            tombstone_ttl: time::Duration::days(30),
            blackbox_failures: 3,
            quarantine: time::Duration::days(30),
            busy_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Whether an item may be kept in a baseline: not when it carries `_cw_transient: true`,
/// `_cw_skip_persist: true` or `_cw_persist: false`, or a vendor payload marks it
/// `ignored: true` (`extra.<vendor>.ignored`). Flags must be JSON booleans; anything else is
/// not a flag (the same rule as `ingest::persistable`).
///
/// ```
/// use cw_orchestrator::state::is_persistable;
/// let item = |v: serde_json::Value| serde_json::from_value(v).unwrap();
/// assert!(is_persistable(&item(serde_json::json!({"ids": {"tmdb": "1"}}))));
/// assert!(!is_persistable(&item(serde_json::json!({"ids": {"tmdb": "1"}, "_cw_transient": true}))));
/// assert!(!is_persistable(&item(serde_json::json!({"ids": {"tmdb": "1"}, "_cw_persist": false}))));
/// assert!(!is_persistable(&item(serde_json::json!({"ids": {"tmdb": "1"}, "plex": {"ignored": true}}))));
/// assert!(is_persistable(&item(serde_json::json!({"ids": {"tmdb": "1"}, "_cw_transient": "yes"}))));
/// ```
pub fn is_persistable(item: &InventoryItem) -> bool {
    crate::ingest::persistable(item)
}

/// Replaces the baseline of one side and feature of the commit's pair.
///
/// The items given are the *effective* inventory (for `delta` snapshots: baseline ∪ delta).
/// Items the store's persistence filter rejects ([`is_persistable`] by default) are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineWrite {
    /// Which side.
    pub side: Side,
    /// Which feature.
    pub feature: Feature,
    /// The items, by entry key.
    pub items: BaselineItems,
    /// The hash of the snapshot these items are, all of them, exactly (when they are): a later
    /// run that reads a snapshot with this hash knows the baseline without loading it.
    pub snapshot_hash: Option<String>,
}

impl BaselineWrite {
    /// Keys `items` by [`pal::keys::canonical_key`] (a later item with the same key wins).
    pub fn keyed(side: Side, feature: Feature, items: impl IntoIterator<Item = InventoryItem>) -> Self {
        let items: BTreeMap<String, InventoryItem> =
            items.into_iter().map(|item| (pal::keys::canonical_key(&item), item)).collect();
        BaselineWrite { side, feature, items: items.into(), snapshot_hash: None }
    }
}

/// The items of a baseline to write.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineItems {
    /// Items by entry key.
    Keyed(BTreeMap<String, InventoryItem>),
    /// The persistable entries of an ingested side ([`crate::ingest::persistable`]), by entry
    /// key, with `removed` taken out and `added` laid over them: a run's next baseline without
    /// a copy of every item (the store writes them straight from the side).
    Side {
        /// The side as ingested (or as re-read after writing).
        side: Inventory,
        /// Entry keys to leave out.
        removed: BTreeSet<String>,
        /// Items to add or replace, by entry key.
        added: BTreeMap<String, InventoryItem>,
    },
}

impl From<BTreeMap<String, InventoryItem>> for BaselineItems {
    fn from(items: BTreeMap<String, InventoryItem>) -> Self {
        BaselineItems::Keyed(items)
    }
}

/// One item of a baseline being written: as given, or as an ingested entry keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ItemRef<'a> {
    Item(&'a InventoryItem),
    /// An entry's item in the baseline codec's form; [`crate::ingest::persistable`] already passed.
    Encoded(&'a [u8]),
}

impl BaselineItems {
    /// Calls `each` with every item, in key order, until it fails.
    pub(crate) fn try_for_each<E>(&self, mut each: impl FnMut(&str, ItemRef<'_>) -> Result<(), E>) -> Result<(), E> {
        match self {
            BaselineItems::Keyed(items) => items.iter().try_for_each(|(key, item)| each(key, ItemRef::Item(item))),
            BaselineItems::Side { side, removed, added } => {
                let mut added = added.iter().peekable();
                for entry in side.entries() {
                    let key = entry.key();
                    let mut replaced = false;
                    while let Some((new_key, item)) = added.next_if(|(new_key, _)| new_key.as_str() <= key) {
                        replaced |= new_key == key;
                        each(new_key, ItemRef::Item(item))?;
                    }
                    if !replaced && !removed.contains(key) && entry.persistable() {
                        each(key, ItemRef::Encoded(entry.encoded_item()))?;
                    }
                }
                added.try_for_each(|(key, item)| each(key, ItemRef::Item(item)))
            }
        }
    }
}

/// Sets a checkpoint (an activity stamp from `activities()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointWrite {
    /// Which side.
    pub side: Side,
    /// Which feature.
    pub feature: Feature,
    /// The provider's stamp, as reported (RFC 3339).
    pub value: String,
}

/// Records an observed deletion under one token (a canonical key or an id token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstoneWrite {
    /// Which feature.
    pub feature: Feature,
    /// The token (`tmdb:949`, `tvdb:81189#s01e02`, …), lower-case.
    pub token: String,
    /// The side the deletion was observed on: the item is not re-added to it.
    pub deleted_on: Side,
    /// The canonical key of the deleted item, for reports.
    pub key: Option<String>,
}

impl TombstoneWrite {
    /// Tombstones for an item's canonical key and every strong token
    /// ([`pal::keys::strong_tokens`]), so a peer that keys the item differently still matches.
    pub fn for_item(feature: Feature, deleted_on: Side, item: &InventoryItem) -> Vec<TombstoneWrite> {
        let key = pal::keys::canonical_key(item);
        let mut tokens = pal::keys::strong_tokens(item);
        tokens.insert(key.clone());
        tokens.into_iter().map(|token| TombstoneWrite { feature, token, deleted_on, key: Some(key.clone()) }).collect()
    }

    /// The planner's tombstone, as it is (the planner already keyed it: canonical key or strong
    /// token, history plays suffixed with their time).
    pub fn planned(tombstone: &crate::planner::Tombstone) -> TombstoneWrite {
        TombstoneWrite {
            feature: tombstone.feature,
            token: tombstone.key.clone(),
            deleted_on: tombstone.deleted_on,
            key: None,
        }
    }
}

/// Names a tombstone to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstoneRef {
    /// Which feature.
    pub feature: Feature,
    /// The token.
    pub token: String,
    /// The side it holds the item back from.
    pub deleted_on: Side,
}

/// Replaces the unresolved items of one feature of the commit's pair (items resolved by this
/// run disappear; `first_seen` is kept for items still unresolved).
#[derive(Debug, Clone, PartialEq)]
pub struct UnresolvedWrite {
    /// Which feature.
    pub feature: Feature,
    /// The items still unresolved, by canonical key.
    pub items: BTreeMap<String, UnresolvedItem>,
}

/// How one item fared in a run, for the blackbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// The write failed (counts once per run, however often it was tried).
    Failed {
        /// Why, for `cw blackbox list`.
        reason: Option<String>,
    },
    /// The write succeeded: the failure count resets.
    Succeeded,
}

/// A blackbox update for one item. Within one commit, a failure of a key wins over a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlackboxUpdate {
    /// Which feature.
    pub feature: Feature,
    /// The item's canonical key.
    pub key: String,
    /// What happened.
    pub outcome: ItemOutcome,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Everything planned was applied.
    Ok,
    /// Some writes failed or stayed unresolved.
    Partial,
    /// The run failed.
    Failed,
    /// The pair was skipped (health gate).
    Skipped,
    /// A guardrail blocked the run's removals (mass delete, drop guard).
    Blocked,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Blocked => "blocked",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [RunStatus::Ok, RunStatus::Partial, RunStatus::Failed, RunStatus::Skipped, RunStatus::Blocked]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One entry of the run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique run id.
    pub run_id: String,
    /// The pair that ran (must equal the commit's pair).
    pub pair: String,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it finished.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// How it ended.
    pub status: RunStatus,
    /// Counts (adds, removes, unresolved, … per feature): free-form JSON.
    pub counts: Value,
}

/// Everything one run of one pair commits, applied atomically by [`StateStore::commit`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCommit {
    /// The pair id.
    pub pair: String,
    /// Baselines to replace.
    pub baselines: Vec<BaselineWrite>,
    /// Checkpoints to set.
    pub checkpoints: Vec<CheckpointWrite>,
    /// Tombstones to add (an existing token keeps its original age).
    pub tombstones_added: Vec<TombstoneWrite>,
    /// Tombstones to delete (applied before the additions).
    pub tombstones_removed: Vec<TombstoneRef>,
    /// Unresolved sets to replace, per feature.
    pub unresolved: Vec<UnresolvedWrite>,
    /// Blackbox outcomes.
    pub blackbox: Vec<BlackboxUpdate>,
    /// The run's history entry.
    pub run: Option<RunRecord>,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Baseline items written.
    pub baseline_items: usize,
    /// Baseline items skipped as not persistable.
    pub baseline_items_skipped: usize,
    /// Tombstones added (new tokens only).
    pub tombstones_added: usize,
    /// Expired tombstones pruned (of every pair).
    pub tombstones_pruned: usize,
    /// Items newly quarantined.
    pub quarantined: usize,
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// A stored baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Items by entry key.
    pub items: BTreeMap<String, InventoryItem>,
    /// When it was committed.
    pub updated_at: OffsetDateTime,
    /// The run that committed it.
    pub run_id: Option<String>,
}

/// A baseline's description ([`StateStore::baseline_meta`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineMeta {
    /// How many items it holds.
    pub item_count: usize,
    /// When it was committed.
    pub updated_at: OffsetDateTime,
    /// The hash of the snapshot it is exactly, when it is one.
    pub snapshot_hash: Option<String>,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The provider's stamp.
    pub value: String,
    /// When it was committed.
    pub updated_at: OffsetDateTime,
}

/// A live tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The feature.
    pub feature: Feature,
    /// The token.
    pub token: String,
    /// The side the deletion was observed on.
    pub deleted_on: Side,
    /// The deleted item's canonical key.
    pub key: Option<String>,
    /// When the deletion was recorded.
    pub created_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

impl Tombstone {
    /// The planner's view of it.
    pub fn to_planned(&self) -> crate::planner::Tombstone {
        crate::planner::Tombstone { feature: self.feature, key: self.token.clone(), deleted_on: self.deleted_on }
    }
}

/// A stored unresolved item.
#[derive(Debug, Clone, PartialEq)]
pub struct UnresolvedEntry {
    /// The feature.
    pub feature: Feature,
    /// The canonical key.
    pub key: String,
    /// The item as the provider reported it.
    pub item: UnresolvedItem,
    /// First run that reported it.
    pub first_seen: OffsetDateTime,
    /// Latest run that reported it.
    pub last_seen: OffsetDateTime,
}

/// A blackbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlackboxEntry {
    /// The pair.
    pub pair: String,
    /// The feature.
    pub feature: Feature,
    /// The canonical key.
    pub key: String,
    /// Consecutive failing runs.
    pub failures: u32,
    /// The latest failure.
    #[serde(with = "time::serde::rfc3339")]
    pub last_failed_at: OffsetDateTime,
    /// Quarantined until then (set once the failure count reaches the threshold).
    #[serde(with = "time::serde::rfc3339::option")]
    pub quarantined_until: Option<OffsetDateTime>,
    /// The latest failure's reason.
    pub reason: Option<String>,
    /// Whether the quarantine is in force now.
    pub quarantined: bool,
}

/// Which blackbox entries [`StateStore::clear_blackbox`] removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlackboxFilter<'a> {
    /// Only this pair.
    pub pair: Option<&'a str>,
    /// Only this key.
    pub key: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------------
// The store

/// The persistence filter for baseline items.
pub type PersistFilter = fn(&InventoryItem) -> bool;

/// The state store. Cheap to share behind an `Arc`; one connection, serialised by a mutex.
/// Open one per process (or per thread): SQLite's locking keeps several consistent.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    options: StateOptions,
    /// A filter that replaces [`is_persistable`]; without one, ingested entries are written as
    /// they are kept, without decoding.
    persist: Option<PersistFilter>,
}

impl StateStore {
    /// Opens (creating it and its parent directories if needed) the state file at `path`, with
    /// the default options and the system clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        StateStore::open_with(path, StateOptions::default(), Arc::new(SystemClock))
    }

    /// Opens `dir/`[`DEFAULT_FILE_NAME`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self, StateError> {
        StateStore::open(dir.as_ref().join(DEFAULT_FILE_NAME))
    }

    /// Opens the state file at `path` with explicit options and clock.
    pub fn open_with(path: impl AsRef<Path>, options: StateOptions, clock: Arc<dyn Clock>) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        let open_error = |message: String| StateError::Open { path: path.clone(), message };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| open_error(format!("cannot create directory {}: {e}", parent.display())))?;
        }
        if path.is_dir() {
            return Err(open_error("is a directory; give a file path (or use open_dir)".to_owned()));
        }
        let conn = Connection::open(&path).map_err(|e| sqlite_error(&path, "open", e))?;
        StateStore::init(path, conn, options, clock, true)
    }

    /// A store in memory (nothing persists), for tests and dry runs.
    pub fn open_in_memory(options: StateOptions, clock: Arc<dyn Clock>) -> Result<Self, StateError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sqlite_error(&path, "open", e))?;
        StateStore::init(path, conn, options, clock, false)
    }

    fn init(
        path: PathBuf,
        mut conn: Connection,
        options: StateOptions,
        clock: Arc<dyn Clock>,
        on_disk: bool,
    ) -> Result<Self, StateError> {
        let err = |context: &str| {
            let path = path.clone();
            let context = context.to_owned();
            move |e: rusqlite::Error| sqlite_error(&path, &context, e)
        };
        conn.busy_timeout(options.busy_timeout).map_err(err("set busy timeout"))?;
        // The first statement that reads the file: a non-SQLite file fails here.
        let _: i64 = conn.query_row("PRAGMA schema_version", [], |row| row.get(0)).map_err(err("read header"))?;
        if on_disk {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(err("enable WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StateError::Open {
                    path: path.clone(),
                    message: format!("cannot enable WAL journaling (SQLite reports journal_mode={mode})"),
                });
            }
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(err("set synchronous=FULL"))?;
        migrate(&mut conn, &path)?;
        Ok(StateStore { path, conn: Mutex::new(conn), clock, options, persist: None })
    }

    /// Replaces the baseline persistence filter (default [`is_persistable`]).
    pub fn with_persist_filter(mut self, filter: PersistFilter) -> Self {
        self.persist = Some(filter);
        self
    }

    /// The state file (`:memory:` in memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's settings.
    pub fn options(&self) -> &StateOptions {
        &self.options
    }

    /// The store's clock reading.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn now_unix(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| StateError::Poisoned { path: self.path.clone() })
    }

    fn err<'a>(&'a self, context: &'a str) -> impl Fn(rusqlite::Error) -> StateError + 'a {
        move |e| sqlite_error(&self.path, context, e)
    }

    fn decode_err(&self, context: &str, message: impl fmt::Display) -> StateError {
        StateError::Decode { path: self.path.clone(), context: context.to_owned(), message: message.to_string() }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction; commits when `f` returns `Ok(Ok(_))`,
    /// rolls back otherwise.
    fn write<T, R>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<Result<T, R>, StateError>,
    ) -> Result<Result<T, R>, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err(context))?;
        let out = f(&tx)?;
        if out.is_ok() {
            tx.commit().map_err(self.err(context))?;
        }
        Ok(out)
    }

    fn write_ok<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        self.write::<T, std::convert::Infallible>(context, |tx| f(tx).map(Ok))?.map_err(|never| match never {})
    }

    // --- the run commit ------------------------------------------------------------------------

    /// Applies everything a run of `commit.pair` changes, in one transaction: baselines,
    /// checkpoints, tombstones (and pruning of expired ones), unresolved sets, blackbox
    /// outcomes and the run record. On any error nothing is applied.
    pub fn commit(&self, commit: &RunCommit) -> Result<CommitOutcome, StateError> {
        if commit.pair.is_empty() {
            return Err(StateError::Invalid { message: "commit: the pair id is empty".to_owned() });
        }
        if let Some(run) = commit.run.as_ref().filter(|run| run.pair != commit.pair) {
            return Err(StateError::Invalid {
                message: format!("commit: run record {} is for pair `{}`, not `{}`", run.run_id, run.pair, commit.pair),
            });
        }
        let now = self.now_unix();
        let pair = commit.pair.as_str();
        let run_id = commit.run.as_ref().map(|r| r.run_id.as_str());
        self.write_ok("commit", |tx| {
            let mut outcome = CommitOutcome::default();
            let err = self.err("commit");
            for baseline in &commit.baselines {
                let (side, feature) = (baseline.side.as_str(), baseline.feature.as_str());
                tx.execute(
                    "DELETE FROM baseline_chunks WHERE pair = ?1 AND side = ?2 AND feature = ?3",
                    params![pair, side, feature],
                )
                .map_err(&err)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO baseline_chunks (pair, side, feature, chunk, count, items)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(&err)?;
                let mut chunk = ChunkEncoder::default();
                let (mut chunks, mut written) = (0i64, 0usize);
                let mut flush = |chunk: &mut ChunkEncoder| -> Result<(), StateError> {
                    if !chunk.is_empty() {
                        let count = i64::try_from(chunk.len()).unwrap_or(i64::MAX);
                        insert.execute(params![pair, side, feature, chunks, count, chunk.finish()]).map_err(&err)?;
                        chunks += 1;
                    }
                    Ok(())
                };
                let mut skipped = 0usize;
                baseline.items.try_for_each(|key, item| {
                    if key.is_empty() {
                        return Err(StateError::Invalid { message: "a baseline item with an empty key".to_owned() });
                    }
                    let kept = match (item, self.persist) {
                        (ItemRef::Item(item), filter) => filter.unwrap_or(is_persistable)(item),
                        (ItemRef::Encoded(_), None) => true,
                        (ItemRef::Encoded(encoded), Some(filter)) => {
                            let item = crate::codec::decode_item(encoded)
                                .map_err(|e| StateError::Invalid { message: format!("baseline item {key}: {e}") })?;
                            filter(&item)
                        }
                    };
                    if !kept {
                        skipped += 1;
                        return Ok(());
                    }
                    match item {
                        ItemRef::Item(item) => chunk.push(key, item),
                        ItemRef::Encoded(encoded) => chunk.push_encoded(key, encoded),
                    }
                    written += 1;
                    if chunk.len() == BASELINE_CHUNK {
                        flush(&mut chunk)?;
                    }
                    Ok(())
                })?;
                flush(&mut chunk)?;
                outcome.baseline_items += written;
                outcome.baseline_items_skipped += skipped;
                // What the filter left out makes the stored baseline differ from the snapshot.
                let snapshot_hash = baseline.snapshot_hash.as_deref().filter(|_| skipped == 0);
                tx.execute(
                    "INSERT INTO baselines (pair, side, feature, item_count, updated_at, run_id, snapshot_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (pair, side, feature) DO UPDATE SET
                       item_count = excluded.item_count, updated_at = excluded.updated_at, run_id = excluded.run_id,
                       snapshot_hash = excluded.snapshot_hash",
                    params![pair, side, feature, to_i64(written), now, run_id, snapshot_hash],
                )
                .map_err(&err)?;
            }
            for checkpoint in &commit.checkpoints {
                tx.execute(
                    "INSERT INTO checkpoints (pair, side, feature, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (pair, side, feature) DO UPDATE SET
                       value = excluded.value, updated_at = excluded.updated_at",
                    params![pair, checkpoint.side.as_str(), checkpoint.feature.as_str(), checkpoint.value, now],
                )
                .map_err(&err)?;
            }
            for tombstone in &commit.tombstones_removed {
                tx.execute(
                    "DELETE FROM tombstones WHERE pair = ?1 AND feature = ?2 AND token = ?3 AND deleted_on = ?4",
                    params![pair, tombstone.feature.as_str(), tombstone.token, tombstone.deleted_on.as_str()],
                )
                .map_err(&err)?;
            }
            for tombstone in &commit.tombstones_added {
                outcome.tombstones_added += tx
                    .prepare_cached(
                        "INSERT INTO tombstones (pair, feature, token, deleted_on, key, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (pair, feature, token, deleted_on) DO NOTHING",
                    )
                    .and_then(|mut insert| {
                        insert.execute(params![
                            pair,
                            tombstone.feature.as_str(),
                            tombstone.token,
                            tombstone.deleted_on.as_str(),
                            tombstone.key,
                            now
                        ])
                    })
                    .map_err(&err)?;
            }
            outcome.tombstones_pruned = prune_tombstones(tx, now, self.options.tombstone_ttl).map_err(&err)?;
            for unresolved in &commit.unresolved {
                self.replace_unresolved(tx, pair, unresolved, now)?;
            }
            outcome.quarantined = self.apply_blackbox(tx, pair, &commit.blackbox, now)?;
            if let Some(run) = &commit.run {
                let counts = serde_json::to_string(&run.counts)
                    .map_err(|e| StateError::Invalid { message: format!("run {} counts: {e}", run.run_id) })?;
                tx.execute(
                    "INSERT INTO runs (run_id, pair, started_at, finished_at, status, counts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        run.run_id,
                        pair,
                        run.started_at.unix_timestamp(),
                        run.finished_at.unix_timestamp(),
                        run.status.as_str(),
                        counts
                    ],
                )
                .map_err(&err)?;
            }
            Ok(outcome)
        })
    }

    fn replace_unresolved(
        &self,
        tx: &Transaction<'_>,
        pair: &str,
        write: &UnresolvedWrite,
        now: i64,
    ) -> Result<(), StateError> {
        let err = self.err("commit unresolved");
        let feature = write.feature.as_str();
        let first_seen: BTreeMap<String, i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT key, first_seen FROM unresolved WHERE pair = ?1 AND feature = ?2")
                .map_err(&err)?;
            let rows = stmt.query_map(params![pair, feature], |row| Ok((row.get(0)?, row.get(1)?))).map_err(&err)?;
            rows.collect::<Result<_, _>>().map_err(&err)?
        };
        tx.execute("DELETE FROM unresolved WHERE pair = ?1 AND feature = ?2", params![pair, feature]).map_err(&err)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO unresolved (pair, feature, key, item, reason, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(&err)?;
        for (key, item) in &write.items {
            let json = serde_json::to_string(item)
                .map_err(|e| StateError::Invalid { message: format!("unresolved item {key}: {e}") })?;
            let first = first_seen.get(key).copied().unwrap_or(now);
            insert.execute(params![pair, feature, key, json, item.reason, first, now]).map_err(&err)?;
        }
        Ok(())
    }

    fn apply_blackbox(
        &self,
        tx: &Transaction<'_>,
        pair: &str,
        updates: &[BlackboxUpdate],
        now: i64,
    ) -> Result<usize, StateError> {
        let err = self.err("commit blackbox");
        // One outcome per key and run; a failure wins.
        let mut outcomes: BTreeMap<(Feature, &str), &ItemOutcome> = BTreeMap::new();
        for update in updates {
            let slot = outcomes.entry((update.feature, update.key.as_str())).or_insert(&update.outcome);
            if matches!(update.outcome, ItemOutcome::Failed { .. }) && matches!(slot, ItemOutcome::Succeeded) {
                *slot = &update.outcome;
            }
        }
        let threshold = i64::from(self.options.blackbox_failures.max(1));
        let until = now.saturating_add(self.options.quarantine.whole_seconds());
        let mut quarantined = 0usize;
        // A success clears an item's failures: only items the blackbox holds need a statement
        // (a run confirms thousands of items; the blackbox holds a few).
        let held: HashSet<(String, String)> = {
            let mut select = tx.prepare_cached("SELECT feature, key FROM blackbox WHERE pair = ?1").map_err(&err)?;
            let rows = select.query_map(params![pair], |row| Ok((row.get(0)?, row.get(1)?))).map_err(&err)?;
            rows.collect::<Result<_, _>>().map_err(&err)?
        };
        for ((feature, key), outcome) in outcomes {
            match outcome {
                ItemOutcome::Succeeded => {
                    if held.contains(&(feature.as_str().to_owned(), key.to_owned())) {
                        tx.prepare_cached("DELETE FROM blackbox WHERE pair = ?1 AND feature = ?2 AND key = ?3")
                            .and_then(|mut delete| delete.execute(params![pair, feature.as_str(), key]))
                            .map_err(&err)?;
                    }
                }
                ItemOutcome::Failed { reason } => {
                    let failures: i64 = tx
                        .query_row(
                            "INSERT INTO blackbox (pair, feature, key, failures, last_failed_at, reason)
                             VALUES (?1, ?2, ?3, 1, ?4, ?5)
                             ON CONFLICT (pair, feature, key) DO UPDATE SET
                               failures = failures + 1, last_failed_at = excluded.last_failed_at,
                               reason = excluded.reason
                             RETURNING failures",
                            params![pair, feature.as_str(), key, now, reason],
                            |row| row.get(0),
                        )
                        .map_err(&err)?;
                    if failures >= threshold {
                        tx.execute(
                            "UPDATE blackbox SET quarantined_until = ?4 WHERE pair = ?1 AND feature = ?2 AND key = ?3",
                            params![pair, feature.as_str(), key, until],
                        )
                        .map_err(&err)?;
                        quarantined += 1;
                    }
                }
            }
        }
        Ok(quarantined)
    }

    // --- reads ------------------------------------------------------------------------------------

    /// The committed baseline of one side and feature, or `None` if none was ever committed
    /// (an empty baseline is `Some` with no items).
    pub fn baseline(&self, pair: &str, side: Side, feature: Feature) -> Result<Option<Baseline>, StateError> {
        let conn = self.lock()?;
        let err = self.err("read baseline");
        let meta: Option<(i64, Option<String>)> = conn
            .query_row(
                "SELECT updated_at, run_id FROM baselines WHERE pair = ?1 AND side = ?2 AND feature = ?3",
                params![pair, side.as_str(), feature.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(&err)?;
        let Some((updated_at, run_id)) = meta else { return Ok(None) };
        let mut items = BTreeMap::new();
        self.read_chunks(&conn, pair, side, feature, |key, item| {
            items.insert(key.to_owned(), item);
        })?;
        Ok(Some(Baseline { items, updated_at: from_unix(updated_at), run_id }))
    }

    /// The items of a committed baseline, in key order, without their keys (what a run
    /// ingests; [`StateStore::baseline`] is the same with the keys); `None` if none was ever
    /// committed.
    pub fn baseline_items(
        &self,
        pair: &str,
        side: Side,
        feature: Feature,
    ) -> Result<Option<Vec<InventoryItem>>, StateError> {
        let conn = self.lock()?;
        let count: Option<i64> = conn
            .query_row(
                "SELECT item_count FROM baselines WHERE pair = ?1 AND side = ?2 AND feature = ?3",
                params![pair, side.as_str(), feature.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err("read baseline"))?;
        let Some(count) = count else { return Ok(None) };
        let mut items = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        self.read_chunks(&conn, pair, side, feature, |_, item| items.push(item))?;
        Ok(Some(items))
    }

    /// [`StateStore::baseline_items`] one at a time, in key order, for a caller that keeps
    /// less than the items; `false` if no baseline was ever committed.
    pub fn each_baseline_item(
        &self,
        pair: &str,
        side: Side,
        feature: Feature,
        mut each: impl FnMut(InventoryItem),
    ) -> Result<bool, StateError> {
        let conn = self.lock()?;
        let exists = conn
            .query_row(
                "SELECT 1 FROM baselines WHERE pair = ?1 AND side = ?2 AND feature = ?3",
                params![pair, side.as_str(), feature.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.err("read baseline"))?
            .is_some();
        if exists {
            self.read_chunks(&conn, pair, side, feature, |_, item| each(item))?;
        }
        Ok(exists)
    }

    fn read_chunks(
        &self,
        conn: &Connection,
        pair: &str,
        side: Side,
        feature: Feature,
        mut each: impl FnMut(&str, InventoryItem),
    ) -> Result<(), StateError> {
        let err = self.err("read baseline");
        let mut chunks = conn
            .prepare_cached(
                "SELECT chunk, items FROM baseline_chunks WHERE pair = ?1 AND side = ?2 AND feature = ?3 ORDER BY chunk",
            )
            .map_err(&err)?;
        let mut rows = chunks.query(params![pair, side.as_str(), feature.as_str()]).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            let chunk: i64 = row.get(0).map_err(&err)?;
            let context = || format!("baseline {pair}/{side}/{feature}, chunk {chunk}");
            match row.get_ref(1).map_err(&err)? {
                ValueRef::Blob(bytes) => {
                    let mut decoder = ChunkDecoder::new(bytes).map_err(|e| self.decode_err(&context(), e))?;
                    while let Some((key, item)) = decoder.next_item().map_err(|e| self.decode_err(&context(), e))? {
                        each(key, item);
                    }
                }
                // A chunk made from the rows of schema 3.
                ValueRef::Text(json) => {
                    let pairs: Vec<(String, InventoryItem)> =
                        serde_json::from_slice(json).map_err(|e| self.decode_err(&context(), e))?;
                    for (key, item) in pairs {
                        each(&key, item);
                    }
                }
                _ => return Err(self.decode_err(&context(), "neither a chunk nor JSON")),
            }
        }
        Ok(())
    }

    /// What is known about a baseline without reading its items: how many, when, and the hash
    /// of the snapshot it is exactly (when it is one).
    pub fn baseline_meta(&self, pair: &str, side: Side, feature: Feature) -> Result<Option<BaselineMeta>, StateError> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT item_count, updated_at, snapshot_hash FROM baselines WHERE pair = ?1 AND side = ?2 AND feature = ?3",
            params![pair, side.as_str(), feature.as_str()],
            |row| {
                Ok(BaselineMeta {
                    item_count: usize::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                    updated_at: from_unix(row.get(1)?),
                    snapshot_hash: row.get(2)?,
                })
            },
        )
        .optional()
        .map_err(self.err("read baseline"))
    }

    /// The checkpoint of one side and feature.
    pub fn checkpoint(&self, pair: &str, side: Side, feature: Feature) -> Result<Option<Checkpoint>, StateError> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT value, updated_at FROM checkpoints WHERE pair = ?1 AND side = ?2 AND feature = ?3",
            params![pair, side.as_str(), feature.as_str()],
            |row| Ok(Checkpoint { value: row.get(0)?, updated_at: from_unix(row.get(1)?) }),
        )
        .optional()
        .map_err(self.err("read checkpoint"))
    }

    /// The live (unexpired) tombstones of a pair and feature, by token.
    pub fn tombstones(&self, pair: &str, feature: Feature) -> Result<Vec<Tombstone>, StateError> {
        let conn = self.lock()?;
        let err = self.err("read tombstones");
        let ttl = self.options.tombstone_ttl.whole_seconds();
        let cutoff = self.now_unix().saturating_sub(ttl);
        let mut stmt = conn
            .prepare_cached(
                "SELECT token, deleted_on, key, created_at FROM tombstones
                 WHERE pair = ?1 AND feature = ?2 AND created_at > ?3 ORDER BY token, deleted_on",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![pair, feature.as_str(), cutoff], |row| {
                let created_at: i64 = row.get(3)?;
                let deleted_on: String = row.get(1)?;
                Ok(Tombstone {
                    feature,
                    token: row.get(0)?,
                    deleted_on: if deleted_on == "source" { Side::Source } else { Side::Target },
                    key: row.get(2)?,
                    created_at: from_unix(created_at),
                    expires_at: from_unix(created_at.saturating_add(ttl)),
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Deletes expired tombstones of every pair now; returns how many. (Every commit does this
    /// too.)
    pub fn prune_tombstones(&self) -> Result<usize, StateError> {
        let now = self.now_unix();
        self.write_ok("prune tombstones", |tx| {
            prune_tombstones(tx, now, self.options.tombstone_ttl).map_err(self.err("prune tombstones"))
        })
    }

    /// The unresolved items of a pair and feature, by key.
    pub fn unresolved(&self, pair: &str, feature: Feature) -> Result<Vec<UnresolvedEntry>, StateError> {
        let conn = self.lock()?;
        let err = self.err("read unresolved");
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, item, first_seen, last_seen FROM unresolved WHERE pair = ?1 AND feature = ?2 ORDER BY key",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![pair, feature.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(3)?))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (key, json, first_seen, last_seen) = row.map_err(&err)?;
            let item = serde_json::from_str(&json).map_err(|e| self.decode_err(&format!("unresolved {key}"), e))?;
            out.push(UnresolvedEntry {
                feature,
                key,
                item,
                first_seen: from_unix(first_seen),
                last_seen: from_unix(last_seen),
            });
        }
        Ok(out)
    }

    /// Blackbox entries (of one pair, or all), sorted by pair, feature name and key.
    pub fn list_blackbox(&self, pair: Option<&str>) -> Result<Vec<BlackboxEntry>, StateError> {
        let conn = self.lock()?;
        let err = self.err("read blackbox");
        let now = self.now_unix();
        let mut stmt = conn
            .prepare_cached(
                "SELECT pair, feature, key, failures, last_failed_at, quarantined_until, reason FROM blackbox
                 WHERE ?1 IS NULL OR pair = ?1 ORDER BY pair, feature, key",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![pair], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (pair, feature, key, failures, last_failed_at, until, reason) = row.map_err(&err)?;
            let feature: Feature = feature.parse().map_err(|e: String| self.decode_err("blackbox feature", e))?;
            out.push(BlackboxEntry {
                pair,
                feature,
                key,
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                last_failed_at: from_unix(last_failed_at),
                quarantined_until: until.map(from_unix),
                reason,
                quarantined: until.is_some_and(|until| until > now),
            });
        }
        Ok(out)
    }

    /// Keys of a pair and feature under quarantine now: the planner skips them.
    pub fn quarantined_keys(&self, pair: &str, feature: Feature) -> Result<BTreeSet<String>, StateError> {
        let conn = self.lock()?;
        let err = self.err("read blackbox");
        let mut stmt = conn
            .prepare_cached(
                "SELECT key FROM blackbox WHERE pair = ?1 AND feature = ?2 AND quarantined_until > ?3 ORDER BY key",
            )
            .map_err(&err)?;
        let rows = stmt.query_map(params![pair, feature.as_str(), self.now_unix()], |row| row.get(0)).map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Removes blackbox entries matching `filter` (all with the default filter); returns how
    /// many. A cleared item is retried by the next run with a fresh count.
    pub fn clear_blackbox(&self, filter: BlackboxFilter<'_>) -> Result<usize, StateError> {
        self.write_ok("clear blackbox", |tx| {
            tx.execute(
                "DELETE FROM blackbox WHERE (?1 IS NULL OR pair = ?1) AND (?2 IS NULL OR key = ?2)",
                params![filter.pair, filter.key],
            )
            .map_err(self.err("clear blackbox"))
        })
    }

    /// The run history, newest first (of one pair, or all), at most `limit` entries.
    pub fn runs(&self, pair: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let conn = self.lock()?;
        let err = self.err("read runs");
        let mut stmt = conn
            .prepare_cached(
                "SELECT run_id, pair, started_at, finished_at, status, counts FROM runs
                 WHERE ?1 IS NULL OR pair = ?1 ORDER BY started_at DESC, rowid DESC LIMIT ?2",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![pair, to_i64(limit)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (run_id, pair, started_at, finished_at, status, counts) = row.map_err(&err)?;
            let status =
                RunStatus::parse(&status).ok_or_else(|| self.decode_err("run status", format!("`{status}`")))?;
            let counts = serde_json::from_str(&counts).map_err(|e| self.decode_err("run counts", e))?;
            out.push(RunRecord {
                run_id,
                pair,
                started_at: from_unix(started_at),
                finished_at: from_unix(finished_at),
                status,
                counts,
            });
        }
        Ok(out)
    }

    // --- plans ------------------------------------------------------------------------------------

    /// Records a plan together with its full JSON (for `cw plan show` / `cw apply <hash>`).
    /// Same record and same JSON again is a no-op; a record stored without JSON gets it.
    pub fn record_plan(&self, record: PlanRecord, plan: &Value) -> Result<(), PlanStoreError> {
        self.record_inner(record, Some(plan))
    }

    /// The plan JSON stored with [`StateStore::record_plan`].
    pub fn plan_json(&self, plan_hash: &Digest) -> Result<Option<Value>, StateError> {
        let conn = self.lock()?;
        let json: Option<Option<String>> = conn
            .query_row("SELECT plan FROM plans WHERE plan_hash = ?1", params![plan_hash.to_string()], |row| row.get(0))
            .optional()
            .map_err(self.err("read plan"))?;
        json.flatten().map(|json| serde_json::from_str(&json).map_err(|e| self.decode_err("plan json", e))).transpose()
    }

    fn record_inner(&self, record: PlanRecord, plan: Option<&Value>) -> Result<(), PlanStoreError> {
        let plan_json = plan
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| PlanStoreError::Backend { message: format!("plan json: {e}") })?;
        let snapshots = serde_json::to_string(&record.source_snapshots)
            .map_err(|e| PlanStoreError::Backend { message: format!("plan source snapshots: {e}") })?;
        let now = self.now_unix();
        let hash = record.plan_hash.to_string();
        self.write("record plan", |tx| {
            let err = self.err("record plan");
            let existing = self.load_plan(tx, &record.plan_hash)?;
            match existing {
                Some((stored, _)) if stored != record => {
                    Ok(Err(PlanStoreError::Conflict { plan_hash: record.plan_hash }))
                }
                Some((_, stored_json)) => match (stored_json, plan_json) {
                    (Some(stored), Some(given)) if stored != given => {
                        Ok(Err(PlanStoreError::Conflict { plan_hash: record.plan_hash }))
                    }
                    (None, Some(given)) => {
                        tx.execute(
                            "UPDATE plans SET plan = ?2, updated_at = ?3 WHERE plan_hash = ?1",
                            params![hash, given, now],
                        )
                        .map_err(&err)?;
                        Ok(Ok(()))
                    }
                    _ => Ok(Ok(())),
                },
                None => {
                    let (state, status) = plan_state_columns(record.state);
                    tx.execute(
                        "INSERT INTO plans (plan_hash, scope_id, source_snapshots, requires_approval, approval, state,
                                            status, plan, recorded_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                        params![
                            hash,
                            record.scope_id.as_str(),
                            snapshots,
                            record.requires_approval,
                            record.approval_witness_hash.map(|d| d.to_string()),
                            state,
                            status,
                            plan_json,
                            now
                        ],
                    )
                    .map_err(&err)?;
                    Ok(Ok(()))
                }
            }
        })?
    }

    fn load_plan(
        &self,
        conn: &Connection,
        plan_hash: &Digest,
    ) -> Result<Option<(PlanRecord, Option<String>)>, StateError> {
        type Row = (String, String, bool, Option<String>, String, Option<String>, Option<String>);
        let row: Option<Row> = conn
            .query_row(
                "SELECT scope_id, source_snapshots, requires_approval, approval, state, status, plan
                 FROM plans WHERE plan_hash = ?1",
                params![plan_hash.to_string()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)),
            )
            .optional()
            .map_err(self.err("read plan"))?;
        let Some((scope_id, snapshots, requires_approval, approval, state, status, plan)) = row else {
            return Ok(None);
        };
        let source_snapshots: BTreeMap<String, Digest> =
            serde_json::from_str(&snapshots).map_err(|e| self.decode_err("plan source snapshots", e))?;
        let approval_witness_hash =
            approval.map(|a| a.parse::<Digest>()).transpose().map_err(|e| self.decode_err("plan approval", e))?;
        let state = parse_plan_state(&state, status.as_deref())
            .ok_or_else(|| self.decode_err("plan state", format!("`{state}` / {status:?}")))?;
        let record = PlanRecord {
            plan_hash: *plan_hash,
            scope_id: ScopeId::new(scope_id),
            source_snapshots,
            requires_approval,
            approval_witness_hash,
            state,
        };
        Ok(Some((record, plan)))
    }
}

impl PlanStore for StateStore {
    fn record(&self, record: PlanRecord) -> Result<(), PlanStoreError> {
        self.record_inner(record, None)
    }

    fn approve(&self, plan_hash: &Digest, approval_witness_hash: Digest) -> Result<(), PlanStoreError> {
        let now = self.now_unix();
        self.write("approve plan", |tx| {
            let changed = tx
                .execute(
                    "UPDATE plans SET approval = ?2, updated_at = ?3 WHERE plan_hash = ?1",
                    params![plan_hash.to_string(), approval_witness_hash.to_string(), now],
                )
                .map_err(self.err("approve plan"))?;
            Ok(if changed == 0 { Err(PlanStoreError::NotRecorded { plan_hash: *plan_hash }) } else { Ok(()) })
        })?
    }

    fn claim(&self, plan_ref: &PlanRef, live_snapshots: &BTreeMap<String, Digest>) -> Result<PlanRecord, ClaimError> {
        let now = self.now_unix();
        let claimed = self.write("claim plan", |tx| {
            let stored = self.load_plan(tx, &plan_ref.plan_hash)?.map(|(record, _)| record);
            if let Err(refusal) = authorize(stored.as_ref(), plan_ref, live_snapshots) {
                return Ok(Err(ClaimError::from(refusal)));
            }
            let Some(mut record) = stored else {
                return Ok(Err(ClaimError::Store(PlanStoreError::NotRecorded { plan_hash: plan_ref.plan_hash })));
            };
            tx.execute(
                "UPDATE plans SET state = 'executing', status = NULL, updated_at = ?2 WHERE plan_hash = ?1",
                params![plan_ref.plan_hash.to_string(), now],
            )
            .map_err(self.err("claim plan"))?;
            record.state = PlanState::Executing;
            Ok(Ok(record))
        });
        claimed.map_err(|e| ClaimError::Store(e.into()))?
    }

    fn finish(&self, plan_hash: &Digest, status: ExecutionStatus) -> Result<(), PlanStoreError> {
        let now = self.now_unix();
        self.write("finish plan", |tx| {
            let changed = tx
                .execute(
                    "UPDATE plans SET state = 'executed', status = ?2, updated_at = ?3 WHERE plan_hash = ?1",
                    params![plan_hash.to_string(), execution_status_str(status), now],
                )
                .map_err(self.err("finish plan"))?;
            Ok(if changed == 0 { Err(PlanStoreError::NotRecorded { plan_hash: *plan_hash }) } else { Ok(()) })
        })?
    }

    fn get(&self, plan_hash: &Digest) -> Result<Option<PlanRecord>, PlanStoreError> {
        let conn = self.lock()?;
        Ok(self.load_plan(&conn, plan_hash)?.map(|(record, _)| record))
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let err = |context: &'static str| move |e: rusqlite::Error| sqlite_error(path, context, e);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err("begin migration"))?;
    let application_id: i64 =
        tx.query_row("PRAGMA application_id", [], |row| row.get(0)).map_err(err("read application_id"))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(err("read user_version"))?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(StateError::NotADatabase {
            path: path.to_path_buf(),
            message: format!("an SQLite database of another program (application_id {application_id:#x})"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StateError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    if version == 0 {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", [], |row| row.get(0))
            .map_err(err("read schema"))?;
        if tables > 0 {
            return Err(StateError::NotADatabase {
                path: path.to_path_buf(),
                message: "an SQLite database of another program (it has tables but no cw schema version)".to_owned(),
            });
        }
    }
    let start = usize::try_from(version).unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(migration).map_err(err("migrate schema"))?;
    }
    if version != SCHEMA_VERSION || application_id != APPLICATION_ID {
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(err("set application_id"))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(err("set user_version"))?;
    }
    tx.commit().map_err(err("commit migration"))
}

fn prune_tombstones(tx: &Transaction<'_>, now: i64, ttl: time::Duration) -> rusqlite::Result<usize> {
    let cutoff = now.saturating_sub(ttl.whole_seconds());
    tx.execute("DELETE FROM tombstones WHERE created_at <= ?1", params![cutoff])
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn execution_status_str(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Complete => "complete",
        ExecutionStatus::Partial => "partial",
        ExecutionStatus::Failed => "failed",
        ExecutionStatus::RolledBack => "rolled_back",
    }
}

fn plan_state_columns(state: PlanState) -> (&'static str, Option<&'static str>) {
    match state {
        PlanState::Pending => ("pending", None),
        PlanState::Executing => ("executing", None),
        PlanState::Executed(status) => ("executed", Some(execution_status_str(status))),
    }
}

fn parse_plan_state(state: &str, status: Option<&str>) -> Option<PlanState> {
    match (state, status) {
        ("pending", None) => Some(PlanState::Pending),
        ("executing", None) => Some(PlanState::Executing),
        ("executed", Some(status)) => {
            [ExecutionStatus::Complete, ExecutionStatus::Partial, ExecutionStatus::Failed, ExecutionStatus::RolledBack]
                .into_iter()
                .find(|s| execution_status_str(*s) == status)
                .map(PlanState::Executed)
        }
        _ => None,
    }
}

/// Where state lives when neither `--state` nor `state_dir` says: the platform's data
/// directory plus `cw` — `$XDG_DATA_HOME/cw` or `~/.local/share/cw` (Linux and other Unix),
/// `~/Library/Application Support/cw` (macOS), `%LOCALAPPDATA%\cw` or `%APPDATA%\cw` (Windows).
///
/// `env` reads an environment variable (pass `|k| std::env::var_os(k)`).
pub fn platform_data_dir(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, StateError> {
    let absolute = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = if cfg!(windows) {
        absolute("LOCALAPPDATA").or_else(|| absolute("APPDATA"))
    } else if cfg!(target_os = "macos") {
        absolute("HOME").map(|home| home.join("Library").join("Application Support"))
    } else {
        absolute("XDG_DATA_HOME").or_else(|| absolute("HOME").map(|home| home.join(".local").join("share")))
    };
    base.map(|base| base.join("cw")).ok_or(StateError::NoStateDir)
}

/// The state directory, by precedence: `--state`, then the config's `state_dir` (already
/// resolved against the config file's directory), then [`platform_data_dir`].
pub fn resolve_state_dir(
    cli: Option<&Path>,
    config: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, StateError> {
    match cli.or(config) {
        Some(dir) => Ok(dir.to_path_buf()),
        None => platform_data_dir(env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_state_columns_round_trip() {
        for state in [
            PlanState::Pending,
            PlanState::Executing,
            PlanState::Executed(ExecutionStatus::Complete),
            PlanState::Executed(ExecutionStatus::Partial),
            PlanState::Executed(ExecutionStatus::Failed),
            PlanState::Executed(ExecutionStatus::RolledBack),
        ] {
            let (s, status) = plan_state_columns(state);
            assert_eq!(parse_plan_state(s, status), Some(state));
        }
        assert_eq!(parse_plan_state("executed", None), None);
    }

    #[test]
    fn state_dir_precedence() {
        let env = |k: &str| match k {
            "HOME" => Some(OsString::from("/home/u")),
            _ => None,
        };
        assert_eq!(
            resolve_state_dir(Some(Path::new("/cli")), Some(Path::new("/cfg")), env).unwrap(),
            Path::new("/cli")
        );
        assert_eq!(resolve_state_dir(None, Some(Path::new("/cfg")), env).unwrap(), Path::new("/cfg"));
        let platform = resolve_state_dir(None, None, env).unwrap();
        assert!(platform.starts_with("/home/u") && platform.ends_with("cw"), "{}", platform.display());
        assert_eq!(resolve_state_dir(None, None, |_| None), Err(StateError::NoStateDir));
    }
}
