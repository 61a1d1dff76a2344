//! Bearer-token authentication for the TCP listener (the unix socket relies
//! on its 0600 mode instead).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use crate::problem::ApiProblem;

/// The expected token.
#[derive(Clone)]
pub(crate) struct BearerToken(Arc<str>);

impl BearerToken {
    pub(crate) fn new(token: String) -> Self {
        Self(Arc::from(token))
    }
}

/// Compares without an early exit on the first differing byte. An empty
/// expected token never matches.
pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len() || expected.is_empty());
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= g ^ e;
    }
    std::hint::black_box(diff) == 0
}

/// The token from `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start())
}

pub(crate) async fn require_bearer(
    State(expected): State<BearerToken>,
    req: Request,
    next: Next,
) -> Response {
    let ok =
        bearer(&req).is_some_and(|given| constant_time_eq(given.as_bytes(), expected.0.as_bytes()));
    if ok {
        return next.run(req).await;
    }
    let mut res = ApiProblem::unauthorized().into_response();
    res.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"vimana\""),
    );
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b""));
    }

    #[test]
    fn parses_bearer_header() {
        let req = |v: &str| {
            Request::builder()
                .header(AUTHORIZATION, v)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(bearer(&req("Bearer tok")), Some("tok"));
        assert_eq!(bearer(&req("bearer  tok")), Some("tok"));
        assert_eq!(bearer(&req("Basic tok")), None);
        assert_eq!(bearer(&req("Bearer")), None);
    }
}
