#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `cw.yaml`: parsing, defaults, validation, error positions, path resolution.

use std::path::{Path, PathBuf};

use cw_orchestrator::config::*;
use pal::inventory::Feature;
use serde_json::json;

const EXAMPLE: &str = r#"providers:                      # named instances
  imdb: { adapter: file, path: data/imdb_ratings.csv }
  lib:  { adapter: local, path: library.db }
pairs:
  - id: imdb-to-lib
    source: imdb
    target: lib
    mode: one-way               # or two-way
    features:
      ratings:   { add: true, remove: false }
      watchlist: { add: true, remove: true, remove_mode: source_deletes }
sync: { drop_guard: true, mass_delete: { max_ratio: 0.10, min: 10 } }
"#;

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn load(text: &str) -> Result<CwConfig, ConfigError> {
    let (_dir, path) = write(text);
    CwConfig::load(&path)
}

/// The error for `text`: it names the file, `line` and `key`.
fn expect_error(text: &str, line: usize, key: &str) -> String {
    let err = load(text).expect_err("the config should be refused");
    let message = err.to_string();
    assert!(message.contains("cw.yaml"), "no file name in: {message}");
    assert!(message.contains(&format!("cw.yaml:{line}:")), "no line {line} in: {message}");
    assert!(message.contains(key), "no key `{key}` in: {message}");
    match &err {
        ConfigError::Invalid { line: Some(l), .. } => assert_eq!(*l, line, "{message}"),
        other => panic!("expected an Invalid error with a line, got {other:?}"),
    }
    message
}

#[test]
fn the_example_parses_with_defaults_and_resolved_paths() {
    let (dir, path) = write(EXAMPLE);
    let config = CwConfig::load(&path).unwrap();
    assert_eq!(config.file, path);
    assert_eq!(config.base_dir, dir.path());

    assert_eq!(config.providers.len(), 2);
    let imdb = config.provider("imdb").unwrap();
    assert_eq!(imdb.adapter, "file");
    assert_eq!(imdb.path(), Some(dir.path().join("data/imdb_ratings.csv")));
    assert_eq!(config.provider("lib").unwrap().path(), Some(dir.path().join("library.db")));
    assert!(!imdb.settings.contains_key("adapter"));

    let pair = config.pair("imdb-to-lib").unwrap();
    assert_eq!((pair.source.as_str(), pair.target.as_str()), ("imdb", "lib"));
    assert_eq!(pair.provider(Side::Target), "lib");
    assert_eq!(pair.mode, SyncMode::OneWay);
    assert_eq!(pair.source_of_truth, None);
    assert_eq!(pair.features.keys().copied().collect::<Vec<_>>(), [Feature::Watchlist, Feature::Ratings]);
    assert_eq!(
        pair.feature(Feature::Ratings),
        Some(&FeatureConfig { add: true, remove: false, remove_mode: RemoveMode::SourceDeletes })
    );
    assert_eq!(
        pair.feature(Feature::Watchlist),
        Some(&FeatureConfig { add: true, remove: true, remove_mode: RemoveMode::SourceDeletes })
    );
    assert_eq!(pair.feature(Feature::History), None);

    assert_eq!(config.sync, SyncConfig::default());
    assert!(config.sync.drop_guard);
    assert_eq!(config.sync.mass_delete, MassDeleteConfig { max_ratio: 0.10, min: 10 });
    assert_eq!(config.sync.tombstone_ttl_days, 30);
    assert_eq!(config.sync.blackbox, BlackboxConfig { failures: 3, quarantine_days: 30 });
    assert_eq!(config.state_dir, None);

    let options = config.sync.state_options();
    assert_eq!(options.tombstone_ttl, time::Duration::days(30));
    assert_eq!(options.blackbox_failures, 3);
    assert_eq!(options.quarantine, time::Duration::days(30));
}

#[test]
fn every_default_applies_to_a_minimal_file() {
    let config = load(
        "providers:\n  a: { adapter: mock }\n  b: { adapter: mock }\npairs:\n  - { id: p, source: a, target: b, features: { history: {}, progress: } }\n",
    )
    .unwrap();
    let pair = &config.pairs[0];
    assert_eq!(pair.mode, SyncMode::OneWay);
    assert_eq!(pair.features.len(), 2);
    for feature in [Feature::History, Feature::Progress] {
        assert_eq!(pair.feature(feature), Some(&FeatureConfig::default()), "{feature}");
    }
    assert_eq!(
        FeatureConfig::default(),
        FeatureConfig { add: true, remove: false, remove_mode: RemoveMode::SourceDeletes }
    );
    assert_eq!(config.sync, SyncConfig::default());

    let empty = load("").unwrap();
    assert!(empty.providers.is_empty() && empty.pairs.is_empty());
    let nulls = load("providers:\npairs:\nsync:\n").unwrap();
    assert_eq!(nulls.sync, SyncConfig::default());
}

#[test]
fn every_setting_can_be_set() {
    let (dir, path) = write(
        r#"state_dir: state
providers:
  trakt: { adapter: trakt, client_id: abc, timeout_ms: 500, path: /abs/cache.json, nested: { a: [1, 2] } }
  plex: { adapter: plex, url: "http://plex:32400" }
pairs:
  - id: both
    source: trakt
    target: plex
    mode: two-way
    source_of_truth: plex
    features:
      ratings: { add: false, remove: true }
      playlists: { remove: true }
  - id: mirror
    source: plex
    target: trakt
    features:
      watchlist: { remove: true, remove_mode: mirror }
      history: { remove_mode: none }
sync:
  drop_guard: false
  mass_delete: { max_ratio: 1, min: 0 }
  tombstone_ttl_days: 7
  blackbox: { failures: 5, quarantine_days: 2 }
"#,
    );
    let config = CwConfig::load(&path).unwrap();
    assert_eq!(config.state_dir, Some(dir.path().join("state")));
    let trakt = config.provider("trakt").unwrap();
    assert_eq!(
        serde_json::Value::Object(trakt.settings.clone()),
        json!({"client_id": "abc", "timeout_ms": 500, "path": "/abs/cache.json", "nested": {"a": [1, 2]}}),
        "adapter settings pass through; an absolute path is kept"
    );
    assert_eq!(config.provider("plex").unwrap().settings["url"], json!("http://plex:32400"));

    let both = config.pair("both").unwrap();
    assert_eq!(both.mode, SyncMode::TwoWay);
    assert_eq!(both.source_of_truth, Some(Side::Target));
    assert_eq!(
        both.feature(Feature::Ratings).unwrap(),
        &FeatureConfig { add: false, remove: true, ..Default::default() }
    );
    let mirror = config.pair("mirror").unwrap();
    assert_eq!(mirror.feature(Feature::Watchlist).unwrap().remove_mode, RemoveMode::Mirror);
    assert_eq!(mirror.feature(Feature::History).unwrap().remove_mode, RemoveMode::None);

    assert_eq!(
        config.sync,
        SyncConfig {
            drop_guard: false,
            mass_delete: MassDeleteConfig { max_ratio: 1.0, min: 0 },
            tombstone_ttl_days: 7,
            blackbox: BlackboxConfig { failures: 5, quarantine_days: 2 },
        }
    );
    assert_eq!(config.sync.state_options().tombstone_ttl, time::Duration::days(7));
}

#[test]
fn relative_paths_resolve_against_the_config_directory_not_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("conf").join("sub");
    std::fs::create_dir_all(&nested).unwrap();
    let path = nested.join("cw.yaml");
    std::fs::write(
        &path,
        "state_dir: ../state\nproviders:\n  a: { adapter: file, path: ./data/a.csv }\n  b: { adapter: file, path: /var/lib/b.db }\n  c: { adapter: file }\n",
    )
    .unwrap();
    let config = CwConfig::load(&path).unwrap();
    assert_eq!(config.provider("a").unwrap().path(), Some(nested.join("./data/a.csv")));
    assert_eq!(config.provider("b").unwrap().path(), Some(PathBuf::from("/var/lib/b.db")));
    assert_eq!(config.provider("c").unwrap().path(), None);
    assert_eq!(config.state_dir, Some(nested.join("../state")));

    // A relative config path becomes absolute first.
    let config = CwConfig::parse("providers:\n  a: { adapter: file, path: x.csv }\n", Path::new("cw.yaml")).unwrap();
    let resolved = config.provider("a").unwrap().path().unwrap();
    assert!(resolved.is_absolute(), "{}", resolved.display());
    assert_eq!(resolved, std::env::current_dir().unwrap().join("x.csv"));
}

#[test]
fn broken_yaml() {
    let message =
        expect_error("providers:\n  imdb: { adapter: file, path: [unclosed }\npairs: []\n", 2, "providers.imdb.path");
    assert!(message.contains("column"), "{message}");
    // An unclosed flow sequence: reported where the parser gave up, keyed where it started.
    let err = load("providers:\n  a: { adapter: x }\npairs:\n  - id: p\n    source: a\n    target: a\n  - id: q\n    source: a\n    target: [b\n").unwrap_err();
    assert!(err.to_string().contains("pairs[1].target"), "{err}");
    // Bad indentation.
    let err = load("pairs:\n- id: p\n  source: a\n target: b\n").unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { line: Some(_), .. }), "{err}");
    assert!(err.to_string().contains("cw.yaml:"), "{err}");
}

#[test]
fn unknown_top_level_key() {
    let message = expect_error(&format!("{EXAMPLE}providerz: {{}}\n"), 13, "providerz");
    assert!(message.contains("unknown key"), "{message}");
    assert!(message.contains("expected one of"), "lists the known keys: {message}");
}

#[test]
fn unknown_feature_key() {
    let text = EXAMPLE.replace("{ add: true, remove: false }", "{ add: true, remvoe: false }");
    expect_error(&text, 10, "pairs[0].features.ratings.remvoe");
}

#[test]
fn unknown_feature_name() {
    let text = EXAMPLE.replace("      ratings:   {", "      ratingz:   {");
    let message = expect_error(&text, 10, "pairs[0].features.ratingz");
    assert!(message.contains("watchlist") && message.contains("playlists"), "lists the five features: {message}");
}

#[test]
fn unknown_key_in_a_pair_and_in_sync() {
    expect_error(&EXAMPLE.replace("    mode: one-way ", "    mdoe: one-way "), 8, "pairs[0].mdoe");
    expect_error(&EXAMPLE.replace("drop_guard: true", "drop_gaurd: true"), 12, "sync.drop_gaurd");
    expect_error(&EXAMPLE.replace("min: 10", "minimum: 10"), 12, "sync.mass_delete.minimum");
}

#[test]
fn pair_naming_an_undeclared_provider() {
    let message = expect_error(&EXAMPLE.replace("    target: lib", "    target: library"), 7, "pairs[0].target");
    assert!(message.contains("`library`") && message.contains("`imdb`, `lib`"), "{message}");
    expect_error(&EXAMPLE.replace("    source: imdb", "    source: nope"), 6, "pairs[0].source");
}

#[test]
fn duplicate_pair_id() {
    let text = EXAMPLE.replace("sync:", "  - id: imdb-to-lib\n    source: lib\n    target: imdb\nsync:");
    let message = expect_error(&text, 12, "pairs[1].id");
    assert!(message.contains("duplicate pair id `imdb-to-lib` (first used at line 5)"), "{message}");
}

#[test]
fn bad_mode() {
    let message = expect_error(&EXAMPLE.replace("mode: one-way", "mode: both-ways"), 8, "pairs[0].mode");
    assert!(message.contains("one-way") && message.contains("two-way"), "{message}");
}

#[test]
fn bad_remove_mode() {
    let message = expect_error(
        &EXAMPLE.replace("remove_mode: source_deletes", "remove_mode: everything"),
        11,
        "pairs[0].features.watchlist.remove_mode",
    );
    assert!(message.contains("none") && message.contains("source_deletes") && message.contains("mirror"), "{message}");
}

#[test]
fn max_ratio_out_of_range() {
    for bad in ["0", "1.5", "-0.1", ".nan"] {
        let message = expect_error(
            &EXAMPLE.replace("max_ratio: 0.10", &format!("max_ratio: {bad}")),
            12,
            "sync.mass_delete.max_ratio",
        );
        assert!(message.contains("greater than 0 and at most 1"), "{message}");
    }
}

#[test]
fn wrong_types_name_the_key() {
    expect_error(
        &EXAMPLE.replace("{ add: true, remove: false }", "{ add: yes please, remove: false }"),
        10,
        "pairs[0].features.ratings.add",
    );
    expect_error(&EXAMPLE.replace("min: 10", "min: -1"), 12, "sync.mass_delete.min");
    expect_error(&EXAMPLE.replace("  imdb: { adapter: file, ", "  imdb: { "), 2, "providers.imdb");
    expect_error(&EXAMPLE.replace("path: library.db", "path: [library.db]"), 3, "providers.lib.path");
    let message = expect_error(&EXAMPLE.replace("    source: imdb\n", ""), 5, "pairs[0]");
    assert!(message.contains("missing field `source`"), "{message}");
}

#[test]
fn two_way_settings_are_checked() {
    let two_way = EXAMPLE.replace("mode: one-way", "mode: two-way").replace(", remove_mode: source_deletes", "");
    let config = load(&two_way.replace("    mode: two-way", "    mode: two-way\n    source_of_truth: source")).unwrap();
    assert_eq!(config.pairs[0].source_of_truth, Some(Side::Source));
    let config = load(&two_way.replace("    mode: two-way", "    mode: two-way\n    source_of_truth: imdb")).unwrap();
    assert_eq!(config.pairs[0].source_of_truth, Some(Side::Source));

    let message = expect_error(
        &two_way.replace("    mode: two-way", "    mode: two-way\n    source_of_truth: trakt"),
        9,
        "pairs[0].source_of_truth",
    );
    assert!(message.contains("`imdb` or `lib`"), "{message}");
    expect_error(&EXAMPLE.replace("    mode: one-way", "    source_of_truth: lib"), 8, "pairs[0].source_of_truth");
    expect_error(&EXAMPLE.replace("mode: one-way", "mode: two-way"), 11, "pairs[0].features.watchlist.remove_mode");
}

#[test]
fn other_semantic_checks() {
    expect_error(&EXAMPLE.replace("    target: lib", "    target: imdb"), 7, "pairs[0].target");
    expect_error(&EXAMPLE.replace("min: 10 }", "min: 10 }, tombstone_ttl_days: 0"), 12, "sync.tombstone_ttl_days");
    expect_error(
        &format!("{EXAMPLE}  blackbox: {{ failures: 0 }}\n").replace(
            "sync: { drop_guard: true, mass_delete: { max_ratio: 0.10, min: 10 } }",
            "sync:\n  drop_guard: true",
        ),
        14,
        "sync.blackbox.failures",
    );
    expect_error(&format!("{EXAMPLE}state_dir: \"\"\n"), 13, "state_dir");
    expect_error(&EXAMPLE.replace("- id: imdb-to-lib", "- id: \"\""), 5, "pairs[0].id");
    expect_error(&EXAMPLE.replace("adapter: local", "adapter: \"\""), 3, "providers.lib.adapter");
}

#[test]
fn an_unreadable_file_names_the_path() {
    let err = CwConfig::load("/no/such/dir/cw.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }));
    assert!(err.to_string().starts_with("/no/such/dir/cw.yaml: cannot read"), "{err}");
}

#[test]
fn the_effective_config_serializes() {
    let config = load(EXAMPLE).unwrap();
    let value = serde_json::to_value(&config).unwrap();
    assert_eq!(value["pairs"][0]["mode"], json!("one-way"));
    assert_eq!(value["pairs"][0]["features"]["watchlist"]["remove_mode"], json!("source_deletes"));
    assert_eq!(value["sync"]["blackbox"]["quarantine_days"], json!(30));
}

#[test]
fn the_documented_example_parses() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md")).unwrap();
    let section = docs.split("## `cw.yaml`").nth(1).expect("docs/config.md has a cw.yaml section");
    let yaml = section.split("```yaml\n").nth(1).unwrap().split("```").next().unwrap();
    let (dir, path) = write(yaml);
    let config = CwConfig::load(&path).unwrap();
    assert_eq!(config.state_dir, Some(dir.path().join("state")));
    assert_eq!(config.pairs.len(), 2);
    assert_eq!(config.pair("lib-both-ways").unwrap().source_of_truth, Some(Side::Source));
    assert_eq!(config.pair("lib-both-ways").unwrap().feature(Feature::Ratings), Some(&FeatureConfig::default()));
    assert_eq!(config.sync, SyncConfig::default());
}
