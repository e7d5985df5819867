//! `providers.yaml`: which adapter serves each capability, and per-adapter settings.
//!
//! ```yaml
//! capabilities:          # capability → adapter
//!   ads: mock_ads
//!   inventory: mock_inventory
//! adapters:              # adapter → settings (all optional)
//!   mock_ads:
//!     timeout_ms: 500                          # per-attempt timeout (pipeline)
//!     rate_limit: { per_second: 10, burst: 5 } # token bucket (pipeline)
//!     faults: { fail_times: 2 }                # anything else goes to the adapter
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::capability::Capability;
use crate::pipeline::RateLimit;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "PROVIDERS_CONFIG_PATH";
/// The config file used when the variable is unset, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "providers/providers.yaml";

/// Where the active mapping came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file (from the environment variable or the default path).
    File(PathBuf),
    /// No file: every capability mapped to its mock.
    BuiltInDefault,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::BuiltInDefault => f.write_str("built-in default (every capability on its mock)"),
        }
    }
}

/// Why a config could not be used. Every variant names the file, and the line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `PROVIDERS_CONFIG_PATH` names a file that cannot be read.
    #[error("{CONFIG_ENV}={}: cannot read the file: {message}", path.display())]
    MissingFile {
        /// The path from the variable.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The file exists but cannot be read.
    #[error("{}: cannot read: {message}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// Not valid YAML, or not the expected shape.
    #[error("{}{}: {message}", path.display(), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line and column, when the parser knows them.
        location: Option<(usize, usize)>,
        /// The parser's message.
        message: String,
    },
    /// A capability name that does not exist.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    UnknownCapability {
        /// The file.
        path: PathBuf,
        /// The line, when found.
        line: Option<usize>,
        /// Names the capability and lists the known ones.
        message: String,
    },
    /// An adapter name that no factory provides, or for the wrong capability.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    UnknownAdapter {
        /// The file (or the built-in default).
        path: PathBuf,
        /// The line, when found.
        line: Option<usize>,
        /// Names the adapter and lists the known ones for the capability.
        message: String,
    },
    /// An adapter factory refused its settings.
    #[error("{}{}: adapter `{adapter}`: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    AdapterSettings {
        /// The file.
        path: PathBuf,
        /// The line of the adapter's settings, when found.
        line: Option<usize>,
        /// The adapter.
        adapter: String,
        /// The factory's message (never containing secret values).
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    capabilities: BTreeMap<String, String>,
    #[serde(default)]
    adapters: BTreeMap<String, Value>,
}

/// Settings the pipeline reads from an adapter's entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineSettings {
    /// Per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// Token bucket.
    pub rate_limit: Option<RateLimit>,
}

/// A parsed config: capability → adapter, and adapter → settings.
#[derive(Debug, Clone, Default)]
pub struct ProvidersConfig {
    /// Capability → adapter name.
    pub capabilities: BTreeMap<Capability, String>,
    /// Adapter name → settings for the adapter (pipeline keys removed).
    pub adapters: BTreeMap<String, Value>,
    /// Adapter name → pipeline settings.
    pub pipeline: BTreeMap<String, PipelineSettings>,
    /// 1-based line of each capability and adapter key, for error messages.
    lines: BTreeMap<String, usize>,
}

impl ProvidersConfig {
    /// Parses YAML text; `path` is used in errors only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = yaml_serde::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            location: e.location().map(|l| (l.line(), l.column())),
            message: e.to_string(),
        })?;
        let lines = key_lines(text);
        let mut config = ProvidersConfig { lines, ..ProvidersConfig::default() };
        for (name, adapter) in raw.capabilities {
            let capability: Capability = name.parse().map_err(|message| ConfigError::UnknownCapability {
                path: path.to_path_buf(),
                line: config.line_of(&name),
                message,
            })?;
            config.capabilities.insert(capability, adapter);
        }
        for (adapter, settings) in raw.adapters {
            let (pipeline, rest) =
                split_pipeline_settings(settings).map_err(|message| ConfigError::AdapterSettings {
                    path: path.to_path_buf(),
                    line: config.line_of(&adapter),
                    adapter: adapter.clone(),
                    message,
                })?;
            config.pipeline.insert(adapter.clone(), pipeline);
            config.adapters.insert(adapter, rest);
        }
        Ok(config)
    }

    /// The built-in default: every capability on its mock, no settings.
    pub fn built_in_default() -> Self {
        let capabilities = Capability::ALL.into_iter().map(|c| (c, default_adapter(c).to_owned())).collect();
        ProvidersConfig { capabilities, ..ProvidersConfig::default() }
    }

    /// The line where `key` first appears as a mapping key.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.lines.get(key).copied()
    }
}

/// The mock adapter each capability maps to by default.
pub fn default_adapter(capability: Capability) -> &'static str {
    match capability {
        Capability::Ads => "mock_ads",
        Capability::Cdp => "mock_cdp",
        Capability::Experiments => "mock_experiments",
        Capability::Inventory => "mock_inventory",
        Capability::Lifecycle => "mock_lifecycle",
        Capability::LlmGateway => "mock_llm_gateway",
        Capability::LlmObservability => "mock_llm_observability",
        Capability::Vectorstore => "mock_vectorstore",
    }
}

fn split_pipeline_settings(settings: Value) -> Result<(PipelineSettings, Value), String> {
    let mut map = match settings {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        other => return Err(format!("settings must be a mapping, found {other}")),
    };
    let timeout_ms = match map.remove("timeout_ms") {
        None | Some(Value::Null) => None,
        Some(value) => {
            Some(value.as_u64().filter(|v| *v > 0).ok_or("timeout_ms must be a positive integer (milliseconds)")?)
        }
    };
    let rate_limit = match map.remove("rate_limit") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let limit: RateLimit = serde_json::from_value(value).map_err(|e| format!("rate_limit: {e}"))?;
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) || limit.burst == 0 {
                return Err("rate_limit: per_second must be > 0 and burst ≥ 1".to_owned());
            }
            Some(limit)
        }
    };
    Ok((PipelineSettings { timeout_ms, rate_limit }, Value::Object(map)))
}

/// 1-based line numbers of mapping keys (first occurrence), for pointing at semantic errors
/// the YAML parser cannot see.
fn key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some((key, _)) = trimmed.split_once(':') {
            let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
            if !key.is_empty() && !key.contains(' ') {
                lines.entry(key.to_owned()).or_insert(index + 1);
            }
        }
    }
    lines
}

/// Finds the config to use now: `PROVIDERS_CONFIG_PATH` (which must exist), else
/// `providers/providers.yaml` if present, else the built-in default.
pub fn resolve_source(env_value: Option<&str>, working_dir: &Path) -> Result<ConfigSource, ConfigError> {
    if let Some(path) = env_value.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(ConfigSource::File(path)),
            Ok(_) => Err(ConfigError::MissingFile { path, message: "not a file".to_owned() }),
            Err(e) => Err(ConfigError::MissingFile { path, message: e.to_string() }),
        };
    }
    let default = working_dir.join(DEFAULT_CONFIG_PATH);
    if default.is_file() { Ok(ConfigSource::File(default)) } else { Ok(ConfigSource::BuiltInDefault) }
}

/// Loads the config a source names.
pub fn load(source: &ConfigSource) -> Result<ProvidersConfig, ConfigError> {
    match source {
        ConfigSource::BuiltInDefault => Ok(ProvidersConfig::built_in_default()),
        ConfigSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Unreadable { path: path.clone(), message: e.to_string() })?;
            ProvidersConfig::parse(&text, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mapping_and_splits_pipeline_settings() {
        let text = "capabilities:\n  ads: mock_ads\nadapters:\n  mock_ads:\n    timeout_ms: 250\n    rate_limit: {per_second: 5, burst: 2}\n    fail_times: 1\n";
        let config = ProvidersConfig::parse(text, Path::new("p.yaml")).unwrap();
        assert_eq!(config.capabilities[&Capability::Ads], "mock_ads");
        assert_eq!(config.pipeline["mock_ads"].timeout_ms, Some(250));
        assert_eq!(config.pipeline["mock_ads"].rate_limit, Some(RateLimit { per_second: 5.0, burst: 2 }));
        assert_eq!(config.adapters["mock_ads"], serde_json::json!({"fail_times": 1}));
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = ProvidersConfig::parse("capabilities:\n  ads: [unclosed\n", Path::new("p.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("p.yaml:"), "{err}");
        assert!(matches!(err, ConfigError::Syntax { location: Some(_), .. }));

        let err =
            ProvidersConfig::parse("capabilities:\n  ads: mock_ads\n  adz: x\n", Path::new("p.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("p.yaml:3: unknown capability `adz`"), "{err}");

        let err = ProvidersConfig::parse("capabilitiez: {}\n", Path::new("p.yaml")).unwrap_err();
        assert!(err.to_string().contains("capabilitiez"), "{err}");

        let err =
            ProvidersConfig::parse("adapters:\n  mock_ads:\n    timeout_ms: -1\n", Path::new("p.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("p.yaml:2: adapter `mock_ads`: timeout_ms"), "{err}");
    }

    #[test]
    fn source_resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve_source(None, dir.path()).unwrap(), ConfigSource::BuiltInDefault);
        std::fs::create_dir_all(dir.path().join("providers")).unwrap();
        std::fs::write(dir.path().join(DEFAULT_CONFIG_PATH), "capabilities: {}\n").unwrap();
        assert_eq!(resolve_source(None, dir.path()).unwrap(), ConfigSource::File(dir.path().join(DEFAULT_CONFIG_PATH)));
        let err = resolve_source(Some("/no/such/providers.yaml"), dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("PROVIDERS_CONFIG_PATH=/no/such/providers.yaml"), "{err}");
    }
}
