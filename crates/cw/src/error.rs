//! The binary's error type: every variant names the file, field or scope concerned.

use std::path::PathBuf;

use admit_core::ProviderError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("unknown scope `{scope}`; registered scopes: {known}")]
    UnknownScope { scope: String, known: String },
    #[error("{message}")]
    Usage { message: String },
    #[error("--{flag}: {message}")]
    Argument { flag: &'static str, message: String },
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("{message}")]
    Registry { message: String },
    #[error("cannot start the async runtime: {message}")]
    Runtime { message: String },
}
