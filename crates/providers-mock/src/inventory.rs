//! `mock_inventory`: an in-memory media inventory with every feature, key-confirmed writes,
//! honest dry runs, per-feature checkpoints and settable health.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use admit_core::{ErrorCode, ProviderError};
use pal::inventory::{
    Activities, Feature, Features, Ids, IndexSemantics, InventoryCapabilities, InventoryItem, InventoryProvider,
    ItemType, UnresolvedItem, WriteResult,
};
use pal::{Capability, Extra, HealthReport, HealthStatus, Secret, async_trait};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::faults::{FaultInjector, FaultSettings};

/// Id namespaces that make a key, in order of preference.
pub const KEY_NAMESPACES: [&str; 4] = ["tmdb", "imdb", "tvdb", "trakt"];

/// The checkpoint of a feature never written to: `2024-01-01T00:00:00Z`.
pub const EPOCH: &str = "2024-01-01T00:00:00Z";

/// Settings of `mock_inventory`.
///
/// ```
/// use providers_mock::inventory::MockInventorySettings;
/// let settings: MockInventorySettings = serde_json::from_value(serde_json::json!({
///     "items": {"watchlist": [{"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949"}}]},
///     "faults": {"health": "degraded"}
/// })).unwrap();
/// assert_eq!(settings.items.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MockInventorySettings {
    /// Fault injection.
    pub faults: FaultSettings,
    /// A credential (never used; for redaction tests).
    pub token: Option<Secret>,
    /// Items present at start, by feature. Every item needs an id.
    pub items: BTreeMap<Feature, Vec<InventoryItem>>,
    /// The provider name (default `MOCK`); set it to pair two mocks.
    pub name: Option<String>,
    /// The label (default `Mock inventory`).
    pub label: Option<String>,
    /// Supported features (default: all five).
    pub features: Option<Features>,
    /// Behaviour switches (default: present snapshots, verify-after-write, observed deletes,
    /// checkpoints, chunks of 100, confirmed keys).
    pub capabilities: Option<InventoryCapabilities>,
    /// Ids the vendor does not know, as `<namespace>:<id>` tokens (`tmdb:404`, matched
    /// case-insensitively against the item's normalised ids): `add` reports an item carrying
    /// one as unresolved (reason `unknown to the vendor`, with its ids) and stores nothing.
    pub unresolvable: Vec<String>,
}

/// The capabilities `mock_inventory` declares by default.
pub fn default_capabilities() -> InventoryCapabilities {
    InventoryCapabilities {
        index_semantics: IndexSemantics::Present,
        verify_after_write: true,
        observed_deletes: true,
        checkpoint: true,
        chunk_size: 100,
        confirms_keys: true,
        ..InventoryCapabilities::default()
    }
}

fn known_id(ids: &Ids) -> Option<String> {
    KEY_NAMESPACES
        .iter()
        .find_map(|ns| ids.get(ns).filter(|v| !v.trim().is_empty()).map(|v| format!("{ns}:{}", v.trim())))
}

/// The mock's canonical key of an item, or `None` when it has no id at all.
///
/// The first id among `tmdb`, `imdb`, `tvdb`, `trakt` (`tmdb:123`); for a season or episode
/// without such an id of its own, the show's such id plus `#s<season>` / `#s<season>e<episode>`;
/// else `title:<lowercased title>|year:<year>`; else the first id of any other namespace.
pub fn item_key(item: &InventoryItem) -> Option<String> {
    let show_ids = item.show_ids.as_ref().filter(|ids| !ids.is_empty());
    if item.ids.values().all(|v| v.trim().is_empty()) && show_ids.is_none() {
        return None;
    }
    if let Some(key) = known_id(&item.ids) {
        return Some(key);
    }
    if matches!(item.item_type, ItemType::Season | ItemType::Episode)
        && let Some(show) = show_ids.and_then(known_id)
    {
        let season = item.season.map(|s| format!("#s{s}")).unwrap_or_default();
        let episode = item.episode.map(|e| format!("e{e}")).unwrap_or_default();
        return Some(format!("{show}{season}{episode}"));
    }
    if let Some(title) = item.title.as_deref().filter(|t| !t.trim().is_empty()) {
        let year = item.year.map(|y| y.to_string()).unwrap_or_default();
        return Some(format!("title:{}|year:{year}", title.trim().to_lowercase()));
    }
    item.ids.iter().find(|(_, v)| !v.trim().is_empty()).map(|(ns, v)| format!("{ns}:{}", v.trim()))
}

/// The checkpoint after `n` writes: [`EPOCH`] plus `n` seconds, RFC 3339 in UTC.
pub fn checkpoint_time(n: u64) -> String {
    // Days since 1970-01-01 of 2024-01-01.
    const EPOCH_DAYS: u64 = 19_723;
    let days = EPOCH_DAYS + n / 86_400;
    let secs = n % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[derive(Debug, Default)]
struct Store {
    /// Per feature, in insertion order; history holds one entry per play.
    items: BTreeMap<Feature, Vec<(String, InventoryItem)>>,
    /// Per feature, the sequence number of its last write.
    checkpoints: BTreeMap<Feature, u64>,
    seq: u64,
    writes: u64,
}

impl Store {
    fn same_entry(feature: Feature, entry: &(String, InventoryItem), key: &str, item: &InventoryItem) -> bool {
        entry.0 == key && (feature != Feature::History || entry.1.watched_at == item.watched_at)
    }

    /// Upserts (history: appends the play unless the same play is there).
    fn put(&mut self, feature: Feature, key: String, item: InventoryItem) {
        let entries = self.items.entry(feature).or_default();
        match entries.iter_mut().find(|e| Store::same_entry(feature, e, &key, &item)) {
            Some(entry) => entry.1 = item,
            None => entries.push((key, item)),
        }
    }

    /// Whether a remove of `item` would match anything (history: any play of the key, or the
    /// play at `watched_at` when given).
    fn matches(entry: &(String, InventoryItem), feature: Feature, key: &str, item: &InventoryItem) -> bool {
        entry.0 == key
            && (feature != Feature::History || item.watched_at.is_none() || entry.1.watched_at == item.watched_at)
    }

    fn record_write(&mut self, feature: Feature) {
        self.seq += 1;
        self.writes += 1;
        self.checkpoints.insert(feature, self.seq);
    }
}

fn unresolved(item: &InventoryItem, reason: &str) -> UnresolvedItem {
    let mut extra = Extra::new();
    if let Some(title) = &item.title {
        extra.insert("title".to_owned(), Value::String(title.clone()));
    }
    if let Some(year) = item.year {
        extra.insert("year".to_owned(), Value::from(year));
    }
    UnresolvedItem { ids: item.ids.clone(), reason: Some(reason.to_owned()), extra }
}

fn push_unique(keys: &mut Vec<String>, key: &str) {
    if !keys.iter().any(|k| k == key) {
        keys.push(key.to_owned());
    }
}

/// `mock_inventory`.
#[derive(Debug)]
pub struct MockInventory {
    name: String,
    label: String,
    features: Features,
    capabilities: InventoryCapabilities,
    unresolvable: Vec<String>,
    faults: FaultInjector,
    store: Mutex<Store>,
}

impl Default for MockInventory {
    fn default() -> Self {
        MockInventory::build(MockInventorySettings::default())
    }
}

impl MockInventory {
    /// The adapter name.
    pub const NAME: &'static str = "mock_inventory";

    fn build(settings: MockInventorySettings) -> Self {
        MockInventory {
            name: settings.name.unwrap_or_else(|| "MOCK".to_owned()),
            label: settings.label.unwrap_or_else(|| "Mock inventory".to_owned()),
            features: settings.features.unwrap_or(Features::ALL),
            capabilities: settings.capabilities.unwrap_or_else(default_capabilities),
            unresolvable: settings.unresolvable.iter().map(|t| t.trim().to_lowercase()).collect(),
            faults: FaultInjector::new(Capability::Inventory, Self::NAME, settings.faults, settings.token),
            store: Mutex::new(Store::default()),
        }
    }

    /// A mock with these settings, seeded with `settings.items`. Refuses a seed item without
    /// any id, naming it (`items.<feature>[<index>]`).
    pub fn new(mut settings: MockInventorySettings) -> Result<Self, String> {
        let items = std::mem::take(&mut settings.items);
        let inventory = MockInventory::build(settings);
        for (feature, items) in items {
            inventory.seed(feature, items).map_err(|e| format!("items.{feature}{e}"))?;
        }
        Ok(inventory)
    }

    /// Stores items directly: no faults, no write count, no checkpoint. Refuses an item
    /// without any id (`[<index>]: …`) and stores nothing then.
    pub fn seed(&self, feature: Feature, items: Vec<InventoryItem>) -> Result<(), String> {
        let keyed = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item_key(&item) {
                Some(key) => Ok((key, item)),
                None => Err(format!("[{index}]: the item has no ids")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, item) in keyed {
            store.put(feature, key, item);
        }
        Ok(())
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Makes `health` report `status` from now on.
    pub fn set_health(&self, status: HealthStatus) {
        self.faults.set_health(status);
    }

    /// Write calls applied (`add` and `remove` without `dry_run` that did not fail).
    pub fn writes(&self) -> u64 {
        self.store.lock().unwrap_or_else(PoisonError::into_inner).writes
    }

    /// Calls received, whatever became of them: every operation, `health` included, injected
    /// failures and calls that hang included (the vendor's request log).
    pub fn requests(&self) -> u64 {
        self.faults.calls()
    }

    /// Whether the item carries an id the vendor does not know (see
    /// [`MockInventorySettings::unresolvable`]).
    fn is_unknown(&self, item: &InventoryItem) -> bool {
        !self.unresolvable.is_empty()
            && pal::keys::normalize_ids(item)
                .iter()
                .any(|(ns, id)| self.unresolvable.contains(&format!("{ns}:{id}").to_lowercase()))
    }

    /// The items of a feature, in insertion order, without faults (for assertions).
    pub fn items(&self, feature: Feature) -> Vec<InventoryItem> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        store
            .items
            .get(&feature)
            .map(|entries| entries.iter().map(|(_, item)| item.clone()).collect())
            .unwrap_or_default()
    }

    /// The keys of a feature's items, in insertion order (history: one per play).
    pub fn keys(&self, feature: Feature) -> Vec<String> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        store
            .items
            .get(&feature)
            .map(|entries| entries.iter().map(|(key, _)| key.clone()).collect())
            .unwrap_or_default()
    }

    async fn check(&self, op: &str, feature: Feature) -> Result<(), ProviderError> {
        self.faults.before(op).await?;
        if self.features.supports(feature) {
            Ok(())
        } else {
            Err(self.faults.error(op, ErrorCode::Unsupported, format!("feature `{feature}` is not enabled")))
        }
    }
}

#[async_trait]
impl InventoryProvider for MockInventory {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn features(&self) -> Features {
        self.features
    }

    fn capabilities(&self) -> InventoryCapabilities {
        self.capabilities.clone()
    }

    async fn build_index(&self, feature: Feature) -> Result<Vec<InventoryItem>, ProviderError> {
        self.check("build_index", feature).await?;
        Ok(self.items(feature))
    }

    async fn add(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.check("add", feature).await?;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let mut confirmed = Vec::new();
        let mut unresolved_items = Vec::new();
        for item in items {
            let Some(key) = item_key(&item) else {
                unresolved_items.push(unresolved(&item, "no ids"));
                continue;
            };
            if feature == Feature::Ratings && item.rating.is_some_and(|r| !(1..=10).contains(&r)) {
                unresolved_items.push(unresolved(&item, "rating must be 1–10"));
                continue;
            }
            if self.is_unknown(&item) {
                unresolved_items.push(unresolved(&item, "unknown to the vendor"));
                continue;
            }
            push_unique(&mut confirmed, &key);
            if !dry_run {
                store.put(feature, key, item);
            }
        }
        if !dry_run {
            store.record_write(feature);
        }
        Ok(WriteResult {
            ok: true,
            confirmed_keys: Some(confirmed),
            unresolved: unresolved_items,
            dry_run,
            ..WriteResult::default()
        })
    }

    async fn remove(
        &self,
        items: Vec<InventoryItem>,
        feature: Feature,
        dry_run: bool,
    ) -> Result<WriteResult, ProviderError> {
        self.check("remove", feature).await?;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let mut confirmed = Vec::new();
        let mut unresolved_items = Vec::new();
        for item in items {
            let Some(key) = item_key(&item) else {
                unresolved_items.push(unresolved(&item, "no ids"));
                continue;
            };
            let entries = store.items.entry(feature).or_default();
            if entries.iter().any(|e| Store::matches(e, feature, &key, &item)) {
                push_unique(&mut confirmed, &key);
                if !dry_run {
                    entries.retain(|e| !Store::matches(e, feature, &key, &item));
                }
            }
        }
        if !dry_run {
            store.record_write(feature);
        }
        Ok(WriteResult {
            ok: true,
            confirmed_keys: Some(confirmed),
            unresolved: unresolved_items,
            dry_run,
            ..WriteResult::default()
        })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }

    async fn activities(&self) -> Result<Activities, ProviderError> {
        self.faults.before("activities").await?;
        let mut activities = Activities::new();
        if !self.capabilities.checkpoint {
            return Ok(activities);
        }
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let mut latest = 0;
        for feature in self.features.list() {
            let seq = store.checkpoints.get(&feature).copied().unwrap_or(0);
            latest = latest.max(seq);
            activities.insert(feature.as_str().to_owned(), checkpoint_time(seq));
        }
        activities.insert("updated_at".to_owned(), checkpoint_time(latest));
        Ok(activities)
    }
}
