//! Shared harness for the CLI/daemon integration tests: a private
//! VIMANA_HOME, the real `vimana` binary, the real Go spacecore (built with
//! hashicorp/go-plugin from Debian's packages) and the Rust example.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn target_dir() -> PathBuf {
    // CARGO_BIN_EXE_vimana = <target>/<profile>/vimana
    Path::new(env!("CARGO_BIN_EXE_vimana"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo().join("target"))
}

/// The Go spacecore, built once per test process; `None` (with a printed
/// reason) when Go is not installed and we are not in CI.
pub fn go_spacecore() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = target_dir().join("go-spacecore");
            let status = Command::new("bash")
                .arg(repo().join("scripts/build-go-spacecore.sh"))
                .arg(&out)
                .status();
            match status {
                Ok(s) if s.success() => Some(out.join("go-spacecore")),
                other => {
                    let msg = format!("cannot build the Go spacecore ({other:?}); run scripts/install-test-deps.sh");
                    assert!(std::env::var_os("CI").is_none(), "{msg}");
                    eprintln!("SKIP: {msg}");
                    None
                }
            }
        })
        .clone()
}

/// The Rust example spacecore (`examples/spacecore-counter`).
pub fn rust_spacecore() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = Path::new(env!("CARGO_BIN_EXE_vimana"))
                .parent()
                .map(Path::to_path_buf);
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-q", "-p", "spacecore-counter"])
                .current_dir(repo());
            if profile_dir.as_ref().is_some_and(|d| d.ends_with("release")) {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("cargo build spacecore-counter");
            assert!(st.success(), "building spacecore-counter failed");
            profile_dir.expect("profile dir").join("spacecore-counter")
        })
        .clone()
}

/// A private VIMANA_HOME; kills its daemon and every workload on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vimana-test-")
            .tempdir()
            .expect("tempdir");
        // Fast supervision for tests.
        std::fs::write(
            dir.path().join("config.toml"),
            "[daemon]\npoll_interval_ms = 200\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\nhealthy_reset_ms = 10000\n",
        )
        .expect("config");
        Env { dir }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vimana"));
        c.env("VIMANA_HOME", self.home())
            .env_remove("VIMANA_LOG")
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run vimana")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vimana {args:?} failed: {}\nstdout: {}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "vimana {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["-o", "json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("json output")
    }

    pub fn workload(&self, name: &str) -> serde_json::Value {
        let v = self.json(&["status", name]);
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .expect("one workload")
    }

    /// Polls `vimana status NAME` until `pred` holds.
    pub fn wait_for(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let w = self.workload(name);
            if pred(&w) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last: {w}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.home().join("daemon.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn kill_daemon(&self) {
        if let Some(pid) = self.daemon_pid() {
            kill9(pid);
            wait_gone(pid);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let pids: Vec<i32> = self
            .run(&["--no-autostart", "-o", "json", "status"])
            .stdout
            .pipe(|o| serde_json::from_slice::<Vec<serde_json::Value>>(&o).unwrap_or_default())
            .iter()
            .filter_map(|w| w["pid"].as_i64())
            .map(|p| p as i32)
            .collect();
        self.kill_daemon();
        // Workload children of the Rust example (their own process groups).
        for sub in ["rs", "rs-state"] {
            if let Ok(pid) = std::fs::read_to_string(self.home().join(sub).join("counter.pid"))
                && let Ok(pid) = pid.trim().parse::<i32>()
            {
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        }
        for p in pids {
            // the plugin's process group holds its workload children too
            unsafe { libc::kill(-p, libc::SIGKILL) };
            kill9(p);
        }
    }
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

pub fn kill9(pid: i32) {
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
}

pub fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes an executable shell script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}
