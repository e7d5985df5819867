//! The protocol kit: what every admit provider (`ingest.dir`, …) must do.
//!
//! Checks: `describe.stable`, `describe.predicate_ids`, `snapshot.deterministic`,
//! `snapshot.created_at_not_hashed`, `snapshot.verifiable`, `phases.unsupported_structured`,
//! `execute.refuses_unknown_plan`, `execute.refuses_stale_plan`, `verify.catches_tampering`.

use std::sync::Arc;

use admit_core::{
    DigestAlgorithm, ErrorClass, ErrorCode, PlanIntent, PlanRef, Provider, ProviderError, ProviderPhase,
    SnapshotRequest, SnapshotResult, VerifyRequest, provider_pack_hash, verify_artifact_value,
};
use serde_json::Value;

use crate::report::{Checks, Kit, KitReport, ensure};

/// Check names of the protocol kit, in order.
pub const PROTOCOL_CHECKS: [&str; 9] = [
    "describe.stable",
    "describe.predicate_ids",
    "snapshot.deterministic",
    "snapshot.created_at_not_hashed",
    "snapshot.verifiable",
    "phases.unsupported_structured",
    "execute.refuses_unknown_plan",
    "execute.refuses_stale_plan",
    "verify.catches_tampering",
];

/// What the kit needs from a provider crate to test its admit provider.
pub trait ProtocolHarness: Send + Sync {
    /// The provider crate, e.g. `providers-ingest-dir`.
    fn provider_crate(&self) -> &str;
    /// The provider under test.
    fn provider(&self) -> Arc<dyn Provider>;
    /// Snapshot parameters for a world the harness controls (without `created_at`).
    fn snapshot_params(&self) -> Value;
    /// Changes that world so the next snapshot differs; `false` when it cannot.
    fn mutate_world(&self) -> bool;
    /// An intent to plan, for providers that support plan and execute.
    fn plan_intent(&self) -> Option<PlanIntent> {
        None
    }
}

async fn snapshot(
    provider: &dyn Provider,
    harness: &dyn ProtocolHarness,
    created_at: &str,
) -> Result<SnapshotResult, String> {
    let mut params = harness.snapshot_params();
    if let Some(map) = params.as_object_mut() {
        map.insert("created_at".to_owned(), Value::String(created_at.to_owned()));
    }
    provider
        .snapshot(SnapshotRequest { scope_id: provider.scope_id(), params })
        .await
        .map_err(|e| format!("snapshot failed: {e}"))
}

fn expect_refusal(
    result: Result<admit_core::ExecutionResult, ProviderError>,
    scope: &str,
    code: ErrorCode,
) -> Result<(), String> {
    match result {
        Ok(_) => Err(format!("execute accepted a plan it must refuse ({code:?})")),
        Err(e) => {
            ensure(e.phase == ProviderPhase::Execute && e.scope.as_str() == scope && e.code == Some(code), || {
                format!("expected a {code:?} error in phase execute for scope `{scope}`, got {e:?}")
            })
        }
    }
}

/// Runs the protocol kit.
pub async fn run_protocol_kit(harness: &dyn ProtocolHarness) -> KitReport {
    let provider = harness.provider();
    let descriptor = provider.describe();
    let scope = descriptor.scope_id.as_str().to_owned();
    let supports = |phase| descriptor.supported_phases.contains(&phase);
    let mut checks = Checks::new();

    checks.record("describe.stable", {
        let again = provider.describe();
        let hashes = |d| DigestAlgorithm::ALL.map(|alg| provider_pack_hash(d, alg).map_err(|e| e.to_string()));
        let (first, second) = (hashes(&descriptor), hashes(&again));
        ensure(!scope.is_empty(), || "scope_id is empty".to_owned())
            .and_then(|()| ensure(again == descriptor, || "two describe() calls differ".to_owned()))
            .and_then(|()| {
                ensure(first == second && first.iter().all(Result::is_ok), || {
                    format!("pack hashes unstable or failing: {first:?} vs {second:?}")
                })
            })
            .and_then(|()| ensure(supports(ProviderPhase::Describe), || "supported_phases lacks describe".to_owned()))
    });

    checks.record("describe.predicate_ids", {
        let bad: Vec<String> = descriptor
            .predicates
            .iter()
            .filter(|p| {
                let expected_prefix = format!("{scope}/{}@", p.name);
                p.predicate_id.strip_prefix(&expected_prefix).is_none_or(|major| major.parse::<u32>().is_err())
            })
            .map(|p| format!("`{}` (name `{}`)", p.predicate_id, p.name))
            .collect();
        ensure(bad.is_empty(), || format!("predicate ids must be `<scope_id>/<name>@<major>`: {}", bad.join(", ")))
    });

    let first = snapshot(provider.as_ref(), harness, "2026-01-01T00:00:00Z").await;
    let second = snapshot(provider.as_ref(), harness, "2026-01-01T00:00:00Z").await;
    let later = snapshot(provider.as_ref(), harness, "2031-07-15T09:30:00Z").await;
    checks.record(
        "snapshot.deterministic",
        match (&first, &second) {
            (Ok(a), Ok(b)) => ensure(a.facts_bundle == b.facts_bundle, || {
                format!(
                    "two snapshots of an unchanged world differ: {} vs {}",
                    a.facts_bundle.snapshot_hash, b.facts_bundle.snapshot_hash
                )
            }),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        },
    );
    checks.record(
        "snapshot.created_at_not_hashed",
        match (&first, &later) {
            (Ok(a), Ok(b)) => ensure(a.facts_bundle.created_at != b.facts_bundle.created_at, || {
                "params.created_at was not recorded as created_at".to_owned()
            })
            .and_then(|()| {
                ensure(a.facts_bundle.snapshot_hash == b.facts_bundle.snapshot_hash, || {
                    "created_at changed the snapshot hash".to_owned()
                })
            }),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        },
    );
    checks.record(
        "snapshot.verifiable",
        match &first {
            Ok(result) => serde_json::to_value(result)
                .map_err(|e| e.to_string())
                .and_then(|value| verify_artifact_value(&value).map_err(|e| e.to_string()))
                .and_then(|verified| {
                    ensure(verified.valid, || {
                        format!("its own snapshot does not verify: {:?}", verified.witness.findings)
                    })
                }),
            Err(e) => Err(e.clone()),
        },
    );

    let unsupported: Vec<ProviderPhase> = [ProviderPhase::Plan, ProviderPhase::Execute, ProviderPhase::Verify]
        .into_iter()
        .filter(|p| !supports(*p))
        .collect();
    if unsupported.is_empty() {
        checks.not_applicable("phases.unsupported_structured", "the provider supports every phase");
    } else {
        let mut problems = Vec::new();
        for phase in unsupported {
            let result = match phase {
                ProviderPhase::Plan => provider
                    .plan(PlanIntent {
                        scope_id: scope.as_str().into(),
                        description: "conformance".into(),
                        params: Value::Null,
                    })
                    .await
                    .err(),
                ProviderPhase::Execute => provider.execute(unknown_plan()).await.err(),
                _ => provider
                    .verify(VerifyRequest {
                        artifact_hash: DigestAlgorithm::Blake3.digest(b"conformance"),
                        schema_id: String::new(),
                        scope_id: scope.as_str().into(),
                        artifact: None,
                    })
                    .await
                    .err(),
            };
            match result {
                Some(e) if e.class == ErrorClass::Unsupported && e.phase == phase && e.scope.as_str() == scope => {}
                Some(e) => problems.push(format!("{phase}: error lacks class unsupported / phase / scope: {e:?}")),
                None => problems.push(format!("{phase}: not declared but succeeded")),
            }
        }
        checks.record("phases.unsupported_structured", ensure(problems.is_empty(), || problems.join("; ")));
    }

    if supports(ProviderPhase::Execute) {
        let refusal = provider.execute(unknown_plan()).await;
        checks.record("execute.refuses_unknown_plan", expect_refusal(refusal, &scope, ErrorCode::PlanUnknown));
    } else {
        checks.not_applicable("execute.refuses_unknown_plan", "the provider does not support execute");
    }

    match (supports(ProviderPhase::Plan) && supports(ProviderPhase::Execute), harness.plan_intent()) {
        (false, _) => {
            checks.not_applicable("execute.refuses_stale_plan", "the provider does not support plan and execute")
        }
        (true, None) => checks.record("execute.refuses_stale_plan", Err("the harness gives no plan intent".to_owned())),
        (true, Some(intent)) => {
            let outcome = async {
                let plan = provider.plan(intent).await.map_err(|e| format!("plan failed: {e}"))?;
                ensure(harness.mutate_world(), || "the harness cannot change the world".to_owned())?;
                let plan_ref = PlanRef { plan_hash: plan.plan_bundle.plan_hash, approval_witness_hash: None };
                expect_refusal(provider.execute(plan_ref).await, &scope, ErrorCode::PlanStale)
            }
            .await;
            checks.record("execute.refuses_stale_plan", outcome);
        }
    }

    if supports(ProviderPhase::Verify) {
        let outcome = async {
            let result = first.as_ref().map_err(Clone::clone)?;
            let artifact = serde_json::to_value(result).map_err(|e| e.to_string())?;
            let request = |artifact: Value| VerifyRequest {
                artifact_hash: result.facts_bundle.snapshot_hash,
                schema_id: result.facts_bundle.schema_id.clone(),
                scope_id: result.facts_bundle.scope_id.clone(),
                artifact: Some(artifact),
            };
            let good = provider.verify(request(artifact.clone())).await.map_err(|e| format!("verify failed: {e}"))?;
            ensure(good.valid, || "verify rejects an untouched artifact".to_owned())?;
            let tampered = tamper(artifact).ok_or("the snapshot has no fact to tamper with")?;
            let bad = provider.verify(request(tampered)).await;
            match bad {
                Ok(result) => {
                    ensure(!result.valid && !result.hash_matches, || "verify accepts a tampered artifact".to_owned())
                }
                Err(e) => {
                    ensure(e.phase == ProviderPhase::Verify, || format!("verify errored outside its phase: {e:?}"))
                }
            }
        }
        .await;
        checks.record("verify.catches_tampering", outcome);
    } else {
        checks.not_applicable("verify.catches_tampering", "the provider does not support verify");
    }

    checks.into_report(Kit::Protocol, harness.provider_crate(), "protocol", &scope)
}

fn unknown_plan() -> PlanRef {
    PlanRef {
        plan_hash: DigestAlgorithm::Blake3.digest(b"conformance: a plan nobody made"),
        approval_witness_hash: None,
    }
}

/// The artifact with its first fact altered (a field added), or `None` when it has no facts.
fn tamper(mut artifact: Value) -> Option<Value> {
    let fact = artifact.pointer_mut("/facts_bundle/facts/0")?;
    match fact {
        Value::Object(map) => {
            map.insert("tampered".to_owned(), Value::Bool(true));
        }
        other => *other = Value::String("tampered".to_owned()),
    }
    Some(artifact)
}
