//! `vimana vm …`: microVMs as daemon workloads of kind `vm`. This file holds
//! the dispatch, `spawn`, `list`, `stop`, `rm` and the lookups the other
//! `vm_*` commands share; `exec`, `attach` and `logs` have their own files.
//!
//! `spawn` always means a new VM (as in hypercore): an explicit `--name`
//! that already exists is refused, whatever its state, instead of being
//! restarted through the daemon's idempotent start. The check and the start
//! are two requests, so two concurrent spawns of one explicit name may both
//! pass the check; the daemon then starts it once and both print its id.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use comfy_table::{Cell, Table, presets};
use http::Method;
use vimana_api::{
    StartRequest, VmSpec, Workload, WorkloadKind, WorkloadName, WorkloadSpec, WorkloadState,
};
use vimana_vm::hac::{self, ParseOptions};

use crate::cli::{OutputFormat, VmCommand, VmSpawnArgs};
use crate::client::Client;
use crate::home::Home;
use crate::output;

/// Generated ids tried before giving up (a clash of 32 random bits is rare).
const NAME_ATTEMPTS: usize = 8;

pub async fn run(
    home: &Home,
    client: &Client,
    out: OutputFormat,
    cmd: VmCommand,
) -> Result<ExitCode> {
    match cmd {
        VmCommand::Spawn(args) => spawn(client, out, args).await,
        VmCommand::List => list(client, out).await,
        VmCommand::Exec {
            id,
            interactive,
            command,
        } => super::vm_exec::exec(home, client, &id, interactive, command).await,
        VmCommand::Attach { id } => super::vm_attach::attach(home, client, &id).await,
        VmCommand::Logs { id, follow, tail } => {
            super::vm_logs::logs(home, client, &id, follow, tail).await
        }
        VmCommand::Stop { id } => stop(client, out, &id).await,
        VmCommand::Rm { id } => rm(client, &id).await,
    }
}

/// `vm spawn`: parse the hac.toml here (errors point into the file), then
/// start a `vm` workload and print its id.
pub async fn spawn(client: &Client, out: OutputFormat, args: VmSpawnArgs) -> Result<ExitCode> {
    let (mut config, source) = load_hac(&args.hac)?;
    if let Some(p) = args.provider {
        config.provider = Some(p);
    }
    let name = match &args.name {
        Some(n) => {
            let name = super::name(n)?;
            if let Some(w) = client.workload(name.as_str()).await? {
                bail!("{}", exists_message(&w));
            }
            name
        }
        None => fresh_name(client).await?,
    };
    let provider = config.provider.unwrap_or_default();
    let spec = WorkloadSpec::Vm(Box::new(VmSpec {
        config: serde_json::to_value(&config).context("cannot encode the VM description")?,
        source: Some(source.display().to_string()),
    }));
    let spinner = spinner(format!("starting VM {name} ({provider})…"));
    // The client has no request timeout: a VM under TCG may take tens of
    // seconds to boot, and the daemon answers once it runs or failed.
    let started: Result<Option<Workload>> = client
        .call(
            Method::PUT,
            &format!("/v1/workloads/{name}"),
            Some(&StartRequest { spec: Some(spec) }),
        )
        .await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let w = match started {
        Ok(w) => w,
        Err(e) => {
            if matches!(client.workload(name.as_str()).await, Ok(Some(_))) {
                return Err(anyhow!(
                    "{e}; the VM record {name} remains: `vimana vm logs {name}` shows its console, `vimana vm rm {name}` removes it"
                ));
            }
            return Err(e);
        }
    };
    match (out, w) {
        (OutputFormat::Json, Some(w)) => output::json(&w)?,
        _ => println!("{name}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates `path`; prints its warnings. Relative paths in it
/// are made absolute here, because the daemon runs in another directory.
fn load_hac(path: &Path) -> Result<(vimana_vm::VmConfig, PathBuf)> {
    let abs = std::path::absolute(path)
        .with_context(|| format!("cannot resolve the path {}", path.display()))?;
    let opts = ParseOptions {
        base_dir: abs.parent().map(Path::to_path_buf),
        ..ParseOptions::for_host()
    };
    let parsed = hac::load(path, &opts).map_err(|e| anyhow!("{:?}", miette::Report::new(e)))?;
    for w in parsed.warnings {
        eprintln!("{:?}", miette::Report::new(w));
    }
    Ok((parsed.config, abs))
}

fn exists_message(w: &Workload) -> String {
    let name = &w.name;
    if w.kind == WorkloadKind::Vm {
        format!(
            "a VM named {name} already exists ({}); `vimana vm rm {name}` removes it, or pick another --name",
            w.state
        )
    } else {
        format!(
            "a {} workload is named {name}; pick another --name for the VM",
            w.kind
        )
    }
}

/// `vm-<8 lowercase hex digits>` that no workload has yet.
async fn fresh_name(client: &Client) -> Result<WorkloadName> {
    for _ in 0..NAME_ATTEMPTS {
        let name = WorkloadName::new(format!("vm-{:08x}", rand::random::<u32>()))?;
        if client.workload(name.as_str()).await?.is_none() {
            return Ok(name);
        }
    }
    bail!("could not find an unused VM id after {NAME_ATTEMPTS} tries; pass --name")
}

fn spinner(message: String) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(message);
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

/// The VM `id`, or an error naming it when there is none (or the workload
/// of that name is not a VM).
pub(super) async fn get_vm(client: &Client, id: &str) -> Result<Workload> {
    let Ok(name) = super::name(id) else {
        bail!(
            "no VM named {id:?}: VM ids match ^[a-z][a-z0-9-]{{0,62}}$; `vimana vm list` shows the VMs"
        );
    };
    match client.workload(name.as_str()).await? {
        Some(w) if w.kind == WorkloadKind::Vm => Ok(w),
        Some(w) => bail!(
            "{name} is a {} workload, not a VM; use `vimana status {name}`",
            w.kind
        ),
        None => bail!("no VM named {name}; `vimana vm list` shows the VMs"),
    }
}

/// Fails unless the VM runs (exec and attach need a live VMM).
pub(super) fn require_running(w: &Workload) -> Result<()> {
    if w.state == WorkloadState::Running {
        return Ok(());
    }
    let detail = if w.detail.is_empty() || first_line(&w.detail) == w.state.as_str() {
        String::new()
    } else {
        format!(" ({})", first_line(&w.detail))
    };
    bail!(
        "VM {} is {}, not running{detail}; `vimana vm logs {}` shows its console",
        w.name,
        w.state,
        w.name
    )
}

/// Whether the VM may still produce console output (for `logs -f`).
pub(super) fn is_live(w: &Workload) -> bool {
    matches!(
        w.state,
        WorkloadState::Starting | WorkloadState::Running | WorkloadState::Stopping
    )
}

/// The provider a VM's spec asks for (the daemon's default is qemu).
fn provider_of(w: &Workload) -> String {
    match &w.spec {
        WorkloadSpec::Vm(spec) => spec
            .config
            .get("provider")
            .and_then(|p| p.as_str())
            .unwrap_or(vimana_vm::Provider::Qemu.as_str())
            .to_string(),
        _ => "-".to_string(),
    }
}

async fn list(client: &Client, out: OutputFormat) -> Result<ExitCode> {
    let all: Vec<Workload> = client
        .call(Method::GET, "/v1/workloads", None::<&()>)
        .await?
        .unwrap_or_default();
    let vms: Vec<Workload> = all
        .into_iter()
        .filter(|w| w.kind == WorkloadKind::Vm)
        .collect();
    if out == OutputFormat::Json {
        output::json(&vms)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(["ID", "STATE", "PROVIDER", "PID", "DETAIL"]);
    if !std::io::stdout().is_terminal() {
        t.force_no_tty();
    }
    for w in &vms {
        t.add_row(vec![
            Cell::new(&w.name),
            Cell::new(w.state),
            Cell::new(provider_of(w)),
            Cell::new(w.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())),
            Cell::new(truncate(&w.detail, 60)),
        ]);
    }
    println!("{}", t.trim_fmt());
    Ok(ExitCode::SUCCESS)
}

async fn stop(client: &Client, out: OutputFormat, id: &str) -> Result<ExitCode> {
    let w = get_vm(client, id).await?;
    // No request timeout: the daemon tries the agent, then ACPI, then kills.
    let stopped: Option<Workload> = client
        .call(
            Method::POST,
            &format!("/v1/workloads/{}/stop", w.name),
            None::<&()>,
        )
        .await?;
    match (out, stopped) {
        (OutputFormat::Json, Some(s)) => output::json(&s)?,
        _ => println!("stopped {}", w.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// `vm rm`: the daemon stops the VM and deletes its run directory.
async fn rm(client: &Client, id: &str) -> Result<ExitCode> {
    let w = get_vm(client, id).await?;
    client
        .call::<serde_json::Value>(
            Method::DELETE,
            &format!("/v1/workloads/{}", w.name),
            None::<&()>,
        )
        .await?;
    println!("removed {}", w.name);
    Ok(ExitCode::SUCCESS)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn truncate(s: &str, n: usize) -> String {
    let first = first_line(s);
    if first.chars().count() > n {
        format!("{}…", first.chars().take(n - 1).collect::<String>())
    } else {
        first.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_to_first_line() {
        assert_eq!(truncate("abc\ndef", 10), "abc");
        assert_eq!(truncate("abcdefghijkl", 5), "abcd…");
    }
}
