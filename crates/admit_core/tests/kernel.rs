#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The ruleset kernel (CONTRACTS §1): verdicts from severities, one `predicate_evaluated` fact
//! per evaluated rule, every finding recorded, hard failures for a missing registry, provider
//! or predicate, provider errors kept verbatim (scope and phase), tampered inputs refused.

use std::sync::Arc;

use admit_core::{
    ClosureRequirements, DigestAlgorithm, ErrorCode, Fact, FactsBundle, Finding, KERNEL_SCOPE, PredicateDescriptor,
    PredicateEvalContext, PredicateResult, PredicateResultKind, Provider, ProviderDescriptor, ProviderError,
    ProviderPhase, ProviderRegistry, RULESET_SCHEMA_ID, RuleBinding, Ruleset, ScopeId, Severity, SnapshotRequest,
    SnapshotResult, Timestamp, Verdict, Witness, async_trait, check_ruleset,
};
use serde_json::{Value, json};

const SCOPE: &str = "test.rules";

/// What a scripted predicate does when evaluated.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Triggers with these findings.
    Trigger(Vec<Finding>),
    /// Does not trigger.
    Quiet,
    /// Fails with this error.
    Fail(ProviderError),
    /// Triggers with one finding when `params.path` is not the `path` of any context fact.
    MissingPath,
}

#[derive(Debug)]
struct Scripted {
    scope: ScopeId,
    /// `(name, predicate_id, behaviour)`; an empty id exercises the kernel's default id.
    predicates: Vec<(&'static str, &'static str, Behaviour)>,
}

impl Scripted {
    fn new(scope: &str, predicates: Vec<(&'static str, &'static str, Behaviour)>) -> Self {
        Scripted { scope: scope.into(), predicates }
    }
}

#[async_trait]
impl Provider for Scripted {
    fn describe(&self) -> ProviderDescriptor {
        ProviderDescriptor {
            scope_id: self.scope.clone(),
            version: 7,
            schema_ids: vec![format!("facts-bundle/{}@1", self.scope)],
            supported_phases: vec![ProviderPhase::Describe, ProviderPhase::Snapshot],
            deterministic: true,
            closure: ClosureRequirements::default(),
            required_approvals: vec![],
            predicates: self
                .predicates
                .iter()
                .map(|(name, id, _)| PredicateDescriptor {
                    predicate_id: (*id).to_owned(),
                    name: (*name).to_owned(),
                    doc: String::new(),
                    result_kind: PredicateResultKind::Bool,
                    emits_findings: true,
                    param_schema: None,
                    evidence_schema: None,
                })
                .collect(),
        }
    }

    async fn snapshot(&self, _: SnapshotRequest) -> Result<SnapshotResult, ProviderError> {
        Err(ProviderError::unsupported(self.scope.clone(), ProviderPhase::Snapshot))
    }

    async fn eval_predicate(
        &self,
        name: &str,
        params: &Value,
        context: &PredicateEvalContext,
    ) -> Result<PredicateResult, ProviderError> {
        let (_, _, behaviour) =
            self.predicates.iter().find(|(n, _, _)| *n == name).expect("kernel asked for a declared predicate");
        match behaviour {
            Behaviour::Trigger(findings) => Ok(PredicateResult { triggered: true, findings: findings.clone() }),
            Behaviour::Quiet => Ok(PredicateResult { triggered: false, findings: vec![] }),
            Behaviour::Fail(error) => Err(error.clone()),
            Behaviour::MissingPath => {
                let wanted = params["path"].as_str().unwrap_or_default();
                let present = context.facts.iter().flatten().any(|f| f["path"] == wanted);
                Ok(PredicateResult {
                    triggered: !present,
                    findings: if present { vec![] } else { vec![finding(&format!("{wanted} is missing"))] },
                })
            }
        }
    }
}

/// A finding as a provider returns it; the kernel must overwrite rule id and severity.
fn finding(message: &str) -> Finding {
    Finding {
        rule_id: "chosen-by-provider".into(),
        severity: Severity::Info,
        message: message.into(),
        scope_id: None,
        evidence: Some(json!({"message": message})),
    }
}

fn rule(rule_id: &str, severity: Severity, scope: &str, predicate: &str) -> RuleBinding {
    RuleBinding {
        rule_id: rule_id.into(),
        severity,
        scope_id: scope.into(),
        predicate: predicate.into(),
        params: json!({}),
    }
}

fn ruleset(rules: Vec<RuleBinding>) -> Ruleset {
    Ruleset { schema_id: RULESET_SCHEMA_ID.into(), rules }
}

fn registry(providers: Vec<Scripted>) -> ProviderRegistry {
    let mut registry = ProviderRegistry::new();
    for p in providers {
        registry.register(Arc::new(p)).unwrap();
    }
    registry
}

fn standard() -> Scripted {
    Scripted::new(
        SCOPE,
        vec![
            ("bad", "test.rules/bad@1", Behaviour::Trigger(vec![finding("first"), finding("second")])),
            ("silent_trigger", "test.rules/silent_trigger@1", Behaviour::Trigger(vec![])),
            ("quiet", "test.rules/quiet@1", Behaviour::Quiet),
            ("default_id", "", Behaviour::Quiet),
            ("missing_path", "test.rules/missing_path@1", Behaviour::MissingPath),
        ],
    )
}

async fn check(registry: Option<&ProviderRegistry>, rules: Vec<RuleBinding>, inputs: &[FactsBundle]) -> Witness {
    check_ruleset(registry, &ruleset(rules), inputs, DigestAlgorithm::Blake3).await
}

fn evaluated(witness: &Witness) -> Vec<(String, String, bool, u64)> {
    witness
        .facts
        .iter()
        .filter_map(|f| match f {
            Fact::PredicateEvaluated { rule_id, scope_id, predicate_id, triggered, findings } => {
                assert_eq!(scope_id.as_str(), SCOPE);
                Some((rule_id.clone(), predicate_id.clone(), *triggered, *findings))
            }
            _ => None,
        })
        .collect()
}

fn bundle(facts: Vec<Value>) -> FactsBundle {
    FactsBundle::new(
        format!("facts-bundle/{SCOPE}@1"),
        SCOPE,
        facts,
        Timestamp::parse("2026-01-31T12:00:00Z").unwrap(),
        DigestAlgorithm::Blake3,
    )
    .unwrap()
}

#[tokio::test]
async fn error_severity_trigger_is_inadmissible_and_records_every_finding() {
    let reg = registry(vec![standard()]);
    let w = check(Some(&reg), vec![rule("r1", Severity::Error, SCOPE, "bad")], &[]).await;
    assert_eq!(w.verdict, Verdict::Inadmissible);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert_eq!(w.scope_id.as_str(), KERNEL_SCOPE);
    assert_eq!(w.findings.len(), 2);
    for (f, message) in w.findings.iter().zip(["first", "second"]) {
        assert_eq!(f.rule_id, "r1");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.message, message);
        assert_eq!(f.scope_id, Some(ScopeId::from(SCOPE)));
        assert_eq!(f.evidence, Some(json!({"message": message})));
    }
    assert_eq!(evaluated(&w), [("r1".to_owned(), "test.rules/bad@1".to_owned(), true, 2)]);
    assert_eq!(
        w.inputs.get("ruleset"),
        Some(
            &DigestAlgorithm::Blake3
                .digest_canonical(&ruleset(vec![rule("r1", Severity::Error, SCOPE, "bad")]))
                .unwrap()
        )
    );
}

#[tokio::test]
async fn warning_severity_trigger_is_admissible_but_recorded() {
    let reg = registry(vec![standard()]);
    for severity in [Severity::Warning, Severity::Info] {
        let w = check(Some(&reg), vec![rule("w1", severity, SCOPE, "bad")], &[]).await;
        assert_eq!(w.verdict, Verdict::Admissible, "{severity:?}");
        assert_eq!(w.findings.len(), 2);
        assert!(w.findings.iter().all(|f| f.rule_id == "w1" && f.severity == severity));
        assert_eq!(evaluated(&w), [("w1".to_owned(), "test.rules/bad@1".to_owned(), true, 2)]);
    }
}

#[tokio::test]
async fn every_rule_leaves_a_predicate_evaluated_fact() {
    let reg = registry(vec![standard()]);
    let rules = vec![
        rule("quiet-error", Severity::Error, SCOPE, "quiet"),
        rule("loud-warning", Severity::Warning, SCOPE, "bad"),
        rule("defaulted", Severity::Error, SCOPE, "default_id"),
        rule("silent", Severity::Info, SCOPE, "silent_trigger"),
    ];
    let w = check(Some(&reg), rules, &[]).await;
    assert_eq!(w.verdict, Verdict::Admissible);
    assert_eq!(
        evaluated(&w),
        [
            ("quiet-error".to_owned(), "test.rules/quiet@1".to_owned(), false, 0),
            ("loud-warning".to_owned(), "test.rules/bad@1".to_owned(), true, 2),
            // An empty predicate_id becomes <scope_id>/<name>@<version>.
            ("defaulted".to_owned(), "test.rules/default_id@7".to_owned(), false, 0),
            ("silent".to_owned(), "test.rules/silent_trigger@1".to_owned(), true, 0),
        ]
    );
    // 2 from loud-warning, 1 kernel-made for silent.
    assert_eq!(w.findings.len(), 3);
}

#[tokio::test]
async fn triggered_predicate_without_findings_still_produces_one() {
    let reg = registry(vec![standard()]);
    let w = check(Some(&reg), vec![rule("s1", Severity::Error, SCOPE, "silent_trigger")], &[]).await;
    assert_eq!(w.verdict, Verdict::Inadmissible);
    assert_eq!(w.findings.len(), 1, "{:?}", w.findings);
    let f = &w.findings[0];
    assert_eq!(f.rule_id, "s1");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.scope_id, Some(ScopeId::from(SCOPE)));
    assert!(f.message.contains("test.rules/silent_trigger@1"), "{}", f.message);
    // The fact still says what the provider returned: zero findings.
    assert_eq!(evaluated(&w), [("s1".to_owned(), "test.rules/silent_trigger@1".to_owned(), true, 0)]);
}

#[tokio::test]
async fn missing_registry_is_an_error_scoped_to_the_rule() {
    let w = check(None, vec![rule("r1", Severity::Warning, "some.scope", "anything")], &[]).await;
    assert_eq!(w.verdict, Verdict::Error);
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    let e = &w.errors[0];
    assert_eq!(e.scope, ScopeId::from("some.scope"));
    assert_eq!(e.code, Some(ErrorCode::NotFound));
    assert!(e.message.contains("r1") && e.message.contains("registry"), "{e}");
    assert!(w.facts.is_empty() && w.findings.is_empty());
}

#[tokio::test]
async fn missing_provider_is_an_error_scoped_to_the_rule() {
    let reg = registry(vec![standard()]);
    let rules =
        vec![rule("r1", Severity::Info, "absent.scope", "anything"), rule("r2", Severity::Info, SCOPE, "quiet")];
    let w = check(Some(&reg), rules, &[]).await;
    assert_eq!(w.verdict, Verdict::Error);
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    let e = &w.errors[0];
    assert_eq!(e.scope, ScopeId::from("absent.scope"));
    assert_eq!(e.code, Some(ErrorCode::NotFound));
    assert!(e.message.contains(SCOPE), "the message lists registered scopes: {e}");
    // The other rule is still evaluated.
    assert_eq!(evaluated(&w), [("r2".to_owned(), "test.rules/quiet@1".to_owned(), false, 0)]);
}

#[tokio::test]
async fn provider_errors_keep_their_scope_and_phase() {
    let own = ProviderError::retryable("p", ProviderPhase::Snapshot, "upstream down")
        .with_code(ErrorCode::Unavailable)
        .with_retry_after_ms(250);
    // An error naming another scope than the provider's must not be re-scoped either.
    let foreign = ProviderError::new("upstream.store", ProviderPhase::Execute, "foreign failure");
    let reg = registry(vec![Scripted::new(
        "p",
        vec![
            ("flaky", "p/flaky@1", Behaviour::Fail(own.clone())),
            ("odd", "p/odd@1", Behaviour::Fail(foreign.clone())),
        ],
    )]);
    let rules = vec![rule("r1", Severity::Error, "p", "flaky"), rule("r2", Severity::Error, "p", "odd")];
    let w = check(Some(&reg), rules, &[]).await;
    assert_eq!(w.verdict, Verdict::Error);
    assert_eq!(w.errors, [own, foreign]);
    assert_eq!(w.errors[0].scope.as_str(), "p");
    assert_eq!(w.errors[0].phase, ProviderPhase::Snapshot);
}

#[tokio::test]
async fn predicates_see_their_scopes_input_facts() {
    let reg = registry(vec![standard()]);
    let input = bundle(vec![json!({"path": "a.txt"}), json!({"path": "b.txt"})]);
    let mut present = rule("present", Severity::Error, SCOPE, "missing_path");
    present.params = json!({"path": "a.txt"});
    let mut absent = rule("absent", Severity::Error, SCOPE, "missing_path");
    absent.params = json!({"path": "zzz.txt"});
    let w = check(Some(&reg), vec![present, absent], std::slice::from_ref(&input)).await;
    assert_eq!(w.verdict, Verdict::Inadmissible);
    assert_eq!(w.inputs.get(&format!("facts:{SCOPE}")), Some(&input.snapshot_hash));
    assert_eq!(
        evaluated(&w),
        [
            ("present".to_owned(), "test.rules/missing_path@1".to_owned(), false, 0),
            ("absent".to_owned(), "test.rules/missing_path@1".to_owned(), true, 1),
        ]
    );
    assert_eq!(w.findings.len(), 1);
    assert_eq!(w.findings[0].message, "zzz.txt is missing");
}

#[tokio::test]
async fn tampered_input_bundle_is_an_error() {
    let reg = registry(vec![standard()]);
    let mut input = bundle(vec![json!({"path": "a.txt", "size": 1})]);
    input.facts[0]["size"] = json!(2); // edited after hashing
    let w = check(Some(&reg), vec![rule("r1", Severity::Error, SCOPE, "quiet")], &[input.clone()]).await;
    assert_eq!(w.verdict, Verdict::Error);
    let mismatch: Vec<_> = w.errors.iter().filter(|e| e.code == Some(ErrorCode::HashMismatch)).collect();
    assert_eq!(mismatch.len(), 1, "{:?}", w.errors);
    assert_eq!(mismatch[0].scope, ScopeId::from(SCOPE));
    assert!(mismatch[0].message.contains(&input.snapshot_hash.to_string()), "{}", mismatch[0]);
    // The tampered bundle is not an input of the verdict.
    assert!(!w.inputs.contains_key(&format!("facts:{SCOPE}")));
}

#[tokio::test]
async fn two_bundles_for_one_scope_are_an_error() {
    let reg = registry(vec![standard()]);
    let inputs = [bundle(vec![json!({"path": "a"})]), bundle(vec![json!({"path": "b"})])];
    let w = check(Some(&reg), vec![rule("r1", Severity::Error, SCOPE, "quiet")], &inputs).await;
    assert_eq!(w.verdict, Verdict::Error);
    assert!(
        w.errors.iter().any(|e| e.code == Some(ErrorCode::InvalidInput) && e.message.contains(SCOPE)),
        "{:?}",
        w.errors
    );
}

#[tokio::test]
async fn duplicate_rule_ids_are_an_error() {
    let reg = registry(vec![standard()]);
    let rules = vec![rule("dup", Severity::Error, SCOPE, "quiet"), rule("dup", Severity::Error, SCOPE, "bad")];
    let w = check(Some(&reg), rules, &[]).await;
    assert_eq!(w.verdict, Verdict::Error);
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    assert_eq!(w.errors[0].code, Some(ErrorCode::InvalidInput));
    assert!(w.errors[0].message.contains("`dup`"), "{}", w.errors[0]);
    // The second binding was not evaluated.
    assert_eq!(evaluated(&w), [("dup".to_owned(), "test.rules/quiet@1".to_owned(), false, 0)]);
    assert!(w.findings.is_empty());
}

#[tokio::test]
async fn unknown_predicate_is_an_error_listing_the_declared_ones() {
    let reg = registry(vec![standard()]);
    let w = check(Some(&reg), vec![rule("r1", Severity::Warning, SCOPE, "no_such_predicate")], &[]).await;
    assert_eq!(w.verdict, Verdict::Error);
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    let e = &w.errors[0];
    assert_eq!(e.scope, ScopeId::from(SCOPE));
    assert_eq!(e.code, Some(ErrorCode::NotFound));
    assert!(e.message.contains("no_such_predicate"), "{e}");
    for declared in ["bad", "silent_trigger", "quiet", "default_id", "missing_path"] {
        assert!(e.message.contains(declared), "{declared} not listed: {e}");
    }
    assert!(w.facts.is_empty());
}
