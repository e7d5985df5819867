#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Pipeline overhead: the same adapter call made directly and through `Pipeline::call`
//! (retry bookkeeping, timeout race, rate-limit check, hooks, metrics event, tracing span).
//!
//! `cargo bench -p pal --bench pipeline`; the overhead per call is the difference of the two.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pal::ads::{AdsProvider, Campaign, CampaignPlan, ReportQuery, ReportRow};
use pal::pipeline::HookContext;
use pal::{
    CallSpec, CallTarget, Capability, Hook, MetricsEvent, Pipeline, ProviderError, RetryPolicy, SeededJitter,
    TokioClock,
};

/// Answers `report` with the mock's first golden row, without I/O.
#[derive(Debug)]
struct InstantAds;

#[pal::async_trait]
impl AdsProvider for InstantAds {
    async fn create_campaign(&self, plan: CampaignPlan) -> Result<Campaign, ProviderError> {
        Ok(Campaign { id: plan.id.unwrap_or_default(), status: "active".into(), ..Default::default() })
    }
    async fn report(&self, _: ReportQuery) -> Result<Vec<ReportRow>, ProviderError> {
        Ok(vec![ReportRow {
            date: "2024-01-01".into(),
            impressions: 100,
            clicks: 10,
            spend_cents: Some(123),
            ..Default::default()
        }])
    }
    async fn pause(&self, id: &str) -> Result<Campaign, ProviderError> {
        Ok(Campaign { id: id.into(), status: "paused".into(), ..Default::default() })
    }
}

/// A hook that counts events, standing in for a metrics exporter.
#[derive(Default)]
struct Count(AtomicU64);

impl Hook for Count {
    fn finally(&self, _: &HookContext, event: &MetricsEvent) {
        self.0.fetch_add(u64::from(event.attempts), Ordering::Relaxed);
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let adapter: Arc<dyn AdsProvider> = Arc::new(InstantAds);
    let pipeline = Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::new(1)), RetryPolicy::default());
    pipeline.add_hook(Arc::new(Count::default()));
    let spec = CallSpec::new(CallTarget::new(Capability::Ads, "instant_ads"), Capability::Ads.op("report").unwrap());

    let mut group = c.benchmark_group("pal_call");
    group.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("direct", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(adapter.report(ReportQuery::default()).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("through_pipeline", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let rows = pipeline.call(&spec, || adapter.report(ReportQuery::default())).await.unwrap();
                    std::hint::black_box(rows);
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
