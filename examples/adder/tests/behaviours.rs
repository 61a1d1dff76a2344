//! Every [`Behaviour`] of the adder, loaded in the Wasm host and called the
//! way the gateway will call it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use adder::{Behaviour, FUNCTION, INTERFACE};
use vimana_wasm::{CallError, CallOptions, Host, LoadedComponent, Val};

fn load(host: &Host, b: Behaviour) -> LoadedComponent {
    let wasm = adder::build(b).unwrap_or_else(|e| panic!("build {b:?}: {e}"));
    host.load(&wasm)
        .unwrap_or_else(|e| panic!("load {b:?}: {e}"))
}

fn request(x: f64, y: f64) -> Vec<Val> {
    vec![Val::Record(vec![
        ("x".into(), Val::Float64(x)),
        ("y".into(), Val::Float64(y)),
    ])]
}

/// Calls `add-floats(3.5, -1.2)` and returns the `result` of the ok record.
fn add(c: &LoadedComponent) -> f64 {
    let out = c.call(INTERFACE, FUNCTION, &request(3.5, -1.2)).unwrap();
    let [Val::Result(Ok(Some(resp)))] = out.as_slice() else {
        panic!("expected one ok result, got {out:?}");
    };
    let Val::Record(fields) = resp.as_ref() else {
        panic!("expected a record, got {resp:?}");
    };
    let [(name, Val::Float64(r))] = fields.as_slice() else {
        panic!("expected {{result: f64}}, got {fields:?}");
    };
    assert_eq!(name, "result");
    *r
}

#[test]
fn the_real_adder_adds() {
    let host = Host::new().unwrap();
    let c = host.load(&adder::component().unwrap()).unwrap();
    let r = add(&c);
    assert!((r - 2.3).abs() < 1e-12, "got {r}");
    // A fresh instance per call: the second call sees the same module.
    assert_eq!(add(&c).to_bits(), r.to_bits());
}

#[test]
fn add_is_exact_ieee_addition() {
    let host = Host::new().unwrap();
    let c = load(&host, Behaviour::Add);
    for (x, y) in [(0.1, 0.2), (1e308, 1e308), (-0.0, -0.0), (f64::MIN, 1.0)] {
        let out = c.call(INTERFACE, FUNCTION, &request(x, y)).unwrap();
        let expected = Val::Result(Ok(Some(Box::new(Val::Record(vec![(
            "result".into(),
            Val::Float64(x + y),
        )])))));
        assert_eq!(out, vec![expected], "{x} + {y}");
    }
}

#[test]
fn offset_tells_versions_apart() {
    let host = Host::new().unwrap();
    let c = load(&host, Behaviour::Offset(1000.0));
    let r = add(&c);
    assert!((r - 1002.3).abs() < 1e-9, "got {r}");
    let c = load(&host, Behaviour::Offset(-0.25));
    let r = add(&c);
    assert!((r - 2.05).abs() < 1e-12, "got {r}");
}

#[test]
fn fail_returns_the_status() {
    let host = Host::new().unwrap();
    let c = load(
        &host,
        Behaviour::Fail {
            code: 3,
            message: "x must be \"finite\" — ∞ is not",
        },
    );
    let out = c.call(INTERFACE, FUNCTION, &request(1.0, 2.0)).unwrap();
    let expected = Val::Result(Err(Some(Box::new(Val::Record(vec![
        ("code".into(), Val::Enum("invalid-argument".into())),
        (
            "message".into(),
            Val::String("x must be \"finite\" — ∞ is not".into()),
        ),
    ])))));
    assert_eq!(out, vec![expected]);
}

#[test]
fn fail_maps_every_code_to_its_case() {
    let host = Host::new().unwrap();
    for (code, case) in [
        (0, "ok"),
        (8, "resource-exhausted"),
        (16, "unauthenticated"),
    ] {
        let c = load(&host, Behaviour::Fail { code, message: "" });
        let out = c.call(INTERFACE, FUNCTION, &request(1.0, 2.0)).unwrap();
        let [Val::Result(Err(Some(status)))] = out.as_slice() else {
            panic!("expected an err result, got {out:?}");
        };
        let Val::Record(fields) = status.as_ref() else {
            panic!("expected a record, got {status:?}");
        };
        assert_eq!(fields[0], ("code".into(), Val::Enum(case.into())));
        assert_eq!(fields[1], ("message".into(), Val::String(String::new())));
    }
}

#[test]
fn loop_hits_the_deadline() {
    let host = Host::new().unwrap();
    let c = load(&host, Behaviour::Loop);
    let opts = CallOptions {
        timeout: Some(Duration::from_millis(100)),
        ..CallOptions::default()
    };
    let t = Instant::now();
    let e = c
        .call_with(opts, INTERFACE, FUNCTION, &request(1.0, 2.0))
        .unwrap_err();
    assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn grow_memory_is_resource_exhausted() {
    let host = Host::new().unwrap();
    let c = load(&host, Behaviour::GrowMemory);
    let opts = CallOptions {
        memory_limit: Some(1 << 20),
        ..CallOptions::default()
    };
    let e = c
        .call_with(opts, INTERFACE, FUNCTION, &request(1.0, 2.0))
        .unwrap_err();
    assert!(matches!(e, CallError::ResourceExhausted(_)), "{e:?}");
    // With the host's default limit too.
    let e = c.call(INTERFACE, FUNCTION, &request(1.0, 2.0)).unwrap_err();
    assert!(matches!(e, CallError::ResourceExhausted(_)), "{e:?}");
}

#[test]
fn trap_is_a_trap_and_the_host_keeps_serving() {
    let host = Host::new().unwrap();
    let trap = load(&host, Behaviour::Trap);
    let good = load(&host, Behaviour::Add);
    let e = trap
        .call(INTERFACE, FUNCTION, &request(1.0, 2.0))
        .unwrap_err();
    assert!(matches!(e, CallError::Trap(_)), "{e:?}");
    assert!((add(&good) - 2.3).abs() < 1e-12);
}
