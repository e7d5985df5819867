#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `cw sync`, `cw plan`, `cw approve`, `cw apply`, `cw status`, `cw blackbox` through the binary,
//! on a copy of the quickstart: the first run fills the library, the second has nothing to do,
//! a plan runs only approved, fresh and once, and bad input fails with exit 2 naming where.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn cw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cw")).current_dir(dir).args(args).output().expect("cw runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

/// A copy of `examples/` (the quickstart config and its data) in a temp dir.
fn quickstart() -> (tempfile::TempDir, PathBuf) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for name in ["quickstart.yaml", "data/imdb_ratings.csv", "data/watchlist.json"] {
        std::fs::copy(examples.join(name), dir.path().join(name)).unwrap();
    }
    let config = dir.path().join("quickstart.yaml");
    (dir, config)
}

fn counts(report: &Value, pair: &str, feature: &str) -> (u64, u64, u64) {
    let pair = report["pairs"].as_array().unwrap().iter().find(|p| p["pair"] == pair).unwrap();
    let f = &pair["features"][feature];
    (f["added"].as_u64().unwrap(), f["removed"].as_u64().unwrap(), f["blocked"].as_u64().unwrap())
}

#[test]
fn the_quickstart_fills_the_library_once_and_then_has_nothing_to_do() {
    let (dir, config) = quickstart();
    let config = config.to_str().unwrap();
    let rows = std::fs::read_to_string(dir.path().join("data/imdb_ratings.csv")).unwrap().lines().count() as u64 - 1;
    let watchlist: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/watchlist.json")).unwrap()).unwrap();

    let dry = cw(dir.path(), &["sync", "--config", config, "--json", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let dry = json(&dry);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&dry, "imdb-ratings", "ratings").0, rows);

    let first = cw(dir.path(), &["sync", "--config", config, "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let first = json(&first);
    // The dry run wrote nothing: the real run still adds everything.
    assert_eq!(counts(&first, "imdb-ratings", "ratings"), (rows, 0, 0));
    assert_eq!(counts(&first, "watchlist", "watchlist"), (watchlist.len() as u64, 0, 0));

    let second = cw(dir.path(), &["sync", "--config", config]);
    assert!(second.status.success(), "{}", stderr(&second));
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("nothing to do"), "{text}");

    let status = cw(dir.path(), &["status", "--config", config, "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let status = json(&status);
    let pairs = status["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    for pair in pairs {
        assert_eq!(pair["last_runs"].as_array().unwrap().len(), 2, "{pair}");
        assert_eq!(pair["last_runs"][0]["status"], "ok");
        assert_eq!(pair["blackbox"]["failing"], 0);
    }
    // The state lives where the config says (`state_dir: state`, next to it).
    assert!(dir.path().join("state/state.sqlite3").is_file());
    let blackbox = cw(dir.path(), &["blackbox", "list", "--config", config, "--json"]);
    assert_eq!(json(&blackbox)["entries"], Value::Array(vec![]));
}

#[test]
fn a_plan_runs_only_when_approved_fresh_and_not_yet_applied() {
    let (dir, config) = quickstart();
    let config = config.to_str().unwrap();
    let plan_file = dir.path().join("plan.json");
    let plan_file = plan_file.to_str().unwrap();

    let plan = cw(dir.path(), &["plan", "--config", config, "--out", plan_file, "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = json(&plan);
    assert_eq!(plan["approved"], false);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(plan_file).unwrap()).unwrap();
    assert_eq!(written["plan"]["plan_hash"], plan["plan_hash"]);

    let unapproved = cw(dir.path(), &["apply", plan_file, "--config", config]);
    assert_eq!(unapproved.status.code(), Some(1));
    assert!(stderr(&unapproved).contains("not approved"), "{}", stderr(&unapproved));

    let approved = cw(dir.path(), &["approve", plan_file, "--config", config]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    let applied = cw(dir.path(), &["apply", plan_file, "--config", config, "--json"]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert_eq!(json(&applied)["plan_hash"], plan["plan_hash"]);

    let again = cw(dir.path(), &["apply", plan_file, "--config", config]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already executed"), "{}", stderr(&again));

    // A plan made, then the source changes: stale.
    let stale_file = dir.path().join("stale.json");
    let stale_file = stale_file.to_str().unwrap();
    let made = cw(dir.path(), &["plan", "--config", config, "--out", stale_file, "--approve"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let watchlist = dir.path().join("data/watchlist.json");
    let mut items: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&watchlist).unwrap()).unwrap();
    items.push(serde_json::json!({"type": "movie", "title": "New", "year": 2026, "ids": {"tmdb": "990000001"}}));
    std::fs::write(&watchlist, serde_json::to_string(&items).unwrap()).unwrap();
    let stale = cw(dir.path(), &["apply", stale_file, "--config", config]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("stale"), "{}", stderr(&stale));

    // A tampered plan file is refused before anything runs.
    let mut tampered: Value = serde_json::from_str(&std::fs::read_to_string(stale_file).unwrap()).unwrap();
    tampered["plan"]["steps"][0]["description"] = Value::String("something else".into());
    std::fs::write(stale_file, tampered.to_string()).unwrap();
    let refused = cw(dir.path(), &["apply", stale_file, "--config", config]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("altered"), "{}", stderr(&refused));
}

#[test]
fn bad_input_fails_with_exit_2_and_says_where() {
    let (dir, config) = quickstart();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("sync: {", "sync: { drop_gaurd: true,")).unwrap();
    let output = cw(dir.path(), &["sync", "--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("quickstart.yaml:") && message.contains("drop_gaurd"), "{message}");

    std::fs::write(&config, text).unwrap();
    let output = cw(dir.path(), &["sync", "--config", config.to_str().unwrap(), "--pair", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no pair `nope`"), "{}", stderr(&output));

    let output = cw(dir.path(), &["sync", "--config", config.to_str().unwrap(), "--feature", "likes"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown feature `likes`"), "{}", stderr(&output));

    let output = cw(dir.path(), &["apply", "missing.json", "--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("missing.json"), "{}", stderr(&output));

    // No config anywhere: say how to give one.
    let empty = tempfile::tempdir().unwrap();
    let output = cw(empty.path(), &["sync"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--config"), "{}", stderr(&output));
}
