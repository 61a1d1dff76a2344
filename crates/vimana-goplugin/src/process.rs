//! Process bookkeeping for a plugin: our own child (reaped by a background
//! waiter task) or a foreign pid after reattach (probed via kill(0) and its
//! /proc start time, to detect pid reuse).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::watch;

/// Starts `cmd`'s child in a session of its own (`setsid`), so it is no
/// longer in the caller's process group and outlives the caller (a daemon
/// killed with `kill -9`, a Ctrl-C in the terminal that started it).
pub fn own_session(cmd: &mut tokio::process::Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent; it only makes the child a session and group leader.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
pub fn pid_start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Field 3 of /proc/<pid>/stat (R, S, D, Z, ...).
fn pid_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// Fields after `(comm)`: index 0 is field 3 (state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The executable of `pid`, if readable.
pub(crate) fn exe_path(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// True if `pid` exists, is not a zombie and (if given) started at `start`.
pub fn pid_alive(pid: u32, start: Option<u64>) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    if matches!(pid_state(pid), Some('Z' | 'X')) {
        return false;
    }
    match start {
        Some(s) => pid_start_time(pid) == Some(s),
        None => true,
    }
}

/// SIGKILLs the process group of `pid` (a plugin started with
/// [`own_session`] leads its own), if `pid` is still the process that
/// started at `start`. True when it was alive and signalled.
pub fn kill_session(pid: u32, start: Option<u64>) -> bool {
    if !pid_alive(pid, start) {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // The group may be gone already; the process itself is killed anyway.
    let _ = kill(Pid::from_raw(-raw), Signal::SIGKILL);
    sigkill(pid);
    true
}

fn sigkill(pid: u32) {
    if let Ok(raw) = i32::try_from(pid)
        && raw > 0
    {
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

/// "status 1" / "signal 9".
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => status.to_string(),
    }
}

/// A plugin process we can probe, wait for and kill.
#[derive(Clone, Debug)]
pub(crate) enum Proc {
    /// Our child; the receiver turns `Some(description)` once reaped.
    Child {
        pid: u32,
        exited: watch::Receiver<Option<String>>,
    },
    /// Someone else's process (reattach).
    Foreign { pid: u32, start_time: Option<u64> },
}

impl Proc {
    /// Takes ownership of `child`, reaping it in a background task.
    pub(crate) fn watch_child(mut child: tokio::process::Child, pid: u32) -> Self {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let desc = match child.wait().await {
                Ok(st) => describe_exit(st),
                Err(e) => format!("unknown status ({e})"),
            };
            let _ = tx.send(Some(desc));
        });
        Proc::Child { pid, exited: rx }
    }

    pub(crate) fn pid(&self) -> u32 {
        match self {
            Proc::Child { pid, .. } | Proc::Foreign { pid, .. } => *pid,
        }
    }

    /// Exit description once our child has been reaped.
    pub(crate) fn exit_status(&self) -> Option<String> {
        match self {
            Proc::Child { exited, .. } => exited.borrow().clone(),
            Proc::Foreign { .. } => None,
        }
    }

    pub(crate) fn is_alive(&self) -> bool {
        match self {
            Proc::Child { pid, exited } => exited.borrow().is_none() && pid_alive(*pid, None),
            Proc::Foreign { pid, start_time } => pid_alive(*pid, *start_time),
        }
    }

    pub(crate) async fn wait_exit(&self) {
        match self {
            Proc::Child { exited, .. } => {
                let mut rx = exited.clone();
                let _ = rx.wait_for(|s| s.is_some()).await;
            }
            Proc::Foreign { .. } => {
                while self.is_alive() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    pub(crate) fn kill(&self) {
        match self {
            Proc::Child { pid, exited } => {
                if exited.borrow().is_none() {
                    sigkill(*pid);
                }
            }
            Proc::Foreign { pid, start_time } => {
                if pid_alive(*pid, *start_time) {
                    sigkill(*pid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_probes() {
        let me = std::process::id();
        let st = pid_start_time(me);
        assert!(st.is_some());
        assert!(pid_alive(me, st));
        assert!(!pid_alive(me, st.map(|s| s + 1)));
        assert!(!pid_alive(0, None));
        assert_eq!(exe_path(me), std::env::current_exe().ok());
    }
}
