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

/// External ids by namespace (`imdb`, `tmdb`, `tvdb`, `trakt`, `simkl`, `plex`, `guid`, …).
pub type Ids = BTreeMap<String, String>;

/// One item of an inventory, as providers report and accept it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
