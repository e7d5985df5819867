//! The planner (CONTRACTS §3, "Planner"): two ingested sides of one feature, their baselines,
//! the pair's tombstones and its configuration become a typed, serialisable [`FeaturePlan`]:
//! adds/upserts and removals per direction, and the tombstones to write. Pure: no I/O, no
//! clock; the same input gives the same plan, sorted by key.
//!
//! Matching is the ingest's: same canonical key or a shared strong token, through each side's
//! alias index ([`Inventory::same_item`]). History plays additionally match within a minute.
//!
//! # Rules
//!
//! - **watchlist, playlists** (presence): add what the other side has no match for.
//! - **ratings**: ratings are 1–10 (normalised at ingest); upsert when the target has none or a
//!   different one (with [`PlanConfig::ratings_only_if_newer`], only when the source's
//!   `rated_at` is later than the target's, or the target has none). Unrating follows the remove
//!   mode, like presence.
//! - **history**: a play is `<key>@<watched_at epoch>`; a play is never added when the target
//!   has a play of the same item less than a minute apart, nor twice in one plan.
//! - **progress**: positions below 60 s or at/above 95 % of the runtime are not synced; an
//!   update needs the position to move ≥ 30 s; a lower position is written only when the
//!   source's `progress_at` is later.
//! - **one-way removals** ([`RemoveMode`]): `none`; `source_deletes` (default): what was in the
//!   source's baseline and is gone from the source is removed on the target; `mirror`:
//!   target-only items that were in the target's baseline.
//! - **two-way**: no baselines and no tombstones = bootstrap: a union, no removals. A deletion
//!   observed on one side (in its baseline, gone now) is removed on the other side, matched by
//!   token overlap, and tombstoned under its canonical key and every strong token; an item
//!   tombstoned by one side is never re-added to it. Rating conflicts: see [`plan`].
//!
//! # Choices where CONTRACTS is silent
//!
//! - A removal is planned only for an item the deleting side no longer has under **any** of its
//!   ids (an item deleted under one key but still present under another is kept, not churned).
//! - Matched items that are not each other's first match (inconsistent ids on one side) are left
//!   alone rather than updated twice.
//! - History plays without a readable `watched_at` (`<key>@unknown`): when adding, such a play
//!   (on either side) counts as the same as any play of the item, so it never causes a
//!   duplicate; when removing, it is the same only as another play without a time.
//! - Progress is upsert-only: a cleared position is not propagated, and it has no tombstones.
//! - Two-way, when an item is deleted on one side and changed on the other, the deletion wins.
//! - Two-way rating conflicts fall back, when `rated_at` cannot decide, to the side whose rating
//!   changed since its baseline (when exactly one did), and only then to the source of truth.
//! - When removals are off ([`PlanConfig::remove`]), two-way is a union: deletions are not
//!   observed, so a deleted item is re-added from the other side.
//! - When removals are blocked (a suspect snapshot on either side), deletions observed on the
//!   healthy side still keep the deleted items from being re-added to it, but nothing is removed
//!   and no tombstones are written: the caller must keep that feature's previous baselines so
//!   the deletions are observed again (the same holds after
//!   [`enforce_mass_delete`](crate::guards::enforce_mass_delete) blocks a side).
//! - Updates carry the **target's** item (its ids and vendor payload) with the new value; adds
//!   carry the source's item; removals carry the target's item.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use admit_core::{Finding, Severity};
use pal::inventory::{Feature, InventoryItem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::config::{FeatureConfig, PairConfig};
pub use crate::config::{RemoveMode, Side, SyncMode};
use crate::ingest::{Claimed, Entry, Ingested, Inventory, UNKNOWN_PLAY_TIME, same_play_time};

/// Rule id of the planner's findings.
pub const PLANNER_RULE: &str = "cw.planner";

/// Progress below this position (ms) is not synced.
pub const PROGRESS_MIN_MS: u64 = 60_000;
/// Progress at or above this percentage of the runtime is not synced.
pub const PROGRESS_MAX_PERCENT: u64 = 95;
/// A progress update needs the position to move at least this much (ms).
pub const PROGRESS_MIN_MOVE_MS: u64 = 30_000;

/// A pair's configuration for one feature, as the planner needs it ([`PlanConfig::for_pair`]
/// builds it from the pair's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanConfig {
    /// One-way or two-way.
    pub mode: SyncMode,
    /// Plan adds and upserts.
    pub add: bool,
    /// Plan removals (and unrates); two-way, propagate observed deletions.
    pub remove: bool,
    /// One-way: what to remove.
    pub remove_mode: RemoveMode,
    /// Two-way: whose rating wins a conflict `rated_at` cannot decide.
    pub source_of_truth: Side,
    /// Ratings: upsert a different rating only when the source's `rated_at` is later.
    pub ratings_only_if_newer: bool,
}

/// One-way, with the defaults of [`FeatureConfig`] (adds on, removals off, `source_deletes`),
/// the source as source of truth, and every different rating upserted.
impl Default for PlanConfig {
    fn default() -> Self {
        let feature = FeatureConfig::default();
        PlanConfig {
            mode: SyncMode::OneWay,
            add: feature.add,
            remove: feature.remove,
            remove_mode: feature.remove_mode,
            source_of_truth: Side::Source,
            ratings_only_if_newer: false,
        }
    }
}

impl PlanConfig {
    /// The configuration of `feature` in `pair`; `None` when the pair does not sync it. A pair
    /// without a `source_of_truth` lets the source win rating conflicts.
    pub fn for_pair(pair: &PairConfig, feature: Feature) -> Option<PlanConfig> {
        let settings = pair.feature(feature)?;
        Some(PlanConfig {
            mode: pair.mode,
            add: settings.add,
            remove: settings.remove,
            remove_mode: settings.remove_mode,
            source_of_truth: pair.source_of_truth.unwrap_or(Side::Source),
            ..PlanConfig::default()
        })
    }
}

/// A remembered deletion (two-way): an item deleted on `deleted_on` is never re-added to it.
///
/// One tombstone per key: the deleted item's canonical key and each of its strong tokens; for
/// history, each suffixed with the play's `@<watched_at epoch>` (or `@unknown`), so a tombstone
/// holds back one play, not every play of the title. The state store adds the time and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tombstone {
    /// The feature.
    pub feature: Feature,
    /// A canonical key or strong token (history: with the play suffix).
    pub key: String,
    /// The side the deletion was observed on.
    pub deleted_on: Side,
}

/// Why an item is in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The receiving side has no match: add it.
    Missing,
    /// The receiving side has it with another value (rating, position): upsert it.
    Changed,
    /// The other side deleted it since its baseline: remove it.
    Deleted,
    /// One-way mirror: the source does not have it.
    Mirror,
}

/// One item to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// The entry key (history: the play key).
    pub key: String,
    /// Why.
    pub reason: Reason,
    /// The item to send.
    pub item: InventoryItem,
}

/// The writes for one side, each sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Writes {
    /// Adds and upserts.
    pub adds: Vec<PlannedItem>,
    /// Removals (ratings: unrates).
    pub removals: Vec<PlannedItem>,
}

impl Writes {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.removals.is_empty()
    }
}

/// The plan of one feature of a pair. Serialisable, for hashing into a plan bundle; findings are
/// kept apart ([`PlanOutcome`]) because they explain a plan, they are not part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePlan {
    /// The feature.
    pub feature: Feature,
    /// The mode it was planned in.
    pub mode: SyncMode,
    /// Two-way without baselines or tombstones: no removals were considered.
    pub bootstrap: bool,
    /// Writes on the source side (two-way only).
    pub to_source: Writes,
    /// Writes on the target side.
    pub to_target: Writes,
    /// Tombstones to write, sorted.
    pub tombstones: Vec<Tombstone>,
}

impl FeaturePlan {
    /// Whether the plan writes nothing and remembers nothing.
    pub fn is_empty(&self) -> bool {
        self.to_source.is_empty() && self.to_target.is_empty() && self.tombstones.is_empty()
    }

    /// The writes on `side`.
    pub fn writes(&self, side: Side) -> &Writes {
        match side {
            Side::Source => &self.to_source,
            Side::Target => &self.to_target,
        }
    }

    /// The writes on `side`, to change.
    pub fn writes_mut(&mut self, side: Side) -> &mut Writes {
        match side {
            Side::Source => &mut self.to_source,
            Side::Target => &mut self.to_target,
        }
    }
}

/// A plan and what planning found.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// The plan.
    pub plan: FeaturePlan,
    /// Why removals were held back, bootstrap, and the like.
    pub findings: Vec<Finding>,
}

/// Everything one feature's plan depends on.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The source side (two-way: the first side).
    pub source: &'a Ingested,
    /// The target side (two-way: the second side).
    pub target: &'a Ingested,
    /// The pair's live tombstones (any feature; others are ignored). Two-way only.
    pub tombstones: &'a [Tombstone],
    /// The pair's configuration for this feature.
    pub config: PlanConfig,
    /// Whether deletions observed on the source may be acted on (the caller combines the
    /// provider's capability and the health gate).
    pub source_observed_deletes: bool,
    /// The same for the target (two-way).
    pub target_observed_deletes: bool,
}

/// The planner refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The two sides hold different features.
    #[error("the source holds {source_feature} and the target holds {target_feature}: plan one feature at a time")]
    FeatureMismatch {
        /// The source's feature.
        source_feature: Feature,
        /// The target's feature.
        target_feature: Feature,
    },
}

/// Plans one feature of a pair.
///
/// Two-way rating conflicts (both sides rated, differently): the later `rated_at` wins when
/// both are readable and differ; else, when both baselines know the item and exactly one side's
/// rating changed since, that side wins; else [`PlanConfig::source_of_truth`].
pub fn plan(input: &PlanInput<'_>) -> Result<PlanOutcome, PlanError> {
    let (source_feature, target_feature) = (input.source.feature(), input.target.feature());
    if source_feature != target_feature {
        return Err(PlanError::FeatureMismatch { source_feature, target_feature });
    }
    let mut planner = Planner { input, feature: source_feature, findings: Vec::new() };
    let plan = match input.config.mode {
        SyncMode::OneWay => planner.one_way(),
        SyncMode::TwoWay => planner.two_way(),
    };
    Ok(PlanOutcome { plan, findings: planner.findings })
}

/// How two entries of the same item must relate to count as the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Removals and deletions: the same play (history), both times known within a minute or
    /// both unknown.
    Same,
    /// Adds: a play without a time covers any play of the item.
    Covers,
}

/// Whether `a` and `b`, already the same item, are the same entry under `rule`.
fn plays_match(feature: Feature, a: &Entry, b: &Entry, rule: Rule) -> bool {
    if feature != Feature::History {
        return true;
    }
    same_play_time(a.watched_at(), b.watched_at())
        || (rule == Rule::Covers && (a.watched_at().is_none() || b.watched_at().is_none()))
}

/// The first entry of `side` (in key order) that matches `entry` under `rule`, skipping the
/// entries planned for removal in `skip`.
fn first_match<'s>(side: &'s Inventory, entry: &Entry, rule: Rule, skip: Option<&Planned>) -> Option<&'s Entry> {
    side.first_match(entry, |c| {
        skip.is_none_or(|skip| !skip.contains_key(c.key())) && plays_match(side.feature(), entry, c, rule)
    })
}

/// For each of `entries` (in key order), whether `side` has an entry that is the same under `rule`.
fn has_matches(side: &Inventory, entries: &[&Entry], rule: Rule) -> Vec<bool> {
    if side.is_empty() {
        return vec![false; entries.len()];
    }
    side.any_matches(entries, |entry, c, _| plays_match(side.feature(), entry, c, rule))
}

/// `b`, the first match of `a` on its side, is mutual when `a` is also `b`'s first match.
fn mutual_match<'s>(from: &Inventory, to: &'s Inventory, a: &Entry) -> Option<&'s Entry> {
    let b = first_match(to, a, Rule::Same, None)?;
    let back = first_match(from, b, Rule::Same, None)?;
    (back.key() == a.key()).then_some(b)
}

/// Tombstones of one feature, indexed by key (history: by token, with the play time).
struct Tombstones {
    feature: Feature,
    by_key: HashMap<String, Vec<(Option<i64>, Side)>>,
}

impl Tombstones {
    fn new(feature: Feature, tombstones: &[Tombstone]) -> Tombstones {
        let mut by_key: HashMap<String, Vec<(Option<i64>, Side)>> = HashMap::new();
        for t in tombstones.iter().filter(|t| t.feature == feature) {
            let (key, at) = if feature == Feature::History {
                let Some((key, at)) = t.key.rsplit_once('@') else { continue };
                let at = if at == UNKNOWN_PLAY_TIME {
                    None
                } else {
                    match at.parse::<i64>() {
                        Ok(at) => Some(at),
                        Err(_) => continue,
                    }
                };
                (key, at)
            } else {
                (t.key.as_str(), None)
            };
            by_key.entry(key.to_owned()).or_default().push((at, t.deleted_on));
        }
        Tombstones { feature, by_key }
    }

    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Whether `entry` was deleted on `side`.
    fn holds_back(&self, entry: &Entry, side: Side) -> bool {
        std::iter::once(entry.item_key()).chain(entry.tokens().iter()).any(|key| {
            self.by_key.get(key).is_some_and(|stones| {
                stones.iter().any(|(at, deleted_on)| {
                    *deleted_on == side && (self.feature != Feature::History || same_play_time(*at, entry.watched_at()))
                })
            })
        })
    }

    /// The tombstones of a deleted entry.
    fn of(feature: Feature, entry: &Entry, deleted_on: Side) -> impl Iterator<Item = Tombstone> + '_ {
        let suffix = match (feature, entry.watched_at()) {
            (Feature::History, Some(at)) => format!("@{at}"),
            (Feature::History, None) => format!("@{UNKNOWN_PLAY_TIME}"),
            _ => String::new(),
        };
        std::iter::once(entry.item_key()).chain(entry.tokens().iter()).map(move |key| Tombstone {
            feature,
            key: format!("{key}{suffix}"),
            deleted_on,
        })
    }
}

/// One side as the planner sees it.
struct View<'a> {
    ingested: &'a Ingested,
    observed_deletes: bool,
}

impl View<'_> {
    fn current(&self) -> &Inventory {
        &self.ingested.current
    }

    /// The deletions observed on this side: baseline entries with no match now. Empty without
    /// a baseline, on a suspect snapshot, or when observed deletes are off.
    fn deletions(&self) -> Inventory {
        let ingested = self.ingested;
        let mut deleted = Inventory::empty(ingested.feature());
        if !self.observed_deletes || ingested.suspect {
            return deleted;
        }
        if let Some(baseline) = &ingested.baseline {
            let entries: Vec<&Entry> = baseline.entries().collect();
            let kept = has_matches(&ingested.current, &entries, Rule::Same);
            for (entry, kept) in entries.into_iter().zip(kept) {
                if !kept {
                    deleted.insert(entry.clone());
                }
            }
        }
        deleted
    }
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    feature: Feature,
    findings: Vec<Finding>,
}

type Planned = BTreeMap<String, PlannedItem>;

impl<'a> Planner<'a> {
    /// Whether matched items can differ (ratings, positions) and so need updates; presence
    /// features have nothing to update, and their matched pairs need not be looked for.
    fn has_values(&self) -> bool {
        matches!(self.feature, Feature::Ratings | Feature::Progress)
    }

    fn config(&self) -> PlanConfig {
        self.input.config
    }

    fn view(&self, side: Side) -> View<'a> {
        match side {
            Side::Source => View { ingested: self.input.source, observed_deletes: self.input.source_observed_deletes },
            Side::Target => View { ingested: self.input.target, observed_deletes: self.input.target_observed_deletes },
        }
    }

    fn note(&mut self, severity: Severity, message: String, evidence: serde_json::Value) {
        self.findings.push(Finding {
            rule_id: PLANNER_RULE.to_owned(),
            severity,
            message: format!("{}: {message}", self.feature),
            scope_id: None,
            evidence: Some(evidence),
        });
    }

    /// Whether this feature has removals at all, and nothing suspect blocks them.
    fn removals_allowed(&mut self) -> bool {
        if !self.config().remove || self.feature == Feature::Progress {
            return false;
        }
        let suspect: Vec<Side> =
            [Side::Source, Side::Target].into_iter().filter(|s| self.view(*s).ingested.suspect).collect();
        if suspect.is_empty() {
            return true;
        }
        self.note(
            Severity::Warning,
            "suspect snapshot: no removals planned".to_owned(),
            json!({ "suspect": suspect, "removals_planned": false }),
        );
        false
    }

    fn finish(
        &self,
        to_source: Writes,
        to_target: Writes,
        tombstones: BTreeSet<Tombstone>,
        bootstrap: bool,
    ) -> FeaturePlan {
        FeaturePlan {
            feature: self.feature,
            mode: self.config().mode,
            bootstrap,
            to_source,
            to_target,
            tombstones: tombstones.into_iter().collect(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // One-way

    fn one_way(&mut self) -> FeaturePlan {
        let (src, dst) = (self.view(Side::Source), self.view(Side::Target));
        let mut removals = Planned::new();
        if self.removals_allowed() {
            match self.config().remove_mode {
                RemoveMode::None => {}
                RemoveMode::SourceDeletes => {
                    propagate(&src.deletions(), src.current(), dst.current(), &mut removals);
                }
                RemoveMode::Mirror => {
                    if let Some(baseline) = &dst.ingested.baseline {
                        let entries: Vec<&Entry> = dst.current().entries().collect();
                        let on_source = has_matches(src.current(), &entries, Rule::Same);
                        let in_baseline = has_matches(baseline, &entries, Rule::Same);
                        for ((entry, on_source), in_baseline) in entries.into_iter().zip(on_source).zip(in_baseline) {
                            if !on_source && in_baseline {
                                removals.insert(entry.key().to_owned(), planned_item(entry, Reason::Mirror));
                            }
                        }
                    }
                }
            }
        }
        let mut adds = Planned::new();
        if self.config().add {
            let none = Inventory::empty(self.feature);
            self.adds(&src, &dst, &removals, &none, None, &mut adds);
            for entry in src.current().entries().filter(|_| self.has_values()) {
                let Some(found) = mutual_match(src.current(), dst.current(), entry) else { continue };
                if let Some(item) = self.one_way_update(entry, found) {
                    changed(&mut adds, found, item);
                }
            }
        }
        let to_target = Writes { adds: adds.into_values().collect(), removals: removals.into_values().collect() };
        self.finish(Writes::default(), to_target, BTreeSet::new(), false)
    }

    /// The upsert of `target` from `source` (the same item), if one is due.
    fn one_way_update(&self, source: &Entry, target: &Entry) -> Option<InventoryItem> {
        match self.feature {
            Feature::Ratings => {
                let due = source.rating() != target.rating()
                    && (!self.config().ratings_only_if_newer || rated_later(source, target));
                due.then(|| with_rating(target, source))
            }
            Feature::Progress => progress_due(source, target).then(|| with_progress(target, source)),
            Feature::Watchlist | Feature::History | Feature::Playlists => None,
        }
    }

    /// Adds on `to` of what `from` has and `to` lacks (ignoring entries being removed from
    /// `to`), unless `to` deleted it this run or a tombstone holds it back; never two adds of the
    /// same item (history: of the same play).
    fn adds(
        &self,
        from: &View<'_>,
        to: &View<'_>,
        removals: &Planned,
        deleted_on_to: &Inventory,
        tombstones: Option<(&Tombstones, Side)>,
        adds: &mut Planned,
    ) {
        let mut planned = Claimed::new(self.feature);
        let entries: Vec<&Entry> = from.current().entries().collect();
        let removed = to.current().positions_of_keys(removals.keys().map(String::as_str));
        let on_to = to.current().any_matches(&entries, |entry, c, position| {
            !removed[position] && plays_match(self.feature, entry, c, Rule::Covers)
        });
        let deleted = has_matches(deleted_on_to, &entries, Rule::Same);
        for ((entry, on_to), deleted) in entries.into_iter().zip(on_to).zip(deleted) {
            if on_to
                || deleted
                || tombstones.is_some_and(|(t, side)| t.holds_back(entry, side))
                || (self.feature == Feature::Progress && !progress_eligible(entry))
                || planned.any_match(entry, |c| plays_match(self.feature, entry, c, Rule::Covers))
            {
                continue;
            }
            planned.claim(entry);
            adds.insert(entry.key().to_owned(), planned_item(entry, Reason::Missing));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Two-way

    fn two_way(&mut self) -> FeaturePlan {
        let tombstones = Tombstones::new(self.feature, self.input.tombstones);
        let (a, b) = (self.view(Side::Source), self.view(Side::Target));
        let bootstrap = a.ingested.baseline.is_none() && b.ingested.baseline.is_none() && tombstones.is_empty();
        if bootstrap {
            self.note(Severity::Info, "bootstrap (no baselines, no tombstones): no removals".to_owned(), json!({}));
        }
        let observes = self.config().remove && self.feature != Feature::Progress && !bootstrap;
        let (deleted_a, deleted_b) = if observes {
            (a.deletions(), b.deletions())
        } else {
            (Inventory::empty(self.feature), Inventory::empty(self.feature))
        };
        let mut removals_a = Planned::new();
        let mut removals_b = Planned::new();
        let mut stones = BTreeSet::new();
        let allowed = !bootstrap && self.removals_allowed();
        if allowed {
            propagate(&deleted_a, a.current(), b.current(), &mut removals_b);
            propagate(&deleted_b, b.current(), a.current(), &mut removals_a);
            for (deleted, side) in [(&deleted_a, Side::Source), (&deleted_b, Side::Target)] {
                for entry in deleted.entries() {
                    stones.extend(Tombstones::of(self.feature, entry, side));
                }
            }
        } else if !deleted_a.is_empty() || !deleted_b.is_empty() {
            self.note(
                Severity::Warning,
                "deletions observed but removals are blocked: the deleted items are not re-added, nothing is \
                 removed; keep the previous baselines"
                    .to_owned(),
                json!({ "deleted_on_source": deleted_a.len(), "deleted_on_target": deleted_b.len() }),
            );
        }
        let mut adds_a = Planned::new();
        let mut adds_b = Planned::new();
        if self.config().add {
            self.adds(&a, &b, &removals_b, &deleted_b, Some((&tombstones, Side::Target)), &mut adds_b);
            self.adds(&b, &a, &removals_a, &deleted_a, Some((&tombstones, Side::Source)), &mut adds_a);
            for entry in a.current().entries().filter(|_| self.has_values()) {
                let Some(found) = mutual_match(a.current(), b.current(), entry) else { continue };
                match self.two_way_update(entry, found, &a, &b) {
                    Some((Side::Target, item)) => changed(&mut adds_b, found, item),
                    Some((Side::Source, item)) => changed(&mut adds_a, entry, item),
                    None => {}
                }
            }
        }
        let to_source = Writes { adds: adds_a.into_values().collect(), removals: removals_a.into_values().collect() };
        let to_target = Writes { adds: adds_b.into_values().collect(), removals: removals_b.into_values().collect() };
        self.finish(to_source, to_target, stones, bootstrap)
    }

    /// The update of a mutual pair (`a` on the source, `b` on the target), if one is due: the
    /// side to write and the item.
    fn two_way_update(&self, a: &Entry, b: &Entry, va: &View<'_>, vb: &View<'_>) -> Option<(Side, InventoryItem)> {
        match self.feature {
            Feature::Ratings => {
                if a.rating() == b.rating() {
                    return None;
                }
                let winner = match (a.rated_at(), b.rated_at()) {
                    (Some(x), Some(y)) if x != y => Some(if x > y { Side::Source } else { Side::Target }),
                    _ => None,
                }
                .or_else(|| {
                    let before = |view: &View<'_>, e: &Entry| {
                        view.ingested
                            .baseline
                            .as_ref()
                            .and_then(|base| first_match(base, e, Rule::Same, None).map(Entry::rating))
                    };
                    let (Some(old_a), Some(old_b)) = (before(va, a), before(vb, b)) else { return None };
                    match (old_a != a.rating(), old_b != b.rating()) {
                        (true, false) => Some(Side::Source),
                        (false, true) => Some(Side::Target),
                        _ => None,
                    }
                })
                .unwrap_or(self.config().source_of_truth);
                Some(match winner {
                    Side::Source => (Side::Target, with_rating(b, a)),
                    Side::Target => (Side::Source, with_rating(a, b)),
                })
            }
            Feature::Progress => {
                let (a_to_b, b_to_a) = (progress_due(a, b), progress_due(b, a));
                let a_wins = match (a_to_b, b_to_a) {
                    (false, false) => return None,
                    (true, false) => true,
                    (false, true) => false,
                    (true, true) => later(a.progress_at(), b.progress_at()),
                };
                Some(if a_wins { (Side::Target, with_progress(b, a)) } else { (Side::Source, with_progress(a, b)) })
            }
            Feature::Watchlist | Feature::History | Feature::Playlists => None,
        }
    }
}

/// Removals on `to` of what `from` deleted: every entry of `to` that is the same as a deletion,
/// unless `from` still has it under other ids.
fn propagate(deleted: &Inventory, from: &Inventory, to: &Inventory, removals: &mut Planned) {
    let gone: Vec<&Entry> = deleted.entries().collect();
    let mut candidates: Vec<&Entry> = gone
        .iter()
        .zip(to.same_items(&gone))
        .flat_map(|(gone, found)| found.into_iter().filter(|entry| plays_match(to.feature(), gone, entry, Rule::Same)))
        .collect();
    candidates.sort_unstable_by(|a, b| a.key().cmp(b.key()));
    candidates.dedup_by(|a, b| a.key() == b.key());
    let kept = has_matches(from, &candidates, Rule::Same);
    for (entry, kept) in candidates.into_iter().zip(kept) {
        if !kept {
            removals.insert(entry.key().to_owned(), planned_item(entry, Reason::Deleted));
        }
    }
}

fn planned_item(entry: &Entry, reason: Reason) -> PlannedItem {
    PlannedItem { key: entry.key().to_owned(), reason, item: entry.item() }
}

/// Plans the upsert of `entry` to `item`.
fn changed(adds: &mut Planned, entry: &Entry, item: InventoryItem) {
    adds.insert(entry.key().to_owned(), PlannedItem { key: entry.key().to_owned(), reason: Reason::Changed, item });
}

/// Whether both times are known and `a` is strictly later.
fn later(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}

/// Whether the source's rating is newer than the target's: the source has a readable `rated_at`
/// and the target has none or an earlier one.
fn rated_later(source: &Entry, target: &Entry) -> bool {
    match (source.rated_at(), target.rated_at()) {
        (Some(s), Some(t)) => s > t,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn with_rating(target: &Entry, source: &Entry) -> InventoryItem {
    let mut item = target.item();
    item.rating = source.rating();
    item.rated_at = source.item().rated_at;
    item
}

/// Whether a position may be synced at all: at least 60 s in, and below 95 % of the runtime when
/// the runtime is known.
fn progress_eligible(entry: &Entry) -> bool {
    let item = entry.item();
    let Some(position) = item.progress_ms else { return false };
    position >= PROGRESS_MIN_MS
        && item
            .duration_ms
            .is_none_or(|d| u128::from(position) * 100 < u128::from(d) * u128::from(PROGRESS_MAX_PERCENT))
}

/// Whether `target`'s position should become `source`'s: `source` is eligible, and the target has
/// none, or it moves forward ≥ 30 s, or back ≥ 30 s with a later `progress_at`.
fn progress_due(source: &Entry, target: &Entry) -> bool {
    if !progress_eligible(source) {
        return false;
    }
    let Some(to) = source.item().progress_ms else { return false };
    let Some(from) = target.item().progress_ms else { return true };
    if to.abs_diff(from) < PROGRESS_MIN_MOVE_MS {
        return false;
    }
    to > from || later(source.progress_at(), target.progress_at())
}

fn with_progress(target: &Entry, source: &Entry) -> InventoryItem {
    let mut item = target.item();
    let source = source.item();
    item.progress_ms = source.progress_ms;
    item.progress_at = source.progress_at;
    if item.duration_ms.is_none() {
        item.duration_ms = source.duration_ms;
    }
    item
}
