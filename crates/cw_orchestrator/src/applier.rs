//! The applier's accounting (CONTRACTS §3, "Applier"): what one write call's [`WriteResult`]
//! proves about the items sent. Pure, so every rule is tested on its own; the run layer
//! ([`crate::run`]) sends the chunks through the pal pipeline and uses these verdicts.
//!
//! - `confirmed_keys`: exact. An item is confirmed when a key names its entry key or its
//!   canonical key (providers report canonical keys; for history that confirms every play of the
//!   title sent in the chunk, which is what such a provider means).
//! - a `confirmed` count without keys: it confirms items only up to the count, and only when it
//!   covers the whole chunk and no item is reported unresolved: the applier cannot know *which*
//!   items a smaller count, or a count next to unresolved items, means. Such items are
//!   `unconfirmed`: counted, not attributed (neither baselined nor blackboxed).
//! - `{ok: true}` with neither: nothing is confirmed, and a warning says the provider gave no
//!   evidence.
//! - unresolved items are attributed to the items sent by a shared id token; unresolved items
//!   without ids are a provider bug ([`crate::guards::unresolved_without_ids`]).

use std::collections::BTreeSet;

use admit_core::{Finding, Severity};
use pal::inventory::{Feature, InventoryItem, UnresolvedItem, WriteResult};
use pal::keys::{canonical_key, normalize_id_map};
use serde_json::json;

use crate::guards;
use crate::planner::PlannedItem;

/// Rule id of the applier's findings.
pub const APPLIER_RULE: &str = "cw.applier";

/// What one write call proved, by index into the chunk sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkVerdict {
    /// Items the provider confirmed.
    pub confirmed: Vec<usize>,
    /// Items the provider reported it could not apply, with its reason.
    pub unresolved: Vec<(usize, Option<String>)>,
    /// Items the response says nothing attributable about.
    pub unconfirmed: Vec<usize>,
    /// How many items a count-only response confirmed without naming them (already excluded
    /// from `confirmed`).
    pub counted_only: u64,
    /// Warnings about the response (no evidence, unresolved items without ids).
    pub findings: Vec<Finding>,
}

/// The tokens an item is known by: its canonical key and every normalised id (`ns:value`).
fn id_tokens(ids: &pal::inventory::Ids) -> BTreeSet<String> {
    normalize_id_map(ids).into_iter().map(|(ns, value)| format!("{ns}:{value}")).collect()
}

/// Judges the `result` of sending `chunk` (to `provider`, for `feature`).
pub fn judge(provider: &str, feature: Feature, chunk: &[PlannedItem], result: &WriteResult) -> ChunkVerdict {
    let mut verdict = ChunkVerdict::default();
    let mut unresolved_at: Vec<Option<Option<String>>> = vec![None; chunk.len()];
    let item_tokens: Vec<BTreeSet<String>> = chunk.iter().map(|p| id_tokens(&p.item.ids)).collect();
    for reported in &result.unresolved {
        let tokens = id_tokens(&reported.ids);
        if tokens.is_empty() {
            continue;
        }
        for (index, own) in item_tokens.iter().enumerate() {
            if !own.is_disjoint(&tokens) && unresolved_at[index].is_none() {
                unresolved_at[index] = Some(reported.reason.clone());
            }
        }
    }
    if let Some(finding) = guards::unresolved_without_ids(provider, feature, &result.unresolved) {
        verdict.findings.push(finding);
    }

    let confirmed_by_key: Option<Vec<bool>> = result.confirmed_keys.as_ref().map(|keys| {
        let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        chunk.iter().map(|p| keys.contains(p.key.as_str()) || keys.contains(canonical_key(&p.item).as_str())).collect()
    });
    let count_covers_all = result.confirmed_keys.is_none()
        && result.unresolved.is_empty()
        && result.confirmed.is_some_and(|n| n >= chunk.len() as u64);
    if result.confirmed_keys.is_none() {
        match result.confirmed {
            Some(n) if !count_covers_all => {
                verdict.counted_only = n.min(chunk.len() as u64);
                verdict.findings.push(warning(
                    provider,
                    feature,
                    format!(
                        "{provider} confirmed {n} of {} {feature} item(s) by count only{}: they cannot be attributed, \
                         so none is taken as confirmed",
                        chunk.len(),
                        if result.unresolved.is_empty() { "" } else { ", next to unresolved items" }
                    ),
                ));
            }
            None => verdict.findings.push(warning(
                provider,
                feature,
                format!(
                    "{provider} answered a {feature} write of {} item(s) with neither confirmed keys nor a count: \
                     nothing is taken as confirmed",
                    chunk.len()
                ),
            )),
            Some(_) => {}
        }
    }
    for (index, unresolved) in unresolved_at.into_iter().enumerate() {
        let confirmed = match &confirmed_by_key {
            Some(by_key) => by_key[index],
            None => count_covers_all,
        };
        match unresolved {
            // A provider that both confirms and rejects an item has told us nothing certain:
            // the rejection wins, so the item is retried rather than assumed written.
            Some(reason) => verdict.unresolved.push((index, reason)),
            None if confirmed => verdict.confirmed.push(index),
            None => verdict.unconfirmed.push(index),
        }
    }
    if result.confirmed_keys.is_some() && !result.ok && verdict.confirmed.len() < chunk.len() {
        verdict.findings.push(warning(
            provider,
            feature,
            format!("{provider} reported a failed {feature} write; unconfirmed items are retried next run"),
        ));
    }
    verdict
}

fn warning(provider: &str, feature: Feature, message: String) -> Finding {
    Finding {
        rule_id: APPLIER_RULE.to_owned(),
        severity: Severity::Warning,
        message,
        scope_id: None,
        evidence: Some(json!({ "provider": provider, "feature": feature })),
    }
}

/// The unresolved record of an item: its ids, so it can be tracked and retried.
pub fn unresolved_record(item: &InventoryItem, reason: Option<String>) -> UnresolvedItem {
    UnresolvedItem { ids: item.ids.clone(), reason, ..UnresolvedItem::default() }
}
