//! The capability kit: what every adapter of the seven non-inventory PAL capabilities (ads,
//! lifecycle, experiments, CDP, vector store, LLM gateway, LLM observability) must do.
//!
//! The kit drives a table of [`probes`] — one JSON input per operation, prerequisites first —
//! through a real [`pal::Pipeline`] ([`kit_pipeline`]: [`kit_policy`], seeded jitter, a metrics
//! recorder), so retries, timeouts and metrics are the ones production calls get. Each check
//! builds a fresh adapter in the [`Scenario`] it needs; a scenario the harness cannot stage
//! makes the checks that need it not applicable, with the reason (never passed).
//!
//! Checks, in order ([`CAPABILITY_CHECKS`]):
//!
//! - `ops.all_succeed` — every probe succeeds on a healthy adapter (a harness that cannot build
//!   a healthy adapter fails this check: it is the baseline every provider stages).
//! - `idempotency.no_duplicate_effects` — every probe whose operation is idempotent for its
//!   input ([`pal::OpSpec::is_idempotent_for`]) is called once and then repeated twice: the two
//!   repeats return equal results, and the probe's [`VendorProbe::writes`] does not move after
//!   the first call. (The first call and a repeat may differ — `mock_lifecycle` answers a
//!   repeated idempotency key with status `duplicate`, `mock_cdp` a repeated event id with
//!   `accepted: false` — so the repeats are compared with each other, and effects are judged
//!   by the vendor's write count, not by the answer.)
//! - `taxonomy.transient_retryable` — in [`Scenario::ServerError`] the adapter, called directly
//!   once (no pipeline), returns an error of class `retryable`.
//! - `taxonomy.permanent_not_retryable` — in [`Scenario::Rejecting`], class `permanent`.
//! - `retries.capped_with_backoff` — in `ServerError { times: 10 }` an idempotent call makes
//!   exactly `max_attempts` attempts, the vendor sees exactly that many requests, and the call
//!   took at least the minimum jittered backoff between them; in
//!   `ServerError { times: max_attempts - 1 }` it succeeds on the last attempt, again with one
//!   vendor request per attempt (an adapter that retries on its own fails here).
//! - `retries.none_for_permanent` — in `Rejecting` an idempotent call makes one attempt and the
//!   vendor sees one request (a misclassified 400, or an adapter that retries permanent errors
//!   internally, fails here).
//! - `timeouts.bounded` — in [`Scenario::Hang`] the call ends with a retryable error of code
//!   `timeout` within the policy's total deadline.
//! - `metrics.event_fields` — every pipeline call of the kit produced exactly one metrics event
//!   whose capability, adapter, operation, attempts, outcome, error class and latency agree
//!   with the call.
//! - `shape.parity_with_mock` — for every probe, the adapter's JSON result has the shape of
//!   the capability's reference mock's result ([`shape_mismatches`]): every key the mock
//!   returns, recursively, with the same JSON type; vendors may add keys.
//! - `errors.no_secret_in_errors` — the raw errors the adapter returned in the failure
//!   scenarios (server error, rate limit, rejection, invalid credentials, unreachable) never
//!   contain the harness's [`CapabilityHarness::secret`].
//!
//! Vendor probes must count *effects*: [`VendorProbe::writes`] is the number of requests that
//! changed vendor-side state, so an idempotent repeat that changes nothing is not a write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pal::pipeline::Outcome;
use pal::{
    AdapterHandle, CallSpec, CallTarget, Capability, ErrorClass, ErrorCode, MetricsEvent, MetricsRecorder, OpSpec,
    Pipeline, ProviderError, Secret, invoke,
};
use serde_json::{Value, json};

use crate::report::{Checks, Kit, KitReport, ensure};
use crate::scenario::{Scenario, VendorProbe, kit_pipeline, kit_policy};

/// Check names of the capability kit, in order.
pub const CAPABILITY_CHECKS: [&str; 10] = [
    "ops.all_succeed",
    "idempotency.no_duplicate_effects",
    "taxonomy.transient_retryable",
    "taxonomy.permanent_not_retryable",
    "retries.capped_with_backoff",
    "retries.none_for_permanent",
    "timeouts.bounded",
    "metrics.event_fields",
    "shape.parity_with_mock",
    "errors.no_secret_in_errors",
];

/// Failures staged by `retries.capped_with_backoff` to exhaust every attempt.
const EXHAUSTING_FAILURES: u32 = 10;

/// What the kit needs from a provider crate to test its capability adapters.
///
/// An adapter the crate does not want certified is simply not listed by
/// [`CapabilityHarness::adapters`] (providers-mock leaves out `noop_ads`, a deliberately poor
/// candidate that fails shape parity): the kit never hides a failure of an adapter it runs.
pub trait CapabilityHarness: Send + Sync {
    /// The provider crate, e.g. `providers-mock`.
    fn provider_crate(&self) -> &str;
    /// Every `(capability, adapter name)` to certify (non-inventory capabilities; inventory
    /// adapters have their own kit).
    fn adapters(&self) -> Vec<(Capability, String)>;
    /// A fresh adapter in `scenario`, with the probe that counts what reached its vendor, or
    /// `None` when the harness cannot stage the scenario (the checks needing it are then not
    /// applicable). When [`CapabilityHarness::secret`] is `Some`, every adapter must be built
    /// with that secret in its settings.
    fn build(
        &self,
        capability: Capability,
        adapter: &str,
        scenario: Scenario,
    ) -> Option<(AdapterHandle, Arc<dyn VendorProbe>)>;
    /// The secret the adapters are built with (`None`: `errors.no_secret_in_errors` is not
    /// applicable).
    fn secret(&self) -> Option<Secret>;
}

/// Feeds part of an earlier probe's result into a later probe's input (vendor-assigned ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The earlier operation.
    pub from_op: &'static str,
    /// JSON pointer into its result, e.g. `/id`.
    pub result_pointer: &'static str,
    /// JSON pointer of the input value it replaces, e.g. `/campaign_id`.
    pub input_pointer: &'static str,
}

/// One call the kit makes: an operation and its JSON input (named arguments, see
/// [`pal::invoke`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The operation.
    pub op: &'static str,
    /// Its input; values under `bindings` are placeholders used when the earlier result lacks
    /// them.
    pub input: Value,
    /// Values taken from earlier results.
    pub bindings: Vec<Binding>,
}

impl Probe {
    fn new(op: &'static str, input: Value) -> Self {
        Probe { op, input, bindings: Vec::new() }
    }

    fn bind(mut self, from_op: &'static str, result_pointer: &'static str, input_pointer: &'static str) -> Self {
        self.bindings.push(Binding { from_op, result_pointer, input_pointer });
        self
    }

    /// The input with every binding filled from `results` (results of earlier probes, by op).
    pub fn resolve(&self, results: &BTreeMap<&'static str, Value>) -> Value {
        let mut input = self.input.clone();
        for binding in &self.bindings {
            let value = results.get(binding.from_op).and_then(|r| r.pointer(binding.result_pointer));
            if let (Some(value), Some(slot)) = (value, input.pointer_mut(binding.input_pointer)) {
                *slot = value.clone();
            }
        }
        input
    }
}

/// The probes of `capability`, prerequisites first (empty for inventory). The first probe of
/// every capability is idempotent and needs no earlier result: the failure scenarios call it.
pub fn probes(capability: Capability) -> Vec<Probe> {
    match capability {
        Capability::Ads => vec![
            Probe::new("create_campaign", json!({"plan": {"id": "conf-1", "budget_cents": 1000, "geo": "US"}})),
            Probe::new("report", json!({})),
            Probe::new("pause", json!({"campaign_id": "conf-1"})).bind("create_campaign", "/id", "/campaign_id"),
        ],
        Capability::Lifecycle => vec![
            Probe::new("preview", json!({"message": {"to": "conf-user", "template": "welcome", "subject": "Hi"}})),
            Probe::new(
                "send",
                json!({"message": {"to": "conf-user", "template": "welcome", "idempotency_key": "conf-send-1"}}),
            ),
            Probe::new(
                "schedule",
                json!({"batch": [{"to": "conf-user", "template": "digest"}], "policy": {"rate_per_minute": 60}}),
            ),
        ],
        Capability::Experiments => vec![
            Probe::new("set_flag", json!({"key": "conf-flag", "value": true})),
            Probe::new("get_flag", json!({"key": "conf-flag", "default": false})),
            Probe::new("ramp", json!({"key": "conf-flag", "stage": 25})),
            Probe::new("start_ab", json!({"key": "conf-ab", "variants": ["control", "treatment"]})),
            Probe::new("assign", json!({"key": "conf-ab", "unit_id": "conf-user"})),
            Probe::new("report", json!({"key": "conf-ab"})),
            Probe::new("start_bandit", json!({"key": "conf-bandit", "arms": ["a", "b", "c"]})),
        ],
        Capability::Cdp => vec![
            Probe::new("upsert_profile", json!({"profile": {"id": "conf-user", "traits": {"plan": "pro"}}})),
            Probe::new(
                "ingest_event",
                json!({"event": {"profile_id": "conf-user", "name": "signup", "event_id": "conf-evt-1"}}),
            ),
            Probe::new("sync_audience", json!({"audience": {"id": "conf-audience", "profile_ids": ["conf-user"]}})),
            Probe::new("get_profile", json!({"id": "conf-user"})),
        ],
        Capability::Vectorstore => vec![
            Probe::new(
                "index",
                json!({"docs": [
                    {"id": "conf-doc-1", "text": "Hello conformance"},
                    {"id": "conf-doc-2", "text": "Another document"}
                ]}),
            ),
            Probe::new("search", json!({"query": "hello", "k": 5})),
            Probe::new("swap", json!({"target": "index-v2"})),
        ],
        Capability::LlmGateway => vec![
            Probe::new("models", json!({})),
            Probe::new("route", json!({"prompt": "Summarise the conformance kit", "tags": ["summary"]})),
        ],
        Capability::LlmObservability => vec![
            Probe::new("trace_start", json!({"run_id": "conf-run", "meta": {"kit": "capability"}})),
            Probe::new("trace_stop", json!({"trace_id": "trace_conf-run", "meta": {"outcome": "ok"}})).bind(
                "trace_start",
                "/trace_id",
                "/trace_id",
            ),
            Probe::new("log_eval", json!({"name": "faithfulness", "score": 0.9})),
            Probe::new("link", json!({"run_id": "conf-run", "trace_id": "trace_conf-run"})).bind(
                "trace_start",
                "/trace_id",
                "/trace_id",
            ),
        ],
        Capability::Inventory => Vec::new(),
    }
}

/// The JSON type name of a value (all numbers are `number`).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `actual` lacks the shape of `expected` (the reference mock's result), as
/// `<path>: <problem>` lines. Objects need every key of `expected` (extra keys are vendor
/// fields and allowed), recursively; arrays are compared by the shape of their first elements
/// (an empty array on either side matches); a `null` in `expected` matches anything; every
/// other value needs the same JSON type (integers and floats are both `number`).
///
/// ```
/// use serde_json::json;
/// let mock = json!({"id": "c1", "plan": {"geo": "US"}, "rows": [{"clicks": 1}]});
/// let vendor = json!({"id": "v9", "plan": {"geo": "FR", "vendor": 1}, "rows": [{"clicks": 2.5}], "extra": true});
/// assert!(conformance::capability::shape_mismatches(&mock, &vendor).is_empty());
/// let poor = json!({"id": 7, "rows": [{}]});
/// assert_eq!(
///     conformance::capability::shape_mismatches(&mock, &poor),
///     ["$.id: expected string, found number", "$.plan: missing", "$.rows[0].clicks: missing"]
/// );
/// ```
pub fn shape_mismatches(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    shape_walk("$", expected, actual, &mut out);
    out
}

fn shape_walk(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Null, _) => {}
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let path = format!("{path}.{key}");
                match have.get(key) {
                    Some(found) => shape_walk(&path, value, found, out),
                    None => out.push(format!("{path}: missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if let (Some(want), Some(have)) = (want.first(), have.first()) {
                shape_walk(&format!("{path}[0]"), want, have, out);
            }
        }
        (want, have) if kind(want) == kind(have) => {}
        (want, have) => out.push(format!("{path}: expected {}, found {}", kind(want), kind(have))),
    }
}

/// One pipeline call of the kit and the metrics events recorded while it ran.
#[derive(Debug, Clone)]
struct CallRecord {
    op: &'static str,
    result: Result<(), ErrorClass>,
    elapsed: Duration,
    events: Vec<MetricsEvent>,
}

/// Problems with the metrics events of `calls` (one event per call, fields matching the call).
fn metrics_problems(target: &CallTarget, max_attempts: u32, calls: &[CallRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, call) in calls.iter().enumerate() {
        let at = format!("call {} (`{}`)", n + 1, call.op);
        let [event] = call.events.as_slice() else {
            problems.push(format!("{at}: {} metrics events, expected exactly 1", call.events.len()));
            continue;
        };
        let (outcome, class) = match call.result {
            Ok(()) => (Outcome::Ok, None),
            Err(class) => (Outcome::Error, Some(class)),
        };
        let mut wrong = Vec::new();
        if event.capability != target.capability {
            wrong.push(format!("capability {} (expected {})", event.capability, target.capability));
        }
        if event.adapter != target.adapter {
            wrong.push(format!("adapter `{}` (expected `{}`)", event.adapter, target.adapter));
        }
        if event.op != call.op {
            wrong.push(format!("op `{}`", event.op));
        }
        if !(1..=max_attempts).contains(&event.attempts) {
            wrong.push(format!("attempts {} (expected 1..={max_attempts})", event.attempts));
        }
        if event.outcome != outcome {
            wrong.push(format!("outcome {:?} (the call returned {outcome:?})", event.outcome));
        }
        if event.error_class != class {
            wrong.push(format!("error_class {:?} (the call's error class is {class:?})", event.error_class));
        }
        if u128::from(event.latency_ms) > call.elapsed.as_millis() {
            wrong.push(format!("latency_ms {} > the {} ms the call took", event.latency_ms, call.elapsed.as_millis()));
        }
        if !wrong.is_empty() {
            problems.push(format!("{at}: {}", wrong.join(", ")));
        }
    }
    problems
}

/// State of one kit run against one adapter.
struct Run<'a> {
    harness: &'a dyn CapabilityHarness,
    capability: Capability,
    target: CallTarget,
    probes: Vec<Probe>,
    pipeline: Arc<Pipeline>,
    recorder: Arc<MetricsRecorder>,
    calls: Vec<CallRecord>,
    raw_errors: Vec<ProviderError>,
}

/// The outcome of one pipeline call: its result, its attempts (from its metrics event) and
/// how long it took.
struct Called {
    result: Result<Value, ProviderError>,
    attempts: Option<u32>,
    elapsed: Duration,
}

fn scenario_name(scenario: Scenario) -> String {
    format!("{scenario:?}")
}

fn show(error: &ProviderError) -> String {
    let code = error.code.map(|c| format!(", code {c:?}")).unwrap_or_default();
    format!("{:?}{code}: {}", error.class, error.message)
}

impl Run<'_> {
    fn build(&self, scenario: Scenario) -> Option<(AdapterHandle, Arc<dyn VendorProbe>)> {
        self.harness.build(self.capability, &self.target.adapter, scenario)
    }

    fn op(&self, name: &str) -> Result<&'static OpSpec, String> {
        self.capability.op(name)
    }

    /// One call through the kit pipeline, with idempotency from the input.
    async fn call(&mut self, handle: &AdapterHandle, op: &'static OpSpec, input: &Value) -> Called {
        let spec = CallSpec { idempotent: op.is_idempotent_for(input), ..CallSpec::new(self.target.clone(), op) };
        let target = &self.target;
        let started = tokio::time::Instant::now();
        let result = self.pipeline.call(&spec, || invoke(handle, target, op, input)).await;
        let elapsed = started.elapsed();
        let events = self.recorder.take();
        let attempts = match events.as_slice() {
            [event] => Some(event.attempts),
            _ => None,
        };
        self.calls.push(CallRecord {
            op: op.name,
            result: result.as_ref().map(|_| ()).map_err(|e| e.class),
            elapsed,
            events,
        });
        Called { result, attempts, elapsed }
    }

    /// One direct call of the adapter (no pipeline), bounded by the policy's attempt timeout;
    /// `None` when it did not answer in time. Errors are kept for the secret check.
    async fn direct(
        &mut self,
        handle: &AdapterHandle,
        op: &'static OpSpec,
        input: &Value,
    ) -> Option<Result<Value, ProviderError>> {
        let answer =
            tokio::time::timeout(kit_policy().attempt_timeout, invoke(handle, &self.target, op, input)).await.ok();
        if let Some(Err(error)) = &answer {
            self.raw_errors.push(error.clone());
        }
        answer
    }

    /// The first probe (idempotent, unbound) and its operation.
    fn first_probe(&self) -> Result<(&'static OpSpec, Value), String> {
        let probe = self.probes.first().ok_or("the capability has no probes")?;
        let op = self.op(probe.op)?;
        ensure(op.is_idempotent_for(&probe.input) && probe.bindings.is_empty(), || {
            format!("the first probe `{}` must be idempotent and unbound", probe.op)
        })?;
        Ok((op, probe.input.clone()))
    }

    /// Every probe once, in order, on a fresh healthy adapter; the results by op.
    async fn all_succeed(&mut self, handle: &AdapterHandle) -> (Result<(), String>, BTreeMap<&'static str, Value>) {
        let mut results = BTreeMap::new();
        let mut failures = Vec::new();
        if handle.capability() != self.capability {
            failures.push(format!("the harness built a {} adapter", handle.capability()));
        }
        for probe in self.probes.clone() {
            let op = match self.op(probe.op) {
                Ok(op) => op,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let input = probe.resolve(&results);
            match self.call(handle, op, &input).await.result {
                Ok(value) => {
                    results.insert(probe.op, value);
                }
                Err(e) => failures.push(format!("`{}` failed: {}", probe.op, show(&e))),
            }
        }
        (ensure(failures.is_empty(), || failures.join("; ")), results)
    }

    async fn idempotency(&mut self, handle: &AdapterHandle, probe: &dyn VendorProbe) -> Result<(), String> {
        let mut results = BTreeMap::new();
        let mut failures = Vec::new();
        let mut repeated = 0;
        for spec in self.probes.clone() {
            let op = self.op(spec.op)?;
            let input = spec.resolve(&results);
            let first = self.call(handle, op, &input).await.result;
            let after_first = probe.writes();
            let first = match first {
                Ok(value) => value,
                Err(e) => {
                    failures.push(format!("`{}` failed: {}", spec.op, show(&e)));
                    continue;
                }
            };
            results.insert(spec.op, first);
            if !op.is_idempotent_for(&input) {
                continue;
            }
            repeated += 1;
            let second = self.call(handle, op, &input).await.result;
            let third = self.call(handle, op, &input).await.result;
            let after_repeats = probe.writes();
            match (second, third) {
                (Ok(second), Ok(third)) => {
                    if second != third {
                        failures
                            .push(format!("`{}` repeated returns different results: {second} then {third}", spec.op));
                    }
                }
                (Err(e), _) | (_, Err(e)) => failures.push(format!("`{}` repeated failed: {}", spec.op, show(&e))),
            }
            if after_repeats != after_first {
                failures.push(format!(
                    "`{}` repeated twice made {} more vendor write(s) after the first call",
                    spec.op,
                    after_repeats.saturating_sub(after_first)
                ));
            }
        }
        ensure(repeated > 0 || !failures.is_empty(), || "no probe is idempotent for its input".to_owned())?;
        ensure(failures.is_empty(), || failures.join("; "))
    }

    /// Direct call of the first probe in `scenario`: the error, or why there is none.
    async fn raw_error(&mut self, scenario: Scenario) -> Option<Result<ProviderError, String>> {
        let (handle, _) = self.build(scenario)?;
        let (op, input) = match self.first_probe() {
            Ok(first) => first,
            Err(e) => return Some(Err(e)),
        };
        Some(match self.direct(&handle, op, &input).await {
            Some(Err(error)) => Ok(error),
            Some(Ok(_)) => Err(format!("`{}` succeeded in scenario {scenario:?}", op.name)),
            None => Err(format!(
                "`{}` did not answer within {} ms in scenario {scenario:?}",
                op.name,
                kit_policy().attempt_timeout.as_millis()
            )),
        })
    }

    async fn taxonomy(&mut self, checks: &mut Checks, name: &str, scenario: Scenario, class: ErrorClass) {
        match self.raw_error(scenario).await {
            None => {
                checks.not_applicable(name, format!("the harness cannot stage scenario {}", scenario_name(scenario)))
            }
            Some(outcome) => checks.record(
                name,
                outcome.and_then(|error| {
                    ensure(error.class == class, || {
                        format!("scenario {scenario:?}: expected class {class:?}, got {}", show(&error))
                    })
                }),
            ),
        }
    }

    /// The first probe through the pipeline on a staged adapter, with the requests its vendor
    /// saw during the call.
    async fn staged_call(
        &mut self,
        (handle, probe): (AdapterHandle, Arc<dyn VendorProbe>),
    ) -> Result<(Called, u64), String> {
        let (op, input) = self.first_probe()?;
        let before = probe.requests();
        let called = self.call(&handle, op, &input).await;
        Ok((called, probe.requests().saturating_sub(before)))
    }

    async fn retries_capped(&mut self) -> Option<Result<(), String>> {
        let policy = kit_policy();
        let max = policy.max_attempts;
        let exhausting = Scenario::ServerError { times: EXHAUSTING_FAILURES };
        let recovering = Scenario::ServerError { times: max.saturating_sub(1) };
        let (exhausting_adapter, recovering_adapter) = (self.build(exhausting)?, self.build(recovering)?);
        let mut problems = Vec::new();
        match self.staged_call(exhausting_adapter).await {
            Err(e) => problems.push(e),
            Ok((called, requests)) => {
                let min_wait: Duration = (1..max).map(|retry| policy.backoff(retry) / 2).sum();
                match &called.result {
                    Ok(_) => problems.push(format!("{exhausting:?}: the call succeeded")),
                    Err(e) if e.class != ErrorClass::Retryable => {
                        problems.push(format!("{exhausting:?}: the final error is not retryable: {}", show(e)))
                    }
                    Err(_) => {}
                }
                if called.attempts != Some(max) {
                    problems.push(format!("{exhausting:?}: {:?} attempts, expected {max}", called.attempts));
                }
                if requests != u64::from(max) {
                    problems.push(format!("{exhausting:?}: the vendor saw {requests} requests, expected {max}"));
                }
                if called.elapsed < min_wait {
                    problems.push(format!(
                        "{exhausting:?}: the call took {} ms, less than the minimum backoff of {} ms",
                        called.elapsed.as_millis(),
                        min_wait.as_millis()
                    ));
                }
            }
        }
        match self.staged_call(recovering_adapter).await {
            Err(e) => problems.push(e),
            Ok((called, requests)) => {
                if let Err(e) = &called.result {
                    problems.push(format!("{recovering:?}: the call failed: {}", show(e)));
                }
                if called.attempts != Some(max) {
                    problems.push(format!("{recovering:?}: {:?} attempts, expected {max}", called.attempts));
                }
                if requests != u64::from(max) {
                    problems.push(format!("{recovering:?}: the vendor saw {requests} requests, expected {max}"));
                }
            }
        }
        Some(ensure(problems.is_empty(), || problems.join("; ")))
    }

    async fn retries_permanent(&mut self) -> Option<Result<(), String>> {
        let staged = self.build(Scenario::Rejecting)?;
        let (called, requests) = match self.staged_call(staged).await {
            Ok(outcome) => outcome,
            Err(e) => return Some(Err(e)),
        };
        let mut problems = Vec::new();
        if called.result.is_ok() {
            problems.push("the call succeeded although the vendor rejects every request".to_owned());
        }
        if called.attempts != Some(1) {
            problems.push(format!("{:?} attempts, expected 1", called.attempts));
        }
        if requests != 1 {
            problems.push(format!("the vendor saw {requests} requests, expected 1"));
        }
        Some(ensure(problems.is_empty(), || problems.join("; ")))
    }

    async fn timeouts(&mut self) -> Option<Result<(), String>> {
        let staged = self.build(Scenario::Hang)?;
        let (called, _) = match self.staged_call(staged).await {
            Ok(outcome) => outcome,
            Err(e) => return Some(Err(e)),
        };
        let deadline = kit_policy().total_deadline;
        let mut problems = Vec::new();
        match &called.result {
            Ok(_) => problems.push("the call succeeded although the vendor hangs".to_owned()),
            Err(e) if e.class != ErrorClass::Retryable || e.code != Some(ErrorCode::Timeout) => {
                problems.push(format!("expected a retryable timeout, got {}", show(e)))
            }
            Err(_) => {}
        }
        if called.elapsed > deadline {
            problems.push(format!(
                "the call took {} ms, more than the {} ms total deadline",
                called.elapsed.as_millis(),
                deadline.as_millis()
            ));
        }
        Some(ensure(problems.is_empty(), || problems.join("; ")))
    }

    /// Every probe on the capability's reference mock, directly; the results by op.
    async fn reference_results(&self) -> Result<BTreeMap<&'static str, Value>, String> {
        let name = pal::config::default_adapter(self.capability);
        let factory = providers_mock::factory(name).ok_or_else(|| format!("providers-mock has no `{name}`"))?;
        let built = (factory.build)(&json!({})).map_err(|e| format!("building `{name}`: {e}"))?;
        let target = CallTarget::new(self.capability, name);
        let mut results = BTreeMap::new();
        for probe in &self.probes {
            let op = self.op(probe.op)?;
            let input = probe.resolve(&results);
            let value = invoke(&built.handle, &target, op, &input)
                .await
                .map_err(|e| format!("the reference mock `{name}` failed `{}`: {}", probe.op, show(&e)))?;
            results.insert(probe.op, value);
        }
        Ok(results)
    }

    async fn shape(&self, healthy: &BTreeMap<&'static str, Value>) -> Result<(), String> {
        let reference = self.reference_results().await?;
        let mut problems = Vec::new();
        for probe in &self.probes {
            let Some(expected) = reference.get(probe.op) else { continue };
            match healthy.get(probe.op) {
                None => problems.push(format!("`{}`: no result to compare (see ops.all_succeed)", probe.op)),
                Some(actual) => {
                    let found = shape_mismatches(expected, actual);
                    if !found.is_empty() {
                        problems.push(format!("`{}`: {}", probe.op, found.join(", ")));
                    }
                }
            }
        }
        ensure(problems.is_empty(), || {
            format!("differs from `{}`: {}", pal::config::default_adapter(self.capability), problems.join("; "))
        })
    }

    fn secrets(&self, secret: &Secret) -> Result<(), String> {
        let mut leaks = Vec::new();
        for error in &self.raw_errors {
            let text = format!("{error} {error:?}");
            if text.contains(secret.expose()) {
                leaks.push(format!("{:?} error of `{}`", error.class, error.scope));
            }
        }
        ensure(leaks.is_empty(), || format!("the secret appears in: {}", leaks.join(", ")))
    }
}

/// Runs the capability kit against one adapter.
pub async fn run_capability_kit(harness: &dyn CapabilityHarness, capability: Capability, adapter: &str) -> KitReport {
    let mut checks = Checks::new();
    if capability == Capability::Inventory {
        for name in CAPABILITY_CHECKS {
            checks.not_applicable(name, "inventory adapters are tested by the inventory kit");
        }
        return checks.into_report(Kit::Capability, harness.provider_crate(), capability.as_str(), adapter);
    }
    let (pipeline, recorder) = kit_pipeline();
    let mut run = Run {
        harness,
        capability,
        target: CallTarget::new(capability, adapter),
        probes: probes(capability),
        pipeline,
        recorder,
        calls: Vec::new(),
        raw_errors: Vec::new(),
    };
    let no_healthy = "the harness cannot build a healthy adapter (see ops.all_succeed)";

    // ops.all_succeed
    let healthy = match run.build(Scenario::Healthy) {
        Some((handle, _)) => {
            let (outcome, results) = run.all_succeed(&handle).await;
            checks.record("ops.all_succeed", outcome);
            Some(results)
        }
        None => {
            checks
                .record("ops.all_succeed", Err("the harness cannot build the adapter in scenario Healthy".to_owned()));
            None
        }
    };

    // idempotency.no_duplicate_effects
    match run.build(Scenario::Healthy) {
        Some((handle, probe)) => {
            let outcome = run.idempotency(&handle, probe.as_ref()).await;
            checks.record("idempotency.no_duplicate_effects", outcome);
        }
        None => checks.not_applicable("idempotency.no_duplicate_effects", no_healthy),
    }

    run.taxonomy(
        &mut checks,
        "taxonomy.transient_retryable",
        Scenario::ServerError { times: 1 },
        ErrorClass::Retryable,
    )
    .await;
    run.taxonomy(&mut checks, "taxonomy.permanent_not_retryable", Scenario::Rejecting, ErrorClass::Permanent).await;

    match run.retries_capped().await {
        Some(outcome) => checks.record("retries.capped_with_backoff", outcome),
        None => checks.not_applicable(
            "retries.capped_with_backoff",
            format!(
                "the harness cannot stage scenarios ServerError {{ times: {EXHAUSTING_FAILURES} }} and ServerError {{ times: {} }}",
                kit_policy().max_attempts.saturating_sub(1)
            ),
        ),
    }
    match run.retries_permanent().await {
        Some(outcome) => checks.record("retries.none_for_permanent", outcome),
        None => checks.not_applicable("retries.none_for_permanent", "the harness cannot stage scenario Rejecting"),
    }
    match run.timeouts().await {
        Some(outcome) => checks.record("timeouts.bounded", outcome),
        None => checks.not_applicable("timeouts.bounded", "the harness cannot stage scenario Hang"),
    }

    // metrics.event_fields: over every pipeline call above.
    if run.calls.is_empty() {
        checks.not_applicable("metrics.event_fields", "the kit made no pipeline call");
    } else {
        let problems = metrics_problems(&run.target, kit_policy().max_attempts, &run.calls);
        checks.record("metrics.event_fields", ensure(problems.is_empty(), || problems.join("; ")));
    }
    for event in run.calls.iter().flat_map(|c| &c.events) {
        checks.add_metrics(event.latency_ms, u64::from(event.attempts));
    }

    match &healthy {
        Some(results) => {
            let outcome = run.shape(results).await;
            checks.record("shape.parity_with_mock", outcome);
        }
        None => checks.not_applicable("shape.parity_with_mock", no_healthy),
    }

    // errors.no_secret_in_errors: the raw errors above plus the remaining failure scenarios.
    match harness.secret() {
        None => checks.not_applicable("errors.no_secret_in_errors", "the harness builds its adapters without a secret"),
        Some(secret) if secret.is_empty() => {
            checks.not_applicable("errors.no_secret_in_errors", "the harness's secret is empty")
        }
        Some(secret) => {
            for scenario in [
                Scenario::RateLimited { times: 1, retry_after_ms: 10 },
                Scenario::InvalidCredentials,
                Scenario::Unreachable,
            ] {
                let _ = run.raw_error(scenario).await;
            }
            if run.raw_errors.is_empty() {
                checks.not_applicable("errors.no_secret_in_errors", "no staged failure produced an adapter error");
            } else {
                checks.record("errors.no_secret_in_errors", run.secrets(&secret));
            }
        }
    }

    checks.into_report(Kit::Capability, harness.provider_crate(), capability.as_str(), adapter)
}

/// Runs the capability kit against every adapter the harness lists (inventory entries are
/// skipped: they have their own kit), in `(capability, adapter)` order.
pub async fn run_capability_kits(harness: &dyn CapabilityHarness) -> Vec<KitReport> {
    let mut adapters = harness.adapters();
    adapters.retain(|(capability, _)| *capability != Capability::Inventory);
    adapters.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    adapters.dedup();
    let mut reports = Vec::with_capacity(adapters.len());
    for (capability, adapter) in adapters {
        reports.push(run_capability_kit(harness, capability, &adapter).await);
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_probes_with_a_safe_first_one() {
        for capability in Capability::ALL {
            let probes = probes(capability);
            if capability == Capability::Inventory {
                assert!(probes.is_empty());
                continue;
            }
            let first = &probes[0];
            let op = capability.op(first.op).unwrap();
            assert!(op.is_idempotent_for(&first.input) && first.bindings.is_empty(), "{capability}");
            let mut covered: Vec<&str> = probes.iter().map(|p| p.op).collect();
            covered.sort_unstable();
            let mut ops: Vec<&str> = capability.ops().iter().map(|o| o.name).filter(|n| *n != "health").collect();
            ops.sort_unstable();
            assert_eq!(covered, ops, "{capability}: every operation but health has one probe");
            for (n, probe) in probes.iter().enumerate() {
                for binding in &probe.bindings {
                    assert!(probes[..n].iter().any(|p| p.op == binding.from_op), "{capability}: {binding:?}");
                    assert!(probe.input.pointer(binding.input_pointer).is_some(), "{capability}: {binding:?}");
                }
            }
        }
    }

    #[test]
    fn bindings_take_earlier_results() {
        let pause = &probes(Capability::Ads)[2];
        let mut results = BTreeMap::new();
        assert_eq!(pause.resolve(&results), json!({"campaign_id": "conf-1"}));
        results.insert("create_campaign", json!({"id": "vendor-42"}));
        assert_eq!(pause.resolve(&results), json!({"campaign_id": "vendor-42"}));
    }

    #[test]
    fn shapes_compare_keys_types_and_first_elements() {
        let mock = json!({"a": 1, "b": {"c": "x", "d": [1]}, "e": [{"f": true}], "g": null});
        assert!(
            shape_mismatches(&mock, &json!({"a": 2.5, "b": {"c": "y", "d": []}, "e": [{"f": false}], "g": 3, "z": 0}))
                .is_empty()
        );
        assert_eq!(
            shape_mismatches(&mock, &json!({"a": "1", "b": {"d": {}}, "e": [{"f": "no"}]})),
            [
                "$.a: expected number, found string",
                "$.b.c: missing",
                "$.b.d: expected array, found object",
                "$.e[0].f: expected boolean, found string",
                "$.g: missing",
            ]
        );
        assert_eq!(shape_mismatches(&json!([{"k": 1}]), &json!([{}])), ["$[0].k: missing"]);
    }

    fn event(op: &str, attempts: u32, outcome: Outcome, error_class: Option<ErrorClass>) -> MetricsEvent {
        MetricsEvent {
            capability: Capability::Ads,
            adapter: "mock_ads".to_owned(),
            op: op.to_owned(),
            latency_ms: 3,
            attempts,
            error_class,
            outcome,
        }
    }

    #[test]
    fn metrics_check_can_fail() {
        let target = CallTarget::new(Capability::Ads, "mock_ads");
        let ok = |events| CallRecord { op: "report", result: Ok(()), elapsed: Duration::from_millis(5), events };
        let good = [
            ok(vec![event("report", 1, Outcome::Ok, None)]),
            CallRecord {
                op: "pause",
                result: Err(ErrorClass::Permanent),
                elapsed: Duration::from_millis(5),
                events: vec![event("pause", 1, Outcome::Error, Some(ErrorClass::Permanent))],
            },
        ];
        assert!(metrics_problems(&target, 3, &good).is_empty());

        let missing = [ok(vec![])];
        assert_eq!(metrics_problems(&target, 3, &missing), ["call 1 (`report`): 0 metrics events, expected exactly 1"]);
        let doubled = [ok(vec![event("report", 1, Outcome::Ok, None), event("report", 1, Outcome::Ok, None)])];
        assert_eq!(metrics_problems(&target, 3, &doubled).len(), 1);
        let mut wrong = event("pause", 4, Outcome::Error, Some(ErrorClass::Retryable));
        wrong.adapter = "other".to_owned();
        wrong.latency_ms = 50;
        let problems = metrics_problems(&target, 3, &[ok(vec![wrong])]);
        assert_eq!(problems.len(), 1);
        for part in [
            "adapter `other`",
            "op `pause`",
            "attempts 4",
            "outcome Error",
            "error_class Some(Retryable)",
            "latency_ms 50",
        ] {
            assert!(problems[0].contains(part), "{part}: {problems:?}");
        }
    }
}
