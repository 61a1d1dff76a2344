//! Real clients: hyper's HTTP/2 client over TCP (prior knowledge) or over
//! tokio-rustls, and hyper's HTTP/1.1 client.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// An HTTP/2 connection.
pub type H2 = http2::SendRequest<Full<Bytes>>;

/// HTTP/2 with prior knowledge over plain TCP.
pub async fn h2c(addr: SocketAddr) -> H2 {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A TLS connection trusting only `ca_pem`, with SNI `server_name` and
/// ALPN h2.
pub async fn tls(
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// HTTP/2 over TLS (see [`tls`]).
pub async fn h2_tls(addr: SocketAddr, ca_pem: &str, server_name: &str) -> H2 {
    let stream = tls(addr, ca_pem, server_name).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// An HTTP/1.1 connection over plain TCP.
pub async fn h1(addr: SocketAddr) -> http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// A length-prefixed, uncompressed gRPC message.
pub fn frame(msg: &[u8]) -> Bytes {
    let mut out = vec![0];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    Bytes::from(out)
}

/// What a gRPC call answered.
#[derive(Debug)]
pub struct Reply {
    pub http: StatusCode,
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
    /// `grpc-status` from the trailers, or the headers when trailers-only.
    pub status: u32,
    pub message: String,
}

impl Reply {
    /// The `vimana-component` header.
    pub fn component(&self) -> String {
        self.headers
            .get("vimana-component")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// Sends a gRPC request with a raw (already framed) body.
pub async fn grpc_raw(
    h2: &mut H2,
    url: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> Result<Reply, hyper::Error> {
    let mut req = Request::post(url)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = h2.send_request(req.body(Full::new(body)).unwrap()).await?;
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    let mut data = collected.to_bytes();
    let mut messages = Vec::new();
    while data.len() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        data.advance(5);
        messages.push(data.split_to(len));
    }
    let source = trailers.as_ref().unwrap_or(&parts.headers);
    let get = |k: &str| {
        source
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    Ok(Reply {
        http: parts.status,
        status: get("grpc-status").parse().unwrap(),
        message: get("grpc-message"),
        headers: parts.headers,
        messages,
    })
}

/// Sends one gRPC message.
pub async fn grpc(h2: &mut H2, url: &str, msg: &[u8], headers: &[(&str, &str)]) -> Reply {
    grpc_raw(h2, url, frame(msg), headers).await.unwrap()
}

/// Decodes the adder's answer (field 1, fixed64 double).
pub fn sum_of(msg: &[u8]) -> f64 {
    assert_eq!(msg[0], 0x09);
    f64::from_le_bytes(msg[1..9].try_into().unwrap())
}
