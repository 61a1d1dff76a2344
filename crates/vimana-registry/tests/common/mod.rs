//! A loopback HTTP server for the tests: static files with ETags, Range
//! requests, 304, 404, a mode that cuts the connection after N bytes, and a
//! mode that ignores Range. Every request is recorded.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_none_match: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    files: HashMap<String, (Bytes, Option<String>)>,
    seen: Vec<Seen>,
    cut_next: Option<usize>,
    ignore_range: bool,
}

pub struct Server {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Server {
    pub async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(&st, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn put(&self, path: &str, body: impl Into<Bytes>, etag: Option<&str>) {
        self.state.lock().unwrap().files.insert(
            format!("/{}", path.trim_start_matches('/')),
            (body.into(), etag.map(str::to_string)),
        );
    }

    /// The next response body is cut after `n` bytes (connection dropped).
    pub fn cut_next_after(&self, n: usize) {
        self.state.lock().unwrap().cut_next = Some(n);
    }

    pub fn ignore_range(&self, on: bool) {
        self.state.lock().unwrap().ignore_range = on;
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Body> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut seen = Seen {
        path: req.uri().path().to_string(),
        range: header("range"),
        if_none_match: header("if-none-match"),
        status: 0,
    };
    let mut st = state.lock().unwrap();
    let resp = respond(&mut st, &seen);
    seen.status = resp.status().as_u16();
    st.seen.push(seen);
    resp
}

fn respond(st: &mut State, seen: &Seen) -> Response<Body> {
    let Some((body, etag)) = st.files.get(&seen.path).cloned() else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full(Bytes::from_static(b"not found")))
            .unwrap();
    };
    if let (Some(tag), Some(inm)) = (&etag, &seen.if_none_match)
        && tag == inm
    {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header("etag", tag.as_str())
            .body(full(Bytes::new()))
            .unwrap();
    }
    let len = body.len();
    let mut builder = Response::builder().header("accept-ranges", "bytes");
    if let Some(tag) = &etag {
        builder = builder.header("etag", tag.as_str());
    }
    let start = match (&seen.range, st.ignore_range) {
        (Some(r), false) => {
            let n: usize = r
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse().ok())
                .unwrap();
            if n >= len {
                return builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header("content-range", format!("bytes */{len}"))
                    .body(full(Bytes::new()))
                    .unwrap();
            }
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header("content-range", format!("bytes {n}-{}/{len}", len - 1));
            n
        }
        _ => 0,
    };
    let slice = body.slice(start..);
    builder = builder.header("content-length", slice.len());
    let out = match st.cut_next.take() {
        None => full(slice),
        Some(n) => {
            let head = slice.slice(..n.min(slice.len()));
            let stream = futures::stream::unfold(0u8, move |step| {
                let head = head.clone();
                async move {
                    match step {
                        0 => Some((Ok(Frame::data(head)), 1)),
                        1 => {
                            // Let hyper flush the first part before dropping.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Some((Err(std::io::Error::other("cut")), 2))
                        }
                        _ => None,
                    }
                }
            });
            BodyExt::boxed(StreamBody::new(stream))
        }
    };
    builder.body(out).unwrap()
}

/// A minimal valid index with the given packages `(name, tags, description)`.
pub fn index_toml(repo: &str, packages: &[(&str, &[&str], &str)]) -> String {
    let mut s = format!("schema = 1\n\n[repository]\nname = \"{repo}\"\ndescription = \"test\"\n");
    for (name, tags, desc) in packages {
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        s.push_str(&format!(
            r#"
[[package]]
name = "{name}"
description = "{desc}"
tags = [{tags}]
version = "1.0.0"

[package.node_types.light]
description = "light"
kind = "process"
start = ["{{{{bin}}}}", "--store", "{{{{store}}}}"]

[[package.node_types.light.artifacts]]
os = "linux"
arch = "x86_64"
url = "bin/{name}"
format = "raw"
bin = "{name}"
"#,
            tags = tags.join(", ")
        ));
    }
    s
}
