//! `vimana image push <component.wasm> --proto <file.proto>… <ref>` and
//! `vimana image embed`: package a component with its gRPC contract.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use vimana_oci::{ArtifactParts, OciConfig};

use crate::cli::OutputFormat;
use crate::cmd::wit::default_includes;

use crate::config::Config;
use crate::home::Home;

/// The descriptor set of `protos`, checked against the convention.
fn contract(protos: &[PathBuf], includes: Vec<PathBuf>) -> Result<Vec<u8>> {
    crate::cmd::wit::check_readable(protos)?;
    let includes = default_includes(protos, includes);
    let fds = vimana_grpc::compile_protos(protos, &includes)
        .context("cannot compile the protobuf files")?;
    vimana_grpc::Contract::from_descriptor_set(&fds)
        .context("the services cannot be mapped onto a component")?;
    Ok(fds)
}

fn read_component(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))
}

pub fn oci_config(home: &Home, config: &Config) -> OciConfig {
    OciConfig {
        insecure_registries: config.images.insecure_registries.clone(),
        cache_dir: home.images_dir(),
        auth: None,
    }
}

pub async fn push(
    home: &Home,
    out: OutputFormat,
    component: PathBuf,
    protos: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    reference: String,
) -> Result<ExitCode> {
    let config = Config::load(&home.config())?;
    let wasm = read_component(&component)?;
    let descriptor_set = if protos.is_empty() {
        vimana_services::contract_section::extract(&wasm)
            .with_context(|| format!("{} is not a WebAssembly component", component.display()))?
    } else {
        Some(contract(&protos, includes)?)
    };
    let version = reference
        .rsplit_once(':')
        .filter(|(repo, _)| !repo.ends_with('/') && !reference.contains('@'))
        .map(|(_, tag)| tag.to_owned());
    let parts = ArtifactParts {
        wasm,
        descriptor_set,
        version,
        exports: Vec::new(),
        imports: Vec::new(),
    };
    let pushed = vimana_oci::push(&oci_config(home, &config), &reference, &parts)
        .await
        .with_context(|| format!("cannot push {reference}"))?;
    match out {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"reference": pushed.reference, "digest": pushed.manifest_digest, "pinned": pushed.pinned})
        ),
        _ => println!("pushed {} ({})", pushed.reference, pushed.manifest_digest),
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `component` with the contract of `protos` embedded, for use as a
/// local `.wasm` image.
pub fn embed(
    component: PathBuf,
    protos: Vec<PathBuf>,
    includes: Vec<PathBuf>,
    output: Option<PathBuf>,
) -> Result<ExitCode> {
    if protos.is_empty() {
        bail!("give the service contract with --proto <file.proto>");
    }
    let wasm = read_component(&component)?;
    let fds = contract(&protos, includes)?;
    let embedded = vimana_services::contract_section::embed(&wasm, &fds)
        .with_context(|| format!("{} is not a WebAssembly component", component.display()))?;
    let target = output.unwrap_or_else(|| component.clone());
    let tmp = target.with_extension("wasm.tmp");
    std::fs::write(&tmp, &embedded).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("cannot replace {}", target.display()))?;
    println!(
        "wrote {} ({} bytes, contract embedded)",
        target.display(),
        embedded.len()
    );
    Ok(ExitCode::SUCCESS)
}
