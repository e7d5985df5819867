#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The fault modes the conformance kits stage (refused credentials, an unreachable vendor, a
//! hang), the request counter, unresolvable ids and the settings schemas.

use std::time::Duration;

use admit_core::{ErrorClass, ErrorCode};
use pal::HealthStatus;
use pal::inventory::{Feature, InventoryItem, InventoryProvider};
use providers_mock::{ADAPTER_NAMES, MockInventory, MockInventorySettings, settings_schema};
use serde_json::{Value, json};

const TOKEN: &str = "tok-scenarios-123";

fn inventory(settings: Value) -> MockInventory {
    MockInventory::new(serde_json::from_value::<MockInventorySettings>(settings).unwrap()).unwrap()
}

fn movie(tmdb: &str) -> InventoryItem {
    InventoryItem { ids: [("tmdb".to_owned(), tmdb.to_owned())].into(), ..Default::default() }
}

#[tokio::test]
async fn auth_failed_refuses_every_call_permanently_and_reports_auth_failed() {
    let mock = inventory(json!({"token": TOKEN, "faults": {"auth_failed": true, "fail_times": 5}}));
    for error in [
        mock.build_index(Feature::Watchlist).await.unwrap_err(),
        mock.add(vec![movie("1")], Feature::Watchlist, false).await.unwrap_err(),
        mock.activities().await.unwrap_err(),
    ] {
        assert_eq!((error.class, error.code), (ErrorClass::Permanent, Some(ErrorCode::AuthFailed)), "{error}");
        assert!(!error.message.contains(TOKEN));
    }
    assert_eq!(mock.health().await.status, HealthStatus::AuthFailed);
    assert_eq!((mock.writes(), mock.items(Feature::Watchlist).len()), (0, 0));
    assert_eq!(mock.faults().injected_failures(), 3, "auth_failed takes precedence over fail_times");

    let echoing = inventory(json!({"token": TOKEN, "faults": {"auth_failed": true, "echo_token_in_errors": true}}));
    assert!(echoing.build_index(Feature::Watchlist).await.unwrap_err().message.contains(TOKEN));
}

#[tokio::test]
async fn unreachable_fails_retryably_and_reports_down() {
    let mock = inventory(json!({"faults": {"unreachable": true, "auth_failed": true}}));
    let error = mock.remove(vec![movie("1")], Feature::Ratings, false).await.unwrap_err();
    assert_eq!((error.class, error.code), (ErrorClass::Retryable, Some(ErrorCode::Unavailable)), "{error}");
    let health = mock.health().await;
    assert_eq!(health.status, HealthStatus::Down, "unreachable takes precedence over auth_failed");
    assert!(health.reason.unwrap().contains("faults.unreachable"));
}

#[tokio::test(start_paused = true)]
async fn hang_never_answers_but_counts_the_request() {
    let mock = inventory(json!({"faults": {"hang": true}}));
    let an_hour = Duration::from_secs(3600);
    assert!(tokio::time::timeout(an_hour, mock.build_index(Feature::Watchlist)).await.is_err());
    assert!(tokio::time::timeout(an_hour, mock.add(vec![movie("1")], Feature::Watchlist, false)).await.is_err());
    assert!(tokio::time::timeout(an_hour, mock.health()).await.is_err());
    assert_eq!(mock.requests(), 3);
    assert_eq!(mock.writes(), 0);

    mock.faults().set(Default::default());
    assert!(mock.build_index(Feature::Watchlist).await.unwrap().is_empty());
}

#[tokio::test]
async fn requests_count_every_call_writes_only_applied_ones() {
    let mock = inventory(json!({"faults": {"fail_times": 1}}));
    mock.add(vec![movie("1")], Feature::Watchlist, false).await.unwrap_err();
    mock.add(vec![movie("1")], Feature::Watchlist, false).await.unwrap();
    mock.add(vec![movie("2")], Feature::Watchlist, true).await.unwrap();
    mock.build_index(Feature::Watchlist).await.unwrap();
    mock.health().await;
    assert_eq!((mock.requests(), mock.writes()), (5, 1));
}

#[tokio::test]
async fn unresolvable_ids_are_reported_with_their_ids_and_not_stored() {
    let mock = inventory(json!({"unresolvable": ["TMDB:404", "imdb:tt0000404"]}));
    let lost = InventoryItem { title: Some("Lost".into()), ..movie(" 404 ") };
    let by_imdb = InventoryItem { ids: [("imdb".to_owned(), "TT0000404".to_owned())].into(), ..Default::default() };
    let result = mock.add(vec![lost, movie("1"), by_imdb], Feature::Watchlist, false).await.unwrap();
    assert_eq!(result.confirmed_keys, Some(vec!["tmdb:1".to_owned()]));
    assert_eq!(result.unresolved.len(), 2);
    assert!(
        result.unresolved.iter().all(|u| !u.ids.is_empty() && u.reason.as_deref() == Some("unknown to the vendor"))
    );
    assert_eq!(mock.keys(Feature::Watchlist), ["tmdb:1"]);
}

#[test]
fn every_adapter_has_a_settings_schema() {
    for name in ADAPTER_NAMES {
        let schema = settings_schema(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(schema["additionalProperties"], false, "{name}: unknown keys are refused");
        assert!(schema["properties"]["token"].is_object(), "{name}");
        assert!(schema["properties"]["faults"].is_object(), "{name}");
    }
    let inventory = settings_schema("mock_inventory").unwrap();
    for key in ["items", "name", "label", "features", "capabilities", "unresolvable"] {
        assert!(inventory["properties"][key].is_object(), "{key}");
    }
    let faults = serde_json::to_string(&inventory).unwrap();
    for key in ["fail_times", "fail_permanently", "latency_ms", "retry_after_ms", "auth_failed", "unreachable", "hang"]
    {
        assert!(faults.contains(&format!("\"{key}\"")), "{key}");
    }
    assert!(settings_schema("mock_plex").is_none());
}
