//! `cw.yaml`: provider instances, sync pairs, guardrail and state settings.
//!
//! ```yaml
//! providers:                      # named instances: `adapter` plus the adapter's settings
//!   imdb: { adapter: file, path: data/imdb_ratings.csv }
//!   lib:  { adapter: local, path: library.db }
//! pairs:
//!   - id: imdb-to-lib
//!     source: imdb
//!     target: lib
//!     mode: one-way               # or two-way
//!     features:
//!       ratings:   { add: true, remove: false }
//!       watchlist: { add: true, remove: true, remove_mode: source_deletes }
//! sync: { drop_guard: true, mass_delete: { max_ratio: 0.10, min: 10 } }
//! ```
//!
//! Unknown keys are errors. Every error names the file, the line and column (when known) and
//! the key path (`pairs[0].features.ratings.remove_mode`). Relative provider `path` values and
//! `state_dir` resolve against the config file's directory. See `docs/config.md` for every key
//! and its default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use pal::inventory::Feature;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::state::StateOptions;

/// The config file's conventional name.
pub const DEFAULT_CONFIG_FILE: &str = "cw.yaml";

// ---------------------------------------------------------------------------------------------
// Errors

/// Why `cw.yaml` could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read: {message}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// Broken YAML, an unknown key, a wrong type or a value that does not validate.
    #[error(
        "{}{}: {}{message}",
        path.display(),
        match (line, column) {
            (Some(l), Some(c)) => format!(":{l}:{c}"),
            (Some(l), None) => format!(":{l}"),
            _ => String::new(),
        },
        if key.is_empty() { String::new() } else { format!("{key}: ") }
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The key path, e.g. `pairs[1].source`; for YAML syntax errors the nearest key before the
        /// broken construct (best effort; empty when none).
        key: String,
        /// What is wrong.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// The typed config

/// One side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The pair's `source`.
    Source,
    /// The pair's `target`.
    Target,
}

impl Side {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Source => Side::Target,
            Side::Target => Side::Source,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a pair syncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Source → target (the default).
    #[default]
    OneWay,
    /// Both ways; deletions propagate through tombstones.
    TwoWay,
}

/// What a one-way pair removes from the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveMode {
    /// Never remove.
    None,
    /// Remove what disappeared from the source since the last baseline (the default).
    #[default]
    SourceDeletes,
    /// Also remove target-only items that were in the target's baseline.
    Mirror,
}

/// The settings of one feature of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureConfig {
    /// Add (or upsert) what the target lacks. Default `true`.
    pub add: bool,
    /// Remove per `remove_mode` (one-way) or propagate observed deletions (two-way). Default
    /// `false`.
    pub remove: bool,
    /// How a one-way pair decides removals. Default `source_deletes`.
    pub remove_mode: RemoveMode,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig { add: true, remove: false, remove_mode: RemoveMode::SourceDeletes }
    }
}

/// A provider instance: an adapter plus its settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderInstance {
    /// The instance name (the key under `providers:`).
    pub name: String,
    /// The adapter that serves it.
    pub adapter: String,
    /// Every other key, for the adapter factory; a `path` is already resolved to an absolute
    /// path.
    pub settings: serde_json::Map<String, Value>,
}

impl ProviderInstance {
    /// The resolved `path` setting, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.settings.get("path").and_then(Value::as_str).map(PathBuf::from)
    }
}

/// A sync pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairConfig {
    /// Unique id; names the pair in state and reports.
    pub id: String,
    /// Source provider instance.
    pub source: String,
    /// Target provider instance.
    pub target: String,
    /// One-way or two-way.
    pub mode: SyncMode,
    /// The features this pair syncs.
    pub features: BTreeMap<Feature, FeatureConfig>,
    /// Two-way ratings conflicts with equal (or missing) `rated_at`: which side wins.
    pub source_of_truth: Option<Side>,
}

impl PairConfig {
    /// The provider instance on `side`.
    pub fn provider(&self, side: Side) -> &str {
        match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        }
    }

    /// The settings of `feature`, if the pair syncs it.
    pub fn feature(&self, feature: Feature) -> Option<&FeatureConfig> {
        self.features.get(&feature)
    }
}

/// The mass-delete guard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `max_ratio` and `min`")]
pub struct MassDeleteConfig {
    /// Largest share of the target's inventory one feature may remove in a run, in (0, 1].
    #[serde(default = "default_max_ratio")]
    pub max_ratio: f64,
    /// Removals up to this many are always allowed.
    #[serde(default = "default_mass_delete_min")]
    pub min: u32,
}

impl Default for MassDeleteConfig {
    fn default() -> Self {
        MassDeleteConfig { max_ratio: default_max_ratio(), min: default_mass_delete_min() }
    }
}

/// The blackbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `failures` and `quarantine_days`")]
pub struct BlackboxConfig {
    /// Consecutive failing runs before an item is quarantined (≥ 1).
    #[serde(default = "default_blackbox_failures")]
    pub failures: u32,
    /// Quarantine length in days (≥ 1).
    #[serde(default = "default_thirty")]
    pub quarantine_days: u32,
}

impl Default for BlackboxConfig {
    fn default() -> Self {
        BlackboxConfig { failures: default_blackbox_failures(), quarantine_days: default_thirty() }
    }
}

/// Engine settings shared by every pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping of sync settings")]
pub struct SyncConfig {
    /// The drop guard (a suspiciously small `present` snapshot produces no removals).
    #[serde(default = "default_true")]
    pub drop_guard: bool,
    /// The mass-delete guard.
    #[serde(default, deserialize_with = "null_as_default")]
    pub mass_delete: MassDeleteConfig,
    /// How long tombstones live, in days (≥ 1).
    #[serde(default = "default_thirty")]
    pub tombstone_ttl_days: u32,
    /// The blackbox.
    #[serde(default, deserialize_with = "null_as_default")]
    pub blackbox: BlackboxConfig,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            drop_guard: true,
            mass_delete: MassDeleteConfig::default(),
            tombstone_ttl_days: default_thirty(),
            blackbox: BlackboxConfig::default(),
        }
    }
}

impl SyncConfig {
    /// The state store settings these imply (the busy timeout keeps its default).
    pub fn state_options(&self) -> StateOptions {
        StateOptions {
            tombstone_ttl: time::Duration::days(i64::from(self.tombstone_ttl_days)),
            blackbox_failures: self.blackbox.failures,
            quarantine: time::Duration::days(i64::from(self.blackbox.quarantine_days)),
            ..StateOptions::default()
        }
    }
}

/// A parsed and validated `cw.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CwConfig {
    /// The config file (absolute).
    pub file: PathBuf,
    /// Its directory: relative paths resolve against it.
    pub base_dir: PathBuf,
    /// Provider instances by name.
    pub providers: BTreeMap<String, ProviderInstance>,
    /// Pairs, in file order.
    pub pairs: Vec<PairConfig>,
    /// Engine settings.
    pub sync: SyncConfig,
    /// The state directory, resolved (absent: `--state` or the platform's data directory).
    pub state_dir: Option<PathBuf>,
}

impl CwConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { path: path.to_path_buf(), message: e.to_string() })?;
        CwConfig::parse(&text, path)
    }

    /// Parses `text` as the file at `path` (used for errors and to resolve relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = yaml_serde::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let v = Validator { text, path };

        let mut providers = BTreeMap::new();
        for (name, provider) in raw.providers {
            let here = KeyPath::root().key("providers").key(&name);
            if name.trim().is_empty() {
                return Err(v.error(&here, "a provider instance needs a non-empty name"));
            }
            if provider.adapter.trim().is_empty() {
                return Err(v.error(&here.key("adapter"), "must name an adapter"));
            }
            let mut settings = provider.settings;
            if let Some(value) = settings.get_mut("path") {
                let at = here.key("path");
                let Value::String(text) = value else {
                    return Err(v.error(&at, format!("must be a string (a file path), found {value}")));
                };
                if text.trim().is_empty() {
                    return Err(v.error(&at, "must not be empty"));
                }
                let resolved = resolve(&base_dir, text);
                let Some(resolved) = resolved.to_str() else {
                    return Err(v.error(&at, "resolves to a path that is not valid UTF-8"));
                };
                *text = resolved.to_owned();
            }
            providers.insert(name.clone(), ProviderInstance { name, adapter: provider.adapter, settings });
        }

        let mut pairs: Vec<PairConfig> = Vec::new();
        for (index, pair) in raw.pairs.into_iter().enumerate() {
            let here = KeyPath::root().key("pairs").index(index);
            if pair.id.trim().is_empty() {
                return Err(v.error(&here.key("id"), "a pair needs a non-empty id"));
            }
            if let Some(first) = pairs.iter().position(|p| p.id == pair.id) {
                let first_line = v.locate(&KeyPath::root().key("pairs").index(first).key("id")).map(|(l, _)| l);
                let message = match first_line {
                    Some(line) => format!("duplicate pair id `{}` (first used at line {line})", pair.id),
                    None => format!("duplicate pair id `{}`", pair.id),
                };
                return Err(v.error(&here.key("id"), message));
            }
            for (key, name) in [("source", &pair.source), ("target", &pair.target)] {
                if !providers.contains_key(name) {
                    let known = providers.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>();
                    let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                    return Err(v.error(
                        &here.key(key),
                        format!("provider `{name}` is not declared under `providers:` (declared: {known})"),
                    ));
                }
            }
            if pair.source == pair.target {
                return Err(v.error(&here.key("target"), "a pair's source and target must be different providers"));
            }
            let source_of_truth = match &pair.source_of_truth {
                None => None,
                Some(name) => {
                    let at = here.key("source_of_truth");
                    if pair.mode != SyncMode::TwoWay {
                        return Err(v.error(&at, "only applies to two-way pairs (a one-way pair's source always wins)"));
                    }
                    let side = if *name == pair.source || name == "source" {
                        Side::Source
                    } else if *name == pair.target || name == "target" {
                        Side::Target
                    } else {
                        return Err(v.error(
                            &at,
                            format!(
                                "`{name}` is not one of this pair's sides: use `{}` or `{}` (or `source` / `target`)",
                                pair.source, pair.target
                            ),
                        ));
                    };
                    Some(side)
                }
            };
            let mut features = BTreeMap::new();
            for (feature, raw_feature) in pair.features.into_iter() {
                let Some(raw_feature) = raw_feature else { continue };
                if pair.mode == SyncMode::TwoWay && raw_feature.remove_mode.is_some() {
                    return Err(v.error(
                        &here.key("features").key(feature.as_str()).key("remove_mode"),
                        "only applies to one-way pairs; a two-way pair propagates observed deletions (tombstones)",
                    ));
                }
                features.insert(
                    feature,
                    FeatureConfig {
                        add: raw_feature.add,
                        remove: raw_feature.remove,
                        remove_mode: raw_feature.remove_mode.unwrap_or_default(),
                    },
                );
            }
            pairs.push(PairConfig {
                id: pair.id,
                source: pair.source,
                target: pair.target,
                mode: pair.mode,
                features,
                source_of_truth,
            });
        }

        let sync = raw.sync;
        let at = KeyPath::root().key("sync");
        let ratio = sync.mass_delete.max_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(v.error(
                &at.key("mass_delete").key("max_ratio"),
                format!("must be greater than 0 and at most 1 (a share of the target's inventory), found {ratio}"),
            ));
        }
        if sync.tombstone_ttl_days == 0 {
            return Err(v.error(&at.key("tombstone_ttl_days"), "must be at least 1 (day)"));
        }
        if sync.blackbox.failures == 0 {
            return Err(v.error(&at.key("blackbox").key("failures"), "must be at least 1"));
        }
        if sync.blackbox.quarantine_days == 0 {
            return Err(v.error(&at.key("blackbox").key("quarantine_days"), "must be at least 1 (day)"));
        }

        let state_dir = match raw.state_dir {
            None => None,
            Some(dir) if dir.trim().is_empty() => {
                return Err(v.error(&KeyPath::root().key("state_dir"), "must not be empty (omit it instead)"));
            }
            Some(dir) => Some(resolve(&base_dir, &dir)),
        };
        Ok(CwConfig { file, base_dir, providers, pairs, sync, state_dir })
    }

    /// The pair with this id.
    pub fn pair(&self, id: &str) -> Option<&PairConfig> {
        self.pairs.iter().find(|p| p.id == id)
    }

    /// The provider instance with this name.
    pub fn provider(&self, name: &str) -> Option<&ProviderInstance> {
        self.providers.get(name)
    }
}

fn resolve(base_dir: &Path, text: &str) -> PathBuf {
    let path = Path::new(text);
    if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) }
}

// ---------------------------------------------------------------------------------------------
// Raw (as written) shapes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `providers`, `pairs`, `sync`, `state_dir`")]
struct RawConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default, deserialize_with = "null_as_default")]
    pairs: Vec<RawPair>,
    #[serde(default, deserialize_with = "null_as_default")]
    sync: SyncConfig,
    #[serde(default)]
    state_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a mapping with `adapter` and the adapter's settings")]
struct RawProvider {
    adapter: String,
    #[serde(flatten)]
    settings: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `id`, `source`, `target` and optional `mode`, `features`, `source_of_truth`")]
struct RawPair {
    id: String,
    source: String,
    target: String,
    #[serde(default)]
    mode: SyncMode,
    #[serde(default, deserialize_with = "null_as_default")]
    features: RawFeatures,
    #[serde(default)]
    source_of_truth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a mapping of feature names (`watchlist`, `ratings`, `history`, `progress`, `playlists`) to settings"
)]
struct RawFeatures {
    #[serde(default, deserialize_with = "enabled")]
    watchlist: Option<RawFeature>,
    #[serde(default, deserialize_with = "enabled")]
    ratings: Option<RawFeature>,
    #[serde(default, deserialize_with = "enabled")]
    history: Option<RawFeature>,
    #[serde(default, deserialize_with = "enabled")]
    progress: Option<RawFeature>,
    #[serde(default, deserialize_with = "enabled")]
    playlists: Option<RawFeature>,
}

impl RawFeatures {
    fn into_iter(self) -> impl Iterator<Item = (Feature, Option<RawFeature>)> {
        [
            (Feature::Watchlist, self.watchlist),
            (Feature::Ratings, self.ratings),
            (Feature::History, self.history),
            (Feature::Progress, self.progress),
            (Feature::Playlists, self.playlists),
        ]
        .into_iter()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a mapping with `add`, `remove`, `remove_mode`")]
struct RawFeature {
    #[serde(default = "default_true")]
    add: bool,
    #[serde(default)]
    remove: bool,
    #[serde(default)]
    remove_mode: Option<RemoveMode>,
}

impl Default for RawFeature {
    fn default() -> Self {
        RawFeature { add: true, remove: false, remove_mode: None }
    }
}

fn default_true() -> bool {
    true
}

fn default_thirty() -> u32 {
    30
}

fn default_max_ratio() -> f64 {
    0.10
}

fn default_mass_delete_min() -> u32 {
    10
}

fn default_blackbox_failures() -> u32 {
    3
}

/// A key written with an empty value (`sync:`) means the defaults.
fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A feature key that is present is enabled, even when written without settings (`ratings:`).
fn enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawFeature>, D::Error> {
    Option::<RawFeature>::deserialize(d).map(|f| Some(f.unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------------
// Error locations

/// A key path such as `pairs[1].features.ratings`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    fn root() -> Self {
        KeyPath(Vec::new())
    }

    fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Validator<'_> {
    /// An error at `key`, located in the file by re-reading the YAML up to that node.
    fn error(&self, key: &KeyPath, message: impl Into<String>) -> ConfigError {
        let location = self.locate(key);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: location.map(|(l, _)| l),
            column: location.map(|(_, c)| c),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Line and column of the node at `key`: the parser is run again with a visitor that fails
    /// on reaching that node, and the parser stamps the failure with the node's position.
    fn locate(&self, key: &KeyPath) -> Option<(usize, usize)> {
        let deserializer = yaml_serde::Deserializer::from_str(self.text);
        match (Probe { rest: &key.0 }).deserialize(deserializer) {
            Ok(()) => None,
            Err(e) => e.location().map(|l| (l.line(), l.column())),
        }
    }
}

/// Walks a YAML document along a key path; fails (with the parser's position) at its end.
struct Probe<'a> {
    rest: &'a [Segment],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Probe<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.rest.is_empty() { Err(E::custom("found")) } else { Ok(()) }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.rest.split_first() else { return Err(de::Error::custom("found")) };
        while let Some(key) = map.next_key::<KeyText>()? {
            match first {
                Segment::Key(wanted) if key.0.as_deref() == Some(wanted.as_str()) => {
                    map.next_value_seed(Probe { rest })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.rest.split_first() else { return Err(de::Error::custom("found")) };
        let mut index = 0usize;
        loop {
            let found = match first {
                Segment::Index(wanted) if *wanted == index => seq.next_element_seed(Probe { rest })?.is_some(),
                _ => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !found {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// A mapping key as text (non-string keys become `None`).
struct KeyText(Option<String>);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|v| match v {
            Value::String(s) => KeyText(Some(s)),
            Value::Number(n) => KeyText(Some(n.to_string())),
            Value::Bool(b) => KeyText(Some(b.to_string())),
            _ => KeyText(None),
        })
    }
}

/// Turns a parser error into a [`ConfigError`] with the file, the position and the key path.
fn yaml_error(path: &Path, text: &str, error: &yaml_serde::Error) -> ConfigError {
    let location = error.location();
    let mut message = error.to_string();
    if let Some(location) = &location {
        let suffix = format!(" at line {} column {}", location.line(), location.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    // Data errors read `<key path>: <message>` (no prefix at the top level).
    let (mut key, mut message) = match message.split_once(": ") {
        Some((head, tail)) if !head.is_empty() && !head.contains(char::is_whitespace) => {
            (head.to_owned(), tail.to_owned())
        }
        _ => (String::new(), message),
    };
    // Point unknown keys at the key itself.
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()) {
        key = if key.is_empty() { field.to_owned() } else { format!("{key}.{field}") };
        message = format!("unknown key {message}", message = message.trim_start_matches("unknown field "));
    }
    // Syntax errors know no key: name the key nearest before the construct that broke.
    if key.is_empty()
        && let Some((line, column)) = last_mark(&message).or(location.as_ref().map(|l| (l.line(), l.column())))
    {
        key = key_near(text, line, column).unwrap_or_default();
    }
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: location.as_ref().map(yaml_serde::Location::line),
        column: location.as_ref().map(yaml_serde::Location::column),
        key,
        message,
    }
}

/// The last `line L column C` a parser message mentions (libyaml puts the start of the
/// construct being parsed last).
fn last_mark(message: &str) -> Option<(usize, usize)> {
    let (_, tail) = message.rsplit_once("at line ")?;
    let (line, tail) = tail.split_once(" column ")?;
    let column: String = tail.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// Best effort: the key path of the block keys enclosing `line` (1-based), plus the last flow
/// key on that line before `column`, e.g. `providers.imdb.path`.
fn key_near(text: &str, line: usize, column: usize) -> Option<String> {
    struct Entry {
        indent: usize,
        key: String,
        index: Option<usize>,
    }
    let mut stack: Vec<Entry> = Vec::new();
    let mut flow_key = None;
    for (number, raw) in text.lines().enumerate().take(line) {
        let content = raw.split(" #").next().unwrap_or_default();
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let mut indent = content.len() - content.trim_start().len();
        let mut rest = content.trim_start();
        while let Some(after) = rest.strip_prefix('-').filter(|a| a.is_empty() || a.starts_with(' ')) {
            stack.retain(|e| e.indent <= indent);
            if let Some(parent) = stack.last_mut() {
                parent.index = Some(parent.index.map_or(0, |i| i + 1));
            }
            let trimmed = after.trim_start();
            indent += rest.len() - trimmed.len();
            rest = trimmed;
        }
        let mut after_key = rest;
        if let Some((key, tail)) =
            rest.split_once(':').filter(|(k, t)| is_plain_key(k) && (t.is_empty() || t.starts_with(' ')))
        {
            stack.retain(|e| e.indent < indent);
            stack.push(Entry { indent, key: unquote(key).to_owned(), index: None });
            after_key = tail;
        }
        if number + 1 == line {
            let offset = content.len() - after_key.len();
            let upto = column.saturating_sub(1).saturating_sub(offset).min(after_key.len());
            let scanned = after_key.get(..upto).unwrap_or(after_key);
            flow_key = scanned
                .split(['{', ',', '['])
                .filter_map(|part| part.split_once(':').map(|(k, _)| k.trim()))
                .rfind(|k| is_plain_key(k))
                .map(|k| unquote(k).to_owned());
        }
    }
    let mut parts: Vec<String> = stack
        .iter()
        .map(|e| match e.index {
            Some(i) => format!("{}[{i}]", e.key),
            None => e.key.clone(),
        })
        .collect();
    parts.extend(flow_key);
    if parts.is_empty() { None } else { Some(parts.join(".")) }
}

fn is_plain_key(key: &str) -> bool {
    let key = unquote(key.trim());
    !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn unquote(key: &str) -> &str {
    key.trim().trim_matches(|c| c == '"' || c == '\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_display_like_the_parser() {
        let path = KeyPath::root().key("pairs").index(1).key("features").key("ratings");
        assert_eq!(path.to_string(), "pairs[1].features.ratings");
    }

    #[test]
    fn locate_finds_block_and_flow_nodes() {
        let text = "providers:\n  a: { adapter: x, path: p }\npairs:\n  - id: one\n    source: a\n  - id: two\n    source: b\n";
        let v = Validator { text, path: Path::new("cw.yaml") };
        assert_eq!(v.locate(&KeyPath::root().key("pairs").index(1).key("source")).map(|l| l.0), Some(7));
        assert_eq!(v.locate(&KeyPath::root().key("providers").key("a").key("path")).map(|l| l.0), Some(2));
        assert_eq!(v.locate(&KeyPath::root().key("nope")), None);
    }
}
