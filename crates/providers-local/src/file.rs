//! `file`: a read-only inventory of one feature, read from a file — a JSON list of items or an
//! IMDb CSV export ([`crate::imdb`]). The file is read and checked when the adapter is built
//! (a bad file is a config error naming file, line and field), and read again by every
//! `build_index` and `health`, so edits show up without a reload. Writes are refused as
//! unsupported: the file is never written.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use admit_core::{Digest, DigestAlgorithm, ErrorClass, ErrorCode, ProviderError, ProviderPhase};
use compact_str::CompactString;
use pal::inventory::{
    Feature, Features, IndexSemantics, InventoryCapabilities, InventoryItem, InventoryProvider, WriteResult,
};
use pal::{Capability, HealthReport, HealthStatus, async_trait, keys};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::imdb::{self, CsvKind};

/// The error scope of `file`.
pub const SCOPE: &str = "inventory/file";

/// Files larger than this are refused: a bound on what a hostile or mistaken path can make cw
/// read into memory. A library of a million titles exports to about 150 MB of JSON.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// How to read the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// JSON when the first character (after a BOM and whitespace) is `[` or `{`, else IMDb CSV.
    #[default]
    Auto,
    /// An array of items, or an object `{key: item}` (keys are ignored: items are keyed by their
    /// ids).
    Json,
    /// An IMDb CSV export: the ratings export or a list/watchlist export.
    ImdbCsv,
}

/// Settings of `file`.
///
/// ```
/// use providers_local::{FileFormat, FileSettings};
/// let settings: FileSettings =
///     serde_json::from_value(serde_json::json!({"path": "ratings.csv", "format": "imdb_csv"})).unwrap();
/// assert_eq!(settings.format, FileFormat::ImdbCsv);
/// assert_eq!(settings.feature, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// The file. A relative path is relative to the working directory of the process.
    pub path: PathBuf,
    /// `auto` (default), `json` or `imdb_csv`.
    #[serde(default)]
    pub format: FileFormat,
    /// The one feature the file holds. Default: `ratings` for an IMDb ratings export,
    /// `watchlist` for an IMDb list export and for JSON.
    #[serde(default)]
    pub feature: Option<Feature>,
    /// The provider name in config and state (default `FILE`): `[A-Za-z0-9_.-]+`.
    #[serde(default)]
    pub name: Option<String>,
    /// The human-readable name (default `File <file name>`).
    #[serde(default)]
    pub label: Option<String>,
}

/// A file that cannot be used, naming the file and, when known, the line, column and field.
///
/// ```
/// use providers_local::FileError;
/// let error = FileError::at("ratings.csv".as_ref(), Some(3), None, Some("Your Rating"), "`eleven` is not a rating");
/// assert_eq!(error.to_string(), "ratings.csv:3: Your Rating: `eleven` is not a rating");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// The line (1-based), when the problem has one.
    pub line: Option<u64>,
    /// The column (1-based), when known.
    pub column: Option<u64>,
    /// The column name (CSV) or item path (JSON, e.g. `[3].rating`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The file could not be read at all (missing, unreadable), rather than read and refused.
    pub unreadable: bool,
}

impl FileError {
    /// An error about `path`.
    pub fn at(
        path: &Path,
        line: Option<u64>,
        column: Option<u64>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        FileError {
            path: path.to_owned(),
            line,
            column,
            field: field.map(str::to_owned),
            message: message.into(),
            unreadable: false,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What the file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JSON items.
    Json,
    /// An IMDb CSV export.
    ImdbCsv(CsvKind),
}

/// Reads the file (bounded by [`MAX_FILE_BYTES`]) as UTF-8 text without its BOM.
fn read(path: &Path) -> Result<String, FileError> {
    let unreadable = |message: String| FileError { unreadable: true, ..FileError::at(path, None, None, None, message) };
    let size = std::fs::metadata(path).map_err(|e| unreadable(format!("cannot read: {e}")))?.len();
    if size > MAX_FILE_BYTES {
        return Err(FileError::at(
            path,
            None,
            None,
            None,
            format!("{size} bytes, larger than the {MAX_FILE_BYTES} bytes an inventory file may have"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() as u64 + 1;
        FileError::at(path, Some(line), None, None, "not UTF-8 text")
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// What tells two readings of the file apart without keeping its text.
fn text_digest(text: &str) -> Digest {
    DigestAlgorithm::Blake3.digest(text.as_bytes())
}

fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('[' | '{'))
}

/// Where an item stands in a JSON file, for errors: `[3]`, or the object key in quotes.
enum At<'a> {
    Index(usize),
    Key(&'a str),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Index(i) => write!(f, "[{i}]"),
            At::Key(key) => write!(f, "{}", Value::String((*key).to_owned())),
        }
    }
}

/// Why an item of a JSON file cannot be used: the field at fault (when one is) and what is wrong.
#[derive(Debug)]
struct Unusable {
    field: Option<&'static str>,
    message: String,
}

impl Unusable {
    fn error(self, path: &Path, at: At<'_>) -> FileError {
        let field = match self.field {
            Some(field) => format!("{at}.{field}"),
            None => at.to_string(),
        };
        FileError::at(path, None, None, Some(&field), self.message)
    }
}

/// The key repeated items of a file are found by ([`dedupe`]): made where the item is parsed,
/// so a large file's keys are made on every thread at once.
type ItemKey = CompactString;

/// Hands a normalised item to `map` with its canonical key, and keys it for `feature` (for
/// history, the canonical key and the play's time).
fn keyed<T>(
    feature: Feature,
    item: InventoryItem,
    map: &(impl Fn(Feature, InventoryItem, &str) -> T + ?Sized),
) -> (T, ItemKey) {
    let canonical_key = keys::canonical_key_of_normalized(&item);
    let play = (feature == Feature::History).then(|| crate::store::play_of(item.watched_at.as_deref()));
    let mapped = map(feature, item, &canonical_key);
    let mut key = CompactString::from(canonical_key);
    if let Some(play) = play {
        key.push('@');
        key.push_str(&play);
    }
    (mapped, key)
}

/// What `map` made of a file's items, in file order, and each item's key: in the runs the
/// parse threads made, so that putting them together is left to [`dedupe`], which moves each
/// item once.
struct Parsed<T> {
    runs: Vec<Run<T>>,
}

/// Items of a file in file order, and their keys.
struct Run<T> {
    items: Vec<T>,
    /// Each item's key; sorted by [`Run::sort_keys`].
    keys: Vec<RunKey>,
}

/// An item's key and where the item stands in its run, ordered by key, then position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RunKey {
    /// The key's first 16 bytes as two big-endian integers, zero-padded, compared before the
    /// key: nearly all keys differ there, and two integer comparisons cost far less than a
    /// string comparison. The order is the key's: where a key's bytes run out, the padding's
    /// zeros compare below any other byte, and equal heads leave it to the key.
    head: [u64; 2],
    key: ItemKey,
    at: usize,
}

impl RunKey {
    fn new(key: ItemKey, at: usize) -> RunKey {
        let mut bytes = [0; 16];
        let len = key.len().min(16);
        bytes[..len].copy_from_slice(&key.as_bytes()[..len]);
        let (high, low) = bytes.split_at(8);
        let word = |half: &[u8]| u64::from_be_bytes(half.try_into().unwrap_or_default());
        RunKey { head: [word(high), word(low)], key, at }
    }

    /// The order of the keys alone.
    fn cmp_key(&self, other: &RunKey) -> std::cmp::Ordering {
        self.head.cmp(&other.head).then_with(|| self.key.cmp(&other.key))
    }
}

impl<T> Run<T> {
    /// Sorts the keys by key, then position: done by the thread that parsed the run, while
    /// they are in its cache. Keys already sorted cost one pass.
    fn sort_keys(&mut self) {
        self.keys.sort_unstable();
    }
}

impl<T> Parsed<T> {
    fn with_capacity(capacity: usize) -> Parsed<T> {
        Parsed { runs: vec![Run { items: Vec::with_capacity(capacity), keys: Vec::with_capacity(capacity) }] }
    }

    /// Adds an item after the others.
    fn push(&mut self, (item, key): (T, ItemKey)) {
        match self.runs.last_mut() {
            Some(run) => {
                run.keys.push(RunKey::new(key, run.items.len()));
                run.items.push(item);
            }
            None => self.runs.push(Run { items: vec![item], keys: vec![RunKey::new(key, 0)] }),
        }
    }

    /// Adds `other`'s items after these (without moving them).
    fn append(&mut self, other: Parsed<T>) {
        self.runs.extend(other.runs);
    }

    fn len(&self) -> usize {
        self.runs.iter().map(|run| run.items.len()).sum()
    }

    fn sort_keys(&mut self) {
        self.runs.iter_mut().for_each(Run::sort_keys);
    }
}

/// Normalises a parsed JSON item, checks it for `feature` (an item needs ids or a title; a
/// rating, a rating from 1 to 10), and hands it to `map` ([`keyed`]).
fn finish_json<T>(
    feature: Feature,
    raw: InventoryItem,
    map: &(impl Fn(Feature, InventoryItem, &str) -> T + ?Sized),
) -> Result<(T, ItemKey), Unusable> {
    let item = keys::normalize_item_owned(raw);
    if item.ids.is_empty()
        && item.show_ids.as_ref().is_none_or(|ids| ids.is_empty())
        && item.title.as_deref().is_none_or(|t| t.trim().is_empty())
    {
        return Err(Unusable { field: None, message: "the item has no ids and no title".to_owned() });
    }
    if feature == Feature::Ratings && !item.rating.is_some_and(|r| (1..=10).contains(&r)) {
        let found = item.rating.map_or("none".to_owned(), |r| r.to_string());
        let message = format!("a rating must be an integer from 1 to 10 (found {found})");
        return Err(Unusable { field: Some("rating"), message });
    }
    Ok(keyed(feature, item, map))
}

/// The items of a JSON file for `feature`, each normalised, checked and mapped (see
/// [`finish_json`]), in file order; an object's items are in key order.
fn json_items<T: Send>(
    path: &Path,
    text: &str,
    feature: Feature,
    map: &(dyn Fn(Feature, InventoryItem, &str) -> T + Sync),
) -> Result<Parsed<T>, FileError> {
    let serde_error = |e: serde_json::Error| {
        let (line, column) = (e.line() as u64, e.column() as u64);
        FileError::at(path, (line > 0).then_some(line), (column > 0).then_some(column), None, e.to_string())
    };
    let finish = |raw: InventoryItem| finish_json(feature, raw, map);
    match text.trim_start().chars().next() {
        Some('[') => parse_array(text, &finish).map_err(|e| match e {
            ArrayError::Syntax(e) => serde_error(e),
            ArrayError::Unusable { index, unusable } => unusable.error(path, At::Index(index)),
        }),
        Some('{') => {
            let object = serde_json::from_str::<BTreeMap<String, InventoryItem>>(text).map_err(serde_error)?;
            let mut parsed = Parsed::with_capacity(object.len());
            for (key, raw) in object {
                parsed.push(finish(raw).map_err(|unusable| unusable.error(path, At::Key(&key)))?);
            }
            Ok(parsed)
        }
        _ => {
            let message = "expected JSON: an array of items or an object of items";
            Err(FileError::at(path, None, None, None, message))
        }
    }
}

/// Below this size a JSON array is parsed on one thread.
const PARALLEL_PARSE_BYTES: u64 = 1 << 20;

/// How much of a run a parse thread reads at a time ([`parse_run`]): a large file is read
/// straight into the parse, never held whole.
const RUN_WINDOW_BYTES: usize = 256 << 10;

/// Why a JSON array's items could not be read: the text is not an array of items, or the item
/// at `index` (the first such) is unusable.
#[derive(Debug)]
enum ArrayError {
    Syntax(serde_json::Error),
    Unusable { index: usize, unusable: Unusable },
}

/// Bytes read from any position: an inventory file, or its text already read.
trait Source: Sync {
    fn len(&self) -> u64;

    /// Reads into `buf` from `offset`: how many bytes were read (0 past the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = usize::try_from(offset).ok().and_then(|offset| self.get(offset..)).unwrap_or_default();
        let read = rest.len().min(buf.len());
        buf[..read].copy_from_slice(&rest[..read]);
        Ok(read)
    }
}

/// An open file and its length, read by every parse thread through the one handle.
struct FileSource {
    file: std::fs::File,
    len: u64,
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
    }

    /// Elsewhere a file is read whole ([`read`]).
    #[cfg(not(any(unix, windows)))]
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// The items of a JSON array's text, each passed through `finish`: a large array in runs
/// ([`parse_array_in_runs`]), else — or when the runs do not parse — on one thread, whose error
/// names the line and column.
fn parse_array<T: Send>(
    text: &str,
    finish: &(impl Fn(InventoryItem) -> Result<(T, ItemKey), Unusable> + Sync),
) -> Result<Parsed<T>, ArrayError> {
    if let Some(parsed) = parse_array_in_runs(text.as_bytes(), finish) {
        return parsed.map_err(|(index, unusable)| ArrayError::Unusable { index, unusable });
    }
    let raws = serde_json::from_str::<Vec<InventoryItem>>(text).map_err(ArrayError::Syntax)?;
    let mut parsed = Parsed::with_capacity(raws.len());
    for (index, raw) in raws.into_iter().enumerate() {
        parsed.push(finish(raw).map_err(|unusable| ArrayError::Unusable { index, unusable })?);
    }
    Ok(parsed)
}

/// The items of a large JSON array in `source`, each passed through `finish`: the array is cut
/// into runs of items ([`cut_array`]), each run read and parsed (and its items finished) by a
/// thread of its own, a window at a time ([`parse_run`]). The first unusable item in file order
/// is returned with its index. `None` when the array is small or cannot be cut, or when a run
/// does not parse (the text is not valid JSON, say): the caller parses the whole text then,
/// so that, as on one thread, a syntax error anywhere comes before an unusable item.
fn parse_array_in_runs<T: Send>(
    source: &(impl Source + ?Sized),
    finish: &(impl Fn(InventoryItem) -> Result<(T, ItemKey), Unusable> + Sync),
) -> Option<Result<Parsed<T>, (usize, Unusable)>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(4);
    if threads < 2 || source.len() < PARALLEL_PARSE_BYTES {
        return None;
    }
    let runs = cut_array(source, threads)?;
    let parts: Vec<serde_json::Result<Part<T>>> = std::thread::scope(|scope| {
        let parse_and_sort = |run| {
            let mut part = parse_run(source, run, RUN_WINDOW_BYTES, finish)?;
            part.parsed.sort_keys();
            Ok(part)
        };
        let handles: Vec<_> = runs.into_iter().map(|run| scope.spawn(move || parse_and_sort(run))).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let parts: Vec<Part<T>> = parts.into_iter().collect::<serde_json::Result<_>>().ok()?;
    let mut parsed = Parsed { runs: Vec::with_capacity(parts.len()) };
    for part in parts {
        if let Some((at, unusable)) = part.unusable {
            return Some(Err((parsed.len() + at, unusable)));
        }
        parsed.append(part.parsed);
    }
    Some(Ok(parsed))
}

/// A run's items, or after its first unusable item (where it stands in the run, and why) the
/// items before it: the rest of the run is still parsed, for its syntax.
struct Part<T> {
    parsed: Parsed<T>,
    unusable: Option<(usize, Unusable)>,
}

/// JSON's whitespace.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

fn is_json_whitespace(byte: u8) -> bool {
    JSON_WHITESPACE.contains(&char::from(byte))
}

/// How much of each end of a JSON array [`cut_array`] reads to find its brackets.
const ARRAY_ENDS_BYTES: usize = 4096;

/// Where the body of the JSON array in `source` — the text between its brackets, when nothing
/// but whitespace (and, first, a byte order mark) stands around them — is cut into about
/// `parts` runs: the runs' byte ranges, without the commas between them. `None` when the text
/// is not shaped like that, or cannot be read. Each cut is the first comma past the run's share
/// of the body that stands between `}` and `{` (whitespace aside), found without reading the
/// text before it: an array of items is cut between two of them. Such a comma can also stand
/// inside a string or a nested value; a run cut there ends inside that string or value, so it
/// never parses on its own ([`parse_run`]), and the caller parses the whole text instead.
fn cut_array(source: &(impl Source + ?Sized), parts: usize) -> Option<Vec<Range<u64>>> {
    let len = source.len();
    let end_len = ARRAY_ENDS_BYTES.min(usize::try_from(len).unwrap_or(usize::MAX));
    let (mut head, mut tail) = (vec![0; end_len], vec![0; end_len]);
    let head_len = read_full_at(source, 0, &mut head).ok()?;
    head.truncate(head_len);
    let bom = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let open = bom + head[bom..].iter().position(|byte| !is_json_whitespace(*byte))?;
    let body_start = (head[open] == b'[').then_some(open as u64 + 1)?;
    let tail_start = len - end_len as u64;
    let tail_len = read_full_at(source, tail_start, &mut tail).ok()?;
    tail.truncate(tail_len);
    let close = tail.iter().rposition(|byte| !is_json_whitespace(*byte))?;
    let body_end = (tail[close] == b']').then_some(tail_start + close as u64)?;
    if body_end < body_start {
        return None;
    }
    let share = (body_end - body_start) / parts as u64;
    let mut window = vec![0; RUN_WINDOW_BYTES];
    let mut runs = Vec::with_capacity(parts);
    let mut start = body_start;
    for part in 1..parts as u64 {
        let from = (body_start + share * part).max(start);
        let Some(cut) = find_cut(source, from..body_end, &mut window) else { break };
        runs.push(start..cut);
        start = cut + 1;
    }
    runs.push(start..body_end);
    Some(runs)
}

/// The first comma in `range` whose nearest neighbours in `range`, whitespace aside, are `}`
/// before it and `{` after it.
fn find_cut(source: &(impl Source + ?Sized), range: Range<u64>, window: &mut [u8]) -> Option<u64> {
    let mut before = None;
    let mut comma = None;
    let mut offset = range.start;
    while offset < range.end {
        let want = window.len().min(usize::try_from(range.end - offset).unwrap_or(usize::MAX));
        let read = source.read_at(offset, &mut window[..want]).ok().filter(|read| *read > 0)?;
        for (at, &byte) in (offset..).zip(&window[..read]) {
            if is_json_whitespace(byte) {
                continue;
            }
            if let Some(comma) = comma.take()
                && byte == b'{'
            {
                return Some(comma);
            }
            if byte == b',' && before == Some(b'}') {
                comma = Some(at);
            }
            before = Some(byte);
        }
        offset += read as u64;
    }
    None
}

/// Reads from `offset` until `buf` is full or the source ends: how many bytes were read.
fn read_full_at(source: &(impl Source + ?Sized), offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read_at(offset + filled as u64, &mut buf[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

/// The items of a run of [`cut_array`] (values separated by commas), read from `source`
/// `window` bytes at a time (more only for an item larger than that), each passed through
/// `finish` up to the first unusable one.
fn parse_run<T>(
    source: &(impl Source + ?Sized),
    run: Range<u64>,
    window: usize,
    finish: &impl Fn(InventoryItem) -> Result<(T, ItemKey), Unusable>,
) -> serde_json::Result<Part<T>> {
    use serde::de::Error as _;
    let mut part = Part { parsed: Parsed::with_capacity(0), unusable: None };
    let mut seen = 0;
    // `buf[..filled]` is read and not yet parsed.
    let mut buf = vec![0; window.max(1)];
    let mut filled = 0;
    let mut next_read = run.start;
    // Whether an item comes next (at the start, and after a comma) rather than a comma.
    let mut item_due = true;
    loop {
        let at_end = next_read == run.end;
        // The whole characters read: a window may end inside one.
        let text = match std::str::from_utf8(&buf[..filled]) {
            Ok(text) => text,
            Err(e) if e.error_len().is_none() && !at_end => {
                std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default()
            }
            Err(_) => return Err(serde_json::Error::custom("not UTF-8 text")),
        };
        let mut rest = text.trim_start_matches(JSON_WHITESPACE);
        while !rest.is_empty() {
            if !item_due {
                rest = rest.strip_prefix(',').ok_or_else(|| serde_json::Error::custom("expected `,`"))?;
                rest = rest.trim_start_matches(JSON_WHITESPACE);
                item_due = true;
                continue;
            }
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<InventoryItem>();
            let raw = match stream.next() {
                Some(Ok(raw)) => raw,
                // The item goes on past the window.
                Some(Err(e)) if e.is_eof() && !at_end => break,
                Some(Err(e)) => return Err(e),
                None => return Err(serde_json::Error::custom("expected an item")),
            };
            if seen == 0 {
                // Sized from the first item: grown by doubling, a large run's items would be
                // copied several times over into fresh memory.
                let capacity = (run.end - run.start) / stream.byte_offset().max(1) as u64 + 1;
                part.parsed = Parsed::with_capacity(usize::try_from(capacity).unwrap_or(0));
            }
            if part.unusable.is_none() {
                match finish(raw) {
                    Ok(finished) => part.parsed.push(finished),
                    Err(unusable) => part.unusable = Some((seen, unusable)),
                }
            }
            seen += 1;
            item_due = false;
            rest = rest.get(stream.byte_offset()..).unwrap_or_default().trim_start_matches(JSON_WHITESPACE);
        }
        if at_end {
            return match item_due && seen > 0 {
                true => Err(serde_json::Error::custom("a trailing comma")),
                false => Ok(part),
            };
        }
        // What is left (the start of an item, or of a character) moves to the front, and the
        // next window is read after it; the window doubles when an item fills it.
        let parsed = text.len() - rest.len();
        buf.copy_within(parsed..filled, 0);
        filled -= parsed;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let want = (buf.len() - filled).min(usize::try_from(run.end - next_read).unwrap_or(usize::MAX));
        let read = source.read_at(next_read, &mut buf[filled..filled + want]).map_err(serde_json::Error::io)?;
        if read == 0 {
            return Err(serde_json::Error::custom("the file ended early"));
        }
        filled += read;
        next_read += read as u64;
    }
}

/// The order [`load_with`] hands a file's items back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOrder {
    /// File order; an item whose key repeats an earlier one's stands in that one's place.
    File,
    /// Key order (by canonical key; history, by canonical key and play): the order an index
    /// keeps, so a caller that indexes the items is spared sorting them.
    Key,
}

/// Where an item stands: its run, and its position in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    run: usize,
    at: usize,
}

/// Calls `visit` with the first and the last place of each key of the runs, in key order.
/// `keys` are the runs' keys, each sorted ([`Run::sort_keys`]).
fn each_key(keys: &[Vec<RunKey>], mut visit: impl FnMut(Place, Place)) {
    let mut next = vec![0; keys.len()];
    let mut current: Option<(&RunKey, Place, Place)> = None;
    loop {
        // The run whose next key is least; on equal keys the earliest run, whose items come
        // first in the file.
        let mut least: Option<(usize, &RunKey)> = None;
        for (run, keys) in keys.iter().enumerate() {
            if let Some(key) = keys.get(next[run])
                && least.is_none_or(|(_, least)| key.cmp_key(least).is_lt())
            {
                least = Some((run, key));
            }
        }
        let Some((run, key)) = least else { break };
        let place = Place { run, at: key.at };
        next[run] += 1;
        match &mut current {
            Some((current_key, _, last)) if current_key.cmp_key(key).is_eq() => *last = place,
            _ => {
                if let Some((_, first, last)) = current.replace((key, place, place)) {
                    visit(first, last);
                }
            }
        }
    }
    if let Some((_, first, last)) = current {
        visit(first, last);
    }
}

/// One item per key (history: per play): the last item with a key wins, as if the file's
/// rows were applied in order, and in file order stands in the place of the first. Items
/// `map` made nothing of (`None`) are left out after that.
fn dedupe<T>(mut parsed: Parsed<Option<T>>, order: ItemOrder) -> Vec<T> {
    parsed.sort_keys();
    let (mut items, keys): (Vec<Vec<Option<T>>>, Vec<Vec<RunKey>>) =
        parsed.runs.into_iter().map(|run| (run.items, run.keys)).unzip();
    let mut take = |place: Place| items[place.run][place.at].take();
    match order {
        ItemOrder::Key => {
            let mut kept = Vec::with_capacity(keys.iter().map(Vec::len).sum());
            each_key(&keys, |_, last| kept.extend(take(last)));
            kept
        }
        ItemOrder::File => {
            // The item that stands in each first place.
            let mut standing: Vec<Vec<Option<Place>>> = keys.iter().map(|keys| vec![None; keys.len()]).collect();
            each_key(&keys, |first, last| standing[first.run][first.at] = Some(last));
            let mut kept = Vec::with_capacity(keys.iter().map(Vec::len).sum());
            kept.extend(standing.into_iter().flatten().flatten().filter_map(&mut take));
            kept
        }
    }
}

/// What a file was read as: what it is, the feature its items are of, and what was made of
/// them.
pub type Loaded<T> = (Kind, Feature, Vec<T>);

/// Reads and parses a file: what it is and its items for `feature` (when given; else the
/// kind's default feature).
pub fn load(path: &Path, format: FileFormat, feature: Option<Feature>) -> Result<Loaded<InventoryItem>, FileError> {
    parse(path, &read(path)?, format, feature, ItemOrder::File, &|_, item, _| Some(item))
}

/// [`load`], with each item — normalised, checked, and one per key — handed to `map` with the
/// file's feature and its canonical key ([`keys::canonical_key_of_normalized`]), on the
/// thread that parsed it, and what `map` made of the items handed back in `order`: a caller
/// that turns items into something else (an index) does so while each item is fresh, without
/// a second pass over them all. `map` sees the items that later repeat a key too (only what it
/// makes of the last is kept); an item it makes nothing of (`None`) is left out.
pub fn load_with<T: Send>(
    path: &Path,
    format: FileFormat,
    feature: Option<Feature>,
    order: ItemOrder,
    map: &(dyn Fn(Feature, InventoryItem, &str) -> Option<T> + Sync),
) -> Result<Loaded<T>, FileError> {
    if format != FileFormat::ImdbCsv
        && let Some(loaded) = load_array_in_runs(path, feature, order, map)
    {
        return loaded;
    }
    parse(path, &read(path)?, format, feature, order, map)
}

/// [`load_with`] of a large JSON array, read straight from the file in runs
/// ([`parse_array_in_runs`]): its text is never held whole. `None` when the file is not one,
/// or does not parse that way: it is then read and parsed whole, which names what is wrong.
fn load_array_in_runs<T: Send>(
    path: &Path,
    feature: Option<Feature>,
    order: ItemOrder,
    map: &(dyn Fn(Feature, InventoryItem, &str) -> Option<T> + Sync),
) -> Option<Result<Loaded<T>, FileError>> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > MAX_FILE_BYTES {
        return None;
    }
    let feature = feature.unwrap_or(Feature::Watchlist);
    let finish = |raw: InventoryItem| finish_json(feature, raw, map);
    let parsed = parse_array_in_runs(&FileSource { file, len }, &finish)?;
    Some(match parsed {
        Ok(parsed) => Ok((Kind::Json, feature, dedupe(parsed, order))),
        Err((index, unusable)) => Err(unusable.error(path, At::Index(index))),
    })
}

/// [`load_with`] of the file's text.
fn parse<T: Send>(
    path: &Path,
    text: &str,
    format: FileFormat,
    feature: Option<Feature>,
    order: ItemOrder,
    map: &(dyn Fn(Feature, InventoryItem, &str) -> Option<T> + Sync),
) -> Result<Loaded<T>, FileError> {
    let json = match format {
        FileFormat::Auto => looks_like_json(text),
        FileFormat::Json => true,
        FileFormat::ImdbCsv => false,
    };
    if json {
        let feature = feature.unwrap_or(Feature::Watchlist);
        let parsed = json_items(path, text, feature, map)?;
        Ok((Kind::Json, feature, dedupe(parsed, order)))
    } else {
        let export = imdb::parse(path, text, feature)?;
        let mut parsed = Parsed::with_capacity(export.items.len());
        for item in export.items {
            parsed.push(keyed(export.feature, keys::normalize_item_owned(item), map));
        }
        Ok((Kind::ImdbCsv(export.kind), export.feature, dedupe(parsed, order)))
    }
}

/// `file`: a read-only inventory of one feature.
pub struct FileInventory {
    name: String,
    label: String,
    path: PathBuf,
    format: FileFormat,
    kind: Kind,
    feature: Feature,
    requests: AtomicU64,
    /// The digest of the text the file had when last parsed and the items parsed from it, not
    /// yet handed out: the first read after `open` (typically `build_index`) reuses them when
    /// the file is unchanged instead of parsing it a second time.
    parsed: Mutex<Option<(Digest, Vec<InventoryItem>)>>,
}

impl fmt::Debug for FileInventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileInventory")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("feature", &self.feature)
            .finish_non_exhaustive()
    }
}

fn phase(op: &str) -> ProviderPhase {
    Capability::Inventory.op(op).map(|spec| spec.phase).unwrap_or(ProviderPhase::Execute)
}

fn unsupported(op: &str, message: String) -> ProviderError {
    ProviderError {
        class: ErrorClass::Unsupported,
        ..ProviderError::new(SCOPE, phase(op), format!("{op}: {message}")).with_code(ErrorCode::Unsupported)
    }
}

/// The capabilities `file` declares: read-only, present snapshots, no checkpoints (a file's
/// modification time would make a truncated export look like a legitimate change, defeating
/// the drop guard), no observed deletes.
pub fn file_capabilities() -> InventoryCapabilities {
    InventoryCapabilities {
        index_semantics: IndexSemantics::Present,
        read_only: true,
        ..InventoryCapabilities::default()
    }
}

impl FileInventory {
    /// The adapter name.
    pub const NAME: &'static str = "file";

    /// Reads and checks the file, deciding its format and feature. Errors name the file and,
    /// where it applies, the line and field.
    pub fn open(settings: FileSettings) -> Result<Self, FileError> {
        let name = crate::provider_name(settings.name, "FILE")
            .map_err(|message| FileError::at(&settings.path, None, None, Some("name"), message))?;
        let text = read(&settings.path)?;
        let (kind, feature, items) =
            parse(&settings.path, &text, settings.format, settings.feature, ItemOrder::File, &|_, item, _| Some(item))?;
        let label = settings.label.unwrap_or_else(|| match settings.path.file_name() {
            Some(file) => format!("File {}", file.to_string_lossy()),
            None => "File".to_owned(),
        });
        Ok(FileInventory {
            name,
            label,
            path: settings.path,
            format: settings.format,
            kind,
            feature,
            requests: AtomicU64::new(0),
            parsed: Mutex::new(Some((text_digest(&text), items))),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file was when the adapter was built.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The one feature the file holds.
    pub fn feature(&self) -> Feature {
        self.feature
    }

    /// Calls received (every operation but the identity ones).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The file's items now (read again).
    pub fn items(&self) -> Result<Vec<InventoryItem>, FileError> {
        let text = read(&self.path)?;
        if let Some((parsed_digest, items)) = self.parsed.lock().ok().and_then(|mut parsed| parsed.take())
            && parsed_digest == text_digest(&text)
        {
            return Ok(items);
        }
        parse(&self.path, &text, self.format, Some(self.feature), ItemOrder::File, &|_, item, _| Some(item))
            .map(|(_, _, items)| items)
    }

    /// Whether the file can be read and parsed now, keeping the parse for the next read (a
    /// health probe followed by `build_index` parses the file once).
    fn check(&self) -> Result<(), FileError> {
        let text = read(&self.path)?;
        let digest = text_digest(&text);
        let mut parsed = self.parsed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if parsed.as_ref().is_some_and(|(parsed_digest, _)| *parsed_digest == digest) {
            return Ok(());
        }
        let (_, _, items) =
            parse(&self.path, &text, self.format, Some(self.feature), ItemOrder::File, &|_, item, _| Some(item))?;
        *parsed = Some((digest, items));
        Ok(())
    }

    fn check_feature(&self, op: &str, feature: Feature) -> Result<(), ProviderError> {
        if feature == self.feature {
            Ok(())
        } else {
            Err(unsupported(
                op,
                format!("the file `{}` holds {} only, not {feature}", self.path.display(), self.feature),
            ))
        }
    }

    fn read_only(&self, op: &str, feature: Feature) -> ProviderError {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match self.check_feature(op, feature) {
            Err(e) => e,
            Ok(()) => unsupported(
                op,
                format!("the file `{}` is a read-only inventory: cw never writes it", self.path.display()),
            ),
        }
    }
}

#[async_trait]
impl InventoryProvider for FileInventory {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn features(&self) -> Features {
        let mut features = Features::default();
        match self.feature {
            Feature::Watchlist => features.watchlist = true,
            Feature::Ratings => features.ratings = true,
            Feature::History => features.history = true,
            Feature::Progress => features.progress = true,
            Feature::Playlists => features.playlists = true,
        }
        features
    }

    fn capabilities(&self) -> InventoryCapabilities {
        file_capabilities()
    }

    async fn build_index(&self, feature: Feature) -> Result<Vec<InventoryItem>, ProviderError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.check_feature("build_index", feature)?;
        self.items().map_err(|e| {
            let code = if e.unreadable { ErrorCode::Io } else { ErrorCode::InvalidInput };
            ProviderError::new(SCOPE, phase("build_index"), format!("build_index: {e}")).with_code(code)
        })
    }

    async fn add(&self, _: Vec<InventoryItem>, feature: Feature, _: bool) -> Result<WriteResult, ProviderError> {
        Err(self.read_only("add", feature))
    }

    async fn remove(&self, _: Vec<InventoryItem>, feature: Feature, _: bool) -> Result<WriteResult, ProviderError> {
        Err(self.read_only("remove", feature))
    }

    async fn health(&self) -> HealthReport {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match self.check() {
            Ok(()) => HealthReport::ok(),
            Err(e) => HealthReport { reason: Some(e.to_string()), ..HealthReport::with_status(HealthStatus::Down) },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_item() -> impl Strategy<Value = InventoryItem> {
        (proptest::option::of("[a-zé日😀 ,\\[\\]{}\"\\\\:]{0,12}"), proptest::option::of(1u32..99999), 0u8..3).prop_map(
            |(title, tmdb, extra)| {
                let mut item = InventoryItem { title, ..InventoryItem::default() };
                if let Some(tmdb) = tmdb {
                    item.ids.insert("tmdb", tmdb.to_string());
                }
                if extra > 0 {
                    item.extra.insert("vendor".to_owned(), serde_json::json!({"list": [1, {"a": "]},"}], "n": extra}));
                }
                item
            },
        )
    }

    /// The items of all runs, in order, and each item's key and position, in position order.
    fn flat<T>(parsed: Parsed<T>) -> (Vec<T>, Vec<(ItemKey, usize)>) {
        let (mut items, mut keys) = (Vec::new(), Vec::new());
        for run in parsed.runs {
            let start = items.len();
            keys.extend(run.keys.into_iter().map(|key| (key.key, start + key.at)));
            items.extend(run.items);
        }
        keys.sort_unstable_by_key(|(_, at)| *at);
        (items, keys)
    }

    /// Items as they come, each keyed by its canonical key.
    fn as_is(item: InventoryItem) -> Result<(InventoryItem, ItemKey), Unusable> {
        Ok(keyed(Feature::Watchlist, item, &|_, item, _| item))
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// An array cut at element boundaries and parsed run by run, a window at a time, gives
        /// what parsing it whole gives, whatever the strings hold (commas, brackets, quotes,
        /// backslashes, characters of several bytes that a window can end inside), however the
        /// JSON is spaced, and however small the window.
        #[test]
        fn a_cut_array_parses_as_the_whole(
            items in proptest::collection::vec(arb_item(), 0..30),
            parts in 1usize..5,
            window in 1usize..40,
            pretty in any::<bool>(),
            bom in any::<bool>(),
        ) {
            let text = if pretty { serde_json::to_string_pretty(&items).unwrap() } else { serde_json::to_string(&items).unwrap() };
            let text = format!(" \n{text}\r\n");
            let with_bom = format!("{}{text}", if bom { "\u{feff}" } else { "" });
            let runs = cut_array(with_bom.as_bytes(), parts).unwrap();
            prop_assert!(runs.len() <= parts.max(1));
            // Runs that parse (a cut inside a string or a nested value never does) give the
            // items, in order.
            let source = with_bom.as_bytes();
            // Uncut, the body always parses, whatever the window.
            let body = cut_array(source, 1).unwrap();
            prop_assert_eq!(body.len(), 1);
            let part = parse_run(source, body[0].clone(), window, &as_is).unwrap();
            prop_assert_eq!(&flat(part.parsed).0, &items);
            let runs: Result<Vec<_>, _> = runs.into_iter().map(|run| parse_run(source, run, window, &as_is)).collect();
            if let Ok(runs) = runs {
                let parsed: Vec<InventoryItem> = runs.into_iter().flat_map(|part| flat(part.parsed).0).collect();
                prop_assert_eq!(&parsed, &items);
            }
            let whole = parse_array(&text, &as_is).unwrap();
            let keys: Vec<(ItemKey, usize)> =
                items.iter().enumerate().map(|(at, item)| (as_is(item.clone()).unwrap().1, at)).collect();
            prop_assert_eq!(flat(whole), (items, keys));
        }
    }

    /// A run that is not a list of items ends in an error, never in fewer items: a window that
    /// ends inside an item waits for the next one only while the run goes on.
    #[test]
    fn a_run_that_does_not_parse_is_an_error() {
        for run in [
            &br#"{"title": "a"},"#[..],
            br#"{"title": "a"} {"title": "b"}"#,
            br#"{"title": "a"}, {"title": "b"#,
            br#"{"title": "a"}, 12"#,
            b"{\"title\": \"\xff\"}",
            b"{\"title\": \"\xc3",
        ] {
            for window in [1, 3, 4096] {
                let parsed = parse_run(run, 0..run.len() as u64, window, &as_is);
                assert!(parsed.is_err(), "{} in windows of {window}", String::from_utf8_lossy(run));
            }
        }
        let run = "{\"title\": \"日本\"} ,\n {\"title\": \"b\"}".as_bytes();
        for window in [1, 2, 5, 4096] {
            let part = parse_run(run, 0..run.len() as u64, window, &as_is).unwrap();
            let titles: Vec<_> = flat(part.parsed).0.into_iter().filter_map(|item| item.title).collect();
            assert_eq!(titles, ["日本", "b"], "windows of {window}");
        }
    }

    /// Only an array with nothing but whitespace (and first a byte order mark) around it is cut.
    #[test]
    fn only_an_array_is_cut() {
        for text in ["", " ", "{}", "[", "]", "[] x", "x []", "\u{feff} x"] {
            assert_eq!(cut_array(text.as_bytes(), 2), None, "{text:?}");
        }
        let empty = cut_array(" [ ] ".as_bytes(), 2).unwrap();
        assert_eq!((empty.len(), empty[0].clone()), (1, 2..3));
        // The body is 4..33; the second run's share starts at 18, and the first comma after
        // that between two items is at 23.
        let text = "\u{feff}[{\"a\": 1} , {\"b\": 2}, {\"c\": 3}]\n";
        assert_eq!(cut_array(text.as_bytes(), 2), Some(vec![4..23, 24..33]));
    }

    #[test]
    fn a_large_array_is_parsed_in_parts_and_a_bad_one_reports_its_line_or_item() {
        let items: Vec<InventoryItem> = (0..20_000)
            .map(|n| InventoryItem {
                title: Some(format!("Movie, \"number\" [{n}]")),
                ids: [("tmdb", (n + 1).to_string())].into_iter().collect(),
                ..InventoryItem::default()
            })
            .collect();
        let text = serde_json::to_string_pretty(&items).unwrap();
        assert!(text.len() as u64 > PARALLEL_PARSE_BYTES);
        assert!(cut_array(text.as_bytes(), 4).is_some_and(|runs| runs.len() == 4));
        assert_eq!(flat(parse_array(&text, &as_is).unwrap()).0, items);
        // A broken element deep in the file: the error is the one-thread parse's, with its line.
        let broken = text.replacen("\"tmdb\": \"15000\"", "\"tmdb\": 15000", 1);
        let whole = serde_json::from_str::<Vec<InventoryItem>>(&broken).unwrap_err();
        let Err(ArrayError::Syntax(error)) = parse_array(&broken, &as_is) else { panic!("not a syntax error") };
        assert_eq!((error.line(), error.column()), (whole.line(), whole.column()));
        assert!(error.line() > 1000, "{error}");
        // Unusable items in two parts: the first in file order is named, by its index in the file.
        let unusable = |at: usize| {
            move |item: InventoryItem| match item.ids.get("tmdb") {
                Some(id) if id == (at + 1).to_string() || id == "19000" => {
                    Err(Unusable { field: Some("ids"), message: "refused".to_owned() })
                }
                _ => as_is(item),
            }
        };
        for at in [3, 14_999] {
            let Err(ArrayError::Unusable { index, unusable }) = parse_array(&text, &unusable(at)) else {
                panic!("not refused")
            };
            assert_eq!((index, unusable.field), (at, Some("ids")));
        }
        // A syntax error comes before an unusable item, as it does on one thread.
        assert!(matches!(parse_array(&broken, &unusable(3)), Err(ArrayError::Syntax(_))));
    }

    /// Where the cut falls inside a string or a nested value, the runs do not parse and the
    /// whole text is parsed instead, giving the same items.
    #[test]
    fn a_cut_inside_a_string_or_a_nested_value_never_parses() {
        // The runs either side of a cut at the `},{` inside a title, and inside a vendor list.
        for (before, after) in [
            (r#"{"title": "a"}, {"title": "b}"#, r#"{c"}"#),
            (r#"{"title": "a", "vendor": [{"x": 1}"#, r#"{"y": 2}]}"#),
        ] {
            for run in [before, after] {
                assert!(parse_run(run.as_bytes(), 0..run.len() as u64, 4096, &as_is).is_err(), "{run}");
            }
        }
        let items: Vec<InventoryItem> = (0..12_000)
            .map(|n| {
                let mut item = movie(&(n + 1).to_string(), &format!("}},{{ {n} }} , {{"));
                item.extra.insert("vendor".to_owned(), serde_json::json!([{"a": n}, {"b": "},{"}]));
                item
            })
            .collect();
        let text = serde_json::to_string(&items).unwrap();
        assert!(text.len() as u64 > PARALLEL_PARSE_BYTES);
        assert_eq!(flat(parse_array(&text, &as_is).unwrap()).0, items);
    }

    fn movie(tmdb: &str, title: &str) -> InventoryItem {
        InventoryItem {
            title: Some(title.to_owned()),
            ids: [("tmdb", tmdb)].into_iter().collect(),
            ..InventoryItem::default()
        }
    }

    /// The last item with a key wins; in file order it stands in the place of the first, in key
    /// order the items come sorted by key; whether the items were parsed in one run or several
    /// (a key repeated within a run and across runs). An item mapped to nothing is left out
    /// after that: a key whose last item is nothing has no item.
    #[test]
    fn dedupe_keeps_the_last_item_of_each_key() {
        let items = [("9", "z"), ("1", "a"), ("2", "b"), ("1", "c"), ("3", "d"), ("2", "e"), ("3", "g"), ("1", "h")];
        let titles = |items: Vec<InventoryItem>| items.into_iter().filter_map(|i| i.title).collect::<Vec<_>>();
        let parsed = |runs: usize| {
            let mut parsed = Parsed { runs: Vec::new() };
            for chunk in items.chunks(items.len().div_ceil(runs)) {
                let mut run = Parsed::with_capacity(0);
                for (tmdb, title) in chunk {
                    let (item, key) = as_is(movie(tmdb, title)).unwrap();
                    let mapped = (item.title.as_deref() != Some("g")).then_some(item);
                    run.push((mapped, key));
                }
                parsed.append(run);
            }
            parsed
        };
        for runs in [1, 2, 3, 8] {
            assert_eq!(titles(dedupe(parsed(runs), ItemOrder::File)), ["z", "h", "e"], "{runs} runs");
            assert_eq!(titles(dedupe(parsed(runs), ItemOrder::Key)), ["h", "e", "z"], "{runs} runs");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Run keys are ordered as their keys are (then by position), whatever the keys hold
        /// (zero bytes, multi-byte characters) and however long a prefix they share.
        #[test]
        fn run_keys_order_as_their_keys(
            prefix in "(tmdb:12345678901|\\x00|é){0,3}",
            a in "[a\\x00é1-2]{0,20}",
            b in "[a\\x00é1-2]{0,20}",
            at in (0usize..3, 0usize..3),
        ) {
            let (a, b) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            let (key_a, key_b) = (RunKey::new(a.as_str().into(), at.0), RunKey::new(b.as_str().into(), at.1));
            prop_assert_eq!(key_a.cmp_key(&key_b), a.cmp(&b));
            prop_assert_eq!(key_a.cmp(&key_b), a.cmp(&b).then(at.0.cmp(&at.1)));
        }
    }
}
