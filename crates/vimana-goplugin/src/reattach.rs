//! Reconnecting to a plugin launched earlier (possibly by another process).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{PluginClient, ReattachConfig};
use crate::connect::{Target, check_health, connect};
use crate::error::GoPluginError;
use crate::process::{Proc, exe_path, pid_alive, pid_start_time};
use crate::tls;

/// Reattaches to a running plugin. Fails if the pid is gone, was reused by
/// another process (start time differs), or the socket does not answer the
/// health check within `timeout`.
pub async fn reattach(
    cfg: ReattachConfig,
    timeout: Duration,
) -> Result<PluginClient, GoPluginError> {
    let pid = cfg.pid;
    let fail = |reason: String| GoPluginError::Reattach { pid, reason };
    if !pid_alive(pid, None) {
        return Err(fail("the process is gone: launch the plugin again".into()));
    }
    let now_start = pid_start_time(pid);
    if let Some(recorded) = cfg.pid_start_time
        && now_start != Some(recorded)
    {
        return Err(fail(format!(
            "the pid now belongs to another process (start time {now_start:?}, recorded {recorded}): launch the plugin again"
        )));
    }
    let path = exe_path(pid).unwrap_or_else(|| PathBuf::from(format!("pid {pid}")));
    let tls = match &cfg.server_cert_der {
        None => None,
        Some(der) => {
            let (Some(cert), Some(key)) = (&cfg.client_cert_pem, &cfg.client_key_pem) else {
                return Err(fail(
                    "server_cert_der is set but client_cert_pem/client_key_pem are missing".into(),
                ));
            };
            Some(Arc::new(
                tls::client_config(der.clone(), cert, key).map_err(&fail)?,
            ))
        }
    };
    let target = Target {
        network: cfg.network.clone(),
        address: cfg.address.clone(),
        tls,
    };
    let channel = connect(&path, &target, timeout)
        .await
        .map_err(|e| fail(e.to_string()))?;
    check_health(&path, channel.clone(), timeout)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(PluginClient {
        path,
        proc: Proc::Foreign {
            pid,
            start_time: cfg.pid_start_time.or(now_start),
        },
        reattach: cfg,
        channel,
        stderr_rx: None,
    })
}
