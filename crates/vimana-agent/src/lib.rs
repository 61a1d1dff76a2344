//! The guest agent of vimana microVMs and its host-side client.
//!
//! # The agent
//!
//! `vimana-agent` is a static Linux binary baked into every guest. It runs
//! as PID 1 (exec'd by the initramfs `/init` after it loaded modules) or
//! under another init with `--init`, and then:
//!
//! * mounts `/proc`, `/sys`, `/dev` (devtmpfs), `/dev/pts`, `/dev/shm`,
//!   `/run` and `/tmp` unless already mounted, sets the hostname, brings
//!   `lo` up and configures `eth0`, the default route and
//!   `/etc/resolv.conf` from the `vimana.*` kernel parameters
//!   (see [`cmdline`]);
//! * reaps every child (it is PID 1), handing exit statuses of the
//!   commands it started to whoever waits for them;
//! * keeps `/bin/sh` running on the serial console (`vimana.console=`,
//!   default `ttyS0`) as a session leader with the tty as its controlling
//!   terminal, respawned when it exits (`--console-shell PATH`,
//!   `--no-console-shell`);
//! * listens on AF_VSOCK, `VMADDR_CID_ANY`, port [`AGENT_PORT`] and prints
//!   [`READY_MARKER`] to `/dev/console` once the listener is up.
//!
//! For tests on the host, `vimana-agent --listen unix:PATH [--hybrid]`
//! serves the same protocol on a unix socket, without mounts or console
//! shell; `Shutdown` then just makes it exit 0. With `--hybrid` each
//! connection starts with Firecracker's hybrid-vsock handshake: the client
//! writes `CONNECT <port>\n` and the agent answers `OK <port>\n` (a port
//! other than the agent's — `--port`, default [`AGENT_PORT`] — is refused
//! by closing the connection, as Firecracker does).
//!
//! # Protocol (version [`proto::PROTOCOL_VERSION`])
//!
//! One request per connection. Every message is a frame: a 4-byte
//! big-endian body length followed by a JSON body of at most
//! [`proto::MAX_FRAME`] (1 MiB) bytes. Messages are JSON objects tagged by
//! `"type"`; byte strings are base64 (standard alphabet, padded). A frame
//! announcing a larger body is answered with an `error` reply and the
//! connection is closed; the agent keeps serving other connections.
//!
//! The client's first frame is a [`proto::Request`]:
//!
//! * `{"type":"status"}` → `{"type":"status","agent_version":…,
//!   "protocol_version":1,"kernel_release":…,"hostname":…,"uptime_ms":…,
//!   "pid1":…}`.
//! * `{"type":"exec","argv":[…],"env":[[k,v],…],"cwd":null,"stdin":false}`
//!   → `{"type":"started","pid":N}` or `{"type":"error","message":…}` (e.g.
//!   the program does not exist), then any number of
//!   `{"type":"stdout","data":"<b64>"}` / `{"type":"stderr",…}` and finally
//!   `{"type":"exit","code":C,"signal":S}` (one of them non-null). With
//!   `"stdin":true` the client may send `{"type":"stdin","data":"<b64>"}`
//!   and `{"type":"stdin_eof"}` frames ([`proto::ExecInput`]); otherwise
//!   the child's stdin is `/dev/null`. The child runs in its own process
//!   group. **The client must keep its side of the connection open until
//!   `exit`**: end-of-file or an error on the connection before the exit
//!   means the client went away, and the agent kills the child's process
//!   group with SIGKILL (and reaps it).
//! * `{"type":"shutdown","reboot":false}` → `{"type":"ok"}`, then the agent
//!   syncs, sends SIGTERM to every process, waits up to 3 s, sends SIGKILL,
//!   unmounts what it can, remounts `/` read-only and calls
//!   `reboot(RB_POWER_OFF)` (`RB_AUTOBOOT` with `"reboot":true`; Firecracker
//!   guests booted with `reboot=k` stop the VM on either).
//!
//! # Host side
//!
//! With the `client` feature (default), [`client::AgentClient`] speaks this
//! protocol over a unix socket, plain or through a hybrid-vsock handshake
//! (Firecracker's vsock unix socket, vhost-device-vsock), and
//! [`client::wait_ready`] polls `status` until the agent answers. The guest
//! binary is built with `--no-default-features` so it does not link tokio.

pub mod cmdline;
pub mod proto;

#[cfg(feature = "client")]
pub mod client;

use std::path::PathBuf;

/// The vsock port the agent listens on in the guest.
pub const AGENT_PORT: u32 = 1024;

/// The host vsock port the agent announces itself on once its listener is
/// up: it connects to the host (CID 2) on this port and sends one
/// [`proto::Reply::Status`] frame. With hybrid vsock (Firecracker, Cloud
/// Hypervisor, vhost-device-vsock) the host listens on the unix socket
/// `<uds_path>_1025`; nobody listening is fine (the host then polls).
pub const READY_PORT: u32 = 1025;

/// The exact line the agent prints once its listener is up.
pub const READY_MARKER: &str = "vimana-agent: ready";

/// The start of the line the agent prints on the console when the guest
/// kernel has no vsock support (`socket(AF_VSOCK)` fails with
/// `EAFNOSUPPORT`: no vsock modules loaded, none built in). Nothing can
/// reach the agent then, so the host stops waiting at once.
pub const NO_VSOCK_MARKER: &str = "vimana-agent: fatal: this kernel has no vsock support";

/// Name of the agent binary.
pub const AGENT_BINARY: &str = "vimana-agent";

/// Installed location of the static agent binary.
pub const INSTALLED_AGENT: &str = "/usr/lib/vimana/vimana-agent";

/// Environment variable naming the agent binary to bake into guests.
pub const AGENT_ENV: &str = "VIMANA_AGENT";

/// Where the static agent binary to bake into guests is: `$VIMANA_AGENT`
/// when set and not empty (returned even if it does not exist, so the
/// caller's error names what the user asked for), else `vimana-agent` next
/// to the current executable, else [`INSTALLED_AGENT`]; `None` when none of
/// them is a file.
pub fn locate_static_agent() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(AGENT_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let next_to_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(AGENT_BINARY)));
    next_to_exe
        .into_iter()
        .chain(std::iter::once(PathBuf::from(INSTALLED_AGENT)))
        .find(|p| p.is_file())
}
