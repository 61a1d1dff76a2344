//! The `api.vimana.host/v1alpha1` resources as daemon state: apply, get
//! and delete against the persisted set, each write one transaction, then
//! the [`ResourceObserver`] and its statuses (a second transaction).

use std::sync::{Arc, Mutex, PoisonError};

use vimana_api::{
    ActionOutcome, ApiError, ChangeKind, ChangeList, ResourceChange, ResourceEventKind,
    ResourceQuery,
};
use vimana_resources::{Resource, ResourceKind, ResourceRef, ResourceSet};
use vimana_store::{NewResourceEvent, ResourceWrite};

use crate::Core;
use crate::observer::{ResourceObserver, no_runtime};

/// The core's resource state: the writer lock and the observer.
#[derive(Default)]
pub(crate) struct Resources {
    /// Held by every apply, delete and reconcile: one writer at a time.
    lock: tokio::sync::Mutex<()>,
    observer: Mutex<Option<Arc<dyn ResourceObserver>>>,
}

/// `<Kind>/<metadata.name>`, the key of the `resources` table.
fn key(r: &ResourceRef) -> String {
    r.to_string()
}

fn not_found(kind: ResourceKind, name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "no {kind} named {name:?}; `vimana get {}` lists the {kind}s that exist",
        kind.plural()
    ))
}

fn encode(r: &Resource) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(r).map_err(|e| {
        ApiError::Internal(format!(
            "cannot encode {} for the store: {e}",
            r.reference()
        ))
    })
}

impl Core {
    /// Plugs in the runtime that observes resources (default: none, every
    /// resource is `Available=Unknown` with reason `NoRuntime`).
    pub fn with_resource_observer(self, observer: Arc<dyn ResourceObserver>) -> Self {
        *self
            .inner
            .resources
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(observer);
        self
    }

    /// Runs the observer over the persisted set and stores the statuses
    /// (daemon start). Returns the number of stored resources.
    pub async fn reconcile_resources(&self) -> Result<usize, ApiError> {
        let _guard = self.inner.resources.lock.lock().await;
        let set = self.load_set().await?;
        let n = set.len();
        self.reconcile(set).await?;
        Ok(n)
    }

    async fn load_set(&self) -> Result<ResourceSet, ApiError> {
        let stored = self.inner.blocking(|s| s.resources()).await?;
        let mut set = ResourceSet::new();
        for (key, record) in stored {
            let resource = Resource::from_json(record.resource).map_err(|e| {
                ApiError::Internal(format!(
                    "store value resources[{key:?}] is not a resource ({e}); restore state.redb from a backup or move it away"
                ))
            })?;
            set.insert(resource);
        }
        Ok(set)
    }

    /// Asks the observer (or uses the default) and stores changed statuses.
    async fn reconcile(&self, set: ResourceSet) -> Result<(), ApiError> {
        let observer = self
            .inner
            .resources
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (set, mut statuses) = match observer {
            Some(o) => tokio::task::spawn_blocking(move || {
                let statuses = o.reconcile(&set);
                (set, statuses)
            })
            .await
            .map_err(|e| ApiError::Internal(format!("the resource observer failed: {e}")))?,
            None => (set, Vec::new()),
        };
        // Resources nobody reported on yet get the default.
        for r in set.resources() {
            if r.status().is_none()
                && !statuses
                    .iter()
                    .any(|(k, n, _)| *k == r.kind() && n == r.name())
            {
                statuses.push((r.kind(), r.name().to_owned(), no_runtime()));
            }
        }
        let mut writes = Vec::new();
        for (kind, name, status) in statuses {
            let Some(mut r) = set.get(kind, &name) else {
                continue;
            };
            if r.status() != Some(&status) {
                r.set_status(Some(status));
                writes.push(ResourceWrite::Put {
                    key: key(&r.reference()),
                    resource: encode(&r)?,
                });
            }
        }
        self.inner
            .blocking(move |s| s.write_resources(writes, Vec::new()))
            .await?;
        Ok(())
    }

    pub(crate) async fn apply_resources(
        &self,
        resources: Vec<Resource>,
    ) -> Result<ActionOutcome, ApiError> {
        let _guard = self.inner.resources.lock.lock().await;
        let old = self.load_set().await?;
        let mut new = old.clone();
        let refs: Vec<ResourceRef> = resources.iter().map(Resource::reference).collect();
        let outcome = new
            .apply(resources)
            .map_err(|e| ApiError::invalid_resource(&e))?;
        let mut changes = Vec::with_capacity(refs.len());
        let mut writes = Vec::new();
        let mut events = Vec::new();
        for r in &refs {
            let change = if outcome.created.contains(r) {
                ChangeKind::Created
            } else if outcome.updated.contains(r) {
                ChangeKind::Configured
            } else {
                ChangeKind::Unchanged
            };
            if change != ChangeKind::Unchanged {
                let Some(mut resource) = new.get(r.kind, &r.name) else {
                    return Err(ApiError::Internal(format!("{r} vanished while applying")));
                };
                // A new spec has not been observed yet.
                resource.set_status(Some(no_runtime()));
                new.set_status(r.kind, &r.name, no_runtime());
                writes.push(ResourceWrite::Put {
                    key: key(r),
                    resource: encode(&resource)?,
                });
                events.push(NewResourceEvent {
                    kind: ResourceEventKind::ResourceApplied,
                    resource: key(r),
                    message: change.as_str().to_owned(),
                });
            }
            changes.push(ResourceChange::new(r, change));
        }
        let revision = self
            .inner
            .blocking(move |s| s.write_resources(writes, events))
            .await?;
        self.reconcile(new).await?;
        Ok(ActionOutcome::ResourceChanges(ChangeList {
            changes,
            revision,
        }))
    }

    pub(crate) async fn get_resources(
        &self,
        query: ResourceQuery,
    ) -> Result<ActionOutcome, ApiError> {
        let set = self.load_set().await?;
        let mut out = match (query.kind, query.name) {
            (Some(kind), Some(name)) => {
                vec![
                    set.find(kind, &name)
                        .ok_or_else(|| not_found(kind, &name))?,
                ]
            }
            (Some(kind), None) => set
                .resources()
                .into_iter()
                .filter(|r| r.kind() == kind)
                .collect(),
            (None, None) => set.resources(),
            (None, Some(name)) => {
                return Err(ApiError::BadRequest(format!(
                    "a resource name ({name:?}) needs a kind; ask for e.g. `domains/{name}`"
                )));
            }
        };
        for r in &mut out {
            if r.status().is_none() {
                r.set_status(Some(no_runtime()));
            }
        }
        Ok(ActionOutcome::Resources(out))
    }

    pub(crate) async fn delete_resources(
        &self,
        refs: Vec<ResourceRef>,
    ) -> Result<ActionOutcome, ApiError> {
        let _guard = self.inner.resources.lock.lock().await;
        let old = self.load_set().await?;
        let mut new = old.clone();
        let mut deleted: Vec<ResourceRef> = Vec::new();
        for r in &refs {
            let Some(found) = old.find(r.kind, &r.name) else {
                return Err(not_found(r.kind, &r.name));
            };
            let found = found.reference();
            if !deleted.contains(&found) {
                new.remove(found.kind, &found.name);
                deleted.push(found);
            }
        }
        let dangling = new.dangling();
        if !dangling.is_empty() {
            let gone: Vec<String> = deleted.iter().map(ToString::to_string).collect();
            let users: Vec<String> = dangling
                .iter()
                .map(|d| format!("{} refers to {} in {}", d.from, d.target, d.field))
                .collect();
            let mut names: Vec<String> = dangling.iter().map(|d| d.from.to_string()).collect();
            names.dedup();
            return Err(ApiError::Conflict(format!(
                "cannot delete {}: {}; delete {} too (in the same request, e.g. one `vimana delete -f` file) or change them first; nothing was deleted",
                gone.join(", "),
                users.join("; "),
                names.join(", ")
            )));
        }
        let writes = deleted
            .iter()
            .map(|r| ResourceWrite::Delete { key: key(r) })
            .collect();
        let events = deleted
            .iter()
            .map(|r| NewResourceEvent {
                kind: ResourceEventKind::ResourceDeleted,
                resource: key(r),
                message: ChangeKind::Deleted.as_str().to_owned(),
            })
            .collect();
        let revision = self
            .inner
            .blocking(move |s| s.write_resources(writes, events))
            .await?;
        self.reconcile(new).await?;
        let changes = deleted
            .iter()
            .map(|r| ResourceChange::new(r, ChangeKind::Deleted))
            .collect();
        Ok(ActionOutcome::ResourceChanges(ChangeList {
            changes,
            revision,
        }))
    }
}
