//! The seams to the services behind the gateway. The gateway knows nothing
//! about what implements them (in Vimana: Wasm components).
//!
//! Calls are futures polled on the gateway's own worker threads (no hop to
//! a blocking pool: for a call of a few microseconds the hop cost more than
//! the call). Implementations must therefore not block: CPU-bound work has
//! to yield now and then (Wasm guests yield at every epoch tick). The
//! gateway stops waiting after the deadline plus a small grace, answering
//! `DEADLINE_EXCEEDED`, and answers `INTERNAL` if a call panics.
//! Implementations should enforce the deadline themselves too.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use vimana_grpc::Status;

/// The future of one backend call.
pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>;

/// A gRPC service version: calls take and return encoded protobuf messages.
pub trait GrpcBackend: Send + Sync + 'static {
    /// Calls the unary `method` (the bare method name, e.g. `AddFloats`)
    /// with an encoded request message and returns the encoded response.
    fn unary<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        deadline: Duration,
    ) -> BackendFuture<'a, Bytes>;

    /// Calls the server-streaming `method` and returns every response
    /// message. The default answers `UNIMPLEMENTED`.
    fn server_stream<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        deadline: Duration,
    ) -> BackendFuture<'a, Vec<Bytes>> {
        let _ = (request, deadline);
        Box::pin(async move {
            Err(Status::unimplemented(format!(
                "server streaming method {method} is not implemented"
            )))
        })
    }

    /// Calls the unary `method` with a JSON request (protobuf JSON mapping)
    /// and returns the JSON response.
    fn json<'a>(
        &'a self,
        method: &'a str,
        request_json: Bytes,
        deadline: Duration,
    ) -> BackendFuture<'a, Bytes>;

    /// Whether `method` is server-streaming (then the gateway calls
    /// [`GrpcBackend::server_stream`] instead of [`GrpcBackend::unary`]).
    fn is_server_streaming(&self, method: &str) -> bool {
        let _ = method;
        false
    }
}

/// A plain HTTP component version.
pub trait HttpBackend: Send + Sync + 'static {
    /// Handles one request whose body has been read completely.
    fn handle(
        &self,
        req: http::Request<Bytes>,
        deadline: Duration,
    ) -> BackendFuture<'_, http::Response<Bytes>>;
}
