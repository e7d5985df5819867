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
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

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
    tokens: Tokens,
    /// The instant the feature orders by, parsed once: `watched_at` (history), `rated_at`
    /// (ratings) or `progress_at` (progress).
    at: Option<OffsetDateTime>,
    /// The normalised item in the baseline codec's form ([`crate::codec::encode_item`]): a
    /// third of the memory of an `InventoryItem` with its strings, one allocation instead of
    /// four, and a baseline chunk takes it as it is. Empty for the entry of a keys-only baseline
    /// ([`IndexedBaseline::keys_only`]), which keeps no item (an encoded item never is).
    item: Box<[u8]>,
    /// `key[..item_key_len]` is the canonical key (all of it but for history plays).
    item_key_len: u32,
    feature: Feature,
    /// The item's normalised rating, read without decoding the item.
    rating: Option<u8>,
    /// Whether the item may be persisted in a baseline ([`persistable`]).
    persistable: bool,
}

/// What an entry is built to keep of its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Item,
    /// Its keys, tokens, instant and rating only: the entry of a baseline that is only matched
    /// against and never stands in for a snapshot ([`IndexedBaseline::keys_only`]).
    KeysOnly,
}

/// Buffers reused from one entry to the next while a side is indexed.
#[derive(Debug, Default)]
struct Scratch {
    tokens: String,
    item: Vec<u8>,
}

thread_local! {
    /// The scratch of [`Entry::new`], one per thread that builds entries.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Entry {
    /// The entry of one raw item for `feature`, as indexing a side builds it (see
    /// [`Inventory::from_entries`]); `None` for a ratings item whose rating normalises to none.
    pub fn new(feature: Feature, raw: InventoryItem) -> Option<Entry> {
        SCRATCH.with_borrow_mut(|scratch| Entry::with_scratch(feature, raw, scratch, Keep::Item))
    }

    /// [`Entry::new`] of an item that is already the output of [`pal::keys::normalize_item`],
    /// whose canonical key ([`canonical_key_of_normalized`]) is `canonical_key`: for a reader
    /// that normalised and keyed its items already, so neither is done twice.
    pub fn of_normalized(feature: Feature, item: InventoryItem, canonical_key: &str) -> Option<Entry> {
        debug_assert_eq!(canonical_key, canonical_key_of_normalized(&item), "the key of another item");
        SCRATCH.with_borrow_mut(|scratch| Entry::build(feature, item, Some(canonical_key), scratch, Keep::Item))
    }

    /// Builds the entry of one raw item for `feature`; `None` for a ratings item whose rating
    /// normalises to none (it is not rated).
    fn with_scratch(feature: Feature, raw: InventoryItem, scratch: &mut Scratch, keep: Keep) -> Option<Entry> {
        Entry::build(feature, normalize_item_owned(raw), None, scratch, keep)
    }

    /// Builds the entry of a normalised item (with its canonical key, when known). The tokens
    /// and the item are written in `scratch` first, then get one exactly sized allocation each.
    fn build(
        feature: Feature,
        mut item: InventoryItem,
        canonical_key: Option<&str>,
        scratch: &mut Scratch,
        keep: Keep,
    ) -> Option<Entry> {
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
        let mut key = match canonical_key {
            Some(key) => CompactString::from(key),
            None => CompactString::from(canonical_key_of_normalized(&item)),
        };
        // A canonical key is a namespace and an id, or a title and a year: far below 4 GiB.
        let item_key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        if feature == Feature::History {
            key.push('@');
            match at {
                // Writing to a `CompactString` cannot fail.
                Some(at) => drop(write!(key, "{}", at.unix_timestamp())),
                None => key.push_str(UNKNOWN_PLAY_TIME),
            }
        }
        scratch.tokens.clear();
        write_strong_tokens_of_normalized(&item, &mut scratch.tokens);
        let packed = match keep {
            Keep::Item => {
                scratch.item.clear();
                crate::codec::encode_item(&mut scratch.item, &item);
                Box::from(scratch.item.as_slice())
            }
            Keep::KeysOnly => Box::default(),
        };
        Some(Entry {
            key,
            tokens: Tokens(Box::from(scratch.tokens.as_str())),
            at,
            item: packed,
            item_key_len,
            feature,
            rating: item.rating,
            persistable: keep == Keep::Item && persistable(&item),
        })
    }

    /// The entry's key on its side: the canonical key, or for a history play
    /// `<canonical key>@<watched_at epoch seconds>` (`@unknown` without a readable time).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The canonical key of the item ([`pal::keys::canonical_key`]).
    pub fn item_key(&self) -> &str {
        &self.key[..self.item_key_len as usize]
    }

    /// The item's strong tokens ([`pal::keys::strong_tokens`]), plus those of duplicates of it
    /// in the same snapshot.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The normalised item (for ratings, with its rating normalised to 1–10), decoded from
    /// the entry's compact form: read it once per use, not in a loop over a side.
    ///
    /// The entries of a keys-only baseline ([`IndexedBaseline::keys_only`]; only ever an
    /// [`Ingested::baseline`]) do not keep their item: for them this is an item with no ids, and
    /// only their keys, tokens, instant and [`Entry::rating`] are theirs.
    pub fn item(&self) -> InventoryItem {
        debug_assert!(!self.item.is_empty(), "the item of a keys-only baseline entry was read");
        crate::codec::decode_item(&self.item).unwrap_or_else(|message| {
            // The bytes were encoded by this process, from an item: they always decode.
            debug_assert!(false, "an entry's item does not decode: {message}");
            InventoryItem::default()
        })
    }

    /// The item in the baseline codec's form (empty for a keys-only entry).
    pub(crate) fn encoded_item(&self) -> &[u8] {
        &self.item
    }

    /// The normalised rating (1–10), if the item has one.
    pub fn rating(&self) -> Option<u8> {
        self.rating
    }

    /// Whether the item may be persisted in a baseline ([`persistable`]); never for an entry
    /// that does not keep its item.
    pub fn persistable(&self) -> bool {
        self.persistable
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

/// A token's hash: eight bytes at a time, multiply and rotate, then a final avalanche
/// (MurmurHash3's `fmix64`) so that the alias index, which takes these hashes as they are, sees
/// well-spread bits. Tokens are short: this is several times cheaper than the standard
/// library's SipHash or a byte-wise hash, and collisions only cost a string comparison (every
/// hit is checked).
fn hash(text: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = text.as_bytes();
    let mut h = 0x243f_6a88_85a3_08d3 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut word = [0u8; 8];
    for chunk in &mut chunks {
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
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

/// Entries of a side set aside one by one (the adds a plan has made so far), to tell whether
/// another entry is the same item as one of them ([`Inventory::same_item`]'s rule) without
/// copying them into an inventory of their own.
#[derive(Debug)]
pub(crate) struct Claimed<'a> {
    feature: Feature,
    entries: Vec<&'a Entry>,
    /// The hash of each claimed entry's canonical key (salted, so it is not taken for a token)
    /// and of each of its tokens → its index in `entries`.
    names: Aliases,
}

impl<'a> Claimed<'a> {
    pub(crate) fn new(feature: Feature) -> Self {
        Claimed { feature, entries: Vec::new(), names: Aliases::default() }
    }

    fn key_hash(item_key: &str) -> u64 {
        hash(item_key) ^ 0x6b65_795f_6e61_6d65
    }

    pub(crate) fn claim(&mut self, entry: &'a Entry) {
        let at = self.entries.len();
        self.names.insert(Claimed::key_hash(entry.item_key()), at);
        for token in entry.tokens.iter() {
            self.names.insert(hash(token), at);
        }
        self.entries.push(entry);
    }

    /// The claimed entries with this canonical key.
    fn of_item<'s>(&'s self, item_key: &'s str) -> impl Iterator<Item = &'a Entry> + 's {
        self.names
            .get(Claimed::key_hash(item_key))
            .map(|at| self.entries[at])
            .filter(move |claimed| claimed.item_key() == item_key)
    }

    /// Whether a claimed entry is the same item as `entry` and `accept` holds for it. For
    /// history, every claimed play of an item that shares a token with `entry` counts.
    pub(crate) fn any_match(&self, entry: &Entry, accept: impl Fn(&Entry) -> bool) -> bool {
        if self.of_item(entry.item_key()).any(&accept) {
            return true;
        }
        entry.tokens.iter().any(|token| {
            self.names.get(hash(token)).map(|at| self.entries[at]).filter(|carrier| carrier.tokens.contains(token)).any(
                |carrier| {
                    if self.feature == Feature::History {
                        self.of_item(carrier.item_key()).any(&accept)
                    } else {
                        accept(carrier)
                    }
                },
            )
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
#[derive(Debug, Clone, Default)]
struct Data {
    entries: Vec<Entry>,
    /// Where the last lookup by key ended: where the next one starts looking.
    hint: Hint,
    /// The hash of every token (computed again when needed after entries are inserted in the
    /// middle).
    token_hashes: OnceLock<TokenHashes>,
    /// Built on the first lookup by token that needs it: a side nobody looks up by token (a
    /// baseline only compared against, a side every entry of which matched by key) never pays
    /// for it, and a few lookups walk [`Data::token_hashes`] instead.
    aliases: OnceLock<Aliases>,
}

/// The hashes of a side's tokens, entry after entry in one vector: what a walk over a side's
/// tokens reads, without hashing them again or visiting each entry's own allocation.
#[derive(Debug, Clone, Default)]
struct TokenHashes {
    hashes: Vec<u64>,
    /// Where each entry's hashes start (one more than entries: the end). Four bytes each: a
    /// side holds fewer than four billion tokens.
    starts: Vec<u32>,
}

impl TokenHashes {
    /// The hashes of `entries`' tokens: a large side's halves hashed on two threads (a side
    /// indexed while the other is still being read has a core to itself).
    fn of_entries(entries: &[Entry]) -> TokenHashes {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        if threads < 2 || entries.len() < PARALLEL_ENTRIES {
            return TokenHashes::of_run(entries, entries.len());
        }
        let (first, second) = entries.split_at(entries.len() / 2);
        let (mut hashed, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| TokenHashes::of_run(second, second.len()));
            let first = TokenHashes::of_run(first, entries.len());
            (first, second.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        // `first`'s end is where `second`'s hashes start.
        let offset = hashed.starts.pop().unwrap_or(0);
        hashed.starts.reserve(second.starts.len());
        hashed.starts.extend(second.starts.iter().map(|start| start + offset));
        hashed.hashes.extend_from_slice(&second.hashes);
        hashed
    }

    /// The hashes of `entries`' tokens, with room for those of `room_for` entries.
    fn of_run(entries: &[Entry], room_for: usize) -> TokenHashes {
        let mut hashed = TokenHashes { hashes: Vec::new(), starts: Vec::with_capacity(room_for + 1) };
        for entry in entries {
            hashed.push(entry);
            if hashed.starts.len() == 1 {
                // Sized from the first entry (and a quarter more): grown by doubling, a large
                // side's hashes would be copied several times over into fresh memory.
                let per_entry = hashed.hashes.len() + hashed.hashes.len().div_ceil(4);
                hashed.hashes.reserve(room_for.saturating_mul(per_entry));
            }
        }
        hashed.starts.push(hashed.hashes.len() as u32);
        hashed
    }

    fn push(&mut self, entry: &Entry) {
        self.starts.push(self.hashes.len() as u32);
        self.hashes.extend(entry.tokens.iter().map(hash));
    }

    /// The token hashes of the entry at `position`, in its tokens' order.
    fn of(&self, position: usize) -> &[u64] {
        &self.hashes[self.starts[position] as usize..self.starts[position + 1] as usize]
    }
}

/// A position to start a search from. Only a hint: any value gives the same answers, so threads
/// sharing a side may overwrite each other's.
#[derive(Debug, Default)]
struct Hint(AtomicUsize);

impl Clone for Hint {
    fn clone(&self) -> Self {
        Hint(AtomicUsize::new(self.0.load(AtomicOrdering::Relaxed)))
    }
}

/// The partition point of `entries` under `before` (the entries before it satisfy it; entries
/// are in key order), found by galloping from `hint`: lookups made in key order, as when two
/// sides are walked together, cost a step or two each instead of a search of the whole side.
fn partition_from(entries: &[Entry], hint: usize, before: impl Fn(&Entry) -> bool) -> usize {
    let hint = hint.min(entries.len());
    if entries.get(hint).is_some_and(&before) {
        // The point is after `hint`.
        let mut low = hint + 1;
        let mut step = 1;
        loop {
            let probe = hint + step;
            match entries.get(probe) {
                None => return low + entries[low..].partition_point(&before),
                Some(entry) if before(entry) => {
                    low = probe + 1;
                    step *= 2;
                }
                Some(_) => return low + entries[low..probe].partition_point(&before),
            }
        }
    } else {
        // The point is at or before `hint`.
        let mut high = hint;
        let mut step = 1;
        loop {
            let Some(probe) = high.checked_sub(step) else { return entries[..high].partition_point(&before) };
            if before(&entries[probe]) {
                return probe + 1 + entries[probe + 1..high].partition_point(&before);
            }
            high = probe;
            step *= 2;
        }
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Data {
    /// Adds an entry (first wins on an equal key; its tokens are merged in). Cheap when entries
    /// come in key order, as every caller adds them; otherwise the index is dropped, to be
    /// rebuilt when next needed.
    fn insert(&mut self, entry: Entry) {
        if self.entries.last().is_none_or(|last| last.key < entry.key) {
            if let Some(hashed) = self.token_hashes.get_mut() {
                hashed.starts.pop();
                hashed.push(&entry);
                hashed.starts.push(hashed.hashes.len() as u32);
            }
            if let Some(aliases) = self.aliases.get_mut() {
                for token in entry.tokens.iter() {
                    aliases.insert(hash(token), self.entries.len());
                }
            }
            self.entries.push(entry);
            return;
        }
        match self.entries.binary_search_by(|e| e.key.cmp(&entry.key)) {
            Ok(at) => {
                let added = self.entries[at].tokens.merge(&entry.tokens);
                if !added.is_empty() {
                    self.token_hashes = OnceLock::new();
                }
                if let Some(aliases) = self.aliases.get_mut() {
                    for token in added {
                        aliases.insert(hash(&token), at);
                    }
                }
            }
            Err(at) => {
                self.entries.insert(at, entry);
                self.token_hashes = OnceLock::new();
                self.aliases = OnceLock::new();
            }
        }
    }

    fn token_hashes(&self) -> &TokenHashes {
        self.token_hashes.get_or_init(|| TokenHashes::of_entries(&self.entries))
    }

    fn aliases(&self) -> &Aliases {
        self.aliases.get_or_init(|| {
            let hashed = self.token_hashes();
            let mut aliases = Aliases::with_capacity(hashed.hashes.len());
            for position in 0..self.entries.len() {
                for &token_hash in hashed.of(position) {
                    aliases.insert(token_hash, position);
                }
            }
            aliases
        })
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
    let mut scratch = Scratch::default();
    entries.extend(items.filter_map(|raw| Entry::with_scratch(feature, raw, &mut scratch, Keep::Item)));
    entries
}

/// Below this many items a side's entries are built on one thread.
const PARALLEL_ENTRIES: usize = 50_000;

/// The entries of `items`, taken out of it (each left as a default item, which owns nothing),
/// built on as many threads as the machine has: each item's entry depends on that item alone.
fn entries_in_parallel(feature: Feature, items: &mut [InventoryItem]) -> Vec<Entry> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(8);
    if threads < 2 || items.len() < PARALLEL_ENTRIES {
        return entries(feature, items.iter_mut().map(std::mem::take));
    }
    let per_thread = items.len().div_ceil(threads);
    let parts: Vec<Vec<Entry>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(per_thread)
            .map(|part| scope.spawn(move || entries(feature, part.iter_mut().map(std::mem::take))))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        all.extend(part);
    }
    all
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
    pub fn from_items(feature: Feature, mut items: Vec<InventoryItem>) -> Inventory {
        Inventory::from_entries(feature, entries_in_parallel(feature, &mut items))
    }

    /// Indexes `entries` (built by [`Entry::new`] for this feature); on equal keys the first
    /// wins and the others' tokens are merged in. [`Inventory::from_items`] builds the entries
    /// itself; a caller that reads items from somewhere can build each entry as it reads it.
    pub fn from_entries(feature: Feature, mut entries: Vec<Entry>) -> Inventory {
        // Entries in strict key order (as a reader that sorted them hands them over) are
        // indexed as they are.
        if !entries.is_sorted_by(|a, b| a.key < b.key) {
            if !entries.is_sorted_by(|a, b| a.key <= b.key) {
                // Sorted by a compact copy of the keys (contiguous, so the sort stays in
                // cache), then moved into place once. Equal keys keep their order (by
                // position): the first of them stays first.
                let mut keys: Vec<(CompactString, usize)> =
                    entries.iter().enumerate().map(|(at, e)| (e.key.clone(), at)).collect();
                keys.sort_unstable();
                permute(&mut entries, keys.into_iter().map(|(_, at)| at).collect());
            }
            entries.dedup_by(|later, first| {
                let same = later.key == first.key;
                if same {
                    first.tokens.merge(&later.tokens);
                }
                same
            });
        }
        // Hashed here, on the ingest thread and while the tokens are fresh in cache: every walk
        // over a side's tokens reads these.
        let token_hashes = OnceLock::from(TokenHashes::of_entries(&entries));
        Inventory { feature, data: Arc::new(Data { entries, token_hashes, ..Data::default() }) }
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
        let (positions, next) = self.positions_of_item_from(item_key, self.data.hint.0.load(AtomicOrdering::Relaxed));
        self.data.hint.0.store(next, AtomicOrdering::Relaxed);
        positions
    }

    /// [`Inventory::positions_of_item`] searched from `hint`, with where the search ended (the
    /// hint for a lookup of the next key).
    fn positions_of_item_from<'s>(
        &'s self,
        item_key: &'s str,
        hint: usize,
    ) -> (impl Iterator<Item = usize> + 's, usize) {
        let entries = &self.data.entries;
        let (range, next) = if self.feature == Feature::History {
            let start = partition_from(entries, hint, |e| cmp_play_prefix(&e.key, item_key) == Ordering::Less);
            let len = entries[start..]
                .iter()
                .take_while(|e| {
                    let key = e.key.as_bytes();
                    key.starts_with(item_key.as_bytes()) && key.get(item_key.len()) == Some(&b'@')
                })
                .count();
            (start..start + len, start)
        } else {
            let at = partition_from(entries, hint, |e| e.key.as_str() < item_key);
            match entries.get(at) {
                Some(entry) if entry.key == item_key => (at..at + 1, at),
                _ => (0..0, at),
            }
        };
        // A play prefix also covers plays of items whose key extends this one after an `@`.
        (range.filter(move |&at| entries[at].item_key() == item_key), next)
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
        self.each_token_match(other, wanted, visit)
    }

    /// The half of [`Inventory::each_match`] that goes by strong token, through the alias index.
    fn each_token_match(
        &self,
        other: &Entry,
        wanted: impl Fn(usize) -> bool,
        mut visit: impl FnMut(usize) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for token in other.tokens.iter() {
            for position in self.data.aliases().get(hash(token)) {
                if self.feature == Feature::History {
                    let carrier = &self.data.entries[position];
                    if carrier.tokens.contains(token) {
                        self.each_play(
                            carrier,
                            |play| if wanted(play) { visit(play) } else { ControlFlow::Continue(()) },
                        )?;
                    }
                } else if wanted(position) && self.data.entries[position].tokens.contains(token) {
                    visit(position)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Visits the positions an entry carrying a token names: for history every play of its
    /// item, whichever play carried the token; elsewhere an entry is its item.
    fn each_play(&self, carrier: &Entry, mut visit: impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<()> {
        for play in self.positions_of_item(carrier.item_key()) {
            visit(play)?;
        }
        ControlFlow::Continue(())
    }

    /// [`Inventory::each_match`] for many entries at once: visits `(query, position)` for every
    /// match of every query (possibly more than once), until `visit` breaks for that query.
    ///
    /// Canonical keys are matched first, in one walk when the queries come in key order.
    /// Queries left undecided then go by token: through this side's alias index when it is
    /// built or when they are many; otherwise the queries' tokens are indexed instead and this
    /// side is walked once, which for a few thousand queries against a large side costs far
    /// less than indexing the side.
    fn each_match_of_all(&self, queries: &[&Entry], mut visit: impl FnMut(usize, usize) -> ControlFlow<()>) {
        let mut done = vec![false; queries.len()];
        let mut cursor = 0;
        if self.feature == Feature::History {
            for (query, entry) in queries.iter().enumerate() {
                let (mut positions, next) = self.positions_of_item_from(entry.item_key(), cursor);
                cursor = next;
                done[query] = positions.any(|position| visit(query, position).is_break());
            }
        } else {
            // An entry's key is its canonical key: the walk compares each key once or twice.
            let entries = &self.data.entries;
            for (query, entry) in queries.iter().enumerate() {
                let key = entry.item_key();
                cursor = partition_from(entries, cursor, |e| e.key.as_str() < key);
                if entries.get(cursor).is_some_and(|found| found.key == key) {
                    done[query] = visit(query, cursor).is_break();
                }
            }
        }
        let pending: Vec<usize> =
            (0..queries.len()).filter(|&query| !done[query] && !queries[query].tokens.is_empty()).collect();
        if pending.is_empty() {
            return;
        }
        if self.data.aliases.get().is_some() || pending.len() * 8 >= self.len() {
            for query in pending {
                let _ = self.each_token_match(queries[query], |_| true, |position| visit(query, position));
            }
            return;
        }
        let mut wanted = Aliases::with_capacity(pending.iter().map(|&query| queries[query].tokens.len()).sum());
        // One bit per low 18 bits of the wanted hashes (32 KiB, so it stays in the fastest
        // cache): most of the side's tokens are passed over on one bit.
        const FILTER_BITS: usize = 1 << 18;
        let mut filter = vec![0u64; FILTER_BITS / 64];
        let bit = |token_hash: u64| (token_hash as usize) & (FILTER_BITS - 1);
        for &query in &pending {
            for token in queries[query].tokens.iter() {
                let token_hash = hash(token);
                filter[bit(token_hash) / 64] |= 1 << (bit(token_hash) % 64);
                wanted.insert(token_hash, query);
            }
        }
        let mut left = pending.len();
        let hashed = self.data.token_hashes();
        for position in 0..self.len() {
            for (nth, &token_hash) in hashed.of(position).iter().enumerate() {
                if filter[bit(token_hash) / 64] & (1 << (bit(token_hash) % 64)) == 0 {
                    continue;
                }
                for query in wanted.get(token_hash) {
                    if done[query] {
                        continue;
                    }
                    let carrier = &self.data.entries[position];
                    let Some(token) = carrier.tokens.iter().nth(nth) else { continue };
                    if !queries[query].tokens.contains(token) {
                        continue;
                    }
                    let flow = if self.feature == Feature::History {
                        self.each_play(carrier, |play| visit(query, play))
                    } else {
                        visit(query, position)
                    };
                    if flow.is_break() {
                        done[query] = true;
                        left -= 1;
                        if left == 0 {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// [`Inventory::any_match`] for many entries at once: for each of `queries`, whether an
    /// entry of this side is the same item and `accept(query, entry, its position)` holds. Give
    /// the queries in key order (see [`Inventory::each_match_of_all`]).
    pub fn any_matches(&self, queries: &[&Entry], accept: impl Fn(&Entry, &Entry, usize) -> bool) -> Vec<bool> {
        let mut found = vec![false; queries.len()];
        self.each_match_of_all(queries, |query, position| {
            if accept(queries[query], &self.data.entries[position], position) {
                found[query] = true;
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        found
    }

    /// For each of `items` (raw or normalised), whether this side holds it: an entry that is
    /// the same item (history: the same play, within a minute). What a write is checked against
    /// when the side is read again after it. An item ingest would leave out (a rating outside
    /// 1–10) is not held.
    pub fn holds(&self, items: &[&InventoryItem]) -> Vec<bool> {
        let mut scratch = Scratch::default();
        let probes: Vec<Option<Entry>> = items
            .iter()
            .map(|item| Entry::with_scratch(self.feature, (*item).clone(), &mut scratch, Keep::KeysOnly))
            .collect();
        let mut order: Vec<usize> = (0..probes.len()).filter(|&at| probes[at].is_some()).collect();
        order.sort_by(|a, b| probes[*a].as_ref().map(Entry::key).cmp(&probes[*b].as_ref().map(Entry::key)));
        let queries: Vec<&Entry> = order.iter().filter_map(|&at| probes[at].as_ref()).collect();
        let found = self.any_matches(&queries, |probe, entry, _| {
            self.feature != Feature::History || same_play_time(entry.watched_at(), probe.watched_at())
        });
        let mut held = vec![false; items.len()];
        for (at, found) in order.into_iter().zip(found) {
            held[at] = found;
        }
        held
    }

    /// Which positions hold an entry whose key is one of `keys` (given in key order).
    pub fn positions_of_keys<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Vec<bool> {
        let mut marked = vec![false; self.len()];
        let mut cursor = 0;
        for key in keys {
            cursor = partition_from(&self.data.entries, cursor, |e| e.key.as_str() < key);
            if self.data.entries.get(cursor).is_some_and(|e| e.key == key) {
                marked[cursor] = true;
            }
        }
        marked
    }

    /// [`Inventory::same_item`] for many entries at once, in the order of `queries`.
    pub fn same_items(&self, queries: &[&Entry]) -> Vec<Vec<&Entry>> {
        let mut positions: Vec<Vec<usize>> = vec![Vec::new(); queries.len()];
        self.each_match_of_all(queries, |query, position| {
            positions[query].push(position);
            ControlFlow::Continue(())
        });
        positions
            .into_iter()
            .map(|mut found| {
                found.sort_unstable();
                found.dedup();
                found.into_iter().map(|position| &self.data.entries[position]).collect()
            })
            .collect()
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
        self.entries().filter(|e| e.persistable()).map(|e| (e.key().to_owned(), e.item())).collect()
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
    let snapshot = IndexedSnapshot::of_shared(feature, snapshot);
    ingest_indexed(feature, snapshot, baseline.map(|b| IndexedBaseline::of_shared(feature, b)), options)
}

/// [`ingest_with`], consuming the snapshot and the baseline: each raw item is freed as soon as
/// its entry is built, which keeps a large run's peak memory down.
pub fn ingest_owned(
    feature: Feature,
    snapshot: Snapshot,
    baseline: Option<Baseline>,
    options: IngestOptions,
) -> Ingested {
    let snapshot = IndexedSnapshot::new(feature, snapshot);
    ingest_indexed(feature, snapshot, baseline.map(|b| IndexedBaseline::new(feature, b)), options)
}

/// A snapshot indexed on its own: the part of ingest that needs nothing but the snapshot, so
/// the snapshot and the baseline of a side can be indexed on two threads and then joined by
/// [`ingest_indexed`].
#[derive(Debug, Clone)]
pub struct IndexedSnapshot {
    inventory: Inventory,
    semantics: IndexSemantics,
    checkpoint: Option<String>,
    unrated: usize,
}

impl IndexedSnapshot {
    /// Indexes `snapshot`, consuming it.
    pub fn new(feature: Feature, snapshot: Snapshot) -> Self {
        let unrated = unrated(feature, &snapshot.items);
        IndexedSnapshot {
            inventory: Inventory::from_items(feature, snapshot.items),
            semantics: snapshot.semantics,
            checkpoint: snapshot.checkpoint,
            unrated,
        }
    }

    /// Indexes a snapshot that is still read elsewhere.
    pub fn of_shared(feature: Feature, snapshot: &Snapshot) -> Self {
        IndexedSnapshot {
            inventory: Inventory::new(feature, &snapshot.items),
            semantics: snapshot.semantics,
            checkpoint: snapshot.checkpoint.clone(),
            unrated: unrated(feature, &snapshot.items),
        }
    }
}

/// A baseline indexed on its own (see [`IndexedSnapshot`]).
#[derive(Debug, Clone)]
pub struct IndexedBaseline {
    inventory: Inventory,
    checkpoint: Option<String>,
    keeps_items: bool,
}

impl IndexedBaseline {
    /// Indexes `baseline`, consuming it.
    pub fn new(feature: Feature, baseline: Baseline) -> Self {
        IndexedBaseline {
            inventory: Inventory::from_items(feature, baseline.items),
            checkpoint: baseline.checkpoint,
            keeps_items: true,
        }
    }

    /// Indexes a baseline that is still read elsewhere.
    pub fn of_shared(feature: Feature, baseline: &Baseline) -> Self {
        IndexedBaseline {
            inventory: Inventory::new(feature, &baseline.items),
            checkpoint: baseline.checkpoint.clone(),
            keeps_items: true,
        }
    }

    /// Starts a baseline whose entries keep their keys, tokens, instant and rating but not
    /// their items, fed item by item as the state store reads them (`capacity`: how many).
    ///
    /// That is all the planner reads of a baseline, unless the baseline stands in for the
    /// snapshot (a `delta` snapshot, or one the drop guard finds suspect: see
    /// [`baseline_stands_in`]); a run that finds it does reads the baseline again, whole.
    pub fn keys_only(feature: Feature, capacity: usize) -> KeysOnlyBaseline {
        KeysOnlyBaseline { feature, entries: Vec::with_capacity(capacity), scratch: Scratch::default() }
    }

    /// Whether the entries keep their items (see [`IndexedBaseline::keys_only`]).
    pub fn keeps_items(&self) -> bool {
        self.keeps_items
    }
}

/// A keys-only baseline being read (see [`IndexedBaseline::keys_only`]).
#[derive(Debug)]
pub struct KeysOnlyBaseline {
    feature: Feature,
    entries: Vec<Entry>,
    scratch: Scratch,
}

impl KeysOnlyBaseline {
    /// Adds the entry of one item (a ratings item without a rating in 1–10 is left out, as
    /// from any side).
    pub fn push(&mut self, item: InventoryItem) {
        self.entries.extend(Entry::with_scratch(self.feature, item, &mut self.scratch, Keep::KeysOnly));
    }

    /// Indexes the entries (a baseline is stored in key order: usually nothing to sort).
    pub fn finish(self, checkpoint: Option<String>) -> IndexedBaseline {
        IndexedBaseline {
            inventory: Inventory::from_entries(self.feature, self.entries),
            checkpoint,
            keeps_items: false,
        }
    }
}

/// Whether ingest lets `baseline` stand in for `snapshot`, wholly or in part: a `delta`
/// snapshot is laid over its baseline, and a `present` one the drop guard finds suspect is
/// replaced by it. Only then are a baseline's items read.
pub fn baseline_stands_in(snapshot: &IndexedSnapshot, baseline: &IndexedBaseline, options: IngestOptions) -> bool {
    match snapshot.semantics {
        IndexSemantics::Delta => true,
        IndexSemantics::Present => drop_guard_fires(
            baseline.inventory.len(),
            snapshot.inventory.len(),
            baseline.checkpoint.as_deref(),
            snapshot.checkpoint.as_deref(),
            options,
        ),
    }
}

/// The drop guard ([`guards::is_suspect_drop`]) over a side's baseline and snapshot sizes
/// and checkpoints.
fn drop_guard_fires(
    previous: usize,
    current: usize,
    previous_checkpoint: Option<&str>,
    current_checkpoint: Option<&str>,
    options: IngestOptions,
) -> bool {
    options.drop_guard
        && guards::is_suspect_drop(
            previous,
            current,
            guards::checkpoint_advanced(previous_checkpoint, current_checkpoint),
        )
}

/// Ingest of a side whose snapshot and baseline are indexed: the index semantics and the drop
/// guard (see [`ingest`]).
pub fn ingest_indexed(
    feature: Feature,
    snapshot: IndexedSnapshot,
    baseline: Option<IndexedBaseline>,
    options: IngestOptions,
) -> Ingested {
    if let Some(baseline) = baseline.as_ref().filter(|b| !b.keeps_items && baseline_stands_in(&snapshot, b, options)) {
        return without_baseline_items(feature, snapshot, baseline);
    }
    let (base, previous) = match baseline {
        Some(IndexedBaseline { inventory, checkpoint, .. }) => (Some(inventory), checkpoint),
        None => (None, None),
    };
    let checkpoints = Checkpoints { previous, current: snapshot.checkpoint };
    settle(feature, snapshot.semantics, snapshot.inventory, base, checkpoints, snapshot.unrated, options)
}

/// A side whose baseline should stand in for its snapshot but was read without its items
/// (a caller that reads [`IndexedBaseline::keys_only`] must check [`baseline_stands_in`] and
/// read the baseline whole instead). The side is then marked suspect: nothing is removed
/// because of it and its baseline is kept as it was; an error finding says why.
fn without_baseline_items(feature: Feature, snapshot: IndexedSnapshot, baseline: &IndexedBaseline) -> Ingested {
    let finding = Finding {
        rule_id: DROP_GUARD_RULE.to_owned(),
        severity: Severity::Error,
        message: format!(
            "{feature}: the baseline should stand in for the snapshot but was read without its items; \
             the snapshot is taken as it is, no removals are planned and the baseline is kept"
        ),
        scope_id: None,
        evidence: Some(json!({
            "feature": feature,
            "snapshot_count": snapshot.inventory.len(),
            "baseline_count": baseline.inventory.len(),
        })),
    };
    Ingested {
        current: snapshot.inventory,
        baseline: Some(baseline.inventory.clone()),
        suspect: true,
        findings: vec![finding],
    }
}

/// Ingests a `present` snapshot that is, byte for byte, the one the side's baseline was taken
/// from (the state store recorded its snapshot hash, and every item of it was persisted): the
/// baseline is the snapshot itself, so it is neither read back nor indexed a second time. The
/// snapshot cannot be suspect: it has not changed.
pub fn ingest_indexed_unchanged(feature: Feature, snapshot: IndexedSnapshot) -> Ingested {
    let mut ingested = ingest_indexed(feature, snapshot, None, IngestOptions::default());
    ingested.baseline = Some(ingested.current.clone());
    ingested
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
            if drop_guard_fires(base.len(), snap.len(), previous_checkpoint, checkpoints.current.as_deref(), options) {
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

/// Whether every entry of `side` would be persisted: then a baseline taken from it is the side
/// itself (see [`ingest_indexed_unchanged`]).
pub fn all_persistable(side: &Inventory) -> bool {
    side.entries().all(Entry::persistable)
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

    /// A large side's token hashes, made in two halves on two threads, are those made in one
    /// pass: every entry's hashes where its position says, whatever its number of tokens.
    #[test]
    fn token_hashes_made_in_halves_are_made_in_one_pass() {
        let entries: Vec<Entry> = (0..PARALLEL_ENTRIES as u64 + 1001)
            .filter_map(|n| {
                let mut item = InventoryItem { title: Some(format!("Title {n}")), ..InventoryItem::default() };
                for namespace in ["imdb", "tmdb", "trakt", "tvdb"].into_iter().take((n % 5) as usize) {
                    item.ids.insert(namespace, format!("{}{n}", if namespace == "imdb" { "tt" } else { "" }));
                }
                Entry::new(Feature::Watchlist, item)
            })
            .collect();
        let halves = TokenHashes::of_entries(&entries);
        let one_pass = TokenHashes::of_run(&entries, entries.len());
        assert_eq!((halves.hashes.len(), halves.starts.len()), (one_pass.hashes.len(), entries.len() + 1));
        assert_eq!(halves.starts, one_pass.starts);
        assert_eq!(halves.hashes, one_pass.hashes);
        for position in [0, 1, entries.len() / 2 - 1, entries.len() / 2, entries.len() - 1] {
            let expected: Vec<u64> = entries[position].tokens.iter().map(hash).collect();
            assert_eq!(halves.of(position), expected.as_slice(), "entry {position}");
        }
    }

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

        /// Galloping from any hint finds the partition point a binary search finds.
        #[test]
        fn partition_from_any_hint_is_the_partition_point(
            keys in proptest::collection::btree_set(0u32..200, 0..60),
            probe in 0u32..210,
            hint in 0usize..80,
        ) {
            let entries: Vec<Entry> = keys
                .iter()
                .filter_map(|k| Entry::new(Feature::Watchlist, InventoryItem { title: Some(format!("{k:03}")), ..Default::default() }))
                .collect();
            let probe = format!("movie|title:{probe:03}|year:");
            let before = |e: &Entry| e.key() < probe.as_str();
            prop_assert_eq!(partition_from(&entries, hint, before), entries.partition_point(before));
        }

        /// Claimed entries answer as an inventory of them would, for history's plays too.
        #[test]
        fn claimed_entries_match_as_an_inventory_of_them(
            plays in proptest::collection::vec((0u8..4, 0u8..4, proptest::option::of(0u8..3)), 0..16),
            claim in proptest::collection::vec(any::<bool>(), 16),
            probe in (0u8..4, 0u8..4, proptest::option::of(0u8..3)),
            history in any::<bool>(),
        ) {
            let feature = if history { Feature::History } else { Feature::Watchlist };
            let item = |(tmdb, imdb, at): (u8, u8, Option<u8>)| InventoryItem {
                ids: [("tmdb", tmdb.to_string()), ("imdb", format!("tt{imdb}"))].into_iter().collect(),
                watched_at: at.map(|at| (1_700_000_000 + u64::from(at) * 3600).to_string()),
                ..Default::default()
            };
            let side = Inventory::new(feature, &plays.iter().copied().map(item).collect::<Vec<_>>());
            let mut claimed = Claimed::new(feature);
            let mut claimed_entries = Vec::new();
            for (entry, take) in side.entries().zip(&claim) {
                if *take {
                    claimed.claim(entry);
                    claimed_entries.push(entry.clone());
                }
            }
            // What the planner used before: an inventory of copies of the claimed entries (with
            // the tokens their duplicates brought).
            let reference = Inventory::from_entries(feature, claimed_entries);
            let probe = Entry::new(feature, item(probe)).unwrap();
            // A condition that tells plays apart.
            let accept = |c: &Entry| c.watched_at() != Some(1_700_003_600);
            prop_assert_eq!(claimed.any_match(&probe, accept), reference.any_match(&probe, accept));
            prop_assert_eq!(claimed.any_match(&probe, |_| true), !reference.same_item(&probe).is_empty());
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
