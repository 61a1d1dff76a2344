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
pub(crate) fn spawn(file: PathBuf, stream: LogStream, sink: LogSink, skip_first: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = saved_offset(&file);
        let mut tail = TailFollower::new(&file, start);
        let mut skip = skip_first && start == 0;
        let mut saved = start;
        let mut last_save = Instant::now();
        loop {
            let line = match tail.next_line().await {
                Ok(l) => l,
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
