//! `vimana wit`, `vimana image embed` and `vimana ca export`: commands that
//! need no daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, repo};

#[test]
fn wit_prints_the_adder_world_and_a_self_contained_file() {
    let env = Env::new();
    let adder_dir = repo().join("examples/adder");
    let out = env
        .cmd(&["wit", "adder.proto"])
        .current_dir(&adder_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let golden = std::fs::read_to_string(adder_dir.join("wit/adder.wit")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), golden);

    // --with-grpc appends the vimana:grpc package: the text alone resolves.
    let proto = adder_dir.join("adder.proto");
    let text = env.ok(&["wit", proto.to_str().unwrap(), "--with-grpc"]);
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("services.wit", &text)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let world = resolve.select_world(&[pkg], Some("services")).unwrap();
    let exports: Vec<String> = resolve.worlds[world]
        .exports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    assert_eq!(exports, ["foo:bar/adder-service"]);
}

#[test]
fn wit_names_a_missing_file_and_an_unmappable_proto() {
    let env = Env::new();
    let err = env.fails(&["wit", "/nonexistent/x.proto"]);
    assert!(
        err.contains("cannot read the protobuf file /nonexistent/x.proto"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rec.proto");
    std::fs::write(
        &p,
        "syntax = \"proto3\";\npackage rec;\nmessage Node { Node next = 1; }\nservice S { rpc Get(Node) returns (Node); }\n",
    )
    .unwrap();
    let err = env.fails(&["wit", p.to_str().unwrap()]);
    assert!(err.contains("cannot be mapped"), "{err}");
    assert!(err.contains("rec.Node"), "{err}");
}

#[test]
fn image_embed_needs_a_component_and_ca_export_is_stable() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("x.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let proto = repo().join("examples/adder/adder.proto");
    let err = env.fails(&[
        "image",
        "embed",
        not_wasm.to_str().unwrap(),
        "--proto",
        proto.to_str().unwrap(),
    ]);
    assert!(err.contains("is not a WebAssembly component"), "{err}");
    assert_eq!(
        std::fs::read(&not_wasm).unwrap(),
        b"hello",
        "input untouched"
    );

    let first = env.ok(&["ca", "export"]);
    assert!(first.starts_with("-----BEGIN CERTIFICATE-----"), "{first}");
    assert_eq!(env.ok(&["ca", "export"]), first, "the CA is created once");
    let key = env.home().join("ca").join("ca.key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "CA key must be private");
}
