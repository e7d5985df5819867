//! The registry: which adapter serves each capability, resolved from config at run time.
//!
//! Config comes from `PROVIDERS_CONFIG_PATH`, else `providers/providers.yaml`, else the
//! built-in default (every capability on its mock). The path is resolved again at every
//! [`Registry::reload`], and a reload swaps the whole mapping atomically: calls in flight keep
//! the adapter they started with. Overrides pin a capability to an adapter until cleared.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use admit_core::ProviderError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::{AdapterHandle, CallTarget, invoke};
use crate::capability::Capability;
use crate::config::{CONFIG_ENV, ConfigError, ConfigSource, ProvidersConfig, load, resolve_source};
use crate::health::{HealthReport, HealthStatus};
use crate::pipeline::{CallSpec, Pipeline};
use crate::secret::{Redactor, Secret};

/// An adapter a factory built, with the secrets it holds (so they can be redacted).
#[derive(Debug)]
pub struct BuiltAdapter {
    /// The adapter.
    pub handle: AdapterHandle,
    /// Secret values in its settings.
    pub secrets: Vec<Secret>,
}

/// Builds an adapter from its settings (a JSON object; `{}` when the config has none).
pub type BuildFn = fn(&Value) -> Result<BuiltAdapter, String>;

/// A named way to build one adapter; provider crates export these.
#[derive(Clone, Copy)]
pub struct AdapterFactory {
    /// The adapter's name in config, e.g. `mock_ads`.
    pub name: &'static str,
    /// The capability it serves.
    pub capability: Capability,
    /// The constructor.
    pub build: BuildFn,
}

impl fmt::Debug for AdapterFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterFactory").field("name", &self.name).field("capability", &self.capability).finish()
    }
}

/// Why the registry refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The config could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two factories with one name.
    #[error("two adapter factories are named `{name}`")]
    DuplicateFactory {
        /// The name.
        name: String,
    },
    /// The config maps no adapter to this capability.
    #[error("capability `{capability}` is not mapped to an adapter in {config_source}")]
    NotMapped {
        /// The capability.
        capability: Capability,
        /// Where the mapping came from.
        config_source: String,
    },
    /// No factory has this name for this capability.
    #[error("unknown adapter `{adapter}` for capability `{capability}`; known: {known}")]
    UnknownAdapter {
        /// The name asked for.
        adapter: String,
        /// The capability.
        capability: Capability,
        /// Known adapters of the capability, comma-separated.
        known: String,
    },
    /// The adapter's factory refused its settings.
    #[error("adapter `{adapter}`: {message}")]
    AdapterSettings {
        /// The adapter.
        adapter: String,
        /// The factory's message.
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Resolution {
    adapter: String,
    handle: AdapterHandle,
}

#[derive(Debug)]
struct Resolved {
    source: ConfigSource,
    config: ProvidersConfig,
    mapping: BTreeMap<Capability, Resolution>,
}

/// One row of the registry listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListingEntry {
    /// The capability.
    pub capability: Capability,
    /// The adapter serving it.
    pub adapter: String,
    /// Whether its health allows calls.
    pub healthy: bool,
    /// Whether an override put it there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overridden: bool,
    /// The full health report (verbose listings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
}

type EnvReader = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// Capability → adapter, from config, with overrides and atomic reload.
pub struct Registry {
    factories: BTreeMap<&'static str, AdapterFactory>,
    working_dir: PathBuf,
    env: EnvReader,
    active: RwLock<Arc<Resolved>>,
    overrides: RwLock<BTreeMap<Capability, Resolution>>,
    pipeline: Arc<Pipeline>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("factories", &self.factories.keys().collect::<Vec<_>>())
            .field("source", &self.source().to_string())
            .finish_non_exhaustive()
    }
}

fn lock_poisoned<T>(_: T) -> RegistryError {
    RegistryError::AdapterSettings { adapter: "(registry)".to_owned(), message: "registry lock poisoned".to_owned() }
}

impl Registry {
    /// A registry that reads `PROVIDERS_CONFIG_PATH` and `./providers/providers.yaml`.
    pub fn new(factories: Vec<AdapterFactory>, pipeline: Arc<Pipeline>) -> Result<Self, RegistryError> {
        let working_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Registry::with_environment(factories, pipeline, working_dir, Box::new(|| std::env::var(CONFIG_ENV).ok()))
    }

    /// A registry with an explicit working directory and environment reader (for tests and
    /// embedding: nothing global is read).
    pub fn with_environment(
        factories: Vec<AdapterFactory>,
        pipeline: Arc<Pipeline>,
        working_dir: PathBuf,
        env: EnvReader,
    ) -> Result<Self, RegistryError> {
        let mut by_name = BTreeMap::new();
        for factory in factories {
            if by_name.insert(factory.name, factory).is_some() {
                return Err(RegistryError::DuplicateFactory { name: factory.name.to_owned() });
            }
        }
        let placeholder = Resolved {
            source: ConfigSource::BuiltInDefault,
            config: ProvidersConfig::default(),
            mapping: BTreeMap::new(),
        };
        let registry = Registry {
            factories: by_name,
            working_dir,
            env,
            active: RwLock::new(Arc::new(placeholder)),
            overrides: RwLock::new(BTreeMap::new()),
            pipeline,
        };
        registry.reload()?;
        Ok(registry)
    }

    /// The pipeline calls go through.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Where the active mapping came from.
    pub fn source(&self) -> ConfigSource {
        self.active.read().map(|a| a.source.clone()).unwrap_or(ConfigSource::BuiltInDefault)
    }

    /// Known adapter names for a capability, sorted.
    pub fn known_adapters(&self, capability: Capability) -> Vec<&'static str> {
        self.factories.values().filter(|f| f.capability == capability).map(|f| f.name).collect()
    }

    fn factory(&self, capability: Capability, adapter: &str) -> Result<&AdapterFactory, RegistryError> {
        self.factories.get(adapter).filter(|f| f.capability == capability).ok_or_else(|| {
            RegistryError::UnknownAdapter {
                adapter: adapter.to_owned(),
                capability,
                known: self.known_adapters(capability).join(", "),
            }
        })
    }

    /// Re-resolves the config path, rebuilds every mapped adapter, and swaps the mapping in one
    /// step. On any error the previous mapping stays active.
    pub fn reload(&self) -> Result<ConfigSource, RegistryError> {
        let env_value = (self.env)();
        let source = resolve_source(env_value.as_deref(), &self.working_dir)?;
        let config = load(&source)?;
        let path = match &source {
            ConfigSource::File(path) => path.clone(),
            ConfigSource::BuiltInDefault => PathBuf::from("(built-in default)"),
        };
        for adapter in config.adapters.keys() {
            if !self.factories.contains_key(adapter.as_str()) {
                return Err(ConfigError::UnknownAdapter {
                    path,
                    line: config.line_of(adapter),
                    message: format!(
                        "settings for unknown adapter `{adapter}`; known: {}",
                        self.factories.keys().copied().collect::<Vec<_>>().join(", ")
                    ),
                }
                .into());
            }
        }
        let mut mapping = BTreeMap::new();
        let mut secrets = Vec::new();
        for (capability, adapter) in &config.capabilities {
            let factory = self.factory(*capability, adapter).map_err(|e| ConfigError::UnknownAdapter {
                path: path.clone(),
                line: config.line_of(capability.as_str()),
                message: format!("capability `{capability}`: {e}"),
            })?;
            let settings = config.adapters.get(adapter).cloned().unwrap_or_else(|| Value::Object(Default::default()));
            secrets.extend(secrets_in(&settings));
            let built = (factory.build)(&settings).map_err(|message| ConfigError::AdapterSettings {
                path: path.clone(),
                line: config.line_of(adapter),
                adapter: adapter.clone(),
                message: Redactor::new(secrets_in(&settings).iter()).scrub(&message),
            })?;
            secrets.extend(built.secrets);
            mapping.insert(*capability, Resolution { adapter: adapter.clone(), handle: built.handle });
        }
        for settings in config.adapters.values() {
            secrets.extend(secrets_in(settings));
        }
        for (adapter, settings) in &config.pipeline {
            self.pipeline.set_adapter_timeout(adapter, settings.timeout_ms.map(Duration::from_millis));
            self.pipeline.set_rate_limit(adapter, settings.rate_limit);
        }
        self.pipeline.set_redactor(Redactor::new(secrets.iter()));
        let resolved = Arc::new(Resolved { source: source.clone(), config, mapping });
        *self.active.write().map_err(lock_poisoned)? = resolved;
        Ok(source)
    }

    fn build(&self, capability: Capability, adapter: &str) -> Result<Resolution, RegistryError> {
        let factory = self.factory(capability, adapter)?;
        let active = self.active.read().map_err(lock_poisoned)?.clone();
        let settings =
            active.config.adapters.get(adapter).cloned().unwrap_or_else(|| Value::Object(Default::default()));
        let built = (factory.build)(&settings)
            .map_err(|message| RegistryError::AdapterSettings { adapter: adapter.to_owned(), message })?;
        Ok(Resolution { adapter: adapter.to_owned(), handle: built.handle })
    }

    /// Pins `capability` to `adapter` until [`Registry::clear_override`]; survives reloads.
    pub fn set_override(&self, capability: Capability, adapter: &str) -> Result<(), RegistryError> {
        let resolution = self.build(capability, adapter)?;
        self.overrides.write().map_err(lock_poisoned)?.insert(capability, resolution);
        Ok(())
    }

    /// Removes an override; returns whether there was one.
    pub fn clear_override(&self, capability: Capability) -> bool {
        self.overrides.write().map(|mut o| o.remove(&capability).is_some()).unwrap_or(false)
    }

    /// The adapter serving `capability` now (override first, then config).
    pub fn resolve(&self, capability: Capability) -> Result<(CallTarget, AdapterHandle), RegistryError> {
        if let Some(resolution) = self.overrides.read().map_err(lock_poisoned)?.get(&capability) {
            return Ok((CallTarget::new(capability, &resolution.adapter), resolution.handle.clone()));
        }
        let active = self.active.read().map_err(lock_poisoned)?.clone();
        let resolution = active
            .mapping
            .get(&capability)
            .ok_or_else(|| RegistryError::NotMapped { capability, config_source: active.source.to_string() })?;
        Ok((CallTarget::new(capability, &resolution.adapter), resolution.handle.clone()))
    }

    /// Builds `adapter` for one use without changing the mapping (`cw call --adapter`).
    pub fn resolve_named(
        &self,
        capability: Capability,
        adapter: &str,
    ) -> Result<(CallTarget, AdapterHandle), RegistryError> {
        let resolution = self.build(capability, adapter)?;
        Ok((CallTarget::new(capability, adapter), resolution.handle))
    }

    /// `{capability, adapter, healthy}` for every mapped capability, sorted by capability.
    pub async fn list(&self, verbose: bool) -> Vec<ListingEntry> {
        let mut rows: BTreeMap<Capability, (Resolution, bool)> = BTreeMap::new();
        if let Ok(active) = self.active.read().map(|a| a.clone()) {
            for (capability, resolution) in &active.mapping {
                rows.insert(*capability, (resolution.clone(), false));
            }
        }
        if let Ok(overrides) = self.overrides.read() {
            for (capability, resolution) in overrides.iter() {
                rows.insert(*capability, (resolution.clone(), true));
            }
        }
        let mut listing = Vec::with_capacity(rows.len());
        for (capability, (resolution, overridden)) in rows {
            let health = resolution.handle.health().await;
            listing.push(ListingEntry {
                capability,
                adapter: resolution.adapter,
                healthy: health.status.is_usable(),
                overridden,
                health: verbose.then_some(health),
            });
        }
        listing
    }

    /// One call through the pipeline with JSON input and output (what `cw call` runs).
    pub async fn call_json(
        &self,
        capability: Capability,
        op: &str,
        input: &Value,
        adapter: Option<&str>,
    ) -> Result<Value, CallError> {
        let spec_op = capability.op(op).map_err(CallError::UnknownOperation)?;
        let (target, handle) = match adapter {
            Some(name) => self.resolve_named(capability, name)?,
            None => self.resolve(capability)?,
        };
        let spec = CallSpec { idempotent: spec_op.is_idempotent_for(input), ..CallSpec::new(target.clone(), spec_op) };
        self.pipeline.call(&spec, || invoke(&handle, &target, spec_op, input)).await.map_err(CallError::Provider)
    }
}

/// Why `call_json` failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The capability has no such operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// The registry could not resolve an adapter.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The provider call failed (after the pipeline's retries).
    #[error(transparent)]
    Provider(ProviderError),
}

impl HealthStatus {
    /// The status as its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Down => "down",
            HealthStatus::AuthFailed => "auth_failed",
        }
    }
}

/// String values under secret-looking keys (`token`, `api_key`, `password`, `secret`, `key`…)
/// of adapter settings: what a [`Redactor`] must scrub, whoever builds the adapter.
pub fn secrets_in(settings: &Value) -> Vec<Secret> {
    fn is_secret_key(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        ["token", "secret", "password", "passwd", "api_key", "apikey", "credential"].iter().any(|k| key.contains(k))
            || key == "key"
            || key.ends_with("_key")
    }
    let mut found = Vec::new();
    let mut stack = vec![settings];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        Value::String(s) if is_secret_key(key) => found.push(Secret::new(s.clone())),
                        other => stack.push(other),
                    }
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}
