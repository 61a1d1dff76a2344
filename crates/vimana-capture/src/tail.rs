//! Async follower of a growing file: yields complete lines appended after a
//! given offset. Used to read the handshake line of a plugin whose stdout
//! goes to a file, and by the daemon to pump plugin log files.
//!
//! The file is polled (re-opened each time, so a replaced file is picked up).
//! If it shrinks below the current read position it was truncated: reading
//! restarts at offset 0. A missing file counts as empty.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Follows `path` from an offset, yielding complete lines.
#[derive(Debug)]
pub struct TailFollower {
    path: PathBuf,
    /// Next byte of the file to read.
    pos: u64,
    /// Bytes read but not yet terminated by `\n`.
    partial: Vec<u8>,
    poll_interval: Duration,
}

/// Maximum bytes read per poll, to bound memory on huge appends.
const READ_CHUNK: u64 = 1 << 20;

impl TailFollower {
    /// Follows `path` starting at byte `offset`.
    pub fn new(path: impl Into<PathBuf>, offset: u64) -> Self {
        Self {
            path: path.into(),
            pos: offset,
            partial: Vec::new(),
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
        self.pos.saturating_sub(self.partial.len() as u64)
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

    fn take_line(&mut self) -> Option<String> {
        let nl = self.partial.iter().position(|&b| b == b'\n')?;
        let rest = self.partial.split_off(nl + 1);
        let mut line = std::mem::replace(&mut self.partial, rest);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(String::from_utf8_lossy(&line).into_owned())
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
            self.partial.clear();
        }
        if len == self.pos {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.pos)).await?;
        let want = (len - self.pos).min(READ_CHUNK);
        let mut buf = Vec::with_capacity(want as usize);
        let n = (&mut file).take(want).read_to_end(&mut buf).await?;
        self.pos += n as u64;
        self.partial.extend_from_slice(&buf);
        Ok(())
    }
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
