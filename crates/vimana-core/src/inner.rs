//! The core's shared state and the store/supervisor plumbing its actions use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{broadcast, mpsc, oneshot};
use vimana_api::{ApiError, Event, EventKind, WorkloadKind, WorkloadName, WorkloadSpec};
use vimana_store::{NewEvent, Record, Store};

use crate::supervisor::{Cmd, Launch, Supervisor};
use crate::{Backoff, CoreOptions, Driver, LogBook};

pub(crate) struct Inner {
    pub(crate) store: Arc<Store>,
    pub(crate) drivers: HashMap<WorkloadKind, Arc<dyn Driver>>,
    pub(crate) logs: LogBook,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) sups: Mutex<HashMap<WorkloadName, mpsc::Sender<Cmd>>>,
    pub(crate) locks: Mutex<HashMap<WorkloadName, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) opts: CoreOptions,
    pub(crate) resources: crate::resources::Resources,
}

impl Inner {
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, vimana_store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// The per-name lock. Locks nobody holds or waits for (only the map
    /// has them) are dropped on the way, so the map holds the names in use,
    /// not every name ever asked for. Clones are made only under the map's
    /// mutex, so a count of 1 seen there cannot rise behind our back.
    pub(crate) async fn lock(&self, name: &WorkloadName) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.retain(|_, m| Arc::strong_count(m) > 1);
            locks.entry(name.clone()).or_default().clone()
        };
        m.lock_owned().await
    }

    pub(crate) fn driver(&self, kind: WorkloadKind) -> Result<Arc<dyn Driver>, ApiError> {
        self.drivers.get(&kind).cloned().ok_or_else(|| {
            ApiError::BadRequest(format!("this daemon has no driver for {kind} workloads"))
        })
    }

    pub(crate) fn supervised(&self, name: &WorkloadName) -> bool {
        self.sups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .is_some_and(|tx| !tx.is_closed())
    }

    pub(crate) async fn get(&self, name: &WorkloadName) -> Result<Option<Record>, ApiError> {
        let n = name.clone();
        self.blocking(move |s| s.get(&n)).await
    }

    pub(crate) async fn require(&self, name: &WorkloadName) -> Result<Record, ApiError> {
        self.get(name)
            .await?
            .ok_or_else(|| ApiError::NotFound(name.to_string()))
    }

    pub(crate) async fn spec_of(&self, name: &WorkloadName) -> Option<WorkloadSpec> {
        self.get(name).await.ok().flatten().map(|r| r.workload.spec)
    }

    pub(crate) async fn put(
        &self,
        record: Record,
        kind: EventKind,
        message: String,
    ) -> Result<(), ApiError> {
        let state = Some(record.workload.state);
        let (_, ev) = self
            .blocking(move |s| {
                s.put(
                    record,
                    Some(NewEvent {
                        kind,
                        state,
                        message,
                    }),
                )
            })
            .await?;
        if let Some(ev) = ev {
            let _ = self.events.send(ev);
        }
        Ok(())
    }

    /// Read-modify-write of one record; records an event when `kind` is set.
    pub(crate) async fn update_record(
        &self,
        name: &WorkloadName,
        kind: Option<EventKind>,
        message: String,
        f: impl FnOnce(&mut Record) + Send + 'static,
    ) -> Result<(), ApiError> {
        let n = name.clone();
        let out = self
            .blocking(move |s| {
                s.update(&n, move |cur| {
                    let mut r = cur?;
                    f(&mut r);
                    let ev = kind.map(|kind| NewEvent {
                        kind,
                        state: Some(r.workload.state),
                        message,
                    });
                    Some((r, ev))
                })
            })
            .await?;
        if let Some((_, Some(ev))) = out {
            let _ = self.events.send(ev);
        }
        Ok(())
    }

    pub(crate) fn spawn(
        self: &Arc<Self>,
        name: &WorkloadName,
        spec: &WorkloadSpec,
        launch: Launch,
    ) {
        self.spawn_with_ready(name, spec, launch, None);
    }

    pub(crate) fn spawn_with_ready(
        self: &Arc<Self>,
        name: &WorkloadName,
        spec: &WorkloadSpec,
        launch: Launch,
        ready: Option<oneshot::Sender<()>>,
    ) {
        let Some(driver) = self.drivers.get(&spec.kind()).cloned() else {
            return;
        };
        let (tx, rx) = mpsc::channel(4);
        self.sups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), tx);
        let sup = Supervisor {
            name: name.clone(),
            inner: self.clone(),
            driver,
            rx,
            sink: self.logs.sink(name),
            backoff: Backoff::new(
                self.opts.backoff_base,
                self.opts.backoff_max,
                self.opts.healthy_reset,
            ),
            ready,
        };
        tokio::spawn(sup.run(launch));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use vimana_api::Action;

    use crate::CoreApi as _;

    use crate::{Core, CoreOptions, LogBook};

    /// `stop`/`rm` of names that never existed leave no per-name lock.
    #[tokio::test]
    async fn locks_of_absent_names_are_freed() {
        let dir = tempfile::tempdir().unwrap();
        let store = vimana_store::Store::open(&dir.path().join("state.redb")).unwrap();
        let logs = LogBook::new(dir.path().join("logs"), Default::default()).unwrap();
        let core = Core::new(store, logs, vec![], CoreOptions::default());
        for i in 0..10_000 {
            let name = vimana_api::WorkloadName::new(format!("absent-{i}")).unwrap();
            let action = if i % 2 == 0 {
                Action::Stop { name }
            } else {
                Action::Remove { name }
            };
            assert!(core.handle(action).await.is_err());
        }
        let held = core.inner.locks.lock().unwrap().len();
        assert!(held <= 1, "{held} per-name locks kept for absent workloads");
    }
}
