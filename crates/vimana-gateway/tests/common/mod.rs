//! Shared test helpers: fake backends, a gateway on a loopback port, and
//! real HTTP/2 (h2c and TLS) and HTTP/1.1 clients.
#![allow(dead_code)]

pub mod client;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use vimana_gateway::{
    BackendFuture, CancellationToken, DomainRoute, Gateway, GatewayConfig, GrpcBackend,
    HttpBackend, LocalCa, Routes, ServerRoute, Status, VersionRoute,
};

/// Encodes `{1: a, 2: b}` as fixed64 doubles (wire type 1).
pub fn encode_pair(a: f64, b: f64) -> Bytes {
    let mut out = vec![0x09];
    out.extend_from_slice(&a.to_le_bytes());
    out.push(0x11);
    out.extend_from_slice(&b.to_le_bytes());
    Bytes::from(out)
}

/// Decodes fixed64 doubles by field number; other wire types are refused.
pub fn decode_doubles(msg: &[u8]) -> Result<HashMap<u8, f64>, Status> {
    let mut fields = HashMap::new();
    let mut rest = msg;
    while let [tag, tail @ ..] = rest {
        if tag & 7 != 1 || tail.len() < 8 {
            return Err(Status::invalid_argument("expected fixed64 fields"));
        }
        let (value, tail) = tail.split_at(8);
        let bytes: [u8; 8] = value.try_into().unwrap();
        fields.insert(tag >> 3, f64::from_le_bytes(bytes));
        rest = tail;
    }
    Ok(fields)
}

/// The adder: `AddFloats` sums fields 1 and 2 into field 1; `Slow`
/// sleeps `delay` ignoring its deadline; `Fail` answers INVALID_ARGUMENT;
/// `Twice` streams the request back twice.
pub struct Adder {
    pub delay: Duration,
}

impl Adder {
    async fn call(&self, method: &str, request: Bytes) -> Result<Bytes, Status> {
        match method {
            "AddFloats" => {
                let f = decode_doubles(&request)?;
                let sum = f.get(&1).copied().unwrap_or(0.0) + f.get(&2).copied().unwrap_or(0.0);
                let mut out = vec![0x09];
                out.extend_from_slice(&sum.to_le_bytes());
                Ok(Bytes::from(out))
            }
            "Slow" => {
                tokio::time::sleep(self.delay).await;
                Ok(request)
            }
            "Fail" => Err(Status::invalid_argument("bad operands: ü%")),
            "Panic" => panic!("the backend panicked"),
            other => Err(Status::unimplemented(format!("no method {other}"))),
        }
    }
}

impl GrpcBackend for Adder {
    fn unary<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        _deadline: Duration,
    ) -> BackendFuture<'a, Bytes> {
        Box::pin(self.call(method, request))
    }

    fn server_stream<'a>(
        &'a self,
        _m: &'a str,
        req: Bytes,
        _d: Duration,
    ) -> BackendFuture<'a, Vec<Bytes>> {
        Box::pin(async move { Ok(vec![req.clone(), req]) })
    }

    fn is_server_streaming(&self, method: &str) -> bool {
        method == "Twice"
    }

    fn json<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        _deadline: Duration,
    ) -> BackendFuture<'a, Bytes> {
        Box::pin(async move {
            let v: serde_json::Value = serde_json::from_slice(&request)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            match method {
                "AddFloats" => {
                    let sum = v["a"].as_f64().unwrap_or(0.0) + v["b"].as_f64().unwrap_or(0.0);
                    Ok(Bytes::from(serde_json::json!({ "sum": sum }).to_string()))
                }
                _ => Err(Status::unimplemented(format!("no method {method}"))),
            }
        })
    }
}

/// An HTTP component echoing method, path and body.
pub struct Echo;

impl HttpBackend for Echo {
    fn handle(
        &self,
        req: http::Request<Bytes>,
        _deadline: Duration,
    ) -> BackendFuture<'_, http::Response<Bytes>> {
        let text = format!("{} {} ", req.method(), req.uri().path());
        let mut body = text.into_bytes();
        body.extend_from_slice(req.body());
        Box::pin(async move {
            Ok(http::Response::builder()
                .status(201)
                .header("x-echo", "yes")
                .body(Bytes::from(body))
                .unwrap())
        })
    }
}

/// A version route with a gRPC backend.
pub fn grpc_version(name: &str, weight: u32, backend: Arc<dyn GrpcBackend>) -> VersionRoute {
    VersionRoute {
        name: name.into(),
        weight,
        grpc: Some(backend),
        http: None,
    }
}

/// A slow-capable adder.
pub fn adder() -> Arc<dyn GrpcBackend> {
    Arc::new(Adder {
        delay: Duration::from_secs(2),
    })
}

/// The `demo` domain: `demo.Adder` on `demo.vimana.test` and alias
/// `add.example.test`.
pub fn demo_domain(versions: Vec<VersionRoute>) -> DomainRoute {
    let adder = Arc::new(ServerRoute {
        name: "adder".into(),
        deadline: Duration::from_secs(5),
        versions,
    });
    DomainRoute {
        id: "demo".into(),
        hostnames: vec!["demo.vimana.test".into(), "Add.Example.Test".into()],
        services: HashMap::from([("demo.Adder".to_string(), adder)]),
        ..Default::default()
    }
}

/// The single-version demo routes.
pub fn demo_routes() -> Routes {
    Routes {
        domains: vec![demo_domain(vec![grpc_version("demo:adder@v1", 1, adder())])],
    }
}

/// A running gateway.
pub struct Running {
    pub gateway: Gateway,
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub ca: Arc<LocalCa>,
    _dir: tempfile::TempDir,
}

/// Starts a gateway (h2c, or TLS with a fresh local CA) on a loopback port.
pub async fn start(routes: Routes, tls: bool, config: GatewayConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(LocalCa::load_or_create(dir.path()).unwrap());
    let gateway = Gateway::new(GatewayConfig {
        local_ca: Some(Arc::clone(&ca)),
        ..config
    });
    gateway.set_routes(routes).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let (g, s) = (gateway.clone(), stop.clone());
    let task = tokio::spawn(async move {
        if tls {
            g.serve_tls(listener, s).await.unwrap();
        } else {
            g.serve_h2c(listener, s).await.unwrap();
        }
    });
    Running {
        gateway,
        addr,
        stop,
        task,
        ca,
        _dir: dir,
    }
}
