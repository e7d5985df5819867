//! The ads capability.

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::health::HealthReport;

/// What to launch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignPlan {
    /// Caller-chosen id; adapters derive a deterministic one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Budget, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_cents: Option<u64>,
    /// Target geography, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<String>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A campaign as the vendor reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Campaign {
    /// The vendor's id.
    pub id: String,
    /// `active`, `paused`, …
    pub status: String,
    /// The plan it was created from, when the vendor echoes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<CampaignPlan>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Which rows to report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportQuery {
    /// Only this campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// First day, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One day of delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportRow {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Spend, in cents, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_cents: Option<u64>,
    /// Vendor fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An ads platform.
///
/// ```
/// use pal::ads::{AdsProvider, CampaignPlan};
/// async fn launch_and_pause(ads: &dyn AdsProvider) -> Result<String, pal::ProviderError> {
///     let plan = CampaignPlan { budget_cents: Some(1000), geo: Some("US".into()), ..Default::default() };
///     let campaign = ads.create_campaign(plan).await?;
///     Ok(ads.pause(&campaign.id).await?.status)
/// }
/// ```
#[async_trait]
pub trait AdsProvider: Send + Sync + std::fmt::Debug {
    /// Creates a campaign. Idempotent for a plan with an `id`.
    async fn create_campaign(&self, plan: CampaignPlan) -> Result<Campaign, ProviderError>;
    /// Delivery rows.
    async fn report(&self, query: ReportQuery) -> Result<Vec<ReportRow>, ProviderError>;
    /// Pauses a campaign (idempotent).
    async fn pause(&self, campaign_id: &str) -> Result<Campaign, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}
