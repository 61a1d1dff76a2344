//! Routing one request: host → domain, then gRPC (reflection or a
//! service), the schema document, JSON transcoding, or plain HTTP.
//!
//! An unknown host is answered `grpc-status: 5` (NOT_FOUND, trailers-only)
//! for gRPC requests and `404` with a JSON error body otherwise. On TLS, a
//! host of another domain than the SNI name's is refused the same way
//! (`421 Misdirected Request` for HTTP), so SNI and `:authority` agree.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tower::ServiceExt;
use vimana_grpc::{Code, Status};

use crate::body::GatewayBody;
use crate::gateway::Inner;
use crate::grpc;
use crate::web;

/// The path of the OpenAPI document.
pub const SCHEMA_PATH: &str = "/.well-known/schema.json";

/// `/<service>/<method>` split, when the path has exactly that shape.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

fn request_host<'a>(req: &'a Request<Incoming>, sni: Option<&'a str>) -> Option<&'a str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
        .or(sni)
}

/// Answers one request.
pub(crate) async fn handle(
    inner: Arc<Inner>,
    sni: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let is_grpc = grpc::is_grpc(req.headers().get(http::header::CONTENT_TYPE));
    let host = request_host(&req, sni.as_deref())
        .unwrap_or_default()
        .to_string();
    let table = inner.table.load();
    let domain = table.domain(&host).cloned();
    if let (Some(sni), Some(domain)) = (sni.as_deref(), domain.as_ref())
        && !table.domain(sni).is_some_and(|d| Arc::ptr_eq(d, domain))
    {
        // The connection was set up for another domain (e.g. a reused
        // connection whose certificate also covers this host).
        let status = Status::new(
            Code::NotFound,
            format!("host {host:?} is not served on a connection for {sni:?}"),
        );
        return Ok(if is_grpc {
            grpc::status_response(None, &status)
        } else {
            web::error_response(None, &status, 421)
        });
    }
    drop(table);
    let Some(domain) = domain else {
        let status = Status::new(Code::NotFound, format!("no domain serves host {host:?}"));
        return Ok(if is_grpc {
            grpc::status_response(None, &status)
        } else {
            web::error_response(None, &status, 404)
        });
    };
    if is_grpc {
        let Some((service, _)) = split_path(req.uri().path()) else {
            let status = Status::unimplemented(format!("bad gRPC path {}", req.uri().path()));
            return Ok(grpc::status_response(None, &status));
        };
        if let Some(svc) = domain
            .reflection
            .as_ref()
            .and_then(|r| r.for_service(service))
        {
            return svc.oneshot(req).await;
        }
        return Ok(crate::call::grpc_call(&inner, &domain, req).await);
    }
    if let Some(doc) = &domain.route.open_api {
        if req.uri().path() == SCHEMA_PATH && req.method() == Method::GET {
            return Ok(web::schema_response(doc.clone()));
        }
        if req.method() == Method::POST
            && web::is_json(req.headers().get(http::header::CONTENT_TYPE))
            && let Some((service, method)) = split_path(req.uri().path())
            && let Some(server) = domain.route.services.get(service).cloned()
        {
            let method = method.to_string();
            return Ok(web::json_call(&inner, &server, &method, req).await);
        }
    }
    if let Some(server) = domain.route.http.clone() {
        return Ok(web::http_call(&inner, &server, req).await);
    }
    let status = Status::new(Code::NotFound, format!("no route for {}", req.uri().path()));
    Ok(web::error_response(None, &status, 404))
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(split_path("/a.B/C"), Some(("a.B", "C")));
        assert_eq!(split_path("/a.B/"), None);
        assert_eq!(split_path("/a.B"), None);
        assert_eq!(split_path("/a/b/c"), None);
        assert_eq!(split_path("a/b"), None);
    }
}
