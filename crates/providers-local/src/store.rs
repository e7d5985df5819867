//! The SQLite side of `local`: the schema (versioned with `PRAGMA user_version`, created on
//! first open), checkpoints, and the statements of each operation. Every write runs in one
//! `BEGIN IMMEDIATE` transaction, so a crash leaves the old state or the new one; the database
//! is in WAL mode with `synchronous = NORMAL` (a commit survives a process crash; the last
//! commits before a power loss may roll back, never half-apply).

use std::path::Path;
use std::time::Duration;

use pal::inventory::{Activities, Feature, Ids, InventoryItem};
use pal::keys;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The schema version this build reads and writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// How long a call waits for another connection's write lock before failing (retryably).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where checkpoints come from: the wall clock, replaceable for tests and embedding.
pub type Clock = fn() -> OffsetDateTime;

/// Schema version 1.
///
/// - `items`: one row per entry. `key` is `pal::keys::canonical_key` of the normalised item;
///   `play` is the play's normalised `watched_at` for history and `''` otherwise, so
///   `UNIQUE (feature, key, play)` makes one entry per key — and, for history, one row per
///   play `<key>@<watched_at>`: a play is never stored twice, whichever connection adds it.
/// - `tokens`: the strong tokens (`pal::keys::strong_tokens`) of each entry, so an item keyed
///   differently (an IMDb id where the entry has a TMDB id) still finds its entry.
/// - `checkpoints`: per feature, an RFC 3339 UTC time that advances on every write that
///   changes the feature.
const SCHEMA: &str = "
CREATE TABLE items (
    id      INTEGER PRIMARY KEY,
    feature TEXT NOT NULL,
    key     TEXT NOT NULL,
    play    TEXT NOT NULL DEFAULT '',
    item    TEXT NOT NULL,
    UNIQUE (feature, key, play)
);
CREATE TABLE tokens (
    item_id INTEGER NOT NULL,
    feature TEXT NOT NULL,
    token   TEXT NOT NULL,
    PRIMARY KEY (item_id, token)
) WITHOUT ROWID;
CREATE INDEX tokens_by_token ON tokens (feature, token);
CREATE TABLE checkpoints (
    feature TEXT PRIMARY KEY,
    at      TEXT NOT NULL
) WITHOUT ROWID;
";

/// Why a database could not be opened as a local library.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// SQLite refused (not a database, unreadable, locked…).
    Sqlite(rusqlite::Error),
    /// An SQLite database, but not one this build can use.
    Incompatible(String),
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(error: rusqlite::Error) -> Self {
        OpenFailure::Sqlite(error)
    }
}

/// Opens (creating it on first use) the library at `path`: WAL, `synchronous = NORMAL`, busy
/// timeout, schema created or checked.
pub(crate) fn open(path: &Path, clock: Clock) -> Result<Connection, OpenFailure> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The first statement that reads the file: a non-SQLite file fails here ("file is not a
    // database"). In-memory databases answer `memory`; files answer `wal`.
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // SQLite's default page cache (2 MiB) holds the indexes of a library of a few thousand
    // titles; a write to a larger one would read its index pages back from the OS page after
    // page. The cache grows only as pages are used.
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    migrate(&mut conn, clock)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, clock: Clock) -> Result<(), OpenFailure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            let tables: i64 =
                tx.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
            if tables > 0 {
                return Err(OpenFailure::Incompatible(format!(
                    "an SQLite database with {tables} table(s) but no schema version: not a cw local library \
                     (refusing to add tables to another program's database)"
                )));
            }
            tx.execute_batch(SCHEMA)?;
            let now = format_instant(truncate(clock()));
            for feature in Feature::ALL {
                tx.execute("INSERT INTO checkpoints (feature, at) VALUES (?1, ?2)", params![feature.as_str(), now])?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        newer if newer > SCHEMA_VERSION => Err(OpenFailure::Incompatible(format!(
            "schema version {newer} is newer than this build supports ({SCHEMA_VERSION}); use a newer cw"
        ))),
        other => Err(OpenFailure::Incompatible(format!("schema version {other} is not a cw local library version"))),
    }
}

/// Health: the schema version and the items table answer.
pub(crate) fn probe(conn: &Connection) -> Result<u64, String> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(|e| e.to_string())?;
    if version != SCHEMA_VERSION {
        return Err(format!("schema version {version}, expected {SCHEMA_VERSION}"));
    }
    let count: i64 = conn.query_row("SELECT count(*) FROM items", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    Ok(u64::try_from(count).unwrap_or_default())
}

// -------------------------------------------------------------------------------------------
// Instants

fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_nanosecond(0).unwrap_or(at)
}

fn format_instant(at: OffsetDateTime) -> String {
    // RFC 3339 formatting of a UTC time in years 0–9999 cannot fail; the fallback is unreachable.
    at.format(&Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The next checkpoint of a feature: the later of now (to the second) and the previous one plus
/// one second, RFC 3339 in UTC. Checkpoints therefore strictly advance on every change, even
/// when the clock stands still or steps back.
///
/// ```
/// use providers_local::store::next_checkpoint;
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// assert_eq!(next_checkpoint(None, now), "1970-01-01T00:00:00Z");
/// assert_eq!(next_checkpoint(Some("2024-01-01T00:00:00Z"), now), "2024-01-01T00:00:01Z");
/// ```
pub fn next_checkpoint(previous: Option<&str>, now: OffsetDateTime) -> String {
    let now = truncate(now);
    let after_previous =
        previous.and_then(|p| OffsetDateTime::parse(p, &Rfc3339).ok()).map(|p| truncate(p) + time::Duration::SECOND);
    format_instant(after_previous.map_or(now, |p| p.max(now)))
}

/// A play's identity: its `watched_at` as RFC 3339 UTC (so `+00:00` and `Z` spellings of one
/// instant are one play), the trimmed text when it is not RFC 3339, `''` when absent.
///
/// ```
/// use providers_local::store::play_of;
/// assert_eq!(play_of(Some("2024-05-01T22:00:00+02:00")), "2024-05-01T20:00:00Z");
/// assert_eq!(play_of(Some(" yesterday ")), "yesterday");
/// assert_eq!(play_of(None), "");
/// ```
pub fn play_of(watched_at: Option<&str>) -> String {
    match watched_at.map(str::trim) {
        None => String::new(),
        Some(text) => match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(at) => format_instant(at.to_offset(UtcOffset::UTC)),
            Err(_) => text.to_owned(),
        },
    }
}

// -------------------------------------------------------------------------------------------
// Entries

/// A normalised item ready to be stored or looked up.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The normalised item.
    pub item: InventoryItem,
    /// Its canonical key.
    pub key: String,
    /// History: its play ([`play_of`]); otherwise `''`.
    pub play: String,
}

impl Entry {
    /// The entry of an item already normalised ([`keys::normalize_item`]).
    pub(crate) fn new(feature: Feature, item: InventoryItem) -> Self {
        let key = keys::canonical_key_of_normalized(&item);
        let play = if feature == Feature::History { play_of(item.watched_at.as_deref()) } else { String::new() };
        Entry { item, key, play }
    }
}

fn to_json(item: &InventoryItem) -> rusqlite::Result<String> {
    serde_json::to_string(item).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json(id: i64, json: &str) -> rusqlite::Result<InventoryItem> {
    serde_json::from_str(json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("row {id} of the items table is not a valid item: {e}").into(),
        )
    })
}

/// The items of a feature, in insertion order.
pub(crate) fn items(conn: &Connection, feature: Feature) -> rusqlite::Result<Vec<InventoryItem>> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM items WHERE feature = ?1")?
        .query_row([feature.as_str()], |row| row.get(0))?;
    let count = usize::try_from(count).unwrap_or(0);
    // A scan in row order: through the (feature, key) index it would be a lookup per row and a sort.
    let mut statement = conn.prepare_cached("SELECT id, item FROM items NOT INDEXED WHERE feature = ?1 ORDER BY id")?;
    let mut rows = statement.query([feature.as_str()])?;
    if count < PARALLEL_ROWS {
        let mut items = Vec::with_capacity(count);
        while let Some(row) = rows.next()? {
            // Parsed where SQLite holds the text, without a copy of it.
            let (id, text) = row_json(row)?;
            items.push(from_json(id, text)?);
        }
        return Ok(items);
    }
    parse_in_parallel(count, || {
        let Some(row) = rows.next()? else { return Ok(None) };
        let (id, text) = row_json(row)?;
        Ok(Some((id, text.to_owned())))
    })
}

/// The items of the rows `next_row` gives (about `count` of them: a write since they were
/// counted may have added or removed some), in order.
///
/// Parsing the rows costs about three times reading them: this thread reads the rows in
/// batches and parses one batch in three, a second thread parses the others. Each batch is
/// parsed straight into its place in the result (no second vector of a million items to copy
/// them into); rows beyond `count` go to `more`.
fn parse_in_parallel(
    count: usize,
    mut next_row: impl FnMut() -> rusqlite::Result<Option<(i64, String)>>,
) -> rusqlite::Result<Vec<InventoryItem>> {
    let mut items: Vec<InventoryItem> = Vec::new();
    items.resize_with(count, InventoryItem::default);
    let mut read = 0usize;
    let more = std::thread::scope(|scope| -> rusqlite::Result<Vec<InventoryItem>> {
        type Job<'a> = (&'a mut [InventoryItem], Vec<(i64, String)>);
        let (to_parser, jobs) = std::sync::mpsc::sync_channel::<Job<'_>>(2);
        let parser = scope.spawn(move || -> rusqlite::Result<()> {
            jobs.into_iter().try_for_each(|(slots, batch)| parse_rows_into(slots, batch))
        });
        let mut places = items.chunks_mut(ROW_BATCH);
        let mut more = Vec::new();
        let mut batch = Vec::with_capacity(ROW_BATCH);
        let mut next = 0usize;
        let mut hand_over = |batch: Vec<(i64, String)>, more: &mut Vec<InventoryItem>| {
            let Some(slots) = places.next() else {
                more.extend(parse_rows(batch)?);
                return Ok(());
            };
            next += 1;
            if next.is_multiple_of(3) {
                parse_rows_into(slots, batch)
            } else if let Err(unsent) = to_parser.send((slots, batch)) {
                // The parser stopped on an error of its own, reported below; parse here.
                let (slots, batch) = unsent.0;
                parse_rows_into(slots, batch)
            } else {
                Ok::<(), rusqlite::Error>(())
            }
        };
        while let Some(row) = next_row()? {
            batch.push(row);
            read += 1;
            // Batches line up with the places (`ROW_BATCH` each) until the count is reached.
            if batch.len() == ROW_BATCH || read == count {
                hand_over(std::mem::replace(&mut batch, Vec::with_capacity(ROW_BATCH)), &mut more)?;
            }
        }
        if !batch.is_empty() {
            hand_over(batch, &mut more)?;
        }
        // Closing the channel ends the parser's loop.
        drop(to_parser);
        parser.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(more)
    })?;
    // Fewer rows than counted (a delete since): the places never filled go.
    items.truncate(read.min(count));
    items.extend(more);
    Ok(items)
}

/// The id and item text of a row of `items`.
fn row_json<'r>(row: &'r rusqlite::Row<'_>) -> rusqlite::Result<(i64, &'r str)> {
    let json = row
        .get_ref(1)?
        .as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok((row.get(0)?, json))
}

/// Below this many rows a feature is read and parsed on one thread.
const PARALLEL_ROWS: usize = 50_000;

/// Rows handed to the parsing thread at a time.
const ROW_BATCH: usize = 4096;

/// Parses `rows` into `slots`, one for one (a batch never has more rows than its places).
fn parse_rows_into(slots: &mut [InventoryItem], rows: Vec<(i64, String)>) -> rusqlite::Result<()> {
    for (slot, (id, json)) in slots.iter_mut().zip(rows) {
        *slot = from_json(id, &json)?;
    }
    Ok(())
}

fn parse_rows(rows: Vec<(i64, String)>) -> rusqlite::Result<Vec<InventoryItem>> {
    // Sized once: collecting a `Result` has no size hint and would grow the vector by doubling.
    let mut items = Vec::with_capacity(rows.len());
    for (id, json) in rows {
        items.push(from_json(id, &json)?);
    }
    Ok(items)
}

/// Every feature's checkpoint, plus `updated_at` (the latest).
pub(crate) fn activities(conn: &Connection) -> rusqlite::Result<Activities> {
    let mut statement = conn.prepare_cached("SELECT feature, at FROM checkpoints ORDER BY feature")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    let mut activities = Activities::new();
    for row in rows {
        let (feature, at) = row?;
        if feature.parse::<Feature>().is_ok() {
            activities.insert(feature, at);
        }
    }
    if let Some(latest) = activities.values().max().cloned() {
        activities.insert("updated_at".to_owned(), latest);
    }
    Ok(activities)
}

/// Rows of `feature` matching `entry`: the same key, or a shared strong token; with `play`,
/// only rows of that play (history).
///
/// Two statements, whatever the number of tokens (they go in as a JSON array), each a walk of
/// an index with no temporary table: a write touches a handful of rows, and statements are
/// most of its cost.
fn matching(
    tx: &Transaction<'_>,
    feature: Feature,
    entry: &Entry,
    play: Option<&str>,
    tokens: &str,
) -> rusqlite::Result<Vec<i64>> {
    let mut ids: Vec<i64> = tx
        .prepare_cached("SELECT id FROM items WHERE feature = ?1 AND key = ?2 AND (?3 IS NULL OR play = ?3)")?
        .query_map(params![feature.as_str(), entry.key, play], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let by_token = tx
        .prepare_cached(
            // CROSS JOIN fixes the order: each token, then its index entries (SQLite would
            // otherwise walk every token of the feature).
            "SELECT t.item_id FROM json_each(?2) j \
             CROSS JOIN tokens t ON t.feature = ?1 AND t.token = j.value \
             CROSS JOIN items i ON i.id = t.item_id \
             WHERE ?3 IS NULL OR i.play = ?3",
        )?
        .query_map(params![feature.as_str(), tokens, play], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    ids.extend(by_token);
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The strong tokens of a normalised item, as the JSON array [`matching`] and
/// [`write_tokens`] take.
fn tokens_json(item: &InventoryItem) -> rusqlite::Result<String> {
    serde_json::to_string(&keys::strong_tokens_of_normalized(item))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Sets the tokens of row `id` (`fresh`: a row just inserted, which has none).
fn write_tokens(tx: &Transaction<'_>, feature: Feature, id: i64, tokens: &str, fresh: bool) -> rusqlite::Result<()> {
    if !fresh {
        tx.prepare_cached("DELETE FROM tokens WHERE item_id = ?1")?.execute([id])?;
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO tokens (item_id, feature, token) SELECT ?1, ?2, value FROM json_each(?3)",
    )?
    .execute(params![id, feature.as_str(), tokens])?;
    Ok(())
}

/// `new` with the ids (and show ids) of `old` it lacks: an upsert replaces the entry but never
/// forgets an id.
fn merged(old: &InventoryItem, new: &InventoryItem) -> InventoryItem {
    let mut item = new.clone();
    item.ids = Ids::first_wins(new.ids.iter().chain(old.ids.iter()).collect());
    if let Some(old_show) = &old.show_ids {
        let show = new.show_ids.iter().flat_map(Ids::iter).chain(old_show.iter());
        item.show_ids = Some(Ids::first_wins(show.collect()));
    }
    item
}

/// Upserts one entry; returns whether the library changed. The entry it replaces is the first
/// row with its key and play, else the first row of its play sharing a strong token; a new row
/// is inserted otherwise (`UNIQUE (feature, key, play)` makes a concurrent duplicate fail
/// instead of storing a second play).
pub(crate) fn put(tx: &Transaction<'_>, feature: Feature, entry: &Entry) -> rusqlite::Result<bool> {
    let tokens = tokens_json(&entry.item)?;
    let existing = matching(tx, feature, entry, Some(&entry.play), &tokens)?.into_iter().next();
    let Some(id) = existing else {
        let json = to_json(&entry.item)?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO items (feature, key, play, item) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (feature, key, play) DO NOTHING",
            )?
            .execute(params![feature.as_str(), entry.key, entry.play, json])?;
        if inserted == 0 {
            return Ok(false);
        }
        write_tokens(tx, feature, tx.last_insert_rowid(), &tokens, true)?;
        return Ok(true);
    };
    let (old_key, old_json): (String, String) = tx
        .prepare_cached("SELECT key, item FROM items WHERE id = ?1")?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let item = merged(&from_json(id, &old_json)?, &entry.item);
    let json = to_json(&item)?;
    // Re-key to the merged item's canonical key unless another entry already holds it.
    let new_key = keys::canonical_key_of_normalized(&item);
    let taken = new_key != old_key
        && tx
            .prepare_cached("SELECT id FROM items WHERE feature = ?1 AND key = ?2 AND play = ?3 AND id != ?4")?
            .query_row(params![feature.as_str(), new_key, entry.play, id], |row| row.get::<_, i64>(0))
            .optional()?
            .is_some();
    let key = if taken { old_key.clone() } else { new_key };
    if json == old_json && key == old_key {
        return Ok(false);
    }
    tx.prepare_cached("UPDATE items SET key = ?1, item = ?2 WHERE id = ?3")?.execute(params![key, json, id])?;
    write_tokens(tx, feature, id, &tokens_json(&item)?, false)?;
    Ok(true)
}

/// Deletes the rows matching `entry` (history with a `watched_at`: only that play; without:
/// every play of the item); returns how many.
pub(crate) fn delete(tx: &Transaction<'_>, feature: Feature, entry: &Entry, any_play: bool) -> rusqlite::Result<usize> {
    let play = (!any_play).then_some(entry.play.as_str());
    let ids = matching(tx, feature, entry, play, &tokens_json(&entry.item)?)?;
    for id in &ids {
        tx.prepare_cached("DELETE FROM items WHERE id = ?1")?.execute([id])?;
        tx.prepare_cached("DELETE FROM tokens WHERE item_id = ?1")?.execute([id])?;
    }
    Ok(ids.len())
}

/// Advances the feature's checkpoint ([`next_checkpoint`]).
pub(crate) fn advance(tx: &Transaction<'_>, feature: Feature, clock: Clock) -> rusqlite::Result<()> {
    let previous: Option<String> = tx
        .prepare_cached("SELECT at FROM checkpoints WHERE feature = ?1")?
        .query_row([feature.as_str()], |row| row.get(0))
        .optional()?;
    let at = next_checkpoint(previous.as_deref(), clock());
    tx.prepare_cached(
        "INSERT INTO checkpoints (feature, at) VALUES (?1, ?2) ON CONFLICT (feature) DO UPDATE SET at = excluded.at",
    )?
    .execute(params![feature.as_str(), at])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `n` rows of items titled by their position.
    fn rows(n: usize) -> impl FnMut() -> rusqlite::Result<Option<(i64, String)>> {
        let mut at = 0usize;
        move || {
            at += 1;
            Ok((at <= n).then(|| (at as i64, format!(r#"{{"title": "t{}", "ids": {{"tmdb": "{at}"}}}}"#, at - 1))))
        }
    }

    fn titles(items: &[InventoryItem]) -> Vec<String> {
        items.iter().map(|item| item.title.clone().unwrap()).collect()
    }

    /// Whatever the count said, every row comes back once, in order: rows written after the
    /// count are added, rows deleted since leave no empty item behind.
    #[test]
    fn rows_parsed_in_parallel_come_back_in_order_whatever_the_count() {
        let n = 3 * ROW_BATCH + 17;
        let expected: Vec<String> = (0..n).map(|at| format!("t{at}")).collect();
        for count in [n, n - 17, n - ROW_BATCH - 5, n + 1, n + ROW_BATCH, 2 * n, 1] {
            let items = parse_in_parallel(count, rows(n)).unwrap();
            assert_eq!(titles(&items), expected, "count {count}");
        }
    }

    #[test]
    fn a_bad_row_parsed_in_parallel_is_an_error_naming_it() {
        for bad in [2, ROW_BATCH + 3, 2 * ROW_BATCH + 1, 3 * ROW_BATCH + 2] {
            let mut good = rows(3 * ROW_BATCH + 17);
            let mut at = 0;
            let next = move || {
                at += 1;
                let row = good()?;
                Ok(if at == bad { row.map(|(id, _)| (id, "{\"title\": 7}".to_owned())) } else { row })
            };
            let error = parse_in_parallel(3 * ROW_BATCH, next).unwrap_err();
            assert!(error.to_string().contains(&format!("row {bad} ")), "{error}");
        }
    }
}
