#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end tests of `cw admit …`: outputs, exit codes, and hostile input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn cw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cw")).args(args).output().expect("cw runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts a failure with exit code `code` whose stderr mentions every `needle`, and no panic.
fn assert_fails(output: &Output, code: i32, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}\nstdout: {}", stdout(output));
    assert!(!err.contains("panicked"), "panic: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
}

fn last_line(output: &Output) -> String {
    stdout(output).lines().last().unwrap_or_default().to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "hello\n").unwrap();
    dir
}

#[test]
fn describe_lists_registered_scopes() {
    let output = cw(&["admit", "describe"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.ends_with("}\n]\n"), "trailing newline after sorted JSON: {text}");
    let descriptors: Value = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("describe_all", descriptors);
}

#[test]
fn describe_unknown_scope_lists_known_ones() {
    assert_fails(&cw(&["admit", "describe", "nope.scope"]), 2, &["nope.scope", "ingest.dir"]);
}

#[test]
fn pack_hash_of_described_descriptor_is_stable_and_algorithm_prefixed() {
    let dir = tempfile::tempdir().unwrap();
    let descriptor = stdout(&cw(&["admit", "describe", "ingest.dir"]));
    let file = write(dir.path(), "d.json", &descriptor);
    let blake = cw(&["admit", "pack-hash", &file]);
    assert!(blake.status.success());
    let blake = last_line(&blake);
    assert!(blake.starts_with("blake3:") && blake.len() == 71, "{blake}");
    let sha = last_line(&cw(&["admit", "pack-hash", &file, "--digest", "sha256"]));
    assert!(sha.starts_with("sha256:") && sha.len() == 71, "{sha}");

    // Editing doc prose keeps the identity; editing the version changes it.
    let mut value: Value = serde_json::from_str(&descriptor).unwrap();
    value["predicates"][0]["doc"] = Value::String("other words".into());
    let doc_edit = write(dir.path(), "doc.json", &value.to_string());
    assert_eq!(last_line(&cw(&["admit", "pack-hash", &doc_edit])), blake);
    value["version"] = Value::from(2);
    let version_edit = write(dir.path(), "v2.json", &value.to_string());
    assert_ne!(last_line(&cw(&["admit", "pack-hash", &version_edit])), blake);
}

#[test]
fn pack_hash_rejects_malformed_and_mistyped_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let good = stdout(&cw(&["admit", "describe", "ingest.dir"]));

    let truncated = write(dir.path(), "truncated.json", &good[..good.len() / 2]);
    assert_fails(&cw(&["admit", "pack-hash", &truncated]), 2, &["truncated.json:"]);

    let mistyped = write(dir.path(), "mistyped.json", &good.replace("\"version\": 1", "\"version\": \"one\""));
    assert_fails(&cw(&["admit", "pack-hash", &mistyped]), 2, &["mistyped.json", "field `version`", "expected u32"]);

    let unknown = write(dir.path(), "unknown.json", &good.replace("\"deterministic\"", "\"determinstic\""));
    assert_fails(&cw(&["admit", "pack-hash", &unknown]), 2, &["unknown.json", "determinstic"]);

    let nested = write(dir.path(), "nested.json", &good.replace("\"requires_fs\": true", "\"requires_fs\": \"yes\""));
    assert_fails(&cw(&["admit", "pack-hash", &nested]), 2, &["field `closure.requires_fs`"]);

    let nan = write(dir.path(), "nan.json", &good.replace("\"version\": 1", "\"version\": NaN"));
    assert_fails(&cw(&["admit", "pack-hash", &nan]), 2, &["nan.json:"]);

    let infinite = write(
        dir.path(),
        "inf.json",
        &good.replace(
            "\"type\": \"object\"\n      },\n      \"predicate_id\"",
            "\"type\": \"object\", \"maximum\": 1e999\n      },\n      \"predicate_id\"",
        ),
    );
    assert_ne!(std::fs::read_to_string(&infinite).unwrap(), good, "fixture must contain the huge float");
    assert_fails(&cw(&["admit", "pack-hash", &infinite]), 2, &["inf.json:", "out of range"]);

    assert_fails(&cw(&["admit", "pack-hash", "/definitely/not/here.json"]), 2, &["/definitely/not/here.json"]);
    assert_fails(&cw(&["admit", "pack-hash", &truncated, "--digest", "md5"]), 2, &["md5"]);
}

#[test]
fn snapshot_prints_hash_last_and_ignores_created_at() {
    let tree = sample_tree();
    let root = tree.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let first_file = out.path().join("a.json");
    let first = cw(&[
        "admit",
        "snapshot",
        "ingest.dir",
        "--root",
        root,
        "--created-at",
        "2026-01-01T00:00:00Z",
        "--out",
        first_file.to_str().unwrap(),
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&first_file).unwrap()).unwrap();
    assert_eq!(written["facts_bundle"]["snapshot_hash"].as_str().unwrap(), last_line(&first));
    assert_eq!(written["facts_bundle"]["created_at"], "2026-01-01T00:00:00Z");
    assert_eq!(written["facts_bundle"]["facts"].as_array().unwrap().len(), 2);

    let second = cw(&["admit", "snapshot", "ingest.dir", "--root", root, "--created-at", "2030-06-01T12:00:00+02:00"]);
    assert!(second.status.success());
    assert_eq!(last_line(&second), last_line(&first), "created_at must not enter the hash");

    std::fs::write(tree.path().join("README.md"), "changed\n").unwrap();
    let third = cw(&["admit", "snapshot", "ingest.dir", "--root", root]);
    assert_ne!(last_line(&third), last_line(&first));
}

#[test]
fn snapshot_refuses_bad_roots_and_timestamps() {
    assert_fails(
        &cw(&["admit", "snapshot", "ingest.dir", "--root", "/no/such/dir"]),
        2,
        &["root path is not a directory: /no/such/dir"],
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let file_path = file.path().to_str().unwrap();
    assert_fails(
        &cw(&["admit", "snapshot", "ingest.dir", "--root", file_path]),
        2,
        &["root path is not a directory", file_path],
    );
    let tree = sample_tree();
    assert_fails(
        &cw(&["admit", "snapshot", "ingest.dir", "--root", tree.path().to_str().unwrap(), "--created-at", "yesterday"]),
        2,
        &["params.created_at", "yesterday"],
    );
    assert_fails(&cw(&["admit", "snapshot", "other.scope", "--root", "."]), 2, &["other.scope", "ingest.dir"]);
}

fn snapshot_to(tree: &Path, out: &Path) {
    let output = cw(&[
        "admit",
        "snapshot",
        "ingest.dir",
        "--root",
        tree.to_str().unwrap(),
        "--created-at",
        "2026-01-01T00:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn verify_accepts_untouched_artifacts_and_catches_tampering() {
    let tree = sample_tree();
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("s.json");
    let cbor_path = out.path().join("s.cbor");
    snapshot_to(tree.path(), &json_path);
    snapshot_to(tree.path(), &cbor_path);
    for path in [&json_path, &cbor_path] {
        let output = cw(&["admit", "verify", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(result["valid"], true);
    }

    // A changed size: the hash no longer matches.
    let text = std::fs::read_to_string(&json_path).unwrap();
    let tampered = write(out.path(), "tampered.json", &text.replacen("\"size\": 6", "\"size\": 7", 1));
    assert_ne!(std::fs::read_to_string(&tampered).unwrap(), text);
    let output = cw(&["admit", "verify", &tampered]);
    assert_fails(&output, 1, &["altered"]);
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(result["hash_matches"], false);

    // A flipped byte inside the CBOR artifact's facts.
    let mut bytes = std::fs::read(&cbor_path).unwrap();
    let at = bytes.windows(9).position(|w| w == b"README.md").unwrap();
    bytes[at] = b'X';
    let flipped = out.path().join("flipped.cbor");
    std::fs::write(&flipped, &bytes).unwrap();
    assert_fails(&cw(&["admit", "verify", flipped.to_str().unwrap()]), 1, &["altered"]);

    // A digest with an unknown algorithm is named, with its field.
    let hash = text.split("\"snapshot_hash\": \"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let md5 = write(out.path(), "md5.json", &text.replace(&hash, &hash.replace("blake3:", "md5:")));
    assert_fails(&cw(&["admit", "verify", &md5]), 2, &["facts_bundle.snapshot_hash", "unknown digest algorithm `md5`"]);

    assert_fails(&cw(&["admit", "verify", &write(out.path(), "junk.json", "{not json")]), 2, &["junk.json", "line 1"]);
    assert_fails(
        &cw(&["admit", "verify", &write(out.path(), "other.json", "{\"a\": 1}")]),
        2,
        &["unrecognised artifact"],
    );
}

#[test]
fn check_reports_verdicts_through_exit_codes() {
    let tree = sample_tree();
    let out = tempfile::tempdir().unwrap();
    let snapshot = out.path().join("s.json");
    snapshot_to(tree.path(), &snapshot);
    let snapshot = snapshot.to_str().unwrap();
    let ruleset = |path: &str, severity: &str| {
        format!(
            r#"{{"rules":[{{"rule_id":"r1","severity":"{severity}","scope_id":"ingest.dir","predicate":"missing_path","params":{{"path":"{path}"}}}}]}}"#
        )
    };

    let present = write(out.path(), "present.json", &ruleset("src/main.rs", "error"));
    let output = cw(&["admit", "check", "--ruleset", &present, "--inputs", snapshot]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let witness: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(witness["verdict"], "admissible");
    assert_eq!(witness["facts"][0]["fact"], "predicate_evaluated");
    assert_eq!(witness["facts"][0]["triggered"], false);

    let missing = write(out.path(), "missing.json", &ruleset("docs/guide.md", "error"));
    let output = cw(&["admit", "check", "--ruleset", &missing, "--inputs", snapshot]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let witness: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(witness["verdict"], "inadmissible");
    assert_eq!(witness["findings"][0]["rule_id"], "r1");
    assert!(witness["findings"][0]["message"].as_str().unwrap().contains("docs/guide.md"));

    let warn_only = write(out.path(), "warn.json", &ruleset("docs/guide.md", "warning"));
    assert_eq!(cw(&["admit", "check", "--ruleset", &warn_only, "--inputs", snapshot]).status.code(), Some(0));

    let unknown_scope = write(out.path(), "scope.json", &ruleset("x", "error").replace("ingest.dir", "git.repo"));
    let output = cw(&["admit", "check", "--ruleset", &unknown_scope, "--inputs", snapshot]);
    assert_fails(&output, 2, &["git.repo", "no provider registered"]);
    let witness: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(witness["errors"][0]["scope"], "git.repo");
    assert_eq!(witness["errors"][0]["phase"], "verify");

    let bad_severity = write(out.path(), "sev.json", &ruleset("x", "fatal"));
    assert_fails(
        &cw(&["admit", "check", "--ruleset", &bad_severity, "--inputs", snapshot]),
        2,
        &["sev.json", "rules[0].severity", "fatal"],
    );
    assert_fails(&cw(&["admit", "check", "--ruleset", &present, "--inputs", "/no/such.json"]), 2, &["/no/such.json"]);
}

#[test]
fn schemas_command_emits_every_artifact_schema() {
    let output = cw(&["admit", "schemas"]);
    assert!(output.status.success());
    let schemas: Value = serde_json::from_str(&stdout(&output)).unwrap();
    for name in ["facts_bundle", "plan_bundle", "provider_descriptor", "snapshot_result", "verify_result", "witness"] {
        assert!(schemas[name]["properties"].is_object(), "{name} schema missing");
    }
}
