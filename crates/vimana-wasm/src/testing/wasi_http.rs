//! `wasi:http/incoming-handler` test components written in WAT.
//!
//! Canonical ABI notes for the imports below: results that flatten to more
//! than one value are written to a caller-provided area (last `i32` param).
//! `result<own<T>, E>` puts its discriminant at +0 and the handle at +4 (or
//! at +8 when `E` is `error-code`, whose `option<u64>` payloads make it
//! 8-aligned). `response-outparam.set` takes
//! `result<own<outgoing-response>, error-code>` flattened to
//! `i32 i32 i32 i64 i32 i32 i32 i32` (after the outparam handle).

use super::{REALLOC, encode};

const IO: &str = include_str!("../../wit/io.wit");
const CLOCKS: &str = include_str!("../../wit/clocks.wit");
const RANDOM: &str = include_str!("../../wit/random.wit");
const FILESYSTEM: &str = include_str!("../../wit/filesystem.wit");
const SOCKETS: &str = include_str!("../../wit/sockets.wit");
const CLI: &str = include_str!("../../wit/cli.wit");
const HTTP: &str = include_str!("../../wit/http.wit");

const WORLDS: &str = r#"
package vimana:testing;

world hello {
    import wasi:http/types@0.2.12;
    import wasi:io/streams@0.2.12;
    export wasi:http/incoming-handler@0.2.12;
}

world outgoing {
    import wasi:http/types@0.2.12;
    import wasi:http/outgoing-handler@0.2.12;
    import wasi:io/poll@0.2.12;
    export wasi:http/incoming-handler@0.2.12;
}
"#;

fn wit() -> [(&'static str, &'static str); 8] {
    [
        ("io.wit", IO),
        ("clocks.wit", CLOCKS),
        ("random.wit", RANDOM),
        ("filesystem.wit", FILESYSTEM),
        ("sockets.wit", SOCKETS),
        ("cli.wit", CLI),
        ("http.wit", HTTP),
        ("worlds.wit", WORLDS),
    ]
}

/// Imports shared by both components.
const TYPES_IMPORTS: &str = r#"
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response"
    (func $resp_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.set-status-code"
    (func $set_status (param i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set"
    (func $out_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request"
    (func $drop_req (param i32)))
"#;

/// A component answering every request with status 200 and the body
/// `hello from wasm\n`.
pub fn hello_http_component() -> Vec<u8> {
    let wat = format!(
        r#"(module
  {TYPES_IMPORTS}
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body"
    (func $resp_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write"
    (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish"
    (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream"
    (func $drop_stream (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "hello from wasm\n")
  (global $heap (mut i32) (i32.const 1024))
  {REALLOC}
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $resp i32) (local $body i32) (local $stream i32)
    (call $drop_req (local.get $req))
    (local.set $resp (call $resp_new (call $fields_new)))
    (call $resp_body (local.get $resp) (i32.const 64))
    (if (i32.load8_u (i32.const 64)) (then unreachable))
    (local.set $body (i32.load (i32.const 68)))
    (call $body_write (local.get $body) (i32.const 64))
    (if (i32.load8_u (i32.const 64)) (then unreachable))
    (local.set $stream (i32.load (i32.const 68)))
    (call $out_set (local.get $out) (i32.const 0) (local.get $resp)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $write (local.get $stream) (i32.const 256) (i32.const 16) (i32.const 64))
    (if (i32.load8_u (i32.const 64)) (then unreachable))
    (call $drop_stream (local.get $stream))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 64))
    (if (i32.load8_u (i32.const 64)) (then unreachable)))
)"#
    );
    encode(&wat, &wit(), "hello")
}

/// A component that tries an outgoing `GET https://example.com/` and
/// answers with an empty body and a status telling what happened:
/// 403 when the request failed with `HTTP-request-denied`, 200 when it got a
/// response; otherwise 700 + the `error-code` case if `handle` failed at
/// once, 800 + the case for any other error code of the response, 501 if the
/// response was not ready after `block`, 500 if it was already taken.
pub fn outgoing_http_component() -> Vec<u8> {
    let wat = format!(
        r#"(module
  {TYPES_IMPORTS}
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-request"
    (func $req_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-authority"
    (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-path-with-query"
    (func $set_path (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.subscribe"
    (func $subscribe (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.get"
    (func $get (param i32 i32)))
  (import "wasi:http/outgoing-handler@0.2.12" "handle"
    (func $send (param i32 i32 i32 i32)))
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.12" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "example.com/")
  (global $heap (mut i32) (i32.const 1024))
  {REALLOC}
  (func $outcome (result i32)
    (local $req i32) (local $fut i32) (local $p i32)
    (local.set $req (call $req_new (call $fields_new)))
    (drop (call $set_authority (local.get $req) (i32.const 1) (i32.const 256) (i32.const 11)))
    (drop (call $set_path (local.get $req) (i32.const 1) (i32.const 267) (i32.const 1)))
    (call $send (local.get $req) (i32.const 0) (i32.const 0) (i32.const 64))
    (if (i32.load8_u (i32.const 64))
      (then (return (i32.add (i32.const 700) (i32.load8_u (i32.const 72))))))
    (local.set $fut (i32.load (i32.const 72)))
    (local.set $p (call $subscribe (local.get $fut)))
    (call $block (local.get $p))
    (call $drop_pollable (local.get $p))
    (call $get (local.get $fut) (i32.const 128))
    ;; option<result<result<own<incoming-response>, error-code>>>: option
    ;; tag +0, outer result tag +8, inner result tag +16, error-code tag +24.
    (if (i32.eqz (i32.load8_u (i32.const 128))) (then (return (i32.const 501))))
    (if (i32.load8_u (i32.const 136)) (then (return (i32.const 500))))
    (if (i32.eqz (i32.load8_u (i32.const 144))) (then (return (i32.const 200))))
    ;; error-code case 15 is HTTP-request-denied.
    (if (i32.eq (i32.load8_u (i32.const 152)) (i32.const 15)) (then (return (i32.const 403))))
    (i32.add (i32.const 800) (i32.load8_u (i32.const 152))))
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $resp i32)
    (call $drop_req (local.get $req))
    (local.set $resp (call $resp_new (call $fields_new)))
    (drop (call $set_status (local.get $resp) (call $outcome)))
    (call $out_set (local.get $out) (i32.const 0) (local.get $resp)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
)"#
    );
    encode(&wat, &wit(), "outgoing")
}

/// A component whose handler spins forever (until the call's deadline).
pub fn looping_http_component() -> Vec<u8> {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  {REALLOC}
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param i32 i32)
    (loop $l (br $l)))
)"#
    );
    encode(&wat, &wit(), "hello")
}
