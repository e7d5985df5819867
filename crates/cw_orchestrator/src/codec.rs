//! The binary form of a baseline chunk (the state store's `baseline_chunks.items`): a version
//! byte, the number of items, then for each item its entry key and its fields, lengths and
//! numbers as LEB128 varints. A baseline is written and read whole on every run that changes it; in this form it
//! takes a fraction of the time JSON takes both ways, and less room.
//!
//! Each item is `key`, then a field mask (bits 0–1 the item type, then one bit per field
//! present, in [`InventoryItem`]'s order), then the fields present: strings as length and
//! UTF-8 bytes, numbers as varints (the year zigzag-encoded), ids as a count and
//! namespace/id pairs, and the vendor payloads (`extra`) as their JSON text. Decoding checks
//! everything it reads and fails with a message rather than trusting the file.

use pal::Extra;
use pal::ids::IdsBuilder;
use pal::inventory::{Ids, InventoryItem, ItemType};

/// The first byte of a chunk in this form.
const VERSION: u8 = 1;

const TITLE: u64 = 1 << 2;
const YEAR: u64 = 1 << 3;
const IDS: u64 = 1 << 4;
const SHOW_IDS: u64 = 1 << 5;
const SEASON: u64 = 1 << 6;
const EPISODE: u64 = 1 << 7;
const RATING: u64 = 1 << 8;
const RATED_AT: u64 = 1 << 9;
const WATCHED_AT: u64 = 1 << 10;
const PROGRESS_MS: u64 = 1 << 11;
const DURATION_MS: u64 = 1 << 12;
const PROGRESS_AT: u64 = 1 << 13;
const EXTRA: u64 = 1 << 14;
const KNOWN: u64 = (1 << 15) - 1;

/// Writes items into one chunk.
#[derive(Debug, Default)]
pub(crate) struct ChunkEncoder {
    items: Vec<u8>,
    count: u64,
}

impl ChunkEncoder {
    /// Whether no item was written yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many items were written.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Appends an item under its entry key.
    pub(crate) fn push(&mut self, key: &str, item: &InventoryItem) {
        self.count += 1;
        text(&mut self.items, key);
        encode_item(&mut self.items, item);
    }

    /// Appends an item already in this form ([`encode_item`]) under its entry key.
    pub(crate) fn push_encoded(&mut self, key: &str, item: &[u8]) {
        self.count += 1;
        text(&mut self.items, key);
        self.items.extend_from_slice(item);
    }

    /// The chunk's bytes; the encoder starts a new chunk.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let ChunkEncoder { items, count } = std::mem::take(self);
        let mut bytes = Vec::with_capacity(items.len() + 11);
        bytes.push(VERSION);
        varint(&mut bytes, count);
        bytes.extend_from_slice(&items);
        bytes
    }
}

/// Appends `item` in this form, without its key: the field mask, then the fields present.
/// An [`crate::ingest::Entry`] keeps its item this way, and a baseline chunk takes it as it is.
pub(crate) fn encode_item(out: &mut Vec<u8>, item: &InventoryItem) {
    let kind = match item.item_type {
        ItemType::Movie => 0,
        ItemType::Show => 1,
        ItemType::Season => 2,
        ItemType::Episode => 3,
    };
    let mut mask = kind;
    let mut flag = |present: bool, bit: u64| {
        if present {
            mask |= bit;
        }
    };
    flag(item.title.is_some(), TITLE);
    flag(item.year.is_some(), YEAR);
    flag(!item.ids.is_empty(), IDS);
    flag(item.show_ids.is_some(), SHOW_IDS);
    flag(item.season.is_some(), SEASON);
    flag(item.episode.is_some(), EPISODE);
    flag(item.rating.is_some(), RATING);
    flag(item.rated_at.is_some(), RATED_AT);
    flag(item.watched_at.is_some(), WATCHED_AT);
    flag(item.progress_ms.is_some(), PROGRESS_MS);
    flag(item.duration_ms.is_some(), DURATION_MS);
    flag(item.progress_at.is_some(), PROGRESS_AT);
    flag(!item.extra.is_empty(), EXTRA);
    varint(out, mask);
    if let Some(title) = &item.title {
        text(out, title);
    }
    if let Some(year) = item.year {
        varint(out, zigzag(i64::from(year)));
    }
    if !item.ids.is_empty() {
        ids(out, &item.ids);
    }
    if let Some(show_ids) = &item.show_ids {
        ids(out, show_ids);
    }
    for number in [item.season, item.episode].into_iter().flatten() {
        varint(out, u64::from(number));
    }
    if let Some(rating) = item.rating {
        varint(out, u64::from(rating));
    }
    for at in [&item.rated_at, &item.watched_at].into_iter().flatten() {
        text(out, at);
    }
    for number in [item.progress_ms, item.duration_ms].into_iter().flatten() {
        varint(out, number);
    }
    if let Some(at) = &item.progress_at {
        text(out, at);
    }
    if !item.extra.is_empty() {
        // A map of JSON values under string keys always serialises.
        text(out, &serde_json::to_string(&item.extra).unwrap_or_default());
    }
}

/// The item [`encode_item`] wrote into `bytes` (all of them).
pub(crate) fn decode_item(bytes: &[u8]) -> Result<InventoryItem, String> {
    let mut decoder = ChunkDecoder { rest: bytes, left: 0 };
    let item = decoder.item("")?;
    if decoder.rest.is_empty() { Ok(item) } else { Err(format!("{} bytes after the item", decoder.rest.len())) }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn text(out: &mut Vec<u8>, text: &str) {
    varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn ids(out: &mut Vec<u8>, ids: &Ids) {
    // The count goes first; fewer than 128 ids (always, in practice) take one byte, so the
    // entries are written after a placeholder and counted on the way (one walk of the ids).
    let at = out.len();
    out.push(0);
    let mut count = 0u64;
    for (namespace, id) in ids {
        text(out, namespace);
        text(out, id);
        count += 1;
    }
    if count < 0x80 {
        out[at] = count as u8;
    } else {
        let mut head = Vec::with_capacity(10);
        varint(&mut head, count);
        out.splice(at..=at, head);
    }
}

/// Reads the items of a chunk.
#[derive(Debug)]
pub(crate) struct ChunkDecoder<'a> {
    rest: &'a [u8],
    /// Items not read yet.
    left: u64,
}

impl<'a> ChunkDecoder<'a> {
    /// A decoder of `bytes`, which must be a chunk in this form.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, String> {
        let mut decoder = match bytes.split_first() {
            Some((&VERSION, rest)) => ChunkDecoder { rest, left: 0 },
            Some((version, _)) => return Err(format!("unknown chunk version {version}")),
            None => return Err("an empty chunk".to_owned()),
        };
        decoder.left = decoder.varint()?;
        Ok(decoder)
    }

    /// The next item and its key; `None` after the last, when the chunk holds nothing more.
    pub(crate) fn next_item(&mut self) -> Result<Option<(&'a str, InventoryItem)>, String> {
        if self.left == 0 {
            return if self.rest.is_empty() {
                Ok(None)
            } else {
                Err(format!("{} bytes after the last item", self.rest.len()))
            };
        }
        if self.rest.is_empty() {
            return Err(format!("the chunk ends {} item(s) short", self.left));
        }
        self.left -= 1;
        let key = self.text()?;
        Ok(Some((key, self.item(key)?)))
    }

    /// The fields of one item (`key` names it in errors).
    fn item(&mut self, key: &str) -> Result<InventoryItem, String> {
        let mask = self.varint()?;
        if mask & !KNOWN != 0 {
            return Err(format!("item {key}: unknown fields (mask {mask:#x})"));
        }
        let item_type = match mask & 3 {
            0 => ItemType::Movie,
            1 => ItemType::Show,
            2 => ItemType::Season,
            _ => ItemType::Episode,
        };
        let mut item = InventoryItem { item_type, ..InventoryItem::default() };
        let has = |bit: u64| mask & bit != 0;
        let fail = |what: &str, message: String| format!("item {key}: {what}: {message}");
        if has(TITLE) {
            item.title = Some(self.text().map_err(|e| fail("title", e))?.to_owned());
        }
        if has(YEAR) {
            let year = self.varint().map_err(|e| fail("year", e))?;
            let year = ((year >> 1) as i64) ^ -((year & 1) as i64);
            item.year = Some(i32::try_from(year).map_err(|e| fail("year", e.to_string()))?);
        }
        if has(IDS) {
            item.ids = self.ids().map_err(|e| fail("ids", e))?;
        }
        if has(SHOW_IDS) {
            item.show_ids = Some(self.ids().map_err(|e| fail("show_ids", e))?);
        }
        if has(SEASON) {
            item.season = Some(self.number("season").map_err(|e| fail("season", e))?);
        }
        if has(EPISODE) {
            item.episode = Some(self.number("episode").map_err(|e| fail("episode", e))?);
        }
        if has(RATING) {
            item.rating = Some(self.number("rating").map_err(|e| fail("rating", e))?);
        }
        if has(RATED_AT) {
            item.rated_at = Some(self.text().map_err(|e| fail("rated_at", e))?.to_owned());
        }
        if has(WATCHED_AT) {
            item.watched_at = Some(self.text().map_err(|e| fail("watched_at", e))?.to_owned());
        }
        if has(PROGRESS_MS) {
            item.progress_ms = Some(self.varint().map_err(|e| fail("progress_ms", e))?);
        }
        if has(DURATION_MS) {
            item.duration_ms = Some(self.varint().map_err(|e| fail("duration_ms", e))?);
        }
        if has(PROGRESS_AT) {
            item.progress_at = Some(self.text().map_err(|e| fail("progress_at", e))?.to_owned());
        }
        if has(EXTRA) {
            let json = self.text().map_err(|e| fail("extra", e))?;
            item.extra = serde_json::from_str::<Extra>(json).map_err(|e| fail("extra", e.to_string()))?;
        }
        Ok(item)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for (at, &byte) in self.rest.iter().enumerate().take(10) {
            n |= u64::from(byte & 0x7f).checked_shl(7 * at as u32).unwrap_or(u64::MAX);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[at + 1..];
                return Ok(n);
            }
        }
        Err("a number is cut short or too long".to_owned())
    }

    fn number<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, String> {
        let n = self.varint()?;
        T::try_from(n).map_err(|_| format!("{n} is out of range for {what}"))
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let len = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
        if len > self.rest.len() {
            return Err(format!("a text of {len} bytes where {} are left", self.rest.len()));
        }
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))
    }

    fn ids(&mut self) -> Result<Ids, String> {
        let count = self.varint()?;
        let mut ids = IdsBuilder::new();
        for _ in 0..count {
            let namespace = self.text()?;
            let id = self.text()?;
            ids.push(namespace, id);
        }
        Ok(ids.finish())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_ids() -> impl Strategy<Value = Ids> {
        proptest::collection::vec(("[a-z]{0,5}", "\\PC{0,8}"), 0..5).prop_map(|entries| entries.into_iter().collect())
    }

    fn arb_item() -> impl Strategy<Value = InventoryItem> {
        let kind = proptest::sample::select(vec![ItemType::Movie, ItemType::Show, ItemType::Season, ItemType::Episode]);
        let text = || proptest::option::of("\\PC{0,12}");
        (
            (kind, text(), proptest::option::of(any::<i32>()), arb_ids(), proptest::option::of(arb_ids())),
            (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u8>())),
            (text(), text(), proptest::option::of(any::<u64>()), proptest::option::of(any::<u64>()), text()),
            proptest::option::of(("[a-z_]{1,6}", any::<bool>())),
        )
            .prop_map(|((item_type, title, year, ids, show_ids), (season, episode, rating), times, extra)| {
                let (rated_at, watched_at, progress_ms, duration_ms, progress_at) = times;
                let mut item = InventoryItem {
                    item_type,
                    title,
                    year,
                    ids,
                    show_ids,
                    season,
                    episode,
                    rating,
                    rated_at,
                    watched_at,
                    progress_ms,
                    duration_ms,
                    progress_at,
                    ..InventoryItem::default()
                };
                if let Some((name, flag)) = extra {
                    item.extra.insert(name, serde_json::json!({"ignored": flag, "list": [1, "two"]}));
                }
                item
            })
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<(String, InventoryItem)>, String> {
        let mut decoder = ChunkDecoder::new(bytes)?;
        let mut items = Vec::new();
        while let Some((key, item)) = decoder.next_item()? {
            items.push((key.to_owned(), item));
        }
        Ok(items)
    }

    proptest! {
        /// Every item comes back as it was written, whatever its fields hold.
        #[test]
        fn items_round_trip(items in proptest::collection::vec(("\\PC{0,10}", arb_item()), 0..8)) {
            let mut encoder = ChunkEncoder::default();
            for (key, item) in &items {
                encoder.push(key, item);
            }
            prop_assert_eq!(encoder.is_empty(), items.is_empty());
            let chunk = encoder.finish();
            prop_assert_eq!(decode_all(&chunk).unwrap(), items.clone());
            // An item encoded on its own (as an entry keeps it) decodes alone, and a chunk made
            // of such encodings is byte for byte the chunk made of the items.
            let mut encoded = ChunkEncoder::default();
            for (key, item) in &items {
                let mut bytes = Vec::new();
                encode_item(&mut bytes, item);
                prop_assert_eq!(&decode_item(&bytes).unwrap(), item);
                prop_assert!(decode_item(&bytes[..bytes.len() - 1]).is_err());
                encoded.push_encoded(key, &bytes);
            }
            prop_assert_eq!(encoded.finish(), chunk);
        }

        /// Damaged bytes give an error or items, never a panic; a chunk cut short is an error.
        #[test]
        fn damaged_chunks_are_errors_not_panics(
            items in proptest::collection::vec(("[a-z:0-9]{1,10}", arb_item()), 1..4),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut encoder = ChunkEncoder::default();
            for (key, item) in &items {
                encoder.push(key, item);
            }
            let bytes = encoder.finish();
            let mut damaged = bytes.clone();
            for (at, byte) in flips {
                let at = at.index(damaged.len());
                damaged[at] = byte;
            }
            let _ = decode_all(&damaged);
            let cut = 1 + cut.index(bytes.len() - 1);
            prop_assert!(decode_all(&bytes[..cut]).is_err(), "a chunk cut at {} of {} bytes decoded", cut, bytes.len());
        }
    }

    /// An item with more ids than fit a one-byte count (the count is written after them).
    #[test]
    fn many_ids_round_trip() {
        for n in [127usize, 128, 300] {
            let ids: Ids = (0..n).map(|i| (format!("ns{i:03}"), i.to_string())).collect();
            let item = InventoryItem { ids: ids.clone(), show_ids: Some(ids), ..InventoryItem::default() };
            let mut bytes = Vec::new();
            encode_item(&mut bytes, &item);
            assert_eq!(decode_item(&bytes).unwrap(), item, "{n} ids");
        }
    }

    #[test]
    fn unknown_versions_and_fields_are_refused() {
        assert!(ChunkDecoder::new(&[]).is_err());
        assert!(ChunkDecoder::new(&[2, 0]).is_err());
        // One item, key "k", then a mask with a bit this build does not know.
        let mut bytes = vec![VERSION, 1, 1, b'k'];
        varint(&mut bytes, 1 << 20);
        let error = decode_all(&bytes).unwrap_err();
        assert!(error.contains("unknown fields"), "{error}");
    }
}
