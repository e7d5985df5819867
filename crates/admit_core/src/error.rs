//! `ProviderError`: the one structured error every layer reuses.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::{ProviderPhase, ScopeId};

/// How a caller should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: the same call may succeed later (timeouts, 429, 5xx, resets).
    Retryable,
    /// Will fail again the same way: bad input, refused plan, authentication.
    #[default]
    Permanent,
    /// The provider does not implement this phase or operation.
    Unsupported,
}

/// A stable machine-readable reason, for callers that branch on *why* without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The phase or operation is not implemented by this provider.
    Unsupported,
    /// Parameters or an artifact were malformed.
    InvalidInput,
    /// Something the request names does not exist.
    NotFound,
    /// Reading or writing local resources failed.
    Io,
    /// A value could not be encoded canonically (e.g. a NaN).
    NonCanonical,
    /// A recorded hash does not match the recomputed one.
    HashMismatch,
    /// `execute` was given a plan hash this store never recorded.
    PlanUnknown,
    /// `execute` was given a plan that requires approval and has none (or a different one).
    PlanUnapproved,
    /// `execute` was given a plan that was already executed or is executing.
    PlanAlreadyExecuted,
    /// The live state no longer matches the snapshots the plan was made against.
    PlanStale,
    /// Credentials were refused.
    AuthFailed,
    /// The provider asked the caller to slow down.
    RateLimited,
    /// The call did not finish in time.
    Timeout,
    /// The provider could not be reached or is down.
    Unavailable,
    /// A bug or broken invariant inside the provider.
    Internal,
}

/// An error from any provider phase, serializable and stable across CLI, JSON and HTTP.
///
/// `scope`, `phase` and `message` are the protocol's fields; `class`, `code` and
/// `retry_after_ms` are what retry logic and callers need. The message must never contain
/// secrets: providers redact before they build the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
pub struct ProviderError {
    /// The scope of the provider that failed.
    pub scope: ScopeId,
    /// The phase that failed.
    pub phase: ProviderPhase,
    /// A human-readable explanation that names the field, path or plan concerned.
    pub message: String,
    /// How to react: retry, give up, or treat as not implemented.
    #[serde(default)]
    pub class: ErrorClass,
    /// The reason, when it is one of the known ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// For retryable errors: the provider's requested delay before the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ProviderError {
    /// A permanent error.
    pub fn new(scope: impl Into<ScopeId>, phase: ProviderPhase, message: impl Into<String>) -> Self {
        ProviderError {
            scope: scope.into(),
            phase,
            message: message.into(),
            class: ErrorClass::Permanent,
            code: None,
            retry_after_ms: None,
        }
    }

    /// The structured "not supported" error a provider returns for a phase it does not implement.
    pub fn unsupported(scope: impl Into<ScopeId>, phase: ProviderPhase) -> Self {
        let scope = scope.into();
        let message = format!("provider `{scope}` does not support the {phase} phase");
        ProviderError {
            class: ErrorClass::Unsupported,
            code: Some(ErrorCode::Unsupported),
            ..ProviderError::new(scope, phase, message)
        }
    }

    /// The error for a predicate a provider does not declare (reported under phase `verify`,
    /// where predicate evaluation belongs); `declared` lists the ones it has.
    pub fn unknown_predicate(scope: impl Into<ScopeId>, name: &str, declared: &[&str]) -> Self {
        let scope = scope.into();
        let declared = if declared.is_empty() { "none".to_owned() } else { declared.join(", ") };
        ProviderError {
            message: format!("provider `{scope}` has no predicate `{name}` (declared: {declared})"),
            ..ProviderError::unsupported(scope, ProviderPhase::Verify)
        }
    }

    /// Permanent error for malformed parameters or artifacts.
    pub fn invalid_input(scope: impl Into<ScopeId>, phase: ProviderPhase, message: impl Into<String>) -> Self {
        ProviderError::new(scope, phase, message).with_code(ErrorCode::InvalidInput)
    }

    /// A transient error that may succeed when retried.
    pub fn retryable(scope: impl Into<ScopeId>, phase: ProviderPhase, message: impl Into<String>) -> Self {
        ProviderError { class: ErrorClass::Retryable, ..ProviderError::new(scope, phase, message) }
    }

    /// Sets the reason code.
    #[must_use]
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the delay the provider asked for.
    #[must_use]
    pub fn with_retry_after_ms(mut self, delay_ms: u64) -> Self {
        self.retry_after_ms = Some(delay_ms);
        self
    }

    /// Whether retrying the same call can help.
    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.scope, self.phase, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_carries_scope_phase_and_class() {
        let err = ProviderError::unsupported("ingest.dir", ProviderPhase::Execute);
        assert_eq!(err.scope.as_str(), "ingest.dir");
        assert_eq!(err.phase, ProviderPhase::Execute);
        assert_eq!(err.class, ErrorClass::Unsupported);
        assert_eq!(err.to_string(), "ingest.dir (execute): provider `ingest.dir` does not support the execute phase");
    }

    #[test]
    fn wire_form_keeps_seed_fields_and_reads_reference_errors() {
        let err = ProviderError::retryable("x", ProviderPhase::Snapshot, "busy").with_retry_after_ms(1500);
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"scope": "x", "phase": "snapshot", "message": "busy", "class": "retryable", "retry_after_ms": 1500})
        );
        // The reference implementation's errors have only the three seed fields.
        let legacy: ProviderError = serde_json::from_str(r#"{"scope":"x","phase":"verify","message":"m"}"#).unwrap();
        assert_eq!(legacy.class, ErrorClass::Permanent);
    }
}
