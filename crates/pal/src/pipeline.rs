//! The call pipeline every provider call goes through: per-operation timeout, retries of
//! retryable errors only (capped, exponential backoff with jitter, honouring retry-after,
//! bounded by a total deadline), no blind re-send of non-idempotent writes, a per-adapter rate
//! limit, hooks, one metrics event per call, a tracing span, and secret redaction.
//!
//! Time and randomness are injected ([`Clock`], [`Jitter`]) so tests are deterministic.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use admit_core::{ErrorClass, ErrorCode, ProviderError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::adapter::CallTarget;
use crate::capability::{Capability, OpSpec};
use crate::secret::Redactor;

/// A boxed future, as returned by [`Clock::sleep`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Monotonic time and sleeping.
///
/// ```
/// use std::time::Duration;
/// use pal::{Clock, TokioClock};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let clock = TokioClock::new();
/// clock.sleep(Duration::from_secs(5)).await; // instant under paused tokio time
/// assert!(clock.now() >= Duration::from_secs(5));
/// # });
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The tokio clock. Under `tokio::time::pause` (tests) it advances only when every task
/// sleeps, which makes timing tests exact and instant.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        TokioClock { origin: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A source of jitter fractions in `[0, 1)`.
///
/// ```
/// use pal::{Jitter, SeededJitter};
/// let (a, b) = (SeededJitter::new(42), SeededJitter::new(42));
/// let x = a.fraction();
/// assert!((0.0..1.0).contains(&x));
/// assert_eq!(x, b.fraction()); // same seed, same sequence
/// ```
pub trait Jitter: Send + Sync + fmt::Debug {
    /// The next fraction.
    fn fraction(&self) -> f64;
}

/// SplitMix64: tiny, seeded, reproducible.
#[derive(Debug)]
pub struct SeededJitter {
    state: AtomicU64,
}

impl SeededJitter {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        SeededJitter { state: AtomicU64::new(seed) }
    }

    /// A generator seeded from the system clock (for production use).
    pub fn from_time() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        SeededJitter::new(seed)
    }
}

impl Jitter for SeededJitter {
    fn fraction(&self) -> f64 {
        let mut z = self.state.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits → [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Retry and timeout limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, including the first (default 3).
    pub max_attempts: u32,
    /// Backoff before the second attempt (default 100 ms); doubles each retry.
    pub base_delay: Duration,
    /// Cap on one backoff (default 5 s).
    pub max_delay: Duration,
    /// Cap on one call, all attempts and waits included (default 60 s).
    pub total_deadline: Duration,
    /// Timeout of one attempt unless the operation has its own (default 30 s).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            total_deadline: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The un-jittered backoff before attempt `retry + 1` (`retry` ≥ 1).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The jittered backoff: uniformly within `[backoff / 2, backoff]` ("equal jitter").
    pub fn jittered_backoff(&self, retry: u32, fraction: f64) -> Duration {
        let full = self.backoff(retry);
        let half = full / 2;
        half + (full - half).mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// A token bucket: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed at once.
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled_at: Duration,
}

impl Bucket {
    /// Takes a token, returning how long the caller must wait for it (a reservation: tokens
    /// may go negative, so concurrent callers queue fairly without re-checking).
    fn reserve(&mut self, now: Duration) -> Duration {
        let elapsed = now.saturating_sub(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        self.refilled_at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.limit.per_second) }
    }
}

/// Names of a call, given to hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookContext {
    /// The capability.
    pub capability: Capability,
    /// The adapter.
    pub adapter: String,
    /// The operation.
    pub op: &'static str,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Returned a result.
    Ok,
    /// Returned an error.
    Error,
}

/// The one metrics event emitted per call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsEvent {
    /// The capability.
    pub capability: Capability,
    /// The adapter.
    pub adapter: String,
    /// The operation.
    pub op: String,
    /// Wall time of the whole call, waits included.
    pub latency_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// The final error's class, when the call failed.
    pub error_class: Option<ErrorClass>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Hooks around every call (OpenFeature style). All methods default to doing nothing.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use pal::pipeline::{Hook, HookContext, MetricsEvent};
///
/// #[derive(Default)]
/// struct CountErrors(Mutex<u32>);
///
/// impl Hook for CountErrors {
///     fn error(&self, _: &HookContext, _: &pal::ProviderError) {
///         *self.0.lock().unwrap() += 1;
///     }
/// }
/// let hook: Arc<dyn Hook> = Arc::new(CountErrors::default());
/// ```
pub trait Hook: Send + Sync {
    /// Before the first attempt.
    fn before(&self, context: &HookContext) {
        let _ = context;
    }
    /// After a successful call.
    fn after(&self, context: &HookContext, attempts: u32) {
        let _ = (context, attempts);
    }
    /// After a failed call, with the final (redacted) error.
    fn error(&self, context: &HookContext, error: &ProviderError) {
        let _ = (context, error);
    }
    /// After every call, with its metrics event.
    fn finally(&self, context: &HookContext, event: &MetricsEvent) {
        let _ = (context, event);
    }
}

/// A hook that keeps every metrics event (for `cw call`, tests and reports).
#[derive(Debug, Default)]
pub struct MetricsRecorder {
    events: Mutex<Vec<MetricsEvent>>,
}

impl MetricsRecorder {
    /// The events so far.
    pub fn events(&self) -> Vec<MetricsEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Takes the events so far, leaving none.
    pub fn take(&self) -> Vec<MetricsEvent> {
        self.events.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default()
    }
}

impl Hook for MetricsRecorder {
    fn finally(&self, _: &HookContext, event: &MetricsEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}

/// What to call: target, operation, whether repeating it is safe, and its timeout.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// Capability and adapter.
    pub target: CallTarget,
    /// The operation.
    pub op: &'static OpSpec,
    /// Whether this call may be repeated after an ambiguous failure.
    pub idempotent: bool,
    /// This call's per-attempt timeout; `None` uses the adapter's or the policy's.
    pub timeout: Option<Duration>,
}

impl CallSpec {
    /// A spec whose idempotency is the operation's static declaration (`WhenKeyed` counts as
    /// not idempotent: use [`OpSpec::is_idempotent_for`] when the input is known).
    pub fn new(target: CallTarget, op: &'static OpSpec) -> Self {
        let idempotent = matches!(op.idempotency, crate::capability::Idempotency::Always);
        CallSpec { target, op, idempotent, timeout: None }
    }
}

/// The call pipeline. Cheap to share (`Arc<Pipeline>`); configuration changes take effect for
/// calls that start afterwards.
pub struct Pipeline {
    clock: Arc<dyn Clock>,
    jitter: Arc<dyn Jitter>,
    policy: RetryPolicy,
    hooks: RwLock<Vec<Arc<dyn Hook>>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    timeouts: RwLock<HashMap<String, Duration>>,
    redactor: RwLock<Redactor>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline").field("clock", &self.clock).field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::from_time()), RetryPolicy::default())
    }
}

impl Pipeline {
    /// A pipeline with the given clock, jitter and policy.
    pub fn new(clock: Arc<dyn Clock>, jitter: Arc<dyn Jitter>, policy: RetryPolicy) -> Self {
        Pipeline {
            clock,
            jitter,
            policy,
            hooks: RwLock::new(Vec::new()),
            buckets: Mutex::new(HashMap::new()),
            timeouts: RwLock::new(HashMap::new()),
            redactor: RwLock::new(Redactor::default()),
        }
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Adds a hook; hooks run in the order added.
    pub fn add_hook(&self, hook: Arc<dyn Hook>) {
        if let Ok(mut hooks) = self.hooks.write() {
            hooks.push(hook);
        }
    }

    /// Limits the call rate of one adapter (`None` removes the limit).
    pub fn set_rate_limit(&self, adapter: &str, limit: Option<RateLimit>) {
        if let Ok(mut buckets) = self.buckets.lock() {
            match limit {
                Some(limit) => {
                    let bucket = Bucket { limit, tokens: f64::from(limit.burst), refilled_at: self.clock.now() };
                    buckets.insert(adapter.to_owned(), bucket);
                }
                None => {
                    buckets.remove(adapter);
                }
            }
        }
    }

    /// Sets the per-attempt timeout of one adapter (`None` restores the policy's).
    pub fn set_adapter_timeout(&self, adapter: &str, timeout: Option<Duration>) {
        if let Ok(mut timeouts) = self.timeouts.write() {
            match timeout {
                Some(timeout) => timeouts.insert(adapter.to_owned(), timeout),
                None => timeouts.remove(adapter),
            };
        }
    }

    /// Replaces the set of secrets scrubbed from errors and logs.
    pub fn set_redactor(&self, redactor: Redactor) {
        if let Ok(mut current) = self.redactor.write() {
            *current = redactor;
        }
    }

    /// Scrubs known secrets out of `text`.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.read().map(|r| r.scrub(text)).unwrap_or_else(|_| text.to_owned())
    }

    fn attempt_timeout(&self, spec: &CallSpec) -> Duration {
        spec.timeout
            .or_else(|| self.timeouts.read().ok().and_then(|t| t.get(&spec.target.adapter).copied()))
            .unwrap_or(self.policy.attempt_timeout)
    }

    fn reserve_token(&self, adapter: &str) -> Duration {
        let now = self.clock.now();
        match self.buckets.lock() {
            Ok(mut buckets) => buckets.get_mut(adapter).map(|b| b.reserve(now)).unwrap_or(Duration::ZERO),
            Err(_) => Duration::ZERO,
        }
    }

    fn hooks(&self) -> Vec<Arc<dyn Hook>> {
        self.hooks.read().map(|h| h.clone()).unwrap_or_default()
    }

    /// Runs `attempt` under the pipeline's rules and returns its result.
    ///
    /// `attempt` is called once per attempt. A retryable error is retried while attempts and
    /// the total deadline allow, after a jittered backoff (or the provider's retry-after, if
    /// longer). A call that is not idempotent is retried only after a rate-limit refusal (the
    /// vendor did not process it); any other failure may have been applied, so it is returned.
    pub async fn call<T, F, Fut>(&self, spec: &CallSpec, mut attempt: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, ProviderError>> + Send,
        T: Send,
    {
        let context =
            HookContext { capability: spec.target.capability, adapter: spec.target.adapter.clone(), op: spec.op.name };
        let span = tracing::info_span!(
            "pal.call",
            capability = spec.target.capability.as_str(),
            adapter = spec.target.adapter.as_str(),
            op = spec.op.name
        );
        let hooks = self.hooks();
        for hook in &hooks {
            hook.before(&context);
        }
        let started = self.clock.now();
        let deadline = started + self.policy.total_deadline;
        let timeout = self.attempt_timeout(spec);
        let mut attempts = 0u32;
        let result = async {
            loop {
                let wait = self.reserve_token(&spec.target.adapter);
                if !wait.is_zero() {
                    self.clock.sleep(wait).await;
                }
                attempts += 1;
                let remaining = deadline.saturating_sub(self.clock.now());
                let limit = timeout.min(remaining);
                let outcome = tokio::select! {
                    biased;
                    outcome = attempt() => outcome,
                    () = self.clock.sleep(limit) => Err(timed_out(spec, limit)),
                };
                let error = match outcome {
                    Ok(value) => return Ok(value),
                    Err(error) => self.redacted(error),
                };
                let retryable = error.class == ErrorClass::Retryable;
                let safe_to_repeat = spec.idempotent || error.code == Some(ErrorCode::RateLimited);
                if !retryable || attempts >= self.policy.max_attempts {
                    return Err(error);
                }
                if !safe_to_repeat {
                    tracing::warn!(
                        attempts,
                        "not retried: `{}` is not idempotent and the failure may have been applied",
                        spec.op.name
                    );
                    return Err(error);
                }
                let backoff = self.policy.jittered_backoff(attempts, self.jitter.fraction());
                let delay = error.retry_after_ms.map(Duration::from_millis).map_or(backoff, |after| after.max(backoff));
                if self.clock.now() + delay >= deadline {
                    let mut error = error;
                    error.message = format!(
                        "{} (gave up after {attempts} attempt(s): the next retry would pass the {} ms total deadline)",
                        error.message,
                        self.policy.total_deadline.as_millis()
                    );
                    return Err(error);
                }
                tracing::debug!(attempts, delay_ms = delay.as_millis() as u64, "retrying: {}", error.message);
                self.clock.sleep(delay).await;
            }
        }
        .instrument(span.clone())
        .await;

        let latency = self.clock.now().saturating_sub(started);
        let event = MetricsEvent {
            capability: spec.target.capability,
            adapter: spec.target.adapter.clone(),
            op: spec.op.name.to_owned(),
            latency_ms: latency.as_millis() as u64,
            attempts,
            error_class: result.as_ref().err().map(|e| e.class),
            outcome: if result.is_ok() { Outcome::Ok } else { Outcome::Error },
        };
        match &result {
            Ok(_) => hooks.iter().for_each(|h| h.after(&context, attempts)),
            Err(error) => {
                span.in_scope(|| tracing::warn!(error = %error, attempts, "call failed"));
                hooks.iter().for_each(|h| h.error(&context, error));
            }
        }
        span.in_scope(|| {
            tracing::info!(
                latency_ms = event.latency_ms,
                attempts,
                outcome = ?event.outcome,
                error_class = ?event.error_class,
                "pal.metrics"
            );
        });
        for hook in &hooks {
            hook.finally(&context, &event);
        }
        result
    }

    fn redacted(&self, mut error: ProviderError) -> ProviderError {
        error.message = self.redact(&error.message);
        error
    }
}

fn timed_out(spec: &CallSpec, limit: Duration) -> ProviderError {
    ProviderError::retryable(
        spec.target.scope(),
        spec.op.phase,
        format!("{} timed out after {} ms", spec.op.name, limit.as_millis()),
    )
    .with_code(ErrorCode::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..Default::default()
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(350));
        assert_eq!(policy.backoff(40), Duration::from_millis(350));
    }

    #[test]
    fn seeded_jitter_is_reproducible_and_in_range() {
        let a = SeededJitter::new(7);
        let b = SeededJitter::new(7);
        for _ in 0..1000 {
            let x = a.fraction();
            assert_eq!(x, b.fraction());
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(SeededJitter::new(1).fraction(), SeededJitter::new(2).fraction());
    }

    #[test]
    fn bucket_reserves_in_order() {
        let mut bucket =
            Bucket { limit: RateLimit { per_second: 10.0, burst: 2 }, tokens: 2.0, refilled_at: Duration::ZERO };
        assert_eq!(bucket.reserve(Duration::ZERO), Duration::ZERO);
        assert_eq!(bucket.reserve(Duration::ZERO), Duration::ZERO);
        assert_eq!(bucket.reserve(Duration::ZERO), Duration::from_millis(100));
        assert_eq!(bucket.reserve(Duration::ZERO), Duration::from_millis(200));
    }
}
