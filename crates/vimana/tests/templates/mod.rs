//! Helpers shared by the scaffold template tests (`template_*.rs`): the
//! generated projects are built and driven through the real `vimana plugin`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (two levels above this crate).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `$CARGO`, as cargo sets it for tests, else `cargo`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The `vimana` binary cargo built for this test target.
pub fn vimana() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vimana"))
}

/// Runs `vimana plugin <bin> <call>` with VIMANA_HOME and SC_STATE_DIR in
/// `home`; asserts success and returns stdout.
pub fn plugin_call(bin: &Path, call: &str, home: &Path) -> String {
    let out: Output = Command::new(vimana())
        .arg("plugin")
        .arg(bin)
        .arg(call)
        .env("VIMANA_HOME", home.join("vimana-home"))
        .env("SC_STATE_DIR", home.join("state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vimana plugin {} {call} failed ({}):\nstdout: {stdout}\nstderr: {}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The lifecycle every generated spacecore must get through.
pub fn exercise_lifecycle(bin: &Path, home: &Path) {
    assert_eq!(plugin_call(bin, "status", home).trim(), "stopped");
    assert_eq!(plugin_call(bin, "start", home).trim(), "started");
    assert_eq!(plugin_call(bin, "status", home).trim(), "running");
    // A second start finds the workload running.
    assert_eq!(plugin_call(bin, "start", home).trim(), "running");
    let logs = plugin_call(bin, "logs", home);
    assert!(logs.contains("started"), "logs: {logs:?}");
    assert_eq!(plugin_call(bin, "stop", home).trim(), "stopped");
    assert_eq!(plugin_call(bin, "status", home).trim(), "stopped");
    let logs = plugin_call(bin, "logs", home);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 2, "logs: {logs:?}");
    assert!(lines[0].ends_with(" started"), "logs: {logs:?}");
    assert!(lines[1].ends_with(" stopped"), "logs: {logs:?}");
}
