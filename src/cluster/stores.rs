//! Object stores for DataFusion's runtime, built on first use from a URL with this
//! process's credentials (its environment and `--storage-option`s), the same way
//! [`crate::io::store::Remote`] builds them for local jobs.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use url::Url;

use crate::io::store::{Remote, StorageOptions};

/// An [`ObjectStoreRegistry`] that opens `s3://`, `az://`, `abfss://`, `gs://` and
/// `http(s)://` stores when first asked for them; `file://` is the local file system.
#[derive(Debug)]
pub struct StoreRegistry {
    options: StorageOptions,
    known: DefaultObjectStoreRegistry,
}

impl StoreRegistry {
    pub fn new(options: StorageOptions) -> Self {
        StoreRegistry {
            options,
            known: DefaultObjectStoreRegistry::new(),
        }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let base = format!("{}://{}/", url.scheme(), url.authority());
        let remote = Remote::open(&base, &self.options)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let store = remote.object_store();
        self.known.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}
