//! `logs` and `events`.

use std::process::ExitCode;

use anyhow::Result;
use vimana_api::{Event, LogRecord};

use crate::cli::OutputFormat;
use crate::client::Client;
use crate::output;

pub async fn logs(
    client: &Client,
    out: OutputFormat,
    name: &str,
    follow: bool,
    tail: Option<usize>,
) -> Result<ExitCode> {
    let name = super::name(name)?;
    let mut path = format!("/v1/workloads/{name}/logs?follow={follow}");
    if let Some(t) = tail {
        path.push_str(&format!("&tail={t}"));
    }
    client
        .stream::<LogRecord>(&path, |r| output::log_record(out, &r))
        .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn events(
    client: &Client,
    out: OutputFormat,
    name: Option<&str>,
    follow: bool,
    since: Option<u64>,
) -> Result<ExitCode> {
    let mut path = format!("/v1/events?follow={follow}");
    if let Some(n) = name {
        path.push_str(&format!("&workload={}", super::name(n)?));
    }
    if let Some(s) = since {
        path.push_str(&format!("&since={s}"));
    }
    client
        .stream::<Event>(&path, |e| output::event(out, &e))
        .await?;
    Ok(ExitCode::SUCCESS)
}
