//! A running VM as the supervisor sees it: its VMM (our child or a
//! re-adopted process), its sidecars, the console streamed into the
//! workload's log, and the stop sequence (agent → ACPI → SIGTERM → SIGKILL).

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vimana_agent::AGENT_PORT;
use vimana_agent::client::AgentClient;
use vimana_core::{DriverError, Exit, Instance, LogSink};

use super::console::follow_console;
use super::handle::{Proc, VmHandle};
use super::prepare::console_tail;
use crate::network::BridgeNetwork;
use crate::provider::{Vmm, VmmStatus};

/// How often a re-adopted VMM (not our child) is checked for life.
const ADOPTED_POLL: Duration = Duration::from_millis(250);
/// Console lines quoted when a VM ends unexpectedly.
pub const TAIL_LINES: usize = 15;

pub(crate) struct VmInstance {
    handle: VmHandle,
    vmm: Arc<dyn Vmm>,
    adopted: bool,
    exit: watch::Receiver<Option<Exit>>,
    stop_timeout: Duration,
    sink: LogSink,
    tasks: Vec<JoinHandle<()>>,
}

fn exit_of(status: std::io::Result<std::process::ExitStatus>) -> Exit {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            _ => Exit::Unknown,
        },
        Err(_) => Exit::Unknown,
    }
}

fn signal(p: &Proc, sig: Signal) {
    if !p.alive() {
        return;
    }
    if let Ok(raw) = i32::try_from(p.pid)
        && raw > 1
    {
        let _ = kill(Pid::from_raw(raw), sig);
    }
}

impl VmInstance {
    /// `child` is the VMM when we launched it; `None` when re-adopted.
    pub(crate) fn new(
        handle: VmHandle,
        vmm: Arc<dyn Vmm>,
        child: Option<Child>,
        stop_timeout: Duration,
        sink: LogSink,
        sidecar_children: Vec<Child>,
        net: Option<Arc<BridgeNetwork>>,
    ) -> Self {
        let (tx, exit) = watch::channel(None);
        let adopted = child.is_none();
        let mut tasks = Vec::new();
        let vmm_proc = handle.vmm.clone();
        // When the VMM ends (stop, power-off or crash), its TAP device and
        // address go back, and only then is the exit reported.
        let release = net.zip(handle.net.clone());
        let release_sink = sink.clone();
        let released = move || async move {
            if let Some((net, lease)) = release
                && let Err(e) = net.detach(&lease).await
            {
                release_sink.daemon(format!("cannot release {}: {e}", lease.tap));
            }
        };
        tasks.push(match child {
            Some(mut child) => tokio::spawn(async move {
                let status = child.wait().await;
                released().await;
                tx.send_replace(Some(exit_of(status)));
            }),
            None => tokio::spawn(async move {
                while vmm_proc.alive() {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                released().await;
                tx.send_replace(Some(Exit::Unknown));
            }),
        });
        // Reap the sidecars we started, so they never linger as zombies.
        for mut c in sidecar_children {
            tasks.push(tokio::spawn(async move {
                let _ = c.wait().await;
            }));
        }
        tasks.push(tokio::spawn(follow_console(
            handle.spec.console_log.clone(),
            sink.clone(),
            adopted,
        )));
        Self {
            handle,
            vmm,
            adopted,
            exit,
            stop_timeout,
            sink,
            tasks,
        }
    }

    fn ended(&self) -> bool {
        self.exit.borrow().is_some()
    }

    async fn wait_exit(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.exited()).await.is_ok()
    }

    fn agent(&self) -> Option<AgentClient> {
        let vsock = self.handle.spec.vsock.as_ref()?;
        Some(
            AgentClient::hybrid_unix(vsock.uds_path.clone(), AGENT_PORT)
                .with_connect_timeout(Duration::from_secs(2))
                .with_reply_timeout(Duration::from_secs(3)),
        )
    }

    fn stop_sidecars(&self) {
        for s in &self.handle.sidecars {
            signal(s, Signal::SIGTERM);
        }
    }
}

impl Drop for VmInstance {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

#[async_trait]
impl Instance for VmInstance {
    fn pid(&self) -> Option<u32> {
        Some(self.handle.vmm.pid)
    }

    fn handle(&self) -> serde_json::Value {
        serde_json::to_value(&self.handle).unwrap_or_default()
    }

    async fn probe(&self) -> Result<String, DriverError> {
        let pid = self.handle.vmm.pid;
        if self.ended() || !self.handle.vmm.alive() {
            return Err(DriverError::new(format!(
                "the {} process {pid} is gone",
                self.handle.provider
            )));
        }
        let accel = match self.handle.spec.accel {
            crate::provider::Accel::Kvm => "kvm",
            crate::provider::Accel::Tcg => "tcg",
        };
        let state = match self.vmm.status(&self.handle.spec).await {
            Ok(VmmStatus::Running) => "running".to_string(),
            Ok(VmmStatus::Shutdown) => "shut down".to_string(),
            Ok(VmmStatus::Paused) => "paused".to_string(),
            Ok(VmmStatus::NotStarted) => "not started".to_string(),
            Ok(VmmStatus::Other(s)) => s,
            // The VMM's control socket may be busy (one client at a time):
            // the process is alive, which is what matters here.
            Err(_) => "running".to_string(),
        };
        Ok(format!(
            "{state} ({}, {accel}, pid {pid})",
            self.handle.provider
        ))
    }

    async fn exited(&self) -> Exit {
        let mut rx = self.exit.clone();
        rx.wait_for(Option::is_some)
            .await
            .map(|v| v.unwrap_or(Exit::Unknown))
            .unwrap_or(Exit::Unknown)
    }

    async fn stop(&self) -> Result<(), DriverError> {
        let third = self.stop_timeout / 3;
        // 1. The agent powers the guest off cleanly (sync, unmount).
        if !self.ended()
            && let Some(agent) = self.agent()
        {
            match agent.shutdown(false).await {
                Ok(()) => self.sink.daemon("asked the guest agent to power off"),
                Err(e) => self.sink.daemon(format!("agent shutdown failed: {e}")),
            }
        }
        if !self.wait_exit(third).await {
            // 2. ACPI power button / Ctrl-Alt-Del through the VMM.
            match self.vmm.request_shutdown(&self.handle.spec).await {
                Ok(()) => self.sink.daemon("sent the VM a power-button request"),
                Err(e) => self
                    .sink
                    .daemon(format!("power-button request failed: {e}")),
            }
            if !self.wait_exit(third).await {
                // 3. The VMM itself.
                self.sink
                    .daemon("the guest did not power off: terminating the VMM");
                signal(&self.handle.vmm, Signal::SIGTERM);
                if !self.wait_exit(third.max(Duration::from_secs(2))).await {
                    signal(&self.handle.vmm, Signal::SIGKILL);
                    self.wait_exit(Duration::from_secs(5)).await;
                }
            }
        }
        self.stop_sidecars();
        Ok(())
    }

    fn kill(&self) {
        signal(&self.handle.vmm, Signal::SIGKILL);
        for s in &self.handle.sidecars {
            signal(s, Signal::SIGKILL);
        }
    }

    fn adopted(&self) -> bool {
        self.adopted
    }

    fn describe_exit(&self, exit: Exit) -> String {
        let tail = console_tail(&self.handle.spec.console_log, TAIL_LINES);
        let what = format!("the {} process {exit}", self.handle.provider);
        if tail.is_empty() {
            what
        } else {
            format!("{what}; last console lines:\n{tail}")
        }
    }
}
