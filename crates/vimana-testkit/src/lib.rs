//! Test-only helpers shared by every crate's tests: where the repository
//! is, how to run its asset scripts, and the one rule for a missing
//! prerequisite (skip with a printed reason on a developer's machine, fail
//! under `CI`).
//!
//! Tests find assets only through `scripts/` (which fetch or build them
//! into `target/`), never through a path that exists on one machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod vm;

pub use vm::{VmAssets, static_agent, vm_assets, vm_prerequisites};

/// The repository root.
pub fn repo() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.join("../.."))
}

/// Whether this run is CI's (`CI` set): a missing prerequisite fails there.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// A missing prerequisite: panics under `CI`, otherwise prints why the
/// test is skipped and returns `None`.
pub fn unavailable<T>(reason: impl AsRef<str>) -> Option<T> {
    let reason = reason.as_ref();
    assert!(!in_ci(), "test prerequisite missing under CI: {reason}");
    eprintln!("SKIP: {reason}");
    None
}

/// Unwraps a prerequisite lookup with [`unavailable`]'s rule.
pub fn require<T>(found: Result<T, String>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(reason) => unavailable(reason),
    }
}

/// Runs `scripts/<name>` with bash and returns the lines it printed on
/// stdout, or why it failed (with its stderr).
pub fn script(name: &str, args: &[&str]) -> Result<Vec<String>, String> {
    let path = repo().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The value of the first `KEY=value` line of a script's output.
pub fn field(lines: &[String], key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
}

/// A script's result computed once per test process (scripts are
/// idempotent but not free: each run re-checks its outputs).
pub(crate) fn once<T: Clone>(
    cell: &'static OnceLock<Result<T, String>>,
    make: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    cell.get_or_init(make).clone()
}

/// `true` when `bin` answers `--version` (it is installed and runs).
pub fn runs(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The first executable named `name` on `PATH` or in `~/.cargo/bin`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}
