//! One gRPC call, `foo.bar.AdderService/AddFloats(3.5, -1.2)`, over raw
//! hyper HTTP/2 connections: h2c with prior knowledge for `http://`
//! targets, rustls (ALPN `h2`) for `https://` targets. Kept free of tonic's
//! client stack so the load generator's own overhead stays small.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::adder_pb::{AddFloatsRequest, AddFloatsResponse};

/// Request path of AddFloats.
const PATH: &str = "/foo.bar.AdderService/AddFloats";
/// The operands every request carries, and the expected answer.
const X: f64 = 3.5;
const Y: f64 = -1.2;
const EXPECTED: f64 = 2.3;

/// The length-prefixed gRPC message of `AddFloatsRequest{3.5, -1.2}`: a
/// 1-byte compression flag (0), a 4-byte big-endian length, the protobuf.
pub fn request_frame() -> Bytes {
    let msg = AddFloatsRequest { x: X, y: Y }.encode_to_vec();
    let mut buf = BytesMut::with_capacity(5 + msg.len());
    buf.put_u8(0);
    buf.put_u32(u32::try_from(msg.len()).unwrap_or(u32::MAX));
    buf.put_slice(&msg);
    buf.freeze()
}

/// Where and how to connect, and what to put in `:authority`.
#[derive(Clone)]
pub struct Target {
    /// TCP address to connect to.
    pub addr: SocketAddr,
    /// `Some` for TLS: the client configuration and SNI name.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// Full request URI (scheme, authority, path).
    pub uri: Uri,
    /// The request body, shared by every request.
    pub body: Bytes,
}

impl Target {
    /// Resolves `target` (`http://host:port` or `https://host:port`);
    /// `authority` overrides the `:authority` header (default: the target's).
    /// TLS needs `tls` = the client configuration and SNI name.
    pub async fn new(
        target: &str,
        authority: Option<&str>,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Result<Self> {
        let uri: Uri = target
            .parse()
            .with_context(|| format!("bad target {target:?}"))?;
        let scheme = uri.scheme_str().unwrap_or("http");
        let Some(hostport) = uri.authority() else {
            bail!("target {target:?} has no host:port");
        };
        let port = hostport
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let addr = tokio::net::lookup_host((hostport.host(), port))
            .await
            .with_context(|| format!("resolving {hostport}"))?
            .next()
            .with_context(|| format!("{hostport} resolves to no address"))?;
        match (scheme, &tls) {
            ("http", None) | ("https", Some(_)) => {}
            ("https", None) => bail!("an https:// target needs --tls-ca"),
            ("http", Some(_)) => bail!("--tls-ca needs an https:// target"),
            (other, _) => bail!("unsupported scheme {other:?}"),
        }
        let authority = authority.unwrap_or(hostport.as_str());
        let uri = format!("{scheme}://{authority}{PATH}")
            .parse()
            .with_context(|| format!("bad authority {authority:?}"))?;
        Ok(Self {
            addr,
            tls,
            uri,
            body: request_frame(),
        })
    }

    /// Opens one HTTP/2 connection; its driver runs as a spawned task.
    pub async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        match &self.tls {
            None => {
                let (send, conn) = builder.handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(conn);
                Ok(send)
            }
            Some((config, name)) => {
                let tls = TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?;
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    bail!("the server did not negotiate ALPN h2");
                }
                let (send, conn) = builder.handshake(TokioIo::new(tls)).await?;
                tokio::spawn(conn);
                Ok(send)
            }
        }
    }

    /// Sends one AddFloats call and checks HTTP 200, `grpc-status: 0` and
    /// `result == 2.3`.
    pub async fn call(&self, send: &mut SendRequest<Full<Bytes>>) -> Result<()> {
        let req = Request::post(self.uri.clone())
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(self.body.clone()))?;
        let resp = send.send_request(req).await?;
        if resp.status() != http::StatusCode::OK {
            bail!("HTTP status {}", resp.status());
        }
        // A trailers-only response carries grpc-status in the headers.
        let head_status = resp.headers().get("grpc-status").cloned();
        let collected = resp.into_body().collect().await?;
        let status = head_status.or_else(|| {
            collected
                .trailers()
                .and_then(|t| t.get("grpc-status").cloned())
        });
        match status.as_ref().map(|s| s.as_bytes()) {
            Some(b"0") => {}
            Some(s) => bail!("grpc-status {}", String::from_utf8_lossy(s)),
            None => bail!("no grpc-status"),
        }
        let body = collected.to_bytes();
        if body.len() < 5 || body[0] != 0 {
            bail!("malformed gRPC response frame");
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let msg = body.get(5..5 + len).context("truncated gRPC response")?;
        let result = AddFloatsResponse::decode(msg)?.result;
        if (result - EXPECTED).abs() > 1e-9 {
            bail!("wrong result {result}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// benches/gateway.sh hard-codes these bytes as h2load's request body.
    #[test]
    fn request_frame_matches_the_script() {
        let expected: &[u8] = &[
            0x00, 0x00, 0x00, 0x00, 0x12, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x40,
            0x11, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0xf3, 0xbf,
        ];
        assert_eq!(&super::request_frame()[..], expected);
    }
}
