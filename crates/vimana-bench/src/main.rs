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
//! - `native-adder`: the adder example's AddFloats service natively in
//!   tonic, the baseline for the gateway benchmark.
//! - `grpc-load`: open-loop (fixed rate) or closed-loop (`--max`) gRPC
//!   load against any AddFloats server.
//! - `wasm-deploy`: the adder deployed as many Components in one apply:
//!   time until all are available, daemon memory, restart on the same home.
//! - `vm-boot`: `vimana vm spawn` → agent ready against raw QEMU booting
//!   the same kernel and initramfs to the agent's ready marker, and the
//!   daemon's memory per running VM (`bash benches/vm-boot.sh`).
//! - `write-hello-http`: writes the wasi:http hello-world component
//!   (`vimana_wasm::testing::hello_http_component`).
//!
//! The first four print one JSON line on stdout; `bash benches/run.sh` runs
//! them all. `bash benches/gateway.sh` runs the gateway benchmark,
//! `bash benches/wasm-gateway.sh` sets up a daemon for it and adds the
//! wasi:http and many-Components figures.

mod daemon_rss;
mod download;
mod grpc_conn;
mod grpc_load;
mod launch;
mod load_report;
mod native_adder;
mod run_cached;
mod stats;
mod tls;
mod vm_boot;
mod wasm_deploy;

/// Code generated from examples/adder/adder.proto (package `foo.bar`).
#[allow(clippy::all, missing_docs)]
mod adder_pb {
    tonic::include_proto!("foo.bar");
}

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
    /// Serve foo.bar.AdderService natively (tonic) until killed.
    NativeAdder(native_adder::Opts),
    /// gRPC load on AddFloats: fixed rate (open loop) or --max (closed loop).
    GrpcLoad(grpc_load::Opts),
    /// The adder as many Components in one apply: time to available, RSS, restart.
    WasmDeploy(wasm_deploy::Opts),
    /// MicroVM boot: `vimana vm spawn` vs raw QEMU to agent ready; daemon memory per VM.
    VmBoot(vm_boot::Opts),
    /// Write the wasi:http hello component (answers 200 "hello from wasm\n").
    WriteHelloHttp {
        /// Where to write the component.
        #[arg(value_name = "OUT.wasm")]
        out: PathBuf,
    },
}

/// Writes `vimana_wasm::testing::hello_http_component()` to `out`.
fn write_hello_http(out: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let wasm = vimana_wasm::testing::hello_http_component();
    std::fs::write(out, &wasm).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(serde_json::json!({ "wrote": out.display().to_string(), "bytes": wasm.len() }).to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    match &cli.command {
        Command::NativeAdder(o) => builder.worker_threads(o.workers.into()),
        Command::GrpcLoad(o) => builder.worker_threads(o.workers.into()),
        _ => &mut builder,
    };
    let rt = match builder.enable_all().build() {
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
            Command::NativeAdder(opts) => native_adder::run(opts).await,
            Command::GrpcLoad(opts) => grpc_load::run(opts).await,
            Command::WasmDeploy(opts) => wasm_deploy::run(opts).await,
            Command::VmBoot(opts) => vm_boot::run(opts).await,
            Command::WriteHelloHttp { out } => write_hello_http(&out),
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
