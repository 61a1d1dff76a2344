//! Locating the field of a protobuf decode failure.
//!
//! prost's decode errors do not say which dynamic field failed, so when
//! decoding fails the bytes are walked again against the descriptor to find
//! the first bad field and name its path (`tags[2].name`).

use std::collections::HashMap;

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::to_val::{PathError, join};

/// Finds the first malformed field in `buf`, if the walk can tell.
pub(crate) fn locate(desc: &MessageDescriptor, buf: &[u8], path: &str) -> Option<PathError> {
    let mut buf = buf;
    let mut counts: HashMap<u32, usize> = HashMap::new();
    while !buf.is_empty() {
        let (number, wire_type) = match decode_key(&mut buf) {
            Ok(key) => key,
            Err(e) => return Some((at(path), format!("malformed tag: {}", reason(&e)))),
        };
        let Some(field) = desc.get_field(number) else {
            if let Err(e) = skip_field(wire_type, number, &mut buf, DecodeContext::default()) {
                return Some((at(path), format!("unknown field {number}: {}", reason(&e))));
            }
            continue;
        };
        let index = counts.entry(number).or_default();
        let fpath = if field.is_list() || field.is_map() {
            format!("{}[{}]", join(path, field.name()), index)
        } else {
            join(path, field.name())
        };
        *index += 1;
        if let Some(err) = check_field(&field, wire_type, &mut buf, &fpath) {
            return Some(err);
        }
    }
    None
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "<message>".to_string()
    } else {
        path.to_string()
    }
}

fn reason(e: &prost::DecodeError) -> String {
    e.to_string()
        .trim_start_matches("failed to decode Protobuf message: ")
        .to_string()
}

fn expected_wire_type(kind: &Kind) -> WireType {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => WireType::SixtyFourBit,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => WireType::ThirtyTwoBit,
        Kind::String | Kind::Bytes | Kind::Message(_) => WireType::LengthDelimited,
        _ => WireType::Varint,
    }
}

fn check_field(
    field: &FieldDescriptor,
    wire_type: WireType,
    buf: &mut &[u8],
    path: &str,
) -> Option<PathError> {
    let kind = field.kind();
    let want = expected_wire_type(&kind);
    let packed = field.is_list() && want != WireType::LengthDelimited;
    if wire_type != want && !(packed && wire_type == WireType::LengthDelimited) {
        return Some((
            path.to_string(),
            format!("wrong wire type {wire_type:?} (expected {want:?})"),
        ));
    }
    let payload = match read_payload(wire_type, buf) {
        Ok(p) => p,
        Err(e) => return Some((path.to_string(), e)),
    };
    if wire_type != WireType::LengthDelimited {
        return None;
    }
    match kind {
        Kind::Message(m) => locate(&m, payload, path),
        Kind::String => std::str::from_utf8(payload)
            .err()
            .map(|_| (path.to_string(), "invalid UTF-8 in string".to_string())),
        Kind::Bytes => None,
        scalar => {
            let mut rest = payload;
            while !rest.is_empty() {
                if let Err(e) = read_payload(expected_wire_type(&scalar), &mut rest) {
                    return Some((path.to_string(), format!("malformed packed values: {e}")));
                }
            }
            None
        }
    }
}

/// Reads one value of `wire_type`, returning its bytes.
fn read_payload<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let len = match wire_type {
        WireType::Varint => {
            let start = *buf;
            decode_varint(buf).map_err(|e| reason(&e))?;
            return Ok(&start[..start.len() - buf.len()]);
        }
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::LengthDelimited => {
            let len = decode_varint(buf).map_err(|e| reason(&e))?;
            usize::try_from(len).map_err(|_| "length overflows".to_string())?
        }
        WireType::StartGroup | WireType::EndGroup => {
            return Err("groups are not supported".to_string());
        }
    };
    if buf.len() < len {
        return Err(format!(
            "truncated: needs {len} bytes, {} remain",
            buf.len()
        ));
    }
    let (payload, rest) = buf.split_at(len);
    *buf = rest;
    Ok(payload)
}
