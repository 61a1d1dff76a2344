//! Crash durability: a child process writes to the store and is killed with
//! SIGKILL at a random-ish moment; every write it acknowledged must survive
//! and the store must reopen consistent.
//!
//! The child is this test binary re-executed with [`CHILD_ENV`] set, running
//! only [`crash_writer_child`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{event, name, record};
use vimana_api::EventKind;
use vimana_store::Store;

/// Set (to the store path) in the child's environment to select writer mode.
const CHILD_ENV: &str = "VIMANA_STORE_CRASH_WRITER";
const ROUNDS: u64 = 5;
const NAMES: u64 = 5;

/// Writer mode; a no-op in a normal test run.
#[test]
fn crash_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    run_writer(Path::new(&path));
}

/// Writes forever (until killed, or a minute as a safety net), printing one
/// `ACK <name> <revision> <seq> END` line per acknowledged write.
fn run_writer(path: &Path) {
    let store = Store::open(path).unwrap();
    let mut out = std::io::stdout().lock();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0u64;
    while Instant::now() < deadline {
        let n = name(&format!("w{}", i % NAMES));
        let message = format!("write {i}");
        let (rec, ev) = match i % 3 {
            0 => store
                .put(
                    record(n.as_str()),
                    Some(event(EventKind::StateChanged, &message)),
                )
                .unwrap(),
            _ => store
                .update(&n, |cur| {
                    let mut r = cur.unwrap_or_else(|| record(n.as_str()));
                    r.workload.restarts += 1;
                    r.handle = Some(serde_json::json!({ "pid": i }));
                    Some((r, Some(event(EventKind::Restarted, &message))))
                })
                .unwrap()
                .unwrap(),
        };
        let seq = ev.unwrap().seq;
        writeln!(out, "ACK {n} {} {seq} END", rec.workload.revision).unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

/// A small xorshift generator seeded from the clock: random-ish, but the
/// seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    name: String,
    revision: u64,
    seq: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    // libtest may print "test crash_writer_child ... " before the first ack.
    let parts: Vec<&str> = line[line.find("ACK ")?..].split_whitespace().collect();
    match parts.as_slice() {
        ["ACK", name, revision, seq, "END"] => Some(Ack {
            name: (*name).to_string(),
            revision: revision.parse().ok()?,
            seq: seq.parse().ok()?,
        }),
        _ => None,
    }
}

/// Runs one child, kills it after `kill_after` acks plus `delay`, and returns
/// every ack it printed before it died.
fn run_and_kill(path: &Path, kill_after: usize, delay: Duration) -> Vec<Ack> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    let mut killed = false;
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(ack) = parse_ack(&line) {
            acks.push(ack);
        }
        if !killed && acks.len() >= kill_after {
            std::thread::sleep(delay);
            child.kill().unwrap(); // SIGKILL on Unix
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the writer exited on its own ({status}) after {} acks",
        acks.len()
    );
    assert!(!status.success(), "the writer was not killed: {status}");
    acks
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed: {seed}");
    let mut rng = Rng(seed);
    let mut all_acks: Vec<Ack> = Vec::new();

    for round in 0..ROUNDS {
        let kill_after = 5 + rng.next(150) as usize;
        let delay = Duration::from_micros(rng.next(3000));
        let acks = run_and_kill(&path, kill_after, delay);
        assert!(
            acks.len() >= kill_after,
            "round {round}: only {} acks",
            acks.len()
        );
        all_acks.extend(acks);

        // The store reopens after the crash and holds every acknowledged write.
        let store = Store::open(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let records = store.list().unwrap(); // every record decodes
        let by_name: BTreeMap<String, u64> = records
            .iter()
            .map(|r| (r.workload.name.to_string(), r.workload.revision))
            .collect();
        let revisions: BTreeSet<u64> = by_name.values().copied().collect();
        assert_eq!(revisions.len(), records.len(), "revisions are unique");

        let events = store.events(None, None, usize::MAX).unwrap(); // every event decodes
        let last_seq = store.last_event_seq().unwrap();
        let current_revision = store.current_revision().unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=last_seq).collect::<Vec<_>>(),
            "round {round}: the event log is contiguous up to the counter"
        );

        let mut max_acked_for: BTreeMap<&str, u64> = BTreeMap::new();
        for ack in &all_acks {
            let max = max_acked_for.entry(ack.name.as_str()).or_default();
            *max = (*max).max(ack.revision);
            let e = events
                .get((ack.seq - 1) as usize)
                .unwrap_or_else(|| panic!("round {round}: acked event {} is missing", ack.seq));
            assert_eq!(
                e.workload.as_str(),
                ack.name,
                "round {round}: event {}",
                ack.seq
            );
        }
        for (n, max_acked) in &max_acked_for {
            let stored = by_name
                .get(*n)
                .unwrap_or_else(|| panic!("round {round}: acked record {n} is missing"));
            assert!(
                stored >= max_acked,
                "round {round}: {n} has revision {stored}, but revision {max_acked} was acknowledged"
            );
        }

        // The child is single-threaded: at most one write committed without
        // being acknowledged (the one in flight when it was killed).
        let last = all_acks.last().unwrap();
        assert!(
            current_revision == last.revision || current_revision == last.revision + 1,
            "round {round}: revision counter {current_revision}, last ack {}",
            last.revision
        );
        assert!(
            last_seq == last.seq || last_seq == last.seq + 1,
            "round {round}: event counter {last_seq}, last ack {}",
            last.seq
        );
        let max_stored = revisions.iter().max().copied().unwrap_or(0);
        assert!(current_revision >= max_stored, "round {round}");

        // If a write committed without its ack, take it as acknowledged so
        // the next round's checks stay exact.
        if current_revision == last.revision + 1 {
            let e = &events[last_seq as usize - 1];
            all_acks.push(Ack {
                name: e.workload.to_string(),
                revision: current_revision,
                seq: e.seq,
            });
        }
        eprintln!(
            "round {round}: killed after {} acks in total, revision {current_revision}, seq {last_seq}",
            all_acks.len()
        );
    }
}
