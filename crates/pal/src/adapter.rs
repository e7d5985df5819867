//! `AdapterHandle`: a built adapter of one capability, and JSON dispatch of its operations.

use std::fmt;
use std::sync::Arc;

use admit_core::{ErrorCode, ProviderError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ads::AdsProvider;
use crate::capability::{Capability, OpSpec};
use crate::cdp::CdpProvider;
use crate::experiments::ExperimentsProvider;
use crate::health::HealthReport;
use crate::inventory::InventoryProvider;
use crate::lifecycle::LifecycleProvider;
use crate::llm::{LlmGateway, LlmObservability};
use crate::vectorstore::VectorStore;

/// An adapter, typed by its capability.
#[derive(Clone, Debug)]
pub enum AdapterHandle {
    /// Ads.
    Ads(Arc<dyn AdsProvider>),
    /// CDP.
    Cdp(Arc<dyn CdpProvider>),
    /// Experiments.
    Experiments(Arc<dyn ExperimentsProvider>),
    /// Inventory.
    Inventory(Arc<dyn InventoryProvider>),
    /// Lifecycle.
    Lifecycle(Arc<dyn LifecycleProvider>),
    /// LLM gateway.
    LlmGateway(Arc<dyn LlmGateway>),
    /// LLM observability.
    LlmObservability(Arc<dyn LlmObservability>),
    /// Vector store.
    Vectorstore(Arc<dyn VectorStore>),
}

impl AdapterHandle {
    /// The capability this adapter serves.
    pub fn capability(&self) -> Capability {
        match self {
            AdapterHandle::Ads(_) => Capability::Ads,
            AdapterHandle::Cdp(_) => Capability::Cdp,
            AdapterHandle::Experiments(_) => Capability::Experiments,
            AdapterHandle::Inventory(_) => Capability::Inventory,
            AdapterHandle::Lifecycle(_) => Capability::Lifecycle,
            AdapterHandle::LlmGateway(_) => Capability::LlmGateway,
            AdapterHandle::LlmObservability(_) => Capability::LlmObservability,
            AdapterHandle::Vectorstore(_) => Capability::Vectorstore,
        }
    }

    /// The adapter's health.
    pub async fn health(&self) -> HealthReport {
        match self {
            AdapterHandle::Ads(a) => a.health().await,
            AdapterHandle::Cdp(a) => a.health().await,
            AdapterHandle::Experiments(a) => a.health().await,
            AdapterHandle::Inventory(a) => a.health().await,
            AdapterHandle::Lifecycle(a) => a.health().await,
            AdapterHandle::LlmGateway(a) => a.health().await,
            AdapterHandle::LlmObservability(a) => a.health().await,
            AdapterHandle::Vectorstore(a) => a.health().await,
        }
    }
}

/// Which adapter a call goes to, for error scopes and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallTarget {
    /// The capability.
    pub capability: Capability,
    /// The adapter's name, e.g. `mock_ads`.
    pub adapter: String,
}

impl CallTarget {
    /// A target.
    pub fn new(capability: Capability, adapter: impl Into<String>) -> Self {
        CallTarget { capability, adapter: adapter.into() }
    }

    /// The scope errors carry: `<capability>/<adapter>`.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.capability, self.adapter)
    }
}

impl fmt::Display for CallTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scope())
    }
}

fn arg<T: DeserializeOwned>(input: &Value, name: &str, target: &CallTarget, op: &OpSpec) -> Result<T, ProviderError> {
    let value = input.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value)
        .map_err(|e| ProviderError::invalid_input(target.scope(), op.phase, format!("{}: input.{name}: {e}", op.name)))
}

fn out<T: Serialize>(value: T, target: &CallTarget, op: &OpSpec) -> Result<Value, ProviderError> {
    serde_json::to_value(value).map_err(|e| {
        ProviderError::new(target.scope(), op.phase, format!("{}: cannot encode the result: {e}", op.name))
            .with_code(ErrorCode::Internal)
    })
}

/// Calls `op` on `adapter` with a JSON object of named arguments, returning JSON.
///
/// The argument names are the trait method's parameter names, e.g. experiments `get_flag`
/// takes `{"key": "…", "default": …}` and inventory `add` takes
/// `{"items": […], "feature": "ratings", "dry_run": false}`.
pub async fn invoke(
    adapter: &AdapterHandle,
    target: &CallTarget,
    op: &OpSpec,
    input: &Value,
) -> Result<Value, ProviderError> {
    macro_rules! a {
        ($name:literal) => {
            arg(input, $name, target, op)?
        };
    }
    macro_rules! o {
        ($e:expr) => {
            out($e.await?, target, op)
        };
    }
    if op.name == "health" {
        return out(adapter.health().await, target, op);
    }
    match (adapter, op.name) {
        (AdapterHandle::Inventory(a), "name") => out(a.name(), target, op),
        (AdapterHandle::Inventory(a), "label") => out(a.label(), target, op),
        (AdapterHandle::Inventory(a), "features") => out(a.features(), target, op),
        (AdapterHandle::Inventory(a), "capabilities") => out(a.capabilities(), target, op),
        (AdapterHandle::Inventory(a), "build_index") => o!(a.build_index(a!("feature"))),
        (AdapterHandle::Inventory(a), "add") => {
            o!(a.add(a!("items"), a!("feature"), arg::<Option<bool>>(input, "dry_run", target, op)?.unwrap_or(false)))
        }
        (AdapterHandle::Inventory(a), "remove") => {
            o!(a.remove(
                a!("items"),
                a!("feature"),
                arg::<Option<bool>>(input, "dry_run", target, op)?.unwrap_or(false)
            ))
        }
        (AdapterHandle::Inventory(a), "activities") => o!(a.activities()),
        (AdapterHandle::Ads(a), "create_campaign") => o!(a.create_campaign(a!("plan"))),
        (AdapterHandle::Ads(a), "report") => {
            o!(a.report(arg::<Option<_>>(input, "query", target, op)?.unwrap_or_default()))
        }
        (AdapterHandle::Ads(a), "pause") => o!(a.pause(&arg::<String>(input, "campaign_id", target, op)?)),
        (AdapterHandle::Lifecycle(a), "send") => o!(a.send(a!("message"))),
        (AdapterHandle::Lifecycle(a), "schedule") => {
            o!(a.schedule(a!("batch"), arg::<Option<_>>(input, "policy", target, op)?.unwrap_or_default()))
        }
        (AdapterHandle::Lifecycle(a), "preview") => o!(a.preview(a!("message"))),
        (AdapterHandle::Experiments(a), "set_flag") => {
            o!(a.set_flag(&arg::<String>(input, "key", target, op)?, a!("value")))
        }
        (AdapterHandle::Experiments(a), "get_flag") => {
            o!(a.get_flag(&arg::<String>(input, "key", target, op)?, a!("default")))
        }
        (AdapterHandle::Experiments(a), "ramp") => o!(a.ramp(&arg::<String>(input, "key", target, op)?, a!("stage"))),
        (AdapterHandle::Experiments(a), "start_ab") => {
            o!(a.start_ab(&arg::<String>(input, "key", target, op)?, a!("variants")))
        }
        (AdapterHandle::Experiments(a), "start_bandit") => {
            o!(a.start_bandit(&arg::<String>(input, "key", target, op)?, a!("arms")))
        }
        (AdapterHandle::Experiments(a), "assign") => {
            o!(a.assign(&arg::<String>(input, "key", target, op)?, &arg::<String>(input, "unit_id", target, op)?))
        }
        (AdapterHandle::Experiments(a), "report") => o!(a.report(&arg::<String>(input, "key", target, op)?)),
        (AdapterHandle::Cdp(a), "upsert_profile") => o!(a.upsert_profile(a!("profile"))),
        (AdapterHandle::Cdp(a), "ingest_event") => o!(a.ingest_event(a!("event"))),
        (AdapterHandle::Cdp(a), "sync_audience") => o!(a.sync_audience(a!("audience"))),
        (AdapterHandle::Cdp(a), "get_profile") => o!(a.get_profile(&arg::<String>(input, "id", target, op)?)),
        (AdapterHandle::Vectorstore(a), "index") => o!(a.index(a!("docs"))),
        (AdapterHandle::Vectorstore(a), "search") => {
            o!(a.search(&arg::<String>(input, "query", target, op)?, a!("k")))
        }
        (AdapterHandle::Vectorstore(a), "swap") => o!(a.swap(&arg::<String>(input, "target", target, op)?)),
        (AdapterHandle::LlmGateway(a), "models") => o!(a.models()),
        (AdapterHandle::LlmGateway(a), "route") => o!(a.route(
            &arg::<String>(input, "prompt", target, op)?,
            &arg::<Option<Vec<String>>>(input, "tags", target, op)?.unwrap_or_default()
        )),
        (AdapterHandle::LlmObservability(a), "trace_start") => o!(a.trace_start(
            &arg::<String>(input, "run_id", target, op)?,
            arg::<Option<_>>(input, "meta", target, op)?.unwrap_or_default()
        )),
        (AdapterHandle::LlmObservability(a), "trace_stop") => o!(a.trace_stop(
            &arg::<String>(input, "trace_id", target, op)?,
            arg::<Option<_>>(input, "meta", target, op)?.unwrap_or_default()
        )),
        (AdapterHandle::LlmObservability(a), "log_eval") => o!(a.log_eval(
            &arg::<String>(input, "name", target, op)?,
            a!("score"),
            arg::<Option<_>>(input, "meta", target, op)?.unwrap_or_default()
        )),
        (AdapterHandle::LlmObservability(a), "link") => {
            o!(a.link(&arg::<String>(input, "run_id", target, op)?, &arg::<String>(input, "trace_id", target, op)?))
        }
        (adapter, name) => Err(ProviderError::invalid_input(
            target.scope(),
            op.phase,
            format!("operation `{name}` does not belong to capability `{}`", adapter.capability()),
        )),
    }
}
