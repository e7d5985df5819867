#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The protocol conformance kit against `ingest.dir`, over a temp directory it controls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use admit_core::Provider;
use conformance::{CheckStatus, ConformanceReport, ProtocolHarness, run_protocol_kit};
use providers_ingest_dir::IngestDirProvider;
use serde_json::{Value, json};

struct TempTree {
    dir: tempfile::TempDir,
    edits: AtomicU32,
}

impl TempTree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "# sample\n").unwrap();
        TempTree { dir, edits: AtomicU32::new(0) }
    }
}

impl ProtocolHarness for TempTree {
    fn provider_crate(&self) -> &str {
        "providers-ingest-dir"
    }

    fn provider(&self) -> Arc<dyn Provider> {
        Arc::new(IngestDirProvider::new())
    }

    fn snapshot_params(&self) -> Value {
        json!({ "root": self.dir.path().to_str().unwrap() })
    }

    fn mutate_world(&self) -> bool {
        let n = self.edits.fetch_add(1, Ordering::SeqCst);
        std::fs::write(self.dir.path().join(format!("edit-{n}.txt")), "changed\n").is_ok()
    }
}

#[tokio::test]
async fn ingest_dir_passes_the_protocol_kit() {
    let tree = TempTree::new();
    let report = run_protocol_kit(&tree).await;
    // Written before asserting, so `cargo xtask conformance` can show what failed.
    ConformanceReport::new(vec![report.clone()]).write_if_requested("providers-ingest-dir").unwrap();
    assert!(report.pass, "{:#?}", report.errors);
    // ingest.dir is read-only: plan/execute checks do not apply, and say why.
    assert_eq!(
        report.names_with(CheckStatus::NotApplicable),
        ["execute.refuses_unknown_plan", "execute.refuses_stale_plan"]
    );
}
