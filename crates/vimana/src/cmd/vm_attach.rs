//! `vimana vm attach ID`: this terminal on the VM's serial console
//! (`<vm_dir>/console.sock`, a unix stream socket the VMM serves to one
//! client at a time).
//!
//! - A terminal stdin is put in raw mode (restored by a guard on every way
//!   out: return, error, panic, SIGTERM/SIGHUP/SIGINT/SIGQUIT), so Ctrl-C
//!   and the like reach the guest.
//! - Ctrl-] (0x1d) detaches; end of input on a non-terminal stdin detaches
//!   too, after what was sent had a moment to be answered.
//! - One `\r` is sent after connecting, so a shell prints its prompt.
//! - The console is always read while attached: a VMM whose client stops
//!   reading stalls the guest.
//! - A second `vimana vm attach` of the same VM is refused at once through
//!   an advisory lock on `<vm_dir>/console.lock`; another client holding
//!   the console (connect refused or the queue full) is reported as busy.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::signal::unix::{SignalKind, signal};

use crate::client::Client;
use crate::home::Home;

/// The detach key, Ctrl-].
const DETACH: u8 = 0x1d;
/// How long one read of the console waits before looking at the state.
const READ_TICK: Duration = Duration::from_millis(100);
/// After end of input: stop once the console was quiet this long…
const LINGER_QUIET: Duration = Duration::from_millis(300);
/// …or this long after the end of input at the latest.
const LINGER_MAX: Duration = Duration::from_secs(3);
/// No output at all for this long: say why that may be.
const SILENT_HINT: Duration = Duration::from_secs(3);

const RUNNING: u8 = 0;
const LINGER: u8 = 1;
const STOP: u8 = 2;

/// How an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detached {
    /// Ctrl-] on stdin.
    Key,
    /// End of stdin.
    StdinEof,
    /// The VMM closed the console (the VM stopped).
    ConsoleClosed,
}

pub async fn attach(home: &Home, client: &Client, id: &str) -> Result<ExitCode> {
    let w = super::vm::get_vm(client, id).await?;
    super::vm::require_running(&w)?;
    let dir = home.vm_dir(w.name.as_str());
    let _lock = lock_console(&dir, w.name.as_str())?;
    let socket = dir.join("console.sock");
    let raw = if std::io::stdin().is_terminal() {
        Some(RawMode::enable()?)
    } else {
        None
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread, not the blocking pool: a read of stdin cannot be
    // cancelled and must not keep the runtime from shutting down.
    std::thread::spawn(move || {
        let _ = tx.send(attach_stream(&socket, std::io::stdin(), std::io::stdout()));
    });
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let ended = tokio::select! {
        r = rx => r.map_err(|_| anyhow!("the console session of VM {} ended unexpectedly", w.name))?,
        _ = term.recv() => Err(Signalled(libc::SIGTERM).into()),
        _ = hup.recv() => Err(Signalled(libc::SIGHUP).into()),
        _ = int.recv() => Err(Signalled(libc::SIGINT).into()),
        _ = quit.recv() => Err(Signalled(libc::SIGQUIT).into()),
    };
    drop(raw);
    match ended {
        Ok(Detached::Key | Detached::StdinEof) => {
            eprint!("\r\n[detached]\r\n");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Detached::ConsoleClosed) => {
            eprint!(
                "\r\n[console closed: VM {} stopped or its VMM let go of the console]\r\n",
                w.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => match e.downcast_ref::<Signalled>() {
            Some(Signalled(sig)) => {
                eprint!("\r\n[detached]\r\n");
                Ok(ExitCode::from(128 + *sig as u8))
            }
            None => Err(e),
        },
    }
}

#[derive(Debug, thiserror::Error)]
#[error("interrupted by signal {0}")]
struct Signalled(i32);

/// Holds `<dir>/console.lock` while attached; `None` when the lock file
/// cannot be created (the socket's own busy check still applies).
fn lock_console(dir: &Path, name: &str) -> Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("console.lock"))
    {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(anyhow!(
            "the console of VM {name} is in use by another `vimana vm attach`; detach that one first (Ctrl-])"
        )),
        Err(_) => Ok(None),
    }
}

/// Raw mode on stdin until dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enable() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).context("cannot read the terminal's settings")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// Connects to the console socket `socket` (of the VM named by its
/// directory) and copies: console → `stdout`, `stdin` → console, until
/// Ctrl-] or the end of `stdin` (detach) or the console closes. Prints the
/// attach hint to stderr once connected. Does not touch terminal modes.
pub fn attach_stream<R, W>(socket: &Path, stdin: R, stdout: W) -> Result<Detached>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let id = socket
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "the VM".to_string());
    let stream = connect_console(socket).map_err(|e| explain(e, &id, socket))?;
    eprint!("[attached to {id}; Ctrl-] to detach]\r\n");
    session(stream, stdin, stdout).with_context(|| format!("console of VM {id}"))
}

fn explain(e: io::Error, id: &str, socket: &Path) -> anyhow::Error {
    let path = socket.display();
    match e.kind() {
        io::ErrorKind::NotFound => anyhow!(
            "VM {id} has no console socket at {path}; is it still starting? (`vimana vm list`)"
        ),
        io::ErrorKind::ConnectionRefused => anyhow!(
            "the console of VM {id} refused the connection ({path}): another client may hold it, or its VMM exited (`vimana vm logs {id}`)"
        ),
        io::ErrorKind::WouldBlock => anyhow!(
            "the console of VM {id} is busy: another client is attached and the VMM serves one at a time; detach it first"
        ),
        _ => anyhow!("cannot connect to the console of VM {id} ({path}): {e}"),
    }
}

/// A non-blocking connect, so a full accept queue (another client holds
/// the console) fails at once with `WouldBlock` instead of hanging.
fn connect_console(path: &Path) -> io::Result<UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    connect(fd.as_raw_fd(), &addr)?;
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

enum Event {
    Key,
    Eof,
    Closed(Option<io::Error>),
}

fn session<R, W>(stream: UnixStream, stdin: R, stdout: W) -> Result<Detached>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let mut stream = stream;
    match stream.write_all(b"\r") {
        Err(e) if gone(&e) => return Ok(Detached::ConsoleClosed),
        other => other?,
    }
    let reader = stream.try_clone()?;
    reader.set_read_timeout(Some(READ_TICK))?;
    let writer = stream.try_clone()?;
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (tx, rx) = mpsc::channel();
    let output = {
        let state = Arc::clone(&state);
        let tx = tx.clone();
        std::thread::spawn(move || pump_output(reader, stdout, &state, &tx))
    };
    // Not joined: it may sit in a read of stdin that never returns.
    std::thread::spawn(move || pump_input(stdin, writer, &tx));
    let event = rx.recv().unwrap_or(Event::Closed(None));
    let ended = match event {
        Event::Key => {
            state.store(STOP, Ordering::SeqCst);
            Ok(Detached::Key)
        }
        Event::Eof => {
            state.store(LINGER, Ordering::SeqCst);
            Ok(Detached::StdinEof)
        }
        Event::Closed(None) => Ok(Detached::ConsoleClosed),
        Event::Closed(Some(e)) => Err(e),
    };
    let _ = output.join();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(ended?)
}

/// stdin → console, stopping at Ctrl-] or the end of stdin.
fn pump_input<R: Read>(mut stdin: R, mut console: UnixStream, tx: &mpsc::Sender<Event>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Eof);
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = tx.send(Event::Eof);
                return;
            }
        };
        let chunk = &buf[..n];
        let (send, detach) = match chunk.iter().position(|&b| b == DETACH) {
            Some(at) => (&chunk[..at], true),
            None => (chunk, false),
        };
        if !send.is_empty()
            && let Err(e) = console.write_all(send)
        {
            let _ = tx.send(Event::Closed((!gone(&e)).then_some(e)));
            return;
        }
        if detach {
            let _ = tx.send(Event::Key);
            return;
        }
    }
}

/// console → stdout until the console closes, the session stops, or (after
/// the end of input) the console has been quiet for a moment.
fn pump_output<W: Write>(
    mut console: UnixStream,
    mut stdout: W,
    state: &AtomicU8,
    tx: &mpsc::Sender<Event>,
) {
    let started = Instant::now();
    let mut last_data: Option<Instant> = None;
    let mut linger_since: Option<Instant> = None;
    let mut hinted = false;
    let mut buf = [0u8; 8192];
    loop {
        match state.load(Ordering::SeqCst) {
            STOP => return,
            LINGER => {
                let since = *linger_since.get_or_insert_with(Instant::now);
                let quiet_from = last_data.map_or(since, |t| t.max(since));
                if quiet_from.elapsed() >= LINGER_QUIET || since.elapsed() >= LINGER_MAX {
                    return;
                }
            }
            _ => {}
        }
        match console.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Closed(None));
                return;
            }
            Ok(n) => {
                last_data = Some(Instant::now());
                if let Err(e) = stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()) {
                    let _ = tx.send(Event::Closed(Some(e)));
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if !hinted && last_data.is_none() && started.elapsed() >= SILENT_HINT {
                    hinted = true;
                    eprint!(
                        "[no console output yet: the guest may still be booting, or another client holds the console]\r\n"
                    );
                }
            }
            // A VMM that exits with our input unread resets the connection.
            Err(e) if gone(&e) => {
                let _ = tx.send(Event::Closed(None));
                return;
            }
            Err(e) => {
                let _ = tx.send(Event::Closed(Some(e)));
                return;
            }
        }
    }
}

/// The console's end went away (as opposed to a local failure).
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::os::unix::net::UnixListener;
    use std::sync::Mutex;

    /// A `Write` whose bytes the test can look at afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn bytes(&self) -> Vec<u8> {
            self.0.lock().expect("lock").clone()
        }
    }

    /// A stdin that never has anything to read.
    struct Silent;

    impl Read for Silent {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }

    fn console(dir: &Path) -> (std::path::PathBuf, UnixListener) {
        let vm = dir.join("vm-test");
        std::fs::create_dir_all(&vm).expect("mkdir");
        let path = vm.join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        (path, listener)
    }

    #[test]
    fn ctrl_close_bracket_detaches_after_sending_what_came_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, listener) = console(dir.path());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read");
            got
        });
        let stdin = Cursor::new(b"hello\x1dworld".to_vec());
        let ended = attach_stream(&path, stdin, Shared::default()).expect("attach");
        assert_eq!(ended, Detached::Key);
        // The server sees the prompt nudge, then `hello`, then the close.
        assert_eq!(server.join().expect("server"), b"\rhello");
    }

    #[test]
    fn end_of_input_detaches_after_the_answer_and_attach_works_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, listener) = console(dir.path());
        // An echoing console serving one client after the other.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        for _ in 0..2 {
            let out = Shared::default();
            let stdin = Cursor::new(b"echo hi\n".to_vec());
            let ended = attach_stream(&path, stdin, out.clone()).expect("attach");
            assert_eq!(ended, Detached::StdinEof);
            assert_eq!(out.bytes(), b"\recho hi\n");
        }
    }

    #[test]
    fn a_closed_console_ends_the_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, listener) = console(dir.path());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            // Read the attach's opening `\r` first: closing a unix socket
            // with unread data resets the connection, and the peer may then
            // lose what was written before.
            let mut cr = [0u8; 1];
            let _ = s.read_exact(&mut cr);
            let _ = s.write_all(b"bye\r\n");
        });
        let out = Shared::default();
        let ended = attach_stream(&path, Silent, out.clone()).expect("attach");
        assert_eq!(ended, Detached::ConsoleClosed);
        assert_eq!(out.bytes(), b"bye\r\n");
    }

    #[test]
    fn missing_or_dead_console_is_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = dir.path().join("vm-gone");
        std::fs::create_dir_all(&vm).expect("mkdir");
        let path = vm.join("console.sock");
        let e = attach_stream(&path, Silent, Shared::default()).expect_err("no socket");
        assert!(
            e.to_string().contains("vm-gone has no console socket"),
            "{e}"
        );
        drop(UnixListener::bind(&path).expect("bind"));
        let e = attach_stream(&path, Silent, Shared::default()).expect_err("refused");
        assert!(e.to_string().contains("refused the connection"), "{e}");
    }

    #[test]
    fn second_attach_is_refused_by_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock_console(dir.path(), "vm-x").expect("lock");
        assert!(first.is_some());
        let e = lock_console(dir.path(), "vm-x").expect_err("busy");
        assert!(e.to_string().contains("in use"), "{e}");
        drop(first);
        assert!(lock_console(dir.path(), "vm-x").expect("lock").is_some());
    }
}
