//! The `Provider` trait: the five phases plus predicate evaluation.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::ProviderError;
use crate::types::{
    ExecutionResult, PlanIntent, PlanRef, PlanResult, PredicateEvalContext, PredicateResult, ProviderDescriptor,
    ProviderPhase, ScopeId, SnapshotRequest, SnapshotResult, VerifyRequest, VerifyResult,
};

/// A provider of the admit protocol: describe → snapshot → plan → execute → verify.
///
/// Object-safe, so registries hold `Arc<dyn Provider>`. `plan`, `execute`, `verify` and
/// `eval_predicate` default to a structured "not supported" [`ProviderError`] carrying the
/// provider's scope and the right phase.
///
/// Predicate evaluation reports errors under [`ProviderPhase::Verify`]: a predicate re-checks
/// snapshot facts against policy, which is verification, and the protocol has no sixth phase.
///
/// ```
/// use admit_core::{async_trait, ClosureRequirements, Provider, ProviderDescriptor, ProviderError,
///     ProviderPhase, SnapshotRequest, SnapshotResult};
///
/// #[derive(Debug)]
/// struct Clock;
///
/// #[async_trait]
/// impl Provider for Clock {
///     fn describe(&self) -> ProviderDescriptor {
///         ProviderDescriptor {
///             scope_id: "example.clock".into(),
///             version: 1,
///             schema_ids: vec!["facts-bundle/example.clock@1".into()],
///             supported_phases: vec![ProviderPhase::Describe],
///             deterministic: false,
///             closure: ClosureRequirements::default(),
///             required_approvals: vec![],
///             predicates: vec![],
///         }
///     }
///     async fn snapshot(&self, _: SnapshotRequest) -> Result<SnapshotResult, ProviderError> {
///         Err(ProviderError::unsupported(self.scope_id(), ProviderPhase::Snapshot))
///     }
/// }
///
/// let err = block_on(Clock.plan(admit_core::PlanIntent {
///     scope_id: "example.clock".into(), description: "x".into(), params: Default::default(),
/// })).unwrap_err();
/// assert_eq!(err.phase, ProviderPhase::Plan);
/// assert_eq!(err.scope.as_str(), "example.clock");
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's descriptor. Pure data: no I/O.
    fn describe(&self) -> ProviderDescriptor;

    /// The scope this provider answers for.
    fn scope_id(&self) -> ScopeId {
        self.describe().scope_id
    }

    /// Observes the world into a facts bundle.
    async fn snapshot(&self, request: SnapshotRequest) -> Result<SnapshotResult, ProviderError>;

    /// Proposes effects as a plan bundle.
    async fn plan(&self, intent: PlanIntent) -> Result<PlanResult, ProviderError> {
        let _ = intent;
        Err(ProviderError::unsupported(self.scope_id(), ProviderPhase::Plan))
    }

    /// Carries out an approved, fresh, not-yet-executed plan (see [`crate::PlanStore`]).
    async fn execute(&self, plan: PlanRef) -> Result<ExecutionResult, ProviderError> {
        let _ = plan;
        Err(ProviderError::unsupported(self.scope_id(), ProviderPhase::Execute))
    }

    /// Re-checks an artifact without trusting it.
    async fn verify(&self, request: VerifyRequest) -> Result<VerifyResult, ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(self.scope_id(), ProviderPhase::Verify))
    }

    /// Evaluates the named predicate against the context's facts.
    async fn eval_predicate(
        &self,
        name: &str,
        params: &Value,
        context: &PredicateEvalContext,
    ) -> Result<PredicateResult, ProviderError> {
        let _ = (params, context);
        let declared: Vec<String> = self.describe().predicates.into_iter().map(|p| p.name).collect();
        let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
        Err(ProviderError::unknown_predicate(self.scope_id(), name, &declared))
    }
}
