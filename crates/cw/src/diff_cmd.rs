//! `cw diff LEFT RIGHT`: what is only on one side, and how many items match (by canonical key
//! or a shared strong id), using the sync engine's ingest so `diff` and `sync` agree.

use std::path::Path;
use std::sync::Arc;

use clap::Args;
use cw_orchestrator::config::CwConfig;
use cw_orchestrator::ingest::{Entry, Inventory};
use pal::inventory::{Feature, InventoryItem, InventoryProvider};
use pal::secret::{Redactor, Secret};
use pal::{CallSpec, CallTarget, Capability, Pipeline};
use providers_local::file::{self, FileFormat, ItemOrder};
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::output::emit_all;
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

#[derive(Debug)]
struct OnlyOneSide {
    key: String,
    item: InventoryItem,
}

/// Written as `{"item": …, "key": …}`: keys in sorted order, as
/// [`to_json_text`](crate::output::to_json_text) writes them.
impl Serialize for OnlyOneSide {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut entry = serializer.serialize_struct("OnlyOneSide", 2)?;
        entry.serialize_field("item", &self.item.sorted_keys())?;
        entry.serialize_field("key", &self.key)?;
        entry.end()
    }
}

/// One side's listing as it stands in the diff's JSON: a pretty array, its lines after the
/// first indented as a field of the diff's object. Written straight, with sorted keys, on the
/// thread that found the listing: building a large diff's value took longer than comparing its
/// two sides.
fn listing_json(listing: &[OnlyOneSide]) -> String {
    // A JSON string holds no raw line break: each one stands between two tokens.
    serde_json::to_string_pretty(listing).unwrap_or_default().replace('\n', "\n  ")
}

/// What [`to_json_text`](crate::output::to_json_text) writes for
/// `{"matched": …, "only_left": […], "only_right": […]}`, given the listings'
/// [`listing_json`], in pieces: written one after the other, never copied into one text.
fn diff_json<'a>(matched: &'a str, only_left: &'a str, only_right: &'a str) -> [&'a str; 7] {
    ["{\n  \"matched\": ", matched, ",\n  \"only_left\": ", only_left, ",\n  \"only_right\": ", only_right, "\n}\n"]
}

/// One side's listing for people: a heading, then a line per item.
fn listing_text(name: &str, listing: &[OnlyOneSide]) -> String {
    let mut text = format!("only in {name} ({}):\n", listing.len());
    for entry in listing {
        let title = entry.item.title.as_deref().unwrap_or("");
        let year = entry.item.year.map(|y| format!(" ({y})")).unwrap_or_default();
        text.push_str(&format!("  {}  {title}{year}\n", entry.key));
    }
    text
}

/// A side of the diff, opened.
enum Side {
    /// An inventory file named on the command line, read here with the `file` adapter's parser
    /// (the same items, checks and one-item-per-key rule) rather than through a provider call:
    /// a local read has nothing for the call pipeline to time out, retry or rate-limit, and
    /// each item becomes its index entry on the thread that parsed it. Indexed as soon as it
    /// is read, while the other side may still be being read.
    File { feature: Feature, side: Inventory },
    /// A provider instance of the config, and its secrets.
    Provider { provider: Arc<dyn InventoryProvider>, secrets: Vec<Secret> },
}

impl Side {
    /// The side `name` names: a provider instance of the config first, else a file.
    fn open(name: &str, config: Option<&CwConfig>) -> Result<Side, CliError> {
        if let Some(instance) = config.and_then(|c| c.providers.get(name)) {
            let (provider, secrets) = inventory_instance(name, &instance.adapter, &instance.settings)
                .map_err(|message| CliError::Usage { message: format!("`{name}`: {message}") })?;
            return Ok(Side::Provider { provider, secrets });
        }
        if Path::new(name).is_file() {
            let to_entry = |feature, item, canonical_key: &str| Entry::of_normalized(feature, item, canonical_key);
            let (_, feature, entries) =
                file::load_with(Path::new(name), FileFormat::Auto, None, ItemOrder::Key, &to_entry)
                    .map_err(|e| CliError::Usage { message: format!("`{name}`: {e}") })?;
            return Ok(Side::File { feature, side: Inventory::from_entries(feature, entries) });
        }
        let known = config.map(|c| c.providers.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
        Err(CliError::Usage {
            message: if known.is_empty() {
                format!("`{name}` is not an inventory file (give --config to use provider instances)")
            } else {
                format!("`{name}` is neither a provider instance of the config ({known}) nor an inventory file")
            },
        })
    }

    /// The features the side holds, in the order the default feature is chosen from.
    fn features(&self) -> Vec<Feature> {
        match self {
            Side::File { feature, .. } => vec![*feature],
            Side::Provider { provider, .. } => provider.features().list(),
        }
    }

    /// The side's items of `feature` (a provider's snapshot, through the call pipeline), ready
    /// to be indexed.
    async fn read(self, pipeline: &Pipeline, feature: Feature) -> Result<Read, CliError> {
        match self {
            Side::File { side, .. } => Ok(Read::Indexed(side)),
            Side::Provider { provider, .. } => {
                let op = Capability::Inventory.op("build_index").map_err(|message| CliError::Usage { message })?;
                let spec = CallSpec::new(CallTarget::new(Capability::Inventory, provider.name()), op);
                Ok(Read::Items(pipeline.call(&spec, || provider.build_index(feature)).await?))
            }
        }
    }
}

/// A side's items of the feature compared.
enum Read {
    Items(Vec<InventoryItem>),
    Indexed(Inventory),
}

impl Read {
    fn index(self, feature: Feature) -> Inventory {
        match self {
            Read::Items(items) => Inventory::from_items(feature, items),
            Read::Indexed(side) => side,
        }
    }
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
    // Opening a file reads it: the two sides are opened on their own threads.
    let (left, right) = both(|| Side::open(left_name, config.as_ref()), || Side::open(right_name, config.as_ref()));
    let (left, right) = (left?, right?);
    let feature = match &args.feature {
        Some(name) => name.parse::<Feature>().map_err(|message| CliError::Usage { message })?,
        None => left.features().into_iter().find(|f| right.features().contains(f)).ok_or_else(|| CliError::Usage {
            message: format!("`{left_name}` and `{right_name}` share no feature; give --feature"),
        })?,
    };
    for (name, side) in [(&left_name, &left), (&right_name, &right)] {
        if !side.features().contains(&feature) {
            return Err(CliError::Usage { message: format!("`{name}` does not hold the {feature} feature") });
        }
    }
    let secrets = [&left, &right].into_iter().flat_map(|side| match side {
        Side::Provider { secrets, .. } => secrets.as_slice(),
        Side::File { .. } => &[],
    });
    let pipeline = Pipeline::default();
    pipeline.set_redactor(Redactor::new(secrets));
    let left = left.read(&pipeline, feature).await?;
    let right = right.read(&pipeline, feature).await?;
    let (left_side, right_side) = both(|| left.index(feature), || right.index(feature));
    // Each side's listing is found and written out on a thread of its own.
    let listing = |this: &Inventory, other: &Inventory, name: &str| {
        let only = only_in(this, other);
        let text = if globals.json { listing_json(&only) } else { listing_text(name, &only) };
        (only.len(), text)
    };
    let ((only_left, left_text), (_, right_text)) =
        both(|| listing(&left_side, &right_side, left_name), || listing(&right_side, &left_side, right_name));
    let matched = left_side.len() - only_left;
    // The process ends after printing: the OS takes the inventories back faster than freeing
    // them item by item would.
    std::mem::forget((left_side, right_side));
    if globals.json {
        emit_all(&diff_json(&matched.to_string(), &left_text, &right_text));
    } else {
        emit_all(&[&left_text, &right_text, &format!("matched: {matched} ({feature})\n")]);
    }
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

#[cfg(test)]
mod tests {
    use pal::inventory::ItemType;

    use super::*;
    use crate::output::to_json_text;

    /// The diff written straight is what its value writes (sorted keys, vendor payloads among
    /// the fields, strings holding line breaks, an empty listing).
    #[test]
    fn the_json_text_is_the_value_text() {
        let mut item = InventoryItem {
            item_type: ItemType::Episode,
            title: Some("Pilot\n  \"one\"".to_owned()),
            year: Some(2008),
            ids: [("tvdb", "349232"), ("imdb", "tt0959621")].into_iter().collect(),
            show_ids: Some([("tvdb", "81189")].into_iter().collect()),
            season: Some(1),
            episode: Some(1),
            rating: Some(9),
            rated_at: Some("2024-01-01T00:00:00Z".to_owned()),
            ..InventoryItem::default()
        };
        item.extra.insert("plex".to_owned(), serde_json::json!({"ratingKey": "5", "guid": "x\ny", "list": [1, {}]}));
        item.extra.insert("_cw_transient".to_owned(), serde_json::json!(true));
        let other = || OnlyOneSide { key: "title:b".to_owned(), item: InventoryItem::default() };
        let left = vec![OnlyOneSide { key: "tvdb:349232".to_owned(), item }, other()];
        for right in [vec![], vec![other()]] {
            let value = serde_json::json!({"matched": 7, "only_left": left, "only_right": right});
            assert_eq!(diff_json("7", &listing_json(&left), &listing_json(&right)).concat(), to_json_text(&value));
        }
    }
}
