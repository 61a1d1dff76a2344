#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use prost::Message;
use prost_reflect::{DynamicMessage, Value};
use vimana_grpc::{Code, Contract, MethodMap, Status, status_from_val};
use wasmtime::component::Val;

const SVC: &str = "vimana.test.rich.RichService";

fn echo(contract: &Contract) -> &MethodMap {
    contract.method(SVC, "Echo").unwrap()
}

/// A length-delimited field with a one-byte key.
fn ld(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    out.push(u8::try_from(payload.len()).unwrap());
    out.extend_from_slice(payload);
    out
}

fn invalid(m: &MethodMap, bytes: &[u8]) -> Status {
    let err = m.decode_request(bytes).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument, "{err}");
    err
}

#[test]
fn wrong_wire_type_in_nested_repeated_field_names_the_path() {
    let contract = common::contract(&["rich/rich.proto"]);
    let m = echo(&contract);
    let tags = [0x92, 0x01]; // field 18, length-delimited
    let mut bytes = ld(&tags, &[0x0a, 0x01, b'a']);
    bytes.extend(ld(&tags, &[0x0a, 0x01, b'b']));
    bytes.extend(ld(&tags, &[0x08, 0x05])); // name (1) as a varint
    let err = invalid(m, &bytes);
    assert_eq!(
        err.message,
        "invalid request: field tags[2].name: wrong wire type Varint (expected LengthDelimited)"
    );
}

#[test]
fn truncated_and_invalid_utf8_fields_are_named() {
    let contract = common::contract(&["rich/rich.proto"]);
    let m = echo(&contract);
    let err = invalid(m, &[0x72, 0x05, b'a']);
    assert!(
        err.message
            .starts_with("invalid request: field f_string: truncated"),
        "{err}"
    );
    let bytes = ld(&[0x92, 0x01], &[0x0a, 0x02, 0xff, 0xfe]);
    let err = invalid(m, &bytes);
    assert_eq!(
        err.message,
        "invalid request: field tags[0].name: invalid UTF-8 in string"
    );
}

#[test]
fn unknown_enum_numbers_are_invalid_arguments() {
    let contract = common::contract(&["rich/rich.proto"]);
    let m = echo(&contract);
    let err = invalid(m, &[0x80, 0x01, 0x07]);
    assert_eq!(
        err.message,
        "invalid request: field color: unknown value 7 for enum vimana.test.rich.Color"
    );
    let err = invalid(m, &ld(&[0x8a, 0x01], &[0x10, 0x09]));
    assert!(
        err.message.contains("field inner.shade: unknown value 9"),
        "{err}"
    );
    let err = invalid(m, &ld(&[0xca, 0x01], &[0x01, 0x05]));
    assert!(
        err.message.contains("field colors[1]: unknown value 5"),
        "{err}"
    );
}

fn ok(val: Val) -> Val {
    Val::Result(Ok(Some(Box::new(val))))
}

fn replace(val: &mut Val, name: &str, new: Val) {
    let Val::Record(fields) = val else { panic!() };
    fields.iter_mut().find(|(n, _)| n == name).unwrap().1 = new;
}

#[test]
fn mismatched_response_values_are_internal_with_path() {
    let contract = common::contract(&["rich/rich.proto"]);
    let m = echo(&contract);
    let base = m.decode_request(&[]).unwrap();

    let mut val = base.clone();
    replace(&mut val, "f-double", Val::S32(1));
    let err = m.encode_response(&ok(val)).unwrap_err();
    assert_eq!(err.code, Code::Internal);
    assert_eq!(
        err.message,
        "invalid response: field f_double: expected f64, got S32(1)"
    );

    let mut val = base.clone();
    let tag = |w: Val| {
        Val::Record(vec![
            ("name".into(), Val::String("x".into())),
            ("weight".into(), w),
        ])
    };
    replace(
        &mut val,
        "tags",
        Val::List(vec![tag(Val::S32(1)), tag(Val::String("no".into()))]),
    );
    let err = m.encode_response(&ok(val)).unwrap_err();
    assert!(
        err.message.contains("field tags[1].weight: expected s32"),
        "{err}"
    );

    let mut val = base.clone();
    replace(&mut val, "color", Val::Enum("purple".into()));
    let err = m.response_to_json(&ok(val)).unwrap_err();
    assert!(
        err.message.contains("field color: unknown case `purple`"),
        "{err}"
    );

    let mut val = base.clone();
    let Val::Record(fields) = &mut val else {
        panic!()
    };
    fields.pop();
    let err = m.encode_response(&ok(val)).unwrap_err();
    assert_eq!(err.code, Code::Internal);

    let err = m.encode_response(&Val::String("?".into())).unwrap_err();
    assert_eq!(err.code, Code::Internal);
}

#[test]
fn status_records_map_to_statuses() {
    let status = |code: &str| {
        Val::Record(vec![
            ("code".into(), Val::Enum(code.into())),
            ("message".into(), Val::String("m".into())),
        ])
    };
    assert_eq!(
        status_from_val(&status("not-found")),
        Status::new(Code::NotFound, "m")
    );
    assert_eq!(status_from_val(&status("ok")).code, Code::Unknown);
    assert_eq!(status_from_val(&status("bogus")).code, Code::Internal);
    assert_eq!(status_from_val(&Val::Bool(true)).code, Code::Internal);
}

#[test]
fn valid_messages_still_decode_after_error_paths() {
    let contract = common::contract(&["rich/rich.proto"]);
    let m = echo(&contract);
    let mut msg = DynamicMessage::new(m.input().clone());
    msg.set_field_by_name("color", Value::EnumNumber(2));
    let val = m.decode_request(&msg.encode_to_vec()).unwrap();
    let Val::Record(fields) = val else { panic!() };
    assert!(fields.contains(&("color".into(), Val::Enum("color-green".into()))));
}
