//! `cw diff LEFT RIGHT`: what is only on one side, and how many items match (by canonical key
//! or a shared strong id), using the sync engine's ingest so `diff` and `sync` agree.

use std::path::Path;
use std::sync::Arc;

use clap::Args;
use cw_orchestrator::config::CwConfig;
use cw_orchestrator::ingest::Inventory;
use pal::inventory::{Feature, InventoryItem, InventoryProvider};
use pal::secret::{Redactor, Secret};
use pal::{CallSpec, CallTarget, Capability, Pipeline};
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::output::{emit, to_json_text};
use crate::providers::inventory_instance;
use crate::sync_cmd::Globals;

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// A provider instance of the config, or an inventory file (JSON, IMDb CSV export).
    left: String,
    /// A provider instance of the config, or an inventory file.
    right: String,
    /// The feature to compare (default: the first both sides support).
    #[arg(long)]
    feature: Option<String>,
}

#[derive(Debug, Serialize)]
struct OnlyOneSide {
    key: String,
    item: InventoryItem,
}

#[derive(Debug, Serialize)]
struct Diff {
    only_left: Vec<OnlyOneSide>,
    only_right: Vec<OnlyOneSide>,
    matched: usize,
}

/// The inventory provider `side` names (a config instance first, else a file), and its secrets.
fn provider(side: &str, config: Option<&CwConfig>) -> Result<(Arc<dyn InventoryProvider>, Vec<Secret>), CliError> {
    let (adapter, settings) = match config.and_then(|c| c.providers.get(side)) {
        Some(instance) => (instance.adapter.clone(), instance.settings.clone()),
        None if Path::new(side).is_file() => {
            let mut settings = serde_json::Map::new();
            settings.insert("path".to_owned(), serde_json::Value::String(side.to_owned()));
            ("file".to_owned(), settings)
        }
        None => {
            let known = config.map(|c| c.providers.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
            return Err(CliError::Usage {
                message: if known.is_empty() {
                    format!("`{side}` is not an inventory file (give --config to use provider instances)")
                } else {
                    format!("`{side}` is neither a provider instance of the config ({known}) nor an inventory file")
                },
            });
        }
    };
    let (provider, secrets) = inventory_instance(side, &adapter, &settings)
        .map_err(|message| CliError::Usage { message: format!("`{side}`: {message}") })?;
    Ok((provider, secrets))
}

async fn snapshot(
    pipeline: &Pipeline,
    provider: &Arc<dyn InventoryProvider>,
    feature: Feature,
) -> Result<Vec<InventoryItem>, CliError> {
    let op = Capability::Inventory.op("build_index").map_err(|message| CliError::Usage { message })?;
    let spec = CallSpec::new(CallTarget::new(Capability::Inventory, provider.name()), op);
    Ok(pipeline.call(&spec, || provider.build_index(feature)).await?)
}

fn only_in(this: &Inventory, other: &Inventory) -> Vec<OnlyOneSide> {
    let entries: Vec<_> = this.entries().collect();
    let matched = other.any_matches(&entries, |_, _, _| true);
    entries
        .into_iter()
        .zip(matched)
        .filter(|(_, matched)| !matched)
        .map(|(entry, _)| OnlyOneSide { key: entry.key().to_owned(), item: entry.item() })
        .collect()
}

/// With `--json`, prints `{"only_left":[…],"only_right":[…],"matched":N}`; `--config` names the
/// `cw.yaml` whose provider instances LEFT and RIGHT may name.
pub(crate) async fn diff(globals: Globals, args: DiffArgs) -> Result<u8, CliError> {
    let config = match &globals.config {
        Some(path) => Some(CwConfig::load(path).map_err(|e| CliError::Usage { message: e.to_string() })?),
        None => None,
    };
    let (left_name, right_name) = (&args.left, &args.right);
    // Opening a file inventory parses it: the two sides are read on their own threads.
    let (left, right) = both(|| provider(left_name, config.as_ref()), || provider(right_name, config.as_ref()));
    let ((left, mut secrets), (right, right_secrets)) = (left?, right?);
    secrets.extend(right_secrets);
    let feature = match &args.feature {
        Some(name) => name.parse::<Feature>().map_err(|message| CliError::Usage { message })?,
        None => left.features().list().into_iter().find(|f| right.features().supports(*f)).ok_or_else(|| {
            CliError::Usage { message: format!("`{left_name}` and `{right_name}` share no feature; give --feature") }
        })?,
    };
    for (name, provider) in [(&left_name, &left), (&right_name, &right)] {
        if !provider.features().supports(feature) {
            return Err(CliError::Usage { message: format!("`{name}` does not hold the {feature} feature") });
        }
    }
    let pipeline = Pipeline::default();
    pipeline.set_redactor(Redactor::new(secrets.iter()));
    let left_items = snapshot(&pipeline, &left, feature).await?;
    let right_items = snapshot(&pipeline, &right, feature).await?;
    let (left_side, right_side) =
        both(|| Inventory::from_items(feature, left_items), || Inventory::from_items(feature, right_items));
    let (only_left, only_right) = both(|| only_in(&left_side, &right_side), || only_in(&right_side, &left_side));
    let matched = left_side.len() - only_left.len();
    // The process ends after printing: the OS takes the inventories back faster than freeing
    // them item by item would.
    std::mem::forget((left_side, right_side));
    let result = Diff { only_left, only_right, matched };
    if globals.json {
        emit(&to_json_text(&result));
        return Ok(exit::OK);
    }
    let mut text = String::new();
    for (name, items) in [(&left_name, &result.only_left), (&right_name, &result.only_right)] {
        text.push_str(&format!("only in {name} ({}):\n", items.len()));
        for entry in items {
            let title = entry.item.title.as_deref().unwrap_or("");
            let year = entry.item.year.map(|y| format!(" ({y})")).unwrap_or_default();
            text.push_str(&format!("  {}  {title}{year}\n", entry.key));
        }
    }
    text.push_str(&format!("matched: {} ({feature})\n", result.matched));
    emit(&text);
    Ok(exit::OK)
}

/// Runs `left` and `right` on two threads and returns both results.
fn both<L: Send, R: Send>(left: impl FnOnce() -> L + Send, right: impl FnOnce() -> R + Send) -> (L, R) {
    std::thread::scope(|scope| {
        let right = scope.spawn(right);
        let left = left();
        (left, right.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}
