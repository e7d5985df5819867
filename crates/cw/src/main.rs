//! `cw` is the command line of the workspace: the `cw admit …` commands over the admit
//! protocol (describe, pack-hash, snapshot, verify, check, schemas), and `cw providers` /
//! `cw call` over the provider abstraction layer. It is the only crate that
//! knows every provider crate; it wires them into registries and prints results as JSON with
//! sorted keys and a trailing newline.
//!
//! It must never hold protocol or provider logic of its own: parsing arguments, reading files,
//! calling libraries and printing is all it does.

mod admit;
mod diff_cmd;
mod error;
mod output;
mod pal_cmd;
mod providers;
mod sync_cmd;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// cw allocates and frees millions of small strings for a large library; mimalloc does that
/// with less work and returns memory to the system less eagerly than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cw: make external systems safe to integrate and safe to swap.
#[derive(Debug, Parser)]
#[command(name = "cw", version, about, propagate_version = true)]
struct Cli {
    /// The sync configuration (`cw.yaml`; default: `./cw.yaml`).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The state directory (default: the config's `state_dir`, else the platform's data
    /// directory).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Print JSON (sorted keys, trailing newline) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The admit provider protocol: describe, snapshot, verify and check artifacts.
    #[command(subcommand)]
    Admit(admit::AdmitCommand),
    /// List the capability → adapter mapping of the provider registry, with health.
    Providers(pal_cmd::ProvidersArgs),
    /// Make one call through the provider pipeline and print its result and metrics event.
    Call(pal_cmd::CallArgs),
    /// Compare two inventories: what is only on each side, and how many items match.
    Diff(diff_cmd::DiffArgs),
    /// Sync the pairs of the config: health, snapshot, plan, guards, apply, verify, commit.
    Sync(sync_cmd::SyncArgs),
    /// Plan a sync without running it; print (and write) the plan, its hash and the guards' findings.
    Plan(sync_cmd::PlanArgs),
    /// Approve a plan written by `cw plan --out`.
    Approve(sync_cmd::PlanFileArgs),
    /// Execute exactly an approved plan; refuse it when stale, unapproved or already applied.
    Apply(sync_cmd::PlanFileArgs),
    /// Pairs, their last runs, unresolved and blackbox counts.
    Status,
    /// The items that keep failing.
    #[command(subcommand)]
    Blackbox(sync_cmd::BlackboxCommand),
}

/// Exit codes shared by every command.
pub(crate) mod exit {
    /// Success (for `check`: admissible; for `verify`: valid).
    pub(crate) const OK: u8 = 0;
    /// The command ran and the answer is "no" (inadmissible, invalid artifact).
    pub(crate) const REFUSED: u8 = 1;
    /// The command could not do its job (bad input, unreadable file, provider error).
    pub(crate) const ERROR: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report(&CliError::Runtime { message: e.to_string() }),
    };
    let globals = sync_cmd::Globals { config: cli.config, state_dir: cli.state_dir, json: cli.json };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Admit(command) => admit::run(command).await,
            Command::Providers(args) => pal_cmd::providers(args).await,
            Command::Call(args) => pal_cmd::call(args).await,
            Command::Diff(args) => diff_cmd::diff(globals, args).await,
            Command::Sync(args) => sync_cmd::sync(globals, args).await,
            Command::Plan(args) => sync_cmd::plan(globals, args).await,
            Command::Approve(args) => sync_cmd::approve(globals, args).await,
            Command::Apply(args) => sync_cmd::apply(globals, args).await,
            Command::Status => sync_cmd::status(globals).await,
            Command::Blackbox(command) => sync_cmd::blackbox(globals, command).await,
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => report(&error),
    }
}

fn report(error: &CliError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(exit::ERROR)
}
