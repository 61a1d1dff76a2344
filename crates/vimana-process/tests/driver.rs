//! The process driver with real child processes: exit statuses, stop with
//! SIGTERM then SIGKILL, cgroup limits through the recording fake, the
//! fallback warning, and re-adoption by pid + start time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vimana_api::{LogStream, ProcessSpec, Resources, WorkloadName, WorkloadSpec};
use vimana_core::{Driver, Exit, Instance, LogBook, RunContext};
use vimana_process::{Handle, MemCgroupFs, ProcessDriver};

fn spec(script: &str) -> ProcessSpec {
    ProcessSpec {
        command: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: [("GREETING".to_string(), "hi there".to_string())].into(),
        cwd: None,
        restart: Default::default(),
        stop_timeout_ms: Some(300),
        resources: None,
        package: None,
    }
}

struct Run {
    book: LogBook,
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::new(dir.path().join("logs"), Default::default()).unwrap();
        Self { book, dir }
    }

    fn name(&self) -> WorkloadName {
        WorkloadName::new("w").unwrap()
    }

    fn ctx(
        &self,
        spec: ProcessSpec,
        adopt: Option<serde_json::Value>,
        adopt_only: bool,
    ) -> RunContext {
        RunContext {
            name: self.name(),
            spec: WorkloadSpec::Process(Box::new(spec)),
            first_start: adopt.is_none(),
            adopt,
            adopt_only,
            logs: self.book.sink(&self.name()),
            recorder: Default::default(),
            log_dir: self.dir.path().join("logs"),
        }
    }

    async fn wait_log(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self
            .book
            .read(&self.name(), None)
            .iter()
            .any(|r| r.message.contains(what))
        {
            assert!(Instant::now() < deadline, "no log line with {what:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn daemon_lines(&self) -> Vec<String> {
        self.book
            .read(&self.name(), None)
            .into_iter()
            .filter(|r| r.stream == LogStream::Daemon)
            .map(|r| r.message)
            .collect()
    }
}

async fn exited(i: &dyn Instance) -> Exit {
    tokio::time::timeout(Duration::from_secs(5), i.exited())
        .await
        .expect("process did not end")
}

#[tokio::test]
async fn reports_exit_codes_signals_and_passes_env() {
    let r = Run::new();
    let d = ProcessDriver::new();
    let i = d
        .run(r.ctx(
            spec("echo \"$GREETING\"; echo oops >&2; exit 3"),
            None,
            false,
        ))
        .await
        .unwrap();
    assert!(!i.adopted());
    assert_eq!(exited(&*i).await, Exit::Code(3));
    r.wait_log("hi there").await;
    r.wait_log("oops").await;
    let recs = r.book.read(&r.name(), None);
    assert!(
        recs.iter()
            .any(|x| x.stream == LogStream::Stderr && x.message == "oops")
    );

    let i = d.run(r.ctx(spec("kill -9 $$"), None, false)).await.unwrap();
    assert_eq!(exited(&*i).await, Exit::Signal(9));
}

#[tokio::test]
async fn stop_escalates_to_sigkill_and_probe_follows_the_process() {
    let r = Run::new();
    let d = ProcessDriver::new();
    let i = d
        .run(r.ctx(
            spec("trap '' TERM; echo ready; while true; do sleep 0.05; done"),
            None,
            false,
        ))
        .await
        .unwrap();
    let pid = i.pid().unwrap();
    assert_eq!(i.probe().await.unwrap(), format!("running (pid {pid})"));
    r.wait_log("ready").await; // the TERM trap is set
    let h: Handle = serde_json::from_value(i.handle()).unwrap();
    assert_eq!(h.pid, pid);
    assert!(h.start_time.is_some());
    assert_eq!(h.cgroup, None);
    let t = Instant::now();
    i.stop().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(exited(&*i).await, Exit::Signal(9));
    assert!(
        r.daemon_lines()
            .iter()
            .any(|l| l.contains("sending SIGKILL"))
    );
    assert!(
        i.probe().await.is_ok(),
        "own child: the exit is left to exited()"
    );
}

#[tokio::test]
async fn readopts_a_live_process_and_relaunches_a_gone_one() {
    let r = Run::new();
    let d = ProcessDriver::new();
    let first = d
        .run(r.ctx(spec("while true; do sleep 0.05; done"), None, false))
        .await
        .unwrap();
    let handle = first.handle();
    let pid = first.pid().unwrap();
    drop(first); // the daemon goes away; the process stays
    let again = d
        .run(r.ctx(spec("exit 0"), Some(handle.clone()), false))
        .await
        .unwrap();
    assert!(again.adopted());
    assert_eq!(again.pid(), Some(pid));
    assert!(again.probe().await.is_ok());
    again.stop().await.unwrap();
    assert_eq!(exited(&*again).await, Exit::Unknown);
    assert!(again.probe().await.is_err());
    // Gone now: adopt_only fails, otherwise a new process is launched.
    let err = d
        .run(r.ctx(spec("exit 0"), Some(handle.clone()), true))
        .await
        .err()
        .expect("adopt_only of a gone process fails");
    assert!(err.to_string().contains("gone"), "{err}");
    let fresh = d
        .run(r.ctx(spec("sleep 5"), Some(handle), false))
        .await
        .unwrap();
    assert!(!fresh.adopted());
    assert_ne!(fresh.pid(), Some(pid));
    fresh.kill();
    assert_eq!(exited(&*fresh).await, Exit::Signal(9));
}

#[tokio::test]
async fn limits_go_through_the_cgroup_fs_or_warn_once() {
    let r = Run::new();
    let mut s = spec("sleep 5");
    s.resources = Some(Resources {
        cpu: Some(0.5),
        memory_bytes: Some(64 << 20),
    });
    let fs = Arc::new(MemCgroupFs::v2("/cg", "cpu memory"));
    let d = ProcessDriver::with_cgroups(fs.clone());
    let i = d.run(r.ctx(s.clone(), None, false)).await.unwrap();
    let pid = i.pid().unwrap();
    let h: Handle = serde_json::from_value(i.handle()).unwrap();
    assert_eq!(h.cgroup.as_deref(), Some("/cg/vimana/w"));
    assert_eq!(
        fs.file(Path::new("/cg/vimana/w/cpu.max")).as_deref(),
        Some("50000 100000")
    );
    assert_eq!(
        fs.file(Path::new("/cg/vimana/w/memory.max")).as_deref(),
        Some("67108864")
    );
    assert_eq!(
        fs.file(Path::new("/cg/vimana/w/cgroup.procs")),
        Some(pid.to_string())
    );
    i.kill();
    exited(&*i).await;

    let r = Run::new();
    let d = ProcessDriver::with_cgroups(Arc::new(MemCgroupFs::v1("/sys/fs/cgroup")));
    let i = d.run(r.ctx(s, None, false)).await.unwrap();
    let warnings: Vec<String> = r
        .daemon_lines()
        .into_iter()
        .filter(|l| l.contains("resource limits not applied"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("cgroup v2"), "{warnings:?}");
    assert!(i.probe().await.is_ok(), "runs without limits");
    i.kill();
    exited(&*i).await;
}

#[test]
fn validation_names_field_rule_and_fix() {
    let d = ProcessDriver::new();
    let check = |s: ProcessSpec| {
        d.validate(&WorkloadSpec::Process(Box::new(s)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(check(spec("true")), "");
    let mut s = spec("true");
    s.command = "sh".into();
    assert!(check(s).contains("spec.command \"sh\" is relative"));
    let mut s = spec("true");
    s.command = "/no/such/bin".into();
    assert!(check(s).contains("does not exist"));
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "not a program").unwrap();
    let plain = plain.display().to_string();
    let mut s = spec("true");
    s.command = plain.clone();
    let e = check(s);
    assert!(
        e.contains("not executable") && e.contains("chmod +x"),
        "{e}"
    );
    let mut s = spec("true");
    s.cwd = Some("tmp".into());
    assert!(check(s).contains("spec.cwd \"tmp\" is relative"));
    let mut s = spec("true");
    s.cwd = Some("/no/such/dir".into());
    assert!(check(s).contains("spec.cwd /no/such/dir does not exist"));
    let mut s = spec("true");
    s.cwd = Some(plain);
    assert!(check(s).contains("not a directory"));
    let mut s = spec("true");
    s.resources = Some(Resources {
        cpu: Some(0.0),
        memory_bytes: None,
    });
    assert!(check(s).contains("spec.resources.cpu"));
    let mut s = spec("true");
    s.resources = Some(Resources {
        cpu: None,
        memory_bytes: Some(1 << 20),
    });
    let e = check(s);
    assert!(
        e.contains("spec.resources.memory_bytes") && e.contains("4194304"),
        "{e}"
    );
}
