#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use vimana_grpc::{Contract, GRPC_WIT, MapError};
use wit_parser::Resolve;

/// Parses generated WIT together with the `vimana:grpc` package.
fn parse(wit: &str) {
    let mut resolve = Resolve::new();
    resolve
        .push_str("grpc.wit", GRPC_WIT)
        .expect("grpc.wit parses");
    if let Err(e) = resolve.push_str("generated.wit", wit) {
        panic!("generated WIT does not parse: {e:?}\n{wit}");
    }
}

#[test]
fn rich_wit_parses_and_maps_types() {
    let contract = common::contract(&["rich/rich.proto"]);
    let wit = contract.wit(&["rich/rich.proto".to_string()]).unwrap();
    parse(&wit);
    for line in [
        "package vimana:test-rich;",
        "interface rich-service {",
        "    record everything {",
        "        f-bytes: list<u8>,",
        "        f-uint64: u64,",
        "        f-sfixed32: s32,",
        "        color: color,",
        "        inner: option<everything-inner>,",
        "        tags: list<tag>,",
        "        counts: list<tuple<string, s64>>,",
        "        choice: option<everything-choice>,",
        "        maybe: option<s32>,",
        "        %type: string,",
        "        colors: list<color>,",
        "        tag-by-id: list<tuple<s32, tag>>,",
        "        stamp: option<vimana-test-other-stamp>,",
        "    variant everything-choice {",
        "        text(string),",
        "        tag(tag),",
        "    enum color {",
        "        color-unspecified,",
        "    echo: func(request: everything) -> result<everything, status>;",
        "    %list: func(request: list-request) -> result<list<item>, status>;",
        "    // Upload: skipped, client streaming is not supported",
        "    // Chat: skipped, bidirectional streaming is not supported",
        "    export rich-service;",
        "    export vimana:test-other/stamp-service;",
        "package vimana:test-other {",
        "        now: func(request: stamp) -> result<stamp, status>;",
    ] {
        assert!(
            wit.contains(&format!("{line}\n")),
            "missing `{line}` in\n{wit}"
        );
    }
}

#[test]
fn no_package_and_empty_messages() {
    let contract = common::contract(&["nopkg.proto"]);
    let wit = contract.wit(&[]).unwrap();
    parse(&wit);
    assert!(wit.contains("package grpc:default;\n"), "{wit}");
    assert!(wit.contains("    record ping-type {\n"), "{wit}");
    assert!(
        wit.contains("    ping: func(request: ping-type) -> result<ping-type, status>;\n"),
        "{wit}"
    );
    assert!(
        wit.contains("// Nothing: skipped, message Empty has no fields"),
        "{wit}"
    );
    assert!(
        wit.contains("    use vimana:grpc/types@0.1.0.{status as grpc-status};\n"),
        "{wit}"
    );
    assert!(
        wit.contains("    check: func(request: ping) -> result<status, grpc-status>;\n"),
        "{wit}"
    );
    let m = contract.method("Pinger", "Nothing").unwrap();
    assert_eq!(
        m.decode_request(&[]).unwrap_err().code,
        vimana_grpc::Code::Unimplemented
    );
    let ping = contract.method("Pinger", "Ping").unwrap();
    assert_eq!(ping.interface, "grpc:default/pinger");
}

#[test]
fn recursive_messages_are_rejected() {
    let bytes = common::descriptor_set(&["recursive.proto"]);
    let err = Contract::from_descriptor_set(&bytes).unwrap_err();
    assert_eq!(
        err,
        MapError::Recursive {
            cycle: "rec.Node -> rec.Child -> rec.Node".into()
        }
    );
}

#[test]
fn digit_leading_names_are_rejected() {
    let bytes = common::descriptor_set(&["badname.proto"]);
    let err = Contract::from_descriptor_set(&bytes).unwrap_err();
    assert!(
        matches!(err, MapError::InvalidName { ref name, .. } if name == "_9lives"),
        "{err}"
    );
    assert!(err.to_string().contains("starts with a digit"), "{err}");
}

#[test]
fn bad_input_is_a_map_error() {
    assert!(matches!(
        Contract::from_descriptor_set(b"\xff\xff"),
        Err(MapError::Descriptor(_))
    ));
    let missing = vimana_grpc::compile_protos(&["missing.proto"], &[common::protos()]);
    assert!(matches!(missing, Err(MapError::Compile(_))));
}

#[test]
fn proto2_presence_maps_to_options() {
    let contract = common::contract(&["legacy.proto"]);
    let wit = contract.wit(&["legacy.proto".to_string()]).unwrap();
    parse(&wit);
    for line in [
        "package legacy:grpc;",
        "        count: option<s32>,",
        "        name: string,",
        "        labels: list<string>,",
        "        note: option<string>,",
    ] {
        assert!(
            wit.contains(&format!("{line}\n")),
            "missing `{line}` in\n{wit}"
        );
    }
    let m = contract.method("legacy.Legacy", "Call").unwrap();
    let val = m.decode_request(&[0x08, 0x03]).unwrap();
    let wasmtime::component::Val::Record(fields) = &val else {
        panic!()
    };
    assert_eq!(
        fields[0],
        (
            "count".to_string(),
            wasmtime::component::Val::Option(Some(Box::new(wasmtime::component::Val::S32(3))))
        )
    );
    assert_eq!(
        fields[3],
        ("note".to_string(), wasmtime::component::Val::Option(None))
    );
}
