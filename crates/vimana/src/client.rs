//! The CLI's client of the daemon's REST API over its unix socket, and
//! starting the daemon when nobody answers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use vimana_api::Problem;

use crate::home::Home;

const AUTOSTART_WAIT: Duration = Duration::from_secs(15);

/// An error the daemon answered with, shown as its one-sentence detail.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.detail)]
pub struct ProblemError(pub Problem);

pub struct Client {
    home: Home,
    autostart: bool,
    verbose: u8,
}

impl Client {
    /// The workload named `name`; `None` when the daemon has none.
    pub async fn workload(&self, name: &str) -> Result<Option<vimana_api::Workload>> {
        match self
            .call::<vimana_api::Workload>(
                Method::GET,
                &format!("/v1/workloads/{name}"),
                None::<&()>,
            )
            .await
        {
            Ok(w) => Ok(w),
            Err(e)
                if e.downcast_ref::<ProblemError>()
                    .is_some_and(|p| p.0.status == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn new(home: Home, autostart: bool, verbose: u8) -> Self {
        Self {
            home,
            autostart,
            verbose,
        }
    }

    async fn connect(&self) -> Result<UnixStream> {
        let socket = self.home.socket();
        match UnixStream::connect(&socket).await {
            Ok(s) => Ok(s),
            Err(e) if !self.autostart => Err(anyhow!(
                "the vimana daemon does not answer on {} ({e}); start it with `vimana daemon` or drop --no-autostart",
                socket.display()
            )),
            Err(_) => {
                let mut daemon = self.spawn_daemon()?;
                let deadline = Instant::now() + AUTOSTART_WAIT;
                loop {
                    match UnixStream::connect(&socket).await {
                        Ok(s) => return Ok(s),
                        Err(e) if Instant::now() > deadline => {
                            return Err(anyhow!(
                                "started the vimana daemon but it did not answer on {} within {AUTOSTART_WAIT:?} ({e}); see {}",
                                socket.display(),
                                self.home.daemon_log().display()
                            ));
                        }
                        Err(_) => {
                            // Lost a race with another CLI's daemon: wait for that one.
                            if let Ok(Some(status)) = daemon.try_wait()
                                && !lock_held(&self.home.lock())
                            {
                                return Err(self.daemon_died(status));
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
        }
    }

    /// The daemon we started exited: its last error line says why (another
    /// daemon won the lock race, a store from a newer vimana, …).
    fn daemon_died(&self, status: std::process::ExitStatus) -> anyhow::Error {
        let log = std::fs::read_to_string(self.home.daemon_log()).unwrap_or_default();
        match log.lines().rev().find(|l| l.starts_with("error: ")) {
            Some(line) => anyhow!(
                "the vimana daemon could not start: {}",
                line.trim_start_matches("error: ")
            ),
            None => anyhow!(
                "the vimana daemon exited at start ({status}); see {}",
                self.home.daemon_log().display()
            ),
        }
    }

    fn spawn_daemon(&self) -> Result<std::process::Child> {
        use std::os::unix::process::CommandExt;
        self.home.ensure()?;
        let exe = std::env::current_exe().context("cannot find the vimana binary")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.daemon_log())
            .with_context(|| format!("cannot open {}", self.home.daemon_log().display()))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--home")
            .arg(&self.home.root)
            .arg("daemon")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        for _ in 0..self.verbose {
            cmd.arg("-v");
        }
        if self.verbose > 0 {
            eprintln!("starting the vimana daemon in the background");
        }
        cmd.spawn().context("cannot start the vimana daemon")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake with the daemon failed")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://vimana{path}"))
            .header(http::header::HOST, "vimana");
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        sender
            .send_request(req)
            .await
            .context("the daemon closed the connection; see its log, VIMANA_HOME/daemon.log")
    }

    /// One request; JSON in and out; problem details become [`ProblemError`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(problem(status, &bytes).into());
        }
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&bytes).context(
            "the daemon sent JSON this CLI does not understand; are both the same version?",
        )?))
    }

    /// A streaming NDJSON request: `f` gets each item until the stream ends.
    pub async fn stream<T: DeserializeOwned>(
        &self,
        path: &str,
        mut f: impl FnMut(T),
    ) -> Result<()> {
        let resp = self.send(Method::GET, path, None).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            return Err(problem(status, &bytes).into());
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the daemon's stream broke off")?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.len() > 1 {
                        f(serde_json::from_slice(&line)?);
                    }
                }
            }
        }
        Ok(())
    }
}

fn problem(status: StatusCode, body: &[u8]) -> ProblemError {
    ProblemError(serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| {
        Problem::new(
            "unknown",
            status.canonical_reason().unwrap_or("error"),
            status.as_u16(),
            format!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(body)
            ),
        )
    }))
}

/// Whether some daemon holds the lock of this home.
fn lock_held(path: &std::path::Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
}
