//! `mock_ads` (the reference ads platform) and `noop_ads` (a deliberately poor candidate).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use admit_core::{DigestAlgorithm, ErrorCode, ProviderError};
use pal::ads::{AdsProvider, Campaign, CampaignPlan, ReportQuery, ReportRow};
use pal::{Capability, HealthReport, async_trait};

use crate::faults::{AdapterSettings, FaultInjector};

/// The deterministic id of a plan without one: `cmp_` and the first 12 hex digits of the
/// BLAKE3 digest of the plan's canonical CBOR.
pub fn campaign_id(plan: &CampaignPlan) -> Result<String, String> {
    let digest = DigestAlgorithm::Blake3.digest_canonical(plan).map_err(|e| e.to_string())?;
    Ok(format!("cmp_{}", &digest.hex()[..12]))
}

fn in_range(row: &ReportRow, query: &ReportQuery) -> bool {
    query.from.as_deref().is_none_or(|from| row.date.as_str() >= from)
        && query.to.as_deref().is_none_or(|to| row.date.as_str() <= to)
}

fn row(date: &str, impressions: u64, clicks: u64, spend_cents: Option<u64>) -> ReportRow {
    ReportRow { date: date.to_owned(), impressions, clicks, spend_cents, ..ReportRow::default() }
}

/// `mock_ads`: campaigns in memory, keyed by id; a fixed two-day report.
#[derive(Debug)]
pub struct MockAds {
    faults: FaultInjector,
    campaigns: Mutex<BTreeMap<String, Campaign>>,
    writes: AtomicU64,
}

impl Default for MockAds {
    fn default() -> Self {
        MockAds::new(AdapterSettings::default())
    }
}

impl MockAds {
    /// The adapter name.
    pub const NAME: &'static str = "mock_ads";

    /// A mock with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockAds {
            faults: FaultInjector::new(Capability::Ads, Self::NAME, settings.faults, settings.token),
            campaigns: Mutex::new(BTreeMap::new()),
            writes: AtomicU64::new(0),
        }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Calls that changed stored state: a new campaign, or a campaign paused that was not. A
    /// repeat that changes nothing (the same plan id again, a second pause) is not counted.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every campaign created, sorted by id.
    pub fn campaigns(&self) -> Vec<Campaign> {
        self.campaigns.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }
}

#[async_trait]
impl AdsProvider for MockAds {
    async fn create_campaign(&self, plan: CampaignPlan) -> Result<Campaign, ProviderError> {
        const OP: &str = "create_campaign";
        self.faults.before(OP).await?;
        let id = match &plan.id {
            Some(id) => id.clone(),
            None => campaign_id(&plan).map_err(|e| self.faults.error(OP, ErrorCode::NonCanonical, e))?,
        };
        let mut campaigns = self.campaigns.lock().unwrap_or_else(PoisonError::into_inner);
        let campaign = campaigns.entry(id.clone()).or_insert_with(|| {
            self.writes.fetch_add(1, Ordering::SeqCst);
            Campaign { id, status: "active".to_owned(), plan: Some(plan), ..Campaign::default() }
        });
        Ok(campaign.clone())
    }

    async fn report(&self, query: ReportQuery) -> Result<Vec<ReportRow>, ProviderError> {
        self.faults.before("report").await?;
        let rows = [row("2024-01-01", 100, 10, Some(123)), row("2024-01-02", 110, 11, Some(145))];
        Ok(rows.into_iter().filter(|r| in_range(r, &query)).collect())
    }

    async fn pause(&self, campaign_id: &str) -> Result<Campaign, ProviderError> {
        const OP: &str = "pause";
        self.faults.before(OP).await?;
        let mut campaigns = self.campaigns.lock().unwrap_or_else(PoisonError::into_inner);
        let campaign =
            campaigns.get_mut(campaign_id).ok_or_else(|| self.faults.not_found(OP, "no campaign with this id"))?;
        if campaign.status != "paused" {
            campaign.status = "paused".to_owned();
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(campaign.clone())
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}

/// `noop_ads`: remembers nothing, echoes no plan, reports one thin row without spend.
#[derive(Debug)]
pub struct NoopAds {
    faults: FaultInjector,
}

impl Default for NoopAds {
    fn default() -> Self {
        NoopAds::new(AdapterSettings::default())
    }
}

impl NoopAds {
    /// The adapter name.
    pub const NAME: &'static str = "noop_ads";

    /// A noop adapter with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        NoopAds { faults: FaultInjector::new(Capability::Ads, Self::NAME, settings.faults, settings.token) }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }
}

#[async_trait]
impl AdsProvider for NoopAds {
    async fn create_campaign(&self, _plan: CampaignPlan) -> Result<Campaign, ProviderError> {
        self.faults.before("create_campaign").await?;
        Ok(Campaign { id: "noop".to_owned(), status: "active".to_owned(), ..Campaign::default() })
    }

    async fn report(&self, query: ReportQuery) -> Result<Vec<ReportRow>, ProviderError> {
        self.faults.before("report").await?;
        Ok([row("2024-01-01", 1, 0, None)].into_iter().filter(|r| in_range(r, &query)).collect())
    }

    async fn pause(&self, campaign_id: &str) -> Result<Campaign, ProviderError> {
        self.faults.before("pause").await?;
        Ok(Campaign { id: campaign_id.to_owned(), status: "paused".to_owned(), ..Campaign::default() })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}
