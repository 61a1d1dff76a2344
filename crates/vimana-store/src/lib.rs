//! Embedded redb store: workload records with revisions, schema versions,
//! and the append-only event log, in one file at `VIMANA_HOME/state.redb`.
//!
//! # Layout
//!
//! | table       | key                 | value                               |
//! |-------------|---------------------|-------------------------------------|
//! | `meta`      | `"schema_version"`  | `u32`, [`SCHEMA_VERSION`]           |
//! | `workloads` | workload name       | JSON of a [`Record`]                |
//! | `events`    | `u64` sequence      | JSON of a [`vimana_api::Event`]     |
//! | `resources` | `<Kind>/<name>`     | JSON of a [`ResourceRecord`]        |
//! | `resource_events` | `u64` sequence | JSON of a [`vimana_api::ResourceEvent`] |
//! | `counters`  | `"revision"`, `"event_seq"`, `"resource_event_seq"` | `u64`, last value handed out |
//!
//! # Guarantees
//!
//! * Every write is one redb transaction committed with
//!   `Durability::Immediate`: once a call returns `Ok`, its effect survives a
//!   crash or `kill -9`, and a crash never leaves a partial write.
//! * Revisions are global: each `put`, `update` and `remove` takes the next
//!   one, so they strictly increase across all records and are never reused.
//! * Event sequence numbers strictly increase and are never reused.
//! * The event log is bounded: it keeps the newest [`MAX_EVENTS`] events and
//!   deletes the oldest in the same transaction that appends a new one.
//! * Every record carries its schema version; a database or record written
//!   by a newer build is refused at [`Store::open`] instead of misread.

mod clock;
mod error;
mod events;
mod record;
mod resources;
mod store;
mod tables;

pub use clock::now_rfc3339;
pub use error::StoreError;
pub use events::{MAX_EVENTS, NewEvent};
pub use record::{Record, SCHEMA_VERSION};
pub use resources::{NewResourceEvent, ResourceRecord, ResourceWrite};
pub use store::Store;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
