//! Table definitions and the small helpers around `meta` and `counters`.

use redb::{ReadableTable, TableDefinition};

use crate::StoreError;

/// `meta`: store-wide facts; today only [`SCHEMA_VERSION_KEY`].
pub(crate) const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
/// `workloads`: workload name → JSON of a [`crate::Record`].
pub(crate) const WORKLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("workloads");
/// `events`: sequence number → JSON of a [`vimana_api::Event`].
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// `resources`: `<Kind>/<metadata.name>` → JSON of a [`crate::ResourceRecord`].
pub(crate) const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");
/// `resource_events`: sequence number → JSON of a [`vimana_api::ResourceEvent`].
pub(crate) const RESOURCE_EVENTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("resource_events");
/// `counters`: [`REVISION`] and [`EVENT_SEQ`], the last values handed out.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";
/// Last revision handed out to any record (0 = none yet).
pub(crate) const REVISION: &str = "revision";
/// Last event sequence number handed out (0 = none yet).
pub(crate) const EVENT_SEQ: &str = "event_seq";

/// Last resource event sequence number handed out (0 = none yet).
pub(crate) const RESOURCE_EVENT_SEQ: &str = "resource_event_seq";

/// Reads a counter; a missing counter is 0.
pub(crate) fn read_counter(
    table: &impl ReadableTable<&'static str, u64>,
    key: &str,
) -> Result<u64, StoreError> {
    Ok(table.get(key)?.map_or(0, |v| v.value()))
}

/// Increments a counter and returns its new value.
pub(crate) fn next_counter(
    table: &mut redb::Table<'_, &'static str, u64>,
    key: &str,
) -> Result<u64, StoreError> {
    let next = read_counter(table, key)?
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt {
            what: format!("counters[{key:?}]"),
            detail: "the counter is exhausted".to_string(),
        })?;
    table.insert(key, next)?;
    Ok(next)
}
