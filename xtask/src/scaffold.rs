//! `cargo xtask new-provider VENDOR --capability CAP`: generates a provider crate that builds
//! at once and fails conformance until its operations are written, and registers it in `cw`.
//! Running it again changes nothing.

use std::path::{Path, PathBuf};

use crate::workspace_root;

/// The capabilities a provider can be scaffolded for, with their trait and handle variant.
const CAPABILITIES: [(&str, &str, &str, &str); 8] = [
    ("ads", "ads", "AdsProvider", "Ads"),
    ("cdp", "cdp", "CdpProvider", "Cdp"),
    ("experiments", "experiments", "ExperimentsProvider", "Experiments"),
    ("inventory", "inventory", "InventoryProvider", "Inventory"),
    ("lifecycle", "lifecycle", "LifecycleProvider", "Lifecycle"),
    ("llm_gateway", "llm", "LlmGateway", "LlmGateway"),
    ("llm_observability", "llm", "LlmObservability", "LlmObservability"),
    ("vectorstore", "vectorstore", "VectorStore", "Vectorstore"),
];

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// Lower-case vendor name, e.g. `acme`.
    pub(crate) vendor: String,
    /// Capability wire name, e.g. `ads`.
    pub(crate) capability: String,
}

impl Request {
    pub(crate) fn parse(args: &[&str]) -> Result<Self, String> {
        let usage = "usage: cargo xtask new-provider VENDOR --capability CAPABILITY";
        let (vendor, capability) = match args {
            [vendor, "--capability", capability] | ["--capability", capability, vendor] => (*vendor, *capability),
            _ => return Err(usage.to_owned()),
        };
        let valid = !vendor.is_empty()
            && vendor.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && vendor.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!(
                "vendor `{vendor}` must be lower-case letters, digits and `_`, starting with a letter"
            ));
        }
        if !CAPABILITIES.iter().any(|(name, ..)| *name == capability) {
            let known: Vec<&str> = CAPABILITIES.iter().map(|(name, ..)| *name).collect();
            return Err(format!("unknown capability `{capability}`; known: {}", known.join(", ")));
        }
        Ok(Request { vendor: vendor.to_owned(), capability: capability.to_owned() })
    }

    fn crate_name(&self) -> String {
        format!("providers-{}", self.vendor.replace('_', "-"))
    }

    fn lib_name(&self) -> String {
        format!("providers_{}", self.vendor)
    }

    fn adapter_name(&self) -> String {
        format!("{}_{}", self.vendor, self.capability)
    }

    fn type_name(&self) -> String {
        let camel = |s: &str| {
            s.split('_')
                .map(|part| {
                    let mut chars = part.chars();
                    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
                })
                .collect::<String>()
        };
        format!("{}{}", camel(&self.vendor), camel(&self.capability))
    }

    fn spec(&self) -> (&'static str, &'static str, &'static str) {
        let (_, module, trait_name, variant) =
            CAPABILITIES.iter().find(|(name, ..)| *name == self.capability).copied().unwrap_or(CAPABILITIES[0]);
        (module, trait_name, variant)
    }
}

/// A file to write, relative to the workspace root.
#[derive(Debug)]
pub(crate) struct Planned {
    pub(crate) path: PathBuf,
    pub(crate) contents: String,
}

/// Every file of the new crate.
pub(crate) fn crate_files(request: &Request) -> Vec<Planned> {
    let dir = PathBuf::from("crates").join(request.crate_name());
    let fill = |template: &str| {
        let (module, trait_name, variant) = request.spec();
        // Snippets first: they contain placeholders of their own.
        template
            .replace("{{methods}}", methods(&request.capability))
            .replace(
                "{{harness}}",
                if request.capability == "inventory" { INVENTORY_HARNESS } else { CAPABILITY_HARNESS },
            )
            .replace("{{crate}}", &request.crate_name())
            .replace("{{lib}}", &request.lib_name())
            .replace("{{vendor}}", &request.vendor)
            .replace("{{capability}}", &request.capability)
            .replace("{{adapter}}", &request.adapter_name())
            .replace("{{Type}}", &request.type_name())
            .replace("{{module}}", module)
            .replace("{{Trait}}", trait_name)
            .replace("{{Variant}}", variant)
    };
    vec![
        Planned { path: dir.join("Cargo.toml"), contents: fill(CARGO_TOML) },
        Planned { path: dir.join("README.md"), contents: fill(README) },
        Planned { path: dir.join("src/lib.rs"), contents: fill(LIB_RS) },
        Planned { path: dir.join("src/client.rs"), contents: fill(CLIENT_RS) },
        Planned { path: dir.join("src/mapping.rs"), contents: fill(MAPPING_RS) },
        Planned { path: dir.join("src/emulator.rs"), contents: fill(EMULATOR_RS) },
        Planned { path: dir.join("tests/conformance.rs"), contents: fill(CONFORMANCE_RS) },
    ]
}

/// Inserts `line` right after the line containing `marker`, keeping the block after the marker
/// sorted; returns `None` when `line` is already there.
pub(crate) fn register_line(text: &str, marker: &str, line: &str) -> Result<Option<String>, String> {
    if text.lines().any(|l| l.trim() == line.trim()) {
        return Ok(None);
    }
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines.iter().position(|l| l.contains(marker)).ok_or_else(|| format!("marker `{marker}` not found"))?;
    let indent: String = lines[at].chars().take_while(|c| c.is_whitespace()).collect();
    let mut insert = at + 1;
    while insert < lines.len() && lines[insert].trim() < line.trim() && is_registration(&lines[insert], line) {
        insert += 1;
    }
    lines.insert(insert, format!("{indent}{}", line.trim()));
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Ok(Some(out))
}

/// Whether `existing` is a registration line of the same kind as `new`: the same text before
/// the provider crate's name (`factories.extend(providers_…` or `providers-…`).
fn is_registration(existing: &str, new: &str) -> bool {
    let new = new.trim();
    let prefix = &new[..new.find("providers").unwrap_or(0)];
    existing.trim().starts_with(&format!("{prefix}providers"))
}

/// The registration edits: `(file, marker, line)`.
fn registrations(request: &Request) -> Vec<(PathBuf, &'static str, String)> {
    vec![
        (
            PathBuf::from("Cargo.toml"),
            "# xtask new-provider: provider crates",
            format!("{} = {{ path = \"crates/{}\" }}", request.crate_name(), request.crate_name()),
        ),
        (
            PathBuf::from("crates/cw/Cargo.toml"),
            "# xtask new-provider: dependencies",
            format!("{}.workspace = true", request.crate_name()),
        ),
        (
            PathBuf::from("crates/cw/src/providers.rs"),
            "// xtask new-provider: registrations",
            format!("factories.extend({}::factories());", request.lib_name()),
        ),
    ]
}

/// Generates the crate and registers it under `root`; returns the paths written.
pub(crate) fn generate(root: &Path, request: &Request) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for file in crate_files(request) {
        let path = root.join(&file.path);
        if path.exists() {
            // Never overwrite an author's work: only missing files are created.
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(file.path);
    }
    for (file, marker, line) in registrations(request) {
        let path = root.join(&file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(updated) = register_line(&text, marker, &line).map_err(|e| format!("{}: {e}", path.display()))? {
            std::fs::write(&path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(file);
        }
    }
    Ok(written)
}

pub(crate) fn run(args: &[&str]) -> Result<(), String> {
    let request = Request::parse(args)?;
    let written = generate(&workspace_root(), &request)?;
    if written.is_empty() {
        eprintln!("xtask: {} already exists and is registered; nothing changed", request.crate_name());
    } else {
        for path in &written {
            eprintln!("xtask: wrote {}", path.display());
        }
        eprintln!(
            "xtask: next: implement crates/{}/src/mapping.rs, then `cargo xtask conformance --provider {}` (see docs/providers.md)",
            request.crate_name(),
            request.crate_name()
        );
    }
    Ok(())
}

/// Proves the scaffold end to end in a throwaway copy of the workspace: generated, registered,
/// a second run changes nothing, it builds, the runner finds it and reports it failing.
pub(crate) fn self_check() -> Result<(), String> {
    let root = workspace_root();
    let copy = root.join("target/xtask/scaffold-check");
    let _ = std::fs::remove_dir_all(&copy);
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file).into_owned();
        let (from, to) = (root.join(&file), copy.join(&file));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        // Files deleted in the work tree but still tracked are simply skipped.
        let _ = std::fs::copy(&from, &to);
    }
    let request = Request::parse(&["acme", "--capability", "ads"])?;
    if generate(&copy, &request)?.is_empty() {
        return Err("scaffold check: the first run wrote nothing".to_owned());
    }
    if !generate(&copy, &request)?.is_empty() {
        return Err("scaffold check: a second run changed files".to_owned());
    }
    // Share the main target dir: third-party crates are reused, only workspace crates rebuild.
    let in_copy = |args: &[&str]| {
        let mut command = crate::cargo();
        command.current_dir(&copy).env("CARGO_TARGET_DIR", root.join("target")).args(args);
        command.output().map_err(|e| format!("cargo {}: {e}", args.join(" ")))
    };
    let check = in_copy(&["check", "--quiet", "-p", "cw", "-p", "providers-acme", "--all-targets"])?;
    if !check.status.success() {
        return Err(format!(
            "scaffold check: the generated crate does not build:\n{}",
            String::from_utf8_lossy(&check.stderr)
        ));
    }
    // Run the kit through the runner itself (not `cargo run -p xtask`, which would replace this
    // very binary in the shared target dir).
    let workspace = crate::conformance::Workspace { root: copy.clone(), target_dir: Some(root.join("target")) };
    let options = crate::conformance::Options { provider: Some(request.crate_name()), ..Default::default() };
    if let Ok(counts) = crate::conformance::run_in(&workspace, &options) {
        return Err(format!("scaffold check: the unimplemented scaffold passed conformance: {counts:?}"));
    }
    let report_path = copy.join("target/conformance").join(format!("{}.json", request.crate_name()));
    let report: serde_json::Value = std::fs::read(&report_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| format!("scaffold check: the runner wrote no report at {}", report_path.display()))?;
    let failed = report["summary"]["failed"].as_u64().unwrap_or(0);
    let found = report["reports"].as_array().is_some_and(|r| r.iter().any(|r| r["adapter"] == "acme_ads"));
    if failed == 0 || !found {
        return Err(format!("scaffold check: the scaffold was not reported failing: {report}"));
    }
    eprintln!(
        "xtask: scaffold check: generated, idempotent, builds, found by the runner, {failed} checks failing as expected"
    );
    let _ = std::fs::remove_dir_all(&copy);
    Ok(())
}

fn methods(capability: &str) -> &'static str {
    match capability {
        "ads" => ADS_METHODS,
        "cdp" => CDP_METHODS,
        "experiments" => EXPERIMENTS_METHODS,
        "inventory" => INVENTORY_METHODS,
        "lifecycle" => LIFECYCLE_METHODS,
        "llm_gateway" => LLM_GATEWAY_METHODS,
        "llm_observability" => LLM_OBSERVABILITY_METHODS,
        _ => VECTORSTORE_METHODS,
    }
}

const CARGO_TOML: &str = r#"[package]
name = "{{crate}}"
description = "The {{vendor}} provider: the `{{capability}}` capability over the vendor's API."
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
admit_core.workspace = true
async-trait.workspace = true
pal.workspace = true
serde.workspace = true
serde_json.workspace = true

[dev-dependencies]
conformance.workspace = true
tokio = { workspace = true, features = ["time", "test-util"] }

[lints]
workspace = true
"#;

const README: &str = r#"# {{crate}}

The `{{adapter}}` adapter: the `{{capability}}` capability over {{vendor}}'s API.

Generated by `cargo xtask new-provider {{vendor}} --capability {{capability}}`. Until every
operation is written, its conformance kit fails — on purpose.

## Author's checklist

1. `src/client.rs` — the vendor's HTTP API: authentication (the token is a `pal::Secret`:
   never format it), requests, and `pal::http::error_for_status` for every non-2xx answer
   (429/408/5xx retryable with Retry-After, 401/403 auth, other 4xx permanent).
2. `src/mapping.rs` — each trait method: build the request, call the client, map the answer
   into the typed result. Put vendor-only fields in `extra`. Declare idempotency honestly:
   an operation that may duplicate an effect when repeated is not idempotent.
3. `src/emulator.rs` — an offline, in-memory copy of the vendor's behaviour that the tests
   run against, with the fault scenarios of `conformance::Scenario` and request/write counts.
4. `tests/conformance.rs` — stage every scenario the emulator supports in `build`.
5. `cargo xtask conformance --provider {{crate}}` until green, then
   `cargo xtask conformance --bless` and commit the golden.

The settings this adapter accepts (in `providers.yaml` under `adapters: {{adapter}}:`) are
`base_url` and `token`; unknown keys are refused.
"#;

const LIB_RS: &str = r#"//! `{{crate}}` is the {{vendor}} provider: the `{{adapter}}` adapter of the `{{capability}}`
//! capability, its HTTP client, the mapping between the vendor's API and the capability's
//! types, and an emulator of the vendor's API for offline tests.
//!
//! It must never know another provider crate, the sync engine, or `cw`: it depends on `pal`.

mod client;
mod emulator;
mod mapping;

use std::sync::Arc;

use pal::{AdapterFactory, AdapterHandle, BuiltAdapter, Capability};

pub use client::Settings;
pub use emulator::Emulator;
pub use mapping::{{Type}};

/// The adapter's name in `providers.yaml`.
pub const ADAPTER: &str = "{{adapter}}";

/// The factories `cw` registers.
pub fn factories() -> Vec<AdapterFactory> {
    vec![AdapterFactory { name: ADAPTER, capability: Capability::{{Variant}}, build }]
}

fn build(settings: &serde_json::Value) -> Result<BuiltAdapter, String> {
    let settings: Settings = serde_json::from_value(settings.clone()).map_err(|e| e.to_string())?;
    let secrets = settings.token.iter().cloned().collect();
    let adapter = {{Type}}::new(client::Client::new(settings));
    Ok(BuiltAdapter { handle: AdapterHandle::{{Variant}}(Arc::new(adapter)), secrets })
}
"#;

const CLIENT_RS: &str = r#"//! The {{vendor}} API client.

use admit_core::{ErrorCode, ProviderError, ProviderPhase};
use serde::Deserialize;

/// The adapter's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The API's base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API token.
    #[serde(default)]
    pub token: Option<pal::Secret>,
}

/// Talks to the vendor's API.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    #[expect(dead_code, reason = "read by the operations once they are written; then remove this")]
    settings: Settings,
}

impl Client {
    pub(crate) fn new(settings: Settings) -> Self {
        Client { settings }
    }

    /// The error every operation returns until it is written.
    pub(crate) fn not_implemented(&self, op: &str, phase: ProviderPhase) -> ProviderError {
        ProviderError::new(
            format!("{{capability}}/{}", crate::ADAPTER),
            phase,
            format!("{op} is not implemented yet (see crates/{{crate}}/README.md)"),
        )
        .with_code(ErrorCode::Internal)
    }
}
"#;

const MAPPING_RS: &str = r#"//! The `{{capability}}` capability over the {{vendor}} client.

use admit_core::{ProviderError, ProviderPhase};
use pal::{{module}}::*;

use crate::client::Client;

/// The `{{adapter}}` adapter.
#[derive(Debug, Clone)]
pub struct {{Type}} {
    client: Client,
}

impl {{Type}} {
    pub(crate) fn new(client: Client) -> Self {
        {{Type}} { client }
    }
}

#[async_trait::async_trait]
impl {{Trait}} for {{Type}} {
{{methods}}}
"#;

const EMULATOR_RS: &str = r#"//! An offline emulator of the {{vendor}} API, for tests: it records requests and writes so
//! the conformance kit can tell real effects from reported ones.

use std::sync::atomic::{AtomicU64, Ordering};

/// The emulated vendor.
#[derive(Debug, Default)]
pub struct Emulator {
    requests: AtomicU64,
    writes: AtomicU64,
}

impl Emulator {
    /// A fresh emulator.
    pub fn new() -> Self {
        Emulator::default()
    }

    /// Records one request (call from the emulated endpoints). `changed_state` is true only
    /// when the request changed stored state: a repeat that changes nothing is not a write, and
    /// the conformance kit's idempotency check counts on that.
    pub fn record_request(&self, changed_state: bool) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if changed_state {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests that changed stored state.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}
"#;

const CONFORMANCE_RS: &str = r#"#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The conformance kit against the {{vendor}} emulator. It fails until every operation of
//! `src/mapping.rs` is written.

use std::sync::Arc;

use conformance::{ConformanceReport, Scenario, VendorProbe};
use {{lib}}::Emulator;

struct Probe(Arc<Emulator>);

impl VendorProbe for Probe {
    fn requests(&self) -> u64 {
        self.0.requests()
    }
    fn writes(&self) -> u64 {
        self.0.writes()
    }
}

fn build(scenario: Scenario) -> Option<(pal::AdapterHandle, Arc<dyn VendorProbe>)> {
    // Stage more scenarios as the emulator learns them; unstaged ones are reported not applicable.
    if scenario != Scenario::Healthy {
        return None;
    }
    let emulator = Arc::new(Emulator::new());
    let factory = {{lib}}::factories().remove(0);
    let built = (factory.build)(&serde_json::json!({})).unwrap();
    Some((built.handle, Arc::new(Probe(emulator))))
}
{{harness}}"#;

const CAPABILITY_HARNESS: &str = r#"
struct Harness;

impl conformance::CapabilityHarness for Harness {
    fn provider_crate(&self) -> &str {
        "{{crate}}"
    }
    fn adapters(&self) -> Vec<(pal::Capability, String)> {
        vec![(pal::Capability::{{Variant}}, {{lib}}::ADAPTER.to_owned())]
    }
    fn build(
        &self,
        _: pal::Capability,
        _: &str,
        scenario: Scenario,
    ) -> Option<(pal::AdapterHandle, Arc<dyn VendorProbe>)> {
        build(scenario)
    }
    fn secret(&self) -> Option<pal::Secret> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn conformance() {
    let reports = conformance::run_capability_kits(&Harness).await;
    let report = ConformanceReport::new(reports);
    report.write_if_requested("{{crate}}").unwrap();
    assert!(report.pass(), "{}", report.to_json());
}
"#;

const INVENTORY_HARNESS: &str = r#"
struct Harness;

impl conformance::InventoryHarness for Harness {
    fn provider_crate(&self) -> &str {
        "{{crate}}"
    }
    fn build(
        &self,
        scenario: Scenario,
    ) -> Option<(Arc<dyn pal::inventory::InventoryProvider>, Arc<dyn VendorProbe>)> {
        match build(scenario)? {
            (pal::AdapterHandle::Inventory(provider), probe) => Some((provider, probe)),
            _ => None,
        }
    }
    fn config_schema(&self) -> Option<serde_json::Value> {
        None
    }
    fn sample_items(&self, _: pal::inventory::Feature) -> Vec<pal::inventory::InventoryItem> {
        vec![]
    }
    fn unresolvable_item(&self, _: pal::inventory::Feature) -> Option<pal::inventory::InventoryItem> {
        None
    }
    fn secret(&self) -> Option<pal::Secret> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn conformance() {
    let report = ConformanceReport::new(vec![conformance::run_inventory_kit(&Harness).await]);
    report.write_if_requested("{{crate}}").unwrap();
    assert!(report.pass(), "{}", report.to_json());
}
"#;

const ADS_METHODS: &str = r#"    async fn create_campaign(&self, _plan: CampaignPlan) -> Result<Campaign, ProviderError> {
        Err(self.client.not_implemented("create_campaign", ProviderPhase::Execute))
    }

    async fn report(&self, _query: ReportQuery) -> Result<Vec<ReportRow>, ProviderError> {
        Err(self.client.not_implemented("report", ProviderPhase::Snapshot))
    }

    async fn pause(&self, _campaign_id: &str) -> Result<Campaign, ProviderError> {
        Err(self.client.not_implemented("pause", ProviderPhase::Execute))
    }
"#;

const CDP_METHODS: &str = r#"    async fn upsert_profile(&self, _profile: Profile) -> Result<Profile, ProviderError> {
        Err(self.client.not_implemented("upsert_profile", ProviderPhase::Execute))
    }

    async fn ingest_event(&self, _event: Event) -> Result<EventReceipt, ProviderError> {
        Err(self.client.not_implemented("ingest_event", ProviderPhase::Execute))
    }

    async fn sync_audience(&self, _audience: Audience) -> Result<AudienceSync, ProviderError> {
        Err(self.client.not_implemented("sync_audience", ProviderPhase::Execute))
    }

    async fn get_profile(&self, _id: &str) -> Result<Option<Profile>, ProviderError> {
        Err(self.client.not_implemented("get_profile", ProviderPhase::Snapshot))
    }
"#;

const EXPERIMENTS_METHODS: &str = r#"    async fn set_flag(&self, _key: &str, _value: serde_json::Value) -> Result<Flag, ProviderError> {
        Err(self.client.not_implemented("set_flag", ProviderPhase::Execute))
    }

    async fn get_flag(&self, _key: &str, _default: serde_json::Value) -> Result<serde_json::Value, ProviderError> {
        Err(self.client.not_implemented("get_flag", ProviderPhase::Snapshot))
    }

    async fn ramp(&self, _key: &str, _stage: u8) -> Result<RampState, ProviderError> {
        Err(self.client.not_implemented("ramp", ProviderPhase::Execute))
    }

    async fn start_ab(&self, _key: &str, _variants: Vec<String>) -> Result<Experiment, ProviderError> {
        Err(self.client.not_implemented("start_ab", ProviderPhase::Execute))
    }

    async fn start_bandit(&self, _key: &str, _arms: Vec<String>) -> Result<Experiment, ProviderError> {
        Err(self.client.not_implemented("start_bandit", ProviderPhase::Execute))
    }

    async fn assign(&self, _key: &str, _unit_id: &str) -> Result<Assignment, ProviderError> {
        Err(self.client.not_implemented("assign", ProviderPhase::Execute))
    }

    async fn report(&self, _key: &str) -> Result<ExperimentReport, ProviderError> {
        Err(self.client.not_implemented("report", ProviderPhase::Snapshot))
    }
"#;

const INVENTORY_METHODS: &str = r#"    fn name(&self) -> &str {
        "{{vendor}}"
    }

    fn label(&self) -> &str {
        "{{vendor}}"
    }

    fn features(&self) -> Features {
        // Claim each feature once its operations are written.
        Features { watchlist: true, ..Features::default() }
    }

    fn capabilities(&self) -> InventoryCapabilities {
        InventoryCapabilities::default()
    }

    async fn build_index(&self, _feature: Feature) -> Result<Vec<InventoryItem>, ProviderError> {
        Err(self.client.not_implemented("build_index", ProviderPhase::Snapshot))
    }

    async fn add(&self, _items: Vec<InventoryItem>, _feature: Feature, _dry_run: bool) -> Result<WriteResult, ProviderError> {
        Err(self.client.not_implemented("add", ProviderPhase::Execute))
    }

    async fn remove(&self, _items: Vec<InventoryItem>, _feature: Feature, _dry_run: bool) -> Result<WriteResult, ProviderError> {
        Err(self.client.not_implemented("remove", ProviderPhase::Execute))
    }
"#;

const LIFECYCLE_METHODS: &str = r#"    async fn send(&self, _message: Message) -> Result<SendReceipt, ProviderError> {
        Err(self.client.not_implemented("send", ProviderPhase::Execute))
    }

    async fn schedule(&self, _batch: Vec<Message>, _policy: SchedulePolicy) -> Result<ScheduleReceipt, ProviderError> {
        Err(self.client.not_implemented("schedule", ProviderPhase::Execute))
    }

    async fn preview(&self, _message: Message) -> Result<Preview, ProviderError> {
        Err(self.client.not_implemented("preview", ProviderPhase::Snapshot))
    }
"#;

const LLM_GATEWAY_METHODS: &str = r#"    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Err(self.client.not_implemented("models", ProviderPhase::Describe))
    }

    async fn route(&self, _prompt: &str, _tags: &[String]) -> Result<RouteResult, ProviderError> {
        Err(self.client.not_implemented("route", ProviderPhase::Execute))
    }
"#;

const LLM_OBSERVABILITY_METHODS: &str = r#"    async fn trace_start(&self, _run_id: &str, _meta: pal::Extra) -> Result<Trace, ProviderError> {
        Err(self.client.not_implemented("trace_start", ProviderPhase::Execute))
    }

    async fn trace_stop(&self, _trace_id: &str, _meta: pal::Extra) -> Result<Trace, ProviderError> {
        Err(self.client.not_implemented("trace_stop", ProviderPhase::Execute))
    }

    async fn log_eval(&self, _name: &str, _score: f64, _meta: pal::Extra) -> Result<EvalRecord, ProviderError> {
        Err(self.client.not_implemented("log_eval", ProviderPhase::Execute))
    }

    async fn link(&self, _run_id: &str, _trace_id: &str) -> Result<TraceLink, ProviderError> {
        Err(self.client.not_implemented("link", ProviderPhase::Execute))
    }
"#;

const VECTORSTORE_METHODS: &str = r#"    async fn index(&self, _docs: Vec<Document>) -> Result<IndexReceipt, ProviderError> {
        Err(self.client.not_implemented("index", ProviderPhase::Execute))
    }

    async fn search(&self, _query: &str, _k: usize) -> Result<Vec<SearchHit>, ProviderError> {
        Err(self.client.not_implemented("search", ProviderPhase::Snapshot))
    }

    async fn swap(&self, _target: &str) -> Result<ActiveIndex, ProviderError> {
        Err(self.client.not_implemented("swap", ProviderPhase::Execute))
    }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_copy() -> tempfile_lite::TempDir {
        let dir = tempfile_lite::TempDir::new();
        let root = workspace_root();
        for file in ["Cargo.toml", "crates/cw/Cargo.toml", "crates/cw/src/providers.rs"] {
            let target = dir.path().join(file);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(root.join(file), target).unwrap();
        }
        dir
    }

    #[test]
    fn parses_and_refuses_arguments() {
        let request = Request::parse(&["acme", "--capability", "ads"]).unwrap();
        assert_eq!(
            (request.crate_name(), request.adapter_name(), request.type_name()),
            ("providers-acme".into(), "acme_ads".into(), "AcmeAds".into())
        );
        assert!(Request::parse(&["Acme", "--capability", "ads"]).unwrap_err().contains("lower-case"));
        assert!(Request::parse(&["acme", "--capability", "crm"]).unwrap_err().contains("known: ads, cdp"));
        assert!(Request::parse(&["acme"]).unwrap_err().contains("usage"));
    }

    #[test]
    fn generation_registers_once_and_a_second_run_changes_nothing() {
        let dir = workspace_copy();
        let request = Request::parse(&["acme", "--capability", "llm_gateway"]).unwrap();
        let first = generate(dir.path(), &request).unwrap();
        assert_eq!(first.len(), 10, "7 files and 3 registrations: {first:?}");
        let providers = std::fs::read_to_string(dir.path().join("crates/cw/src/providers.rs")).unwrap();
        assert!(providers.contains("factories.extend(providers_acme::factories());"));
        let snapshot = |dir: &Path| -> Vec<(PathBuf, String)> {
            let mut files = Vec::new();
            let mut stack = vec![dir.to_path_buf()];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path)
                    } else {
                        files.push((path.clone(), std::fs::read_to_string(&path).unwrap()))
                    }
                }
            }
            files.sort();
            files
        };
        let before = snapshot(dir.path());
        assert!(generate(dir.path(), &request).unwrap().is_empty());
        assert_eq!(snapshot(dir.path()), before, "a second run is a no-op");

        // A second provider is registered beside the first, sorted.
        generate(dir.path(), &Request::parse(&["beta", "--capability", "ads"]).unwrap()).unwrap();
        let providers = std::fs::read_to_string(dir.path().join("crates/cw/src/providers.rs")).unwrap();
        let acme = providers.find("providers_acme").unwrap();
        let beta = providers.find("providers_beta").unwrap();
        assert!(acme < beta);
        let root_manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert!(root_manifest.contains("providers-acme = { path = \"crates/providers-acme\" }"));
    }

    #[test]
    fn every_capability_template_is_complete() {
        for (capability, ..) in CAPABILITIES {
            let request = Request::parse(&["acme", "--capability", capability]).unwrap();
            for file in crate_files(&request) {
                assert!(!file.contents.contains("{{"), "{capability}: unfilled placeholder in {}", file.path.display());
            }
        }
    }
}

/// A minimal temp dir for the scaffold's tests (xtask keeps its dependencies to serde_json).
#[cfg(test)]
mod tempfile_lite {
    use std::path::{Path, PathBuf};

    pub(super) struct TempDir(PathBuf);

    impl TempDir {
        pub(super) fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "xtask-scaffold-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub(super) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
