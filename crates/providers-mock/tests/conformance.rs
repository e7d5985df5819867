#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! providers-mock's conformance: the inventory kit against `mock_inventory` and the capability
//! kit against every capability mock, through the reference harnesses of `conformance::mocks`.
//!
//! `noop_ads` is not certified: it is the deliberately poor candidate of shadow comparisons, and
//! fails shape parity with `mock_ads` (the kit's own tests show that failure).

use conformance::mocks::{MockCapabilityHarness, MockInventoryHarness};
use conformance::{ConformanceReport, run_capability_kits, run_inventory_kit};

#[tokio::test(start_paused = true)]
async fn providers_mock_passes_its_conformance_kits() {
    let mut reports = run_capability_kits(&MockCapabilityHarness).await;
    reports.push(run_inventory_kit(&MockInventoryHarness::default()).await);
    let report = ConformanceReport::new(reports);
    // Written before asserting, so `cargo xtask conformance` can show what failed.
    report.write_if_requested("providers-mock").unwrap();
    assert!(report.pass(), "{}", report.to_json());
    assert_eq!(report.reports.len(), 10, "9 capability adapters and mock_inventory");
}
