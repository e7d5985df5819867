//! JSON Schemas of the protocol's artifacts, as published under `docs/schemas/`.

use serde_json::Value;

use crate::error::ProviderError;
use crate::kernel::Ruleset;
use crate::types::{
    ExecutionResult, FactsBundle, PlanBundle, PlanRef, PlanResult, ProviderDescriptor, SnapshotResult, VerifyRequest,
    VerifyResult, Witness,
};

/// `(file stem, schema)` for every published artifact type, sorted by file stem.
pub fn artifact_schemas() -> Vec<(&'static str, Value)> {
    fn schema<T: schemars::JsonSchema>() -> Value {
        schemars::schema_for!(T).to_value()
    }
    vec![
        ("execution_result", schema::<ExecutionResult>()),
        ("facts_bundle", schema::<FactsBundle>()),
        ("plan_bundle", schema::<PlanBundle>()),
        ("plan_ref", schema::<PlanRef>()),
        ("plan_result", schema::<PlanResult>()),
        ("provider_descriptor", schema::<ProviderDescriptor>()),
        ("provider_error", schema::<ProviderError>()),
        ("ruleset", schema::<Ruleset>()),
        ("snapshot_result", schema::<SnapshotResult>()),
        ("verify_request", schema::<VerifyRequest>()),
        ("verify_result", schema::<VerifyResult>()),
        ("witness", schema::<Witness>()),
    ]
}
