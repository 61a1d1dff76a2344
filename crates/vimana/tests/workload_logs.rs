//! Workload logs through the real daemon: following workloads that do not
//! exist is a 404 that leaves no state behind (memory stays flat however
//! many names a client tries), and a workload's log never shares a file
//! with the daemon's own log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Env;

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One HTTP/1.1 request on a kept-alive connection; (status, body).
fn request(conn: &mut BufReader<UnixStream>, method: &str, path: &str) -> (u16, String) {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: vimana\r\nContent-Length: 0\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).expect("write");
    let mut status_line = String::new();
    conn.read_line(&mut status_line).expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut len = None;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).expect("header");
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len.unwrap_or_else(|| panic!("{method} {path}: no content-length"))];
    conn.read_exact(&mut body).expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn following_absent_workloads_is_a_404_that_allocates_nothing() {
    let env = Env::new();
    env.ok(&["status"]);
    let pid = env.daemon_pid().expect("daemon pid");
    let stream = UnixStream::connect(env.home().join("vimanad.sock")).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut conn = BufReader::new(stream);
    let mut follow = |from: usize, to: usize| {
        for i in from..to {
            let (status, body) = request(
                &mut conn,
                "GET",
                &format!("/v1/workloads/absent-{i}/logs?follow=true"),
            );
            assert_eq!(status, 404, "{body}");
            assert!(body.contains(&format!("absent-{i}")), "{body}");
        }
    };
    // Warm up (allocator arenas, the connection), then measure.
    follow(0, 200);
    let before = rss_kib(pid);
    follow(200, 10_200);
    let after = rss_kib(pid);
    let grew = after.saturating_sub(before);
    eprintln!("daemon VmRSS {before} KiB → {after} KiB after 10,000 follows of absent names");
    assert!(
        grew < 8 * 1024,
        "daemon memory grew by {grew} KiB for 10,000 follows of absent workloads"
    );
}

/// Where the daemon's stderr goes (its own log when autostarted).
fn stderr_of(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/2")).expect("daemon stderr")
}

/// A workload may be named `daemon`: its merged log is `logs/daemon.log`,
/// and removing it must not delete (or write into) the daemon's own log.
#[test]
fn a_workload_named_daemon_keeps_its_log_apart_from_the_daemons() {
    let env = Env::new();
    env.ok(&["status"]);
    let pid = env.daemon_pid().expect("daemon pid");
    let own = stderr_of(pid);
    assert!(
        !own.starts_with(env.home().join("logs")),
        "the daemon logs to {} among the workloads' logs",
        own.display()
    );
    let body = r#"{"spec":{"kind":"process","command":"/bin/sh","args":["-c","echo from-the-workload; exec sleep 600"]}}"#;
    let stream = UnixStream::connect(env.home().join("vimanad.sock")).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut conn = BufReader::new(stream);
    let req = format!(
        "PUT /v1/workloads/daemon HTTP/1.1\r\nHost: vimana\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(req.as_bytes()).expect("write");
    let mut status = String::new();
    conn.read_line(&mut status).expect("status line");
    assert!(status.starts_with("HTTP/1.1 2"), "{status}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.ok(&["logs", "daemon"]).contains("from-the-workload") {
        assert!(
            Instant::now() < deadline,
            "the workload's line never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    env.ok(&["stop", "daemon"]);
    env.ok(&["rm", "daemon"]);
    let after = stderr_of(pid);
    assert_eq!(after, own, "the daemon's log was deleted by `rm daemon`");
    assert!(own.exists(), "{} is gone", own.display());
    let text = std::fs::read_to_string(&own).unwrap_or_default();
    assert!(
        !text.contains("from-the-workload"),
        "the workload wrote into the daemon's log"
    );
}
