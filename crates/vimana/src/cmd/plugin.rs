//! `vimana plugin <PATH> <start|stop|status|logs>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use vimana_spacecore::{Call, CallOutput};

use crate::cli::{OutputFormat, PluginCall};

pub async fn run(
    path: PathBuf,
    call: PluginCall,
    id: String,
    start_timeout: f64,
    out: OutputFormat,
) -> Result<ExitCode> {
    if !(start_timeout > 0.0 && start_timeout.is_finite()) {
        bail!("--start-timeout {start_timeout} is not a positive number of seconds");
    }
    let path = std::path::absolute(&path)?;
    if let Err(e) = vimana_spacecore::check_plugin_path(&path.to_string_lossy()) {
        bail!(e);
    }
    let call = match call {
        PluginCall::Start => Call::Start,
        PluginCall::Stop => Call::Stop,
        PluginCall::Status => Call::Status,
        PluginCall::Logs => Call::Logs,
    };
    let answer =
        vimana_spacecore::call_once(path, &id, call, Duration::from_secs_f64(start_timeout))
            .await?;
    match (out, answer) {
        (OutputFormat::Json, CallOutput::Status(s)) => {
            crate::output::json(&serde_json::json!({ "status": s }))?
        }
        (OutputFormat::Json, CallOutput::Logs(l)) => {
            crate::output::json(&serde_json::json!({ "logs": l }))?
        }
        (_, CallOutput::Status(s)) => println!("{s}"),
        (_, CallOutput::Logs(lines)) => lines.iter().for_each(|l| println!("{l}")),
    }
    Ok(ExitCode::SUCCESS)
}
