//! The one place that knows which providers exist: admit providers and PAL adapter factories.

use std::sync::Arc;

use admit_core::ProviderRegistry;
use providers_ingest_dir::IngestDirProvider;

/// Every admit provider this build ships, registered by scope.
pub(crate) fn admit_registry() -> ProviderRegistry {
    let mut registry = ProviderRegistry::new();
    let providers: [Arc<dyn admit_core::Provider>; 1] = [Arc::new(IngestDirProvider::new())];
    for provider in providers {
        // Scopes are distinct by construction; a clash is a bug caught by the tests.
        if let Err(e) = registry.register(provider) {
            eprintln!("warning: {e}");
        }
    }
    registry
}

/// Every PAL adapter factory this build ships.
pub(crate) fn adapter_factories() -> Vec<pal::AdapterFactory> {
    #[allow(unused_mut, reason = "provider crates are registered below by `cargo xtask new-provider`")]
    let mut factories = providers_mock::factories();
    // xtask new-provider: registrations (one line per provider crate, kept sorted)
    factories.extend(providers_local::factories());
    factories
}
