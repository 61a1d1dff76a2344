//! The process driver: validate, launch in its own session, re-adopt.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vimana_api::{ApiError, ProcessSpec, WorkloadKind, WorkloadSpec};
use vimana_capture::{LineSink, PumpOptions, RawFiles};
use vimana_core::{Driver, DriverError, Instance, LogSink, RunContext};

use crate::cgroup::{self, CgroupFs, Limits, MIN_MEMORY_BYTES, RealCgroupFs};
use crate::instance::{ProcessInstance, Tracked};

/// Grace period between SIGTERM and SIGKILL when the spec gives none.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the store keeps to re-adopt a running process.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Handle {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`, to tell a reused pid apart.
    pub start_time: Option<u64>,
    /// The cgroup the process was moved into, if limits applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

/// Runs `kind = "process"` workloads.
#[derive(Clone)]
pub struct ProcessDriver {
    cgroups: Arc<dyn CgroupFs>,
}

impl Default for ProcessDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ProcessDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessDriver")
            .field("cgroup_root", &self.cgroups.root())
            .finish()
    }
}

impl ProcessDriver {
    /// A driver using the host's cgroup v2 mount at `/sys/fs/cgroup`.
    pub fn new() -> Self {
        Self::with_cgroups(Arc::new(RealCgroupFs::default()))
    }

    /// A driver using another cgroup filesystem (tests).
    pub fn with_cgroups(cgroups: Arc<dyn CgroupFs>) -> Self {
        Self { cgroups }
    }
}

fn spec_of(spec: &WorkloadSpec) -> Result<&ProcessSpec, String> {
    match spec {
        WorkloadSpec::Process(p) => Ok(p),
        other => Err(format!(
            "the process driver cannot run a {} workload",
            other.kind()
        )),
    }
}

/// The checks made before a process spec is stored. Each message names the
/// field, the rule and the fix.
pub fn check_spec(spec: &ProcessSpec) -> Result<(), String> {
    let cmd = &spec.command;
    let p = Path::new(cmd);
    if !p.is_absolute() {
        return Err(format!(
            "spec.command {cmd:?} is relative; it must be an absolute path (e.g. /usr/bin/{})",
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "program".into())
        ));
    }
    let meta = std::fs::metadata(p)
        .map_err(|_| format!("spec.command {cmd} does not exist; check the path"))?;
    if !meta.is_file() {
        return Err(format!(
            "spec.command {cmd} is not a file; give the executable itself"
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "spec.command {cmd} is not executable; run `chmod +x {cmd}`"
        ));
    }
    if let Some(cwd) = &spec.cwd {
        let d = Path::new(cwd);
        if !d.is_absolute() {
            return Err(format!(
                "spec.cwd {cwd:?} is relative; it must be an absolute directory path"
            ));
        }
        match std::fs::metadata(d) {
            Err(_) => {
                return Err(format!(
                    "spec.cwd {cwd} does not exist; create it or fix the path"
                ));
            }
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "spec.cwd {cwd} is not a directory; give a directory"
                ));
            }
            Ok(_) => {}
        }
    }
    if let Some(r) = &spec.resources {
        if let Some(cpu) = r.cpu
            && !(cpu.is_finite() && cpu > 0.0)
        {
            return Err(format!(
                "spec.resources.cpu {cpu} must be a number of cores greater than 0 (e.g. 0.5)"
            ));
        }
        if let Some(m) = r.memory_bytes
            && m < MIN_MEMORY_BYTES
        {
            return Err(format!(
                "spec.resources.memory_bytes {m} is below the minimum of 4 MiB; give at least {MIN_MEMORY_BYTES}"
            ));
        }
    }
    Ok(())
}

fn line_sink(sink: &LogSink) -> LineSink {
    let s = sink.clone();
    Arc::new(move |stream, level, message| s.line(stream, level, message))
}

#[async_trait]
impl Driver for ProcessDriver {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Process
    }

    fn validate(&self, spec: &WorkloadSpec) -> Result<(), ApiError> {
        check_spec(spec_of(spec).map_err(ApiError::BadRequest)?).map_err(ApiError::BadRequest)
    }

    async fn run(&self, ctx: RunContext) -> Result<Box<dyn Instance>, DriverError> {
        let spec = spec_of(&ctx.spec).map_err(DriverError::new)?.clone();
        let files = RawFiles::new(&ctx.log_dir, ctx.name.as_str());
        if let Some(h) = ctx.adopt.clone() {
            match self.adopt(&ctx, &spec, h, &files) {
                Ok(i) => return Ok(i),
                Err(e) if ctx.adopt_only => return Err(e),
                Err(e) => ctx
                    .logs
                    .daemon(format!("cannot re-adopt, launching anew: {e}")),
            }
        }
        if ctx.first_start {
            files.reset().map_err(|e| {
                DriverError::new(format!(
                    "cannot prepare log files in {}: {e}",
                    ctx.log_dir.display()
                ))
            })?;
        }
        self.launch(&ctx, &spec, &files)
    }
}

impl ProcessDriver {
    fn adopt(
        &self,
        ctx: &RunContext,
        spec: &ProcessSpec,
        handle: serde_json::Value,
        files: &RawFiles,
    ) -> Result<Box<dyn Instance>, DriverError> {
        let h: Handle = serde_json::from_value(handle)
            .map_err(|e| DriverError::new(format!("stored handle does not decode: {e}")))?;
        if !vimana_goplugin::pid_alive(h.pid, h.start_time) {
            return Err(DriverError::new(format!("process {} is gone", h.pid)));
        }
        let pumps = files.pump(&line_sink(&ctx.logs), PumpOptions::default());
        ctx.logs
            .daemon(format!("re-adopted process (pid {})", h.pid));
        Ok(Box::new(ProcessInstance::new(
            h.clone(),
            Tracked::Adopted,
            stop_timeout(spec),
            ctx.logs.clone(),
            pumps,
            self.cgroups.clone(),
        )))
    }

    fn launch(
        &self,
        ctx: &RunContext,
        spec: &ProcessSpec,
        files: &RawFiles,
    ) -> Result<Box<dyn Instance>, DriverError> {
        let (out, err) = files.open_append().map_err(|e| {
            DriverError::new(format!(
                "cannot open log files in {}: {e}",
                ctx.log_dir.display()
            ))
        })?;
        let mut cmd = tokio::process::Command::new(&spec.command);
        cmd.args(&spec.args)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(false);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        vimana_goplugin::own_session(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| DriverError::new(format!("cannot start {}: {e}", spec.command)))?;
        let Some(pid) = child.id() else {
            return Err(DriverError::new(format!(
                "{} exited before it could be tracked",
                spec.command
            )));
        };
        let start_time = vimana_goplugin::pid_start_time(pid);
        let cgroup = spec
            .resources
            .as_ref()
            .and_then(Limits::from_resources)
            .and_then(|limits| self.limit(ctx, pid, &limits));
        let pumps = files.pump(&line_sink(&ctx.logs), PumpOptions::default());
        ctx.logs
            .daemon(format!("started {} (pid {pid})", spec.command));
        let handle = Handle {
            pid,
            start_time,
            cgroup: cgroup.map(|p| p.display().to_string()),
        };
        Ok(Box::new(ProcessInstance::new(
            handle,
            Tracked::Child(child),
            stop_timeout(spec),
            ctx.logs.clone(),
            pumps,
            self.cgroups.clone(),
        )))
    }

    /// Applies cgroup limits; on a host without cgroup v2 writes one warning
    /// into the workload log and carries on without limits.
    fn limit(&self, ctx: &RunContext, pid: u32, limits: &Limits) -> Option<PathBuf> {
        match cgroup::apply(&*self.cgroups, ctx.name.as_str(), pid, limits) {
            Ok(p) => {
                ctx.logs
                    .daemon(format!("resource limits applied in cgroup {}", p.display()));
                Some(p)
            }
            Err(e) => {
                let msg = format!("warning: resource limits not applied, running without: {e}");
                tracing::warn!(workload = %ctx.name, error = %e, "resource limits not applied");
                ctx.logs.daemon(msg);
                None
            }
        }
    }
}

fn stop_timeout(spec: &ProcessSpec) -> Duration {
    spec.stop_timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
}
