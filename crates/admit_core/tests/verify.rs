#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verify_artifact_bytes` (CONTRACTS §1): re-encode canonically and re-hash; report
//! `hash_matches` and `canonical_bytes_match` independently; refuse what cannot be checked.

use std::collections::BTreeMap;

use admit_core::{
    DigestAlgorithm, Fact, FactsBundle, PlanBundle, PlanIntent, PlanResult, PlanStep, SnapshotResult, Timestamp,
    Verdict, VerifyError, VerifyResult, Witness, to_canonical_cbor, verify_artifact_bytes,
};
use serde_json::{Value, json};

fn ts() -> Timestamp {
    Timestamp::parse("2026-01-31T12:00:00Z").unwrap()
}

fn facts_bundle(algorithm: DigestAlgorithm) -> FactsBundle {
    FactsBundle::new(
        "facts-bundle/ingest.dir@1",
        "ingest.dir",
        vec![
            json!({"kind": "file", "path": "b.txt", "size": 12, "digest": DigestAlgorithm::Blake3.digest(b"b").to_string()}),
            json!({"kind": "file", "path": "a.txt", "size": 3, "digest": DigestAlgorithm::Blake3.digest(b"a").to_string()}),
            json!({"kind": "warning", "path": "locked.bin", "message": "permission denied", "ratio": 0.5}),
        ],
        ts(),
        algorithm,
    )
    .unwrap()
}

fn plan_bundle() -> PlanBundle {
    let intent = PlanIntent { scope_id: "sync".into(), description: "copy".into(), params: json!({"to": "remote"}) };
    let steps = vec![
        PlanStep {
            step_id: "s1".into(),
            description: "upload a.txt".into(),
            reversible: true,
            params: json!({"path": "a.txt"}),
        },
        PlanStep {
            step_id: "s2".into(),
            description: "delete old.txt".into(),
            reversible: false,
            params: json!({"path": "old.txt"}),
        },
    ];
    let sources = BTreeMap::from([("source".to_owned(), facts_bundle(DigestAlgorithm::Blake3).snapshot_hash)]);
    PlanBundle::new("plan-bundle/sync@1", &intent, steps, sources, ts(), DigestAlgorithm::Blake3).unwrap()
}

fn assert_valid(result: &VerifyResult) {
    assert!(result.hash_matches, "{result:#?}");
    assert!(result.canonical_bytes_match, "{result:#?}");
    assert!(result.valid, "{result:#?}");
    assert_eq!(result.witness.verdict, Verdict::Admissible);
    assert!(result.witness.findings.is_empty(), "{:?}", result.witness.findings);
}

fn hash_checked(result: &VerifyResult) -> (&str, String, String) {
    result
        .witness
        .facts
        .iter()
        .find_map(|f| match f {
            Fact::HashChecked { field, recorded, computed } => {
                Some((field.as_str(), recorded.to_string(), computed.to_string()))
            }
            _ => None,
        })
        .expect("a hash_checked fact")
}

/// The canonical CBOR text head of a short key, followed by the key.
fn cbor_key(key: &str) -> Vec<u8> {
    assert!(key.len() < 24);
    [vec![0x60 | key.len() as u8], key.as_bytes().to_vec()].concat()
}

#[test]
fn good_json_facts_bundle_and_snapshot_result_are_valid() {
    for algorithm in DigestAlgorithm::ALL {
        let bundle = facts_bundle(algorithm);
        let result = verify_artifact_bytes(&serde_json::to_vec(&bundle).unwrap()).unwrap();
        assert_valid(&result);
        let (field, recorded, computed) = hash_checked(&result);
        assert_eq!(field, "snapshot_hash");
        assert_eq!(recorded, computed);
        assert_eq!(recorded, bundle.snapshot_hash.to_string());

        let snapshot =
            SnapshotResult { facts_bundle: bundle.clone(), witness: Witness::new("ingest.dir", Verdict::Admissible) };
        // Pretty-printed, with leading whitespace: still JSON.
        let text = format!("\n  {}", serde_json::to_string_pretty(&snapshot).unwrap());
        assert_valid(&verify_artifact_bytes(text.as_bytes()).unwrap());
    }
}

#[test]
fn tampered_fact_breaks_the_hash_only() {
    let mut value = serde_json::to_value(facts_bundle(DigestAlgorithm::Blake3)).unwrap();
    value["facts"][0]["size"] = json!(13);
    let result = verify_artifact_bytes(&serde_json::to_vec(&value).unwrap()).unwrap();
    assert!(!result.hash_matches);
    assert!(!result.valid);
    assert!(result.canonical_bytes_match, "a tampered value is still cleanly encoded");
    assert_eq!(result.witness.verdict, Verdict::Inadmissible);
    assert!(result.witness.findings.iter().any(|f| f.rule_id == "verify/hash_matches"));
    let (_, recorded, computed) = hash_checked(&result);
    assert_ne!(recorded, computed);

    // Inside a snapshot result as well.
    let mut wrapped = serde_json::to_value(SnapshotResult {
        facts_bundle: facts_bundle(DigestAlgorithm::Sha256),
        witness: Witness::new("ingest.dir", Verdict::Admissible),
    })
    .unwrap();
    wrapped["facts_bundle"]["facts"].as_array_mut().unwrap().pop();
    let result = verify_artifact_bytes(&serde_json::to_vec(&wrapped).unwrap()).unwrap();
    assert!(!result.hash_matches && !result.valid);
}

#[test]
fn digest_of_another_algorithm_never_matches() {
    let mut value = serde_json::to_value(facts_bundle(DigestAlgorithm::Blake3)).unwrap();
    let relabelled = value["snapshot_hash"].as_str().unwrap().replace("blake3:", "sha256:");
    value["snapshot_hash"] = json!(relabelled);
    let result = verify_artifact_bytes(&serde_json::to_vec(&value).unwrap()).unwrap();
    assert!(!result.hash_matches && !result.valid);
    assert!(hash_checked(&result).2.starts_with("sha256:"), "recomputed with the algorithm the digest names");
}

#[test]
fn json_with_a_duplicated_key_is_not_canonical() {
    let bundle = facts_bundle(DigestAlgorithm::Blake3);
    let text = serde_json::to_string(&bundle).unwrap();
    assert!(text.starts_with('{'));

    // The same key twice at the top level, with the same value: the hash still matches.
    let dup_top = format!("{{\"schema_id\":\"{}\",{}", bundle.schema_id, &text[1..]);
    let result = verify_artifact_bytes(dup_top.as_bytes()).unwrap();
    assert!(result.hash_matches, "{result:#?}");
    assert!(!result.canonical_bytes_match);
    assert!(!result.valid);
    assert_eq!(result.witness.verdict, Verdict::Inadmissible);
    let detail = result
        .witness
        .facts
        .iter()
        .find_map(|f| match f {
            Fact::CanonicalChecked { canonical: false, detail } => detail.clone(),
            _ => None,
        })
        .expect("a failed canonical check");
    assert!(detail.contains("schema_id"), "{detail}");

    // A duplicated key inside a fact, where parsers would disagree on the value.
    let dup_fact = text.replacen("\"path\":\"b.txt\"", "\"path\":\"b.txt\",\"path\":\"c.txt\"", 1);
    assert_ne!(dup_fact, text);
    let result = verify_artifact_bytes(dup_fact.as_bytes()).unwrap();
    assert!(!result.canonical_bytes_match && !result.valid);
}

#[test]
fn canonical_cbor_facts_bundle_is_valid() {
    for algorithm in DigestAlgorithm::ALL {
        let bytes = to_canonical_cbor(&serde_json::to_value(facts_bundle(algorithm)).unwrap()).unwrap();
        assert_ne!(bytes[0], b'{');
        assert_valid(&verify_artifact_bytes(&bytes).unwrap());
    }
}

#[test]
fn non_canonical_cbor_keeps_the_hash_but_not_the_bytes() {
    let value = serde_json::to_value(facts_bundle(DigestAlgorithm::Blake3)).unwrap();
    let canonical = to_canonical_cbor(&value).unwrap();
    assert_eq!(canonical[0], 0xa5, "a map of five entries");

    // 1. The top-level map head in long form: 0xb8 0x05 instead of 0xa5.
    let long_head = [&[0xb8, 0x05][..], &canonical[1..]].concat();
    // 2. The same entries with keys in plain bytewise order instead of length-first order.
    let Value::Object(map) = &value else { panic!("object") };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "facts", "schema_id", "scope_id", "snapshot_hash"]);
    let mut unsorted = vec![0xa5];
    for key in keys {
        unsorted.extend(cbor_key(key));
        unsorted.extend(to_canonical_cbor(&map[key]).unwrap());
    }
    assert_eq!(unsorted.len(), canonical.len());
    assert_ne!(unsorted, canonical);

    for (what, bytes) in [("long-form head", long_head), ("unsorted keys", unsorted)] {
        let result = verify_artifact_bytes(&bytes).unwrap();
        assert!(result.hash_matches, "{what}: the value is intact");
        assert!(!result.canonical_bytes_match, "{what} accepted as canonical");
        assert!(!result.valid, "{what}");
        assert_eq!(result.witness.verdict, Verdict::Inadmissible, "{what}");
        assert!(result.witness.findings.iter().any(|f| f.rule_id == "verify/canonical_bytes_match"), "{what}");
    }
}

#[test]
fn plan_bundle_round_trip_and_tampered_step() {
    let plan = plan_bundle();
    let json_bytes = serde_json::to_vec(&plan).unwrap();
    let result = verify_artifact_bytes(&json_bytes).unwrap();
    assert_valid(&result);
    assert_eq!(hash_checked(&result).0, "plan_hash");

    let cbor = to_canonical_cbor(&serde_json::to_value(&plan).unwrap()).unwrap();
    assert_valid(&verify_artifact_bytes(&cbor).unwrap());

    let wrapped = PlanResult { plan_bundle: plan.clone(), witness: Witness::new("sync", Verdict::Admissible) };
    assert_valid(&verify_artifact_bytes(&serde_json::to_vec(&wrapped).unwrap()).unwrap());

    for edit in [
        |v: &mut Value| v["steps"][1]["description"] = json!("delete everything"),
        |v: &mut Value| v["steps"][0]["reversible"] = json!(false),
        |v: &mut Value| v["steps"].as_array_mut().unwrap().swap(0, 1),
        |v: &mut Value| v["source_snapshots"]["source"] = json!(DigestAlgorithm::Blake3.digest(b"other").to_string()),
    ] {
        let mut value = serde_json::to_value(&plan).unwrap();
        edit(&mut value);
        let result = verify_artifact_bytes(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert!(!result.hash_matches, "{value}");
        assert!(!result.valid);
        assert!(result.canonical_bytes_match);
    }

    // created_at is metadata: changing it keeps the plan valid.
    let mut value = serde_json::to_value(&plan).unwrap();
    value["created_at"] = json!("2030-01-01T00:00:00Z");
    assert_valid(&verify_artifact_bytes(&serde_json::to_vec(&value).unwrap()).unwrap());
}

#[test]
fn unknown_digest_prefix_is_a_field_error() {
    let hex = "0".repeat(64);
    let mut value = serde_json::to_value(facts_bundle(DigestAlgorithm::Blake3)).unwrap();
    value["snapshot_hash"] = json!(format!("md5:{hex}"));
    let json_bytes = serde_json::to_vec(&value).unwrap();
    let cbor = to_canonical_cbor(&value).unwrap();
    for bytes in [json_bytes, cbor] {
        match verify_artifact_bytes(&bytes) {
            Err(VerifyError::Field { path, message }) => {
                assert!(path.contains("snapshot_hash"), "{path}");
                assert!(message.contains("md5"), "{message}");
            }
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    let mut wrapped = serde_json::to_value(SnapshotResult {
        facts_bundle: facts_bundle(DigestAlgorithm::Blake3),
        witness: Witness::new("ingest.dir", Verdict::Admissible),
    })
    .unwrap();
    wrapped["facts_bundle"]["snapshot_hash"] = json!(format!("md5:{hex}"));
    let err = verify_artifact_bytes(&serde_json::to_vec(&wrapped).unwrap()).unwrap_err();
    assert!(matches!(&err, VerifyError::Field { path, .. } if path == "facts_bundle.snapshot_hash"), "{err}");
    assert!(err.to_string().contains("md5"), "{err}");
}

#[test]
fn garbage_is_an_error() {
    for bytes in [&b"{not json"[..], b"{\"snapshot_hash\": ", b"\xff\xfe\x00garbage", b"", b"[1, 2, 3]", b"plain text"]
    {
        assert!(verify_artifact_bytes(bytes).is_err(), "{:?} accepted", String::from_utf8_lossy(bytes));
    }
    assert!(matches!(verify_artifact_bytes(b"{not json"), Err(VerifyError::Json { line: 1, .. })));
    assert!(matches!(verify_artifact_bytes(b"\xff\xfe"), Err(VerifyError::Cbor(_))));
    // Well-formed, but not an artifact.
    assert!(matches!(verify_artifact_bytes(br#"{"hello": 1}"#), Err(VerifyError::Unrecognised { .. })));
    // Decodable CBOR that is not an artifact either.
    assert!(matches!(
        verify_artifact_bytes(&to_canonical_cbor(&json!([1, 2])).unwrap()),
        Err(VerifyError::Unrecognised { .. })
    ));
}
