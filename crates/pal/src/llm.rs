//! The LLM gateway and LLM observability capabilities.

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::health::HealthReport;

/// A model a gateway can route to, with the dimensions routing scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    /// Model id, e.g. `mock/small`.
    pub id: String,
    /// Relative cost per call.
    pub cost: f64,
    /// Typical latency, milliseconds.
    pub latency_ms: f64,
    /// Quality score, 0–1.
    pub quality: f64,
    /// Safety score, 0–1.
    pub safety: f64,
}

/// Measurements of one routed call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteMetrics {
    /// Latency, milliseconds.
    pub latency_ms: u64,
    /// Cost of the call.
    pub cost: f64,
    /// Tokens used, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

/// The outcome of `route`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteResult {
    /// The chosen model.
    pub model: String,
    /// The completion.
    pub output: String,
    /// Measurements.
    pub metrics: RouteMetrics,
    /// Vendor fields (rationale, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An LLM gateway.
///
/// ```
/// use pal::llm::LlmGateway;
/// async fn ask(gateway: &dyn LlmGateway) -> Result<String, pal::ProviderError> {
///     let models = gateway.models().await?;
///     assert!(!models.is_empty());
///     Ok(gateway.route("Summarise this", &["summary".to_owned()]).await?.model)
/// }
/// ```
#[async_trait]
pub trait LlmGateway: Send + Sync + std::fmt::Debug {
    /// The catalog.
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError>;
    /// Routes a prompt to a model and returns its answer.
    async fn route(&self, prompt: &str, tags: &[String]) -> Result<RouteResult, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}

/// A trace handle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trace {
    /// Trace id.
    pub trace_id: String,
    /// The run it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `open` or `closed`.
    pub status: String,
    /// Metadata.
    #[serde(default)]
    pub meta: Extra,
}

/// Proof of a logged evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvalRecord {
    /// Record id.
    pub id: String,
    /// Evaluation name.
    pub name: String,
    /// Score.
    pub score: f64,
}

/// A run ↔ trace link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TraceLink {
    /// The run.
    pub run_id: String,
    /// The trace.
    pub trace_id: String,
}

/// An LLM observability platform.
///
/// ```
/// use pal::llm::LlmObservability;
/// async fn traced(obs: &dyn LlmObservability) -> Result<(), pal::ProviderError> {
///     let trace = obs.trace_start("run-1", Default::default()).await?;
///     obs.log_eval("faithfulness", 0.9, Default::default()).await?;
///     obs.trace_stop(&trace.trace_id, Default::default()).await?;
///     obs.link("run-1", &trace.trace_id).await?;
///     Ok(())
/// }
/// ```
#[async_trait]
pub trait LlmObservability: Send + Sync + std::fmt::Debug {
    /// Opens a trace for a run (idempotent per run id).
    async fn trace_start(&self, run_id: &str, meta: Extra) -> Result<Trace, ProviderError>;
    /// Closes a trace (idempotent).
    async fn trace_stop(&self, trace_id: &str, meta: Extra) -> Result<Trace, ProviderError>;
    /// Records an evaluation score.
    async fn log_eval(&self, name: &str, score: f64, meta: Extra) -> Result<EvalRecord, ProviderError>;
    /// Links a run to a trace (idempotent).
    async fn link(&self, run_id: &str, trace_id: &str) -> Result<TraceLink, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}
