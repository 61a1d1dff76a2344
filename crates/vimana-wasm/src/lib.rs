//! Host core for serving requests from WebAssembly components, one fresh
//! instance per request.
//!
//! The API is split by how often each part runs (the Spin model):
//!
//! * [`Host`]: once per process. Owns the [`Engine`] (pooling allocator,
//!   epoch interruption, copy-on-write memory images) and a component
//!   [`Linker`] with WASI preview 2 added. A background thread ticks the
//!   engine epoch so per-call deadlines fire.
//! * [`LoadedComponent`]: once per component. Compiles the component and
//!   pre-resolves its imports into an [`InstancePre`].
//! * [`LoadedComponent::call`]: once per request. Builds a fresh [`Store`]
//!   (empty WASI context: no preopened directories, no network), with an
//!   epoch deadline and a memory limit, instantiates, and calls one exported
//!   function with dynamic [`Val`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use wasmtime::component::Val;

/// Default wall-clock budget of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default linear-memory budget of one instance.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
/// Default number of instances that may be alive at once (pool size).
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// How often the epoch ticker advances the engine epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    pub timeout: Option<Duration>,
    pub memory_limit: Option<usize>,
}

/// Failure to set up the host or to load a component.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("engine setup failed: {0}")]
    Engine(String),
    #[error("WASI linker setup failed: {0}")]
    Linker(String),
    #[error("component compilation failed: {0}")]
    Compile(String),
    #[error("component imports cannot be satisfied: {0}")]
    Link(String),
}

/// Failure of one call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (e.g. `unreachable`, out-of-bounds access).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The call ran past its epoch deadline.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The guest tried to grow memory past its limit, or the instance pool
    /// is full.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The interface or function is not exported by the component.
    #[error("export not found: {0}")]
    NotFound(String),
    /// Instantiation or argument/result conversion failed.
    #[error("call failed: {0}")]
    Other(String),
}

/// Per-store state: WASI context plus a limiter that remembers whether it
/// denied a request (so a denied `memory.grow` maps to `ResourceExhausted`).
struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: TrackingLimiter,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct TrackingLimiter {
    inner: StoreLimits,
    denied: bool,
}

impl ResourceLimiter for TrackingLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.inner.memory_growing(current, desired, maximum);
        if !matches!(r, Ok(true)) {
            self.denied = true;
        }
        r
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.inner.table_growing(current, desired, maximum);
        if !matches!(r, Ok(true)) {
            self.denied = true;
        }
        r
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Advances the engine epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, HostError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("vimana-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| HostError::Engine(format!("epoch thread: {e}")))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct HostInner {
    engine: Engine,
    linker: Linker<StoreState>,
    config: HostConfig,
    _ticker: EpochTicker,
}

/// Process-wide component host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
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

    pub fn with_config(config: HostConfig) -> Result<Self, HostError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances.saturating_mul(4))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(4))
            .max_memory_size(config.memory_limit);

        let mut wcfg = Config::new();
        wcfg.wasm_component_model(true)
            .epoch_interruption(true)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wcfg).map_err(|e| HostError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<StoreState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| HostError::Linker(format!("{e:#}")))?;

        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                config,
                _ticker: ticker,
            }),
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Compiles a component (binary or, for tests, text) and pre-links it.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, HostError> {
        let component = Component::new(&self.inner.engine, bytes)
            .map_err(|e| HostError::Compile(format!("{e:#}")))?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| HostError::Link(format!("{e:#}")))?;
        Ok(LoadedComponent {
            host: Arc::clone(&self.inner),
            pre,
        })
    }
}

/// A compiled, pre-linked component. Each [`call`](Self::call) gets a fresh
/// instance in a fresh store.
pub struct LoadedComponent {
    host: Arc<HostInner>,
    pre: InstancePre<StoreState>,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent").finish_non_exhaustive()
    }
}

impl LoadedComponent {
    /// Instantiates the component in a fresh store and calls `func` of the
    /// exported `interface` (e.g. `"foo:bar/adder-service"`, `"add-floats"`).
    pub fn call(&self, interface: &str, func: &str, args: &[Val]) -> Result<Vec<Val>, CallError> {
        self.call_with(CallOptions::default(), interface, func, args)
    }

    /// Like [`call`](Self::call) with per-call budget overrides.
    pub fn call_with(
        &self,
        opts: CallOptions,
        interface: &str,
        func: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let cfg = &self.host.config;
        let timeout = opts.timeout.unwrap_or(cfg.timeout);
        let memory_limit = opts
            .memory_limit
            .map_or(cfg.memory_limit, |m| m.min(cfg.memory_limit));
        let state = StoreState {
            wasi: WasiCtxBuilder::new()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
            limiter: TrackingLimiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size(memory_limit)
                    .trap_on_grow_failure(true)
                    .build(),
                denied: false,
            },
        };
        let mut store = Store::new(&self.host.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(timeout));
        store.epoch_deadline_trap();

        let result = self.call_in(&mut store, interface, func, args);
        result.map_err(|e| match e {
            Inner::Wasm(err) => classify(&err, store.data().limiter.denied),
            Inner::Call(c) => c,
        })
    }

    fn call_in(
        &self,
        store: &mut Store<StoreState>,
        interface: &str,
        func: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, Inner> {
        let instance = self.pre.instantiate(&mut *store).map_err(Inner::Wasm)?;
        let iface = instance
            .get_export_index(&mut *store, None, interface)
            .ok_or_else(|| Inner::Call(CallError::NotFound(interface.to_string())))?;
        let fidx = instance
            .get_export_index(&mut *store, Some(&iface), func)
            .ok_or_else(|| Inner::Call(CallError::NotFound(format!("{interface}#{func}"))))?;
        let f = instance
            .get_func(&mut *store, fidx)
            .ok_or_else(|| Inner::Call(CallError::NotFound(format!("{interface}#{func}"))))?;
        let n = f.ty(&*store).results().len();
        let mut results = vec![Val::Bool(false); n];
        f.call(&mut *store, args, &mut results)
            .map_err(Inner::Wasm)?;
        Ok(results)
    }
}

enum Inner {
    Wasm(wasmtime::Error),
    Call(CallError),
}

fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    let n = timeout.as_nanos().div_ceil(tick);
    u64::try_from(n).unwrap_or(u64::MAX).max(1)
}

fn classify(err: &wasmtime::Error, limiter_denied: bool) -> CallError {
    if limiter_denied
        || err
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
    {
        return CallError::ResourceExhausted(err.root_cause().to_string());
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::DeadlineExceeded,
        // The trap's own message; the wasm backtrace stays in `Debug` logs.
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Other(format!("{err:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_ticks_rounds_up() {
        assert_eq!(deadline_ticks(Duration::from_secs(1)), 100);
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 1);
        assert_eq!(deadline_ticks(Duration::ZERO), 1);
    }
}
