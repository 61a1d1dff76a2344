//! The daemon itself: socket mode, lock, stale socket, TCP token, problem
//! details, OpenAPI, init, completions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Env;

fn raw_http(stream: &mut impl ReadWrite, req: &str) -> String {
    stream.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn unix(env: &Env) -> std::os::unix::net::UnixStream {
    let s =
        std::os::unix::net::UnixStream::connect(env.home().join("vimanad.sock")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s
}

#[test]
fn socket_is_private_and_lock_is_exclusive() {
    let env = Env::new();
    env.ok(&["status"]);
    let mode = std::fs::metadata(env.home().join("vimanad.sock"))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = env.run(&["daemon"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another vimana daemon"), "{err}");
    // kill -9 leaves a stale socket; the next daemon cleans it up
    env.kill_daemon();
    assert!(env.home().join("vimanad.sock").exists());
    env.ok(&["status"]);
    // --no-autostart with no daemon is a clear error
    env.kill_daemon();
    let err = env.fails(&["--no-autostart", "status"]);
    assert!(
        err.contains("does not answer") && err.contains("vimana daemon"),
        "{err}"
    );
}

#[test]
fn api_errors_are_problem_details() {
    let env = Env::new();
    env.ok(&["status"]);
    let body = "{not json";
    let resp = raw_http(
        &mut unix(&env),
        &format!(
            "PUT /v1/workloads/x HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.contains("\"type\"") && resp.contains("\"title\"") && resp.contains("\"detail\""),
        "{resp}"
    );
    let body = r#"{"spec":{"kind":"spacecore","plugin":"/bin/true","bogus":1}}"#;
    let resp = raw_http(
        &mut unix(&env),
        &format!(
            "PUT /v1/workloads/x HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("bogus"), "{resp}");
    let big = "x".repeat(2 * 1024 * 1024);
    let mut s = unix(&env);
    let head = format!(
        "PUT /v1/workloads/x HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    let _ = s.write_all(big.as_bytes());
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(
        resp.starts_with("HTTP/1.1 413"),
        "{}",
        &resp[..resp.len().min(300)]
    );
    // the daemon is still fine
    env.ok(&["status"]);
    let doc = raw_http(
        &mut unix(&env),
        "GET /openapi.json HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n",
    );
    assert!(
        doc.contains("\"openapi\"") && doc.contains("/v1/workloads/{name}/logs"),
        "{doc}"
    );
}

#[test]
fn tcp_listener_requires_the_token() {
    let env = Env::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut daemon = env
        .cmd(&["daemon", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon");
    let deadline = Instant::now() + Duration::from_secs(15);
    let connect = || std::net::TcpStream::connect(("127.0.0.1", port));
    while connect().is_err() {
        assert!(Instant::now() < deadline, "daemon did not listen on TCP");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token_path = env.home().join("token");
    let mode = std::fs::metadata(&token_path)
        .expect("token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(token_path).expect("token");
    let get = |auth: &str| {
        let mut s = connect().expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        raw_http(
            &mut s,
            &format!("GET /v1/workloads HTTP/1.1\r\nHost: v\r\n{auth}Connection: close\r\n\r\n"),
        )
    };
    assert!(get("").starts_with("HTTP/1.1 401"));
    assert!(get("Authorization: Bearer wrong\r\n").starts_with("HTTP/1.1 401"));
    let ok = get(&format!("Authorization: Bearer {}\r\n", token.trim()));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
}

#[test]
fn init_reports_and_writes_config() {
    let env = Env::new();
    std::fs::remove_file(env.home().join("config.toml")).expect("rm config");
    let v = env.json(&["init"]);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for n in [
        "cpu",
        "memory",
        "disk",
        "kvm",
        "tun",
        "vsock",
        "cgroup-v2",
        "qemu-system-x86_64",
        "firecracker",
        "cloud-hypervisor",
    ] {
        assert!(names.contains(&n), "missing {n} in {names:?}");
    }
    for c in v["checks"].as_array().expect("checks") {
        if c["ok"] == false {
            assert!(
                c["hint"].as_str().is_some_and(|h| !h.is_empty()),
                "no hint: {c}"
            );
        }
    }
    let cfg = std::fs::read_to_string(env.home().join("config.toml")).expect("config");
    assert!(cfg.contains("[host]") && cfg.contains("[daemon]"), "{cfg}");
    let table = env.ok(&["init"]);
    assert!(
        table.contains("CHECK") && (table.contains('✓') || table.contains('✗')),
        "{table}"
    );
    assert!(table.contains("--force"), "{table}");
}

#[test]
fn completions_print() {
    let env = Env::new();
    let out = env.ok(&["completions", "bash"]);
    assert!(out.contains("vimana") && out.contains("complete"));
}

#[test]
fn store_from_a_newer_vimana_is_refused_clearly() {
    let env = Env::new();
    {
        let db = redb::Database::create(env.home().join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, u32> = redb::TableDefinition::new("meta");
            let mut t = tx.open_table(meta).unwrap();
            t.insert("schema_version", 99).unwrap();
        }
        tx.commit().unwrap();
    }
    let err = env.fails(&["status"]);
    assert!(err.contains("newer vimana") && err.contains("99"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The store it refused is left as it was.
    use redb::ReadableDatabase;
    let db = redb::Database::open(env.home().join("state.redb")).unwrap();
    let tx = db.begin_read().unwrap();
    let meta: redb::TableDefinition<&str, u32> = redb::TableDefinition::new("meta");
    let t = tx.open_table(meta).unwrap();
    assert_eq!(
        t.get("schema_version").unwrap().map(|v| v.value()),
        Some(99)
    );
}

#[test]
fn concurrent_autostarts_share_one_daemon() {
    let env = Env::new();
    let kids: Vec<_> = (0..4)
        .map(|_| {
            env.cmd(&["status"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let out = k.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
