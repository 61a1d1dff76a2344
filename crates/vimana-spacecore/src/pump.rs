//! A plugin's raw stdout/stderr files, copied into its merged log through
//! [`vimana_capture`]: the handshake line on stdout is skipped, stderr lines
//! in hclog format become [`LogStream::Hclog`] records.

use std::sync::Arc;

use tokio::task::JoinHandle;
use vimana_api::LogStream;
use vimana_capture::{Classified, Classifier, LineSink, PumpOptions};
pub(crate) use vimana_capture::{RawFiles, drain};
use vimana_core::LogSink;

fn hclog(line: &str) -> Option<Classified> {
    let parsed = vimana_goplugin::parse_hclog_line(line);
    parsed.structured.then_some((parsed.level, parsed.message))
}

/// Starts copying a plugin's raw files into `sink`.
pub(crate) fn pump_into(files: &RawFiles, sink: &LogSink) -> Vec<JoinHandle<()>> {
    let s = sink.clone();
    let lines: LineSink = Arc::new(move |stream, level, message| s.line(stream, level, message));
    files.pump(
        &lines,
        PumpOptions {
            skip_first_stdout: true,
            stderr: Some(Classifier {
                stream: LogStream::Hclog,
                parse: hclog,
            }),
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;
    use std::time::{Duration, Instant};

    use vimana_api::WorkloadName;
    use vimana_core::LogBook;

    use super::*;

    #[tokio::test]
    async fn skips_handshake_and_parses_hclog_into_the_merged_log() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::new(dir.path().join("logs"), Default::default()).unwrap();
        let name = WorkloadName::new("w").unwrap();
        let files = RawFiles::new(dir.path(), "w");
        files.reset().unwrap();
        let (mut out, mut err) = files.open_append().unwrap();
        writeln!(out, "1|1|unix|/tmp/x|grpc|").unwrap();
        writeln!(out, "hi").unwrap();
        writeln!(err, r#"{{"@level":"info","@message":"hello"}}"#).unwrap();
        writeln!(err, "plain").unwrap();
        let pumps = pump_into(&files, &book.sink(&name));
        let deadline = Instant::now() + Duration::from_secs(5);
        while book.read(&name, None).len() < 3 {
            assert!(Instant::now() < deadline, "lines not copied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pumps.iter().for_each(|p| p.abort());
        let mut recs = book.read(&name, None);
        recs.sort_by_key(|r| r.message.clone());
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].message, "hello");
        assert_eq!(recs[0].stream, LogStream::Hclog);
        assert_eq!(recs[0].level.as_deref(), Some("info"));
        assert_eq!(recs[1].message, "hi");
        assert_eq!(recs[1].stream, LogStream::Stdout);
        assert_eq!(recs[2].message, "plain");
        assert_eq!(recs[2].stream, LogStream::Stderr);
    }
}
