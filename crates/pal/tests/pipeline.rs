#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The call pipeline's rules, under tokio's paused clock and a seeded jitter source.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pal::pipeline::{HookContext, RateLimit};
use pal::{
    CallSpec, CallTarget, Capability, ErrorClass, ErrorCode, Hook, MetricsEvent, MetricsRecorder, Pipeline,
    ProviderError, ProviderPhase, RetryPolicy, SeededJitter, TokioClock,
};
use tokio::time::Instant;

fn pipeline(policy: RetryPolicy) -> (Pipeline, Arc<MetricsRecorder>) {
    let pipeline = Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::new(42)), policy);
    let recorder = Arc::new(MetricsRecorder::default());
    pipeline.add_hook(recorder.clone());
    (pipeline, recorder)
}

fn spec(op: &str, idempotent: bool) -> CallSpec {
    let capability = if op == "send" { Capability::Lifecycle } else { Capability::Ads };
    let op = capability.op(op).unwrap();
    CallSpec { idempotent, ..CallSpec::new(CallTarget::new(capability, "fake"), op) }
}

fn retryable(message: &str) -> ProviderError {
    ProviderError::retryable("ads/fake", ProviderPhase::Snapshot, message).with_code(ErrorCode::Unavailable)
}

fn permanent() -> ProviderError {
    ProviderError::invalid_input("ads/fake", ProviderPhase::Snapshot, "bad request")
}

/// Calls the pipeline with an attempt that fails with `errors` in turn, then succeeds.
async fn run(
    pipeline: &Pipeline,
    spec: &CallSpec,
    errors: Vec<ProviderError>,
) -> (Result<u32, ProviderError>, Vec<Instant>) {
    let calls = Arc::new(AtomicU32::new(0));
    let starts = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(errors);
    let result = pipeline
        .call(spec, || {
            let calls = calls.clone();
            let starts = starts.clone();
            let errors = errors.clone();
            async move {
                starts.lock().unwrap().push(Instant::now());
                let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
                match errors.get(n) {
                    Some(error) => Err(error.clone()),
                    None => Ok(n as u32 + 1),
                }
            }
        })
        .await;
    let starts = starts.lock().unwrap().clone();
    (result, starts)
}

#[tokio::test(start_paused = true)]
async fn attempts_are_counted_exactly() {
    let (pipeline, recorder) = pipeline(RetryPolicy::default());
    let (result, starts) = run(&pipeline, &spec("report", true), vec![retryable("a"), retryable("b")]).await;
    assert_eq!(result.unwrap(), 3);
    assert_eq!(starts.len(), 3);
    let events = recorder.events();
    assert_eq!(events.len(), 1, "one metrics event per call");
    assert_eq!(events[0].attempts, 3);
    assert_eq!(events[0].outcome, pal::pipeline::Outcome::Ok);
    assert_eq!(events[0].error_class, None);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_cap() {
    let (pipeline, recorder) = pipeline(RetryPolicy::default());
    let errors = (0..10).map(|i| retryable(&format!("e{i}"))).collect();
    let (result, starts) = run(&pipeline, &spec("report", true), errors).await;
    let error = result.unwrap_err();
    assert_eq!(starts.len(), 3, "default cap is 3 attempts");
    assert_eq!(error.message, "e2");
    let event = &recorder.events()[0];
    assert_eq!((event.attempts, event.error_class), (3, Some(ErrorClass::Retryable)));
}

#[tokio::test(start_paused = true)]
async fn permanent_and_unsupported_errors_are_not_retried() {
    let (pipeline, recorder) = pipeline(RetryPolicy::default());
    let (result, starts) = run(&pipeline, &spec("report", true), vec![permanent(), permanent()]).await;
    assert_eq!(result.unwrap_err().class, ErrorClass::Permanent);
    assert_eq!(starts.len(), 1);
    let unsupported = ProviderError::unsupported("ads/fake", ProviderPhase::Plan);
    let (result, starts) = run(&pipeline, &spec("report", true), vec![unsupported]).await;
    assert_eq!(result.unwrap_err().class, ErrorClass::Unsupported);
    assert_eq!(starts.len(), 1);
    assert_eq!(recorder.events().iter().map(|e| e.attempts).collect::<Vec<_>>(), [1, 1]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_longer_than_backoff() {
    let (pipeline, _) = pipeline(RetryPolicy::default());
    let throttled = retryable("slow down").with_code(ErrorCode::RateLimited).with_retry_after_ms(5_000);
    let (result, starts) = run(&pipeline, &spec("report", true), vec![throttled]).await;
    assert!(result.is_ok());
    let waited = starts[1] - starts[0];
    assert!(waited >= Duration::from_millis(5_000), "waited {waited:?}");
    assert!(waited < Duration::from_millis(5_100), "waited {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_are_jittered_within_bounds_and_reproducible() {
    let policy = RetryPolicy { max_attempts: 6, base_delay: Duration::from_millis(100), ..RetryPolicy::default() };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (pipeline, _) = pipeline(policy);
        let errors = (0..5).map(|i| retryable(&format!("e{i}"))).collect();
        let (result, starts) = run(&pipeline, &spec("report", true), errors).await;
        assert!(result.is_ok());
        let waits: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        for (retry, wait) in waits.iter().enumerate() {
            let full = policy.backoff(retry as u32 + 1);
            assert!(
                *wait >= full / 2 && *wait <= full,
                "retry {retry}: {wait:?} not within [{:?}, {full:?}]",
                full / 2
            );
        }
        runs.push(waits);
    }
    assert_eq!(runs[0], runs[1], "the same seed gives the same waits");
    assert!(runs[0].windows(2).any(|w| w[0] * 2 != w[1]), "waits are jittered, not exact doublings: {:?}", runs[0]);
}

#[test]
fn jittered_backoff_bounds_hold_for_every_fraction() {
    let policy = RetryPolicy::default();
    let jitter = SeededJitter::new(7);
    for retry in 1..12 {
        for _ in 0..200 {
            let wait = policy.jittered_backoff(retry, pal::Jitter::fraction(&jitter));
            let full = policy.backoff(retry);
            assert!(wait >= full / 2 && wait <= full);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_total_deadline_bounds_every_call() {
    let policy = RetryPolicy {
        max_attempts: 50,
        base_delay: Duration::from_millis(400),
        total_deadline: Duration::from_secs(2),
        ..RetryPolicy::default()
    };
    let (pipeline, _) = pipeline(policy);
    let begun = Instant::now();
    let errors = (0..50).map(|i| retryable(&format!("e{i}"))).collect();
    let (result, starts) = run(&pipeline, &spec("report", true), errors).await;
    let error = result.unwrap_err();
    assert!(begun.elapsed() <= Duration::from_secs(2), "took {:?}", begun.elapsed());
    assert!(starts.len() < 50 && starts.len() >= 2, "{} attempts", starts.len());
    assert!(error.message.contains("total deadline"), "{}", error.message);

    // A hanging attempt is cut at the remaining deadline, even with a longer attempt timeout.
    let (pipeline, recorder) = pipeline_with_deadline(Duration::from_secs(2), Duration::from_secs(30));
    let begun = Instant::now();
    let result: Result<(), _> = pipeline
        .call(&spec("report", true), || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await;
    assert_eq!(result.unwrap_err().code, Some(ErrorCode::Timeout));
    assert!(begun.elapsed() <= Duration::from_secs(2), "took {:?}", begun.elapsed());
    assert!(recorder.events()[0].latency_ms <= 2_000);
}

fn pipeline_with_deadline(deadline: Duration, attempt_timeout: Duration) -> (Pipeline, Arc<MetricsRecorder>) {
    pipeline(RetryPolicy { total_deadline: deadline, attempt_timeout, ..RetryPolicy::default() })
}

#[tokio::test(start_paused = true)]
async fn timeouts_fire_on_a_slow_adapter() {
    let (pipeline, recorder) = pipeline(RetryPolicy { max_attempts: 2, ..RetryPolicy::default() });
    pipeline.set_adapter_timeout("fake", Some(Duration::from_millis(200)));
    let attempts = AtomicU32::new(0);
    let begun = Instant::now();
    let result: Result<(), _> = pipeline
        .call(&spec("report", true), || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        })
        .await;
    let error = result.unwrap_err();
    assert_eq!((error.code, error.class), (Some(ErrorCode::Timeout), ErrorClass::Retryable));
    assert!(error.message.contains("timed out after 200 ms"), "{}", error.message);
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "a timeout is retryable for an idempotent read");
    assert!(begun.elapsed() < Duration::from_secs(1));
    assert_eq!(recorder.events()[0].attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_non_idempotent_write_is_not_repeated_after_an_ambiguous_failure() {
    let (pipeline, _) = pipeline(RetryPolicy::default());
    let (result, starts) = run(&pipeline, &spec("send", false), vec![retryable("connection reset")]).await;
    assert_eq!(result.unwrap_err().message, "connection reset");
    assert_eq!(starts.len(), 1, "sent once, never re-sent");

    // A timeout is ambiguous too.
    pipeline.set_adapter_timeout("fake", Some(Duration::from_millis(50)));
    let sends = AtomicU32::new(0);
    let result: Result<(), _> = pipeline
        .call(&spec("send", false), || {
            sends.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            }
        })
        .await;
    assert_eq!(result.unwrap_err().code, Some(ErrorCode::Timeout));
    assert_eq!(sends.load(Ordering::SeqCst), 1);
    pipeline.set_adapter_timeout("fake", None);

    // A 429 means the vendor did not process it: safe to send again.
    let throttled = retryable("429").with_code(ErrorCode::RateLimited);
    let (result, starts) = run(&pipeline, &spec("send", false), vec![throttled]).await;
    assert!(result.is_ok());
    assert_eq!(starts.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_calls_per_adapter() {
    let (pipeline, _) = pipeline(RetryPolicy::default());
    pipeline.set_rate_limit("fake", Some(RateLimit { per_second: 2.0, burst: 1 }));
    let begun = Instant::now();
    for _ in 0..5 {
        let (result, _) = run(&pipeline, &spec("report", true), vec![]).await;
        result.unwrap();
    }
    let elapsed = begun.elapsed();
    assert!(elapsed >= Duration::from_millis(2_000) && elapsed < Duration::from_millis(2_100), "{elapsed:?}");
    // Another adapter is not limited.
    let other = CallSpec::new(CallTarget::new(Capability::Ads, "other"), Capability::Ads.op("report").unwrap());
    let begun = Instant::now();
    for _ in 0..5 {
        let (result, _) = run(&pipeline, &other, vec![]).await;
        result.unwrap();
    }
    assert_eq!(begun.elapsed(), Duration::ZERO);
}

#[derive(Default)]
struct Trail(Mutex<Vec<String>>);

impl Hook for Trail {
    fn before(&self, c: &HookContext) {
        self.0.lock().unwrap().push(format!("before {}", c.op));
    }
    fn after(&self, c: &HookContext, attempts: u32) {
        self.0.lock().unwrap().push(format!("after {} {attempts}", c.op));
    }
    fn error(&self, c: &HookContext, e: &ProviderError) {
        self.0.lock().unwrap().push(format!("error {} {}", c.op, e.message));
    }
    fn finally(&self, c: &HookContext, e: &MetricsEvent) {
        self.0.lock().unwrap().push(format!("finally {} {:?}", c.op, e.outcome));
    }
}

#[tokio::test(start_paused = true)]
async fn hooks_run_in_order_and_the_event_has_every_field() {
    let (pipeline, recorder) = pipeline(RetryPolicy::default());
    let trail = Arc::new(Trail::default());
    pipeline.add_hook(trail.clone());
    run(&pipeline, &spec("report", true), vec![retryable("once")]).await.0.unwrap();
    run(&pipeline, &spec("pause", true), vec![permanent()]).await.0.unwrap_err();
    assert_eq!(
        *trail.0.lock().unwrap(),
        [
            "before report",
            "after report 2",
            "finally report Ok",
            "before pause",
            "error pause bad request",
            "finally pause Error"
        ]
    );
    let events = serde_json::to_value(recorder.events()).unwrap();
    for key in ["capability", "adapter", "op", "latency_ms", "attempts", "error_class", "outcome"] {
        assert!(events[0].get(key).is_some() && events[1].get(key).is_some(), "missing {key}: {events}");
    }
    // Seed 42 jitters the first 100 ms backoff to 88 ms: within [50, 100] and the same every run.
    assert_eq!(events[0]["latency_ms"], 88, "the seeded backoff before the second attempt");
    assert_eq!(events[1]["error_class"], "permanent");
}
