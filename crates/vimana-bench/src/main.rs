//! `vimana-bench`: the numbers behind docs/benchmarks.md.
//!
//! - `launch`: wall time from spawning a spacecore plugin through the
//!   go-plugin handshake (AutoMTLS optional) to the answer of its first
//!   `Status` RPC, the same measurement `benches/go-host` makes with
//!   HashiCorp's Go host.
//! - `daemon-rss`: the daemon's resident memory idle and while it
//!   supervises N spacecores.
//!
//! Each prints one JSON line on stdout. `bash benches/run.sh` runs them all.

mod daemon_rss;
mod launch;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

/// Benchmarks for vimana's plugin host and daemon.
#[derive(Parser, Debug)]
#[command(name = "vimana-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Launch a plugin N times: spawn → handshake → first Status answered.
    Launch {
        /// The spacecore plugin executable.
        #[arg(long, value_name = "PATH")]
        plugin: PathBuf,
        /// Iterations.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        n: u32,
        /// Use go-plugin AutoMTLS.
        #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "true|false")]
        mtls: bool,
    },
    /// Daemon RSS idle and with COUNT supervised spacecores.
    DaemonRss {
        /// The vimana executable.
        #[arg(long, value_name = "PATH")]
        vimana: PathBuf,
        /// The spacecore plugin executable (SC_STATE_DIR is set per workload).
        #[arg(long, value_name = "PATH")]
        plugin: PathBuf,
        /// Number of spacecores.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// Parallel `vimana start` processes.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
        parallel: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vimana-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Launch { plugin, n, mtls } => launch::run(plugin, n, mtls).await,
            Command::DaemonRss {
                vimana,
                plugin,
                count,
                parallel,
            } => daemon_rss::run(vimana, plugin, count, parallel).await,
        }
    });
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vimana-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
