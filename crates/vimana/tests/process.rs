//! Process workloads through the real daemon: launch, logs, graceful and
//! forced stop, restart policies, re-adoption after `kill -9` of the
//! daemon, and spec validation. There is no CLI verb for process workloads
//! yet, so they are created with `PUT /v1/workloads/{name}` on the socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Env, alive};
use serde_json::json;

/// Sends `PUT /v1/workloads/{name}` with `{"spec": spec}`; returns the raw response.
fn put(env: &Env, name: &str, spec: serde_json::Value) -> String {
    let body = json!({ "spec": spec }).to_string();
    let mut s =
        std::os::unix::net::UnixStream::connect(env.home().join("vimanad.sock")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let req = format!(
        "PUT /v1/workloads/{name} HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn sh(script: &str) -> serde_json::Value {
    json!({ "kind": "process", "command": "/bin/sh", "args": ["-c", script] })
}

fn start(env: &Env, name: &str, spec: serde_json::Value) {
    let resp = put(env, name, spec);
    assert!(resp.starts_with("HTTP/1.1 2"), "{resp}");
}

fn wait_until(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pid_of(w: &serde_json::Value) -> i32 {
    w["pid"].as_i64().expect("pid") as i32
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn runs_logs_both_streams_and_stops_on_sigterm() {
    let env = Env::new();
    env.ok(&["status"]);
    let marker = env.home().join("terminated");
    let script = format!(
        "trap 'echo bye > {}; exit 0' TERM; while true; do echo out-line; echo err-line >&2; sleep 0.2; done",
        marker.display()
    );
    start(&env, "p1", sh(&script));
    let w = env.wait_for("p1", "running", |w| w["state"] == "running");
    assert_eq!(w["kind"], "process");
    let pid = pid_of(&w);
    assert!(alive(pid));
    let table = env.ok(&["status"]);
    assert!(
        table.contains("p1") && table.contains("process") && table.contains(&pid.to_string()),
        "{table}"
    );
    wait_until("both streams in the log", || {
        let logs = env.ok(&["logs", "p1"]);
        logs.contains("stdout out-line") && logs.contains("stderr err-line")
    });
    env.ok(&["stop", "p1"]);
    let w = env.workload("p1");
    assert_eq!(w["state"], "stopped");
    assert!(w["pid"].is_null());
    common::wait_gone(pid);
    assert!(!alive(pid));
    let m = std::fs::read_to_string(&marker).expect("the TERM trap ran");
    assert_eq!(m.trim(), "bye");
}

#[test]
fn process_ignoring_sigterm_is_killed_after_stop_timeout() {
    let env = Env::new();
    env.ok(&["status"]);
    let mut spec = sh("trap '' TERM; echo ready; while true; do sleep 0.1; done");
    spec["stop_timeout_ms"] = json!(700);
    start(&env, "stubborn", spec);
    let w = env.wait_for("stubborn", "running", |w| w["state"] == "running");
    let pid = pid_of(&w);
    // stop only once the TERM trap is set
    wait_until("ready", || env.ok(&["logs", "stubborn"]).contains("ready"));
    let t = Instant::now();
    env.ok(&["stop", "stubborn"]);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(700), "stopped after {took:?}");
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
    assert_eq!(env.workload("stubborn")["state"], "stopped");
    common::wait_gone(pid);
    assert!(!alive(pid));
    let logs = env.ok(&["logs", "stubborn"]);
    assert!(logs.contains("SIGKILL"), "{logs}");
}

#[test]
fn on_failure_relaunches_a_failure_and_ends_on_success() {
    let env = Env::new();
    env.ok(&["status"]);
    let mut failing = sh("echo failing; exit 3");
    failing["restart"] = json!("on-failure");
    start(&env, "fails", failing);
    let w = env.wait_for("fails", "a relaunch", |w| {
        w["restarts"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(w["desired"], "running");
    let logs = env.ok(&["logs", "fails"]);
    assert!(logs.contains("exited with status 3"), "{logs}");
    env.ok(&["stop", "fails"]);

    let mut ok = sh("echo all done; sleep 0.3; exit 0");
    ok["restart"] = json!("on-failure");
    start(&env, "done", ok);
    let w = env.wait_for("done", "stopped", |w| w["state"] == "stopped");
    assert_eq!(w["desired"], "stopped");
    assert_eq!(w["restarts"], 0);
    assert!(w["detail"].as_str().unwrap().contains("status 0"), "{w}");
    std::thread::sleep(Duration::from_millis(600));
    let w = env.workload("done");
    assert_eq!(w["state"], "stopped");
    assert_eq!(w["restarts"], 0);
}

#[test]
fn survives_daemon_kill9_and_is_readopted_with_the_same_pid() {
    let env = Env::new();
    env.ok(&["status"]);
    start(
        &env,
        "survivor",
        sh("i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"),
    );
    let w = env.wait_for("survivor", "running", |w| w["state"] == "running");
    let pid = pid_of(&w);
    env.kill_daemon();
    assert!(alive(pid), "the process died with the daemon");
    let raw = env.home().join("logs").join("survivor.stdout");
    let before = file_len(&raw);
    wait_until("output while no daemon runs", || {
        file_len(&raw) > before + 20
    });
    assert!(alive(pid));
    env.ok(&["status"]);
    let w = env.wait_for("survivor", "re-adopted", |w| w["state"] == "running");
    assert_eq!(pid_of(&w), pid);
    assert_eq!(w["restarts"], 0);
    let logs = env.ok(&["logs", "survivor"]);
    assert!(logs.contains("re-adopted"), "{logs}");
    // Output written while no daemon ran reaches the merged log too.
    let last = std::fs::read_to_string(&raw).unwrap();
    let last = last.lines().last().unwrap().to_string();
    wait_until("output of the gap in the merged log", || {
        env.ok(&["logs", "survivor"]).contains(&last)
    });
    env.ok(&["stop", "survivor"]);
    common::wait_gone(pid);
    assert!(!alive(pid));
}

#[test]
fn bad_specs_are_rejected_naming_the_field() {
    let env = Env::new();
    env.ok(&["status"]);
    let resp = put(
        &env,
        "bad",
        json!({ "kind": "process", "command": "sh", "args": ["-c", "true"] }),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.contains("spec.command") && resp.contains("absolute"),
        "{resp}"
    );
    let resp = put(
        &env,
        "bad",
        json!({ "kind": "process", "command": "/bin/sh", "cwd": "/no/such/dir" }),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.contains("spec.cwd") && resp.contains("does not exist"),
        "{resp}"
    );
    let resp = put(
        &env,
        "bad",
        json!({ "kind": "process", "command": "/bin/sh", "resources": { "memory_bytes": 1000 } }),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("spec.resources.memory_bytes"), "{resp}");
    let out = env.run(&["status", "bad"]);
    assert!(!out.status.success(), "a rejected spec must not be stored");
}

#[test]
fn resource_limits_without_cgroup_v2_warn_once_and_run() {
    let env = Env::new();
    env.ok(&["status"]);
    let mut spec = sh("while true; do sleep 0.2; done");
    spec["resources"] = json!({ "cpu": 0.5, "memory_bytes": 67108864 });
    start(&env, "limited", spec);
    env.wait_for("limited", "running", |w| w["state"] == "running");
    let logs = env.ok(&["logs", "limited"]);
    let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if cgroup_v2 {
        assert!(
            logs.contains("resource limits applied") || logs.contains("not applied"),
            "{logs}"
        );
    } else {
        assert_eq!(
            logs.matches("resource limits not applied").count(),
            1,
            "{logs}"
        );
    }
    env.ok(&["stop", "limited"]);
}
