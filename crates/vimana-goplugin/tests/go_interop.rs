//! Rust host <-> real Go go-plugin plugin (Debian's hashicorp/go-plugin),
//! with and without AutoMTLS (go-plugin's certs are ECDSA P-521).
//! Skipped when `go` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use vimana_goplugin::{HandshakeConfig, LaunchConfig, launch, reattach};

/// Builds tests/go_plugin/main.go; `None` if go is missing.
fn build_go_plugin() -> Option<PathBuf> {
    if Command::new("go").arg("version").output().is_err() {
        println!("SKIP: go not installed");
        return None;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vimana-goplugin-go");
    std::fs::create_dir_all(&out_dir).unwrap();
    let gopath = out_dir.join("gopath");
    let bin = out_dir.join("go-test-plugin");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(manifest.join("tests/go_plugin/main.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .status()
        .unwrap();
    if !status.success() {
        println!(
            "SKIP: go build of the go-plugin fixture failed (is golang-github-hashicorp-go-plugin-dev installed?)"
        );
        return None;
    }
    Some(bin)
}

#[tokio::test]
async fn go_plugin_interop() {
    let Some(bin) = build_go_plugin() else {
        return;
    };

    // AutoMTLS: the Go plugin accepts our cert, we pin its P-521 cert.
    let mut client = launch(LaunchConfig::new(&bin, HandshakeConfig::spacecore()))
        .await
        .unwrap();
    let rc = client.reattach_config();
    let der = rc.server_cert_der.clone().expect("go-plugin AutoMTLS cert");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let curve = cert.public_key().algorithm.parameters.as_ref().unwrap();
    assert_eq!(
        curve.as_oid().unwrap().to_id_string(),
        "1.3.132.0.35",
        "P-521"
    );
    client.health().await.unwrap();
    assert_eq!(client.app_version(), 1);
    // Debian's go-plugin predates GRPCStdio: reported as not offered.
    assert!(client.stdio().await.unwrap().is_none());
    // hclog JSON from go-plugin on stderr
    let mut lines = client.stderr_lines().unwrap();
    let mut saw_structured = false;
    while let Ok(Some(l)) = tokio::time::timeout(Duration::from_secs(2), lines.recv()).await {
        if l.structured && l.message == "plugin address" {
            saw_structured = true;
            assert_eq!(l.fields["network"], "unix");
            break;
        }
    }
    assert!(saw_structured, "hclog 'plugin address' line");

    let second = reattach(rc, Duration::from_secs(5)).await.unwrap();
    second.health().await.unwrap();
    let t0 = std::time::Instant::now();
    client.shutdown().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "exited on Shutdown");
    assert!(!client.is_alive());
    second.wait_exit().await;

    // Plaintext.
    let mut cfg = LaunchConfig::new(&bin, HandshakeConfig::spacecore());
    cfg.auto_mtls = false;
    let client = launch(cfg).await.unwrap();
    assert_eq!(client.reattach_config().server_cert_der, None);
    client.health().await.unwrap();
    client.shutdown().await.unwrap();
    assert!(!client.is_alive());

    // Wrong cookie: go-plugin's own message ends up in the error.
    let mut hs = HandshakeConfig::spacecore();
    hs.cookie_value = "v0".into();
    let e = launch(LaunchConfig::new(&bin, hs)).await.unwrap_err();
    assert!(e.to_string().contains("This binary is a plugin"), "{e}");
}
