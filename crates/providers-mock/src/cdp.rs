//! `mock_cdp`: profiles, events and audiences in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use admit_core::ProviderError;
use pal::cdp::{Audience, AudienceSync, CdpProvider, Event, EventReceipt, Profile};
use pal::{Capability, HealthReport, async_trait};

use crate::faults::{AdapterSettings, FaultInjector};

#[derive(Debug, Default)]
struct State {
    profiles: BTreeMap<String, Profile>,
    events: Vec<Event>,
    event_ids: BTreeSet<String>,
    next_event: u64,
    audiences: BTreeMap<String, Vec<String>>,
    writes: u64,
}

/// `mock_cdp`: `upsert_profile` merges traits, `ingest_event` drops repeated `event_id`s,
/// `sync_audience` replaces membership.
#[derive(Debug)]
pub struct MockCdp {
    faults: FaultInjector,
    state: Mutex<State>,
}

impl Default for MockCdp {
    fn default() -> Self {
        MockCdp::new(AdapterSettings::default())
    }
}

impl MockCdp {
    /// The adapter name.
    pub const NAME: &'static str = "mock_cdp";

    /// A mock with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockCdp {
            faults: FaultInjector::new(Capability::Cdp, Self::NAME, settings.faults, settings.token),
            state: Mutex::new(State::default()),
        }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Calls that changed stored state: a new or changed profile, an accepted event, an
    /// audience whose members changed. A repeat that changes nothing is not counted.
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).writes
    }

    /// Events accepted, in order (with their given or assigned ids).
    pub fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).events.clone()
    }

    /// An audience's members (unique, in first-seen order), if it was ever synced.
    pub fn audience(&self, id: &str) -> Option<Vec<String>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).audiences.get(id).cloned()
    }
}

#[async_trait]
impl CdpProvider for MockCdp {
    async fn upsert_profile(&self, profile: Profile) -> Result<Profile, ProviderError> {
        const OP: &str = "upsert_profile";
        self.faults.before(OP).await?;
        if profile.id.is_empty() {
            return Err(self.faults.invalid(OP, "profile.id is empty"));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let before = state.profiles.get(&profile.id).cloned();
        let stored = state
            .profiles
            .entry(profile.id.clone())
            .or_insert_with(|| Profile { id: profile.id.clone(), ..Profile::default() });
        stored.traits.extend(profile.traits);
        let stored = stored.clone();
        if before.as_ref() != Some(&stored) {
            state.writes += 1;
        }
        Ok(stored)
    }

    async fn ingest_event(&self, mut event: Event) -> Result<EventReceipt, ProviderError> {
        self.faults.before("ingest_event").await?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let event_id = match &event.event_id {
            Some(id) => {
                if state.event_ids.contains(id) {
                    return Ok(EventReceipt { event_id: id.clone(), accepted: false });
                }
                id.clone()
            }
            None => {
                state.next_event += 1;
                format!("evt_{}", state.next_event)
            }
        };
        state.event_ids.insert(event_id.clone());
        event.event_id = Some(event_id.clone());
        state.events.push(event);
        state.writes += 1;
        Ok(EventReceipt { event_id, accepted: true })
    }

    async fn sync_audience(&self, audience: Audience) -> Result<AudienceSync, ProviderError> {
        self.faults.before("sync_audience").await?;
        let mut seen = BTreeSet::new();
        let members: Vec<String> = audience.profile_ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        let synced = members.len() as u64;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.audiences.get(&audience.id) != Some(&members) {
            state.audiences.insert(audience.id.clone(), members);
            state.writes += 1;
        }
        Ok(AudienceSync { id: audience.id, synced })
    }

    async fn get_profile(&self, id: &str) -> Result<Option<Profile>, ProviderError> {
        self.faults.before("get_profile").await?;
        Ok(self.state.lock().unwrap_or_else(PoisonError::into_inner).profiles.get(id).cloned())
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}
