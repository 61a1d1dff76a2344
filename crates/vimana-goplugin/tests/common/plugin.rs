//! The test plugin: serves health, go-plugin's services, an app route and a
//! stdio stream that says hello every 50 ms.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use vimana_goplugin::HandshakeConfig;
use vimana_goplugin::serve::{ServeConfig, StdioWriter, serve_with_stdio};

pub const ENV: &str = "VIMANA_GOPLUGIN_TEST_PLUGIN";
pub const APP_PATH: &str = "/vimana.test.App/Check";

pub fn handshake() -> HandshakeConfig {
    HandshakeConfig {
        cookie_key: "VIMANA_E2E_PLUGIN".into(),
        cookie_value: "e2e-v1".into(),
        app_versions: vec![2, 1],
    }
}

/// An "app" service: tonic-health's server mounted as `vimana.test.App`.
#[derive(Clone)]
struct App<S>(S);

impl<S> NamedService for App<S> {
    const NAME: &'static str = "vimana.test.App";
}

impl<S> tower::Service<http::Request<Body>> for App<S>
where
    S: tower::Service<http::Request<Body>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let path = req
            .uri()
            .path()
            .replace("/vimana.test.App/", "/grpc.health.v1.Health/");
        *req.uri_mut() = http::Uri::builder().path_and_query(path).build().unwrap();
        self.0.call(req)
    }
}

pub fn run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        eprintln!(
            r#"{{"@level":"info","@message":"test plugin starting","@module":"e2e","answer":42}}"#
        );
        eprintln!("a raw stderr line");
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("echo", tonic_health::ServingStatus::Serving)
            .await;
        let stdio = StdioWriter::new();
        let w = stdio.clone();
        tokio::spawn(async move {
            loop {
                w.stdout("hello from plugin\n");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let routes = Routes::new(App(health));
        let cfg = ServeConfig {
            handshake: handshake(),
        };
        serve_with_stdio(cfg, routes, stdio).await.unwrap();
        eprintln!("test plugin: served, exiting");
    });
}
