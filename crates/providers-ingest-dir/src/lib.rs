//! `providers-ingest-dir` is the `ingest.dir` admit provider: it snapshots a directory tree
//! into a content-addressed facts bundle (one fact per file: relative path, size, content
//! digest), evaluates the `ingest.dir/missing_path@1` predicate against such a bundle, and
//! verifies bundles it produced. It is read-only: plan and execute are not supported.
//!
//! It must never know about the sync engine, the PAL, or any other provider; it depends on
//! `admit_core` alone and never writes to the tree it observes.

mod walk;

use admit_core::{
    ClosureRequirements, DigestAlgorithm, ErrorCode, FactsBundle, Finding, PredicateDescriptor, PredicateEvalContext,
    PredicateResult, PredicateResultKind, Provider, ProviderDescriptor, ProviderError, ProviderPhase, Severity,
    SnapshotRequest, SnapshotResult, Timestamp, Verdict, VerifyRequest, VerifyResult, Witness, async_trait,
    verify_artifact_value,
};
use serde_json::{Value, json};

pub use walk::DirFact;

/// The scope id.
pub const SCOPE_ID: &str = "ingest.dir";
/// The schema id of the facts bundles this provider writes.
pub const FACTS_SCHEMA_ID: &str = "facts-bundle/ingest.dir@1";
/// The provider pack version.
pub const VERSION: u32 = 1;
/// The predicate that triggers when a path is absent from a snapshot.
pub const MISSING_PATH: &str = "missing_path";

/// The `ingest.dir` provider. Stateless: every call reads what its request names.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestDirProvider;

impl IngestDirProvider {
    /// The provider.
    pub fn new() -> Self {
        IngestDirProvider
    }
}

fn invalid(phase: ProviderPhase, message: impl Into<String>) -> ProviderError {
    ProviderError::invalid_input(SCOPE_ID, phase, message)
}

fn optional_str<'a>(params: &'a Value, key: &str, phase: ProviderPhase) -> Result<Option<&'a str>, ProviderError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(phase, format!("params.{key} must be a string, found {}", json_type(other)))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[async_trait]
impl Provider for IngestDirProvider {
    fn describe(&self) -> ProviderDescriptor {
        ProviderDescriptor {
            scope_id: SCOPE_ID.into(),
            version: VERSION,
            schema_ids: vec![FACTS_SCHEMA_ID.to_owned()],
            supported_phases: vec![ProviderPhase::Describe, ProviderPhase::Snapshot, ProviderPhase::Verify],
            deterministic: true,
            closure: ClosureRequirements {
                requires_fs: true,
                ..ClosureRequirements::default()
            },
            required_approvals: vec![],
            predicates: vec![PredicateDescriptor {
                predicate_id: format!("{SCOPE_ID}/{MISSING_PATH}@1"),
                name: MISSING_PATH.to_owned(),
                doc: "Triggers, with one error finding, when `path` names no file (or directory holding files) in the snapshot.".to_owned(),
                result_kind: PredicateResultKind::Bool,
                emits_findings: true,
                param_schema: Some(json!({
                    "type": "object",
                    "required": ["path"],
                    "properties": {"path": {"type": "string", "description": "Path relative to the snapshot root, `/`-separated."}},
                    "additionalProperties": false
                })),
                evidence_schema: Some(json!({
                    "type": "object",
                    "properties": {"path": {"type": "string"}}
                })),
            }],
        }
    }

    async fn snapshot(&self, request: SnapshotRequest) -> Result<SnapshotResult, ProviderError> {
        const PHASE: ProviderPhase = ProviderPhase::Snapshot;
        if request.scope_id.as_str() != SCOPE_ID {
            return Err(invalid(PHASE, format!("request is for scope `{}`, not `{SCOPE_ID}`", request.scope_id)));
        }
        let params = &request.params;
        let root =
            optional_str(params, "root", PHASE)?.ok_or_else(|| invalid(PHASE, "params.root (string) is required"))?;
        let created_at = match optional_str(params, "created_at", PHASE)? {
            Some(text) => Timestamp::parse(text).map_err(|e| invalid(PHASE, format!("params.created_at: {e}")))?,
            None => Timestamp::now_utc(),
        };
        let algorithm = match optional_str(params, "digest", PHASE)? {
            Some(text) => text.parse::<DigestAlgorithm>().map_err(|e| invalid(PHASE, format!("params.digest: {e}")))?,
            None => DigestAlgorithm::default(),
        };
        let root_path = std::path::Path::new(root);
        match std::fs::metadata(root_path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(invalid(PHASE, format!("root path is not a directory: {root}"))),
            Err(e) => {
                return Err(invalid(PHASE, format!("root path is not a directory: {root} ({e})"))
                    .with_code(ErrorCode::NotFound));
            }
        }
        let facts = walk::snapshot_tree(root_path, algorithm);
        let mut witness = Witness::new(SCOPE_ID, Verdict::Admissible);
        for fact in &facts {
            if let DirFact::Warning { path, message } = fact {
                witness.findings.push(Finding {
                    rule_id: format!("{SCOPE_ID}/unreadable"),
                    severity: Severity::Warning,
                    message: format!("{path}: {message}"),
                    scope_id: Some(SCOPE_ID.into()),
                    evidence: Some(json!({"path": path})),
                });
            }
        }
        let facts = facts
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProviderError::new(SCOPE_ID, PHASE, e.to_string()).with_code(ErrorCode::Internal))?;
        let facts_bundle = FactsBundle::new(FACTS_SCHEMA_ID, SCOPE_ID, facts, created_at, algorithm)
            .map_err(|e| ProviderError::new(SCOPE_ID, PHASE, e.to_string()).with_code(ErrorCode::NonCanonical))?;
        Ok(SnapshotResult { facts_bundle, witness })
    }

    async fn verify(&self, request: VerifyRequest) -> Result<VerifyResult, ProviderError> {
        const PHASE: ProviderPhase = ProviderPhase::Verify;
        if request.schema_id != FACTS_SCHEMA_ID {
            return Err(invalid(PHASE, format!("schema_id `{}` is not `{FACTS_SCHEMA_ID}`", request.schema_id)));
        }
        let artifact = request
            .artifact
            .as_ref()
            .ok_or_else(|| invalid(PHASE, "artifact is required: this provider keeps no artifact store"))?;
        let mut result = verify_artifact_value(artifact).map_err(|e| invalid(PHASE, e.to_string()))?;
        let recorded = result.witness.facts.iter().find_map(|fact| match fact {
            admit_core::Fact::HashChecked { recorded, .. } => Some(*recorded),
            _ => None,
        });
        if recorded != Some(request.artifact_hash) {
            result.hash_matches = false;
            result.valid = false;
            result.witness.verdict = Verdict::Inadmissible;
            result.witness.findings.push(Finding {
                rule_id: "verify/hash_matches".to_owned(),
                severity: Severity::Error,
                message: format!("the artifact records a different hash than the requested {}", request.artifact_hash),
                scope_id: Some(SCOPE_ID.into()),
                evidence: None,
            });
        }
        Ok(result)
    }

    async fn eval_predicate(
        &self,
        name: &str,
        params: &Value,
        context: &PredicateEvalContext,
    ) -> Result<PredicateResult, ProviderError> {
        const PHASE: ProviderPhase = ProviderPhase::Verify;
        if name != MISSING_PATH {
            return Err(ProviderError::unknown_predicate(SCOPE_ID, name, &[MISSING_PATH]));
        }
        let wanted =
            optional_str(params, "path", PHASE)?.ok_or_else(|| invalid(PHASE, "params.path (string) is required"))?;
        if let Some(schema) = &context.facts_schema_id
            && schema != FACTS_SCHEMA_ID
        {
            return Err(invalid(PHASE, format!("facts have schema `{schema}`, expected `{FACTS_SCHEMA_ID}`")));
        }
        // Context first; `params.facts` is the protocol's compatibility window.
        let facts = match (&context.facts, params.get("facts")) {
            (Some(facts), _) => facts.as_slice(),
            (None, Some(Value::Array(facts))) => facts.as_slice(),
            (None, Some(other)) => {
                return Err(invalid(PHASE, format!("params.facts must be an array, found {}", json_type(other))));
            }
            (None, None) => {
                return Err(invalid(
                    PHASE,
                    "missing_path needs snapshot facts: give an ingest.dir facts bundle as input",
                ));
            }
        };
        let wanted = wanted.trim_start_matches("./").trim_end_matches('/');
        let prefix = format!("{wanted}/");
        let present = wanted.is_empty()
            || facts.iter().any(|fact| {
                fact.get("path").and_then(Value::as_str).is_some_and(|path| path == wanted || path.starts_with(&prefix))
            });
        let findings = if present {
            vec![]
        } else {
            vec![Finding {
                rule_id: format!("{SCOPE_ID}/{MISSING_PATH}@1"),
                severity: Severity::Error,
                message: format!("path `{wanted}` does not exist under the snapshot root"),
                scope_id: Some(SCOPE_ID.into()),
                evidence: Some(json!({"path": wanted})),
            }]
        };
        Ok(PredicateResult { triggered: !present, findings })
    }
}
