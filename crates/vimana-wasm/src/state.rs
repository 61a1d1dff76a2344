//! The data of one per-call [`Store`]: a WASI context with no ambient
//! authority, a `wasi:http` context whose outgoing requests are denied, and
//! the memory limiter.

use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::limiter::TrackingLimiter;

/// Per-store state.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoing,
    table: ResourceTable,
    pub(crate) limiter: TrackingLimiter,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// `wasi:http` hooks that refuse every outgoing request: components get no
/// ambient network access. The guest sees `error-code.HTTP-request-denied`
/// when it resolves the `future-incoming-response`.
struct DenyOutgoing;

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(request);
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// A fresh store for one call: empty WASI context (no preopens, no
/// sockets, no name lookup, no inherited stdio or environment), a memory
/// limit of `memory_limit` bytes, and a deadline of `timeout`.
///
/// Calls on these stores are async (`*_async`): at every epoch tick the
/// guest yields to the executor, so a long-running guest shares its worker
/// thread with other requests, and once `timeout` has passed the next tick
/// interrupts it (a `Trap::Interrupt`, i.e. `DEADLINE_EXCEEDED`).
pub(crate) fn new_store(
    engine: &Engine,
    timeout: Duration,
    memory_limit: usize,
) -> Store<StoreState> {
    let state = StoreState {
        wasi: WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build(),
        http: WasiHttpCtx::new(),
        hooks: DenyOutgoing,
        table: ResourceTable::new(),
        limiter: TrackingLimiter::new(memory_limit),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    let deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}
