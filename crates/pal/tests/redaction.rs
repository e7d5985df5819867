#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Secrets never reach errors, logs or Debug output.
//!
//! This is the only test in its binary on purpose: it installs a tracing subscriber, and
//! tracing caches per-callsite interest process-wide, so other tests running concurrently in
//! the same process would make the captured log flaky.

use std::sync::{Arc, Mutex};

use pal::{
    CallSpec, CallTarget, Capability, ErrorCode, Pipeline, ProviderError, ProviderPhase, Redactor, RetryPolicy, Secret,
    SeededJitter, TokioClock,
};

fn retryable(message: &str) -> ProviderError {
    ProviderError::retryable("ads/fake", ProviderPhase::Snapshot, message).with_code(ErrorCode::Unavailable)
}

/// A writer that keeps everything tracing writes, to search it for secrets.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_reach_errors_logs_or_debug_output() {
    const TOKEN: &str = "tok-9f8e7d6c5b4a";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let (result, pipeline) = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let pipeline =
                Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::new(42)), RetryPolicy::default());
            let secret = Secret::new(TOKEN);
            pipeline.set_redactor(Redactor::new([&secret]));
            let leaky = format!("401 from vendor: bad token {TOKEN} (retry with {TOKEN})");
            let auth =
                ProviderError::new("ads/fake", ProviderPhase::Snapshot, leaky.clone()).with_code(ErrorCode::AuthFailed);
            let mut errors = vec![retryable(&leaky), auth].into_iter();
            let spec = CallSpec::new(CallTarget::new(Capability::Ads, "fake"), Capability::Ads.op("report").unwrap());
            let result: Result<(), _> =
                pipeline.call(&spec, || std::future::ready(errors.next().map_or(Ok(()), Err))).await;
            (result, pipeline)
        })
    });
    let error = result.unwrap_err();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("[REDACTED]"), "the failure is logged, redacted: {logs}");
    assert!(logs.contains("pal.metrics"), "{logs}");
    for (what, text) in [
        ("error message", error.message.clone()),
        ("error Display", error.to_string()),
        ("error Debug", format!("{error:?}")),
        ("error JSON", serde_json::to_string(&error).unwrap()),
        ("logs", logs),
        ("pipeline Debug", format!("{pipeline:?}")),
        ("secret Debug", format!("{:?}", Secret::new(TOKEN))),
    ] {
        assert!(!text.contains(TOKEN), "{what} leaks the token: {text}");
    }
}
