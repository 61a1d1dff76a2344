//! Plugin stdout/stderr handling during and after the handshake: reading
//! the handshake line (pipe or tailed file), pumping piped stderr into
//! [`LogLine`]s, and remembering the stderr tail for error messages.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::ChildStdout;
use tokio::sync::{mpsc, watch};

use crate::hclog::{LogLine, parse_hclog_line};
use crate::tail::TailFollower;

/// Lines of stderr quoted in "exited before the handshake" errors.
pub(crate) const TAIL_LINES: usize = 20;

/// Reads one line (lossy UTF-8, no terminator); `None` at EOF.
async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Where the handshake line comes from.
pub(crate) enum HandshakeSource {
    Pipe(BufReader<ChildStdout>),
    File(TailFollower),
}

impl HandshakeSource {
    /// Next stdout line; `None` if the pipe hit EOF (files never do).
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<String>> {
        match self {
            HandshakeSource::Pipe(r) => read_line(r).await,
            HandshakeSource::File(t) => t.next_line().await.map(Some),
        }
    }

    /// After the handshake: keep draining a pipe so the plugin never blocks.
    pub(crate) fn drain_in_background(self, path: PathBuf) {
        if let HandshakeSource::Pipe(mut r) = self {
            tokio::spawn(async move {
                while let Ok(Some(line)) = read_line(&mut r).await {
                    tracing::trace!(plugin = %path.display(), "stdout: {line}");
                }
            });
        }
    }
}

/// The last stderr lines of a plugin, for error messages.
pub(crate) enum StderrTail {
    /// Filled by the pump task; `done` turns true at EOF.
    Pipe {
        ring: Arc<Mutex<VecDeque<String>>>,
        done: watch::Receiver<bool>,
    },
    /// Read back from the stderr file, from `offset` (its length at launch).
    File { path: PathBuf, offset: u64 },
}

impl StderrTail {
    /// The last [`TAIL_LINES`] lines, waiting briefly for a pipe to hit EOF.
    pub(crate) async fn text(&self) -> String {
        let lines: Vec<String> = match self {
            StderrTail::Pipe { ring, done } => {
                let mut done = done.clone();
                let _ = tokio::time::timeout(Duration::from_secs(1), done.wait_for(|d| *d)).await;
                match ring.lock() {
                    Ok(r) => r.iter().cloned().collect(),
                    Err(_) => Vec::new(),
                }
            }
            StderrTail::File { path, offset } => file_tail(path, *offset),
        };
        if lines.is_empty() {
            "its stderr was empty; is it a go-plugin plugin?".to_string()
        } else {
            format!("its stderr ended with:\n{}", lines.join("\n"))
        }
    }
}

fn file_tail(path: &Path, offset: u64) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Pumps piped stderr: every line is remembered in the tail ring and sent,
/// parsed, to `tx` with `try_send` (dropped when the receiver lags or is
/// gone, so the plugin never blocks on a full pipe).
pub(crate) fn spawn_stderr_pump<R>(stderr: R, tx: mpsc::Sender<LogLine>) -> StderrTail
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let ring = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let (done_tx, done) = watch::channel(false);
    let ring2 = ring.clone();
    tokio::spawn(async move {
        let mut r = BufReader::new(stderr);
        while let Ok(Some(line)) = read_line(&mut r).await {
            if let Ok(mut ring) = ring2.lock() {
                if ring.len() == TAIL_LINES {
                    ring.pop_front();
                }
                ring.push_back(line.clone());
            }
            let _ = tx.try_send(parse_hclog_line(&line));
        }
        let _ = done_tx.send(true);
    });
    StderrTail::Pipe { ring, done }
}
