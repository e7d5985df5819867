//! Plan/execute binding: a plan is executed only under the hash it was recorded with, only
//! once, only when approved where approval is required, and only while the state it was made
//! against still holds (Terraform's stale-plan rule).
//!
//! `execute` implementations call [`PlanStore::claim`] *before* any side effect; a refusal is
//! a structured [`ProviderError`] and nothing has been written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{ErrorCode, ProviderError};
use crate::types::{ExecutionStatus, PlanBundle, PlanRef, ProviderPhase, ScopeId};

/// Where a recorded plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Recorded, not yet claimed.
    Pending,
    /// Claimed by an `execute` that has not reported back (or crashed).
    Executing,
    /// Finished with the given status.
    Executed(ExecutionStatus),
}

/// What a store keeps about a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanRecord {
    /// The plan's identity.
    pub plan_hash: Digest,
    /// The scope that made it.
    pub scope_id: ScopeId,
    /// The snapshots it was made against, by name.
    pub source_snapshots: BTreeMap<String, Digest>,
    /// Whether `execute` needs an approval witness.
    pub requires_approval: bool,
    /// The approval witness's hash, once approved.
    pub approval_witness_hash: Option<Digest>,
    /// Where it stands.
    pub state: PlanState,
}

impl PlanRecord {
    /// A pending record for `bundle`.
    pub fn pending(bundle: &PlanBundle, requires_approval: bool) -> Self {
        PlanRecord {
            plan_hash: bundle.plan_hash,
            scope_id: bundle.scope_id.clone(),
            source_snapshots: bundle.source_snapshots.clone(),
            requires_approval,
            approval_witness_hash: None,
            state: PlanState::Pending,
        }
    }
}

/// Why `execute` refused a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanRefusal {
    /// The store never recorded this hash.
    #[error("plan {plan_hash} is unknown: it was not produced by this provider's plan phase")]
    Unknown {
        /// The hash given.
        plan_hash: Digest,
    },
    /// Approval is required and missing, or the caller presented a different one.
    #[error("plan {plan_hash} is not approved{}", match .presented { Some(p) => format!(" (presented approval {p} does not match the recorded one)"), None => String::new() })]
    Unapproved {
        /// The plan.
        plan_hash: Digest,
        /// The approval the caller presented, when it did not match.
        presented: Option<Digest>,
    },
    /// The plan was already executed, or an execution of it is in progress.
    #[error("plan {plan_hash} was already executed ({state:?}); make a new plan")]
    AlreadyExecuted {
        /// The plan.
        plan_hash: Digest,
        /// Its state.
        state: PlanState,
    },
    /// A live snapshot differs from the one the plan was made against.
    #[error("plan {plan_hash} is stale: snapshot `{source_name}` was {planned} when planned, but is {}; make a new plan", match .live { Some(l) => l.to_string(), None => "missing now".to_owned() })]
    Stale {
        /// The plan.
        plan_hash: Digest,
        /// Which snapshot changed.
        source_name: String,
        /// Its hash at planning time.
        planned: Digest,
        /// Its hash now (absent when the caller could not produce it).
        live: Option<Digest>,
    },
}

impl PlanRefusal {
    /// The structured error `execute` returns for this refusal.
    pub fn into_provider_error(self, scope: impl Into<ScopeId>) -> ProviderError {
        let code = match &self {
            PlanRefusal::Unknown { .. } => ErrorCode::PlanUnknown,
            PlanRefusal::Unapproved { .. } => ErrorCode::PlanUnapproved,
            PlanRefusal::AlreadyExecuted { .. } => ErrorCode::PlanAlreadyExecuted,
            PlanRefusal::Stale { .. } => ErrorCode::PlanStale,
        };
        ProviderError::new(scope, ProviderPhase::Execute, self.to_string()).with_code(code)
    }
}

/// Decides whether `plan_ref` may execute given the stored record and the live snapshots.
///
/// Every [`PlanStore`] implementation uses this one rule, inside whatever atomic section it
/// has, so stores cannot drift apart in what they allow. Checks run in the order unknown,
/// already executed, unapproved, stale.
pub fn authorize(
    record: Option<&PlanRecord>,
    plan_ref: &PlanRef,
    live_snapshots: &BTreeMap<String, Digest>,
) -> Result<(), PlanRefusal> {
    let plan_hash = plan_ref.plan_hash;
    let record = record.ok_or(PlanRefusal::Unknown { plan_hash })?;
    if record.state != PlanState::Pending {
        return Err(PlanRefusal::AlreadyExecuted { plan_hash, state: record.state });
    }
    if record.requires_approval {
        match (&record.approval_witness_hash, &plan_ref.approval_witness_hash) {
            (Some(recorded), Some(presented)) if recorded == presented => {}
            (Some(_), presented) => {
                return Err(PlanRefusal::Unapproved { plan_hash, presented: *presented });
            }
            (None, _) => {
                return Err(PlanRefusal::Unapproved { plan_hash, presented: None });
            }
        }
    }
    for (source_name, planned) in &record.source_snapshots {
        let live = live_snapshots.get(source_name);
        if live != Some(planned) {
            return Err(PlanRefusal::Stale {
                plan_hash,
                source_name: source_name.clone(),
                planned: *planned,
                live: live.copied(),
            });
        }
    }
    Ok(())
}

/// Errors of the store itself (not refusals).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanStoreError {
    /// `approve` or `finish` named a plan the store does not have.
    #[error("plan {plan_hash} is not recorded")]
    NotRecorded {
        /// The plan.
        plan_hash: Digest,
    },
    /// `record` was given a different record for a hash already stored.
    #[error("plan {plan_hash} is already recorded with different contents")]
    Conflict {
        /// The plan.
        plan_hash: Digest,
    },
    /// The backing storage failed.
    #[error("plan store failure: {message}")]
    Backend {
        /// What failed.
        message: String,
    },
}

/// Durable memory of plans, consulted by `execute`.
///
/// ```
/// use std::collections::BTreeMap;
/// use admit_core::*;
///
/// let store = InMemoryPlanStore::new();
/// let live = BTreeMap::from([("source".to_owned(), DigestAlgorithm::Blake3.digest(b"state v1"))]);
/// let intent = PlanIntent { scope_id: "demo".into(), description: "sync".into(), params: Default::default() };
/// let plan = PlanBundle::new("plan-bundle/demo@1", &intent, vec![], live.clone(),
///     Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), DigestAlgorithm::Blake3).unwrap();
/// store.record(PlanRecord::pending(&plan, false)).unwrap();
///
/// let plan_ref = PlanRef { plan_hash: plan.plan_hash, approval_witness_hash: None };
/// // The state moved on since planning: execute must refuse before writing anything.
/// let moved = BTreeMap::from([("source".to_owned(), DigestAlgorithm::Blake3.digest(b"state v2"))]);
/// assert!(matches!(store.claim(&plan_ref, &moved), Err(ClaimError::Refused(r)) if matches!(*r, PlanRefusal::Stale { .. })));
/// // Fresh: claimed once, then never again.
/// store.claim(&plan_ref, &live).unwrap();
/// assert!(store.claim(&plan_ref, &live).is_err());
/// ```
pub trait PlanStore: Send + Sync {
    /// Records a plan produced by the plan phase. Recording the same record twice is a no-op.
    fn record(&self, record: PlanRecord) -> Result<(), PlanStoreError>;

    /// Attaches an approval witness hash.
    fn approve(&self, plan_hash: &Digest, approval_witness_hash: Digest) -> Result<(), PlanStoreError>;

    /// Atomically checks [`authorize`] and marks the plan executing. Call before any effect.
    fn claim(&self, plan_ref: &PlanRef, live_snapshots: &BTreeMap<String, Digest>) -> Result<PlanRecord, ClaimError>;

    /// Records how an execution ended.
    fn finish(&self, plan_hash: &Digest, status: ExecutionStatus) -> Result<(), PlanStoreError>;

    /// Looks a plan up.
    fn get(&self, plan_hash: &Digest) -> Result<Option<PlanRecord>, PlanStoreError>;
}

/// A failed claim: a refusal, or the store failing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The plan may not execute (boxed: refusals carry several digests).
    #[error(transparent)]
    Refused(Box<PlanRefusal>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PlanStoreError),
}

impl From<PlanRefusal> for ClaimError {
    fn from(refusal: PlanRefusal) -> Self {
        ClaimError::Refused(Box::new(refusal))
    }
}

impl ClaimError {
    /// The structured error `execute` returns.
    pub fn into_provider_error(self, scope: impl Into<ScopeId>) -> ProviderError {
        match self {
            ClaimError::Refused(refusal) => refusal.into_provider_error(scope),
            ClaimError::Store(e) => {
                ProviderError::retryable(scope, ProviderPhase::Execute, e.to_string()).with_code(ErrorCode::Internal)
            }
        }
    }
}

/// A plan store in memory, for tests and single-process use.
#[derive(Debug, Default)]
pub struct InMemoryPlanStore {
    plans: Mutex<HashMap<Digest, PlanRecord>>,
}

impl InMemoryPlanStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryPlanStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Digest, PlanRecord>>, PlanStoreError> {
        self.plans.lock().map_err(|_| PlanStoreError::Backend { message: "plan store lock poisoned".to_owned() })
    }
}

impl PlanStore for InMemoryPlanStore {
    fn record(&self, record: PlanRecord) -> Result<(), PlanStoreError> {
        let mut plans = self.lock()?;
        match plans.get(&record.plan_hash) {
            Some(existing) if *existing == record => Ok(()),
            Some(_) => Err(PlanStoreError::Conflict { plan_hash: record.plan_hash }),
            None => {
                plans.insert(record.plan_hash, record);
                Ok(())
            }
        }
    }

    fn approve(&self, plan_hash: &Digest, approval_witness_hash: Digest) -> Result<(), PlanStoreError> {
        let mut plans = self.lock()?;
        let record = plans.get_mut(plan_hash).ok_or(PlanStoreError::NotRecorded { plan_hash: *plan_hash })?;
        record.approval_witness_hash = Some(approval_witness_hash);
        Ok(())
    }

    fn claim(&self, plan_ref: &PlanRef, live_snapshots: &BTreeMap<String, Digest>) -> Result<PlanRecord, ClaimError> {
        let mut plans = self.lock()?;
        authorize(plans.get(&plan_ref.plan_hash), plan_ref, live_snapshots)?;
        let record =
            plans.get_mut(&plan_ref.plan_hash).ok_or(PlanStoreError::NotRecorded { plan_hash: plan_ref.plan_hash })?;
        record.state = PlanState::Executing;
        Ok(record.clone())
    }

    fn finish(&self, plan_hash: &Digest, status: ExecutionStatus) -> Result<(), PlanStoreError> {
        let mut plans = self.lock()?;
        let record = plans.get_mut(plan_hash).ok_or(PlanStoreError::NotRecorded { plan_hash: *plan_hash })?;
        record.state = PlanState::Executed(status);
        Ok(())
    }

    fn get(&self, plan_hash: &Digest) -> Result<Option<PlanRecord>, PlanStoreError> {
        Ok(self.lock()?.get(plan_hash).cloned())
    }
}
