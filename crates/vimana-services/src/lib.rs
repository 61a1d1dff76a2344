//! The Wasm service runtime: the applied `api.vimana.host/v1alpha1`
//! resources become gateway routes. For every Component the image is
//! fetched (local file or OCI), compiled (or taken from the compile cache
//! keyed by digest and engine), paired with its gRPC contract; then the
//! Domains, Servers and version weights become a route table that the
//! gateway swaps in atomically. [`WasmRuntime`] is the core's
//! `ResourceObserver`.

mod backend;
pub mod contract_section;
mod deploy;
mod image;
mod listen;
mod openapi;
mod routes;
mod runtime;

pub use backend::{WasmGrpc, WasmHttp, call_status};
pub use deploy::{Deployed, Loader};
pub use image::{Image, ImageError, digest_of, read_local};
pub use listen::{Bound, ListenConfig};
pub use runtime::{DEFAULT_DEADLINE, WasmRuntime};
