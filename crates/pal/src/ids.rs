//! [`Ids`]: an item's external ids by namespace, as a small sorted map packed in one string.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// External ids by namespace (`imdb`, `tmdb`, `tvdb`, `trakt`, `simkl`, `plex`, `guid`, …): a map
/// from namespace to id, sorted by namespace like a `BTreeMap<String, String>`, serialised as a
/// JSON object of strings.
///
/// An inventory holds an id map per item, often millions of them, each a few short strings: as a
/// B-tree of owned strings one costs about ten times its text and a dozen allocations. `Ids`
/// packs its entries into one string (one allocation, a few dozen bytes), which is what makes a
/// library of a million titles fit in memory and quick to copy. Lookups scan the entries, which
/// for the handful of ids an item has is as fast as a tree.
///
/// ```
/// use pal::inventory::Ids;
/// let mut ids: Ids = [("tmdb", "949"), ("imdb", "tt0113277")].into_iter().collect();
/// assert_eq!(ids.get("imdb"), Some("tt0113277"));
/// assert_eq!(ids.insert("trakt", "1"), None);
/// assert_eq!(ids.keys().collect::<Vec<_>>(), ["imdb", "tmdb", "trakt"]); // sorted
/// assert_eq!(serde_json::to_string(&ids).unwrap(), r#"{"imdb":"tt0113277","tmdb":"949","trakt":"1"}"#);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Ids {
    /// The entries in namespace order, each namespace once, each entry written as
    /// `<namespace length>:<namespace><id length>:<id>` (lengths in decimal bytes), so any text
    /// at all can be a namespace or an id.
    packed: Box<str>,
}

impl Ids {
    /// An empty map (no allocation).
    pub fn new() -> Self {
        Ids::default()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The id of `namespace`.
    pub fn get(&self, namespace: &str) -> Option<&str> {
        self.iter().find_map(|(ns, id)| (ns == namespace).then_some(id))
    }

    /// Whether there is an id of `namespace`.
    pub fn contains_key(&self, namespace: &str) -> bool {
        self.get(namespace).is_some()
    }

    /// `(namespace, id)` in namespace order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { rest: &self.packed }
    }

    /// The namespaces, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(ns, _)| ns)
    }

    /// The ids, in namespace order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(_, id)| id)
    }

    /// Sets the id of `namespace`; returns the id it replaces.
    pub fn insert(&mut self, namespace: impl AsRef<str>, id: impl AsRef<str>) -> Option<String> {
        let (namespace, id) = (namespace.as_ref(), id.as_ref());
        let mut entries: Vec<(&str, &str)> = self.iter().collect();
        let replaced = match entries.binary_search_by(|(ns, _)| (*ns).cmp(namespace)) {
            Ok(at) => Some(std::mem::replace(&mut entries[at].1, id).to_owned()),
            Err(at) => {
                entries.insert(at, (namespace, id));
                None
            }
        };
        *self = Ids::pack(&entries);
        replaced
    }

    /// Sets the id of `namespace` unless it has one.
    pub fn insert_if_absent(&mut self, namespace: &str, id: &str) {
        if !self.contains_key(namespace) {
            self.insert(namespace, id);
        }
    }

    /// Removes the id of `namespace`; returns it.
    pub fn remove(&mut self, namespace: &str) -> Option<String> {
        let mut entries: Vec<(&str, &str)> = self.iter().collect();
        let at = entries.iter().position(|(ns, _)| *ns == namespace)?;
        let (_, removed) = entries.remove(at);
        let removed = removed.to_owned();
        *self = Ids::pack(&entries);
        Some(removed)
    }

    /// Keeps the ids `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let entries: Vec<(&str, &str)> = self.iter().filter(|(ns, id)| keep(ns, id)).collect();
        if entries.len() != self.len() {
            *self = Ids::pack(&entries);
        }
    }

    /// The map of `entries` given in any order; of a namespace given more than once, the
    /// `last` or the first entry wins.
    fn build<K: AsRef<str>, V: AsRef<str>>(mut entries: Vec<(K, V)>, last_wins: bool) -> Ids {
        if entries.is_empty() {
            return Ids::new();
        }
        if last_wins {
            entries.reverse();
        }
        // Stable: of equal namespaces the winner stays first, and `dedup` keeps the first.
        entries.sort_by(|(a, _), (b, _)| a.as_ref().cmp(b.as_ref()));
        entries.dedup_by(|(a, _), (b, _)| a.as_ref() == b.as_ref());
        let borrowed: Vec<(&str, &str)> = entries.iter().map(|(ns, id)| (ns.as_ref(), id.as_ref())).collect();
        Ids::pack(&borrowed)
    }

    /// The map of `entries` given in any order; of a namespace given more than once, the first
    /// wins (a `BTreeMap`'s `entry(..).or_insert(..)` over them in order).
    pub fn first_wins<K: AsRef<str>, V: AsRef<str>>(entries: Vec<(K, V)>) -> Ids {
        Ids::build(entries, false)
    }

    /// Packs entries that are sorted by namespace, each namespace once.
    fn pack(entries: &[(&str, &str)]) -> Ids {
        let size: usize = entries.iter().map(|(ns, id)| ns.len() + id.len() + 2 * (digits(ns.len()) + 1)).sum();
        let mut packed = String::with_capacity(size);
        for (ns, id) in entries {
            push_field(&mut packed, ns);
            push_field(&mut packed, id);
        }
        Ids { packed: packed.into_boxed_str() }
    }
}

fn digits(mut n: usize) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

fn push_field(packed: &mut String, field: &str) {
    let mut n = field.len();
    let mut text = [0u8; 20];
    let mut at = text.len();
    loop {
        at -= 1;
        text[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for digit in &text[at..] {
        packed.push(char::from(*digit));
    }
    packed.push(':');
    packed.push_str(field);
}

/// Splits the next field off `rest`. `None` only at the end: `Ids` writes nothing else.
fn next_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let mut len = 0usize;
    let mut digits = 0usize;
    for byte in rest.bytes() {
        if byte == b':' {
            break;
        }
        len = len.checked_mul(10)?.checked_add(usize::from(byte.wrapping_sub(b'0')))?;
        digits += 1;
    }
    let start = digits + 1;
    let field = rest.get(start..start.checked_add(len)?)?;
    *rest = &rest[start + len..];
    Some(field)
}

/// The entries of an [`Ids`], in namespace order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let namespace = next_field(&mut self.rest)?;
        let id = next_field(&mut self.rest)?;
        Some((namespace, id))
    }
}

impl<'a> IntoIterator for &'a Ids {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Of a namespace given more than once, the last wins (as when inserting into a map).
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Ids {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Ids::build(iter.into_iter().collect(), true)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Ids {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for Ids {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let added: Vec<(K, V)> = iter.into_iter().collect();
        if added.is_empty() {
            return;
        }
        let mut entries: Vec<(&str, &str)> = self.iter().collect();
        entries.extend(added.iter().map(|(ns, id)| (ns.as_ref(), id.as_ref())));
        *self = Ids::build(entries, true);
    }
}

impl fmt::Debug for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Ids {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (namespace, id) in self {
            map.serialize_entry(namespace, id)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdsVisitor;
        impl<'de> Visitor<'de> for IdsVisitor {
            type Value = Ids;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of ids")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ids, A::Error> {
                let mut ids = IdsBuilder::new();
                while let Some((namespace, id)) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    ids.push(&namespace.0, &id.0);
                }
                Ok(ids.finish())
            }
        }
        deserializer.deserialize_map(IdsVisitor)
    }
}

/// Builds an [`Ids`] from entries given one by one; of a namespace given more than once, the
/// last wins (as when collecting). Entries that come in namespace order, each once (as cw
/// writes them, and most vendors), are packed as they come, without sorting or copying.
///
/// ```
/// use pal::ids::IdsBuilder;
/// let mut ids = IdsBuilder::new();
/// ids.push("tmdb", "949");
/// ids.push("imdb", "tt0113277"); // out of order: sorted at the end
/// assert_eq!(ids.finish().keys().collect::<Vec<_>>(), ["imdb", "tmdb"]);
/// ```
#[derive(Debug, Default)]
pub struct IdsBuilder {
    packed: String,
    /// Where the last namespace packed stands in `packed`.
    previous: std::ops::Range<usize>,
    /// Once an entry came out of order: every entry so far, to be sorted.
    unordered: Option<Vec<(String, String)>>,
}

impl IdsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        IdsBuilder::default()
    }

    /// Adds the id of `namespace`.
    pub fn push(&mut self, namespace: &str, id: &str) {
        if let Some(entries) = &mut self.unordered {
            entries.push((namespace.to_owned(), id.to_owned()));
            return;
        }
        let after_previous = match self.packed.get(self.previous.clone()) {
            // The previous namespace was empty: only a non-empty one comes after it.
            Some("") if !self.packed.is_empty() => !namespace.is_empty(),
            Some(previous) => self.packed.is_empty() || previous < namespace,
            None => false,
        };
        if self.packed.is_empty() {
            // Room for about four entries like the first, so that a typical item's ids are
            // packed in one allocation (`finish` gives back what is left over).
            self.packed.reserve(4 * (namespace.len() + id.len() + 4));
        }
        if !after_previous {
            let so_far = Ids { packed: std::mem::take(&mut self.packed).into_boxed_str() };
            let mut entries: Vec<(String, String)> =
                so_far.iter().map(|(ns, id)| (ns.to_owned(), id.to_owned())).collect();
            entries.push((namespace.to_owned(), id.to_owned()));
            self.unordered = Some(entries);
            return;
        }
        push_field(&mut self.packed, namespace);
        self.previous = self.packed.len() - namespace.len()..self.packed.len();
        push_field(&mut self.packed, id);
    }

    /// The ids.
    pub fn finish(self) -> Ids {
        match self.unordered {
            Some(entries) => Ids::build(entries, true),
            None => Ids { packed: self.packed.into_boxed_str() },
        }
    }
}

/// A string, borrowed from the input when it can be.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The schema of a map of strings (what `Ids` reads and writes).
impl JsonSchema for Ids {
    fn inline_schema() -> bool {
        <std::collections::BTreeMap<String, String> as JsonSchema>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, String> as JsonSchema>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeMap<String, String> as JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// `Ids` behaves as a `BTreeMap<String, String>`: same entries, order, last-wins
        /// collection, insert and remove results, and JSON, whatever the text (`:`, digits,
        /// empty strings, non-ASCII).
        #[test]
        fn ids_behave_as_a_btreemap(
            entries in proptest::collection::vec(("[a-z0-9:]{0,3}|\\PC{0,4}", "[0-9:]{0,12}|\\PC{0,6}"), 0..12),
            probe in "[a-z0-9:]{0,3}",
            inserted in "\\PC{0,5}",
        ) {
            let mut ids: Ids = entries.iter().cloned().collect();
            let mut map: BTreeMap<String, String> = entries.iter().cloned().collect();
            prop_assert_eq!(ids.iter().collect::<Vec<_>>(), map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
            prop_assert_eq!(ids.len(), map.len());
            prop_assert_eq!(ids.is_empty(), map.is_empty());
            prop_assert_eq!(ids.get(&probe), map.get(&probe).map(String::as_str));
            prop_assert_eq!(serde_json::to_string(&ids).unwrap(), serde_json::to_string(&map).unwrap());
            let back: Ids = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
            prop_assert_eq!(&back, &ids);
            // An object in any order, keys repeated: the last of a key wins, as in a map.
            let fields: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                .collect();
            let unordered: Ids = serde_json::from_str(&format!("{{{}}}", fields.join(","))).unwrap();
            prop_assert_eq!(&unordered, &ids);
            prop_assert_eq!(ids.insert(&probe, &inserted), map.insert(probe.clone(), inserted.clone()));
            prop_assert_eq!(ids.iter().collect::<Vec<_>>(), map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
            let first = map.keys().next().cloned().unwrap_or_default();
            prop_assert_eq!(ids.remove(&first), map.remove(&first));
            prop_assert_eq!(ids.iter().collect::<Vec<_>>(), map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
        }
    }

    #[test]
    fn first_wins_keeps_the_first_of_a_namespace() {
        let ids = Ids::first_wins(vec![("tmdb", "1"), ("imdb", "tt2"), ("tmdb", "3")]);
        assert_eq!(ids.get("tmdb"), Some("1"));
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn json_refuses_what_a_map_of_strings_refuses() {
        for bad in [r#"{"tmdb": 949}"#, r#"["tmdb"]"#, r#""tmdb""#, r#"{"tmdb": null}"#] {
            assert!(serde_json::from_str::<Ids>(bad).is_err(), "{bad}");
        }
        let ids: Ids = serde_json::from_str(r#"{"tmdb": "1", "tmdb": "2", "a\"b": "\u00e9"}"#).unwrap();
        assert_eq!(ids.get("tmdb"), Some("2"), "a repeated key keeps its last value, as a map does");
        assert_eq!(ids.get("a\"b"), Some("é"));
        assert_eq!(format!("{ids:?}"), r#"{"a\"b": "é", "tmdb": "2"}"#);
    }
}
