//! `start`, `stop`, `rm`, `status`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use http::Method;
use vimana_api::{SpacecoreSpec, StartRequest, Workload, WorkloadSpec};

use crate::cli::OutputFormat;
use crate::client::Client;
use crate::output;

pub struct StartArgs {
    pub name: String,
    pub plugin: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub start_timeout: Option<f64>,
}

pub async fn start(client: &Client, out: OutputFormat, a: StartArgs) -> Result<ExitCode> {
    let name = super::name(&a.name)?;
    let spec = match a.plugin {
        Some(p) => {
            let plugin = std::path::absolute(&p)
                .with_context(|| format!("cannot resolve plugin path {}", p.display()))?;
            let mut env = BTreeMap::new();
            for kv in a.env {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("--env {kv:?} has no '='; write it as KEY=VALUE");
                };
                env.insert(k.to_string(), v.to_string());
            }
            let start_timeout_ms = match a.start_timeout {
                Some(s) if !(s > 0.0 && s.is_finite()) => {
                    bail!("--start-timeout {s} is not a positive number of seconds")
                }
                Some(s) => Some((s * 1000.0) as u64),
                None => None,
            };
            Some(WorkloadSpec::Spacecore(SpacecoreSpec {
                plugin: plugin.to_string_lossy().into_owned(),
                args: a.args,
                env,
                start_timeout_ms,
            }))
        }
        None if !a.args.is_empty() || !a.env.is_empty() || a.start_timeout.is_some() => {
            bail!("--arg, --env and --start-timeout need --plugin PATH")
        }
        None => None,
    };
    let w: Option<Workload> = client
        .call(
            Method::PUT,
            &format!("/v1/workloads/{name}"),
            Some(&StartRequest { spec }),
        )
        .await?;
    if let Some(w) = w {
        output::workloads(out, std::slice::from_ref(&w))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(client: &Client, out: OutputFormat, name: &str) -> Result<ExitCode> {
    let name = super::name(name)?;
    let w: Option<Workload> = client
        .call(
            Method::POST,
            &format!("/v1/workloads/{name}/stop"),
            None::<&()>,
        )
        .await?;
    if let Some(w) = w {
        output::workloads(out, std::slice::from_ref(&w))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rm(client: &Client, name: &str) -> Result<ExitCode> {
    let name = super::name(name)?;
    client
        .call::<serde_json::Value>(
            Method::DELETE,
            &format!("/v1/workloads/{name}"),
            None::<&()>,
        )
        .await?;
    println!("removed {name}");
    Ok(ExitCode::SUCCESS)
}

pub async fn status(client: &Client, out: OutputFormat, name: Option<&str>) -> Result<ExitCode> {
    let list: Vec<Workload> = match name {
        Some(n) => {
            let n = super::name(n)?;
            client
                .call::<Workload>(Method::GET, &format!("/v1/workloads/{n}"), None::<&()>)
                .await?
                .into_iter()
                .collect()
        }
        None => client
            .call(Method::GET, "/v1/workloads", None::<&()>)
            .await?
            .unwrap_or_default(),
    };
    output::workloads(out, &list)?;
    Ok(ExitCode::SUCCESS)
}
