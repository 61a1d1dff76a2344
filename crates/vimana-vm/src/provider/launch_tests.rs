use std::path::PathBuf;

use tokio::net::UnixListener;

use super::*;

fn process(dir: &Path, name: &str, script: &str, wait_for: Vec<PathBuf>) -> ProcessPlan {
    ProcessPlan {
        name: name.into(),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![("VIMANA_TEST".into(), "yes".into())],
        cwd: Some(dir.to_path_buf()),
        stdout: dir.join(format!("{name}.out")),
        stderr: dir.join(format!("{name}.err")),
        wait_for,
    }
}

fn alive(pid: u32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

/// Field 6 of /proc/<pid>/stat: the session id.
fn session_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(") ").unwrap().1;
    after.split(' ').nth(3).unwrap().parse().unwrap()
}

#[tokio::test]
async fn writes_files_starts_detached_and_waits_for_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock = d.join("vmm.sock");
    // A stale socket from an earlier run must be removed first.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let plan = LaunchPlan {
        files: vec![(d.join("cfg/vm.json"), b"{}".to_vec())],
        processes: vec![process(
            d,
            "vmm",
            "echo \"$VIMANA_TEST $(pwd)\"; exec sleep 30",
            vec![sock.clone()],
        )],
        ..LaunchPlan::default()
    };
    let binder = {
        let sock = sock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            UnixListener::bind(&sock).unwrap()
        })
    };
    let opts = ExecuteOptions {
        socket_timeout: Duration::from_secs(5),
        ..ExecuteOptions::default()
    };
    let mut spawned = execute_plan(&plan, &opts).await.unwrap();
    let _listener = binder.await.unwrap();
    assert_eq!(std::fs::read(d.join("cfg/vm.json")).unwrap(), b"{}");
    assert_eq!(spawned.len(), 1);
    let pid = spawned[0].pid;
    assert_eq!(session_of(pid), pid, "the process leads its own session");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = std::fs::read_to_string(d.join("vmm.out")).unwrap();
    assert_eq!(out.trim(), format!("yes {}", d.display()));
    spawned[0].child.start_kill().unwrap();
    spawned[0].child.wait().await.unwrap();
}

#[tokio::test]
async fn a_process_that_dies_is_reported_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = LaunchPlan {
        processes: vec![process(
            d,
            "qemu",
            "echo 'qemu: could not load kernel' >&2; exit 3",
            vec![d.join("qmp.sock")],
        )],
        ..LaunchPlan::default()
    };
    let err = execute_plan(&plan, &ExecuteOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("qemu (pid"), "{err}");
    assert!(err.contains("exited with status 3"), "{err}");
    assert!(err.contains("qmp.sock appeared"), "{err}");
    assert!(err.contains("could not load kernel"), "{err}");
}

#[tokio::test]
async fn timeout_names_the_socket_and_kills_what_was_started() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sidecar_sock = d.join("sidecar.sock");
    let sidecar = process(d, "sidecar", "exec sleep 30", Vec::new());
    let vmm = process(d, "vmm", "exec sleep 30", vec![d.join("never.sock")]);
    let plan = LaunchPlan {
        processes: vec![sidecar, vmm],
        remove_first: vec![sidecar_sock],
        ..LaunchPlan::default()
    };
    let opts = ExecuteOptions {
        socket_timeout: Duration::from_millis(300),
        ..ExecuteOptions::default()
    };
    let err = execute_plan(&plan, &opts).await.unwrap_err();
    let ProviderError::SocketTimeout { pid, .. } = &err else {
        panic!("unexpected {err}");
    };
    let msg = err.to_string();
    assert!(msg.contains("never.sock") && msg.contains("vmm"), "{msg}");
    assert!(!alive(*pid), "the VMM was killed");
    // The sidecar was started first; it must be gone too.
    let ours = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| alive(*p))
        .filter(|p| std::fs::read_link(format!("/proc/{p}/cwd")).ok().as_deref() == Some(d))
        .count();
    assert_eq!(ours, 0, "no process left in the test dir");
}

#[tokio::test]
async fn a_missing_binary_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut p = process(d, "vmm", "", Vec::new());
    p.argv = vec!["/nonexistent/firecracker".into()];
    let plan = LaunchPlan {
        processes: vec![p],
        ..LaunchPlan::default()
    };
    let err = execute_plan(&plan, &ExecuteOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot start vmm (/nonexistent/firecracker)"),
        "{err}"
    );
}
