//! The real agent binary in `--listen unix:` mode, driven by the real
//! client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use vimana_agent::client::{AgentClient, ClientError, ExecEvent, wait_ready};
use vimana_agent::proto::{self, ExecRequest, MAX_FRAME, PROTOCOL_VERSION, Reply, Request};
use vimana_agent::{AGENT_PORT, READY_MARKER};

const T: Duration = Duration::from_secs(20);

struct Agent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn spawn(hybrid: bool) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("a.sock");
        let child = spawn_agent(&sock, hybrid);
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }

    async fn start(hybrid: bool) -> Agent {
        let agent = Agent::spawn(hybrid);
        agent.client(hybrid).wait_ready(T).await.unwrap();
        agent
    }

    fn client(&self, hybrid: bool) -> AgentClient {
        if hybrid {
            AgentClient::hybrid_unix(&self.sock, AGENT_PORT)
        } else {
            AgentClient::unix(&self.sock)
        }
    }

    fn hybrid(&self) -> AgentClient {
        self.client(true)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_agent(sock: &Path, hybrid: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vimana-agent"));
    cmd.arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .stdout(Stdio::piped());
    if hybrid {
        cmd.arg("--hybrid");
    }
    cmd.spawn().unwrap()
}

fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn status_answers_over_hybrid_and_plain() {
    let agent = Agent::start(true).await;
    let s = agent.hybrid().status().await.unwrap();
    assert_eq!(s.protocol_version, PROTOCOL_VERSION);
    assert_eq!(s.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(s.kernel_release, host_release());
    assert!(!s.pid1);
    assert!(s.uptime_ms > 0);
    assert_eq!(
        s.hostname,
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );

    let plain = Agent::start(false).await;
    let s = plain.client(false).status().await.unwrap();
    assert_eq!(s.protocol_version, PROTOCOL_VERSION);
}

#[tokio::test]
async fn ready_marker_is_printed() {
    let mut agent = Agent::spawn(true);
    let mut out = agent.child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            buf.push(b[0]);
        }
        String::from_utf8(buf).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(line, READY_MARKER);
    // The listener is up once the marker is out.
    agent.hybrid().status().await.unwrap();
}

#[tokio::test]
async fn exec_uname_and_exit_codes() {
    let agent = Agent::start(true).await;
    let c = agent.hybrid();
    let out = c.exec_collect(["uname", "-r"], T).await.unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        host_release()
    );
    assert!(out.stderr.is_empty());
    assert!(out.exit.success());

    let out = c
        .exec_collect(["sh", "-c", "echo out; echo err >&2; exit 3"], T)
        .await
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit.code, Some(3));
    assert_eq!(out.exit.signal, None);
    assert_eq!(out.exit.to_string(), "exit code 3");

    let session = c
        .exec(
            ExecRequest::new(["sh", "-c", "echo \"$FOO\"; pwd"])
                .env("FOO", "bar baz")
                .cwd("/tmp"),
        )
        .await
        .unwrap();
    let out = session.wait().await.unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "bar baz\n/tmp\n");

    // Large output arrives complete and in order.
    let out = c
        .exec_collect(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"], T)
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 3_000_000);
    assert!(out.stdout.iter().all(|b| *b == b'x'));
}

#[tokio::test]
async fn killed_child_reports_signal() {
    let agent = Agent::start(true).await;
    let out = agent
        .hybrid()
        .exec_collect(["sh", "-c", "kill -9 $$"], T)
        .await
        .unwrap();
    assert_eq!(out.exit.code, None);
    assert_eq!(out.exit.signal, Some(9));
    assert_eq!(out.exit.to_string(), "killed by signal 9");
}

#[tokio::test]
async fn missing_command_and_bad_cwd_are_clear_errors() {
    let agent = Agent::start(true).await;
    let err = agent
        .hybrid()
        .exec_collect(["no-such-command-vimana"], T)
        .await
        .unwrap_err();
    let ClientError::Agent { message, .. } = &err else {
        panic!("unexpected error {err:?}");
    };
    assert!(message.contains("no-such-command-vimana"), "{message}");
    assert!(message.contains("No such file"), "{message}");
    assert!(err.to_string().contains("exec failed"), "{err}");

    let err = agent
        .hybrid()
        .exec(ExecRequest::new(["true"]).cwd("/no/such/dir"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");

    let err = agent
        .hybrid()
        .exec(ExecRequest::new(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest { .. }), "{err:?}");
}

#[tokio::test]
async fn stdin_streams_through_cat() {
    let agent = Agent::start(true).await;
    let c = agent.hybrid();

    // Small: write, close, read.
    let mut s = c
        .exec(ExecRequest::new(["cat"]).with_stdin(true))
        .await
        .unwrap();
    s.write_stdin(b"hello ").await.unwrap();
    s.write_stdin(b"agent\n").await.unwrap();
    s.close_stdin().await.unwrap();
    let out = s.wait().await.unwrap();
    assert_eq!(out.stdout, b"hello agent\n");
    assert!(out.exit.success());

    // Large, concurrently (more than the pipes and socket buffers hold).
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let s = c
        .exec(ExecRequest::new(["cat"]).with_stdin(true))
        .await
        .unwrap();
    let (mut stdin, events) = s.split();
    let to_send = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write(&to_send).await.unwrap();
        stdin.close().await.unwrap();
        stdin
    });
    let out = tokio::time::timeout(T, events.collect())
        .await
        .unwrap()
        .unwrap();
    drop(writer.await.unwrap());
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data);
    assert!(out.exit.success());
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn disconnect_kills_the_child() {
    let agent = Agent::start(true).await;
    let c = agent.hybrid();
    let mut s = c.exec(ExecRequest::new(["sleep", "300"])).await.unwrap();
    let pid = s.pid();
    // Started is sent right after fork; exec may still be under way.
    let start = Instant::now();
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        if comm.trim() == "sleep" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid {pid} is {comm}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Nothing arrives while it sleeps.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), s.next_event())
            .await
            .is_err()
    );
    drop(s);
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid {pid} still alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The whole process group goes, grandchildren included.
    let mut s = c
        .exec(ExecRequest::new(["sh", "-c", "sleep 300 & echo $!; wait"]))
        .await
        .unwrap();
    let shell = s.pid();
    let Some(ExecEvent::Stdout(line)) = s.next_event().await.unwrap() else {
        panic!("no pid printed");
    };
    let grandchild: u32 = String::from_utf8(line).unwrap().trim().parse().unwrap();
    assert!(alive(grandchild));
    drop(s);
    let start = Instant::now();
    while alive(shell) || alive(grandchild) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{shell} or {grandchild} still alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Same through the exec_collect timeout.
    let err = c
        .exec_collect(
            ["sh", "-c", "sleep 300; echo never"],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { op: "exec", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out after 300ms"), "{err}");
    // The agent keeps serving.
    assert!(c.exec_collect(["true"], T).await.unwrap().exit.success());
}

#[tokio::test]
async fn events_arrive_while_running() {
    let agent = Agent::start(true).await;
    let mut s = agent
        .hybrid()
        .exec(ExecRequest::new([
            "sh",
            "-c",
            "echo one; sleep 0.3; echo two >&2",
        ]))
        .await
        .unwrap();
    assert_eq!(
        s.next_event().await.unwrap(),
        Some(ExecEvent::Stdout(b"one\n".to_vec()))
    );
    assert_eq!(
        s.next_event().await.unwrap(),
        Some(ExecEvent::Stderr(b"two\n".to_vec()))
    );
    let Some(ExecEvent::Exit(e)) = s.next_event().await.unwrap() else {
        panic!("no exit");
    };
    assert!(e.success());
    assert_eq!(s.next_event().await.unwrap(), None);
}

async fn raw_hybrid(sock: &Path) -> UnixStream {
    let mut s = UnixStream::connect(sock).await.unwrap();
    s.write_all(format!("CONNECT {AGENT_PORT}\n").as_bytes())
        .await
        .unwrap();
    let mut line = Vec::new();
    loop {
        let b = s.read_u8().await.unwrap();
        if b == b'\n' {
            break;
        }
        line.push(b);
    }
    assert_eq!(line, format!("OK {AGENT_PORT}").as_bytes());
    s
}

#[tokio::test]
async fn oversized_frame_is_refused_and_agent_survives() {
    let agent = Agent::start(true).await;
    let mut s = raw_hybrid(&agent.sock).await;
    let len = (MAX_FRAME as u32) + 1;
    // One write: the agent answers after the header and closes.
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&[b'{'; 1000]);
    s.write_all(&frame).await.unwrap();
    let reply: Reply = proto::tokio_io::read_frame(&mut s).await.unwrap().unwrap();
    let Reply::Error { message } = reply else {
        panic!("unexpected {reply:?}");
    };
    assert!(message.contains("exceeds the limit"), "{message}");

    // Garbage JSON.
    let mut s = raw_hybrid(&agent.sock).await;
    s.write_all(&[0, 0, 0, 3, b'x', b'y', b'z']).await.unwrap();
    let reply: Reply = proto::tokio_io::read_frame(&mut s).await.unwrap().unwrap();
    assert!(matches!(reply, Reply::Error { .. }), "{reply:?}");

    // A well-formed raw request works, and so does the client.
    let mut s = raw_hybrid(&agent.sock).await;
    proto::tokio_io::write_frame(&mut s, &Request::Status)
        .await
        .unwrap();
    let reply: Reply = proto::tokio_io::read_frame(&mut s).await.unwrap().unwrap();
    assert!(matches!(reply, Reply::Status(_)));
    agent.hybrid().status().await.unwrap();
}

#[tokio::test]
async fn bad_handshakes_are_errors() {
    // A peer answering something else than `OK <port>`.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&fake).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"NOPE go away\n").await;
        }
    });
    let err = AgentClient::hybrid_unix(&fake, AGENT_PORT)
        .status()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ClientError::Handshake { .. }), "{err:?}");
    assert!(text.contains(&fake.display().to_string()), "{text}");
    assert!(text.contains("NOPE go away"), "{text}");

    // A port nobody listens on: the agent closes, as Firecracker does.
    let agent = Agent::start(true).await;
    let err = AgentClient::hybrid_unix(&agent.sock, 4242)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Handshake { port: 4242, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("connection closed"), "{err}");

    // Handshake against a plain (non-hybrid) agent.
    let plain = Agent::start(false).await;
    let err = AgentClient::hybrid_unix(&plain.sock, AGENT_PORT)
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Handshake { .. }), "{err:?}");

    // A silent peer: the connect timeout applies.
    let silent = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&silent).unwrap();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let err = AgentClient::hybrid_unix(&silent, AGENT_PORT)
        .with_connect_timeout(Duration::from_millis(200))
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    keep.abort();
}

#[tokio::test]
async fn wait_ready_waits_for_a_late_agent() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("late.sock");
    let sock2 = sock.clone();
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        spawn_agent(&sock2, true)
    });
    let start = Instant::now();
    let status = wait_ready(&sock, AGENT_PORT, T).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(status.protocol_version, PROTOCOL_VERSION);
    let mut child = starter.await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn wait_ready_times_out_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nobody.sock");
    let start = Instant::now();
    let err = wait_ready(&sock, AGENT_PORT, Duration::from_millis(600))
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let text = err.to_string();
    let ClientError::NotReady { attempts, last, .. } = &err else {
        panic!("unexpected {err:?}");
    };
    assert!(*attempts > 1);
    assert!(matches!(**last, ClientError::Connect { .. }), "{last:?}");
    assert!(text.contains(&sock.display().to_string()), "{text}");
    assert!(text.contains("port 1024"), "{text}");
    assert!(text.contains("did not answer `status` within"), "{text}");
}

#[tokio::test]
async fn shutdown_in_listen_mode_exits_zero() {
    let mut agent = Agent::start(true).await;
    agent.hybrid().shutdown(false).await.unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = agent.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "agent still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(!agent.sock.exists());
}

#[test]
fn version_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_vimana-agent"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("vimana-agent "),
        "{out:?}"
    );
}
