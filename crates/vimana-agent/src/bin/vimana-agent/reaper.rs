//! Child reaping for a process that may be PID 1.
//!
//! SIGCHLD is blocked in every thread (see [`block_sigchld`], called before
//! any thread exists); one thread waits for it with `sigwait` and reaps
//! every exited child. Children started through [`Reaper::spawn`] are
//! registered so their status reaches their waiter; orphans re-parented
//! to PID 1 are reaped and forgotten.
//!
//! To never signal a recycled pid, the reaper peeks with
//! `waitid(WNOWAIT)`, then reaps and unregisters under the registry lock,
//! and [`Reaper::kill_group`] only signals registered (so unreaped) pids
//! under the same lock.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::log;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Default)]
pub struct Reaper {
    waiters: Mutex<HashMap<i32, Sender<Exit>>>,
}

/// Blocks SIGCHLD in the calling thread; threads created afterwards
/// inherit the mask. Must run before any other thread starts.
pub fn block_sigchld() -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
}

impl Reaper {
    /// Starts the reaper thread.
    pub fn start() -> io::Result<Arc<Reaper>> {
        let reaper = Arc::new(Reaper::default());
        let r = Arc::clone(&reaper);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || r.run())?;
        Ok(reaper)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Sender<Exit>>> {
        // A panicking holder cannot leave the map inconsistent.
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spawns `cmd` and registers the child; the receiver gets its exit.
    /// Never call `Child::wait` on the result: the reaper owns reaping.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, Receiver<Exit>)> {
        let (tx, rx) = mpsc::channel();
        // Held across the spawn so an instant exit finds its waiter.
        let mut waiters = self.lock();
        let child = cmd.spawn()?;
        let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
        waiters.insert(pid, tx);
        Ok((child, rx))
    }

    /// Sends `sig` to the process group led by `pid` (and to `pid`
    /// itself), if `pid` is a registered child not yet reaped.
    pub fn kill_group(&self, pid: i32, sig: Signal) {
        let waiters = self.lock();
        if waiters.contains_key(&pid) {
            let _ = signal::kill(Pid::from_raw(-pid), sig);
            let _ = signal::kill(Pid::from_raw(pid), sig);
        }
    }

    fn run(&self) {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        loop {
            self.reap_all();
            if let Err(e) = set.wait() {
                log(&format!("sigwait(SIGCHLD) failed: {e}"));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }

    /// Reaps every child that has exited.
    pub fn reap_all(&self) {
        loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            let pid = match waitid(Id::All, flags) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(status) => match status.pid() {
                    Some(pid) => pid,
                    None => return,
                },
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log(&format!("waitid failed: {e}"));
                    return;
                }
            };
            let mut waiters = self.lock();
            let exit = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(Exit::Code(code)),
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(Exit::Signal(sig as i32)),
                // Reaped by someone else (std reaps a child whose exec
                // failed), or not a termination.
                Ok(_) | Err(_) => None,
            };
            let waiter = waiters.remove(&pid.as_raw());
            drop(waiters);
            if let (Some(tx), Some(exit)) = (waiter, exit) {
                let _ = tx.send(exit);
            }
        }
    }
}
