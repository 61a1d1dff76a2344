//! Host-side e2e scenarios against the re-executed test binary.

use std::time::Duration;

use futures::StreamExt;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use vimana_goplugin::{
    GoPluginError, LaunchConfig, Output, PluginClient, StdioChannel, launch, reattach,
};

use super::plugin;

fn config() -> LaunchConfig {
    let exe = std::env::current_exe().unwrap();
    let mut hs = plugin::handshake();
    hs.app_versions = vec![1];
    let mut cfg = LaunchConfig::new(exe, hs);
    cfg.env.push((plugin::ENV.into(), "1".into()));
    cfg
}

/// Calls the app route (health re-mounted as vimana.test.App) over channel().
async fn app_check(client: &PluginClient) -> i32 {
    let mut grpc = tonic::client::Grpc::new(client.channel());
    grpc.ready().await.unwrap();
    let codec: tonic_prost::ProstCodec<HealthCheckRequest, HealthCheckResponse> =
        tonic_prost::ProstCodec::default();
    let resp = grpc
        .unary(
            tonic::Request::new(HealthCheckRequest {
                service: "echo".into(),
            }),
            http::uri::PathAndQuery::from_static(plugin::APP_PATH),
            codec,
        )
        .await
        .unwrap();
    resp.into_inner().status
}

pub async fn mtls_health_stdio_reattach_shutdown() {
    let mut client = launch(config()).await.unwrap();
    assert!(client.is_alive());
    assert_eq!(client.app_version(), 1);
    let rc = client.reattach_config();
    assert_eq!(rc.pid, client.pid());
    assert_eq!(rc.network, "unix");
    assert!(rc.pid_start_time.is_some());
    assert!(rc.server_cert_der.is_some(), "AutoMTLS cert expected");
    assert!(rc.client_cert_pem.is_some() && rc.client_key_pem.is_some());
    client.health().await.unwrap();
    assert_eq!(app_check(&client).await, 1, "app route: echo SERVING");

    // stderr: hclog JSON and raw lines
    let mut lines = client.stderr_lines().unwrap();
    assert!(client.stderr_lines().is_none(), "take once");
    let first = tokio::time::timeout(Duration::from_secs(5), lines.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.structured);
    assert_eq!(first.level.as_deref(), Some("info"));
    assert_eq!(first.message, "test plugin starting");
    assert_eq!(first.fields["answer"], 42);
    let second = lines.recv().await.unwrap();
    assert!(!second.structured);
    assert_eq!(second.message, "a raw stderr line");

    // stdio stream
    let stream = client.stdio().await.unwrap().expect("stdio offered");
    let mut stream = Box::pin(stream);
    let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chunk.channel, StdioChannel::Stdout);
    assert_eq!(&chunk.data[..], b"hello from plugin\n");

    // reattach from a second client, through a JSON round trip
    let json = serde_json::to_string(&rc).unwrap();
    let rc2: vimana_goplugin::ReattachConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(rc2, rc);
    let second_client = reattach(rc2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(second_client.pid(), client.pid());
    assert!(second_client.is_alive());
    second_client.health().await.unwrap();
    assert_eq!(app_check(&second_client).await, 1);

    // pinning: a different server cert is refused
    let mut bad = rc.clone();
    if let Some(der) = bad.server_cert_der.as_mut() {
        let last = der.len() - 1;
        der[last] ^= 0xff;
    }
    let e = reattach(bad, Duration::from_secs(3)).await.unwrap_err();
    assert!(matches!(e, GoPluginError::Reattach { .. }), "{e}");
    // the plugin refuses a client cert other than the one it was given
    let other = vimana_goplugin::tls::generate_cert(false).unwrap();
    let mut bad = rc.clone();
    bad.client_cert_pem = Some(other.cert_pem);
    bad.client_key_pem = Some(other.key_pem);
    assert!(reattach(bad, Duration::from_secs(3)).await.is_err());
    // pid reuse is detected through the start time
    let mut bad = rc.clone();
    bad.pid_start_time = rc.pid_start_time.map(|s| s + 1);
    let e = reattach(bad, Duration::from_secs(3)).await.unwrap_err();
    assert!(e.to_string().contains("another process"), "{e}");

    // shutdown through the reattached client: the process exits
    let t0 = std::time::Instant::now();
    second_client.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), client.wait_exit())
        .await
        .unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "graceful, not killed"
    );
    assert!(!client.is_alive());
    assert!(!second_client.is_alive());
    // the stdio stream ends with the plugin
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.collect::<Vec<_>>()).await;
    assert!(rest.is_ok(), "stdio stream should end");
    let e = reattach(rc, Duration::from_secs(2)).await.unwrap_err();
    assert!(e.to_string().contains("gone"), "{e}");
}

pub async fn plaintext_version_negotiation_kill() {
    let mut cfg = config();
    cfg.auto_mtls = false;
    cfg.handshake.app_versions = vec![1, 2];
    let client = launch(cfg).await.unwrap();
    assert_eq!(client.app_version(), 2, "plugin speaks [2,1]; highest wins");
    let rc = client.reattach_config();
    assert_eq!(rc.server_cert_der, None);
    assert_eq!(rc.client_cert_pem, None);
    client.health().await.unwrap();
    let again = reattach(rc, Duration::from_secs(5)).await.unwrap();
    again.health().await.unwrap();
    client.kill();
    tokio::time::timeout(Duration::from_secs(5), client.wait_exit())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), again.wait_exit())
        .await
        .unwrap();
    assert!(!again.is_alive());
}

pub async fn files_output_detached() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plugin.out");
    let err = dir.path().join("plugin.err");
    std::fs::write(&out, "old output from a previous run\n").unwrap();
    let mut cfg = config();
    cfg.output = Output::Files {
        stdout: out.clone(),
        stderr: err.clone(),
    };
    cfg.detach = true;
    let mut client = launch(cfg).await.unwrap();
    assert!(client.stderr_lines().is_none());
    client.health().await.unwrap();
    // own session
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(client.pid() as i32))).unwrap();
    assert_eq!(sid.as_raw(), client.pid() as i32);
    client.shutdown().await.unwrap();
    assert!(!client.is_alive());
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(text.contains("test plugin starting"), "{text}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("old output"), "{text}");
    assert!(text.contains("|unix|"), "{text}");
}

pub async fn wrong_cookie_reports_stderr() {
    let mut cfg = config();
    cfg.handshake.cookie_value = "wrong".into();
    let e = launch(cfg).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, GoPluginError::ExitedBeforeHandshake { .. }),
        "{msg}"
    );
    assert!(msg.contains("status 1"), "{msg}");
    assert!(msg.contains("This binary is a plugin"), "{msg}");
}
