//! Managed spacecores through the daemon (autostarted by the CLI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;
use serde_json::Value;

fn running(w: &Value) -> bool {
    w["state"] == "running"
}

#[test]
fn go_spacecore_managed_lifecycle() {
    let Some(go) = common::go_spacecore() else {
        return;
    };
    let env = Env::new();
    let go = go.to_string_lossy().to_string();
    let state_dir = env.home().join("sc");
    let env_arg = format!("SC_STATE_DIR={}", state_dir.display());
    env.ok(&["start", "gocore", "--plugin", &go, "--env", &env_arg]);
    let w = env.workload("gocore");
    assert_eq!(w["name"], "gocore");
    assert_eq!(w["kind"], "spacecore");
    assert!(running(&w), "{w}");
    assert_eq!(w["restarts"], 0);
    let pid = w["pid"].as_i64().expect("pid") as i32;
    assert!(common::alive(pid));
    // The poller fills `detail` with the plugin's Status answer.
    env.wait_for("gocore", "detail=running", |w| w["detail"] == "running");

    // Idempotent second start; a different spec is a conflict.
    env.ok(&["start", "gocore", "--plugin", &go, "--env", &env_arg]);
    env.ok(&["start", "gocore"]);
    assert_eq!(env.workload("gocore")["pid"].as_i64(), Some(pid as i64));
    let err = env.fails(&["start", "gocore", "--plugin", &go]);
    assert!(
        err.contains("already running with a different spec"),
        "{err}"
    );

    // Merged logs: hclog records from stderr and Logs RPC lines.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let logs = env.ok(&["logs", "gocore", "-o", "json"]);
        let recs: Vec<Value> = logs
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let hclog = recs
            .iter()
            .any(|r| r["stream"] == "hclog" && r["level"] == "info");
        let plugin = recs.iter().any(|r| r["stream"] == "plugin");
        if hclog && plugin {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logs incomplete: {logs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let tail = env.ok(&["logs", "gocore", "--tail", "2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(env.home().join("logs/gocore.log").exists());

    // Events record the lifecycle.
    let events = env.ok(&["events", "gocore", "-o", "json"]);
    assert!(events.contains("\"created\""), "{events}");

    // Stop keeps the record; rm removes it and its logs.
    env.ok(&["stop", "gocore"]);
    let w = env.workload("gocore");
    assert_eq!(w["state"], "stopped");
    assert!(w["pid"].is_null());
    common::wait_gone(pid);
    assert!(!common::alive(pid), "plugin still alive after stop");
    // start again by name reuses the stored spec
    env.ok(&["start", "gocore"]);
    assert!(running(&env.workload("gocore")));
    env.ok(&["rm", "gocore"]);
    let err = env.fails(&["status", "gocore"]);
    assert!(err.contains("no workload named"), "{err}");
    assert!(!env.home().join("logs/gocore.log").exists());
}

#[test]
fn crashed_plugin_is_relaunched_without_a_second_start() {
    let env = Env::new();
    let bin = common::rust_spacecore().to_string_lossy().to_string();
    let sd = format!("SC_STATE_DIR={}", env.home().join("rs").display());
    env.ok(&["start", "counter", "--plugin", &bin, "--env", &sd]);
    let w = env.workload("counter");
    let pid = w["pid"].as_i64().expect("pid") as i32;
    let child = std::fs::read_to_string(env.home().join("rs/counter.pid")).expect("child pid");
    common::kill9(pid);
    let w = env.wait_for("counter", "relaunch", |w| {
        running(w) && w["restarts"] == 1 && w["pid"].as_i64() != Some(pid as i64)
    });
    assert!(common::alive(w["pid"].as_i64().expect("pid") as i32));
    // Status said running, so the relaunched plugin did not Start again.
    let child_after =
        std::fs::read_to_string(env.home().join("rs/counter.pid")).expect("child pid");
    assert_eq!(child, child_after);
    let events = env.ok(&["events", "counter", "-o", "json"]);
    assert!(events.contains("restarted"), "{events}");
    env.ok(&["stop", "counter"]);
}

#[test]
fn faults_leave_the_store_consistent() {
    let env = Env::new();
    // bad name
    let err = env.fails(&["start", "Bad_Name", "--plugin", "/bin/true"]);
    assert!(err.contains("^[a-z][a-z0-9-]{0,62}$"), "{err}");
    // missing plugin: refused before anything is stored
    let err = env.fails(&["start", "ghost", "--plugin", "/nonexistent/plugin"]);
    assert!(err.contains("does not exist"), "{err}");
    let err = env.fails(&["status", "ghost"]);
    assert!(err.contains("no workload named"), "{err}");
    // a plugin that prints garbage fails to start; the record says failed
    let p = common::script(env.home(), "garbage", "echo garbage-line; sleep 5");
    let err = env.fails(&["start", "junk", "--plugin", &p.to_string_lossy()]);
    assert!(err.contains("garbage-line"), "{err}");
    let w = env.workload("junk");
    assert_eq!(w["state"], "failed");
    assert!(w["detail"].as_str().unwrap_or("").contains("garbage-line"));
    assert!(w["pid"].is_null());
    // silent plugin: start timeout
    let p = common::script(env.home(), "silent", "sleep 30");
    let err = env.fails(&[
        "start",
        "quiet",
        "--plugin",
        &p.to_string_lossy(),
        "--start-timeout",
        "0.5",
    ]);
    assert!(err.contains("handshake"), "{err}");
    assert_eq!(env.workload("quiet")["state"], "failed");
    // everything can be removed
    env.ok(&["rm", "junk"]);
    env.ok(&["rm", "quiet"]);
    assert_eq!(env.json(&["status"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn plugin_crashing_mid_start_fails_cleanly() {
    let Some(go) = common::go_spacecore() else {
        return;
    };
    let env = Env::new();
    let err = env.fails(&[
        "start",
        "crashy",
        "--plugin",
        &go.to_string_lossy(),
        "--env",
        "SC_CRASH_ON=start",
    ]);
    assert!(err.contains("Start failed"), "{err}");
    assert!(err.contains("SC_CRASH_ON: exiting mid-call"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let w = env.workload("crashy");
    assert_eq!(w["state"], "failed");
    assert!(w["pid"].is_null());
    // The crash reached the merged log (go-spacecore says why on stderr).
    let logs = env.ok(&["logs", "crashy"]);
    assert!(logs.contains("SC_CRASH_ON"), "{logs}");
    env.ok(&["rm", "crashy"]);
}
