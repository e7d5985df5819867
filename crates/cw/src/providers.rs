//! The one place that knows which providers exist: admit providers and PAL adapter factories.

use std::sync::Arc;

use admit_core::ProviderRegistry;
use pal::inventory::InventoryProvider;
use pal::{AdapterHandle, Capability};
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

/// Builds the inventory provider instance `name` with `adapter` and its settings; also returns
/// the secrets it holds (from its settings and the factory), for the pipeline's redactor.
pub(crate) fn inventory_instance(
    name: &str,
    adapter: &str,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Arc<dyn InventoryProvider>, Vec<pal::secret::Secret>), String> {
    let factories = adapter_factories();
    let Some(factory) = factories.iter().find(|f| f.name == adapter && f.capability == Capability::Inventory) else {
        let known: Vec<&str> =
            factories.iter().filter(|f| f.capability == Capability::Inventory).map(|f| f.name).collect();
        return Err(format!(
            "provider `{name}`: `{adapter}` is not an inventory adapter (inventory adapters: {})",
            known.join(", ")
        ));
    };
    let settings = serde_json::Value::Object(settings.clone());
    let mut secrets = pal::secrets_in(&settings);
    let redactor = pal::secret::Redactor::new(secrets.iter());
    let built = (factory.build)(&settings)
        .map_err(|message| format!("provider `{name}` ({adapter}): {}", redactor.scrub(&message)))?;
    secrets.extend(built.secrets);
    match built.handle {
        AdapterHandle::Inventory(provider) => Ok((provider, secrets)),
        _ => Err(format!("provider `{name}`: `{adapter}` is not an inventory adapter")),
    }
}
