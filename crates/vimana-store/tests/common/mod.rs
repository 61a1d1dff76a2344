//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use vimana_api::{
    DesiredState, EventKind, SpacecoreSpec, Workload, WorkloadKind, WorkloadName, WorkloadSpec,
    WorkloadState,
};
use vimana_store::{NewEvent, Record};

pub fn name(n: &str) -> WorkloadName {
    WorkloadName::new(n).unwrap()
}

pub fn record(n: &str) -> Record {
    Record::new(Workload {
        name: name(n),
        kind: WorkloadKind::Spacecore,
        state: WorkloadState::Running,
        desired: DesiredState::Running,
        pid: Some(1234),
        restarts: 0,
        detail: "ok".into(),
        revision: 0,
        created_at: String::new(),
        updated_at: String::new(),
        spec: WorkloadSpec::Spacecore(SpacecoreSpec {
            plugin: "/usr/local/bin/plugin".into(),
            args: vec!["--flag".into()],
            env: BTreeMap::from([("K".to_string(), "V".to_string())]),
            start_timeout_ms: Some(5000),
        }),
    })
}

pub fn event(kind: EventKind, message: &str) -> NewEvent {
    NewEvent::new(kind, Some(WorkloadState::Running), message)
}

/// The on-disk table layout, written to directly to fake other builds and damage.
pub const META: redb::TableDefinition<&str, u32> = redb::TableDefinition::new("meta");
pub const WORKLOADS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("workloads");
pub const COUNTERS: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("counters");
