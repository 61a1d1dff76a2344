//! Error types of the host and of one call, and the mapping from wasmtime
//! errors to [`CallError`].

use wasmtime::Trap;

/// Failure to set up the host or to load a component.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The wasmtime engine could not be created.
    #[error("engine setup failed: {0}")]
    Engine(String),
    /// WASI could not be added to a linker.
    #[error("WASI linker setup failed: {0}")]
    Linker(String),
    /// The bytes are not a valid component.
    #[error("component compilation failed: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error("component imports cannot be satisfied: {0}")]
    Link(String),
    /// The compile cache directory cannot be used (I/O error or unsafe
    /// permissions). A corrupt cache *file* is never an error.
    #[error("compile cache: {0}")]
    Cache(String),
}

/// Failure of one call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (e.g. `unreachable`, out-of-bounds access).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The guest tried to grow memory past its limit, the instance pool is
    /// full, or an HTTP response body is too large.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The interface or function is not exported by the component.
    #[error("export not found: {0}")]
    NotFound(String),
    /// The request does not fit the component (e.g. an HTTP request for a
    /// gRPC component, or an invalid HTTP request).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Instantiation, argument/result conversion or the HTTP exchange
    /// failed.
    #[error("call failed: {0}")]
    Other(String),
}

/// Maps a wasmtime error of a call to a [`CallError`]. `limiter_denied` is
/// whether the store's limiter refused a growth during the call.
pub(crate) fn classify(err: &wasmtime::Error, limiter_denied: bool) -> CallError {
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
