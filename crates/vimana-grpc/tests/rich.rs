#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use prost::Message;
use prost_reflect::{DynamicMessage, MapKey, MessageDescriptor, Value};
use vimana_grpc::{Code, Contract, MethodMap};
use wasmtime::component::Val;

const SVC: &str = "vimana.test.rich.RichService";

fn contract() -> Contract {
    common::contract(&["rich/rich.proto"])
}

fn msg(desc: &MessageDescriptor, fields: &[(&str, Value)]) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    for (name, value) in fields {
        m.set_field_by_name(name, value.clone());
    }
    m
}

fn tag(m: &MethodMap, name: &str, weight: i32) -> Value {
    let desc = m
        .input()
        .parent_pool()
        .get_message_by_name("vimana.test.rich.Tag")
        .unwrap();
    Value::Message(msg(
        &desc,
        &[
            ("name", Value::String(name.into())),
            ("weight", Value::I32(weight)),
        ],
    ))
}

fn everything(m: &MethodMap) -> DynamicMessage {
    let pool = m.input().parent_pool();
    let inner = pool
        .get_message_by_name("vimana.test.rich.Everything.Inner")
        .unwrap();
    let stamp = pool.get_message_by_name("vimana.test.other.Stamp").unwrap();
    let counts = HashMap::from([
        (MapKey::String("b".into()), Value::I64(-2)),
        (MapKey::String("a".into()), Value::I64(1)),
    ]);
    msg(
        m.input(),
        &[
            ("f_double", Value::F64(1.25)),
            ("f_float", Value::F32(-0.5)),
            ("f_int32", Value::I32(-3)),
            ("f_int64", Value::I64(1 << 40)),
            ("f_uint32", Value::U32(5)),
            ("f_uint64", Value::U64(u64::MAX)),
            ("f_sint32", Value::I32(-7)),
            ("f_sint64", Value::I64(-8)),
            ("f_fixed32", Value::U32(9)),
            ("f_fixed64", Value::U64(10)),
            ("f_sfixed32", Value::I32(-11)),
            ("f_sfixed64", Value::I64(-12)),
            ("f_bool", Value::Bool(true)),
            ("f_string", Value::String("héllo".into())),
            ("f_bytes", Value::Bytes(vec![1u8, 2].into())),
            ("color", Value::EnumNumber(1)),
            (
                "inner",
                Value::Message(msg(
                    &inner,
                    &[
                        ("note", Value::String("n".into())),
                        ("shade", Value::EnumNumber(2)),
                    ],
                )),
            ),
            ("tags", Value::List(vec![tag(m, "a", 1), tag(m, "b", 2)])),
            ("counts", Value::Map(counts)),
            ("tag", tag(m, "t", 3)),
            ("maybe", Value::I32(0)),
            ("type", Value::String("kw".into())),
            (
                "colors",
                Value::List(vec![Value::EnumNumber(2), Value::EnumNumber(0)]),
            ),
            (
                "tag_by_id",
                Value::Map(HashMap::from([(MapKey::I32(7), tag(m, "seven", 7))])),
            ),
            (
                "stamp",
                Value::Message(msg(&stamp, &[("seconds", Value::I64(99))])),
            ),
            ("packed", Value::List(vec![Value::I32(1), Value::I32(-1)])),
        ],
    )
}

fn field<'a>(val: &'a Val, name: &str) -> &'a Val {
    let Val::Record(fields) = val else {
        panic!("not a record: {val:?}")
    };
    &fields.iter().find(|(n, _)| n == name).unwrap().1
}

fn ok(val: Val) -> Val {
    Val::Result(Ok(Some(Box::new(val))))
}

fn tag_val(name: &str, weight: i32) -> Val {
    Val::Record(vec![
        ("name".into(), Val::String(name.into())),
        ("weight".into(), Val::S32(weight)),
    ])
}

#[test]
fn rich_decode_maps_every_rule() {
    let contract = contract();
    let m = contract.method(SVC, "Echo").unwrap();
    let val = m.decode_request(&everything(m).encode_to_vec()).unwrap();
    let Val::Record(fields) = &val else { panic!() };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "f-double",
            "f-float",
            "f-int32",
            "f-int64",
            "f-uint32",
            "f-uint64",
            "f-sint32",
            "f-sint64",
            "f-fixed32",
            "f-fixed64",
            "f-sfixed32",
            "f-sfixed64",
            "f-bool",
            "f-string",
            "f-bytes",
            "color",
            "inner",
            "tags",
            "counts",
            "choice",
            "maybe",
            "type",
            "colors",
            "tag-by-id",
            "stamp",
            "packed",
        ]
    );
    assert_eq!(field(&val, "f-double"), &Val::Float64(1.25));
    assert_eq!(field(&val, "f-float"), &Val::Float32(-0.5));
    assert_eq!(field(&val, "f-int64"), &Val::S64(1 << 40));
    assert_eq!(field(&val, "f-uint64"), &Val::U64(u64::MAX));
    assert_eq!(field(&val, "f-sint32"), &Val::S32(-7));
    assert_eq!(field(&val, "f-fixed32"), &Val::U32(9));
    assert_eq!(field(&val, "f-sfixed64"), &Val::S64(-12));
    assert_eq!(field(&val, "f-bool"), &Val::Bool(true));
    assert_eq!(
        field(&val, "f-bytes"),
        &Val::List(vec![Val::U8(1), Val::U8(2)])
    );
    assert_eq!(field(&val, "color"), &Val::Enum("color-red".into()));
    let inner = Val::Record(vec![
        ("note".into(), Val::String("n".into())),
        ("shade".into(), Val::Enum("color-green".into())),
    ]);
    assert_eq!(field(&val, "inner"), &Val::Option(Some(Box::new(inner))));
    assert_eq!(
        field(&val, "tags"),
        &Val::List(vec![tag_val("a", 1), tag_val("b", 2)])
    );
    let pair = |k: &str, v: i64| Val::Tuple(vec![Val::String(k.into()), Val::S64(v)]);
    assert_eq!(
        field(&val, "counts"),
        &Val::List(vec![pair("a", 1), pair("b", -2)])
    );
    let choice = Val::Variant("tag".into(), Some(Box::new(tag_val("t", 3))));
    assert_eq!(field(&val, "choice"), &Val::Option(Some(Box::new(choice))));
    assert_eq!(
        field(&val, "maybe"),
        &Val::Option(Some(Box::new(Val::S32(0))))
    );
    assert_eq!(field(&val, "type"), &Val::String("kw".into()));
    assert_eq!(
        field(&val, "tag-by-id"),
        &Val::List(vec![Val::Tuple(vec![Val::S32(7), tag_val("seven", 7)])])
    );
    assert_eq!(
        field(&val, "packed"),
        &Val::List(vec![Val::S32(1), Val::S32(-1)])
    );
}

#[test]
fn rich_protobuf_round_trip() {
    let contract = contract();
    let m = contract.method(SVC, "Echo").unwrap();
    let original = everything(m);
    let val = m.decode_request(&original.encode_to_vec()).unwrap();
    let bytes = m.encode_response(&ok(val)).unwrap();
    let back = DynamicMessage::decode(m.output().clone(), bytes.as_slice()).unwrap();
    assert_eq!(back, original);
}

#[test]
fn rich_defaults_are_absent_options() {
    let contract = contract();
    let m = contract.method(SVC, "Echo").unwrap();
    let val = m.decode_request(&[]).unwrap();
    assert_eq!(field(&val, "inner"), &Val::Option(None));
    assert_eq!(field(&val, "choice"), &Val::Option(None));
    assert_eq!(field(&val, "maybe"), &Val::Option(None));
    assert_eq!(field(&val, "f-int32"), &Val::S32(0));
    assert_eq!(field(&val, "color"), &Val::Enum("color-unspecified".into()));
    assert_eq!(field(&val, "tags"), &Val::List(vec![]));
    assert!(m.encode_response(&ok(val)).unwrap().is_empty());
}

#[test]
fn rich_json_round_trip() {
    let contract = contract();
    let m = contract.method(SVC, "Echo").unwrap();
    let val = m.decode_request(&everything(m).encode_to_vec()).unwrap();
    let json = m.response_to_json(&ok(val.clone())).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["fInt64"], "1099511627776");
    assert_eq!(doc["fBytes"], "AQI=");
    assert_eq!(doc["color"], "COLOR_RED");
    assert_eq!(doc["tag"]["name"], "t");
    assert_eq!(doc["type"], "kw");
    assert_eq!(m.decode_json_request(&json).unwrap(), val);
    let small = m
        .decode_json_request(br#"{"fInt64": "42", "color": "COLOR_GREEN", "text": "hi"}"#)
        .unwrap();
    assert_eq!(field(&small, "f-int64"), &Val::S64(42));
    let choice = Val::Variant("text".into(), Some(Box::new(Val::String("hi".into()))));
    assert_eq!(
        field(&small, "choice"),
        &Val::Option(Some(Box::new(choice)))
    );
}

#[test]
fn server_streaming_encodes_each_element() {
    let contract = contract();
    let m = contract.method(SVC, "List").unwrap();
    assert!(m.server_streaming);
    let item = |id: &str| Val::Record(vec![("id".into(), Val::String(id.into()))]);
    let result = ok(Val::List(vec![item("a"), item("b")]));
    let frames = m.encode_stream_response(&result).unwrap();
    assert_eq!(frames.len(), 2);
    let first = DynamicMessage::decode(m.output().clone(), frames[0].as_slice()).unwrap();
    assert_eq!(first.get_field_by_name("id").unwrap().as_str(), Some("a"));
    let json = m.stream_response_to_json(&result).unwrap();
    assert_eq!(json[1], br#"{"id":"b"}"#);
}

#[test]
fn client_and_bidi_streaming_are_unimplemented() {
    let contract = contract();
    for name in ["Upload", "Chat"] {
        let m = contract.method(SVC, name).unwrap();
        assert!(m.client_streaming);
        assert!(m.unsupported_reason().is_some());
        let err = m.decode_request(&[]).unwrap_err();
        assert_eq!(err.code, Code::Unimplemented, "{name}");
    }
}
