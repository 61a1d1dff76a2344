//! An example spacecore written with the vimana SDK.
//!
//! Its workload is a real child process: a shell loop that appends a
//! counter to `counter.log` in the state directory (`SC_STATE_DIR`, default
//! `$TMPDIR/spacecore-counter-<plugin_id>`). The child's pid is kept in
//! `counter.pid`, so a relaunched plugin finds the running workload again:
//! `status` says `running` and the host does not start a second one.
//!
//! Run it by hand: `vimana plugin ./target/debug/spacecore-counter start`.

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use vimana_spacecore::{Spacecore, SpacecoreError};

struct Counter;

fn state_dir(id: &str) -> PathBuf {
    match std::env::var_os("SC_STATE_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!(
            "spacecore-counter-{}",
            if id.is_empty() { "default" } else { id }
        )),
    }
}

fn running_pid(dir: &std::path::Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("counter.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    (alive && !zombie).then_some(pid)
}

#[async_trait]
impl Spacecore for Counter {
    async fn start(&self, id: &str) -> Result<String, SpacecoreError> {
        let dir = state_dir(id);
        if running_pid(&dir).is_some() {
            return Ok("running".into());
        }
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("counter.log");
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("i=0; while :; do echo \"count $i\" >> \"$1\"; i=$((i+1)); sleep 0.2; done")
            .arg("counter")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let pid = child.id().ok_or("counter exited at once")?;
        std::fs::write(dir.join("counter.pid"), pid.to_string())?;
        eprintln!("started counter pid {pid} writing {}", log.display());
        Ok("started".into())
    }

    async fn stop(&self, id: &str) -> Result<String, SpacecoreError> {
        let dir = state_dir(id);
        if let Some(pid) = running_pid(&dir) {
            // SAFETY: plain signal to the counter's process group.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
        }
        let _ = std::fs::remove_file(dir.join("counter.pid"));
        Ok("stopped".into())
    }

    async fn status(&self, id: &str) -> Result<String, SpacecoreError> {
        Ok(if running_pid(&state_dir(id)).is_some() {
            "running"
        } else {
            "stopped"
        }
        .into())
    }

    async fn logs(&self, id: &str) -> Result<Vec<String>, SpacecoreError> {
        let text = std::fs::read_to_string(state_dir(id).join("counter.log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        Ok(lines[lines.len().saturating_sub(20)..].to_vec())
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = vimana_spacecore::serve(Counter).await {
        eprintln!("spacecore-counter: {e}");
        std::process::exit(1);
    }
}
