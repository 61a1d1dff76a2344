//! The guest's serial console, copied line by line from `console.log`
//! (written by the VMM, persisted) into the workload's merged log.
//!
//! Bounded whatever the guest prints: lines are read with the shared
//! [`TailFollower`] (a line without a newline is cut at
//! [`MAX_LINE`](vimana_goplugin::tail::MAX_LINE)), and
//! `console.log` is emptied once everything in it was copied and it grew
//! past [`CONSOLE_MAX`], so a running VM's console costs at most that much
//! disk; its history stays in the merged log (`vimana logs`, rotated).
//! The VMMs append to the file (QEMU `logappend=on`, Firecracker's stdout
//! opened `O_APPEND`), so they continue at its new start. Cloud
//! Hypervisor writes at its own offset: the file then stays sparse (its
//! blocks are freed) and the hole reads as NULs, which are dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vimana_api::LogStream;
use vimana_core::LogSink;
#[cfg(test)]
use vimana_goplugin::tail::MAX_LINE;
use vimana_goplugin::tail::TailFollower;

const POLL: Duration = Duration::from_millis(200);
/// `console.log` is emptied past this size once copied into the merged log.
pub(crate) const CONSOLE_MAX: u64 = 4 << 20;

/// Follows `path` until the task is aborted. A re-adopted VM starts at the
/// end of the file (earlier lines are already in the log).
pub(crate) async fn follow_console(path: PathBuf, sink: LogSink, from_end: bool) {
    let mut tail = if from_end {
        TailFollower::from_end(&path)
    } else {
        TailFollower::new(&path, 0)
    };
    loop {
        match tail.try_next_line().await {
            Ok(Some(line)) => {
                let line = printable(&line);
                if !line.is_empty() {
                    sink.line(LogStream::Stdout, None, line);
                }
            }
            Ok(None) => {
                tail.truncate_if_drained(CONSOLE_MAX);
                tokio::time::sleep(POLL).await;
            }
            Err(_) => return,
        }
    }
}

/// A console line without trailing blanks and control characters (escape
/// sequences' ESC, `\r`, NULs) other than tabs.
fn printable(line: &str) -> String {
    line.trim_end()
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

/// Waits (up to `limit`) until a line containing `marker` appears in the
/// console log; returns whether it did. The file is opened once and only
/// what was appended is read (from its start again if it was emptied);
/// what is kept between reads is bounded by the marker's length.
pub(crate) async fn wait_for_line(path: &Path, marker: &str, limit: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    const STEP: Duration = Duration::from_millis(10);
    let deadline = tokio::time::Instant::now() + limit;
    let mut file = None;
    let mut pos = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if file.is_none() {
            file = tokio::fs::File::open(path).await.ok();
        }
        if let Some(f) = file.as_mut() {
            if f.metadata().await.is_ok_and(|m| m.len() < pos) {
                pos = 0;
                carry.clear();
                let _ = f.seek(std::io::SeekFrom::Start(0)).await;
            }
            buf.clear();
            if f.read_to_end(&mut buf).await.is_ok() && !buf.is_empty() {
                pos += buf.len() as u64;
                carry.extend_from_slice(&buf);
                if contains(&carry, marker.as_bytes()) {
                    return true;
                }
                // Keep only what may begin the marker: the unfinished last
                // line, at most the marker's length minus one byte.
                let line_start = carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let keep_from = line_start.max(carry.len().saturating_sub(marker.len()));
                carry.drain(..keep_from);
            }
        }
        tokio::time::sleep(STEP).await;
    }
    false
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use vimana_api::WorkloadName;
    use vimana_core::{LogBook, Rotation};

    use super::*;

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn drain(
        rx: &mut tokio::sync::broadcast::Receiver<vimana_api::LogRecord>,
        received: &mut usize,
        longest: &mut usize,
    ) {
        while let Ok(r) = rx.try_recv() {
            *received += r.message.len();
            *longest = (*longest).max(r.message.len());
        }
    }

    /// A guest that prints 100 MiB without a newline: the follower's memory
    /// stays bounded (lines are cut at `MAX_LINE`), the text still reaches
    /// the merged log, and `console.log` is emptied once read instead of
    /// growing while the VM runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_console_without_newlines_keeps_memory_and_the_file_bounded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("console.log");
        let book = LogBook::new(dir.path().join("logs"), Rotation::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let name = WorkloadName::new("vm").unwrap_or_else(|e| panic!("{e}"));
        let sink = book.sink(&name);
        let mut rx = sink.subscribe();
        let before = rss_kib();
        let follower = tokio::spawn(follow_console(log.clone(), sink, false));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("{e}"));
        let chunk = vec![b'x'; 1 << 20];
        let mut peak = 0;
        let (mut received, mut longest) = (0usize, 0usize);
        for _ in 0..100 {
            f.write_all(&chunk).unwrap_or_else(|e| panic!("{e}"));
            // Let the follower keep up, as a guest's serial console is slow.
            tokio::time::sleep(Duration::from_millis(20)).await;
            drain(&mut rx, &mut received, &mut longest);
            peak = peak.max(rss_kib());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let len = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        while len() > CONSOLE_MAX || received + MAX_LINE < 99 << 20 {
            drain(&mut rx, &mut received, &mut longest);
            peak = peak.max(rss_kib());
            if tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        follower.abort();
        let grew = peak.saturating_sub(before);
        eprintln!("RSS before {before} KiB, peak growth {grew} KiB");
        assert!(
            grew < 48 * 1024,
            "the follower's memory grew by {grew} KiB for 100 MiB without a newline"
        );
        assert!(longest <= MAX_LINE, "a line of {longest} bytes");
        assert!(
            received + MAX_LINE >= 99 << 20,
            "only {received} bytes reached the log"
        );
        assert!(len() <= CONSOLE_MAX, "console.log is {} bytes", len());
    }

    /// The marker is found after a long line without a newline and after
    /// the file was emptied (by the follower) while waiting.
    #[tokio::test]
    async fn wait_for_line_survives_long_lines_and_truncation() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("console.log");
        std::fs::write(&log, vec![b'x'; 2 << 20]).unwrap_or_else(|e| panic!("{e}"));
        let p = log.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let f = std::fs::OpenOptions::new().write(true).open(&p);
            f.and_then(|f| f.set_len(0))
                .unwrap_or_else(|e| panic!("{e}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .unwrap_or_else(|e| panic!("{e}"));
            f.write_all(b"boot\nvimana-agent: rea")
                .unwrap_or_else(|e| panic!("{e}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
            f.write_all(b"dy\n").unwrap_or_else(|e| panic!("{e}"));
        });
        let found = wait_for_line(&log, "vimana-agent: ready", Duration::from_secs(5)).await;
        writer.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(found, "the marker written after truncation was missed");
    }
}
