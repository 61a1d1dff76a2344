#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use prost::Message;
use prost_reflect::{DynamicMessage, Value};
use vimana_grpc::{Code, Status};
use wasmtime::component::Val;

fn record_f64(val: &Val, name: &str) -> f64 {
    let Val::Record(fields) = val else {
        panic!("not a record: {val:?}")
    };
    match fields.iter().find(|(n, _)| n == name) {
        Some((_, Val::Float64(x))) => *x,
        other => panic!("field {name}: {other:?}"),
    }
}

/// What the adder component does, on component values.
fn fake_add(request: &Val) -> Val {
    let sum = record_f64(request, "x") + record_f64(request, "y");
    let response = Val::Record(vec![("result".into(), Val::Float64(sum))]);
    Val::Result(Ok(Some(Box::new(response))))
}

#[test]
fn adder_maps_names() {
    let contract = common::adder();
    assert_eq!(
        contract.services(),
        vec!["foo.bar.AdderService".to_string()]
    );
    let m = contract
        .method("foo.bar.AdderService", "AddFloats")
        .unwrap();
    assert_eq!(m.interface, "foo:bar/adder-service");
    assert_eq!(m.func, "add-floats");
    assert!(!m.server_streaming);
    assert_eq!(m.input().full_name(), "foo.bar.AddFloatsRequest");
    assert_eq!(m.output().full_name(), "foo.bar.AddFloatsResponse");
    assert!(contract.method("foo.bar.AdderService", "Nope").is_none());
    assert!(!contract.descriptor_set().is_empty());
}

#[test]
fn adder_round_trip() {
    let contract = common::adder();
    let m = contract
        .method("foo.bar.AdderService", "AddFloats")
        .unwrap();
    let mut req = DynamicMessage::new(m.input().clone());
    req.set_field_by_name("x", Value::F64(3.5));
    req.set_field_by_name("y", Value::F64(-1.2));
    let val = m.decode_request(&req.encode_to_vec()).unwrap();
    assert_eq!(
        val,
        Val::Record(vec![
            ("x".into(), Val::Float64(3.5)),
            ("y".into(), Val::Float64(-1.2)),
        ])
    );
    let bytes = m.encode_response(&fake_add(&val)).unwrap();
    let resp = DynamicMessage::decode(m.output().clone(), bytes.as_slice()).unwrap();
    let result = resp.get_field_by_name("result").unwrap().as_f64().unwrap();
    assert!((result - 2.3).abs() < 1e-12, "{result}");
}

#[test]
fn adder_wit_is_golden() {
    let contract = common::adder();
    let want = std::fs::read_to_string(common::adder_dir().join("wit/adder.wit")).unwrap();
    let got = contract.wit(&["adder.proto".to_string()]).unwrap();
    assert_eq!(got, want);
}

#[test]
fn adder_error_val_maps_to_status() {
    let contract = common::adder();
    let m = contract
        .method("foo.bar.AdderService", "AddFloats")
        .unwrap();
    let status = Val::Record(vec![
        ("code".into(), Val::Enum("out-of-range".into())),
        ("message".into(), Val::String("too big".into())),
    ]);
    let err = m
        .encode_response(&Val::Result(Err(Some(Box::new(status)))))
        .unwrap_err();
    assert_eq!(err, Status::new(Code::OutOfRange, "too big"));
    let err = m.encode_response(&Val::Result(Ok(None))).unwrap_err();
    assert_eq!(err.code, Code::Internal);
}

#[test]
fn adder_json_round_trip() {
    let contract = common::adder();
    let m = contract
        .method("foo.bar.AdderService", "AddFloats")
        .unwrap();
    let val = m.decode_json_request(br#"{"x": 1.5, "y": 2}"#).unwrap();
    assert_eq!(record_f64(&val, "y"), 2.0);
    let json = m.response_to_json(&fake_add(&val)).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json, serde_json::json!({"result": 3.5}));
    let err = m.decode_json_request(br#"{"x": "nope"}"#).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(err.message.starts_with("invalid request"), "{err}");
}

#[test]
fn contract_and_methods_are_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<vimana_grpc::Contract>();
    check::<vimana_grpc::MethodMap>();
}
