//! The customer data platform capability.

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::health::HealthReport;

/// A customer profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Profile {
    /// The profile id.
    pub id: String,
    /// Traits (attributes).
    #[serde(default)]
    pub traits: Extra,
}

/// A behavioural event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Whose event.
    pub profile_id: String,
    /// Event name.
    pub name: String,
    /// A key that makes ingestion safe to repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Properties.
    #[serde(default)]
    pub properties: Extra,
}

/// Proof of ingestion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventReceipt {
    /// The event id (given or assigned).
    pub event_id: String,
    /// `false` when the event was a duplicate and dropped.
    pub accepted: bool,
}

/// An audience to push to a destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Audience {
    /// Audience id.
    pub id: String,
    /// Members.
    pub profile_ids: Vec<String>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Proof of an audience sync.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AudienceSync {
    /// Audience id.
    pub id: String,
    /// Members now in the audience.
    pub synced: u64,
}

/// A customer data platform.
///
/// ```
/// use pal::cdp::{CdpProvider, Event, Profile};
/// async fn track(cdp: &dyn CdpProvider) -> Result<(), pal::ProviderError> {
///     cdp.upsert_profile(Profile { id: "u1".into(), ..Default::default() }).await?;
///     let event = Event { profile_id: "u1".into(), name: "signup".into(), event_id: Some("e1".into()), ..Default::default() };
///     cdp.ingest_event(event).await?;
///     Ok(())
/// }
/// ```
#[async_trait]
pub trait CdpProvider: Send + Sync + std::fmt::Debug {
    /// Creates or merges a profile (idempotent).
    async fn upsert_profile(&self, profile: Profile) -> Result<Profile, ProviderError>;
    /// Records an event. Idempotent only with an `event_id`.
    async fn ingest_event(&self, event: Event) -> Result<EventReceipt, ProviderError>;
    /// Replaces an audience's members (idempotent).
    async fn sync_audience(&self, audience: Audience) -> Result<AudienceSync, ProviderError>;
    /// Reads a profile.
    async fn get_profile(&self, id: &str) -> Result<Option<Profile>, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}
