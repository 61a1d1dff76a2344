//! Launch failures with real (shell script) processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vimana_goplugin::{GoPluginError, HandshakeConfig, LaunchConfig, launch};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn cfg(p: &Path) -> LaunchConfig {
    let mut c = LaunchConfig::new(p, HandshakeConfig::spacecore());
    c.start_timeout = Duration::from_secs(5);
    c
}

#[tokio::test]
async fn silent_plugin_times_out_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let p = script(
        dir.path(),
        "silent",
        &format!("echo $$ > {}\nexec sleep 30", pidfile.display()),
    );
    let mut c = cfg(&p);
    c.start_timeout = Duration::from_millis(500);
    let t0 = Instant::now();
    let e = launch(c).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(4));
    let msg = e.to_string();
    assert!(matches!(e, GoPluginError::HandshakeTimeout { .. }), "{msg}");
    assert!(
        msg.contains("printed no handshake line within 0.5s"),
        "{msg}"
    );
    assert!(msg.contains("SPACECORE_PLUGIN=v1"), "{msg}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!vimana_goplugin::pid_alive(pid, None), "killed and reaped");
}

#[tokio::test]
async fn netrpc_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "netrpc",
        "echo '1|1|unix|/tmp/x|netrpc|'\nexec sleep 30",
    );
    let e = launch(cfg(&p)).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, GoPluginError::NotGrpc { .. }), "{msg}");
    assert!(
        msg.contains("uses protocol \"netrpc\"; vimana supports only gRPC plugins"),
        "{msg}"
    );
}

#[tokio::test]
async fn garbage_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "garbage",
        "echo 'Hello, I am not a plugin'\nexec sleep 30",
    );
    let e = launch(cfg(&p)).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("\"Hello, I am not a plugin\""), "{msg}");
    assert!(msg.contains(&p.display().to_string()), "{msg}");
    assert!(
        msg.contains("expected CORE|APP|NETWORK|ADDR|PROTOCOL|CERT"),
        "{msg}"
    );
}

#[tokio::test]
async fn early_exit_shows_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "dies",
        "i=0; while [ $i -lt 30 ]; do echo \"line $i\" >&2; i=$((i+1)); done\n\
         echo 'This binary is a plugin. These are not meant to be executed directly.' >&2\n\
         exit 1",
    );
    let e = launch(cfg(&p)).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, GoPluginError::ExitedBeforeHandshake { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("exited with status 1 before printing its handshake line"),
        "{msg}"
    );
    assert!(msg.contains("This binary is a plugin"), "{msg}");
    assert!(msg.contains("line 29"), "{msg}");
    assert!(!msg.contains("line 5\n"), "only the tail: {msg}");
}

#[tokio::test]
async fn early_exit_with_file_output() {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err.log");
    std::fs::write(&err, "stale line from before\n").unwrap();
    let p = script(dir.path(), "dies", "echo 'bad config' >&2\nexit 3");
    let mut c = cfg(&p);
    c.output = vimana_goplugin::Output::Files {
        stdout: dir.path().join("out.log"),
        stderr: err,
    };
    let msg = launch(c).await.unwrap_err().to_string();
    assert!(msg.contains("status 3"), "{msg}");
    assert!(msg.contains("bad config"), "{msg}");
    assert!(!msg.contains("stale line"), "{msg}");
}

#[tokio::test]
async fn missing_path() {
    let e = launch(cfg(Path::new("/nonexistent/vimana/plugin")))
        .await
        .unwrap_err();
    assert!(matches!(e, GoPluginError::NotFound { .. }));
    assert!(
        e.to_string()
            .contains("plugin /nonexistent/vimana/plugin does not exist"),
        "{e}"
    );
}

#[tokio::test]
async fn not_executable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plain");
    std::fs::write(&p, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = launch(cfg(&p)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("plugin {} is not executable: chmod +x it", p.display())
    );
    let e = launch(cfg(dir.path())).await.unwrap_err();
    assert!(matches!(e, GoPluginError::NotExecutable { .. }), "{e}");
}

#[tokio::test]
async fn unoffered_version_and_wrong_core() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "v9",
        "echo '1|9|unix|/tmp/x|grpc|'\nexec sleep 30",
    );
    let msg = launch(cfg(&p)).await.unwrap_err().to_string();
    assert!(msg.contains("app protocol version 9"), "{msg}");
    let p = script(
        dir.path(),
        "core2",
        "echo '2|1|unix|/tmp/x|grpc|'\nexec sleep 30",
    );
    let msg = launch(cfg(&p)).await.unwrap_err().to_string();
    assert!(msg.contains("core protocol 2"), "{msg}");
}

#[tokio::test]
async fn unreachable_socket() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "nosock",
        "echo '1|1|unix|/nonexistent/plugin.sock|grpc|'\nexec sleep 30",
    );
    let mut c = cfg(&p);
    c.start_timeout = Duration::from_secs(1);
    let msg = launch(c).await.unwrap_err().to_string();
    assert!(msg.contains("cannot connect"), "{msg}");
}
