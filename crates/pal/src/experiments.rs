//! The experiments capability: flags, ramps, A/B tests and bandits.

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Extra;
use crate::health::HealthReport;

/// A flag and its value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Flag {
    /// The flag key.
    pub key: String,
    /// Its value.
    pub value: Value,
}

/// Where a ramp stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RampState {
    /// The flag or experiment key.
    pub key: String,
    /// Percentage of traffic, 0–100.
    pub stage: u8,
}

/// A running experiment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Experiment {
    /// The key.
    pub key: String,
    /// `ab` or `bandit`.
    pub kind: String,
    /// Variants or arms.
    pub arms: Vec<String>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Which arm a unit sees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    /// The experiment.
    pub key: String,
    /// The unit (user, session).
    pub unit_id: String,
    /// The arm.
    pub variant: String,
}

/// Counts for one arm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArmStats {
    /// The arm.
    pub arm: String,
    /// Units assigned.
    pub assignments: u64,
    /// Vendor fields (conversions, means, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An experiment's results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExperimentReport {
    /// The experiment.
    pub key: String,
    /// Per-arm counts, in arm order.
    pub arms: Vec<ArmStats>,
}

/// A feature-flag and experimentation platform.
///
/// ```
/// use pal::experiments::ExperimentsProvider;
/// async fn variant_for(exp: &dyn ExperimentsProvider, user: &str) -> Result<String, pal::ProviderError> {
///     exp.start_ab("checkout", vec!["control".into(), "new".into()]).await?;
///     Ok(exp.assign("checkout", user).await?.variant)
/// }
/// ```
#[async_trait]
pub trait ExperimentsProvider: Send + Sync + std::fmt::Debug {
    /// Sets a flag (idempotent).
    async fn set_flag(&self, key: &str, value: Value) -> Result<Flag, ProviderError>;
    /// Reads a flag, or `default` when unset.
    async fn get_flag(&self, key: &str, default: Value) -> Result<Value, ProviderError>;
    /// Moves a ramp to `stage` percent (idempotent).
    async fn ramp(&self, key: &str, stage: u8) -> Result<RampState, ProviderError>;
    /// Starts an A/B test (idempotent for the same variants).
    async fn start_ab(&self, key: &str, variants: Vec<String>) -> Result<Experiment, ProviderError>;
    /// Starts a multi-armed bandit (idempotent for the same arms).
    async fn start_bandit(&self, key: &str, arms: Vec<String>) -> Result<Experiment, ProviderError>;
    /// Assigns a unit to an arm; the same unit always gets the same arm.
    async fn assign(&self, key: &str, unit_id: &str) -> Result<Assignment, ProviderError>;
    /// The experiment's counts.
    async fn report(&self, key: &str) -> Result<ExperimentReport, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}
