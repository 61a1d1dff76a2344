//! Unit tests of the store's operations.

use std::collections::BTreeMap;

use tempfile::TempDir;
use vimana_api::{
    DesiredState, EventKind, SpacecoreSpec, Workload, WorkloadKind, WorkloadName, WorkloadSpec,
    WorkloadState,
};

use crate::{NewEvent, Record, SCHEMA_VERSION, Store, StoreError, now_rfc3339};

fn name(n: &str) -> WorkloadName {
    WorkloadName::new(n).unwrap()
}

fn record(n: &str) -> Record {
    Record::new(Workload {
        name: name(n),
        kind: WorkloadKind::Spacecore,
        state: WorkloadState::Starting,
        desired: DesiredState::Running,
        pid: None,
        restarts: 0,
        detail: String::new(),
        revision: 0,
        created_at: String::new(),
        updated_at: String::new(),
        spec: WorkloadSpec::Spacecore(SpacecoreSpec {
            plugin: "/bin/true".into(),
            args: vec![],
            env: BTreeMap::new(),
            start_timeout_ms: None,
        }),
    })
}

fn ev(kind: EventKind, msg: &str) -> NewEvent {
    NewEvent::new(kind, Some(WorkloadState::Running), msg)
}

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    (dir, store)
}

#[test]
fn fresh_store_is_empty() {
    let (_dir, store) = open();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.get(&name("a")).unwrap(), None);
    assert_eq!(store.last_event_seq().unwrap(), 0);
    assert_eq!(store.current_revision().unwrap(), 0);
    assert!(store.events(None, None, 100).unwrap().is_empty());
}

#[test]
fn put_stamps_schema_revision_and_times() {
    let (_dir, store) = open();
    let mut rec = record("a");
    rec.schema = 0;
    rec.workload.revision = 42;
    rec.handle = Some(serde_json::json!({"pid": 7, "socket": "/tmp/s"}));
    let (stored, event) = store.put(rec, None).unwrap();
    assert_eq!(event, None);
    assert_eq!(stored.schema, SCHEMA_VERSION);
    assert_eq!(stored.workload.revision, 1);
    assert!(!stored.workload.created_at.is_empty());
    assert_eq!(stored.workload.created_at, stored.workload.updated_at);
    assert_eq!(store.get(&name("a")).unwrap(), Some(stored.clone()));

    // created_at is kept on later writes.
    let mut again = stored.clone();
    again.workload.created_at = "2000-01-01T00:00:00Z".into();
    let (again, _) = store.put(again, None).unwrap();
    assert_eq!(again.workload.created_at, "2000-01-01T00:00:00Z");
    assert_eq!(again.handle, stored.handle);
}

#[test]
fn revision_strictly_increases_across_all_operations() {
    let (_dir, store) = open();
    let mut revisions = Vec::new();

    let (a, _) = store.put(record("a"), None).unwrap();
    revisions.push(a.workload.revision);
    let (b, _) = store.put(record("b"), None).unwrap();
    revisions.push(b.workload.revision);
    let (a2, _) = store
        .update(&name("a"), |cur| {
            let mut r = cur.unwrap();
            r.workload.restarts += 1;
            Some((r, None))
        })
        .unwrap()
        .unwrap();
    assert_eq!(a2.workload.restarts, 1);
    revisions.push(a2.workload.revision);
    let before_remove = store.current_revision().unwrap();
    store
        .remove(&name("a"), ev(EventKind::Removed, "bye"))
        .unwrap()
        .unwrap();
    let after_remove = store.current_revision().unwrap();
    assert!(after_remove > before_remove, "remove consumes a revision");
    revisions.push(after_remove);
    let (a3, _) = store.put(record("a"), None).unwrap();
    revisions.push(a3.workload.revision);
    let (a4, _) = store
        .update(&name("a"), |cur| cur.map(|r| (r, None)))
        .unwrap()
        .unwrap();
    revisions.push(a4.workload.revision);

    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert_eq!(store.current_revision().unwrap(), a4.workload.revision);
    // b was not touched.
    assert_eq!(store.get(&name("b")).unwrap().unwrap(), b);
}

#[test]
fn update_of_absent_record_creates_it() {
    let (_dir, store) = open();
    let (rec, event) = store
        .update(&name("new"), |cur| {
            assert!(cur.is_none());
            Some((record("new"), Some(ev(EventKind::Created, "made"))))
        })
        .unwrap()
        .unwrap();
    assert_eq!(rec.workload.revision, 1);
    let event = event.unwrap();
    assert_eq!(event.kind, EventKind::Created);
    assert_eq!(event.workload, name("new"));
    assert_eq!(event.time, rec.workload.updated_at);
}

#[test]
fn update_returning_none_writes_nothing() {
    let (_dir, store) = open();
    let (a, _) = store.put(record("a"), None).unwrap();
    let out = store.update(&name("a"), |_| None).unwrap();
    assert_eq!(out, None);
    assert_eq!(store.current_revision().unwrap(), a.workload.revision);
    assert_eq!(store.get(&name("a")).unwrap(), Some(a));
    assert_eq!(store.last_event_seq().unwrap(), 0);
}

#[test]
fn update_refuses_rename() {
    let (_dir, store) = open();
    store.put(record("a"), None).unwrap();
    let err = store
        .update(&name("a"), |_| {
            Some((record("b"), Some(ev(EventKind::Error, "x"))))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NameMismatch { .. }), "{err}");
    assert_eq!(store.get(&name("b")).unwrap(), None);
    assert_eq!(store.current_revision().unwrap(), 1);
    assert_eq!(store.last_event_seq().unwrap(), 0);
}

#[test]
fn remove_of_absent_record_is_none_and_writes_nothing() {
    let (_dir, store) = open();
    let out = store
        .remove(&name("ghost"), ev(EventKind::Removed, "x"))
        .unwrap();
    assert_eq!(out, None);
    assert_eq!(store.current_revision().unwrap(), 0);
    assert_eq!(store.last_event_seq().unwrap(), 0);
}

#[test]
fn list_is_sorted_by_name() {
    let (_dir, store) = open();
    for n in ["delta", "alpha", "charlie", "bravo", "alpha-2"] {
        store.put(record(n), None).unwrap();
    }
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|r| r.workload.name.to_string())
        .collect();
    assert_eq!(names, ["alpha", "alpha-2", "bravo", "charlie", "delta"]);
}

#[test]
fn event_seq_strictly_increases_and_events_filter() {
    let (_dir, store) = open();
    let mut seqs = Vec::new();
    let (_, e) = store
        .put(record("a"), Some(ev(EventKind::Created, "a1")))
        .unwrap();
    seqs.push(e.unwrap().seq);
    let (_, e) = store
        .put(record("b"), Some(ev(EventKind::Created, "b1")))
        .unwrap();
    seqs.push(e.unwrap().seq);
    store.put(record("b"), None).unwrap(); // no event
    let (_, e) = store
        .update(&name("a"), |r| {
            r.map(|r| (r, Some(ev(EventKind::StateChanged, "a2"))))
        })
        .unwrap()
        .unwrap();
    seqs.push(e.unwrap().seq);
    let e = store
        .remove(&name("b"), ev(EventKind::Removed, "b2"))
        .unwrap()
        .unwrap();
    assert_eq!(e.kind, EventKind::Removed);
    seqs.push(e.seq);
    let (_, e) = store
        .put(record("b"), Some(ev(EventKind::Created, "b3")))
        .unwrap();
    seqs.push(e.unwrap().seq);

    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(store.last_event_seq().unwrap(), 5);

    let msgs = |events: Vec<vimana_api::Event>| -> Vec<String> {
        events.into_iter().map(|e| e.message).collect()
    };
    assert_eq!(
        msgs(store.events(None, None, 100).unwrap()),
        ["a1", "b1", "a2", "b2", "b3"]
    );
    assert_eq!(
        msgs(store.events(Some(2), None, 100).unwrap()),
        ["a2", "b2", "b3"]
    );
    assert_eq!(
        msgs(store.events(Some(5), None, 100).unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        msgs(store.events(None, Some(&name("b")), 100).unwrap()),
        ["b1", "b2", "b3"]
    );
    assert_eq!(
        msgs(store.events(Some(2), Some(&name("b")), 100).unwrap()),
        ["b2", "b3"]
    );
    assert_eq!(
        msgs(store.events(Some(0), Some(&name("a")), 1).unwrap()),
        ["a1"]
    );
    assert_eq!(msgs(store.events(None, None, 2).unwrap()), ["a1", "b1"]);
    assert!(store.events(None, None, 0).unwrap().is_empty());
    assert!(
        store
            .events(None, Some(&name("zzz")), 100)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn event_log_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb"))
        .unwrap()
        .with_event_limit(5);
    for i in 0..12 {
        store
            .put(
                record("a"),
                Some(ev(EventKind::StateChanged, &i.to_string())),
            )
            .unwrap();
    }
    let seqs: Vec<u64> = store
        .events(None, None, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [8, 9, 10, 11, 12]);
    assert_eq!(store.last_event_seq().unwrap(), 12);
    // A reader that fell behind sees a gap, not wrong events.
    assert_eq!(store.events(Some(3), None, 1).unwrap()[0].seq, 8);
}

#[test]
fn second_open_of_the_same_file_is_refused_clearly() {
    let (dir, _store) = open();
    let path = dir.path().join("state.redb");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("another vimana daemon is using"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn open_of_a_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope").join("state.redb");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn now_is_rfc3339_utc() {
    let now = now_rfc3339();
    assert!(now.ends_with('Z'), "{now}");
    time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339).unwrap();
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}
