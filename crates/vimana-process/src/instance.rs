//! A live process as the supervisor sees it.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vimana_core::{DriverError, Exit, Instance, LogSink};

use crate::cgroup::CgroupFs;
use crate::driver::Handle;

/// How often an adopted process (not our child) is checked for life.
const ADOPTED_POLL: Duration = Duration::from_millis(200);
/// How long to wait for the group to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Our own child, or a process re-adopted from a previous daemon.
pub(crate) enum Tracked {
    Child(tokio::process::Child),
    Adopted,
}

pub(crate) struct ProcessInstance {
    handle: Handle,
    adopted: bool,
    exit: watch::Receiver<Option<Exit>>,
    stop_timeout: Duration,
    sink: LogSink,
    tasks: Vec<JoinHandle<()>>,
    cgroups: Arc<dyn CgroupFs>,
}

fn exit_of(status: std::io::Result<std::process::ExitStatus>) -> Exit {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Unknown,
        },
        Err(_) => Exit::Unknown,
    }
}

impl ProcessInstance {
    pub(crate) fn new(
        handle: Handle,
        tracked: Tracked,
        stop_timeout: Duration,
        sink: LogSink,
        mut tasks: Vec<JoinHandle<()>>,
        cgroups: Arc<dyn CgroupFs>,
    ) -> Self {
        let (tx, exit) = watch::channel(None);
        let adopted = matches!(tracked, Tracked::Adopted);
        let (pid, start) = (handle.pid, handle.start_time);
        tasks.push(match tracked {
            Tracked::Child(mut child) => tokio::spawn(async move {
                let status = child.wait().await;
                tx.send_replace(Some(exit_of(status)));
            }),
            Tracked::Adopted => tokio::spawn(async move {
                while vimana_goplugin::pid_alive(pid, start) {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                tx.send_replace(Some(Exit::Unknown));
            }),
        });
        Self {
            handle,
            adopted,
            exit,
            stop_timeout,
            sink,
            tasks,
            cgroups,
        }
    }

    fn ended(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Signals the process group (the process and everything it started).
    fn signal_group(&self, sig: Signal) {
        // An adopted pid that is no longer our process must not be touched.
        if self.adopted && !vimana_goplugin::pid_alive(self.handle.pid, self.handle.start_time) {
            return;
        }
        if let Ok(raw) = i32::try_from(self.handle.pid)
            && raw > 1
        {
            let _ = killpg(Pid::from_raw(raw), sig);
        }
    }

    async fn wait_exit(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.exited()).await.is_ok()
    }

    fn remove_cgroup(&self) {
        if let Some(cg) = &self.handle.cgroup {
            let _ = self.cgroups.rmdir(Path::new(cg));
        }
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

#[async_trait]
impl Instance for ProcessInstance {
    fn pid(&self) -> Option<u32> {
        Some(self.handle.pid)
    }

    fn handle(&self) -> serde_json::Value {
        serde_json::to_value(&self.handle).unwrap_or_default()
    }

    /// `Ok` while the process runs. Once our own child has ended, the exit
    /// status is left to [`Instance::exited`] (so the restart policy sees the
    /// real status, never a probe failure).
    async fn probe(&self) -> Result<String, DriverError> {
        let pid = self.handle.pid;
        if let Some(exit) = self.ended() {
            return if self.adopted {
                Err(DriverError::new(format!("process {pid} is gone")))
            } else {
                Ok(format!("process {exit}"))
            };
        }
        if self.adopted && !vimana_goplugin::pid_alive(pid, self.handle.start_time) {
            return Err(DriverError::new(format!("process {pid} is gone")));
        }
        Ok(format!("running (pid {pid})"))
    }

    async fn exited(&self) -> Exit {
        let mut rx = self.exit.clone();
        rx.wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|e| *e)
            .unwrap_or(Exit::Unknown)
    }

    /// SIGTERM to the group, SIGKILL after the grace period.
    async fn stop(&self) -> Result<(), DriverError> {
        let pid = self.handle.pid;
        if self.ended().is_none() {
            self.signal_group(Signal::SIGTERM);
            if !self.wait_exit(self.stop_timeout).await {
                self.sink.daemon(format!(
                    "process {pid} did not end within {} ms of SIGTERM; sending SIGKILL",
                    self.stop_timeout.as_millis()
                ));
                self.signal_group(Signal::SIGKILL);
                if !self.wait_exit(KILL_WAIT).await {
                    return Err(DriverError::new(format!(
                        "process {pid} is still alive {KILL_WAIT:?} after SIGKILL"
                    )));
                }
            }
        }
        // Whatever the process left behind in its group goes too.
        if !self.adopted {
            self.signal_group(Signal::SIGKILL);
        }
        self.remove_cgroup();
        Ok(())
    }

    fn kill(&self) {
        self.signal_group(Signal::SIGKILL);
        self.remove_cgroup();
    }

    fn adopted(&self) -> bool {
        self.adopted
    }
}
