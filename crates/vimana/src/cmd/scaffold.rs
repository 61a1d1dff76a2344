//! `vimana scaffold [NAME] [--lang rust|go] [--dir DIR] [--force]`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use vimana_scaffold::{Lang, ScaffoldOptions, SdkSource};

use crate::cli::ScaffoldLang;

pub fn run(
    name: Option<String>,
    lang: ScaffoldLang,
    dir: Option<PathBuf>,
    force: bool,
) -> Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let name = match name {
        Some(n) => n,
        None if interactive => prompt("Spacecore name", "my-spacecore")?,
        None => bail!(
            "give the spacecore a name: `vimana scaffold <NAME>` (stdin is not a terminal, so no prompt)"
        ),
    };
    vimana_scaffold::validate_name(&name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    let mut force = force;
    let non_empty = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if non_empty && !force && interactive {
        let answer = prompt(
            &format!(
                "{} is not empty; overwrite the template's files? [y/N]",
                dir.display()
            ),
            "n",
        )?;
        force = matches!(answer.as_str(), "y" | "Y" | "yes");
    }
    let opts = ScaffoldOptions {
        name: name.clone(),
        lang: match lang {
            ScaffoldLang::Rust => Lang::Rust,
            ScaffoldLang::Go => Lang::Go,
        },
        dir: dir.clone(),
        force,
        sdk: SdkSource::CratesIo {
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    };
    let files = vimana_scaffold::scaffold(&opts)?;
    println!("created {} files in {}", files.len(), dir.display());
    match lang {
        ScaffoldLang::Rust => println!(
            "next: cd {} && cargo build && vimana plugin ./target/debug/{name} start",
            dir.display()
        ),
        ScaffoldLang::Go => println!(
            "next: cd {} && ./build.sh && vimana plugin ./{name} start",
            dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn prompt(question: &str, default: &str) -> Result<String> {
    print!("{question} [{default}]: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    Ok(if line.is_empty() {
        default.to_string()
    } else {
        line.to_string()
    })
}
