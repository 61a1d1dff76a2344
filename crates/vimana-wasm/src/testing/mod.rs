//! Builders of small test components, for this crate's tests and benches
//! and for other crates' tests (feature `testing`).
//!
//! Components are built at run time from WAT (core module) + WIT with
//! `wit-component`, so no guest toolchain is needed. The `wasi:http` WIT
//! files are copies of the ones shipped in wasmtime-wasi-http 48
//! (`wasi:*@0.2.12`), kept under `crates/vimana-wasm/wit/` and embedded
//! with `include_str!`: looking them up in the cargo registry at run time
//! would depend on the registry layout.
//!
//! The builders panic only if the embedded WAT/WIT is broken (a bug in
//! this module), never on input.

mod wasi_http;

pub use wasi_http::{hello_http_component, looping_http_component, outgoing_http_component};

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// Interface exported by [`adder_component`].
pub const ADDER_INTERFACE: &str = "foo:bar/adder-service";
/// Function of [`ADDER_INTERFACE`].
pub const ADDER_FUNC: &str = "add-floats";

/// Note: `result` is a WIT keyword, so the field is spelled `%result`
/// (its name at runtime is still `result`).
const ADDER_WIT: &str = r#"
package foo:bar;

interface adder-service {
    record add-floats-request { x: f64, y: f64 }
    record add-floats-response { %result: f64 }
    record status { code: u32, message: string }
    add-floats: func(request: add-floats-request) -> result<add-floats-response, status>;
}

world adder {
    export adder-service;
}
"#;

/// `add-floats` body returning `ok({result: x + y})`.
pub const ADD_BODY: &str = r#"
    (i32.store8 (i32.const 16) (i32.const 0))
    (f64.store (i32.const 24) (f64.add (local.get $x) (local.get $y)))
    (i32.const 16)"#;

/// `add-floats` body that never returns.
pub const LOOP_BODY: &str = r#"
    (loop $l (br $l))
    (i32.const 0)"#;

/// `add-floats` body that grows memory until refused, then traps.
pub const GROW_BODY: &str = r#"
    (block $done
      (loop $l
        (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $l)))
    unreachable"#;

/// The adder component (`foo:bar/adder-service#add-floats` returns
/// `ok({result: x + y})`).
pub fn adder_component() -> Vec<u8> {
    adder_component_with_body(ADD_BODY)
}

/// An adder-shaped component whose `add-floats` core function (params
/// `$x`, `$y` f64, returns an i32 pointer to the result area) has the body
/// `body`, e.g. [`LOOP_BODY`] or [`GROW_BODY`].
pub fn adder_component_with_body(body: &str) -> Vec<u8> {
    let module = format!(
        r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  {REALLOC}
  (func (export "foo:bar/adder-service#add-floats") (param $x f64) (param $y f64) (result i32)
    {body})
)"#
    );
    encode(&module, &[("adder.wit", ADDER_WIT)], "adder")
}

/// Bump-allocating `cabi_realloc` over `$heap` (never frees).
pub(crate) const REALLOC: &str = r#"(func (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
        (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get $new_size)))
    (local.get $p))"#;

/// Parses `wat`, embeds the metadata of `world` from the WIT packages
/// (pushed in order, dependencies first), and encodes the component.
pub(crate) fn encode(wat: &str, wit: &[(&str, &str)], world: &str) -> Vec<u8> {
    try_encode(wat, wit, world).unwrap_or_else(|e| panic!("testing component {world}: {e}"))
}

fn try_encode(wat: &str, wit: &[(&str, &str)], world: &str) -> Result<Vec<u8>, String> {
    let mut module = wat::parse_str(wat).map_err(|e| format!("wat: {e}"))?;
    let mut resolve = Resolve::default();
    let mut last = None;
    for (path, text) in wit {
        last = Some(
            resolve
                .push_str(path, text)
                .map_err(|e| format!("wit {path}: {e:#}"))?,
        );
    }
    let pkg = last.ok_or("no WIT")?;
    let world = resolve
        .select_world(&[pkg], Some(world))
        .map_err(|e| format!("world: {e:#}"))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .map_err(|e| format!("embed: {e:#}"))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .map_err(|e| format!("module: {e:#}"))?
        .encode()
        .map_err(|e| format!("encode: {e:#}"))
}
