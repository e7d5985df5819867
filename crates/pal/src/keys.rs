//! Id normalisation, canonical keys and matching tokens of inventory items (CONTRACTS §3,
//! "Items and keys"). Pure functions: no I/O, no clock, no state.
//!
//! Every function here normalises its input first, so it gives the same answer for a raw item
//! and for that item after [`normalize_item`]; callers that handle many items should still
//! normalise each item **once** at ingest and keep the result.
//!
//! ```
//! use pal::inventory::{InventoryItem, ItemType};
//! use pal::keys::{canonical_key, normalize_ids, strong_tokens};
//!
//! let movie: InventoryItem = serde_json::from_value(serde_json::json!({
//!     "type": "movie", "title": "Heat", "year": 1995,
//!     "ids": {"imdb": "https://www.imdb.com/title/TT0113277/", "guid": "tmdb://movie/949"},
//! })).unwrap();
//! let ids = normalize_ids(&movie);
//! assert_eq!(ids.get("imdb"), Some("tt0113277"));
//! assert_eq!(ids.get("tmdb"), Some("949")); // parsed out of the guid
//! assert_eq!(canonical_key(&movie), "tmdb:949");
//! assert!(strong_tokens(&movie).contains("imdb:tt0113277"));
//!
//! let episode = InventoryItem {
//!     item_type: ItemType::Episode,
//!     show_ids: Some([("tvdb".to_owned(), "81189".to_owned())].into()),
//!     season: Some(1),
//!     episode: Some(2),
//!     ..Default::default()
//! };
//! assert_eq!(canonical_key(&episode), "tvdb:81189#s01e02");
//! ```

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::Value;

use crate::inventory::{Ids, InventoryItem, ItemType};

/// Every id namespace the contract knows, in its order.
pub const ID_NAMESPACES: [&str; 14] = [
    "imdb", "tmdb", "tvdb", "trakt", "simkl", "mal", "anilist", "kitsu", "anidb", "plex", "jellyfin", "emby", "guid",
    "slug",
];

/// Namespaces whose ids are numbers: normalised to the digits they contain.
pub const NUMERIC_NAMESPACES: [&str; 11] =
    ["tmdb", "tvdb", "trakt", "simkl", "mal", "anilist", "kitsu", "anidb", "plex", "jellyfin", "emby"];

/// The order in which an id becomes an item's canonical key.
pub const KEY_PRIORITY: [&str; 12] =
    ["tmdb", "imdb", "tvdb", "trakt", "mal", "anilist", "kitsu", "anidb", "simkl", "plex", "guid", "slug"];

/// Namespaces whose ids are strong enough to match items across providers on their own.
pub const STRONG_NAMESPACES: [&str; 4] = ["tmdb", "imdb", "tvdb", "trakt"];

/// Values that mean "no id" (compared after trimming, case-insensitively; the empty string too).
pub const SENTINELS: [&str; 6] = ["none", "null", "nan", "undefined", "unknown", "0"];

/// Whether `value` means "no id": empty after trimming, or one of [`SENTINELS`].
pub fn is_sentinel(value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || SENTINELS.iter().any(|s| value.eq_ignore_ascii_case(s))
}

/// The normalised form of one id, or `None` when it is a sentinel or holds nothing usable.
///
/// - numeric namespaces ([`NUMERIC_NAMESPACES`]): the digits it contains (`"tmdb-949"` →
///   `"949"`); no digits, or only zeros (the sentinel `0` in disguise), → `None`;
/// - `imdb`: lower-cased, the first `tt<digits>` it contains, else `tt` + its digits;
/// - `slug`: lower-cased;
/// - `guid` and unknown namespaces: trimmed (canonical keys lower-case them).
///
/// The namespace is matched case-insensitively.
///
/// ```
/// use pal::keys::normalize_id;
/// assert_eq!(normalize_id("tmdb", " 949 ").as_deref(), Some("949"));
/// assert_eq!(normalize_id("IMDB", "https://imdb.com/title/TT0113277/").as_deref(), Some("tt0113277"));
/// assert_eq!(normalize_id("imdb", "113277").as_deref(), Some("tt113277"));
/// assert_eq!(normalize_id("trakt", "null"), None);
/// ```
pub fn normalize_id(namespace: &str, value: &str) -> Option<String> {
    normalized_id(namespace, value).map(Cow::into_owned)
}

/// [`normalize_id`], borrowing from `value` when its normal form is a slice of it (ingest
/// normalises every id of every item, and most are already in normal form).
fn normalized_id<'v>(namespace: &str, value: &'v str) -> Option<Cow<'v, str>> {
    if is_sentinel(value) {
        return None;
    }
    let value = value.trim();
    let namespace = namespace.trim();
    let is = |name: &str| namespace.eq_ignore_ascii_case(name);
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if NUMERIC_NAMESPACES.iter().any(|ns| is(ns)) {
        if all_digits(value) {
            return value.bytes().any(|b| b != b'0').then_some(Cow::Borrowed(value));
        }
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        return (!digits.is_empty() && digits.chars().any(|c| c != '0')).then_some(Cow::Owned(digits));
    }
    if is("imdb") {
        if value.strip_prefix("tt").is_some_and(all_digits) {
            return Some(Cow::Borrowed(value));
        }
        let lower = value.to_lowercase();
        if let Some(tt) = imdb_in(&lower) {
            return Some(Cow::Owned(tt));
        }
        let digits: String = lower.chars().filter(char::is_ascii_digit).collect();
        return (!digits.is_empty()).then(|| Cow::Owned(format!("tt{digits}")));
    }
    if is("slug") {
        return Some(lowercase(value));
    }
    Some(Cow::Borrowed(value))
}

/// `text` lower-cased, borrowed when it has nothing to lower.
fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// A namespace as ids are keyed by: trimmed, ASCII lower-case.
fn normalized_namespace(namespace: &str) -> Cow<'_, str> {
    let namespace = namespace.trim();
    if namespace.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(namespace.to_ascii_lowercase())
    } else {
        Cow::Borrowed(namespace)
    }
}

/// The first `tt<digits>` in `lower` (already lower-cased).
fn imdb_in(lower: &str) -> Option<String> {
    lower.match_indices("tt").find_map(|(at, _)| {
        let digits = leading_digits(&lower[at + 2..]);
        (!digits.is_empty()).then(|| format!("tt{digits}"))
    })
}

fn leading_digits(text: &str) -> &str {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    &text[..end]
}

/// The ids a guid names.
///
/// Recognised anywhere in the guid (case-insensitively): `imdb://tt…` and `imdb://title/tt…`
/// (so also `com.plexapp.agents.imdb://tt…`), `tmdb://N`, `tmdb://movie/N`, `tmdb://show/N`,
/// `tmdb://tv/N`, `…themoviedb://N`, `tvdb://N`, `tvdb://series/N`, `tvdb://show/N`,
/// `tvdb://tv/N` and `…thetvdb://N`. A guid starting with `plex://` is kept as the `guid` id.
/// Anything else gives no ids.
///
/// ```
/// use pal::keys::ids_from_guid;
/// assert_eq!(ids_from_guid("com.plexapp.agents.imdb://tt0113277?lang=en").get("imdb"), Some("tt0113277"));
/// assert_eq!(ids_from_guid("tvdb://series/81189").get("tvdb"), Some("81189"));
/// assert_eq!(ids_from_guid("plex://movie/5d7768").get("guid"), Some("plex://movie/5d7768"));
/// assert!(ids_from_guid("local://42").is_empty());
/// ```
pub fn ids_from_guid(guid: &str) -> Ids {
    const SCHEMES: [(&str, &str, &[&str]); 5] = [
        ("imdb://", "imdb", &["title/"]),
        ("themoviedb://", "tmdb", &[]),
        ("tmdb://", "tmdb", &["movie/", "show/", "tv/"]),
        // Also matches `thetvdb://`.
        ("tvdb://", "tvdb", &["series/", "show/", "tv/"]),
        ("thetvdb://", "tvdb", &[]),
    ];
    let mut ids = Ids::new();
    let guid = guid.trim();
    let lower = guid.to_lowercase();
    for (scheme, namespace, kinds) in SCHEMES {
        if ids.contains_key(namespace) {
            continue;
        }
        let found = lower.match_indices(scheme).find_map(|(at, _)| {
            let rest = &lower[at + scheme.len()..];
            let rest = kinds.iter().find_map(|kind| rest.strip_prefix(kind)).unwrap_or(rest);
            if namespace == "imdb" {
                let digits = leading_digits(rest.strip_prefix("tt")?);
                (!digits.is_empty()).then(|| format!("tt{digits}"))
            } else {
                normalize_id(namespace, leading_digits(rest))
            }
        });
        if let Some(id) = found {
            ids.insert(namespace, id);
        }
    }
    if lower.starts_with("plex://") {
        ids.insert("guid", guid);
    }
    ids
}

/// Normalises an id map: lower-cased namespaces, values per [`normalize_id`], sentinels
/// dropped, and a `guid` parsed by [`ids_from_guid`] to fill in the ids it names (ids given
/// explicitly win over ids parsed from the guid).
///
/// ```
/// use pal::keys::normalize_id_map;
/// let ids = [("TMDB", "949"), ("imdb", "None"), ("guid", "imdb://tt0113277")].into_iter().collect();
/// let ids = normalize_id_map(&ids);
/// assert_eq!(ids.len(), 3); // tmdb, guid, and imdb from the guid; the sentinel is gone
/// assert_eq!(ids.get("imdb"), Some("tt0113277"));
/// ```
pub fn normalize_id_map(ids: &Ids) -> Ids {
    if is_normal(ids) {
        return ids.clone();
    }
    let mut out = Vec::new();
    push_normalized(&mut out, ids.iter());
    finish_ids(out)
}

/// Whether `ids` is its own [`normalize_id_map`]: every namespace and id in normal form, and
/// every id its guid names present. Checked without allocating for ids without a guid.
fn is_normal(ids: &Ids) -> bool {
    let mut guid = None;
    let all_normal = ids.iter().all(|(namespace, id)| {
        if namespace == "guid" {
            guid = Some(id);
        }
        is_normal_id(namespace, id)
    });
    all_normal && guid.is_none_or(|guid| ids_from_guid(guid).keys().all(|ns| ids.contains_key(ns)))
}

/// Whether `(namespace, id)` is its own normal form: the namespace trimmed and lower-case, the
/// id what [`normalize_id`] makes of it. The usual namespaces are decided without the general
/// rules' string work.
fn is_normal_id(namespace: &str, id: &str) -> bool {
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match namespace {
        "tmdb" | "tvdb" | "trakt" | "simkl" | "mal" | "anilist" | "kitsu" | "anidb" | "plex" | "jellyfin" | "emby" => {
            digits(id) && id.bytes().any(|b| b != b'0')
        }
        "imdb" => id.strip_prefix("tt").is_some_and(digits),
        _ => {
            !namespace.is_empty()
                && matches!(normalized_namespace(namespace), Cow::Borrowed(ns) if ns.len() == namespace.len())
                && normalized_id(namespace, id).is_some_and(|normal| normal == id)
        }
    }
}

/// Appends the normalised form of each id (sentinels and empty namespaces left out).
fn push_normalized<'a>(out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>, ids: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (namespace, value) in ids {
        let namespace = normalized_namespace(namespace);
        if namespace.is_empty() {
            continue;
        }
        if let Some(value) = normalized_id(&namespace, value) {
            out.push((namespace, value));
        }
    }
}

/// The ids of normalised `(namespace, id)` pairs, earlier pairs winning, with the ids the
/// winning guid names added where missing.
fn finish_ids(mut out: Vec<(Cow<'_, str>, Cow<'_, str>)>) -> Ids {
    if let Some((_, guid)) = out.iter().find(|(ns, _)| ns == "guid") {
        let named = ids_from_guid(guid);
        out.extend(named.iter().map(|(ns, id)| (Cow::Owned(ns.to_owned()), Cow::Owned(id.to_owned()))));
    }
    Ids::first_wins(out)
}

/// A scalar id standing at the item's top level (in `extra`), as a string. Objects are vendor
/// payloads (`extra.plex` is Plex's payload, not a Plex id) and are not ids.
fn top_level_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// Whether an `extra` value under an id namespace is an id standing at the item's top level.
fn is_top_level_id(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_))
}

fn has_top_level_ids(item: &InventoryItem) -> bool {
    !item.extra.is_empty() && ID_NAMESPACES.iter().any(|ns| item.extra.get(*ns).is_some_and(is_top_level_id))
}

/// The item's normalised ids: its `ids` map, then ids standing at its top level (scalar
/// values of `extra` under a namespace of [`ID_NAMESPACES`]), then the ids its `guid` names;
/// earlier sources win. See [`normalize_id`] and [`ids_from_guid`].
pub fn normalize_ids(item: &InventoryItem) -> Ids {
    if !has_top_level_ids(item) {
        return normalize_id_map(&item.ids);
    }
    let top: Vec<(&str, String)> =
        ID_NAMESPACES.iter().filter_map(|ns| item.extra.get(*ns).and_then(top_level_id).map(|v| (*ns, v))).collect();
    let mut out = Vec::new();
    push_normalized(&mut out, item.ids.iter());
    push_normalized(&mut out, top.iter().map(|(k, v)| (*k, v.as_str())));
    finish_ids(out)
}

/// The item's normalised show ids (empty when it has none).
pub fn normalize_show_ids(item: &InventoryItem) -> Ids {
    item.show_ids.as_ref().map(normalize_id_map).unwrap_or_default()
}

/// The item with its ids normalised once, as ingest should keep it: `ids` per
/// [`normalize_ids`] (top-level scalar ids moved into `ids`), `show_ids` normalised (`None`
/// when nothing usable is left). Everything else is unchanged.
///
/// ```
/// use pal::inventory::InventoryItem;
/// let raw: InventoryItem = serde_json::from_value(serde_json::json!({
///     "type": "movie", "tmdb": 949, "imdb": "TT0113277", "plex": {"ratingKey": "1"}
/// })).unwrap();
/// let item = pal::keys::normalize_item(&raw);
/// assert_eq!(item.ids.get("tmdb"), Some("949"));
/// assert_eq!(item.ids.get("imdb"), Some("tt0113277"));
/// assert!(!item.extra.contains_key("tmdb"));
/// assert!(item.extra.contains_key("plex")); // a vendor payload, not an id
/// ```
pub fn normalize_item(item: &InventoryItem) -> InventoryItem {
    normalize_item_owned(item.clone())
}

/// [`normalize_item`] of an item the caller gives up: what is already in normal form (most
/// items, and every item normalised before) is kept as it is, not copied.
pub fn normalize_item_owned(mut item: InventoryItem) -> InventoryItem {
    if has_top_level_ids(&item) {
        item.ids = normalize_ids(&item);
        for namespace in ID_NAMESPACES {
            if item.extra.get(namespace).is_some_and(is_top_level_id) {
                item.extra.remove(namespace);
            }
        }
    } else if !is_normal(&item.ids) {
        item.ids = normalize_id_map(&item.ids);
    }
    item.show_ids = item.show_ids.take().map(|ids| if is_normal(&ids) { ids } else { normalize_id_map(&ids) });
    if item.show_ids.as_ref().is_some_and(Ids::is_empty) {
        item.show_ids = None;
    }
    item
}

/// Parses a vendor's type name: `movie|movies` → movie, `show|shows|series|tv` → show,
/// `season|seasons` → season, `episode|episodes` → episode, empty → movie (a missing type means
/// movie); anything else → `None`. Case-insensitive.
pub fn parse_item_type(name: &str) -> Option<ItemType> {
    match name.trim().to_ascii_lowercase().as_str() {
        "" | "movie" | "movies" => Some(ItemType::Movie),
        "show" | "shows" | "series" | "tv" => Some(ItemType::Show),
        "season" | "seasons" => Some(ItemType::Season),
        "episode" | "episodes" => Some(ItemType::Episode),
        _ => None,
    }
}

/// The wire name of an item type (`movie`, `show`, `season`, `episode`).
pub fn type_name(item_type: ItemType) -> &'static str {
    match item_type {
        ItemType::Movie => "movie",
        ItemType::Show => "show",
        ItemType::Season => "season",
        ItemType::Episode => "episode",
    }
}

/// The best id key of an id map: `<namespace>:<id>` of the first namespace of
/// [`KEY_PRIORITY`] it has, lower-cased; `None` when it has none.
pub fn best_id_key(ids: &Ids) -> Option<String> {
    let ids = normalize_id_map(ids);
    KEY_PRIORITY.iter().find_map(|ns| ids.get(ns).map(|v| format!("{ns}:{v}").to_lowercase()))
}

/// The episode or season fragment: `#s01e02` for an episode with season and episode numbers,
/// `#season:1` for a season with a season number; `None` otherwise.
pub fn fragment(item: &InventoryItem) -> Option<String> {
    match item.item_type {
        ItemType::Season => item.season.map(|s| format!("#season:{s}")),
        ItemType::Episode => Some(format!("#s{:02}e{:02}", item.season?, item.episode?)),
        ItemType::Movie | ItemType::Show => None,
    }
}

/// The fallback key: `<type>|title:<lower-cased, trimmed title>|year:<year>` (empty parts when
/// missing).
pub fn title_year_key(item: &InventoryItem) -> String {
    let title = item.title.as_deref().unwrap_or_default().trim().to_lowercase();
    let year = item.year.map(|y| y.to_string()).unwrap_or_default();
    format!("{}|title:{title}|year:{year}", type_name(item.item_type))
}

/// The key of the show a season or episode belongs to: the best id key of its `show_ids`,
/// else of its own ids.
fn show_key(item: &InventoryItem) -> Option<String> {
    best_id_key(&normalize_show_ids(item)).or_else(|| best_id_key(&normalize_ids(item)))
}

/// The item's canonical key, lower-case:
///
/// - a season or episode with a show key (see below) and its numbers:
///   `<show key>#season:<n>` / `<show key>#s<ss>e<ee>`, where the show key is the best id key
///   of its `show_ids`, else of its own ids;
/// - else the best id key ([`KEY_PRIORITY`]): `tmdb:123`;
/// - else [`title_year_key`]: `movie|title:heat|year:1995`.
///
/// Keys do not include the type: a TMDB movie and a TMDB show with the same number share the
/// key `tmdb:N` (the contract's format).
pub fn canonical_key(item: &InventoryItem) -> String {
    if let (Some(show), Some(fragment)) = (show_key(item), fragment(item)) {
        return format!("{show}{fragment}").to_lowercase();
    }
    best_id_key(&normalize_ids(item)).unwrap_or_else(|| title_year_key(item)).to_lowercase()
}

fn strong(ids: &Ids) -> BTreeSet<String> {
    STRONG_NAMESPACES.iter().filter_map(|ns| ids.get(ns).map(|v| format!("{ns}:{v}").to_lowercase())).collect()
}

/// The item's strong matching tokens, lower-case:
///
/// - movies and shows: `<ns>:<id>` for each of its [`STRONG_NAMESPACES`] ids;
/// - seasons and episodes: each strong token of its `show_ids` followed by its fragment
///   (`tvdb:81189#s01e02`; none without a fragment), plus its own strong ids where they differ
///   from its show's (an episode that merely repeats its show's ids would otherwise match
///   every episode of the show).
///
/// Two items match when they share the canonical key or any strong token ([`same_item`]).
pub fn strong_tokens(item: &InventoryItem) -> BTreeSet<String> {
    let own = strong(&normalize_ids(item));
    match item.item_type {
        ItemType::Movie | ItemType::Show => own,
        ItemType::Season | ItemType::Episode => {
            let show = strong(&normalize_show_ids(item));
            let mut tokens: BTreeSet<String> = match fragment(item) {
                Some(fragment) => show.iter().map(|t| format!("{t}{fragment}")).collect(),
                None => BTreeSet::new(),
            };
            tokens.extend(own.into_iter().filter(|t| !show.contains(t)));
            tokens
        }
    }
}

/// `<ns>:<id>`, lower-case, of an id already normalised.
fn id_token(namespace: &str, id: &str) -> String {
    let mut token = String::with_capacity(namespace.len() + 1 + id.len());
    token.push_str(namespace);
    token.push(':');
    token.push_str(id);
    lower(token)
}

fn lower(mut text: String) -> String {
    if text.is_ascii() {
        text.make_ascii_lowercase();
        text
    } else {
        text.to_lowercase()
    }
}

/// [`best_id_key`] of a map that is already normalised.
fn best_normalized_key(ids: &Ids) -> Option<String> {
    KEY_PRIORITY.iter().find_map(|ns| ids.get(ns).map(|v| id_token(ns, v)))
}

fn strong_normalized(ids: &Ids) -> BTreeSet<String> {
    STRONG_NAMESPACES.iter().filter_map(|ns| ids.get(ns).map(|v| id_token(ns, v))).collect()
}

/// [`canonical_key`] of an item that is already the output of [`normalize_item`], without
/// normalising its ids again (ingest normalises each item once and then needs its key). On any
/// other item the answer may differ from [`canonical_key`].
///
/// ```
/// use pal::keys::{canonical_key, canonical_key_of_normalized, normalize_item};
/// let raw: pal::inventory::InventoryItem =
///     serde_json::from_value(serde_json::json!({"tmdb": " 949 ", "guid": "imdb://TT0113277"})).unwrap();
/// assert_eq!(canonical_key_of_normalized(&normalize_item(&raw)), canonical_key(&raw));
/// ```
pub fn canonical_key_of_normalized(item: &InventoryItem) -> String {
    if let Some(fragment) = fragment(item) {
        let show = item.show_ids.as_ref().and_then(best_normalized_key).or_else(|| best_normalized_key(&item.ids));
        if let Some(show) = show {
            return lower(show + &fragment);
        }
    }
    best_normalized_key(&item.ids).unwrap_or_else(|| title_year_key(item).to_lowercase())
}

/// [`strong_tokens`] of an item that is already the output of [`normalize_item`], without
/// normalising its ids again. On any other item the answer may differ from [`strong_tokens`].
pub fn strong_tokens_of_normalized(item: &InventoryItem) -> BTreeSet<String> {
    let own = strong_normalized(&item.ids);
    match item.item_type {
        ItemType::Movie | ItemType::Show => own,
        ItemType::Season | ItemType::Episode => {
            let show = item.show_ids.as_ref().map(strong_normalized).unwrap_or_default();
            let mut tokens: BTreeSet<String> = match fragment(item) {
                Some(fragment) => show.iter().map(|t| format!("{t}{fragment}")).collect(),
                None => BTreeSet::new(),
            };
            tokens.extend(own.into_iter().filter(|t| !show.contains(t)));
            tokens
        }
    }
}

/// [`strong_tokens_of_normalized`], written into `out` in order and separated by single spaces,
/// without a string per token (ingest keys millions of items).
///
/// A token of a normalised item never holds a space: it is `<namespace>:<id>` over a strong
/// namespace, whose normalised ids are digits (`tt` and digits for IMDb), followed for seasons
/// and episodes by `#season:<n>` or `#s<ss>e<ee>`. Tokens of an item that is not normalised
/// may, and are then not written.
///
/// ```
/// let item = pal::keys::normalize_item(&serde_json::from_value(serde_json::json!({
///     "ids": {"tmdb": "949", "imdb": "tt0113277", "slug": "heat"}
/// })).unwrap());
/// let mut tokens = String::new();
/// pal::keys::write_strong_tokens_of_normalized(&item, &mut tokens);
/// assert_eq!(tokens, "imdb:tt0113277 tmdb:949");
/// ```
pub fn write_strong_tokens_of_normalized(item: &InventoryItem, out: &mut String) {
    /// [`STRONG_NAMESPACES`] in the order of their tokens.
    const IN_TOKEN_ORDER: [&str; 4] = ["imdb", "tmdb", "trakt", "tvdb"];
    fn push(out: &mut String, token: &str) {
        if token.contains(' ') {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(token);
    }
    match item.item_type {
        ItemType::Movie | ItemType::Show => {
            // Ids are in namespace order, which is the tokens' order: one pass, each token
            // written straight into `out` (lower-cased there when it is ASCII, as it nearly
            // always is).
            for (namespace, id) in item.ids.iter().filter(|(ns, _)| IN_TOKEN_ORDER.contains(ns)) {
                let before = out.len();
                if !out.is_empty() {
                    out.push(' ');
                }
                let start = out.len();
                out.push_str(namespace);
                out.push(':');
                out.push_str(id);
                let token = &mut out[start..];
                if token.is_ascii() {
                    token.make_ascii_lowercase();
                    if token.contains(' ') {
                        out.truncate(before);
                    }
                } else {
                    let lowered = token.to_lowercase();
                    out.truncate(before);
                    push(out, &lowered);
                }
            }
        }
        ItemType::Season | ItemType::Episode => {
            for token in strong_tokens_of_normalized(item) {
                push(out, &token);
            }
        }
    }
}

/// Every key the item may be known by, lower-case: `<ns>:<id>` for each of its ids in
/// [`ID_NAMESPACES`], its canonical key, its show-and-fragment key (seasons and episodes) and
/// its title/year key when it has a title. For recognising keys another component reported
/// (e.g. a provider's `confirmed_keys`); matching uses [`same_item`].
pub fn alias_keys(item: &InventoryItem) -> BTreeSet<String> {
    let ids = normalize_ids(item);
    let mut keys: BTreeSet<String> =
        ID_NAMESPACES.iter().filter_map(|ns| ids.get(ns).map(|v| format!("{ns}:{v}").to_lowercase())).collect();
    keys.insert(canonical_key(item));
    if let (Some(show), Some(fragment)) = (show_key(item), fragment(item)) {
        keys.insert(format!("{show}{fragment}").to_lowercase());
    }
    if item.title.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        keys.insert(title_year_key(item));
    }
    keys
}

/// Whether two items are the same title (or season, or episode): the same canonical key, or a
/// shared strong token. History plays additionally need the same `watched_at`; that is the
/// caller's concern.
pub fn same_item(a: &InventoryItem, b: &InventoryItem) -> bool {
    canonical_key(a) == canonical_key(b) || !strong_tokens(a).is_disjoint(&strong_tokens(b))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> Ids {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn item(json: serde_json::Value) -> InventoryItem {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn sentinels() {
        for value in ["", "  ", "none", "None", "NULL", "nan", "NaN", "undefined", "unknown", "0", " 0 "] {
            assert!(is_sentinel(value), "{value:?}");
        }
        for value in ["1", "tt0", "00x", "nonesuch"] {
            assert!(!is_sentinel(value), "{value:?}");
        }
    }

    #[test]
    fn normalize_id_rules() {
        let table: &[(&str, &str, Option<&str>)] = &[
            // Numeric namespaces keep their digits.
            ("tmdb", "949", Some("949")),
            ("tmdb", " 949 ", Some("949")),
            ("tmdb", "tmdb-949", Some("949")),
            ("TVDB", "81189", Some("81189")),
            ("trakt", "1,234", Some("1234")),
            ("simkl", "id 7", Some("7")),
            ("mal", "5", Some("5")),
            ("anilist", "21", Some("21")),
            ("kitsu", "12", Some("12")),
            ("anidb", "69", Some("69")),
            ("plex", "/library/metadata/123", Some("123")),
            ("jellyfin", "42", Some("42")),
            ("emby", "43", Some("43")),
            ("tmdb", "abc", None),
            ("tmdb", "000", None),
            // imdb: lower-cased tt + digits, or tt + the digits.
            ("imdb", "tt0113277", Some("tt0113277")),
            ("imdb", "TT0113277", Some("tt0113277")),
            ("imdb", "https://www.imdb.com/title/tt0113277/", Some("tt0113277")),
            ("imdb", "0113277", Some("tt0113277")),
            ("imdb", "imdb-113277", Some("tt113277")),
            ("imdb", "title", None),
            // Slugs are lower-cased; guids and unknown namespaces trimmed.
            ("slug", " Heat-1995 ", Some("heat-1995")),
            ("guid", " plex://movie/5D7768 ", Some("plex://movie/5D7768")),
            ("netflix", " 80057281 ", Some("80057281")),
            // Sentinels, for every namespace.
            ("tmdb", "0", None),
            ("imdb", "None", None),
            ("trakt", "null", None),
            ("slug", "undefined", None),
            ("guid", "unknown", None),
            ("plex", "NaN", None),
            ("tvdb", "", None),
            ("imdb", "   ", None),
        ];
        for (namespace, value, expected) in table {
            assert_eq!(normalize_id(namespace, value).as_deref(), *expected, "{namespace} {value:?}");
        }
    }

    #[test]
    fn guid_parsing() {
        let table: &[(&str, &[(&str, &str)])] = &[
            ("imdb://tt0113277", &[("imdb", "tt0113277")]),
            ("imdb://title/tt0113277", &[("imdb", "tt0113277")]),
            ("IMDB://TT0113277", &[("imdb", "tt0113277")]),
            ("tmdb://949", &[("tmdb", "949")]),
            ("tmdb://movie/949", &[("tmdb", "949")]),
            ("tmdb://show/1396", &[("tmdb", "1396")]),
            ("tmdb://tv/1396", &[("tmdb", "1396")]),
            ("tvdb://81189", &[("tvdb", "81189")]),
            ("tvdb://series/81189", &[("tvdb", "81189")]),
            ("tvdb://show/81189", &[("tvdb", "81189")]),
            ("tvdb://tv/81189", &[("tvdb", "81189")]),
            ("com.plexapp.agents.imdb://tt0113277?lang=en", &[("imdb", "tt0113277")]),
            ("com.plexapp.agents.themoviedb://949?lang=en", &[("tmdb", "949")]),
            ("com.plexapp.agents.thetvdb://81189/1/2?lang=en", &[("tvdb", "81189")]),
            ("plex://movie/5d776825880197001ec967c4", &[("guid", "plex://movie/5d776825880197001ec967c4")]),
            (" plex://show/ABC ", &[("guid", "plex://show/ABC")]),
            ("imdb://nm0000123", &[]),
            ("tmdb://movie/", &[]),
            ("tmdb://0", &[]),
            ("local://42", &[]),
            ("com.plexapp.agents.none://1", &[]),
            ("", &[]),
        ];
        for (guid, expected) in table {
            assert_eq!(ids_from_guid(guid), ids(expected), "{guid:?}");
        }
    }

    #[test]
    fn normalize_ids_merges_sources() {
        let table: &[(serde_json::Value, &[(&str, &str)])] = &[
            // The ids map, normalised, sentinels dropped.
            (
                serde_json::json!({"ids": {"TMDB": " 949 ", "imdb": "TT0113277", "trakt": "0", "tvdb": "null"}}),
                &[("imdb", "tt0113277"), ("tmdb", "949")],
            ),
            // Top-level ids (strings and numbers) are picked up; objects are vendor payloads.
            (
                serde_json::json!({"tmdb": 949, "imdb": "tt0113277", "plex": {"ratingKey": "5"}, "slug": "Heat"}),
                &[("imdb", "tt0113277"), ("slug", "heat"), ("tmdb", "949")],
            ),
            (serde_json::json!({"trakt": 12.0, "simkl": -3}), &[("simkl", "3"), ("trakt", "12")]),
            // The ids map wins over the top level, which wins over the guid.
            (
                serde_json::json!({"ids": {"tmdb": "1"}, "tmdb": "2", "imdb": "tt3", "guid": "imdb://tt4"}),
                &[("guid", "imdb://tt4"), ("imdb", "tt3"), ("tmdb", "1")],
            ),
            // A guid fills in what it names and is kept.
            (
                serde_json::json!({"ids": {"guid": "com.plexapp.agents.themoviedb://949"}}),
                &[("guid", "com.plexapp.agents.themoviedb://949"), ("tmdb", "949")],
            ),
            (serde_json::json!({"guid": "plex://movie/5d77"}), &[("guid", "plex://movie/5d77")]),
            // Nothing usable.
            (serde_json::json!({"ids": {"tmdb": "none", "imdb": ""}, "title": "Heat"}), &[]),
        ];
        for (json, expected) in table {
            assert_eq!(normalize_ids(&item(json.clone())), ids(expected), "{json}");
        }
    }

    #[test]
    fn normalize_item_moves_top_level_ids() {
        let raw = item(serde_json::json!({
            "type": "episode", "tvdb": "999", "season": 1, "episode": 2,
            "show_ids": {"tvdb": " 81189 ", "imdb": "none"}, "jellyfin": {"Id": "x"}, "_cw_transient": true
        }));
        let normalized = normalize_item(&raw);
        assert_eq!(normalized.ids, ids(&[("tvdb", "999")]));
        assert_eq!(normalized.show_ids, Some(ids(&[("tvdb", "81189")])));
        assert_eq!(normalized.extra.keys().collect::<Vec<_>>(), ["_cw_transient", "jellyfin"]);
        // Idempotent.
        assert_eq!(normalize_item(&normalized), normalized);
        // Show ids with nothing usable become None.
        let bare = item(serde_json::json!({"type": "episode", "show_ids": {"tmdb": "0"}}));
        assert_eq!(normalize_item(&bare).show_ids, None);
    }

    #[test]
    fn item_types() {
        let table: &[(&str, Option<ItemType>)] = &[
            ("", Some(ItemType::Movie)),
            ("movie", Some(ItemType::Movie)),
            ("Movies", Some(ItemType::Movie)),
            ("show", Some(ItemType::Show)),
            ("shows", Some(ItemType::Show)),
            ("series", Some(ItemType::Show)),
            ("TV", Some(ItemType::Show)),
            ("season", Some(ItemType::Season)),
            ("seasons", Some(ItemType::Season)),
            ("episode", Some(ItemType::Episode)),
            ("episodes", Some(ItemType::Episode)),
            ("anime", None),
        ];
        for (name, expected) in table {
            assert_eq!(parse_item_type(name), *expected, "{name:?}");
        }
        // A missing type deserialises as movie.
        assert_eq!(item(serde_json::json!({})).item_type, ItemType::Movie);
        for t in [ItemType::Movie, ItemType::Show, ItemType::Season, ItemType::Episode] {
            assert_eq!(parse_item_type(type_name(t)), Some(t));
        }
    }

    #[test]
    fn canonical_keys() {
        let table: &[(serde_json::Value, &str)] = &[
            // Priority: tmdb, imdb, tvdb, trakt, mal, anilist, kitsu, anidb, simkl, plex, guid, slug.
            (serde_json::json!({"ids": {"tmdb": "949", "imdb": "tt0113277", "tvdb": "1"}}), "tmdb:949"),
            (serde_json::json!({"ids": {"imdb": "TT0113277", "tvdb": "1", "trakt": "2"}}), "imdb:tt0113277"),
            (serde_json::json!({"ids": {"tvdb": "1", "trakt": "2"}}), "tvdb:1"),
            (serde_json::json!({"ids": {"trakt": "2", "mal": "3"}}), "trakt:2"),
            (serde_json::json!({"ids": {"mal": "3", "anilist": "4"}}), "mal:3"),
            (serde_json::json!({"ids": {"anilist": "4", "kitsu": "5"}}), "anilist:4"),
            (serde_json::json!({"ids": {"kitsu": "5", "anidb": "6"}}), "kitsu:5"),
            (serde_json::json!({"ids": {"anidb": "6", "simkl": "7"}}), "anidb:6"),
            (serde_json::json!({"ids": {"simkl": "7", "plex": "8"}}), "simkl:7"),
            (serde_json::json!({"ids": {"plex": "8", "guid": "plex://x"}}), "plex:8"),
            (serde_json::json!({"ids": {"guid": "plex://movie/5D77", "slug": "heat"}}), "guid:plex://movie/5d77"),
            (serde_json::json!({"ids": {"slug": "Heat-1995", "jellyfin": "9"}}), "slug:heat-1995"),
            // Sentinels do not make keys; top-level ids and guids do.
            (serde_json::json!({"ids": {"tmdb": "0", "imdb": "tt1"}}), "imdb:tt1"),
            (serde_json::json!({"tmdb": 949}), "tmdb:949"),
            (serde_json::json!({"guid": "com.plexapp.agents.imdb://tt0113277"}), "imdb:tt0113277"),
            // Fallback: type, lower-cased title, year.
            (serde_json::json!({"title": " Heat ", "year": 1995}), "movie|title:heat|year:1995"),
            (serde_json::json!({"type": "show", "title": "The Office"}), "show|title:the office|year:"),
            (serde_json::json!({"ids": {"jellyfin": "9"}, "title": "X", "year": 1}), "movie|title:x|year:1"),
            // Episodes and seasons: the show's best key plus the fragment.
            (
                serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189", "imdb": "tt0903747"},
                                   "ids": {"tvdb": "349232"}, "season": 1, "episode": 2}),
                "imdb:tt0903747#s01e02",
            ),
            (
                serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 10, "episode": 123}),
                "tvdb:81189#s10e123",
            ),
            (serde_json::json!({"type": "season", "show_ids": {"tmdb": "1396"}, "season": 1}), "tmdb:1396#season:1"),
            // Without show ids the item's own ids stand in for the show's.
            (serde_json::json!({"type": "season", "ids": {"tmdb": "1396"}, "season": 0}), "tmdb:1396#season:0"),
            // Without numbers: the item's own key.
            (
                serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "349232"}}),
                "tvdb:349232",
            ),
            (
                serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "season": 1, "title": "Pilot"}),
                "episode|title:pilot|year:",
            ),
        ];
        for (json, expected) in table {
            assert_eq!(canonical_key(&item(json.clone())), *expected, "{json}");
        }
    }

    #[test]
    fn keys_are_lower_case_and_stable_under_normalisation() {
        let raw = item(serde_json::json!({"type": "movie", "ids": {"SLUG": "HEAT", "GUID": "PLEX://X"}}));
        assert_eq!(canonical_key(&raw), "guid:plex://x");
        assert_eq!(canonical_key(&normalize_item(&raw)), canonical_key(&raw));
        assert!(alias_keys(&raw).iter().all(|k| k == &k.to_lowercase()));
    }

    #[test]
    fn strong_token_sets() {
        let set = |tokens: &[&str]| tokens.iter().map(|t| (*t).to_owned()).collect::<BTreeSet<_>>();
        let table: &[(serde_json::Value, &[&str])] = &[
            (
                serde_json::json!({"ids": {"tmdb": "949", "imdb": "TT0113277", "slug": "heat", "plex": "5"}}),
                &["imdb:tt0113277", "tmdb:949"],
            ),
            (
                serde_json::json!({"type": "show", "ids": {"tvdb": "81189", "trakt": "1388"}}),
                &["trakt:1388", "tvdb:81189"],
            ),
            (serde_json::json!({"ids": {"slug": "heat"}, "title": "Heat"}), &[]),
            // Episodes: the show's tokens with the fragment, plus its own ids that differ.
            (
                serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189", "imdb": "tt0903747"},
                                   "ids": {"tvdb": "349232", "imdb": "tt0903747"}, "season": 1, "episode": 2}),
                &["imdb:tt0903747#s01e02", "tvdb:349232", "tvdb:81189#s01e02"],
            ),
            // Seasons.
            (serde_json::json!({"type": "season", "show_ids": {"tmdb": "1396"}, "season": 3}), &["tmdb:1396#season:3"]),
            // No fragment: no show tokens (they would match the show itself).
            (
                serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"trakt": "7"}}),
                &["trakt:7"],
            ),
            // No show ids: its own ids.
            (
                serde_json::json!({"type": "episode", "ids": {"tvdb": "349232"}, "season": 1, "episode": 2}),
                &["tvdb:349232"],
            ),
        ];
        for (json, expected) in table {
            assert_eq!(strong_tokens(&item(json.clone())), set(expected), "{json}");
        }
    }

    /// Ids as providers send them: known namespaces in any case, unknown ones, and values that
    /// are normal, padded, URLs, sentinels, guids or arbitrary text.
    fn arb_ids() -> impl Strategy<Value = Ids> {
        let namespace = prop_oneof![
            proptest::sample::select(ID_NAMESPACES.to_vec()).prop_map(str::to_owned),
            Just("TMDB".to_owned()),
            Just(" Imdb ".to_owned()),
            "[a-z]{1,6}",
        ];
        let value = prop_oneof![
            "[0-9]{1,7}",
            "tt[0-9]{1,8}",
            "(TT|tt)?[0-9]{0,3}[ -/a-zA-Z]{0,4}[0-9]{0,3}",
            proptest::sample::select(vec!["0", "none", " NULL ", "", "000"]).prop_map(str::to_owned),
            "(imdb://|tmdb://movie/|tvdb://series/|plex://show/|com.plexapp.agents.themoviedb://)[0-9a-zA-Z]{0,6}",
            ".{0,8}",
        ];
        proptest::collection::btree_map(namespace, value, 0..5).prop_map(|map| map.into_iter().collect())
    }

    fn arb_item() -> impl Strategy<Value = InventoryItem> {
        let item_type =
            proptest::sample::select(vec![ItemType::Movie, ItemType::Show, ItemType::Season, ItemType::Episode]);
        let top_level = proptest::collection::btree_map(
            proptest::sample::select(vec!["tmdb", "imdb", "trakt", "slug", "guid", "plex", "vendor"]),
            prop_oneof![
                "[0-9a-zA-Z:/]{0,8}".prop_map(Value::from),
                (0u64..5000).prop_map(Value::from),
                Just(serde_json::json!({"ratingKey": "1"})),
            ],
            0..3,
        );
        (
            item_type,
            (proptest::option::of(".{0,6}"), proptest::option::of(1900i32..2030)),
            arb_ids(),
            proptest::option::of(arb_ids()),
            (proptest::option::of(0u32..12), proptest::option::of(0u32..30)),
            top_level,
        )
            .prop_map(|(item_type, (title, year), ids, show_ids, (season, episode), top_level)| {
                InventoryItem {
                    item_type,
                    title,
                    year,
                    ids,
                    show_ids,
                    season,
                    episode,
                    extra: top_level.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    ..Default::default()
                }
            })
    }

    proptest! {
        /// The shortcut for maps already in normal form gives what the general rules give.
        #[test]
        fn normal_maps_are_recognised(ids in arb_ids()) {
            let mut general = Vec::new();
            push_normalized(&mut general, ids.iter());
            let general = finish_ids(general);
            prop_assert_eq!(normalize_id_map(&ids), general.clone());
            prop_assert!(is_normal(&general));
            prop_assert_eq!(is_normal(&ids), ids == general);
        }

        /// The fast paths ingest uses agree with the reference functions on any item, once it
        /// is normalised; and normalising twice changes nothing.
        #[test]
        fn normalized_fast_paths_agree(raw in arb_item()) {
            let item = normalize_item(&raw);
            prop_assert_eq!(canonical_key_of_normalized(&item), canonical_key(&raw));
            prop_assert_eq!(canonical_key_of_normalized(&item), canonical_key(&item));
            prop_assert_eq!(strong_tokens_of_normalized(&item), strong_tokens(&raw));
            prop_assert_eq!(strong_tokens_of_normalized(&item), strong_tokens(&item));
            prop_assert_eq!(normalize_item(&item), item.clone());
            prop_assert_eq!(normalize_item_owned(raw.clone()), item.clone());
            let tokens = strong_tokens_of_normalized(&item);
            prop_assert!(tokens.iter().all(|t| !t.contains(' ')), "a token of a normalised item has no space: {:?}", tokens);
            let mut written = String::new();
            write_strong_tokens_of_normalized(&item, &mut written);
            prop_assert_eq!(written, tokens.into_iter().collect::<Vec<_>>().join(" "));
        }
    }

    /// Tokens are appended after what `out` holds; a token with a space (an id that was not
    /// normalised) is left out without a stray separator; non-ASCII ids are lower-cased.
    #[test]
    fn written_tokens_append_and_skip_tokens_with_spaces() {
        let raw = item(serde_json::json!({"ids": {"imdb": "TT1", "tmdb": "a b", "trakt": "Ö2", "tvdb": "3"}}));
        let mut out = String::from("x");
        write_strong_tokens_of_normalized(&raw, &mut out);
        assert_eq!(out, "x imdb:tt1 trakt:ö2 tvdb:3");
        let only_spaced = item(serde_json::json!({"ids": {"tmdb": "a b"}}));
        let mut out = String::new();
        write_strong_tokens_of_normalized(&only_spaced, &mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn alias_key_sets() {
        let episode = item(serde_json::json!({
            "type": "episode", "title": "Pilot", "show_ids": {"tvdb": "81189"}, "ids": {"plex": "12"},
            "season": 1, "episode": 1
        }));
        let expected = ["episode|title:pilot|year:", "plex:12", "tvdb:81189#s01e01"];
        assert_eq!(alias_keys(&episode), expected.iter().map(|k| (*k).to_owned()).collect());
    }

    #[test]
    fn matching() {
        let a = item(serde_json::json!({"ids": {"tmdb": "949"}}));
        let b = item(serde_json::json!({"ids": {"imdb": "tt0113277", "tmdb": "949"}}));
        let c = item(serde_json::json!({"ids": {"imdb": "tt0113277"}}));
        let d = item(serde_json::json!({"ids": {"imdb": "tt1"}, "title": "Heat"}));
        let e = item(serde_json::json!({"title": "HEAT", "year": 1995}));
        let f = item(serde_json::json!({"title": "heat", "year": 1995}));
        let table: &[(&InventoryItem, &InventoryItem, bool)] = &[
            (&a, &b, true),  // same canonical key
            (&b, &c, true),  // shared imdb token, different keys
            (&a, &c, false), // nothing in common
            (&c, &d, false),
            (&e, &f, true), // same title/year key
            (&d, &e, false),
        ];
        for (x, y, expected) in table {
            assert_eq!(same_item(x, y), *expected, "{x:?} vs {y:?}");
            assert_eq!(same_item(y, x), *expected);
        }
        // An episode whose ids repeat its show's does not match another episode of that show.
        let e1 = item(serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "81189"},
                                          "season": 1, "episode": 1}));
        let e2 = item(serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "81189"},
                                          "season": 1, "episode": 2}));
        assert!(!same_item(&e1, &e2));
        // The same episode keyed differently by two providers matches by its own id.
        let p1 = item(serde_json::json!({"type": "episode", "show_ids": {"tvdb": "81189"}, "ids": {"tvdb": "349232"},
                                          "season": 1, "episode": 2}));
        let p2 = item(serde_json::json!({"type": "episode", "ids": {"tvdb": "349232"}}));
        assert!(same_item(&p1, &p2));
    }
}
