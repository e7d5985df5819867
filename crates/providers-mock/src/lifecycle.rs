//! `mock_lifecycle`: messages "delivered" to an in-memory outbox.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use admit_core::ProviderError;
use pal::lifecycle::{LifecycleProvider, Message, Preview, SchedulePolicy, ScheduleReceipt, SendReceipt};
use pal::{Capability, HealthReport, async_trait};

use crate::faults::{AdapterSettings, FaultInjector};

/// A batch accepted by `schedule`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledBatch {
    /// The batch id (`batch_<n>`).
    pub batch_id: String,
    /// The messages.
    pub messages: Vec<Message>,
    /// The policy.
    pub policy: SchedulePolicy,
}

#[derive(Debug, Default)]
struct Outbox {
    next_message: u64,
    next_batch: u64,
    by_key: BTreeMap<String, String>,
    delivered: Vec<Message>,
    batches: Vec<ScheduledBatch>,
}

/// `mock_lifecycle`: sends are deduplicated by `idempotency_key`; ids are `msg_<n>` and
/// `batch_<n>`, counted from 1.
#[derive(Debug)]
pub struct MockLifecycle {
    faults: FaultInjector,
    outbox: Mutex<Outbox>,
}

impl Default for MockLifecycle {
    fn default() -> Self {
        MockLifecycle::new(AdapterSettings::default())
    }
}

impl MockLifecycle {
    /// The adapter name.
    pub const NAME: &'static str = "mock_lifecycle";

    /// A mock with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockLifecycle {
            faults: FaultInjector::new(Capability::Lifecycle, Self::NAME, settings.faults, settings.token),
            outbox: Mutex::new(Outbox::default()),
        }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Calls that changed stored state: each delivered message and each scheduled batch (a
    /// deduplicated send is not counted).
    pub fn writes(&self) -> u64 {
        let outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        (outbox.delivered.len() + outbox.batches.len()) as u64
    }

    /// Messages delivered by `send`, in order (a deduplicated send delivers nothing).
    pub fn delivered(&self) -> Vec<Message> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner).delivered.clone()
    }

    /// Batches accepted by `schedule`, in order.
    pub fn scheduled(&self) -> Vec<ScheduledBatch> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner).batches.clone()
    }
}

fn receipt(message_id: String, status: &str) -> SendReceipt {
    SendReceipt { message_id, status: status.to_owned(), ..SendReceipt::default() }
}

#[async_trait]
impl LifecycleProvider for MockLifecycle {
    async fn send(&self, message: Message) -> Result<SendReceipt, ProviderError> {
        const OP: &str = "send";
        self.faults.before(OP).await?;
        if message.to.is_empty() {
            return Err(self.faults.invalid(OP, "message.to is empty"));
        }
        let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = message.idempotency_key.as_ref().and_then(|key| outbox.by_key.get(key)) {
            return Ok(receipt(id.clone(), "duplicate"));
        }
        outbox.next_message += 1;
        let id = format!("msg_{}", outbox.next_message);
        if let Some(key) = &message.idempotency_key {
            outbox.by_key.insert(key.clone(), id.clone());
        }
        outbox.delivered.push(message);
        Ok(receipt(id, "sent"))
    }

    async fn schedule(&self, batch: Vec<Message>, policy: SchedulePolicy) -> Result<ScheduleReceipt, ProviderError> {
        self.faults.before("schedule").await?;
        let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        outbox.next_batch += 1;
        let batch_id = format!("batch_{}", outbox.next_batch);
        let scheduled = batch.len() as u64;
        outbox.batches.push(ScheduledBatch { batch_id: batch_id.clone(), messages: batch, policy });
        Ok(ScheduleReceipt { batch_id, scheduled, ..ScheduleReceipt::default() })
    }

    async fn preview(&self, message: Message) -> Result<Preview, ProviderError> {
        self.faults.before("preview").await?;
        let body = message.body.clone().unwrap_or_else(|| {
            format!("template:{} to:{}", message.template.as_deref().unwrap_or_default(), message.to)
        });
        Ok(Preview { subject: message.subject, body, ..Preview::default() })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}
