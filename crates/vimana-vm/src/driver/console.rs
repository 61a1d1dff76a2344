//! The guest's serial console, copied line by line from `console.log`
//! (written by the VMM, persisted) into the workload's merged log.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use vimana_api::LogStream;
use vimana_core::LogSink;

const POLL: Duration = Duration::from_millis(200);

/// Follows `path` until the task is aborted. A re-adopted VM starts at the
/// end of the file (earlier lines are already in the log).
pub(crate) async fn follow_console(path: PathBuf, sink: LogSink, from_end: bool) {
    let file = loop {
        match tokio::fs::File::open(&path).await {
            Ok(f) => break f,
            Err(_) => tokio::time::sleep(POLL).await,
        }
    };
    let mut reader = BufReader::new(file);
    if from_end && reader.seek(SeekFrom::End(0)).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => tokio::time::sleep(POLL).await,
            Ok(_) if buf.ends_with(b"\n") => {
                let line = String::from_utf8_lossy(&buf);
                let line: String = line
                    .trim_end()
                    .chars()
                    .filter(|c| !c.is_control() || *c == '\t')
                    .collect();
                if !line.is_empty() {
                    sink.line(LogStream::Stdout, None, line);
                }
                buf.clear();
            }
            // A partial line: wait for the rest.
            Ok(_) => tokio::time::sleep(POLL).await,
            Err(_) => return,
        }
    }
}

/// Waits (up to `limit`) until a line containing `marker` appears in the
/// console log; returns whether it did. The file is opened once and only
/// what was appended is read.
pub(crate) async fn wait_for_line(path: &std::path::Path, marker: &str, limit: Duration) -> bool {
    const STEP: Duration = Duration::from_millis(10);
    let deadline = tokio::time::Instant::now() + limit;
    let mut file = None;
    let mut carry = String::new();
    let mut buf = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if file.is_none() {
            file = tokio::fs::File::open(path).await.ok();
        }
        if let Some(f) = file.as_mut() {
            buf.clear();
            if tokio::io::AsyncReadExt::read_to_end(f, &mut buf)
                .await
                .is_ok()
                && !buf.is_empty()
            {
                carry.push_str(&String::from_utf8_lossy(&buf));
                if carry.contains(marker) {
                    return true;
                }
                // Keep only the unfinished last line.
                if let Some(i) = carry.rfind('\n') {
                    carry.drain(..=i);
                }
            }
        }
        tokio::time::sleep(STEP).await;
    }
    false
}
