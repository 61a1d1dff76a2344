//! The daemon raises its RLIMIT_NOFILE to fit the connection caps of its
//! listeners ([api.connections] and [gateway.connections], 4096 each by
//! default), the hard limit too when it may (CAP_SYS_RESOURCE); when it
//! may not, it warns naming the keys to lower.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::process::CommandExt;

fn max_open_files(pid: i32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn daemon_lifts_a_low_descriptor_limit_to_fit_the_connection_caps() {
    let env = common::Env::new();
    let mut cmd = env.cmd(&["status"]);
    // The CLI (and the daemon it starts) begin at 1024 soft / 2048 hard.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 2048,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid = env.daemon_pid().expect("the daemon started");
    let (soft, hard) = max_open_files(pid);
    if can_raise_hard_limit() {
        // 4096 (unix API) + 2 × 4096 (gateway listeners) + 4096 for workloads.
        assert!(
            soft >= 16384 && hard >= soft,
            "daemon RLIMIT_NOFILE {soft}/{hard}"
        );
    } else {
        // Without CAP_SYS_RESOURCE (containers): the soft limit reaches
        // the hard one and the daemon says what to change.
        assert_eq!((soft, hard), (2048, 2048));
        let home = env.home();
        let log = ["daemon.log", "logs/daemon.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(home.join(f)).ok())
            .collect::<String>();
        assert!(
            log.contains("RLIMIT_NOFILE is below") && log.contains("[gateway.connections]"),
            "no warning in the daemon log: {log}"
        );
    }
    env.kill_daemon();
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff).
fn can_raise_hard_limit() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    eff & (1 << 24) != 0
}
