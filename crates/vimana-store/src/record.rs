//! The stored form of a workload and its schema versioning.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vimana_api::Workload;

use crate::StoreError;

/// The newest record/database schema this build reads and writes.
///
/// Bump it when the stored form of [`Record`] changes incompatibly, and teach
/// `decode_record` to migrate the older versions.
pub const SCHEMA_VERSION: u32 = 1;

/// One workload as the store keeps it: the API view plus what the driver
/// needs to adopt a still-running workload after a daemon restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Schema version of this record. The store always writes
    /// [`SCHEMA_VERSION`], whatever the caller put here.
    pub schema: u32,
    pub workload: Workload,
    /// The driver's adoption handle (pid, socket, certificates…), opaque to the store.
    #[serde(default)]
    pub handle: Option<serde_json::Value>,
}

impl Record {
    /// A record of the current schema without an adoption handle.
    pub fn new(workload: Workload) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            workload,
            handle: None,
        }
    }
}

/// Just enough of a record to read its schema version, whatever the rest
/// looks like in that version.
#[derive(Deserialize)]
struct SchemaProbe {
    schema: u32,
}

/// How a record is named in errors.
pub(crate) fn record_what(key: &str) -> String {
    format!("workloads[{key:?}]")
}

/// Decodes the value stored under `key` in the `workloads` table.
///
/// The schema is read first so that a record of a newer schema is reported
/// as such, even if its shape no longer decodes as this build's [`Record`].
pub(crate) fn decode_record(db_path: &Path, key: &str, bytes: &[u8]) -> Result<Record, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: record_what(key),
        detail,
    };
    let probe: SchemaProbe =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("no schema version: {e}")))?;
    if probe.schema > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: db_path.to_path_buf(),
            found: probe.schema,
            known: SCHEMA_VERSION,
            location: format!("workload {key:?}"),
        });
    }
    if probe.schema == 0 {
        return Err(corrupt("schema version 0 does not exist".to_string()));
    }
    let record: Record = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if record.workload.name.as_str() != key {
        return Err(corrupt(format!(
            "the record is for workload {:?}",
            record.workload.name.as_str()
        )));
    }
    Ok(record)
}

/// Encodes a record for the `workloads` table.
pub(crate) fn encode_record(record: &Record) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|source| StoreError::Encode {
        what: record_what(record.workload.name.as_str()),
        source,
    })
}
