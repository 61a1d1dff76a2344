//! Command-line definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Run lightweight, isolated workloads on this host: spacecores, Wasm
/// services and microVMs, through one daemon.
#[derive(Parser, Debug)]
#[command(name = "vimana", version, about, propagate_version = true)]
pub struct Cli {
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// More logging (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// State directory (default: $VIMANA_HOME, else ~/.vimana).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Do not start the daemon when it is not running.
    #[arg(long, global = true)]
    pub no_autostart: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    /// YAML (`get`, `apply` and `delete` only).
    Yaml,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon in the foreground.
    Daemon {
        /// Also listen on this TCP address (requires the bearer token in VIMANA_HOME/token).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check this host and write VIMANA_HOME/config.toml.
    Init {
        /// Overwrite an existing config.toml.
        #[arg(long)]
        force: bool,
    },
    /// Register (if new) and start a spacecore; idempotent for a running one.
    Start {
        /// Workload name: ^[a-z][a-z0-9-]{0,62}$.
        name: String,
        /// The plugin executable (needed the first time).
        #[arg(long, value_name = "PATH")]
        plugin: Option<PathBuf>,
        /// Argument for the plugin (repeatable).
        #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
        args: Vec<String>,
        /// Environment variable for the plugin, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Seconds the plugin may take to print its handshake.
        #[arg(long, value_name = "SECS")]
        start_timeout: Option<f64>,
    },
    /// Stop a workload (its record stays).
    Stop { name: String },
    /// Stop and remove a workload and its logs.
    #[command(alias = "remove")]
    Rm { name: String },
    /// Show workloads.
    #[command(alias = "ps")]
    Status { name: Option<String> },
    /// Show a workload's merged logs.
    Logs {
        name: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Show lifecycle events.
    Events {
        /// Only this workload.
        name: Option<String>,
        /// Keep printing new events.
        #[arg(short, long)]
        follow: bool,
        /// Only events after this sequence number.
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
    },
    /// Launch a plugin, make one call, print the answer, shut it down.
    Plugin {
        /// The plugin executable.
        path: PathBuf,
        /// The call to make.
        #[arg(value_enum)]
        call: PluginCall,
        /// The plugin_id sent with the call.
        #[arg(long, default_value = "")]
        id: String,
        /// Seconds the plugin may take to print its handshake.
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        start_timeout: f64,
    },
    /// Install a node from a repository and run it as a managed workload
    /// named <SPACECORE>-<NODE-TYPE> (e.g. `vimana run celestia light-node`).
    Run {
        /// Package name (or REPO/NAME).
        spacecore: String,
        /// Node type, e.g. `light` or `light-node`.
        node_type: String,
        /// Node flags (`--network mocha`), then `--` and extra node arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "FLAGS"
        )]
        rest: Vec<String>,
    },
    /// Manage package repositories.
    Repo {
        #[command(subcommand)]
        command: RepoCommand,
    },
    /// List and search packages across repositories.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Write a new spacecore project (Rust or Go) to build and run.
    Scaffold {
        /// Project, crate and binary name: ^[a-z][a-z0-9-]{0,62}$ (asked for on a terminal).
        name: Option<String>,
        /// Language of the project.
        #[arg(long, value_enum, default_value_t = ScaffoldLang::Rust)]
        lang: ScaffoldLang,
        /// Target directory (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Overwrite the template's files in a non-empty directory.
        #[arg(long)]
        force: bool,
    },
    /// Apply api.vimana.host/v1alpha1 resources (Vimana, Domain, Server,
    /// Component) from YAML files, all or nothing.
    Apply {
        /// A multi-document YAML file, `-` for stdin (repeatable).
        #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
        files: Vec<String>,
    },
    /// Show resources: `vimana get domains`, `vimana get component adder-1.0.0`.
    Get {
        /// vimanas, domains, servers, components (also singular, or vm, dom, srv, comp).
        kind: String,
        /// metadata.name, or for a Component <domain-id>:<server-id>@<version>.
        name: Option<String>,
    },
    /// Delete resources: `vimana delete -f FILE` or `vimana delete KIND NAME`.
    Delete {
        /// Delete the resources of this YAML file, `-` for stdin (repeatable).
        #[arg(short = 'f', long = "filename", value_name = "FILE", conflicts_with_all = ["kind", "name"])]
        files: Vec<String>,
        /// vimanas, domains, servers, components (also singular, or vm, dom, srv, comp).
        #[arg(required_unless_present = "files", requires = "name")]
        kind: Option<String>,
        /// metadata.name, or for a Component <domain-id>:<server-id>@<version>.
        name: Option<String>,
    },
    /// Print the WIT world a component must implement to serve the gRPC
    /// services of these protobuf files.
    Wit {
        /// .proto files.
        #[arg(required = true, value_name = "FILE.proto")]
        protos: Vec<std::path::PathBuf>,
        /// Import path (repeatable); default: each file's directory.
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        includes: Vec<std::path::PathBuf>,
        /// Append the vimana:grpc package, so the output is one self-contained file.
        #[arg(long)]
        with_grpc: bool,
    },
    /// Component images: push to an OCI registry, embed a contract.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// The local CA that signs the gateway's certificates.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// MicroVMs from a hac.toml: spawn, list, exec, attach, logs, stop, rm.
    Vm {
        #[command(subcommand)]
        command: VmCommand,
    },
    /// Same as `vimana vm spawn` (hypercore compatibility).
    #[command(hide = true)]
    Spawn(VmSpawnArgs),
    /// Same as `vimana vm attach` (hypercore compatibility).
    #[command(hide = true)]
    Attach {
        /// The VM id (its workload name).
        id: String,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum PluginCall {
    Start,
    Stop,
    Status,
    Logs,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScaffoldLang {
    Rust,
    Go,
}

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Add a repository: an https://, http://, file:// URL or a path to its index.
    Add { name: String, url: String },
    /// List repositories.
    #[command(alias = "ls")]
    List,
    /// Remove a repository.
    #[command(alias = "rm")]
    Remove { name: String },
    /// Fetch the index again (all repositories, or one).
    Update { name: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Push a component and its gRPC contract as an OCI artifact:
    /// `vimana image push adder.wasm --proto adder.proto localhost:5000/<domain-id>/<server-id>:1.0.0`.
    Push {
        /// The component (.wasm).
        component: std::path::PathBuf,
        /// The service contract (repeatable); default: the contract embedded in the component.
        #[arg(long = "proto", value_name = "FILE.proto")]
        protos: Vec<std::path::PathBuf>,
        /// Import path for --proto (repeatable).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        includes: Vec<std::path::PathBuf>,
        /// `<registry>/<domain-id>/<server-id>:<version>`.
        reference: String,
    },
    /// Embed the gRPC contract of .proto files into a component, for use as a local image.
    Embed {
        /// The component (.wasm).
        component: std::path::PathBuf,
        #[arg(long = "proto", value_name = "FILE.proto", required = true)]
        protos: Vec<std::path::PathBuf>,
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        includes: Vec<std::path::PathBuf>,
        /// Write here instead of replacing the component.
        #[arg(long = "out", value_name = "FILE")]
        out_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Print the CA certificate (PEM) for clients to trust.
    Export,
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Every package of every repository.
    #[command(alias = "ls")]
    List,
    /// Packages matching a term (name, tags, description), best first.
    Search { term: String },
}

#[derive(Subcommand, Debug)]
pub enum VmCommand {
    /// Start a new microVM from a hac.toml and print its id.
    Spawn(VmSpawnArgs),
    /// Show the microVMs.
    #[command(visible_alias = "ls", alias = "ps")]
    List,
    /// Run a command in a running VM through its agent and exit with its
    /// exit code: `vimana vm exec vm-1a2b3c4d -- uname -a`.
    Exec {
        /// The VM id.
        id: String,
        /// Forward stdin even when it is a terminal (it always is when it is
        /// a pipe or a file).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// The command and its arguments.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
    /// Connect this terminal to the VM's serial console (Ctrl-] detaches).
    Attach {
        /// The VM id.
        id: String,
    },
    /// Print what the VM wrote to its serial console.
    Logs {
        /// The VM id.
        id: String,
        /// Keep printing new output until the VM stops (or Ctrl-C).
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Stop a VM (agent shutdown, then ACPI, then kill); its record stays.
    Stop {
        /// The VM id.
        id: String,
    },
    /// Stop and remove a VM, its logs and its run directory.
    #[command(alias = "remove")]
    Rm {
        /// The VM id.
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct VmSpawnArgs {
    /// The VM description.
    #[arg(long = "hac", value_name = "FILE", default_value = "hac.toml")]
    pub hac: PathBuf,
    /// Hypervisor: qemu, firecracker or cloud-hypervisor (also cloudhypervisor);
    /// overrides the file's `provider`.
    #[arg(long, value_name = "PROVIDER", value_parser = parse_provider)]
    pub provider: Option<vimana_vm::Provider>,
    /// VM id: ^[a-z][a-z0-9-]{0,62}$ (default: vm-<8 hex digits>).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

fn parse_provider(s: &str) -> Result<vimana_vm::Provider, String> {
    vimana_vm::Provider::parse(s).ok_or_else(|| {
        let all: Vec<&str> = vimana_vm::Provider::ALL
            .iter()
            .map(|p| p.as_str())
            .collect();
        format!(
            "unknown provider; use one of {} (or cloudhypervisor)",
            all.join(", ")
        )
    })
}
