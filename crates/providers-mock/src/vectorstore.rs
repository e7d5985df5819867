//! `mock_vectorstore` (and its twins `mock_vectorstore_a`, `mock_vectorstore_b`): documents
//! in insertion order, case-insensitive substring search.

use std::sync::{Mutex, PoisonError};

use admit_core::ProviderError;
use pal::vectorstore::{ActiveIndex, Document, IndexReceipt, SearchHit, VectorStore};
use pal::{Capability, HealthReport, async_trait};

use crate::faults::{AdapterSettings, FaultInjector};

/// The active index before any `swap`.
pub const INITIAL_INDEX: &str = "index-v1";

#[derive(Debug)]
struct State {
    active: String,
    /// In order of first insertion; re-indexing an id replaces it in place.
    docs: Vec<Document>,
    writes: u64,
}

/// An in-memory vector store. The three adapter names behave identically; only the name (and so
/// the error scope) differs, so one can shadow or replace another.
#[derive(Debug)]
pub struct MockVectorStore {
    name: &'static str,
    faults: FaultInjector,
    state: Mutex<State>,
}

impl Default for MockVectorStore {
    fn default() -> Self {
        MockVectorStore::new(AdapterSettings::default())
    }
}

impl MockVectorStore {
    /// The adapter names this type serves.
    pub const NAMES: [&'static str; 3] = ["mock_vectorstore", "mock_vectorstore_a", "mock_vectorstore_b"];

    /// `mock_vectorstore` with these settings.
    pub fn new(settings: AdapterSettings) -> Self {
        MockVectorStore::named("mock_vectorstore", settings)
    }

    /// A store under another adapter name (e.g. `mock_vectorstore_a`).
    pub fn named(name: &'static str, settings: AdapterSettings) -> Self {
        MockVectorStore {
            name,
            faults: FaultInjector::new(Capability::Vectorstore, name, settings.faults, settings.token),
            state: Mutex::new(State { active: INITIAL_INDEX.to_owned(), docs: Vec::new(), writes: 0 }),
        }
    }

    /// The adapter name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Fault injection.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// The documents, in insertion order.
    pub fn documents(&self) -> Vec<Document> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).docs.clone()
    }

    /// Calls that changed stored state: an `index` that added or changed a document, a `swap`
    /// to another index. A repeat that changes nothing is not counted.
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).writes
    }

    /// The active index name.
    pub fn active(&self) -> String {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).active.clone()
    }
}

#[async_trait]
impl VectorStore for MockVectorStore {
    async fn index(&self, docs: Vec<Document>) -> Result<IndexReceipt, ProviderError> {
        self.faults.before("index").await?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let indexed = docs.len() as u64;
        let mut changed = false;
        for doc in docs {
            match state.docs.iter_mut().find(|d| d.id == doc.id) {
                Some(existing) => {
                    changed |= *existing != doc;
                    *existing = doc;
                }
                None => {
                    changed = true;
                    state.docs.push(doc);
                }
            }
        }
        if changed {
            state.writes += 1;
        }
        Ok(IndexReceipt { indexed, index: state.active.clone() })
    }

    async fn search(&self, query: &str, k: usize) -> Result<Vec<SearchHit>, ProviderError> {
        self.faults.before("search").await?;
        let needle = query.to_lowercase();
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(state
            .docs
            .iter()
            .filter(|d| d.text.to_lowercase().contains(&needle))
            .take(k)
            .map(|d| SearchHit { id: d.id.clone(), text: d.text.clone(), score: 1.0 })
            .collect())
    }

    async fn swap(&self, target: &str) -> Result<ActiveIndex, ProviderError> {
        const OP: &str = "swap";
        self.faults.before(OP).await?;
        if target.is_empty() {
            return Err(self.faults.invalid(OP, "target index name is empty"));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.active != target {
            state.active = target.to_owned();
            state.writes += 1;
        }
        Ok(ActiveIndex { active: state.active.clone() })
    }

    async fn health(&self) -> HealthReport {
        self.faults.health().await
    }
}
