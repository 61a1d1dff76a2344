//! Component values (wasmtime `Val`) → protobuf values (prost-reflect).

use std::collections::HashMap;

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};
use wasmtime::component::Val;

use crate::layout::{Layouts, Slot};
use crate::to_val::{PathError, join};

/// A short name of a value's shape, for error messages.
pub(crate) fn shape(val: &Val) -> String {
    match val {
        Val::Record(_) => "record".into(),
        Val::List(_) => "list".into(),
        Val::Tuple(_) => "tuple".into(),
        Val::Option(_) => "option".into(),
        Val::Variant(c, _) => format!("variant case `{c}`"),
        Val::Enum(c) => format!("enum case `{c}`"),
        Val::Result(_) => "result".into(),
        other => format!("{other:?}"),
    }
}

fn mismatch(path: &str, want: &str, got: &Val) -> PathError {
    (
        path.to_string(),
        format!("expected {want}, got {}", shape(got)),
    )
}

/// Converts a record into a message of `desc`.
pub(crate) fn val_to_message(
    layouts: &Layouts,
    desc: &MessageDescriptor,
    val: &Val,
    path: &str,
) -> Result<DynamicMessage, PathError> {
    let Val::Record(fields) = val else {
        return Err(mismatch(path, "record", val));
    };
    let layout = layouts.message(desc.full_name()).ok_or_else(|| {
        (
            path.to_string(),
            format!("no layout for {}", desc.full_name()),
        )
    })?;
    if fields.len() != layout.slots.len() {
        return Err((
            path.to_string(),
            format!(
                "record has {} fields, {} expects {}",
                fields.len(),
                desc.full_name(),
                layout.slots.len()
            ),
        ));
    }
    let mut msg = DynamicMessage::new(desc.clone());
    for slot in &layout.slots {
        let (name, proto_name) = match slot {
            Slot::Field { name, field, .. } => (name, field.name().to_string()),
            Slot::Oneof { name, oneof, .. } => (name, oneof.name().to_string()),
        };
        let fpath = join(path, &proto_name);
        let val = fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| (fpath.clone(), format!("record field `{name}` is missing")))?;
        match slot {
            Slot::Field {
                field, optional, ..
            } => {
                let value = if field.is_map() {
                    val_to_map(layouts, &field.kind(), val, &fpath)?
                } else if field.is_list() {
                    let Val::List(items) = val else {
                        return Err(mismatch(&fpath, "list", val));
                    };
                    let kind = field.kind();
                    let values = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| val_to_value(layouts, &kind, v, &format!("{fpath}[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?;
                    Value::List(values)
                } else if *optional {
                    match val {
                        Val::Option(None) => continue,
                        Val::Option(Some(inner)) => {
                            val_to_value(layouts, &field.kind(), inner, &fpath)?
                        }
                        other => return Err(mismatch(&fpath, "option", other)),
                    }
                } else {
                    val_to_value(layouts, &field.kind(), val, &fpath)?
                };
                msg.set_field(field, value);
            }
            Slot::Oneof { cases, .. } => {
                let inner = match val {
                    Val::Option(None) => continue,
                    Val::Option(Some(inner)) => inner,
                    other => return Err(mismatch(&fpath, "option<variant>", other)),
                };
                let Val::Variant(case, payload) = inner.as_ref() else {
                    return Err(mismatch(&fpath, "variant", inner));
                };
                let (_, field) = cases
                    .iter()
                    .find(|(c, _)| c == case)
                    .ok_or_else(|| (fpath.clone(), format!("unknown variant case `{case}`")))?;
                let payload = payload
                    .as_deref()
                    .ok_or_else(|| (fpath.clone(), format!("case `{case}` has no payload")))?;
                let cpath = join(path, field.name());
                let value = val_to_value(layouts, &field.kind(), payload, &cpath)?;
                msg.set_field(field, value);
            }
        }
    }
    Ok(msg)
}

fn val_to_map(layouts: &Layouts, kind: &Kind, val: &Val, path: &str) -> Result<Value, PathError> {
    let Kind::Message(entry) = kind else {
        return Err((path.to_string(), "map field without entry type".into()));
    };
    let key_kind = entry.map_entry_key_field().kind();
    let value_kind = entry.map_entry_value_field().kind();
    let pairs: Vec<(&Val, &Val)> = match val {
        Val::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Val::Tuple(kv) if kv.len() == 2 => Ok((&kv[0], &kv[1])),
                other => Err(mismatch(&format!("{path}[{i}]"), "tuple<K, V>", other)),
            })
            .collect::<Result<_, _>>()?,
        Val::Map(kv) => kv.iter().map(|(k, v)| (k, v)).collect(),
        other => return Err(mismatch(path, "list<tuple<K, V>>", other)),
    };
    let mut map = HashMap::with_capacity(pairs.len());
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        let epath = format!("{path}[{i}]");
        let key = val_to_value(layouts, &key_kind, k, &epath)?
            .into_map_key()
            .ok_or_else(|| (epath.clone(), "invalid map key".to_string()))?;
        let value = val_to_value(layouts, &value_kind, v, &epath)?;
        map.insert(key, value);
    }
    Ok(Value::Map(map))
}

/// Converts one singular value of the given kind.
fn val_to_value(layouts: &Layouts, kind: &Kind, val: &Val, path: &str) -> Result<Value, PathError> {
    let value = match (kind, val) {
        (Kind::Double, Val::Float64(x)) => Value::F64(*x),
        (Kind::Float, Val::Float32(x)) => Value::F32(*x),
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, Val::S32(x)) => Value::I32(*x),
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, Val::S64(x)) => Value::I64(*x),
        (Kind::Uint32 | Kind::Fixed32, Val::U32(x)) => Value::U32(*x),
        (Kind::Uint64 | Kind::Fixed64, Val::U64(x)) => Value::U64(*x),
        (Kind::Bool, Val::Bool(b)) => Value::Bool(*b),
        (Kind::String, Val::String(s)) => Value::String(s.clone()),
        (Kind::Bytes, Val::List(items)) => {
            let bytes = items
                .iter()
                .map(|v| match v {
                    Val::U8(b) => Ok(*b),
                    other => Err(mismatch(path, "list<u8>", other)),
                })
                .collect::<Result<Vec<u8>, _>>()?;
            Value::Bytes(bytes.into())
        }
        (Kind::Enum(e), Val::Enum(case)) => {
            let number = layouts
                .enumeration(e.full_name())
                .and_then(|l| l.number_of(case))
                .ok_or_else(|| {
                    (
                        path.to_string(),
                        format!("unknown case `{case}` of enum {}", e.full_name()),
                    )
                })?;
            Value::EnumNumber(number)
        }
        (Kind::Message(m), v) => Value::Message(val_to_message(layouts, m, v, path)?),
        (kind, other) => return Err(mismatch(path, &expected(kind), other)),
    };
    Ok(value)
}

fn expected(kind: &Kind) -> String {
    match kind {
        Kind::Double => "f64".into(),
        Kind::Float => "f32".into(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "s32".into(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "s64".into(),
        Kind::Uint32 | Kind::Fixed32 => "u32".into(),
        Kind::Uint64 | Kind::Fixed64 => "u64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "list<u8>".into(),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        Kind::Message(m) => format!("record {}", m.full_name()),
    }
}
