//! `vimana-bench daemon-rss`: the daemon's resident memory, idle and while
//! it supervises `count` spacecores.
//!
//! Everything runs in a temporary VIMANA_HOME. The daemon gets a marker
//! variable in its environment which every plugin and every workload child
//! inherits; cleanup (also on error, Ctrl-C or SIGTERM) SIGKILLs the daemon
//! and then every process carrying this run's marker, and removes the
//! directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

pub(crate) const MARKER_VAR: &str = "VIMANA_BENCH_RUN";
const IDLE_SETTLE: Duration = Duration::from_secs(2);
const LOADED_SETTLE: Duration = Duration::from_secs(5);
const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);
const RUNNING_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct Report {
    idle_rss_mib: f64,
    rss_with_n_mib: f64,
    n: u32,
    per_spacecore_kib: f64,
    /// Peak RSS (VmHWM) of the daemon over the whole run.
    peak_rss_mib: f64,
    idle_threads: u64,
    threads_with_n: u64,
    /// Resident memory of all plugin processes and their workloads together
    /// (not the daemon's; for context).
    plugins_rss_mib: f64,
    /// Seconds from the first `vimana start` until all were running.
    start_all_s: f64,
}

/// The temporary home, the daemon, and what must be cleaned up.
pub(crate) struct Run {
    dir: Option<tempfile::TempDir>,
    pub(crate) home: PathBuf,
    pub(crate) marker: String,
    vimana: PathBuf,
    daemon: Option<std::process::Child>,
}

impl Run {
    pub(crate) fn new(vimana: PathBuf) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vimana-bench-")
            .tempdir()
            .context("cannot create a temporary VIMANA_HOME")?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        std::fs::write(
            home.join("config.toml"),
            "[daemon]\npoll_interval_ms = 2000\n",
        )?;
        let marker = format!("{}-{}", std::process::id(), dir.path().display());
        Ok(Self {
            dir: Some(dir),
            home,
            marker,
            vimana,
            daemon: None,
        })
    }

    pub(crate) fn root(&self) -> &Path {
        self.home.parent().unwrap_or(&self.home)
    }

    pub(crate) fn start_daemon(&mut self) -> Result<u32> {
        let out = std::fs::File::create(self.root().join("daemon.out"))?;
        let err = out.try_clone()?;
        let child = std::process::Command::new(&self.vimana)
            .arg("daemon")
            .env("VIMANA_HOME", &self.home)
            .env(MARKER_VAR, &self.marker)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot run {} daemon", self.vimana.display()))?;
        let pid = child.id();
        self.daemon = Some(child);
        Ok(pid)
    }

    /// SIGTERMs the daemon started by [`Run::start_daemon`] and waits up to
    /// 10 s for it to exit (then SIGKILLs it); the home stays.
    pub(crate) fn stop_daemon(&mut self) -> Result<()> {
        let Some(mut child) = self.daemon.take() else {
            return Ok(());
        };
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the daemon did not exit within 10 s of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub(crate) fn daemon_output(&self) -> String {
        let text = std::fs::read_to_string(self.root().join("daemon.out")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub(crate) fn daemon_exited(&mut self) -> Option<String> {
        let child = self.daemon.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    pub(crate) async fn wait_for_socket(&mut self) -> Result<()> {
        let socket = self.home.join("vimanad.sock");
        let deadline = Instant::now() + SOCKET_TIMEOUT;
        loop {
            if let Some(status) = self.daemon_exited() {
                bail!(
                    "the daemon exited ({status}) before its socket appeared:\n{}",
                    self.daemon_output()
                );
            }
            if socket.exists() && self.status().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "no answer on {} after {:?}:\n{}",
                    socket.display(),
                    SOCKET_TIMEOUT,
                    self.daemon_output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn cli(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.vimana);
        cmd.env("VIMANA_HOME", &self.home)
            .arg("--no-autostart")
            .arg("-o")
            .arg("json")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// `vimana -o json status`.
    async fn status(&self) -> Result<Vec<serde_json::Value>> {
        let out = self.cli().arg("status").output().await?;
        if !out.status.success() {
            bail!(
                "vimana status failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("vimana status printed no JSON array")
    }

    /// Kills the daemon, then every process with this run's marker, then
    /// removes the directory. Idempotent.
    pub(crate) fn cleanup(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = marked_pids(&self.marker);
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("vimana-bench: processes still alive after cleanup: {pids:?}");
                break;
            }
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            eprintln!("vimana-bench: cannot remove the temporary directory: {e}");
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Live (non-zombie) processes whose environment holds `MARKER_VAR=marker`.
pub(crate) fn marked_pids(marker: &str) -> BTreeSet<u32> {
    let needle = format!("{MARKER_VAR}={marker}").into_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_slice()))
        })
        .collect()
}

/// A `/proc/<pid>/status` field in kB (or a count, for `Threads`).
pub(crate) fn proc_status_field(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

pub(crate) fn mib(kib: u64) -> f64 {
    crate::stats::round3(kib as f64 / 1024.0)
}

async fn start_all(run: &Run, plugin: &Path, count: u32, parallel: u32) -> Result<()> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel as usize));
    let state = run.root().join("state");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let name = format!("sc-{i}");
        let mut cmd = run.cli();
        cmd.arg("start")
            .arg(&name)
            .arg("--plugin")
            .arg(plugin)
            .arg("--env")
            .arg(format!("SC_STATE_DIR={}", state.join(&name).display()));
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let out = cmd.output().await?;
            if !out.status.success() {
                bail!(
                    "vimana start {name} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("start task panicked")??;
    }
    Ok(())
}

/// Waits until `count` workloads run.
async fn wait_running(run: &Run, count: u32) -> Result<()> {
    let deadline = Instant::now() + RUNNING_TIMEOUT;
    loop {
        let list = run.status().await?;
        let mut states: BTreeMap<String, u32> = BTreeMap::new();
        for w in &list {
            let s = w["state"].as_str().unwrap_or("?").to_string();
            *states.entry(s).or_default() += 1;
        }
        if states.get("running").copied().unwrap_or(0) >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            let bad: Vec<String> = list
                .iter()
                .filter(|w| w["state"] != "running")
                .take(5)
                .map(|w| format!("{} {} {}", w["name"], w["state"], w["detail"]))
                .collect();
            bail!(
                "not all {count} spacecores running after {RUNNING_TIMEOUT:?}: {states:?}; e.g. {}",
                bad.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn measure(run: &mut Run, plugin: &Path, count: u32, parallel: u32) -> Result<Report> {
    let pid = run.start_daemon()?;
    run.wait_for_socket().await?;
    let lock_pid: Option<u32> = std::fs::read_to_string(run.home.join("daemon.lock"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if lock_pid != Some(pid) {
        bail!("daemon.lock says pid {lock_pid:?}, but the daemon started is pid {pid}");
    }
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = proc_status_field(pid, "VmRSS")?;
    let idle_threads = proc_status_field(pid, "Threads")?;

    let t0 = Instant::now();
    start_all(run, plugin, count, parallel).await?;
    wait_running(run, count).await?;
    let start_all_s = crate::stats::round3(t0.elapsed().as_secs_f64());

    tokio::time::sleep(LOADED_SETTLE).await;
    if let Some(status) = run.daemon_exited() {
        bail!("the daemon exited ({status}):\n{}", run.daemon_output());
    }
    let loaded = proc_status_field(pid, "VmRSS")?;
    let threads_with_n = proc_status_field(pid, "Threads")?;
    let peak = proc_status_field(pid, "VmHWM")?;
    let plugins: u64 = marked_pids(&run.marker)
        .into_iter()
        .filter(|&p| p != pid)
        .filter_map(|p| proc_status_field(p, "VmRSS").ok())
        .sum();
    Ok(Report {
        idle_rss_mib: mib(idle),
        rss_with_n_mib: mib(loaded),
        n: count,
        per_spacecore_kib: crate::stats::round3((loaded as f64 - idle as f64) / f64::from(count)),
        peak_rss_mib: mib(peak),
        idle_threads,
        threads_with_n,
        plugins_rss_mib: mib(plugins),
        start_all_s,
    })
}

pub async fn run(vimana: PathBuf, plugin: PathBuf, count: u32, parallel: u32) -> Result<String> {
    let vimana = std::path::absolute(&vimana)?;
    let plugin = std::path::absolute(&plugin)?;
    for p in [&vimana, &plugin] {
        if !p.is_file() {
            bail!("{} is not a file", p.display());
        }
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut run = Run::new(vimana)?;
    let result = tokio::select! {
        r = measure(&mut run, &plugin, count, parallel) => r,
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    run.cleanup();
    Ok(serde_json::to_string(&result?)?)
}
