//! HTTP/1.1 over a unix socket, for the Firecracker and Cloud Hypervisor
//! APIs: one connection per request (the VMMs serve one at a time anyway).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

use super::{ApiCall, HttpMethod, ProviderError};

/// A VMM's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; `None` when empty (204) or not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends one request and returns the status and body, whatever the status.
pub async fn request(
    socket: &Path,
    method: HttpMethod,
    path: &str,
    body: Option<&Value>,
    wait: Duration,
) -> Result<ApiResponse, ProviderError> {
    let http_err = |message: String| ProviderError::Http {
        socket: socket.to_path_buf(),
        method: method.to_string(),
        path: path.to_string(),
        message,
    };
    let exchange = async {
        let stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| ProviderError::Connect {
                    socket: socket.to_path_buf(),
                    source,
                })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http_err(format!("handshake: {e}")))?;
        let conn_task = tokio::spawn(conn);
        let method_h = match method {
            HttpMethod::Get => hyper::Method::GET,
            HttpMethod::Put => hyper::Method::PUT,
            HttpMethod::Patch => hyper::Method::PATCH,
        };
        let payload = match body {
            Some(v) => Bytes::from(v.to_string()),
            None => Bytes::new(),
        };
        let mut builder = Request::builder()
            .method(method_h)
            .uri(path)
            .header(HOST, "localhost")
            .header(ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let req = builder
            .body(Full::new(payload))
            .map_err(|e| http_err(format!("invalid request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| http_err(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| http_err(format!("reading the answer: {e}")))?
            .to_bytes();
        conn_task.abort();
        Ok(ApiResponse { status, body })
    };
    tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| ProviderError::Timeout {
            socket: socket.to_path_buf(),
            what: format!("{method} {path}"),
            waited: wait,
        })?
}

/// Makes `call` and fails on any non-2xx status with the VMM's message
/// (Firecracker's `fault_message`, else the body as text). Returns the JSON
/// body, if any.
pub async fn call(
    socket: &Path,
    call: &ApiCall,
    wait: Duration,
) -> Result<Option<Value>, ProviderError> {
    let resp = request(socket, call.method, &call.path, call.body.as_ref(), wait).await?;
    if resp.is_success() {
        return Ok(resp.json());
    }
    Err(ProviderError::Api {
        socket: socket.to_path_buf(),
        method: call.method.to_string(),
        path: call.path.clone(),
        status: resp.status,
        body: error_message(&resp.body),
    })
}

/// Firecracker's `{"fault_message": …}`, else the body as trimmed text.
fn error_message(body: &[u8]) -> String {
    let fault = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("fault_message")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match fault {
        Some(f) => f,
        None if body.is_empty() => "(no body)".to_string(),
        None => String::from_utf8_lossy(body).trim().to_string(),
    }
}

#[cfg(test)]
#[path = "api_client_tests.rs"]
mod tests;
