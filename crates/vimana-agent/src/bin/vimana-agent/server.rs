//! Serving the protocol on one connection (vsock or unix, same code).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::time::{ClockId, clock_gettime};
use vimana_agent::proto::{
    self, ExecInput, ExecRequest, FrameError, PROTOCOL_VERSION, Reply, Request, StatusReply,
};

use crate::log;
use crate::reaper::{Exit, Reaper};

/// After the child exited, how long its output pipes may stay open (held
/// by a background grandchild) before the exit is reported anyway.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Size of one output read (one frame).
const OUTPUT_CHUNK: usize = 32 * 1024;

/// What `Shutdown` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Test mode: exit 0 (after removing the socket file, if any).
    Exit,
    /// In a guest: kill everything, unmount, power off or reboot.
    PowerOff,
}

pub struct Server {
    pub reaper: Arc<Reaper>,
    pub pid1: bool,
    pub shutdown: ShutdownMode,
    /// Socket file to remove when exiting in test mode.
    pub socket_path: Option<std::path::PathBuf>,
}

impl Server {
    /// Serves one connection; a connection thread runs this.
    pub fn handle(&self, mut stream: UnixStream) {
        let request = match proto::read_frame::<_, Request>(&mut stream) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                log(&format!("refusing request: {e}"));
                let _ = proto::write_frame(
                    &mut stream,
                    &Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                );
                return;
            }
        };
        match request {
            Request::Status => {
                let _ = proto::write_frame(&mut stream, &Reply::Status(self.status()));
            }
            Request::Exec(req) => self.exec(stream, req),
            Request::Shutdown { reboot } => {
                let _ = proto::write_frame(&mut stream, &Reply::Ok);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                drop(stream);
                match self.shutdown {
                    ShutdownMode::Exit => {
                        if let Some(p) = &self.socket_path {
                            let _ = std::fs::remove_file(p);
                        }
                        std::process::exit(0);
                    }
                    ShutdownMode::PowerOff => crate::init::power_off(reboot),
                }
            }
        }
    }

    pub(crate) fn status(&self) -> StatusReply {
        let uname = nix::sys::utsname::uname();
        let kernel_release = uname
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let uptime_ms = clock_gettime(ClockId::CLOCK_BOOTTIME)
            .map(|t| {
                let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
                let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
                secs.saturating_mul(1000) + nanos / 1_000_000
            })
            .unwrap_or(0);
        StatusReply {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
            kernel_release,
            hostname,
            uptime_ms,
            pid1: self.pid1,
        }
    }

    fn exec(&self, mut stream: UnixStream, req: ExecRequest) {
        let Some(program) = req.argv.first() else {
            let _ = proto::write_frame(
                &mut stream,
                &Reply::Error {
                    message: "exec: argv is empty".into(),
                },
            );
            return;
        };
        let mut cmd = Command::new(program);
        cmd.args(&req.argv[1..])
            .envs(req.env.iter().map(|(k, v)| (k, v)))
            .stdin(if req.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if std::env::var_os("PATH").is_none() && !req.env.iter().any(|(k, _)| k == "PATH") {
            cmd.env("PATH", crate::DEFAULT_PATH);
        }
        if let Some(cwd) = &req.cwd {
            cmd.current_dir(cwd);
        }
        let (mut child, exit_rx) = match self.reaper.spawn(&mut cmd) {
            Ok(v) => v,
            Err(e) => {
                let where_ = req
                    .cwd
                    .as_deref()
                    .map(|c| format!(" in {c}"))
                    .unwrap_or_default();
                let _ = proto::write_frame(
                    &mut stream,
                    &Reply::Error {
                        message: format!("cannot run `{program}`{where_}: {e}"),
                    },
                );
                return;
            }
        };
        let pid = child.id();
        let gpid = i32::try_from(pid).unwrap_or(i32::MAX);
        if proto::write_frame(&mut stream, &Reply::Started { pid }).is_err() {
            self.reaper.kill_group(gpid, Signal::SIGKILL);
            return;
        }

        let (tx, rx) = mpsc::channel::<Event>();
        match child.stdout.take() {
            Some(out) => pump(out, tx.clone(), Stream::Stdout),
            None => {
                let _ = tx.send(Event::Done(Stream::Stdout));
            }
        }
        match child.stderr.take() {
            Some(err) => pump(err, tx.clone(), Stream::Stderr),
            None => {
                let _ = tx.send(Event::Done(Stream::Stderr));
            }
        }
        {
            let tx = tx.clone();
            spawn_detached("exec-exit", move || {
                if let Ok(exit) = exit_rx.recv() {
                    let _ = tx.send(Event::Exit(exit));
                }
            });
        }
        match stream.try_clone() {
            Ok(read_side) => {
                let stdin = child.stdin.take();
                let tx = tx.clone();
                spawn_detached("exec-input", move || input_loop(read_side, stdin, tx));
            }
            Err(e) => {
                log(&format!("exec: cannot clone connection: {e}"));
                self.reaper.kill_group(gpid, Signal::SIGKILL);
            }
        }
        drop(tx);
        drop(child);

        let mut out_done = false;
        let mut err_done = false;
        let mut exit: Option<(Exit, Instant)> = None;
        let mut client_alive = true;
        loop {
            if let Some((e, _)) = exit
                && out_done
                && err_done
            {
                if client_alive {
                    let _ = proto::write_frame(&mut stream, &exit_reply(e));
                }
                break;
            }
            let event = match exit {
                Some((e, at)) => {
                    let left = OUTPUT_GRACE.saturating_sub(at.elapsed());
                    match rx.recv_timeout(left) {
                        Ok(ev) => ev,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                            if client_alive {
                                let _ = proto::write_frame(&mut stream, &exit_reply(e));
                            }
                            break;
                        }
                    }
                }
                None => match rx.recv() {
                    Ok(ev) => ev,
                    // Every sender gone without an exit: cannot happen
                    // while the exit thread waits; bail out safely.
                    Err(_) => break,
                },
            };
            let reply = match event {
                Event::Output(Stream::Stdout, data) => Some(Reply::Stdout { data }),
                Event::Output(Stream::Stderr, data) => Some(Reply::Stderr { data }),
                Event::Done(Stream::Stdout) => {
                    out_done = true;
                    None
                }
                Event::Done(Stream::Stderr) => {
                    err_done = true;
                    None
                }
                Event::Exit(e) => {
                    exit = Some((e, Instant::now()));
                    None
                }
                Event::ClientGone => {
                    if client_alive {
                        client_alive = false;
                        self.reaper.kill_group(gpid, Signal::SIGKILL);
                    }
                    None
                }
            };
            if let Some(reply) = reply
                && client_alive
                && proto::write_frame(&mut stream, &reply).is_err()
            {
                client_alive = false;
                self.reaper.kill_group(gpid, Signal::SIGKILL);
            }
        }
        // Wakes the input thread, which then finds nothing to kill.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

enum Event {
    Output(Stream, Vec<u8>),
    Done(Stream),
    Exit(Exit),
    ClientGone,
}

fn exit_reply(exit: Exit) -> Reply {
    match exit {
        Exit::Code(c) => Reply::Exit {
            code: Some(c),
            signal: None,
        },
        Exit::Signal(s) => Reply::Exit {
            code: None,
            signal: Some(s),
        },
    }
}

fn spawn_detached(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.into()).spawn(f) {
        log(&format!("cannot start thread {name}: {e}"));
    }
}

fn pump<R: Read + Send + 'static>(mut r: R, tx: Sender<Event>, which: Stream) {
    let fallback = tx.clone();
    let spawned = thread::Builder::new()
        .name("exec-output".into())
        .spawn(move || {
            let mut buf = vec![0u8; OUTPUT_CHUNK];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Event::Output(which, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(Event::Done(which));
        });
    if let Err(e) = spawned {
        log(&format!("cannot start output thread: {e}"));
        // Without a reader the output is lost; do not wait for it.
        let _ = fallback.send(Event::Done(which));
    }
}

/// Reads client frames during an exec: stdin data, stdin EOF, and the end
/// of the connection (which means the client went away).
fn input_loop(mut conn: UnixStream, mut stdin: Option<ChildStdin>, tx: Sender<Event>) {
    loop {
        match proto::read_frame::<_, ExecInput>(&mut conn) {
            Ok(Some(ExecInput::Stdin { data })) => {
                if let Some(w) = stdin.as_mut()
                    && w.write_all(&data).is_err()
                {
                    // The child closed its stdin; drop further input.
                    stdin = None;
                }
            }
            Ok(Some(ExecInput::StdinEof)) => stdin = None,
            Ok(None) | Err(FrameError::Io(_) | FrameError::Truncated) => break,
            Err(e) => {
                log(&format!("exec: bad input frame: {e}"));
                break;
            }
        }
    }
    let _ = tx.send(Event::ClientGone);
}
