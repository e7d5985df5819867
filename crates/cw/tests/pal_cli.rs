#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end tests of `cw providers` and `cw call` against the built-in mocks.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs cw in `dir` with `PROVIDERS_CONFIG_PATH` set to `config` (or unset).
fn cw(dir: &Path, config: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cw"));
    command.current_dir(dir).args(args).env_remove("PROVIDERS_CONFIG_PATH");
    if let Some(config) = config {
        command.env("PROVIDERS_CONFIG_PATH", config);
    }
    command.output().expect("cw runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

fn assert_fails(output: &Output, needles: &[&str]) {
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
}

fn config(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn providers_lists_every_capability_on_its_mock_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let output = cw(dir.path(), None, &["providers", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).ends_with("}\n"));
    let listing = json(&output);
    assert!(listing["source"].as_str().unwrap().starts_with("built-in default"));
    let rows = listing["providers"].as_array().unwrap();
    let pairs: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r["capability"].as_str().unwrap(), r["adapter"].as_str().unwrap(), r["healthy"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("ads", "mock_ads", true),
            ("cdp", "mock_cdp", true),
            ("experiments", "mock_experiments", true),
            ("inventory", "mock_inventory", true),
            ("lifecycle", "mock_lifecycle", true),
            ("llm_gateway", "mock_llm_gateway", true),
            ("llm_observability", "mock_llm_observability", true),
            ("vectorstore", "mock_vectorstore", true),
        ]
    );
    let table = text(&cw(dir.path(), None, &["providers"]).stdout);
    assert!(
        table.contains("CAPABILITY") && table.contains("llm_observability  mock_llm_observability  yes"),
        "{table}"
    );
}

#[test]
fn providers_reads_the_default_path_then_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("providers")).unwrap();
    config(
        &dir.path().join("providers"),
        "providers.yaml",
        "capabilities:\n  vectorstore: mock_vectorstore_b\nadapters:\n  mock_vectorstore_b:\n    faults: {health: down}\n",
    );
    let listing = json(&cw(dir.path(), None, &["providers", "--json", "-v"]));
    assert_eq!(listing["providers"][0]["adapter"], "mock_vectorstore_b");
    assert_eq!(listing["providers"][0]["healthy"], false);
    assert_eq!(listing["providers"][0]["health"]["status"], "down");

    let other = config(dir.path(), "other.yaml", "capabilities: {ads: noop_ads}\n");
    let listing = json(&cw(dir.path(), Some(&other), &["providers", "--json"]));
    assert_eq!(listing["providers"][0]["adapter"], "noop_ads");
}

#[test]
fn bad_registry_config_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let broken = config(dir.path(), "broken.yaml", "capabilities:\n  ads: mock_ads\n  cdp: [\n");
    assert_fails(&cw(dir.path(), Some(&broken), &["providers"]), &["broken.yaml:"]);
    let unknown_cap = config(dir.path(), "cap.yaml", "capabilities:\n  crm: mock_ads\n");
    assert_fails(
        &cw(dir.path(), Some(&unknown_cap), &["providers"]),
        &["cap.yaml:2", "unknown capability `crm`", "known: ads, cdp"],
    );
    let unknown_adapter = config(dir.path(), "adapter.yaml", "capabilities:\n  ads: acme_ads\n");
    assert_fails(
        &cw(dir.path(), Some(&unknown_adapter), &["call", "ads", "report"]),
        &["adapter.yaml:2", "unknown adapter `acme_ads`", "known: mock_ads, noop_ads"],
    );
    let missing = dir.path().join("missing.yaml");
    assert_fails(&cw(dir.path(), Some(&missing), &["providers"]), &["PROVIDERS_CONFIG_PATH=", "missing.yaml"]);
    let unmapped = config(dir.path(), "unmapped.yaml", "capabilities: {ads: mock_ads}\n");
    assert_fails(
        &cw(dir.path(), Some(&unmapped), &["call", "cdp", "get_profile", "--input", r#"{"id":"u"}"#]),
        &["`cdp` is not mapped"],
    );
}

#[test]
fn call_prints_the_result_and_its_metrics_event() {
    let dir = tempfile::tempdir().unwrap();
    let output = cw(dir.path(), None, &["call", "ads", "report", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body = json(&output);
    assert_eq!(
        body["result"][1],
        serde_json::json!({"date": "2024-01-02", "impressions": 110, "clicks": 11, "spend_cents": 145})
    );
    let metrics = &body["metrics"];
    assert_eq!(
        (metrics["capability"].as_str(), metrics["adapter"].as_str(), metrics["op"].as_str()),
        (Some("ads"), Some("mock_ads"), Some("report"))
    );
    assert_eq!((metrics["attempts"].as_u64(), metrics["outcome"].as_str()), (Some(1), Some("ok")));
    assert!(metrics.get("latency_ms").is_some() && metrics.get("error_class").is_some());

    let plain = cw(dir.path(), None, &["call", "llm_gateway", "models"]);
    assert!(text(&plain.stdout).contains("mock/medium"));
    assert!(text(&plain.stderr).contains("metrics: capability=llm_gateway adapter=mock_llm_gateway op=models"));

    let noop = json(&cw(
        dir.path(),
        None,
        &["call", "ads", "create_campaign", "--adapter", "noop_ads", "--input", r#"{"plan":{"geo":"US"}}"#, "--json"],
    ));
    assert_eq!(noop["result"], serde_json::json!({"id": "noop", "status": "active"}));

    let input = config(dir.path(), "input.json", r#"{"key": "ui", "default": "old"}"#);
    let from_file = json(&cw(
        dir.path(),
        None,
        &["call", "experiments", "get_flag", "--input", &format!("@{}", input.display()), "--json"],
    ));
    assert_eq!(from_file["result"], "old");
}

#[test]
fn call_retries_transient_faults_and_fails_fast_on_permanent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = config(
        dir.path(),
        "flaky.yaml",
        "capabilities: {ads: mock_ads}\nadapters:\n  mock_ads: {faults: {fail_times: 2}}\n",
    );
    let body = json(&cw(dir.path(), Some(&flaky), &["call", "ads", "report", "--json"]));
    assert_eq!(body["metrics"]["attempts"], 3);
    assert_eq!(body["metrics"]["outcome"], "ok");

    let broken = config(
        dir.path(),
        "perm.yaml",
        "capabilities: {ads: mock_ads}\nadapters:\n  mock_ads: {faults: {fail_permanently: true}}\n",
    );
    let output = cw(dir.path(), Some(&broken), &["call", "ads", "report", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let body = json(&output);
    assert_eq!(body["metrics"]["attempts"], 1);
    assert_eq!(body["metrics"]["error_class"], "permanent");
    assert_eq!(body["error"]["scope"], "ads/mock_ads");
}

#[test]
fn call_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    assert_fails(&cw(dir.path(), None, &["call", "adz", "report"]), &["unknown capability `adz`", "known: ads"]);
    assert_fails(
        &cw(dir.path(), None, &["call", "ads", "launch"]),
        &["no operation `launch`", "known: create_campaign"],
    );
    assert_fails(
        &cw(dir.path(), None, &["call", "ads", "report", "--input", "[1"]),
        &["--input: invalid JSON", "line 1 column 2"],
    );
    assert_fails(
        &cw(dir.path(), None, &["call", "ads", "report", "--input", "[1]"]),
        &["--input: must be a JSON object"],
    );
    assert_fails(
        &cw(dir.path(), None, &["call", "ads", "pause", "--input", r#"{"campaign_id": 7}"#]),
        &["input.campaign_id"],
    );
    assert_fails(&cw(dir.path(), None, &["call", "ads", "report", "--adapter", "acme"]), &["unknown adapter `acme`"]);
    assert_fails(&cw(dir.path(), None, &["call", "ads", "report", "--input", "@/no/such.json"]), &["/no/such.json"]);
}

#[test]
fn a_token_in_adapter_settings_never_appears_in_cw_output() {
    const TOKEN: &str = "tok_live_5f4dcc3b5aa765d61d83";
    let dir = tempfile::tempdir().unwrap();
    let leaky = config(
        dir.path(),
        "leaky.yaml",
        &format!(
            "capabilities: {{ads: mock_ads}}\nadapters:\n  mock_ads:\n    token: {TOKEN}\n    faults: {{fail_times: 5, echo_token_in_errors: true}}\n"
        ),
    );
    let runs = [
        cw(dir.path(), Some(&leaky), &["call", "ads", "report"]),
        cw(dir.path(), Some(&leaky), &["call", "ads", "report", "--json"]),
        cw(dir.path(), Some(&leaky), &["providers", "-v", "--json"]),
        cw(dir.path(), Some(&leaky), &["providers", "-v"]),
    ];
    assert_eq!(runs[0].status.code(), Some(2), "the call fails (fault injected)");
    assert!(text(&runs[1].stdout).contains("[REDACTED]"), "the echoed token is scrubbed: {}", text(&runs[1].stdout));
    for run in &runs {
        for stream in [text(&run.stdout), text(&run.stderr)] {
            assert!(!stream.contains(TOKEN), "token leaked: {stream}");
        }
    }
    let bad_settings = config(
        dir.path(),
        "bad.yaml",
        &format!("capabilities: {{ads: mock_ads}}\nadapters:\n  mock_ads: {{token: {TOKEN}, fautls: {{}}}}\n"),
    );
    let output = cw(dir.path(), Some(&bad_settings), &["providers"]);
    assert_fails(&output, &["bad.yaml:3", "fautls"]);
    assert!(!text(&output.stderr).contains(TOKEN));
}
