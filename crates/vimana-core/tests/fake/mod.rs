//! A recording fake [`Driver`] for the core's tests: no processes, every call
//! is appended to a shared log the test inspects, and each launch, probe and
//! exit is scripted by the test.
//!
//! The fake keeps a tiny "host": every launched instance gets a fresh pid
//! (100, 101, …) and stays alive until it exits (`exit`, `stop`, `kill`, or
//! [`Plan::Crash`]). Adoption of a handle `{"id": pid}` succeeds exactly
//! when that pid is still alive, so a test "kills a process while the
//! daemon is down" with [`FakeDriver::exit`]. An exit can carry how the
//! process ended ([`FakeDriver::exit_with`], [`Plan::CrashWith`]), for the
//! restart policies.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::{Notify, watch};
use vimana_api::{LogStream, WorkloadKind};
use vimana_core::{Driver, DriverError, Exit, Instance, RunContext};

/// What the next launch does.
#[derive(Clone)]
pub enum Plan {
    /// The launch succeeds and the instance keeps running.
    Run,
    /// The launch succeeds, but the process has already exited.
    Crash,
    /// The launch succeeds, but the process has already ended like this.
    CrashWith(Exit),
    /// The launch fails with this message.
    Fail(String),
    /// The launch blocks until `gate` is notified, then follows the plan.
    Hang(Arc<Notify>, Box<Plan>),
    /// The launch starts a process, records its handle through
    /// `ctx.recorder`, then blocks until `gate` is notified and runs (a
    /// plugin in its slow `Start`).
    RecordThenHang(Arc<Notify>),
}

/// The first pid the fake hands out.
pub const FIRST_PID: u32 = 100;

struct State {
    log: Mutex<Vec<(Instant, String)>>,
    plans: Mutex<VecDeque<Plan>>,
    fallback: Mutex<Plan>,
    probes: Mutex<VecDeque<Result<String, String>>>,
    probe_default: Mutex<Result<String, String>>,
    next_pid: Mutex<u32>,
    /// Every process ever launched: `Some(how)` once it has exited.
    procs: Mutex<HashMap<u32, watch::Sender<Option<Exit>>>>,
    stop_fails: Mutex<Option<String>>,
    stop_gate: Mutex<Option<Arc<Notify>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn record(&self, entry: String) {
        lock(&self.log).push((Instant::now(), entry));
    }

    fn alive(&self, pid: u32) -> bool {
        lock(&self.procs)
            .get(&pid)
            .is_some_and(|tx| tx.borrow().is_none())
    }

    fn exit(&self, pid: u32, how: Exit) {
        if let Some(tx) = lock(&self.procs).get(&pid) {
            tx.send_if_modified(|e| {
                let first = e.is_none();
                if first {
                    *e = Some(how);
                }
                first
            });
        }
    }
}

/// The fake driver; clones share one state (and one "host").
#[derive(Clone)]
pub struct FakeDriver {
    state: Arc<State>,
    kind: WorkloadKind,
}

impl Default for FakeDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeDriver {
    pub fn new() -> Self {
        Self {
            state: Arc::new(State {
                log: Mutex::default(),
                plans: Mutex::default(),
                fallback: Mutex::new(Plan::Run),
                probes: Mutex::default(),
                probe_default: Mutex::new(Ok("healthy".into())),
                next_pid: Mutex::new(FIRST_PID),
                procs: Mutex::default(),
                stop_fails: Mutex::default(),
                stop_gate: Mutex::default(),
            }),
            kind: WorkloadKind::Spacecore,
        }
    }

    /// A fake driver for another workload kind (e.g. process workloads,
    /// whose specs carry a restart policy).
    pub fn with_kind(kind: WorkloadKind) -> Self {
        Self {
            kind,
            ..Self::new()
        }
    }

    /// The driver as the core takes it.
    pub fn arc(&self) -> Arc<dyn Driver> {
        Arc::new(self.clone())
    }

    /// Queues the plan of one future launch.
    pub fn push_plan(&self, plan: Plan) {
        lock(&self.state.plans).push_back(plan);
    }

    /// What launches do once the queued plans are used up (default [`Plan::Run`]).
    pub fn set_fallback(&self, plan: Plan) {
        *lock(&self.state.fallback) = plan;
    }

    /// Queues the answer of one future probe.
    pub fn push_probe(&self, answer: Result<&str, &str>) {
        lock(&self.state.probes).push_back(answer.map(str::to_string).map_err(str::to_string));
    }

    /// What probes answer once the queued answers are used up.
    pub fn set_probe_default(&self, answer: Result<&str, &str>) {
        *lock(&self.state.probe_default) = answer.map(str::to_string).map_err(str::to_string);
    }

    /// Makes `stop()` fail with this message from now on.
    pub fn set_stop_fails(&self, message: &str) {
        *lock(&self.state.stop_fails) = Some(message.to_string());
    }

    /// Makes `stop()` block until `gate` is notified (once per call).
    pub fn set_stop_gate(&self, gate: Arc<Notify>) {
        *lock(&self.state.stop_gate) = Some(gate);
    }

    /// Lets process `pid` exit (its `exited()` resolves).
    pub fn exit(&self, pid: u32) {
        self.state.record(format!("exit pid={pid}"));
        self.state.exit(pid, Exit::Unknown);
    }

    /// Lets process `pid` end like `how` (its `exited()` resolves with it).
    pub fn exit_with(&self, pid: u32, how: Exit) {
        self.state.record(format!("exit pid={pid} how={how}"));
        self.state.exit(pid, how);
    }

    /// Whether process `pid` is still alive.
    pub fn alive(&self, pid: u32) -> bool {
        self.state.alive(pid)
    }

    /// Every call so far, oldest first.
    pub fn log(&self) -> Vec<String> {
        lock(&self.state.log)
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Every call so far with the time it was made.
    pub fn timed_log(&self) -> Vec<(Instant, String)> {
        lock(&self.state.log).clone()
    }

    /// The calls so far, without the (timing-dependent) probes.
    pub fn calls(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|s| !s.starts_with("probe "))
            .collect()
    }

    /// The `run` calls so far.
    pub fn runs(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|s| s.starts_with("run "))
            .collect()
    }

    /// Forgets the calls recorded so far.
    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }

    /// A new process with the next pid (`ended`: it has exited already).
    fn new_proc(&self, ended: Option<Exit>) -> u32 {
        let pid = {
            let mut next = lock(&self.state.next_pid);
            let pid = *next;
            *next += 1;
            pid
        };
        lock(&self.state.procs).insert(pid, watch::channel(ended).0);
        pid
    }

    fn next_plan(&self) -> Plan {
        let queued = lock(&self.state.plans).pop_front();
        queued.unwrap_or_else(|| lock(&self.state.fallback).clone())
    }

    fn instance(&self, pid: u32, adopted: bool) -> Box<dyn Instance> {
        let exit = lock(&self.state.procs)
            .entry(pid)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        Box::new(FakeInstance {
            pid,
            adopted,
            exit,
            state: self.state.clone(),
        })
    }
}

/// The log line of a `run` call.
pub fn run_line(first_start: bool, adopt: Option<u32>, adopt_only: bool) -> String {
    let adopt = adopt.map_or_else(|| "-".to_string(), |p| p.to_string());
    format!("run first_start={first_start} adopt={adopt} adopt_only={adopt_only}")
}

#[async_trait]
impl Driver for FakeDriver {
    fn kind(&self) -> WorkloadKind {
        self.kind
    }

    async fn run(&self, ctx: RunContext) -> Result<Box<dyn Instance>, DriverError> {
        let adopt = ctx
            .adopt
            .as_ref()
            .map(|h| h["id"].as_u64().and_then(|id| u32::try_from(id).ok()));
        let adopt = match adopt {
            Some(Some(pid)) => Some(pid),
            Some(None) => return Err(DriverError::new("fake: handle without an id")),
            None => None,
        };
        self.state
            .record(run_line(ctx.first_start, adopt, ctx.adopt_only));
        if let Some(pid) = adopt {
            if self.state.alive(pid) {
                self.state.record(format!("adopted pid={pid}"));
                return Ok(self.instance(pid, true));
            }
            if ctx.adopt_only {
                return Err(DriverError::new(format!("fake: process {pid} is gone")));
            }
        }
        let mut plan = self.next_plan();
        loop {
            match plan {
                Plan::Hang(gate, then) => {
                    self.state.record("hang".into());
                    gate.notified().await;
                    plan = *then;
                }
                Plan::Fail(message) => {
                    self.state.record(format!("failed: {message}"));
                    return Err(DriverError::new(message));
                }
                Plan::RecordThenHang(gate) => {
                    let pid = self.new_proc(None);
                    ctx.recorder.record(json!({ "id": pid }), Some(pid)).await?;
                    self.state.record(format!("recorded pid={pid}"));
                    gate.notified().await;
                    return Ok(self.instance(pid, false));
                }
                Plan::Run | Plan::Crash | Plan::CrashWith(_) => {
                    let ended = match plan {
                        Plan::Crash => Some(Exit::Unknown),
                        Plan::CrashWith(how) => Some(how),
                        _ => None,
                    };
                    let pid = self.new_proc(ended);
                    self.state.record(format!("launched pid={pid}"));
                    ctx.logs
                        .line(LogStream::Stdout, None, format!("fake workload {pid} up"));
                    return Ok(self.instance(pid, false));
                }
            }
        }
    }
}

struct FakeInstance {
    pid: u32,
    adopted: bool,
    exit: watch::Receiver<Option<Exit>>,
    state: Arc<State>,
}

#[async_trait]
impl Instance for FakeInstance {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn handle(&self) -> serde_json::Value {
        json!({ "id": self.pid })
    }

    async fn probe(&self) -> Result<String, DriverError> {
        self.state.record(format!("probe pid={}", self.pid));
        let queued = lock(&self.state.probes).pop_front();
        queued
            .unwrap_or_else(|| lock(&self.state.probe_default).clone())
            .map_err(DriverError::new)
    }

    async fn exited(&self) -> Exit {
        let mut rx = self.exit.clone();
        // A dropped sender never happens (the host keeps them); treat it as an exit.
        rx.wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|e| *e)
            .unwrap_or(Exit::Unknown)
    }

    async fn stop(&self) -> Result<(), DriverError> {
        self.state.record(format!("stop pid={}", self.pid));
        let gate = lock(&self.state.stop_gate).clone();
        if let Some(gate) = gate {
            gate.notified().await;
            self.state.record(format!("stopped pid={}", self.pid));
        }
        let fails = lock(&self.state.stop_fails).clone();
        match fails {
            Some(message) => Err(DriverError::new(message)),
            None => {
                self.state.exit(self.pid, Exit::Unknown);
                Ok(())
            }
        }
    }

    fn kill(&self) {
        self.state.record(format!("kill pid={}", self.pid));
        self.state.exit(self.pid, Exit::Unknown);
    }

    fn adopted(&self) -> bool {
        self.adopted
    }
}
