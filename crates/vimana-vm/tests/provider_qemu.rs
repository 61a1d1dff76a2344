//! Boots a real QEMU microVM (TCG) through the provider seam: plan →
//! `execute_plan` → QMP status → console log and console socket (both ways)
//! → `system_powerdown` → `quit`. With `vhost-device-vsock` installed the
//! sidecar is started per the plan and its hybrid socket must appear.
//!
//! Needs `qemu-system-x86_64` and the kernel of `scripts/vm-test-assets.sh`
//! (through `vimana_testkit::vm_assets`). Without them the test is skipped,
//! unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vimana_vm::provider::{
    Accel, ExecuteOptions, HostFacts, LaunchSpec, NetSpec, Qemu, Spawned, Vmm, VmmStatus,
    VsockSpec, execute_plan, host_tsc_khz, qmp::Qmp, vsock,
};

const READY: &str = "vimana-provider-test-ready";

/// An initramfs whose /init prints READY, ticks in the background and runs
/// a shell on the console. `None` when no static busybox or cpio is here.
fn build_initramfs(dir: &Path) -> Option<PathBuf> {
    let busybox = std::fs::read("/usr/bin/busybox")
        .or_else(|_| std::fs::read("/bin/busybox"))
        .ok()?;
    if !is_static_elf(&busybox) {
        eprintln!("busybox is dynamically linked; booting without an initramfs");
        return None;
    }
    let root = dir.join("initramfs");
    for sub in ["bin", "dev", "proc"] {
        std::fs::create_dir_all(root.join(sub)).ok()?;
    }
    std::fs::write(root.join("bin/busybox"), busybox).ok()?;
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t devtmpfs dev /dev 2>/dev/null\n\
         exec </dev/console >/dev/console 2>&1\n\
         echo {READY}\n\
         (n=0; while true; do n=$((n+1)); echo tick $n; /bin/busybox sleep 1; done) &\n\
         exec /bin/busybox sh\n"
    );
    std::fs::write(root.join("init"), init).ok()?;
    let out = dir.join("initramfs.cpio.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg("chmod 755 bin/busybox init && find . | cpio -o -H newc --quiet | gzip > \"$0\"")
        .arg(&out)
        .current_dir(&root)
        .status()
        .ok()?;
    status.success().then_some(out)
}

/// An ELF64 executable without a PT_INTERP program header.
fn is_static_elf(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    };
    if !elf.starts_with(b"\x7fELF") || elf.get(4) != Some(&2) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        elf.get(at..at + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// Kills whatever the test started, even when an assertion fails.
struct Guard(Vec<Spawned>);

impl Drop for Guard {
    fn drop(&mut self) {
        for s in &mut self.0 {
            let _ = s.child.start_kill();
        }
    }
}

async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_microvm_boots_and_answers_qmp_console_and_powerdown() {
    let host = HostFacts::from_env(Err("not needed: TCG".into()));
    let Some(qemu_bin) = host.find(Path::new("qemu-system-x86_64")) else {
        vimana_testkit::unavailable::<()>("qemu-system-x86_64 is not installed");
        return;
    };
    let Some(assets) = vimana_testkit::require(vimana_testkit::vm_assets()) else {
        return;
    };
    let kernel = assets.kernel;
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let initrd = build_initramfs(tmp.path());
    let khz = host_tsc_khz().expect("the host's TSC frequency");
    // Without an initramfs the kernel panics at mounting root: panic=0
    // keeps it halted (still "running" for QMP) instead of rebooting.
    let panic = if initrd.is_some() { "-1" } else { "0" };
    let vsock_bin = host.find(Path::new(vsock::SIDECAR_BINARY));
    if vsock_bin.is_none() {
        eprintln!("vhost-device-vsock is not installed: skipping the vsock sidecar part");
    }
    let spec = LaunchSpec {
        id: "provider-test".into(),
        run_dir: run_dir.clone(),
        cpus: 1,
        memory_mib: 256,
        kernel,
        initrd: initrd.clone(),
        root_drive: None,
        extra_drives: Vec::new(),
        cmdline: format!("console=ttyS0 panic={panic} tsc_early_khz={khz} rdinit=/init"),
        net: NetSpec::None,
        vsock: vsock_bin.as_ref().map(|_| VsockSpec {
            guest_cid: 3,
            uds_path: run_dir.join("vsock.sock"),
        }),
        console_log: run_dir.join("console.log"),
        console_socket: run_dir.join("console.sock"),
        accel: Accel::Tcg,
    };
    let qemu = Qemu {
        binary: qemu_bin,
        vsock_binary: vsock_bin.clone().unwrap_or_default(),
    };
    let plan = qemu.plan(&spec).unwrap();
    let opts = ExecuteOptions {
        socket_timeout: Duration::from_secs(20),
        ..ExecuteOptions::default()
    };
    let mut guard = Guard(execute_plan(&plan, &opts).await.unwrap());
    assert_eq!(guard.0.len(), if vsock_bin.is_some() { 2 } else { 1 });

    // Attach to the console before the guest prints much. An attached
    // client must keep reading: QEMU's serial writes byte by byte and a
    // full socket buffer stalls the guest's console (and the guest).
    let console = UnixStream::connect(&spec.console_socket).await.unwrap();
    let (mut console_rx, mut console_tx) = console.into_split();
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match console_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        })
    };

    if let Some(v) = &spec.vsock {
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(&v.uds_path).unwrap();
        assert!(meta.file_type().is_socket(), "hybrid vsock socket exists");
        // No guest listener (vsock is a module this initramfs lacks): the
        // handshake must fail or time out, not hang.
        let r = vsock::connect(&v.uds_path, 1234, Duration::from_secs(2)).await;
        assert!(r.is_err(), "nothing listens in the guest");
    }

    let log = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let marker = if initrd.is_some() {
        READY
    } else {
        "Linux version"
    };
    {
        let vmm = guard.0.last_mut().unwrap();
        let stderr = run_dir.join("qemu.stderr");
        let start = Instant::now();
        while !log(&spec.console_log).contains(marker) {
            if let Ok(Some(status)) = vmm.child.try_wait() {
                panic!("qemu {status}: {}", log(&stderr));
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no {marker:?} in the console log:\n{}",
                log(&spec.console_log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let boot_log = log(&spec.console_log);
    assert!(boot_log.contains("Linux version"), "{boot_log}");

    assert_eq!(qemu.status(&spec).await.unwrap(), VmmStatus::Running);
    let qmp_socket = Qemu::qmp_socket(&spec);
    let mut qmp = Qmp::connect(&qmp_socket, Duration::from_secs(5))
        .await
        .unwrap();
    let status = qmp.query_status().await.unwrap();
    assert!(status.running, "{status:?}");
    // QEMU serves one QMP client at a time: let go before the next call.
    drop(qmp);

    // The console socket receives what the guest prints, and (with the
    // initramfs shell) what we type reaches the guest.
    let want = if initrd.is_some() {
        "attach-42"
    } else {
        "Kernel panic"
    };
    if initrd.is_some() {
        console_tx
            .write_all(b"echo attach-$((6*7))\n")
            .await
            .unwrap();
    }
    let got = || String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
    wait_until(
        "the console socket to show the guest's answer",
        Duration::from_secs(60),
        || got().contains(want),
    )
    .await;
    assert!(
        got().contains(if initrd.is_some() { "tick" } else { "VFS" }),
        "{}",
        got()
    );
    wait_until(
        "the console log to record the attach",
        Duration::from_secs(10),
        || log(&spec.console_log).contains(want),
    )
    .await;

    // Graceful stop request is accepted (this guest has no ACPI button
    // handler, so it keeps running); `quit` then ends QEMU.
    qemu.request_shutdown(&spec).await.unwrap();
    let mut qmp = Qmp::connect(&qmp_socket, Duration::from_secs(5))
        .await
        .unwrap();
    qmp.quit().await.unwrap();
    let vmm = guard.0.last_mut().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), vmm.child.wait())
        .await
        .expect("qemu exits after quit")
        .unwrap();
    assert!(status.success(), "qemu {status}");
    let err = qemu.status(&spec).await.unwrap_err().to_string();
    assert!(err.contains("qmp.sock"), "{err}");
    // QEMU closed the console socket on exit.
    tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("console reader ends with QEMU")
        .unwrap();

    // The sidecar outlives QEMU; the driver stops it.
    if vsock_bin.is_some() {
        let sidecar = &mut guard.0[0];
        assert_eq!(sidecar.name, "vhost-device-vsock");
        sidecar.child.start_kill().unwrap();
        sidecar.child.wait().await.unwrap();
    }
}
