//! Restart policies of process workloads against the recording fake driver:
//! what the supervisor does when a process ends by itself with a given
//! status, or stops answering its probe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake;

use std::time::{Duration, Instant};

use fake::{FIRST_PID, FakeDriver, Plan};
use vimana_api::{
    Action, ActionOutcome, DesiredState, ProcessSpec, RestartPolicy, Workload, WorkloadKind,
    WorkloadName, WorkloadSpec, WorkloadState,
};
use vimana_core::{Core, CoreApi, CoreOptions, Exit, LogBook};
use vimana_store::Store;

const PID: u32 = FIRST_PID;

struct Harness {
    core: Core,
    driver: FakeDriver,
    _home: tempfile::TempDir,
}

fn harness() -> Harness {
    let home = tempfile::tempdir().unwrap();
    let driver = FakeDriver::with_kind(WorkloadKind::Process);
    let store = Store::open(&home.path().join("state.redb")).unwrap();
    let logs = LogBook::new(home.path().join("logs"), Default::default()).unwrap();
    let opts = CoreOptions {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(80),
        healthy_reset: Duration::from_millis(500),
        start_wait: Duration::from_secs(2),
        ..CoreOptions::default()
    };
    let core = Core::new(store, logs, vec![driver.arc()], opts);
    Harness {
        core,
        driver,
        _home: home,
    }
}

fn spec(restart: RestartPolicy) -> WorkloadSpec {
    WorkloadSpec::Process(Box::new(ProcessSpec {
        command: "/opt/node/bin/node".into(),
        args: vec![],
        env: Default::default(),
        cwd: None,
        restart,
        stop_timeout_ms: None,
        resources: None,
        package: None,
    }))
}

fn name() -> WorkloadName {
    WorkloadName::new("node").unwrap()
}

async fn start(h: &Harness, restart: RestartPolicy) -> Workload {
    let action = Action::Start {
        name: name(),
        spec: Some(spec(restart)),
    };
    match h.core.handle(action).await.unwrap() {
        ActionOutcome::Workload(w) => *w,
        other => panic!("Start answered {other:?}"),
    }
}

async fn get(h: &Harness) -> Workload {
    match h.core.handle(Action::Get { name: name() }).await.unwrap() {
        ActionOutcome::Workload(w) => *w,
        other => panic!("Get answered {other:?}"),
    }
}

async fn wait_for(h: &Harness, what: &str, pred: impl Fn(&Workload) -> bool) -> Workload {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let w = get(h).await;
        if pred(&w) {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits a little and checks that no further launch happened.
async fn assert_no_relaunch(h: &Harness) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.driver.runs().len(), 1, "{:?}", h.driver.log());
    let w = get(h).await;
    assert_eq!(w.restarts, 0);
    assert_eq!(w.pid, None);
}

#[tokio::test]
async fn always_restarts_after_a_clean_exit() {
    let h = harness();
    assert_eq!(start(&h, RestartPolicy::Always).await.pid, Some(PID));
    h.driver.exit_with(PID, Exit::Code(0));
    let w = wait_for(&h, "relaunch", |w| {
        w.state == WorkloadState::Running && w.pid == Some(PID + 1)
    })
    .await;
    assert_eq!(w.restarts, 1);
    assert_eq!(w.desired, DesiredState::Running);
    assert_eq!(h.driver.runs().len(), 2);
}

#[tokio::test]
async fn on_failure_ends_stopped_after_exit_0() {
    let h = harness();
    start(&h, RestartPolicy::OnFailure).await;
    h.driver.exit_with(PID, Exit::Code(0));
    let w = wait_for(&h, "stopped", |w| w.state == WorkloadState::Stopped).await;
    assert_eq!(w.desired, DesiredState::Stopped);
    assert!(w.detail.contains("exited with status 0"), "{}", w.detail);
    assert_no_relaunch(&h).await;
    assert_eq!(get(&h).await.state, WorkloadState::Stopped);
}

#[tokio::test]
async fn on_failure_relaunches_after_a_non_zero_exit_or_a_signal() {
    let h = harness();
    start(&h, RestartPolicy::OnFailure).await;
    h.driver.exit_with(PID, Exit::Code(3));
    let w = wait_for(&h, "relaunch", |w| {
        w.state == WorkloadState::Running && w.pid == Some(PID + 1)
    })
    .await;
    assert_eq!(w.restarts, 1);
    assert_eq!(w.desired, DesiredState::Running);
    h.driver.exit_with(PID + 1, Exit::Signal(9));
    let w = wait_for(&h, "second relaunch", |w| {
        w.state == WorkloadState::Running && w.pid == Some(PID + 2)
    })
    .await;
    assert_eq!(w.restarts, 2);
}

#[tokio::test]
async fn on_failure_clean_exit_right_at_launch_is_done() {
    let h = harness();
    h.driver.push_plan(Plan::CrashWith(Exit::Code(0)));
    start(&h, RestartPolicy::OnFailure).await;
    let w = wait_for(&h, "stopped", |w| w.state == WorkloadState::Stopped).await;
    assert_eq!(w.desired, DesiredState::Stopped);
    assert_no_relaunch(&h).await;
}

#[tokio::test]
async fn never_ends_stopped_after_exit_0() {
    let h = harness();
    start(&h, RestartPolicy::Never).await;
    h.driver.exit_with(PID, Exit::Code(0));
    let w = wait_for(&h, "stopped", |w| w.state == WorkloadState::Stopped).await;
    assert_eq!(w.desired, DesiredState::Stopped);
    assert_no_relaunch(&h).await;
}

#[tokio::test]
async fn never_ends_failed_after_exit_1() {
    let h = harness();
    start(&h, RestartPolicy::Never).await;
    h.driver.exit_with(PID, Exit::Code(1));
    let w = wait_for(&h, "failed", |w| w.state == WorkloadState::Failed).await;
    assert_eq!(w.desired, DesiredState::Stopped);
    assert!(w.detail.contains("exited with status 1"), "{}", w.detail);
    assert_no_relaunch(&h).await;
    assert_eq!(get(&h).await.state, WorkloadState::Failed);
}

#[tokio::test]
async fn never_ends_failed_after_a_failed_probe() {
    let h = harness();
    start(&h, RestartPolicy::Never).await;
    h.driver.set_probe_default(Err("not answering"));
    let w = wait_for(&h, "failed", |w| w.state == WorkloadState::Failed).await;
    assert_eq!(w.desired, DesiredState::Stopped);
    assert!(w.detail.contains("not answering"), "{}", w.detail);
    assert!(
        h.driver.log().contains(&format!("kill pid={PID}")),
        "{:?}",
        h.driver.log()
    );
    assert_no_relaunch(&h).await;
}
