//! `vimana-bench run-cached`: wall time of `vimana run <spacecore> <node>`
//! when the package is already downloaded, installed and initialised.
//!
//! A local repository (a shell-script node packed in a tar.gz, and an index
//! naming it by relative path, as in crates/vimana/tests/run_cmd.rs) is
//! added to a temporary VIMANA_HOME and the daemon is started. One warm-up
//! `vimana run counter-node light` downloads, verifies, unpacks and
//! initialises the node; it is stopped and removed. Then each iteration
//! times `vimana run counter-node light` (the CLI exits once the PUT has
//! returned, i.e. once the workload's process has been launched) and
//! afterwards, untimed, stops and removes the workload. The package stays
//! installed and its store directory exists, so `init` is skipped: the
//! "already cached package" case.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::daemon_rss::Run;
use crate::stats::{Summary, summarize};

const SPACECORE: &str = "counter-node";
const NODE_TYPE: &str = "light";
const WORKLOAD: &str = "counter-node-light";

const NODE: &str = r#"#!/bin/sh
if [ "$1" = init ]; then echo initialised > "$2/initialised"; exit 0; fi
echo "node up $*"
trap 'exit 0' TERM
while :; do echo tick; sleep 0.2; done
"#;

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    n: u32,
    #[serde(flatten)]
    summary: Summary,
    /// Wall time of the warm-up run (download, verify, unpack, init, start).
    first_run_ms: f64,
}

/// Writes `node.tar.gz` (bin/node) and an index naming it; returns the
/// index path.
fn write_repo(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let src = dir.join("src/bin");
    std::fs::create_dir_all(&src)?;
    std::fs::write(src.join("node"), NODE)?;
    std::fs::set_permissions(src.join("node"), std::fs::Permissions::from_mode(0o755))?;
    let st = std::process::Command::new("tar")
        .args(["czf", "node.tar.gz", "-C", "src", "bin"])
        .current_dir(dir)
        .status()
        .context("cannot run tar")?;
    if !st.success() {
        bail!("tar failed ({st})");
    }
    let sha = crate::download::sha256_file(&dir.join("node.tar.gz"))?;
    let index = format!(
        r#"schema = 1

[repository]
name = "local"
description = "vimana-bench run-cached"

[[package]]
name = "{SPACECORE}"
description = "a test node"
tags = ["demo"]
version = "0.1.0"

[package.node_types.{NODE_TYPE}]
description = "light node"
kind = "process"
init = ["{{{{bin}}}}", "init", "{{{{store}}}}"]
start = ["{{{{bin}}}}", "--store", "{{{{store}}}}", "--network", "{{{{network}}}}"]

[package.node_types.{NODE_TYPE}.flags.network]
default = "testnet"
description = "network to join"

[[package.node_types.{NODE_TYPE}.artifacts]]
os = "linux"
arch = "x86_64"
url = "node.tar.gz"
sha256 = "{sha}"
format = "tar.gz"
bin = "bin/node"
"#
    );
    let p = dir.join("index.toml");
    std::fs::write(&p, index)?;
    Ok(p)
}

/// Runs `vimana <args>` against the run's daemon; fails with its stderr.
async fn vimana(run: &Run, args: &[&str]) -> Result<()> {
    let out = run.cli().args(args).output().await?;
    if !out.status.success() {
        bail!(
            "vimana {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// One timed `vimana run`, in ms.
async fn timed_run(run: &Run) -> Result<f64> {
    let t0 = Instant::now();
    vimana(run, &["run", SPACECORE, NODE_TYPE]).await?;
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

async fn remove(run: &Run) -> Result<()> {
    vimana(run, &["stop", WORKLOAD]).await?;
    vimana(run, &["rm", WORKLOAD]).await
}

async fn measure(run: &mut Run, n: u32) -> Result<Report> {
    let pkg = run.root().join("pkgsrc");
    std::fs::create_dir_all(&pkg)?;
    let index = write_repo(&pkg)?;
    run.start_daemon()?;
    run.wait_for_socket().await?;
    vimana(run, &["repo", "add", "local", &index.to_string_lossy()]).await?;

    let first_run_ms = timed_run(run).await.context("warm-up run")?;
    let bin = run.home.join("packages/counter-node/0.1.0/bin/node");
    let store = run.home.join("stores").join(WORKLOAD);
    if !bin.is_file() || !store.join("initialised").is_file() {
        bail!("the warm-up run installed or initialised nothing");
    }
    remove(run).await.context("after the warm-up run")?;

    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let ms = timed_run(run)
            .await
            .with_context(|| format!("iteration {i}"))?;
        samples.push(ms);
        remove(run)
            .await
            .with_context(|| format!("after iteration {i}"))?;
    }
    if let Some(status) = run.daemon_exited() {
        bail!("the daemon exited ({status}):\n{}", run.daemon_output());
    }
    Ok(Report {
        bench: "run-cached",
        n,
        summary: summarize(&samples).context("no samples")?,
        first_run_ms: crate::stats::round3(first_run_ms),
    })
}

pub async fn run(vimana: PathBuf, n: u32) -> Result<String> {
    let vimana = std::path::absolute(&vimana)?;
    if !vimana.is_file() {
        bail!("{} is not a file", vimana.display());
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut run = Run::new(vimana)?;
    let result = tokio::select! {
        r = measure(&mut run, n) => r,
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    run.cleanup();
    Ok(serde_json::to_string(&result?)?)
}
