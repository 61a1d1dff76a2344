//! gRPC over HTTP/2 wire details: length-prefixed messages, `grpc-timeout`,
//! and responses with trailers (or trailers only, for errors).

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use vimana_grpc::{Code, Status};

use crate::body::{self, GatewayBody};

/// The response header naming the version that answered.
pub const COMPONENT_HEADER: &str = "vimana-component";
const PREFIX: usize = 5;

/// Whether a content type is gRPC (`application/grpc`, `+proto`, ...).
pub(crate) fn is_grpc(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct == "application/grpc" || ct.starts_with("application/grpc+"))
}

/// The `grpc-timeout` header value as a duration (`<1-8 digits><H|M|S|m|u|n>`).
pub fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Percent-encodes a `grpc-message` (everything outside printable ASCII,
/// and `%`).
pub(crate) fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the single request message of a unary (or server-streaming) call
/// without buffering more than `limit` bytes of message (public for the
/// fuzz targets in vimana-fuzz).
pub async fn read_message<B>(mut body: B, limit: usize) -> Result<Bytes, Status>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    let mut expected: Option<usize> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Status::new(Code::Cancelled, e.to_string()))?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        while data.has_remaining() {
            let want = expected.map_or(PREFIX, |len| PREFIX + len);
            if buf.len() >= want {
                return Err(Status::unimplemented("more than one request message"));
            }
            let take = (want - buf.len()).min(data.len());
            buf.extend_from_slice(&data.split_to(take));
            if expected.is_none() && buf.len() == PREFIX {
                if buf[0] != 0 {
                    return Err(Status::unimplemented(
                        "compressed messages are not supported (grpc-encoding identity only)",
                    ));
                }
                let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                if len > limit {
                    return Err(Status::resource_exhausted(format!(
                        "request message of {len} bytes exceeds the limit of {limit} bytes"
                    )));
                }
                buf.reserve(len);
                expected = Some(len);
            }
        }
    }
    match expected {
        Some(len) if buf.len() == PREFIX + len => Ok(buf.freeze().slice(PREFIX..)),
        Some(_) => Err(Status::internal("request message truncated")),
        None if buf.is_empty() => Err(Status::internal("missing request message")),
        None => Err(Status::internal("request message prefix truncated")),
    }
}

/// Sets `content-type: application/grpc` and, when known, the
/// `vimana-component` header.
pub(crate) fn base_headers(headers: &mut HeaderMap, component: Option<&str>) {
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    if let Some(v) = component.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(COMPONENT_HEADER, v);
    }
}

fn status_headers(headers: &mut HeaderMap, status: &Status) {
    headers.insert("grpc-status", HeaderValue::from(status.code.as_u32()));
    if !status.message.is_empty()
        && let Ok(v) = HeaderValue::from_str(&percent_encode(&status.message))
    {
        headers.insert("grpc-message", v);
    }
}

/// A successful response: headers, one DATA frame per message, then
/// trailers with `grpc-status: 0`.
pub(crate) fn ok_response(component: Option<&str>, messages: Vec<Bytes>) -> Response<GatewayBody> {
    let mut frames = Vec::with_capacity(messages.len() + 1);
    for m in messages {
        let mut framed = BytesMut::with_capacity(PREFIX + m.len());
        framed.extend_from_slice(&[0]);
        framed.extend_from_slice(&(m.len() as u32).to_be_bytes());
        framed.extend_from_slice(&m);
        frames.push(Frame::data(framed.freeze()));
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    frames.push(Frame::trailers(trailers));
    let mut resp = Response::new(body::frames(frames));
    base_headers(resp.headers_mut(), component);
    resp
}

/// A trailers-only error response.
pub(crate) fn status_response(component: Option<&str>, status: &Status) -> Response<GatewayBody> {
    let mut resp = Response::new(body::full(Bytes::new()));
    base_headers(resp.headers_mut(), component);
    status_headers(resp.headers_mut(), status);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_and_junk_is_ignored() {
        let t = |s: &'static str| parse_timeout(&HeaderValue::from_static(s));
        assert_eq!(t("100m"), Some(Duration::from_millis(100)));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("123456789S"), None);
        assert_eq!(t("m"), None);
        assert_eq!(t("-1S"), None);
        assert_eq!(t("10x"), None);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("a b%\nü"), "a b%25%0A%C3%BC");
    }

    #[tokio::test]
    async fn read_rejects_oversize_compressed_and_truncated() {
        let body = |b: &'static [u8]| http_body_util::Full::new(Bytes::from_static(b));
        let ok = read_message(body(b"\0\0\0\0\x02hi"), 10).await.unwrap();
        assert_eq!(ok, Bytes::from_static(b"hi"));
        let big = read_message(body(b"\0\0\0\x01\0"), 10).await.unwrap_err();
        assert_eq!(big.code, Code::ResourceExhausted);
        let gz = read_message(body(b"\x01\0\0\0\x02hi"), 10)
            .await
            .unwrap_err();
        assert_eq!(gz.code, Code::Unimplemented);
        let short = read_message(body(b"\0\0\0\0\x05hi"), 10).await.unwrap_err();
        assert_eq!(short.code, Code::Internal);
        let two = read_message(body(b"\0\0\0\0\x01h\0"), 10)
            .await
            .unwrap_err();
        assert_eq!(two.code, Code::Unimplemented);
    }
}
