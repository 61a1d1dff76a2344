#![allow(clippy::unwrap_used, clippy::expect_used)]
//! gRPC over TLS: certificates by SNI from the local CA or the domain's
//! own material, checked by clients that trust only that CA; and Python
//! grpcio as an independent client.

mod common;

use std::io::Write;
use std::process::Command;

use common::client::{self, grpc, sum_of};
use vimana_gateway::{GatewayConfig, LocalCa, Routes, TlsMaterial};

#[tokio::test]
async fn sni_canonical_name_and_alias_get_local_ca_certificates() {
    let gw = common::start(common::demo_routes(), true, GatewayConfig::default()).await;
    let ca = gw.ca.ca_pem();
    for host in ["demo.vimana.test", "add.example.test"] {
        let mut h2 = client::h2_tls(gw.addr, &ca, host).await;
        let url = format!("https://{host}/demo.Adder/AddFloats");
        let reply = grpc(&mut h2, &url, &common::encode_pair(4.0, 0.5), &[]).await;
        assert_eq!(reply.status, 0, "{host}: {reply:?}");
        assert_eq!(sum_of(&reply.messages[0]), 4.5);
        assert_eq!(reply.component(), "demo:adder@v1");
    }
}

#[tokio::test]
async fn unknown_sni_fails_the_handshake_and_other_cas_are_not_trusted() {
    let gw = common::start(common::demo_routes(), true, GatewayConfig::default()).await;
    let err = client::tls(gw.addr, &gw.ca.ca_pem(), "unknown.test").await;
    assert!(err.is_err(), "handshake for an unknown name must fail");

    let other_dir = tempfile::tempdir().unwrap();
    let other = LocalCa::load_or_create(other_dir.path()).unwrap();
    let err = client::tls(gw.addr, &other.ca_pem(), "demo.vimana.test").await;
    assert!(
        err.is_err(),
        "a certificate from another CA must not verify"
    );

    // The listener still serves after failed handshakes.
    let mut h2 = client::h2_tls(gw.addr, &gw.ca.ca_pem(), "demo.vimana.test").await;
    let url = "https://demo.vimana.test/demo.Adder/AddFloats";
    let reply = grpc(&mut h2, url, &common::encode_pair(1.0, 1.0), &[]).await;
    assert_eq!(reply.status, 0);
}

#[tokio::test]
async fn a_host_of_another_domain_than_the_sni_name_is_refused() {
    let mut routes = common::demo_routes();
    let mut other = routes.domains[0].clone();
    other.id = "other".into();
    other.hostnames = vec!["other.vimana.test".into()];
    routes.domains.push(other);
    let gw = common::start(routes, true, GatewayConfig::default()).await;
    let mut h2 = client::h2_tls(gw.addr, &gw.ca.ca_pem(), "demo.vimana.test").await;
    let url = "https://other.vimana.test/demo.Adder/AddFloats";
    let reply = grpc(&mut h2, url, &common::encode_pair(1.0, 1.0), &[]).await;
    assert_eq!(
        reply.status,
        vimana_gateway::Code::NotFound.as_u32(),
        "{reply:?}"
    );
    // The alias of the SNI name's own domain is fine.
    let url = "https://add.example.test/demo.Adder/AddFloats";
    let reply = grpc(&mut h2, url, &common::encode_pair(1.0, 1.0), &[]).await;
    assert_eq!(reply.status, 0, "{reply:?}");
}

#[tokio::test]
async fn a_client_without_sni_gets_the_first_domains_certificate() {
    // rustls sends no SNI for an IP address: the gateway presents the first
    // domain's certificate, which the client then rejects for the name
    // (not for its issuer: the chain is the local CA's).
    let gw = common::start(common::demo_routes(), true, GatewayConfig::default()).await;
    let err = client::tls(gw.addr, &gw.ca.ca_pem(), "127.0.0.1")
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("NotValidForName"), "{text}");
}

#[tokio::test]
async fn a_domain_with_its_own_certificate_serves_it() {
    // The domain's own material: a self-signed certificate.
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["demo.vimana.test".to_string()]).unwrap();
    let self_signed = params.self_signed(&key).unwrap();
    let mut domain = common::demo_domain(vec![common::grpc_version(
        "demo:adder@v1",
        1,
        common::adder(),
    )]);
    domain.tls = Some(TlsMaterial {
        cert_chain_pem: self_signed.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
    });
    let routes = Routes {
        domains: vec![domain],
    };
    let gw = common::start(routes, true, GatewayConfig::default()).await;
    // Trusting the self-signed certificate itself works; the local CA does not.
    let mut h2 = client::h2_tls(gw.addr, &self_signed.pem(), "demo.vimana.test").await;
    let url = "https://demo.vimana.test/demo.Adder/AddFloats";
    let reply = grpc(&mut h2, url, &common::encode_pair(1.0, 2.0), &[]).await;
    assert_eq!(sum_of(&reply.messages[0]), 3.0);
    assert!(
        client::tls(gw.addr, &gw.ca.ca_pem(), "demo.vimana.test")
            .await
            .is_err()
    );

    // Unusable material is refused and the old table is kept.
    let mut bad = common::demo_routes();
    bad.domains[0].tls = Some(TlsMaterial {
        cert_chain_pem: b"junk".to_vec(),
        key_pem: b"junk".to_vec(),
    });
    assert!(gw.gateway.set_routes(bad).is_err());
    let mut h2 = client::h2_tls(gw.addr, &self_signed.pem(), "demo.vimana.test").await;
    let reply = grpc(&mut h2, url, &common::encode_pair(2.0, 2.0), &[]).await;
    assert_eq!(sum_of(&reply.messages[0]), 4.0);
}

const PYTHON_CLIENT: &str = r#"
import sys, struct, grpc
port, ca_path, host = sys.argv[1], sys.argv[2], sys.argv[3]
creds = grpc.ssl_channel_credentials(root_certificates=open(ca_path, 'rb').read())
channel = grpc.secure_channel('127.0.0.1:' + port, creds,
                              options=[('grpc.ssl_target_name_override', host),
                                       ('grpc.default_authority', host)])
call = channel.unary_unary('/demo.Adder/AddFloats')
req = b'\x09' + struct.pack('<d', 1.25) + b'\x11' + struct.pack('<d', 2.5)
resp, info = call.with_call(req, timeout=10)
assert resp[0] == 0x09, resp
md = dict(info.initial_metadata())
print('sum', struct.unpack('<d', resp[1:9])[0], md.get('vimana-component'))
try:
    channel.unary_unary('/demo.Adder/Fail')(b'', timeout=10)
    print('no error')
except grpc.RpcError as e:
    print('error', e.code().name, e.details())
"#;

#[tokio::test]
async fn python_grpcio_calls_over_tls_trusting_the_local_ca() {
    let probe = Command::new("python3").args(["-c", "import grpc"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: python3 with grpc is not available");
        return;
    }
    let gw = common::start(common::demo_routes(), true, GatewayConfig::default()).await;
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(gw.ca.ca_pem().as_bytes()).unwrap();
    let port = gw.addr.port().to_string();
    let ca_path = ca_file.path().to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", PYTHON_CLIENT, &port, &ca_path, "add.example.test"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sum 3.75 demo:adder@v1"), "{stdout}");
    assert!(
        stdout.contains("error INVALID_ARGUMENT bad operands: ü%"),
        "{stdout}"
    );
}
