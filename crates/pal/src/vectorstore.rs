//! The vector store capability.

use admit_core::ProviderError;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::health::HealthReport;

/// A document to index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// Document id; re-indexing the same id replaces it.
    pub id: String,
    /// The text.
    pub text: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: Extra,
}

/// Proof of indexing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IndexReceipt {
    /// Documents written.
    pub indexed: u64,
    /// The index written to.
    pub index: String,
}

/// A search hit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    /// Document id.
    pub id: String,
    /// Document text.
    pub text: String,
    /// Relevance; higher is better.
    pub score: f64,
}

/// Which index serves queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActiveIndex {
    /// The active index name.
    pub active: String,
}

/// A vector store.
///
/// ```
/// use pal::vectorstore::{Document, VectorStore};
/// async fn reindex(store: &dyn VectorStore) -> Result<usize, pal::ProviderError> {
///     store.index(vec![Document { id: "d1".into(), text: "Hello".into(), ..Default::default() }]).await?;
///     store.swap("index-v2").await?;
///     Ok(store.search("hello", 5).await?.len())
/// }
/// ```
#[async_trait]
pub trait VectorStore: Send + Sync + std::fmt::Debug {
    /// Indexes documents (idempotent by id).
    async fn index(&self, docs: Vec<Document>) -> Result<IndexReceipt, ProviderError>;
    /// The best `k` hits for `query`.
    async fn search(&self, query: &str, k: usize) -> Result<Vec<SearchHit>, ProviderError>;
    /// Makes `target` the active index (idempotent).
    async fn swap(&self, target: &str) -> Result<ActiveIndex, ProviderError>;
    /// Health.
    async fn health(&self) -> HealthReport {
        HealthReport::ok()
    }
}
