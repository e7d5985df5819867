#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The peer's scenario from the command line (see `benches/support/scenario.rs`):
//!
//! - `--out DIR` writes `DIR/source.json` and `DIR/target.json` (for timing `cw diff`);
//! - `--time` ingests and plans it once, printing the time of each step and the peak RSS
//!   (for sizes too large for the criterion bench).
//!
//! `cargo run --release -p cw_orchestrator --example peer_scenario -- --items 100000 --out DIR --time`

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use cw_orchestrator::planner::plan;

#[path = "../benches/support/scenario.rs"]
mod scenario;

fn main() {
    let mut items = 100_000;
    let mut out: Option<PathBuf> = None;
    let mut time = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--items" => items = args.next().and_then(|n| n.parse().ok()).expect("--items N"),
            "--out" => out = Some(args.next().expect("--out DIR").into()),
            "--time" => time = true,
            other => panic!("unknown argument `{other}`; usage: [--items N] [--out DIR] [--time]"),
        }
    }
    let scenario = scenario::scenario(items);
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, side) in [("source.json", &scenario.source.items), ("target.json", &scenario.target.items)] {
            let mut file = BufWriter::new(std::fs::File::create(dir.join(name)).unwrap());
            serde_json::to_writer(&mut file, side).unwrap();
            file.flush().unwrap();
        }
        println!(
            "wrote {} and {} items to {}",
            scenario.source.items.len(),
            scenario.target.items.len(),
            dir.display()
        );
    }
    if time {
        let started = Instant::now();
        let (src, dst) = scenario::ingested(&scenario);
        let ingested = started.elapsed();
        // Three snapshots were ingested: source, target and the target's baseline.
        let ingested_items = scenario.source.items.len() + 2 * scenario.target.items.len();
        let started = Instant::now();
        let outcome = plan(&scenario::input(&src, &dst)).unwrap();
        let planned = started.elapsed();
        println!(
            "items {items}: ingest {:.1} ms ({:.2} µs/item over {ingested_items} items), plan {:.1} ms \
             ({} adds, {} removals), peak RSS {}",
            ingested.as_secs_f64() * 1e3,
            ingested.as_secs_f64() * 1e6 / ingested_items as f64,
            planned.as_secs_f64() * 1e3,
            outcome.plan.to_target.adds.len(),
            outcome.plan.to_target.removals.len(),
            peak_rss(),
        );
    }
}

/// `VmHWM` of this process (Linux), or `unknown`.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l["VmHWM:".len()..].trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}
