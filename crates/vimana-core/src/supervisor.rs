//! One supervisor task per workload: launches (or adopts) it through its
//! driver, polls it, relaunches it with backoff when it dies, and records
//! every state change in the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use vimana_api::{DesiredState, EventKind, RestartPolicy, WorkloadName, WorkloadState};
use vimana_store::Record;

use crate::inner::Inner;
use crate::{Backoff, Driver, Exit, HandleRecorder, Instance, LogSink, RunContext};

/// Commands the core sends to a running supervisor.
pub(crate) enum Cmd {
    Stop(oneshot::Sender<()>),
}

/// How a supervisor starts.
pub(crate) struct Launch {
    pub adopt: Option<serde_json::Value>,
    pub first_start: bool,
    /// Adopt the workload only to stop it: never launch a new one.
    pub stop_after_adopt: bool,
    /// Told the outcome of the first launch.
    pub first: Option<oneshot::Sender<Result<(), String>>>,
}

pub(crate) struct Supervisor {
    pub name: WorkloadName,
    pub inner: Arc<Inner>,
    pub driver: Arc<dyn Driver>,
    pub rx: mpsc::Receiver<Cmd>,
    pub sink: LogSink,
    pub backoff: Backoff,
    /// Told when the workload first runs or first fails (daemon start waits
    /// for adoption before it answers requests).
    pub ready: Option<oneshot::Sender<()>>,
}

enum WatchEnd {
    Stop(oneshot::Sender<()>),
    /// The process ended by itself.
    Exited(Exit),
    /// The workload stopped answering its probe.
    Crashed(String),
    Detached,
}

impl Supervisor {
    /// Applies `f` to the stored record in one transaction.
    async fn set(
        &self,
        kind: Option<EventKind>,
        message: impl Into<String>,
        f: impl FnOnce(&mut Record) + Send + 'static,
    ) {
        let message = message.into();
        if let Err(e) = self.inner.update_record(&self.name, kind, message, f).await {
            tracing::error!(workload = %self.name, error = %e, "cannot record state");
        }
    }

    async fn set_state(
        &self,
        state: WorkloadState,
        kind: EventKind,
        message: impl Into<String>,
        f: impl FnOnce(&mut Record) + Send + 'static,
    ) {
        self.set(Some(kind), message, move |r| {
            r.workload.state = state;
            f(r);
        })
        .await;
    }

    pub(crate) async fn run(mut self, mut launch: Launch) {
        let Some(spec) = self.inner.spec_of(&self.name).await else {
            return;
        };
        loop {
            let adopting = launch.adopt.is_some();
            if launch.stop_after_adopt && !adopting {
                self.set_state(
                    WorkloadState::Stopped,
                    EventKind::StateChanged,
                    "stopped",
                    |r| {
                        r.workload.pid = None;
                        r.handle = None;
                    },
                )
                .await;
                return;
            }
            let ctx = RunContext {
                name: self.name.clone(),
                spec: spec.clone(),
                adopt: launch.adopt.take(),
                first_start: launch.first_start,
                adopt_only: launch.stop_after_adopt,
                logs: self.sink.clone(),
                log_dir: self.inner.logs.dir().to_path_buf(),
                recorder: HandleRecorder::new(self.inner.clone(), self.name.clone()),
            };
            let result = self.driver.run(ctx).await;
            let instance = match result {
                Ok(i) => i,
                Err(e) => {
                    self.sink.daemon(format!("launch failed: {e}"));
                    if let Some(tx) = launch.first.take() {
                        let msg = e.to_string();
                        self.set_state(
                            WorkloadState::Failed,
                            EventKind::Error,
                            msg.clone(),
                            move |r| {
                                r.workload.desired = DesiredState::Stopped;
                                r.workload.detail = msg;
                                r.workload.pid = None;
                                r.handle = None;
                            },
                        )
                        .await;
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                    if launch.stop_after_adopt {
                        continue;
                    }
                    if !self.restart_after(e.to_string(), Duration::ZERO).await {
                        return;
                    }
                    continue;
                }
            };
            launch.first_start = false;
            if launch.stop_after_adopt {
                let _ = instance.stop().await;
                launch.adopt = None;
                continue;
            }
            let adopted = adopting && instance.adopted();
            let pid = instance.pid();
            let handle = instance.handle();
            let detail = probe(&*instance, self.inner.opts.probe_timeout)
                .await
                .unwrap_or_default();
            // Adoption that had to launch anew counts as a restart.
            let relaunched = adopting && !adopted;
            let (kind, msg) = if adopted {
                (
                    EventKind::Adopted,
                    format!("adopted running workload (pid {})", show_pid(pid)),
                )
            } else if relaunched {
                (
                    EventKind::Restarted,
                    format!("was gone; relaunched (pid {})", show_pid(pid)),
                )
            } else {
                (
                    EventKind::StateChanged,
                    format!("running (pid {})", show_pid(pid)),
                )
            };
            self.sink.daemon(msg.clone());
            self.set_state(WorkloadState::Running, kind, msg, move |r| {
                if relaunched {
                    r.workload.restarts = r.workload.restarts.saturating_add(1);
                }
                r.workload.pid = pid;
                r.workload.detail = detail;
                r.handle = Some(handle);
            })
            .await;
            if let Some(tx) = launch.first.take() {
                let _ = tx.send(Ok(()));
            }
            if let Some(tx) = self.ready.take() {
                let _ = tx.send(());
            }
            let since = Instant::now();
            match self.watch(&*instance).await {
                WatchEnd::Detached => return,
                WatchEnd::Stop(reply) => {
                    self.stop(&*instance).await;
                    let _ = reply.send(());
                    return;
                }
                WatchEnd::Exited(exit) => {
                    instance.kill();
                    let why = instance.describe_exit(exit);
                    self.sink.daemon(format!("workload ended: {why}"));
                    let restart = match spec.restart_policy() {
                        RestartPolicy::Always => true,
                        RestartPolicy::OnFailure => !exit.success(),
                        RestartPolicy::Never => false,
                    };
                    if !restart {
                        let state = if exit.success() {
                            WorkloadState::Stopped
                        } else {
                            WorkloadState::Failed
                        };
                        self.finish(state, why).await;
                        return;
                    }
                    if !self.restart_after(why, since.elapsed()).await {
                        return;
                    }
                }
                WatchEnd::Crashed(why) => {
                    instance.kill();
                    self.sink.daemon(format!("workload died: {why}"));
                    if spec.restart_policy() == RestartPolicy::Never {
                        self.finish(WorkloadState::Failed, why).await;
                        return;
                    }
                    if !self.restart_after(why, since.elapsed()).await {
                        return;
                    }
                }
            }
        }
    }

    /// Records that the workload ended for good (its restart policy said so).
    async fn finish(&self, state: WorkloadState, why: String) {
        self.set_state(state, EventKind::StateChanged, why.clone(), move |r| {
            r.workload.desired = DesiredState::Stopped;
            r.workload.detail = why;
            r.workload.pid = None;
            r.handle = None;
        })
        .await;
    }

    /// Records a crash, waits out the backoff; false when told to stop.
    async fn restart_after(&mut self, why: String, healthy_for: Duration) -> bool {
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(());
        }
        self.backoff.observe_run(healthy_for);
        let delay = self.backoff.next_delay();
        let msg = format!("{why}; restarting in {} ms", delay.as_millis());
        self.set_state(
            WorkloadState::Backoff,
            EventKind::Restarted,
            msg,
            move |r| {
                r.workload.restarts = r.workload.restarts.saturating_add(1);
                r.workload.detail = why;
                r.workload.pid = None;
                r.handle = None;
            },
        )
        .await;
        tokio::select! {
            cmd = self.rx.recv() => {
                if let Some(Cmd::Stop(reply)) = cmd {
                    self.set_state(WorkloadState::Stopped, EventKind::StateChanged, "stopped", |_| {}).await;
                    let _ = reply.send(());
                }
                false
            }
            () = tokio::time::sleep(delay) => true,
        }
    }

    async fn watch(&mut self, instance: &dyn Instance) -> WatchEnd {
        let poll = self.inner.opts.poll_interval;
        let mut last = String::new();
        loop {
            tokio::select! {
                cmd = self.rx.recv() => return match cmd {
                    Some(Cmd::Stop(reply)) => WatchEnd::Stop(reply),
                    None => WatchEnd::Detached,
                },
                exit = instance.exited() => return WatchEnd::Exited(exit),
                () = tokio::time::sleep(poll) => match probe(instance, self.inner.opts.probe_timeout).await {
                    Ok(detail) if detail != last => {
                        last = detail.clone();
                        self.set(None, "", move |r| r.workload.detail = detail).await;
                    }
                    Ok(_) => {}
                    Err(e) => return WatchEnd::Crashed(e),
                },
            }
        }
    }

    async fn stop(&self, instance: &dyn Instance) {
        self.set_state(
            WorkloadState::Stopping,
            EventKind::StateChanged,
            "stopping",
            |_| {},
        )
        .await;
        let detail = match instance.stop().await {
            Ok(()) => "stopped".to_string(),
            Err(e) => {
                instance.kill();
                format!("stopped forcefully: {e}")
            }
        };
        self.sink.daemon(detail.clone());
        self.set_state(
            WorkloadState::Stopped,
            EventKind::StateChanged,
            detail.clone(),
            move |r| {
                r.workload.pid = None;
                r.workload.detail = detail;
                r.handle = None;
            },
        )
        .await;
    }
}

async fn probe(instance: &dyn Instance, limit: Duration) -> Result<String, String> {
    match tokio::time::timeout(limit, instance.probe()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("status call timed out after {limit:?}")),
    }
}

fn show_pid(pid: Option<u32>) -> String {
    pid.map_or_else(|| "-".to_string(), |p| p.to_string())
}
