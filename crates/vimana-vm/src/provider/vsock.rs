//! vsock, host side. Every provider exposes the guest's vsock as a
//! Firecracker-style *hybrid* unix socket at [`VsockSpec::uds_path`]:
//!
//! - host → guest: connect to `uds_path`, write `CONNECT <port>\n`, read
//!   `OK <host-port>\n`, then the stream is the guest connection
//!   ([`connect`]);
//! - guest → host: the VMM connects to `<uds_path>_<port>`, where a host
//!   program listens ([`guest_listener_path`]).
//!
//! Firecracker and Cloud Hypervisor do this themselves. QEMU has no such
//! backend (and no `/dev/vhost-vsock` is needed): its
//! `vhost-user-vsock-device` is served by rust-vmm's `vhost-device-vsock`
//! sidecar ([`sidecar`]), which implements the same hybrid protocol.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::timeout;

use super::{LaunchSpec, ProcessPlan, ProviderError, VsockSpec, utf8};

/// The sidecar binary's default name.
pub const SIDECAR_BINARY: &str = "vhost-device-vsock";

/// The vhost-user control socket between QEMU and the sidecar.
pub fn vhost_socket(spec: &LaunchSpec) -> PathBuf {
    spec.run_path("vhost-vsock.sock")
}

/// Where a host program listens for guest-initiated connections to `port`.
pub fn guest_listener_path(uds_path: &Path, port: u32) -> PathBuf {
    let mut name = uds_path.as_os_str().to_owned();
    name.push(format!("_{port}"));
    PathBuf::from(name)
}

/// `vhost-device-vsock --guest-cid C --socket <run_dir>/vhost-vsock.sock
/// --uds-path <uds_path>`: it creates both sockets and must be up before
/// QEMU connects. It outlives a QEMU disconnect, so the driver stops it
/// when the VMM is gone.
pub fn sidecar(
    binary: &Path,
    spec: &LaunchSpec,
    vsock: &VsockSpec,
) -> Result<ProcessPlan, ProviderError> {
    let control = vhost_socket(spec);
    let argv = vec![
        utf8(binary, "vhost-device-vsock binary")?.to_string(),
        "--guest-cid".into(),
        vsock.guest_cid.to_string(),
        "--socket".into(),
        utf8(&control, "vhost-user socket")?.to_string(),
        "--uds-path".into(),
        utf8(&vsock.uds_path, "vsock")?.to_string(),
    ];
    Ok(ProcessPlan {
        name: SIDECAR_BINARY.into(),
        argv,
        env: vec![("RUST_LOG".into(), "warn".into())],
        cwd: Some(spec.run_dir.clone()),
        stdout: spec.run_path("vhost-device-vsock.log"),
        stderr: spec.run_path("vhost-device-vsock.log"),
        wait_for: vec![control, vsock.uds_path.clone()],
    })
}

/// Opens a connection to guest `port` through the hybrid socket: the
/// returned stream carries the guest connection's bytes.
pub async fn connect(
    uds_path: &Path,
    port: u32,
    wait: Duration,
) -> Result<UnixStream, ProviderError> {
    let what = format!("CONNECT {port}");
    let handshake = async {
        let mut stream =
            UnixStream::connect(uds_path)
                .await
                .map_err(|source| ProviderError::Connect {
                    socket: uds_path.to_path_buf(),
                    source,
                })?;
        let io = |source| ProviderError::Io {
            socket: uds_path.to_path_buf(),
            source,
        };
        stream
            .write_all(format!("CONNECT {port}\n").as_bytes())
            .await
            .map_err(io)?;
        // Byte by byte: whatever follows the line belongs to the caller.
        let mut line = Vec::with_capacity(16);
        loop {
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.map_err(io)? == 0 {
                return Err(ProviderError::Protocol {
                    socket: uds_path.to_path_buf(),
                    message: format!(
                        "connection closed after CONNECT {port}: nothing listens on vsock port {port} in the guest (yet)"
                    ),
                });
            }
            if byte[0] == b'\n' {
                break;
            }
            line.push(byte[0]);
            if line.len() > 64 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        if text.starts_with("OK ") {
            Ok(stream)
        } else {
            Err(ProviderError::Protocol {
                socket: uds_path.to_path_buf(),
                message: format!("expected `OK <port>` after CONNECT {port}, got {text:?}"),
            })
        }
    };
    timeout(wait, handshake)
        .await
        .map_err(|_| ProviderError::Timeout {
            socket: uds_path.to_path_buf(),
            what,
            waited: wait,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::UnixListener;

    #[test]
    fn guest_listener_path_appends_the_port() {
        assert_eq!(
            guest_listener_path(Path::new("/run/vm/v.sock"), 52),
            PathBuf::from("/run/vm/v.sock_52")
        );
    }

    async fn fake_vmm(path: PathBuf, answer: &'static str) {
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "CONNECT 1024\n");
            let mut stream = reader.into_inner();
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.write_all(b"payload").await.unwrap();
        });
    }

    #[tokio::test]
    async fn hybrid_handshake_leaves_the_payload_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        fake_vmm(path.clone(), "OK 1073741824\n").await;
        let mut s = connect(&path, 1024, Duration::from_secs(5)).await.unwrap();
        let mut rest = String::new();
        s.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "payload");
    }

    #[tokio::test]
    async fn hybrid_handshake_rejects_other_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        fake_vmm(path.clone(), "NO\n").await;
        let err = connect(&path, 1024, Duration::from_secs(5))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("v.sock") && msg.contains("\"NO\""), "{msg}");
        let err = connect(&dir.path().join("missing.sock"), 1, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("missing.sock"), "{err}");
    }
}
