//! kill -9 of the daemon: plugins live on (even while writing to stdout and
//! stderr) and the next daemon re-adopts them: same pid, no duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Env;

fn count_procs(exe: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path().join("exe"))
                .map(|p| p.to_string_lossy() == exe)
                .unwrap_or(false)
                && common::alive(e.file_name().to_string_lossy().parse().unwrap_or(-1))
        })
        .count()
}

#[test]
fn daemon_kill9_then_readopt() {
    let Some(go) = common::go_spacecore() else {
        return;
    };
    let env = Env::new();
    // A private copy so counting processes by executable is exact.
    let go_copy = env.home().join("go-spacecore");
    std::fs::copy(&go, &go_copy).expect("copy plugin");
    let go = go_copy.to_string_lossy().to_string();
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
