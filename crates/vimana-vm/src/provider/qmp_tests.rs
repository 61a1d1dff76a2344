//! Protocol tests of the client against a tiny scripted QMP server (the real
//! QEMU is exercised by `tests/provider_qemu.rs`).

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use super::*;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

/// Serves one connection: sends the greeting, then answers each command
/// with `reply(command, id)` (a list of lines). Commands seen are sent to
/// the returned channel.
async fn server(
    path: &Path,
    reply: fn(&str, &Value) -> Vec<String>,
) -> mpsc::UnboundedReceiver<String> {
    let listener = UnixListener::bind(path).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("{GREETING}\r\n").as_bytes())
            .await
            .unwrap();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let msg: Value = serde_json::from_str(&line).unwrap();
            let cmd = msg["execute"].as_str().unwrap().to_string();
            let _ = tx.send(cmd.clone());
            for out in reply(&cmd, &msg["id"]) {
                if out == "CLOSE" {
                    return;
                }
                write
                    .write_all(format!("{out}\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        }
    });
    rx
}

fn normal(cmd: &str, id: &Value) -> Vec<String> {
    let event = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RTC_CHANGE", "data": {"offset": 0}}"#;
    match cmd {
        "qmp_capabilities" => vec![format!(r#"{{"return": {{}}, "id": {id}}}"#)],
        "query-status" => vec![
            event.to_string(),
            format!(
                r#"{{"return": {{"status": "running", "singlestep": false, "running": true}}, "id": {id}}}"#
            ),
        ],
        "system_powerdown" => vec![
            format!(r#"{{"return": {{}}, "id": {id}}}"#),
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}"#.into(),
        ],
        "quit" => vec!["CLOSE".into()],
        _ => vec![format!(
            r#"{{"id": {id}, "error": {{"class": "CommandNotFound", "desc": "The command {cmd} has not been found"}}}}"#
        )],
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn negotiates_then_queries_powers_down_and_quits() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("qmp.sock");
    let mut seen = server(&sock, normal).await;
    let mut qmp = Qmp::connect(&sock, WAIT).await.unwrap();
    let status = qmp.query_status().await.unwrap();
    assert_eq!(
        status,
        QmpStatus {
            running: true,
            status: "running".into()
        }
    );
    assert_eq!(status.into_status(), VmmStatus::Running);
    qmp.system_powerdown().await.unwrap();
    // The POWERDOWN event after the answer is skipped by the next command.
    let err = qmp.execute("no-such-thing", None).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("QMP no-such-thing on"), "{msg}");
    assert!(msg.contains("qmp.sock"), "{msg}");
    assert!(msg.contains("CommandNotFound"), "{msg}");
    qmp.quit().await.unwrap();
    let mut cmds = Vec::new();
    while let Ok(c) = seen.try_recv() {
        cmds.push(c);
    }
    assert_eq!(
        cmds,
        [
            "qmp_capabilities",
            "query-status",
            "system_powerdown",
            "no-such-thing",
            "quit"
        ]
    );
}

#[tokio::test]
async fn a_silent_server_times_out_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let keep = tokio::spawn(async move {
        let (_s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let err = Qmp::connect(&sock, Duration::from_millis(200))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("silent.sock"), "{err}");
    assert!(err.contains("the QMP greeting"), "{err}");
    keep.abort();
}

#[tokio::test]
async fn garbage_and_missing_sockets_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bad.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"this is not json\r\n").await.unwrap();
    });
    let err = Qmp::connect(&sock, WAIT).await.err().unwrap().to_string();
    assert!(
        err.contains("bad.sock") && err.contains("invalid QMP message"),
        "{err}"
    );

    let err = Qmp::connect(&dir.path().join("none.sock"), WAIT)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot connect to") && err.contains("none.sock"),
        "{err}"
    );
}

#[test]
fn run_states_map_to_vmm_status() {
    let s = |running, status: &str| {
        QmpStatus {
            running,
            status: status.into(),
        }
        .into_status()
    };
    assert_eq!(s(false, "paused"), VmmStatus::Paused);
    assert_eq!(s(false, "prelaunch"), VmmStatus::NotStarted);
    assert_eq!(s(false, "shutdown"), VmmStatus::Shutdown);
    assert_eq!(
        s(false, "guest-panicked"),
        VmmStatus::Other("guest-panicked".into())
    );
    assert_eq!(s(true, "debug"), VmmStatus::Running);
}
