//! MicroVMs end to end through the real `vimana` CLI and its autostarted
//! daemon, with real parts only: QEMU (TCG here), the Debian cloud kernel
//! (scripts/vm-test-assets.sh), the static agent (scripts/build-agent.sh)
//! and vhost-device-vsock.
//!
//! One VM goes through its whole life in a single test (TCG is CPU-bound):
//! spawn → list/status → exec (output, exit code, stdin) → attach twice on
//! a real pty → console and merged logs → `kill -9` of the daemon and
//! re-adoption → stop by agent power-off → rm. hac.toml errors are covered
//! without a boot by tests/vm_cmd.rs.
//!
//! Skips with a printed reason when a part is missing, unless `CI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Env;
use nix::sys::termios::{self, LocalFlags};

/// One guest at a time: TCG is CPU-bound on this small machine.
static VM_SLOT: Mutex<()> = Mutex::new(());

const NAME: &str = "vm-e2e";

struct Parts {
    kernel: PathBuf,
    modules: PathBuf,
    release: String,
}

/// QEMU, vhost-device-vsock and the kernel, through the shared test kit
/// (skips with the reason, fails under `CI`). No agent: the `vimana` of a
/// plain `cargo build` boots guests with the static agent it embeds.
fn parts() -> Option<Parts> {
    vimana_testkit::require(vimana_testkit::vm_prerequisites())?;
    let assets = vimana_testkit::require(vimana_testkit::vm_assets())?;
    Some(Parts {
        release: assets.release(),
        kernel: assets.kernel,
        modules: assets.modules,
    })
}

/// A VIMANA_HOME under /tmp with a short name (unix socket addresses hold
/// 107 bytes), the test config of [`Env::new`] with no `[vm] agent`.
fn vm_env(_parts: &Parts) -> Env {
    let dir = tempfile::Builder::new()
        .prefix("vme")
        .tempdir_in("/tmp")
        .expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[daemon]\npoll_interval_ms = 200\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\nhealthy_reset_ms = 10000\n\
         [gateway]\ntls_listen = \"127.0.0.1:0\"\nh2c_listen = \"127.0.0.1:0\"\n\
         [vm]\nready_timeout_secs = 240\nstop_timeout_secs = 30\n",
    )
    .expect("config");
    Env { dir }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` with `stdin` (or /dev/null), killing it past `limit`.
fn run_limited(mut cmd: Command, stdin: Option<Vec<u8>>, limit: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn vimana");
    let feeder = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // Closing the pipe (drop) is the end of input.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        status,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    }
}

/// `vimana ARGS` with a time limit.
fn cli(env: &Env, args: &[&str], limit: Duration) -> Output {
    run_limited(env.cmd(args), None, limit)
}

/// `vimana ARGS`, asserted to succeed; returns stdout.
fn cli_ok(env: &Env, args: &[&str], limit: Duration) -> String {
    let out = cli(env, args, limit);
    assert!(
        out.status.success(),
        "vimana {args:?} failed ({}): {}\nstdout: {}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

const SHORT: Duration = Duration::from_secs(60);

/// The VMs `vimana vm list -o json` shows.
fn vm_list(env: &Env) -> Vec<serde_json::Value> {
    let out = cli_ok(env, &["-o", "json", "vm", "list"], SHORT);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("vm list json: {e}: {out}"))
}

fn the_vm(env: &Env) -> serde_json::Value {
    let list = vm_list(env);
    assert_eq!(list.len(), 1, "exactly one VM expected: {list:#?}");
    assert_eq!(list[0]["name"], NAME, "{list:#?}");
    list[0].clone()
}

/// Field 22 of /proc/PID/stat: the start time, which tells a process from
/// a later one with the same pid.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| text(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Live processes (not this one) whose command line names `home`.
fn processes_under(home: &Path) -> Vec<(i32, String)> {
    let home = home.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && common::alive(pid))
        .map(|pid| (pid, cmdline(pid)))
        .filter(|(_, cmd)| cmd.contains(&home))
        .collect()
}

/// [`processes_under`] without `vimana` itself (the daemon, the CLI): what
/// the VM runs on (QEMU, vhost-device-vsock).
fn vmm_processes(home: &Path) -> Vec<(i32, String)> {
    processes_under(home)
        .into_iter()
        .filter(|(_, cmd)| !cmd.starts_with(env!("CARGO_BIN_EXE_vimana")))
        .collect()
}

/// Removes the VM and kills whatever the test's home still runs (QEMU and
/// vhost-device-vsock are in their own sessions), on success and failure
/// alike; the [`Env`] dropped after it stops the daemon.
struct Cleanup<'a> {
    env: &'a Env,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let rm = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cli(self.env, &["vm", "rm", NAME], Duration::from_secs(90))
        }));
        if let Ok(out) = rm
            && out.status.success()
        {
            eprintln!("cleanup: {}", text(&out.stdout).trim());
        }
        // The daemon is left to `Env`'s drop (it reads daemon.lock).
        for (pid, cmd) in vmm_processes(self.env.home()) {
            eprintln!("cleanup: killing leftover {pid}: {cmd}");
            common::kill9(pid);
            common::wait_gone(pid);
        }
    }
}

/// A real pseudo-terminal: what the CLI writes to it is collected in the
/// background; the test types on the master side.
struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
    seen: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Pty {
    fn open() -> Pty {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let master = std::fs::File::from(pty.master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let seen = Arc::clone(&seen);
            let mut master = master.try_clone().expect("clone master");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // EIO once every slave end is closed.
                while let Ok(n) = master.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Pty {
            master,
            slave: pty.slave,
            seen,
            reader,
        }
    }

    /// Starts `cmd` with the slave as its stdin, stdout, stderr and
    /// controlling terminal, in a session of its own (as a shell would).
    fn spawn(&self, mut cmd: Command) -> std::process::Child {
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup slave"));
        cmd.stdin(io(&self.slave))
            .stdout(io(&self.slave))
            .stderr(io(&self.slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().expect("spawn vimana on the pty")
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    fn seen(&self) -> String {
        text(&self.seen.lock().unwrap())
    }

    /// Waits until what the CLI wrote from byte `from` on satisfies `pred`.
    fn wait_for(&self, from: usize, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let all = self.seen();
            if pred(all.get(from..).unwrap_or("")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on the attached terminal; it shows:\n{all}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn modes(&self) -> termios::Termios {
        termios::tcgetattr(self.slave.as_fd()).expect("tcgetattr")
    }

    /// Closes the slave and returns all the CLI wrote.
    fn close(self) -> String {
        drop(self.slave);
        let _ = self.reader.join();
        text(&self.seen.lock().unwrap())
    }
}

/// Whether `s` holds the guest shell's prompt (`PS1='vm:\w# '`).
fn has_prompt(s: &str) -> bool {
    s.match_indices("vm:")
        .any(|(i, _)| s[i..].lines().next().is_some_and(|l| l.contains("# ")))
}

/// `vimana vm attach` on a fresh pty: prompt, a command, Ctrl-], exit 0,
/// terminal modes restored.
fn attach_session(env: &Env, round: u32) {
    let mut pty = Pty::open();
    let before = pty.modes();
    assert!(
        before
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "a fresh pty is in cooked mode"
    );
    let t = Instant::now();
    let mut child = pty.spawn(env.cmd(&["vm", "attach", NAME]));
    pty.wait_for(0, "the attach banner", SHORT, |s| {
        s.contains(&format!("[attached to {NAME}"))
    });
    // The banner is printed after raw mode was set.
    let raw = pty.modes();
    assert!(
        !raw.local_flags
            .intersects(LocalFlags::ICANON | LocalFlags::ECHO),
        "attach did not put the terminal in raw mode: {:?}",
        raw.local_flags
    );
    pty.wait_for(0, "the guest shell prompt (vm:…# )", SHORT, has_prompt);
    eprintln!("attach #{round}: prompt after {:?}", t.elapsed());
    let mark = pty.len();
    pty.type_bytes(b"echo hi-$((6*7))\r");
    // The typed line is echoed as `hi-$((6*7))`; only the shell prints 42.
    pty.wait_for(mark, "the output of `echo hi-$((6*7))`", SHORT, |s| {
        s.contains("hi-42")
    });
    pty.type_bytes(&[0x1d]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "attach #{round} did not exit after Ctrl-]; terminal:\n{}",
                pty.seen()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let after = pty.modes();
    let screen = pty.close();
    assert!(
        status.success(),
        "attach #{round} exited with {status}:\n{screen}"
    );
    assert!(screen.contains("[detached]"), "{screen}");
    assert_eq!(after.local_flags, before.local_flags, "lflag not restored");
    assert_eq!(after.input_flags, before.input_flags, "iflag not restored");
    assert_eq!(
        after.output_flags, before.output_flags,
        "oflag not restored"
    );
    assert_eq!(
        after.control_flags, before.control_flags,
        "cflag not restored"
    );
    eprintln!("attach #{round}: whole session {:?}", t.elapsed());
}

#[test]
fn a_vm_lives_through_the_cli_and_a_daemon_crash() {
    let Some(parts) = parts() else { return };
    let _slot = VM_SLOT.lock().unwrap_or_else(|e| e.into_inner());
    let env = vm_env(&parts);
    let _cleanup = Cleanup { env: &env };
    let release = parts.release.clone();
    let hac = env.home().join("hac.toml");
    std::fs::write(
        &hac,
        format!(
            "[spacecore]\nname = \"e2e\"\n\n[hardware]\ncores = 1\nmemory = 256\n\n[boot]\nkernel = {:?}\nmodules = {:?}\n",
            parts.kernel.display().to_string(),
            parts.modules.display().to_string(),
        ),
    )
    .unwrap();
    let hac = hac.to_str().unwrap();

    // 1. spawn prints the id; list and status show a running qemu VM.
    let t = Instant::now();
    let out = cli(
        &env,
        &["vm", "spawn", "--hac", hac, "--name", NAME],
        Duration::from_secs(300),
    );
    eprintln!("vm spawn → returned: {:?}", t.elapsed());
    assert!(
        out.status.success(),
        "vm spawn failed ({}): {}\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
    assert_eq!(text(&out.stdout).trim(), NAME);
    let vm = the_vm(&env);
    assert_eq!(vm["kind"], "vm", "{vm:#}");
    assert_eq!(vm["state"], "running", "{vm:#}");
    let detail = vm["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("qemu"), "{vm:#}");
    let qemu = vm["pid"].as_i64().expect("the VM has a pid") as i32;
    assert!(
        cmdline(qemu).contains("qemu-system-x86_64"),
        "pid {qemu} is not QEMU: {}",
        cmdline(qemu)
    );
    let qemu_started = start_time(qemu).expect("QEMU start time");
    let table = cli_ok(&env, &["vm", "list"], SHORT);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with(NAME))
        .unwrap_or_else(|| panic!("no {NAME} row: {table}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let pid = qemu.to_string();
    assert_eq!(
        cols.get(1..4),
        Some(&["running", "qemu", pid.as_str()][..]),
        "{table}"
    );
    let status: Vec<serde_json::Value> =
        serde_json::from_str(&cli_ok(&env, &["-o", "json", "status"], SHORT)).unwrap();
    assert!(
        status
            .iter()
            .any(|w| w["name"] == NAME && w["kind"] == "vm" && w["state"] == "running"),
        "{status:#?}"
    );
    let table = cli_ok(&env, &["status"], SHORT);
    assert!(
        table.lines().any(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c.get(..3) == Some(&[NAME, "vm", "running"][..])
        }),
        "{table}"
    );

    // 2. exec: the guest's kernel, the exit code, stdin round trip.
    let t = Instant::now();
    let out = cli(&env, &["vm", "exec", NAME, "--", "uname", "-r"], SHORT);
    eprintln!("vm exec uname -r: {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), release);
    let out = cli(
        &env,
        &["vm", "exec", NAME, "--", "sh", "-c", "exit 7"],
        SHORT,
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let input: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("line {i:05}\n").into_bytes())
        .collect();
    let t = Instant::now();
    let out = run_limited(
        env.cmd(&["vm", "exec", NAME, "--", "cat"]),
        Some(input.clone()),
        SHORT,
    );
    eprintln!("vm exec cat ({} bytes): {:?}", input.len(), t.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stdout == input,
        "cat gave back {} bytes, not the {} sent",
        out.stdout.len(),
        input.len()
    );

    // 3. attach on a real terminal, twice, one after the other.
    attach_session(&env, 1);
    attach_session(&env, 2);

    // 4. the console log and the merged workload log.
    let console = cli_ok(&env, &["vm", "logs", NAME], SHORT);
    // The kernel runs `quiet`: its errors and warnings still show.
    let kernel_line = |l: &str| {
        l.strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .is_some_and(|(ts, _)| {
                ts.contains('.') && ts.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
            })
    };
    assert!(
        console.lines().any(kernel_line),
        "no kernel line on the console:\n{console}"
    );
    for marker in [
        vimana_vm::initramfs::MODULES_OK_MARKER,
        vimana_agent::READY_MARKER,
        // What the attach sessions did is in the persisted console too.
        "hi-42",
    ] {
        assert!(
            console.contains(marker),
            "no `{marker}` on the console:\n{console}"
        );
    }
    let merged = cli_ok(&env, &["logs", NAME], SHORT);
    assert!(merged.contains("guest agent ready"), "{merged}");
    // The agent came from the binary (no `[vm] agent`, no $VIMANA_AGENT).
    let embedded = std::fs::read_dir(env.dir.path().join("cache/vm/agent"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(embedded, 1, "the embedded agent was not used");

    // 5. kill -9 of the daemon: the VM runs on and is re-adopted.
    let daemon = env.daemon_pid().expect("daemon pid");
    env.kill_daemon();
    assert!(!common::alive(daemon), "the daemon survived kill -9");
    std::thread::sleep(Duration::from_millis(500));
    assert!(common::alive(qemu), "QEMU died with the daemon");
    assert_eq!(start_time(qemu), Some(qemu_started), "QEMU was replaced");
    let t = Instant::now();
    let vm = the_vm(&env);
    eprintln!("daemon autostart + re-adoption: {:?}", t.elapsed());
    let new_daemon = env.daemon_pid().expect("a new daemon");
    assert_ne!(new_daemon, daemon);
    assert_eq!(vm["state"], "running", "{vm:#}");
    assert_eq!(vm["pid"].as_i64(), Some(i64::from(qemu)), "{vm:#}");
    assert_eq!(vm["restarts"], 0, "{vm:#}");
    assert_eq!(start_time(qemu), Some(qemu_started), "QEMU was replaced");
    let out = cli(
        &env,
        &[
            "vm",
            "exec",
            NAME,
            "--",
            "sh",
            "-c",
            "echo adopted; uname -r",
        ],
        SHORT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("adopted\n{release}\n"));

    // 6. `vm logs -f` shows new console output as it comes, and ends by
    //    itself once the VM is stopped.
    let mut follow = env.cmd(&["vm", "logs", "-f", "--tail", "1", NAME]);
    follow.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut follower = follow.spawn().expect("spawn vm logs -f");
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<String>();
    let mut follower_out = follower.stdout.take().expect("stdout pipe");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = follower_out.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let _ = seen_tx.send(String::from_utf8_lossy(&all).into_owned());
        }
    });
    let out = cli(
        &env,
        &[
            "vm",
            "exec",
            NAME,
            "--",
            "sh",
            "-c",
            "echo follow-me-77 > /dev/console",
        ],
        SHORT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut followed = String::new();
    while !followed.contains("follow-me-77") {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen_rx.recv_timeout(left) {
            Ok(text) => followed = text,
            Err(_) => panic!("`vm logs -f` did not show the new line: {followed:?}"),
        }
    }

    // 7. stop powers the guest off; rm removes the record and run dir.
    let t = Instant::now();
    let out = cli_ok(&env, &["vm", "stop", NAME], Duration::from_secs(120));
    eprintln!("vm stop: {:?}", t.elapsed());
    assert!(out.contains(&format!("stopped {NAME}")), "{out}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let ended = loop {
        if let Some(status) = follower.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = follower.kill();
            let _ = follower.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = reader.join();
    assert!(
        ended.is_some_and(|s| s.success()),
        "`vm logs -f` did not end after the VM stopped: {ended:?}"
    );
    common::wait_gone(qemu);
    assert!(!common::alive(qemu), "QEMU still runs after vm stop");
    let vm = the_vm(&env);
    assert_eq!(vm["state"], "stopped", "{vm:#}");
    let left = vmm_processes(env.home());
    assert!(left.is_empty(), "still running after stop: {left:#?}");
    let merged = cli_ok(&env, &["logs", NAME], SHORT);
    assert!(
        merged.contains("asked the guest agent to power off"),
        "{merged}"
    );
    assert!(
        !merged.contains("terminating the VMM"),
        "the guest did not power off by itself:\n{merged}"
    );
    let vm_dir = env.home().join("vms").join(NAME);
    assert!(vm_dir.is_dir(), "{} missing before rm", vm_dir.display());
    let out = cli_ok(&env, &["vm", "rm", NAME], SHORT);
    assert!(out.contains(&format!("removed {NAME}")), "{out}");
    assert!(!vm_dir.exists(), "{} left behind", vm_dir.display());
    assert!(vm_list(&env).is_empty());
}
