//! Persistence, schema versioning and corruption handling of the store file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{COUNTERS, META, WORKLOADS, event, name, record};
use redb::ReadableDatabase;
use vimana_api::EventKind;
use vimana_store::{Record, SCHEMA_VERSION, Store, StoreError};

fn path_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("state.redb")
}

/// Writes one raw value into the `workloads` table of a closed store.
fn write_raw_record(path: &std::path::Path, key: &str, bytes: &[u8]) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(WORKLOADS)
        .unwrap()
        .insert(key, bytes)
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn fresh_store_records_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    drop(Store::open(&path).unwrap());
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(
        meta.get("schema_version").unwrap().unwrap().value(),
        SCHEMA_VERSION
    );
}

#[test]
fn reopen_after_drop_preserves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let (records, events, revision, seq) = {
        let store = Store::open(&path).unwrap();
        let mut a = record("alpha");
        a.handle = Some(serde_json::json!({"pid": 99, "socket": "/run/a.sock", "certs": ["x"]}));
        store.put(a, Some(event(EventKind::Created, "a"))).unwrap();
        store
            .put(record("beta"), Some(event(EventKind::Created, "b")))
            .unwrap();
        store.put(record("gamma"), None).unwrap();
        store
            .remove(&name("gamma"), event(EventKind::Removed, "g"))
            .unwrap();
        store
            .update(&name("beta"), |r| {
                let mut r = r.unwrap();
                r.workload.restarts = 3;
                Some((r, Some(event(EventKind::Restarted, "b again"))))
            })
            .unwrap();
        (
            store.list().unwrap(),
            store.events(None, None, usize::MAX).unwrap(),
            store.current_revision().unwrap(),
            store.last_event_seq().unwrap(),
        )
    };
    assert_eq!(records.len(), 2);
    assert_eq!(events.len(), 4);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.list().unwrap(), records);
    assert_eq!(store.events(None, None, usize::MAX).unwrap(), events);
    assert_eq!(store.current_revision().unwrap(), revision);
    assert_eq!(store.last_event_seq().unwrap(), seq);
    assert_eq!(store.get(&name("gamma")).unwrap(), None);

    // Counters continue where they were, never reusing a value.
    let (again, e) = store
        .put(record("gamma"), Some(event(EventKind::Created, "g2")))
        .unwrap();
    assert_eq!(again.workload.revision, revision + 1);
    assert_eq!(e.unwrap().seq, seq + 1);
}

#[test]
fn newer_schema_in_meta_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    drop(Store::open(&path).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 7)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 7,
                known: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "store {} was written by a newer vimana (schema 7, this build knows up to 1); upgrade vimana or point VIMANA_HOME elsewhere",
            path.display()
        )
    );
}

#[test]
fn record_of_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    {
        let store = Store::open(&path).unwrap();
        store.put(record("old"), None).unwrap();
    }
    // A future record whose shape this build could not even decode.
    write_raw_record(
        &path,
        "future",
        br#"{"schema":99,"workload":{"totally":"different"}}"#,
    );
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, location, ..
        } => {
            assert_eq!(*found, 99);
            assert!(location.contains("future"), "{location}");
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("written by a newer vimana (schema 99, this build knows up to 1)"),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");

    // Nothing was changed by the refused open: the record is still there.
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(
        txn.open_table(WORKLOADS)
            .unwrap()
            .get("future")
            .unwrap()
            .is_some()
    );
}

#[test]
fn record_with_garbage_bytes_is_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    {
        let store = Store::open(&path).unwrap();
        store.put(record("fine"), None).unwrap();
    }
    write_raw_record(&path, "broken", b"\x00\xffnot json at all");
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::Corrupt { what, .. } => assert!(what.contains("broken"), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains("\"broken\""), "{err}");
}

#[test]
fn record_of_current_schema_that_does_not_decode_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    drop(Store::open(&path).unwrap());
    write_raw_record(&path, "half", br#"{"schema":1,"workload":{"name":"half"}}"#);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what.contains("half")),
        "{err:?}"
    );
}

#[test]
fn record_stored_under_the_wrong_key_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let stored: Record = {
        let store = Store::open(&path).unwrap();
        store.put(record("right"), None).unwrap().0
    };
    write_raw_record(&path, "wrong", &serde_json::to_vec(&stored).unwrap());
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what.contains("wrong")),
        "{err:?}"
    );
}

#[test]
fn counter_behind_the_records_is_moved_forward() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    {
        let store = Store::open(&path).unwrap();
        store.put(record("a"), None).unwrap();
        store.put(record("a"), None).unwrap();
    }
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(COUNTERS)
            .unwrap()
            .insert("revision", 0)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.current_revision().unwrap(), 2);
    assert_eq!(store.put(record("b"), None).unwrap().0.workload.revision, 3);
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}
