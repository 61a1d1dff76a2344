//! End-to-end tests: components built from WAT + WIT in the test itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use vimana_wasm::{CallError, CallOptions, Host, LoadedComponent, Val};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// Note: `result` is a WIT keyword, so the field is spelled `%result`
/// (its name at runtime is still `result`).
const WIT: &str = r#"
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

const IFACE: &str = "foo:bar/adder-service";
const FUNC: &str = "add-floats";

/// Core module skeleton: memory, bump-allocating `cabi_realloc`, and the
/// `add-floats` export whose body is `body`. Canonical ABI: the record param
/// flattens to (f64, f64); the `result<record{f64}, record{u32,string}>`
/// return does not fit one flat value, so the function returns an i32
/// pointer to an 8-aligned area: discriminant u8 at +0, payload at +8.
fn module_wat(body: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 512) "bad input")
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
        (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get $new_size)))
    (local.get $p))
  (func (export "foo:bar/adder-service#add-floats") (param $x f64) (param $y f64) (result i32)
    {body})
)"#
    )
}

const ADD_BODY: &str = r#"
    (i32.store8 (i32.const 16) (i32.const 0))
    (f64.store (i32.const 24) (f64.add (local.get $x) (local.get $y)))
    (i32.const 16)"#;

const LOOP_BODY: &str = r#"
    (loop $l (br $l))
    (i32.const 0)"#;

const GROW_BODY: &str = r#"
    (block $done
      (loop $l
        (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $l)))
    unreachable"#;

const UNREACHABLE_BODY: &str = "unreachable";

/// Err(status{code: 3, message: "bad input"}): discriminant 1 at +0, then the
/// status record at +8: code u32 at +8, string (ptr i32, len i32) at +12/+16.
const ERR_BODY: &str = r#"
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store (i32.const 24) (i32.const 3))
    (i32.store (i32.const 28) (i32.const 512))
    (i32.store (i32.const 32) (i32.const 9))
    (i32.const 16)"#;

fn component(body: &str) -> Vec<u8> {
    let mut module = wat::parse_str(module_wat(body)).expect("wat");
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("adder.wit", WIT).expect("wit");
    let world = resolve.select_world(&[pkg], Some("adder")).expect("world");
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embed");
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .expect("module")
        .encode()
        .expect("encode")
}

fn request(x: f64, y: f64) -> Vec<Val> {
    vec![Val::Record(vec![
        ("x".to_string(), Val::Float64(x)),
        ("y".to_string(), Val::Float64(y)),
    ])]
}

fn assert_adds(c: &LoadedComponent) {
    let out = c.call(IFACE, FUNC, &request(3.5, -1.2)).expect("call");
    assert_eq!(out.len(), 1);
    let Val::Result(Ok(Some(resp))) = &out[0] else {
        panic!("expected ok result, got {out:?}");
    };
    let Val::Record(fields) = resp.as_ref() else {
        panic!("expected record, got {resp:?}");
    };
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].0, "result");
    let Val::Float64(r) = fields[0].1 else {
        panic!("expected f64, got {:?}", fields[0].1);
    };
    assert!((r - 2.3).abs() < 1e-9, "got {r}");
}

#[test]
fn adder_returns_ok_record() {
    let host = Host::new().unwrap();
    let c = host.load(&component(ADD_BODY)).unwrap();
    assert_adds(&c);
    // A fresh instance each call: calling again works the same.
    assert_adds(&c);
}

#[test]
fn adder_can_return_err_status_with_string() {
    let host = Host::new().unwrap();
    let c = host.load(&component(ERR_BODY)).unwrap();
    let out = c.call(IFACE, FUNC, &request(1.0, 2.0)).unwrap();
    let expected = Val::Result(Err(Some(Box::new(Val::Record(vec![
        ("code".to_string(), Val::U32(3)),
        ("message".to_string(), Val::String("bad input".to_string())),
    ])))));
    assert_eq!(out, vec![expected]);
}

#[test]
fn loaded_component_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Host>();
    assert_send_sync::<LoadedComponent>();

    let host = Host::new().unwrap();
    let c = std::sync::Arc::new(host.load(&component(ADD_BODY)).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = std::sync::Arc::clone(&c);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    assert_adds(&c);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn per_call_options_override_budgets() {
    let host = Host::new().unwrap();
    let looping = host.load(&component(LOOP_BODY)).unwrap();
    let opts = CallOptions {
        timeout: Some(Duration::from_millis(100)),
        ..CallOptions::default()
    };
    let t = Instant::now();
    let e = looping
        .call_with(opts, IFACE, FUNC, &request(1.0, 2.0))
        .unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
    assert!(took < Duration::from_millis(800), "{took:?}");

    // The adder's 1-page memory fits 1 MiB; the hog does not.
    let opts = CallOptions {
        memory_limit: Some(1 << 20),
        ..CallOptions::default()
    };
    let good = host.load(&component(ADD_BODY)).unwrap();
    assert!(
        good.call_with(opts, IFACE, FUNC, &request(3.5, -1.2))
            .is_ok()
    );
    let hog = host.load(&component(GROW_BODY)).unwrap();
    let e = hog
        .call_with(opts, IFACE, FUNC, &request(1.0, 2.0))
        .unwrap_err();
    assert!(matches!(e, CallError::ResourceExhausted(_)), "{e:?}");
}

#[test]
fn unknown_export_is_not_found() {
    let host = Host::new().unwrap();
    let c = host.load(&component(ADD_BODY)).unwrap();
    let e = c
        .call("foo:bar/nope", FUNC, &request(1.0, 2.0))
        .unwrap_err();
    assert!(matches!(e, CallError::NotFound(_)), "{e:?}");
    let e = c.call(IFACE, "nope", &request(1.0, 2.0)).unwrap_err();
    assert!(matches!(e, CallError::NotFound(_)), "{e:?}");
}

#[test]
fn bad_components_fail_cleanly_and_host_keeps_serving() {
    let host = Host::new().unwrap();
    let good = host.load(&component(ADD_BODY)).unwrap();
    let looping = host.load(&component(LOOP_BODY)).unwrap();
    let hog = host.load(&component(GROW_BODY)).unwrap();
    let trap = host.load(&component(UNREACHABLE_BODY)).unwrap();

    let t = Instant::now();
    let e = looping.call(IFACE, FUNC, &request(1.0, 2.0)).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    eprintln!("infinite loop stopped after {took:?}");
    assert_adds(&good);

    let e = hog.call(IFACE, FUNC, &request(1.0, 2.0)).unwrap_err();
    assert!(matches!(e, CallError::ResourceExhausted(_)), "{e:?}");
    eprintln!("memory hog: {e}");
    assert_adds(&good);

    let e = trap.call(IFACE, FUNC, &request(1.0, 2.0)).unwrap_err();
    assert!(matches!(e, CallError::Trap(_)), "{e:?}");
    eprintln!("unreachable: {e}");
    assert_adds(&good);
}

#[test]
fn timing_instantiate_per_call() {
    let host = Host::new().unwrap();
    let t = Instant::now();
    let bytes = component(ADD_BODY);
    let build = t.elapsed();
    let t = Instant::now();
    let c = host.load(&bytes).unwrap();
    let load = t.elapsed();
    assert_adds(&c);
    let n = 2000u32;
    let t = Instant::now();
    for _ in 0..n {
        assert_adds(&c);
    }
    let per = t.elapsed() / n;
    eprintln!(
        "component build {build:?}, compile+instantiate_pre {load:?}, \
         fresh-store+instantiate+call {:.1} µs/call",
        per.as_secs_f64() * 1e6
    );
}

/// On one thread, a guest stuck in a loop yields at every epoch tick: an
/// adder call started after it answers long before the loop's deadline.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_guest_yields_to_other_calls_on_its_thread() {
    let host = Host::new().unwrap();
    let good = host.load(&component(ADD_BODY)).unwrap();
    let looping = host.load(&component(LOOP_BODY)).unwrap();
    let opts = CallOptions {
        timeout: Some(Duration::from_millis(600)),
        ..CallOptions::default()
    };
    let started = Instant::now();
    let stuck = async {
        let e = looping
            .call_with_async(opts, IFACE, FUNC, &request(1.0, 2.0))
            .await
            .unwrap_err();
        (e, started.elapsed())
    };
    let quick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let out = good
            .call_with_async(CallOptions::default(), IFACE, FUNC, &request(3.5, -1.2))
            .await
            .unwrap();
        (out, started.elapsed())
    };
    let ((e, stuck_for), (out, quick_after)) = tokio::join!(stuck, quick);
    assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
    assert!(stuck_for >= Duration::from_millis(600), "{stuck_for:?}");
    assert!(matches!(&out[0], Val::Result(Ok(_))), "{out:?}");
    assert!(
        quick_after < Duration::from_millis(400),
        "the adder waited {quick_after:?} behind the loop"
    );
}
