//! The inventory capability: the media-sync provider contract (seed 000).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::health::HealthReport;

/// A syncable feature of a media inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Titles to watch.
    Watchlist,
    /// Ratings, 1–10.
    Ratings,
    /// Plays.
    History,
    /// Playback positions.
    Progress,
    /// Playlist membership.
    Playlists,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 5] =
        [Feature::Watchlist, Feature::Ratings, Feature::History, Feature::Progress, Feature::Playlists];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Watchlist => "watchlist",
            Feature::Ratings => "ratings",
            Feature::History => "history",
            Feature::Progress => "progress",
            Feature::Playlists => "playlists",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Feature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Feature::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            format!(
                "unknown feature `{s}`; known: {}",
                Feature::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// Which features a provider supports. Defaults to none: a provider claims what it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Features {
    /// Watchlist.
    pub watchlist: bool,
    /// Ratings.
    pub ratings: bool,
    /// History.
    pub history: bool,
    /// Progress.
    pub progress: bool,
    /// Playlists.
    pub playlists: bool,
}

impl Features {
    /// All five.
    pub const ALL: Features =
        Features { watchlist: true, ratings: true, history: true, progress: true, playlists: true };

    /// Whether `feature` is supported.
    pub fn supports(&self, feature: Feature) -> bool {
        match feature {
            Feature::Watchlist => self.watchlist,
            Feature::Ratings => self.ratings,
            Feature::History => self.history,
            Feature::Progress => self.progress,
            Feature::Playlists => self.playlists,
        }
    }

    /// The supported features, in order.
    pub fn list(&self) -> Vec<Feature> {
        Feature::ALL.into_iter().filter(|f| self.supports(*f)).collect()
    }
}

/// How to read a snapshot from `build_index`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndexSemantics {
    /// The full inventory; the drop guard applies. The default (safest).
    #[default]
    Present,
    /// Changes only; merged over the baseline; no drop guard.
    Delta,
}

/// Behaviour switches a provider declares. Fill with `..Default::default()`; the defaults are
/// the safest behaviour: present snapshots, no verify-after-write, no checkpoints, no
/// observed deletes, small write chunks. `read_only` defaults to false: a provider that cannot
/// be written to must say so (and refuse writes as unsupported).
///
/// ```
/// use pal::inventory::{IndexSemantics, InventoryCapabilities};
/// let caps = InventoryCapabilities { verify_after_write: true, ..Default::default() };
/// assert_eq!(caps.index_semantics, IndexSemantics::Present);
/// assert!(!caps.observed_deletes);
/// assert!(!caps.read_only);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct InventoryCapabilities {
    /// Present (full) or delta snapshots.
    pub index_semantics: IndexSemantics,
    /// The provider can confirm writes by re-reading.
    pub verify_after_write: bool,
    /// Deletions seen in this provider's snapshots may be propagated (two-way, after guards).
    pub observed_deletes: bool,
    /// `activities` returns per-feature checkpoints.
    pub checkpoint: bool,
    /// Largest number of items per write call.
    pub chunk_size: u32,
    /// Writes report `confirmed_keys` (rather than counts only).
    pub confirms_keys: bool,
    /// The provider cannot be written to; add/remove return unsupported (error class and code
    /// `unsupported`). Such a provider can only be a source. Omitted from JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

impl Default for InventoryCapabilities {
    fn default() -> Self {
        InventoryCapabilities {
            index_semantics: IndexSemantics::Present,
            verify_after_write: false,
            observed_deletes: false,
            checkpoint: false,
            chunk_size: 100,
            confirms_keys: false,
            read_only: false,
        }
    }
}

/// Media item types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// A film (also what a missing type means).
    #[default]
    Movie,
    /// A series.
    Show,
    /// A season of a series.
    Season,
    /// An episode.
    Episode,
}

impl ItemType {
    /// The wire name: `movie`, `show`, `season` or `episode`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Movie => "movie",
            ItemType::Show => "show",
            ItemType::Season => "season",
            ItemType::Episode => "episode",
        }
    }
}

pub use crate::ids::Ids;

/// One item of an inventory, as providers report and accept it.
///
/// `Deserialize` is written out (below) rather than derived: the derive, because of
/// `#[serde(flatten)]`, buffers every field of every item before reading it, which made loading
/// large inventories several times slower. The `serde` attributes here still define the
/// serialised form and the JSON Schema, and the hand-written reader accepts the same input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct InventoryItem {
    /// The item type.
    #[serde(rename = "type", default)]
    pub item_type: ItemType,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Release year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    /// Ids; at least one stable id is expected.
    #[serde(default)]
    pub ids: Ids,
    /// The show's ids, for seasons and episodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_ids: Option<Ids>,
    /// Season number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub season: Option<u32>,
    /// Episode number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u32>,
    /// Rating, 1–10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// When it was rated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated_at: Option<String>,
    /// When it was watched (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_at: Option<String>,
    /// Playback position, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_ms: Option<u64>,
    /// Runtime, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When the position was recorded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_at: Option<String>,
    /// Vendor payloads (`extra.<vendor>`) and persistence flags (`_cw_transient`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A key of an item object: a field of [`InventoryItem`], or anything else (kept in `extra`).
enum ItemKey {
    Field(usize),
    Other(String),
}

/// The wire names of the fields of [`InventoryItem`] other than `extra`, in declaration order.
const ITEM_FIELDS: [&str; 13] = [
    "type",
    "title",
    "year",
    "ids",
    "show_ids",
    "season",
    "episode",
    "rating",
    "rated_at",
    "watched_at",
    "progress_ms",
    "duration_ms",
    "progress_at",
];

impl<'de> Deserialize<'de> for ItemKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = ItemKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<ItemKey, E> {
                Ok(match ITEM_FIELDS.iter().position(|field| *field == key) {
                    Some(at) => ItemKey::Field(at),
                    None => ItemKey::Other(key.to_owned()),
                })
            }
            fn visit_string<E: serde::de::Error>(self, key: String) -> Result<ItemKey, E> {
                Ok(match ITEM_FIELDS.iter().position(|field| *field == key) {
                    Some(at) => ItemKey::Field(at),
                    None => ItemKey::Other(key),
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for InventoryItem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> serde::de::Visitor<'de> for ItemVisitor {
            type Value = InventoryItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct InventoryItem")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<InventoryItem, A::Error> {
                let mut item = InventoryItem::default();
                let mut seen = [false; ITEM_FIELDS.len()];
                while let Some(key) = map.next_key::<ItemKey>()? {
                    let at = match key {
                        ItemKey::Field(at) => at,
                        ItemKey::Other(key) => {
                            // Like the map `flatten` fills: a repeated unknown key keeps its
                            // last value.
                            let value = map.next_value()?;
                            item.extra.insert(key, value);
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[at], true) {
                        return Err(serde::de::Error::duplicate_field(ITEM_FIELDS[at]));
                    }
                    match at {
                        0 => item.item_type = map.next_value()?,
                        1 => item.title = map.next_value()?,
                        2 => item.year = map.next_value()?,
                        3 => item.ids = map.next_value()?,
                        4 => item.show_ids = map.next_value()?,
                        5 => item.season = map.next_value()?,
                        6 => item.episode = map.next_value()?,
                        7 => item.rating = map.next_value()?,
                        8 => item.rated_at = map.next_value()?,
                        9 => item.watched_at = map.next_value()?,
                        10 => item.progress_ms = map.next_value()?,
                        11 => item.duration_ms = map.next_value()?,
                        _ => item.progress_at = map.next_value()?,
                    }
                }
                Ok(item)
            }
        }
        deserializer.deserialize_map(ItemVisitor)
    }
}

impl InventoryItem {
    /// The item as a map with sorted keys (see [`SortedKeys`]).
    pub fn sorted_keys(&self) -> SortedKeys<'_> {
        SortedKeys(self)
    }

    /// Appends the item's canonical CBOR (what [`admit_core::write_canonical_cbor`] writes for
    /// it, byte for byte) to `out`: a snapshot's hash encodes every item, and the generic
    /// encoder buffers and sorts the fields of a struct with flattened `extra` one by one.
    ///
    /// An item with vendor payloads goes through the generic encoder; so does its error, a
    /// payload that cannot be encoded (a key that repeats a field's name).
    pub fn write_canonical_cbor(&self, out: &mut Vec<u8>) -> Result<(), admit_core::CanonicalError> {
        use admit_core::{write_cbor_map_head as map_head, write_cbor_text as text};
        if !self.extra.is_empty() {
            return admit_core::write_canonical_cbor(self, out);
        }
        /// A field's value, as the generic encoder writes it.
        enum Value<'a> {
            Integer(i128),
            Text(&'a str),
            Ids(&'a Ids),
        }
        use Value::{Ids as IdsOf, Integer, Text};
        let integer = |n: Option<u64>| n.map(|n| Integer(n.into()));
        // One table in canonical key order (by length, then bytewise): what is present gives
        // both the map's size and its entries.
        let fields: [(&str, Option<Value<'_>>); 13] = [
            ("ids", Some(IdsOf(&self.ids))),
            ("type", Some(Text(self.item_type.as_str()))),
            ("year", self.year.map(|y| Integer(y.into()))),
            ("title", self.title.as_deref().map(Text)),
            ("rating", integer(self.rating.map(u64::from))),
            ("season", integer(self.season.map(u64::from))),
            ("episode", integer(self.episode.map(u64::from))),
            ("rated_at", self.rated_at.as_deref().map(Text)),
            ("show_ids", self.show_ids.as_ref().map(IdsOf)),
            ("watched_at", self.watched_at.as_deref().map(Text)),
            ("duration_ms", integer(self.duration_ms)),
            ("progress_at", self.progress_at.as_deref().map(Text)),
            ("progress_ms", integer(self.progress_ms)),
        ];
        map_head(out, fields.iter().filter(|(_, value)| value.is_some()).count());
        for (key, value) in fields.iter().filter_map(|(key, value)| Some((key, value.as_ref()?))) {
            text(out, key);
            match value {
                Integer(n) => admit_core::write_cbor_integer(out, *n),
                Text(t) => text(out, t),
                IdsOf(ids) => canonical_ids(ids, out),
            }
        }
        Ok(())
    }
}

/// An item that serialises with its keys in sorted order, its fields and `extra` merged:
/// what serialising [`serde_json::to_value`] of the item writes, without building the value.
/// JSON that cw writes has sorted keys, and a large listing (`cw diff`) spent most of its
/// output time building values.
#[derive(Debug, Clone, Copy)]
pub struct SortedKeys<'a>(&'a InventoryItem);

/// A field's value in [`SortedKeys`].
enum FieldValue<'a> {
    Type(ItemType),
    Text(&'a str),
    Signed(i64),
    Unsigned(u64),
    Ids(&'a Ids),
}

impl Serialize for FieldValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Type(item_type) => item_type.serialize(serializer),
            FieldValue::Text(text) => serializer.serialize_str(text),
            FieldValue::Signed(n) => serializer.serialize_i64(*n),
            FieldValue::Unsigned(n) => serializer.serialize_u64(*n),
            FieldValue::Ids(ids) => ids.serialize(serializer),
        }
    }
}

impl Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use FieldValue::{Ids as IdsOf, Signed, Text, Unsigned};
        use serde::ser::SerializeMap;
        let item = self.0;
        let unsigned = |n: Option<u64>| n.map(Unsigned);
        // In key order (bytewise), as a map of the fields would hold them.
        let fields: [(&str, Option<FieldValue<'_>>); 13] = [
            ("duration_ms", unsigned(item.duration_ms)),
            ("episode", unsigned(item.episode.map(u64::from))),
            ("ids", Some(IdsOf(&item.ids))),
            ("progress_at", item.progress_at.as_deref().map(Text)),
            ("progress_ms", unsigned(item.progress_ms)),
            ("rated_at", item.rated_at.as_deref().map(Text)),
            ("rating", unsigned(item.rating.map(u64::from))),
            ("season", unsigned(item.season.map(u64::from))),
            ("show_ids", item.show_ids.as_ref().map(IdsOf)),
            ("title", item.title.as_deref().map(Text)),
            ("type", Some(FieldValue::Type(item.item_type))),
            ("watched_at", item.watched_at.as_deref().map(Text)),
            ("year", item.year.map(|y| Signed(y.into()))),
        ];
        // A key of `extra` that repeats a field's name takes the field's place, as it does in
        // the value (flattened entries are written after the fields).
        let present = || fields.iter().filter_map(|(key, value)| Some((*key, value.as_ref()?)));
        let fields_kept = present().filter(|(key, _)| !item.extra.contains_key(*key)).count();
        let mut map = serializer.serialize_map(Some(fields_kept + item.extra.len()))?;
        let mut fields = present().filter(|(key, _)| !item.extra.contains_key(*key)).peekable();
        let mut extra = item.extra.iter().peekable();
        loop {
            match (fields.peek(), extra.peek()) {
                (Some((field, value)), Some((key, _))) if *field < key.as_str() => {
                    map.serialize_entry(field, value)?;
                    fields.next();
                }
                (_, Some((key, value))) => {
                    map.serialize_entry(key, value)?;
                    extra.next();
                }
                (Some((field, value)), None) => {
                    map.serialize_entry(field, value)?;
                    fields.next();
                }
                (None, None) => break,
            }
        }
        map.end()
    }
}

/// The snapshot hash of `items` as facts ([`admit_core::snapshot_hash`], the same digest)
/// through the hand-written encoder ([`InventoryItem::write_canonical_cbor`]).
pub fn snapshot_hash(
    items: &[InventoryItem],
    algorithm: admit_core::DigestAlgorithm,
) -> Result<admit_core::Digest, admit_core::CanonicalError> {
    let mut bytes = Vec::new();
    let mut ranges = Vec::with_capacity(items.len());
    for item in items {
        let start = bytes.len();
        item.write_canonical_cbor(&mut bytes)?;
        ranges.push(start..bytes.len());
        if start == 0 {
            // Sized from the first item (and a quarter more): grown by doubling, a large
            // snapshot's encodings would be copied several times over into fresh memory.
            bytes.reserve(items.len().saturating_mul(bytes.len() + bytes.len() / 4));
        }
    }
    Ok(admit_core::snapshot_hash_of_encoded(&bytes, ranges, algorithm))
}

/// Ids as a canonical CBOR map: namespaces by length, then bytewise (`Ids` keeps them bytewise).
fn canonical_ids(ids: &Ids, out: &mut Vec<u8>) {
    const INLINE: usize = 8;
    let mut inline = [("", ""); INLINE];
    let mut spilled = Vec::new();
    let mut len = 0;
    for entry in ids {
        if len < INLINE {
            inline[len] = entry;
        } else {
            if spilled.is_empty() {
                spilled.extend_from_slice(&inline);
            }
            spilled.push(entry);
        }
        len += 1;
    }
    let entries: &mut [(&str, &str)] = if len <= INLINE { &mut inline[..len] } else { &mut spilled };
    // Stable, and the entries come bytewise: sorting by length alone gives the canonical order.
    entries.sort_by_key(|(namespace, _)| namespace.len());
    admit_core::write_cbor_map_head(out, entries.len());
    for (namespace, id) in entries.iter() {
        admit_core::write_cbor_text(out, namespace);
        admit_core::write_cbor_text(out, id);
    }
}

/// An item a write could not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnresolvedItem {
    /// The item's ids (an unresolved item without ids is a provider bug).
    #[serde(default)]
    pub ids: Ids,
    /// Why it could not be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The result of `add` or `remove`.
///
/// Best: `confirmed_keys`. Acceptable: a `confirmed` count. Not acceptable: `{ok: true}` with
/// neither (a no-op warning to the applier).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WriteResult {
    /// The call succeeded as a whole.
    pub ok: bool,
    /// Canonical keys of the items applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_keys: Option<Vec<String>>,
    /// How many items were applied, when keys are not reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<u64>,
    /// Items not applied.
    #[serde(default)]
    pub unresolved: Vec<UnresolvedItem>,
    /// The call was a dry run: nothing was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Checkpoints by feature name (plus `updated_at`), as RFC 3339 strings.
pub type Activities = BTreeMap<String, String>;

/// A media inventory provider (Plex, Jellyfin, Trakt, a local library, a file).
///
/// Required: identity, features, capabilities, `build_index`, `add`, `remove`. `health`
/// defaults to `ok` and `activities` to none; implement both when the vendor allows, because
/// the guards work better with them.
///
/// ```
/// use pal::inventory::*;
/// use pal::{HealthReport, ProviderError};
///
/// #[derive(Debug)]
/// struct Empty;
///
/// #[pal::async_trait]
/// impl InventoryProvider for Empty {
///     fn name(&self) -> &str { "EMPTY" }
///     fn label(&self) -> &str { "Empty" }
///     fn features(&self) -> Features { Features { watchlist: true, ..Default::default() } }
///     fn capabilities(&self) -> InventoryCapabilities { InventoryCapabilities::default() }
///     async fn build_index(&self, _: Feature) -> Result<Vec<InventoryItem>, ProviderError> { Ok(vec![]) }
///     async fn add(&self, items: Vec<InventoryItem>, _: Feature, dry_run: bool) -> Result<WriteResult, ProviderError> {
///         Ok(WriteResult { ok: true, confirmed_keys: Some(vec![]), dry_run, ..Default::default() })
///     }
///     async fn remove(&self, items: Vec<InventoryItem>, f: Feature, dry_run: bool) -> Result<WriteResult, ProviderError> {
///         self.add(items, f, dry_run).await
///     }
/// }
/// ```
#[async_trait]
pub trait InventoryProvider: Send + Sync + fmt::Debug {
    /// Stable, unique id used in config and state, e.g. `PLEX`.
    fn name(&self) -> &str;
    /// Human-readable name, e.g. `Plex`.
    fn label(&self) -> &str;
    /// Supported features.
    fn features(&self) -> Features;
    /// Behaviour switches.
    fn capabilities(&self) -> InventoryCapabilities;
    /// The snapshot of one feature.
    async fn build_index(&self, feature: Feature) -> Result<Vec<InventoryItem>, ProviderError>;
    /// Adds or upserts items. With `dry_run`, writes nothing and reports what it would do.
    /// A read-only provider (`capabilities().read_only`) fails with class `unsupported`.
    async fn add(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError>;
    /// Removes items. With `dry_run`, writes nothing. A read-only provider fails with class
    /// `unsupported`.
    async fn remove(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError>;
    /// Health; drives run gating.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
    /// Per-feature checkpoints.
    async fn activities(&self) -> Result<Activities, ProviderError> {
        Ok(Activities::new())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_ids() -> impl Strategy<Value = Ids> {
        // Namespaces of several lengths (the canonical order is by length first), up to more
        // than the encoder keeps on its stack.
        proptest::collection::vec(("[a-z]{1,6}|\\PC{0,3}", "\\PC{0,8}"), 0..11)
            .prop_map(|entries| entries.into_iter().collect())
    }

    prop_compose! {
        fn arb_item()(
            item_type in prop::sample::select(vec![ItemType::Movie, ItemType::Show, ItemType::Season, ItemType::Episode]),
            title in proptest::option::of("\\PC{0,30}"),
            year in proptest::option::of(any::<i32>()),
            ids in arb_ids(),
            show_ids in proptest::option::of(arb_ids()),
            numbers in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()), proptest::option::of(any::<u8>())),
            times in (proptest::option::of("\\PC{0,25}"), proptest::option::of("\\PC{0,25}"), proptest::option::of("\\PC{0,25}")),
            progress in (proptest::option::of(any::<u64>()), proptest::option::of(any::<u64>())),
            extra in proptest::option::of(prop::sample::select(vec![
                serde_json::json!({"plex": {"ratingKey": "5"}}),
                serde_json::json!({"_cw_transient": true, "z": 1.5}),
                // Repeats a field's name: the generic encoder's error, both ways.
                serde_json::json!({"title": "again"}),
            ])),
        ) -> InventoryItem {
            let extra = match extra {
                Some(serde_json::Value::Object(map)) => map,
                _ => Extra::new(),
            };
            InventoryItem {
                item_type, title, year, ids, show_ids,
                season: numbers.0, episode: numbers.1, rating: numbers.2,
                rated_at: times.0, watched_at: times.1, progress_at: times.2,
                progress_ms: progress.0, duration_ms: progress.1,
                extra,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The hand-written canonical encoding is the generic encoder's, byte for byte (or the
        /// same error).
        #[test]
        fn the_canonical_encoding_is_the_generic_one(item in arb_item()) {
            let mut fast = Vec::new();
            let fast = item.write_canonical_cbor(&mut fast).map(|()| fast);
            prop_assert_eq!(fast, admit_core::to_canonical_cbor(&item));
        }

        /// Serialised with sorted keys, an item is its value serialised (the value's maps are
        /// ordered by key), byte for byte.
        #[test]
        fn sorted_keys_serialise_as_the_value(item in arb_item()) {
            let value = serde_json::to_value(&item).unwrap();
            prop_assert_eq!(
                serde_json::to_string_pretty(&item.sorted_keys()).unwrap(),
                serde_json::to_string_pretty(&value).unwrap()
            );
        }

        /// So is the snapshot hash of a list of items.
        #[test]
        fn the_snapshot_hash_is_the_generic_one(items in proptest::collection::vec(arb_item(), 0..6)) {
            let algorithm = admit_core::DigestAlgorithm::Blake3;
            prop_assert_eq!(snapshot_hash(&items, algorithm), admit_core::snapshot_hash(&items, algorithm));
        }
    }

    #[test]
    fn item_type_names_are_the_wire_names() {
        for item_type in [ItemType::Movie, ItemType::Show, ItemType::Season, ItemType::Episode] {
            assert_eq!(serde_json::to_value(item_type).unwrap(), item_type.as_str());
        }
    }

    /// The hand-written `Deserialize` reads what the derived `Serialize` writes, keeps unknown
    /// keys in `extra`, and refuses what the derive refused.
    #[test]
    fn item_deserialisation() {
        let json = serde_json::json!({
            "type": "episode", "title": "Pilot", "year": 2008, "ids": {"tvdb": "349232"},
            "show_ids": {"tvdb": "81189"}, "season": 1, "episode": 1, "rating": 8,
            "rated_at": "2024-01-01T00:00:00Z", "watched_at": "2024-01-02T00:00:00Z", "progress_ms": 60000,
            "duration_ms": 3600000, "progress_at": "2024-01-03T00:00:00Z",
            "plex": {"ratingKey": "5"}, "_cw_transient": true, "tmdb": 949
        });
        let item: InventoryItem = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(item.item_type, ItemType::Episode);
        assert_eq!(item.extra.keys().collect::<Vec<_>>(), ["_cw_transient", "plex", "tmdb"]);
        assert_eq!(serde_json::to_value(&item).unwrap(), json);
        let text = serde_json::to_string(&item).unwrap();
        assert_eq!(serde_json::from_str::<InventoryItem>(&text).unwrap(), item);
        // Missing and null fields are defaults.
        let bare: InventoryItem = serde_json::from_str(r#"{"title": null, "x": [1]}"#).unwrap();
        assert_eq!(bare.item_type, ItemType::Movie);
        assert_eq!(bare.title, None);
        assert_eq!(bare.extra["x"], serde_json::json!([1]));
        // Refused: repeated fields, wrong types, non-objects.
        for bad in [r#"{"title": "a", "title": "b"}"#, r#"{"year": "x"}"#, r#"{"type": "anime"}"#, "[]", "3"] {
            assert!(serde_json::from_str::<InventoryItem>(bad).is_err(), "{bad}");
        }
    }
}
