//! Response bodies: a boxed body type for every response, and a body made
//! of ready frames (data and trailers) for gRPC answers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

/// The error type of boxed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every gateway response.
pub type GatewayBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body that yields frames it already holds.
#[derive(Debug, Default)]
pub(crate) struct FramesBody {
    frames: VecDeque<Frame<Bytes>>,
}

impl Body for FramesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let len: usize = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(Bytes::len))
            .sum();
        if self.frames.iter().any(Frame::is_trailers) {
            let mut hint = SizeHint::new();
            hint.set_lower(len as u64);
            hint
        } else {
            SizeHint::with_exact(len as u64)
        }
    }
}

/// A body of these frames.
pub(crate) fn frames(frames: Vec<Frame<Bytes>>) -> GatewayBody {
    FramesBody {
        frames: frames.into(),
    }
    .map_err(|never| match never {})
    .boxed_unsync()
}

/// A body of one chunk (or none when empty).
pub(crate) fn full(data: impl Into<Bytes>) -> GatewayBody {
    let data = data.into();
    if data.is_empty() {
        frames(Vec::new())
    } else {
        frames(vec![Frame::data(data)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_body_yields_data_then_trailers() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let body = frames(vec![
            Frame::data(Bytes::from_static(b"ab")),
            Frame::trailers(trailers),
        ]);
        let collected = body.collect().await.unwrap();
        assert_eq!(
            collected.trailers().and_then(|t| t.get("grpc-status")),
            Some(&http::HeaderValue::from_static("0"))
        );
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"ab"));
    }
}
