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

use crate::deadline::{Deadlines, Rpc, RpcError, with_stderr, within};
use crate::instance::SpacecoreInstance;
use crate::proto::sc_plugin_client::ScPluginClient;
use crate::proto::{StartRequest, StatusRequest};
use crate::pump::{RawFiles, drain, pump_into};

const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
const REATTACH_TIMEOUT: Duration = Duration::from_secs(3);

/// What the store keeps to re-adopt a spacecore. `spawned` alone: the
/// plugin was launched but its handshake not yet read (recorded before the
/// handshake, so a daemon killed meanwhile leaves it findable).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Handle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reattach: Option<ReattachConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawned: Option<SpawnedPid>,
}

/// A plugin process: pid and `/proc` start time.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SpawnedPid {
    pub pid: u32,
    pub start_time: Option<u64>,
}

impl Handle {
    pub(crate) fn attached(reattach: ReattachConfig) -> serde_json::Value {
        serde_json::to_value(Handle {
            reattach: Some(reattach),
            spawned: None,
        })
        .unwrap_or_default()
    }

    fn spawned(pid: u32, start_time: Option<u64>) -> serde_json::Value {
        serde_json::to_value(Handle {
            reattach: None,
            spawned: Some(SpawnedPid { pid, start_time }),
        })
        .unwrap_or_default()
    }
}

/// Runs `kind = "spacecore"` workloads.
#[derive(Clone, Debug, Default)]
pub struct SpacecoreDriver {
    deadlines: Deadlines,
}

impl SpacecoreDriver {
    pub fn new() -> Self {
        Self::default()
    }

    /// A driver whose plugin calls have these deadlines.
    pub fn with_deadlines(deadlines: Deadlines) -> Self {
        Self { deadlines }
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
        let d = self.deadlines;
        if let Some(h) = ctx.adopt.clone() {
            match adopt(&ctx, h, &files, d).await {
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
        let fail = |e: String| DriverError::new(format!("plugin {}: {e}", spec.plugin));
        let spawned = match vimana_goplugin::spawn(cfg) {
            Ok(s) => s,
            Err(e) => {
                drain(pumps).await;
                return Err(DriverError::new(e.to_string()));
            }
        };
        // Recorded before the handshake and Start, the slow parts: a daemon
        // killed meanwhile leaves this plugin findable by the next one.
        let (pid, start_time) = (spawned.pid(), spawned.start_time());
        if let Err(e) = ctx
            .recorder
            .record(Handle::spawned(pid, start_time), Some(pid))
            .await
        {
            vimana_goplugin::kill_session(pid, start_time);
            drain(pumps).await;
            return Err(e);
        }
        let client = match spawned.handshake().await {
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
        if let Err(e) = ctx
            .recorder
            .record(Handle::attached(client.reattach_config()), Some(pid))
            .await
        {
            client.kill();
            drain(pumps).await;
            return Err(e);
        }
        let mut rpc = ScPluginClient::new(client.channel());
        let result = if ctx.first_start {
            start(&mut rpc, &id, &d, pid).await
        } else {
            ensure_started(&mut rpc, &id, &d, pid).await
        };
        if let Err(e) = result {
            if e.late {
                client.kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), client.wait_exit()).await;
            } else {
                let _ = client.shutdown().await;
            }
            drain(pumps).await;
            return Err(fail(with_stderr(&e.message, &files.stderr)));
        }
        Ok(Box::new(
            SpacecoreInstance::new(client, id, ctx.logs, pumps, false, d, files.stderr).await,
        ))
    }
}

async fn adopt(
    ctx: &RunContext,
    handle: serde_json::Value,
    files: &RawFiles,
    d: Deadlines,
) -> Result<Box<dyn Instance>, DriverError> {
    let h: Handle = serde_json::from_value(handle)
        .map_err(|e| DriverError::new(format!("stored handle does not decode: {e}")))?;
    let Some(reattach) = h.reattach else {
        return Err(DriverError::new(kill_half_launched(h.spawned)));
    };
    let pid = reattach.pid;
    let client = match vimana_goplugin::reattach(reattach.clone(), REATTACH_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            // The process may live on without answering: never leave an orphan.
            vimana_goplugin::kill_session(reattach.pid, reattach.pid_start_time);
            return Err(DriverError::new(e.to_string()));
        }
    };
    let pumps = pump_into(files, &ctx.logs);
    let id = ctx.name.to_string();
    if !ctx.adopt_only {
        let mut rpc = ScPluginClient::new(client.channel());
        if let Err(e) = ensure_started(&mut rpc, &id, &d, pid).await {
            client.kill();
            pumps.iter().for_each(|p| p.abort());
            return Err(DriverError::new(with_stderr(&e.message, &files.stderr)));
        }
    }
    ctx.logs.daemon(format!("re-adopted plugin (pid {pid})"));
    Ok(Box::new(
        SpacecoreInstance::new(
            client,
            id,
            ctx.logs.clone(),
            pumps,
            true,
            d,
            files.stderr.clone(),
        )
        .await,
    ))
}

/// A plugin a previous daemon spawned but never finished handshaking with
/// cannot be reattached (its address went to that daemon): kill it, so the
/// relaunch that follows leaves exactly one copy.
fn kill_half_launched(spawned: Option<SpawnedPid>) -> String {
    match spawned {
        Some(s) if vimana_goplugin::kill_session(s.pid, s.start_time) => format!(
            "the plugin (pid {}) a previous daemon was launching had not finished its handshake; killed it",
            s.pid
        ),
        Some(s) => format!(
            "the plugin (pid {}) a previous daemon was launching is gone",
            s.pid
        ),
        None => "the stored handle names no plugin process".to_string(),
    }
}

type Client = ScPluginClient<tonic::transport::Channel>;

async fn start(rpc: &mut Client, id: &str, d: &Deadlines, pid: u32) -> Result<String, RpcError> {
    let req = StartRequest {
        plugin_id: id.into(),
    };
    within(d, Rpc::Start, pid, rpc.start(req))
        .await
        .map(|r| r.status)
}

/// Status first; Start only if the workload does not run.
async fn ensure_started(
    rpc: &mut Client,
    id: &str,
    d: &Deadlines,
    pid: u32,
) -> Result<String, RpcError> {
    let req = StatusRequest {
        plugin_id: id.into(),
    };
    let status = within(d, Rpc::Status, pid, rpc.status(req)).await?.status;
    if crate::status_is_running(&status) {
        Ok(status)
    } else {
        start(rpc, id, d, pid).await
    }
}
