//! `cw admit …`: the admit protocol from the command line.

use std::path::{Path, PathBuf};

use admit_core::{
    DigestAlgorithm, FactsBundle, Provider, ProviderDescriptor, ProviderRegistry, Ruleset, ScopeId, SnapshotRequest,
    SnapshotResult, Verdict, check_ruleset, provider_pack_hash, to_canonical_cbor, verify_artifact_bytes,
};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::exit;
use crate::output::{emit, parse_json, read_bytes, read_json, to_json_text, write_file};
use crate::providers::admit_registry;

#[derive(Debug, Subcommand)]
pub(crate) enum AdmitCommand {
    /// Print the descriptors of the registered scopes (one descriptor when SCOPE is given).
    Describe {
        /// Only this scope, e.g. `ingest.dir`.
        scope: Option<String>,
    },
    /// Print the identity digest of a provider descriptor (JSON file) as the last line.
    PackHash {
        /// A `ProviderDescriptor` JSON file (e.g. the output of `cw admit describe ingest.dir`).
        file: PathBuf,
        /// The digest algorithm.
        #[arg(long, value_enum, default_value_t = Algorithm::Blake3)]
        digest: Algorithm,
    },
    /// Snapshot a scope; print the result (or write it with --out) and the snapshot hash last.
    Snapshot {
        /// The scope to snapshot, e.g. `ingest.dir`.
        scope: String,
        /// The directory to snapshot (`ingest.dir`).
        #[arg(long)]
        root: PathBuf,
        /// Record this RFC 3339 time as `created_at` (metadata; never part of the hash).
        #[arg(long)]
        created_at: Option<String>,
        /// Write the `SnapshotResult` here instead of stdout: JSON, or canonical CBOR for `*.cbor`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The digest algorithm for the snapshot and file digests.
        #[arg(long, value_enum, default_value_t = Algorithm::Blake3)]
        digest: Algorithm,
    },
    /// Re-check an artifact's hash and canonical bytes. Exit 0 valid, 1 invalid, 2 unreadable.
    Verify {
        /// A facts bundle, snapshot result, plan bundle or plan result (JSON or canonical CBOR).
        file: PathBuf,
    },
    /// Evaluate a ruleset against facts bundles; print the witness.
    /// Exit 0 admissible, 1 inadmissible, 2 error.
    Check {
        /// The ruleset JSON: `{"rules":[{"rule_id","severity","scope_id","predicate","params"}]}`.
        #[arg(long)]
        ruleset: PathBuf,
        /// Facts bundles or snapshot results (JSON), comma-separated or repeated.
        #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
    },
    /// Print (or write, one file per artifact) the JSON Schemas of the protocol's artifacts.
    Schemas {
        /// Write `<artifact>.schema.json` files into this directory.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Digest algorithms, as command-line values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Algorithm {
    /// BLAKE3 (default).
    Blake3,
    /// SHA-256 (compatible with the reference implementation).
    Sha256,
}

impl From<Algorithm> for DigestAlgorithm {
    fn from(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Blake3 => DigestAlgorithm::Blake3,
            Algorithm::Sha256 => DigestAlgorithm::Sha256,
        }
    }
}

pub(crate) async fn run(command: AdmitCommand) -> Result<u8, CliError> {
    let registry = admit_registry();
    match command {
        AdmitCommand::Describe { scope } => describe(&registry, scope.as_deref()),
        AdmitCommand::PackHash { file, digest } => pack_hash(&file, digest.into()),
        AdmitCommand::Snapshot { scope, root, created_at, out, digest } => {
            snapshot(&registry, &scope, &root, created_at, out.as_deref(), digest.into()).await
        }
        AdmitCommand::Verify { file } => verify(&file),
        AdmitCommand::Check { ruleset, inputs } => check(&registry, &ruleset, &inputs).await,
        AdmitCommand::Schemas { out_dir } => schemas(out_dir.as_deref()),
    }
}

fn provider<'r>(registry: &'r ProviderRegistry, scope: &str) -> Result<&'r std::sync::Arc<dyn Provider>, CliError> {
    registry.get(&ScopeId::new(scope)).ok_or_else(|| CliError::UnknownScope {
        scope: scope.to_owned(),
        known: registry.scopes().map(ScopeId::as_str).collect::<Vec<_>>().join(", "),
    })
}

fn describe(registry: &ProviderRegistry, scope: Option<&str>) -> Result<u8, CliError> {
    match scope {
        Some(scope) => emit(&to_json_text(&provider(registry, scope)?.describe())),
        None => emit(&to_json_text(&registry.descriptors())),
    }
    Ok(exit::OK)
}

fn pack_hash(file: &Path, algorithm: DigestAlgorithm) -> Result<u8, CliError> {
    let descriptor: ProviderDescriptor = read_json(file)?;
    let digest = provider_pack_hash(&descriptor, algorithm)
        .map_err(|e| CliError::Invalid { path: file.to_path_buf(), message: e.to_string() })?;
    emit(&format!("{digest}\n"));
    Ok(exit::OK)
}

async fn snapshot(
    registry: &ProviderRegistry,
    scope: &str,
    root: &Path,
    created_at: Option<String>,
    out: Option<&Path>,
    algorithm: DigestAlgorithm,
) -> Result<u8, CliError> {
    let provider = provider(registry, scope)?;
    let root_text = root.to_str().ok_or_else(|| CliError::Argument {
        flag: "root",
        message: format!("{} is not valid UTF-8", root.display()),
    })?;
    let mut params = json!({ "root": root_text, "digest": algorithm.prefix() });
    if let Some(created_at) = created_at {
        params["created_at"] = Value::String(created_at);
    }
    let result = provider.snapshot(SnapshotRequest { scope_id: ScopeId::new(scope), params }).await?;
    let warnings = result.witness.findings.len();
    if warnings > 0 {
        eprintln!("warning: {warnings} path(s) could not be read; see the witness findings");
    }
    let hash = result.facts_bundle.snapshot_hash;
    match out {
        Some(path) if path.extension().is_some_and(|e| e == "cbor") => {
            let value = serde_json::to_value(&result)
                .map_err(|e| CliError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
            let bytes = to_canonical_cbor(&value)
                .map_err(|e| CliError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
            write_file(path, &bytes)?;
        }
        Some(path) => write_file(path, to_json_text(&result).as_bytes())?,
        None => emit(&to_json_text(&result)),
    }
    emit(&format!("{hash}\n"));
    Ok(exit::OK)
}

fn verify(file: &Path) -> Result<u8, CliError> {
    let bytes = read_bytes(file)?;
    let result = verify_artifact_bytes(&bytes)
        .map_err(|e| CliError::Invalid { path: file.to_path_buf(), message: e.to_string() })?;
    emit(&to_json_text(&result));
    if result.valid {
        eprintln!("{}: valid (hash matches, canonical bytes match)", file.display());
        Ok(exit::OK)
    } else {
        for finding in &result.witness.findings {
            eprintln!("{}: invalid: {}", file.display(), finding.message);
        }
        Ok(exit::REFUSED)
    }
}

/// Reads a facts bundle, or the bundle inside a snapshot result.
fn read_input_bundle(path: &Path) -> Result<FactsBundle, CliError> {
    let bytes = read_bytes(path)?;
    let value: Value = parse_json(path, &bytes)?;
    if value.get("facts_bundle").is_some() {
        Ok(parse_json::<SnapshotResult>(path, &bytes)?.facts_bundle)
    } else {
        parse_json(path, &bytes)
    }
}

async fn check(registry: &ProviderRegistry, ruleset: &Path, inputs: &[PathBuf]) -> Result<u8, CliError> {
    let ruleset: Ruleset = read_json(ruleset)?;
    let bundles = inputs.iter().map(|path| read_input_bundle(path)).collect::<Result<Vec<_>, _>>()?;
    let witness = check_ruleset(Some(registry), &ruleset, &bundles, DigestAlgorithm::default()).await;
    emit(&to_json_text(&witness));
    for error in &witness.errors {
        eprintln!("error: {error}");
    }
    Ok(match witness.verdict {
        Verdict::Admissible => exit::OK,
        Verdict::Inadmissible => exit::REFUSED,
        Verdict::Error => exit::ERROR,
    })
}

fn schemas(out_dir: Option<&Path>) -> Result<u8, CliError> {
    let schemas = admit_core::artifact_schemas();
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| CliError::Write { path: dir.to_path_buf(), source })?;
            for (name, schema) in &schemas {
                write_file(&dir.join(format!("{name}.schema.json")), to_json_text(schema).as_bytes())?;
            }
        }
        None => {
            let all: serde_json::Map<String, Value> =
                schemas.into_iter().map(|(name, schema)| (name.to_owned(), schema)).collect();
            emit(&to_json_text(&all));
        }
    }
    Ok(exit::OK)
}
