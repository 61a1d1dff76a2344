//! Protobuf values (prost-reflect) → component values (wasmtime `Val`).

use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};
use wasmtime::component::Val;

use crate::layout::{Layouts, Slot};

/// A conversion failure: the field path and what is wrong there.
pub(crate) type PathError = (String, String);

/// Component values a request may decode into per byte of its message
/// (a `bytes` field costs one `Val` per byte: 32 bytes each).
pub const DECODE_EXPANSION: usize = 40;
/// Decoded bytes every request may use whatever its size (small messages
/// of many empty fields).
pub const DECODE_BASE: usize = 64 * 1024;

/// The most memory the component values of a request of `wire_len` bytes
/// may take; [`crate::MethodMap::decode_request`] refuses a request that
/// would decode into more (RESOURCE_EXHAUSTED), so callers may reserve
/// this much before decoding.
pub fn decode_bound(wire_len: usize) -> usize {
    wire_len
        .saturating_mul(DECODE_EXPANSION)
        .saturating_add(DECODE_BASE)
}

/// What is left of a request's decode budget; conversion stops at zero.
#[derive(Debug)]
pub(crate) struct Budget {
    left: usize,
    limit: usize,
    pub(crate) exhausted: bool,
}

const VAL: usize = std::mem::size_of::<Val>();
const FIELD: usize = std::mem::size_of::<(String, Val)>();

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            left: limit,
            limit,
            exhausted: false,
        }
    }

    /// Takes `n` bytes or fails naming the field and the limit.
    fn take(&mut self, n: usize, path: &str) -> Result<(), PathError> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.exhausted = true;
                Err((
                    path.to_string(),
                    format!(
                        "the request decodes into more than {} bytes of component values \
                         ({DECODE_EXPANSION} per byte of its message + {DECODE_BASE}); \
                         send fewer or denser elements, or split the request",
                        self.limit
                    ),
                ))
            }
        }
    }
}

/// Joins a field path and a field name.
pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Converts a message into its record.
pub(crate) fn message_to_val(
    layouts: &Layouts,
    msg: &DynamicMessage,
    path: &str,
    budget: &mut Budget,
) -> Result<Val, PathError> {
    let desc = msg.descriptor();
    let layout = layouts.message(desc.full_name()).ok_or_else(|| {
        (
            path.to_string(),
            format!("no layout for {}", desc.full_name()),
        )
    })?;
    budget.take(VAL + layout.slots.len() * FIELD, path)?;
    let mut fields = Vec::with_capacity(layout.slots.len());
    for slot in &layout.slots {
        match slot {
            Slot::Field {
                name,
                field,
                optional,
            } => {
                let fpath = join(path, field.name());
                budget.take(name.len(), &fpath)?;
                let value = msg.get_field(field);
                let val = if field.is_map() {
                    map_to_val(layouts, &field.kind(), &value, &fpath, budget)?
                } else if field.is_list() {
                    let items = value.as_list().unwrap_or_default();
                    let kind = field.kind();
                    let vals = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            value_to_val(layouts, &kind, v, &format!("{fpath}[{i}]"), budget)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Val::List(vals)
                } else if *optional {
                    if msg.has_field(field) {
                        let inner = value_to_val(layouts, &field.kind(), &value, &fpath, budget)?;
                        Val::Option(Some(Box::new(inner)))
                    } else {
                        Val::Option(None)
                    }
                } else {
                    value_to_val(layouts, &field.kind(), &value, &fpath, budget)?
                };
                fields.push((name.clone(), val));
            }
            Slot::Oneof { name, cases, .. } => {
                let mut val = Val::Option(None);
                for (case, field) in cases {
                    if msg.has_field(field) {
                        let fpath = join(path, field.name());
                        let inner = value_to_val(
                            layouts,
                            &field.kind(),
                            &msg.get_field(field),
                            &fpath,
                            budget,
                        )?;
                        let variant = Val::Variant(case.clone(), Some(Box::new(inner)));
                        val = Val::Option(Some(Box::new(variant)));
                    }
                }
                fields.push((name.clone(), val));
            }
        }
    }
    Ok(Val::Record(fields))
}

fn map_to_val(
    layouts: &Layouts,
    kind: &Kind,
    value: &Value,
    path: &str,
    budget: &mut Budget,
) -> Result<Val, PathError> {
    let value_kind = match kind {
        Kind::Message(entry) => entry.map_entry_value_field().kind(),
        _ => return Err((path.to_string(), "map field without entry type".into())),
    };
    let mut entries: Vec<(&MapKey, &Value)> = value
        .as_map()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(entries.len());
    for (key, v) in entries {
        let (kval, label) = match key {
            MapKey::Bool(b) => (Val::Bool(*b), b.to_string()),
            MapKey::I32(n) => (Val::S32(*n), n.to_string()),
            MapKey::I64(n) => (Val::S64(*n), n.to_string()),
            MapKey::U32(n) => (Val::U32(*n), n.to_string()),
            MapKey::U64(n) => (Val::U64(*n), n.to_string()),
            MapKey::String(s) => (Val::String(s.clone()), format!("{s:?}")),
        };
        let epath = format!("{path}[{label}]");
        let key_heap = if let MapKey::String(s) = key {
            s.len()
        } else {
            0
        };
        budget.take(3 * VAL + key_heap, &epath)?;
        let vval = value_to_val(layouts, &value_kind, v, &epath, budget)?;
        out.push(Val::Tuple(vec![kval, vval]));
    }
    Ok(Val::List(out))
}

/// Converts one singular value of the given kind.
pub(crate) fn value_to_val(
    layouts: &Layouts,
    kind: &Kind,
    value: &Value,
    path: &str,
    budget: &mut Budget,
) -> Result<Val, PathError> {
    let heap = match value {
        Value::String(s) => s.len(),
        Value::Bytes(b) => b.len() * VAL,
        _ => 0,
    };
    if !matches!(value, Value::Message(_)) {
        budget.take(VAL + heap, path)?;
    }
    let val = match (kind, value) {
        (Kind::Double, Value::F64(x)) => Val::Float64(*x),
        (Kind::Float, Value::F32(x)) => Val::Float32(*x),
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, Value::I32(x)) => Val::S32(*x),
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, Value::I64(x)) => Val::S64(*x),
        (Kind::Uint32 | Kind::Fixed32, Value::U32(x)) => Val::U32(*x),
        (Kind::Uint64 | Kind::Fixed64, Value::U64(x)) => Val::U64(*x),
        (Kind::Bool, Value::Bool(b)) => Val::Bool(*b),
        (Kind::String, Value::String(s)) => Val::String(s.clone()),
        (Kind::Bytes, Value::Bytes(b)) => Val::List(b.iter().map(|x| Val::U8(*x)).collect()),
        (Kind::Enum(e), Value::EnumNumber(n)) => {
            let case = layouts
                .enumeration(e.full_name())
                .and_then(|l| l.case_of(*n))
                .ok_or_else(|| {
                    (
                        path.to_string(),
                        format!("unknown value {n} for enum {}", e.full_name()),
                    )
                })?;
            Val::Enum(case.to_string())
        }
        (Kind::Message(_), Value::Message(m)) => message_to_val(layouts, m, path, budget)?,
        (kind, value) => {
            return Err((
                path.to_string(),
                format!("value {value:?} does not match type {kind:?}"),
            ));
        }
    };
    Ok(val)
}
