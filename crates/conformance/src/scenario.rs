//! What the inventory and capability kits share: the fault scenarios a harness can stage,
//! the probe that counts what reached the vendor, and the pipeline the kits call through.

use std::sync::Arc;
use std::time::Duration;

use pal::{MetricsRecorder, Pipeline, RetryPolicy, SeededJitter, TokioClock};

/// A situation a harness builds its adapter in. Harnesses return `None` for a scenario their
/// emulator cannot stage; the checks that need it are then not applicable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Working normally.
    Healthy,
    /// The first `times` calls are refused with HTTP 429 and this Retry-After, then succeed.
    RateLimited {
        /// Refusals before success.
        times: u32,
        /// The Retry-After the vendor sends.
        retry_after_ms: u64,
    },
    /// The first `times` calls fail with HTTP 5xx, then succeed.
    ServerError {
        /// Failures before success.
        times: u32,
    },
    /// Credentials are refused (HTTP 401): calls fail, health reports `auth_failed`.
    InvalidCredentials,
    /// The vendor cannot be reached: calls fail retryably, health reports `down`.
    Unreachable,
    /// Every call hangs forever.
    Hang,
    /// Every call is rejected as a bad request (HTTP 400).
    Rejecting,
}

/// Counts what reached the vendor (the emulator's view), to tell real effects from reports.
pub trait VendorProbe: Send + Sync {
    /// Requests the vendor received.
    fn requests(&self) -> u64;
    /// Writes the vendor applied.
    fn writes(&self) -> u64;
}

/// The retry policy kits use: the default cap of 3 attempts, short waits so kits against
/// real-time emulators stay fast, and a bounded hang.
pub fn kit_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        total_deadline: Duration::from_secs(5),
        attempt_timeout: Duration::from_millis(500),
    }
}

/// A pipeline with [`kit_policy`], a fixed jitter seed, and a metrics recorder.
pub fn kit_pipeline() -> (Arc<Pipeline>, Arc<MetricsRecorder>) {
    let pipeline = Arc::new(Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::new(7)), kit_policy()));
    let recorder = Arc::new(MetricsRecorder::default());
    pipeline.add_hook(recorder.clone());
    (pipeline, recorder)
}
