//! The seams to the services behind the gateway. The gateway knows nothing
//! about what implements them (in Vimana: Wasm components).
//!
//! Every method is a *blocking* call (CPU-bound work); the gateway runs it
//! on tokio's blocking pool and gives up waiting after the deadline plus a
//! small grace, answering `DEADLINE_EXCEEDED`. Implementations should
//! enforce the deadline themselves too.

use std::time::Duration;

use bytes::Bytes;
use vimana_grpc::Status;

/// A gRPC service version: calls take and return encoded protobuf messages.
pub trait GrpcBackend: Send + Sync + 'static {
    /// Calls the unary `method` (the bare method name, e.g. `AddFloats`)
    /// with an encoded request message and returns the encoded response.
    fn unary(&self, method: &str, request: Bytes, deadline: Duration) -> Result<Bytes, Status>;

    /// Calls the server-streaming `method` and returns every response
    /// message. The default answers `UNIMPLEMENTED`.
    fn server_stream(
        &self,
        method: &str,
        request: Bytes,
        deadline: Duration,
    ) -> Result<Vec<Bytes>, Status> {
        let _ = (request, deadline);
        Err(Status::unimplemented(format!(
            "server streaming method {method} is not implemented"
        )))
    }

    /// Calls the unary `method` with a JSON request (protobuf JSON mapping)
    /// and returns the JSON response.
    fn json(&self, method: &str, request_json: Bytes, deadline: Duration) -> Result<Bytes, Status>;

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
    ) -> Result<http::Response<Bytes>, Status>;
}
