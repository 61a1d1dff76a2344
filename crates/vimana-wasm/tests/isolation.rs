//! One bad request never affects the next call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vimana_wasm::testing::{
    ADDER_FUNC, ADDER_INTERFACE, GROW_BODY, LOOP_BODY, adder_component, adder_component_with_body,
};
use vimana_wasm::{CallError, CallOptions, Host, HostConfig, LoadedComponent, Val};

fn args() -> [Val; 1] {
    [Val::Record(vec![
        ("x".to_string(), Val::Float64(1.0)),
        ("y".to_string(), Val::Float64(2.0)),
    ])]
}

fn assert_ok(c: &LoadedComponent) {
    let out = c.call(ADDER_INTERFACE, ADDER_FUNC, &args()).unwrap();
    assert!(matches!(&out[0], Val::Result(Ok(Some(_)))), "{out:?}");
}

#[test]
fn bad_requests_never_affect_the_next_call() {
    // A small pool: leaked instances or memory would exhaust it quickly.
    let host = Host::with_config(HostConfig {
        max_instances: 2,
        memory_limit: 4 << 20,
        ..HostConfig::default()
    })
    .unwrap();
    let good = host.load(&adder_component()).unwrap();
    let looping = host.load(&adder_component_with_body(LOOP_BODY)).unwrap();
    let hog = host.load(&adder_component_with_body(GROW_BODY)).unwrap();
    let quick = CallOptions {
        timeout: Some(Duration::from_millis(30)),
        ..CallOptions::default()
    };
    for _ in 0..10 {
        let e = looping
            .call_with(quick, ADDER_INTERFACE, ADDER_FUNC, &args())
            .unwrap_err();
        assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
        assert_ok(&good);
        let e = hog.call(ADDER_INTERFACE, ADDER_FUNC, &args()).unwrap_err();
        assert!(matches!(e, CallError::ResourceExhausted(_)), "{e:?}");
        assert_ok(&good);
        // The same component works again right after failing (the limiter
        // and deadline are per call, not sticky).
        let out = hog.call_with(
            CallOptions {
                memory_limit: Some(1 << 20),
                ..CallOptions::default()
            },
            ADDER_INTERFACE,
            ADDER_FUNC,
            &args(),
        );
        assert!(
            matches!(out, Err(CallError::ResourceExhausted(_))),
            "{out:?}"
        );
    }
}

#[test]
fn concurrent_bad_requests_do_not_disturb_good_ones() {
    let host = Host::new().unwrap();
    let good = std::sync::Arc::new(host.load(&adder_component()).unwrap());
    let looping = std::sync::Arc::new(host.load(&adder_component_with_body(LOOP_BODY)).unwrap());
    let bad = {
        let looping = std::sync::Arc::clone(&looping);
        std::thread::spawn(move || {
            let quick = CallOptions {
                timeout: Some(Duration::from_millis(50)),
                ..CallOptions::default()
            };
            for _ in 0..5 {
                let e = looping
                    .call_with(quick, ADDER_INTERFACE, ADDER_FUNC, &args())
                    .unwrap_err();
                assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
            }
        })
    };
    for _ in 0..200 {
        assert_ok(&good);
    }
    bad.join().unwrap();
    assert_ok(&good);
}
