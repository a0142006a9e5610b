//! [`SharedCatalog`]: the catalog as shard 0 last installed it, for the tiering thread
//! (which runs on a thread of its own and reads it at the start of each round).

use std::sync::{Arc, Mutex};

use crate::catalog::state::Catalog;

/// The catalog as shard 0 last installed it, for the tiering thread.
#[derive(Clone, Debug)]
pub struct SharedCatalog(Arc<Mutex<Arc<Catalog>>>);

impl SharedCatalog {
    /// Starts with `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self(Arc::new(Mutex::new(catalog)))
    }

    /// Replaces it.
    pub fn set(&self, catalog: Arc<Catalog>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = catalog;
    }

    /// The current one.
    pub fn get(&self) -> Arc<Catalog> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
