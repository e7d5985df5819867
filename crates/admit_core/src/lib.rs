//! `admit_core` is the normative provider protocol: describe → snapshot → plan → execute →
//! verify. It defines the protocol's typed artifacts (facts bundles, plans, execution and
//! verification results, witnesses), their canonical CBOR encoding and self-describing
//! digests (`blake3:` by default, `sha256:` for compatibility), the identity-hash rules, the
//! object-safe [`Provider`] trait with structured "not supported" defaults, the
//! [`ProviderRegistry`] keyed by scope id, the predicate [`kernel`](check_ruleset) that turns a
//! ruleset into a witness, the [`PlanStore`] binding that lets `execute` run only an approved,
//! fresh, not-yet-executed plan, and [`verify_artifact_bytes`].
//!
//! It must never know about HTTP, an async runtime, a database or any vendor: it is pure
//! types, hashing and traits, so every other crate can depend on it.

mod canonical;
mod decode;
mod digest;
mod error;
mod hashing;
mod kernel;
mod plan_store;
mod provider;
mod registry;
mod schemas;
mod types;
mod verify;

pub use async_trait::async_trait;
pub use canonical::{
    CanonicalError, to_canonical_cbor, write_canonical_cbor, write_cbor_integer, write_cbor_map_head, write_cbor_text,
};
pub use decode::{CanonicalCheck, DecodeError, MAX_DEPTH, check_canonical, from_cbor};
pub use digest::{Digest, DigestAlgorithm, DigestHasher, DigestParseError};
pub use error::{ErrorClass, ErrorCode, ProviderError};
pub use hashing::{intent_hash, plan_hash, provider_pack_hash, snapshot_hash, snapshot_hash_of_encoded};
pub use kernel::{KERNEL_SCOPE, RULESET_SCHEMA_ID, RuleBinding, Ruleset, check_ruleset};
pub use plan_store::{
    ClaimError, InMemoryPlanStore, PlanRecord, PlanRefusal, PlanState, PlanStore, PlanStoreError, authorize,
};
pub use provider::Provider;
pub use registry::{ProviderRegistry, RegistryError};
pub use schemas::artifact_schemas;
pub use types::*;
pub use verify::{ArtifactKind, VerifyError, verify_artifact_bytes, verify_artifact_value};
