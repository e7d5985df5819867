#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Ingest and planner over the peer's scenario (`benches/support/scenario.rs`): 100,000 source
//! movies, 95,000 shared with the target, 5,000 adds and 5,000 removals in one-way `mirror`.
//!
//! `cargo bench -p cw_orchestrator --bench planner`; `CW_BENCH_ITEMS=N` changes the size (the
//! `peer_scenario` example times single runs at sizes too large for criterion's sampling).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use cw_orchestrator::ingest::ingest;
use cw_orchestrator::planner::plan;
use pal::inventory::Feature;

#[path = "support/scenario.rs"]
mod scenario;

/// The allocator of the `cw` binary, so the figures are the planner's as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn items() -> usize {
    std::env::var("CW_BENCH_ITEMS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

fn benches(c: &mut Criterion) {
    let n = items();
    let scenario = scenario::scenario(n);
    let mut group = c.benchmark_group(format!("peer_scenario_{n}"));
    group.sample_size(10);
    group.bench_function("ingest_source", |b| {
        b.iter(|| ingest(Feature::Watchlist, black_box(&scenario.source), None));
    });
    // Each iteration plans over freshly ingested sides, which are returned so that dropping
    // them is not timed.
    group.bench_function("plan_mirror", |b| {
        b.iter_batched(
            || scenario::ingested(&scenario),
            |(src, dst)| {
                let plan = plan(black_box(&scenario::input(&src, &dst))).unwrap();
                (plan, src, dst)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(planner, benches);
criterion_main!(planner);
