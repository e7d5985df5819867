#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The protocol kit can fail: a correct fake passes, and each deliberately broken fake fails
//! exactly the checks it breaks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use admit_core::{
    ClosureRequirements, DigestAlgorithm, ExecutionResult, ExecutionStatus, FactsBundle, InMemoryPlanStore, PlanBundle,
    PlanIntent, PlanRecord, PlanRef, PlanResult, PlanStep, PlanStore, PredicateDescriptor, Provider,
    ProviderDescriptor, ProviderError, ProviderPhase, SnapshotRequest, SnapshotResult, Timestamp, Verdict,
    VerifyRequest, VerifyResult, Witness, async_trait, verify_artifact_value,
};
use conformance::{CheckStatus, PROTOCOL_CHECKS, ProtocolHarness, run_protocol_kit};
use serde_json::{Value, json};

const SCOPE: &str = "test.fake";

#[derive(Debug, Default, Clone, Copy)]
struct Breakage {
    unstable_describe: bool,
    bad_predicate_id: bool,
    nondeterministic: bool,
    hashes_created_at: bool,
    wrong_phase_when_unsupported: bool,
    executes_anything: bool,
    verifies_anything: bool,
    /// Supports plan, execute and verify (the correct full provider); otherwise read-only.
    full: bool,
}

#[derive(Debug)]
struct Fake {
    breakage: Breakage,
    world: Arc<AtomicU32>,
    calls: AtomicU32,
    plans: InMemoryPlanStore,
    sink: Mutex<Vec<String>>,
}

impl Fake {
    fn facts(&self, created_at: &str) -> Vec<Value> {
        let mut facts = vec![json!({"item": "a", "version": self.world.load(Ordering::SeqCst)})];
        if self.breakage.nondeterministic {
            facts.push(json!({"nonce": self.calls.fetch_add(1, Ordering::SeqCst)}));
        }
        if self.breakage.hashes_created_at {
            facts.push(json!({"taken": created_at}));
        }
        facts
    }

    fn live(&self) -> BTreeMap<String, admit_core::Digest> {
        let facts = self.facts("2026-01-01T00:00:00Z");
        BTreeMap::from([("world".to_owned(), admit_core::snapshot_hash(&facts, DigestAlgorithm::Blake3).unwrap())])
    }
}

#[async_trait]
impl Provider for Fake {
    fn describe(&self) -> ProviderDescriptor {
        let mut phases = vec![ProviderPhase::Describe, ProviderPhase::Snapshot];
        if self.breakage.full {
            phases.extend([ProviderPhase::Plan, ProviderPhase::Execute, ProviderPhase::Verify]);
        }
        ProviderDescriptor {
            scope_id: SCOPE.into(),
            version: if self.breakage.unstable_describe { 1 + self.calls.fetch_add(1, Ordering::SeqCst) } else { 1 },
            schema_ids: vec!["facts-bundle/test.fake@1".into()],
            supported_phases: phases,
            deterministic: true,
            closure: ClosureRequirements::default(),
            required_approvals: vec![],
            predicates: vec![PredicateDescriptor {
                predicate_id: if self.breakage.bad_predicate_id {
                    "missing".into()
                } else {
                    format!("{SCOPE}/missing@1")
                },
                name: "missing".into(),
                doc: String::new(),
                result_kind: Default::default(),
                emits_findings: true,
                param_schema: None,
                evidence_schema: None,
            }],
        }
    }

    async fn snapshot(&self, request: SnapshotRequest) -> Result<SnapshotResult, ProviderError> {
        let created_at = request.params["created_at"].as_str().unwrap_or("2026-01-01T00:00:00Z").to_owned();
        let bundle = FactsBundle::new(
            "facts-bundle/test.fake@1",
            SCOPE,
            self.facts(&created_at),
            Timestamp::parse(&created_at).unwrap(),
            DigestAlgorithm::Blake3,
        )
        .unwrap();
        Ok(SnapshotResult { facts_bundle: bundle, witness: Witness::new(SCOPE, Verdict::Admissible) })
    }

    async fn plan(&self, intent: PlanIntent) -> Result<PlanResult, ProviderError> {
        if !self.breakage.full {
            let phase =
                if self.breakage.wrong_phase_when_unsupported { ProviderPhase::Describe } else { ProviderPhase::Plan };
            return Err(ProviderError::unsupported(SCOPE, phase));
        }
        let steps =
            vec![PlanStep { step_id: "s1".into(), description: "write".into(), reversible: true, params: json!({}) }];
        let bundle = PlanBundle::new(
            "plan-bundle/test.fake@1",
            &intent,
            steps,
            self.live(),
            Timestamp::now_utc(),
            DigestAlgorithm::Blake3,
        )
        .unwrap();
        self.plans.record(PlanRecord::pending(&bundle, false)).unwrap();
        Ok(PlanResult { plan_bundle: bundle, witness: Witness::new(SCOPE, Verdict::Admissible) })
    }

    async fn execute(&self, plan: PlanRef) -> Result<ExecutionResult, ProviderError> {
        if !self.breakage.full {
            return Err(ProviderError::unsupported(SCOPE, ProviderPhase::Execute));
        }
        if !self.breakage.executes_anything {
            self.plans.claim(&plan, &self.live()).map_err(|e| e.into_provider_error(SCOPE))?;
        }
        self.sink.lock().unwrap().push(plan.plan_hash.to_string());
        Ok(ExecutionResult {
            scope_id: SCOPE.into(),
            plan_hash: plan.plan_hash,
            status: ExecutionStatus::Complete,
            steps_completed: vec!["s1".into()],
            artifact_hashes: vec![],
            witness: Witness::new(SCOPE, Verdict::Admissible),
        })
    }

    async fn verify(&self, request: VerifyRequest) -> Result<VerifyResult, ProviderError> {
        if !self.breakage.full {
            return Err(ProviderError::unsupported(SCOPE, ProviderPhase::Verify));
        }
        let artifact = request.artifact.unwrap_or_default();
        let mut result = verify_artifact_value(&artifact)
            .map_err(|e| ProviderError::invalid_input(SCOPE, ProviderPhase::Verify, e.to_string()))?;
        if self.breakage.verifies_anything {
            result.valid = true;
            result.hash_matches = true;
        }
        Ok(result)
    }
}

struct Harness {
    provider: Arc<Fake>,
}

impl Harness {
    fn new(breakage: Breakage) -> Self {
        let provider = Arc::new(Fake {
            breakage,
            world: Arc::new(AtomicU32::new(0)),
            calls: AtomicU32::new(0),
            plans: InMemoryPlanStore::new(),
            sink: Mutex::new(vec![]),
        });
        Harness { provider }
    }
}

impl ProtocolHarness for Harness {
    fn provider_crate(&self) -> &str {
        "fake"
    }
    fn provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }
    fn snapshot_params(&self) -> Value {
        json!({})
    }
    fn mutate_world(&self) -> bool {
        self.provider.world.fetch_add(1, Ordering::SeqCst);
        true
    }
    fn plan_intent(&self) -> Option<PlanIntent> {
        Some(PlanIntent { scope_id: SCOPE.into(), description: "write".into(), params: json!({}) })
    }
}

async fn failed(breakage: Breakage) -> Vec<String> {
    let harness = Harness::new(breakage);
    let report = run_protocol_kit(&harness).await;
    assert_eq!(report.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), PROTOCOL_CHECKS);
    report.names_with(CheckStatus::Failed).into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn correct_providers_pass() {
    let read_only = run_protocol_kit(&Harness::new(Breakage::default())).await;
    assert!(read_only.pass, "{:?}", read_only.errors);
    assert_eq!(
        read_only.names_with(CheckStatus::NotApplicable),
        ["execute.refuses_unknown_plan", "execute.refuses_stale_plan", "verify.catches_tampering"]
    );
    let full = Harness::new(Breakage { full: true, ..Breakage::default() });
    let report = run_protocol_kit(&full).await;
    assert!(report.pass, "{:?}", report.errors);
    assert_eq!(report.names_with(CheckStatus::NotApplicable), ["phases.unsupported_structured"]);
    assert!(full.provider.sink.lock().unwrap().is_empty(), "the kit's refused plans wrote nothing");
}

#[tokio::test]
async fn each_broken_provider_fails_exactly_what_it_breaks() {
    let full = Breakage { full: true, ..Breakage::default() };
    let cases: [(&str, Breakage, &[&str]); 7] = [
        ("unstable describe", Breakage { unstable_describe: true, ..Breakage::default() }, &["describe.stable"]),
        (
            "malformed predicate id",
            Breakage { bad_predicate_id: true, ..Breakage::default() },
            &["describe.predicate_ids"],
        ),
        (
            "nondeterministic snapshot",
            Breakage { nondeterministic: true, ..Breakage::default() },
            &["snapshot.deterministic", "snapshot.created_at_not_hashed"],
        ),
        (
            "created_at hashed",
            Breakage { hashes_created_at: true, ..Breakage::default() },
            &["snapshot.created_at_not_hashed"],
        ),
        (
            "unsupported phase reported under another phase",
            Breakage { wrong_phase_when_unsupported: true, ..Breakage::default() },
            &["phases.unsupported_structured"],
        ),
        (
            "execute runs any plan",
            Breakage { executes_anything: true, ..full },
            &["execute.refuses_unknown_plan", "execute.refuses_stale_plan"],
        ),
        ("verify accepts tampering", Breakage { verifies_anything: true, ..full }, &["verify.catches_tampering"]),
    ];
    for (what, breakage, expected) in cases {
        assert_eq!(failed(breakage).await, expected, "{what}");
    }
}
