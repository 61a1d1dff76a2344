//! Loading the Components of a resource set: image → compiled component
//! (+ contract), reusing what is already loaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use vimana_grpc::Contract;
use vimana_oci::OciConfig;
use vimana_resources::Component;
use vimana_wasm::{ComponentKind, Host, LoadedComponent};

use crate::image;

/// A loaded component image, shared by every Component with its digest.
pub struct Deployed {
    /// `sha256:` digest of the component bytes.
    pub digest: String,
    pub component: Arc<LoadedComponent>,
    pub kind: ComponentKind,
    /// The gRPC contract, for gRPC components.
    pub contract: Option<Arc<Contract>>,
    /// Whether the compiled code came from the on-disk cache.
    pub cache_hit: bool,
}

/// Everything needed to load components.
pub struct Loader {
    pub host: Host,
    pub oci: OciConfig,
    /// Where compiled components are cached.
    pub compile_cache: PathBuf,
    pub rt: tokio::runtime::Handle,
}

impl Loader {
    /// Loads `c`, reusing a component of the same digest from `by_digest`.
    pub fn load(
        &self,
        c: &Component,
        by_digest: &mut HashMap<String, Arc<Deployed>>,
    ) -> Result<Arc<Deployed>, (String, String)> {
        let img = image::fetch(&c.spec.image_source(), &self.oci, &self.rt)
            .map_err(|e| ("ImageUnavailable".to_owned(), e.to_string()))?;
        if let Some(d) = by_digest.get(&img.digest) {
            return Ok(Arc::clone(d));
        }
        let (component, outcome) = self
            .host
            .load_cached(&img.wasm, &img.digest, &self.compile_cache)
            .map_err(|e| ("CompileFailed".to_owned(), e.to_string()))?;
        let kind = component.kind();
        let contract = match (kind, img.descriptor_set) {
            (ComponentKind::Http, _) => None,
            (ComponentKind::Grpc, Some(fds)) => Some(Arc::new(
                Contract::from_descriptor_set(&fds)
                    .map_err(|e| ("InvalidContract".to_owned(), e.to_string()))?,
            )),
            (ComponentKind::Grpc, None) => {
                return Err((
                    "NoContract".to_owned(),
                    format!(
                        "{} carries no protobuf descriptor set: push it with `vimana image push \
                         --proto` or embed one with `vimana image embed`",
                        c.spec.image
                    ),
                ));
            }
        };
        let deployed = Arc::new(Deployed {
            digest: img.digest.clone(),
            component: Arc::new(component),
            kind,
            contract,
            cache_hit: outcome == vimana_wasm::CacheOutcome::Hit,
        });
        by_digest.insert(img.digest, Arc::clone(&deployed));
        Ok(deployed)
    }
}
