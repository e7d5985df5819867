//! Identity hashes: which fields each artifact's hash covers, and how they are normalised.
//!
//! Every hash here is a digest of canonical CBOR. Metadata (`created_at`, witnesses, `doc`)
//! never enters a hash, so re-running the same snapshot or plan at another time gives the
//! same identity.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;
use serde_json::Value;

use crate::canonical::{CanonicalError, encode_each, write_array_head};
use crate::digest::{Digest, DigestAlgorithm};
use crate::types::{
    ClosureRequirements, FactsBundle, PlanBundle, PlanIntent, PlanStep, PredicateResultKind, ProviderDescriptor,
    ProviderPhase, ScopeId, Timestamp,
};

#[derive(Serialize)]
struct PackPredicateIdentity<'a> {
    predicate_id: String,
    name: &'a str,
    result_kind: PredicateResultKind,
    emits_findings: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    param_schema: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence_schema: Option<&'a Value>,
}

#[derive(Serialize)]
struct PackIdentity<'a> {
    scope_id: &'a ScopeId,
    version: u32,
    schema_ids: Vec<&'a str>,
    supported_phases: Vec<ProviderPhase>,
    deterministic: bool,
    closure: &'a ClosureRequirements,
    required_approvals: Vec<&'a str>,
    predicates: Vec<PackPredicateIdentity<'a>>,
}

/// The identity hash of a provider pack.
///
/// Covers `scope_id, version, schema_ids, supported_phases, deterministic, closure,
/// required_approvals, predicates`; lists are sorted (phases by rank, predicates by
/// `(predicate_id, name)`), `doc` is excluded, and an empty `predicate_id` becomes
/// `<scope_id>/<name>@<version>`. With [`DigestAlgorithm::Sha256`] the hex part equals the
/// reference implementation's pack hash.
pub fn provider_pack_hash(
    descriptor: &ProviderDescriptor,
    algorithm: DigestAlgorithm,
) -> Result<Digest, CanonicalError> {
    let mut schema_ids: Vec<&str> = descriptor.schema_ids.iter().map(String::as_str).collect();
    schema_ids.sort_unstable();
    let mut supported_phases = descriptor.supported_phases.clone();
    supported_phases.sort_unstable();
    let mut required_approvals: Vec<&str> = descriptor.required_approvals.iter().map(String::as_str).collect();
    required_approvals.sort_unstable();
    let mut predicates: Vec<PackPredicateIdentity<'_>> = descriptor
        .predicates
        .iter()
        .map(|p| PackPredicateIdentity {
            predicate_id: if p.predicate_id.trim().is_empty() {
                format!("{}/{}@{}", descriptor.scope_id, p.name, descriptor.version)
            } else {
                p.predicate_id.clone()
            },
            name: &p.name,
            result_kind: p.result_kind,
            emits_findings: p.emits_findings,
            param_schema: p.param_schema.as_ref(),
            evidence_schema: p.evidence_schema.as_ref(),
        })
        .collect();
    predicates.sort_by(|a, b| a.predicate_id.cmp(&b.predicate_id).then_with(|| a.name.cmp(b.name)));
    algorithm.digest_canonical(&PackIdentity {
        scope_id: &descriptor.scope_id,
        version: descriptor.version,
        schema_ids,
        supported_phases,
        deterministic: descriptor.deterministic,
        closure: &descriptor.closure,
        required_approvals,
        predicates,
    })
}

/// The snapshot hash of a list of facts: digest of the canonical CBOR array of the facts,
/// sorted by their canonical bytes, so the hash does not depend on the order they are listed in.
pub fn snapshot_hash<T: Serialize>(facts: &[T], algorithm: DigestAlgorithm) -> Result<Digest, CanonicalError> {
    let (bytes, facts) = encode_each(facts)?;
    Ok(snapshot_hash_of_encoded(&bytes, facts, algorithm))
}

/// [`snapshot_hash`] of facts already encoded as canonical CBOR (by a hand-written encoder of
/// a hot type, which must write exactly what [`crate::write_canonical_cbor`] writes): `bytes`
/// holds the encodings one after another and `ranges` says where each is.
pub fn snapshot_hash_of_encoded(bytes: &[u8], mut ranges: Vec<Range<usize>>, algorithm: DigestAlgorithm) -> Digest {
    /// The digest reads the facts in batches of this many bytes: a hash fed a few hundred
    /// bytes at a time cannot use its wide (many chunks at once) code path.
    const BATCH: usize = 1 << 16;
    sort_encodings(bytes, &mut ranges);
    let mut hasher = algorithm.hasher();
    let mut batch = Vec::with_capacity(BATCH);
    write_array_head(&mut batch, ranges.len());
    for range in ranges {
        if batch.len() + range.len() > BATCH {
            hasher.update(&batch);
            batch.clear();
        }
        batch.extend_from_slice(&bytes[range]);
    }
    hasher.update(&batch);
    hasher.finalize()
}

/// Sorts `ranges` of `bytes` by the bytes they hold, as `[u8]` orders them.
///
/// Facts of one kind share a long prefix (the same map head and first keys), so comparing two
/// encodings byte by byte reads far into both, at two random places of a large buffer. Here
/// each range is sorted first by the eight bytes after the prefix all of them share (zero past
/// its end, which a shorter range sorts before anyway), in one compact array, and only ranges
/// equal there are compared whole: the same order, read from memory once.
fn sort_encodings(bytes: &[u8], ranges: &mut [Range<usize>]) {
    let Some(first) = ranges.first() else { return };
    let first = &bytes[first.clone()];
    let shared = ranges.iter().fold(first.len(), |shared, range| {
        let other = &bytes[range.clone()];
        first[..shared].iter().zip(other).take_while(|(a, b)| a == b).count()
    });
    let mut keyed: Vec<(u64, Range<usize>)> = ranges
        .iter()
        .map(|range| {
            let rest = &bytes[range.start + shared..range.end];
            let mut head = [0u8; 8];
            let len = rest.len().min(8);
            head[..len].copy_from_slice(&rest[..len]);
            (u64::from_be_bytes(head), range.clone())
        })
        .collect();
    keyed.sort_unstable_by(|(a_head, a), (b_head, b)| {
        a_head.cmp(b_head).then_with(|| bytes[a.start + shared..a.end].cmp(&bytes[b.start + shared..b.end]))
    });
    for (slot, (_, range)) in ranges.iter_mut().zip(keyed) {
        *slot = range;
    }
}

/// The identity hash of a plan intent.
pub fn intent_hash(intent: &PlanIntent, algorithm: DigestAlgorithm) -> Result<Digest, CanonicalError> {
    algorithm.digest_canonical(intent)
}

#[derive(Serialize)]
struct PlanIdentity<'a> {
    schema_id: &'a str,
    scope_id: &'a ScopeId,
    intent_hash: &'a Digest,
    steps: &'a [PlanStep],
    source_snapshots: &'a BTreeMap<String, Digest>,
}

/// The identity hash of a plan: schema id, scope, intent hash, steps and source snapshots.
pub fn plan_hash(
    schema_id: &str,
    scope_id: &ScopeId,
    intent_hash: &Digest,
    steps: &[PlanStep],
    source_snapshots: &BTreeMap<String, Digest>,
    algorithm: DigestAlgorithm,
) -> Result<Digest, CanonicalError> {
    algorithm.digest_canonical(&PlanIdentity { schema_id, scope_id, intent_hash, steps, source_snapshots })
}

impl FactsBundle {
    /// Builds a bundle and computes its snapshot hash.
    pub fn new(
        schema_id: impl Into<String>,
        scope_id: impl Into<ScopeId>,
        facts: Vec<Value>,
        created_at: Timestamp,
        algorithm: DigestAlgorithm,
    ) -> Result<Self, CanonicalError> {
        let snapshot_hash = snapshot_hash(&facts, algorithm)?;
        Ok(FactsBundle { schema_id: schema_id.into(), scope_id: scope_id.into(), facts, snapshot_hash, created_at })
    }

    /// Recomputes the snapshot hash with the algorithm the bundle's hash names.
    pub fn recompute_hash(&self) -> Result<Digest, CanonicalError> {
        snapshot_hash(&self.facts, self.snapshot_hash.algorithm())
    }
}

impl PlanBundle {
    /// Builds a plan bound to `intent` and the snapshots it was made against.
    pub fn new(
        schema_id: impl Into<String>,
        intent: &PlanIntent,
        steps: Vec<PlanStep>,
        source_snapshots: BTreeMap<String, Digest>,
        created_at: Timestamp,
        algorithm: DigestAlgorithm,
    ) -> Result<Self, CanonicalError> {
        let schema_id = schema_id.into();
        let intent_hash = intent_hash(intent, algorithm)?;
        let plan_hash = plan_hash(&schema_id, &intent.scope_id, &intent_hash, &steps, &source_snapshots, algorithm)?;
        Ok(PlanBundle {
            schema_id,
            scope_id: intent.scope_id.clone(),
            intent_hash,
            steps,
            source_snapshots,
            plan_hash,
            created_at,
        })
    }

    /// Recomputes the plan hash with the algorithm the bundle's hash names.
    pub fn recompute_hash(&self) -> Result<Digest, CanonicalError> {
        plan_hash(
            &self.schema_id,
            &self.scope_id,
            &self.intent_hash,
            &self.steps,
            &self.source_snapshots,
            self.plan_hash.algorithm(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    /// The facts go to the digest in batches; the hash is the one of the whole sorted array,
    /// for either algorithm, with facts larger than a batch among them.
    #[test]
    fn batching_the_digest_changes_nothing() {
        let facts: Vec<Value> = (0..3000u32)
            .rev()
            .map(|n| serde_json::json!({"n": n, "pad": "x".repeat(if n % 1000 == 0 { 70_000 } else { n as usize % 50 })}))
            .collect();
        let mut encodings: Vec<Vec<u8>> = facts.iter().map(|f| crate::to_canonical_cbor(f).unwrap()).collect();
        encodings.sort();
        let mut whole = Vec::new();
        write_array_head(&mut whole, encodings.len());
        encodings.iter().for_each(|e| whole.extend_from_slice(e));
        for algorithm in [DigestAlgorithm::Blake3, DigestAlgorithm::Sha256] {
            let mut hasher = algorithm.hasher();
            hasher.update(&whole);
            assert_eq!(snapshot_hash(&facts, algorithm).unwrap(), hasher.finalize());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// The keyed sort gives exactly the order of comparing the encodings whole: long shared
        /// prefixes, ranges that are prefixes of others, zero bytes, equal encodings.
        #[test]
        fn encodings_sort_as_their_bytes_compare(
            prefix in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..12),
            tails in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()], 0..12),
                0..40,
            ),
        ) {
            let mut bytes = Vec::new();
            let mut ranges = Vec::new();
            for tail in &tails {
                let start = bytes.len();
                bytes.extend_from_slice(&prefix);
                bytes.extend_from_slice(tail);
                ranges.push(start..bytes.len());
            }
            let mut expected: Vec<&[u8]> = ranges.iter().map(|r| &bytes[r.clone()]).collect();
            expected.sort();
            sort_encodings(&bytes, &mut ranges);
            let sorted: Vec<&[u8]> = ranges.iter().map(|r| &bytes[r.clone()]).collect();
            prop_assert_eq!(sorted, expected);
        }
    }
}
