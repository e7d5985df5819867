//! Health reports, shared by every capability.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;

/// How a provider is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Working.
    #[default]
    Ok,
    /// Working with problems (slow, partial).
    Degraded,
    /// Not reachable or not working.
    Down,
    /// Credentials refused.
    AuthFailed,
}

impl HealthStatus {
    /// Whether calls should be sent at all.
    pub fn is_usable(self) -> bool {
        matches!(self, HealthStatus::Ok | HealthStatus::Degraded)
    }
}

/// API call counters a provider may report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls refused for rate limiting.
    pub rate_limited: u64,
}

/// A health report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthReport {
    /// The status.
    pub status: HealthStatus,
    /// Round-trip time of the health probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Why, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiStats>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl HealthReport {
    /// A report with just a status.
    pub fn with_status(status: HealthStatus) -> Self {
        HealthReport { status, ..HealthReport::default() }
    }

    /// `ok`.
    pub fn ok() -> Self {
        HealthReport::default()
    }
}
