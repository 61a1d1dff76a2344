//! Carrying out a [`LaunchPlan`]: write the files, remove stale sockets,
//! start each process in its own session (a daemon `kill -9` leaves the VM
//! running) with its output on files, wait for the sockets it creates, then
//! make the API calls. On any failure the processes started so far are
//! killed, so a failed launch leaves nothing behind.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::{LaunchPlan, ProcessPlan, ProviderError, api_client};

/// Limits for [`execute_plan`].
#[derive(Clone, Copy, Debug)]
pub struct ExecuteOptions {
    /// How long each process may take to create its sockets.
    pub socket_timeout: Duration,
    /// How long each API call may take.
    pub api_timeout: Duration,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self {
            socket_timeout: Duration::from_secs(10),
            api_timeout: Duration::from_secs(10),
        }
    }
}

/// A started process. The driver watches `pid` (and may await `child`,
/// which is never killed on drop).
#[derive(Debug)]
pub struct Spawned {
    pub name: String,
    pub pid: u32,
    pub child: Child,
}

/// Runs `plan`; returns the processes in plan order (the VMM last).
pub async fn execute_plan(
    plan: &LaunchPlan,
    opts: &ExecuteOptions,
) -> Result<Vec<Spawned>, ProviderError> {
    execute_plan_with(plan, opts, &mut |_| {}).await
}

/// [`execute_plan`], calling `spawned` with the processes started so far
/// right after each one starts, before its sockets are waited for: the
/// driver records them there, so a daemon killed during the waits leaves
/// processes the next daemon can find (and adopt or kill).
pub async fn execute_plan_with(
    plan: &LaunchPlan,
    opts: &ExecuteOptions,
    spawned: &mut (dyn FnMut(&[Spawned]) + Send),
) -> Result<Vec<Spawned>, ProviderError> {
    let mut started = Vec::with_capacity(plan.processes.len());
    match run(plan, opts, &mut started, spawned).await {
        Ok(()) => Ok(started),
        Err(e) => {
            for s in &mut started {
                tracing::debug!(process = %s.name, pid = s.pid, "killing after failed launch");
                let _ = s.child.start_kill();
                let _ = s.child.wait().await;
            }
            Err(e)
        }
    }
}

async fn run(
    plan: &LaunchPlan,
    opts: &ExecuteOptions,
    started: &mut Vec<Spawned>,
    on_spawn: &mut (dyn FnMut(&[Spawned]) + Send),
) -> Result<(), ProviderError> {
    for (path, bytes) in &plan.files {
        write_file(path, bytes)?;
    }
    let sockets = plan
        .processes
        .iter()
        .flat_map(|p| p.wait_for.iter())
        .chain(plan.remove_first.iter());
    for path in sockets {
        remove_stale(path)?;
    }
    for p in &plan.processes {
        started.push(spawn(p)?);
        on_spawn(started);
        let Some(spawned) = started.last_mut() else {
            continue;
        };
        wait_for_sockets(p, spawned, opts.socket_timeout).await?;
    }
    if let Some(socket) = &plan.api_socket {
        for call in &plan.api_calls {
            api_client::call(socket, call, opts.api_timeout).await?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ProviderError> {
    let err = |source| ProviderError::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, bytes).map_err(err)
}

fn remove_stale(path: &Path) -> Result<(), ProviderError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ProviderError::RemoveStale {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn spawn(p: &ProcessPlan) -> Result<Spawned, ProviderError> {
    let open = |path: &Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| ProviderError::OpenOutput {
                process: p.name.clone(),
                path: path.to_path_buf(),
                source,
            })
    };
    let (stdout, stderr) = (open(&p.stdout)?, open(&p.stderr)?);
    let Some((program, args)) = p.argv.split_first() else {
        return Err(ProviderError::InvalidSpec {
            message: format!("the plan for {} has an empty argv", p.name),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(false);
    if let Some(cwd) = &p.cwd {
        cmd.current_dir(cwd);
    }
    vimana_goplugin::own_session(&mut cmd);
    let spawn_err = |source| ProviderError::Spawn {
        process: p.name.clone(),
        binary: program.clone(),
        source,
    };
    let child = cmd.spawn().map_err(spawn_err)?;
    let pid = child
        .id()
        .ok_or_else(|| spawn_err(std::io::Error::other("exited before its pid could be read")))?;
    tracing::debug!(process = %p.name, pid, "started");
    Ok(Spawned {
        name: p.name.clone(),
        pid,
        child,
    })
}

async fn wait_for_sockets(
    p: &ProcessPlan,
    s: &mut Spawned,
    limit: Duration,
) -> Result<(), ProviderError> {
    let start = Instant::now();
    for socket in &p.wait_for {
        loop {
            if is_socket(socket) {
                break;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(ProviderError::ExitedEarly {
                    process: p.name.clone(),
                    pid: s.pid,
                    status: describe(status),
                    socket: socket.clone(),
                    stderr_tail: tail(&p.stderr),
                });
            }
            if start.elapsed() >= limit {
                return Err(ProviderError::SocketTimeout {
                    process: p.name.clone(),
                    pid: s.pid,
                    socket: socket.clone(),
                    waited: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "exited".into(),
    }
}

/// The last lines of a process's output file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
