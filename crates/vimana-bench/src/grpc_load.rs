//! `grpc-load`: a gRPC load generator for `foo.bar.AdderService/AddFloats`.
//!
//! - Open loop (`--rate R`): calls are scheduled at exactly R per second,
//!   round-robin over the connections, whether or not earlier calls have
//!   been answered. A dedicated OS thread keeps the schedule (high
//!   resolution sleeps, catching up on overdue calls) and spawns each call
//!   on the tokio runtime. Latency is measured from the *scheduled* send
//!   time, so a stalled server cannot hide its stall (no coordinated
//!   omission).
//! - Closed loop (`--max`): `connections × streams` workers each issue
//!   calls back to back for the duration; the achieved rate is the maximum
//!   throughput.
//!
//! Every call must answer HTTP 200, `grpc-status: 0` and `result == 2.3`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use tokio::task::JoinSet;

use crate::grpc_conn::Target;
use crate::load_report::{Head, Recorder, parse_duration};

/// Command-line options of `grpc-load`.
#[derive(clap::Args, Debug)]
pub struct Opts {
    /// `http://host:port` (h2c, prior knowledge) or `https://host:port` (TLS).
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// `:authority` to send (default: the target's host:port).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub authority: Option<String>,
    /// PEM CA certificate(s) to verify the server with (TLS only).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// TLS server name (default: the authority's host, else the target's).
    #[arg(long, value_name = "HOST")]
    pub sni: Option<String>,
    /// Calls per second (open loop).
    #[arg(long, required_unless_present = "max", conflicts_with = "max",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Closed loop: measure the maximum throughput instead.
    #[arg(long)]
    pub max: bool,
    /// Concurrent streams per connection with --max.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub streams: u32,
    /// How long to send (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// A call not answered within this time counts as failed.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object instead of a key=value line.
    #[arg(long)]
    pub json: bool,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
}

/// Builds the target, opens the connections and checks each with one call.
async fn setup(opts: &Opts) -> Result<(Arc<Target>, Vec<SendRequest<Full<Bytes>>>)> {
    let tls = match &opts.tls_ca {
        None => None,
        Some(ca) => {
            let host = match (&opts.sni, &opts.authority) {
                (Some(sni), _) => sni.clone(),
                (None, Some(a)) => a.parse::<http::uri::Authority>()?.host().to_owned(),
                (None, None) => {
                    let uri: http::Uri = opts.target.parse()?;
                    uri.host().context("target has no host")?.to_owned()
                }
            };
            Some((
                crate::tls::client_config(ca)?,
                crate::tls::server_name(&host)?,
            ))
        }
    };
    let target = Arc::new(Target::new(&opts.target, opts.authority.as_deref(), tls).await?);
    let mut conns = Vec::new();
    for i in 0..opts.connections {
        let mut send = target.connect().await?;
        target
            .call(&mut send)
            .await
            .with_context(|| format!("warm-up call on connection {i}"))?;
        conns.push(send);
    }
    Ok((target, conns))
}

/// One call, recorded with its latency measured from `since`.
async fn timed_call(
    target: &Target,
    send: &mut SendRequest<Full<Bytes>>,
    since: Instant,
    timeout: Duration,
    rec: &Recorder,
) {
    match tokio::time::timeout(timeout, target.call(send)).await {
        Ok(Ok(())) => rec.ok(since.elapsed()),
        Ok(Err(e)) => rec.failed(format!("{e:#}")),
        Err(_) => rec.failed(format!("no answer within {timeout:?}")),
    }
}

/// Open loop at `rate` calls per second; returns (sent, measuring window).
async fn open_loop(
    opts: &Opts,
    rate: u64,
    target: Arc<Target>,
    conns: Vec<SendRequest<Full<Bytes>>>,
    rec: Arc<Recorder>,
) -> Result<(u64, Duration)> {
    let total = (rate as f64 * opts.duration.as_secs_f64()).round() as u64;
    let handle = tokio::runtime::Handle::current();
    let timeout = opts.timeout;
    let start = Instant::now() + Duration::from_millis(10);
    let (rec2, target2) = (Arc::clone(&rec), Arc::clone(&target));
    let scheduler = std::thread::Builder::new()
        .name("grpc-load-scheduler".into())
        .spawn(move || {
            for i in 0..total {
                let at = start
                    + Duration::from_nanos(
                        (u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64,
                    );
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let mut send = conns[(i % conns.len() as u64) as usize].clone();
                let (rec, target) = (Arc::clone(&rec2), Arc::clone(&target2));
                handle.spawn(async move {
                    rec.lag(at.elapsed());
                    timed_call(&target, &mut send, at, timeout, &rec).await;
                });
            }
        })
        .context("starting the scheduler thread")?;
    let rec3 = Arc::clone(&rec);
    tokio::task::spawn_blocking(move || scheduler.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))?;
    // Every call ends by its timeout at the latest.
    while rec3.done() < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((total, start.elapsed()))
}

/// Closed loop with `streams` workers per connection; returns (sent, window).
async fn max_loop(
    opts: &Opts,
    target: Arc<Target>,
    conns: Vec<SendRequest<Full<Bytes>>>,
    rec: Arc<Recorder>,
) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut workers = JoinSet::new();
    for send in &conns {
        for _ in 0..opts.streams {
            let (mut send, target, rec) = (send.clone(), Arc::clone(&target), Arc::clone(&rec));
            let timeout = opts.timeout;
            workers.spawn(async move {
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    timed_call(&target, &mut send, Instant::now(), timeout, &rec).await;
                    sent += 1;
                }
                sent
            });
        }
    }
    let mut sent = 0;
    while let Some(n) = workers.join_next().await {
        sent += n?;
    }
    Ok((sent, start.elapsed()))
}

/// Runs the load and returns the formatted report.
pub async fn run(opts: Opts) -> Result<String> {
    let (target, conns) = setup(&opts).await?;
    let rec = Arc::new(Recorder::default());
    let (mode, (sent, elapsed)) = match (opts.max, opts.rate) {
        (true, _) => (
            "max",
            max_loop(&opts, target, conns, Arc::clone(&rec)).await?,
        ),
        (false, Some(rate)) => (
            "open",
            open_loop(&opts, rate, target, conns, Arc::clone(&rec)).await?,
        ),
        (false, None) => bail!("give --rate R or --max"),
    };
    let head = Head {
        mode,
        target: opts.target.clone(),
        rate: opts.rate,
        duration_s: opts.duration.as_secs_f64(),
        connections: opts.connections,
        streams: opts.max.then_some(opts.streams),
    };
    let report = rec.report(head, sent, elapsed);
    if let Some(e) = &report.first_error {
        eprintln!(
            "grpc-load: {} calls failed; first error: {e}",
            report.failed
        );
    }
    Ok(if opts.json {
        serde_json::to_string(&report)?
    } else {
        report.line()
    })
}
