//! `vimana-bench vm-boot`: how much vimana adds to booting a microVM, and
//! what a running VM costs the daemon.
//!
//! Boot time, in one run, alternating so both see the same machine noise
//! (pair `i`: raw first when `i` is even, vimana first when odd):
//!
//! - **raw QEMU**: the launch the daemon's VM driver makes, without the
//!   daemon. The hac.toml is parsed as `vimana vm spawn` parses it, turned
//!   into a `LaunchSpec` by `vimana_vm::driver::prepare::launch_spec` (same
//!   cached initramfs, same kernel command line incl. `tsc_early_khz`) and
//!   planned by the QEMU provider with its binaries resolved as the daemon
//!   resolves them. Timed from just before `execute_plan` (vhost-device-vsock
//!   sidecar, then QEMU) until the guest agent's ready marker
//!   (`vimana_agent::READY_MARKER`) appears in the console log, polled every
//!   5 ms. Then the processes are killed.
//! - **vimana**: wall time of the process `vimana --home H vm spawn --hac F
//!   --name N` (debug or release, whatever `--vimana` is), which returns once
//!   the daemon got an answer from the agent over vsock. Then `vm rm`.
//!
//! Both accelerate as the daemon does (KVM when a tiny guest really runs,
//! else TCG). The daemon is started (autostart by a first `vm list`) and one
//! VM is spawned and removed before anything is timed, so the daemon's
//! start and the first initramfs assembly are not counted; one untimed raw
//! boot does the same for the raw side. The QEMU argv of the first vimana
//! VM is compared with the raw one (run directory aside).
//!
//! Memory: with no VM running the daemon's VmRSS (pid from
//! `daemon.lock`), then `--concurrent` `vimana vm spawn` processes at once;
//! all must succeed; VmRSS again after a settle: (after − before) / N is the
//! daemon's memory per running VM. The VMM and the guest's RAM are other
//! processes, so they are excluded by construction (their RSS is reported
//! separately, for context).
//!
//! Everything lives in a temporary directory with a short path under /tmp
//! (unix socket paths hold 107 bytes). Cleanup, also on error, Ctrl-C or
//! SIGTERM, SIGKILLs the daemon and every process whose command line holds
//! that directory or whose environment holds this run's marker, then
//! removes the directory.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use vimana_vm::VmConfig;
use vimana_vm::driver::{VmDriver, VmDriverConfig, prepare};
use vimana_vm::hac::{self, ParseOptions};
use vimana_vm::provider::{
    Accel, ExecuteOptions, HostFacts, LaunchSpec, Qemu, Spawned, Vmm, execute_plan,
};

use crate::daemon_rss::{MARKER_VAR, mib, proc_status_field};
use crate::stats::{Summary, round3, summarize};

/// How often the raw run looks at the console log.
const MARKER_POLL: Duration = Duration::from_millis(5);
/// Pause after a VM was torn down, before the next boot starts.
const BETWEEN_RUNS: Duration = Duration::from_secs(1);
const IDLE_SETTLE: Duration = Duration::from_secs(2);
const LOADED_SETTLE: Duration = Duration::from_secs(3);
/// Extra time a `vimana` command may take beyond the VM ready timeout.
const CLI_SLACK: Duration = Duration::from_secs(120);

/// Command-line options of `vm-boot`.
#[derive(clap::Args, Debug)]
pub struct Opts {
    /// The vimana executable.
    #[arg(long, value_name = "PATH")]
    pub vimana: PathBuf,
    /// The guest kernel (`KERNEL=` of scripts/vm-test-assets.sh).
    #[arg(long, value_name = "PATH")]
    pub kernel: PathBuf,
    /// Its modules, lib/modules/<release> (`MODULES=`); default: next to
    /// the kernel in the Debian layout.
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// The static guest agent (scripts/build-agent.sh).
    #[arg(long, value_name = "PATH")]
    pub agent: PathBuf,
    /// Timed boots of each kind (raw QEMU and vimana, alternating).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// VMs spawned at once for the memory figure; 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub concurrent: u32,
    /// vCPUs per VM.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub cores: u32,
    /// Guest memory per VM in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..))]
    pub memory_mib: u64,
    /// Seconds a VM may take until its agent answers (both kinds).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub ready_timeout_secs: u64,
    /// Print only the JSON report on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    accel: &'static str,
    /// Why not KVM, when TCG.
    accel_reason: Option<String>,
    vimana_binary: String,
    /// `debug` or `release`, from the vimana binary's path.
    vimana_build: &'static str,
    host_cpus: usize,
    qemu: String,
    kernel: String,
    vm_cores: u32,
    vm_memory_mib: u64,
    runs: u32,
    /// Spawn → agent ready through vimana, per run.
    vimana_ms: Vec<f64>,
    /// Raw QEMU to the agent's ready marker, per run.
    raw_ms: Vec<f64>,
    /// Breakdown: spawn → the ready marker on the vimana VM's console (the
    /// raw runs' end point), per run; the rest of `vimana_ms` is the
    /// daemon noticing the agent (vsock Status) and the CLI returning.
    vimana_marker_ms: Vec<f64>,
    vimana: Summary,
    vimana_marker: Option<Summary>,
    raw: Summary,
    overhead_median_pct: f64,
    overhead_mean_pct: f64,
    /// The QEMU argv of vimana's VM equals the raw one (run directory aside).
    argv_identical: Option<bool>,
    raw_argv: Vec<String>,
    memory: Option<Memory>,
    loadavg_before: String,
    loadavg_after: String,
}

#[derive(Serialize)]
struct Memory {
    concurrent: u32,
    idle_rss_mib: f64,
    rss_with_n_mib: f64,
    /// (rss_with_n − idle) / concurrent.
    per_vm_kib: f64,
    per_vm_mib: f64,
    peak_rss_mib: f64,
    /// From starting the spawns until the last one returned (all ready).
    all_ready_s: f64,
    fastest_spawn_s: f64,
    slowest_spawn_s: f64,
    /// Resident memory of the VMM processes (QEMU + vhost-device-vsock,
    /// guest RAM touched so far included) per VM, for context.
    vmm_rss_per_vm_mib: f64,
}

/// The temporary directory, the daemon in it, and what must be cleaned up.
struct Rig {
    dir: Option<tempfile::TempDir>,
    /// `/tmp/vbXXXXXX`.
    root: PathBuf,
    /// `root/h`: the VIMANA_HOME.
    home: PathBuf,
    /// `root/r`: run directories of the raw boots.
    raw: PathBuf,
    hac: PathBuf,
    vimana: PathBuf,
    marker: String,
}

impl Rig {
    fn new(vimana: PathBuf, opts: &Opts, kernel: &Path, modules: &Path) -> Result<Self> {
        // Short: `<home>/vms/<name>/vhost-vsock.sock` must fit a sun_path.
        let dir = tempfile::Builder::new()
            .prefix("vb")
            .tempdir_in("/tmp")
            .context("cannot create a temporary directory under /tmp")?;
        let root = dir.path().to_path_buf();
        let home = root.join("h");
        let raw = root.join("r");
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&raw)?;
        let agent = std::path::absolute(&opts.agent)?;
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[daemon]\npoll_interval_ms = 2000\n\n[gateway]\ntls_listen = \"\"\nh2c_listen = \"\"\n\n\
                 [vm]\nagent = {}\nready_timeout_secs = {}\n",
                toml_str(&agent)?,
                opts.ready_timeout_secs
            ),
        )?;
        let hac = root.join("hac.toml");
        std::fs::write(
            &hac,
            format!(
                "[hardware]\ncores = {}\nmemory = {}\n\n[boot]\nkernel = {}\nmodules = {}\n",
                opts.cores,
                opts.memory_mib,
                toml_str(kernel)?,
                toml_str(modules)?
            ),
        )?;
        let marker = format!("vm-boot-{}-{}", std::process::id(), root.display());
        Ok(Self {
            dir: Some(dir),
            root,
            home,
            raw,
            hac,
            vimana,
            marker,
        })
    }

    /// `vimana --home H [--no-autostart] …` with this run's marker.
    fn cli(&self, autostart: bool) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.vimana);
        cmd.arg("--home")
            .arg(&self.home)
            .env(MARKER_VAR, &self.marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if !autostart {
            cmd.arg("--no-autostart");
        }
        cmd
    }

    async fn vimana(&self, autostart: bool, args: &[&str], limit: Duration) -> Result<String> {
        let mut cmd = self.cli(autostart);
        cmd.args(args);
        let out = tokio::time::timeout(limit, cmd.output())
            .await
            .map_err(|_| anyhow!("`vimana {}` took longer than {limit:?}", args.join(" ")))?
            .with_context(|| format!("cannot run {}", self.vimana.display()))?;
        if !out.status.success() {
            bail!(
                "`vimana {}` failed ({}): {}\ndaemon log:\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.daemon_log_tail()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The daemon's pid from `daemon.lock`, if that process runs in this home.
    fn daemon_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.home.join("daemon.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        cmdline(pid)
            .is_some_and(|c| c.contains(&self.needle()))
            .then_some(pid)
    }

    fn daemon_log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.home.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// What every command line of this run's processes contains.
    fn needle(&self) -> String {
        format!("{}/", self.root.display())
    }

    /// Live processes of this run: the command line names the directory or
    /// the environment holds the marker. Never this process.
    fn leftovers(&self) -> BTreeSet<u32> {
        let needle = self.needle();
        let env_needle = format!("{MARKER_VAR}={}", self.marker).into_bytes();
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return BTreeSet::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .filter(|&pid| {
                cmdline(pid).is_some_and(|c| c.contains(&needle))
                    || std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                        env.split(|&b| b == 0).any(|kv| kv == env_needle.as_slice())
                    })
            })
            .collect()
    }

    /// SIGKILLs the daemon, then every leftover, then removes the
    /// directory. Idempotent.
    fn cleanup(&mut self) {
        if self.dir.is_none() {
            return;
        }
        if let Some(pid) = self.daemon_pid() {
            sigkill(&[pid]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids: Vec<u32> = self.leftovers().into_iter().collect();
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("vimana-bench: processes still alive after cleanup: {pids:?}");
                break;
            }
            sigkill(&pids);
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            eprintln!("vimana-bench: cannot remove the temporary directory: {e}");
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn sigkill(pids: &[u32]) {
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// A process's command line, arguments joined by spaces (`None`: gone, or
/// a zombie with an empty one).
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

fn argv_of(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut argv: Vec<String> = raw
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if argv.last().is_some_and(String::is_empty) {
        argv.pop();
    }
    Some(argv)
}

/// A TOML basic string holding `path`.
fn toml_str(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(serde_json::to_string(s)?)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

/// What every raw boot shares.
struct Raw {
    config: VmConfig,
    cfg: VmDriverConfig,
    accel: Accel,
    qemu: Qemu,
    ready_timeout: Duration,
}

impl Raw {
    /// Boots VM `name` in `<root>/r/<name>` until the ready marker; returns
    /// the time from `execute_plan` to the marker and QEMU's argv.
    async fn boot(&self, rig: &Rig, name: &str) -> Result<(Duration, Vec<String>)> {
        let run_dir = rig.raw.join(name);
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&run_dir)
                .with_context(|| format!("cannot create {}", run_dir.display()))?;
        }
        let spec: LaunchSpec = {
            let (config, name, dir, cfg, accel) = (
                self.config.clone(),
                name.to_string(),
                run_dir.clone(),
                self.cfg.clone(),
                self.accel,
            );
            tokio::task::spawn_blocking(move || {
                prepare::launch_spec(&config, &name, &dir, accel, &cfg, None)
            })
            .await
            .context("preparing the raw launch panicked")?
            .map_err(|e| anyhow!("preparing the raw launch: {}", e.message))?
        };
        let plan = self
            .qemu
            .plan(&spec)
            .map_err(|e| anyhow!("planning the raw launch: {e}"))?;
        let argv = plan
            .processes
            .last()
            .map(|p| p.argv.clone())
            .unwrap_or_default();
        let t0 = Instant::now();
        let mut procs = execute_plan(&plan, &ExecuteOptions::default())
            .await
            .map_err(|e| anyhow!("starting raw QEMU: {e}"))?;
        let ready = wait_marker(&spec.console_log, &mut procs, self.ready_timeout)
            .await
            .map(|()| t0.elapsed());
        kill_all(&mut procs).await;
        let elapsed = ready?;
        let _ = std::fs::remove_dir_all(&run_dir);
        Ok((elapsed, argv))
    }
}

/// Reads a console log incrementally and finds the agent's ready marker.
struct MarkerScan {
    path: PathBuf,
    file: Option<std::fs::File>,
    offset: u64,
    /// The unsearched end of what was read: a marker may span two reads.
    window: Vec<u8>,
    chunk: Vec<u8>,
}

impl MarkerScan {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            window: Vec::new(),
            chunk: Vec::new(),
        }
    }

    /// Whether the marker has appeared (reads what was appended since).
    fn seen(&mut self) -> Result<bool> {
        let marker = vimana_agent::READY_MARKER.as_bytes();
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(false);
        };
        self.chunk.clear();
        f.seek(SeekFrom::Start(self.offset))?;
        self.offset += f.read_to_end(&mut self.chunk)? as u64;
        if self.chunk.is_empty() {
            return Ok(false);
        }
        self.window.extend_from_slice(&self.chunk);
        if self.window.windows(marker.len()).any(|w| w == marker) {
            return Ok(true);
        }
        let keep = self.window.len().saturating_sub(marker.len());
        self.window.drain(..keep);
        Ok(false)
    }
}

/// Polls `log` every [`MARKER_POLL`] until it holds the agent's ready
/// marker; fails when a process exits or after `timeout`.
async fn wait_marker(log: &Path, procs: &mut [Spawned], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut scan = MarkerScan::new(log);
    loop {
        if scan.seen()? {
            return Ok(());
        }
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                bail!(
                    "raw {} (pid {}) exited ({status}) before the agent was ready; console:\n{}",
                    p.name,
                    p.pid,
                    prepare::console_tail(log, 15)
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "no `{}` on the raw VM's console within {timeout:?}; console:\n{}",
                vimana_agent::READY_MARKER,
                prepare::console_tail(log, 15)
            );
        }
        tokio::time::sleep(MARKER_POLL).await;
    }
}

async fn kill_all(procs: &mut [Spawned]) {
    for p in procs.iter_mut() {
        let _ = p.child.start_kill();
    }
    for p in procs.iter_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await;
    }
}

/// `vimana vm spawn`, timed from process start to exit.
async fn vimana_boot(rig: &Rig, name: &str, limit: Duration) -> Result<Duration> {
    let hac = rig.hac.to_string_lossy().into_owned();
    let t0 = Instant::now();
    rig.vimana(
        false,
        &["vm", "spawn", "--hac", &hac, "--name", name],
        limit,
    )
    .await?;
    Ok(t0.elapsed())
}

/// [`vimana_boot`] while watching the VM's console log as the raw runs do:
/// (spawn → exit, spawn → ready marker on the console, if seen).
async fn vimana_boot_watched(
    rig: &Rig,
    name: &str,
    limit: Duration,
) -> Result<(Duration, Option<Duration>)> {
    let t0 = Instant::now();
    let mut scan = MarkerScan::new(&rig.home.join("vms").join(name).join("console.log"));
    let mut marker = None;
    let spawn = vimana_boot(rig, name, limit);
    tokio::pin!(spawn);
    loop {
        tokio::select! {
            r = &mut spawn => {
                let total = r?;
                if marker.is_none() && scan.seen().unwrap_or(false) {
                    marker = Some(total);
                }
                return Ok((total, marker));
            }
            _ = tokio::time::sleep(MARKER_POLL), if marker.is_none() => {
                if scan.seen().unwrap_or(false) {
                    marker = Some(t0.elapsed());
                }
            }
        }
    }
}

async fn vimana_rm(rig: &Rig, name: &str) -> Result<()> {
    rig.vimana(false, &["vm", "rm", name], Duration::from_secs(120))
        .await
        .map(drop)
}

/// The live QEMU of vimana's VM `name` (by its run directory).
fn vimana_qemu_argv(rig: &Rig, name: &str, qemu: &Path) -> Option<Vec<String>> {
    let dir = format!("{}/", rig.home.join("vms").join(name).display());
    let qemu = qemu.to_string_lossy();
    rig.leftovers()
        .into_iter()
        .filter_map(argv_of)
        .find(|a| a.first().is_some_and(|a0| *a0 == qemu) && a.iter().any(|x| x.contains(&dir)))
}

/// VmRSS (kB) of the VMM processes of vimana's VMs, and how many VMs.
fn vmm_rss_kib(rig: &Rig) -> u64 {
    let vms = format!("{}/", rig.home.join("vms").display());
    rig.leftovers()
        .into_iter()
        .filter(|&pid| cmdline(pid).is_some_and(|c| c.contains(&vms)))
        .filter_map(|pid| proc_status_field(pid, "VmRSS").ok())
        .sum()
}

fn overhead_pct(vimana: f64, raw: f64) -> f64 {
    if raw > 0.0 {
        round3((vimana - raw) / raw * 100.0)
    } else {
        f64::NAN
    }
}

async fn measure_memory(rig: &Rig, n: u32, limit: Duration) -> Result<Memory> {
    let pid = rig
        .daemon_pid()
        .context("no daemon pid in daemon.lock (or it does not run in this home)")?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = proc_status_field(pid, "VmRSS")?;
    eprintln!(
        "vimana-bench: daemon idle VmRSS {:.3} MiB; spawning {n} VMs at once",
        mib(idle)
    );
    let names: Vec<String> = (0..n).map(|i| format!("vm-c{i}")).collect();
    let t0 = Instant::now();
    let spawns = names.iter().map(|name| async move {
        let r = vimana_boot(rig, name, limit).await;
        (name.clone(), r)
    });
    let results = futures_join_all(spawns).await;
    let all_ready = t0.elapsed();
    let mut times = Vec::new();
    let mut failed = Vec::new();
    for (name, r) in results {
        match r {
            Ok(d) => times.push(d.as_secs_f64()),
            Err(e) => failed.push(format!("{name}: {e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {n} concurrent VMs did not reach ready:\n{}",
            failed.len(),
            failed.join("\n")
        );
    }
    eprintln!(
        "vimana-bench: all {n} VMs ready after {:.3} s",
        all_ready.as_secs_f64()
    );
    tokio::time::sleep(LOADED_SETTLE).await;
    let loaded = proc_status_field(pid, "VmRSS")?;
    let peak = proc_status_field(pid, "VmHWM")?;
    let vmm = vmm_rss_kib(rig);
    let rms = names.iter().map(|name| vimana_rm(rig, name));
    for r in futures_join_all(rms).await {
        if let Err(e) = r {
            eprintln!("vimana-bench: warning: {e:#}");
        }
    }
    let per_vm_kib = (loaded as f64 - idle as f64) / f64::from(n);
    times.sort_by(f64::total_cmp);
    Ok(Memory {
        concurrent: n,
        idle_rss_mib: mib(idle),
        rss_with_n_mib: mib(loaded),
        per_vm_kib: round3(per_vm_kib),
        per_vm_mib: round3(per_vm_kib / 1024.0),
        peak_rss_mib: mib(peak),
        all_ready_s: round3(all_ready.as_secs_f64()),
        fastest_spawn_s: round3(times.first().copied().unwrap_or(f64::NAN)),
        slowest_spawn_s: round3(times.last().copied().unwrap_or(f64::NAN)),
        vmm_rss_per_vm_mib: round3(vmm as f64 / 1024.0 / f64::from(n)),
    })
}

/// Runs the futures concurrently on this task; results in input order.
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => out[i] = Some(v),
                std::task::Poll::Pending => done = false,
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

async fn measure(rig: &mut Rig, opts: &Opts, kernel: &Path) -> Result<Report> {
    let loadavg_before = loadavg();
    let ready_timeout = Duration::from_secs(opts.ready_timeout_secs);
    let cli_limit = ready_timeout + CLI_SLACK;

    // The VmConfig exactly as `vimana vm spawn` makes it.
    let parse = ParseOptions {
        base_dir: rig.hac.parent().map(Path::to_path_buf),
        ..ParseOptions::for_host()
    };
    let config = hac::load(&rig.hac, &parse)
        .map_err(|e| anyhow!("{e}"))?
        .config;

    // The driver config and accelerator as the daemon's.
    let mut cfg = VmDriverConfig::under(&rig.home);
    cfg.agent = Some(std::path::absolute(&opts.agent)?);
    cfg.ready_timeout = ready_timeout;
    let kvm = VmDriver::new(cfg.clone()).kvm().await;
    let (accel, accel_name, accel_reason) = match kvm {
        Ok(()) => (Accel::Kvm, "kvm", None),
        Err(why) => (Accel::Tcg, "tcg", Some(why)),
    };
    let host = HostFacts::from_env(Err("not needed".into()));
    let mut qemu = Qemu::default();
    qemu.binary = host
        .find(&qemu.binary)
        .context("qemu-system-x86_64 not found on PATH (apt-get install qemu-system-x86)")?;
    qemu.vsock_binary = host.find(&qemu.vsock_binary).context(
        "vhost-device-vsock not found on PATH or in ~/.cargo/bin (cargo install vhost-device-vsock)",
    )?;
    let qemu_version = std::process::Command::new(&qemu.binary)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let raw = Raw {
        config,
        cfg,
        accel,
        qemu,
        ready_timeout,
    };
    eprintln!(
        "vimana-bench: accel {accel_name}{}; {}; home {}",
        accel_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        qemu_version,
        rig.home.display()
    );

    // Untimed: daemon start, first initramfs, page cache of both paths.
    rig.vimana(true, &["vm", "list"], Duration::from_secs(60))
        .await
        .context("starting the daemon")?;
    eprintln!("vimana-bench: warm-up (untimed): one vimana spawn + rm, one raw boot");
    let w = vimana_boot(rig, "vm-w", cli_limit)
        .await
        .context("warm-up vimana spawn")?;
    vimana_rm(rig, "vm-w").await?;
    let (wr, _) = raw.boot(rig, "vm-w").await.context("warm-up raw boot")?;
    eprintln!(
        "vimana-bench: warm-up: vimana {:.3} s, raw {:.3} s",
        w.as_secs_f64(),
        wr.as_secs_f64()
    );
    tokio::time::sleep(BETWEEN_RUNS).await;

    let mut vimana_ms = Vec::new();
    let mut raw_ms = Vec::new();
    let mut vimana_marker_ms = Vec::new();
    let mut raw_argv = Vec::new();
    let mut argv_identical = None;
    for i in 0..opts.runs {
        let name = format!("vm-b{i}");
        for step in 0..2 {
            let raw_turn = (step == 0) == (i % 2 == 0);
            if raw_turn {
                let (d, argv) = raw
                    .boot(rig, &name)
                    .await
                    .with_context(|| format!("raw boot {i}"))?;
                eprintln!("vimana-bench: run {i}: raw    {:>9.3} ms", ms(d));
                raw_ms.push(ms(d));
                if raw_argv.is_empty() {
                    raw_argv = argv;
                }
            } else {
                let (d, marker) = vimana_boot_watched(rig, &name, cli_limit)
                    .await
                    .with_context(|| format!("vimana spawn {i}"))?;
                eprintln!(
                    "vimana-bench: run {i}: vimana {:>9.3} ms (ready marker on its console at {})",
                    ms(d),
                    marker.map_or("?".into(), |m| format!("{:.3} ms", ms(m)))
                );
                vimana_ms.push(ms(d));
                if let Some(m) = marker {
                    vimana_marker_ms.push(ms(m));
                }
                if argv_identical.is_none() {
                    argv_identical = Some(compare_argv(rig, &raw, &name)?);
                }
                vimana_rm(rig, &name).await?;
            }
            tokio::time::sleep(BETWEEN_RUNS).await;
        }
    }

    let memory = if opts.concurrent > 0 {
        Some(measure_memory(rig, opts.concurrent, cli_limit).await?)
    } else {
        None
    };

    let v = summarize(&vimana_ms).context("no vimana samples")?;
    let r = summarize(&raw_ms).context("no raw samples")?;
    let vimana_binary = rig.vimana.display().to_string();
    Ok(Report {
        accel: accel_name,
        accel_reason,
        vimana_build: if vimana_binary.contains("/release/") {
            "release"
        } else {
            "debug"
        },
        vimana_binary,
        host_cpus: std::thread::available_parallelism().map_or(0, usize::from),
        qemu: qemu_version,
        kernel: kernel.display().to_string(),
        vm_cores: opts.cores,
        vm_memory_mib: opts.memory_mib,
        runs: opts.runs,
        overhead_median_pct: overhead_pct(v.median_ms, r.median_ms),
        overhead_mean_pct: overhead_pct(v.mean_ms, r.mean_ms),
        vimana_ms,
        raw_ms,
        vimana_marker: summarize(&vimana_marker_ms),
        vimana_marker_ms,
        vimana: v,
        raw: r,
        argv_identical,
        raw_argv,
        memory,
        loadavg_before,
        loadavg_after: loadavg(),
    })
}

/// vimana's QEMU argv for VM `name` against the raw argv of the same name,
/// the raw run directory replaced by the daemon's. Prints a difference.
fn compare_argv(rig: &Rig, raw: &Raw, name: &str) -> Result<bool> {
    let Some(theirs) = vimana_qemu_argv(rig, name, &raw.qemu.binary) else {
        eprintln!("vimana-bench: warning: the QEMU of vimana's {name} was not found");
        return Ok(false);
    };
    // The raw argv of this name, rebuilt without booting (pure functions).
    let raw_dir = rig.raw.join(name);
    let spec = prepare::launch_spec(&raw.config, name, &raw_dir, raw.accel, &raw.cfg, None)
        .map_err(|e| anyhow!("{}", e.message))?;
    let ours = raw.qemu.argv(&spec).map_err(|e| anyhow!("{e}"))?;
    let from = raw_dir.display().to_string();
    let to = rig.home.join("vms").join(name).display().to_string();
    let ours: Vec<String> = ours.iter().map(|a| a.replace(&from, &to)).collect();
    let same = ours == theirs;
    if !same {
        eprintln!(
            "vimana-bench: warning: QEMU argv differs\n  raw:    {}\n  vimana: {}",
            ours.join(" "),
            theirs.join(" ")
        );
    }
    Ok(same)
}

fn human(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let row = |s: &mut String, label: &str, x: &Summary| {
        let _ = writeln!(
            s,
            "  {label:<32} median {:>9.3}  mean {:>9.3}  min {:>9.3}  max {:>9.3}  (s)",
            x.median_ms / 1000.0,
            x.mean_ms / 1000.0,
            x.min_ms / 1000.0,
            x.max_ms / 1000.0
        );
    };
    let _ = writeln!(
        s,
        "vm-boot: {} runs each, accel {}, {} vCPU / {} MiB, vimana {} build, {} host CPUs",
        report.runs,
        report.accel,
        report.vm_cores,
        report.vm_memory_mib,
        report.vimana_build,
        report.host_cpus
    );
    let _ = writeln!(s, "  {}; kernel {}", report.qemu, report.kernel);
    let _ = writeln!(
        s,
        "  load average before {} / after {}",
        report.loadavg_before, report.loadavg_after
    );
    let argv: Vec<String> = report
        .raw_argv
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    let _ = writeln!(s, "  raw QEMU argv: {}", argv.join(" "));
    let _ = writeln!(
        s,
        "  vimana's QEMU argv identical (run directory aside): {}",
        report
            .argv_identical
            .map_or("not checked".into(), |b| b.to_string())
    );
    row(&mut s, "raw QEMU → ready marker", &report.raw);
    row(&mut s, "vimana vm spawn → ready", &report.vimana);
    if let Some(m) = &report.vimana_marker {
        row(&mut s, "  of which → marker on console", m);
    }
    let target = |ok: bool| if ok { "met" } else { "NOT met" };
    let _ = writeln!(
        s,
        "  vimana overhead: median {:+.2} %, mean {:+.2} % (target ≤ 5 %: {})",
        report.overhead_median_pct,
        report.overhead_mean_pct,
        target(report.overhead_median_pct <= 5.0)
    );
    if let Some(m) = &report.memory {
        let _ = writeln!(
            s,
            "  daemon VmRSS idle {:.3} MiB, with {} VMs {:.3} MiB → {:.3} MiB per running VM (target ≤ 2 MiB: {}); peak {:.3} MiB",
            m.idle_rss_mib,
            m.concurrent,
            m.rss_with_n_mib,
            m.per_vm_mib,
            target(m.per_vm_mib <= 2.0),
            m.peak_rss_mib
        );
        let _ = writeln!(
            s,
            "  {} concurrent spawns all ready after {:.3} s (fastest {:.3} s, slowest {:.3} s); VMM processes {:.3} MiB RSS per VM (not the daemon's)",
            m.concurrent, m.all_ready_s, m.fastest_spawn_s, m.slowest_spawn_s, m.vmm_rss_per_vm_mib
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| microVM boot ({}, {} vCPU, {} MiB, {} runs each, vimana {} build, load {} → {}) | median | mean | min | max |",
        report.accel.to_uppercase(),
        report.vm_cores,
        report.vm_memory_mib,
        report.runs,
        report.vimana_build,
        report.loadavg_before,
        report.loadavg_after
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for (label, x) in [
        ("raw QEMU, same argv → agent ready marker", &report.raw),
        ("`vimana vm spawn` → agent answered", &report.vimana),
    ] {
        let _ = writeln!(
            s,
            "| {label} | {:.2} s | {:.2} s | {:.2} s | {:.2} s |",
            x.median_ms / 1000.0,
            x.mean_ms / 1000.0,
            x.min_ms / 1000.0,
            x.max_ms / 1000.0
        );
    }
    if let Some(m) = &report.vimana_marker {
        let _ = writeln!(
            s,
            "| … of which `vimana vm spawn` → ready marker on its console | {:.2} s | {:.2} s | {:.2} s | {:.2} s |",
            m.median_ms / 1000.0,
            m.mean_ms / 1000.0,
            m.min_ms / 1000.0,
            m.max_ms / 1000.0
        );
    }
    let _ = writeln!(
        s,
        "| vimana overhead (target ≤ 5 %) | {:+.1} % | {:+.1} % | | |",
        report.overhead_median_pct, report.overhead_mean_pct
    );
    if let Some(m) = &report.memory {
        let _ = writeln!(s);
        let _ = writeln!(s, "| microVMs, {} spawned at once | value |", m.concurrent);
        let _ = writeln!(s, "|---|---:|");
        let _ = writeln!(
            s,
            "| daemon memory per running VM (VmRSS delta / {}, target ≤ 2 MiB) | {:.0} KiB |",
            m.concurrent, m.per_vm_kib
        );
        let _ = writeln!(
            s,
            "| daemon VmRSS idle → with {} VMs | {:.1} → {:.1} MiB |",
            m.concurrent, m.idle_rss_mib, m.rss_with_n_mib
        );
        let _ = writeln!(
            s,
            "| all {} ready (wall time from the first spawn) | {:.1} s |",
            m.concurrent, m.all_ready_s
        );
        let _ = writeln!(
            s,
            "| VMM RSS per VM (QEMU + vhost-device-vsock, not the daemon's) | {:.1} MiB |",
            m.vmm_rss_per_vm_mib
        );
    }
    s
}

pub async fn run(opts: Opts) -> Result<String> {
    let vimana = std::path::absolute(&opts.vimana)?;
    let kernel = std::path::absolute(&opts.kernel)?;
    for p in [&vimana, &kernel, &opts.agent] {
        if !p.is_file() {
            bail!("{} is not a file", p.display());
        }
    }
    let modules = match &opts.modules {
        Some(m) => std::path::absolute(m)?,
        None => prepare::modules_next_to(&kernel).with_context(|| {
            format!(
                "no modules directory next to {}; pass --modules",
                kernel.display()
            )
        })?,
    };
    if !modules.is_dir() {
        bail!("{} is not a directory", modules.display());
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut rig = Rig::new(vimana, &opts, &kernel, &modules)?;
    let result = tokio::select! {
        r = measure(&mut rig, &opts, &kernel) => r,
        _ = term.recv() => Err(anyhow!("terminated")),
        _ = int.recv() => Err(anyhow!("interrupted")),
    };
    let log = rig.daemon_log_tail();
    if result.is_err() && !log.is_empty() {
        eprintln!("vimana-bench: daemon log:\n{log}");
    }
    rig.cleanup();
    let report = result?;
    if !opts.json {
        print!("{}", human(&report));
        println!();
    }
    Ok(serde_json::to_string(&report)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn overhead_is_relative_to_raw() {
        assert_eq!(super::overhead_pct(105.0, 100.0), 5.0);
        assert_eq!(super::overhead_pct(90.0, 100.0), -10.0);
        assert!(super::overhead_pct(1.0, 0.0).is_nan());
    }

    #[test]
    fn toml_strings_are_quoted() {
        let s =
            super::toml_str(std::path::Path::new("/a \"b\"/c")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, r#""/a \"b\"/c""#);
    }
}
