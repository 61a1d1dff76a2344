#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Decoding is bounded: a request's component values may take at most
//! `decode_bound(message size)`; beyond it RESOURCE_EXHAUSTED names the
//! field, instead of memory growing hundreds of times the message.

mod common;

use vimana_grpc::{Code, decode_bound};

fn sparse_items(n: usize) -> Vec<u8> {
    // field 1 (items), length-delimited, empty: 0x0a 0x00 per element.
    [0x0a, 0x00].repeat(n)
}

fn chunk(len: usize) -> Vec<u8> {
    let mut out = vec![0x0a];
    let mut n = len;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.resize(out.len() + len, 7);
    out
}

#[test]
fn four_mib_of_bytes_decode_within_the_bound() {
    let contract = common::contract(&["blob.proto"]);
    let put = contract.method("blob.v1.Blob", "Put").unwrap();
    let msg = chunk(4 << 20);
    put.decode_request(&msg).unwrap();
    assert!(decode_bound(msg.len()) >= 32 * msg.len());
}

#[test]
fn many_empty_records_are_resource_exhausted_naming_the_field() {
    let contract = common::contract(&["blob.proto"]);
    let sparse = contract.method("blob.v1.Blob", "PutSparse").unwrap();
    // A few records are fine.
    sparse.decode_request(&sparse_items(10)).unwrap();
    // 100,000 empty records of 10 fields: 200 KB on the wire, ~90 MB of
    // component values.
    let Err(err) = sparse.decode_request(&sparse_items(100_000)) else {
        panic!("100,000 empty records decoded without a limit");
    };
    assert_eq!(err.code, Code::ResourceExhausted, "{err:?}");
    assert!(err.message.contains("field items["), "{}", err.message);
    assert!(
        err.message.contains("bytes of component values"),
        "{}",
        err.message
    );
}
