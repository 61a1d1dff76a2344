//! `vimana plugin <PATH> <call>` against real plugins, and its faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, script};

/// Runs `vimana plugin <bin> <call>` with SC_STATE_DIR set; returns stdout.
fn call(env: &Env, bin: &std::path::Path, state: &std::path::Path, call: &str) -> String {
    let out = env
        .cmd(&["plugin", &bin.to_string_lossy(), call])
        .env("SC_STATE_DIR", state)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{call}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn go_spacecore_one_shot_calls() {
    let Some(go) = common::go_spacecore() else {
        return;
    };
    let env = Env::new();
    let state = env.home().join("go-state");
    // Each call is a fresh plugin process and the Go fixture's workload is
    // a goroutine of that process, so Status after Start says "stopped";
    // what this checks is the wire exchange with a real go-plugin plugin.
    assert_eq!(call(&env, &go, &state, "status"), "stopped");
    assert_eq!(call(&env, &go, &state, "start"), "started");
    assert_eq!(call(&env, &go, &state, "stop"), "stopped");
}

#[test]
fn rust_example_one_shot_calls_control_a_real_child() {
    let bin = common::rust_spacecore();
    let env = Env::new();
    let state = env.home().join("rs-state");
    assert_eq!(call(&env, &bin, &state, "status"), "stopped");
    assert_eq!(call(&env, &bin, &state, "start"), "started");
    // The child outlives the one-shot plugin process.
    assert_eq!(call(&env, &bin, &state, "status"), "running");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let logs = call(&env, &bin, &state, "logs");
    assert!(logs.contains("count 1"), "{logs}");
    assert_eq!(call(&env, &bin, &state, "stop"), "stopped");
    assert_eq!(call(&env, &bin, &state, "status"), "stopped");
}

#[test]
fn missing_and_non_executable_plugins() {
    let env = Env::new();
    let missing = env.home().join("nope");
    let err = env.fails(&["plugin", &missing.to_string_lossy(), "status"]);
    assert!(err.contains("does not exist"), "{err}");
    let file = env.home().join("plain");
    std::fs::write(&file, "x").expect("write");
    let err = env.fails(&["plugin", &file.to_string_lossy(), "status"]);
    assert!(
        err.contains("not executable") && err.contains("chmod +x"),
        "{err}"
    );
}

#[test]
fn silent_plugin_times_out() {
    let env = Env::new();
    let p = script(env.home(), "silent", "sleep 30");
    let t0 = std::time::Instant::now();
    let err = env.fails(&[
        "plugin",
        &p.to_string_lossy(),
        "status",
        "--start-timeout",
        "0.5",
    ]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert!(err.contains("handshake"), "{err}");
}

#[test]
fn garbage_handshake_is_quoted() {
    let env = Env::new();
    let p = script(
        env.home(),
        "garbage",
        "echo 'hello I am not a plugin'; sleep 5",
    );
    let err = env.fails(&["plugin", &p.to_string_lossy(), "status"]);
    assert!(err.contains("hello I am not a plugin"), "{err}");
}

#[test]
fn netrpc_is_refused() {
    let env = Env::new();
    let p = script(
        env.home(),
        "netrpc",
        "echo '1|1|unix|/tmp/none.sock|netrpc|'; sleep 5",
    );
    let err = env.fails(&["plugin", &p.to_string_lossy(), "status"]);
    assert!(err.contains("netrpc") && err.contains("gRPC"), "{err}");
}

#[test]
fn wrong_cookie_shows_plugin_stderr() {
    let Some(go) = common::go_spacecore() else {
        return;
    };
    let env = Env::new();
    let out = env
        .cmd(&["plugin", &go.to_string_lossy(), "status"])
        .env("SC_EXPECT_COOKIE", "v2")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("This binary is a plugin"), "{err}");
}

#[test]
fn plugin_crashing_mid_call() {
    let Some(go) = common::go_spacecore() else {
        return;
    };
    let env = Env::new();
    let out = env
        .cmd(&["plugin", &go.to_string_lossy(), "status"])
        .env("SC_CRASH_ON", "status")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Status") && err.lines().count() <= 3, "{err}");
}
