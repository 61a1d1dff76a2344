//! schemathesis (PyPI) against the daemon's own `/openapi.json` over TCP
//! with the token: every generated request (valid and invalid) gets an
//! answer that the document allows — no 5xx, a documented status code and
//! content type, a body matching its schema, and no request slower than
//! the limit. Bounded by examples per operation and a time budget.
//! Installed by scripts/install-test-deps.sh; skipped with a reason
//! outside CI when missing, a failure in CI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, repo};

/// Test cases per operation and phase (≈ 45 s on 2 cores).
const MAX_EXAMPLES: &str = "20";
/// The whole run; beyond it the run counts as a hang.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn schemathesis_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import schemathesis"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_generated_request_gets_a_documented_answer() {
    if !schemathesis_installed() {
        let msg = "schemathesis is not installed for python3; run scripts/install-test-deps.sh";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIP: {msg}");
        return;
    }
    let env = Env::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut daemon = env
        .cmd(&["daemon", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::fs::File::create(env.home().join("daemon.out")).expect("log"))
        .spawn()
        .expect("daemon");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "daemon did not listen on TCP");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(env.home().join("token")).expect("token");
    let report = env.home().join("schemathesis");
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--request-timeout", "10", "--max-response-time", "5"])
        .args(["--workers", "1", "--seed", "9", "--no-color"])
        .arg("--report-dir")
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", repo().join("tests/py"))
        .current_dir(env.home())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run schemathesis");
    let started = Instant::now();
    let pid = out.id() as i32;
    let watchdog = std::thread::spawn(move || {
        while started.elapsed() < RUN_LIMIT {
            std::thread::sleep(Duration::from_millis(200));
            if !common::alive(pid) {
                return false;
            }
        }
        common::kill9(pid);
        true
    });
    let out = out.wait_with_output().expect("schemathesis output");
    let hung = watchdog.join().unwrap_or(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let alive = daemon.try_wait().expect("daemon status").is_none();
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    assert!(alive, "the daemon died during the run");
    assert!(
        !hung,
        "schemathesis did not finish within {RUN_LIMIT:?}:\n{stdout}"
    );
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        stdout.lines().rev().take(12).collect::<Vec<_>>().join("\n")
    );
}
