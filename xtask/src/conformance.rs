//! `cargo xtask conformance`: runs every provider crate's kit and gathers the reports.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace_root;

/// Where the goldens live, relative to the workspace root.
pub(crate) const GOLDEN_DIR: &str = "tests/golden/conformance";

#[derive(Debug, Default)]
pub(crate) struct Options {
    pub(crate) provider: Option<String>,
    pub(crate) check: bool,
    pub(crate) bless: bool,
    pub(crate) json: bool,
}

impl Options {
    pub(crate) fn parse(args: &[&str]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match *arg {
                "--check" => options.check = true,
                "--bless" => options.bless = true,
                "--json" => options.json = true,
                "--provider" => {
                    options.provider = Some(rest.next().ok_or("--provider needs a crate name")?.to_string());
                }
                other => return Err(format!("unknown conformance argument `{other}`")),
            }
        }
        if options.check && options.bless {
            return Err("--check and --bless exclude each other".to_owned());
        }
        Ok(options)
    }
}

/// Where to run: a workspace root, and optionally a target dir shared with another workspace.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    pub(crate) target_dir: Option<PathBuf>,
}

impl Workspace {
    pub(crate) fn current() -> Self {
        Workspace { root: workspace_root(), target_dir: None }
    }

    fn cargo(&self) -> std::process::Command {
        let mut command = crate::cargo();
        command.current_dir(&self.root);
        if let Some(target) = &self.target_dir {
            command.env("CARGO_TARGET_DIR", target);
        }
        command
    }
}

/// Provider crates of the workspace (`providers-*`), found with `cargo metadata`.
pub(crate) fn provider_crates(workspace: &Workspace) -> Result<Vec<(String, PathBuf)>, String> {
    let output = workspace
        .cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let mut crates: Vec<(String, PathBuf)> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| {
            let name = package["name"].as_str()?;
            let manifest = package["manifest_path"].as_str()?;
            let dir = Path::new(manifest).parent()?.to_path_buf();
            name.starts_with("providers-").then(|| (name.to_owned(), dir))
        })
        .collect();
    crates.sort();
    Ok(crates)
}

struct Run {
    provider: String,
    elapsed: Duration,
    tests_passed: bool,
    report: Option<Value>,
    output: String,
}

/// The report with every `latency_ms` zeroed: timings never enter goldens.
fn normalized(report: &Value) -> Value {
    let mut copy = report.clone();
    if let Some(reports) = copy["reports"].as_array_mut() {
        for report in reports {
            if let Some(metrics) = report.get_mut("metrics").and_then(Value::as_object_mut) {
                metrics.insert("latency_ms".to_owned(), Value::from(0));
            }
        }
    }
    copy
}

fn json_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// What a run found: the table rows' failed counts by provider.
pub(crate) fn run(options: &Options) -> Result<(), String> {
    run_in(&Workspace::current(), options).map(|_| ())
}

/// Runs the kits of `workspace`; returns the number of failed checks per provider.
pub(crate) fn run_in(workspace: &Workspace, options: &Options) -> Result<Vec<(String, u64)>, String> {
    let root = workspace.root.clone();
    let out_dir = root.join("target/conformance");
    let mut crates = provider_crates(workspace)?;
    if let Some(only) = &options.provider {
        crates.retain(|(name, _)| name == only);
        if crates.is_empty() {
            return Err(format!("no provider crate named `{only}`"));
        }
    }
    let mut runs = Vec::new();
    let started = Instant::now();
    for (provider, dir) in &crates {
        if !dir.join("tests/conformance.rs").is_file() {
            runs.push(Run {
                provider: provider.clone(),
                elapsed: Duration::ZERO,
                tests_passed: false,
                report: None,
                output: format!("{} has no tests/conformance.rs", dir.display()),
            });
            continue;
        }
        let report_path = out_dir.join(format!("{provider}.json"));
        let _ = std::fs::remove_file(&report_path);
        let begun = Instant::now();
        let output = workspace
            .cargo()
            .args(["test", "--quiet", "-p", provider, "--test", "conformance"])
            .env("CW_CONFORMANCE_DIR", &out_dir)
            .output()
            .map_err(|e| format!("cargo test -p {provider}: {e}"))?;
        let elapsed = begun.elapsed();
        let report = std::fs::read(&report_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        runs.push(Run {
            provider: provider.clone(),
            elapsed,
            tests_passed: output.status.success(),
            report,
            output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        });
    }
    let total_time = started.elapsed();

    let mut failures = Vec::new();
    print_table(&runs, total_time, options.json);
    for run in &runs {
        match &run.report {
            None => failures.push(format!(
                "{}: no report written (the conformance test must call `write_if_requested` before asserting)\n{}",
                run.provider, run.output
            )),
            Some(report) => {
                if !run.tests_passed || report["summary"]["failed"].as_u64() != Some(0) {
                    failures.push(format!("{}: conformance failed\n{}", run.provider, run.output));
                }
                let golden = root.join(GOLDEN_DIR).join(format!("{}.json", run.provider));
                let text = json_text(&normalized(report));
                if options.bless {
                    std::fs::create_dir_all(golden.parent().unwrap_or(&root))
                        .and_then(|()| std::fs::write(&golden, &text))
                        .map_err(|e| format!("{}: {e}", golden.display()))?;
                    eprintln!("xtask: blessed {}", golden.display());
                } else if options.check {
                    match std::fs::read_to_string(&golden) {
                        Ok(expected) if expected == text => {}
                        Ok(_) => failures.push(format!(
                            "{}: report differs from {} (compare with target/conformance/{}.json; `cargo xtask conformance --bless` accepts it)",
                            run.provider,
                            golden.display(),
                            run.provider
                        )),
                        Err(_) => failures.push(format!(
                            "{}: no golden at {} (`cargo xtask conformance --bless` writes it)",
                            run.provider,
                            golden.display()
                        )),
                    }
                }
            }
        }
    }
    if options.json {
        let all: serde_json::Map<String, Value> =
            runs.iter().filter_map(|r| Some((r.provider.clone(), r.report.clone()?))).collect();
        print!("{}", json_text(&Value::Object(all)));
    }
    let failed_counts = runs
        .iter()
        .map(|r| (r.provider.clone(), r.report.as_ref().and_then(|v| v["summary"]["failed"].as_u64()).unwrap_or(0)))
        .collect();
    if failures.is_empty() {
        eprintln!("xtask: conformance passed for {} provider crate(s) in {:.1}s", runs.len(), total_time.as_secs_f64());
        Ok(failed_counts)
    } else {
        Err(failures.join("\n"))
    }
}

fn print_table(runs: &[Run], total: Duration, to_stderr: bool) {
    let mut lines = vec![format!(
        "{:<24} {:<18} {:<24} {:>6} {:>6} {:>6} {:>8}",
        "PROVIDER", "CAPABILITY", "ADAPTER", "PASSED", "FAILED", "N/A", "TIME"
    )];
    for run in runs {
        let reports = run.report.as_ref().and_then(|r| r["reports"].as_array().cloned()).unwrap_or_default();
        if reports.is_empty() {
            lines.push(format!(
                "{:<24} {:<18} {:<24} {:>6} {:>6} {:>6} {:>7.1}s",
                run.provider,
                "-",
                "(no report)",
                "-",
                "-",
                "-",
                run.elapsed.as_secs_f64()
            ));
        }
        for (index, report) in reports.iter().enumerate() {
            let count = |status: &str| {
                report["checks"].as_array().map_or(0, |checks| checks.iter().filter(|c| c["status"] == status).count())
            };
            let time = if index == 0 { format!("{:.1}s", run.elapsed.as_secs_f64()) } else { String::new() };
            lines.push(format!(
                "{:<24} {:<18} {:<24} {:>6} {:>6} {:>6} {:>8}",
                run.provider,
                report["capability"].as_str().unwrap_or("?"),
                report["adapter"].as_str().unwrap_or("?"),
                count("passed"),
                count("failed"),
                count("not_applicable"),
                time
            ));
        }
    }
    lines.push(format!("total time: {:.1}s", total.as_secs_f64()));
    let text = lines.join("\n");
    if to_stderr {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}
