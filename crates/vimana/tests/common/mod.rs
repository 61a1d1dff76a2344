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
        // Fast supervision for tests; gateway listeners on free ports, so
        // no test ever binds the fixed defaults (8443/8080).
        std::fs::write(
            dir.path().join("config.toml"),
            "[daemon]\npoll_interval_ms = 200\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\nhealthy_reset_ms = 10000\n\
             [gateway]\ntls_listen = \"127.0.0.1:0\"\nh2c_listen = \"127.0.0.1:0\"\n",
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

/// Whether any thread of `pid` still runs. A multi-threaded process whose
/// leader thread has exited shows as a zombie while its other threads are
/// still tearing down (with its file descriptors, e.g. a listening socket,
/// still open), so every task is checked, not only the leader.
pub fn alive(pid: i32) -> bool {
    let running = |stat: &str| {
        !stat.is_empty() && {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
    };
    let leader = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    if running(&leader) {
        return true;
    }
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks.flatten().any(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                running(&stat)
            })
        })
        .unwrap_or(false)
}

pub fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes running the executable `exe`.
pub fn pids_of(exe: &str) -> Vec<i32> {
    live_pids(|dir| std::fs::read_link(dir.join("exe")).is_ok_and(|p| p.to_string_lossy() == exe))
}

/// Live processes whose command line has `arg` as one argument (a script).
pub fn pids_running(arg: &str) -> Vec<i32> {
    live_pids(|dir| {
        std::fs::read(dir.join("cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
    })
}

fn live_pids(matches: impl Fn(&Path) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
            (matches(&e.path()) && alive(pid)).then_some(pid)
        })
        .collect()
}

/// SIGKILLs every process of the executable on drop, so a failing test
/// leaves no plugin behind.
pub struct KillAll(pub String);

impl Drop for KillAll {
    fn drop(&mut self) {
        for pid in pids_of(&self.0) {
            kill9(pid);
        }
    }
}

/// A private copy of the Go spacecore in the env's home, so counting
/// processes by executable is exact; `None` when Go is missing (not in CI).
pub fn private_go(env: &Env) -> Option<String> {
    let go = go_spacecore()?;
    let copy = env.home().join("go-spacecore");
    std::fs::copy(&go, &copy).expect("copy plugin");
    Some(copy.to_string_lossy().to_string())
}

/// Runs `cmd` to its end, failing the test if it takes longer than `limit`
/// (the child is killed first); returns its output and how long it took.
pub fn run_within(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    use std::process::Stdio;
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    while child.try_wait().expect("try_wait").is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{cmd:?} still running after {limit:?}; stderr so far: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait");
    (out, t0.elapsed())
}

/// Writes an executable shell script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

// ---- Wasm services: gateway, Python grpcio clients, a real OCI registry ----

/// An [`Env`] whose gateway listens on free loopback ports (TLS and h2c),
/// with `extra` appended to config.toml (e.g. an `[images]` table).
pub fn gateway_env(extra: &str) -> Env {
    let env = Env::new();
    let path = env.home().join("config.toml");
    let mut config = std::fs::read_to_string(&path).expect("read config");
    config.push_str(extra);
    std::fs::write(&path, config).expect("write config");
    env
}

/// The gateway's bound addresses from VIMANA_HOME/gateway.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddrs {
    pub tls: String,
    pub h2c: String,
}

impl Env {
    /// Polls VIMANA_HOME/gateway.json until it names both listeners.
    pub fn gateway_addrs(&self) -> GatewayAddrs {
        let path = self.home().join("gateway.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let parsed = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
            if let Some(v) = parsed
                && let (Some(tls), Some(h2c)) = (v["tls"].as_str(), v["h2c"].as_str())
            {
                return GatewayAddrs {
                    tls: tls.to_owned(),
                    h2c: h2c.to_owned(),
                };
            }
            assert!(
                Instant::now() < deadline,
                "no gateway addresses in {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes `yaml` to a file in VIMANA_HOME and applies it; returns stdout.
    pub fn apply_yaml(&self, name: &str, yaml: &str) -> String {
        let path = self.home().join(name);
        std::fs::write(&path, yaml).expect("write yaml");
        self.ok(&["apply", "-f", path.to_str().expect("utf-8 path")])
    }

    /// `vimana ca export` written to VIMANA_HOME/ca-export.pem.
    pub fn ca_file(&self) -> PathBuf {
        let pem = self.ok(&["ca", "export"]);
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        let path = self.home().join("ca-export.pem");
        std::fs::write(&path, pem).expect("write ca");
        path
    }

    /// The `Available` condition of a resource: (status, reason, message).
    pub fn available(&self, kind: &str, name: &str) -> (String, String, String) {
        let v = self.json(&["get", kind, name]);
        let r = if v.is_array() { v[0].clone() } else { v };
        let c = r["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
            .cloned()
            .unwrap_or_else(|| panic!("{kind}/{name} has no Available condition: {r}"));
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        (s("status"), s("reason"), s("message"))
    }
}

/// A script of tests/py run with python3.
pub fn python(script: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg(repo().join("tests/py").join(script));
    c
}

/// Runs a tests/py script, asserts exit 0, returns stdout.
pub fn python_ok(script: &str, args: &[&str]) -> String {
    let out = python(script).args(args).output().expect("run python3");
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}): {}\nstdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value after `key ` on the first line of `out` starting with it.
pub fn line_value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no `{key}` line in: {out}"))
}

/// Where Debian installs the OCI registry (distribution 2.8).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A real `docker-registry` on a free loopback port with a generated config
/// and temporary storage (as in crates/vimana-oci/tests/support); killed on
/// drop.
pub struct Registry {
    child: Option<std::process::Child>,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        use std::io::{Read, Write};
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is not installed (apt-get install docker-registry)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: vimana-test-secret\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let registry = Registry {
            child: Some(child),
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(&registry.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut head = String::new();
                let _ = s.read_to_string(&mut head);
                if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
                    return registry;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not become ready on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
