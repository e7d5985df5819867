#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Behaviour of the `ingest.dir` provider: snapshot contents, ignores, hostile trees, the
//! `missing_path` predicate, verify, and structured errors.

use std::path::Path;

use admit_core::{
    DigestAlgorithm, ErrorClass, PlanIntent, PlanRef, PredicateEvalContext, Provider, ProviderPhase, SnapshotRequest,
    SnapshotResult, VerifyRequest, provider_pack_hash,
};
use providers_ingest_dir::{FACTS_SCHEMA_ID, IngestDirProvider, SCOPE_ID};
use serde_json::{Value, json};

fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

async fn snapshot(root: &Path, extra: Value) -> SnapshotResult {
    let mut params = json!({"root": root.to_str().unwrap(), "created_at": "2026-01-01T00:00:00Z"});
    params.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    IngestDirProvider::new().snapshot(SnapshotRequest { scope_id: SCOPE_ID.into(), params }).await.unwrap()
}

fn paths(result: &SnapshotResult) -> Vec<String> {
    result.facts_bundle.facts.iter().map(|f| f["path"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn one_fact_per_file_sorted_by_path_with_size_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.txt", "bee");
    write(dir.path(), "a/z.txt", "zed!");
    write(dir.path(), "a/b/c.txt", "");
    let result = snapshot(dir.path(), json!({})).await;
    assert_eq!(paths(&result), ["a/b/c.txt", "a/z.txt", "b.txt"]);
    let z = &result.facts_bundle.facts[1];
    assert_eq!(z["kind"], "file");
    assert_eq!(z["size"], 4);
    assert_eq!(z["digest"], DigestAlgorithm::Blake3.digest(b"zed!").to_string());
    assert_eq!(result.facts_bundle.schema_id, FACTS_SCHEMA_ID);
    assert_eq!(result.facts_bundle.created_at.as_str(), "2026-01-01T00:00:00Z");
    assert!(result.witness.findings.is_empty());

    let sha = snapshot(dir.path(), json!({"digest": "sha256"})).await;
    assert_eq!(sha.facts_bundle.snapshot_hash.algorithm(), DigestAlgorithm::Sha256);
    assert_eq!(sha.facts_bundle.facts[1]["digest"], DigestAlgorithm::Sha256.digest(b"zed!").to_string());
}

#[tokio::test]
async fn snapshots_are_deterministic_and_track_content() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", "1");
    let first = snapshot(dir.path(), json!({})).await;
    let again = snapshot(dir.path(), json!({"created_at": "2031-05-05T05:05:05Z"})).await;
    assert_eq!(first.facts_bundle.snapshot_hash, again.facts_bundle.snapshot_hash);
    write(dir.path(), "x.txt", "2");
    let changed = snapshot(dir.path(), json!({})).await;
    assert_ne!(first.facts_bundle.snapshot_hash, changed.facts_bundle.snapshot_hash);
}

#[tokio::test]
async fn ignores_git_target_and_root_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".git/HEAD", "ref");
    write(dir.path(), "target/debug/app", "bin");
    write(dir.path(), "nested/target/out", "bin");
    write(dir.path(), ".gitignore", "*.log\n!keep.log\nbuild/\n");
    write(dir.path(), "app.log", "noise");
    write(dir.path(), "keep.log", "kept");
    write(dir.path(), "build/artifact", "x");
    write(dir.path(), "src/lib.rs", "code");
    let result = snapshot(dir.path(), json!({})).await;
    assert_eq!(paths(&result), [".gitignore", "keep.log", "src/lib.rs"]);
}

#[cfg(unix)]
#[tokio::test]
async fn odd_entries_become_facts_or_warnings_never_panics() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "real.txt", "r");
    std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let bad_name = std::ffi::OsStr::from_bytes(b"bad\xffname");
    std::fs::write(dir.path().join(bad_name), "x").unwrap();
    let result = snapshot(dir.path(), json!({})).await;
    let by_path = |p: &str| result.facts_bundle.facts.iter().find(|f| f["path"] == p).cloned().unwrap();
    assert_eq!(by_path("escape"), json!({"kind": "symlink", "path": "escape", "target": "/etc"}));
    assert_eq!(by_path("sock")["kind"], "warning");
    assert_eq!(by_path("bad\u{fffd}name")["kind"], "warning");
    assert_eq!(by_path("real.txt")["kind"], "file");
    assert!(!paths(&result).iter().any(|p| p.starts_with("escape/")), "symlinks are not followed");
    assert_eq!(result.witness.findings.len(), 2, "one warning finding per unreadable entry");
}

#[tokio::test]
async fn snapshot_errors_are_structured() {
    let provider = IngestDirProvider::new();
    let err = provider.snapshot(SnapshotRequest { scope_id: SCOPE_ID.into(), params: json!({}) }).await.unwrap_err();
    assert_eq!((err.scope.as_str(), err.phase), (SCOPE_ID, ProviderPhase::Snapshot));
    assert_eq!(err.message, "params.root (string) is required");
    let err =
        provider.snapshot(SnapshotRequest { scope_id: SCOPE_ID.into(), params: json!({"root": 7}) }).await.unwrap_err();
    assert!(err.message.contains("params.root must be a string"), "{}", err.message);
    let err = provider
        .snapshot(SnapshotRequest { scope_id: SCOPE_ID.into(), params: json!({"root": "/no/such/root"}) })
        .await
        .unwrap_err();
    assert!(err.message.starts_with("root path is not a directory: /no/such/root"), "{}", err.message);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let err = provider
        .snapshot(SnapshotRequest { scope_id: SCOPE_ID.into(), params: json!({"root": root, "digest": "md5"}) })
        .await
        .unwrap_err();
    assert!(err.message.contains("params.digest") && err.message.contains("md5"), "{}", err.message);
}

#[tokio::test]
async fn unsupported_phases_say_so_with_phase_and_scope() {
    let provider = IngestDirProvider::new();
    let intent = PlanIntent { scope_id: SCOPE_ID.into(), description: "x".into(), params: Value::Null };
    let err = provider.plan(intent).await.unwrap_err();
    assert_eq!((err.phase, err.class, err.scope.as_str()), (ProviderPhase::Plan, ErrorClass::Unsupported, SCOPE_ID));
    let plan_ref = PlanRef { plan_hash: DigestAlgorithm::Blake3.digest(b"p"), approval_witness_hash: None };
    let err = provider.execute(plan_ref).await.unwrap_err();
    assert_eq!((err.phase, err.class), (ProviderPhase::Execute, ErrorClass::Unsupported));
}

#[test]
fn descriptor_identity_is_pinned() {
    let descriptor = IngestDirProvider::new().describe();
    assert_eq!(descriptor.scope_id.as_str(), SCOPE_ID);
    assert!(descriptor.deterministic && descriptor.closure.requires_fs);
    // Changing any identity field of the pack must be deliberate: bump the version and this value.
    assert_eq!(
        provider_pack_hash(&descriptor, DigestAlgorithm::Blake3).unwrap().to_string(),
        "blake3:77650aeb5fbd3af3e2dd734ddd076b715cb9b4e6ef9f3ca8258e4b437f4a8ed0"
    );
}

async fn missing(
    path: &str,
    context: &PredicateEvalContext,
    extra: Value,
) -> Result<admit_core::PredicateResult, admit_core::ProviderError> {
    let mut params = json!({"path": path});
    params.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    IngestDirProvider::new().eval_predicate("missing_path", &params, context).await
}

#[tokio::test]
async fn missing_path_reads_context_facts_then_legacy_params() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "docs/guide.md", "g");
    let bundle = snapshot(dir.path(), json!({})).await.facts_bundle;
    let context = PredicateEvalContext {
        facts: Some(bundle.facts.clone()),
        snapshot_hash: Some(bundle.snapshot_hash),
        facts_schema_id: Some(bundle.schema_id.clone()),
    };
    for present in ["docs/guide.md", "docs", "./docs/"] {
        let result = missing(present, &context, json!({})).await.unwrap();
        assert!(!result.triggered && result.findings.is_empty(), "{present}");
    }
    let result = missing("docs/other.md", &context, json!({})).await.unwrap();
    assert!(result.triggered);
    assert_eq!(result.findings.len(), 1);
    assert_eq!(result.findings[0].evidence, Some(json!({"path": "docs/other.md"})));
    assert!(missing("doc", &context, json!({})).await.unwrap().triggered, "a prefix of a name is not a directory");

    // Context wins over legacy params.facts; legacy still works without context.
    let legacy = json!({"facts": [{"kind": "file", "path": "only-in-params"}]});
    assert!(missing("only-in-params", &context, legacy.clone()).await.unwrap().triggered);
    assert!(!missing("only-in-params", &PredicateEvalContext::default(), legacy).await.unwrap().triggered);

    let err = missing("x", &PredicateEvalContext::default(), json!({})).await.unwrap_err();
    assert_eq!((err.scope.as_str(), err.phase), (SCOPE_ID, ProviderPhase::Verify));
    let wrong_schema = PredicateEvalContext { facts_schema_id: Some("facts-bundle/other@1".into()), ..context.clone() };
    assert!(missing("x", &wrong_schema, json!({})).await.unwrap_err().message.contains("facts-bundle/other@1"));
    let err = IngestDirProvider::new().eval_predicate("missing_path", &json!({}), &context).await.unwrap_err();
    assert_eq!(err.message, "params.path (string) is required");
    let err = IngestDirProvider::new().eval_predicate("nope", &json!({}), &context).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unsupported);
}

#[tokio::test]
async fn verify_rechecks_bundles_it_produced() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "a");
    let result = snapshot(dir.path(), json!({})).await;
    let provider = IngestDirProvider::new();
    let request = |artifact: Value| VerifyRequest {
        artifact_hash: result.facts_bundle.snapshot_hash,
        schema_id: FACTS_SCHEMA_ID.into(),
        scope_id: SCOPE_ID.into(),
        artifact: Some(artifact),
    };
    let good = serde_json::to_value(&result).unwrap();
    assert!(provider.verify(request(good.clone())).await.unwrap().valid);

    let mut tampered = good.clone();
    tampered["facts_bundle"]["facts"][0]["size"] = json!(99);
    let checked = provider.verify(request(tampered)).await.unwrap();
    assert!(!checked.valid && !checked.hash_matches);

    let mut other = request(good);
    other.artifact_hash = DigestAlgorithm::Blake3.digest(b"other");
    assert!(!provider.verify(other).await.unwrap().valid, "must match the requested hash too");

    let mut no_artifact = request(Value::Null);
    no_artifact.artifact = None;
    let err = provider.verify(no_artifact).await.unwrap_err();
    assert_eq!(err.phase, ProviderPhase::Verify);
}
