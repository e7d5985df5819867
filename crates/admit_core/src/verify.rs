//! `verify`: re-check an artifact without trusting it.
//!
//! Two independent checks:
//! - **hash**: the identity hash is recomputed from the artifact's identity fields, with the
//!   algorithm the recorded digest names, and compared with the recorded digest;
//! - **canonical bytes**: for a CBOR artifact, the file must be byte-identical to the canonical
//!   re-encoding of what it holds; for a JSON artifact (JSON text has no single canonical byte
//!   form), no object may repeat a key — parsers disagree on which copy wins — and the identity
//!   fields must encode to the same canonical bytes as read and as re-serialized by the typed
//!   model (nothing dropped, defaulted or rewritten on the way).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserializer, Serialize};
use serde_json::Value;

use crate::canonical::{CanonicalError, to_canonical_cbor};
use crate::decode::{CanonicalCheck, DecodeError, check_canonical};
use crate::digest::Digest;
use crate::types::{
    Fact, FactsBundle, Finding, PlanBundle, PlanResult, ScopeId, Severity, SnapshotResult, Verdict, VerifyResult,
    Witness,
};

/// The artifact kinds `verify` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A bare `FactsBundle`.
    FactsBundle,
    /// A `SnapshotResult` (facts bundle + witness).
    SnapshotResult,
    /// A bare `PlanBundle`.
    PlanBundle,
    /// A `PlanResult` (plan bundle + witness).
    PlanResult,
}

impl ArtifactKind {
    /// Recognises an artifact by its top-level keys.
    pub fn detect(value: &Value) -> Option<ArtifactKind> {
        let object = value.as_object()?;
        if object.contains_key("facts_bundle") {
            Some(ArtifactKind::SnapshotResult)
        } else if object.contains_key("plan_bundle") {
            Some(ArtifactKind::PlanResult)
        } else if object.contains_key("snapshot_hash") {
            Some(ArtifactKind::FactsBundle)
        } else if object.contains_key("plan_hash") && object.contains_key("steps") {
            Some(ArtifactKind::PlanBundle)
        } else {
            None
        }
    }
}

/// Why an artifact could not be checked at all (as opposed to checked and found wanting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not parseable JSON.
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Not decodable CBOR.
    #[error("not decodable CBOR: {0}")]
    Cbor(#[from] DecodeError),
    /// Not one of the known artifact shapes.
    #[error(
        "unrecognised artifact: expected a facts bundle (`snapshot_hash`), a snapshot result (`facts_bundle`), a plan bundle (`plan_hash` + `steps`) or a plan result (`plan_bundle`); found keys: {keys}"
    )]
    Unrecognised {
        /// The top-level keys found, comma-separated.
        keys: String,
    },
    /// A field has the wrong type or value.
    #[error("field `{path}`: {message}")]
    Field {
        /// Path of the field, e.g. `facts_bundle.snapshot_hash`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The identity fields cannot be encoded canonically.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

const FACTS_IDENTITY: [&str; 4] = ["schema_id", "scope_id", "facts", "snapshot_hash"];
const PLAN_IDENTITY: [&str; 6] = ["schema_id", "scope_id", "intent_hash", "steps", "source_snapshots", "plan_hash"];

/// Verifies an artifact file's bytes (JSON, or canonical CBOR when it does not start with `{`).
pub fn verify_artifact_bytes(bytes: &[u8]) -> Result<VerifyResult, VerifyError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| VerifyError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let duplicate = duplicate_key(bytes);
        let mut result = verify_value(&value)?;
        if let Some(path) = duplicate {
            mark_not_canonical(&mut result, format!("key `{path}` appears more than once in its object"));
        }
        Ok(result)
    } else {
        match check_canonical(bytes)? {
            CanonicalCheck::Canonical(value) => verify_value(&value),
            CanonicalCheck::NotCanonical { value, first_difference } => {
                let mut result = verify_value(&value)?;
                mark_not_canonical(
                    &mut result,
                    format!("bytes differ from the canonical re-encoding from byte {first_difference} on"),
                );
                Ok(result)
            }
        }
    }
}

/// Verifies an artifact already parsed into JSON.
pub fn verify_artifact_value(value: &Value) -> Result<VerifyResult, VerifyError> {
    verify_value(value)
}

fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, VerifyError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        VerifyError::Field { path, message: e.into_inner().to_string() }
    })
}

fn verify_value(value: &Value) -> Result<VerifyResult, VerifyError> {
    let kind = ArtifactKind::detect(value).ok_or_else(|| VerifyError::Unrecognised {
        keys: value
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|| "(not an object)".to_owned()),
    })?;
    match kind {
        ArtifactKind::FactsBundle => {
            let bundle: FactsBundle = typed(value, "")?;
            check_facts(&bundle, value)
        }
        ArtifactKind::SnapshotResult => {
            let result: SnapshotResult = typed(value, "")?;
            check_facts(&result.facts_bundle, &value["facts_bundle"])
        }
        ArtifactKind::PlanBundle => {
            let bundle: PlanBundle = typed(value, "")?;
            check_plan(&bundle, value)
        }
        ArtifactKind::PlanResult => {
            let result: PlanResult = typed(value, "")?;
            check_plan(&result.plan_bundle, &value["plan_bundle"])
        }
    }
}

fn check_facts(bundle: &FactsBundle, raw: &Value) -> Result<VerifyResult, VerifyError> {
    let computed = bundle.recompute_hash()?;
    finish(
        &bundle.scope_id,
        "snapshot_hash",
        bundle.snapshot_hash,
        computed,
        identity_differs(bundle, raw, &FACTS_IDENTITY)?,
    )
}

fn check_plan(bundle: &PlanBundle, raw: &Value) -> Result<VerifyResult, VerifyError> {
    let computed = bundle.recompute_hash()?;
    finish(&bundle.scope_id, "plan_hash", bundle.plan_hash, computed, identity_differs(bundle, raw, &PLAN_IDENTITY)?)
}

/// Compares the canonical bytes of the identity fields as read and as the typed model writes them.
fn identity_differs<T: Serialize>(typed: &T, raw: &Value, keys: &[&str]) -> Result<Option<String>, VerifyError> {
    let rewritten =
        serde_json::to_value(typed).map_err(|e| VerifyError::Field { path: String::new(), message: e.to_string() })?;
    for key in keys {
        let as_read = to_canonical_cbor(&raw.get(*key))?;
        let as_typed = to_canonical_cbor(&rewritten.get(*key))?;
        if as_read != as_typed {
            return Ok(Some(format!(
                "identity field `{key}` changes when read into the typed model (missing, defaulted or rewritten)"
            )));
        }
    }
    Ok(None)
}

fn finish(
    scope_id: &ScopeId,
    field: &str,
    recorded: Digest,
    computed: Digest,
    not_canonical: Option<String>,
) -> Result<VerifyResult, VerifyError> {
    let hash_matches = recorded == computed;
    let mut witness = Witness::new(scope_id, Verdict::Admissible);
    witness.facts.push(Fact::HashChecked { field: field.to_owned(), recorded, computed });
    if !hash_matches {
        witness.findings.push(Finding {
            rule_id: "verify/hash_matches".to_owned(),
            severity: Severity::Error,
            message: format!(
                "{field} is {recorded} but the artifact's identity fields hash to {computed}: the artifact was altered"
            ),
            scope_id: Some(scope_id.clone()),
            evidence: None,
        });
    }
    let mut result =
        VerifyResult { valid: hash_matches, hash_matches, canonical_bytes_match: true, signature_valid: None, witness };
    match not_canonical {
        Some(detail) => mark_not_canonical(&mut result, detail),
        None => result.witness.facts.push(Fact::CanonicalChecked { canonical: true, detail: None }),
    }
    result.witness.verdict = if result.valid { Verdict::Admissible } else { Verdict::Inadmissible };
    Ok(result)
}

fn mark_not_canonical(result: &mut VerifyResult, detail: String) {
    result.canonical_bytes_match = false;
    result.valid = false;
    result.witness.facts.retain(|f| !matches!(f, Fact::CanonicalChecked { .. }));
    result.witness.facts.push(Fact::CanonicalChecked { canonical: false, detail: Some(detail.clone()) });
    result.witness.findings.push(Finding {
        rule_id: "verify/canonical_bytes_match".to_owned(),
        severity: Severity::Error,
        message: detail,
        scope_id: Some(result.witness.scope_id.clone()),
        evidence: None,
    });
    result.witness.verdict = Verdict::Inadmissible;
}

/// The path of the first repeated key in a JSON document, if any.
fn duplicate_key(bytes: &[u8]) -> Option<String> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let seed = DuplicateKeySeed { path: String::new(), found: &mut found };
    // The document already parsed once; a failure here can only mean it did not, so ignore.
    let _ = seed.deserialize(&mut deserializer);
    found
}

struct DuplicateKeySeed<'a> {
    path: String,
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for DuplicateKeySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DuplicateKeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if !keys.insert(key) && self.found.is_none() {
                *self.found = Some(path.clone());
            }
            map.next_value_seed(DuplicateKeySeed { path, found: &mut *self.found })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let path = format!("{}[{index}]", self.path);
            let seed = DuplicateKeySeed { path, found: &mut *self.found };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}
