//! End-to-end: this test binary doubles as the plugin. With
//! `VIMANA_GOPLUGIN_TEST_PLUGIN=1` its `main` calls `serve()`; otherwise it
//! runs the host-side tests below (custom harness, so that libtest output
//! never precedes the handshake line on stdout).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use common::plugin;

type TestFn = fn() -> Pin<Box<dyn Future<Output = ()> + Send>>;

fn main() {
    if std::env::var(plugin::ENV).as_deref() == Ok("1") {
        plugin::run();
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: Vec<(&str, TestFn)> = vec![
        ("mtls_health_stdio_reattach_shutdown", || {
            Box::pin(common::host::mtls_health_stdio_reattach_shutdown())
        }),
        ("plaintext_version_negotiation_kill", || {
            Box::pin(common::host::plaintext_version_negotiation_kill())
        }),
        ("files_output_detached", || {
            Box::pin(common::host::files_output_detached())
        }),
        ("wrong_cookie_reports_stderr", || {
            Box::pin(common::host::wrong_cookie_reports_stderr())
        }),
    ];
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in &tests {
            println!("{name}: test");
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in tests {
        if !filters.is_empty() && !filters.iter().any(|flt| name.contains(flt.as_str())) {
            continue;
        }
        ran += 1;
        let res = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), tokio::spawn(f())).await
        });
        match res {
            Ok(Ok(())) => println!("test {name} ... ok"),
            Ok(Err(e)) => {
                println!("test {name} ... FAILED ({e})");
                failed.push(name);
            }
            Err(_) => {
                println!("test {name} ... FAILED (timeout)");
                failed.push(name);
            }
        }
    }
    println!(
        "\ne2e: {} passed; {} failed",
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
