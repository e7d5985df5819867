//! The capabilities, their operations, and what each operation promises about repetition.

use std::fmt;
use std::str::FromStr;

use admit_core::ProviderPhase;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use Idempotency::{Always, Never, WhenKeyed};
use ProviderPhase::{Describe, Execute, Snapshot};

const fn op(name: &'static str, phase: ProviderPhase, idempotency: Idempotency) -> OpSpec {
    OpSpec { name, phase, idempotency }
}

const INVENTORY_OPS: &[OpSpec] = &[
    op("name", Describe, Always),
    op("label", Describe, Always),
    op("features", Describe, Always),
    op("capabilities", Describe, Always),
    op("build_index", Snapshot, Always),
    // A history add re-sent after an ambiguous failure duplicates plays.
    op("add", Execute, Never),
    op("remove", Execute, Always),
    op("health", Describe, Always),
    op("activities", Snapshot, Always),
];
const ADS_OPS: &[OpSpec] = &[
    op("create_campaign", Execute, WhenKeyed("plan.id")),
    op("report", Snapshot, Always),
    op("pause", Execute, Always),
    op("health", Describe, Always),
];
const LIFECYCLE_OPS: &[OpSpec] = &[
    op("send", Execute, WhenKeyed("message.idempotency_key")),
    op("schedule", Execute, Never),
    op("preview", Snapshot, Always),
    op("health", Describe, Always),
];
const EXPERIMENTS_OPS: &[OpSpec] = &[
    op("set_flag", Execute, Always),
    op("get_flag", Snapshot, Always),
    op("ramp", Execute, Always),
    op("start_ab", Execute, Always),
    op("start_bandit", Execute, Always),
    op("assign", Execute, Always),
    op("report", Snapshot, Always),
    op("health", Describe, Always),
];
const CDP_OPS: &[OpSpec] = &[
    op("upsert_profile", Execute, Always),
    op("ingest_event", Execute, WhenKeyed("event.event_id")),
    op("sync_audience", Execute, Always),
    op("get_profile", Snapshot, Always),
    op("health", Describe, Always),
];
const VECTORSTORE_OPS: &[OpSpec] = &[
    op("index", Execute, Always),
    op("search", Snapshot, Always),
    op("swap", Execute, Always),
    op("health", Describe, Always),
];
const LLM_GATEWAY_OPS: &[OpSpec] =
    &[op("models", Describe, Always), op("route", Execute, Always), op("health", Describe, Always)];
const LLM_OBSERVABILITY_OPS: &[OpSpec] = &[
    op("trace_start", Execute, Always),
    op("trace_stop", Execute, Always),
    op("log_eval", Execute, Never),
    op("link", Execute, Always),
    op("health", Describe, Always),
];

/// A capability: one trait, one adapter chosen per capability at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Ads platforms.
    Ads,
    /// Customer data platforms.
    Cdp,
    /// Flags and experiments.
    Experiments,
    /// Media inventory sync (seed 000).
    Inventory,
    /// Lifecycle messaging.
    Lifecycle,
    /// LLM gateways.
    LlmGateway,
    /// LLM observability.
    LlmObservability,
    /// Vector stores.
    Vectorstore,
}

impl Capability {
    /// Every capability, sorted by name.
    pub const ALL: [Capability; 8] = [
        Capability::Ads,
        Capability::Cdp,
        Capability::Experiments,
        Capability::Inventory,
        Capability::Lifecycle,
        Capability::LlmGateway,
        Capability::LlmObservability,
        Capability::Vectorstore,
    ];

    /// The config and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Ads => "ads",
            Capability::Cdp => "cdp",
            Capability::Experiments => "experiments",
            Capability::Inventory => "inventory",
            Capability::Lifecycle => "lifecycle",
            Capability::LlmGateway => "llm_gateway",
            Capability::LlmObservability => "llm_observability",
            Capability::Vectorstore => "vectorstore",
        }
    }

    /// The operations of this capability (every capability also has `health`).
    pub fn ops(self) -> &'static [OpSpec] {
        match self {
            Capability::Inventory => INVENTORY_OPS,
            Capability::Ads => ADS_OPS,
            Capability::Lifecycle => LIFECYCLE_OPS,
            Capability::Experiments => EXPERIMENTS_OPS,
            Capability::Cdp => CDP_OPS,
            Capability::Vectorstore => VECTORSTORE_OPS,
            Capability::LlmGateway => LLM_GATEWAY_OPS,
            Capability::LlmObservability => LLM_OBSERVABILITY_OPS,
        }
    }

    /// The operation named `name`, or an error listing the known ones.
    pub fn op(self, name: &str) -> Result<&'static OpSpec, String> {
        self.ops().iter().find(|op| op.name == name).ok_or_else(|| {
            format!(
                "capability `{self}` has no operation `{name}`; known: {}",
                self.ops().iter().map(|op| op.name).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!(
                "unknown capability `{s}`; known: {}",
                Capability::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// Whether repeating an operation is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating has no further effect.
    Always,
    /// Repeating may duplicate an effect: never re-sent after an ambiguous failure.
    Never,
    /// Idempotent when the input carries a non-null value at this dotted path.
    WhenKeyed(&'static str),
}

/// One operation of a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    /// The method name.
    pub name: &'static str,
    /// The protocol phase errors are reported under (reads: snapshot, writes: execute).
    pub phase: ProviderPhase,
    /// What repetition does.
    pub idempotency: Idempotency,
}

impl OpSpec {
    /// Whether a call with this JSON input may be repeated safely.
    pub fn is_idempotent_for(&self, input: &Value) -> bool {
        match self.idempotency {
            Idempotency::Always => true,
            Idempotency::Never => false,
            Idempotency::WhenKeyed(path) => {
                path.split('.').try_fold(input, |value, key| value.get(key)).is_some_and(|v| !v.is_null())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_parses_and_lists_health() {
        for capability in Capability::ALL {
            assert_eq!(capability.as_str().parse::<Capability>().unwrap(), capability);
            assert!(capability.op("health").is_ok());
        }
        let err = "adz".parse::<Capability>().unwrap_err();
        assert!(err.contains("ads") && err.contains("vectorstore"), "{err}");
        assert!(Capability::Ads.op("launch").unwrap_err().contains("create_campaign"));
    }

    #[test]
    fn keyed_idempotency_reads_the_input() {
        let send = Capability::Lifecycle.op("send").unwrap();
        assert!(!send.is_idempotent_for(&serde_json::json!({"message": {"to": "u"}})));
        assert!(send.is_idempotent_for(&serde_json::json!({"message": {"to": "u", "idempotency_key": "k"}})));
        assert!(!Capability::Inventory.op("add").unwrap().is_idempotent_for(&serde_json::json!({})));
    }
}
