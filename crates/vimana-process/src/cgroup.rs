//! cgroup v2 limits for process workloads: `<root>/vimana/<name>` with
//! `cpu.max` and `memory.max`, the `cpu`/`memory` controllers enabled in the
//! parents' `cgroup.subtree_control`, and the process moved in through
//! `cgroup.procs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use vimana_api::Resources;

/// The `cpu.max` period, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, in microseconds.
pub const CPU_MIN_QUOTA_US: u64 = 1_000;
/// The smallest memory limit a spec may ask for.
pub const MIN_MEMORY_BYTES: u64 = 4 * 1024 * 1024;
/// The directory below the cgroup root that holds all workloads.
pub const PARENT: &str = "vimana";

/// The few file operations cgroup management needs.
pub trait CgroupFs: Send + Sync {
    /// The cgroup v2 mount (normally `/sys/fs/cgroup`).
    fn root(&self) -> &Path;
    fn exists(&self, path: &Path) -> bool;
    fn read(&self, path: &Path) -> io::Result<String>;
    fn write(&self, path: &Path, contents: &str) -> io::Result<()>;
    /// Creates a directory; succeeds if it already exists.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    fn rmdir(&self, path: &Path) -> io::Result<()>;
}

/// Why limits could not be applied. Never fatal: the process runs without.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "{} is not a cgroup v2 hierarchy (it has no cgroup.controllers); mount cgroup2 there (systemd.unified_cgroup_hierarchy=1) to enable limits",
        root.display()
    )]
    NotV2 { root: PathBuf },
    #[error(
        "the {controller} controller is not available in {} (cgroup.controllers: {available:?}); enable it on the host to enable this limit",
        root.display()
    )]
    MissingController {
        root: PathBuf,
        controller: &'static str,
        available: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// The values written to a workload's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `cpu.max`: `"<quota> <period>"`.
    pub cpu_max: Option<String>,
    /// `memory.max`: bytes.
    pub memory_max: Option<String>,
}

impl Limits {
    /// The limits a spec asks for; `None` when it asks for none.
    pub fn from_resources(r: &Resources) -> Option<Self> {
        let l = Limits {
            cpu_max: r.cpu.map(cpu_max),
            memory_max: r.memory_bytes.map(|m| m.to_string()),
        };
        (l.cpu_max.is_some() || l.memory_max.is_some()).then_some(l)
    }

    fn controllers(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.cpu_max.is_some() {
            c.push("cpu");
        }
        if self.memory_max.is_some() {
            c.push("memory");
        }
        c
    }
}

/// `cpu.max` for a limit in cores: quota = cores × period, at least 1 ms.
pub fn cpu_max(cores: f64) -> String {
    let quota = (cores * CPU_PERIOD_US as f64).round();
    let quota = if quota.is_finite() && quota > CPU_MIN_QUOTA_US as f64 {
        quota as u64
    } else {
        CPU_MIN_QUOTA_US
    };
    format!("{quota} {CPU_PERIOD_US}")
}

/// The cgroup of workload `name`.
pub fn cgroup_path(fs: &dyn CgroupFs, name: &str) -> PathBuf {
    fs.root().join(PARENT).join(name)
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the cgroup of `name`, writes `limits` and moves `pid` in.
/// Returns the cgroup's path.
pub fn apply(
    fs: &dyn CgroupFs,
    name: &str,
    pid: u32,
    limits: &Limits,
) -> Result<PathBuf, CgroupError> {
    let root = fs.root().to_path_buf();
    let controllers_file = root.join("cgroup.controllers");
    if !fs.exists(&controllers_file) {
        return Err(CgroupError::NotV2 { root });
    }
    let available = fs
        .read(&controllers_file)
        .map_err(io_err("read", &controllers_file))?;
    let wanted = limits.controllers();
    for c in &wanted {
        if !available.split_whitespace().any(|a| a == *c) {
            return Err(CgroupError::MissingController {
                root,
                controller: c,
                available: available.trim().to_string(),
            });
        }
    }
    let enable = wanted
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let parent = root.join(PARENT);
    fs.mkdir(&parent).map_err(io_err("create", &parent))?;
    for dir in [&root, &parent] {
        let f = dir.join("cgroup.subtree_control");
        fs.write(&f, &enable).map_err(io_err("write", &f))?;
    }
    let leaf = parent.join(name);
    fs.mkdir(&leaf).map_err(io_err("create", &leaf))?;
    for (file, value) in [
        ("cpu.max", &limits.cpu_max),
        ("memory.max", &limits.memory_max),
    ] {
        if let Some(v) = value {
            let f = leaf.join(file);
            fs.write(&f, v).map_err(io_err("write", &f))?;
        }
    }
    let procs = leaf.join("cgroup.procs");
    fs.write(&procs, &pid.to_string())
        .map_err(io_err("write", &procs))?;
    Ok(leaf)
}

/// The host's cgroup filesystem.
#[derive(Clone, Debug)]
pub struct RealCgroupFs {
    root: PathBuf,
}

impl Default for RealCgroupFs {
    fn default() -> Self {
        Self::new("/sys/fs/cgroup")
    }
}

impl RealCgroupFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl CgroupFs for RealCgroupFs {
    fn root(&self) -> &Path {
        &self.root
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn write(&self, path: &Path, contents: &str) -> io::Result<()> {
        std::fs::write(path, contents)
    }
    fn mkdir(&self, path: &Path) -> io::Result<()> {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
}

/// An in-memory cgroup filesystem that records every write, for tests.
#[derive(Debug, Default)]
pub struct MemCgroupFs {
    root: PathBuf,
    files: Mutex<BTreeMap<PathBuf, String>>,
    dirs: Mutex<BTreeSet<PathBuf>>,
    writes: Mutex<Vec<(PathBuf, String)>>,
}

impl MemCgroupFs {
    /// A cgroup v2 root at `root` offering `controllers` (e.g. `"cpu memory"`).
    pub fn v2(root: impl Into<PathBuf>, controllers: &str) -> Self {
        let fs = Self::v1(root);
        fs.put(&fs.root.join("cgroup.controllers"), controllers);
        fs
    }

    /// A root without `cgroup.controllers` (cgroup v1 or no cgroups).
    pub fn v1(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let fs = Self {
            root: root.clone(),
            ..Self::default()
        };
        lock(&fs.dirs).insert(root);
        fs
    }

    fn put(&self, path: &Path, contents: &str) {
        lock(&self.files).insert(path.to_path_buf(), contents.to_string());
    }

    /// Every write so far, oldest first.
    pub fn writes(&self) -> Vec<(PathBuf, String)> {
        lock(&self.writes).clone()
    }

    /// The current contents of a file.
    pub fn file(&self, path: &Path) -> Option<String> {
        lock(&self.files).get(path).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CgroupFs for MemCgroupFs {
    fn root(&self) -> &Path {
        &self.root
    }
    fn exists(&self, path: &Path) -> bool {
        lock(&self.files).contains_key(path) || lock(&self.dirs).contains(path)
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        self.file(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn write(&self, path: &Path, contents: &str) -> io::Result<()> {
        let parent_exists = path.parent().is_some_and(|p| lock(&self.dirs).contains(p));
        if !parent_exists {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        lock(&self.writes).push((path.to_path_buf(), contents.to_string()));
        self.put(path, contents);
        Ok(())
    }
    fn mkdir(&self, path: &Path) -> io::Result<()> {
        let parent_exists = path.parent().is_some_and(|p| lock(&self.dirs).contains(p));
        if !parent_exists {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        lock(&self.dirs).insert(path.to_path_buf());
        Ok(())
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        lock(&self.dirs).remove(path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn res(cpu: Option<f64>, memory_bytes: Option<u64>) -> Resources {
        Resources { cpu, memory_bytes }
    }

    #[test]
    fn cpu_max_is_cores_times_the_period_with_a_floor() {
        assert_eq!(cpu_max(0.5), "50000 100000");
        assert_eq!(cpu_max(2.0), "200000 100000");
        assert_eq!(cpu_max(1.234567), "123457 100000");
        assert_eq!(cpu_max(0.001), "1000 100000");
        assert_eq!(cpu_max(0.0000001), "1000 100000");
    }

    #[test]
    fn limits_from_resources() {
        assert_eq!(Limits::from_resources(&res(None, None)), None);
        let l = Limits::from_resources(&res(Some(1.5), Some(64 << 20))).unwrap();
        assert_eq!(l.cpu_max.as_deref(), Some("150000 100000"));
        assert_eq!(l.memory_max.as_deref(), Some("67108864"));
        let l = Limits::from_resources(&res(None, Some(8 << 20))).unwrap();
        assert_eq!(l.cpu_max, None);
        assert_eq!(l.controllers(), ["memory"]);
    }

    #[test]
    fn apply_enables_controllers_writes_limits_and_moves_the_pid() {
        let fs = MemCgroupFs::v2("/cg", "cpuset cpu io memory pids");
        let l = Limits::from_resources(&res(Some(0.25), Some(32 << 20))).unwrap();
        let path = apply(&fs, "node-1", 4242, &l).unwrap();
        assert_eq!(path, Path::new("/cg/vimana/node-1"));
        let w: Vec<(String, String)> = fs
            .writes()
            .into_iter()
            .map(|(p, v)| (p.display().to_string(), v))
            .collect();
        let expected = [
            ("/cg/cgroup.subtree_control", "+cpu +memory"),
            ("/cg/vimana/cgroup.subtree_control", "+cpu +memory"),
            ("/cg/vimana/node-1/cpu.max", "25000 100000"),
            ("/cg/vimana/node-1/memory.max", "33554432"),
            ("/cg/vimana/node-1/cgroup.procs", "4242"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(w, expected);
        // A relaunch reuses the existing cgroup.
        apply(&fs, "node-1", 4243, &l).unwrap();
        assert_eq!(
            fs.file(Path::new("/cg/vimana/node-1/cgroup.procs"))
                .as_deref(),
            Some("4243")
        );
    }

    #[test]
    fn only_the_needed_controllers_are_enabled() {
        let fs = MemCgroupFs::v2("/cg", "cpu");
        let l = Limits::from_resources(&res(Some(1.0), None)).unwrap();
        apply(&fs, "w", 1, &l).unwrap();
        assert_eq!(
            fs.file(Path::new("/cg/cgroup.subtree_control")).as_deref(),
            Some("+cpu")
        );
        assert_eq!(fs.file(Path::new("/cg/vimana/w/memory.max")), None);
    }

    #[test]
    fn falls_back_without_cgroup_v2_or_a_controller() {
        let l = Limits::from_resources(&res(Some(1.0), Some(8 << 20))).unwrap();
        let v1 = MemCgroupFs::v1("/sys/fs/cgroup");
        let e = apply(&v1, "w", 1, &l).unwrap_err();
        assert!(matches!(e, CgroupError::NotV2 { .. }), "{e}");
        assert!(e.to_string().contains("not a cgroup v2 hierarchy"), "{e}");
        assert!(v1.writes().is_empty());
        let no_mem = MemCgroupFs::v2("/cg", "cpu pids");
        let e = apply(&no_mem, "w", 1, &l).unwrap_err();
        assert!(e.to_string().contains("memory controller"), "{e}");
        assert!(no_mem.writes().is_empty());
    }

    #[test]
    fn real_fs_on_a_plain_directory_is_not_v2() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealCgroupFs::new(dir.path());
        let l = Limits::from_resources(&res(Some(1.0), None)).unwrap();
        assert!(matches!(
            apply(&fs, "w", 1, &l),
            Err(CgroupError::NotV2 { .. })
        ));
    }
}
