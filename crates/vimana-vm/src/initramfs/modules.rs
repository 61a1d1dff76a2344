//! Kernel module dependency resolution without `modules.dep`.
//!
//! A distribution kernel package (Debian's `linux-image-*`) ships the
//! module files but not `modules.dep`, which `depmod` writes at install
//! time. The dependencies are read instead from each module's `.modinfo`
//! ELF section (`depends=a,b`), transitively, and the result is ordered so
//! that every module comes after the modules it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::InitramfsError;
use super::elf::{Elf, parse_modinfo};

/// The modules a vimana guest needs from a modular kernel: the virtio-mmio
/// transport (the only bus of `-M microvm`), block, network, vsock (the
/// agent's channel) and console devices. Their dependencies (`virtio`,
/// `virtio_ring`, `net_failover`, `vsock`, …) are added by
/// [`resolve_modules`].
pub const DEFAULT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "vmw_vsock_virtio_transport",
    "virtio_console",
];

/// One module to put into the guest and load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFile {
    /// Module name, `-` normalised to `_` (as in `/proc/modules`).
    pub name: String,
    /// The file on the host.
    pub path: PathBuf,
    /// The path below the modules directory (`kernel/drivers/…/x.ko`).
    pub relative: PathBuf,
    /// Direct dependencies, from `.modinfo` (built-in ones included).
    pub depends: Vec<String>,
    /// `vermagic=` of the module (its kernel release comes first).
    pub vermagic: Option<String>,
}

impl ModuleFile {
    /// Where the (uncompressed) module lives in the guest, for a modules
    /// directory named `release`: `/lib/modules/<release>/kernel/….ko`.
    pub fn guest_path(&self, release: &str) -> String {
        let rel = self.relative.to_string_lossy();
        let rel = rel.strip_suffix(".gz").unwrap_or(&rel);
        format!("/lib/modules/{release}/{rel}")
    }

    /// The module's bytes, decompressed when it is a `.ko.gz`.
    pub fn read_plain(&self) -> Result<Vec<u8>, InitramfsError> {
        read_module(&self.path)
    }
}

/// `-` and `_` are the same in module names; the kernel uses `_`.
pub(crate) fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// The module name of a file name (`virtio-blk.ko.gz` → `virtio_blk`), or
/// `None` for files that are not modules.
fn module_stem(file_name: &str) -> Option<String> {
    [".ko", ".ko.gz", ".ko.xz", ".ko.zst"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .map(normalize)
}

fn read_module(path: &Path) -> Result<Vec<u8>, InitramfsError> {
    let raw = fs::read(path).map_err(|e| InitramfsError::io("read module", path, e))?;
    let name = path.to_string_lossy();
    if name.ends_with(".ko.xz") || name.ends_with(".ko.zst") {
        return Err(InitramfsError::BadModule {
            path: path.to_owned(),
            reason: "xz/zstd-compressed modules are not supported; use a kernel with \
                     uncompressed (or gzip) modules"
                .into(),
        });
    }
    if !name.ends_with(".gz") {
        return Ok(raw);
    }
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut plain)
        .map_err(|e| InitramfsError::io("decompress module", path, e))?;
    Ok(plain)
}

/// Every module file below `dir`, by name; the first path in sorted order
/// wins when a name appears twice.
fn index_modules(dir: &Path, index: &mut BTreeMap<String, PathBuf>) -> Result<(), InitramfsError> {
    let entries = fs::read_dir(dir).map_err(|e| InitramfsError::io("read directory", dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| InitramfsError::io("read directory", dir, e))?;
        let kind = entry
            .file_type()
            .map_err(|e| InitramfsError::io("stat", &entry.path(), e))?;
        paths.push((entry.path(), kind.is_dir()));
    }
    paths.sort();
    for (path, is_dir) in paths {
        if is_dir {
            index_modules(&path, index)?;
        } else if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(module_stem)
        {
            index.entry(name).or_insert(path);
        }
    }
    Ok(())
}

/// Names listed in `<modules_dir>/modules.builtin` (empty if absent).
fn builtin_modules(modules_dir: &Path) -> Result<BTreeSet<String>, InitramfsError> {
    let path = modules_dir.join("modules.builtin");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(InitramfsError::io("read", &path, e)),
    };
    Ok(text
        .lines()
        .filter_map(|line| line.rsplit('/').next())
        .filter_map(module_stem)
        .collect())
}

struct Resolver<'a> {
    modules_dir: &'a Path,
    index: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
    done: BTreeSet<String>,
    stack: Vec<String>,
    order: Vec<ModuleFile>,
}

impl Resolver<'_> {
    fn visit(&mut self, name: &str, needed_by: Option<&str>) -> Result<(), InitramfsError> {
        if self.done.contains(name) {
            return Ok(());
        }
        if let Some(pos) = self.stack.iter().position(|n| n == name) {
            let mut cycle = self.stack[pos..].to_vec();
            cycle.push(name.to_owned());
            return Err(InitramfsError::DependencyCycle {
                cycle: cycle.join(" -> "),
            });
        }
        if self.builtin.contains(name) {
            self.done.insert(name.to_owned());
            return Ok(());
        }
        let Some(path) = self.index.get(name).cloned() else {
            return Err(InitramfsError::ModuleNotFound {
                name: name.to_owned(),
                dir: self.modules_dir.to_owned(),
                needed_by: needed_by
                    .map(|n| format!(" (needed by `{n}`)"))
                    .unwrap_or_default(),
            });
        };
        let data = read_module(&path)?;
        let bad = |reason: &str| InitramfsError::BadModule {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let elf = Elf::parse(&data).map_err(bad)?;
        let section = elf.section(".modinfo").map_err(bad)?;
        let info = parse_modinfo(section.ok_or_else(|| bad("no .modinfo section"))?);
        self.stack.push(name.to_owned());
        for dep in &info.depends {
            self.visit(dep, Some(name))?;
        }
        self.stack.pop();
        let relative = path
            .strip_prefix(self.modules_dir)
            .unwrap_or(&path)
            .to_owned();
        self.done.insert(name.to_owned());
        self.order.push(ModuleFile {
            name: name.to_owned(),
            path,
            relative,
            depends: info.depends,
            vermagic: info.vermagic,
        });
        Ok(())
    }
}

/// Finds the `wanted` modules (by name; `-` and `_` are equivalent)
/// anywhere under `<modules_dir>/kernel`, adds their dependencies
/// transitively, and returns them in load order (dependencies first).
/// Names built into the kernel (`<modules_dir>/modules.builtin`) are
/// skipped; a name that is neither a module file nor built in is an error
/// naming it and the directory.
pub fn resolve_modules(
    modules_dir: &Path,
    wanted: &[&str],
) -> Result<Vec<ModuleFile>, InitramfsError> {
    let mut index = BTreeMap::new();
    index_modules(&modules_dir.join("kernel"), &mut index)?;
    let mut resolver = Resolver {
        modules_dir,
        index,
        builtin: builtin_modules(modules_dir)?,
        done: BTreeSet::new(),
        stack: Vec::new(),
        order: Vec::new(),
    };
    for name in wanted {
        resolver.visit(&normalize(name), None)?;
    }
    Ok(resolver.order)
}
