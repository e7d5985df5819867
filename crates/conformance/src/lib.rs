//! `conformance` holds the behavioural kits every provider must pass before users trust it:
//! the inventory kit (the media-sync contract), the capability kit (the seven other PAL
//! capabilities) and the protocol kit (admit providers). Checks are chosen from what a
//! provider declares (OpenDAL's behaviour tests): a check the provider does not claim is
//! recorded as not applicable with its reason, never as passed. Each provider crate runs its
//! kit from `tests/conformance.rs` against its emulator or mock; `cargo xtask conformance`
//! collects the reports.
//!
//! It must never know a vendor: kits see providers only through `pal` and `admit_core`
//! traits and the harnesses provider crates implement.

pub mod capability;
pub mod inventory;
pub mod mocks;
pub mod protocol;
pub mod report;
pub mod scenario;

pub use capability::{
    Binding, CAPABILITY_CHECKS, CapabilityHarness, Probe, probes, run_capability_kit, run_capability_kits,
    shape_mismatches,
};
pub use inventory::{
    BuiltInventory, FUTURE_CHECKPOINT, INVENTORY_CHECKS, InventoryHarness, RATE_LIMITED, READ_ONLY, SERVER_ERROR,
    run_inventory_kit,
};
pub use protocol::{PROTOCOL_CHECKS, ProtocolHarness, run_protocol_kit};
pub use report::{
    CheckResult, CheckStatus, Checks, ConformanceReport, Kit, KitMetrics, KitReport, REPORT_DIR_ENV, Summary, ensure,
};
pub use scenario::{Scenario, VendorProbe, kit_pipeline, kit_policy};
