//! Async follower of a growing file: yields complete lines appended after a
//! given offset. Used to read the handshake line of a plugin whose stdout
//! goes to a file, and by the daemon to pump plugin log files and VM consoles.
//!
//! The file is polled (re-opened each time, so a replaced file is picked up).
//! If it shrinks below the current read position it was truncated: reading
//! restarts at offset 0. A missing file counts as empty.
//!
//! Memory is bounded whatever the writer does: at most [`READ_CHUNK`] bytes
//! are read per poll, and a line longer than [`MAX_LINE`] (a `\r` progress
//! bar never prints a newline) is cut there and yielded in pieces, as
//! Docker's and the kubelet's log capture do. Ingest is linear: lines are
//! sliced out of one buffer that is compacted once per read.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Longest line yielded; longer ones are cut into pieces of at most this
/// many bytes (at a UTF-8 character boundary).
pub const MAX_LINE: usize = 16 * 1024;

/// Maximum bytes read per poll, to bound memory on huge appends.
pub const READ_CHUNK: u64 = 1 << 20;

/// Follows `path` from an offset, yielding complete lines.
#[derive(Debug)]
pub struct TailFollower {
    path: PathBuf,
    /// Next byte of the file to read.
    pos: u64,
    /// Bytes read; `buf[head..]` is not yet returned.
    buf: Vec<u8>,
    head: usize,
    /// `buf[head..scanned]` holds no `\n` (not searched again).
    scanned: usize,
    poll_interval: Duration,
}

impl TailFollower {
    /// Follows `path` starting at byte `offset`.
    pub fn new(path: impl Into<PathBuf>, offset: u64) -> Self {
        Self {
            path: path.into(),
            pos: offset,
            buf: Vec::new(),
            head: 0,
            scanned: 0,
            poll_interval: Duration::from_millis(50),
        }
    }

    /// Follows `path` from its current end (0 if it does not exist yet).
    pub fn from_end(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let len = file_len(&path).unwrap_or(0);
        Self::new(path, len)
    }

    /// How often the file is polled while waiting (default 50 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset just after the last line returned (resume point).
    pub fn offset(&self) -> u64 {
        self.pos.saturating_sub(self.buffered() as u64)
    }

    /// Bytes read from the file but not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Returns the next complete line if one is available now (no waiting).
    pub async fn try_next_line(&mut self) -> io::Result<Option<String>> {
        if let Some(line) = self.take_line() {
            return Ok(Some(line));
        }
        self.fill().await?;
        Ok(self.take_line())
    }

    /// Waits for the next complete line (without its `\n` / `\r\n`).
    pub async fn next_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(line) = self.try_next_line().await? {
                return Ok(line);
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// An endless stream of lines; ends only after an I/O error is yielded.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<String>> + Send {
        futures::stream::unfold(Some(self), |state| async move {
            let mut t = state?;
            match t.next_line().await {
                Ok(line) => Some((Ok(line), Some(t))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// Empties the file when everything in it was read and more than `max`
    /// bytes were, then continues at its new start. An unfinished line
    /// already read stays buffered and is completed by what follows. For
    /// writers that append (`O_APPEND`), which continue at the new end.
    pub fn truncate_if_drained(&mut self, max: u64) -> bool {
        if self.pos <= max {
            return false;
        }
        let Ok(f) = std::fs::OpenOptions::new().write(true).open(&self.path) else {
            return false;
        };
        match f.metadata() {
            Ok(m) if m.len() == self.pos && f.set_len(0).is_ok() => {
                self.pos = 0;
                true
            }
            _ => false,
        }
    }

    fn take_line(&mut self) -> Option<String> {
        let pending = &self.buf[self.head..];
        let from = self.scanned - self.head;
        let end = match pending[from..].iter().position(|&b| b == b'\n') {
            Some(i) => from + i + 1,
            None if pending.len() > MAX_LINE => cut_at(pending),
            None => {
                self.scanned = self.buf.len();
                return None;
            }
        };
        let mut line = &pending[..end];
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l.strip_suffix(b"\r").unwrap_or(l);
        }
        let line = String::from_utf8_lossy(line).into_owned();
        self.head += end;
        self.scanned = self.head;
        Some(line)
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let len = file.metadata().await?.len();
        if len < self.pos {
            tracing::debug!(path = %self.path.display(), "file truncated; restarting at 0");
            self.pos = 0;
            self.buf.clear();
            self.head = 0;
            self.scanned = 0;
        }
        if len == self.pos {
            return Ok(());
        }
        // Compact: what is left is at most one unfinished line.
        self.buf.drain(..self.head);
        self.scanned -= self.head;
        self.head = 0;
        file.seek(SeekFrom::Start(self.pos)).await?;
        let want = (len - self.pos).min(READ_CHUNK);
        let n = (&mut file).take(want).read_to_end(&mut self.buf).await?;
        self.pos += n as u64;
        Ok(())
    }
}

/// Where to cut a line longer than [`MAX_LINE`]: at most `MAX_LINE` bytes,
/// not inside a UTF-8 character (unless the bytes are not UTF-8 at all).
fn cut_at(pending: &[u8]) -> usize {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    (MAX_LINE - 3..=MAX_LINE)
        .rev()
        .find(|&i| !is_continuation(pending[i]))
        .unwrap_or(MAX_LINE)
}

fn file_len(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[tokio::test]
    async fn follows_from_offset_with_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        append(&p, "old line\n");
        let mut t = TailFollower::from_end(&p).with_poll_interval(Duration::from_millis(5));
        assert_eq!(t.offset(), 9);
        assert_eq!(t.try_next_line().await.unwrap(), None);
        append(&p, "first\nsec");
        assert_eq!(t.next_line().await.unwrap(), "first");
        assert_eq!(t.try_next_line().await.unwrap(), None);
        assert_eq!(t.offset(), 15);
        let p2 = p.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            append(&p2, "ond\r\nthird\n");
        });
        assert_eq!(t.next_line().await.unwrap(), "second");
        assert_eq!(t.next_line().await.unwrap(), "third");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn truncation_restarts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        append(&p, "aaaaaaaaaa\nbbbbbbbbbb\n");
        let mut t = TailFollower::new(&p, 0).with_poll_interval(Duration::from_millis(5));
        assert_eq!(t.next_line().await.unwrap(), "aaaaaaaaaa");
        assert_eq!(t.next_line().await.unwrap(), "bbbbbbbbbb");
        std::fs::write(&p, "new\n").unwrap();
        assert_eq!(t.next_line().await.unwrap(), "new");
        assert_eq!(t.offset(), 4);
    }

    /// A writer that never prints a newline (a `\r` progress bar) yields
    /// lines cut at [`MAX_LINE`] and the follower's buffer stays bounded.
    #[tokio::test]
    async fn a_line_without_newline_is_cut_and_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bar.log");
        let bar: String = (0..400).map(|i| format!("\r{i:>3}% [....]")).collect();
        let chunk = bar.repeat(((8 << 20) / bar.len()) + 1);
        append(&p, &chunk);
        let mut t = TailFollower::new(&p, 0);
        let mut total = 0usize;
        while let Some(line) = t.try_next_line().await.unwrap() {
            assert!(line.len() <= MAX_LINE, "line of {} bytes", line.len());
            total += line.len();
            assert!(t.buffered() <= READ_CHUNK as usize + MAX_LINE);
        }
        // Everything but the unfinished last piece came out, and the resume
        // point moved with it (so the raw file can be emptied).
        assert!(
            total + MAX_LINE >= chunk.len(),
            "{total} of {}",
            chunk.len()
        );
        assert!(t.offset() + MAX_LINE as u64 >= chunk.len() as u64);
        append(&p, "\ndone\n");
        let mut last = String::new();
        while let Some(line) = t.try_next_line().await.unwrap() {
            last = line;
        }
        assert_eq!(last, "done");
        assert_eq!(t.offset(), chunk.len() as u64 + 6);
    }

    /// A cut never splits a UTF-8 character.
    #[tokio::test]
    async fn a_cut_keeps_characters_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("utf8.log");
        append(&p, &"é".repeat(MAX_LINE));
        let mut t = TailFollower::new(&p, 0);
        let line = t.try_next_line().await.unwrap().unwrap();
        assert!(!line.contains('\u{fffd}'), "a character was split");
        assert!(line.len() <= MAX_LINE && line.len() >= MAX_LINE - 3);
    }

    /// 4 MiB of 100-byte lines (a backlog found at daemon start) is read in
    /// linear time: splitting each line off the front used to copy the rest
    /// of the buffer every time (≈ 20 GB moved for 4 MiB).
    #[tokio::test]
    async fn a_backlog_is_ingested_in_linear_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("backlog.log");
        let line = format!("{}\n", "x".repeat(99));
        append(&p, &line.repeat((4 << 20) / 100));
        let mut t = TailFollower::new(&p, 0);
        let started = std::time::Instant::now();
        let mut n = 0usize;
        while t.try_next_line().await.unwrap().is_some() {
            n += 1;
        }
        let took = started.elapsed();
        assert_eq!(n, (4 << 20) / 100);
        assert!(
            took < Duration::from_millis(500),
            "4 MiB backlog took {took:?}"
        );
    }

    /// The follower empties a drained file past a size and continues at its
    /// new start; an unfinished line read before is kept.
    #[tokio::test]
    async fn truncate_if_drained_keeps_the_unfinished_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, "one\ntwo\nhal");
        let mut t = TailFollower::new(&p, 0);
        assert_eq!(t.try_next_line().await.unwrap().unwrap(), "one");
        assert!(!t.truncate_if_drained(100), "below the limit");
        assert_eq!(t.try_next_line().await.unwrap().unwrap(), "two");
        assert_eq!(t.try_next_line().await.unwrap(), None);
        assert!(t.truncate_if_drained(4));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        append(&p, "f\nnext\n");
        assert_eq!(t.try_next_line().await.unwrap().unwrap(), "half");
        assert_eq!(t.try_next_line().await.unwrap().unwrap(), "next");
        assert_eq!(t.offset(), 7);
    }

    #[tokio::test]
    async fn missing_file_waits_and_stream_works() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("later.log");
        let t = TailFollower::from_end(&p).with_poll_interval(Duration::from_millis(5));
        let p2 = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            append(&p2, "x\ny\n");
        });
        let lines: Vec<String> = t.into_stream().take(2).map(|r| r.unwrap()).collect().await;
        assert_eq!(lines, ["x", "y"]);
    }
}
