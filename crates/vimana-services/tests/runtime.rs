//! The runtime without a daemon: resources in, a live gateway out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use vimana_core::ResourceObserver;
use vimana_gateway::{Gateway, GatewayConfig, LocalCa};
use vimana_oci::OciConfig;
use vimana_resources::{ResourceKind, ResourceSet, parse_documents};
use vimana_services::{ListenConfig, Loader, WasmRuntime, contract_section};

fn runtime(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> WasmRuntime {
    let ca = LocalCa::load_or_create(&dir.join("ca")).unwrap();
    let gateway = Arc::new(Gateway::new(GatewayConfig {
        local_ca: Some(Arc::new(ca)),
        ..GatewayConfig::default()
    }));
    let loader = Loader {
        host: vimana_wasm::Host::new().unwrap(),
        oci: OciConfig {
            cache_dir: dir.join("images"),
            ..OciConfig::default()
        },
        compile_cache: dir.join("compiled"),
        rt: rt.handle().clone(),
    };
    let listen = ListenConfig {
        tls: None,
        h2c: Some("127.0.0.1:0".into()),
        state_file: None,
    };
    WasmRuntime::new(loader, gateway, listen)
}

fn yaml(domain_id: &str, alias: &str, server: &str, services: &str, image: &str) -> String {
    format!(
        r#"apiVersion: api.vimana.host/v1alpha1
kind: Vimana
metadata: {{name: local}}
spec: {{}}
---
apiVersion: api.vimana.host/v1alpha1
kind: Domain
metadata: {{name: d-{server}}}
spec: {{id: "{domain_id}", vimana: local, aliases: [{alias}]}}
---
apiVersion: api.vimana.host/v1alpha1
kind: Server
metadata: {{name: {server}}}
spec: {{id: {server}, domain: "{domain_id}", services: [{services}], versionWeights: {{"1.0.0": 1}}}}
---
apiVersion: api.vimana.host/v1alpha1
kind: Component
metadata: {{name: {server}-1}}
spec: {{version: 1.0.0, server: {server}, domain: "{domain_id}", image: "{image}"}}
"#
    )
}

fn http_get(addr: SocketAddr, host: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn condition(
    statuses: &[(ResourceKind, String, vimana_resources::Status)],
    kind: ResourceKind,
    name: &str,
) -> (String, String) {
    let (_, _, st) = statuses
        .iter()
        .find(|(k, n, _)| *k == kind && n == name)
        .unwrap_or_else(|| panic!("no status for {kind} {name}: {statuses:?}"));
    let c = &st.conditions[0];
    (c.status.clone(), c.reason.clone().unwrap_or_default())
}

#[test]
fn wasi_http_component_is_served_at_its_domain_and_statuses_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hello = dir.path().join("hello.wasm");
    std::fs::write(&hello, vimana_wasm::testing::hello_http_component()).unwrap();
    let adder = dir.path().join("adder.wasm");
    let bare = adder::component().unwrap();
    std::fs::write(&adder, &bare).unwrap();

    let text = yaml(
        "000000000000000000000000000000aa",
        "hello.local",
        "hello",
        "",
        hello.to_str().unwrap(),
    );
    let mut set = ResourceSet::new();
    set.apply(parse_documents("hello.yaml", &text).unwrap())
        .unwrap();
    let runtime = runtime(dir.path(), &rt);
    let statuses = std::thread::scope(|s| s.spawn(|| runtime.reconcile(&set)).join().unwrap());
    assert_eq!(
        condition(&statuses, ResourceKind::Component, "hello-1").0,
        "True"
    );
    assert_eq!(
        condition(&statuses, ResourceKind::Server, "hello").0,
        "True"
    );
    assert_eq!(
        condition(&statuses, ResourceKind::Vimana, "local").0,
        "True"
    );
    let addr = runtime.bound().unwrap().h2c.unwrap();

    let answer = http_get(addr, "hello.local");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("hello from wasm"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("vimana-component: 000000000000000000000000000000aa:hello@1.0.0")
    );
    // The canonical name works too; an unknown host does not.
    assert!(
        http_get(addr, "000000000000000000000000000000aa.vimana.local").contains("hello from wasm")
    );
    assert!(http_get(addr, "nobody.local").starts_with("HTTP/1.1 404"));

    // A gRPC component without a contract is reported, not served; the
    // hello domain keeps answering.
    let text2 = yaml(
        "000000000000000000000000000000bb",
        "adder.local",
        "adder",
        "foo.bar.AdderService",
        adder.to_str().unwrap(),
    );
    set.apply(parse_documents("adder.yaml", &text2).unwrap())
        .unwrap();
    let statuses = std::thread::scope(|s| s.spawn(|| runtime.reconcile(&set)).join().unwrap());
    assert_eq!(
        condition(&statuses, ResourceKind::Component, "adder-1"),
        ("False".into(), "NoContract".into())
    );
    assert_eq!(
        condition(&statuses, ResourceKind::Server, "adder"),
        ("False".into(), "VersionsUnavailable".into())
    );
    assert!(http_get(addr, "hello.local").contains("hello from wasm"));

    // With the contract embedded it loads (a new image path: versions are
    // immutable, so this is a new Component version's image).
    let with_contract = dir.path().join("adder2.wasm");
    std::fs::write(
        &with_contract,
        contract_section::embed(&bare, &adder::descriptor_set().unwrap()).unwrap(),
    )
    .unwrap();
    let text3 = text2.replace(adder.to_str().unwrap(), with_contract.to_str().unwrap());
    let mut set2 = ResourceSet::new();
    set2.apply(parse_documents("hello.yaml", &text).unwrap())
        .unwrap();
    set2.apply(parse_documents("adder.yaml", &text3).unwrap())
        .unwrap();
    let statuses = std::thread::scope(|s| s.spawn(|| runtime.reconcile(&set2)).join().unwrap());
    assert_eq!(
        condition(&statuses, ResourceKind::Component, "adder-1").0,
        "True"
    );
    assert_eq!(
        condition(&statuses, ResourceKind::Server, "adder").0,
        "True"
    );
    runtime.shutdown();
}
