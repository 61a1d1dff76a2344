//! Managed spacecores through the daemon (autostarted by the CLI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

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

fn ok_within(env: &Env, args: &[&str], limit: Duration) -> Duration {
    let (out, took) = common::run_within(env.cmd(args), limit);
    assert!(
        out.status.success(),
        "vimana {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Issue 10: a plugin whose Start never answers. `vimana start` fails at
/// the configured deadline with the call, the deadline, the fix and the
/// plugin's last stderr lines; the plugin is killed; a `vimana stop` sent
/// meanwhile and the `rm` after return promptly.
#[test]
fn hung_start_fails_at_the_deadline() {
    let env = common::gateway_env("[spacecore]\nstart_deadline_ms = 3000\n");
    let Some(go) = common::private_go(&env) else {
        return;
    };
    let _cleanup = common::KillAll(go.clone());
    let start = std::thread::spawn({
        let (home, go) = (env.home().to_path_buf(), go.clone());
        move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vimana"));
            cmd.env("VIMANA_HOME", home).args([
                "start",
                "hung",
                "--plugin",
                &go,
                "--env",
                "SC_HANG_ON=start",
            ]);
            common::run_within(cmd, Duration::from_secs(20))
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.run(&["status", "hung"]).status.success() {
        assert!(Instant::now() < deadline, "the workload never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Stop while Start hangs: answered once Start has failed.
    let stop_took = ok_within(&env, &["stop", "hung"], Duration::from_secs(20));
    let (out, start_took) = start.join().expect("start thread");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start should fail");
    assert!(
        err.contains("Start did not answer within 3s") && err.contains("killed"),
        "{err}"
    );
    assert!(err.contains("start_deadline_ms"), "no fix named: {err}");
    assert!(
        err.contains("SC_HANG_ON: never answering"),
        "no stderr: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        start_took >= Duration::from_secs(3) && start_took < Duration::from_secs(10),
        "start took {start_took:?}"
    );
    assert!(
        stop_took < Duration::from_secs(10),
        "stop took {stop_took:?}"
    );
    let w = env.workload("hung");
    assert_eq!(w["state"], "failed", "{w}");
    assert!(w["pid"].is_null(), "{w}");
    let pids = common::pids_of(&go);
    assert!(pids.is_empty(), "hung plugin not killed: {pids:?}");
    let rm_took = ok_within(&env, &["rm", "hung"], Duration::from_secs(10));
    assert!(rm_took < Duration::from_secs(3), "rm took {rm_took:?}");
}

/// Issue 10: Stop and Status that never answer are cut at their deadlines,
/// the plugin is killed, and the reason names the call and its stderr.
#[test]
fn hung_stop_and_status_are_cut_at_their_deadlines() {
    let env =
        common::gateway_env("[spacecore]\nstop_deadline_ms = 2000\nstatus_deadline_ms = 1000\n");
    let Some(go) = common::private_go(&env) else {
        return;
    };
    let _cleanup = common::KillAll(go.clone());
    env.ok(&[
        "start",
        "nostop",
        "--plugin",
        &go,
        "--env",
        "SC_HANG_ON=stop",
    ]);
    let pid = env.workload("nostop")["pid"].as_i64().expect("pid") as i32;
    let took = ok_within(&env, &["stop", "nostop"], Duration::from_secs(20));
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    common::wait_gone(pid);
    assert!(!common::alive(pid), "plugin with a hung Stop not killed");
    let w = env.workload("nostop");
    assert_eq!(w["state"], "stopped", "{w}");
    let detail = w["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("Stop did not answer within 2s") && detail.contains("SC_HANG_ON"),
        "{w}"
    );

    // Start answers; the first Status poll hangs: the plugin is killed and
    // relaunched (whose Status hangs too), never wedging the supervisor.
    env.ok(&[
        "start",
        "mute",
        "--plugin",
        &go,
        "--env",
        "SC_HANG_ON=status",
    ]);
    let w = env.wait_for("mute", "a Status deadline", |w| {
        w["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Status did not answer within 1s"))
    });
    assert!(
        w["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("SC_HANG_ON"),
        "{w}"
    );
    let took = ok_within(&env, &["stop", "mute"], Duration::from_secs(20));
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    let took = ok_within(&env, &["rm", "mute"], Duration::from_secs(10));
    assert!(took < Duration::from_secs(3), "rm took {took:?}");
    assert!(common::pids_of(&go).is_empty(), "a plugin was left running");
}
