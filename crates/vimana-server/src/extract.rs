//! Extractors whose rejections are problem details, so axum's plain-text
//! rejections never reach a client.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Path, Query, Request};
use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use serde::de::DeserializeOwned;
use vimana_api::ApiError;

use crate::problem::ApiProblem;

/// A JSON request body. Requires `Content-Type: application/json` (or
/// `application/*+json`); the body must be at most [`crate::BODY_LIMIT`]
/// bytes. As `Option<ApiJson<T>>` a request with neither a content type
/// nor a body yields `None`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Path parameters; a bad parameter is a 400 problem.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

/// The query string; an unknown or malformed parameter is a 400 problem.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn wrong_content_type(headers: &HeaderMap) -> ApiProblem {
    let got = match headers.get(CONTENT_TYPE) {
        None => "no Content-Type".to_string(),
        Some(v) => format!("Content-Type {:?}", String::from_utf8_lossy(v.as_bytes())),
    };
    ApiError::BadRequest(format!(
        "the request body must be JSON but the request has {got}; send \
         `Content-Type: application/json`"
    ))
    .into()
}

fn bytes_rejection(rejection: BytesRejection) -> ApiProblem {
    if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(crate::BODY_LIMIT).into()
    } else {
        ApiError::BadRequest(format!(
            "could not read the request body: {}",
            rejection.body_text()
        ))
        .into()
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiProblem> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "does not match the expected schema",
            _ => "is not valid JSON",
        };
        ApiError::BadRequest(format!(
            "the request body {what}: {e}; GET /openapi.json describes the expected body"
        ))
        .into()
    })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiProblem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(wrong_content_type(req.headers()));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        decode(&body).map(ApiJson)
    }
}

impl<S, T> OptionalFromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiProblem;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(req, state)
                .await
                .map(Some);
        }
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        if body.is_empty() {
            Ok(None)
        } else {
            Err(wrong_content_type(&headers))
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiProblem {
    if rejection.status().is_server_error() {
        ApiError::Internal(rejection.body_text()).into()
    } else {
        ApiError::BadRequest(format!("invalid path: {}", rejection.body_text())).into()
    }
}

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiProblem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(path_rejection)
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiProblem {
    ApiError::BadRequest(format!(
        "invalid query string: {}; GET /openapi.json lists the parameters",
        rejection.body_text()
    ))
    .into()
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiProblem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(query_rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json_content_type(&h));
        for (v, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json_content_type(&h), ok, "{v}");
        }
    }
}
