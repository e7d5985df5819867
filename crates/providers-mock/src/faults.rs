//! Fault injection shared by every mock: fail N times retryably, fail permanently, refuse the
//! credentials, be unreachable, hang, add latency, report a given health, and (for redaction
//! tests) echo the configured token in errors.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use admit_core::{ErrorClass, ErrorCode, ProviderError, ProviderPhase};
use pal::{Capability, HealthReport, HealthStatus, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

/// The `faults` settings key of every mock adapter.
///
/// ```
/// use providers_mock::faults::FaultSettings;
/// let faults: FaultSettings = serde_json::from_value(serde_json::json!({"fail_times": 2})).unwrap();
/// assert_eq!((faults.fail_times, faults.fail_permanently, faults.latency_ms), (2, false, 0));
/// ```
///
/// Precedence, first match wins: `hang`, `unreachable`, `auth_failed`, `fail_permanently`,
/// `fail_times`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// The first N calls of any non-health operation fail with a retryable error and no side
    /// effect.
    pub fail_times: u32,
    /// Every non-health call fails with a permanent error (code `invalid_input`) and no side
    /// effect. Takes precedence over `fail_times`.
    pub fail_permanently: bool,
    /// Every call (health included) first sleeps this long on the tokio clock.
    pub latency_ms: u64,
    /// What `health` reports.
    pub health: HealthStatus,
    /// When set, injected retryable failures are rate-limit refusals (code `rate_limited`)
    /// carrying this retry-after; otherwise they are `unavailable`.
    pub retry_after_ms: Option<u64>,
    /// Puts the raw `token` into injected error messages, as a careless vendor would, so the
    /// pipeline's redaction can be tested end to end. Never set it outside tests.
    pub echo_token_in_errors: bool,
    /// The credentials are refused (HTTP 401): every non-health call fails permanently with
    /// code `auth_failed`, and `health` reports `auth_failed`.
    pub auth_failed: bool,
    /// The vendor cannot be reached: every non-health call fails retryably with code
    /// `unavailable`, and `health` reports `down`.
    pub unreachable: bool,
    /// Every call (health included) hangs forever: only a caller's timeout ends it.
    pub hang: bool,
}

/// The settings every mock accepts: `faults` and an optional `token`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdapterSettings {
    /// Fault injection.
    pub faults: FaultSettings,
    /// A credential. The mocks never need one; it exists so redaction can be tested.
    pub token: Option<Secret>,
}

/// The run-time side of [`FaultSettings`]: counters and the adapter's error scope. Thread-safe;
/// every setter affects calls that start afterwards.
pub struct FaultInjector {
    capability: Capability,
    scope: String,
    token: Option<Secret>,
    settings: Mutex<FaultSettings>,
    failures_left: AtomicU32,
    injected: AtomicU32,
    calls: AtomicU64,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("scope", &self.scope)
            .field("token", &self.token)
            .field("settings", &self.settings())
            .field("failures_left", &self.failures_left.load(Ordering::SeqCst))
            .field("calls", &self.calls.load(Ordering::SeqCst))
            .finish()
    }
}

impl FaultInjector {
    /// An injector for the adapter `adapter` of `capability` (scope `<capability>/<adapter>`).
    pub fn new(capability: Capability, adapter: &str, settings: FaultSettings, token: Option<Secret>) -> Self {
        FaultInjector {
            capability,
            scope: format!("{capability}/{adapter}"),
            token,
            failures_left: AtomicU32::new(settings.fail_times),
            settings: Mutex::new(settings),
            injected: AtomicU32::new(0),
            calls: AtomicU64::new(0),
        }
    }

    /// The scope errors carry, e.g. `ads/mock_ads`.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The configured token, if any.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// The current settings.
    pub fn settings(&self) -> FaultSettings {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the settings and restarts the `fail_times` count.
    pub fn set(&self, settings: FaultSettings) {
        let mut current = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        self.failures_left.store(settings.fail_times, Ordering::SeqCst);
        *current = settings;
    }

    /// Makes `health` report `status` from now on.
    pub fn set_health(&self, status: HealthStatus) {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).health = status;
    }

    /// Makes the next `times` non-health calls fail retryably.
    pub fn fail_next(&self, times: u32) {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).fail_times = times;
        self.failures_left.store(times, Ordering::SeqCst);
    }

    /// Turns permanent failure on or off.
    pub fn set_fail_permanently(&self, on: bool) {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).fail_permanently = on;
    }

    /// Sets the latency added to every call.
    pub fn set_latency_ms(&self, latency_ms: u64) {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).latency_ms = latency_ms;
    }

    /// Failures injected so far (retryable and permanent).
    pub fn injected_failures(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Calls seen so far (health included, injected failures included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The phase errors of `op` are reported under (from [`Capability::op`]).
    pub fn phase(&self, op: &str) -> ProviderPhase {
        self.capability.op(op).map(|spec| spec.phase).unwrap_or(ProviderPhase::Execute)
    }

    /// Counts the call, then hangs forever (`hang`) or sleeps the configured latency.
    async fn delay(&self, settings: &FaultSettings) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if settings.hang {
            std::future::pending::<()>().await;
        }
        if settings.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(settings.latency_ms)).await;
        }
    }

    /// Runs before every non-health operation, before any side effect: hangs (`hang`) or
    /// sleeps the configured latency, then returns the injected failure, if any. An attempt
    /// cancelled during the sleep (a pipeline timeout) consumes no `fail_times` failure.
    pub async fn before(&self, op: &str) -> Result<(), ProviderError> {
        let settings = self.settings();
        self.delay(&settings).await;
        let phase = self.phase(op);
        let echo = match (&self.token, settings.echo_token_in_errors) {
            (Some(token), true) if !token.is_empty() => {
                format!(" (vendor echo: Authorization: Bearer {})", token.expose())
            }
            _ => String::new(),
        };
        if settings.unreachable {
            self.injected.fetch_add(1, Ordering::SeqCst);
            let message = format!("{op}: injected connection failure: the vendor is unreachable (faults.unreachable)");
            return Err(ProviderError::retryable(self.scope.as_str(), phase, message).with_code(ErrorCode::Unavailable));
        }
        if settings.auth_failed {
            self.injected.fetch_add(1, Ordering::SeqCst);
            let message = format!("{op}: injected HTTP 401: credentials refused (faults.auth_failed){echo}");
            return Err(ProviderError::new(self.scope.as_str(), phase, message).with_code(ErrorCode::AuthFailed));
        }
        if settings.fail_permanently {
            self.injected.fetch_add(1, Ordering::SeqCst);
            let message = format!("{op}: injected permanent failure (faults.fail_permanently){echo}");
            return Err(ProviderError::invalid_input(self.scope.as_str(), phase, message));
        }
        let taken = self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
        if let Ok(left_before) = taken {
            self.injected.fetch_add(1, Ordering::SeqCst);
            let nth = settings.fail_times.saturating_sub(left_before) + 1;
            let message =
                format!("{op}: injected transient failure {nth} of {} (faults.fail_times){echo}", settings.fail_times);
            let error = ProviderError::retryable(self.scope.as_str(), phase, message);
            return Err(match settings.retry_after_ms {
                Some(delay) => error.with_code(ErrorCode::RateLimited).with_retry_after_ms(delay),
                None => error.with_code(ErrorCode::Unavailable),
            });
        }
        Ok(())
    }

    /// The health report, after the configured latency (or never, with `hang`): `down` when
    /// `unreachable`, else `auth_failed` when `auth_failed`, else the configured status.
    pub async fn health(&self) -> HealthReport {
        let settings = self.settings();
        self.delay(&settings).await;
        let (status, reason) = if settings.unreachable {
            (HealthStatus::Down, "the vendor is unreachable (faults.unreachable)".to_owned())
        } else if settings.auth_failed {
            (HealthStatus::AuthFailed, "credentials refused (faults.auth_failed)".to_owned())
        } else {
            (settings.health, format!("configured by faults.health = {}", settings.health.as_str()))
        };
        match status {
            HealthStatus::Ok => HealthReport::ok(),
            status => HealthReport { reason: Some(reason), ..HealthReport::with_status(status) },
        }
    }

    /// A permanent error of `op` with `code` (never containing the token).
    pub fn error(&self, op: &str, code: ErrorCode, message: impl fmt::Display) -> ProviderError {
        let error = ProviderError::new(self.scope.as_str(), self.phase(op), format!("{op}: {message}")).with_code(code);
        if code == ErrorCode::Unsupported { ProviderError { class: ErrorClass::Unsupported, ..error } } else { error }
    }

    /// A permanent `not_found` error of `op`.
    pub fn not_found(&self, op: &str, message: impl fmt::Display) -> ProviderError {
        self.error(op, ErrorCode::NotFound, message)
    }

    /// A permanent `invalid_input` error of `op`.
    pub fn invalid(&self, op: &str, message: impl fmt::Display) -> ProviderError {
        self.error(op, ErrorCode::InvalidInput, message)
    }
}
