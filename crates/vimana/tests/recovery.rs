//! kill -9 of the daemon: plugins live on (even while writing to stdout and
//! stderr) and the next daemon re-adopts them: same pid, no duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Env, pids_of, pids_running};

fn count_procs(exe: &str) -> usize {
    pids_of(exe).len()
}

/// Waits up to 20 s for `f` to hold.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_kill9_then_readopt() {
    let env = Env::new();
    let Some(go) = common::private_go(&env) else {
        return;
    };
    let rust = common::rust_spacecore().to_string_lossy().to_string();
    let sd = format!("SC_STATE_DIR={}", env.home().join("rs").display());
    env.ok(&["start", "chatty", "--plugin", &go, "--env", "SC_CHATTY=1"]);
    env.ok(&["start", "counter", "--plugin", &rust, "--env", &sd]);
    let before: Vec<i64> = ["chatty", "counter"]
        .iter()
        .map(|n| env.workload(n)["pid"].as_i64().expect("pid"))
        .collect();
    let daemon = env.daemon_pid().expect("daemon pid");
    env.kill_daemon();
    assert!(!common::alive(daemon));
    // The chatty plugin keeps writing to stdout/stderr with no daemon.
    std::thread::sleep(Duration::from_millis(1500));
    for p in &before {
        assert!(common::alive(*p as i32), "plugin {p} died with the daemon");
    }
    assert!(
        env.home().join("vimanad.sock").exists(),
        "stale socket expected"
    );
    // The next CLI call starts a new daemon, which re-adopts both.
    for (name, pid) in ["chatty", "counter"].iter().zip(&before) {
        let w = env.wait_for(name, "re-adoption", |w| w["state"] == "running");
        assert_eq!(
            w["pid"].as_i64(),
            Some(*pid),
            "{name} was relaunched, not adopted"
        );
        assert_eq!(w["restarts"], 0);
    }
    assert_ne!(env.daemon_pid(), Some(daemon));
    assert_eq!(count_procs(&go), 1, "duplicate or missing Go plugin");
    let events = env.ok(&["events", "chatty", "-o", "json"]);
    assert!(events.contains("adopted"), "{events}");
    // Output written while no daemon ran reaches the merged log.
    let logs = env.ok(&["logs", "chatty"]);
    assert!(logs.contains("stdout") && logs.contains("stderr"), "{logs}");
    // The adopted plugins are still controllable.
    env.ok(&["stop", "chatty"]);
    common::wait_gone(before[0] as i32);
    assert!(!common::alive(before[0] as i32));
    env.ok(&["stop", "counter"]);
}

#[test]
fn plugin_dead_while_daemon_down_is_relaunched() {
    let env = Env::new();
    let rust = common::rust_spacecore().to_string_lossy().to_string();
    let sd = format!("SC_STATE_DIR={}", env.home().join("rs").display());
    env.ok(&["start", "counter", "--plugin", &rust, "--env", &sd]);
    let pid = env.workload("counter")["pid"].as_i64().expect("pid") as i32;
    env.kill_daemon();
    common::kill9(pid);
    common::wait_gone(pid);
    // The new daemon answers only after adoption: the first status is true.
    let w = env.workload("counter");
    assert_eq!(w["state"], "running", "{w}");
    assert_ne!(w["pid"].as_i64(), Some(pid as i64));
    assert_eq!(w["restarts"], 1);
    env.ok(&["stop", "counter"]);
}

/// Issue 9: a daemon killed -9 while a plugin's Start is still running. The
/// next daemon adopts that very plugin (its handle was recorded before the
/// slow Start), never launching a second copy.
#[test]
fn daemon_killed_during_start_adopts_the_plugin() {
    let env = Env::new();
    let Some(go) = common::private_go(&env) else {
        return;
    };
    let _cleanup = common::KillAll(go.clone());
    let sd = format!("SC_STATE_DIR={}", env.home().join("sc").display());
    let mut start = env
        .cmd(&[
            "start",
            "slow",
            "--plugin",
            &go,
            "--env",
            &sd,
            "--env",
            "SC_START_DELAY_MS=5000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn vimana start");
    wait_until("the plugin runs", || count_procs(&go) == 1);
    std::thread::sleep(Duration::from_secs(2));
    let first = pids_of(&go);
    assert_eq!(first.len(), 1, "{first:?}");
    env.kill_daemon();
    let _ = start.wait();
    let w = env.wait_for("slow", "running after restart", |w| w["state"] == "running");
    assert_eq!(
        pids_of(&go),
        first,
        "the next daemon launched a second copy instead of adopting pid {}",
        first[0]
    );
    assert_eq!(w["pid"].as_i64(), Some(i64::from(first[0])), "{w}");
    let events = env.ok(&["events", "slow", "-o", "json"]);
    assert!(events.contains("adopted"), "{events}");
    env.ok(&["stop", "slow"]);
    common::wait_gone(first[0]);
    assert_eq!(count_procs(&go), 0);
}

/// Issue 9, the earlier half: a daemon killed -9 after it spawned a plugin
/// but before the plugin's handshake. The next daemon finds that process by
/// its recorded pid and start time and kills it before launching anew, so
/// exactly one copy runs.
#[test]
fn daemon_killed_before_handshake_kills_the_half_launched_plugin() {
    let env = Env::new();
    let Some(go) = common::private_go(&env) else {
        return;
    };
    let _cleanup = common::KillAll(go.clone());
    // Slow to start: 3 s before the plugin itself runs.
    let slow = common::script(
        env.home(),
        "slow-plugin",
        &format!("sleep 3\nexec {go} \"$@\""),
    );
    let slow = slow.to_string_lossy().to_string();
    let mut start = env
        .cmd(&["start", "late", "--plugin", &slow])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn vimana start");
    wait_until("the daemon spawned the plugin", || {
        !pids_running(&slow).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    env.kill_daemon();
    let _ = start.wait();
    let w = env.wait_for("late", "running after restart", |w| w["state"] == "running");
    // The half-launched copy would exec the plugin by now (3 s).
    std::thread::sleep(Duration::from_secs(4));
    let pids = pids_of(&go);
    assert_eq!(pids.len(), 1, "expected one plugin, found {pids:?}");
    assert_eq!(w["pid"].as_i64(), Some(i64::from(pids[0])), "{w}");
    env.ok(&["stop", "late"]);
}
