//! Gateway backends made of a loaded component and its gRPC contract.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vimana_gateway::{BackendFuture, GrpcBackend, HttpBackend};
use vimana_grpc::{Contract, MethodMap, Status};
use vimana_wasm::{CallError, CallOptions, LoadedComponent};

/// One version of one gRPC service: the component serving it and the
/// contract that transcodes its calls.
pub struct WasmGrpc {
    /// The full service name, e.g. `foo.bar.AdderService`.
    pub service: String,
    pub component: Arc<LoadedComponent>,
    pub contract: Arc<Contract>,
}

impl WasmGrpc {
    fn method(&self, method: &str) -> Result<&MethodMap, Status> {
        self.contract.method(&self.service, method).ok_or_else(|| {
            Status::unimplemented(format!(
                "method {method} of service {} is not in the component's contract",
                self.service
            ))
        })
    }

    async fn invoke(
        &self,
        m: &MethodMap,
        request: vimana_wasm::Val,
        deadline: Duration,
    ) -> Result<vimana_wasm::Val, Status> {
        let opts = CallOptions {
            timeout: Some(deadline),
            memory_limit: None,
        };
        let mut results = self
            .component
            .call_with_async(opts, &m.interface, &m.func, &[request])
            .await
            .map_err(|e| call_status(&self.service, m, e))?;
        if results.len() != 1 {
            return Err(Status::internal(format!(
                "{}#{} returned {} values; the convention is one result<response, status>",
                m.interface,
                m.func,
                results.len()
            )));
        }
        Ok(results.remove(0))
    }
}

impl GrpcBackend for WasmGrpc {
    fn unary<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        deadline: Duration,
    ) -> BackendFuture<'a, Bytes> {
        Box::pin(async move {
            let m = self.method(method)?;
            let req = m.decode_request(&request)?;
            let result = self.invoke(m, req, deadline).await?;
            m.encode_response(&result).map(Bytes::from)
        })
    }

    fn server_stream<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        deadline: Duration,
    ) -> BackendFuture<'a, Vec<Bytes>> {
        Box::pin(async move {
            let m = self.method(method)?;
            let req = m.decode_request(&request)?;
            let result = self.invoke(m, req, deadline).await?;
            Ok(m.encode_stream_response(&result)?
                .into_iter()
                .map(Bytes::from)
                .collect())
        })
    }

    fn json<'a>(
        &'a self,
        method: &'a str,
        request_json: Bytes,
        deadline: Duration,
    ) -> BackendFuture<'a, Bytes> {
        Box::pin(async move {
            let m = self.method(method)?;
            let req = m.decode_json_request(&request_json)?;
            let result = self.invoke(m, req, deadline).await?;
            m.response_to_json(&result).map(Bytes::from)
        })
    }

    fn is_server_streaming(&self, method: &str) -> bool {
        self.contract
            .method(&self.service, method)
            .is_some_and(|m| m.server_streaming)
    }
}

/// The gRPC status of a failed component call.
pub fn call_status(service: &str, m: &MethodMap, e: CallError) -> Status {
    match e {
        CallError::DeadlineExceeded => {
            Status::deadline_exceeded(format!("{service}/{} ran past its deadline", m.method))
        }
        CallError::ResourceExhausted(why) => Status::resource_exhausted(why),
        CallError::NotFound(what) => Status::unimplemented(format!(
            "the component does not export {what}, which {service}/{} maps to",
            m.method
        )),
        CallError::Trap(why) => Status::internal(format!("the component trapped: {why}")),
        other => Status::internal(other.to_string()),
    }
}

/// A plain HTTP (`wasi:http/incoming-handler`) component version.
pub struct WasmHttp {
    pub component: Arc<LoadedComponent>,
}

impl HttpBackend for WasmHttp {
    fn handle(
        &self,
        req: http::Request<Bytes>,
        deadline: Duration,
    ) -> BackendFuture<'_, http::Response<Bytes>> {
        let opts = CallOptions {
            timeout: Some(deadline),
            memory_limit: None,
        };
        Box::pin(async move {
            self.component
                .handle_http_async(req, opts)
                .await
                .map_err(|e| match e {
                    CallError::DeadlineExceeded => {
                        Status::deadline_exceeded("the HTTP handler ran past its deadline")
                    }
                    CallError::ResourceExhausted(why) => Status::resource_exhausted(why),
                    CallError::Trap(why) => {
                        Status::internal(format!("the component trapped: {why}"))
                    }
                    other => Status::internal(other.to_string()),
                })
        })
    }
}
