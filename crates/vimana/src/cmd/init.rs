//! `vimana init`: check the host, write `config.toml`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use comfy_table::{Cell, Color, Table, presets};
use vimana_host::{Check, CheckOptions};

use crate::cli::OutputFormat;
use crate::config::{Config, HostFacts};
use crate::home::Home;

pub async fn run(home: &Home, force: bool, out: OutputFormat) -> Result<ExitCode> {
    let opts = CheckOptions::new(&home.root);
    let checks = tokio::task::spawn_blocking(move || vimana_host::run_checks(&opts))
        .await
        .context("host checks did not finish")?;
    home.ensure()?;
    let path = home.config();
    let exists = path.exists();
    let written = if exists && !force {
        false
    } else {
        let mut config = if exists {
            Config::load(&path).unwrap_or_default()
        } else {
            Config::default()
        };
        config.host = facts(&checks);
        let text = toml::to_string_pretty(&config)?;
        let body = format!("# Written by `vimana init`; edit [daemon] freely.\n{text}");
        crate::home::write_private(&path, body.as_bytes())?;
        true
    };
    if out == OutputFormat::Json {
        crate::output::json(&serde_json::json!({
            "checks": checks,
            "config": path,
            "config_written": written,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&checks);
    if written {
        println!("\nwrote {}", path.display());
    } else {
        println!(
            "\n{} exists; kept it (use --force to overwrite)",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn facts(checks: &[Check]) -> HostFacts {
    let ok = |n: &str| checks.iter().any(|c| c.name == n && c.ok);
    HostFacts {
        kvm: ok("kvm"),
        tun: ok("tun"),
        vsock: ok("vsock"),
        cgroup_v2: ok("cgroup-v2"),
        hypervisors: vimana_host::HYPERVISORS
            .iter()
            .filter(|(bin, _)| ok(bin))
            .map(|(bin, _)| bin.to_string())
            .collect(),
    }
}

fn print_table(checks: &[Check]) {
    let tty = std::io::stdout().is_terminal();
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if !tty {
        t.force_no_tty();
    }
    t.set_header(vec!["", "CHECK", "FOUND", "HINT"]);
    for c in checks {
        let mark = if c.ok {
            Cell::new("✓")
        } else {
            Cell::new("✗")
        };
        let mark = match (tty, c.ok) {
            (false, _) => mark,
            (true, true) => mark.fg(Color::Green),
            (true, false) => mark.fg(Color::Red),
        };
        t.add_row(vec![
            mark,
            Cell::new(&c.name),
            Cell::new(&c.value),
            Cell::new(c.hint.as_deref().unwrap_or("")),
        ]);
    }
    println!("{}", t.trim_fmt());
}
