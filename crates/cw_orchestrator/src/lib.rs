//! `cw_orchestrator` is the sync engine for the inventory capability: it keeps watchlists,
//! ratings, history, progress and playlists in step between media services without ever
//! losing a user's library. Snapshots are ingested once (ids normalised, canonical keys, one
//! alias index per side), the planner turns two sides and their baselines into a plan, the
//! guardrails decide what may run, and the state store remembers baselines, checkpoints,
//! tombstones and runs durably.
//!
//! It must never name a vendor: vendor quirks reach it only as declared capabilities.

pub mod applier;
mod codec;
pub mod config;
pub mod guards;
pub mod ingest;
pub mod planner;
pub mod run;
pub mod state;
