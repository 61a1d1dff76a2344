//! The spacecore driver: launches a plugin (or re-adopts it with go-plugin's
//! reattach), starts its workload, and hands a live instance to the core.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vimana_api::{ApiError, SpacecoreSpec, WorkloadKind, WorkloadSpec};
use vimana_core::{Driver, DriverError, Instance, RunContext};
use vimana_goplugin::{LaunchConfig, Output, ReattachConfig};

use crate::instance::SpacecoreInstance;
use crate::proto::sc_plugin_client::ScPluginClient;
use crate::proto::{StartRequest, StatusRequest};
use crate::pump::{RawFiles, drain, pump_into};

const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
const REATTACH_TIMEOUT: Duration = Duration::from_secs(3);

/// What the store keeps to re-adopt a running spacecore.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Handle {
    pub reattach: ReattachConfig,
}

/// Runs `kind = "spacecore"` workloads.
#[derive(Clone, Debug, Default)]
pub struct SpacecoreDriver {}

impl SpacecoreDriver {
    pub fn new() -> Self {
        Self {}
    }
}

fn spec_of(spec: &WorkloadSpec) -> Result<&SpacecoreSpec, String> {
    match spec {
        WorkloadSpec::Spacecore(s) => Ok(s),
        other => Err(format!(
            "the spacecore driver cannot run a {} workload",
            other.kind()
        )),
    }
}

/// The checks `vimana start` makes before anything is stored.
pub fn check_plugin_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!(
            "plugin path {path:?} is relative; give an absolute path (the CLI resolves it for you)"
        ));
    }
    let meta = std::fs::metadata(p)
        .map_err(|_| format!("plugin {path} does not exist; check the path"))?;
    if !meta.is_file() {
        return Err(format!(
            "plugin {path} is not a file; give the plugin executable"
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "plugin {path} is not executable; run `chmod +x {path}`"
        ));
    }
    Ok(())
}

#[async_trait]
impl Driver for SpacecoreDriver {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Spacecore
    }

    fn validate(&self, spec: &WorkloadSpec) -> Result<(), ApiError> {
        check_plugin_path(&spec_of(spec).map_err(ApiError::BadRequest)?.plugin)
            .map_err(ApiError::BadRequest)
    }

    async fn run(&self, ctx: RunContext) -> Result<Box<dyn Instance>, DriverError> {
        let spec = spec_of(&ctx.spec).map_err(DriverError::new)?.clone();
        let files = RawFiles::new(&ctx.log_dir, ctx.name.as_str());
        let id = ctx.name.to_string();
        if let Some(h) = ctx.adopt.clone() {
            match adopt(&ctx, h, &files).await {
                Ok(i) => return Ok(i),
                Err(e) if ctx.adopt_only => return Err(e),
                Err(e) => ctx
                    .logs
                    .daemon(format!("cannot re-adopt, launching anew: {e}")),
            }
        }
        files.reset().map_err(|e| {
            DriverError::new(format!(
                "cannot prepare log files in {}: {e}",
                ctx.log_dir.display()
            ))
        })?;
        let mut cfg = LaunchConfig::new(&spec.plugin, crate::handshake());
        cfg.args = spec.args.clone();
        cfg.env = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        cfg.start_timeout = spec
            .start_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_START_TIMEOUT);
        cfg.output = Output::Files {
            stdout: files.stdout.clone(),
            stderr: files.stderr.clone(),
        };
        cfg.detach = true;
        let pumps = pump_into(&files, &ctx.logs);
        let client = match vimana_goplugin::launch(cfg).await {
            Ok(c) => c,
            Err(e) => {
                drain(pumps).await;
                return Err(DriverError::new(e.to_string()));
            }
        };
        ctx.logs.daemon(format!(
            "plugin {} launched (pid {})",
            spec.plugin,
            client.pid()
        ));
        let mut rpc = ScPluginClient::new(client.channel());
        let result = if ctx.first_start {
            start(&mut rpc, &id).await
        } else {
            ensure_started(&mut rpc, &id).await
        };
        if let Err(e) = result {
            let _ = client.shutdown().await;
            drain(pumps).await;
            let tail = stderr_tail(&files.stderr, 3);
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("; its stderr ended with: {}", tail.join(" | "))
            };
            return Err(DriverError::new(format!(
                "plugin {}: {e}{tail}",
                spec.plugin
            )));
        }
        Ok(Box::new(
            SpacecoreInstance::new(client, id, ctx.logs, pumps, false).await,
        ))
    }
}

async fn adopt(
    ctx: &RunContext,
    handle: serde_json::Value,
    files: &RawFiles,
) -> Result<Box<dyn Instance>, DriverError> {
    let h: Handle = serde_json::from_value(handle)
        .map_err(|e| DriverError::new(format!("stored handle does not decode: {e}")))?;
    let pid = h.reattach.pid;
    let client = match vimana_goplugin::reattach(h.reattach.clone(), REATTACH_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            // The process may live on without answering: never leave an orphan.
            kill_stale(&h.reattach);
            return Err(DriverError::new(e.to_string()));
        }
    };
    let pumps = pump_into(files, &ctx.logs);
    let id = ctx.name.to_string();
    if !ctx.adopt_only {
        let mut rpc = ScPluginClient::new(client.channel());
        if let Err(e) = ensure_started(&mut rpc, &id).await {
            client.kill();
            pumps.iter().for_each(|p| p.abort());
            return Err(DriverError::new(e));
        }
    }
    ctx.logs.daemon(format!("re-adopted plugin (pid {pid})"));
    Ok(Box::new(
        SpacecoreInstance::new(client, id, ctx.logs.clone(), pumps, true).await,
    ))
}

type Rpc = ScPluginClient<tonic::transport::Channel>;

async fn start(rpc: &mut Rpc, id: &str) -> Result<String, String> {
    rpc.start(StartRequest {
        plugin_id: id.into(),
    })
    .await
    .map(|r| r.into_inner().status)
    .map_err(|s| format!("Start failed: {}", crate::call::describe_status(&s)))
}

/// Status first; Start only if the workload does not run.
async fn ensure_started(rpc: &mut Rpc, id: &str) -> Result<String, String> {
    let status = rpc
        .status(StatusRequest {
            plugin_id: id.into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|s| format!("Status failed: {}", crate::call::describe_status(&s)))?;
    if crate::status_is_running(&status) {
        Ok(status)
    } else {
        start(rpc, id).await
    }
}

/// SIGKILLs the process a handle names, if it is still that same process.
fn kill_stale(r: &ReattachConfig) {
    if vimana_goplugin::pid_alive(r.pid, r.pid_start_time)
        && let Ok(pid) = i32::try_from(r.pid)
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The last `n` lines of a plugin's stderr file, hclog records as their message.
fn stderr_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| vimana_goplugin::parse_hclog_line(l).message)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}
