//! The plain HTTP path: serving one request with a component that exports
//! `wasi:http/incoming-handler`, in a fresh store per request.
//!
//! wasmtime-wasi-http's host side is built on tokio, so HTTP components are
//! called with `call_async` (on a pooled fiber stack of the same engine) and
//! the response body is collected concurrently with the guest, which may
//! still be writing it after it set the response headers.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime::Engine;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::component::{LoadedComponent, Pre};
use crate::error::classify;
use crate::state::{StoreState, new_store};
use crate::{CallError, CallOptions, MAX_HTTP_RESPONSE_BODY};

type ResponseResult = Result<http::Response<HyperOutgoingBody>, ErrorCode>;

impl LoadedComponent {
    /// Serves one HTTP request with a fresh instance of an HTTP component,
    /// under the host's (or `opts`') deadline and memory limit, and returns
    /// the whole response.
    ///
    /// Blocks the calling thread: call it from `tokio::task::spawn_blocking`
    /// (of a multi-thread runtime) or from a thread outside any runtime
    /// (wasmtime-wasi's own runtime is used then), never from async code;
    /// there use [`handle_http_async`](Self::handle_http_async).
    ///
    /// A request URI without an authority and without a `Host` header gets
    /// `Host: localhost`. Outgoing HTTP requests of the guest are denied.
    pub fn handle_http(
        &self,
        req: http::Request<Bytes>,
        opts: CallOptions,
    ) -> Result<http::Response<Bytes>, CallError> {
        wasmtime_wasi::runtime::in_tokio(self.handle_http_async(req, opts))
    }

    /// Async form of [`handle_http`](Self::handle_http). Guest code runs on
    /// the polling thread (up to the deadline), so prefer `handle_http` in
    /// `spawn_blocking` unless the guest is known to be quick.
    pub async fn handle_http_async(
        &self,
        req: http::Request<Bytes>,
        opts: CallOptions,
    ) -> Result<http::Response<Bytes>, CallError> {
        let Pre::Http(pre) = &self.pre else {
            return Err(CallError::InvalidRequest(
                "not an HTTP component (no wasi:http/incoming-handler export)".to_string(),
            ));
        };
        let (timeout, memory_limit) = opts.resolve(&self.host.config);
        let req = with_authority(req);
        let serving = serve(pre, &self.host.engine, req, timeout, memory_limit);
        // The epoch deadline stops guest code; this one also stops a guest
        // waiting in a host call.
        match tokio::time::timeout(timeout, serving).await {
            Ok(r) => r,
            Err(_) => Err(CallError::DeadlineExceeded),
        }
    }
}

async fn serve(
    pre: &ProxyPre<StoreState>,
    engine: &Engine,
    req: http::Request<Bytes>,
    timeout: Duration,
    memory_limit: usize,
) -> Result<http::Response<Bytes>, CallError> {
    let scheme = match req.uri().scheme() {
        Some(s) if *s == http::uri::Scheme::HTTPS => Scheme::Https,
        _ => Scheme::Http,
    };
    let mut store = new_store(engine, timeout, memory_limit);
    let (tx, rx) = oneshot::channel();
    let mut view = store.data_mut().http();
    let request = view
        .new_incoming_request(scheme, req.map(Full::new))
        .map_err(|e| CallError::InvalidRequest(format!("{e:#}")))?;
    let out = view
        .new_response_outparam(tx)
        .map_err(|e| CallError::Other(format!("{e:#}")))?;

    let mut collect = pin!(collect_response(rx));
    let mut collected = None;
    let guest_result = {
        let mut guest = pin!(async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
        });
        loop {
            tokio::select! {
                r = &mut guest => break r,
                c = &mut collect, if collected.is_none() => collected = Some(c),
            }
        }
    };
    let denied = store.data().limiter.denied;
    // Dropping the store ends a body the guest left unfinished, and the
    // response channel if the guest never answered.
    drop(store);
    guest_result.map_err(|e| classify(&e, denied))?;
    match collected {
        Some(c) => c,
        None => collect.await,
    }
}

/// Waits for the guest's response and reads its body (at most
/// [`MAX_HTTP_RESPONSE_BODY`] bytes; trailers are dropped).
async fn collect_response(
    rx: oneshot::Receiver<ResponseResult>,
) -> Result<http::Response<Bytes>, CallError> {
    let resp = match rx.await {
        Ok(Ok(resp)) => resp,
        Ok(Err(code)) => {
            return Err(CallError::Other(format!(
                "guest answered with error code {code:?}"
            )));
        }
        Err(_) => return Err(CallError::Other("guest set no response".to_string())),
    };
    let (parts, mut body) = resp.into_parts();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CallError::Other(format!("response body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > MAX_HTTP_RESPONSE_BODY {
                return Err(CallError::ResourceExhausted(format!(
                    "response body over {MAX_HTTP_RESPONSE_BODY} bytes"
                )));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(http::Response::from_parts(parts, Bytes::from(buf)))
}

/// wasi:http needs an authority: keep the URI's or the `Host` header, else
/// use `localhost`.
fn with_authority(mut req: http::Request<Bytes>) -> http::Request<Bytes> {
    if req.uri().authority().is_none() && !req.headers().contains_key(http::header::HOST) {
        req.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
    }
    req
}
