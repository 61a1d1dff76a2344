//! `vimana vm exec ID -- CMD ARGS…`: runs a command in the guest through
//! the agent (hybrid vsock socket `<vm_dir>/vsock.sock`), streams its
//! output as it arrives and exits with its exit code (a signal N gives
//! 128+N, as shells do).
//!
//! Stdin is forwarded when it is a pipe or a file, or with `-i` also from a
//! terminal; its end is passed on as the command's end of input. Otherwise
//! the command's stdin is `/dev/null`. Stdin is read on a plain thread, not
//! on the runtime's blocking pool, so a read that never returns cannot keep
//! the CLI from exiting once the command has ended.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use vimana_agent::client::{AgentClient, ExecEvent, ExitStatus};
use vimana_agent::proto::ExecRequest;

use crate::client::Client;
use crate::home::Home;

/// Size of one stdin read.
const STDIN_CHUNK: usize = 64 * 1024;

pub async fn exec(
    home: &Home,
    client: &Client,
    id: &str,
    interactive: bool,
    command: Vec<String>,
) -> Result<ExitCode> {
    if command.is_empty() {
        bail!("no command given; write it after the VM id: `vimana vm exec {id} -- uname -a`");
    }
    let w = super::vm::get_vm(client, id).await?;
    super::vm::require_running(&w)?;
    let socket = home.vm_dir(w.name.as_str()).join("vsock.sock");
    let forward_stdin = interactive || !std::io::stdin().is_terminal();
    let agent = AgentClient::hybrid_unix(&socket, vimana_agent::AGENT_PORT);
    let stdin = forward_stdin.then(read_stdin_on_thread);
    let code = run_exec(
        &agent,
        w.name.as_str(),
        command,
        stdin,
        tokio::io::stdout(),
        tokio::io::stderr(),
    )
    .await?;
    Ok(ExitCode::from(code))
}

/// Runs `argv` through `agent`, feeding it `stdin` (chunks, then `None`
/// for the end), copying its output to `out`/`err` as it arrives; returns
/// the exit code to leave with.
async fn run_exec<O, E>(
    agent: &AgentClient,
    id: &str,
    argv: Vec<String>,
    stdin: Option<mpsc::Receiver<Option<Vec<u8>>>>,
    mut out: O,
    mut err: E,
) -> Result<u8>
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let program = argv.first().cloned().unwrap_or_default();
    let request = ExecRequest::new(argv).with_stdin(stdin.is_some());
    let session = agent
        .exec(request)
        .await
        .with_context(|| format!("cannot run {program:?} in VM {id}"))?;
    let (mut writer, mut events) = session.split();
    if let Some(mut chunks) = stdin {
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                let sent = match chunk {
                    Some(data) => writer.write(&data).await,
                    None => {
                        let _ = writer.close().await;
                        return;
                    }
                };
                // The command may exit without reading all of its input.
                if sent.is_err() {
                    return;
                }
            }
        });
    }
    loop {
        let event = events
            .next()
            .await
            .with_context(|| format!("lost the connection to the agent of VM {id}"))?;
        match event {
            Some(ExecEvent::Stdout(data)) => {
                out.write_all(&data).await?;
                out.flush().await?;
            }
            Some(ExecEvent::Stderr(data)) => {
                err.write_all(&data).await?;
                err.flush().await?;
            }
            Some(ExecEvent::Exit(status)) => return Ok(exit_code(status)),
            None => bail!("the agent of VM {id} ended the command without an exit status"),
        }
    }
}

/// The shell convention: the exit code, or 128+N for signal N.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code, status.signal) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + (s & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    }
}

/// Stdin chunks on a channel; `None` marks the end of input (or an error
/// reading it).
fn read_stdin_on_thread() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    use vimana_agent::proto::{ExecInput, Reply, Request, tokio_io};

    /// A fake agent on a plain unix socket: answers one exec by echoing its
    /// stdin upper-cased on stdout, `warn` on stderr, then exit code 3.
    #[tokio::test]
    async fn streams_output_forwards_stdin_and_returns_the_exit_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let req: Request = tokio_io::read_frame(&mut s)
                .await
                .expect("read")
                .expect("req");
            let Request::Exec(req) = req else {
                panic!("not an exec: {req:?}")
            };
            assert!(req.stdin);
            tokio_io::write_frame(&mut s, &Reply::Started { pid: 7 })
                .await
                .expect("write");
            let mut input = Vec::new();
            loop {
                let msg: ExecInput = tokio_io::read_frame(&mut s)
                    .await
                    .expect("read")
                    .expect("msg");
                match msg {
                    ExecInput::Stdin { data } => input.extend(data),
                    ExecInput::StdinEof => break,
                }
            }
            let replies = [
                Reply::Stdout {
                    data: input.to_ascii_uppercase(),
                },
                Reply::Stderr {
                    data: b"warn".to_vec(),
                },
                Reply::Exit {
                    code: Some(3),
                    signal: None,
                },
            ];
            for r in replies {
                tokio_io::write_frame(&mut s, &r).await.expect("write");
            }
            req.argv
        });
        let (tx, rx) = mpsc::channel(4);
        tx.send(Some(b"hello ".to_vec())).await.expect("send");
        tx.send(Some(b"vm".to_vec())).await.expect("send");
        tx.send(None).await.expect("send");
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run_exec(
            &AgentClient::unix(&path),
            "vm-test",
            vec!["cat".into(), "-".into()],
            Some(rx),
            &mut out,
            &mut err,
        )
        .await
        .expect("exec");
        assert_eq!(code, 3);
        assert_eq!(out, b"HELLO VM");
        assert_eq!(err, b"warn");
        assert_eq!(server.await.expect("server"), ["cat", "-"]);
    }

    #[tokio::test]
    async fn a_missing_agent_socket_names_the_vm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = AgentClient::hybrid_unix(dir.path().join("vsock.sock"), 1024);
        let e = run_exec(
            &agent,
            "vm-test",
            vec!["true".into()],
            None,
            Vec::new(),
            Vec::new(),
        )
        .await
        .expect_err("no agent");
        assert!(format!("{e:#}").contains("VM vm-test"), "{e:#}");
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        let st = |code, signal| ExitStatus { code, signal };
        assert_eq!(exit_code(st(Some(0), None)), 0);
        assert_eq!(exit_code(st(Some(3), None)), 3);
        assert_eq!(exit_code(st(None, Some(9))), 137);
        assert_eq!(exit_code(st(None, Some(15))), 143);
        assert_eq!(exit_code(st(None, None)), 1);
    }
}
