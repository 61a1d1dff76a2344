//! `vimana-bench launch`: spawn → go-plugin handshake → first Status.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use vimana_goplugin::{LaunchConfig, Output};
use vimana_spacecore::proto::StatusRequest;
use vimana_spacecore::proto::sc_plugin_client::ScPluginClient;

use crate::stats::{Summary, summarize};

#[derive(Serialize)]
struct Report {
    host: &'static str,
    plugin: String,
    n: u32,
    mtls: bool,
    #[serde(flatten)]
    summary: Summary,
}

/// One iteration: the time from spawning the plugin to the Status answer.
async fn once(plugin: &Path, mtls: bool) -> Result<f64> {
    let mut cfg = LaunchConfig::new(plugin.to_path_buf(), vimana_spacecore::handshake());
    cfg.output = Output::Piped;
    cfg.auto_mtls = mtls;
    let t0 = Instant::now();
    let client = vimana_goplugin::launch(cfg).await.context("launch")?;
    let mut rpc = ScPluginClient::new(client.channel());
    let answer = rpc
        .status(StatusRequest {
            plugin_id: "vimana-bench".into(),
        })
        .await;
    let elapsed = t0.elapsed();
    client.kill();
    let _ = client.shutdown().await;
    answer.map_err(|s| anyhow!("Status: {s}"))?;
    Ok(elapsed.as_secs_f64() * 1000.0)
}

pub async fn run(plugin: PathBuf, n: u32, mtls: bool) -> Result<String> {
    let plugin = std::path::absolute(&plugin)
        .with_context(|| format!("cannot resolve {}", plugin.display()))?;
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let ms = once(&plugin, mtls)
            .await
            .with_context(|| format!("iteration {i} on {}", plugin.display()))?;
        samples.push(ms);
    }
    let summary = summarize(&samples).context("no samples")?;
    let report = Report {
        host: "vimana",
        plugin: plugin.display().to_string(),
        n,
        mtls,
        summary,
    };
    Ok(serde_json::to_string(&report)?)
}
