//! The host-side client of the agent (tokio).
//!
//! An [`AgentClient`] is a recipe for a connection: the protocol has one
//! request per connection, so every call opens its own connection (and,
//! for hybrid-vsock sockets, does the `CONNECT <port>` handshake).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

use crate::proto::{
    ExecInput, ExecRequest, FrameError, MAX_FRAME, Reply, Request, StatusReply, tokio_io,
};

/// Default time allowed for connecting plus the hybrid-vsock handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time allowed for a `status` or `shutdown` reply.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest stdin chunk put in one frame (base64 keeps it under 1 MiB).
const STDIN_CHUNK: usize = 256 * 1024;

/// Longest accepted hybrid-vsock handshake line.
const MAX_HANDSHAKE_LINE: usize = 64;

/// Errors of the client; each names the socket and the operation.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The unix socket could not be connected.
    #[error("cannot connect to agent socket {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The hybrid-vsock handshake got an unexpected answer.
    #[error(
        "agent socket {path}: hybrid vsock handshake `CONNECT {port}` expected `OK <port>`, got {line:?}"
    )]
    Handshake {
        /// The socket.
        path: PathBuf,
        /// The vsock port asked for.
        port: u32,
        /// What was received (possibly partial, when the peer closed).
        line: String,
    },
    /// An operation did not finish in time.
    #[error("agent socket {path}: {op} timed out after {after:?}")]
    Timeout {
        /// The socket.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The time allowed.
        after: Duration,
    },
    /// Reading or writing the socket failed.
    #[error("agent socket {path}: {op}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A frame could not be sent or received.
    #[error("agent socket {path}: {op}: {source}")]
    Frame {
        /// The socket.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: FrameError,
    },
    /// The agent closed the connection before answering.
    #[error("agent socket {path}: {op}: the agent closed the connection")]
    Closed {
        /// The socket.
        path: PathBuf,
        /// The operation.
        op: &'static str,
    },
    /// The agent answered with an error.
    #[error("agent at {path}: {op} failed: {message}")]
    Agent {
        /// The socket.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The agent's message.
        message: String,
    },
    /// The agent answered something that does not fit the operation.
    #[error("agent socket {path}: {op}: unexpected reply {reply}")]
    Unexpected {
        /// The socket.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The reply, debug-formatted.
        reply: String,
    },
    /// The request itself is not valid (e.g. empty argv).
    #[error("{op}: invalid request: {reason}")]
    InvalidRequest {
        /// The operation.
        op: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// [`wait_ready`] gave up.
    #[error(
        "agent at {path}{} did not answer `status` within {waited:?} ({attempts} attempts); last error: {last}",
        port.map(|p| format!(" (hybrid vsock port {p})")).unwrap_or_default()
    )]
    NotReady {
        /// The socket.
        path: PathBuf,
        /// The hybrid-vsock port, if any.
        port: Option<u32>,
        /// How long it was tried.
        waited: Duration,
        /// How many connections were tried.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<ClientError>,
    },
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code when it exited.
    pub code: Option<i32>,
    /// Signal number when a signal killed it.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => write!(f, "unknown exit status"),
        }
    }
}

/// Everything a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// All of stdout.
    pub stdout: Vec<u8>,
    /// All of stderr.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub exit: ExitStatus,
}

/// One event of a running command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Bytes on stdout.
    Stdout(Vec<u8>),
    /// Bytes on stderr.
    Stderr(Vec<u8>),
    /// The command ended; no events follow.
    Exit(ExitStatus),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Unix,
    Hybrid(u32),
}

/// A way to reach the agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    path: PathBuf,
    target: Target,
    connect_timeout: Duration,
    reply_timeout: Duration,
}

impl AgentClient {
    /// Through a hybrid-vsock unix socket (Firecracker's `uds_path`,
    /// vhost-device-vsock): each connection starts with `CONNECT <port>\n`
    /// and expects `OK <n>\n`.
    pub fn hybrid_unix(path: impl Into<PathBuf>, port: u32) -> Self {
        Self::new(path.into(), Target::Hybrid(port))
    }

    /// Through a plain unix socket served by the agent itself
    /// (`--listen unix:PATH` without `--hybrid`).
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::new(path.into(), Target::Unix)
    }

    fn new(path: PathBuf, target: Target) -> Self {
        Self {
            path,
            target,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        }
    }

    /// Time allowed for connecting plus the handshake.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the reply of `status`, `shutdown` and the
    /// `started` reply of `exec`.
    #[must_use]
    pub fn with_reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a connection (and does the handshake), ready for a request.
    pub async fn connect(&self) -> Result<UnixStream, ClientError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                path: self.path.clone(),
                op: match self.target {
                    Target::Unix => "connect",
                    Target::Hybrid(_) => "connect + hybrid vsock handshake",
                },
                after: self.connect_timeout,
            }),
        }
    }

    async fn connect_inner(&self) -> Result<UnixStream, ClientError> {
        let mut stream =
            UnixStream::connect(&self.path)
                .await
                .map_err(|source| ClientError::Connect {
                    path: self.path.clone(),
                    source,
                })?;
        if let Target::Hybrid(port) = self.target {
            self.handshake(&mut stream, port).await?;
        }
        Ok(stream)
    }

    async fn handshake(&self, stream: &mut UnixStream, port: u32) -> Result<(), ClientError> {
        let op = "hybrid vsock handshake";
        stream
            .write_all(format!("CONNECT {port}\n").as_bytes())
            .await
            .map_err(|source| self.io(op, source))?;
        // Byte by byte: nothing after the newline may be consumed here.
        let mut line = Vec::new();
        loop {
            let mut b = [0u8; 1];
            let n = stream
                .read(&mut b)
                .await
                .map_err(|source| self.io(op, source))?;
            if n == 0 || b[0] == b'\n' || line.len() >= MAX_HANDSHAKE_LINE {
                if n == 1 && b[0] != b'\n' {
                    line.push(b[0]);
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                let ok = n == 1
                    && b[0] == b'\n'
                    && text
                        .strip_prefix("OK ")
                        .is_some_and(|p| p.trim_end_matches('\r').parse::<u32>().is_ok());
                if ok {
                    return Ok(());
                }
                let line = if n == 0 {
                    format!("{text} <connection closed>")
                } else {
                    text
                };
                return Err(ClientError::Handshake {
                    path: self.path.clone(),
                    port,
                    line,
                });
            }
            line.push(b[0]);
        }
    }

    fn io(&self, op: &'static str, source: io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn frame(&self, op: &'static str, source: FrameError) -> ClientError {
        ClientError::Frame {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn unexpected(&self, op: &'static str, reply: Reply) -> ClientError {
        match reply {
            Reply::Error { message } => ClientError::Agent {
                path: self.path.clone(),
                op,
                message,
            },
            other => ClientError::Unexpected {
                path: self.path.clone(),
                op,
                reply: format!("{other:?}"),
            },
        }
    }

    /// Connects, sends `request`, and reads one reply within the reply
    /// timeout.
    async fn call(
        &self,
        op: &'static str,
        request: &Request,
    ) -> Result<(UnixStream, Reply), ClientError> {
        let mut stream = self.connect().await?;
        let exchange = async {
            tokio_io::write_frame(&mut stream, request)
                .await
                .map_err(|e| self.frame(op, e))?;
            match tokio_io::read_frame::<_, Reply>(&mut stream).await {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(ClientError::Closed {
                    path: self.path.clone(),
                    op,
                }),
                Err(e) => Err(self.frame(op, e)),
            }
        };
        let reply = match tokio::time::timeout(self.reply_timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    path: self.path.clone(),
                    op,
                    after: self.reply_timeout,
                });
            }
        };
        Ok((stream, reply))
    }

    /// Asks the agent for its status.
    pub async fn status(&self) -> Result<StatusReply, ClientError> {
        let op = "status";
        match self.call(op, &Request::Status).await? {
            (_, Reply::Status(s)) => Ok(s),
            (_, other) => Err(self.unexpected(op, other)),
        }
    }

    /// Asks the agent to power off (or reboot) the guest; returns once it
    /// acknowledged.
    pub async fn shutdown(&self, reboot: bool) -> Result<(), ClientError> {
        let op = "shutdown";
        match self.call(op, &Request::Shutdown { reboot }).await? {
            (_, Reply::Ok) => Ok(()),
            (_, other) => Err(self.unexpected(op, other)),
        }
    }

    /// Starts a command. Dropping the returned session (or both halves of
    /// it) closes the connection, and the agent then kills the command.
    pub async fn exec(&self, request: ExecRequest) -> Result<ExecSession, ClientError> {
        let op = "exec";
        if request.argv.is_empty() {
            return Err(ClientError::InvalidRequest {
                op,
                reason: "argv is empty",
            });
        }
        match self.call(op, &Request::Exec(request)).await? {
            (stream, Reply::Started { pid }) => {
                let (read, write) = stream.into_split();
                let write = Arc::new(Mutex::new(write));
                Ok(ExecSession {
                    pid,
                    stdin: ExecStdin {
                        path: self.path.clone(),
                        write: Arc::clone(&write),
                    },
                    events: ExecEvents {
                        path: self.path.clone(),
                        read,
                        _keep_open: write,
                        done: false,
                    },
                })
            }
            (_, other) => Err(self.unexpected(op, other)),
        }
    }

    /// Runs `argv` without stdin and collects its output. When `timeout`
    /// passes first, the connection is dropped (the agent kills the
    /// command) and a [`ClientError::Timeout`] is returned.
    pub async fn exec_collect<I, S>(
        &self,
        argv: I,
        timeout: Duration,
    ) -> Result<ExecOutput, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let request = ExecRequest::new(argv);
        let run = async {
            let session = self.exec(request).await?;
            session.wait().await
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                path: self.path.clone(),
                op: "exec",
                after: timeout,
            }),
        }
    }

    /// Polls `status` until the agent answers or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<StatusReply, ClientError> {
        let start = Instant::now();
        let mut attempts = 0u32;
        let mut pause = Duration::from_millis(20);
        loop {
            attempts += 1;
            let remaining = timeout.saturating_sub(start.elapsed());
            let per_try = remaining.min(Duration::from_secs(2));
            let probe = self
                .clone()
                .with_connect_timeout(per_try)
                .with_reply_timeout(per_try);
            let result = match tokio::time::timeout(per_try, probe.status()).await {
                Ok(r) => r,
                Err(_) => Err(ClientError::Timeout {
                    path: self.path.clone(),
                    op: "status",
                    after: per_try,
                }),
            };
            let err = match result {
                Ok(s) => return Ok(s),
                Err(e) => e,
            };
            let elapsed = start.elapsed();
            if elapsed + pause >= timeout {
                return Err(ClientError::NotReady {
                    path: self.path.clone(),
                    port: match self.target {
                        Target::Unix => None,
                        Target::Hybrid(p) => Some(p),
                    },
                    waited: elapsed,
                    attempts,
                    last: Box::new(err),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(40));
        }
    }
}

/// Polls `status` over the hybrid-vsock socket `path` (vsock `port`) until
/// the agent answers or `timeout` passes; this is how the host knows the
/// guest agent is ready.
pub async fn wait_ready(
    path: impl Into<PathBuf>,
    port: u32,
    timeout: Duration,
) -> Result<StatusReply, ClientError> {
    AgentClient::hybrid_unix(path, port)
        .wait_ready(timeout)
        .await
}

/// A running command: its pid, its stdin and its events.
#[derive(Debug)]
pub struct ExecSession {
    pid: u32,
    stdin: ExecStdin,
    events: ExecEvents,
}

impl ExecSession {
    /// The pid of the command in the guest.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends bytes to the command's stdin (needs `stdin: true` in the
    /// request).
    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.stdin.write(data).await
    }

    /// Closes the command's stdin (the connection stays open).
    pub async fn close_stdin(&mut self) -> Result<(), ClientError> {
        self.stdin.close().await
    }

    /// The next output or exit event; `Ok(None)` after the exit.
    pub async fn next_event(&mut self) -> Result<Option<ExecEvent>, ClientError> {
        self.events.next().await
    }

    /// Collects all remaining output until the command exits.
    pub async fn wait(self) -> Result<ExecOutput, ClientError> {
        self.events.collect().await
    }

    /// Splits into a stdin writer and an event reader usable from
    /// different tasks. The connection stays open until both are dropped.
    pub fn split(self) -> (ExecStdin, ExecEvents) {
        (self.stdin, self.events)
    }
}

/// The stdin side of an [`ExecSession`].
#[derive(Debug)]
pub struct ExecStdin {
    path: PathBuf,
    write: Arc<Mutex<OwnedWriteHalf>>,
}

impl ExecStdin {
    /// Sends bytes to the command's stdin, in frames of at most 256 KiB.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let mut w = self.write.lock().await;
        for chunk in data.chunks(STDIN_CHUNK) {
            let msg = ExecInput::Stdin {
                data: chunk.to_vec(),
            };
            tokio_io::write_frame(&mut *w, &msg)
                .await
                .map_err(|source| ClientError::Frame {
                    path: self.path.clone(),
                    op: "exec stdin",
                    source,
                })?;
        }
        Ok(())
    }

    /// Closes the command's stdin.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        let mut w = self.write.lock().await;
        tokio_io::write_frame(&mut *w, &ExecInput::StdinEof)
            .await
            .map_err(|source| ClientError::Frame {
                path: self.path.clone(),
                op: "exec stdin eof",
                source,
            })
    }
}

/// The output side of an [`ExecSession`].
#[derive(Debug)]
pub struct ExecEvents {
    path: PathBuf,
    read: OwnedReadHalf,
    /// Dropping the write half shuts the connection down for writing,
    /// which the agent takes as a disconnect; keep it while reading.
    _keep_open: Arc<Mutex<OwnedWriteHalf>>,
    done: bool,
}

impl ExecEvents {
    /// The next output or exit event; `Ok(None)` after the exit.
    pub async fn next(&mut self) -> Result<Option<ExecEvent>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let op = "exec output";
        let reply = match tokio_io::read_frame::<_, Reply>(&mut self.read).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.done = true;
                return Err(ClientError::Closed {
                    path: self.path.clone(),
                    op,
                });
            }
            Err(source) => {
                self.done = true;
                return Err(ClientError::Frame {
                    path: self.path.clone(),
                    op,
                    source,
                });
            }
        };
        let event = match reply {
            Reply::Stdout { data } => ExecEvent::Stdout(data),
            Reply::Stderr { data } => ExecEvent::Stderr(data),
            Reply::Exit { code, signal } => {
                self.done = true;
                ExecEvent::Exit(ExitStatus { code, signal })
            }
            Reply::Error { message } => {
                self.done = true;
                return Err(ClientError::Agent {
                    path: self.path.clone(),
                    op,
                    message,
                });
            }
            other => {
                self.done = true;
                return Err(ClientError::Unexpected {
                    path: self.path.clone(),
                    op,
                    reply: format!("{other:?}"),
                });
            }
        };
        Ok(Some(event))
    }

    /// Collects all remaining output until the command exits.
    pub async fn collect(mut self) -> Result<ExecOutput, ClientError> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        loop {
            match self.next().await? {
                Some(ExecEvent::Stdout(d)) => stdout.extend_from_slice(&d),
                Some(ExecEvent::Stderr(d)) => stderr.extend_from_slice(&d),
                Some(ExecEvent::Exit(exit)) => {
                    return Ok(ExecOutput {
                        stdout,
                        stderr,
                        exit,
                    });
                }
                None => {
                    return Err(ClientError::Closed {
                        path: self.path.clone(),
                        op: "exec output",
                    });
                }
            }
        }
    }
}

// Keep the frame limit visible next to the chunk size it bounds.
const _: () = assert!(STDIN_CHUNK * 4 / 3 + 64 < MAX_FRAME);
