//! The gRPC path: a fresh store, an instantiation and one call of a typed
//! export with dynamic [`Val`]s, async (the guest yields at epoch ticks).

use wasmtime::Store;
use wasmtime::component::{InstancePre, Val};

use crate::component::{LoadedComponent, Pre};
use crate::error::classify;
use crate::state::{StoreState, new_store};
use crate::{CallError, CallOptions};

impl LoadedComponent {
    /// Instantiates the component in a fresh store and calls `func` of the
    /// exported `interface` (e.g. `"foo:bar/adder-service"`, `"add-floats"`)
    /// with the host's default budgets.
    pub fn call(&self, interface: &str, func: &str, args: &[Val]) -> Result<Vec<Val>, CallError> {
        self.call_with(CallOptions::default(), interface, func, args)
    }

    /// Like [`call`](Self::call) with per-call budget overrides. Blocks the
    /// calling thread for up to the timeout: from async code use
    /// [`call_with_async`](Self::call_with_async).
    ///
    /// HTTP components ([`ComponentKind::Http`](crate::ComponentKind)) are
    /// refused with [`CallError::InvalidRequest`]: use
    /// [`handle_http`](Self::handle_http).
    pub fn call_with(
        &self,
        opts: CallOptions,
        interface: &str,
        func: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        wasmtime_wasi::runtime::in_tokio(self.call_with_async(opts, interface, func, args))
    }

    /// Async form of [`call_with`](Self::call_with): runs the guest on the
    /// polling task, yielding to the executor at every epoch tick until the
    /// deadline interrupts it.
    pub async fn call_with_async(
        &self,
        opts: CallOptions,
        interface: &str,
        func: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let Pre::Grpc(pre) = &self.pre else {
            return Err(CallError::InvalidRequest(
                "HTTP component: serve it with handle_http".to_string(),
            ));
        };
        let (timeout, memory_limit) = opts.resolve(&self.host.config);
        let mut store = new_store(&self.host.engine, timeout, memory_limit);
        call_in(pre, &mut store, interface, func, args)
            .await
            .map_err(|e| match e {
                Inner::Wasm(err) => classify(&err, store.data().limiter.denied),
                Inner::Call(c) => c,
            })
    }
}

/// A call failure before classification (which needs the store).
enum Inner {
    Wasm(wasmtime::Error),
    Call(CallError),
}

async fn call_in(
    pre: &InstancePre<StoreState>,
    store: &mut Store<StoreState>,
    interface: &str,
    func: &str,
    args: &[Val],
) -> Result<Vec<Val>, Inner> {
    let instance = pre
        .instantiate_async(&mut *store)
        .await
        .map_err(Inner::Wasm)?;
    let not_found = || Inner::Call(CallError::NotFound(format!("{interface}#{func}")));
    let iface = instance
        .get_export_index(&mut *store, None, interface)
        .ok_or_else(|| Inner::Call(CallError::NotFound(interface.to_string())))?;
    let fidx = instance
        .get_export_index(&mut *store, Some(&iface), func)
        .ok_or_else(not_found)?;
    let f = instance.get_func(&mut *store, fidx).ok_or_else(not_found)?;
    let n = f.ty(&*store).results().len();
    let mut results = vec![Val::Bool(false); n];
    f.call_async(&mut *store, args, &mut results)
        .await
        .map_err(Inner::Wasm)?;
    Ok(results)
}
