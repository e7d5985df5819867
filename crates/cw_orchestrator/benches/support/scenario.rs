//! The peer's scenario, shared by the `planner` bench and the `peer_scenario` example: a source
//! of `n` movies carrying imdb/tmdb/trakt/tvdb ids, and a target holding the first 95 % of them
//! with imdb/tmdb ids only plus 5 % other movies. One-way `mirror` over it plans `n / 20` adds
//! and `n / 20` removals. Every value is derived from the item's index, so runs are comparable.

use cw_orchestrator::ingest::{Baseline, Ingested, Snapshot, ingest};
use cw_orchestrator::planner::{PlanConfig, PlanInput, RemoveMode, SyncMode};
use pal::inventory::{Feature, Ids, InventoryItem};

/// Numbers of the target's own movies start here, far above any source movie's.
const OTHER_BASE: usize = 50_000_000;

fn movie(n: usize, all_ids: bool) -> InventoryItem {
    let mut ids: Ids = [("imdb".to_owned(), format!("tt{:08}", n)), ("tmdb".to_owned(), (n + 1).to_string())].into();
    if all_ids {
        ids.insert("trakt", (n + 7).to_string());
        ids.insert("tvdb", (n + 11).to_string());
    }
    InventoryItem {
        title: Some(format!("Movie number {n}")),
        year: Some(1920 + (n % 105) as i32),
        ids,
        ..Default::default()
    }
}

/// The scenario's snapshots at `n` source items.
pub(crate) struct Scenario {
    pub(crate) source: Snapshot,
    pub(crate) target: Snapshot,
    /// The target's baseline: its current snapshot, so `mirror` may remove its own movies.
    pub(crate) target_baseline: Baseline,
}

pub(crate) fn scenario(n: usize) -> Scenario {
    let kept = n - n / 20;
    let source = (0..n).map(|i| movie(i, true)).collect();
    let target: Vec<_> =
        (0..kept).map(|i| movie(i, false)).chain((0..n / 20).map(|i| movie(OTHER_BASE + i, false))).collect();
    Scenario {
        source: Snapshot::present(source),
        target_baseline: Baseline { items: target.clone(), checkpoint: None },
        target: Snapshot::present(target),
    }
}

/// Both sides ingested for the watchlist.
pub(crate) fn ingested(scenario: &Scenario) -> (Ingested, Ingested) {
    let feature = Feature::Watchlist;
    let source = ingest(feature, &scenario.source, None);
    let target = ingest(feature, &scenario.target, Some(&scenario.target_baseline));
    (source, target)
}

/// One-way mirror with adds and removals on.
pub(crate) fn input<'a>(source: &'a Ingested, target: &'a Ingested) -> PlanInput<'a> {
    PlanInput {
        source,
        target,
        tombstones: &[],
        config: PlanConfig {
            mode: SyncMode::OneWay,
            add: true,
            remove: true,
            remove_mode: RemoveMode::Mirror,
            ..PlanConfig::default()
        },
        source_observed_deletes: false,
        target_observed_deletes: false,
    }
}
