//! Host core for serving requests from WebAssembly components, one fresh
//! instance per request.
//!
//! The API is split by how often each part runs (the Spin model):
//!
//! * [`Host`]: once per process. Owns one wasmtime [`Engine`] (pooling
//!   allocator, epoch interruption, copy-on-write memory images) and two
//!   component linkers: WASI preview 2 for gRPC-style components (sync
//!   calls), and WASI preview 2 + `wasi:http` for HTTP components (async
//!   calls). A background thread ticks the engine epoch so per-call deadlines
//!   fire.
//! * [`LoadedComponent`]: once per component. Compiles the component (or
//!   loads a precompiled artifact with [`Host::load_cached`]), classifies it
//!   ([`ComponentKind`]) and pre-resolves its imports.
//! * [`LoadedComponent::call_with`] / [`LoadedComponent::handle_http`]: once
//!   per request. A fresh [`Store`](wasmtime::Store) (empty WASI context: no
//!   preopened directories, no network, outgoing HTTP denied) with an epoch
//!   deadline and a memory limit.
//!
//! [`Engine`]: wasmtime::Engine

mod cache;
mod call;
mod component;
mod error;
mod host;
mod http_call;
mod limiter;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

pub use cache::CacheOutcome;
pub use component::{ComponentKind, LoadedComponent};
pub use error::{CallError, HostError};
pub use host::Host;
pub use wasmtime::component::Val;

/// Default wall-clock budget of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default linear-memory budget of one instance.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
/// Default number of instances that may be alive at once (pool size).
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// How often the epoch ticker advances the engine epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Largest response body an HTTP component may produce; more is
/// [`CallError::ResourceExhausted`].
pub const MAX_HTTP_RESPONSE_BODY: usize = 16 << 20;
/// Export name prefix that marks a component as [`ComponentKind::Http`].
pub const HTTP_HANDLER_EXPORT_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// Settings of a [`Host`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Wall-clock budget of one call (instantiation plus the function call).
    pub timeout: Duration,
    /// Maximum linear memory, in bytes, of one instance.
    pub memory_limit: usize,
    /// Maximum number of live instances (sizes the pooling allocator).
    pub max_instances: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_instances: DEFAULT_MAX_INSTANCES,
        }
    }
}

/// Per-call overrides of the [`HostConfig`] budgets (e.g. from a gRPC
/// `grpc-timeout`). `None` keeps the host default; a memory limit above
/// [`HostConfig::memory_limit`] is capped to it (the pool slots are sized by
/// the host limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions {
    /// Wall-clock budget of this call.
    pub timeout: Option<Duration>,
    /// Linear-memory budget of this call's instance, in bytes.
    pub memory_limit: Option<usize>,
}

impl CallOptions {
    /// The effective (timeout, memory limit) of a call under `config`.
    pub(crate) fn resolve(&self, config: &HostConfig) -> (Duration, usize) {
        let timeout = self.timeout.unwrap_or(config.timeout);
        let memory = self
            .memory_limit
            .map_or(config.memory_limit, |m| m.min(config.memory_limit));
        (timeout, memory)
    }
}
