//! The `resources` table: `api.vimana.host/v1alpha1` resources by
//! `<Kind>/<metadata.name>`, written all or nothing, with their own event
//! log (`resource_events`).

use std::ops::Bound;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use vimana_api::{ResourceEvent, ResourceEventKind};

use crate::record::SCHEMA_VERSION;
use crate::tables::{
    COUNTERS, RESOURCE_EVENT_SEQ, RESOURCE_EVENTS, RESOURCES, REVISION, next_counter,
};
use crate::{Store, StoreError, now_rfc3339};

/// One stored resource. The store does not interpret `resource` (the
/// resource JSON with its status); the core does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// Schema version; the store always writes [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The global revision of the write that stored it.
    pub revision: u64,
    /// RFC 3339 time of that write.
    pub updated_at: String,
    /// The resource JSON (`apiVersion`, `kind`, `metadata`, `spec`, `status`).
    pub resource: serde_json::Value,
}

/// One change of [`Store::write_resources`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceWrite {
    /// Store `resource` under `key` (`<Kind>/<name>`).
    Put {
        key: String,
        resource: serde_json::Value,
    },
    /// Remove `key`.
    Delete { key: String },
}

/// A resource event to append; the store assigns `seq`, `time`, `revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewResourceEvent {
    pub kind: ResourceEventKind,
    /// `Kind/name`.
    pub resource: String,
    pub message: String,
}

/// What [`check_all`] learnt while opening the store.
pub(crate) struct ResourcesSeen {
    pub(crate) count: usize,
    pub(crate) max_revision: u64,
    pub(crate) last_event_seq: u64,
}

fn what(key: &str) -> String {
    format!("resources[{key:?}]")
}

fn decode(path: &Path, key: &str, bytes: &[u8]) -> Result<ResourceRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: what(key),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let schema = value
        .get("schema")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("no schema version".to_string()))?;
    if schema > u64::from(SCHEMA_VERSION) {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: u32::try_from(schema).unwrap_or(u32::MAX),
            known: SCHEMA_VERSION,
            location: format!("resource {key:?}"),
        });
    }
    serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
}

/// Creates the tables if missing and checks every stored resource (open).
pub(crate) fn check_all(txn: &WriteTransaction, path: &Path) -> Result<ResourcesSeen, StoreError> {
    let table = txn.open_table(RESOURCES)?;
    let events = txn.open_table(RESOURCE_EVENTS)?;
    let mut seen = ResourcesSeen {
        count: 0,
        max_revision: 0,
        last_event_seq: events.last()?.map_or(0, |(k, _)| k.value()),
    };
    for item in table.iter()? {
        let (key, bytes) = item?;
        let record = decode(path, key.value(), bytes.value())?;
        seen.max_revision = seen.max_revision.max(record.revision);
        seen.count += 1;
    }
    Ok(seen)
}

impl Store {
    /// Every stored resource with its key, sorted by key.
    pub fn resources(&self) -> Result<Vec<(String, ResourceRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RESOURCES)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (key, bytes) = item?;
            let key = key.value().to_string();
            let record = decode(&self.path, &key, bytes.value())?;
            out.push((key, record));
        }
        Ok(out)
    }

    /// Applies every write and appends every event in ONE durable write
    /// transaction under one new global revision, which it returns: either
    /// all of it survives a crash or none of it. Deleting a missing key is
    /// not an error. With no writes nothing is written and the current
    /// revision is returned.
    pub fn write_resources(
        &self,
        writes: Vec<ResourceWrite>,
        events: Vec<NewResourceEvent>,
    ) -> Result<u64, StoreError> {
        if writes.is_empty() && events.is_empty() {
            return self.current_revision();
        }
        let txn = self.begin_write()?;
        let revision = {
            let mut table = txn.open_table(RESOURCES)?;
            let mut log = txn.open_table(RESOURCE_EVENTS)?;
            let mut counters = txn.open_table(COUNTERS)?;
            let revision = next_counter(&mut counters, REVISION)?;
            let now = now_rfc3339();
            for write in writes {
                match write {
                    ResourceWrite::Put { key, resource } => {
                        let record = ResourceRecord {
                            schema: SCHEMA_VERSION,
                            revision,
                            updated_at: now.clone(),
                            resource,
                        };
                        let bytes =
                            serde_json::to_vec(&record).map_err(|source| StoreError::Encode {
                                what: what(&key),
                                source,
                            })?;
                        table.insert(key.as_str(), bytes.as_slice())?;
                    }
                    ResourceWrite::Delete { key } => {
                        table.remove(key.as_str())?;
                    }
                }
            }
            for new in events {
                let seq = next_counter(&mut counters, RESOURCE_EVENT_SEQ)?;
                let event = ResourceEvent {
                    seq,
                    time: now.clone(),
                    kind: new.kind,
                    resource: new.resource,
                    revision,
                    message: new.message,
                };
                let bytes = serde_json::to_vec(&event).map_err(|source| StoreError::Encode {
                    what: format!("resource_events[{seq}]"),
                    source,
                })?;
                log.insert(seq, bytes.as_slice())?;
                let cutoff = seq.saturating_sub(self.max_events.max(1));
                loop {
                    let first = match log.first()? {
                        Some((k, _)) => k.value(),
                        None => break,
                    };
                    if first > cutoff {
                        break;
                    }
                    log.remove(first)?;
                }
            }
            revision
        };
        txn.commit()?;
        Ok(revision)
    }

    /// Resource events with `seq > since` (all kept if `None`), oldest
    /// first, at most `limit`.
    pub fn resource_events(
        &self,
        since: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ResourceEvent>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RESOURCE_EVENTS)?;
        let start = since.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for item in table.range::<u64>((start, Bound::Unbounded))? {
            if out.len() >= limit {
                break;
            }
            let (seq, bytes) = item?;
            let event: ResourceEvent =
                serde_json::from_slice(bytes.value()).map_err(|e| StoreError::Corrupt {
                    what: format!("resource_events[{}]", seq.value()),
                    detail: e.to_string(),
                })?;
            out.push(event);
        }
        Ok(out)
    }
}
