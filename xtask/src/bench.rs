//! `cargo xtask bench-sync [--items N]…`: the peer's scenario, whole processes, timed.
//!
//! For each size it generates the scenario (`cw_orchestrator`'s `peer_scenario` example: a
//! source of N movies with imdb/tmdb/trakt/tvdb ids, a target of the first 95 % with imdb/tmdb
//! only plus 5 % others) and times, with peak RSS:
//!
//! - `diff`: `cw diff source.json target.json --json`, the whole process;
//! - `sync`: a one-way `cw sync` file → local with its state commit. Before it, a seeding sync
//!   (not timed) makes the library and the pair's baselines hold the target set, so the timed
//!   run has 5 % adds and 5 % removals (`source_deletes`) to plan, apply and commit;
//! - `resync`: the same `cw sync` again, which has nothing to do.
//!
//! Peak RSS comes from `/usr/bin/time -v` when it exists (else it is reported as unknown).
//! Timings are of release builds; the planner alone is measured by the criterion bench
//! (`cargo bench -p cw_orchestrator --bench planner`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{cargo, run, workspace_root};

/// One measured process.
struct Measured {
    seconds: f64,
    peak_rss_mib: Option<f64>,
}

pub(crate) fn run_bench(args: &[&str]) -> Result<(), String> {
    let mut sizes = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--items" => {
                let n = rest.next().ok_or("--items needs a number")?;
                sizes.push(n.parse::<usize>().map_err(|e| format!("--items {n}: {e}"))?);
            }
            other => return Err(format!("bench-sync: unknown argument `{other}`")),
        }
    }
    if sizes.is_empty() {
        sizes.push(100_000);
    }
    let mut build = cargo();
    // A target filter (`--example`) limits the build to the targets named: name the binary too.
    build.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "cw",
        "-p",
        "cw_orchestrator",
        "--bins",
        "--example",
        "peer_scenario",
    ]);
    run("build cw and the scenario generator (release)", build)?;
    let root = workspace_root();
    let release = root.join("target/release");
    let cw = release.join("cw");
    let generator = release.join("examples/peer_scenario");
    let time = Path::new("/usr/bin/time").is_file().then(|| PathBuf::from("/usr/bin/time"));
    println!("{:>9}  {:>10}  {:>10}  {:>10}  {:>14}", "ITEMS", "DIFF", "SYNC", "RESYNC", "PEAK RSS (MiB)");
    for items in sizes {
        let dir = root.join("target/bench-sync").join(items.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut generate = Command::new(&generator);
        generate.args(["--items", &items.to_string(), "--out"]).arg(&dir);
        measure("generate the scenario", generate, None)?;
        write_config(&dir, "seed.yaml", "target.json")?;
        write_config(&dir, "cw.yaml", "source.json")?;

        let mut diff = Command::new(&cw);
        diff.current_dir(&dir).args(["diff", "source.json", "target.json", "--json"]);
        let diff = measure("cw diff", diff, time.as_deref())?;

        let mut seed = Command::new(&cw);
        seed.current_dir(&dir).args(["sync", "--config", "seed.yaml"]);
        measure("seeding cw sync", seed, None)?;

        let mut sync = Command::new(&cw);
        sync.current_dir(&dir).args(["sync", "--config", "cw.yaml", "--json"]);
        let synced = measure("cw sync", sync, time.as_deref())?;
        let report = std::fs::read_to_string(dir.join("last-output.json")).unwrap_or_default();
        check_counts(&report, items)?;

        let mut resync = Command::new(&cw);
        resync.current_dir(&dir).args(["sync", "--config", "cw.yaml"]);
        let resynced = measure("cw sync (nothing to do)", resync, time.as_deref())?;

        let rss = [&diff, &synced, &resynced]
            .iter()
            .map(|m| m.peak_rss_mib.map(|r| format!("{r:.0}")).unwrap_or_else(|| "?".to_owned()))
            .collect::<Vec<_>>()
            .join(" / ");
        println!("{items:>9}  {:>9.3}s  {:>9.3}s  {:>9.3}s  {rss:>14}", diff.seconds, synced.seconds, resynced.seconds);
    }
    println!("(peak RSS: diff / sync / resync)");
    Ok(())
}

/// A one-way pair from `source` into the local library, watchlist, removals on.
fn write_config(dir: &Path, name: &str, source: &str) -> Result<(), String> {
    // Both configs share the pair id, the library and the state, so the seeding run's
    // baselines are the timed run's starting point.
    let text = format!(
        "state_dir: state\n\
         providers:\n  \
           scenario: {{ adapter: file, path: {source}, feature: watchlist }}\n  \
           library: {{ adapter: local, path: library.db }}\n\
         pairs:\n  \
           - id: peer\n    \
             source: scenario\n    \
             target: library\n    \
             mode: one-way\n    \
             features:\n      \
               watchlist: {{ add: true, remove: true, remove_mode: source_deletes }}\n"
    );
    std::fs::write(dir.join(name), text).map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

/// Runs `command` to completion (through `time -v` when given), keeps its stdout in
/// `last-output.json` next to it, and returns its wall time and peak RSS.
fn measure(what: &str, command: Command, time: Option<&Path>) -> Result<Measured, String> {
    let (mut command, timed) = match time {
        Some(time) => {
            let mut wrapped = Command::new(time);
            wrapped.arg("-v").arg(command.get_program()).args(command.get_args());
            if let Some(dir) = command.get_current_dir() {
                wrapped.current_dir(dir);
            }
            (wrapped, true)
        }
        None => (command, false),
    };
    let started = Instant::now();
    let output = command.output().map_err(|e| format!("{what}: cannot start: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{what} failed ({}): {stderr}", output.status));
    }
    if let Some(dir) = command.get_current_dir() {
        let _ = std::fs::write(dir.join("last-output.json"), &output.stdout);
    }
    let peak_rss_mib = timed
        .then(|| {
            stderr
                .lines()
                .find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes):"))
                .and_then(|kb| kb.trim().parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
        })
        .flatten();
    Ok(Measured { seconds, peak_rss_mib })
}

/// The timed sync must have done the scenario's work: 5 % adds and 5 % removals.
fn check_counts(report: &str, items: usize) -> Result<(), String> {
    let report: serde_json::Value =
        serde_json::from_str(report).map_err(|e| format!("cw sync --json printed no report: {e}"))?;
    let counts = &report["pairs"][0]["features"]["watchlist"];
    let expected = (items / 20) as u64;
    let (added, removed) = (counts["added"].as_u64(), counts["removed"].as_u64());
    if added != Some(expected) || removed != Some(expected) {
        return Err(format!("the timed sync did {added:?} adds and {removed:?} removals; expected {expected} of each"));
    }
    Ok(())
}
