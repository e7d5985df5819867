#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The capability kit can fail: every providers-mock adapter it certifies passes every check
//! (under paused and real time), and each deliberately broken adapter fails exactly the checks
//! it breaks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conformance::{
    CAPABILITY_CHECKS, CapabilityHarness, CheckStatus, ConformanceReport, KitReport, Scenario, run_capability_kit,
    run_capability_kits,
};
use pal::ads::{AdsProvider, Campaign, CampaignPlan, ReportQuery, ReportRow};
use pal::cdp::{Audience, AudienceSync, CdpProvider, Event, EventReceipt, Profile};
use pal::experiments::{Assignment, Experiment, ExperimentReport, ExperimentsProvider, Flag, RampState};
use pal::lifecycle::{LifecycleProvider, Message, Preview, SchedulePolicy, ScheduleReceipt, SendReceipt};
use pal::llm::{EvalRecord, LlmGateway, LlmObservability, ModelInfo, RouteResult, Trace, TraceLink};
use pal::vectorstore::{ActiveIndex, Document, IndexReceipt, SearchHit, VectorStore};
use pal::{AdapterHandle, Capability, ErrorClass, ErrorCode, Extra, ProviderError, Secret, async_trait};
use providers_mock::{
    AdapterSettings, MockAds, MockCdp, MockExperiments, MockLifecycle, MockLlmGateway, MockLlmObservability,
    MockVectorStore,
};
use serde_json::Value;

use conformance::mocks::{
    MOCK_TOKEN as TOKEN, MockCapabilityHarness as MockHarness, Staged, build_mock, counters, mock_settings as settings,
};

/// One adapter under test, built by `build` from the scenario's mock settings.
struct Broken {
    capability: Capability,
    adapter: &'static str,
    build: fn(AdapterSettings) -> Staged,
}

impl CapabilityHarness for Broken {
    fn provider_crate(&self) -> &str {
        "conformance-tests"
    }
    fn adapters(&self) -> Vec<(Capability, String)> {
        vec![(self.capability, self.adapter.to_owned())]
    }
    fn build(&self, capability: Capability, adapter: &str, scenario: Scenario) -> Option<Staged> {
        assert_eq!((capability, adapter), (self.capability, self.adapter));
        settings(scenario).map(self.build)
    }
    fn secret(&self) -> Option<Secret> {
        Some(Secret::new(TOKEN))
    }
}

fn dump(report: &KitReport) -> String {
    ConformanceReport::new(vec![report.clone()]).to_json()
}

async fn run_broken(broken: &Broken) -> KitReport {
    let report = run_capability_kit(broken, broken.capability, broken.adapter).await;
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, CAPABILITY_CHECKS, "{}", dump(&report));
    report
}

/// Asserts the report fails exactly `expected`, and that the first failing check's errors
/// mention `detail`.
fn assert_fails(report: &KitReport, expected: &[&str], detail: &str) {
    assert_eq!(report.names_with(CheckStatus::Failed), expected, "{}", dump(report));
    assert!(!report.pass);
    let errors = &report.check(expected[0]).unwrap().errors;
    assert!(errors.iter().any(|e| e.contains(detail)), "`{detail}` not in {errors:?}");
}

fn assert_all_pass(reports: &[KitReport]) {
    for report in reports {
        assert!(report.pass, "{}", dump(report));
        assert_eq!(report.names_with(CheckStatus::Passed), CAPABILITY_CHECKS, "{}", dump(report));
    }
}

#[tokio::test(start_paused = true)]
async fn every_mock_adapter_passes_every_check() {
    let reports = run_capability_kits(&MockHarness).await;
    let adapters: Vec<(&str, &str)> = reports.iter().map(|r| (r.capability.as_str(), r.adapter.as_str())).collect();
    assert_eq!(
        adapters,
        [
            ("ads", "mock_ads"),
            ("cdp", "mock_cdp"),
            ("experiments", "mock_experiments"),
            ("lifecycle", "mock_lifecycle"),
            ("llm_gateway", "mock_llm_gateway"),
            ("llm_observability", "mock_llm_observability"),
            ("vectorstore", "mock_vectorstore"),
            ("vectorstore", "mock_vectorstore_a"),
            ("vectorstore", "mock_vectorstore_b"),
        ]
    );
    assert_all_pass(&reports);
    let report = ConformanceReport::new(reports);
    assert_eq!(report.summary.failed, 0);
    assert_eq!(report.summary.passed, 9 * CAPABILITY_CHECKS.len() as u64);
    // Attempts are deterministic; only latency varies (and is zeroed in goldens).
    let first = report.without_timings();
    let again = ConformanceReport::new(run_capability_kits(&MockHarness).await).without_timings();
    assert_eq!(first, again);
    assert!(first.reports.iter().all(|r| r.metrics.attempts > 0));
}

#[tokio::test]
async fn the_kit_runs_under_real_time() {
    let harness = Arc::new(MockHarness);
    let started = std::time::Instant::now();
    let runs: Vec<_> = harness
        .adapters()
        .into_iter()
        .map(|(capability, adapter)| {
            let harness = harness.clone();
            tokio::spawn(async move { run_capability_kit(harness.as_ref(), capability, &adapter).await })
        })
        .collect();
    let mut reports = Vec::new();
    for run in runs {
        reports.push(run.await.unwrap());
    }
    assert_eq!(reports.len(), 9);
    assert_all_pass(&reports);
    // The hang check waits out real attempt timeouts, but stays within the total deadline.
    assert!(started.elapsed() < conformance::kit_policy().total_deadline, "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn unstaged_scenarios_are_not_applicable_never_passed() {
    struct HealthyOnly;
    impl CapabilityHarness for HealthyOnly {
        fn provider_crate(&self) -> &str {
            "conformance-tests"
        }
        fn adapters(&self) -> Vec<(Capability, String)> {
            vec![(Capability::Inventory, "mock_inventory".to_owned()), (Capability::Cdp, "mock_cdp".to_owned())]
        }
        fn build(&self, _: Capability, adapter: &str, scenario: Scenario) -> Option<Staged> {
            (scenario == Scenario::Healthy).then(|| build_mock(adapter, AdapterSettings::default())).flatten()
        }
        fn secret(&self) -> Option<Secret> {
            None
        }
    }
    let reports = run_capability_kits(&HealthyOnly).await;
    assert_eq!(reports.len(), 1, "inventory adapters are left to the inventory kit");
    let report = &reports[0];
    assert_eq!(
        report.names_with(CheckStatus::Passed),
        ["ops.all_succeed", "idempotency.no_duplicate_effects", "metrics.event_fields", "shape.parity_with_mock"],
        "{}",
        dump(report)
    );
    assert!(report.pass);
    for name in report.names_with(CheckStatus::NotApplicable) {
        let reason = report.check(name).unwrap().reason.clone().unwrap();
        assert!(reason.contains("cannot stage") || reason.contains("without a secret"), "{name}: {reason}");
    }

    let inventory = run_capability_kit(&HealthyOnly, Capability::Inventory, "mock_inventory").await;
    assert_eq!(inventory.names_with(CheckStatus::NotApplicable), CAPABILITY_CHECKS);

    // A harness that cannot even build a healthy adapter fails: that is the baseline.
    struct Nothing;
    impl CapabilityHarness for Nothing {
        fn provider_crate(&self) -> &str {
            "conformance-tests"
        }
        fn adapters(&self) -> Vec<(Capability, String)> {
            vec![(Capability::Ads, "ghost".to_owned())]
        }
        fn build(&self, _: Capability, _: &str, _: Scenario) -> Option<Staged> {
            None
        }
        fn secret(&self) -> Option<Secret> {
            None
        }
    }
    let report = run_capability_kit(&Nothing, Capability::Ads, "ghost").await;
    assert_eq!(report.names_with(CheckStatus::Failed), ["ops.all_succeed"]);
    assert!(!report.pass);
}

#[tokio::test(start_paused = true)]
async fn noop_ads_fails_shape_parity() {
    let noop =
        Broken { capability: Capability::Ads, adapter: "noop_ads", build: |s| build_mock("noop_ads", s).unwrap() };
    let report = run_broken(&noop).await;
    assert_fails(&report, &["shape.parity_with_mock"], "`create_campaign`: $.plan: missing");
    let errors = &report.check("shape.parity_with_mock").unwrap().errors;
    assert!(errors[0].contains("`report`: $[0].spend_cents: missing"), "{errors:?}");
}

// --- Non-idempotent create_campaign: a repeat with the same id stores a second campaign. ---

#[derive(Debug)]
struct DuplicatingAds {
    inner: MockAds,
    duplicates: AtomicU64,
}

#[async_trait]
impl AdsProvider for DuplicatingAds {
    async fn create_campaign(&self, plan: CampaignPlan) -> Result<Campaign, ProviderError> {
        let before = self.inner.writes();
        let campaign = self.inner.create_campaign(plan).await?;
        if self.inner.writes() == before {
            // The vendor stores another campaign under the same id.
            self.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        Ok(campaign)
    }
    async fn report(&self, query: ReportQuery) -> Result<Vec<ReportRow>, ProviderError> {
        self.inner.report(query).await
    }
    async fn pause(&self, campaign_id: &str) -> Result<Campaign, ProviderError> {
        self.inner.pause(campaign_id).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_non_idempotent_create_fails_idempotency() {
    let broken = Broken {
        capability: Capability::Ads,
        adapter: "duplicating_ads",
        build: |s| {
            let a = Arc::new(DuplicatingAds { inner: MockAds::new(s), duplicates: AtomicU64::new(0) });
            let probe =
                counters(&a, |a| a.inner.faults().calls(), |a| a.inner.writes() + a.duplicates.load(Ordering::SeqCst));
            (AdapterHandle::Ads(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(&report, &["idempotency.no_duplicate_effects"], "`create_campaign` repeated twice made 2 more");
}

// --- A 5xx classified as permanent. ---

fn as_permanent(mut error: ProviderError) -> ProviderError {
    if error.class == ErrorClass::Retryable {
        error.class = ErrorClass::Permanent;
    }
    error
}

#[derive(Debug)]
struct PermanentOutages(MockCdp);

#[async_trait]
impl CdpProvider for PermanentOutages {
    async fn upsert_profile(&self, profile: Profile) -> Result<Profile, ProviderError> {
        self.0.upsert_profile(profile).await.map_err(as_permanent)
    }
    async fn ingest_event(&self, event: Event) -> Result<EventReceipt, ProviderError> {
        self.0.ingest_event(event).await.map_err(as_permanent)
    }
    async fn sync_audience(&self, audience: Audience) -> Result<AudienceSync, ProviderError> {
        self.0.sync_audience(audience).await.map_err(as_permanent)
    }
    async fn get_profile(&self, id: &str) -> Result<Option<Profile>, ProviderError> {
        self.0.get_profile(id).await.map_err(as_permanent)
    }
}

#[tokio::test(start_paused = true)]
async fn a_5xx_classified_permanent_fails_taxonomy_and_retries() {
    let broken = Broken {
        capability: Capability::Cdp,
        adapter: "permanent_outages_cdp",
        build: |s| {
            let a = Arc::new(PermanentOutages(MockCdp::new(s)));
            let probe = counters(&a, |a| a.0.faults().calls(), |a| a.0.writes());
            (AdapterHandle::Cdp(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(
        &report,
        &["taxonomy.transient_retryable", "retries.capped_with_backoff"],
        "expected class Retryable, got Permanent",
    );
    let errors = &report.check("retries.capped_with_backoff").unwrap().errors;
    assert!(errors[0].contains("Some(1) attempts, expected 3"), "{errors:?}");
}

// --- A 400 classified as retryable. ---

fn bad_input_as_retryable(mut error: ProviderError) -> ProviderError {
    if error.code == Some(ErrorCode::InvalidInput) {
        error.class = ErrorClass::Retryable;
    }
    error
}

#[derive(Debug)]
struct RetryableRejections(MockVectorStore);

#[async_trait]
impl VectorStore for RetryableRejections {
    async fn index(&self, docs: Vec<Document>) -> Result<IndexReceipt, ProviderError> {
        self.0.index(docs).await.map_err(bad_input_as_retryable)
    }
    async fn search(&self, query: &str, k: usize) -> Result<Vec<SearchHit>, ProviderError> {
        self.0.search(query, k).await.map_err(bad_input_as_retryable)
    }
    async fn swap(&self, target: &str) -> Result<ActiveIndex, ProviderError> {
        self.0.swap(target).await.map_err(bad_input_as_retryable)
    }
}

#[tokio::test(start_paused = true)]
async fn a_400_classified_retryable_fails_taxonomy_and_is_retried() {
    let broken = Broken {
        capability: Capability::Vectorstore,
        adapter: "retryable_rejections_vectorstore",
        build: |s| {
            let a = Arc::new(RetryableRejections(MockVectorStore::new(s)));
            let probe = counters(&a, |a| a.0.faults().calls(), |a| a.0.writes());
            (AdapterHandle::Vectorstore(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(
        &report,
        &["taxonomy.permanent_not_retryable", "retries.none_for_permanent"],
        "expected class Permanent, got Retryable",
    );
    let errors = &report.check("retries.none_for_permanent").unwrap().errors;
    assert!(errors[0].contains("Some(3) attempts, expected 1"), "{errors:?}");
}

// --- An adapter that retries permanent errors internally. ---

/// Calls `attempt` up to three times while it fails permanently.
async fn stubbornly<T, Fut: Future<Output = Result<T, ProviderError>>>(
    attempt: impl Fn() -> Fut,
) -> Result<T, ProviderError> {
    let mut result = attempt().await;
    for _ in 0..2 {
        match &result {
            Err(e) if e.class == ErrorClass::Permanent => result = attempt().await,
            _ => break,
        }
    }
    result
}

#[derive(Debug)]
struct StubbornLifecycle(MockLifecycle);

#[async_trait]
impl LifecycleProvider for StubbornLifecycle {
    async fn send(&self, message: Message) -> Result<SendReceipt, ProviderError> {
        stubbornly(|| self.0.send(message.clone())).await
    }
    async fn schedule(&self, batch: Vec<Message>, policy: SchedulePolicy) -> Result<ScheduleReceipt, ProviderError> {
        stubbornly(|| self.0.schedule(batch.clone(), policy.clone())).await
    }
    async fn preview(&self, message: Message) -> Result<Preview, ProviderError> {
        stubbornly(|| self.0.preview(message.clone())).await
    }
}

#[tokio::test(start_paused = true)]
async fn retrying_permanent_errors_internally_fails_retries() {
    let broken = Broken {
        capability: Capability::Lifecycle,
        adapter: "stubborn_lifecycle",
        build: |s| {
            let a = Arc::new(StubbornLifecycle(MockLifecycle::new(s)));
            let probe = counters(&a, |a| a.0.faults().calls(), |a| a.0.writes());
            (AdapterHandle::Lifecycle(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(&report, &["retries.none_for_permanent"], "the vendor saw 3 requests, expected 1");
}

// --- An adapter hanging forever. ---

#[derive(Debug, Default)]
struct HangingGateway {
    requests: AtomicU64,
}

impl HangingGateway {
    async fn hang<T>(&self) -> T {
        self.requests.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[async_trait]
impl LlmGateway for HangingGateway {
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.hang().await
    }
    async fn route(&self, _: &str, _: &[String]) -> Result<RouteResult, ProviderError> {
        self.hang().await
    }
}

#[tokio::test(start_paused = true)]
async fn an_adapter_hanging_forever_fails_and_the_kit_stays_bounded() {
    let broken = Broken {
        capability: Capability::LlmGateway,
        adapter: "hanging_gateway",
        build: |_| {
            let a = Arc::new(HangingGateway::default());
            let probe = counters(&a, |a| a.requests.load(Ordering::SeqCst), |_| 0);
            (AdapterHandle::LlmGateway(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(
        &report,
        &[
            "ops.all_succeed",
            "idempotency.no_duplicate_effects",
            "taxonomy.transient_retryable",
            "taxonomy.permanent_not_retryable",
            "retries.capped_with_backoff",
            "retries.none_for_permanent",
            "shape.parity_with_mock",
        ],
        "`models` failed: Retryable, code Timeout",
    );
    // The pipeline's timeout ends the hang; its metrics still describe every call.
    assert_eq!(report.check("timeouts.bounded").unwrap().status, CheckStatus::Passed);
    assert_eq!(report.check("metrics.event_fields").unwrap().status, CheckStatus::Passed);
    // It never answered, so it never returned an error that could leak a secret.
    let secrets = report.check("errors.no_secret_in_errors").unwrap();
    assert_eq!(secrets.status, CheckStatus::NotApplicable);
}

// --- An adapter whose own client timeout turns a hung vendor into a permanent error. ---

async fn impatient<T>(scope: &str, call: impl Future<Output = Result<T, ProviderError>>) -> Result<T, ProviderError> {
    tokio::time::timeout(Duration::from_millis(100), call).await.unwrap_or_else(|_| {
        Err(ProviderError::new(scope, pal::ProviderPhase::Execute, "the vendor did not answer")
            .with_code(ErrorCode::Internal))
    })
}

#[derive(Debug)]
struct ImpatientObservability(MockLlmObservability);

#[async_trait]
impl LlmObservability for ImpatientObservability {
    async fn trace_start(&self, run_id: &str, meta: Extra) -> Result<Trace, ProviderError> {
        impatient(self.0.faults().scope(), self.0.trace_start(run_id, meta)).await
    }
    async fn trace_stop(&self, trace_id: &str, meta: Extra) -> Result<Trace, ProviderError> {
        impatient(self.0.faults().scope(), self.0.trace_stop(trace_id, meta)).await
    }
    async fn log_eval(&self, name: &str, score: f64, meta: Extra) -> Result<EvalRecord, ProviderError> {
        impatient(self.0.faults().scope(), self.0.log_eval(name, score, meta)).await
    }
    async fn link(&self, run_id: &str, trace_id: &str) -> Result<TraceLink, ProviderError> {
        impatient(self.0.faults().scope(), self.0.link(run_id, trace_id)).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hang_reported_as_permanent_fails_timeouts() {
    let broken = Broken {
        capability: Capability::LlmObservability,
        adapter: "impatient_observability",
        build: |s| {
            let a = Arc::new(ImpatientObservability(MockLlmObservability::new(s)));
            let probe = counters(&a, |a| a.0.faults().calls(), |a| a.0.writes());
            (AdapterHandle::LlmObservability(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(&report, &["timeouts.bounded"], "expected a retryable timeout, got Permanent, code Internal");
}

// --- An adapter leaking its token in error messages. ---

#[tokio::test(start_paused = true)]
async fn leaking_the_token_in_errors_fails_the_secret_check() {
    let broken = Broken {
        capability: Capability::Experiments,
        adapter: "leaky_experiments",
        build: |mut s| {
            s.faults.echo_token_in_errors = true;
            build_mock("mock_experiments", s).unwrap()
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(&report, &["errors.no_secret_in_errors"], "the secret appears in");
    assert!(!report.errors.iter().any(|e| e.contains(TOKEN)), "the report itself must not repeat the secret");
}

// --- A payload missing a field the mock has. ---

#[derive(Debug)]
struct TokenlessGateway(MockLlmGateway);

#[async_trait]
impl LlmGateway for TokenlessGateway {
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.0.models().await
    }
    async fn route(&self, prompt: &str, tags: &[String]) -> Result<RouteResult, ProviderError> {
        let mut result = self.0.route(prompt, tags).await?;
        result.metrics.tokens = None;
        Ok(result)
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_field_fails_shape_parity() {
    let broken = Broken {
        capability: Capability::LlmGateway,
        adapter: "tokenless_gateway",
        build: |s| {
            let a = Arc::new(TokenlessGateway(MockLlmGateway::new(s)));
            let probe = counters(&a, |a| a.0.faults().calls(), |_| 0);
            (AdapterHandle::LlmGateway(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(&report, &["shape.parity_with_mock"], "`route`: $.metrics.tokens: missing");
}

// --- A wrong type for a field. ---

#[derive(Debug)]
struct StringlyFlags(MockExperiments);

#[async_trait]
impl ExperimentsProvider for StringlyFlags {
    async fn set_flag(&self, key: &str, value: Value) -> Result<Flag, ProviderError> {
        self.0.set_flag(key, value).await
    }
    async fn get_flag(&self, key: &str, default: Value) -> Result<Value, ProviderError> {
        // Every flag comes back as text: `true` becomes `"true"`.
        Ok(Value::String(self.0.get_flag(key, default).await?.to_string()))
    }
    async fn ramp(&self, key: &str, stage: u8) -> Result<RampState, ProviderError> {
        self.0.ramp(key, stage).await
    }
    async fn start_ab(&self, key: &str, variants: Vec<String>) -> Result<Experiment, ProviderError> {
        self.0.start_ab(key, variants).await
    }
    async fn start_bandit(&self, key: &str, arms: Vec<String>) -> Result<Experiment, ProviderError> {
        self.0.start_bandit(key, arms).await
    }
    async fn assign(&self, key: &str, unit_id: &str) -> Result<Assignment, ProviderError> {
        self.0.assign(key, unit_id).await
    }
    async fn report(&self, key: &str) -> Result<ExperimentReport, ProviderError> {
        self.0.report(key).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_wrong_type_fails_shape_parity() {
    let broken = Broken {
        capability: Capability::Experiments,
        adapter: "stringly_experiments",
        build: |s| {
            let a = Arc::new(StringlyFlags(MockExperiments::new(s)));
            let probe = counters(&a, |a| a.0.faults().calls(), |a| a.0.writes());
            (AdapterHandle::Experiments(a), probe)
        },
    };
    let report = run_broken(&broken).await;
    assert_fails(&report, &["shape.parity_with_mock"], "`get_flag`: $: expected boolean, found string");
}
