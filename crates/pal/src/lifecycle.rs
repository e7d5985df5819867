//! The lifecycle messaging capability.

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::health::HealthReport;

/// A message to one recipient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Recipient address or id.
    pub to: String,
    /// `email`, `push`, `sms`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Template id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A key that makes `send` safe to repeat: the same key is delivered once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Proof of a send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendReceipt {
    /// The vendor's message id.
    pub message_id: String,
    /// `sent`, `queued`, `duplicate`.
    pub status: String,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// When and how fast to send a batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SchedulePolicy {
    /// Start time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    /// Cap on messages per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Proof of a scheduled batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleReceipt {
    /// The vendor's batch id.
    pub batch_id: String,
    /// Messages accepted.
    pub scheduled: u64,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A rendered message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Preview {
    /// Rendered subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Rendered body.
    pub body: String,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A lifecycle messaging platform.
///
/// ```
/// use pal::lifecycle::{LifecycleProvider, Message};
/// async fn welcome(messaging: &dyn LifecycleProvider) -> Result<(), pal::ProviderError> {
///     let message = Message { to: "u1".into(), template: Some("welcome".into()),
///         idempotency_key: Some("welcome-u1".into()), ..Default::default() };
///     messaging.preview(message.clone()).await?;
///     messaging.send(message).await?;
///     Ok(())
/// }
/// ```
#[async_trait]
pub trait LifecycleProvider: Send + Sync + std::fmt::Debug {
    /// Sends one message. Not idempotent unless the message carries an `idempotency_key`.
    async fn send(&self, message: Message) -> Result<SendReceipt, ProviderError>;
    /// Schedules a batch.
    async fn schedule(&self, batch: Vec<Message>, policy: SchedulePolicy) -> Result<ScheduleReceipt, ProviderError>;
    /// Renders without sending.
    async fn preview(&self, message: Message) -> Result<Preview, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}
