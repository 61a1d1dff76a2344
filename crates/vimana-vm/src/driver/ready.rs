//! Waiting until a booting guest's agent is ready. The agent announces
//! itself: once its vsock listener is up it connects to the host on
//! [`READY_PORT`] and sends one status frame, which hybrid vsock (QEMU's
//! vhost-device-vsock sidecar, Firecracker, Cloud Hypervisor) delivers to
//! the unix socket `<vsock uds>_1025` the driver listens on. Nothing is
//! polled and the guest spends no CPU on it. Should the announcement not
//! come (an older agent, a VMM without guest-initiated connections), the
//! agent's console line followed by a `status` request over vsock is the
//! fallback; whichever answers first wins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vimana_agent::READY_PORT;
use vimana_agent::client::{AgentClient, ClientError};
use vimana_agent::proto::{Reply, StatusReply, tokio_io};

/// How the agent was found ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadyBy {
    /// It connected to the host and announced itself.
    Announced,
    /// Its console line appeared and it answered `status`.
    Polled,
}

/// The host end of the agents' announcements for one VM; the socket file
/// is removed on drop.
pub(crate) struct Announcements {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

impl Announcements {
    /// The socket path for a VM whose hybrid-vsock socket is `vsock_uds`.
    pub(crate) fn path_for(vsock_uds: &Path) -> PathBuf {
        let mut p = vsock_uds.as_os_str().to_owned();
        p.push(format!("_{READY_PORT}"));
        PathBuf::from(p)
    }

    /// Listens for the VM with hybrid-vsock socket `vsock_uds`; `None`
    /// when the socket cannot be made (the fallback still works).
    pub(crate) fn bind(vsock_uds: &Path) -> Option<Self> {
        let path = Self::path_for(vsock_uds);
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).ok()?;
        Some(Self { listener, path })
    }

    /// The first well-formed status announcement. Connections that send
    /// anything else (or nothing within a few seconds) are dropped.
    async fn next_status(&self) -> StatusReply {
        loop {
            let Ok((mut stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let frame = tokio::time::timeout(
                Duration::from_secs(5),
                tokio_io::read_frame::<_, Reply>(&mut stream),
            )
            .await;
            if let Ok(Ok(Some(Reply::Status(status)))) = frame {
                return status;
            }
        }
    }
}

impl Drop for Announcements {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why the agent did not become ready.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotReady {
    /// It did not answer in time (or answered wrongly).
    #[error("{0}")]
    Agent(#[from] ClientError),
    /// It said on the console that the guest kernel has no vsock support
    /// ([`vimana_agent::NO_VSOCK_MARKER`]): waiting longer cannot help.
    #[error("the guest kernel has no vsock support")]
    NoVsock,
}

/// Waits (up to `limit`) for the agent: its announcement, or else its
/// console line in `console_log` and then its answer to `status`. Stops
/// at once when the agent reports that the kernel has no vsock.
pub(crate) async fn agent_ready(
    announcements: Option<&Announcements>,
    console_log: &Path,
    agent: &AgentClient,
    limit: Duration,
) -> Result<(StatusReply, ReadyBy), NotReady> {
    let no_vsock = async {
        if super::console::wait_for_line(console_log, vimana_agent::NO_VSOCK_MARKER, limit).await {
            NotReady::NoVsock
        } else {
            // Not seen within the limit: the other branches time out first.
            std::future::pending().await
        }
    };
    tokio::select! {
        e = no_vsock => Err(e),
        r = wait_ready(announcements, console_log, agent, limit) => r.map_err(NotReady::from),
    }
}

async fn wait_ready(
    announcements: Option<&Announcements>,
    console_log: &Path,
    agent: &AgentClient,
    limit: Duration,
) -> Result<(StatusReply, ReadyBy), ClientError> {
    let polled = async {
        let started = std::time::Instant::now();
        // The console line first: reading a file costs the guest nothing,
        // connection attempts over vsock while it boots would cost it CPU.
        super::console::wait_for_line(console_log, vimana_agent::READY_MARKER, limit).await;
        let left = limit.saturating_sub(started.elapsed());
        agent
            .wait_ready(left.max(Duration::from_secs(1)))
            .await
            .map(|s| (s, ReadyBy::Polled))
    };
    match announcements {
        Some(a) => tokio::select! {
            s = a.next_status() => Ok((s, ReadyBy::Announced)),
            r = polled => r,
        },
        None => polled.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_announcement_wins_over_polling() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let uds = dir.path().join("vsock.sock");
        let announcements = Announcements::bind(&uds).unwrap_or_else(|| panic!("cannot listen"));
        let path = Announcements::path_for(&uds);
        assert!(path.to_string_lossy().ends_with("vsock.sock_1025"));
        let status = StatusReply {
            agent_version: "9.9.9".into(),
            protocol_version: 1,
            kernel_release: "6.1.0-test".into(),
            hostname: "vm".into(),
            uptime_ms: 1,
            pid1: true,
        };
        let sent = status.clone();
        let guest = tokio::spawn(async move {
            // A stray connection that says nothing useful is skipped.
            let mut junk = tokio::net::UnixStream::connect(&path)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            tokio_io::write_frame(&mut junk, &Reply::Ok)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut s = tokio::net::UnixStream::connect(&path)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            tokio_io::write_frame(&mut s, &Reply::Status(sent))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        });
        // Nobody serves the agent's own socket and the console stays
        // silent: only the announcement can make this ready.
        let agent = AgentClient::hybrid_unix(uds.clone(), vimana_agent::AGENT_PORT);
        let (got, by) = agent_ready(
            Some(&announcements),
            &dir.path().join("console.log"),
            &agent,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((got, by), (status, ReadyBy::Announced));
        guest.await.unwrap_or_else(|e| panic!("{e}"));
        let path = Announcements::path_for(&uds);
        drop(announcements);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    #[tokio::test]
    async fn an_agent_without_vsock_ends_the_wait_at_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let uds = dir.path().join("vsock.sock");
        let log = dir.path().join("console.log");
        std::fs::write(
            &log,
            format!(
                "[    1.0] booting\n{} (cannot listen on vsock port 1024: EAFNOSUPPORT)\n",
                vimana_agent::NO_VSOCK_MARKER
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let agent = AgentClient::hybrid_unix(uds.clone(), vimana_agent::AGENT_PORT);
        let t = std::time::Instant::now();
        let r = agent_ready(None, &log, &agent, Duration::from_secs(60)).await;
        assert!(matches!(r, Err(NotReady::NoVsock)), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn without_an_announcement_the_wait_times_out() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let uds = dir.path().join("vsock.sock");
        let announcements = Announcements::bind(&uds);
        let agent = AgentClient::hybrid_unix(uds.clone(), vimana_agent::AGENT_PORT);
        let t = std::time::Instant::now();
        let r = agent_ready(
            announcements.as_ref(),
            &dir.path().join("console.log"),
            &agent,
            Duration::from_millis(300),
        )
        .await;
        assert!(r.is_err(), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}
