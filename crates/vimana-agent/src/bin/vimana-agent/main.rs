//! `vimana-agent`: the guest agent of vimana microVMs. See the library
//! documentation (`vimana_agent`) for what it does and its protocol.

mod console;
mod init;
mod net;
mod reaper;
mod server;
mod volumes;

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, VsockAddr, accept4, bind, connect, listen, socket,
};
use vimana_agent::cmdline::{DEFAULT_CONSOLE, GuestConfig};
use vimana_agent::proto::{Reply, write_frame};
use vimana_agent::{AGENT_PORT, NO_VSOCK_MARKER, READY_MARKER, READY_PORT};

use crate::reaper::Reaper;
use crate::server::{Server, ShutdownMode};

/// PATH for commands when the agent has none (PID 1 gets no PATH).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const USAGE: &str = "\
usage: vimana-agent [--init] [--port N] [--console-shell PATH | --no-console-shell]
       vimana-agent --listen unix:PATH [--hybrid] [--port N]

In a guest (PID 1 or --init): mount pseudo filesystems, configure the
hostname and network from vimana.* kernel parameters, reap children, keep a
shell on the console and serve the host on vsock port 1024.
--listen serves the same protocol on a unix socket (tests; no init duties);
--hybrid expects Firecracker's `CONNECT <port>` handshake on it.
";

/// Writes `vimana-agent: <msg>` to stderr (the console for PID 1).
pub fn log(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "vimana-agent: {msg}");
}

#[derive(Debug, Default)]
struct Args {
    init: bool,
    listen: Option<PathBuf>,
    hybrid: bool,
    port: Option<u32>,
    console_shell: Option<PathBuf>,
    no_console_shell: bool,
}

enum Parsed {
    Run(Args),
    Help,
    Version,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args::default();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--init" => args.init = true,
            "--hybrid" => args.hybrid = true,
            "--no-console-shell" => args.no_console_shell = true,
            "--console-shell" => args.console_shell = Some(value("--console-shell")?.into()),
            "--port" => {
                let v = value("--port")?;
                args.port = Some(v.parse().map_err(|_| format!("--port {v:?}: not a port"))?);
            }
            "--listen" => {
                let v = value("--listen")?;
                let path = v
                    .strip_prefix("unix:")
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| format!("--listen {v:?}: expected unix:PATH"))?;
                args.listen = Some(path.into());
            }
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.hybrid && args.listen.is_none() {
        return Err("--hybrid needs --listen unix:PATH".into());
    }
    if args.listen.is_some() && (args.init || args.console_shell.is_some()) {
        return Err("--listen cannot be combined with --init or --console-shell".into());
    }
    if args.no_console_shell && args.console_shell.is_some() {
        return Err("--console-shell and --no-console-shell exclude each other".into());
    }
    Ok(Parsed::Run(args))
}

fn main() {
    let pid1 = std::process::id() == 1;
    // Before any thread exists: the reaper thread owns SIGCHLD.
    if let Err(e) = reaper::block_sigchld() {
        fatal(pid1, &format!("cannot block SIGCHLD: {e}"));
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            let _ = io::stdout().write_all(USAGE.as_bytes());
            return;
        }
        Ok(Parsed::Version) => {
            let _ = writeln!(io::stdout(), "vimana-agent {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(e) => {
            if pid1 {
                log(&format!("{e}; ignoring the arguments"));
                Args::default()
            } else {
                let _ = write!(io::stderr(), "vimana-agent: {e}\n{USAGE}");
                std::process::exit(2);
            }
        }
    };
    let port = args.port.unwrap_or(AGENT_PORT);
    // Orphaned grandchildren of our commands come back to us for reaping
    // even when we are not PID 1.
    if !pid1 && let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log(&format!("cannot become a child subreaper: {e}"));
    }
    match args.listen.clone() {
        Some(path) => run_listen(path, args.hybrid, port),
        None => run_guest(&args, pid1, port),
    }
}

/// Exits, except as PID 1 where exiting panics the kernel: then it logs and
/// keeps the machine up (children still get reaped if the reaper runs).
fn fatal(pid1: bool, msg: &str) -> ! {
    log(msg);
    if !pid1 {
        std::process::exit(1);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn run_guest(args: &Args, pid1: bool, port: u32) -> ! {
    let init = pid1 || args.init;
    let cfg = if init {
        init::mount_filesystems();
        let cfg = init::configure_from_cmdline();
        volumes::mount_volumes(&cfg.volumes);
        cfg
    } else {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        GuestConfig::from_cmdline(&cmdline).0
    };
    let reaper = match Reaper::start() {
        Ok(r) => r,
        Err(e) => fatal(pid1, &format!("cannot start the reaper thread: {e}")),
    };
    let shell_wanted = (init || args.console_shell.is_some()) && !args.no_console_shell;
    if shell_wanted {
        let shell = args
            .console_shell
            .clone()
            .unwrap_or_else(|| PathBuf::from("/bin/sh"));
        let device = cfg
            .console
            .clone()
            .unwrap_or_else(|| DEFAULT_CONSOLE.into());
        console::keep_shell(Arc::clone(&reaper), shell, device);
    }
    let server = Arc::new(Server {
        reaper,
        pid1,
        shutdown: ShutdownMode::PowerOff,
        socket_path: None,
    });
    let mut reported = false;
    let listener = loop {
        match vsock_listener(port) {
            Ok(l) => break l,
            Err(e) => {
                if !reported && e.raw_os_error() == Some(libc::EAFNOSUPPORT) {
                    // Retrying cannot help: the modules were loaded before
                    // the agent started. The host watches for this line.
                    let _ = writeln!(
                        io::stderr().lock(),
                        "{NO_VSOCK_MARKER} (cannot listen on vsock port {port}: {e})"
                    );
                    reported = true;
                } else if !reported {
                    log(&format!(
                        "cannot listen on vsock port {port}: {e} (retrying every 2 s)"
                    ));
                    reported = true;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    };
    ready(init);
    announce(&server);
    loop {
        match accept4(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(fd) => {
                // SAFETY: accept4 returned a new descriptor we now own.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                // std has no vsock type; UnixStream only issues generic
                // read/write/shutdown calls on the descriptor.
                let stream = UnixStream::from(owned);
                spawn_conn(&server, stream, None);
            }
            Err(e) => {
                log(&format!("vsock accept failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn vsock_listener(port: u32) -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &VsockAddr::new(libc::VMADDR_CID_ANY, port),
    )?;
    listen(&fd, Backlog::new(64).map_err(io::Error::from)?)?;
    Ok(fd)
}

/// Tells the host the agent is up, over vsock (host CID 2, [`READY_PORT`]):
/// one status frame on a connection the agent opens, so the host need not
/// poll. On its own thread; a host that does not listen is not an error.
fn announce(server: &Arc<Server>) {
    let status = server.status();
    let spawned = std::thread::Builder::new()
        .name("announce".into())
        .spawn(move || {
            let sent = socket(
                AddressFamily::Vsock,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .and_then(|fd| {
                connect(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    &VsockAddr::new(libc::VMADDR_CID_HOST, READY_PORT),
                )?;
                Ok(fd)
            })
            .map_err(io::Error::from)
            .and_then(|fd| {
                let mut stream = UnixStream::from(fd);
                write_frame(&mut stream, &Reply::Status(status)).map_err(io::Error::other)
            });
            if let Err(e) = sent {
                log(&format!(
                    "could not announce readiness on host vsock port {READY_PORT}: {e} (the host polls instead)"
                ));
            }
        });
    if let Err(e) = spawned {
        log(&format!("cannot start the announce thread: {e}"));
    }
}

/// Prints the ready marker: on /dev/console in a guest, else on stdout.
fn ready(init: bool) {
    let line = format!("{READY_MARKER}\n");
    if init
        && let Ok(mut c) = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/console")
        && c.write_all(line.as_bytes()).is_ok()
    {
        return;
    }
    let mut out = io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

fn run_listen(path: PathBuf, hybrid: bool, port: u32) {
    let reaper = match Reaper::start() {
        Ok(r) => r,
        Err(e) => fatal(false, &format!("cannot start the reaper thread: {e}")),
    };
    if path.exists() {
        let _ = std::fs::remove_file(&path);
    }
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => fatal(false, &format!("cannot listen on {}: {e}", path.display())),
    };
    let server = Arc::new(Server {
        reaper,
        pid1: false,
        shutdown: ShutdownMode::Exit,
        socket_path: Some(path.clone()),
    });
    ready(false);
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => spawn_conn(&server, stream, hybrid.then_some(port)),
            Err(e) => {
                log(&format!("accept on {} failed: {e}", path.display()));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn spawn_conn(server: &Arc<Server>, mut stream: UnixStream, hybrid_port: Option<u32>) {
    let server = Arc::clone(server);
    let spawned = std::thread::Builder::new()
        .name("conn".into())
        .spawn(move || {
            if let Some(port) = hybrid_port
                && let Err(e) = hybrid_handshake(&mut stream, port)
            {
                log(&format!("hybrid vsock handshake refused: {e}"));
                return;
            }
            server.handle(stream);
        });
    if let Err(e) = spawned {
        log(&format!("cannot start connection thread: {e}"));
    }
}

/// The agent's half of Firecracker's hybrid-vsock handshake:
/// `CONNECT <port>\n` → `OK <port>\n`. Another port is refused by closing.
fn hybrid_handshake(stream: &mut UnixStream, port: u32) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        if stream.read(&mut b)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during the handshake",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        if line.len() >= 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "handshake line too long",
            ));
        }
        line.push(b[0]);
    }
    let text = String::from_utf8_lossy(&line);
    let asked = text
        .trim_end_matches('\r')
        .strip_prefix("CONNECT ")
        .and_then(|p| p.parse::<u32>().ok());
    match asked {
        Some(p) if p == port => {
            stream.write_all(format!("OK {port}\n").as_bytes())?;
            stream.set_read_timeout(None)
        }
        Some(p) => Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("nothing listens on port {p}"),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected `CONNECT <port>`, got {text:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn args() {
        let Ok(Parsed::Run(a)) = parse(&["--listen", "unix:/tmp/a.sock", "--hybrid"]) else {
            panic!("listen args rejected");
        };
        assert_eq!(a.listen, Some(PathBuf::from("/tmp/a.sock")));
        assert!(a.hybrid);
        let Ok(Parsed::Run(a)) = parse(&["--console-shell=/bin/ash", "--port", "2000"]) else {
            panic!("guest args rejected");
        };
        assert_eq!(a.console_shell, Some(PathBuf::from("/bin/ash")));
        assert_eq!(a.port, Some(2000));
        assert!(parse(&["--listen", "tcp:1"]).is_err());
        assert!(parse(&["--hybrid"]).is_err());
        assert!(parse(&["--listen", "unix:/x", "--init"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
    }
}
