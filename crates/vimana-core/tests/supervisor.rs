//! The core's lifecycle logic (start, idempotence, failures, crash backoff,
//! probes, stop, remove, adoption after a daemon restart, events and logs)
//! against a recording fake driver: no processes are started.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::{FIRST_PID, FakeDriver, Plan, run_line};
use serde_json::json;
use tokio::sync::Notify;
use vimana_api::{
    Action, ActionOutcome, ApiError, DesiredState, Event, EventKind, LogRecord, LogStream,
    SpacecoreSpec, Workload, WorkloadName, WorkloadSpec, WorkloadState,
};
use vimana_core::{Core, CoreApi, CoreOptions, LogBook};
use vimana_store::{Store, StoreError};

const PID: u32 = FIRST_PID;

// ------------------------------------------------------------------ helpers

fn opts() -> CoreOptions {
    CoreOptions {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
        healthy_reset: Duration::from_millis(500),
        start_wait: Duration::from_secs(2),
        ..CoreOptions::default()
    }
}

fn name(n: &str) -> WorkloadName {
    WorkloadName::new(n).unwrap()
}

fn spec(plugin: &str) -> WorkloadSpec {
    WorkloadSpec::Spacecore(SpacecoreSpec {
        plugin: plugin.into(),
        args: vec![],
        env: Default::default(),
        start_timeout_ms: None,
    })
}

fn db_path(home: &Path) -> PathBuf {
    home.join("state.redb")
}

/// Opens the store, retrying while a previous "daemon" still releases it.
async fn open_store(home: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(&db_path(home)) {
            Ok(s) => return s,
            Err(StoreError::AlreadyOpen { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("cannot open the store: {e}"),
        }
    }
}

/// A "daemon": a core over the store and logs under `home`.
async fn daemon(home: &Path, driver: &FakeDriver) -> Core {
    let store = open_store(home).await;
    let logs = LogBook::new(home.join("logs"), Default::default()).unwrap();
    Core::new(store, logs, vec![driver.arc()], opts())
}

/// Ends a "daemon" the way the real one exits: detach (workloads keep
/// running), drop the core, and wait until its store is released.
async fn shutdown(core: Core, home: &Path) {
    core.detach_all();
    drop(core);
    drop(open_store(home).await);
}

/// The stored record of `n`, read with the daemon down.
async fn stored(home: &Path, n: &str) -> Option<vimana_store::Record> {
    open_store(home).await.get(&name(n)).unwrap()
}

async fn start(core: &Core, n: &str, s: Option<WorkloadSpec>) -> Result<Workload, ApiError> {
    match core
        .handle(Action::Start {
            name: name(n),
            spec: s,
        })
        .await?
    {
        ActionOutcome::Workload(w) => Ok(*w),
        other => panic!("Start answered {other:?}"),
    }
}

async fn stop(core: &Core, n: &str) -> Result<Workload, ApiError> {
    match core.handle(Action::Stop { name: name(n) }).await? {
        ActionOutcome::Workload(w) => Ok(*w),
        other => panic!("Stop answered {other:?}"),
    }
}

async fn get(core: &Core, n: &str) -> Result<Workload, ApiError> {
    match core.handle(Action::Get { name: name(n) }).await? {
        ActionOutcome::Workload(w) => Ok(*w),
        other => panic!("Get answered {other:?}"),
    }
}

async fn events(core: &Core, since: Option<u64>, n: Option<&str>) -> Vec<Event> {
    let workload = n.map(name);
    match core
        .handle(Action::Events { since, workload })
        .await
        .unwrap()
    {
        ActionOutcome::Events(e) => e,
        other => panic!("Events answered {other:?}"),
    }
}

async fn logs(core: &Core, n: &str, tail: Option<usize>) -> Result<Vec<LogRecord>, ApiError> {
    match core
        .handle(Action::Logs {
            name: name(n),
            tail,
        })
        .await?
    {
        ActionOutcome::Logs(l) => Ok(l),
        other => panic!("Logs answered {other:?}"),
    }
}

fn daemon_notes(records: &[LogRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.stream == LogStream::Daemon)
        .map(|r| r.message.clone())
        .collect()
}

fn kinds(evs: &[Event]) -> Vec<(EventKind, Option<WorkloadState>)> {
    evs.iter().map(|e| (e.kind.clone(), e.state)).collect()
}

/// Polls `n` until `pred` holds (at most 5 s).
async fn wait_for(core: &Core, n: &str, what: &str, pred: impl Fn(&Workload) -> bool) -> Workload {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let w = get(core, n).await.unwrap();
        if pred(&w) {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last record: {w:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls the fake until `pred` holds on its call log (at most 5 s).
async fn wait_calls(driver: &FakeDriver, what: &str, pred: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pred(&driver.log()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; calls: {:#?}",
            driver.calls()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn count(calls: &[String], line: &str) -> usize {
    calls.iter().filter(|c| *c == line).count()
}

fn pid_line(what: &str, pid: u32) -> String {
    format!("{what} pid={pid}")
}

// -------------------------------------------------------------------- cases

#[tokio::test]
async fn start_runs_probes_and_records_events_and_revisions() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    driver.set_probe_default(Ok("synced height 42"));
    let core = daemon(home.path(), &driver).await;
    let mut live = core.subscribe_events();

    let w = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    assert_eq!(w.state, WorkloadState::Running);
    assert_eq!(w.desired, DesiredState::Running);
    assert_eq!(w.pid, Some(PID));
    assert_eq!(w.detail, "synced height 42");
    assert_eq!(w.restarts, 0);
    assert_eq!(w.spec, spec("/bin/a"));
    assert_eq!(
        driver.calls(),
        [run_line(true, None, false), pid_line("launched", PID)]
    );
    assert_eq!(
        driver.log()[2],
        pid_line("probe", PID),
        "detail comes from a probe"
    );

    let evs = events(&core, None, Some("node")).await;
    assert_eq!(
        kinds(&evs),
        [
            (EventKind::Created, Some(WorkloadState::Starting)),
            (EventKind::StateChanged, Some(WorkloadState::Running)),
        ]
    );
    // The same events went to live subscribers.
    let first = live.recv().await.unwrap();
    let second = live.recv().await.unwrap();
    assert_eq!(vec![first, second], evs);

    // Polling keeps probing; a new answer is recorded with a new revision.
    let mut revisions = vec![w.revision];
    driver.set_probe_default(Ok("synced height 43"));
    let w = wait_for(&core, "node", "new detail", |w| {
        w.detail == "synced height 43"
    })
    .await;
    revisions.push(w.revision);
    // An unchanged answer changes nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(&core, "node").await.unwrap().revision, w.revision);
    assert!(
        driver
            .log()
            .iter()
            .filter(|c| c.starts_with("probe"))
            .count()
            >= 4
    );

    let w = stop(&core, "node").await.unwrap();
    revisions.push(w.revision);
    assert!(
        revisions.windows(2).all(|p| p[0] < p[1]),
        "revisions must increase on every change: {revisions:?}"
    );
    // Every event of this workload bumped the revision: Stop alone wrote
    // desired=stopped, stopping and stopped.
    assert!(w.revision >= revisions[1] + 3, "{revisions:?}");
}

#[tokio::test]
async fn second_start_is_idempotent_and_another_spec_conflicts() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;

    let first = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    let again = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    assert_eq!(again.pid, first.pid);
    assert_eq!(again.state, WorkloadState::Running);
    let bare = start(&core, "node", None).await.unwrap();
    assert_eq!(bare.pid, first.pid);
    assert_eq!(
        driver.runs().len(),
        1,
        "no second launch: {:?}",
        driver.calls()
    );

    let err = start(&core, "node", Some(spec("/bin/b")))
        .await
        .unwrap_err();
    let ApiError::Conflict(msg) = &err else {
        panic!("expected a conflict, got {err:?}")
    };
    assert!(msg.contains("different spec"), "{msg}");
    assert_eq!(err.status(), 409);
    assert_eq!(driver.runs().len(), 1);
    assert_eq!(get(&core, "node").await.unwrap().spec, spec("/bin/a"));

    // Concurrent starts of a new workload launch it once.
    let (a, b) = tokio::join!(
        start(&core, "other", Some(spec("/bin/a"))),
        start(&core, "other", Some(spec("/bin/a")))
    );
    assert_eq!(a.unwrap().pid, b.unwrap().pid);
    assert_eq!(driver.runs().len(), 2);

    // Once stopped, a start with another spec is a fresh launch.
    stop(&core, "node").await.unwrap();
    let w = start(&core, "node", Some(spec("/bin/b"))).await.unwrap();
    assert_eq!(w.spec, spec("/bin/b"));
    assert_eq!(w.state, WorkloadState::Running);
    assert_eq!(driver.runs().len(), 3);
    assert_eq!(driver.runs()[2], run_line(true, None, false));
}

#[tokio::test]
async fn failed_first_launch_is_reported_and_not_retried_until_started_again() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let why = "plugin /bin/a is not executable; run `chmod +x /bin/a`";
    driver.push_plan(Plan::Fail(why.into()));
    let core = daemon(home.path(), &driver).await;

    let err = start(&core, "node", Some(spec("/bin/a")))
        .await
        .unwrap_err();
    assert_eq!(err, ApiError::Workload(why.into()));
    assert_eq!(err.status(), 422);

    let w = get(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Failed);
    assert_eq!(w.desired, DesiredState::Stopped);
    assert_eq!(w.pid, None);
    assert_eq!(w.detail, why);
    assert_eq!(w.restarts, 0);
    let evs = events(&core, None, Some("node")).await;
    assert_eq!(
        kinds(&evs),
        [
            (EventKind::Created, Some(WorkloadState::Starting)),
            (EventKind::Error, Some(WorkloadState::Failed)),
        ]
    );
    assert_eq!(evs[1].message, why);
    let notes = daemon_notes(&logs(&core, "node", None).await.unwrap());
    assert_eq!(notes, [format!("launch failed: {why}")]);

    // No restart loop after a failed first launch.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        driver.calls(),
        [run_line(true, None, false), format!("failed: {why}")]
    );
    assert_eq!(
        get(&core, "node").await.unwrap().state,
        WorkloadState::Failed
    );

    // Stop of a failed workload keeps it failed and calls no driver.
    let w = stop(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Failed);
    assert_eq!(driver.calls().len(), 2);

    // A later Start (without a spec) launches again.
    let w = start(&core, "node", None).await.unwrap();
    assert_eq!(w.state, WorkloadState::Running);
    assert_eq!(w.desired, DesiredState::Running);
    assert_eq!(w.pid, Some(PID));
    assert_eq!(w.detail, "healthy");
    assert_eq!(
        driver.runs(),
        [run_line(true, None, false), run_line(true, None, false)]
    );
}

#[tokio::test]
async fn crashes_back_off_doubling_to_the_cap_and_a_healthy_run_resets() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    for _ in 0..5 {
        driver.push_plan(Plan::Crash);
    }
    let core = daemon(home.path(), &driver).await;

    // The first launch itself succeeds, so Start succeeds (the record may
    // already show the crash).
    let w = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    assert_eq!(w.desired, DesiredState::Running);
    let w = wait_for(&core, "node", "5 restarts", |w| {
        w.restarts == 5 && w.state == WorkloadState::Running
    })
    .await;
    assert_eq!(w.pid, Some(PID + 5));
    assert_eq!(w.desired, DesiredState::Running);

    let runs = driver.runs();
    assert_eq!(runs.len(), 6);
    assert_eq!(runs[0], run_line(true, None, false));
    for r in &runs[1..] {
        assert_eq!(
            *r,
            run_line(false, None, false),
            "relaunches are not first starts"
        );
    }

    let expected = [10u64, 20, 40, 80, 80];
    let restarted: Vec<Event> = events(&core, None, Some("node"))
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Restarted)
        .collect();
    assert_eq!(restarted.len(), 5);
    for (e, ms) in restarted.iter().zip(expected) {
        assert_eq!(e.message, format!("process exited; restarting in {ms} ms"));
        assert_eq!(e.state, Some(WorkloadState::Backoff));
    }

    // The fake's timestamps: each relaunch comes at least the delay after
    // the supervisor reaped the crashed instance (upper bound generous).
    let timed = driver.timed_log();
    for (i, ms) in expected.iter().enumerate() {
        let pid = PID + i as u32;
        let killed = timed
            .iter()
            .position(|(_, c)| *c == pid_line("kill", pid))
            .unwrap_or_else(|| panic!("pid {pid} was not reaped: {:?}", driver.calls()));
        let (next_at, next) = timed[killed..]
            .iter()
            .find(|(_, c)| c.starts_with("run "))
            .unwrap();
        assert_eq!(*next, run_line(false, None, false));
        let gap = next_at.duration_since(timed[killed].0);
        assert!(
            gap >= Duration::from_millis(*ms) - Duration::from_millis(1)
                && gap < Duration::from_millis(ms + 1500),
            "relaunch {i}: gap {gap:?}, expected about {ms} ms"
        );
    }
    let notes = daemon_notes(&logs(&core, "node", None).await.unwrap());
    assert_eq!(
        notes
            .iter()
            .filter(|n| *n == "workload ended: process exited")
            .count(),
        5
    );

    // A run longer than healthy_reset (500 ms) resets the delay to the base.
    tokio::time::sleep(Duration::from_millis(700)).await;
    driver.exit(PID + 5);
    let w = wait_for(&core, "node", "6th restart", |w| {
        w.restarts == 6 && w.state == WorkloadState::Running
    })
    .await;
    assert_eq!(w.pid, Some(PID + 6));
    let last = events(&core, None, Some("node"))
        .await
        .into_iter()
        .rfind(|e| e.kind == EventKind::Restarted)
        .unwrap();
    assert_eq!(last.message, "process exited; restarting in 10 ms");
}

#[tokio::test]
async fn failed_probe_kills_and_relaunches() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    driver.set_probe_default(Ok("fine"));
    let core = daemon(home.path(), &driver).await;

    let w = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    assert_eq!(w.detail, "fine");
    // The next poll fails; later probes (of the new instance) succeed.
    driver.push_probe(Err("status call: connection refused"));
    driver.set_probe_default(Ok("fine again"));
    let w = wait_for(&core, "node", "relaunch", |w| {
        w.restarts == 1 && w.state == WorkloadState::Running
    })
    .await;
    assert_eq!(w.pid, Some(PID + 1));
    assert_eq!(w.detail, "fine again");
    assert!(!driver.alive(PID), "the broken instance was killed");

    assert_eq!(
        driver.calls(),
        [
            run_line(true, None, false),
            pid_line("launched", PID),
            pid_line("kill", PID),
            run_line(false, None, false),
            pid_line("launched", PID + 1),
        ]
    );
    // The kill came right after a probe of the broken instance.
    let log = driver.log();
    let killed = log
        .iter()
        .position(|c| *c == pid_line("kill", PID))
        .unwrap();
    assert_eq!(log[killed - 1], pid_line("probe", PID));
    let restarted = events(&core, None, Some("node"))
        .await
        .into_iter()
        .find(|e| e.kind == EventKind::Restarted)
        .unwrap();
    assert_eq!(
        restarted.message,
        "status call: connection refused; restarting in 10 ms"
    );
    assert_eq!(restarted.state, Some(WorkloadState::Backoff));
}

#[tokio::test]
async fn stop_stops_the_instance_once() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    let since = events(&core, None, None).await.last().unwrap().seq;

    let w = stop(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Stopped);
    assert_eq!(w.desired, DesiredState::Stopped);
    assert_eq!(w.pid, None);
    assert_eq!(w.detail, "stopped");
    assert_eq!(count(&driver.calls(), "stop pid=100"), 1);
    assert!(!driver.alive(PID));
    assert_eq!(
        kinds(&events(&core, Some(since), None).await),
        [
            (EventKind::StateChanged, Some(WorkloadState::Stopping)),
            (EventKind::StateChanged, Some(WorkloadState::Stopped)),
        ]
    );

    // Stopping again changes nothing and calls no driver.
    let again = stop(&core, "node").await.unwrap();
    assert_eq!(again.state, WorkloadState::Stopped);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        driver.calls(),
        [
            run_line(true, None, false),
            "launched pid=100".into(),
            "stop pid=100".into()
        ]
    );
    assert_eq!(
        get(&core, "node").await.unwrap().state,
        WorkloadState::Stopped
    );

    // The adoption handle is gone with the instance.
    shutdown(core, home.path()).await;
    let r = stored(home.path(), "node").await.unwrap();
    assert_eq!(r.handle, None);
    assert_eq!(r.workload.pid, None);
}

#[tokio::test]
async fn stop_that_fails_kills_the_instance() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    driver.set_stop_fails("graceful shutdown timed out");
    let w = stop(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Stopped);
    assert_eq!(w.detail, "stopped forcefully: graceful shutdown timed out");
    let calls = driver.calls();
    assert_eq!(calls[calls.len() - 2..], ["stop pid=100", "kill pid=100"]);
}

#[tokio::test]
async fn stop_during_backoff_stays_stopped() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    driver.push_plan(Plan::Crash);
    driver.set_fallback(Plan::Fail("still broken".into()));
    let core = daemon(home.path(), &driver).await;
    start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    wait_for(
        &core,
        "node",
        "backoff after a few failed relaunches",
        |w| w.restarts >= 3 && w.state == WorkloadState::Backoff,
    )
    .await;

    let w = stop(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Stopped);
    assert_eq!(w.desired, DesiredState::Stopped);
    assert_eq!(w.pid, None);
    let runs = driver.runs().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        driver.runs().len(),
        runs,
        "no relaunch after Stop: {:?}",
        driver.calls()
    );
    let w = get(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Stopped);
    assert!(
        !driver.calls().iter().any(|c| c.starts_with("stop")),
        "nothing was alive to stop"
    );
    // The failed relaunches were logged and backed off.
    let notes = daemon_notes(&logs(&core, "node", None).await.unwrap());
    assert!(
        notes.contains(&"launch failed: still broken".to_string()),
        "{notes:?}"
    );
    let restarted: Vec<String> = events(&core, None, Some("node"))
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Restarted)
        .map(|e| e.message)
        .collect();
    assert_eq!(restarted[0], "process exited; restarting in 10 ms");
    assert_eq!(restarted[1], "still broken; restarting in 20 ms");

    shutdown(core, home.path()).await;
    assert_eq!(stored(home.path(), "node").await.unwrap().handle, None);
}

#[tokio::test]
async fn start_that_hangs_times_out_and_stop_waits_for_the_launch() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let gate = Arc::new(Notify::new());
    driver.push_plan(Plan::Hang(gate.clone(), Box::new(Plan::Run)));
    let core = daemon(home.path(), &driver).await;

    let t = Instant::now();
    let err = start(&core, "node", Some(spec("/bin/a")))
        .await
        .unwrap_err();
    assert!(t.elapsed() >= Duration::from_secs(2));
    let ApiError::Workload(msg) = &err else {
        panic!("expected a workload error, got {err:?}")
    };
    assert!(msg.contains("did not come up within 2s"), "{msg}");
    assert_eq!(
        get(&core, "node").await.unwrap().state,
        WorkloadState::Starting
    );

    // Still being launched: a second Start does not launch again.
    let w = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    assert_eq!(w.state, WorkloadState::Starting);
    assert_eq!(driver.runs().len(), 1);

    let stopper = tokio::spawn({
        let core = core.clone();
        async move { stop(&core, "node").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!stopper.is_finished(), "Stop waits for the launch to end");
    gate.notify_one();
    let w = tokio::time::timeout(Duration::from_secs(5), stopper)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(w.state, WorkloadState::Stopped);
    assert_eq!(w.pid, None);
    assert_eq!(count(&driver.calls(), "stop pid=100"), 1);
    assert!(!driver.alive(PID));
}

#[tokio::test]
async fn remove_deletes_record_and_logs() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    let first = start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    let log_file = home.path().join("logs").join("node.log");
    assert!(log_file.exists());
    assert!(!logs(&core, "node", None).await.unwrap().is_empty());

    let out = core
        .handle(Action::Remove { name: name("node") })
        .await
        .unwrap();
    assert_eq!(out, ActionOutcome::Removed);
    assert_eq!(count(&driver.calls(), "stop pid=100"), 1);
    assert!(!driver.alive(PID));
    assert_eq!(
        get(&core, "node").await.unwrap_err(),
        ApiError::NotFound("node".into())
    );
    assert_eq!(
        logs(&core, "node", None).await.unwrap_err(),
        ApiError::NotFound("node".into())
    );
    assert!(!log_file.exists());
    assert_eq!(
        core.handle(Action::List).await.unwrap(),
        ActionOutcome::Workloads(vec![])
    );
    let last = events(&core, None, Some("node")).await.pop().unwrap();
    assert_eq!((last.kind, last.state), (EventKind::Removed, None));
    assert_eq!(
        core.handle(Action::Remove { name: name("node") })
            .await
            .unwrap_err(),
        ApiError::NotFound("node".into())
    );

    // The name is free again; revisions never go back.
    let again = start(&core, "node", Some(spec("/bin/b"))).await.unwrap();
    assert!(again.revision > first.revision);
    assert_eq!(again.restarts, 0);
    let evs = events(&core, Some(last.seq), Some("node")).await;
    assert_eq!(evs[0].kind, EventKind::Created);
}

#[tokio::test]
async fn restart_adopts_a_live_workload() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    shutdown(core, home.path()).await;
    assert!(driver.alive(PID), "detaching leaves the workload running");
    let r = stored(home.path(), "node").await.unwrap();
    assert_eq!(r.handle, Some(json!({ "id": PID })));
    let revision = r.workload.revision;
    driver.clear_log();

    let core = daemon(home.path(), &driver).await;
    assert_eq!(core.adopt_all(Duration::from_secs(2)).await.unwrap(), 1);
    // adopt_all waits until the workload is up again.
    let w = get(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Running);
    assert_eq!(w.pid, Some(PID));
    assert_eq!(w.restarts, 0);
    assert!(w.revision > revision);
    assert_eq!(
        driver.calls(),
        [run_line(false, Some(PID), false), pid_line("adopted", PID)]
    );
    let last = events(&core, None, Some("node")).await.pop().unwrap();
    assert_eq!(last.kind, EventKind::Adopted);
    assert_eq!(last.state, Some(WorkloadState::Running));
    assert!(
        daemon_notes(&logs(&core, "node", None).await.unwrap())
            .iter()
            .any(|n| n.starts_with("adopted running workload"))
    );

    // Supervision goes on: the adopted instance is watched and relaunched.
    driver.exit(PID);
    let w = wait_for(&core, "node", "relaunch of the adopted instance", |w| {
        w.restarts == 1 && w.state == WorkloadState::Running
    })
    .await;
    assert_eq!(w.pid, Some(PID + 1));
    assert_eq!(driver.runs().last().unwrap(), &run_line(false, None, false));
}

#[tokio::test]
async fn restart_relaunches_a_workload_that_died_meanwhile() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    shutdown(core, home.path()).await;
    driver.exit(PID);
    driver.clear_log();

    let core = daemon(home.path(), &driver).await;
    assert_eq!(core.adopt_all(Duration::from_secs(2)).await.unwrap(), 1);
    let w = get(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Running);
    assert_eq!(w.pid, Some(PID + 1));
    assert_eq!(
        w.restarts, 1,
        "a relaunch instead of an adoption counts as a restart"
    );
    assert_eq!(
        driver.calls(),
        [
            run_line(false, Some(PID), false),
            pid_line("launched", PID + 1)
        ]
    );
    let last = events(&core, None, Some("node")).await.pop().unwrap();
    assert_eq!(last.kind, EventKind::Restarted);
    assert_eq!(last.state, Some(WorkloadState::Running));
    assert!(
        last.message.starts_with("was gone; relaunched"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn restart_stops_adoptable_workloads_that_should_be_stopped() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "alive", Some(spec("/bin/a"))).await.unwrap();
    start(&core, "gone", Some(spec("/bin/a"))).await.unwrap();
    shutdown(core, home.path()).await;
    driver.exit(PID + 1);
    // The daemon died after recording "desired stopped" but before it could
    // stop the workloads: the handles are still there.
    {
        let store = open_store(home.path()).await;
        for n in ["alive", "gone"] {
            store
                .update(&name(n), |r| {
                    let mut r = r?;
                    r.workload.desired = DesiredState::Stopped;
                    Some((r, None))
                })
                .unwrap()
                .unwrap();
        }
    }
    driver.clear_log();

    let core = daemon(home.path(), &driver).await;
    assert_eq!(core.adopt_all(Duration::from_secs(2)).await.unwrap(), 0);
    for n in ["alive", "gone"] {
        let w = wait_for(&core, n, "stopped", |w| w.state == WorkloadState::Stopped).await;
        assert_eq!(w.pid, None);
        assert_eq!(w.desired, DesiredState::Stopped);
        assert_eq!(w.restarts, 0);
    }
    wait_calls(&driver, "stop of the adopted instance", |c| {
        c.contains(&pid_line("stop", PID))
    })
    .await;
    let mut calls = driver.calls();
    calls.sort();
    let mut expected = vec![
        run_line(false, Some(PID), true),
        pid_line("adopted", PID),
        pid_line("stop", PID),
        run_line(false, Some(PID + 1), true),
    ];
    expected.sort();
    assert_eq!(calls, expected, "adopt-only never launches");
    assert!(!driver.alive(PID));

    shutdown(core, home.path()).await;
    for n in ["alive", "gone"] {
        assert_eq!(stored(home.path(), n).await.unwrap().handle, None, "{n}");
    }
}

#[tokio::test]
async fn restart_leaves_stopped_workloads_without_handle_alone() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "quiet", Some(spec("/bin/a"))).await.unwrap();
    stop(&core, "quiet").await.unwrap();
    start(&core, "stale", Some(spec("/bin/a"))).await.unwrap();
    shutdown(core, home.path()).await;
    driver.exit(PID + 1);
    // A record that still says "running" but wants to be stopped and has no handle.
    {
        let store = open_store(home.path()).await;
        store
            .update(&name("stale"), |r| {
                let mut r = r?;
                r.workload.desired = DesiredState::Stopped;
                r.handle = None;
                Some((r, None))
            })
            .unwrap()
            .unwrap();
    }
    driver.clear_log();

    let core = daemon(home.path(), &driver).await;
    let since = events(&core, None, None).await.last().unwrap().seq;
    assert_eq!(core.adopt_all(Duration::from_secs(2)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        driver.log().is_empty(),
        "no driver call: {:?}",
        driver.log()
    );
    assert_eq!(
        get(&core, "quiet").await.unwrap().state,
        WorkloadState::Stopped
    );
    let stale = get(&core, "stale").await.unwrap();
    assert_eq!(stale.state, WorkloadState::Stopped);
    assert_eq!(stale.pid, None);
    // Only the stale record changed.
    let evs = events(&core, Some(since), None).await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].workload, name("stale"));
    assert_eq!(evs[0].state, Some(WorkloadState::Stopped));
}

#[tokio::test]
async fn events_filter_by_since_and_workload_and_logs_hold_daemon_notes() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "a", Some(spec("/bin/a"))).await.unwrap();
    start(&core, "b", Some(spec("/bin/b"))).await.unwrap();
    stop(&core, "a").await.unwrap();

    let all = events(&core, None, None).await;
    assert!(all.windows(2).all(|p| p[0].seq < p[1].seq));
    let of_a = events(&core, None, Some("a")).await;
    let of_b = events(&core, None, Some("b")).await;
    assert!(of_a.iter().all(|e| e.workload == name("a")));
    assert!(of_b.iter().all(|e| e.workload == name("b")));
    assert_eq!(of_a.len() + of_b.len(), all.len());
    assert_eq!(
        kinds(&of_a),
        [
            (EventKind::Created, Some(WorkloadState::Starting)),
            (EventKind::StateChanged, Some(WorkloadState::Running)),
            (EventKind::StateChanged, Some(WorkloadState::Stopping)),
            (EventKind::StateChanged, Some(WorkloadState::Stopped)),
        ]
    );

    // `since` is exclusive.
    let cut = of_b[1].seq;
    let after = events(&core, Some(cut), None).await;
    assert_eq!(
        after,
        all.iter()
            .filter(|e| e.seq > cut)
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        kinds(&events(&core, Some(cut), Some("a")).await),
        kinds(&of_a[2..])
    );
    assert!(events(&core, Some(cut), Some("b")).await.is_empty());
    assert!(
        events(&core, Some(all.last().unwrap().seq), None)
            .await
            .is_empty()
    );
    assert!(events(&core, None, Some("nobody")).await.is_empty());

    // Logs merge the workload's output and the supervisor's notes.
    let recs = logs(&core, "a", None).await.unwrap();
    assert_eq!(
        daemon_notes(&recs),
        [format!("running (pid {PID})"), "stopped".to_string()]
    );
    assert!(
        recs.iter()
            .any(|r| r.stream == LogStream::Stdout && r.message == "fake workload 100 up")
    );
    let tail = logs(&core, "a", Some(1)).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].message, "stopped");
    assert_eq!(
        logs(&core, "nobody", None).await.unwrap_err(),
        ApiError::NotFound("nobody".into())
    );
}

#[tokio::test]
async fn start_while_restart_still_stops_the_adopted_workload() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    let core = daemon(home.path(), &driver).await;
    start(&core, "node", Some(spec("/bin/a"))).await.unwrap();
    shutdown(core, home.path()).await;
    {
        let store = open_store(home.path()).await;
        store
            .update(&name("node"), |r| {
                let mut r = r?;
                r.workload.desired = DesiredState::Stopped;
                Some((r, None))
            })
            .unwrap()
            .unwrap();
    }
    let gate = Arc::new(Notify::new());
    driver.set_stop_gate(gate.clone());
    driver.clear_log();

    let core = daemon(home.path(), &driver).await;
    core.adopt_all(Duration::from_secs(2)).await.unwrap();
    wait_calls(&driver, "the stop of the adopted instance", |c| {
        c.contains(&pid_line("stop", PID))
    })
    .await;
    // The user starts the workload while the new daemon is still stopping it.
    let starter = tokio::spawn({
        let core = core.clone();
        async move { start(&core, "node", None).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_one();
    let w = tokio::time::timeout(Duration::from_secs(5), starter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(w.desired, DesiredState::Running, "{w:#?}");
    assert_eq!(w.state, WorkloadState::Running, "{w:#?}");
    assert_eq!(w.pid, Some(PID + 1));
    // And it stays running: the adopt-and-stop supervisor does not overwrite it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let w = get(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Running, "{w:#?}");
    assert_eq!(w.pid, Some(PID + 1));
    assert!(driver.alive(PID + 1));
    assert!(!driver.alive(PID));
}

/// Issue 9: a "daemon" killed while a launch is in its slow part, after the
/// driver recorded the handle through `ctx.recorder`, leaves a record the
/// next daemon adopts: the same process, no second launch.
#[tokio::test]
async fn a_daemon_killed_mid_launch_leaves_a_handle_the_next_adopts() {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::new();
    driver.push_plan(Plan::RecordThenHang(Arc::new(Notify::new())));
    // The first daemon runs on a runtime of its own, torn down like kill -9.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (h, d) = (home.path().to_path_buf(), driver.clone());
    rt.spawn(async move {
        let core = daemon(&h, &d).await;
        let _ = start(&core, "node", Some(spec("/bin/a"))).await;
    });
    let recorded = pid_line("recorded", PID);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !driver.calls().contains(&recorded) {
        assert!(Instant::now() < deadline, "{:?}", driver.calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rt.shutdown_background();
    let r = stored(home.path(), "node").await.unwrap();
    assert_eq!(r.handle, Some(json!({ "id": PID })));
    assert_eq!(r.workload.pid, Some(PID));
    assert_eq!(r.workload.state, WorkloadState::Starting);
    driver.clear_log();

    let core = daemon(home.path(), &driver).await;
    assert_eq!(core.adopt_all(Duration::from_secs(2)).await.unwrap(), 1);
    let w = get(&core, "node").await.unwrap();
    assert_eq!(w.state, WorkloadState::Running);
    assert_eq!(w.pid, Some(PID));
    assert_eq!(
        driver.calls(),
        [run_line(false, Some(PID), false), pid_line("adopted", PID)]
    );
}
