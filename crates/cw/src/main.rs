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

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// cw: make external systems safe to integrate and safe to swap.
#[derive(Debug, Parser)]
#[command(name = "cw", version, about, propagate_version = true)]
struct Cli {
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
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Admit(command) => admit::run(command).await,
            Command::Providers(args) => pal_cmd::providers(args).await,
            Command::Call(args) => pal_cmd::call(args).await,
            Command::Diff(args) => diff_cmd::diff(args).await,
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
