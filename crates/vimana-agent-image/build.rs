//! Builds the static guest agent with `scripts/build-agent.sh` (gnu +
//! crt-static, its own target directory `target/agent`) and hands its path
//! to `lib.rs` for `include_bytes!`. The agent is PID 1 in a guest where no
//! dynamic loader exists, so the `vimana-agent` a plain `cargo build` links
//! dynamically next to `vimana` cannot be used; this one can.
//!
//! `VIMANA_EMBED_AGENT=0` skips the build (the daemon then needs `[vm]
//! agent`). A failed build is a warning, not an error: only microVMs need
//! the agent, and the driver says so when one is asked for.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embedded_agent)");
    println!("cargo::rerun-if-env-changed=VIMANA_EMBED_AGENT");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let repo = manifest.join("../..");
    for input in [
        "scripts/build-agent.sh",
        "crates/vimana-agent/src",
        "crates/vimana-agent/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo::rerun-if-changed={}", repo.join(input).display());
    }
    if std::env::var_os("VIMANA_EMBED_AGENT").is_some_and(|v| v == "0") {
        return;
    }
    match build(&repo) {
        Ok(agent) => {
            println!("cargo::rustc-cfg=embedded_agent");
            println!("cargo::rustc-env=VIMANA_EMBEDDED_AGENT={}", agent.display());
        }
        Err(why) => println!(
            "cargo::warning=the static guest agent was not embedded ({why}); microVMs will need \
             `[vm] agent` (scripts/build-agent.sh)"
        ),
    }
}

fn build(repo: &std::path::Path) -> Result<PathBuf, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("scripts/build-agent.sh"));
    // The nested cargo must not join the outer build's jobserver (it would
    // wait for tokens the outer build holds while it waits for us), nor
    // inherit its flags, wrappers (clippy) or target directory.
    for var in [
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PKG_NAME",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "RUSTC",
        "RUSTDOC",
    ] {
        cmd.env_remove(var);
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        // The same cargo as the outer build, first on PATH for the script.
        if let Some(dir) = PathBuf::from(cargo).parent() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![dir.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(dirs) {
                cmd.env("PATH", joined);
            }
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run scripts/build-agent.sh: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "scripts/build-agent.sh failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = PathBuf::from(path.lines().last().unwrap_or_default());
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "scripts/build-agent.sh printed no agent path ({})",
            path.display()
        ))
    }
}
