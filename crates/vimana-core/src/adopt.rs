//! Daemon start: re-adopt every workload the store knows.

use std::time::Duration;

use tokio::sync::oneshot;
use vimana_api::{ApiError, DesiredState, EventKind, WorkloadState};

use crate::Core;
use crate::supervisor::Launch;

impl Core {
    /// Re-adopts every workload recorded in the store (daemon start), and
    /// waits (at most `wait`) until each one runs again or has failed, so
    /// the first answer the daemon gives is already true.
    ///
    /// It also hands the persisted resources to the resource observer
    /// ([`Core::reconcile_resources`]) and stores their statuses.
    pub async fn adopt_all(&self, wait: Duration) -> Result<usize, ApiError> {
        self.reconcile_resources().await?;
        let records = self.inner.blocking(|s| s.list()).await?;
        let mut n = 0;
        let mut ready = Vec::new();
        for r in records {
            let name = r.workload.name.clone();
            let _guard = self.inner.lock(&name).await;
            match (r.workload.desired, r.handle) {
                (DesiredState::Running, adopt) => {
                    let (tx, rx) = oneshot::channel();
                    ready.push(rx);
                    self.inner.spawn_with_ready(
                        &name,
                        &r.workload.spec,
                        Launch {
                            adopt,
                            first_start: false,
                            stop_after_adopt: false,
                            first: None,
                        },
                        Some(tx),
                    );
                    n += 1;
                }
                (DesiredState::Stopped, Some(adopt)) => {
                    self.inner.spawn(
                        &name,
                        &r.workload.spec,
                        Launch {
                            adopt: Some(adopt),
                            first_start: false,
                            stop_after_adopt: true,
                            first: None,
                        },
                    );
                }
                (DesiredState::Stopped, None) => {
                    if !matches!(
                        r.workload.state,
                        WorkloadState::Stopped | WorkloadState::Failed
                    ) {
                        self.inner
                            .update_record(
                                &name,
                                Some(EventKind::StateChanged),
                                "stopped".into(),
                                |r| {
                                    r.workload.state = WorkloadState::Stopped;
                                    r.workload.pid = None;
                                },
                            )
                            .await?;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(wait, futures_join(ready)).await;
        Ok(n)
    }
}

/// Waits for every receiver (a closed sender counts as done).
async fn futures_join(rxs: Vec<oneshot::Receiver<()>>) {
    for rx in rxs {
        let _ = rx.await;
    }
}
