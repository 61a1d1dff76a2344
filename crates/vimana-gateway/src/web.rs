//! The HTTP/JSON side: the schema document, JSON transcoding onto
//! [`GrpcBackend::json`](crate::GrpcBackend::json), plain HTTP components,
//! and JSON error bodies `{"code": <int>, "message": "..."}` with the HTTP
//! status of the gRPC code.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use vimana_grpc::{Code, Status};

use crate::body::{self, GatewayBody};
use crate::budget::ConnBudget;
use crate::call::{guarded, within};
use crate::gateway::Inner;
use crate::grpc::COMPONENT_HEADER;
use crate::routes::{ServerRoute, VersionRoute};

/// Whether a content type is JSON (`application/json`, with parameters).
pub(crate) fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"))
}

fn set_component(resp: &mut Response<GatewayBody>, component: Option<&str>) {
    if let Some(v) = component.and_then(|c| HeaderValue::from_str(c).ok()) {
        resp.headers_mut().insert(COMPONENT_HEADER, v);
    }
}

fn json_response(status: u16, json: Bytes, component: Option<&str>) -> Response<GatewayBody> {
    let mut resp = Response::new(body::full(json));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_component(&mut resp, component);
    resp
}

/// A JSON error; `http_status` 0 = the HTTP status of the code.
pub(crate) fn error_response(
    component: Option<&str>,
    status: &Status,
    http_status: u16,
) -> Response<GatewayBody> {
    let code = if http_status == 0 {
        status.code.http_status()
    } else {
        http_status
    };
    let body = serde_json::json!({"code": status.code.as_u32(), "message": status.message});
    json_response(code, Bytes::from(body.to_string()), component)
}

/// The OpenAPI document.
pub(crate) fn schema_response(doc: Bytes) -> Response<GatewayBody> {
    json_response(200, doc, None)
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Status> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Status::resource_exhausted(format!(
            "request body exceeds the limit of {limit} bytes"
        ))),
        Err(e) => Err(Status::new(Code::Cancelled, e.to_string())),
    }
}

/// A version chosen by weight and its backend of one kind (`kind` names it
/// in the error), or the error and the version it concerns.
fn pick<B>(
    server: &ServerRoute,
    kind: &str,
    backend: impl Fn(&VersionRoute) -> Option<B>,
) -> Result<(String, B), (Option<String>, Status)> {
    let Some(version) = server.pick() else {
        return Err((
            None,
            Status::new(Code::Unavailable, "no version takes traffic"),
        ));
    };
    let component = version.name.clone();
    match backend(version) {
        Some(b) => Ok((component, b)),
        None => {
            let status = Status::unimplemented(format!("{component} serves no {kind}"));
            Err((Some(component), status))
        }
    }
}

/// JSON transcoding of `POST /<service>/<method>`.
pub(crate) async fn json_call(
    inner: &Inner,
    server: &ServerRoute,
    method: &str,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let (component, backend) = match pick(server, "gRPC", |v| v.grpc.clone()) {
        Ok(picked) => picked,
        Err((component, status)) => return error_response(component.as_deref(), &status, 0),
    };
    let deadline = server.deadline;
    let limit = inner.config.max_request_bytes;
    let method = method.to_string();
    let conn = req.extensions().get::<ConnBudget>().cloned();
    let call = async move {
        let json = read_body(req.into_body(), limit).await?;
        let _decode = crate::budget::reserve(inner, conn.as_ref(), json.len())?;
        guarded(backend.json(&method, json, deadline)).await
    };
    match within(inner, deadline, call).await {
        Ok(json) => json_response(200, json, Some(&component)),
        Err(status) => error_response(Some(&component), &status, 0),
    }
}

/// Hands a request to a plain HTTP component.
pub(crate) async fn http_call(
    inner: &Inner,
    server: &ServerRoute,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let (component, backend) = match pick(server, "HTTP", |v| v.http.clone()) {
        Ok(picked) => picked,
        Err((component, status)) => return error_response(component.as_deref(), &status, 0),
    };
    let deadline = server.deadline;
    let limit = inner.config.max_request_bytes;
    let (parts, incoming) = req.into_parts();
    let call = async move {
        let body = read_body(incoming, limit).await?;
        let req = Request::from_parts(parts, body);
        guarded(backend.handle(req, deadline)).await
    };
    match within(inner, deadline, call).await {
        Ok(resp) => {
            let mut resp = resp.map(body::full);
            set_component(&mut resp, Some(&component));
            resp
        }
        Err(status) => error_response(Some(&component), &status, 0),
    }
}
