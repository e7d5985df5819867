#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `cw diff`: files and config instances, matching across differently keyed items, bad input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn cw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cw")).current_dir(dir).args(args).output().expect("cw runs")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "left.json",
        &json!([
            {"type": "movie", "title": "Heat", "year": 1995, "ids": {"imdb": "tt0113277"}},
            {"type": "movie", "title": "Alien", "year": 1979, "ids": {"tmdb": "348"}},
            {"type": "movie", "title": "Only Left", "year": 2001, "ids": {"tmdb": "999001"}}
        ])
        .to_string(),
    );
    write(
        dir.path(),
        "right.json",
        &json!({
            "a": {"type": "movie", "title": "Heat", "year": 1995, "ids": {"tmdb": "949", "imdb": "tt0113277"}},
            "b": {"type": "movie", "title": "Alien", "year": 1979, "ids": {"tmdb": "348"}},
            "c": {"type": "movie", "title": "Only Right", "year": 2002, "ids": {"imdb": "tt7654321"}}
        })
        .to_string(),
    );
    write(
        dir.path(),
        "ratings.csv",
        "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors\n\
         tt0113277,9,2024-01-02,Heat,https://www.imdb.com/title/tt0113277/,movie,8.3,170,1995,Crime,700000,1995-12-15,Michael Mann\n",
    );
    dir
}

#[test]
fn files_are_compared_by_key_or_shared_strong_id() {
    let dir = fixtures();
    let output = cw(dir.path(), &["diff", "left.json", "right.json", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let diff: Value = serde_json::from_slice(&output.stdout).unwrap();
    // Heat is keyed imdb on the left and tmdb on the right: it matches through the imdb token.
    assert_eq!(diff["matched"], 2);
    assert_eq!(diff["only_left"].as_array().unwrap().len(), 1);
    assert_eq!(diff["only_left"][0]["key"], "tmdb:999001");
    assert_eq!(diff["only_right"][0]["key"], "imdb:tt7654321");
    assert_eq!(diff["only_right"][0]["item"]["title"], "Only Right");

    let text = String::from_utf8(cw(dir.path(), &["diff", "left.json", "right.json"]).stdout).unwrap();
    assert!(text.contains("only in left.json (1):\n  tmdb:999001  Only Left (2001)"), "{text}");
    assert!(text.ends_with("matched: 2 (watchlist)\n"), "{text}");
}

#[test]
fn config_instances_can_be_compared_with_files() {
    let dir = fixtures();
    write(
        dir.path(),
        "cw.yaml",
        "providers:\n  imdb: { adapter: file, path: ratings.csv }\n  lib: { adapter: local, path: library.db }\n",
    );
    let output = cw(dir.path(), &["diff", "imdb", "lib", "--config", "cw.yaml", "--feature", "ratings", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let diff: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(diff["matched"], 0);
    assert_eq!(diff["only_left"][0]["key"], "imdb:tt0113277");
    assert_eq!(diff["only_left"][0]["item"]["rating"], 9);
    assert_eq!(diff["only_right"], json!([]));
}

#[test]
fn bad_sides_and_features_fail_clearly() {
    let dir = fixtures();
    let fails = |args: &[&str], needle: &str| {
        let output = cw(dir.path(), args);
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    };
    fails(&["diff", "left.json", "missing.json"], "`missing.json` is not an inventory file");
    fails(&["diff", "left.json", "right.json", "--feature", "ratingz"], "unknown feature `ratingz`");
    fails(&["diff", "ratings.csv", "left.json"], "share no feature");
    fails(&["diff", "left.json", "right.json", "--feature", "ratings"], "does not hold the ratings feature");
    write(dir.path(), "broken.json", "[{\"type\": \"movie\", \"ids\": ");
    fails(&["diff", "broken.json", "left.json"], "broken.json");
    write(dir.path(), "cw.yaml", "providers:\n  lib: { adapter: local, path: library.db }\n");
    fails(&["diff", "lib", "nope", "--config", "cw.yaml"], "neither a provider instance of the config (lib)");
    fails(&["diff", "lib", "left.json", "--config", "missing.yaml"], "missing.yaml");
}

/// Files named on the command line are read directly, not through the `file` adapter: both
/// ways give the same diff, for a file large enough to be parsed on several threads, with
/// repeated keys (the later item wins), ids to normalise, and items matched by a shared id.
#[test]
fn files_read_directly_diff_as_through_the_file_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let left: Vec<Value> = (0..12_000)
        .map(|n| {
            let imdb = if n % 3 == 0 { format!("TT{n:08}") } else { format!("tt{n:08}") };
            json!({"type": "movie", "title": format!("Left {n}, \"quoted\""), "year": 1950 + n % 70,
                   "ids": {"imdb": imdb, "trakt": (n + 7).to_string()}})
        })
        .chain((0..500).map(|n| json!({"title": format!("Again {n}"), "ids": {"imdb": format!("tt{n:08}")}})))
        .collect();
    let right: Vec<Value> = (6_000..15_000)
        .map(|n| json!({"type": "movie", "title": format!("Right {n}"), "ids": {"trakt": (n + 7).to_string()}}))
        .collect();
    let left = serde_json::to_string_pretty(&left).unwrap();
    assert!(left.len() > 1 << 20, "large enough to be parsed in parts");
    write(dir.path(), "left.json", &left);
    write(dir.path(), "right.json", &serde_json::to_string(&right).unwrap());
    write(
        dir.path(),
        "cw.yaml",
        "providers:\n  l: { adapter: file, path: left.json }\n  r: { adapter: file, path: right.json }\n",
    );
    let direct = cw(dir.path(), &["diff", "left.json", "right.json", "--json"]);
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let adapter = cw(dir.path(), &["diff", "l", "r", "--config", "cw.yaml", "--json"]);
    assert!(adapter.status.success(), "{}", String::from_utf8_lossy(&adapter.stderr));
    assert_eq!(String::from_utf8(direct.stdout.clone()).unwrap(), String::from_utf8(adapter.stdout).unwrap());
    let diff: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(diff["matched"], 6_000);
    assert_eq!(diff["only_left"].as_array().unwrap().len(), 6_000);
    assert_eq!(diff["only_right"].as_array().unwrap().len(), 3_000);
    // The repeated keys' later items won.
    assert_eq!(diff["only_left"][0]["item"]["title"], "Again 0");
    assert_eq!(diff["only_left"][0]["key"], "imdb:tt00000000");
}
