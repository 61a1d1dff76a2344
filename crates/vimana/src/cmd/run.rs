//! `vimana run <SPACECORE> <NODE-TYPE> [--flag VALUE]… [-- EXTRA…]`:
//! resolve a package, download and verify its artifact, install it, run its
//! `init` once, and start it as a managed `process` workload named
//! `<spacecore>-<node-type>`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use http::Method;
use vimana_api::{
    PackageRef, ProcessSpec, Resources, RestartPolicy, StartRequest, Workload, WorkloadSpec,
};
use vimana_registry::{Registry, Resolved, Restart};

use super::repo::report;
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::home::Home;

pub struct RunArgs {
    pub spacecore: String,
    pub node_type: String,
    /// Everything after the node type: `--flag value`, `--flag=value`, then `--` and extra args.
    pub rest: Vec<String>,
}

pub async fn run(home: &Home, client: &Client, out: OutputFormat, a: RunArgs) -> Result<ExitCode> {
    home.ensure()?;
    let reg = Registry::new(&home.root);
    let resolved = reg.resolve(&a.spacecore, &a.node_type).map_err(report)?;
    let (flags, extra) = parse_flags(&a.rest, &resolved)?;
    let name = format!("{}-{}", resolved.package.name, resolved.node_type_name);
    let name = super::name(&name)?;
    let package = PackageRef {
        repo: resolved.repo.clone(),
        name: resolved.package.name.clone(),
        version: resolved.package.version.clone(),
        node_type: resolved.node_type_name.clone(),
        flags: resolved.flag_values(&flags),
        extra_args: extra.clone(),
    };
    if let Some(w) = client.workload(&name.to_string()).await? {
        return again(client, out, w, &package, &a).await;
    }
    let (dir, bin) = resolved.install_paths(&home.root).map_err(report)?;
    install(home, &resolved, &dir, &bin).await?;
    let store = home.root.join("stores").join(name.as_str());
    let render = |t: &[String]| -> Result<Vec<String>> {
        resolved
            .render_command(t, &store.to_string_lossy(), &bin.to_string_lossy(), &flags)
            .map_err(report)
    };
    if let Some(init) = &resolved.node_type.init
        && !store.exists()
    {
        run_init(&render(init)?, &store)?;
    }
    std::fs::create_dir_all(&store)
        .with_context(|| format!("cannot create {}", store.display()))?;
    let mut argv = render(&resolved.node_type.start)?;
    argv.extend(extra);
    let command = absolute_command(&argv[0], &bin)?;
    let mut env = BTreeMap::new();
    for (k, v) in &resolved.node_type.env {
        let value = render(std::slice::from_ref(v))?.concat();
        env.insert(k.clone(), value);
    }
    let spec = ProcessSpec {
        command,
        args: argv[1..].to_vec(),
        env,
        cwd: Some(store.to_string_lossy().into_owned()),
        restart: match resolved.node_type.restart {
            Restart::Always => RestartPolicy::Always,
            Restart::OnFailure => RestartPolicy::OnFailure,
            Restart::Never => RestartPolicy::Never,
        },
        stop_timeout_ms: None,
        resources: resolved.node_type.resources.as_ref().map(|r| Resources {
            cpu: r.cpu,
            memory_bytes: r.memory_bytes,
        }),
        package: Some(package),
    };
    let w: Option<Workload> = client
        .call(
            Method::PUT,
            &format!("/v1/workloads/{name}"),
            Some(&StartRequest {
                spec: Some(WorkloadSpec::Process(Box::new(spec))),
            }),
        )
        .await?;
    if let Some(w) = w {
        crate::output::workloads(out, std::slice::from_ref(&w))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits `--flag value` / `--flag=value` (declared flags only) from the
/// extra arguments after `--`.
fn parse_flags(rest: &[String], r: &Resolved) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut flags = BTreeMap::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            return Ok((flags, it.cloned().collect()));
        }
        let Some(flag) = arg.strip_prefix("--") else {
            bail!(
                "unexpected argument {arg:?}; pass node flags as --name value and extra node arguments after --"
            );
        };
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let Some(v) = it.next() else {
                    bail!("--{flag} needs a value");
                };
                (flag.to_string(), v.clone())
            }
        };
        if !r.node_type.flags.contains_key(&key) {
            let known: Vec<_> = r.node_type.flags.keys().map(|k| format!("--{k}")).collect();
            bail!(
                "{} {} has no flag --{key}; its flags are: {}",
                r.package.name,
                r.node_type_name,
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        flags.insert(key, value);
    }
    Ok((flags, Vec::new()))
}

/// A second `run` of the same node: same configuration → (re)start it;
/// different → say how to change it.
async fn again(
    client: &Client,
    out: OutputFormat,
    w: Workload,
    want: &PackageRef,
    a: &RunArgs,
) -> Result<ExitCode> {
    let have = match &w.spec {
        WorkloadSpec::Process(p) => p.package.clone(),
        _ => None,
    };
    if have.as_ref() != Some(want) {
        bail!(
            "{name} already exists with a different configuration ({}); to change it: `vimana stop {name} && vimana rm {name}`, then `vimana run {} {} …` again",
            describe(have.as_ref()),
            a.spacecore,
            a.node_type,
            name = w.name,
        );
    }
    let w: Option<Workload> = client
        .call(
            Method::PUT,
            &format!("/v1/workloads/{}", w.name),
            Some(&StartRequest { spec: None }),
        )
        .await?;
    if let Some(w) = w {
        crate::output::workloads(out, std::slice::from_ref(&w))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(p: Option<&PackageRef>) -> String {
    match p {
        None => "not from a package".into(),
        Some(p) => {
            let mut parts: Vec<String> =
                p.flags.iter().map(|(k, v)| format!("--{k} {v}")).collect();
            parts.insert(0, format!("{} {}", p.name, p.version));
            if !p.extra_args.is_empty() {
                parts.push(format!("-- {}", p.extra_args.join(" ")));
            }
            parts.join(" ")
        }
    }
}

/// Downloads (cached, resumed, verified) and unpacks the artifact once into
/// `dir`, which then holds `bin` (both from [`Resolved::install_paths`]).
async fn install(home: &Home, r: &Resolved, dir: &Path, bin: &Path) -> Result<()> {
    if bin.exists() {
        return Ok(());
    }
    let bar = progress_bar(&r.url);
    let tick = |done: u64, total: Option<u64>| {
        if let Some(b) = &bar {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    };
    let got = vimana_registry::download(
        &r.url,
        r.artifact.sha256.as_deref(),
        &home.root.join("cache"),
        &tick,
    )
    .await
    .map_err(report)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !got.verified {
        eprintln!(
            "warning: {} {} has no published sha256; downloaded file has sha256 {} (not verified)",
            r.package.name, r.package.version, got.sha256
        );
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    vimana_registry::unpack(&got.path, r.artifact.format, dir, &r.artifact.bin).map_err(report)?;
    if !bin.exists() {
        let _ = std::fs::remove_dir_all(dir);
        bail!(
            "the artifact of {} {} has no {:?} inside; the package index is wrong",
            r.package.name,
            r.package.version,
            r.artifact.bin
        );
    }
    Ok(())
}

fn progress_bar(url: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        b.set_style(style);
    }
    b.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    Some(b)
}

/// Runs the package's `init` once; on failure nothing of the store remains.
fn run_init(argv: &[String], store: &Path) -> Result<()> {
    let Some((cmd, args)) = argv.split_first() else {
        return Ok(());
    };
    std::fs::create_dir_all(store)?;
    let status = std::process::Command::new(cmd)
        .args(args)
        .current_dir(store)
        .status()
        .with_context(|| format!("cannot run init command {cmd}"));
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            let _ = std::fs::remove_dir_all(store);
            bail!(
                "init command `{}` failed ({s}); nothing was started",
                argv.join(" ")
            )
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(store);
            Err(e)
        }
    }
}

/// The program of the start command: absolute as given, else inside the
/// package (beside `bin`, never above it), else a plain name on PATH.
fn absolute_command(first: &str, bin: &Path) -> Result<String> {
    if Path::new(first).is_absolute() {
        return Ok(first.to_string());
    }
    if let Some(dir) = bin.parent() {
        let inside = vimana_registry::join_inside(dir, first, "start command").map_err(report)?;
        if inside.exists() {
            return Ok(inside.to_string_lossy().into_owned());
        }
    }
    if first.contains('/') {
        bail!("the start command {first:?} is not in the package");
    }
    match vimana_host::which(first) {
        Some(found) => Ok(found.to_string_lossy().into_owned()),
        None => bail!("the start command {first:?} is neither in the package nor on PATH"),
    }
}
