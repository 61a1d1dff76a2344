//! `vimana repo add|list|remove|update`: package repositories, kept under
//! VIMANA_HOME (no daemon involved).

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Cell, Table, presets};
use vimana_registry::{Registry, RegistryError, UpdateStatus};

use crate::cli::{OutputFormat, RepoCommand};
use crate::home::Home;

/// A registry error as the user should see it: diagnostics for index files
/// (file, line, column, the rule) rendered by miette.
pub fn report(e: RegistryError) -> anyhow::Error {
    match e {
        RegistryError::Index(_) => anyhow::anyhow!("{:?}", miette::Report::new(e)),
        other => anyhow::Error::new(other),
    }
}

pub async fn run(home: &Home, out: OutputFormat, cmd: RepoCommand) -> Result<ExitCode> {
    home.ensure()?;
    let reg = Registry::new(&home.root);
    match cmd {
        RepoCommand::Add { name, url } => {
            let info = reg.add(&name, &url).await.map_err(report)?;
            println!(
                "added repository {} ({})",
                info.name,
                info.url.unwrap_or_default()
            );
        }
        RepoCommand::Remove { name } => {
            reg.remove(&name).map_err(report)?;
            println!("removed repository {name}");
        }
        RepoCommand::List => {
            let repos = reg.list().map_err(report)?;
            if out == OutputFormat::Json {
                let v: Vec<_> = repos
                    .iter()
                    .map(|r| serde_json::json!({"name": r.name, "url": r.url, "builtin": r.builtin, "etag": r.etag}))
                    .collect();
                crate::output::json(&v)?;
            } else {
                let mut t = Table::new();
                t.load_preset(presets::NOTHING);
                t.set_header(vec!["NAME", "URL"]);
                for r in repos {
                    let url = if r.builtin {
                        "(built in)".to_string()
                    } else {
                        r.url.unwrap_or_default()
                    };
                    t.add_row(vec![Cell::new(r.name), Cell::new(url)]);
                }
                println!("{}", t.trim_fmt());
            }
        }
        RepoCommand::Update { name } => {
            let mut failed = false;
            for o in reg.update(name.as_deref()).await.map_err(report)? {
                match o.status {
                    Ok(UpdateStatus::Updated) => println!("{}: updated", o.name),
                    Ok(UpdateStatus::NotModified) => println!("{}: up to date", o.name),
                    Ok(UpdateStatus::Builtin) => println!("{}: built in", o.name),
                    Err(e) => {
                        failed = true;
                        eprintln!("{}: {}", o.name, report(e));
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
