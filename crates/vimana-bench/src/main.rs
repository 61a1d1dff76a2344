//! `vimana-bench`: the numbers behind docs/benchmarks.md.
//!
//! - `launch`: wall time from spawning a spacecore plugin through the
//!   go-plugin handshake (AutoMTLS optional) to the answer of its first
//!   `Status` RPC, the same measurement `benches/go-host` makes with
//!   HashiCorp's Go host.
//! - `daemon-rss`: the daemon's resident memory idle and while it
//!   supervises N spacecores.
//! - `run-cached`: wall time of `vimana run` for an already installed and
//!   initialised package.
//! - `download`: `vimana_registry::download` throughput against curl from
//!   the same loopback HTTP server.
//!
//! Each prints one JSON line on stdout. `bash benches/run.sh` runs them all.

mod daemon_rss;
mod download;
mod launch;
mod run_cached;
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
    /// `vimana run` of an already downloaded, installed and initialised package.
    RunCached {
        /// The vimana executable.
        #[arg(long, value_name = "PATH")]
        vimana: PathBuf,
        /// Iterations.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        n: u32,
    },
    /// Download throughput, vimana_registry::download vs curl, over loopback.
    Download {
        /// Size of the served file in MiB.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        size_mib: u64,
        /// Downloads per client (alternating curl, vimana).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// The static HTTP server both clients download from.
        #[arg(long, value_enum, default_value_t = download::Server::Python)]
        server: download::Server,
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
            Command::RunCached { vimana, n } => run_cached::run(vimana, n).await,
            Command::Download {
                size_mib,
                runs,
                server,
            } => download::run(size_mib, runs, server).await,
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
