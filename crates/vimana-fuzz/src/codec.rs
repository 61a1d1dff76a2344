//! The protobuf/JSON ↔ component value codec, on descriptor + message pairs.
//!
//! Input: a selector byte, then either a message for one of the fixed
//! contracts (selector < 0x80: the test contract that exercises every
//! mapping rule, or the adder example), or (selector ≥ 0x80) a 2-byte
//! big-endian length, an encoded `FileDescriptorSet` of that length (an
//! image's descriptor-set layer is untrusted too) and the message. Bit 0x40
//! picks the JSON request form. Every method of the contract decodes the
//! message; a decoded request of a method whose response has the same type
//! must encode back as a response, and that encoding must decode again.

use std::path::PathBuf;
use std::sync::OnceLock;

use vimana_grpc::{Contract, MethodMap, compile_protos};
use wasmtime::component::Val;

/// The fixed contracts, compiled once per process from the repository's
/// own protos (vimana-grpc's test protos and the adder example).
fn fixed() -> &'static [Contract] {
    static FIXED: OnceLock<Vec<Contract>> = OnceLock::new();
    FIXED.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let protos = root.join("crates/vimana-grpc/tests/protos");
        let adder = root.join("examples/adder");
        [
            (protos.join("rich/rich.proto"), protos),
            (adder.join("adder.proto"), adder),
        ]
        .into_iter()
        .map(|(file, include)| {
            let set = compile_protos(&[&file], &[&include])
                .unwrap_or_else(|e| panic!("compiling {}: {e}", file.display()));
            Contract::from_descriptor_set(&set)
                .unwrap_or_else(|e| panic!("contract of {}: {e}", file.display()))
        })
        .collect()
    })
}

/// The encoded descriptor sets of the fixed contracts (for seeds).
pub fn fixed_descriptor_sets() -> Vec<Vec<u8>> {
    fixed()
        .iter()
        .map(|c| c.descriptor_set().to_vec())
        .collect()
}

/// See the module documentation for the input layout.
pub fn codec(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let json = selector & 0x40 != 0;
    if selector < 0x80 {
        let fixed = fixed();
        let contract = &fixed[usize::from(selector & 0x3f) % fixed.len()];
        return exercise(contract, rest, json);
    }
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (descriptor_set, message) = rest.split_at(len);
    let Ok(contract) = Contract::from_descriptor_set(descriptor_set) else {
        return;
    };
    // What the gateway and `vimana wit` derive from an image's descriptors.
    let services = contract.services();
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let _ = contract.openapi("fuzz", &names);
    let _ = contract.wit(&[]);
    exercise(&contract, message, json);
}

fn exercise(contract: &Contract, message: &[u8], json: bool) {
    for method in contract.methods() {
        let decoded = if json {
            method.decode_json_request(message)
        } else {
            method.decode_request(message)
        };
        if let Ok(request) = decoded
            && method.input() == method.output()
        {
            echo(method, request);
        }
    }
}

/// Answers `request` as the response of an echo method.
fn echo(method: &MethodMap, request: Val) {
    let name = format!("{}/{}", method.service, method.method);
    if method.server_streaming {
        let list = Val::Result(Ok(Some(Box::new(Val::List(vec![request])))));
        for encoded in method
            .encode_stream_response(&list)
            .unwrap_or_else(|s| panic!("{name}: a decoded request does not encode: {s:?}"))
        {
            decode_again(method, &name, &encoded);
        }
        let _ = method
            .stream_response_to_json(&list)
            .unwrap_or_else(|s| panic!("{name}: a decoded request has no JSON: {s:?}"));
        return;
    }
    let result = Val::Result(Ok(Some(Box::new(request))));
    let encoded = method
        .encode_response(&result)
        .unwrap_or_else(|s| panic!("{name}: a decoded request does not encode: {s:?}"));
    decode_again(method, &name, &encoded);
    let json = method
        .response_to_json(&result)
        .unwrap_or_else(|s| panic!("{name}: a decoded request has no JSON: {s:?}"));
    if let Err(s) = method.decode_json_request(&json) {
        panic!(
            "{name}: the JSON of a decoded request does not decode: {s:?}\n{}",
            String::from_utf8_lossy(&json)
        );
    }
}

fn decode_again(method: &MethodMap, name: &str, encoded: &[u8]) {
    if let Err(s) = method.decode_request(encoded) {
        panic!("{name}: the encoding of a decoded request does not decode: {s:?}");
    }
}
