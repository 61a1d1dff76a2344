//! Per-request cost of the gRPC path: fresh store + instantiate + one call
//! of the adder component (`LoadedComponent::call`), plus the same for the
//! wasi:http hello component (`LoadedComponent::handle_http`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use vimana_wasm::testing::{ADDER_FUNC, ADDER_INTERFACE, adder_component, hello_http_component};
use vimana_wasm::{CallOptions, Host, Val};

fn request(x: f64, y: f64) -> Vec<Val> {
    vec![Val::Record(vec![
        ("x".to_string(), Val::Float64(x)),
        ("y".to_string(), Val::Float64(y)),
    ])]
}

fn bench(c: &mut Criterion) {
    let host = Host::new().expect("host");
    let adder = host.load(&adder_component()).expect("load adder");
    let args = request(3.5, -1.2);
    c.bench_function("adder: fresh store + instantiate + call", |b| {
        b.iter(|| {
            black_box(
                adder
                    .call(ADDER_INTERFACE, ADDER_FUNC, black_box(&args))
                    .unwrap(),
            )
        })
    });

    let hello = host.load(&hello_http_component()).expect("load hello");
    c.bench_function("wasi:http hello: fresh store + instantiate + handle", |b| {
        b.iter(|| {
            let req = http::Request::get("http://localhost/")
                .body(Bytes::new())
                .unwrap();
            black_box(hello.handle_http(req, CallOptions::default()).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
