//! The protocol's nouns. Field names are part of the wire format (CONTRACTS §1): keep them.
//!
//! Metadata-only fields — never part of any identity hash — are marked "metadata" in their
//! docs: `FactsBundle::created_at`, `PlanBundle::created_at`, every `witness`, and
//! `PredicateDescriptor::doc`.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::ProviderError;

/// The identifier a provider is registered under, e.g. `ingest.dir`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ScopeId(String);

impl ScopeId {
    /// Wraps a scope id.
    pub fn new(id: impl Into<String>) -> Self {
        ScopeId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ScopeId {
    fn from(id: &str) -> Self {
        ScopeId(id.to_owned())
    }
}

impl From<String> for ScopeId {
    fn from(id: String) -> Self {
        ScopeId(id)
    }
}

impl From<&ScopeId> for ScopeId {
    fn from(id: &ScopeId) -> Self {
        id.clone()
    }
}

/// An RFC 3339 timestamp, validated when built or read. Always metadata, never identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Timestamp(#[schemars(with = "String")] String);

/// A timestamp that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an RFC 3339 timestamp (e.g. 2026-01-31T12:00:00Z): {reason}")]
pub struct TimestampError {
    /// The rejected text.
    pub input: String,
    /// What the parser objected to.
    pub reason: String,
}

impl Timestamp {
    /// Validates `text` as RFC 3339 and keeps it as written.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(|_| Timestamp(text.to_owned()))
            .map_err(|e| TimestampError { input: text.to_owned(), reason: e.to_string() })
    }

    /// The current UTC time, to the second.
    pub fn now_utc() -> Self {
        let now =
            time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let text = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned());
        Timestamp(text)
    }

    /// The timestamp as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The five phases of the provider ceremony; the declaration order is the sort rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderPhase {
    /// Report the descriptor.
    Describe,
    /// Observe the world into a facts bundle.
    Snapshot,
    /// Propose effects as a plan bundle.
    Plan,
    /// Carry out an approved plan.
    Execute,
    /// Re-check an artifact without trusting it.
    Verify,
}

impl ProviderPhase {
    /// Every phase, in rank order.
    pub const ALL: [ProviderPhase; 5] = [
        ProviderPhase::Describe,
        ProviderPhase::Snapshot,
        ProviderPhase::Plan,
        ProviderPhase::Execute,
        ProviderPhase::Verify,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderPhase::Describe => "describe",
            ProviderPhase::Snapshot => "snapshot",
            ProviderPhase::Plan => "plan",
            ProviderPhase::Execute => "execute",
            ProviderPhase::Verify => "verify",
        }
    }
}

impl fmt::Display for ProviderPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider needs from its environment; makes `deterministic: true` auditable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureRequirements {
    /// Reads or writes the file system.
    pub requires_fs: bool,
    /// Talks over the network.
    pub requires_network: bool,
    /// Uses a database.
    pub requires_db: bool,
    /// Spawns processes.
    pub requires_process: bool,
}

/// The kind of value a predicate yields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredicateResultKind {
    /// Triggered or not.
    #[default]
    Bool,
}

fn default_true() -> bool {
    true
}

/// A predicate a provider can evaluate through `eval_predicate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredicateDescriptor {
    /// `<scope_id>/<name>@<major>`; when empty, the pack hash uses `<scope_id>/<name>@<version>`.
    #[serde(default)]
    pub predicate_id: String,
    /// The name used in rules and `ProviderPredicate`.
    pub name: String,
    /// Prose for people. Metadata: excluded from the pack hash.
    #[serde(default)]
    pub doc: String,
    /// The result kind (`bool`).
    #[serde(default)]
    pub result_kind: PredicateResultKind,
    /// Whether evaluation returns findings.
    #[serde(default = "default_true")]
    pub emits_findings: bool,
    /// JSON Schema of the policy parameters (no transport plumbing such as `facts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_schema: Option<Value>,
    /// JSON Schema of finding evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_schema: Option<Value>,
}

/// Identity and capability declaration returned by `Provider::describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderDescriptor {
    /// The scope the provider is registered under.
    pub scope_id: ScopeId,
    /// The provider pack's version.
    pub version: u32,
    /// Scope-namespaced schema ids, e.g. `facts-bundle/ingest.dir@1`.
    pub schema_ids: Vec<String>,
    /// Phases the provider implements.
    pub supported_phases: Vec<ProviderPhase>,
    /// Same inputs, same outputs (within the declared closure).
    pub deterministic: bool,
    /// What the provider needs from its environment.
    pub closure: ClosureRequirements,
    /// Approvals `execute` requires.
    #[serde(default)]
    pub required_approvals: Vec<String>,
    /// Extension predicates.
    #[serde(default)]
    pub predicates: Vec<PredicateDescriptor>,
}

/// Input of `Provider::snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotRequest {
    /// The scope being snapshotted.
    pub scope_id: ScopeId,
    /// Provider-specific parameters.
    #[serde(default)]
    pub params: Value,
}

/// A content-addressed bundle of facts produced by a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactsBundle {
    /// Scope-namespaced schema id of the facts, e.g. `facts-bundle/ingest.dir@1`.
    pub schema_id: String,
    /// The scope that produced the facts.
    pub scope_id: ScopeId,
    /// The facts, in the provider's documented order.
    pub facts: Vec<Value>,
    /// Digest of the canonical CBOR of the facts, sorted by their canonical bytes.
    pub snapshot_hash: Digest,
    /// When the snapshot was taken. Metadata: never part of the hash.
    pub created_at: Timestamp,
}

/// A record of what was checked while producing or checking an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "fact", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fact {
    /// A rule's predicate was evaluated (recorded for every predicate, triggered or not).
    PredicateEvaluated {
        /// The rule that bound the predicate.
        rule_id: String,
        /// The provider's scope.
        scope_id: ScopeId,
        /// The predicate's id, `<scope_id>/<name>@<major>`.
        predicate_id: String,
        /// The result.
        triggered: bool,
        /// How many findings the provider returned.
        findings: u64,
    },
    /// A recorded digest was recomputed.
    HashChecked {
        /// Which field held the recorded digest, e.g. `snapshot_hash`.
        field: String,
        /// The digest the artifact carries.
        recorded: Digest,
        /// The digest recomputed from the artifact's identity fields.
        computed: Digest,
    },
    /// The artifact's bytes were compared with their canonical form.
    CanonicalChecked {
        /// Whether they are canonical.
        canonical: bool,
        /// What differs, when they are not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// How serious a finding is; `error` findings make a ruleset check inadmissible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Worth a look; does not block.
    Warning,
    /// Blocks admission.
    Error,
}

/// Something a predicate, guard or check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The rule (or check) that produced it.
    pub rule_id: String,
    /// Its severity.
    pub severity: Severity,
    /// What was found, for people.
    pub message: String,
    /// The provider scope it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<ScopeId>,
    /// Structured evidence, shaped by the predicate's `evidence_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
}

/// The conclusion a witness records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing blocks.
    Admissible,
    /// At least one error-severity rule triggered.
    Inadmissible,
    /// Evaluation could not complete (missing provider, failed predicate, bad input).
    Error,
}

/// The schema id every witness carries.
pub const WITNESS_SCHEMA_ID: &str = "witness@1";

/// The evidence trail of a phase or a ruleset check. Metadata of the artifact it accompanies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Witness {
    /// Always [`WITNESS_SCHEMA_ID`].
    pub schema_id: String,
    /// Who produced the witness (a provider scope, or `admit.kernel`).
    pub scope_id: ScopeId,
    /// The conclusion.
    pub verdict: Verdict,
    /// Hashes of what was looked at: `ruleset`, and one entry per input facts bundle.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Digest>,
    /// What was checked.
    #[serde(default)]
    pub facts: Vec<Fact>,
    /// What was found.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Errors met on the way, each with its scope and phase intact.
    #[serde(default)]
    pub errors: Vec<ProviderError>,
}

impl Witness {
    /// An empty witness with a verdict.
    pub fn new(scope_id: impl Into<ScopeId>, verdict: Verdict) -> Self {
        Witness {
            schema_id: WITNESS_SCHEMA_ID.to_owned(),
            scope_id: scope_id.into(),
            verdict,
            inputs: BTreeMap::new(),
            facts: Vec::new(),
            findings: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// Output of `Provider::snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotResult {
    /// The facts.
    pub facts_bundle: FactsBundle,
    /// How they were gathered (warnings, skipped paths). Metadata.
    pub witness: Witness,
}

/// What a caller wants a plan for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanIntent {
    /// The scope asked to plan.
    pub scope_id: ScopeId,
    /// For people.
    pub description: String,
    /// Provider-specific parameters.
    #[serde(default)]
    pub params: Value,
}

/// One proposed effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// Unique within the plan.
    pub step_id: String,
    /// For people; part of the plan hash, since approvers read it.
    pub description: String,
    /// Whether the effect can be undone.
    pub reversible: bool,
    /// Provider-specific parameters of the effect.
    #[serde(default)]
    pub params: Value,
}

/// A plan: proposed effects, bound by `plan_hash` to its intent and its source snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBundle {
    /// E.g. `plan-bundle/<scope>@1`.
    pub schema_id: String,
    /// The planning scope.
    pub scope_id: ScopeId,
    /// Digest of the canonical intent.
    pub intent_hash: Digest,
    /// The effects, in execution order.
    pub steps: Vec<PlanStep>,
    /// The snapshot hashes the plan was made against, by name (e.g. `source`, `target`).
    /// `execute` refuses the plan when the live snapshots differ.
    #[serde(default)]
    pub source_snapshots: BTreeMap<String, Digest>,
    /// Digest over schema id, scope, intent hash, steps and source snapshots.
    pub plan_hash: Digest,
    /// When the plan was made. Metadata: never part of the hash.
    pub created_at: Timestamp,
}

/// Output of `Provider::plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanResult {
    /// The plan.
    pub plan_bundle: PlanBundle,
    /// How it was made. Metadata.
    pub witness: Witness,
}

/// Names the plan `execute` should carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanRef {
    /// The plan's hash.
    pub plan_hash: Digest,
    /// The hash of the approval witness, where approval is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_witness_hash: Option<Digest>,
}

/// How far an execution got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Every step completed.
    Complete,
    /// Some steps completed.
    Partial,
    /// No step completed.
    Failed,
    /// Steps completed and were undone.
    RolledBack,
}

/// Output of `Provider::execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionResult {
    /// The executing scope.
    pub scope_id: ScopeId,
    /// The plan that was executed.
    pub plan_hash: Digest,
    /// How far it got.
    pub status: ExecutionStatus,
    /// Ids of completed steps, in order.
    pub steps_completed: Vec<String>,
    /// Hashes of artifacts the execution produced.
    pub artifact_hashes: Vec<Digest>,
    /// What happened. Metadata.
    pub witness: Witness,
}

/// Input of `Provider::verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyRequest {
    /// The hash the artifact claims.
    pub artifact_hash: Digest,
    /// The artifact's schema id.
    pub schema_id: String,
    /// The scope that produced it.
    pub scope_id: ScopeId,
    /// The artifact itself, as JSON, when the provider keeps no artifact store (an addition to
    /// the seed's request: without it a store-less provider could not re-check anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Value>,
}

/// Output of `Provider::verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyResult {
    /// `hash_matches && canonical_bytes_match` (and the signature, when one is checked).
    pub valid: bool,
    /// The recorded hash equals the recomputed one.
    pub hash_matches: bool,
    /// The stored bytes are the canonical form of what they hold.
    pub canonical_bytes_match: bool,
    /// The signature check, when the artifact is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_valid: Option<bool>,
    /// What was checked.
    pub witness: Witness,
}

/// What the kernel passes to `eval_predicate`: the snapshot the rule is evaluated against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PredicateEvalContext {
    /// The facts of the scope's input bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Vec<Value>>,
    /// That bundle's snapshot hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_hash: Option<Digest>,
    /// That bundle's schema id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts_schema_id: Option<String>,
}

/// Output of `eval_predicate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PredicateResult {
    /// Whether the predicate holds.
    pub triggered: bool,
    /// What it found; the kernel records every one.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// A kernel request to evaluate a provider's predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderPredicate {
    /// The provider's scope.
    pub scope_id: ScopeId,
    /// The predicate's name.
    pub name: String,
    /// Policy parameters.
    #[serde(default)]
    pub params: Value,
}
