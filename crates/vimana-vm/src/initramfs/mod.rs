//! The guest root filesystem vimana assembles when a VM has no disk root
//! ([`RootFs::Initramfs`](crate::RootFs::Initramfs)): a gzip'd newc cpio
//! archive holding a static busybox, the kernel modules the guest needs
//! (with their dependencies, in load order), the agent and a generated
//! `/init`.
//!
//! - [`resolve_modules`]: module dependency resolution from `.modinfo`
//!   (distribution kernel packages ship no `modules.dep`).
//! - [`init_script`]: the `/init` text and its console markers.
//! - [`build`] / [`build_cached`]: deterministic archive bytes, written
//!   atomically; the cache names files by the sha256 of their contents.

mod cache;
pub(crate) use cache::write_atomically;
mod cpio;
mod elf;
mod init_script;
mod modules;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

pub use cache::{BuildInfo, FORMAT_VERSION, build, build_cached};
pub use elf::not_static;
pub use init_script::{
    AGENT_GUEST_PATH, MODULE_FAILED_PREFIX, MODULES_OK_MARKER, READY_MARKER, init_script,
};
pub use modules::{DEFAULT_MODULES, ModuleFile, resolve_modules};

/// The directories every guest root has.
const DIRS: &[&str] = &[
    "bin",
    "dev",
    "etc",
    "lib/modules",
    "proc",
    "root",
    "run",
    "sbin",
    "sys",
    "tmp",
    "usr/bin",
    "usr/sbin",
];

/// What goes into an initramfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitramfsSpec {
    /// A statically linked busybox (Debian: `busybox-static`,
    /// `/bin/busybox`).
    pub busybox: PathBuf,
    /// The agent binary, put at [`AGENT_GUEST_PATH`] and exec'd by `/init`.
    /// `None`: `/init` starts a console shell instead.
    pub agent: Option<PathBuf>,
    /// The kernel's `lib/modules/<release>` directory.
    pub modules_dir: Option<PathBuf>,
    /// Modules to load (dependencies are added); needs `modules_dir`.
    pub modules: Vec<String>,
    /// More files: (host path, absolute guest path, permission bits).
    pub extra_files: Vec<(PathBuf, String, u32)>,
}

impl InitramfsSpec {
    /// Busybox only: no agent, no modules, no extra files.
    pub fn new(busybox: impl Into<PathBuf>) -> Self {
        InitramfsSpec {
            busybox: busybox.into(),
            agent: None,
            modules_dir: None,
            modules: Vec::new(),
            extra_files: Vec::new(),
        }
    }

    /// Loads [`DEFAULT_MODULES`] from `modules_dir`.
    pub fn with_default_modules(mut self, modules_dir: impl Into<PathBuf>) -> Self {
        self.modules_dir = Some(modules_dir.into());
        self.modules = DEFAULT_MODULES.iter().map(|m| (*m).to_owned()).collect();
        self
    }
}

/// Why an initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("busybox not found at {path}; install it with `apt-get install busybox-static`")]
    BusyboxMissing { path: PathBuf },
    #[error(
        "{path} is not a static busybox ({reason}), so it cannot run in the guest; \
         install one with `apt-get install busybox-static`"
    )]
    BusyboxNotStatic { path: PathBuf, reason: String },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "kernel module `{name}`{needed_by} is neither a module file under {dir}/kernel \
         nor built into the kernel ({dir}/modules.builtin)"
    )]
    ModuleNotFound {
        name: String,
        dir: PathBuf,
        needed_by: String,
    },
    #[error("{path} is not a usable kernel module: {reason}")]
    BadModule { path: PathBuf, reason: String },
    #[error("kernel module dependency cycle: {cycle}")]
    DependencyCycle { cycle: String },
    #[error("kernel modules {modules:?} requested but no modules directory given")]
    NoModulesDir { modules: Vec<String> },
    #[error("guest path `{path}` {reason}")]
    GuestPath { path: String, reason: &'static str },
}

impl InitramfsError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        InitramfsError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

fn read_busybox(path: &Path) -> Result<Vec<u8>, InitramfsError> {
    let data = fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InitramfsError::BusyboxMissing {
            path: path.to_owned(),
        },
        _ => InitramfsError::io("read", path, e),
    })?;
    let not_static = |reason: &str| InitramfsError::BusyboxNotStatic {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    match elf::not_static(&data) {
        Some(why) => Err(not_static(why)),
        None => Ok(data),
    }
}

/// The assembled (uncompressed) archive and what went into it.
pub(crate) struct Assembled {
    pub archive: cpio::Archive,
    pub modules: Vec<ModuleFile>,
    pub kernel_release: Option<String>,
}

/// Reads every input and lays out the archive.
pub(crate) fn assemble(spec: &InitramfsSpec) -> Result<Assembled, InitramfsError> {
    let mut archive = cpio::Archive::default();
    for dir in DIRS {
        archive.dir(dir, 0o755)?;
    }
    archive.dir("root", 0o700)?;
    archive.dir("tmp", 0o1777)?;
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    archive.char_dev("dev/console", 0o600, 5, 1)?;
    archive.file("bin/busybox", 0o755, read_busybox(&spec.busybox)?)?;
    for applet in init_script::APPLETS {
        archive.symlink(&format!("bin/{applet}"), "busybox")?;
    }

    let (modules, kernel_release) = match (&spec.modules_dir, spec.modules.is_empty()) {
        (_, true) => (Vec::new(), None),
        (None, false) => {
            return Err(InitramfsError::NoModulesDir {
                modules: spec.modules.clone(),
            });
        }
        (Some(dir), false) => {
            let wanted: Vec<&str> = spec.modules.iter().map(String::as_str).collect();
            let release = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "vimana".to_owned());
            (resolve_modules(dir, &wanted)?, Some(release))
        }
    };
    let mut module_paths = Vec::new();
    if let Some(release) = &kernel_release {
        for module in &modules {
            let guest = module.guest_path(release);
            archive.file(&guest, 0o644, module.read_plain()?)?;
            module_paths.push(guest);
        }
    }

    if let Some(agent) = &spec.agent {
        let data = fs::read(agent).map_err(|e| InitramfsError::io("read agent", agent, e))?;
        archive.file(AGENT_GUEST_PATH, 0o755, data)?;
    }
    for (host, guest, mode) in &spec.extra_files {
        if !guest.starts_with('/') {
            return Err(InitramfsError::GuestPath {
                path: guest.clone(),
                reason: "must be absolute",
            });
        }
        let data = fs::read(host).map_err(|e| InitramfsError::io("read", host, e))?;
        archive.file(guest, *mode, data)?;
    }
    let init = init_script(&module_paths, spec.agent.is_some());
    archive.file("init", 0o755, init.into_bytes())?;
    Ok(Assembled {
        archive,
        modules,
        kernel_release,
    })
}
