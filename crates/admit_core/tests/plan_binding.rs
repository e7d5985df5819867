#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Plan/execute binding (CONTRACTS §1): `execute` refuses — with a structured error and
//! nothing written — a plan hash it did not produce, an unapproved plan where approval is
//! required, a plan already executed, and a stale plan; an approved, fresh plan runs once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use admit_core::{
    ClosureRequirements, Digest, DigestAlgorithm, ErrorClass, ErrorCode, ExecutionResult, ExecutionStatus,
    InMemoryPlanStore, PlanBundle, PlanIntent, PlanRecord, PlanRef, PlanResult, PlanState, PlanStep, PlanStore,
    PredicateEvalContext, Provider, ProviderDescriptor, ProviderError, ProviderPhase, ScopeId, SnapshotRequest,
    SnapshotResult, Timestamp, Verdict, VerifyRequest, Witness, async_trait, snapshot_hash,
};
use serde_json::{Value, json};

const SCOPE: &str = "test.sink";

/// A provider whose "world" is a list of live facts and whose effects are lines appended to a
/// sink. `plan` binds the plan to the live state's hash; `execute` claims before writing.
#[derive(Debug)]
struct SinkProvider {
    requires_approval: bool,
    store: InMemoryPlanStore,
    live: Mutex<Vec<Value>>,
    sink: Mutex<Vec<String>>,
    plans: Mutex<HashMap<Digest, PlanBundle>>,
}

impl SinkProvider {
    fn new(requires_approval: bool) -> Self {
        SinkProvider {
            requires_approval,
            store: InMemoryPlanStore::new(),
            live: Mutex::new(vec![json!({"path": "a.txt", "size": 1})]),
            sink: Mutex::new(Vec::new()),
            plans: Mutex::new(HashMap::new()),
        }
    }

    fn live_snapshots(&self) -> BTreeMap<String, Digest> {
        let live = self.live.lock().unwrap();
        BTreeMap::from([("live".to_owned(), snapshot_hash(&live, DigestAlgorithm::Blake3).unwrap())])
    }

    fn sink(&self) -> Vec<String> {
        self.sink.lock().unwrap().clone()
    }

    async fn plan_writes(&self, writes: &[&str]) -> PlanBundle {
        let intent =
            PlanIntent { scope_id: SCOPE.into(), description: "write lines".into(), params: json!({"writes": writes}) };
        self.plan(intent).await.unwrap().plan_bundle
    }

    fn state(&self, plan_hash: &Digest) -> PlanState {
        self.store.get(plan_hash).unwrap().unwrap().state
    }
}

fn ts() -> Timestamp {
    Timestamp::parse("2026-01-31T12:00:00Z").unwrap()
}

#[async_trait]
impl Provider for SinkProvider {
    fn describe(&self) -> ProviderDescriptor {
        ProviderDescriptor {
            scope_id: SCOPE.into(),
            version: 1,
            schema_ids: vec![format!("plan-bundle/{SCOPE}@1")],
            supported_phases: vec![ProviderPhase::Describe, ProviderPhase::Plan, ProviderPhase::Execute],
            deterministic: true,
            closure: ClosureRequirements::default(),
            required_approvals: if self.requires_approval { vec!["owner".into()] } else { vec![] },
            predicates: vec![],
        }
    }

    async fn snapshot(&self, _: SnapshotRequest) -> Result<SnapshotResult, ProviderError> {
        Err(ProviderError::unsupported(SCOPE, ProviderPhase::Snapshot))
    }

    async fn plan(&self, intent: PlanIntent) -> Result<PlanResult, ProviderError> {
        let writes = intent.params["writes"].as_array().cloned().unwrap_or_default();
        let steps = writes
            .iter()
            .enumerate()
            .map(|(i, w)| PlanStep {
                step_id: format!("step-{i}"),
                description: format!("write {w}"),
                reversible: false,
                params: json!({"line": w}),
            })
            .collect();
        let bundle = PlanBundle::new(
            format!("plan-bundle/{SCOPE}@1"),
            &intent,
            steps,
            self.live_snapshots(),
            ts(),
            DigestAlgorithm::Blake3,
        )
        .map_err(|e| ProviderError::invalid_input(SCOPE, ProviderPhase::Plan, e.to_string()))?;
        // Re-planning an identical plan returns the recorded one unchanged: `record` treats a
        // fresh pending record for an approved or executed hash as a conflict, and must not
        // reset its state either way.
        let store_error = |e: admit_core::PlanStoreError| ProviderError::new(SCOPE, ProviderPhase::Plan, e.to_string());
        if self.store.get(&bundle.plan_hash).map_err(store_error)?.is_none() {
            self.store.record(PlanRecord::pending(&bundle, self.requires_approval)).map_err(store_error)?;
        }
        self.plans.lock().unwrap().insert(bundle.plan_hash, bundle.clone());
        Ok(PlanResult { plan_bundle: bundle, witness: Witness::new(SCOPE, Verdict::Admissible) })
    }

    async fn execute(&self, plan: PlanRef) -> Result<ExecutionResult, ProviderError> {
        // Claim first: a refusal must leave the sink untouched.
        let live = self.live_snapshots();
        self.store.claim(&plan, &live).map_err(|e| e.into_provider_error(SCOPE))?;
        let bundle = self.plans.lock().unwrap().get(&plan.plan_hash).cloned().expect("claimed plan is recorded");
        let mut completed = Vec::new();
        for step in &bundle.steps {
            self.sink.lock().unwrap().push(step.params["line"].as_str().unwrap().to_owned());
            completed.push(step.step_id.clone());
        }
        self.store
            .finish(&plan.plan_hash, ExecutionStatus::Complete)
            .map_err(|e| ProviderError::new(SCOPE, ProviderPhase::Execute, e.to_string()))?;
        Ok(ExecutionResult {
            scope_id: SCOPE.into(),
            plan_hash: plan.plan_hash,
            status: ExecutionStatus::Complete,
            steps_completed: completed,
            artifact_hashes: vec![],
            witness: Witness::new(SCOPE, Verdict::Admissible),
        })
    }
}

fn plan_ref(plan_hash: Digest, approval: Option<Digest>) -> PlanRef {
    PlanRef { plan_hash, approval_witness_hash: approval }
}

fn approval(label: &str) -> Digest {
    DigestAlgorithm::Blake3.digest(label.as_bytes())
}

/// Asserts a structured execute refusal with the given code and no new sink writes.
async fn assert_refused(provider: &SinkProvider, plan: PlanRef, code: ErrorCode) -> ProviderError {
    let before = provider.sink();
    let err = provider.execute(plan).await.expect_err("execute must refuse");
    assert_eq!(err.phase, ProviderPhase::Execute, "{err}");
    assert_eq!(err.scope, ScopeId::from(SCOPE), "{err}");
    assert_eq!(err.code, Some(code), "{err}");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert_eq!(provider.sink(), before, "a refused execute wrote to the sink");
    err
}

#[tokio::test]
async fn refuses_an_unknown_plan_hash() {
    let provider = SinkProvider::new(false);
    let unknown = DigestAlgorithm::Blake3.digest(b"never planned");
    let err = assert_refused(&provider, plan_ref(unknown, None), ErrorCode::PlanUnknown).await;
    assert!(err.message.contains(&unknown.to_string()), "{err}");

    // A real plan from another provider instance (another store) is just as unknown here.
    let other = SinkProvider::new(false);
    let foreign = other.plan_writes(&["x"]).await;
    assert_refused(&provider, plan_ref(foreign.plan_hash, None), ErrorCode::PlanUnknown).await;
    assert!(provider.sink().is_empty());
}

#[tokio::test]
async fn refuses_an_unapproved_plan_where_approval_is_required() {
    let provider = SinkProvider::new(true);
    let plan = provider.plan_writes(&["one", "two"]).await;

    // Not approved at all, whatever the caller presents.
    assert_refused(&provider, plan_ref(plan.plan_hash, None), ErrorCode::PlanUnapproved).await;
    assert_refused(&provider, plan_ref(plan.plan_hash, Some(approval("self-approved"))), ErrorCode::PlanUnapproved)
        .await;

    // Approved, but the caller presents no approval or the wrong one.
    provider.store.approve(&plan.plan_hash, approval("owner")).unwrap();
    assert_refused(&provider, plan_ref(plan.plan_hash, None), ErrorCode::PlanUnapproved).await;
    let err =
        assert_refused(&provider, plan_ref(plan.plan_hash, Some(approval("someone else"))), ErrorCode::PlanUnapproved)
            .await;
    assert!(err.message.contains(&approval("someone else").to_string()), "{err}");

    // The refusals did not consume the plan: the right approval still executes it.
    assert_eq!(provider.state(&plan.plan_hash), PlanState::Pending);
    let done = provider.execute(plan_ref(plan.plan_hash, Some(approval("owner")))).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Complete);
    assert_eq!(provider.sink(), ["one", "two"]);
}

#[tokio::test]
async fn refuses_an_already_executed_plan() {
    let provider = SinkProvider::new(false);
    let plan = provider.plan_writes(&["once"]).await;
    provider.execute(plan_ref(plan.plan_hash, None)).await.unwrap();
    assert_eq!(provider.sink(), ["once"]);

    assert_refused(&provider, plan_ref(plan.plan_hash, None), ErrorCode::PlanAlreadyExecuted).await;
    // Re-planning the same intent against the same state yields the same hash: still refused.
    let again = provider.plan_writes(&["once"]).await;
    assert_eq!(again.plan_hash, plan.plan_hash);
    assert_refused(&provider, plan_ref(again.plan_hash, None), ErrorCode::PlanAlreadyExecuted).await;
    assert_eq!(provider.sink(), ["once"]);
}

#[tokio::test]
async fn refuses_a_plan_claimed_by_an_execution_in_progress() {
    let provider = SinkProvider::new(false);
    let plan = provider.plan_writes(&["x"]).await;
    // Another execute claimed the plan and has not finished (or crashed).
    provider.store.claim(&plan_ref(plan.plan_hash, None), &provider.live_snapshots()).unwrap();
    assert_eq!(provider.state(&plan.plan_hash), PlanState::Executing);
    assert_refused(&provider, plan_ref(plan.plan_hash, None), ErrorCode::PlanAlreadyExecuted).await;
    assert!(provider.sink().is_empty());
}

#[tokio::test]
async fn refuses_a_stale_plan() {
    let provider = SinkProvider::new(false);
    let plan = provider.plan_writes(&["based on old state"]).await;
    assert_eq!(plan.source_snapshots, provider.live_snapshots());

    // The live state changes after planning.
    provider.live.lock().unwrap().push(json!({"path": "b.txt", "size": 2}));
    let err = assert_refused(&provider, plan_ref(plan.plan_hash, None), ErrorCode::PlanStale).await;
    assert!(err.message.contains("live"), "the message names the changed snapshot: {err}");
    assert_eq!(provider.state(&plan.plan_hash), PlanState::Pending);

    // Stale even when approval is required and given.
    let gated = SinkProvider::new(true);
    let plan2 = gated.plan_writes(&["y"]).await;
    gated.store.approve(&plan2.plan_hash, approval("owner")).unwrap();
    gated.live.lock().unwrap()[0] = json!({"path": "a.txt", "size": 999});
    assert_refused(&gated, plan_ref(plan2.plan_hash, Some(approval("owner"))), ErrorCode::PlanStale).await;
    assert!(gated.sink().is_empty());

    // Back to the planned state, the plan is fresh again and runs.
    provider.live.lock().unwrap().pop();
    provider.execute(plan_ref(plan.plan_hash, None)).await.unwrap();
    assert_eq!(provider.sink(), ["based on old state"]);
}

#[tokio::test]
async fn approved_fresh_plan_executes_exactly_once() {
    let provider = SinkProvider::new(true);
    let plan = provider.plan_writes(&["alpha", "beta", "gamma"]).await;
    assert_eq!(plan.plan_hash, plan.recompute_hash().unwrap());
    assert_eq!(provider.state(&plan.plan_hash), PlanState::Pending);
    provider.store.approve(&plan.plan_hash, approval("owner")).unwrap();

    let done = provider.execute(plan_ref(plan.plan_hash, Some(approval("owner")))).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Complete);
    assert_eq!(done.plan_hash, plan.plan_hash);
    assert_eq!(done.scope_id, ScopeId::from(SCOPE));
    assert_eq!(done.steps_completed, ["step-0", "step-1", "step-2"]);
    assert_eq!(provider.sink(), ["alpha", "beta", "gamma"]);
    assert_eq!(provider.state(&plan.plan_hash), PlanState::Executed(ExecutionStatus::Complete));

    assert_refused(&provider, plan_ref(plan.plan_hash, Some(approval("owner"))), ErrorCode::PlanAlreadyExecuted).await;
    assert_eq!(provider.sink(), ["alpha", "beta", "gamma"]);
}

#[tokio::test]
async fn plan_hash_binds_steps_and_source_snapshots() {
    let provider = SinkProvider::new(false);
    let a = provider.plan_writes(&["x"]).await;
    let b = provider.plan_writes(&["y"]).await;
    assert_ne!(a.plan_hash, b.plan_hash, "different steps, same hash");
    provider.live.lock().unwrap().push(json!({"path": "c.txt"}));
    let c = provider.plan_writes(&["x"]).await;
    assert_ne!(a.plan_hash, c.plan_hash, "different source snapshot, same hash");
    // created_at is metadata.
    let intent = PlanIntent { scope_id: SCOPE.into(), description: "d".into(), params: json!({}) };
    let at = |t: &str| {
        PlanBundle::new("p@1", &intent, vec![], BTreeMap::new(), Timestamp::parse(t).unwrap(), DigestAlgorithm::Sha256)
            .unwrap()
            .plan_hash
    };
    assert_eq!(at("2026-01-01T00:00:00Z"), at("2030-06-15T08:30:00+02:00"));
}

// ---------------------------------------------------------------------------------------------
// Defaults of a provider that implements only describe + snapshot

#[derive(Debug)]
struct DescribeOnly;

#[async_trait]
impl Provider for DescribeOnly {
    fn describe(&self) -> ProviderDescriptor {
        ProviderDescriptor {
            scope_id: "test.describe_only".into(),
            version: 3,
            schema_ids: vec![],
            supported_phases: vec![ProviderPhase::Describe, ProviderPhase::Snapshot],
            deterministic: true,
            closure: ClosureRequirements::default(),
            required_approvals: vec![],
            predicates: vec![],
        }
    }

    async fn snapshot(&self, _: SnapshotRequest) -> Result<SnapshotResult, ProviderError> {
        Err(ProviderError::new("test.describe_only", ProviderPhase::Snapshot, "nothing to see"))
    }
}

fn assert_unsupported(err: &ProviderError, phase: ProviderPhase) {
    assert_eq!(err.class, ErrorClass::Unsupported, "{err}");
    assert_eq!(err.code, Some(ErrorCode::Unsupported), "{err}");
    assert_eq!(err.phase, phase, "{err}");
    assert_eq!(err.scope, ScopeId::from("test.describe_only"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn default_phases_are_structured_unsupported_errors() {
    let p = DescribeOnly;
    let intent = PlanIntent { scope_id: "test.describe_only".into(), description: "x".into(), params: Value::Null };
    assert_unsupported(&p.plan(intent).await.unwrap_err(), ProviderPhase::Plan);

    let hash = DigestAlgorithm::Blake3.digest(b"plan");
    assert_unsupported(&p.execute(plan_ref(hash, None)).await.unwrap_err(), ProviderPhase::Execute);

    let request = VerifyRequest {
        artifact_hash: hash,
        schema_id: "facts-bundle/test.describe_only@1".into(),
        scope_id: "test.describe_only".into(),
        artifact: None,
    };
    assert_unsupported(&p.verify(request).await.unwrap_err(), ProviderPhase::Verify);

    // Predicate evaluation reports under the verify phase (the protocol has no sixth phase).
    let err = p.eval_predicate("anything", &json!({}), &PredicateEvalContext::default()).await.unwrap_err();
    assert_unsupported(&err, ProviderPhase::Verify);
    assert!(err.message.contains("anything"), "{err}");

    // The wire form keeps the seed's three fields and the class.
    let wire = serde_json::to_value(&err).unwrap();
    assert_eq!(wire["scope"], "test.describe_only");
    assert_eq!(wire["phase"], "verify");
    assert_eq!(wire["class"], "unsupported");
}
