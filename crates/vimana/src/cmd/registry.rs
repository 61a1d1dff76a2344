//! `vimana registry list|search <TERM>`: packages across all repositories.

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Cell, Table, presets};
use vimana_registry::{PackageHit, Registry};

use crate::cli::{OutputFormat, RegistryCommand};
use crate::home::Home;

pub fn run(home: &Home, out: OutputFormat, cmd: RegistryCommand) -> Result<ExitCode> {
    let reg = Registry::new(&home.root);
    let hits = match cmd {
        RegistryCommand::List => reg.list_packages(),
        RegistryCommand::Search { term } => reg.search(&term),
    }
    .map_err(super::repo::report)?;
    print(out, &hits)?;
    Ok(ExitCode::SUCCESS)
}

fn print(out: OutputFormat, hits: &[PackageHit]) -> Result<()> {
    if out == OutputFormat::Json {
        let v: Vec<_> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "repo": h.repo, "name": h.name, "version": h.version,
                    "node_types": h.node_types, "description": h.description,
                })
            })
            .collect();
        return crate::output::json(&v);
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(vec!["NAME", "VERSION", "NODE TYPES", "REPO", "DESCRIPTION"]);
    for h in hits {
        t.add_row(vec![
            Cell::new(&h.name),
            Cell::new(&h.version),
            Cell::new(h.node_types.join(",")),
            Cell::new(&h.repo),
            Cell::new(&h.description),
        ]);
    }
    println!("{}", t.trim_fmt());
    Ok(())
}
