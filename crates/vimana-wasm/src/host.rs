//! [`Host`]: the process-wide engine, linkers and epoch ticker.

/// Bytes of each freed memory/table slot reset in place rather than
/// returned to the kernel.
const KEEP_RESIDENT: usize = 1 << 20;

use std::sync::Arc;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::component::LoadedComponent;
use crate::limiter::EpochTicker;
use crate::state::StoreState;
use crate::{HostConfig, HostError};

/// Shared state behind a [`Host`] and its components.
pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    /// WASI p2 (async host functions): gRPC-style components.
    pub(crate) linker: Linker<StoreState>,
    /// WASI p2 + `wasi:http` with async host functions: HTTP components.
    pub(crate) http_linker: Linker<StoreState>,
    pub(crate) config: HostConfig,
    _ticker: EpochTicker,
}

/// Process-wide component host. Cheap to clone.
///
/// One engine serves both kinds of component. Every call is async
/// (`call_async` on a pooled fiber stack): a guest yields to the executor at
/// each epoch tick, so requests can run on the gateway's own worker threads
/// without a hop to a blocking pool, and a runaway guest cannot hold a
/// worker for longer than a tick at a time.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host with [`HostConfig::default`].
    pub fn new() -> Result<Self, HostError> {
        Self::with_config(HostConfig::default())
    }

    /// A host with the given budgets.
    pub fn with_config(config: HostConfig) -> Result<Self, HostError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| HostError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<StoreState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| HostError::Linker(format!("{e:#}")))?;

        let mut http_linker = Linker::<StoreState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut http_linker)
            .map_err(|e| HostError::Linker(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut http_linker)
            .map_err(|e| HostError::Linker(format!("{e:#}")))?;

        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                http_linker,
                config,
                _ticker: ticker,
            }),
        })
    }

    /// The host's budgets.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The wasmtime engine (e.g. to precompile components elsewhere).
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// Compiles a component (binary or, for tests, text) and pre-links it.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, HostError> {
        let component = Component::new(&self.inner.engine, bytes)
            .map_err(|e| HostError::Compile(format!("{e:#}")))?;
        LoadedComponent::new(Arc::clone(&self.inner), &component)
    }
}

/// The wasmtime configuration of a host: component model, epoch
/// interruption, CoW memory images, and a pooling allocator sized by
/// `config` (including the fiber stacks of async HTTP calls).
pub(crate) fn engine_config(config: &HostConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(config.max_instances)
        .total_core_instances(config.max_instances.saturating_mul(4))
        .total_memories(config.max_instances.saturating_mul(2))
        .total_tables(config.max_instances.saturating_mul(4))
        .total_stacks(config.max_instances)
        .max_memory_size(config.memory_limit)
        // Reset the first pages of a freed slot with memset instead of
        // madvise: madvise in a multi-threaded daemon costs a TLB shootdown
        // (IPIs to every core) per request, the largest cost in profiles.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);

    let mut wcfg = Config::new();
    wcfg.wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wcfg
}
