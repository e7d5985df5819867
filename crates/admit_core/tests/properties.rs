#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests of the canonical encoding and the identity hashes (CONTRACTS §1):
//! map order never matters, decode∘encode is byte-stable and keeps the value, the pack hash
//! covers exactly the identity fields, snapshot hashes ignore metadata and fact order, and one
//! hand-assembled golden pins the pack identity layout independently of the implementation.

use std::collections::{BTreeMap, HashMap};

use admit_core::{
    CanonicalCheck, ClosureRequirements, DigestAlgorithm, FactsBundle, PredicateDescriptor, PredicateResultKind,
    ProviderDescriptor, ProviderPhase, Timestamp, check_canonical, from_cbor, provider_pack_hash, snapshot_hash,
    to_canonical_cbor,
};
use proptest::prelude::*;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Number, Value, json};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// Map keys: short ASCII keys (lots of shared prefixes and equal lengths) and arbitrary unicode
/// keys whose lengths straddle the 23/24-byte boundary where the CBOR text head grows.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c]{0,3}", "\\PC{0,30}", "[a-z_]{20,27}"]
}

/// Finite floats, weighted towards the interesting places: integer-valued floats beyond 2^53
/// (including the negative range below i64::MIN), values exact in half or single precision,
/// subnormals and the extremes.
fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        (any::<i64>(), 0i32..=12).prop_map(|(m, e)| m as f64 * 2f64.powi(e)),
        (any::<i16>(), 0i32..=30).prop_map(|(m, e)| f64::from(m) / 2f64.powi(e)),
        (any::<i32>(), 0i32..=40).prop_map(|(m, e)| f64::from(m) / 2f64.powi(e)),
        prop::sample::select(vec![
            -0.0,
            1.5,
            65504.0,
            65504.5,
            -4.1,
            5.960_464_477_539_063e-8,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_992.0,
            -1e19,
            -(2f64.powi(60)),
            -(2f64.powi(63)),
            -(2f64.powi(63)) - 2048.0,
            -(2f64.powi(64)),
            2f64.powi(64) - 2048.0,
            2f64.powi(64),
        ]),
    ]
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,40}", any::<String>(), "[a-z]{0,30}"]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_f64().prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        json_string().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// (a) Map insertion order

/// A map that serializes its entries in exactly the order given.
struct Ordered<'a>(&'a [(String, Value)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A reference model of canonical map layout, independent of the encoder's map code: entries
/// sorted by encoded key (length first, then bytewise), each key written with its text head.
fn model_map(entries: &[(String, Value)]) -> Vec<u8> {
    fn head(major: u8, n: u64) -> Vec<u8> {
        let m = major << 5;
        match n {
            0..=23 => vec![m | n as u8],
            24..=0xff => vec![m | 24, n as u8],
            0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
            0x1_0000..=0xffff_ffff => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
            _ => [vec![m | 27], n.to_be_bytes().to_vec()].concat(),
        }
    }
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
        .iter()
        .map(|(k, v)| ([head(3, k.len() as u64), k.as_bytes().to_vec()].concat(), to_canonical_cbor(v).unwrap()))
        .collect();
    encoded.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let mut out = head(5, entries.len() as u64);
    for (k, v) in encoded {
        out.extend(k);
        out.extend(v);
    }
    out
}

fn unique_entries() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::btree_map(key(), json_value(), 0..24).prop_map(|m| m.into_iter().collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn map_encoding_ignores_insertion_order(
        (entries, shuffled) in unique_entries().prop_flat_map(|e| (Just(e.clone()), Just(e).prop_shuffle()))
    ) {
        let given = to_canonical_cbor(&Ordered(&entries)).unwrap();
        let reversed: Vec<_> = entries.iter().rev().cloned().collect();
        prop_assert_eq!(hex(&to_canonical_cbor(&Ordered(&shuffled)).unwrap()), hex(&given));
        prop_assert_eq!(hex(&to_canonical_cbor(&Ordered(&reversed)).unwrap()), hex(&given));

        let hash_map: HashMap<&str, &Value> = entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let btree_map: BTreeMap<&str, &Value> = entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let object = Value::Object(shuffled.iter().cloned().collect());
        prop_assert_eq!(hex(&to_canonical_cbor(&hash_map).unwrap()), hex(&given));
        prop_assert_eq!(hex(&to_canonical_cbor(&btree_map).unwrap()), hex(&given));
        prop_assert_eq!(hex(&to_canonical_cbor(&object).unwrap()), hex(&given));

        // And the one order they all agree on is the canonical one.
        prop_assert_eq!(hex(&given), hex(&model_map(&entries)));
    }
}

// ---------------------------------------------------------------------------------------------
// (b) decode ∘ encode

/// An exact view of a JSON number, so `1.0`, `1` and `1u64` compare equal but nothing else does.
#[derive(Debug, PartialEq)]
enum Exact {
    Int(i128),
    Float(u64),
}

fn exact(n: &Number) -> Exact {
    if let Some(i) = n.as_i64() {
        Exact::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Exact::Int(i128::from(u))
    } else {
        let f = n.as_f64().unwrap();
        if f.fract() == 0.0 && f.abs() < 2f64.powi(100) { Exact::Int(f as i128) } else { Exact::Float(f.to_bits()) }
    }
}

/// Value equality in the JSON data model, comparing numbers exactly by value.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            // -0.0 and 0.0 are the same JSON value (both encode as the integer 0).
            let zero = |n: &Number| n.as_f64() == Some(0.0);
            (zero(x) && zero(y)) || exact(x) == exact(y)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_encode_round_trips_byte_identically(value in json_value()) {
        let bytes = to_canonical_cbor(&value).unwrap();
        let decoded = from_cbor(&bytes).unwrap();
        prop_assert_eq!(hex(&to_canonical_cbor(&decoded).unwrap()), hex(&bytes));
        match check_canonical(&bytes).unwrap() {
            CanonicalCheck::Canonical(back) => prop_assert!(same_value(&back, &value), "{back} != {value}"),
            CanonicalCheck::NotCanonical { first_difference, .. } => {
                prop_assert!(false, "canonical bytes judged non-canonical from byte {first_difference}");
            }
        }
        // The encoding keeps the value, not just a stable byte string.
        prop_assert!(same_value(&decoded, &value), "decoded {decoded} != original {value}");
    }

    #[test]
    fn finite_floats_keep_their_value(f in finite_f64()) {
        let bytes = to_canonical_cbor(&f).unwrap();
        let back = from_cbor(&bytes).unwrap();
        let back = back.as_f64().unwrap();
        prop_assert!(back == f, "{f:e} encoded as {} decodes to {back:e}", hex(&bytes));
        prop_assert_eq!(hex(&to_canonical_cbor(&back).unwrap()), hex(&bytes));
    }
}

#[test]
fn large_integer_valued_floats_encode_as_the_exact_integer() {
    // 2^60 - 1 = 0x0fffffffffffffff: the CBOR argument of -2^60 is |v| - 1.
    assert_eq!(hex(&to_canonical_cbor(&-(2f64.powi(60))).unwrap()), "3b0fffffffffffffff");
    assert_eq!(hex(&to_canonical_cbor(&-(2f64.powi(63))).unwrap()), "3b7fffffffffffffff");
    // -1e19: argument 1e19 - 1 = 0x8ac7230489e7ffff, below i64::MIN but within CBOR's range.
    assert_eq!(hex(&to_canonical_cbor(&-1e19).unwrap()), "3b8ac7230489e7ffff");
    assert_eq!(hex(&to_canonical_cbor(&-(2f64.powi(64))).unwrap()), "3bffffffffffffffff");
    assert_eq!(hex(&to_canonical_cbor(&(2f64.powi(64) - 2048.0)).unwrap()), "1bfffffffffffff800");
    // Below i64::MIN a CBOR negative integer decodes only when a float holds it exactly.
    assert_eq!(from_cbor(&unhex("3b8000000000000fff")).unwrap().as_f64(), Some(-(2f64.powi(63)) - 4096.0));
    for inexact in ["3b8000000000000000", "3b8000000000000001", "3bfffffffffffffffe"] {
        assert!(from_cbor(&unhex(inexact)).is_err(), "{inexact} decoded to a rounded value");
    }
    for f in [-1e19, -(2f64.powi(64)), -(2f64.powi(63)) - 2048.0] {
        let bytes = to_canonical_cbor(&f).unwrap();
        assert_eq!(from_cbor(&bytes).unwrap().as_f64(), Some(f), "{f:e}");
        assert!(matches!(check_canonical(&bytes).unwrap(), CanonicalCheck::Canonical(_)), "{f:e}");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) provider_pack_hash

fn small_schema() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!({"type": "object"})),
        "[a-z]{1,6}".prop_map(|t| json!({"type": "object", "properties": {t: {"type": "string"}}})),
        any::<u16>().prop_map(|n| json!({"maximum": n})),
    ])
}

fn predicate(name: String) -> impl Strategy<Value = PredicateDescriptor> {
    (
        prop_oneof![Just(String::new()), "[a-z.]{1,6}/[a-z_]{1,6}@[0-9]"],
        "\\PC{0,20}",
        any::<bool>(),
        small_schema(),
        small_schema(),
    )
        .prop_map(move |(predicate_id, doc, emits_findings, param_schema, evidence_schema)| PredicateDescriptor {
            predicate_id,
            name: name.clone(),
            doc,
            result_kind: PredicateResultKind::Bool,
            emits_findings,
            param_schema,
            evidence_schema,
        })
}

fn descriptor() -> impl Strategy<Value = ProviderDescriptor> {
    let names = prop::collection::btree_set("[a-z_]{1,8}", 0..5);
    let predicates = names.prop_flat_map(|names| names.into_iter().map(predicate).collect::<Vec<_>>());
    (
        "[a-z][a-z.]{0,10}",
        any::<u32>(),
        prop::collection::btree_set("[a-z./@0-9-]{1,16}", 0..5),
        prop::collection::vec(any::<bool>(), 5),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 4),
        prop::collection::btree_set("[a-z_]{1,10}", 0..4),
        predicates,
    )
        .prop_map(|(scope, version, schema_ids, phases, deterministic, closure, approvals, predicates)| {
            ProviderDescriptor {
                scope_id: scope.into(),
                version,
                schema_ids: schema_ids.into_iter().collect(),
                supported_phases: ProviderPhase::ALL
                    .into_iter()
                    .zip(phases)
                    .filter(|(_, on)| *on)
                    .map(|(p, _)| p)
                    .collect(),
                deterministic,
                closure: ClosureRequirements {
                    requires_fs: closure[0],
                    requires_network: closure[1],
                    requires_db: closure[2],
                    requires_process: closure[3],
                },
                required_approvals: approvals.into_iter().collect(),
                predicates,
            }
        })
}

/// The same descriptor with every list shuffled and every `doc` rewritten.
fn reordered() -> impl Strategy<Value = (ProviderDescriptor, ProviderDescriptor)> {
    descriptor().prop_flat_map(|d| {
        let shuffled = (
            Just(d.schema_ids.clone()).prop_shuffle(),
            Just(d.supported_phases.clone()).prop_shuffle(),
            Just(d.required_approvals.clone()).prop_shuffle(),
            Just(d.predicates.clone()).prop_shuffle(),
            "\\PC{0,20}",
        );
        (Just(d.clone()), shuffled).prop_map(|(d, (schema_ids, phases, approvals, predicates, doc))| {
            let mut other = d.clone();
            other.schema_ids = schema_ids;
            other.supported_phases = phases;
            other.required_approvals = approvals;
            other.predicates = predicates
                .into_iter()
                .map(|p| PredicateDescriptor { doc: format!("{doc}{}", p.doc.len()), ..p })
                .collect();
            (d, other)
        })
    })
}

/// Every single-field change to the identity, labelled. Each must change the pack hash.
/// (`result_kind` has a single variant, so it cannot be changed.)
fn mutations(d: &ProviderDescriptor) -> Vec<(String, ProviderDescriptor)> {
    let mut out = Vec::new();
    let mut push = |label: &str, f: &dyn Fn(&mut ProviderDescriptor)| {
        let mut m = d.clone();
        f(&mut m);
        out.push((label.to_owned(), m));
    };
    push("scope_id", &|m| m.scope_id = format!("{}x", m.scope_id).into());
    push("version", &|m| m.version = m.version.wrapping_add(1));
    push("schema id added", &|m| m.schema_ids.push("extra/schema@9~".into()));
    if !d.schema_ids.is_empty() {
        push("schema id changed", &|m| m.schema_ids[0].push('~'));
        push("schema id removed", &|m| {
            m.schema_ids.remove(0);
        });
    }
    for phase in ProviderPhase::ALL {
        if d.supported_phases.contains(&phase) {
            push(&format!("phase {phase} removed"), &|m| m.supported_phases.retain(|p| *p != phase));
        } else {
            push(&format!("phase {phase} added"), &|m| m.supported_phases.push(phase));
        }
    }
    push("deterministic", &|m| m.deterministic = !m.deterministic);
    push("closure.requires_fs", &|m| m.closure.requires_fs = !m.closure.requires_fs);
    push("closure.requires_network", &|m| m.closure.requires_network = !m.closure.requires_network);
    push("closure.requires_db", &|m| m.closure.requires_db = !m.closure.requires_db);
    push("closure.requires_process", &|m| m.closure.requires_process = !m.closure.requires_process);
    push("approval added", &|m| m.required_approvals.push("approval~new".into()));
    if !d.required_approvals.is_empty() {
        push("approval changed", &|m| m.required_approvals[0].push('~'));
        push("approval removed", &|m| {
            m.required_approvals.remove(0);
        });
    }
    push("predicate added", &|m| {
        m.predicates.push(PredicateDescriptor {
            predicate_id: String::new(),
            name: "added~".into(),
            doc: String::new(),
            result_kind: PredicateResultKind::Bool,
            emits_findings: true,
            param_schema: None,
            evidence_schema: None,
        });
    });
    for i in 0..d.predicates.len() {
        push(&format!("predicates[{i}] removed"), &|m| {
            m.predicates.remove(i);
        });
        push(&format!("predicates[{i}].predicate_id"), &|m| m.predicates[i].predicate_id.push('~'));
        push(&format!("predicates[{i}].name"), &|m| m.predicates[i].name.push('~'));
        push(&format!("predicates[{i}].emits_findings"), &|m| {
            m.predicates[i].emits_findings = !m.predicates[i].emits_findings;
        });
        for which in ["param_schema", "evidence_schema"] {
            push(&format!("predicates[{i}].{which} toggled"), &|m| {
                let slot = match which {
                    "param_schema" => &mut m.predicates[i].param_schema,
                    _ => &mut m.predicates[i].evidence_schema,
                };
                *slot = match slot.take() {
                    Some(_) => None,
                    None => Some(json!({"type": "object"})),
                };
            });
            push(&format!("predicates[{i}].{which} edited"), &|m| {
                let slot = match which {
                    "param_schema" => &mut m.predicates[i].param_schema,
                    _ => &mut m.predicates[i].evidence_schema,
                };
                *slot = Some(json!({"edited": slot.take()}));
            });
        }
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pack_hash_ignores_list_order_and_doc((a, b) in reordered()) {
        for algorithm in DigestAlgorithm::ALL {
            let ha = provider_pack_hash(&a, algorithm).unwrap();
            prop_assert_eq!(ha.algorithm(), algorithm);
            prop_assert_eq!(ha, provider_pack_hash(&b, algorithm).unwrap());
        }
    }

    #[test]
    fn pack_hash_changes_with_every_identity_field(d in descriptor()) {
        for algorithm in DigestAlgorithm::ALL {
            let base = provider_pack_hash(&d, algorithm).unwrap();
            for (label, mutated) in mutations(&d) {
                prop_assert_ne!(provider_pack_hash(&mutated, algorithm).unwrap(), base, "{} ({})", label, algorithm);
            }
        }
    }

    #[test]
    fn empty_predicate_id_defaults_to_scope_name_version(d in descriptor()) {
        let mut explicit = d.clone();
        for p in &mut explicit.predicates {
            if p.predicate_id.is_empty() {
                p.predicate_id = format!("{}/{}@{}", d.scope_id, p.name, d.version);
            }
        }
        for algorithm in DigestAlgorithm::ALL {
            prop_assert_eq!(provider_pack_hash(&d, algorithm).unwrap(), provider_pack_hash(&explicit, algorithm).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (d) snapshot hashes

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (1970u32..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60).prop_map(|(y, mo, d, h, mi, s)| {
        Timestamp::parse(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")).unwrap()
    })
}

fn fact() -> impl Strategy<Value = Value> {
    prop_oneof![
        ("[a-z]{1,4}/[a-z]{1,8}\\.txt", any::<u32>(), any::<[u8; 4]>()).prop_map(|(path, size, seed)| {
            json!({"kind": "file", "path": path, "size": size, "digest": DigestAlgorithm::Blake3.digest(&seed).to_string()})
        }),
        json_value(),
    ]
}

fn facts_twice() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec(fact(), 0..16).prop_flat_map(|f| (Just(f.clone()), Just(f).prop_shuffle()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn snapshot_hash_ignores_created_at_and_fact_order(
        (facts, shuffled) in facts_twice(),
        t1 in timestamp(),
        t2 in timestamp(),
    ) {
        for algorithm in DigestAlgorithm::ALL {
            let a = FactsBundle::new("facts-bundle/t@1", "t", facts.clone(), t1.clone(), algorithm).unwrap();
            let b = FactsBundle::new("facts-bundle/t@1", "t", shuffled.clone(), t2.clone(), algorithm).unwrap();
            prop_assert_eq!(a.snapshot_hash, b.snapshot_hash);
            prop_assert_eq!(a.snapshot_hash, snapshot_hash(&shuffled, algorithm).unwrap());
            prop_assert_eq!(a.snapshot_hash.algorithm(), algorithm);
            // Independent model: digest of the canonical CBOR array of the facts sorted by
            // their canonical bytes.
            let mut sorted = facts.clone();
            sorted.sort_by_cached_key(|f| to_canonical_cbor(f).unwrap());
            prop_assert_eq!(a.snapshot_hash, algorithm.digest(&to_canonical_cbor(&sorted).unwrap()));
        }
    }

    #[test]
    fn snapshot_hash_changes_when_a_fact_changes(
        facts in prop::collection::vec(fact(), 1..16),
        index in any::<prop::sample::Index>(),
        replacement in fact(),
    ) {
        let i = index.index(facts.len());
        let mut edits = vec![
            ("wrapped", { let mut f = facts.clone(); f[i] = json!({"changed": f[i].clone()}); f }),
            ("removed", { let mut f = facts.clone(); f.remove(i); f }),
            ("duplicated", { let mut f = facts.clone(); f.push(f[i].clone()); f }),
        ];
        if to_canonical_cbor(&replacement).unwrap() != to_canonical_cbor(&facts[i]).unwrap() {
            edits.push(("replaced", { let mut f = facts.clone(); f[i] = replacement.clone(); f }));
        }
        for algorithm in DigestAlgorithm::ALL {
            let base = snapshot_hash(&facts, algorithm).unwrap();
            for (label, edited) in &edits {
                prop_assert_ne!(snapshot_hash(edited, algorithm).unwrap(), base, "{} ({})", label, algorithm);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (e) Hand-assembled golden of the pack identity

fn tiny_descriptor() -> ProviderDescriptor {
    ProviderDescriptor {
        scope_id: "s".into(),
        version: 1,
        schema_ids: vec!["x".into()],
        supported_phases: vec![ProviderPhase::Describe],
        deterministic: true,
        closure: ClosureRequirements::default(),
        required_approvals: vec![],
        predicates: vec![],
    }
}

/// The identity object of `tiny_descriptor`, written out byte by byte. Keys are sorted by
/// encoded length, then bytewise: closure(7) < version(7) < scope_id(8) < predicates(10) <
/// schema_ids(10) < deterministic(13) < supported_phases(16) < required_approvals(18); inside
/// `closure`: requires_db(11) < requires_fs(11) < requires_network(16) < requires_process(16).
fn tiny_identity_hex(predicates: &str) -> String {
    [
        "a8",                                     // map, 8 entries
        "67 636c6f73757265",                      // "closure"
        "a4",                                     //   map, 4 entries
        "6b 72657175697265735f6462 f4",           //   "requires_db": false
        "6b 72657175697265735f6673 f4",           //   "requires_fs": false
        "70 72657175697265735f6e6574776f726b f4", //   "requires_network": false
        "70 72657175697265735f70726f63657373 f4", //   "requires_process": false
        "67 76657273696f6e 01",                   // "version": 1
        "68 73636f70655f6964 6173",               // "scope_id": "s"
        "6a 70726564696361746573",                // "predicates"
        predicates,
        "6a 736368656d615f696473 81 6178",  // "schema_ids": ["x"]
        "6d 64657465726d696e6973746963 f5", // "deterministic": true
        "70 737570706f727465645f706861736573 81 68 6465736372696265", // "supported_phases": ["describe"]
        "72 72657175697265645f617070726f76616c73 80", // "required_approvals": []
    ]
    .concat()
}

#[test]
fn golden_pack_identity_bytes_and_hash() {
    let expected = unhex(&tiny_identity_hex("80")); // "predicates": []
    let desc = tiny_descriptor();

    // The same identity object through serde_json: pins the encoder on this layout.
    let identity = json!({
        "scope_id": "s",
        "version": 1,
        "schema_ids": ["x"],
        "supported_phases": ["describe"],
        "deterministic": true,
        "closure": {"requires_fs": false, "requires_network": false, "requires_db": false, "requires_process": false},
        "required_approvals": [],
        "predicates": [],
    });
    assert_eq!(hex(&to_canonical_cbor(&identity).unwrap()), hex(&expected));

    // And the pack hash is the digest of exactly these bytes, for both algorithms.
    for algorithm in DigestAlgorithm::ALL {
        assert_eq!(provider_pack_hash(&desc, algorithm).unwrap(), algorithm.digest(&expected), "{algorithm}");
    }
    assert!(provider_pack_hash(&desc, DigestAlgorithm::Sha256).unwrap().to_string().starts_with("sha256:"));
}

#[test]
fn golden_pack_identity_with_a_defaulted_predicate() {
    // One predicate, empty predicate_id (→ "s/p@1"), doc excluded, no schemas:
    // keys name(5) < result_kind(12) < predicate_id(13) < emits_findings(15).
    let predicate = [
        "81 a4",
        "64 6e616d65 6170",                          // "name": "p"
        "6b 726573756c745f6b696e64 64 626f6f6c",     // "result_kind": "bool"
        "6c 7072656469636174655f6964 65 732f704031", // "predicate_id": "s/p@1"
        "6e 656d6974735f66696e64696e6773 f5",        // "emits_findings": true
    ]
    .concat();
    let expected = unhex(&tiny_identity_hex(&predicate));
    let mut desc = tiny_descriptor();
    desc.predicates.push(PredicateDescriptor {
        predicate_id: String::new(),
        name: "p".into(),
        doc: "prose that must not count".into(),
        result_kind: PredicateResultKind::Bool,
        emits_findings: true,
        param_schema: None,
        evidence_schema: None,
    });
    for algorithm in DigestAlgorithm::ALL {
        assert_eq!(provider_pack_hash(&desc, algorithm).unwrap(), algorithm.digest(&expected), "{algorithm}");
    }
}
