//! Ingest: a provider's snapshot of one feature becomes an [`Inventory`], once (CONTRACTS §3,
//! "Items and keys" and "Index semantics").
//!
//! Every item is normalised with [`pal::keys::normalize_item`], its canonical key and strong
//! tokens are computed once, and each side gets **one** alias index (strong token → canonical
//! keys), so matching an item of one side against the other costs one hash lookup per token.
//! Nothing later re-normalises: the planner only reads [`Entry`]s.
//!
//! [`ingest`] also applies the index semantics (`present` snapshots are the full inventory;
//! `delta` snapshots are laid over the baseline) and the drop guard (a `present` snapshot that
//! collapsed while its checkpoint stood still is suspect: the baseline stands in for it).
//!
//! ```
//! use pal::inventory::{Feature, IndexSemantics, InventoryItem};
//! use cw_orchestrator::ingest::{Snapshot, ingest};
//!
//! let heat: InventoryItem = serde_json::from_value(serde_json::json!({
//!     "type": "movie", "ids": {"imdb": "TT0113277", "tmdb": "949"}
//! })).unwrap();
//! let side = ingest(Feature::Watchlist, &Snapshot::present(vec![heat]), None);
//! let entry = side.current.get("tmdb:949").unwrap();
//! assert_eq!(entry.item().ids.get("imdb"), Some("tt0113277")); // normalised once, here
//! assert!(entry.tokens().contains("imdb:tt0113277"));
//! assert!(!side.suspect);
//! ```

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::Arc;

use admit_core::{Finding, Severity};
use compact_str::CompactString;
use pal::inventory::{Feature, IndexSemantics, InventoryItem};
use pal::keys::{canonical_key_of_normalized, normalize_item_owned, write_strong_tokens_of_normalized};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::guards;

/// Rule id of the drop guard's findings.
pub const DROP_GUARD_RULE: &str = "cw.drop_guard";
/// Rule id of the finding that reports ratings dropped at ingest because they normalise to none.
pub const UNRATED_RULE: &str = "cw.ingest.unrated";

/// Two plays of an item less than this many seconds apart are the same play.
pub const PLAY_WINDOW_SECONDS: u64 = 60;

/// The suffix of a history play whose `watched_at` is missing or unreadable.
pub const UNKNOWN_PLAY_TIME: &str = "unknown";

/// A provider's snapshot of one feature, as `build_index` returned it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The items, raw (ingest normalises them).
    pub items: Vec<InventoryItem>,
    /// How to read them: the full inventory (`present`) or changes only (`delta`).
    pub semantics: IndexSemantics,
    /// The feature's checkpoint from `activities()` when the snapshot was taken, if the
    /// provider reports one.
    pub checkpoint: Option<String>,
}

impl Snapshot {
    /// A `present` snapshot without a checkpoint.
    pub fn present(items: Vec<InventoryItem>) -> Self {
        Snapshot { items, semantics: IndexSemantics::Present, checkpoint: None }
    }
}

/// The baseline the state store kept for a side and feature: the persistable items of the last
/// committed run ([`Inventory::persistable_items`], persisted under their entry keys) and that
/// run's checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// The items (already normalised when they were persisted; ingest normalises again, which
    /// is idempotent).
    pub items: Vec<InventoryItem>,
    /// The checkpoint the baseline was taken at.
    pub checkpoint: Option<String>,
}

/// One item of a side, normalised once, with everything matching needs precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The entry key. Inline (no allocation) up to 24 bytes, which holds nearly every id key:
    /// the planner compares keys more than anything else.
    key: CompactString,
    /// `key[..item_key_len]` is the canonical key (all of it but for history plays).
    item_key_len: usize,
    feature: Feature,
    tokens: Tokens,
    /// The instant the feature orders by, parsed once: `watched_at` (history), `rated_at`
    /// (ratings) or `progress_at` (progress).
    at: Option<OffsetDateTime>,
    item: InventoryItem,
}

impl Entry {
    /// Builds the entry of one raw item for `feature`; `None` for a ratings item whose rating
    /// normalises to none (it is not rated).
    fn new(feature: Feature, raw: InventoryItem) -> Option<Entry> {
        let mut item = normalize_item_owned(raw);
        if feature == Feature::Ratings {
            item.rating = Some(item.rating.and_then(|r| normalize_rating(f64::from(r)))?);
        }
        let instant = match feature {
            Feature::History => item.watched_at.as_deref(),
            Feature::Ratings => item.rated_at.as_deref(),
            Feature::Progress => item.progress_at.as_deref(),
            Feature::Watchlist | Feature::Playlists => None,
        };
        let at = instant.and_then(parse_instant);
        let mut key = CompactString::from(canonical_key_of_normalized(&item));
        let item_key_len = key.len();
        if feature == Feature::History {
            key.push('@');
            match at {
                // Writing to a `CompactString` cannot fail.
                Some(at) => drop(write!(key, "{}", at.unix_timestamp())),
                None => key.push_str(UNKNOWN_PLAY_TIME),
            }
        }
        let mut tokens = String::new();
        write_strong_tokens_of_normalized(&item, &mut tokens);
        Some(Entry { key, item_key_len, feature, tokens: Tokens(tokens.into_boxed_str()), at, item })
    }

    /// The entry's key on its side: the canonical key, or for a history play
    /// `<canonical key>@<watched_at epoch seconds>` (`@unknown` without a readable time).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The canonical key of the item ([`pal::keys::canonical_key`]).
    pub fn item_key(&self) -> &str {
        &self.key[..self.item_key_len]
    }

    /// The item's strong tokens ([`pal::keys::strong_tokens`]), plus those of duplicates of it
    /// in the same snapshot.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The normalised item (for ratings, with its rating normalised to 1–10).
    pub fn item(&self) -> &InventoryItem {
        &self.item
    }

    /// A history play's time, in epoch seconds (`None` for other features).
    pub fn watched_at(&self) -> Option<i64> {
        self.instant_of(Feature::History).map(OffsetDateTime::unix_timestamp)
    }

    /// When the rating was given, when readable (`None` for other features).
    pub fn rated_at(&self) -> Option<OffsetDateTime> {
        self.instant_of(Feature::Ratings)
    }

    /// When the playback position was recorded, when readable (`None` for other features).
    pub fn progress_at(&self) -> Option<OffsetDateTime> {
        self.instant_of(Feature::Progress)
    }

    fn instant_of(&self, feature: Feature) -> Option<OffsetDateTime> {
        self.at.filter(|_| self.feature == feature)
    }
}

/// An entry's strong tokens, in order, packed in one string and separated by spaces (a token
/// never holds one: see [`write_strong_tokens_of_normalized`]). One allocation per entry, where a
/// set of strings costs one per token and a tree node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens(Box<str>);

impl Tokens {
    /// The tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        self.0.split(' ').filter(|token| !token.is_empty())
    }

    /// Whether `token` is one of them.
    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|t| t == token)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the tokens of `other`; returns those that were new.
    fn merge(&mut self, other: &Tokens) -> Vec<String> {
        let added: Vec<String> = other.iter().filter(|t| !self.contains(t)).map(str::to_owned).collect();
        if !added.is_empty() {
            let all: BTreeSet<&str> = self.iter().chain(added.iter().map(String::as_str)).collect();
            self.0 = all.into_iter().collect::<Vec<_>>().join(" ").into_boxed_str();
        }
        added
    }
}

/// FNV-1a with a final avalanche (MurmurHash3's `fmix64`), so that the alias index, which
/// takes these hashes as they are, sees well-spread bits. Tokens are short: this is several
/// times cheaper than the standard library's SipHash, and collisions only cost a string
/// comparison (every hit is checked).
fn hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The alias index of a side: strong token → positions of the entries carrying it.
///
/// Open addressing over `u64` slots, at most half full: a slot holds the upper half of the
/// token's hash (which also picks its home slot) and the entry's position + 1 in the lower
/// half; 0 is empty. Eight bytes a token where a map of vectors costs five times that, and a
/// lookup reads one or two adjacent slots. Built once per side; positions fit 32 bits (an
/// inventory of four billion entries would not fit in memory anyway).
#[derive(Debug, Clone, Default, PartialEq)]
struct Aliases {
    slots: Vec<u64>,
    len: usize,
}

impl Aliases {
    fn with_capacity(tokens: usize) -> Aliases {
        Aliases { slots: vec![0; (tokens * 2).next_power_of_two().max(16)], len: 0 }
    }

    fn home(&self, fingerprint: u64) -> usize {
        // The slot count is a power of two: the mask keeps the low bits of the fingerprint.
        (fingerprint as usize) & (self.slots.len() - 1)
    }

    fn insert(&mut self, hash: u64, position: usize) {
        if (self.len + 1) * 2 > self.slots.len() {
            let mut grown = Aliases::with_capacity(self.len + 1);
            for slot in self.slots.iter().filter(|slot| **slot != 0) {
                grown.place(*slot);
            }
            grown.len = self.len;
            *self = grown;
        }
        self.place((hash & 0xffff_ffff_0000_0000) | (position as u64 + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut at = self.home(slot >> 32);
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }

    /// The positions filed under `hash` (and, rarely, under another hash with the same upper
    /// half: callers check the entry).
    fn get(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let fingerprint = hash >> 32;
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = if self.slots.is_empty() { 0 } else { self.home(fingerprint) };
        std::iter::from_fn(move || {
            loop {
                let slot = *self.slots.get(at)?;
                if slot == 0 {
                    return None;
                }
                at = (at + 1) & mask;
                if slot >> 32 == fingerprint {
                    return Some((slot & 0xffff_ffff) as usize - 1);
                }
            }
        })
    }
}

/// The items of one side and feature, indexed once: an inventory.
///
/// Entries are kept in key order (so everything derived from a side is deterministic, a
/// position order is a key order, and a canonical key is found by binary search or, walking
/// two sides in order, by a merge). The alias index finds the entries carrying a strong token
/// in one probe.
///
/// When a snapshot holds the same entry key twice, the first item wins and the duplicate's
/// strong tokens are added to it (so it still matches under every id either copy carried). When
/// two different items share a token (a data error of the provider), the alias index keeps both:
/// matching finds every item that could be meant.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    feature: Feature,
    /// Shared, so a side can stand in for its own baseline (or be kept by a run and its
    /// report) without copying a hundred thousand entries; built once, never changed after.
    data: Arc<Data>,
}

/// The entries of a side and its alias index.
#[derive(Debug, Clone, Default, PartialEq)]
struct Data {
    entries: Vec<Entry>,
    aliases: Aliases,
}

impl Data {
    /// Adds an entry (first wins on an equal key; its tokens are merged in). Cheap when entries
    /// come in key order, as every caller adds them; otherwise the index is rebuilt.
    fn insert(&mut self, entry: Entry) {
        if self.entries.last().is_none_or(|last| last.key < entry.key) {
            self.index(self.entries.len(), &entry.tokens);
            self.entries.push(entry);
            return;
        }
        match self.entries.binary_search_by(|e| e.key.cmp(&entry.key)) {
            Ok(at) => {
                for token in self.entries[at].tokens.merge(&entry.tokens) {
                    self.aliases.insert(hash(&token), at);
                }
            }
            Err(at) => {
                self.entries.insert(at, entry);
                self.reindex();
            }
        }
    }

    fn index(&mut self, position: usize, tokens: &Tokens) {
        for token in tokens.iter() {
            self.aliases.insert(hash(token), position);
        }
    }

    fn reindex(&mut self) {
        self.aliases = Aliases::with_capacity(self.entries.iter().map(|e| e.tokens.len()).sum());
        for position in 0..self.entries.len() {
            let tokens = std::mem::take(&mut self.entries[position].tokens);
            self.index(position, &tokens);
            self.entries[position].tokens = tokens;
        }
    }
}

/// `key` compared with `<item_key>@`, the prefix of the item's history plays.
fn cmp_play_prefix(key: &str, item_key: &str) -> Ordering {
    let (key, item_key) = (key.as_bytes(), item_key.as_bytes());
    let head = &key[..key.len().min(item_key.len())];
    match head.cmp(item_key) {
        Ordering::Equal => key[head.len()..].cmp(b"@".as_slice()),
        unequal => unequal,
    }
}

/// Puts `entries` in the order `order` gives (`order[i]` is the position of the entry that
/// goes to `i`), moving each entry once: entries are large, and a second vector of them would
/// double a million-item side's memory for a moment.
fn permute(entries: &mut [Entry], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut current = start;
        while order[current] != start {
            let next = order[current];
            order[current] = current;
            entries.swap(current, next);
            current = next;
        }
        order[current] = current;
    }
}

/// The entries of `items`, in a vector sized once (a filtered iterator would grow it by
/// doubling, copying a large side's entries several times over).
fn entries(feature: Feature, items: impl IntoIterator<Item = InventoryItem>) -> Vec<Entry> {
    let items = items.into_iter();
    let mut entries = Vec::with_capacity(items.size_hint().0);
    entries.extend(items.filter_map(|raw| Entry::new(feature, raw)));
    entries
}

impl Inventory {
    /// An empty side.
    pub fn empty(feature: Feature) -> Inventory {
        Inventory { feature, data: Arc::new(Data::default()) }
    }

    /// Normalises and indexes `items` (ratings that normalise to none are left out).
    pub fn new<'a>(feature: Feature, items: impl IntoIterator<Item = &'a InventoryItem>) -> Inventory {
        Inventory::from_entries(feature, entries(feature, items.into_iter().cloned()))
    }

    /// [`Inventory::new`] over owned items: each raw item becomes its entry in place (an item
    /// already normalised is not copied), so a large snapshot is never held twice.
    pub fn from_items(feature: Feature, items: Vec<InventoryItem>) -> Inventory {
        Inventory::from_entries(feature, entries(feature, items))
    }

    /// Indexes `entries`; on equal keys the first wins and the others' tokens are merged in.
    fn from_entries(feature: Feature, mut entries: Vec<Entry>) -> Inventory {
        if !entries.is_sorted_by(|a, b| a.key <= b.key) {
            // Sorted by a compact copy of the keys (contiguous, so the sort stays in cache),
            // then moved into place once. Stable: the first of equal keys stays first.
            let mut keys: Vec<(CompactString, usize)> =
                entries.iter().enumerate().map(|(at, e)| (e.key.clone(), at)).collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            permute(&mut entries, keys.into_iter().map(|(_, at)| at).collect());
        }
        entries.dedup_by(|later, first| {
            let same = later.key == first.key;
            if same {
                first.tokens.merge(&later.tokens);
            }
            same
        });
        let mut data = Data { entries, aliases: Aliases::default() };
        data.reindex();
        Inventory { feature, data: Arc::new(data) }
    }

    /// Adds an entry (first wins on an equal key; its tokens are merged in).
    pub(crate) fn insert(&mut self, entry: Entry) {
        Arc::make_mut(&mut self.data).insert(entry);
    }

    /// The feature this side holds.
    pub fn feature(&self) -> Feature {
        self.feature
    }

    /// How many entries (history: plays).
    pub fn len(&self) -> usize {
        self.data.entries.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.data.entries.is_empty()
    }

    /// The entries, in key order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.data.entries.iter()
    }

    /// The entry with this key.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.data.entries.binary_search_by(|e| e.key.as_str().cmp(key)).ok().map(|at| &self.data.entries[at])
    }

    /// The positions of the entries whose canonical key is `item_key`: the entry of that key,
    /// or for history every play of the item (their keys share the prefix `<item_key>@`).
    fn positions_of_item<'s>(&'s self, item_key: &'s str) -> impl Iterator<Item = usize> + 's {
        let entries = &self.data.entries;
        let range = if self.feature == Feature::History {
            let start = entries.partition_point(|e| cmp_play_prefix(&e.key, item_key) == Ordering::Less);
            let len = entries[start..]
                .iter()
                .take_while(|e| {
                    let key = e.key.as_bytes();
                    key.starts_with(item_key.as_bytes()) && key.get(item_key.len()) == Some(&b'@')
                })
                .count();
            start..start + len
        } else {
            match entries.binary_search_by(|e| e.key.as_str().cmp(item_key)) {
                Ok(at) => at..at + 1,
                Err(_) => 0..0,
            }
        };
        // A play prefix also covers plays of items whose key extends this one after an `@`.
        range.filter(move |&at| entries[at].item_key() == item_key)
    }

    /// Visits the position of every entry of this side that is the same item as `other` (see
    /// [`Inventory::same_item`]), in no particular order, possibly more than once, until `visit`
    /// returns `Break`. Positions `wanted` refuses are passed over before they are checked (the
    /// check reads the entry, which is what a lookup spends its time on).
    fn each_match(
        &self,
        other: &Entry,
        wanted: impl Fn(usize) -> bool,
        mut visit: impl FnMut(usize) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for position in self.positions_of_item(other.item_key()) {
            if wanted(position) {
                visit(position)?;
            }
        }
        for token in other.tokens.iter() {
            for position in self.data.aliases.get(hash(token)) {
                // A token names an item: for history, every play of it, whichever play
                // carried the token. Elsewhere an entry is its item.
                if self.feature == Feature::History {
                    let carrier = &self.data.entries[position];
                    if carrier.tokens.contains(token) {
                        for play in self.positions_of_item(carrier.item_key()) {
                            if wanted(play) {
                                visit(play)?;
                            }
                        }
                    }
                } else if wanted(position) && self.data.entries[position].tokens.contains(token) {
                    visit(position)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The first entry, in key order, of those [`Inventory::same_item`] returns for which
    /// `accept` holds; without building that list.
    pub(crate) fn first_match(&self, other: &Entry, mut accept: impl FnMut(&Entry) -> bool) -> Option<&Entry> {
        let first: Cell<Option<usize>> = Cell::new(None);
        let _ = self.each_match(
            other,
            |position| first.get().is_none_or(|f| position < f),
            |position| {
                if accept(&self.data.entries[position]) {
                    first.set(Some(position));
                }
                ControlFlow::Continue(())
            },
        );
        first.get().map(|position| &self.data.entries[position])
    }

    /// Whether any entry [`Inventory::same_item`] would return satisfies `accept`; stops at the
    /// first, without building that list.
    pub fn any_match(&self, other: &Entry, mut accept: impl FnMut(&Entry) -> bool) -> bool {
        self.each_match(
            other,
            |_| true,
            |position| {
                if accept(&self.data.entries[position]) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            },
        )
        .is_break()
    }

    /// The entries of this side that are the same item as `other` (an entry of any side): same
    /// canonical key or a shared strong token, as [`pal::keys::same_item`] decides, found
    /// through the indexes. For history, every play of those items. In key order.
    pub fn same_item(&self, other: &Entry) -> Vec<&Entry> {
        let mut positions = Vec::new();
        let _ = self.each_match(
            other,
            |_| true,
            |position| {
                positions.push(position);
                ControlFlow::Continue(())
            },
        );
        positions.sort_unstable();
        positions.dedup();
        positions.into_iter().map(|position| &self.data.entries[position]).collect()
    }

    /// The items to persist as the next baseline, by entry key: every item [`persistable`]
    /// accepts. Keyed by entry key, not canonical key, so a history baseline keeps every play
    /// (keyed by canonical key, all plays of a title but one would look deleted next run).
    pub fn persistable_items(&self) -> BTreeMap<String, InventoryItem> {
        self.entries().filter(|e| persistable(&e.item)).map(|e| (e.key().to_owned(), e.item.clone())).collect()
    }

    /// `self` with `delta` laid over it: every entry of `delta` replaces the entries of `self`
    /// that are the same item (history: the same play, within a minute), and is added.
    fn overlay(&self, delta: &Inventory) -> Inventory {
        let mut entries: BTreeMap<&str, &Entry> = self.entries().map(|e| (e.key(), e)).collect();
        for entry in delta.entries() {
            for old in self.same_item(entry) {
                if self.feature != Feature::History || same_play_time(old.watched_at(), entry.watched_at()) {
                    entries.remove(old.key());
                }
            }
            entries.insert(entry.key(), entry);
        }
        Inventory::from_entries(self.feature, entries.into_values().cloned().collect())
    }
}

/// Whether two play times are the same play: both known and less than [`PLAY_WINDOW_SECONDS`]
/// apart, or both unknown.
pub(crate) fn same_play_time(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.abs_diff(b) < PLAY_WINDOW_SECONDS,
        (None, None) => true,
        _ => false,
    }
}

/// A side after ingest: what the planner works from.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// The effective inventory: the snapshot (`present`), the baseline with the snapshot laid
    /// over it (`delta`), or the baseline when the snapshot is suspect.
    pub current: Inventory,
    /// The previous baseline, when there is one.
    pub baseline: Option<Inventory>,
    /// The drop guard found the snapshot suspect: the baseline stands in for it and the planner
    /// plans no removals in this feature. The state store must keep the previous baseline and
    /// checkpoint.
    pub suspect: bool,
    /// What ingest found (the drop guard's reason, ratings that normalised to none).
    pub findings: Vec<Finding>,
}

impl Ingested {
    /// The feature.
    pub fn feature(&self) -> Feature {
        self.current.feature
    }
}

/// Ingests one side's snapshot of `feature` against its previous baseline.
///
/// - `present`: the snapshot is the inventory, unless the drop guard finds it suspect
///   ([`guards::is_suspect_drop`]): then the baseline stands in and a warning finding says why.
/// - `delta`: the effective inventory is the baseline with the snapshot laid over it (an entry
///   replaces the baseline's entries of the same item); no drop guard.
pub fn ingest(feature: Feature, snapshot: &Snapshot, baseline: Option<&Baseline>) -> Ingested {
    ingest_with(feature, snapshot, baseline, IngestOptions::default())
}

/// How [`ingest_with`] treats a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOptions {
    /// Apply the drop guard to `present` snapshots (on by default; `sync.drop_guard: false`
    /// turns it off, and then a collapsed snapshot is taken at its word).
    pub drop_guard: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { drop_guard: true }
    }
}

/// [`ingest`], with the drop guard switchable.
pub fn ingest_with(
    feature: Feature,
    snapshot: &Snapshot,
    baseline: Option<&Baseline>,
    options: IngestOptions,
) -> Ingested {
    let unrated = unrated(feature, &snapshot.items);
    let snap = Inventory::new(feature, &snapshot.items);
    let base = baseline.map(|b| Inventory::new(feature, &b.items));
    let checkpoints =
        Checkpoints { previous: baseline.and_then(|b| b.checkpoint.clone()), current: snapshot.checkpoint.clone() };
    settle(feature, snapshot.semantics, snap, base, checkpoints, unrated, options)
}

/// [`ingest_with`], consuming the snapshot and the baseline: each raw item is freed as soon as
/// its entry is built, which keeps a large run's peak memory down.
pub fn ingest_owned(
    feature: Feature,
    snapshot: Snapshot,
    baseline: Option<Baseline>,
    options: IngestOptions,
) -> Ingested {
    let unrated = unrated(feature, &snapshot.items);
    let checkpoints = Checkpoints {
        previous: baseline.as_ref().and_then(|b| b.checkpoint.clone()),
        current: snapshot.checkpoint.clone(),
    };
    let snap = Inventory::from_items(feature, snapshot.items);
    let base = baseline.map(|b| Inventory::from_items(feature, b.items));
    settle(feature, snapshot.semantics, snap, base, checkpoints, unrated, options)
}

/// The checkpoints the drop guard compares.
struct Checkpoints {
    previous: Option<String>,
    current: Option<String>,
}

/// How many ratings items carry no rating in 1–10 (ingest leaves them out).
fn unrated(feature: Feature, items: &[InventoryItem]) -> usize {
    if feature == Feature::Ratings {
        items.iter().filter(|i| i.rating.and_then(|r| normalize_rating(f64::from(r))).is_none()).count()
    } else {
        0
    }
}

/// The semantics and the drop guard, over an indexed snapshot and baseline.
fn settle(
    feature: Feature,
    semantics: IndexSemantics,
    snap: Inventory,
    base: Option<Inventory>,
    checkpoints: Checkpoints,
    unrated: usize,
    options: IngestOptions,
) -> Ingested {
    let mut findings = Vec::new();
    if unrated > 0 {
        findings.push(Finding {
            rule_id: UNRATED_RULE.to_owned(),
            severity: Severity::Info,
            message: format!("{unrated} ratings item(s) without a rating in 1–10 were left out"),
            scope_id: None,
            evidence: Some(json!({ "count": unrated })),
        });
    }
    let (current, suspect) = match (semantics, &base) {
        (IndexSemantics::Delta, Some(base)) => (base.overlay(&snap), false),
        (IndexSemantics::Delta, None) => (snap, false),
        (IndexSemantics::Present, Some(base)) => {
            let previous_checkpoint = checkpoints.previous.as_deref();
            let advanced = guards::checkpoint_advanced(previous_checkpoint, checkpoints.current.as_deref());
            if options.drop_guard && guards::is_suspect_drop(base.len(), snap.len(), advanced) {
                findings.push(Finding {
                    rule_id: DROP_GUARD_RULE.to_owned(),
                    severity: Severity::Warning,
                    message: format!(
                        "{feature} snapshot is suspect: {} item(s) where the baseline had {} and the checkpoint \
                         has not advanced; the baseline stands in and no removals are planned",
                        snap.len(),
                        base.len()
                    ),
                    scope_id: None,
                    evidence: Some(json!({
                        "feature": feature,
                        "snapshot_count": snap.len(),
                        "baseline_count": base.len(),
                        "threshold": guards::drop_guard_threshold(base.len()),
                        "checkpoint_previous": previous_checkpoint,
                        "checkpoint_current": checkpoints.current,
                    })),
                });
                (base.clone(), true)
            } else {
                (snap, false)
            }
        }
        (IndexSemantics::Present, None) => (snap, false),
    };
    Ingested { current, baseline: base, suspect, findings }
}

/// Ingests a `present` snapshot that is, byte for byte, the one the side's baseline was taken
/// from (the state store recorded its snapshot hash, and every item of it was persisted): the
/// baseline is the snapshot itself, so it is neither read back nor indexed a second time. The
/// snapshot cannot be suspect: it has not changed.
pub fn ingest_unchanged(feature: Feature, snapshot: &Snapshot) -> Ingested {
    let mut ingested = ingest_with(feature, snapshot, None, IngestOptions::default());
    ingested.baseline = Some(ingested.current.clone());
    ingested
}

/// [`ingest_unchanged`], consuming the snapshot.
pub fn ingest_unchanged_owned(feature: Feature, snapshot: Snapshot) -> Ingested {
    let mut ingested = ingest_owned(feature, snapshot, None, IngestOptions::default());
    ingested.baseline = Some(ingested.current.clone());
    ingested
}

/// Whether every entry of `side` would be persisted: then a baseline taken from it is the side
/// itself (see [`ingest_unchanged`]).
pub fn all_persistable(side: &Inventory) -> bool {
    side.entries().all(|e| persistable(&e.item))
}

/// Whether an item may be persisted in a baseline. Not when it carries `_cw_transient: true`,
/// `_cw_skip_persist: true`, `_cw_persist: false`, or a vendor payload with `ignored: true`
/// (`extra.<vendor>.ignored`). Flags must be JSON booleans; anything else is not a flag.
///
/// Such items are still synced; they are only never remembered, so their disappearance is never
/// observed as a deletion.
pub fn persistable(item: &InventoryItem) -> bool {
    let flag = |name: &str| item.extra.get(name).and_then(Value::as_bool);
    if flag("_cw_transient") == Some(true)
        || flag("_cw_skip_persist") == Some(true)
        || flag("_cw_persist") == Some(false)
    {
        return false;
    }
    !item.extra.values().any(|v| v.as_object().and_then(|o| o.get("ignored")).and_then(Value::as_bool) == Some(true))
}

/// A rating normalised to an integer 1–10, or `None`.
///
/// - `≤ 0` (and NaN): none;
/// - `(0, 10]`: rounded half up, at least 1 (a positive rating is never "unrated");
/// - `(10, 100]`: divided by 10, rounded half up (`85` → 9, `15` → 2, `11` → 1);
/// - above 100: none (no scale we know of; the contract is silent, and guessing would write a
///   wrong rating).
///
/// ```
/// use cw_orchestrator::ingest::normalize_rating;
/// assert_eq!(normalize_rating(8.0), Some(8));
/// assert_eq!(normalize_rating(85.0), Some(9));
/// assert_eq!(normalize_rating(0.0), None);
/// ```
pub fn normalize_rating(value: f64) -> Option<u8> {
    if value.is_nan() || value <= 0.0 || value > 100.0 {
        return None;
    }
    let scaled = if value > 10.0 { value / 10.0 } else { value };
    // An integer in 1..=10, so the cast is exact.
    Some((scaled + 0.5).floor().clamp(1.0, 10.0) as u8)
}

/// Parses an RFC 3339 timestamp, or a string of digits as epoch seconds (some vendors report
/// those).
pub(crate) fn parse_instant(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The alias index returns, for a hash, every position filed under it (and at most a
        /// few filed under another hash with the same upper half), through any number of
        /// growths.
        #[test]
        fn aliases_find_every_position_filed_under_a_hash(
            filed in proptest::collection::vec((0u64..40, 0usize..1000), 0..300),
        ) {
            // Hashes that share their upper half collide on purpose (`h << 40`), and hashes that
            // differ only in their lower half are told apart by callers, not the index.
            let hashes = |h: u64| [h << 40 | 7, h.wrapping_mul(0x9e37_79b9_7f4a_7c15)];
            let mut aliases = Aliases::default();
            let mut expected: HashMap<u64, Vec<usize>> = HashMap::new();
            for (h, position) in &filed {
                for hash in hashes(*h) {
                    aliases.insert(hash, *position);
                    expected.entry(hash).or_default().push(*position);
                }
            }
            for (hash, positions) in &expected {
                let mut found: Vec<usize> = aliases.get(*hash).collect();
                for position in positions {
                    let at = found.iter().position(|p| p == position);
                    prop_assert!(at.is_some(), "position {} of hash {:x} not found", position, hash);
                    if let Some(at) = at {
                        found.swap_remove(at);
                    }
                }
                // What is left was filed under another hash with the same upper half.
                for extra in found {
                    prop_assert!(expected.iter().any(|(h, ps)| h >> 32 == hash >> 32 && ps.contains(&extra)));
                }
            }
            prop_assert_eq!(aliases.get(0xdead_beef_0000_0000).count(), 0);
        }

        /// `permute` puts every entry where the order says, moving each once.
        #[test]
        fn permute_applies_the_order(keys in proptest::collection::vec(0u32..50, 0..60)) {
            let mut entries: Vec<Entry> = keys
                .iter()
                .filter_map(|k| Entry::new(Feature::Watchlist, InventoryItem { title: Some(format!("{k:03}")), ..Default::default() }))
                .collect();
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|a, b| entries[*a].key.cmp(&entries[*b].key).then(a.cmp(b)));
            let expected: Vec<String> = order.iter().map(|at| entries[*at].key().to_owned()).collect();
            permute(&mut entries, order);
            prop_assert_eq!(entries.iter().map(|e| e.key().to_owned()).collect::<Vec<_>>(), expected);
        }
    }
}
