//! `ProviderRegistry`: providers by scope id.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::provider::Provider;
use crate::types::{ProviderDescriptor, ScopeId};

/// Why a provider could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A provider is already registered under this scope.
    #[error("a provider is already registered for scope `{scope_id}`")]
    DuplicateScope {
        /// The contested scope.
        scope_id: ScopeId,
    },
}

/// Providers keyed by scope id; iteration and listings are sorted by scope.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<ScopeId, Arc<dyn Provider>>,
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ProviderRegistry::default()
    }

    /// Registers `provider` under the scope its descriptor names; refuses a duplicate scope.
    pub fn register(&mut self, provider: Arc<dyn Provider>) -> Result<(), RegistryError> {
        let scope_id = provider.scope_id();
        if self.providers.contains_key(&scope_id) {
            return Err(RegistryError::DuplicateScope { scope_id });
        }
        self.providers.insert(scope_id, provider);
        Ok(())
    }

    /// The provider for `scope_id`.
    pub fn get(&self, scope_id: &ScopeId) -> Option<&Arc<dyn Provider>> {
        self.providers.get(scope_id)
    }

    /// Registered scopes, sorted.
    pub fn scopes(&self) -> impl Iterator<Item = &ScopeId> {
        self.providers.keys()
    }

    /// Every provider's descriptor, sorted by scope.
    pub fn descriptors(&self) -> Vec<ProviderDescriptor> {
        self.providers.values().map(|p| p.describe()).collect()
    }
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry").field("scopes", &self.providers.keys().collect::<Vec<_>>()).finish()
    }
}
