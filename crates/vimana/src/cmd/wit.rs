//! `vimana wit <file.proto>… [-I DIR]…`: the WIT world a component must
//! implement to serve the services of the given protobuf files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

pub fn run(protos: Vec<PathBuf>, includes: Vec<PathBuf>, with_grpc: bool) -> Result<ExitCode> {
    check_readable(&protos)?;
    let includes = default_includes(&protos, includes);
    let fds = vimana_grpc::compile_protos(&protos, &includes)
        .context("cannot compile the protobuf files")?;
    let contract = vimana_grpc::Contract::from_descriptor_set(&fds)
        .context("the services cannot be mapped onto a component")?;
    let sources: Vec<String> = protos.iter().map(|p| p.display().to_string()).collect();
    let wit = contract.wit(&sources)?;
    print!("{wit}");
    if with_grpc {
        println!();
        print!("{}", nested_grpc_package());
    }
    Ok(ExitCode::SUCCESS)
}

/// A missing file is named as such (protox would say "not in any include
/// path").
pub fn check_readable(protos: &[PathBuf]) -> Result<()> {
    for p in protos {
        std::fs::metadata(p)
            .with_context(|| format!("cannot read the protobuf file {}", p.display()))?;
    }
    Ok(())
}

/// Without `-I`, each file's directory is an include path (as protoc does
/// with the current directory).
pub fn default_includes(protos: &[PathBuf], includes: Vec<PathBuf>) -> Vec<PathBuf> {
    if !includes.is_empty() {
        return includes;
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in protos {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// The `vimana:grpc` package as a nested block, so the printed text is one
/// self-contained WIT file.
fn nested_grpc_package() -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in vimana_grpc::GRPC_WIT.lines() {
        if let Some(rest) = line.strip_prefix("package ") {
            out.push_str(&format!("package {} {{\n", rest.trim_end_matches(';')));
            inside = true;
            continue;
        }
        if inside {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("}\n");
    out
}
