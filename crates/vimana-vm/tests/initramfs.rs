//! The initramfs booted for real: the Debian cloud kernel (fetched by
//! scripts/vm-test-assets.sh) under `qemu-system-x86_64 -M microvm` with
//! TCG. Without the kernel, QEMU or busybox the tests print why and pass,
//! unless `CI` is set, where they fail.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vimana_testkit::VmAssets as Assets;
use vimana_vm::initramfs::{
    self, DEFAULT_MODULES, InitramfsSpec, MODULE_FAILED_PREFIX, MODULES_OK_MARKER, READY_MARKER,
};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const QEMU: &str = "qemu-system-x86_64";
const BUSYBOX: &str = "/bin/busybox";

/// One guest at a time: TCG is CPU-bound, and parallel guests on a small
/// machine would blur the boot times and approach the timeout.
static VM_SLOT: Mutex<()> = Mutex::new(());

fn vm_slot() -> MutexGuard<'static, ()> {
    VM_SLOT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// QEMU, busybox and the kernel (skips with the reason, fails under `CI`).
fn assets() -> Option<Assets> {
    if !vimana_testkit::runs(QEMU) {
        return vimana_testkit::unavailable(format!(
            "{QEMU} missing (apt-get install qemu-system-x86)"
        ));
    }
    if !Path::new(BUSYBOX).exists() {
        return vimana_testkit::unavailable(format!(
            "{BUSYBOX} missing (apt-get install busybox-static)"
        ));
    }
    vimana_testkit::require(vimana_testkit::vm_assets())
}

/// The host TSC rate in kHz for `tsc_early_khz=` (TCG calibration hangs
/// now and then without it).
fn host_khz() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0).round() as u64)
}

/// A running QEMU whose serial console arrives line by line.
struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    console: Vec<String>,
    started: Instant,
}

impl Vm {
    fn boot(kernel: &Path, initrd: &Path, append: &str, devices: &[&str]) -> Vm {
        let mut cmdline = format!("console=ttyS0 panic=-1 {append}");
        if let Some(khz) = host_khz() {
            cmdline.push_str(&format!(" tsc_early_khz={khz}"));
        }
        let mut cmd = Command::new(QEMU);
        cmd.args(["-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "256"])
            .args(["-smp", "1", "-nodefaults", "-no-user-config", "-nographic"])
            .args(["-no-reboot", "-serial", "stdio", "-kernel"])
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", &cmdline])
            .args(devices)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {QEMU}: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("{QEMU} has no stdout pipe");
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Vm {
            stdin: child.stdin.take(),
            child,
            lines,
            console: Vec::new(),
            started,
        }
    }

    /// Waits for a console line containing one of `needles`; returns it and
    /// the time since QEMU was spawned, or `None` on timeout / QEMU exit.
    fn wait_for(&mut self, needles: &[&str], timeout: Duration) -> Option<(String, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.console.push(line.clone());
                    if needles.iter().any(|n| line.contains(n)) {
                        return Some((line, self.started.elapsed()));
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn send(&mut self, text: &str) {
        let Some(stdin) = self.stdin.as_mut() else {
            panic!("{QEMU} has no stdin pipe");
        };
        if let Err(e) = stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
        {
            panic!("cannot write to the guest console: {e}");
        }
    }

    fn tail(&self) -> String {
        let from = self.console.len().saturating_sub(40);
        self.console[from..].join("\n")
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn boots_to_a_shell_with_the_default_modules_loaded() {
    let Some(assets) = assets() else { return };
    let _slot = vm_slot();
    let dir = tempfile::tempdir().unwrap();
    let spec = InitramfsSpec::new(BUSYBOX).with_default_modules(&assets.modules);
    let built = initramfs::build(&spec, &dir.path().join("initrd.gz")).unwrap();
    let names: Vec<&str> = built.modules.iter().map(|m| m.name.as_str()).collect();
    eprintln!(
        "initramfs {} bytes, modules in load order: {names:?}",
        built.size
    );

    let disk = dir.path().join("disk.raw");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("if=none,id=d0,format=raw,file={}", disk.display());
    let devices = [
        "-drive",
        &drive,
        "-device",
        "virtio-blk-device,drive=d0",
        "-netdev",
        "user,id=n0",
        "-device",
        "virtio-net-device,netdev=n0",
        "-device",
        "virtio-serial-device",
    ];
    let mut vm = Vm::boot(&assets.kernel, &built.path, "quiet", &devices);
    let wanted = [READY_MARKER, MODULES_OK_MARKER, MODULE_FAILED_PREFIX];
    let mut modules_ok = false;
    let ready = loop {
        let Some((line, at)) = vm.wait_for(&wanted, BOOT_TIMEOUT) else {
            panic!(
                "no `{READY_MARKER}` within {BOOT_TIMEOUT:?}; console:\n{}",
                vm.tail()
            );
        };
        assert!(
            !line.contains(MODULE_FAILED_PREFIX),
            "{line}\nconsole:\n{}",
            vm.tail()
        );
        modules_ok |= line.contains(MODULES_OK_MARKER);
        if line.contains(READY_MARKER) {
            break at;
        }
    };
    eprintln!("boot time (QEMU spawn -> `{READY_MARKER}`): {ready:?}");
    assert!(
        modules_ok,
        "no `{MODULES_OK_MARKER}`; console:\n{}",
        vm.tail()
    );

    // Ask the console shell what is loaded and which virtio devices probed.
    // The end marker is computed so the echoed command line cannot match.
    vm.send(
        "cut -d' ' -f1 /proc/modules; ls /sys/block /sys/class/net; echo vimana-test-$((40+2))\n",
    );
    let Some(_) = vm.wait_for(&["vimana-test-42"], Duration::from_secs(30)) else {
        panic!("the console shell did not answer; console:\n{}", vm.tail());
    };
    for name in DEFAULT_MODULES
        .iter()
        .chain(&["virtio", "virtio_ring", "vsock"])
    {
        assert!(
            vm.console.iter().any(|l| l.trim() == *name),
            "{name} not in /proc/modules; console:\n{}",
            vm.tail()
        );
    }
    let words: Vec<&str> = vm
        .console
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert!(
        words.contains(&"vda"),
        "virtio-blk disk not probed:\n{}",
        vm.tail()
    );
    assert!(
        words.contains(&"eth0"),
        "virtio-net not probed:\n{}",
        vm.tail()
    );
}

#[test]
fn corrupt_initramfs_panics_the_kernel() {
    let Some(assets) = assets() else { return };
    let _slot = vm_slot();
    let dir = tempfile::tempdir().unwrap();
    let spec = InitramfsSpec::new(BUSYBOX).with_default_modules(&assets.modules);
    let good = initramfs::build(&spec, &dir.path().join("good.gz")).unwrap();
    // Truncated gzip: the kernel cannot unpack even busybox, so no /init.
    let bytes = std::fs::read(&good.path).unwrap();
    let bad = dir.path().join("bad.gz");
    std::fs::write(&bad, &bytes[..bytes.len().min(64 * 1024)]).unwrap();

    let mut vm = Vm::boot(&assets.kernel, &bad, "quiet", &[]);
    let panic_lines = [
        "Kernel panic",
        "VFS: Unable to mount root fs",
        "Initramfs unpacking failed",
        READY_MARKER,
    ];
    let Some((line, at)) = vm.wait_for(&panic_lines, BOOT_TIMEOUT) else {
        panic!(
            "no panic line within {BOOT_TIMEOUT:?}; console:\n{}",
            vm.tail()
        );
    };
    assert!(
        !line.contains(READY_MARKER),
        "a corrupt initramfs booted:\n{}",
        vm.tail()
    );
    eprintln!("corrupt initramfs reported after {at:?}: {line}");
    // panic=-1 + -no-reboot: QEMU exits by itself.
    let _ = vm.wait_for(&[READY_MARKER], BOOT_TIMEOUT);
    let status = vm.child.wait().unwrap();
    eprintln!("QEMU exited ({status}); console tail:\n{}", vm.tail());
    assert!(!vm.console.iter().any(|l| l.contains(READY_MARKER)));
    assert!(
        vm.console.iter().any(|l| l.contains("Kernel panic")),
        "{}",
        vm.tail()
    );
}

#[test]
fn builds_are_deterministic_and_cached() {
    let Some(assets) = assets() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = InitramfsSpec::new(BUSYBOX).with_default_modules(&assets.modules);
    let a = initramfs::build(&spec, &dir.path().join("a.gz")).unwrap();
    let b = initramfs::build(&spec, &dir.path().join("b.gz")).unwrap();
    assert_eq!(a.key, b.key);
    assert_eq!(
        std::fs::read(&a.path).unwrap(),
        std::fs::read(&b.path).unwrap()
    );

    let cache = dir.path().join("cache");
    let first = initramfs::build_cached(&spec, &cache).unwrap();
    assert!(!first.reused);
    assert_eq!(first.key, a.key);
    assert_eq!(
        std::fs::read(&first.path).unwrap(),
        std::fs::read(&a.path).unwrap()
    );
    let mtime = std::fs::metadata(&first.path).unwrap().modified().unwrap();
    let second = initramfs::build_cached(&spec, &cache).unwrap();
    assert!(second.reused, "rebuilt instead of reusing");
    assert_eq!(second.path, first.path);
    assert_eq!(
        std::fs::metadata(&second.path).unwrap().modified().unwrap(),
        mtime
    );
    // Only the archive is in the cache: no temporary files left behind.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);

    // A different input (the agent) is a different key and file.
    let mut with_agent = spec.clone();
    with_agent.agent = Some(PathBuf::from(BUSYBOX));
    let third = initramfs::build_cached(&with_agent, &cache).unwrap();
    assert!(!third.reused);
    assert_ne!(third.path, first.path);
}

#[test]
fn execs_the_agent_and_traces_with_vimana_debug() {
    let Some(assets) = assets() else { return };
    let _slot = vm_slot();
    let dir = tempfile::tempdir().unwrap();
    // A stand-in agent: shows its arguments, then powers the guest off.
    let agent = dir.path().join("agent");
    std::fs::write(
        &agent,
        "#!/bin/sh\necho \"fake-agent: pid $$ args $*\"\npoweroff -f\n",
    )
    .unwrap();
    let mut spec = InitramfsSpec::new(BUSYBOX).with_default_modules(&assets.modules);
    spec.agent = Some(agent);
    let built = initramfs::build(&spec, &dir.path().join("initrd.gz")).unwrap();

    let mut vm = Vm::boot(&assets.kernel, &built.path, "quiet vimana.debug=1", &[]);
    let Some((line, at)) = vm.wait_for(&["fake-agent:", READY_MARKER], BOOT_TIMEOUT) else {
        panic!("the agent did not start; console:\n{}", vm.tail());
    };
    eprintln!("agent started after {at:?}");
    assert_eq!(
        line.trim(),
        "fake-agent: pid 1 args --init",
        "{}",
        vm.tail()
    );
    assert!(
        vm.console
            .iter()
            .any(|l| l.starts_with("+ ") && l.contains("insmod")),
        "vimana.debug=1 did not trace /init:\n{}",
        vm.tail()
    );
    assert!(vm.console.iter().any(|l| l.contains(MODULES_OK_MARKER)));
    let status = vm.child.wait().unwrap();
    eprintln!("QEMU exited after the agent's poweroff ({status})");
}
