//! Printing: aligned tables (states coloured on a terminal) or JSON.

use std::io::IsTerminal;

use comfy_table::{Cell, Color, Table, presets};
use serde::Serialize;
use vimana_api::{Event, LogRecord, LogStream, Workload, WorkloadState};

use crate::cli::OutputFormat;

/// Prints an error as one clear sentence.
pub fn print_error(e: &anyhow::Error) {
    let mut msg = e.to_string();
    // Context chains: show the innermost cause when it adds something.
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    eprintln!("error: {msg}");
}

pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| Cell::new(h.to_uppercase())));
    if !std::io::stdout().is_terminal() {
        t.force_no_tty();
    }
    t
}

fn state_cell(state: WorkloadState) -> Cell {
    let c = Cell::new(state.as_str());
    if !std::io::stdout().is_terminal() {
        return c;
    }
    c.fg(match state {
        WorkloadState::Running => Color::Green,
        WorkloadState::Starting | WorkloadState::Stopping => Color::Cyan,
        WorkloadState::Stopped => Color::DarkGrey,
        WorkloadState::Backoff => Color::Yellow,
        WorkloadState::Failed => Color::Red,
    })
}

pub fn workloads(format: OutputFormat, list: &[Workload]) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        return json(&list);
    }
    let mut t = table(&["name", "kind", "state", "pid", "restarts", "detail"]);
    for w in list {
        t.add_row(vec![
            Cell::new(&w.name),
            Cell::new(w.kind),
            state_cell(w.state),
            Cell::new(w.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())),
            Cell::new(w.restarts),
            Cell::new(truncate(&w.detail, 60)),
        ]);
    }
    println!("{}", t.trim_fmt());
    Ok(())
}

pub fn log_record(format: OutputFormat, r: &LogRecord) {
    if format == OutputFormat::Json {
        if let Ok(s) = serde_json::to_string(r) {
            println!("{s}");
        }
        return;
    }
    let stream = match r.stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
        LogStream::Hclog => "plugin",
        LogStream::Plugin => "logs",
        LogStream::Daemon => "vimana",
    };
    match &r.level {
        Some(level) => println!("{} {stream} [{level}] {}", r.time, r.message),
        None => println!("{} {stream} {}", r.time, r.message),
    }
}

pub fn event(format: OutputFormat, e: &Event) {
    if format == OutputFormat::Json {
        if let Ok(s) = serde_json::to_string(e) {
            println!("{s}");
        }
        return;
    }
    let state = e.state.map(|s| s.as_str()).unwrap_or("-");
    let kind = serde_json::to_value(&e.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    println!(
        "{:>6} {} {:<20} {:<13} {:<9} {}",
        e.seq, e.time, e.workload, kind, state, e.message
    );
}

fn truncate(s: &str, n: usize) -> String {
    let first = s.lines().next().unwrap_or("");
    if first.chars().count() > n {
        format!("{}…", first.chars().take(n - 1).collect::<String>())
    } else {
        first.to_string()
    }
}
