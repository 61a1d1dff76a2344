//! `build-adder [OUT.wasm] [--descriptor-set OUT.pb] [--no-contract]`:
//! writes the adder component (default `target/adder.wasm`, relative to the
//! current directory) with its gRPC contract (the encoded descriptor set of
//! `adder.proto`) embedded in the `vimana:grpc/descriptor-set` custom
//! section, so `vimana apply -f examples/adder/adder.yaml` can serve it as
//! is; and, if asked, the descriptor set as a file of its own.
//!
//! ```text
//! cargo run -p adder --bin build-adder -- target/adder.wasm --descriptor-set target/adder.pb
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the component goes when no path is given.
const DEFAULT_OUT: &str = "target/adder.wasm";

const USAGE: &str = "\
usage: build-adder [OUT.wasm] [--descriptor-set OUT.pb] [--no-contract]

Builds the foo.bar.AdderService component (adder.wat + wit/adder.wit) and
writes it to OUT.wasm (default: target/adder.wasm), with the encoded
FileDescriptorSet of adder.proto embedded in its custom section
`vimana:grpc/descriptor-set` (what `vimana image embed` writes), ready for
`vimana apply -f examples/adder/adder.yaml`. --no-contract writes the bare
component. With --descriptor-set, also writes the descriptor set to OUT.pb.";

/// What went wrong; usage errors exit with 2, the rest with 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    #[error(transparent)]
    Build(#[from] adder::BuildError),
    #[error("embedding the contract: {0}")]
    Embed(#[from] vimana_services::contract_section::SectionError),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
    out: Option<PathBuf>,
    descriptor_set: Option<PathBuf>,
    no_contract: bool,
    help: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, CliError> {
    let mut parsed = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            parsed.help = true;
        } else if arg == "--no-contract" {
            parsed.no_contract = true;
        } else if arg == "--descriptor-set" {
            let path = args
                .next()
                .ok_or_else(|| CliError::Usage("--descriptor-set needs a path".into()))?;
            parsed.descriptor_set = Some(path.into());
        } else if let Some(path) = arg.strip_prefix("--descriptor-set=") {
            parsed.descriptor_set = Some(path.into());
        } else if arg.starts_with('-') {
            return Err(CliError::Usage(format!("unknown option {arg}")));
        } else if parsed.out.is_none() {
            parsed.out = Some(arg.into());
        } else {
            return Err(CliError::Usage(format!("unexpected argument {arg}")));
        }
    }
    Ok(parsed)
}

/// Writes `bytes` to `path`, creating missing parent directories.
fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail = |source| CliError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, bytes).map_err(fail)
}

fn run() -> Result<(), CliError> {
    let args = parse_args(std::env::args().skip(1))?;
    if args.help {
        println!("{USAGE}");
        return Ok(());
    }
    let out = args.out.unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let component = adder::component()?;
    let set = adder::descriptor_set()?;
    let (wasm, what) = if args.no_contract {
        (component, "without contract")
    } else {
        let embedded = vimana_services::contract_section::embed(&component, &set)?;
        (embedded, "contract embedded")
    };
    write(&out, &wasm)?;
    println!("wrote {} ({} bytes, {what})", out.display(), wasm.len());
    if let Some(path) = args.descriptor_set {
        write(&path, &set)?;
        println!("wrote {} ({} bytes)", path.display(), set.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build-adder: {e}");
            match e {
                CliError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
