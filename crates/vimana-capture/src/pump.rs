//! Copies a workload's raw stdout/stderr files into a line sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use vimana_api::LogStream;

use crate::tail::TailFollower;

const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How often an idle raw file is polled.
pub const POLL: Duration = Duration::from_millis(250);
/// Raw output files are emptied past this size once copied.
pub const RAW_MAX: u64 = 4 * 1024 * 1024;

/// Where pumped lines go: `(stream, level, message)`.
pub type LineSink = Arc<dyn Fn(LogStream, Option<String>, String) + Send + Sync>;

/// A line's level and message, when a [`Classifier`] recognises it.
pub type Classified = (Option<String>, String);

/// Recognises structured lines: `Some((level, message))` turns the line
/// into a record of the classifier's `stream`; `None` keeps it as is.
#[derive(Clone, Copy, Debug)]
pub struct Classifier {
    /// The stream classified lines are recorded under.
    pub stream: LogStream,
    pub parse: fn(&str) -> Option<Classified>,
}

/// How [`RawFiles::pump`] treats the two files.
#[derive(Clone, Copy, Debug, Default)]
pub struct PumpOptions {
    /// Skip the very first stdout line of a fresh file (a go-plugin
    /// handshake line).
    pub skip_first_stdout: bool,
    /// Applied to every stderr line.
    pub stderr: Option<Classifier>,
}

/// The raw output files of one workload: `<dir>/<name>.stdout|.stderr`.
#[derive(Clone, Debug)]
pub struct RawFiles {
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

    /// Starts copying both files into `sink`.
    pub fn pump(&self, sink: &LineSink, opts: PumpOptions) -> Vec<JoinHandle<()>> {
        vec![
            spawn_pump(
                self.stdout.clone(),
                LogStream::Stdout,
                sink.clone(),
                opts.skip_first_stdout,
                None,
            ),
            spawn_pump(
                self.stderr.clone(),
                LogStream::Stderr,
                sink.clone(),
                false,
                opts.stderr,
            ),
        ]
    }

    /// Empties both files (and forgets the read positions) for a fresh launch.
    pub fn reset(&self) -> std::io::Result<()> {
        for p in [&self.stdout, &self.stderr] {
            std::fs::write(p, b"")?;
            let _ = std::fs::remove_file(pos_path(p));
        }
        Ok(())
    }

    /// Opens both files for appending (creating them), ready to become a
    /// child's stdout and stderr.
    pub fn open_append(&self) -> std::io::Result<(std::fs::File, std::fs::File)> {
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
        };
        Ok((open(&self.stdout)?, open(&self.stderr)?))
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

/// Starts pumping `file` into `sink` as `stream`, from the saved offset.
/// `skip_first` skips the first line of a file read from its start;
/// `classify` may turn lines into structured records.
///
/// The raw file is emptied once everything in it was read and it grew
/// past [`RAW_MAX`] (the writer appends, so it simply continues at the new
/// end); a line without a newline is cut at [`crate::tail::MAX_LINE`], so
/// neither memory nor the raw file grows without bound.
pub fn spawn_pump(
    file: PathBuf,
    stream: LogStream,
    sink: LineSink,
    skip_first: bool,
    classify: Option<Classifier>,
) -> JoinHandle<()> {
    spawn_with(file, stream, sink, skip_first, classify, RAW_MAX)
}

fn spawn_with(
    file: PathBuf,
    stream: LogStream,
    sink: LineSink,
    skip_first: bool,
    classify: Option<Classifier>,
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
                    if tail.truncate_if_drained(raw_max) {
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
            write_line(&sink, stream, classify, line);
            if tail.offset() != saved && last_save.elapsed() >= SAVE_EVERY {
                saved = tail.offset();
                last_save = Instant::now();
                let _ = tokio::fs::write(pos_path(&file), saved.to_string()).await;
            }
        }
    })
}

fn write_line(sink: &LineSink, stream: LogStream, classify: Option<Classifier>, line: String) {
    if let Some(c) = classify
        && let Some((level, message)) = (c.parse)(&line)
    {
        sink(c.stream, level, message);
        return;
    }
    sink(stream, None, line);
}

/// Lets the pumps copy what a process printed just before it ended, then
/// stops them.
pub async fn drain(pumps: Vec<JoinHandle<()>>) {
    tokio::time::sleep(POLL + Duration::from_millis(100)).await;
    pumps.iter().for_each(|p| p.abort());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    type Lines = Arc<Mutex<Vec<(LogStream, Option<String>, String)>>>;

    fn recorder() -> (Lines, LineSink) {
        let lines: Lines = Arc::default();
        let l = lines.clone();
        let sink: LineSink = Arc::new(move |s, lvl, m| l.lock().unwrap().push((s, lvl, m)));
        (lines, sink)
    }

    fn json_level(line: &str) -> Option<(Option<String>, String)> {
        let rest = line.strip_prefix("{level=")?;
        let (level, msg) = rest.split_once("} ")?;
        Some((Some(level.to_string()), msg.to_string()))
    }

    #[tokio::test]
    async fn copies_lines_classifies_and_empties_big_raw_files() {
        let dir = tempfile::tempdir().unwrap();
        let (lines, sink) = recorder();
        let raw = dir.path().join("w.stderr");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&raw)
            .unwrap();
        writeln!(f, "{{level=info}} hello").unwrap();
        writeln!(f, "plain {}", "x".repeat(200)).unwrap();
        let classify = Classifier {
            stream: LogStream::Hclog,
            parse: json_level,
        };
        let task = spawn_with(
            raw.clone(),
            LogStream::Stderr,
            sink,
            false,
            Some(classify),
            100,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&raw).unwrap().len() != 0 {
            assert!(Instant::now() < deadline, "raw file was not emptied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The writer keeps appending to the same open file after truncation.
        writeln!(f, "after").unwrap();
        while !lines.lock().unwrap().iter().any(|r| r.2 == "after") {
            assert!(Instant::now() < deadline, "line after truncation lost");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let recs = lines.lock().unwrap().clone();
        assert_eq!(recs[0].0, LogStream::Hclog);
        assert_eq!(recs[0].1.as_deref(), Some("info"));
        assert_eq!(recs[0].2, "hello");
        assert_eq!(recs[1].0, LogStream::Stderr);
        assert_eq!(recs.len(), 3);
    }

    /// A process that only ever prints `\r` progress updates: its lines
    /// arrive cut at `MAX_LINE` and the raw file is still emptied.
    #[tokio::test]
    async fn a_progress_bar_without_newlines_is_cut_and_its_raw_file_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let (lines, sink) = recorder();
        let raw = dir.path().join("w.stdout");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&raw)
            .unwrap();
        let task = spawn_with(raw.clone(), LogStream::Stdout, sink, false, None, 64 * 1024);
        let mut written = 0usize;
        for i in 0..20_000u32 {
            let update = format!("\r{:>5}/20000 [{}]", i, "#".repeat((i % 50) as usize));
            f.write_all(update.as_bytes()).unwrap();
            written += update.len();
            if i % 1000 == 0 {
                tokio::time::sleep(POLL).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let len = || std::fs::metadata(&raw).unwrap().len() as usize;
        while len() >= written - crate::tail::MAX_LINE || lines.lock().unwrap().len() < 20 {
            assert!(
                Instant::now() < deadline,
                "raw file never emptied: {} of {written} bytes, {} lines",
                len(),
                lines.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        task.abort();
        let recs = lines.lock().unwrap().clone();
        assert!(recs.iter().all(|r| r.2.len() <= crate::tail::MAX_LINE));
    }

    #[tokio::test]
    async fn resumes_at_saved_offset_and_skips_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let files = RawFiles::new(dir.path(), "w");
        files.reset().unwrap();
        let (mut out, _err) = files.open_append().unwrap();
        writeln!(out, "handshake").unwrap();
        writeln!(out, "one").unwrap();
        let (lines, sink) = recorder();
        let opts = PumpOptions {
            skip_first_stdout: true,
            stderr: None,
        };
        let wait = |n: usize, lines: Lines| async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            while lines.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "lines not copied");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let pumps = files.pump(&sink, opts);
        wait(1, lines.clone()).await;
        // wait for the idle save of the offset
        tokio::time::sleep(POLL * 2).await;
        pumps.iter().for_each(|p| p.abort());
        writeln!(out, "two").unwrap();
        let pumps = files.pump(&sink, opts);
        wait(2, lines.clone()).await;
        pumps.iter().for_each(|p| p.abort());
        let got: Vec<String> = lines.lock().unwrap().iter().map(|r| r.2.clone()).collect();
        assert_eq!(got, ["one", "two"]);
    }
}
