//! Embedded redb store: workload records with revisions, schema versions, and the append-only event log.
