//! Per-call budgets: the memory limiter that remembers denials, and the
//! epoch ticker that drives deadlines and yields (see `state::new_store`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::{Engine, ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::{EPOCH_TICK, HostError};

/// A [`StoreLimits`] that remembers whether it denied a request, so a denied
/// `memory.grow` maps to [`CallError::ResourceExhausted`](crate::CallError).
pub(crate) struct TrackingLimiter {
    inner: StoreLimits,
    /// Whether a memory or table growth was refused.
    pub(crate) denied: bool,
}

impl TrackingLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory per memory;
    /// growing past it traps.
    pub(crate) fn new(memory_limit: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            denied: false,
        }
    }
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
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub(crate) fn start(engine: Engine) -> Result<Self, HostError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_remembers_denial() {
        let mut l = TrackingLimiter::new(1 << 16);
        assert!(matches!(l.memory_growing(0, 1 << 16, None), Ok(true)));
        assert!(!l.denied);
        assert!(l.memory_growing(1 << 16, 2 << 16, None).is_err());
        assert!(l.denied);
    }
}
