//! The gateway's gRPC framing: the length-prefixed request message read from
//! a client's HTTP/2 body, and the `grpc-timeout` header.

use std::convert::Infallible;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::StreamBody;
use hyper::body::Frame;
use vimana_gateway::{parse_timeout, read_message};

/// Message size limits the gateway may be configured with.
const LIMITS: [usize; 6] = [0, 1, 5, 64, 1024, 4 << 20];

/// The first byte picks the size limit (low 3 bits) and the size of the
/// body's DATA frames (high 5 bits, 1-32 bytes); the rest is the body. An
/// accepted message must be exactly the body after its 5-byte prefix and
/// within the limit. The rest is also read as a `grpc-timeout` value.
pub fn grpc_frame(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(selector & 7) % LIMITS.len()];
    let chunk = usize::from(selector >> 3) + 1;
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
        .chunks(chunk)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let stream = StreamBody::new(futures::stream::iter(frames));
    if let Ok(message) = futures::executor::block_on(read_message(stream, limit)) {
        assert!(message.len() <= limit, "message over the limit accepted");
        assert_eq!(body.len(), 5 + message.len(), "bytes besides one message");
        assert_eq!(&body[5..], &message[..], "message differs from the body");
    }
    if let Ok(value) = HeaderValue::from_bytes(body) {
        let _ = parse_timeout(&value);
    }
}
