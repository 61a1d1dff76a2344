//! Crash atomicity of resource applies: a child process applies batches of
//! five resources (one `write_resources` each) and is killed with SIGKILL
//! at a random-ish moment. After reopening, the five resources must come
//! from the same batch (never a partial apply), and no acknowledged batch
//! may be lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use vimana_api::ResourceEventKind;
use vimana_store::{NewResourceEvent, ResourceWrite, Store};

const CHILD_ENV: &str = "VIMANA_STORE_RESOURCE_CRASH_WRITER";
const KEYS: [&str; 5] = [
    "Vimana/a",
    "Domain/b",
    "Server/c",
    "Component/d",
    "Component/e",
];

/// Writer mode; a no-op in a normal test run.
#[test]
fn resource_crash_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut batch = 1u64;
    while Instant::now() < deadline {
        let writes = KEYS
            .iter()
            .map(|k| ResourceWrite::Put {
                key: (*k).to_owned(),
                resource: json!({ "batch": batch }),
            })
            .collect();
        let events = KEYS
            .iter()
            .map(|k| NewResourceEvent {
                kind: ResourceEventKind::ResourceApplied,
                resource: (*k).to_owned(),
                message: format!("batch {batch}"),
            })
            .collect();
        store.write_resources(writes, events).unwrap();
        writeln!(out, "ACK {batch} END").unwrap();
        out.flush().unwrap();
        batch += 1;
    }
}

#[test]
fn kill9_never_leaves_a_partial_apply() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for round in 0..3u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "resource_crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let ["ACK", n, "END"] = parts.as_slice() {
                    last = n.parse().unwrap();
                }
            }
            last
        });
        let wait = 150 + (seed.wrapping_mul(round + 7) % 400);
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let store = Store::open(&path).unwrap();
        let all = store.resources().unwrap();
        let batches: Vec<u64> = all
            .iter()
            .map(|(_, r)| r.resource["batch"].as_u64().unwrap())
            .collect();
        assert!(
            all.is_empty() || (all.len() == KEYS.len() && batches.iter().all(|b| *b == batches[0])),
            "partial apply after kill -9 (seed {seed}, round {round}): {batches:?}"
        );
        let stored = batches.first().copied().unwrap_or(0);
        assert!(
            stored >= acked,
            "acknowledged batch {acked} lost; store has {stored} (seed {seed})"
        );
        let events = store.resource_events(None, usize::MAX).unwrap();
        assert_eq!(
            events.len() as u64,
            stored * KEYS.len() as u64,
            "events and resources commit together"
        );
    }
}
