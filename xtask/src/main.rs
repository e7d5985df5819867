//! `xtask` automates the project's chores: `cargo xtask ci` (formatting, lints, tests, schema
//! freshness, conformance goldens, cargo-deny when installed), `cargo xtask schemas [--check]`
//! `cargo xtask conformance`, `cargo xtask new-provider` and `cargo xtask bench-sync`.
//!
//! It must never depend on the workspace's crates (it drives them through `cargo`), and keeps
//! to the standard library plus `serde_json` (to read reports) so it builds in seconds.

mod bench;
mod conformance;
mod scaffold;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci               fmt check, clippy -D warnings, tests, schemas --check, cargo-deny when installed
  schemas          regenerate docs/schemas/ from the protocol types
  schemas --check  fail when docs/schemas/ is out of date
  conformance [--provider NAME] [--check | --bless] [--json]
                   run every providers-* crate's conformance kit; --check compares with
                   tests/golden/conformance/, --bless rewrites those goldens
  new-provider VENDOR --capability CAPABILITY
                   generate crates/providers-VENDOR and register it in cw (idempotent)
  scaffold-check   scaffold a provider in a throwaway copy of the workspace and prove it
                   builds and is reported failing (part of ci)
  bench-sync [--items N]…
                   the peer's scenario as whole processes (release): cw diff, a full
                   one-way cw sync with its state commit, a re-sync; wall time and peak RSS";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["ci"] => ci(),
        ["schemas"] => schemas(false),
        ["schemas", "--check"] => schemas(true),
        ["conformance", rest @ ..] => conformance::Options::parse(rest).and_then(|o| conformance::run(&o)),
        ["new-provider", rest @ ..] => scaffold::run(rest),
        ["scaffold-check"] => scaffold::self_check(),
        ["bench-sync", rest @ ..] => bench::run_bench(rest),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown arguments: {}\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run(step: &str, mut command: Command) -> Result<(), String> {
    eprintln!("xtask: == {step}");
    let status = command.status().map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{step} failed ({status})")) }
}

fn ci() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    run("cargo clippy -D warnings", clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    run("cargo test --workspace", test)?;

    schemas(true)?;

    eprintln!("xtask: == cargo xtask conformance --check");
    conformance::run(&conformance::Options { check: true, ..conformance::Options::default() })?;

    eprintln!("xtask: == new-provider scaffold check");
    scaffold::self_check()?;

    let deny_installed =
        cargo().args(["deny", "--version"]).output().map(|output| output.status.success()).unwrap_or(false);
    if deny_installed {
        // Advisories need the advisory database from the network, which CI does not have:
        // check what the lockfile alone decides.
        let mut deny = cargo();
        deny.args(["deny", "check", "bans", "licenses", "sources"]);
        run("cargo deny check bans licenses sources", deny)?;
    } else {
        eprintln!("xtask: == cargo deny: not installed, skipped (cargo install cargo-deny to run it)");
    }
    eprintln!("xtask: ci passed");
    Ok(())
}

fn schemas(check: bool) -> Result<(), String> {
    let root = workspace_root();
    let published = root.join("docs/schemas");
    let target = if check { root.join("target/xtask/schemas") } else { published.clone() };
    if check {
        // Start from an empty directory so a schema that was removed is noticed.
        let _ = std::fs::remove_dir_all(&target);
    }
    let mut generate = cargo();
    generate.args(["run", "--quiet", "--locked", "-p", "cw", "--", "admit", "schemas", "--out-dir"]);
    generate.arg(&target);
    run("generate schemas", generate)?;
    if !check {
        eprintln!("xtask: wrote {}", published.display());
        return Ok(());
    }
    let stale = compare_dirs(&published, &target)?;
    if stale.is_empty() {
        eprintln!("xtask: docs/schemas is up to date");
        Ok(())
    } else {
        Err(format!("docs/schemas is out of date ({}); run `cargo xtask schemas`", stale.join(", ")))
    }
}

/// Names of files that differ, or exist on one side only.
fn compare_dirs(published: &Path, fresh: &Path) -> Result<Vec<String>, String> {
    let list = |dir: &Path| -> Result<BTreeSet<String>, String> {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                Ok(entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(format!("cannot list {}: {e}", dir.display())),
        }
    };
    let names: BTreeSet<String> = list(published)?.union(&list(fresh)?).cloned().collect();
    Ok(names
        .into_iter()
        .filter(|name| std::fs::read(published.join(name)).ok() != std::fs::read(fresh.join(name)).ok())
        .collect())
}
