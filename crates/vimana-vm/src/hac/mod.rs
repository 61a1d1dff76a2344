//! `hac.toml`: parsing and validation into a [`VmConfig`].
//!
//! Two published shapes are accepted unchanged, plus vimana's own keys:
//!
//! ```toml
//! provider = "firecracker"   # qemu | firecracker | cloud-hypervisor (also cloudhypervisor, fc, ch)
//!
//! [spacecore]                # descriptive, both shapes
//! name = "Test Node"
//! description = "Testing"
//! version = "0.1.0"
//! container_image = "docker.io/me/node:1"
//! backend = "process"
//!
//! [hardware]                 # hypercore's shape
//! cores = 4                  # vCPUs
//! memory = 4096              # MiB (a size string such as "4GB" works too)
//! kernel = "/images/vmlinux"
//! drive = "/images/rootfs.img"                # root disk image, or
//! ref = "docker.io/library/alpine:latest"     # an OCI image as the root
//! interface = "ens2"         # host interface the bridge uplinks to
//!
//! [resources]                # the vimana spacecore shape (instead of [hardware])
//! cpu = 1
//! memory = "512MB"
//! disk = "1GB"               # writable root disk built from an image
//!
//! [commands]                 # name = shell command (or { run = "...", description = "..." })
//! start = "/srv/node --serve"
//!
//! [boot]                     # vimana: how the guest boots, with either shape
//! kernel = "vmlinuz"         # instead of [hardware] kernel
//! modules = "modules/6.1.0"  # lib/modules/<release> for a vimana-built initramfs
//! cmdline = ["quiet"]        # extra kernel parameters, one per entry
//! drive = "rootfs.img"       # instead of [hardware] drive
//! ref = "alpine:3.20"        # instead of [hardware] ref
//!
//! [network]
//! mode = "user"              # none | user | bridge
//! forwards = ["8080:80", "5353:53/udp"]
//! address = "10.88.0.5"      # bridge mode only
//! interface = "eth0"         # instead of [hardware] interface
//!
//! [[volumes]]
//! source = "data"            # host directory or image file
//! target = "/data"           # absolute path in the guest
//! read_only = false
//! ```
//!
//! Rules:
//!
//! - Every table rejects unknown keys (the error names the table, the
//!   allowed keys and the closest one).
//! - `[hardware]` and `[resources]` cannot both be present. Without either,
//!   the VM gets [`DEFAULT_CPUS`] vCPU and [`DEFAULT_MEMORY_MIB`] MiB, so a
//!   file holding only `[spacecore] name` describes a runnable VM (booting
//!   vimana's initramfs with the default kernel).
//! - A key that both `[hardware]` and `[boot]` (or `[network]`) take may be
//!   set in only one of them.
//! - Root: `drive` if given, else `ref`, else vimana's initramfs. When both
//!   `drive` and `ref` are set (as in hypercore's README) the drive is used
//!   and a warning says `ref` is ignored.
//! - Sizes: a bare integer means MiB; strings take B, K/KB/KiB, M/MB/MiB and
//!   G/GB/GiB, all powers of 1024 (`"512MB"` is 512 MiB), case-insensitive,
//!   whole numbers only. Memory must be whole MiB, at least
//!   [`MIN_MEMORY_MIB`], and no more than the host's total memory.
//! - `cores`/`cpu`: 1 to [`MAX_CPUS`]; memory at most [`MAX_MEMORY_MIB`].
//! - The same rules, on the typed [`VmConfig`], are [`check`]: the daemon
//!   runs it on every VM description it receives (paths there must be
//!   absolute).
//! - Paths (`kernel`, `modules`, `drive`, volume `source`) are relative to the
//!   directory of the `hac.toml` and must exist unless
//!   [`ParseOptions::check_paths`] is off.
//! - Network mode defaults to `bridge` when an interface is given, else
//!   `user` when there are forwards, else `none`. Forwards are `HOST:GUEST`
//!   with an optional `/tcp` or `/udp`; they need a mode other than `none`.
//!   `address` needs `bridge`. `interface` outside bridge mode is a warning.
//! - Volume targets are absolute guest paths other than `/`, each used once.

mod context;
mod error;
mod network;
mod raw;
mod resources;
mod rules;
mod size;
mod syntax;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{HacDiagnostic, HacError};
pub use rules::{Broken, check};

use crate::model::VmConfig;
use error::Source;

/// vCPUs when neither `[hardware] cores` nor `[resources] cpu` is given.
pub const DEFAULT_CPUS: u32 = 1;
/// Guest memory (MiB) when no `memory` is given.
pub const DEFAULT_MEMORY_MIB: u64 = 512;
/// The smallest guest memory (MiB) accepted.
pub const MIN_MEMORY_MIB: u64 = 16;
/// The most vCPUs accepted.
pub const MAX_CPUS: u32 = 255;
/// The most guest memory (MiB) accepted whatever the host has: 16 TiB, so
/// a size in bytes always fits the hypervisors' 64-bit fields.
pub const MAX_MEMORY_MIB: u64 = 16 << 20;

/// What validation needs from the environment.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// The host's total memory in MiB (see [`host_memory_mib`]); `None`
    /// skips the "more than the host has" check.
    pub host_memory_mib: Option<u64>,
    /// Directory relative paths are resolved against; `None`: the directory
    /// of the `origin` given to [`parse`].
    pub base_dir: Option<PathBuf>,
    /// Whether `kernel`, `modules`, `drive` and volume sources must exist
    /// (off to check a file written for another machine).
    pub check_paths: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            host_memory_mib: None,
            base_dir: None,
            check_paths: true,
        }
    }
}

impl ParseOptions {
    /// Options for this host: its memory from `/proc/meminfo`, paths checked.
    pub fn for_host() -> Self {
        ParseOptions {
            host_memory_mib: host_memory_mib(),
            ..ParseOptions::default()
        }
    }
}

/// A valid `hac.toml`: the VM and the warnings worth showing.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub config: VmConfig,
    /// Located warnings (miette diagnostics with severity warning).
    pub warnings: Vec<HacDiagnostic>,
}

/// Parses and validates `text`; `origin` names it in diagnostics and, unless
/// [`ParseOptions::base_dir`] is set, its directory anchors relative paths.
pub fn parse(text: &str, origin: &Path, opts: &ParseOptions) -> Result<Parsed, HacError> {
    let src = Source {
        name: origin.display().to_string(),
        text: Arc::from(text),
    };
    let raw: raw::RawHac = toml::from_str(text).map_err(|e| syntax::from_toml(&src, &e))?;
    let base_dir = match &opts.base_dir {
        Some(dir) => dir.clone(),
        None => origin.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut cx = context::Cx {
        src: &src,
        opts,
        base_dir,
        warnings: Vec::new(),
    };
    let config = validate::validate(raw, &mut cx)?;
    Ok(Parsed {
        config,
        warnings: cx.warnings,
    })
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path, opts: &ParseOptions) -> Result<Parsed, HacError> {
    let bytes = std::fs::read(path).map_err(|source| HacError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(text, path, opts),
        Err(e) => {
            let src = Source {
                name: path.display().to_string(),
                text: Arc::from(String::from_utf8_lossy(&bytes).as_ref()),
            };
            // Offsets up to the first bad byte are the same in the lossy text.
            let at = e.valid_up_to();
            Err(HacDiagnostic::new(
                &src,
                "vimana::hac::encoding",
                at..at,
                format!("the file is not UTF-8 text (invalid byte at offset {at})"),
                "invalid UTF-8".to_string(),
                "save the file as UTF-8; hac.toml is a TOML text file".to_string(),
            )
            .into())
        }
    }
}

/// The host's total memory in MiB (`MemTotal` in `/proc/meminfo`), `None`
/// when it cannot be read.
pub fn host_memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_total_mib(&text)
}

fn meminfo_total_mib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total() {
        let text = "MemTotal:       16318412 kB\nMemFree:         1000 kB\n";
        assert_eq!(meminfo_total_mib(text), Some(15935));
        assert_eq!(meminfo_total_mib("MemFree: 1 kB\n"), None);
        assert_eq!(meminfo_total_mib("MemTotal: x kB\n"), None);
    }
}
