//! `native-adder`: the adder example's `foo.bar.AdderService` implemented
//! natively with tonic, the baseline the gateway benchmark compares the
//! WebAssembly component served by vimana against.
//!
//! It serves plain HTTP/2 (h2c, prior knowledge) on `--listen` and, when a
//! certificate and key are given, TLS (ALPN `h2`) on `--tls-listen`. Once
//! bound it prints `listening <addr>` (and `listening-tls <addr>`) on stdout
//! and then runs until killed.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};
use tonic::{Request, Response, Status};

use crate::adder_pb::adder_service_server::{AdderService, AdderServiceServer};
use crate::adder_pb::{AddFloatsRequest, AddFloatsResponse};

/// Command-line options of `native-adder`.
#[derive(clap::Args, Debug)]
pub struct Opts {
    /// Address for plain HTTP/2 (h2c); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address for TLS (used only with --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub tls_listen: SocketAddr,
    /// PEM certificate chain for TLS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
}

/// The service: `result = x + y`.
#[derive(Debug, Default, Clone, Copy)]
struct Adder;

#[tonic::async_trait]
impl AdderService for Adder {
    async fn add_floats(
        &self,
        request: Request<AddFloatsRequest>,
    ) -> Result<Response<AddFloatsResponse>, Status> {
        let AddFloatsRequest { x, y } = request.into_inner();
        Ok(Response::new(AddFloatsResponse { result: x + y }))
    }
}

/// A server-side TLS connection that tonic can serve.
struct TlsConn(TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Accepts TCP connections, completes TLS handshakes concurrently and hands
/// the established connections to tonic through the returned stream.
fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    eprintln!("native-adder: accept: {e}");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        let _ = tx.send(Ok(TlsConn(tls))).await;
                    }
                    Err(e) => eprintln!("native-adder: TLS handshake: {e}"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Binds, announces the addresses and serves until the process is killed.
pub async fn run(opts: Opts) -> Result<String> {
    let h2c = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let h2c_addr = h2c.local_addr()?;
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(
        Server::builder()
            .add_service(AdderServiceServer::new(Adder))
            .serve_with_incoming(TcpIncoming::from(h2c).with_nodelay(Some(true))),
    );
    println!("listening {h2c_addr}");
    if let (Some(cert), Some(key)) = (&opts.tls_cert, &opts.tls_key) {
        let acceptor = TlsAcceptor::from(Arc::clone(&crate::tls::server_config(cert, key)?));
        let tls = TcpListener::bind(opts.tls_listen)
            .await
            .with_context(|| format!("binding {}", opts.tls_listen))?;
        let tls_addr = tls.local_addr()?;
        servers.spawn(
            Server::builder()
                .add_service(AdderServiceServer::new(Adder))
                .serve_with_incoming(tls_incoming(tls, acceptor)),
        );
        println!("listening-tls {tls_addr}");
    }
    if let Some(done) = servers.join_next().await {
        done.context("server task")?.context("serving")?;
    }
    anyhow::bail!("a server stopped unexpectedly")
}
