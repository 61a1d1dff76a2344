//! Copies a plugin's raw stdout/stderr files into its merged log.
//!
//! The plugin writes to plain files opened `O_APPEND` (so it never sees a
//! broken pipe, and keeps running when the daemon dies). The pump follows
//! each file and remembers how far it got in a `<file>.pos` side file, so the
//! next daemon continues where this one stopped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use vimana_api::LogStream;
use vimana_core::LogSink;
use vimana_goplugin::tail::TailFollower;

const SAVE_EVERY: Duration = Duration::from_secs(1);
pub(crate) const POLL: Duration = Duration::from_millis(250);
/// Raw output files are emptied past this size once copied.
const RAW_MAX: u64 = 4 * 1024 * 1024;

/// The raw output files of one workload.
#[derive(Clone, Debug)]
pub(crate) struct RawFiles {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl RawFiles {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            stdout: dir.join(format!("{name}.stdout")),
            stderr: dir.join(format!("{name}.stderr")),
        }
    }

    /// Starts copying both files into `sink` (skipping the handshake line).
    pub fn pump_into(&self, sink: &LogSink) -> Vec<JoinHandle<()>> {
        vec![
            spawn(self.stdout.clone(), LogStream::Stdout, sink.clone(), true),
            spawn(self.stderr.clone(), LogStream::Stderr, sink.clone(), false),
        ]
    }

    /// Empties both files for a fresh launch.
    pub fn reset(&self) -> std::io::Result<()> {
        for p in [&self.stdout, &self.stderr] {
            std::fs::write(p, b"")?;
            let _ = std::fs::remove_file(pos_path(p));
        }
        Ok(())
    }
}

fn pos_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".pos");
    PathBuf::from(s)
}

fn saved_offset(p: &Path) -> u64 {
    let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    std::fs::read_to_string(pos_path(p))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&o| o <= len)
        .unwrap_or(0)
}

/// Starts pumping `file` into `sink`; stderr lines are parsed as hclog.
/// `skip_first` skips the go-plugin handshake line on stdout.
///
/// The raw file is emptied once everything in it was copied and it grew
/// past [`RAW_MAX`] (the plugin appends, so it simply continues at the new
/// end); the merged log has its own rotation.
pub(crate) fn spawn(
    file: PathBuf,
    stream: LogStream,
    sink: LogSink,
    skip_first: bool,
) -> JoinHandle<()> {
    spawn_with(file, stream, sink, skip_first, RAW_MAX)
}

fn spawn_with(
    file: PathBuf,
    stream: LogStream,
    sink: LogSink,
    skip_first: bool,
    raw_max: u64,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = saved_offset(&file);
        let mut tail = TailFollower::new(&file, start).with_poll_interval(POLL);
        let mut skip = skip_first && start == 0;
        let mut saved = start;
        let mut last_save = Instant::now();
        loop {
            let line = match tail.try_next_line().await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    if tail.offset() > raw_max && truncate_if_drained(&file, tail.offset()) {
                        tail = TailFollower::new(&file, 0).with_poll_interval(POLL);
                        saved = 0;
                        let _ = tokio::fs::write(pos_path(&file), "0").await;
                    } else if tail.offset() != saved {
                        saved = tail.offset();
                        last_save = Instant::now();
                        let _ = tokio::fs::write(pos_path(&file), saved.to_string()).await;
                    }
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(file = %file.display(), error = %e, "log pump stopped");
                    return;
                }
            };
            if std::mem::take(&mut skip) {
                continue;
            }
            write_line(&sink, stream, &line);
            if tail.offset() != saved && last_save.elapsed() >= SAVE_EVERY {
                saved = tail.offset();
                last_save = Instant::now();
                let _ = tokio::fs::write(pos_path(&file), saved.to_string()).await;
            }
        }
    })
}

/// Empties `file` if nothing was appended past `offset`.
fn truncate_if_drained(file: &Path, offset: u64) -> bool {
    let Ok(f) = std::fs::OpenOptions::new().write(true).open(file) else {
        return false;
    };
    match f.metadata() {
        Ok(m) if m.len() == offset => f.set_len(0).is_ok(),
        _ => false,
    }
}

fn write_line(sink: &LogSink, stream: LogStream, line: &str) {
    if stream == LogStream::Stderr {
        let parsed = vimana_goplugin::parse_hclog_line(line);
        if parsed.structured {
            sink.line(LogStream::Hclog, parsed.level, parsed.message);
            return;
        }
    }
    sink.line(stream, None, line.to_string());
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use vimana_api::WorkloadName;
    use vimana_core::LogBook;

    use super::*;

    #[tokio::test]
    async fn copies_lines_parses_hclog_and_empties_big_raw_files() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::new(dir.path().join("logs"), Default::default()).unwrap();
        let name = WorkloadName::new("w").unwrap();
        let raw = dir.path().join("w.stderr");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&raw)
            .unwrap();
        writeln!(f, r#"{{"@level":"info","@message":"hello"}}"#).unwrap();
        writeln!(f, "plain {}", "x".repeat(200)).unwrap();
        let task = spawn_with(raw.clone(), LogStream::Stderr, book.sink(&name), false, 100);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&raw).unwrap().len() != 0 {
            assert!(Instant::now() < deadline, "raw file was not emptied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The writer keeps appending to the same open file after truncation.
        writeln!(f, "after").unwrap();
        while !book.read(&name, None).iter().any(|r| r.message == "after") {
            assert!(Instant::now() < deadline, "line after truncation lost");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let recs = book.read(&name, None);
        assert_eq!(recs[0].stream, LogStream::Hclog);
        assert_eq!(recs[0].level.as_deref(), Some("info"));
        assert_eq!(recs[0].message, "hello");
        assert_eq!(recs[1].stream, LogStream::Stderr);
        assert_eq!(recs.len(), 3);
    }
}
