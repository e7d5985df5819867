//! The kernel: evaluates a ruleset of predicate bindings against registered providers and
//! input facts bundles, and returns a witness of everything it did.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::DigestAlgorithm;
use crate::error::{ErrorCode, ProviderError};
use crate::registry::ProviderRegistry;
use crate::types::{
    Fact, FactsBundle, Finding, PredicateEvalContext, ProviderPhase, ScopeId, Severity, Verdict, Witness,
};

/// The scope the kernel signs its own witnesses and errors with.
pub const KERNEL_SCOPE: &str = "admit.kernel";

/// The schema id of rulesets.
pub const RULESET_SCHEMA_ID: &str = "ruleset@1";

fn default_ruleset_schema() -> String {
    RULESET_SCHEMA_ID.to_owned()
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// One rule: which provider predicate to evaluate, with which parameters, at which severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBinding {
    /// Unique within the ruleset; findings carry it.
    pub rule_id: String,
    /// What a triggered predicate means: `error` blocks admission.
    pub severity: Severity,
    /// The provider to ask.
    pub scope_id: ScopeId,
    /// The predicate's name within that provider.
    pub predicate: String,
    /// Policy parameters for the predicate.
    #[serde(default = "empty_object")]
    pub params: Value,
}

/// A list of rule bindings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    /// Always `ruleset@1`.
    #[serde(default = "default_ruleset_schema")]
    pub schema_id: String,
    /// The rules, evaluated in order.
    pub rules: Vec<RuleBinding>,
}

fn kernel_error(message: String, code: ErrorCode) -> ProviderError {
    ProviderError::new(KERNEL_SCOPE, ProviderPhase::Verify, message).with_code(code)
}

/// Evaluates `ruleset` and returns the witness.
///
/// - Input bundles are re-hashed first; a bundle whose `snapshot_hash` does not match its
///   facts, or two bundles for one scope, is an error.
/// - A missing registry, an unknown scope or an unknown predicate is a hard failure of that
///   rule: the verdict is `error`.
/// - Every evaluated predicate leaves a `predicate_evaluated` fact; every finding a provider
///   returns is recorded with the rule's id and severity; a triggered rule without findings
///   gets one from the kernel, so no trigger goes unrecorded.
/// - Provider errors are recorded unchanged, keeping their scope and phase.
///
/// Verdict: `error` if any error was recorded, else `inadmissible` if an `error`-severity rule
/// triggered, else `admissible`.
pub async fn check_ruleset(
    registry: Option<&ProviderRegistry>,
    ruleset: &Ruleset,
    inputs: &[FactsBundle],
    algorithm: DigestAlgorithm,
) -> Witness {
    let mut witness = Witness::new(KERNEL_SCOPE, Verdict::Admissible);
    match algorithm.digest_canonical(ruleset) {
        Ok(digest) => {
            witness.inputs.insert("ruleset".to_owned(), digest);
        }
        Err(e) => witness.errors.push(kernel_error(format!("ruleset: {e}"), ErrorCode::NonCanonical)),
    }

    let mut by_scope: BTreeMap<&ScopeId, &FactsBundle> = BTreeMap::new();
    for bundle in inputs {
        match bundle.recompute_hash() {
            Ok(computed) if computed == bundle.snapshot_hash => {}
            Ok(computed) => {
                witness.errors.push(
                    ProviderError::new(
                        &bundle.scope_id,
                        ProviderPhase::Verify,
                        format!(
                            "input facts bundle for `{}` is tampered: snapshot_hash is {} but its facts hash to {computed}",
                            bundle.scope_id, bundle.snapshot_hash
                        ),
                    )
                    .with_code(ErrorCode::HashMismatch),
                );
                continue;
            }
            Err(e) => {
                witness.errors.push(
                    ProviderError::invalid_input(&bundle.scope_id, ProviderPhase::Verify, e.to_string())
                        .with_code(ErrorCode::NonCanonical),
                );
                continue;
            }
        }
        if by_scope.insert(&bundle.scope_id, bundle).is_some() {
            witness.errors.push(kernel_error(
                format!("two input facts bundles for scope `{}`; give one per scope", bundle.scope_id),
                ErrorCode::InvalidInput,
            ));
        }
        witness.inputs.insert(format!("facts:{}", bundle.scope_id), bundle.snapshot_hash);
    }

    let mut seen_rules = BTreeSet::new();
    let mut blocked = false;
    for rule in &ruleset.rules {
        if !seen_rules.insert(rule.rule_id.as_str()) {
            witness.errors.push(kernel_error(
                format!("rule id `{}` appears more than once in the ruleset", rule.rule_id),
                ErrorCode::InvalidInput,
            ));
            continue;
        }
        let Some(registry) = registry else {
            witness.errors.push(
                ProviderError::new(
                    &rule.scope_id,
                    ProviderPhase::Verify,
                    format!("rule `{}`: no provider registry to resolve scope `{}`", rule.rule_id, rule.scope_id),
                )
                .with_code(ErrorCode::NotFound),
            );
            continue;
        };
        let Some(provider) = registry.get(&rule.scope_id) else {
            let known: Vec<&str> = registry.scopes().map(ScopeId::as_str).collect();
            witness.errors.push(
                ProviderError::new(
                    &rule.scope_id,
                    ProviderPhase::Verify,
                    format!(
                        "rule `{}`: no provider registered for scope `{}` (registered: {})",
                        rule.rule_id,
                        rule.scope_id,
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                )
                .with_code(ErrorCode::NotFound),
            );
            continue;
        };
        let descriptor = provider.describe();
        let Some(predicate) = descriptor.predicates.iter().find(|p| p.name == rule.predicate) else {
            let known: Vec<&str> = descriptor.predicates.iter().map(|p| p.name.as_str()).collect();
            witness.errors.push(
                ProviderError::new(
                    &rule.scope_id,
                    ProviderPhase::Verify,
                    format!(
                        "rule `{}`: scope `{}` declares no predicate `{}` (declared: {})",
                        rule.rule_id,
                        rule.scope_id,
                        rule.predicate,
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                )
                .with_code(ErrorCode::NotFound),
            );
            continue;
        };
        let predicate_id = if predicate.predicate_id.trim().is_empty() {
            format!("{}/{}@{}", descriptor.scope_id, predicate.name, descriptor.version)
        } else {
            predicate.predicate_id.clone()
        };
        let context = by_scope
            .get(&rule.scope_id)
            .map(|bundle| PredicateEvalContext {
                facts: Some(bundle.facts.clone()),
                snapshot_hash: Some(bundle.snapshot_hash),
                facts_schema_id: Some(bundle.schema_id.clone()),
            })
            .unwrap_or_default();
        match provider.eval_predicate(&rule.predicate, &rule.params, &context).await {
            Ok(result) => {
                witness.facts.push(Fact::PredicateEvaluated {
                    rule_id: rule.rule_id.clone(),
                    scope_id: rule.scope_id.clone(),
                    predicate_id: predicate_id.clone(),
                    triggered: result.triggered,
                    findings: result.findings.len() as u64,
                });
                let record = |mut finding: Finding| {
                    finding.rule_id = rule.rule_id.clone();
                    finding.severity = rule.severity;
                    finding.scope_id.get_or_insert_with(|| rule.scope_id.clone());
                    finding
                };
                if result.triggered && result.findings.is_empty() {
                    witness.findings.push(record(Finding {
                        rule_id: String::new(),
                        severity: rule.severity,
                        message: format!("{predicate_id} triggered"),
                        scope_id: None,
                        evidence: None,
                    }));
                }
                witness.findings.extend(result.findings.into_iter().map(record));
                blocked |= result.triggered && rule.severity == Severity::Error;
            }
            Err(error) => witness.errors.push(error),
        }
    }

    witness.verdict = if !witness.errors.is_empty() {
        Verdict::Error
    } else if blocked {
        Verdict::Inadmissible
    } else {
        Verdict::Admissible
    };
    witness
}
