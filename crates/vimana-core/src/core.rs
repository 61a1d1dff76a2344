//! [`Core`]: executes [`Action`]s against the store and the supervisors.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, oneshot};
use vimana_api::{
    Action, ActionOutcome, ApiError, DesiredState, Event, EventKind, LogRecord, Workload,
    WorkloadName, WorkloadSpec, WorkloadState,
};
use vimana_store::{Record, Store};

use crate::inner::Inner;
use crate::supervisor::{Cmd, Launch};
use crate::{CoreApi, Driver, LogBook};

const EVENTS_PAGE: usize = 10_000;

/// Tunables of the supervisor.
#[derive(Clone, Debug)]
pub struct CoreOptions {
    /// How often a running workload is asked for its status.
    pub poll_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A run this long resets the backoff.
    pub healthy_reset: Duration,
    /// How long `Start` waits for the first launch beyond the driver's own timeouts.
    pub start_wait: Duration,
    /// How long one [`crate::Instance::probe`] may take before the workload
    /// counts as crashed (a driver with its own, shorter deadlines reports
    /// them better).
    pub probe_timeout: Duration,
}

impl Default for CoreOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            healthy_reset: Duration::from_secs(60),
            start_wait: Duration::from_secs(120),
            probe_timeout: Duration::from_secs(5),
        }
    }
}

/// The core: the one implementation of [`CoreApi`].
#[derive(Clone)]
pub struct Core {
    pub(crate) inner: Arc<Inner>,
}

impl Core {
    pub fn new(
        store: Store,
        logs: LogBook,
        drivers: Vec<Arc<dyn Driver>>,
        opts: CoreOptions,
    ) -> Self {
        let drivers = drivers.into_iter().map(|d| (d.kind(), d)).collect();
        Self {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                drivers,
                logs,
                events: broadcast::channel(1024).0,
                sups: Mutex::default(),
                locks: Mutex::default(),
                opts,
                resources: Default::default(),
            }),
        }
    }

    /// Detaches from every workload, leaving them running (daemon exit).
    pub fn detach_all(&self) {
        self.inner
            .sups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    async fn start(
        &self,
        name: WorkloadName,
        spec: Option<WorkloadSpec>,
    ) -> Result<ActionOutcome, ApiError> {
        let inner = &self.inner;
        let _guard = inner.lock(&name).await;
        let mut existing = inner.get(&name).await?;
        // A supervisor of a workload that should be stopped only adopts it
        // to stop it (daemon start): let it finish before starting anew.
        if existing
            .as_ref()
            .is_some_and(|r| r.workload.desired == DesiredState::Stopped)
        {
            let sup = inner
                .sups
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&name);
            if let Some(tx) = sup {
                tx.closed().await;
                existing = inner.get(&name).await?;
            }
        }
        let spec = match (spec, existing.as_ref()) {
            (Some(s), _) => s,
            (None, Some(r)) => r.workload.spec.clone(),
            (None, None) => {
                return Err(ApiError::NotFound(name.to_string()));
            }
        };
        let driver = inner.driver(spec.kind())?;
        driver.validate(&spec)?;
        if let Some(r) = &existing
            && inner.supervised(&name)
        {
            if r.workload.spec != spec {
                return Err(ApiError::Conflict(format!(
                    "workload \"{name}\" is already running with a different spec; stop and remove it first (`vimana stop {name} && vimana rm {name}`), then start it again"
                )));
            }
            return Ok(ActionOutcome::Workload(Box::new(r.workload.clone())));
        }
        let now = vimana_store::now_rfc3339();
        let (record, kind) = match existing {
            Some(mut r) => {
                r.workload.spec = spec.clone();
                r.workload.kind = spec.kind();
                (r, EventKind::StateChanged)
            }
            None => (
                Record::new(Workload {
                    name: name.clone(),
                    kind: spec.kind(),
                    state: WorkloadState::Starting,
                    desired: DesiredState::Running,
                    pid: None,
                    restarts: 0,
                    detail: String::new(),
                    revision: 0,
                    created_at: now.clone(),
                    updated_at: now,
                    spec: spec.clone(),
                }),
                EventKind::Created,
            ),
        };
        let mut record = record;
        record.workload.state = WorkloadState::Starting;
        record.workload.desired = DesiredState::Running;
        record.workload.detail = String::new();
        record.workload.pid = None;
        record.handle = None;
        inner.put(record, kind, "starting".into()).await?;
        let (tx, rx) = oneshot::channel();
        inner.spawn(
            &name,
            &spec,
            Launch {
                adopt: None,
                first_start: true,
                stop_after_adopt: false,
                first: Some(tx),
            },
        );
        match tokio::time::timeout(inner.opts.start_wait, rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(msg))) => return Err(ApiError::Workload(msg)),
            Ok(Err(_)) => return Err(ApiError::Internal("supervisor ended unexpectedly".into())),
            Err(_) => {
                return Err(ApiError::Workload(format!(
                    "workload \"{name}\" did not come up within {:?}; see `vimana logs {name}`",
                    inner.opts.start_wait
                )));
            }
        }
        Ok(ActionOutcome::Workload(Box::new(
            inner.require(&name).await?.workload,
        )))
    }

    async fn stop(&self, name: &WorkloadName) -> Result<Workload, ApiError> {
        let inner = &self.inner;
        inner.require(name).await?;
        inner
            .update_record(name, None, String::new(), |r| {
                r.workload.desired = DesiredState::Stopped;
            })
            .await?;
        let sup = inner
            .sups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let stopped = match sup {
            Some(tx) => {
                let (reply, done) = oneshot::channel();
                tx.send(Cmd::Stop(reply)).await.is_ok() && done.await.is_ok()
            }
            None => false,
        };
        let r = inner.require(name).await?;
        if !stopped && r.workload.state != WorkloadState::Stopped {
            inner
                .update_record(name, Some(EventKind::StateChanged), "stopped".into(), |r| {
                    if r.workload.state != WorkloadState::Failed {
                        r.workload.state = WorkloadState::Stopped;
                    }
                    r.workload.pid = None;
                })
                .await?;
        }
        Ok(inner.require(name).await?.workload)
    }
}

#[async_trait]
impl CoreApi for Core {
    async fn handle(&self, action: Action) -> Result<ActionOutcome, ApiError> {
        let inner = &self.inner;
        match action {
            Action::Start { name, spec } => self.start(name, spec).await,
            Action::Stop { name } => {
                let _guard = inner.lock(&name).await;
                Ok(ActionOutcome::Workload(Box::new(self.stop(&name).await?)))
            }
            Action::Remove { name } => {
                let _guard = inner.lock(&name).await;
                let stopped = self.stop(&name).await?;
                let n = name.clone();
                let ev = inner
                    .blocking(move |s| {
                        s.remove(
                            &n,
                            vimana_store::NewEvent {
                                kind: EventKind::Removed,
                                state: None,
                                message: "removed".into(),
                            },
                        )
                    })
                    .await?;
                if let Some(ev) = ev {
                    let _ = inner.events.send(ev);
                }
                inner.logs.remove(&name);
                if let Ok(driver) = inner.driver(stopped.kind) {
                    driver.removed(&name, &stopped.spec).await.map_err(|e| {
                        ApiError::Workload(format!("removed workload \"{name}\", but {e}"))
                    })?;
                }
                Ok(ActionOutcome::Removed)
            }
            Action::Get { name } => Ok(ActionOutcome::Workload(Box::new(
                inner.require(&name).await?.workload,
            ))),
            Action::List => {
                let all = inner.blocking(|s| s.list()).await?;
                Ok(ActionOutcome::Workloads(
                    all.into_iter().map(|r| r.workload).collect(),
                ))
            }
            Action::Logs { name, tail } => {
                inner.require(&name).await?;
                let logs = inner.logs.clone();
                let recs = tokio::task::spawn_blocking(move || logs.read(&name, tail))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok(ActionOutcome::Logs(recs))
            }
            Action::Events { since, workload } => {
                let evs = inner
                    .blocking(move |s| s.events(since, workload.as_ref(), EVENTS_PAGE))
                    .await?;
                Ok(ActionOutcome::Events(evs))
            }
            Action::ApplyResources { resources } => self.apply_resources(resources).await,
            Action::GetResources { query } => self.get_resources(query).await,
            Action::DeleteResources { refs } => self.delete_resources(refs).await,
        }
    }

    fn subscribe_logs(
        &self,
        name: &WorkloadName,
    ) -> Result<broadcast::Receiver<LogRecord>, ApiError> {
        Ok(self.inner.logs.sink(name).subscribe())
    }

    fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }
}
