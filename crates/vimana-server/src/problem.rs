//! RFC 9457 problem details: the body of every error response.
//!
//! Handlers and extractors fail with [`ApiProblem`]; the router's fallbacks
//! (unknown route, wrong method), the panic catcher and [`ensure_problem`]
//! (a backstop for anything else that produced a bare error status) make
//! sure no plain-text error ever reaches a client.

use std::any::Any;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderValue, Method, StatusCode, Uri};
use vimana_api::{ApiError, NameError, Problem};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response: a [`Problem`] rendered as `application/problem+json`
/// with the problem's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiProblem(pub Problem);

impl ApiProblem {
    /// The 401 answer when a bearer token is required and missing or wrong.
    pub fn unauthorized() -> Self {
        Self(Problem::new(
            "unauthorized",
            "Unauthorized",
            401,
            "missing or wrong bearer token; read it from VIMANA_HOME/token and send \
             `Authorization: Bearer <token>`",
        ))
    }

    /// The 404 answer for a path no route matches.
    pub fn route_not_found(method: &Method, path: &str) -> Self {
        Self(Problem::new(
            "not-found",
            "Not found",
            404,
            format!("no route for {method} {path}; GET /openapi.json lists the routes"),
        ))
    }

    /// The 405 answer for a known path with an unsupported method.
    pub fn method_not_allowed(method: &Method, path: &str) -> Self {
        Self(Problem::new(
            "method-not-allowed",
            "Method not allowed",
            405,
            format!(
                "{method} is not allowed on {path}; the Allow header lists the methods it \
                 supports"
            ),
        ))
    }

    /// The 500 answer when a handler panicked.
    pub fn panicked() -> Self {
        Self(Problem::new(
            "internal",
            "Internal error",
            500,
            "the daemon hit a bug while handling this request; see the daemon log and \
             report it",
        ))
    }

    /// A generic problem for an error status something below produced
    /// without a problem body.
    pub fn for_status(status: StatusCode, method: &Method, path: &str) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::route_not_found(method, path),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(method, path),
            StatusCode::UNAUTHORIZED => Self::unauthorized(),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::BODY_LIMIT)
                .to_problem()
                .into(),
            _ => {
                let title = status.canonical_reason().unwrap_or("Error");
                let slug = if status.is_server_error() {
                    "internal".to_string()
                } else {
                    slugify(title)
                };
                Self(Problem::new(
                    &slug,
                    title,
                    status.as_u16(),
                    format!("{method} {path} failed with status {status}"),
                ))
            }
        }
    }

    /// The HTTP status of this problem (500 if the problem carries an
    /// invalid one).
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn slugify(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl From<Problem> for ApiProblem {
    fn from(p: Problem) -> Self {
        Self(p)
    }
}

impl From<ApiError> for ApiProblem {
    fn from(e: ApiError) -> Self {
        if e.status() >= 500 {
            tracing::error!(error = %e, "request failed");
        }
        Self(e.to_problem())
    }
}

impl From<NameError> for ApiProblem {
    fn from(e: NameError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for ApiProblem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match serde_json::to_vec(&self.0) {
            Ok(body) => body,
            // Serializing four plain fields cannot fail; keep a valid body anyway.
            Err(_) => br#"{"type":"urn:vimana:problem:internal","title":"Internal error","status":500,"detail":"could not render the error"}"#.to_vec(),
        };
        (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response()
    }
}

/// Fallback for paths no route matches.
pub(crate) async fn route_not_found(method: Method, uri: Uri) -> ApiProblem {
    ApiProblem::route_not_found(&method, uri.path())
}

/// Fallback for known paths with an unsupported method (axum keeps the
/// `Allow` header).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiProblem {
    ApiProblem::method_not_allowed(&method, uri.path())
}

/// Panic handler for `CatchPanicLayer`.
pub(crate) fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_string());
    tracing::error!(panic = %msg, "request handler panicked");
    ApiProblem::panicked().into_response()
}

fn is_problem(res: &Response) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// Middleware: turns any error response that is not already a problem
/// (an axum rejection we did not map, a layer's bare status) into one,
/// keeping its other headers (`Allow`, `WWW-Authenticate`).
pub(crate) async fn ensure_problem(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&res) {
        return res;
    }
    let (parts, _body) = res.into_parts();
    let mut fixed = ApiProblem::for_status(status, &method, &path).into_response();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            fixed.headers_mut().append(name.clone(), value.clone());
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_status_keeps_status_and_names_a_type() {
        let p = ApiProblem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE, &Method::PUT, "/x");
        assert_eq!(p.0.status, 415);
        assert_eq!(p.0.type_, "urn:vimana:problem:unsupported-media-type");
        let p = ApiProblem::for_status(StatusCode::BAD_GATEWAY, &Method::GET, "/x");
        assert_eq!(p.0.type_, "urn:vimana:problem:internal");
        assert_eq!(
            ApiProblem::for_status(StatusCode::PAYLOAD_TOO_LARGE, &Method::PUT, "/x")
                .0
                .status,
            413
        );
    }

    #[test]
    fn invalid_status_renders_as_500() {
        let p = ApiProblem(Problem::new("x", "X", 1000, "d"));
        assert_eq!(
            p.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod backstop_tests {
    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn bare_error_statuses_become_problems_keeping_headers() {
        let app = Router::new()
            .route(
                "/teapot",
                get(|| async {
                    (
                        StatusCode::IM_A_TEAPOT,
                        [(http::header::RETRY_AFTER, "5")],
                        "plain text",
                    )
                }),
            )
            .route("/ok", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(ensure_problem));
        let req = |uri: &str| Request::builder().uri(uri).body(Body::empty()).unwrap();

        let res = app.clone().oneshot(req("/teapot")).await.unwrap();
        assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(res.headers()[http::header::RETRY_AFTER], "5");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let p: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(p.status, 418);
        assert_eq!(p.type_, "urn:vimana:problem:i-m-a-teapot");

        let res = app.oneshot(req("/ok")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"fine");
    }
}
