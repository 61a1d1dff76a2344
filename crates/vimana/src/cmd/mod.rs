//! One file per command.

mod apply;
mod ca;
mod delete;
mod get;
mod image;
mod init;
mod logs;
mod plugin;
mod registry;
mod repo;
mod run;
mod scaffold;
mod vm;
mod vm_attach;
mod vm_exec;
mod vm_logs;
mod wit;
mod workloads;

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::home::Home;

pub use image::oci_config as image_oci_config;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::resolve(cli.home.clone())?;
    let client = || Client::new(home.clone(), !cli.no_autostart, cli.verbose);
    let out = cli.output;
    let resource_cmd = matches!(
        cli.command,
        Command::Apply { .. } | Command::Get { .. } | Command::Delete { .. }
    );
    if out == crate::cli::OutputFormat::Yaml && !resource_cmd {
        bail!("-o yaml is only supported by `apply`, `get` and `delete`; use -o json or -o table");
    }
    match cli.command {
        Command::Daemon { listen } => crate::daemon::run(home, listen).await,
        Command::Init { force } => init::run(&home, force, out).await,
        Command::Start {
            name,
            plugin,
            args,
            env,
            start_timeout,
        } => {
            workloads::start(
                &client(),
                out,
                workloads::StartArgs {
                    name,
                    plugin,
                    args,
                    env,
                    start_timeout,
                },
            )
            .await
        }
        Command::Stop { name } => workloads::stop(&client(), out, &name).await,
        Command::Rm { name } => workloads::rm(&client(), &name).await,
        Command::Status { name } => workloads::status(&client(), out, name.as_deref()).await,
        Command::Logs { name, follow, tail } => {
            logs::logs(&client(), out, &name, follow, tail).await
        }
        Command::Events {
            name,
            follow,
            since,
        } => logs::events(&client(), out, name.as_deref(), follow, since).await,
        Command::Plugin {
            path,
            call,
            id,
            start_timeout,
        } => plugin::run(path, call, id, start_timeout, out).await,
        Command::Run {
            spacecore,
            node_type,
            rest,
        } => {
            run::run(
                &home,
                &client(),
                out,
                run::RunArgs {
                    spacecore,
                    node_type,
                    rest,
                },
            )
            .await
        }
        Command::Repo { command } => repo::run(&home, out, command).await,
        Command::Registry { command } => registry::run(&home, out, command),
        Command::Scaffold {
            name,
            lang,
            dir,
            force,
        } => scaffold::run(name, lang, dir, force),
        Command::Apply { files } => apply::run(&client(), out, &files).await,
        Command::Get { kind, name } => get::run(&client(), out, &kind, name.as_deref()).await,
        Command::Delete { files, kind, name } => {
            delete::run(&client(), out, &files, kind.as_deref(), name.as_deref()).await
        }
        Command::Wit {
            protos,
            includes,
            with_grpc,
        } => wit::run(protos, includes, with_grpc),
        Command::Image { command } => match command {
            crate::cli::ImageCommand::Push {
                component,
                protos,
                includes,
                reference,
            } => image::push(&home, out, component, protos, includes, reference).await,
            crate::cli::ImageCommand::Embed {
                component,
                protos,
                includes,
                out_file,
            } => image::embed(component, protos, includes, out_file),
        },
        Command::Ca {
            command: crate::cli::CaCommand::Export,
        } => ca::export(&home),
        Command::Vm { command } => vm::run(&home, &client(), out, command).await,
        Command::Spawn(args) => vm::spawn(&client(), out, args).await,
        Command::Attach { id } => vm_attach::attach(&home, &client(), &id).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "vimana", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Checks a name locally so a typo fails before anything is sent.
fn name(s: &str) -> Result<vimana_api::WorkloadName> {
    Ok(vimana_api::WorkloadName::new(s)?)
}
