//! Conformance reports: one [`KitReport`] per (capability, adapter), gathered in a
//! [`ConformanceReport`] with a summary. Persisted JSON has sorted keys, a stable order and a
//! trailing newline; `latency_ms` is the only timing, and golden comparisons zero it.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The environment variable naming the directory reports are written to (set by
/// `cargo xtask conformance`; unset, tests write nothing).
pub const REPORT_DIR_ENV: &str = "CW_CONFORMANCE_DIR";

/// Which kit produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kit {
    /// The media inventory contract (seed 000).
    Inventory,
    /// A PAL capability (ads, lifecycle, …).
    Capability,
    /// The admit provider protocol (seed 002).
    Protocol,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The provider behaved as the contract says.
    Passed,
    /// It did not; `errors` says how.
    Failed,
    /// The provider does not claim what the check tests; `reason` says why. Never a pass.
    NotApplicable,
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable name, `<area>.<what>`, e.g. `writes.add_idempotent`.
    pub name: String,
    /// The outcome.
    pub status: CheckStatus,
    /// Why the check does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Pipeline measurements over a kit's calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitMetrics {
    /// Total latency of the kit's pipeline calls (zeroed in goldens).
    pub latency_ms: u64,
    /// Total attempts of the kit's pipeline calls.
    pub attempts: u64,
}

/// The report of one kit run against one adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitReport {
    /// Which kit.
    pub kit: Kit,
    /// The provider crate, e.g. `providers-mock`.
    pub provider: String,
    /// The capability (`inventory`, `ads`, …) or `protocol`.
    pub capability: String,
    /// The adapter name or admit scope id.
    pub adapter: String,
    /// No check failed.
    pub pass: bool,
    /// Pipeline measurements.
    pub metrics: KitMetrics,
    /// Every failure, as `<check>: <message>`.
    pub errors: Vec<String>,
    /// Every check, in the kit's order.
    pub checks: Vec<CheckResult>,
}

impl KitReport {
    /// Names of the checks with `status`.
    pub fn names_with(&self, status: CheckStatus) -> Vec<&str> {
        self.checks.iter().filter(|c| c.status == status).map(|c| c.name.as_str()).collect()
    }

    /// The named check, if the kit ran it.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Check counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Checks run or recorded.
    pub total: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Not applicable.
    pub not_applicable: u64,
}

/// Every kit report of one provider crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConformanceReport {
    /// Counts over all checks.
    pub summary: Summary,
    /// Reports ordered by `(capability, adapter, kit)`.
    pub reports: Vec<KitReport>,
}

impl ConformanceReport {
    /// Sorts the reports and computes the summary.
    pub fn new(mut reports: Vec<KitReport>) -> Self {
        reports.sort_by(|a, b| (&a.capability, &a.adapter, a.kit).cmp(&(&b.capability, &b.adapter, b.kit)));
        let mut summary = Summary::default();
        for check in reports.iter().flat_map(|r| &r.checks) {
            summary.total += 1;
            match check.status {
                CheckStatus::Passed => summary.passed += 1,
                CheckStatus::Failed => summary.failed += 1,
                CheckStatus::NotApplicable => summary.not_applicable += 1,
            }
        }
        ConformanceReport { summary, reports }
    }

    /// Whether every kit passed.
    pub fn pass(&self) -> bool {
        self.reports.iter().all(|r| r.pass)
    }

    /// Pretty JSON, keys sorted, trailing newline.
    pub fn to_json(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The same report with timings zeroed, as goldens keep it.
    pub fn without_timings(&self) -> Self {
        let mut copy = self.clone();
        for report in &mut copy.reports {
            report.metrics.latency_ms = 0;
        }
        copy
    }

    /// Writes `<dir>/<provider>.json` when [`REPORT_DIR_ENV`] is set; returns the path written.
    pub fn write_if_requested(&self, provider: &str) -> std::io::Result<Option<PathBuf>> {
        match std::env::var_os(REPORT_DIR_ENV) {
            Some(dir) => self.write_to(Path::new(&dir), provider).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `<dir>/<provider>.json`.
    pub fn write_to(&self, dir: &Path, provider: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{provider}.json"));
        std::fs::write(&path, self.to_json())?;
        Ok(path)
    }
}

/// Collects check results in order while a kit runs.
#[derive(Debug, Default)]
pub struct Checks {
    results: Vec<CheckResult>,
    metrics: KitMetrics,
}

impl Checks {
    /// An empty collection.
    pub fn new() -> Self {
        Checks::default()
    }

    /// Records a check that does not apply, with the reason.
    pub fn not_applicable(&mut self, name: &str, reason: impl Into<String>) {
        self.results.push(CheckResult {
            name: name.to_owned(),
            status: CheckStatus::NotApplicable,
            reason: Some(reason.into()),
            errors: vec![],
        });
    }

    /// Records a check's outcome.
    pub fn record(&mut self, name: &str, outcome: Result<(), String>) {
        let (status, errors) = match outcome {
            Ok(()) => (CheckStatus::Passed, vec![]),
            Err(error) => (CheckStatus::Failed, vec![error]),
        };
        self.results.push(CheckResult { name: name.to_owned(), status, reason: None, errors });
    }

    /// Runs an async check and records its outcome.
    pub async fn run<F: Future<Output = Result<(), String>>>(&mut self, name: &str, check: F) {
        let outcome = check.await;
        self.record(name, outcome);
    }

    /// Adds pipeline measurements.
    pub fn add_metrics(&mut self, latency_ms: u64, attempts: u64) {
        self.metrics.latency_ms += latency_ms;
        self.metrics.attempts += attempts;
    }

    /// Finishes into a report.
    pub fn into_report(self, kit: Kit, provider: &str, capability: &str, adapter: &str) -> KitReport {
        let errors = self
            .results
            .iter()
            .flat_map(|c| c.errors.iter().map(move |e| format!("{}: {e}", c.name)))
            .collect::<Vec<_>>();
        KitReport {
            kit,
            provider: provider.to_owned(),
            capability: capability.to_owned(),
            adapter: adapter.to_owned(),
            pass: errors.is_empty() && !self.results.iter().any(|c| c.status == CheckStatus::Failed),
            metrics: self.metrics,
            errors,
            checks: self.results,
        }
    }
}

/// Returns `Err(message)` unless `condition` holds: the kits' assertion helper.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}
