#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The registry: config resolution, errors, atomic reload, overrides, listing and redaction.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pal::ads::{AdsProvider, Campaign, CampaignPlan, ReportQuery, ReportRow};
use pal::config::ConfigError;
use pal::{
    AdapterFactory, AdapterHandle, BuiltAdapter, CallError, Capability, HealthReport, HealthStatus, Pipeline,
    ProviderError, ProviderPhase, Registry, RegistryError, RetryPolicy, Secret, SeededJitter, TokioClock,
};
use serde::Deserialize;
use serde_json::{Value, json};

static SERVED_A: AtomicU64 = AtomicU64::new(0);
static SERVED_B: AtomicU64 = AtomicU64::new(0);
// Only the reload test uses these two, so no other test disturbs its count.
static SERVED_C: AtomicU64 = AtomicU64::new(0);
static SERVED_D: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FakeSettings {
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    echo_token: bool,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    down: bool,
}

#[derive(Debug)]
struct FakeAds {
    name: &'static str,
    served: &'static AtomicU64,
    settings: FakeSettings,
}

#[pal::async_trait]
impl AdsProvider for FakeAds {
    async fn create_campaign(&self, plan: CampaignPlan) -> Result<Campaign, ProviderError> {
        if self.settings.echo_token {
            let token = self.settings.token.as_ref().map(Secret::expose).unwrap_or_default();
            return Err(ProviderError::new(
                format!("ads/{}", self.name),
                ProviderPhase::Execute,
                format!("denied for token={token}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(self.settings.delay_ms)).await;
        self.served.fetch_add(1, Ordering::SeqCst);
        Ok(Campaign { id: plan.id.unwrap_or_default(), status: self.name.to_owned(), ..Default::default() })
    }
    async fn report(&self, _: ReportQuery) -> Result<Vec<ReportRow>, ProviderError> {
        Ok(vec![])
    }
    async fn pause(&self, id: &str) -> Result<Campaign, ProviderError> {
        Ok(Campaign { id: id.to_owned(), status: "paused".into(), ..Default::default() })
    }
    async fn health(&self) -> HealthReport {
        HealthReport::with_status(if self.settings.down { HealthStatus::Down } else { HealthStatus::Ok })
    }
}

fn build(name: &'static str, served: &'static AtomicU64, settings: &Value) -> Result<BuiltAdapter, String> {
    let settings: FakeSettings = serde_json::from_value(settings.clone()).map_err(|e| e.to_string())?;
    let secrets = settings.token.iter().cloned().collect();
    Ok(BuiltAdapter { handle: AdapterHandle::Ads(Arc::new(FakeAds { name, served, settings })), secrets })
}

fn factories() -> Vec<AdapterFactory> {
    vec![
        AdapterFactory {
            name: "fake_ads_a",
            capability: Capability::Ads,
            build: |s| build("fake_ads_a", &SERVED_A, s),
        },
        AdapterFactory {
            name: "fake_ads_b",
            capability: Capability::Ads,
            build: |s| build("fake_ads_b", &SERVED_B, s),
        },
        AdapterFactory {
            name: "fake_ads_c",
            capability: Capability::Ads,
            build: |s| build("fake_ads_c", &SERVED_C, s),
        },
        AdapterFactory {
            name: "fake_ads_d",
            capability: Capability::Ads,
            build: |s| build("fake_ads_d", &SERVED_D, s),
        },
    ]
}

fn pipeline() -> Arc<Pipeline> {
    Arc::new(Pipeline::new(Arc::new(TokioClock::new()), Arc::new(SeededJitter::new(1)), RetryPolicy::default()))
}

/// A registry whose `PROVIDERS_CONFIG_PATH` is whatever `path` holds.
fn registry(dir: &Path, path: Arc<Mutex<Option<PathBuf>>>) -> Result<Registry, RegistryError> {
    let env = move || path.lock().unwrap().as_ref().map(|p| p.to_string_lossy().into_owned());
    Registry::with_environment(factories(), pipeline(), dir.to_path_buf(), Box::new(env))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_100_concurrent_calls_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", "capabilities: {ads: fake_ads_c}\nadapters: {fake_ads_c: {delay_ms: 5}}\n");
    let b = write(dir.path(), "b.yaml", "capabilities: {ads: fake_ads_d}\nadapters: {fake_ads_d: {delay_ms: 5}}\n");
    let current = Arc::new(Mutex::new(Some(a.clone())));
    let registry = Arc::new(registry(dir.path(), current.clone()).unwrap());
    let before = SERVED_C.load(Ordering::SeqCst) + SERVED_D.load(Ordering::SeqCst);

    let calls: Vec<_> = (0..100)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i % 20)).await;
                registry
                    .call_json(Capability::Ads, "create_campaign", &json!({"plan": {"id": format!("c{i}")}}), None)
                    .await
            })
        })
        .collect();
    for flip in 0..40 {
        *current.lock().unwrap() = Some(if flip % 2 == 0 { b.clone() } else { a.clone() });
        registry.reload().unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut ids = Vec::new();
    let mut served_by = std::collections::BTreeMap::<String, u32>::new();
    for call in calls {
        let campaign = call.await.unwrap().unwrap();
        ids.push(campaign["id"].as_str().unwrap().to_owned());
        *served_by.entry(campaign["status"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every call answered once");
    let after = SERVED_C.load(Ordering::SeqCst) + SERVED_D.load(Ordering::SeqCst);
    assert_eq!(after - before, 100, "adapters served exactly 100 calls: none lost, none repeated");
    assert_eq!(served_by.len(), 2, "both adapters served some calls during the flips: {served_by:?}");
}

#[tokio::test]
async fn a_call_in_flight_finishes_on_the_adapter_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", "capabilities: {ads: fake_ads_a}\nadapters: {fake_ads_a: {delay_ms: 50}}\n");
    let b = write(dir.path(), "b.yaml", "capabilities: {ads: fake_ads_b}\n");
    let current = Arc::new(Mutex::new(Some(a)));
    let registry = Arc::new(registry(dir.path(), current.clone()).unwrap());
    let slow = {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry.call_json(Capability::Ads, "create_campaign", &json!({"plan": {"id": "slow"}}), None).await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    *current.lock().unwrap() = Some(b);
    registry.reload().unwrap();
    let fast =
        registry.call_json(Capability::Ads, "create_campaign", &json!({"plan": {"id": "fast"}}), None).await.unwrap();
    assert_eq!(fast["status"], "fake_ads_b");
    assert_eq!(slow.await.unwrap().unwrap()["status"], "fake_ads_a");
}

#[tokio::test]
async fn overrides_are_set_listed_kept_across_reloads_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", "capabilities: {ads: fake_ads_a}\n");
    let registry = registry(dir.path(), Arc::new(Mutex::new(Some(a)))).unwrap();
    assert_eq!(registry.resolve(Capability::Ads).unwrap().0.adapter, "fake_ads_a");

    registry.set_override(Capability::Ads, "fake_ads_b").unwrap();
    assert_eq!(registry.resolve(Capability::Ads).unwrap().0.adapter, "fake_ads_b");
    let listing = registry.list(false).await;
    assert_eq!(listing.len(), 1);
    assert_eq!((listing[0].adapter.as_str(), listing[0].overridden, listing[0].healthy), ("fake_ads_b", true, true));
    registry.reload().unwrap();
    assert_eq!(registry.resolve(Capability::Ads).unwrap().0.adapter, "fake_ads_b", "overrides survive reload");

    assert!(registry.clear_override(Capability::Ads));
    assert!(!registry.clear_override(Capability::Ads));
    assert_eq!(registry.resolve(Capability::Ads).unwrap().0.adapter, "fake_ads_a");

    let err = registry.set_override(Capability::Ads, "acme_ads").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown adapter `acme_ads` for capability `ads`; known: fake_ads_a, fake_ads_b, fake_ads_c, fake_ads_d"
    );
    let err = registry.set_override(Capability::Cdp, "fake_ads_a").unwrap_err();
    assert!(err.to_string().contains("for capability `cdp`; known: "), "{err}");
    let err = registry.resolve(Capability::Cdp).unwrap_err();
    assert!(err.to_string().contains("`cdp` is not mapped") && err.to_string().contains("a.yaml"), "{err}");
}

#[tokio::test]
async fn listing_is_sorted_and_reports_health() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", "capabilities: {ads: fake_ads_a}\nadapters: {fake_ads_a: {down: true}}\n");
    let registry = registry(dir.path(), Arc::new(Mutex::new(Some(a)))).unwrap();
    let listing = registry.list(true).await;
    assert!(!listing[0].healthy);
    assert_eq!(listing[0].health.as_ref().unwrap().status, HealthStatus::Down);
    let json = serde_json::to_value(&registry.list(false).await).unwrap();
    assert_eq!(json, json!([{"capability": "ads", "adapter": "fake_ads_a", "healthy": false}]));
}

#[test]
fn config_errors_name_the_file_and_line_or_list_what_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str, needles: &[&str]| {
        let path = write(dir.path(), name, text);
        let err = registry(dir.path(), Arc::new(Mutex::new(Some(path)))).unwrap_err().to_string();
        for needle in needles {
            assert!(err.contains(needle), "{name}: `{err}` lacks `{needle}`");
        }
    };
    check("broken.yaml", "capabilities:\n  ads: fake_ads_a\n   oops: [\n", &["broken.yaml:3:"]);
    check(
        "cap.yaml",
        "capabilities:\n  ads: fake_ads_a\n  adds: fake_ads_a\n",
        &["cap.yaml:3", "unknown capability `adds`", "known: ads, cdp"],
    );
    check(
        "adapter.yaml",
        "capabilities:\n  ads: acme\n",
        &["adapter.yaml:2", "unknown adapter `acme`", "known: fake_ads_a, fake_ads_b, fake_ads_c, fake_ads_d"],
    );
    check(
        "stray.yaml",
        "capabilities: {}\nadapters:\n  fake_adz_a: {}\n",
        &["stray.yaml:3", "unknown adapter `fake_adz_a`"],
    );
    check(
        "settings.yaml",
        "capabilities: {ads: fake_ads_a}\nadapters:\n  fake_ads_a: {delay: 5}\n",
        &["settings.yaml:3", "adapter `fake_ads_a`", "unknown field `delay`"],
    );
    check("top.yaml", "capability: {ads: fake_ads_a}\n", &["top.yaml", "unknown field `capability`"]);

    let missing = dir.path().join("nope.yaml");
    let err = registry(dir.path(), Arc::new(Mutex::new(Some(missing)))).unwrap_err();
    assert!(matches!(err, RegistryError::Config(ConfigError::MissingFile { .. })));
    assert!(err.to_string().starts_with("PROVIDERS_CONFIG_PATH=") && err.to_string().contains("nope.yaml"), "{err}");
}

#[test]
fn a_failed_reload_keeps_the_previous_mapping_and_the_path_is_re_resolved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("providers")).unwrap();
    write(&dir.path().join("providers"), "providers.yaml", "capabilities: {ads: fake_ads_b}\n");
    let current = Arc::new(Mutex::new(None));
    let registry = registry(dir.path(), current.clone()).unwrap();
    assert_eq!(
        registry.resolve(Capability::Ads).unwrap().0.adapter,
        "fake_ads_b",
        "providers/providers.yaml by default"
    );

    let a = write(dir.path(), "a.yaml", "capabilities: {ads: fake_ads_a}\n");
    *current.lock().unwrap() = Some(a.clone());
    registry.reload().unwrap();
    assert_eq!(
        registry.resolve(Capability::Ads).unwrap().0.adapter,
        "fake_ads_a",
        "the variable is read again on reload"
    );

    std::fs::write(&a, "capabilities: {ads: [\n").unwrap();
    assert!(registry.reload().is_err());
    assert_eq!(registry.resolve(Capability::Ads).unwrap().0.adapter, "fake_ads_a", "old mapping kept");
}

#[tokio::test]
async fn a_token_in_adapter_settings_never_leaks() {
    const TOKEN: &str = "sk-live-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        &format!("capabilities: {{ads: fake_ads_a}}\nadapters:\n  fake_ads_a: {{token: {TOKEN}, echo_token: true}}\n"),
    );
    let registry = registry(dir.path(), Arc::new(Mutex::new(Some(path)))).unwrap();
    let err = registry.call_json(Capability::Ads, "create_campaign", &json!({"plan": {}}), None).await.unwrap_err();
    let CallError::Provider(provider_error) = &err else { panic!("{err}") };
    assert!(provider_error.message.contains("denied for token=[REDACTED]"), "{}", provider_error.message);
    let (_, handle) = registry.resolve(Capability::Ads).unwrap();
    for text in [err.to_string(), format!("{err:?}"), format!("{registry:?}"), format!("{handle:?}")] {
        assert!(!text.contains(TOKEN), "leaked: {text}");
    }

    // A factory error about the settings must not echo the token either.
    let bad = write(
        dir.path(),
        "bad.yaml",
        &format!(
            "capabilities: {{ads: fake_ads_a}}\nadapters:\n  fake_ads_a: {{token: {TOKEN}, delay_ms: \"{TOKEN}\"}}\n"
        ),
    );
    let err = registry_err(dir.path(), bad);
    assert!(!err.contains(TOKEN), "leaked: {err}");
}

fn registry_err(dir: &Path, path: PathBuf) -> String {
    registry(dir, Arc::new(Mutex::new(Some(path)))).unwrap_err().to_string()
}

#[tokio::test]
async fn call_json_reports_unknown_operations_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "p.yaml", "capabilities: {ads: fake_ads_a}\n");
    let registry = registry(dir.path(), Arc::new(Mutex::new(Some(path)))).unwrap();
    let err = registry.call_json(Capability::Ads, "launch", &json!({}), None).await.unwrap_err();
    assert!(err.to_string().contains("known: create_campaign, report, pause, health"), "{err}");
    let err = registry.call_json(Capability::Ads, "pause", &json!({"campaign_id": 5}), None).await.unwrap_err();
    assert!(err.to_string().contains("input.campaign_id"), "{err}");
    let ok =
        registry.call_json(Capability::Ads, "pause", &json!({"campaign_id": "c1"}), Some("fake_ads_b")).await.unwrap();
    assert_eq!(ok["status"], "paused");
    let err =
        registry.call_json(Capability::Ads, "pause", &json!({"campaign_id": "c1"}), Some("nope")).await.unwrap_err();
    assert!(err.to_string().contains("unknown adapter `nope`"), "{err}");
}
