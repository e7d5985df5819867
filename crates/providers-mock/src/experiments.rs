//! `mock_experiments`: flags, ramps, A/B tests and bandits in memory, with hash-based
//! assignment.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use admit_core::{DigestAlgorithm, ProviderError};
use pal::experiments::{ArmStats, Assignment, Experiment, ExperimentReport, ExperimentsProvider, Flag, RampState};
use pal::{Capability, HealthReport, async_trait};
use serde_json::Value;

use crate::faults::{AdapterSettings, FaultInjector};

/// The arm index a unit gets: the first 8 bytes of BLAKE3(`key/unit_id`), read as a
/// little-endian `u64`, modulo the number of arms (`arms` must be > 0).
pub fn arm_index(key: &str, unit_id: &str, arms: usize) -> usize {
    let digest = DigestAlgorithm::Blake3.digest(format!("{key}/{unit_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    (u64::from_le_bytes(first) % arms.max(1) as u64) as usize
}

#[derive(Debug)]
struct Running {
    experiment: Experiment,
    /// Unit → arm index.
    units: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
struct State {
    flags: BTreeMap<String, Value>,
    ramps: BTreeMap<String, u8>,
    experiments: BTreeMap<String, Running>,
    writes: u64,
}

/// `mock_experiments`.
#[derive(Debug)]
pub struct MockExperiments {
    faults: FaultInjector,
    state: Mutex<State>,
}

impl Default for MockExperiments {
    fn default() -> Self {
        MockExperiments::new(AdapterSettings::default())
    }
}

impl MockExperiments {
    /// The adapter name.
    pub const NAME: &'static str = "mock_experiments";

    /// A mock with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockExperiments {
            faults: FaultInjector::new(Capability::Experiments, Self::NAME, settings.faults, settings.token),
            state: Mutex::new(State::default()),
        }
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// The ramp stage of `key`, if ever set.
    pub fn ramp_stage(&self, key: &str) -> Option<u8> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).ramps.get(key).copied()
    }

    /// Calls that changed stored state: a flag or ramp set to a new value, an experiment
    /// started, a unit assigned for the first time. A repeat that changes nothing is not counted.
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).writes
    }

    async fn start(&self, op: &str, key: &str, kind: &str, arms: Vec<String>) -> Result<Experiment, ProviderError> {
        self.faults.before(op).await?;
        if arms.is_empty() {
            return Err(self.faults.invalid(op, format!("experiment `{key}` needs at least one arm")));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = arms.iter().find(|arm| !seen.insert(arm.as_str())) {
            return Err(self.faults.invalid(op, format!("experiment `{key}` lists arm `{dup}` twice")));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = state.experiments.get(key) {
            let existing = &running.experiment;
            if existing.kind == kind && existing.arms == arms {
                return Ok(existing.clone());
            }
            return Err(self.faults.invalid(
                op,
                format!(
                    "experiment `{key}` is already running as {} with arms [{}]",
                    existing.kind,
                    existing.arms.join(", ")
                ),
            ));
        }
        let experiment = Experiment { key: key.to_owned(), kind: kind.to_owned(), arms, ..Experiment::default() };
        state.experiments.insert(key.to_owned(), Running { experiment: experiment.clone(), units: BTreeMap::new() });
        state.writes += 1;
        Ok(experiment)
    }
}

#[async_trait]
impl ExperimentsProvider for MockExperiments {
    async fn set_flag(&self, key: &str, value: Value) -> Result<Flag, ProviderError> {
        self.faults.before("set_flag").await?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.flags.insert(key.to_owned(), value.clone()).as_ref() != Some(&value) {
            state.writes += 1;
        }
        Ok(Flag { key: key.to_owned(), value })
    }

    async fn get_flag(&self, key: &str, default: Value) -> Result<Value, ProviderError> {
        self.faults.before("get_flag").await?;
        Ok(self.state.lock().unwrap_or_else(PoisonError::into_inner).flags.get(key).cloned().unwrap_or(default))
    }

    async fn ramp(&self, key: &str, stage: u8) -> Result<RampState, ProviderError> {
        const OP: &str = "ramp";
        self.faults.before(OP).await?;
        if stage > 100 {
            return Err(self.faults.invalid(OP, format!("stage {stage} is not a percentage (0–100)")));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.ramps.insert(key.to_owned(), stage) != Some(stage) {
            state.writes += 1;
        }
        Ok(RampState { key: key.to_owned(), stage })
    }

    async fn start_ab(&self, key: &str, variants: Vec<String>) -> Result<Experiment, ProviderError> {
        self.start("start_ab", key, "ab", variants).await
    }

    async fn start_bandit(&self, key: &str, arms: Vec<String>) -> Result<Experiment, ProviderError> {
        self.start("start_bandit", key, "bandit", arms).await
    }

    async fn assign(&self, key: &str, unit_id: &str) -> Result<Assignment, ProviderError> {
        const OP: &str = "assign";
        self.faults.before(OP).await?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let running = state
            .experiments
            .get_mut(key)
            .ok_or_else(|| self.faults.not_found(OP, format!("no experiment `{key}`")))?;
        let arms = running.experiment.arms.len();
        let mut assigned = false;
        let index = *running.units.entry(unit_id.to_owned()).or_insert_with(|| {
            assigned = true;
            arm_index(key, unit_id, arms)
        });
        let variant = running.experiment.arms.get(index).cloned().unwrap_or_default();
        if assigned {
            state.writes += 1;
        }
        Ok(Assignment { key: key.to_owned(), unit_id: unit_id.to_owned(), variant })
    }

    async fn report(&self, key: &str) -> Result<ExperimentReport, ProviderError> {
        const OP: &str = "report";
        self.faults.before(OP).await?;
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let running =
            state.experiments.get(key).ok_or_else(|| self.faults.not_found(OP, format!("no experiment `{key}`")))?;
        let arms = running
            .experiment
            .arms
            .iter()
            .enumerate()
            .map(|(index, arm)| ArmStats {
                arm: arm.clone(),
                assignments: running.units.values().filter(|i| **i == index).count() as u64,
                ..ArmStats::default()
            })
            .collect();
        Ok(ExperimentReport { key: key.to_owned(), arms })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}
