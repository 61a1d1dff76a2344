//! Result collection and reporting for `grpc-load`: a lock-protected
//! latency log, nearest-rank percentiles in microseconds, and the two output
//! formats (one `key=value` line, or one JSON object).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

/// Shared by every request task of a run.
#[derive(Default)]
pub struct Recorder {
    /// Latencies of successful calls, µs.
    ok_us: Mutex<Vec<u64>>,
    /// Failed calls (errors, wrong answers, timeouts).
    failed: AtomicU64,
    /// Finished calls, successful or not.
    done: AtomicU64,
    /// Largest delay between a call's scheduled time and its dispatch, µs.
    max_lag_us: AtomicU64,
    /// The first failure, for the diagnostic on stderr.
    first_error: Mutex<Option<String>>,
}

impl Recorder {
    /// Records a successful call.
    pub fn ok(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut v) = self.ok_us.lock() {
            v.push(us);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a failed call.
    pub fn failed(&self, error: impl std::fmt::Display) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock()
            && first.is_none()
        {
            *first = Some(error.to_string());
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how late a call was dispatched relative to its schedule.
    pub fn lag(&self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.max_lag_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Calls finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Builds the report; `elapsed` is the measuring window.
    pub fn report(&self, head: Head, sent: u64, elapsed: Duration) -> Report {
        let mut lat = self.ok_us.lock().map(|v| v.clone()).unwrap_or_default();
        lat.sort_unstable();
        let ok = lat.len() as u64;
        let secs = elapsed.as_secs_f64();
        Report {
            head,
            sent,
            ok,
            failed: self.failed.load(Ordering::Relaxed),
            achieved_rps: if secs > 0.0 {
                (ok as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            },
            p50_us: percentile(&lat, 50.0),
            p90_us: percentile(&lat, 90.0),
            p99_us: percentile(&lat, 99.0),
            p999_us: percentile(&lat, 99.9),
            max_us: lat.last().copied().unwrap_or(0),
            max_send_lag_us: self.max_lag_us.load(Ordering::Relaxed),
            first_error: self.first_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// Nearest-rank percentile of sorted samples (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps e.g. 99.9 % of 1000 at rank 999 despite rounding.
    let rank = ((p / 100.0 * sorted.len() as f64 - 1e-9).ceil() as usize).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// What was run.
#[derive(Debug, Clone, Serialize)]
pub struct Head {
    /// `open` (fixed rate) or `max` (closed loop).
    pub mode: &'static str,
    pub target: String,
    /// Scheduled rate (open loop only).
    pub rate: Option<u64>,
    pub duration_s: f64,
    pub connections: u32,
    /// Concurrent streams per connection (max mode only).
    pub streams: Option<u32>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub head: Head,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Successful calls per second over the measuring window.
    pub achieved_rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Open loop: the generator's worst dispatch delay (large = it could
    /// not keep up, the latencies then include its own queueing).
    pub max_send_lag_us: u64,
    pub first_error: Option<String>,
}

impl Report {
    /// One human-readable `key=value` line.
    pub fn line(&self) -> String {
        let h = &self.head;
        let shape = match (h.rate, h.streams) {
            (Some(r), _) => format!("rate={r}/s"),
            (None, Some(s)) => format!("streams={s}/conn"),
            (None, None) => String::new(),
        };
        format!(
            "mode={} target={} {shape} conns={} duration={}s sent={} ok={} failed={} \
             achieved={:.1}/s p50={}us p90={}us p99={}us p99.9={}us max={}us send_lag_max={}us",
            h.mode,
            h.target,
            h.connections,
            h.duration_s,
            self.sent,
            self.ok,
            self.failed,
            self.achieved_rps,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.max_send_lag_us,
        )
    }
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.trim().parse()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => bail!("unknown duration unit {other:?} (use ms, s or m)"),
    };
    if !(secs.is_finite() && secs > 0.0) {
        bail!("duration must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_durations() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&[], 99.0), 0);
        assert_eq!(parse_duration("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("3").ok(), Some(Duration::from_secs(3)));
        assert!(parse_duration("1h").is_err());
    }
}
