//! `pal` is the Provider Abstraction Layer: one async trait per capability (inventory, ads,
//! lifecycle, experiments, CDP, vector store, LLM gateway, LLM observability) with typed
//! requests and responses, the [`Registry`] that picks each capability's adapter from config
//! at run time (with atomic reload and overrides), and the [`Pipeline`] every provider call goes
//! through (timeouts, retries with jittered backoff, rate limits, hooks and metrics, secret
//! redaction). Errors are `admit_core::ProviderError`: one error type for every layer.
//!
//! It must never know a vendor, and no media concept beyond the inventory capability's data
//! types: vendors live in `providers-*` crates, which register [`AdapterFactory`]s.

pub mod adapter;
pub mod ads;
pub mod capability;
pub mod cdp;
pub mod config;
pub mod experiments;
pub mod health;
pub mod http;
pub mod ids;
pub mod inventory;
pub mod keys;
pub mod lifecycle;
pub mod llm;
pub mod pipeline;
pub mod registry;
pub mod secret;
pub mod vectorstore;

pub use adapter::{AdapterHandle, CallTarget, invoke};
pub use admit_core::{ErrorClass, ErrorCode, ProviderError, ProviderPhase};
pub use async_trait::async_trait;
pub use capability::{Capability, Idempotency, OpSpec};
pub use health::{ApiStats, HealthReport, HealthStatus};
pub use pipeline::{
    CallSpec, Clock, Hook, Jitter, MetricsEvent, MetricsRecorder, Pipeline, RetryPolicy, SeededJitter, TokioClock,
};
pub use registry::{AdapterFactory, BuiltAdapter, CallError, ListingEntry, Registry, RegistryError, secrets_in};
pub use secret::{Redactor, Secret};

/// Vendor fields carried alongside typed ones.
pub type Extra = serde_json::Map<String, serde_json::Value>;
