//! Mapping HTTP outcomes onto the error taxonomy, for adapters that speak HTTP.

use admit_core::{ErrorCode, ProviderError, ProviderPhase};

use crate::adapter::CallTarget;

/// Classifies an HTTP status: 429, 408 and 5xx are retryable (429 keeps its retry-after);
/// 401 and 403 are authentication failures (permanent); other 4xx are permanent. Returns
/// `None` for success statuses.
///
/// ```
/// use pal::http::error_for_status;
/// use pal::{CallTarget, Capability, ErrorClass, ProviderPhase};
/// let target = CallTarget::new(Capability::Ads, "acme_ads");
/// let err = error_for_status(&target, "report", ProviderPhase::Snapshot, 429, Some(2000), "slow down").unwrap();
/// assert_eq!((err.class, err.retry_after_ms), (ErrorClass::Retryable, Some(2000)));
/// assert!(error_for_status(&target, "report", ProviderPhase::Snapshot, 200, None, "").is_none());
/// ```
pub fn error_for_status(
    target: &CallTarget,
    op: &str,
    phase: ProviderPhase,
    status: u16,
    retry_after_ms: Option<u64>,
    body_excerpt: &str,
) -> Option<ProviderError> {
    let scope = target.scope();
    let message = |what: &str| {
        let excerpt: String = body_excerpt.chars().take(200).collect();
        if excerpt.is_empty() {
            format!("{op}: HTTP {status} ({what})")
        } else {
            format!("{op}: HTTP {status} ({what}): {excerpt}")
        }
    };
    let error = match status {
        100..=399 => return None,
        429 => {
            let error =
                ProviderError::retryable(scope, phase, message("rate limited")).with_code(ErrorCode::RateLimited);
            match retry_after_ms {
                Some(delay) => error.with_retry_after_ms(delay),
                None => error,
            }
        }
        408 => ProviderError::retryable(scope, phase, message("request timeout")).with_code(ErrorCode::Timeout),
        401 | 403 => {
            ProviderError::new(scope, phase, message("authentication failed")).with_code(ErrorCode::AuthFailed)
        }
        404 => ProviderError::new(scope, phase, message("not found")).with_code(ErrorCode::NotFound),
        400..=499 => ProviderError::new(scope, phase, message("rejected")).with_code(ErrorCode::InvalidInput),
        _ => ProviderError::retryable(scope, phase, message("server error")).with_code(ErrorCode::Unavailable),
    };
    Some(error)
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is not used by the
/// vendors we target and is ignored).
pub fn parse_retry_after_seconds(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Capability;
    use admit_core::ErrorClass;

    #[test]
    fn status_classes() {
        let t = CallTarget::new(Capability::Ads, "x");
        let class = |s| error_for_status(&t, "op", ProviderPhase::Execute, s, None, "").map(|e| (e.class, e.code));
        assert_eq!(class(200), None);
        assert_eq!(class(429), Some((ErrorClass::Retryable, Some(ErrorCode::RateLimited))));
        assert_eq!(class(408), Some((ErrorClass::Retryable, Some(ErrorCode::Timeout))));
        assert_eq!(class(500), Some((ErrorClass::Retryable, Some(ErrorCode::Unavailable))));
        assert_eq!(class(503), Some((ErrorClass::Retryable, Some(ErrorCode::Unavailable))));
        assert_eq!(class(401), Some((ErrorClass::Permanent, Some(ErrorCode::AuthFailed))));
        assert_eq!(class(403), Some((ErrorClass::Permanent, Some(ErrorCode::AuthFailed))));
        assert_eq!(class(422), Some((ErrorClass::Permanent, Some(ErrorCode::InvalidInput))));
        assert_eq!(parse_retry_after_seconds(" 3 "), Some(3000));
        assert_eq!(parse_retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
