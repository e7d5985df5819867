//! `mock_llm_gateway` (a fixed three-model catalog and tag-based routing) and
//! `mock_llm_observability` (traces, evaluations and links in memory).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use admit_core::ProviderError;
use pal::llm::{EvalRecord, LlmGateway, LlmObservability, ModelInfo, RouteMetrics, RouteResult, Trace, TraceLink};
use pal::{Capability, Extra, HealthReport, async_trait};

use crate::faults::{AdapterSettings, FaultInjector};

/// The gateway's catalog, in order: `mock/small`, `mock/medium`, `mock/large`.
pub fn catalog() -> Vec<ModelInfo> {
    let model = |id: &str, cost: f64, latency_ms: f64, quality: f64, safety: f64| ModelInfo {
        id: id.to_owned(),
        cost,
        latency_ms,
        quality,
        safety,
    };
    vec![
        model("mock/small", 1.0, 10.0, 0.8, 0.99),
        model("mock/medium", 2.0, 15.0, 0.9, 0.98),
        model("mock/large", 4.0, 30.0, 0.95, 0.98),
    ]
}

/// `mock_llm_gateway`: `quality` in the tags routes to `mock/large`, else `balanced` to
/// `mock/medium`, else `mock/small`. The output is `"[<model>] <prompt>"`.
#[derive(Debug)]
pub struct MockLlmGateway {
    faults: FaultInjector,
}

impl Default for MockLlmGateway {
    fn default() -> Self {
        MockLlmGateway::new(AdapterSettings::default())
    }
}

impl MockLlmGateway {
    /// The adapter name.
    pub const NAME: &'static str = "mock_llm_gateway";

    /// A mock with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockLlmGateway {
            faults: FaultInjector::new(Capability::LlmGateway, Self::NAME, settings.faults, settings.token),
        }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }
}

#[async_trait]
impl LlmGateway for MockLlmGateway {
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.faults.before("models").await?;
        Ok(catalog())
    }

    async fn route(&self, prompt: &str, tags: &[String]) -> Result<RouteResult, ProviderError> {
        const OP: &str = "route";
        self.faults.before(OP).await?;
        let has = |tag: &str| tags.iter().any(|t| t == tag);
        let id = if has("quality") {
            "mock/large"
        } else if has("balanced") {
            "mock/medium"
        } else {
            "mock/small"
        };
        let model = catalog()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| self.faults.error(OP, admit_core::ErrorCode::Internal, "catalog lost a model"))?;
        Ok(RouteResult {
            model: model.id.clone(),
            output: format!("[{}] {prompt}", model.id),
            metrics: RouteMetrics {
                latency_ms: model.latency_ms as u64,
                cost: model.cost,
                tokens: Some(prompt.split_whitespace().count() as u64),
            },
            ..RouteResult::default()
        })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}

#[derive(Debug, Default)]
struct ObsState {
    traces: BTreeMap<String, Trace>,
    evals: Vec<(EvalRecord, Extra)>,
    links: BTreeSet<(String, String)>,
    writes: u64,
}

/// `mock_llm_observability`: trace ids are `trace_<run_id>`, evaluation ids `eval_<n>`.
#[derive(Debug)]
pub struct MockLlmObservability {
    faults: FaultInjector,
    state: Mutex<ObsState>,
}

impl Default for MockLlmObservability {
    fn default() -> Self {
        MockLlmObservability::new(AdapterSettings::default())
    }
}

impl MockLlmObservability {
    /// The adapter name.
    pub const NAME: &'static str = "mock_llm_observability";

    /// A mock with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockLlmObservability {
            faults: FaultInjector::new(Capability::LlmObservability, Self::NAME, settings.faults, settings.token),
            state: Mutex::new(ObsState::default()),
        }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// A trace by id.
    pub fn trace(&self, trace_id: &str) -> Option<Trace> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).traces.get(trace_id).cloned()
    }

    /// Evaluations logged, in order.
    pub fn evals(&self) -> Vec<EvalRecord> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).evals.iter().map(|(r, _)| r.clone()).collect()
    }

    /// Calls that changed stored state: a trace opened, a trace closed or given new meta, an
    /// evaluation logged, a new link. A repeat that changes nothing is not counted.
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).writes
    }

    /// Run ↔ trace links, sorted.
    pub fn links(&self) -> Vec<TraceLink> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .links
            .iter()
            .map(|(run_id, trace_id)| TraceLink { run_id: run_id.clone(), trace_id: trace_id.clone() })
            .collect()
    }
}

#[async_trait]
impl LlmObservability for MockLlmObservability {
    async fn trace_start(&self, run_id: &str, meta: Extra) -> Result<Trace, ProviderError> {
        const OP: &str = "trace_start";
        self.faults.before(OP).await?;
        if run_id.is_empty() {
            return Err(self.faults.invalid(OP, "run_id is empty"));
        }
        let trace_id = format!("trace_{run_id}");
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(trace) = state.traces.get(&trace_id) {
            return Ok(trace.clone());
        }
        let trace =
            Trace { trace_id: trace_id.clone(), run_id: Some(run_id.to_owned()), status: "open".to_owned(), meta };
        state.traces.insert(trace_id, trace.clone());
        state.writes += 1;
        Ok(trace)
    }

    async fn trace_stop(&self, trace_id: &str, meta: Extra) -> Result<Trace, ProviderError> {
        const OP: &str = "trace_stop";
        self.faults.before(OP).await?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let trace = state
            .traces
            .get_mut(trace_id)
            .ok_or_else(|| self.faults.not_found(OP, format!("no trace `{trace_id}`")))?;
        let before = trace.clone();
        trace.status = "closed".to_owned();
        trace.meta.extend(meta);
        let trace = trace.clone();
        if trace != before {
            state.writes += 1;
        }
        Ok(trace)
    }

    async fn log_eval(&self, name: &str, score: f64, meta: Extra) -> Result<EvalRecord, ProviderError> {
        const OP: &str = "log_eval";
        self.faults.before(OP).await?;
        if !score.is_finite() {
            return Err(self.faults.invalid(OP, format!("score of `{name}` is not a finite number")));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let record = EvalRecord { id: format!("eval_{}", state.evals.len() + 1), name: name.to_owned(), score };
        state.evals.push((record.clone(), meta));
        state.writes += 1;
        Ok(record)
    }

    async fn link(&self, run_id: &str, trace_id: &str) -> Result<TraceLink, ProviderError> {
        self.faults.before("link").await?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.links.insert((run_id.to_owned(), trace_id.to_owned())) {
            state.writes += 1;
        }
        Ok(TraceLink { run_id: run_id.to_owned(), trace_id: trace_id.to_owned() })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}
