//! The `resources` table: round trip, one transaction per write, revisions,
//! resource events, schema checks on open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use vimana_api::ResourceEventKind;
use vimana_store::{NewResourceEvent, ResourceWrite, SCHEMA_VERSION, Store, StoreError};

const RESOURCES: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("resources");

fn put(key: &str, n: u32) -> ResourceWrite {
    ResourceWrite::Put {
        key: key.into(),
        resource: json!({"kind": key.split('/').next(), "n": n}),
    }
}

fn applied(key: &str) -> NewResourceEvent {
    NewResourceEvent {
        kind: ResourceEventKind::ResourceApplied,
        resource: key.into(),
        message: "created".into(),
    }
}

#[test]
fn resources_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let (r1, r2) = {
        let store = Store::open(&path).unwrap();
        assert!(store.resources().unwrap().is_empty());
        let r1 = store
            .write_resources(
                vec![put("Domain/example", 1), put("Vimana/local", 1)],
                vec![applied("Domain/example"), applied("Vimana/local")],
            )
            .unwrap();
        let r2 = store
            .write_resources(
                vec![
                    put("Domain/example", 2),
                    ResourceWrite::Delete {
                        key: "Vimana/local".into(),
                    },
                ],
                vec![],
            )
            .unwrap();
        assert!(r2 > r1, "each write takes the next global revision");
        // Nothing to write: nothing written, same revision.
        assert_eq!(store.write_resources(vec![], vec![]).unwrap(), r2);
        (r1, r2)
    };
    let store = Store::open(&path).unwrap();
    let all = store.resources().unwrap();
    assert_eq!(all.len(), 1);
    let (key, record) = &all[0];
    assert_eq!(key, "Domain/example");
    assert_eq!(record.schema, SCHEMA_VERSION);
    assert_eq!(record.revision, r2);
    assert_eq!(record.resource["n"], 2);
    assert!(store.current_revision().unwrap() >= r2);
    let events = store.resource_events(None, 100).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].resource, "Domain/example");
    assert_eq!(events[0].revision, r1);
    assert!(events[1].seq > events[0].seq);
    assert_eq!(
        store
            .resource_events(Some(events[0].seq), 100)
            .unwrap()
            .len(),
        1
    );
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["kind"], "resource-applied");
}

#[test]
fn resource_of_newer_schema_is_refused_and_garbage_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    drop(Store::open(&path).unwrap());
    let write = |bytes: &[u8]| {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(RESOURCES)
            .unwrap()
            .insert("Domain/x", bytes)
            .unwrap();
        txn.commit().unwrap();
    };
    let newer =
        json!({"schema": SCHEMA_VERSION + 1, "revision": 1, "updatedAt": "", "resource": {}});
    write(serde_json::to_vec(&newer).unwrap().as_slice());
    match Store::open(&path).unwrap_err() {
        StoreError::NewerSchema { location, .. } => assert!(location.contains("Domain/x")),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    write(b"not json");
    match Store::open(&path).unwrap_err() {
        StoreError::Corrupt { what, .. } => assert_eq!(what, "resources[\"Domain/x\"]"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn revision_counter_is_moved_past_stored_resources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let rev = {
        let store = Store::open(&path).unwrap();
        store
            .write_resources(vec![put("Server/adder", 1)], vec![])
            .unwrap()
    };
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let counters: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("counters");
        txn.open_table(counters)
            .unwrap()
            .insert("revision", 0)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.current_revision().unwrap(), rev);
    assert!(
        store
            .write_resources(vec![put("Server/adder", 2)], vec![])
            .unwrap()
            > rev
    );
}
