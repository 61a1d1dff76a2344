//! Merged per-workload logs: one JSON line per [`LogRecord`] in
//! `logs/<name>.log`, rotated to `<name>.log.1` … `<name>.log.N`, with a
//! broadcast channel for followers.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;
use vimana_api::{LogRecord, LogStream, WorkloadName};

use crate::CoreError;

const FOLLOW_BUFFER: usize = 1024;

/// Rotation limits of the merged log.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024 * 1024,
            keep: 3,
        }
    }
}

/// All workloads' logs under one directory.
#[derive(Clone)]
pub struct LogBook {
    dir: PathBuf,
    rotation: Rotation,
    sinks: Arc<Mutex<HashMap<WorkloadName, LogSink>>>,
}

/// The writing end of one workload's log. Cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    path: PathBuf,
    rotation: Rotation,
    file: Mutex<Option<(File, u64)>>,
    tx: broadcast::Sender<LogRecord>,
}

impl LogBook {
    pub fn new(dir: impl Into<PathBuf>, rotation: Rotation) -> Result<Self, CoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| CoreError::Log {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            rotation,
            sinks: Arc::default(),
        })
    }

    /// The directory holding all logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sink of one workload (created on first use). Creating one first
    /// frees the sinks nobody writes to or follows (only the map holds them,
    /// no receiver), so following names that never write costs nothing
    /// lasting; a freed sink is simply made again when its workload writes.
    pub fn sink(&self, name: &WorkloadName) -> LogSink {
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        if !sinks.contains_key(name) {
            sinks.retain(|_, s| s.in_use());
        }
        sinks
            .entry(name.clone())
            .or_insert_with(|| LogSink {
                inner: Arc::new(SinkInner {
                    path: self.dir.join(format!("{name}.log")),
                    rotation: self.rotation,
                    file: Mutex::new(None),
                    tx: broadcast::channel(FOLLOW_BUFFER).0,
                }),
            })
            .clone()
    }

    /// The last `tail` records (all when `None`), oldest first, across rotations.
    pub fn read(&self, name: &WorkloadName, tail: Option<usize>) -> Vec<LogRecord> {
        let base = self.dir.join(format!("{name}.log"));
        let mut files: Vec<PathBuf> = (1..=self.rotation.keep)
            .rev()
            .map(|i| rotated(&base, i))
            .collect();
        files.push(base);
        let mut out = std::collections::VecDeque::new();
        for path in files {
            let Ok(f) = File::open(&path) else { continue };
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(rec) = serde_json::from_str::<LogRecord>(&line) {
                    out.push_back(rec);
                    if tail.is_some_and(|t| out.len() > t) {
                        out.pop_front();
                    }
                }
            }
        }
        out.into()
    }

    /// Deletes every log file of a workload.
    pub fn remove(&self, name: &WorkloadName) {
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let prefix = format!("{name}.");
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

fn rotated(base: &Path, i: usize) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

impl LogSink {
    /// Appends one record and hands it to followers.
    pub fn write(&self, record: LogRecord) {
        let inner = &self.inner;
        if let Ok(mut line) = serde_json::to_vec(&record) {
            line.push(b'\n');
            let mut guard = inner.file.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = inner.append(&mut guard, &line) {
                tracing::warn!(path = %inner.path.display(), error = %e, "cannot write log");
                *guard = None;
            }
        }
        let _ = inner.tx.send(record);
    }

    /// Convenience for a line of a given stream.
    pub fn line(&self, stream: LogStream, level: Option<String>, message: impl Into<String>) {
        self.write(LogRecord {
            time: vimana_store::now_rfc3339(),
            stream,
            level,
            message: message.into(),
        });
    }

    /// A note from the daemon itself.
    pub fn daemon(&self, message: impl Into<String>) {
        self.line(LogStream::Daemon, None, message);
    }

    /// Whether anything but the book holds this sink: a writer (a clone)
    /// or a follower (a receiver). Clones are made only under the book's
    /// mutex, and a receiver only from a clone.
    fn in_use(&self) -> bool {
        Arc::strong_count(&self.inner) > 1 || self.inner.tx.receiver_count() > 0
    }

    /// Live records from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogRecord> {
        self.inner.tx.subscribe()
    }
}

impl SinkInner {
    fn append(&self, slot: &mut Option<(File, u64)>, line: &[u8]) -> std::io::Result<()> {
        if slot.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let len = f.metadata()?.len();
            *slot = Some((f, len));
        }
        if let Some((_, len)) = slot.as_ref()
            && *len > 0
            && *len + line.len() as u64 > self.rotation.max_bytes
        {
            *slot = None;
            self.rotate()?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            *slot = Some((f, 0));
        }
        if let Some((f, len)) = slot.as_mut() {
            f.write_all(line)?;
            *len += line.len() as u64;
        }
        Ok(())
    }

    fn rotate(&self) -> std::io::Result<()> {
        let keep = self.rotation.keep;
        if keep == 0 {
            return fs::remove_file(&self.path);
        }
        let _ = fs::remove_file(rotated(&self.path, keep));
        for i in (1..keep).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rotates_and_reads_tail() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::new(
            dir.path(),
            Rotation {
                max_bytes: 400,
                keep: 2,
            },
        )
        .unwrap();
        let name = WorkloadName::new("a").unwrap();
        let sink = book.sink(&name);
        let mut rx = sink.subscribe();
        for i in 0..50 {
            sink.line(LogStream::Stdout, None, format!("line {i}"));
        }
        assert_eq!(rx.try_recv().unwrap().message, "line 0");
        assert!(dir.path().join("a.log.1").exists());
        assert!(dir.path().join("a.log.2").exists());
        assert!(!dir.path().join("a.log.3").exists());
        let tail = book.read(&name, Some(3));
        let msgs: Vec<_> = tail.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs, ["line 47", "line 48", "line 49"]);
        let all = book.read(&name, None);
        assert!(
            all.len() < 50 && all.len() > 5,
            "rotation dropped old lines"
        );
        book.remove(&name);
        assert!(book.read(&name, None).is_empty());
    }

    /// Sinks nobody writes to or follows are freed; one with a follower is
    /// kept, so the follower sees what a later writer of that name writes.
    #[test]
    fn unused_sinks_are_freed_and_followed_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::new(dir.path(), Rotation::default()).unwrap();
        let followed = WorkloadName::new("followed").unwrap();
        let mut rx = book.sink(&followed).subscribe();
        for i in 0..10_000 {
            let name = WorkloadName::new(format!("absent-{i}")).unwrap();
            drop(book.sink(&name).subscribe());
        }
        let kept = book.sinks.lock().unwrap().len();
        assert!(kept <= 2, "{kept} sinks kept");
        book.sink(&followed).daemon("hello");
        assert_eq!(rx.try_recv().unwrap().message, "hello");
    }
}
