//! The `vm` driver with real parts: QEMU (TCG here), the Debian cloud
//! kernel (scripts/vm-test-assets.sh), a vimana-built initramfs, the static
//! agent (scripts/build-agent.sh) and vhost-device-vsock. Boot until the
//! agent answers, run `uname -r` through it, re-adopt the VM as a new daemon
//! would, stop it cleanly; and the boot faults (kernel missing, corrupt
//! initramfs, an agent that never answers, the VMM killed from outside).
//!
//! Skips with a printed reason when a part is missing, unless `CI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

use vimana_agent::AGENT_PORT;
use vimana_agent::client::AgentClient;
use vimana_api::{VmSpec, WorkloadName, WorkloadSpec};
use vimana_core::{Driver, Exit, LogBook, RunContext};
use vimana_vm::driver::{VmDriver, VmDriverConfig};
use vimana_vm::{NetworkMode, PortForward, Protocol, RootFs, VmConfig};

#[path = "support/oci.rs"]
mod oci;

/// One guest at a time: TCG is CPU-bound on this small machine.
static VM_SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Parts {
    kernel: PathBuf,
    release: String,
    agent: PathBuf,
}

/// QEMU, vhost-device-vsock, the kernel and the static agent, through the
/// shared test kit (skips with the reason, fails under `CI`).
fn parts() -> Option<Parts> {
    vimana_testkit::require(vimana_testkit::vm_prerequisites())?;
    let assets = vimana_testkit::require(vimana_testkit::vm_assets())?;
    let agent = vimana_testkit::require(vimana_testkit::static_agent())?;
    Some(Parts {
        release: assets.release(),
        kernel: assets.kernel,
        agent,
    })
}

struct Rig {
    _tmp: tempfile::TempDir,
    book: LogBook,
    driver: VmDriver,
    state_dir: PathBuf,
    logs: PathBuf,
}

impl Rig {
    fn new(parts: &Parts, ready_timeout: Duration) -> Rig {
        Self::configured(parts, ready_timeout, |_| {})
    }

    fn configured(
        parts: &Parts,
        ready_timeout: Duration,
        adjust: impl FnOnce(&mut VmDriverConfig),
    ) -> Rig {
        // Short paths: unix socket addresses hold 107 bytes.
        let tmp = tempfile::Builder::new()
            .prefix("vmt")
            .tempdir_in("/tmp")
            .unwrap();
        let mut cfg = VmDriverConfig::under(tmp.path());
        cfg.agent = Some(parts.agent.clone());
        cfg.default_kernel = Some(parts.kernel.clone());
        cfg.ready_timeout = ready_timeout;
        cfg.stop_timeout = Duration::from_secs(15);
        cfg.force_tcg = Some("tests run under TCG".into());
        adjust(&mut cfg);
        let state_dir = cfg.state_dir.clone();
        let logs = tmp.path().join("logs");
        let book = LogBook::new(&logs, Default::default()).unwrap();
        Rig {
            _tmp: tmp,
            book,
            driver: VmDriver::new(cfg),
            state_dir,
            logs,
        }
    }

    fn ctx(&self, name: &str, config: &VmConfig, adopt: Option<serde_json::Value>) -> RunContext {
        let name = WorkloadName::new(name).unwrap();
        RunContext {
            spec: WorkloadSpec::Vm(Box::new(VmSpec {
                config: serde_json::to_value(config).unwrap(),
                source: None,
            })),
            first_start: adopt.is_none(),
            adopt_only: adopt.is_some(),
            adopt,
            logs: self.book.sink(&name),
            recorder: Default::default(),
            log_dir: self.logs.clone(),
            name,
        }
    }

    /// The VM's log lines (daemon and console), oldest first.
    fn log_lines(&self, name: &str) -> Vec<String> {
        self.book
            .read(&WorkloadName::new(name).unwrap(), None)
            .into_iter()
            .map(|r| r.message)
            .collect()
    }

    fn agent(&self, name: &str) -> AgentClient {
        AgentClient::hybrid_unix(self.state_dir.join(name).join("vsock.sock"), AGENT_PORT)
    }
}

fn config() -> VmConfig {
    VmConfig {
        provider: None,
        cpus: 1,
        memory_mib: 256,
        disk_bytes: None,
        kernel: None,
        modules: None,
        cmdline_extra: Vec::new(),
        root: RootFs::Initramfs,
        network: Default::default(),
        volumes: Vec::new(),
        spacecore: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_execs_readopts_and_stops() {
    let Some(parts) = parts() else { return };
    let _slot = VM_SLOT.lock().await;
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let started = Instant::now();
    let vm = rig
        .driver
        .run(rig.ctx("vm-one", &config(), None))
        .await
        .unwrap_or_else(|e| panic!("boot failed: {e}"));
    eprintln!("spawn → agent ready: {:?}", started.elapsed());

    // exec through the agent: the guest's kernel, not the host's.
    let out = rig
        .agent("vm-one")
        .exec_collect(["uname", "-r"], Duration::from_secs(30))
        .await
        .unwrap();
    assert!(out.exit.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        parts.release.clone()
    );
    let detail = vm.probe().await.unwrap();
    assert!(
        detail.contains("qemu") && detail.contains("tcg"),
        "{detail}"
    );

    // A new daemon re-adopts the VM from its handle; the old one lets go.
    let handle = vm.handle();
    let pid = vm.pid().unwrap();
    drop(vm);
    let again = rig
        .driver
        .run(rig.ctx("vm-one", &config(), Some(handle)))
        .await
        .unwrap();
    assert!(again.adopted());
    assert_eq!(again.pid(), Some(pid));
    let out = rig
        .agent("vm-one")
        .exec_collect(
            ["sh", "-c", "echo adopted; exit 7"],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "adopted");
    assert_eq!(out.exit.code, Some(7));

    // Stop: the agent powers the guest off; QEMU exits by itself.
    let t = Instant::now();
    again.stop().await.unwrap();
    assert!(!vimana_goplugin::pid_alive(pid, None), "QEMU still runs");
    eprintln!("stop took {:?}", t.elapsed());
    let daemon_lines: Vec<String> = rig.log_lines("vm-one");
    assert!(
        daemon_lines
            .iter()
            .any(|l| l.contains("asked the guest agent to power off")),
        "{daemon_lines:#?}"
    );
    // The agent announced itself through vhost-device-vsock (guest-initiated
    // connection to `vsock.sock_1025`); the polling fallback was not needed.
    assert!(
        daemon_lines
            .iter()
            .any(|l| l.contains("guest agent ready: announced itself over vsock")),
        "{daemon_lines:#?}"
    );
    assert!(
        !daemon_lines
            .iter()
            .any(|l| l.contains("terminating the VMM")),
        "the guest did not power off by itself: {daemon_lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_faults_are_reported_with_the_console_tail() {
    let Some(parts) = parts() else { return };
    let _slot = VM_SLOT.lock().await;

    // Kernel missing: refused before anything starts.
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let mut c = config();
    c.kernel = Some(PathBuf::from("/nonexistent/vmlinuz"));
    let e = rig
        .driver
        .run(rig.ctx("vm-nokernel", &c, None))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("/nonexistent/vmlinuz"), "{e}");

    // An agent that never answers: `init=` a shell instead of the agent's
    // /init, so the guest boots but nothing listens on vsock.
    let rig = Rig::new(&parts, Duration::from_secs(25));
    let mut c = config();
    c.cmdline_extra = vec!["rdinit=/bin/sh".into()];
    let t = Instant::now();
    let e = rig
        .driver
        .run(rig.ctx("vm-mute", &c, None))
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(msg.contains("did not answer within 25s"), "{msg}");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    assert_no_qemu_for(&rig.state_dir);

    // A corrupt initramfs (a truncated archive in the cache): the kernel
    // panics, QEMU exits, and the error quotes the console.
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let cfg = {
        let mut c = VmDriverConfig::under(rig._tmp.path());
        c.agent = Some(parts.agent.clone());
        c
    };
    let archive =
        vimana_vm::driver::prepare::initramfs_for(&config(), &parts.kernel, &cfg).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len().min(64 * 1024)]).unwrap();
    let e = rig
        .driver
        .run(rig.ctx("vm-corrupt", &config(), None))
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(msg.contains("stopped while booting"), "{msg}");
    assert!(
        msg.contains("Kernel panic") || msg.contains("Initramfs unpacking failed"),
        "{msg}"
    );
    assert_no_qemu_for(&rig.state_dir);

    // The VMM killed from outside: the exit names it and quotes the console.
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let vm = rig
        .driver
        .run(rig.ctx("vm-victim", &config(), None))
        .await
        .unwrap();
    let pid = vm.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), vm.exited())
        .await
        .unwrap();
    assert_eq!(exit, Exit::Signal(9));
    let why = vm.describe_exit(exit);
    assert!(why.contains("qemu") && why.contains("signal 9"), "{why}");
    assert!(why.contains("last console lines"), "{why}");
    vm.kill();
}

/// No QEMU process runs with a socket under `dir` (a failed boot cleans up).
fn assert_no_qemu_for(dir: &Path) {
    let needle = dir.to_string_lossy().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&needle) && !c.contains("driver_qemu"))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left running: {left:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes the network namespace when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Bridge mode in a network namespace made for the test: the inner test
/// (below) runs in it through `ip netns exec`, so the bridge, the TAP and
/// QEMU all live there and the host's own network is never touched.
#[test]
fn bridge_networking_in_a_private_netns() {
    if parts().is_none() {
        return;
    }
    let ns = format!("vmb-{}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &ns]).status();
    if !made.is_ok_and(|s| s.success()) {
        vimana_testkit::unavailable::<()>(format!(
            "cannot create network namespace {ns} (root needed)"
        ));
        return;
    }
    let _guard = Netns(ns.clone());
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(["--exact", "bridge_inner", "--ignored", "--nocapture"])
        .env("VIMANA_BRIDGE_INNER", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner test failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by bridge_networking_in_a_private_netns inside its namespace"]
async fn bridge_inner() {
    if std::env::var_os("VIMANA_BRIDGE_INNER").is_none() {
        return;
    }
    let Some(parts) = parts() else { return };
    // Loopback is down in a fresh namespace.
    let _ = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let mut c = config();
    c.network.mode = vimana_vm::NetworkMode::Bridge;
    c.network.forwards = vec![PortForward {
        host: 18080,
        guest: 8080,
        protocol: Protocol::Tcp,
    }];
    let vm = rig
        .driver
        .run(rig.ctx("vm-net", &c, None))
        .await
        .unwrap_or_else(|e| panic!("boot failed: {e}"));
    let handle: vimana_vm::driver::VmHandle = serde_json::from_value(vm.handle()).unwrap();
    let lease = handle.net.clone().expect("a TAP lease in the handle");
    assert_eq!(lease.address.to_string(), "10.88.0.2");

    // The bridge and the VM's TAP on it.
    let link = |name: &str| {
        Command::new("ip")
            .args(["-d", "link", "show", name])
            .output()
            .map(|o| {
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stdout).to_string(),
                )
            })
            .unwrap()
    };
    let (ok, tap) = link(&lease.tap);
    assert!(ok && tap.contains("master vimana0"), "{tap}");

    // The guest configured eth0 from the command line and reaches the host.
    let agent = rig.agent("vm-net");
    let out = agent
        .exec_collect(
            ["ip", "-4", "addr", "show", "eth0"],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let addr = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(addr.contains("10.88.0.2/24"), "{addr}");
    let out = agent
        .exec_collect(
            ["busybox", "ping", "-c", "1", "-W", "5", "10.88.0.1"],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(
        out.exit.success(),
        "guest cannot reach the bridge: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The host port forward (nftables DNAT) reaches a web server in the
    // guest, from loopback and from the bridge address.
    serve_page(&agent, "hello-over-the-bridge").await;
    for host in ["127.0.0.1", "10.88.0.1"] {
        let body = http_get(host, 18080).await;
        assert!(body.contains("hello-over-the-bridge"), "via {host}: {body}");
    }
    let table = vimana_vm::network::forward_table(&lease.tap);
    let listed = |t: &str| {
        Command::new("nft")
            .args(["list", "table", "ip", t])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    assert!(listed(&table), "no nftables table {table}");

    // A guest that routes 127.0.0.0/8 to the bridge (and accepts loopback
    // sources) does not reach a listener on the host's 127.0.0.1.
    let secret = loopback_secret();
    let probe = format!(
        "ip addr flush dev lo; ip route add 127.0.0.0/8 via 10.88.0.1 dev eth0; \
         echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet; \
         echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; \
         busybox nc -w 3 127.0.0.1 {secret} < /dev/null; true"
    );
    let got = stdout_of(&agent, &["sh", "-c", probe.as_str()]).await;
    assert!(
        !got.contains(SECRET),
        "the guest reached the host's 127.0.0.1:{secret}: {got:?}"
    );

    // Stop releases the TAP, the address and the forward.
    vm.stop().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while link(&lease.tap).0 {
        assert!(Instant::now() < deadline, "{} still exists", lease.tap);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leases = std::fs::read_to_string(rig.state_dir.join("net/leases.json")).unwrap_or_default();
    assert!(!leases.contains("vm-net"), "{leases}");
    assert!(!listed(&table), "{table} left behind");
    let claims =
        std::fs::read_to_string(rig.state_dir.join("net/forwards.json")).unwrap_or_default();
    assert!(!claims.contains("vm-net"), "{claims}");
}

/// What [`loopback_secret`] answers.
const SECRET: &str = "host-loopback-only";

/// A listener on the host's 127.0.0.1 that greets every connection with
/// [`SECRET`]; its port. Guests must never read it.
fn loopback_secret() -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(SECRET.as_bytes());
        }
    });
    port
}

/// Starts busybox `httpd` on port 8080 in the guest, serving `text` as
/// `/index.html`.
async fn serve_page(agent: &AgentClient, text: &str) {
    let script = format!(
        "mkdir -p /tmp/www && echo {text} > /tmp/www/index.html && busybox httpd -p 8080 -h /tmp/www"
    );
    let out = agent
        .exec_collect(["sh", "-c", script.as_str()], Duration::from_secs(30))
        .await
        .unwrap();
    assert!(out.exit.success(), "httpd did not start: {out:?}");
}

/// The stdout of `argv` run in the guest (which must succeed).
async fn stdout_of(agent: &AgentClient, argv: &[&str]) -> String {
    let out = agent
        .exec_collect(argv.to_vec(), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(out.exit.success(), "{argv:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET /index.html` from `host:port`, retried for up to 30 s; the whole
/// response.
async fn http_get(host: &'static str, port: u16) -> String {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = std::net::TcpStream::connect((host, port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                Ok(text)
            });
            match got {
                Ok(text) if text.contains(" 200 ") => return text,
                other if Instant::now() > deadline => {
                    panic!("no answer from {host}:{port}: {other:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    })
    .await
    .unwrap()
}

/// A `drive` root: vimana's initramfs mounts the ext4 disk, brings its
/// agent along (the disk has none) and switches to it; a volume image is
/// mounted read-only at its target by the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_from_a_drive_without_an_agent_on_it() {
    let Some(parts) = parts() else { return };
    if Command::new("mkfs.ext4").arg("-V").output().is_err() {
        vimana_testkit::unavailable::<()>("mkfs.ext4 missing (apt-get install e2fsprogs)");
        return;
    }
    let _slot = VM_SLOT.lock().await;
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let tree = rig._tmp.path().join("tree");
    for d in ["bin", "etc", "dev", "proc", "sys", "tmp"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "uname", "mount"] {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).unwrap();
    }
    std::fs::write(tree.join("etc/marker"), "from the drive\n").unwrap();
    let image = rig._tmp.path().join("root.ext4");
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("64M")
        .status()
        .unwrap();
    assert!(made.success());

    // A volume: a second ext4 image, mounted read-only at /data by the agent.
    let data = rig._tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("marker"), "from the volume\n").unwrap();
    let volume = rig._tmp.path().join("data.ext4");
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&data)
        .arg(&volume)
        .arg("16M")
        .status()
        .unwrap();
    assert!(made.success());

    let mut c = config();
    c.root = RootFs::Drive { path: image };
    c.volumes = vec![vimana_vm::Volume {
        source: volume,
        target: "/data".into(),
        read_only: true,
    }];
    let vm = rig
        .driver
        .run(rig.ctx("vm-drive", &c, None))
        .await
        .unwrap_or_else(|e| panic!("boot failed: {e}"));
    let agent = rig.agent("vm-drive");
    // Root and volume found by their virtio-blk serials.
    assert_eq!(
        stdout_of(&agent, &["cat", "/etc/marker"]).await,
        "from the drive\n"
    );
    assert_eq!(
        stdout_of(&agent, &["cat", "/data/marker"]).await,
        "from the volume\n"
    );
    let mounts = stdout_of(&agent, &["cat", "/proc/mounts"]).await;
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /data ext4 ro,") || l.contains(" /data ext4 ro ")),
        "{mounts}"
    );
    vm.stop().await.unwrap();
}

/// An OCI image `ref`: pulled from a real docker-registry on loopback, its
/// layers applied (a file replaced, one whited out), turned into an ext4
/// disk with the agent injected, and booted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_from_a_registry_image() {
    let Some(parts) = parts() else { return };
    if !Path::new(oci::REGISTRY_BIN).exists() || oci::tool("mkfs.ext4").is_none() {
        vimana_testkit::unavailable::<()>(
            "docker-registry or mkfs.ext4 missing (apt-get install docker-registry e2fsprogs)",
        );
        return;
    }
    let registry = oci::Registry::start();
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let mut base = oci::LayerBuilder::new()
        .dir("bin")
        .file("bin/busybox", 0o755, &busybox);
    for applet in ["sh", "cat", "ls"] {
        base = base.link(tar::EntryType::Symlink, &format!("bin/{applet}"), "busybox");
    }
    let base = base
        .dir("etc")
        .file("etc/marker", 0o644, b"from the base layer\n")
        .file("etc/gone", 0o644, b"whited out\n");
    let top = oci::LayerBuilder::new()
        .dir("etc")
        .file("etc/marker", 0o644, b"from the top layer\n")
        .file("etc/.wh.gone", 0o644, b"");
    let reference = format!("{}/vimana-test/vm-root:1", registry.addr);
    oci::push_image(&reference, vec![base.gzip(), top.gzip()]).await;

    let _slot = VM_SLOT.lock().await;
    let addr = registry.addr.clone();
    let rig = Rig::configured(&parts, Duration::from_secs(120), |cfg| {
        cfg.insecure_registries = vec![addr];
    });
    let mut c = config();
    c.root = RootFs::Image {
        reference: reference.clone(),
    };
    let vm = rig
        .driver
        .run(rig.ctx("vm-image", &c, None))
        .await
        .unwrap_or_else(|e| panic!("boot failed: {e}"));
    let agent = rig.agent("vm-image");
    assert_eq!(
        stdout_of(&agent, &["cat", "/etc/marker"]).await,
        "from the top layer\n"
    );
    let etc = stdout_of(&agent, &["ls", "/etc"]).await;
    assert!(!etc.contains("gone"), "the whiteout was not applied: {etc}");
    let mounts = stdout_of(&agent, &["cat", "/proc/mounts"]).await;
    assert!(
        mounts.lines().any(|l| l.starts_with("/dev/vda / ext4")),
        "the root is not the image's disk: {mounts}"
    );
    let lines: Vec<String> = rig.log_lines("vm-image");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("root filesystem from {reference}"))),
        "{lines:#?}"
    );
    vm.stop().await.unwrap();
}

/// `user` networking: QEMU's slirp with a port forward. The guest sets up
/// eth0 for slirp from the command line, and a connection to the host's
/// loopback port reaches a web server inside the guest; the guest cannot
/// reach the host's loopback through slirp's 10.0.2.2 (`restrict=on`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_networking_forwards_a_host_port_into_the_guest() {
    let Some(parts) = parts() else { return };
    let _slot = VM_SLOT.lock().await;
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = config();
    c.network.mode = NetworkMode::User;
    c.network.forwards = vec![PortForward {
        host: host_port,
        guest: 8080,
        protocol: Protocol::Tcp,
    }];
    let vm = rig
        .driver
        .run(rig.ctx("vm-user", &c, None))
        .await
        .unwrap_or_else(|e| panic!("boot failed: {e}"));
    let agent = rig.agent("vm-user");
    let out = agent
        .exec_collect(
            ["ip", "-4", "addr", "show", "eth0"],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let addr = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(addr.contains("10.0.2.15/24"), "{addr}");
    serve_page(&agent, "hello-from-the-guest").await;

    let body = http_get("127.0.0.1", host_port).await;
    assert!(body.contains("hello-from-the-guest"), "{body}");

    // slirp's 10.0.2.2 is not the host's loopback for the guest.
    let secret = loopback_secret();
    let probe = format!("busybox nc -w 3 10.0.2.2 {secret} < /dev/null; true");
    let got = stdout_of(&agent, &["sh", "-c", probe.as_str()]).await;
    assert!(
        !got.contains(SECRET),
        "the guest reached the host's 127.0.0.1:{secret} via 10.0.2.2: {got:?}"
    );
    vm.stop().await.unwrap();
}

/// A daemon killed while its VM boots (after QEMU started, before the
/// handle reached the store): the next start of the workload finds the VMM
/// through the handle file in the run directory and takes it over instead
/// of booting a second QEMU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_booting_when_the_daemon_died_is_taken_over() {
    let Some(parts) = parts() else { return };
    let _slot = VM_SLOT.lock().await;
    let rig = Rig::new(&parts, Duration::from_secs(120));
    let handle_file = rig
        .state_dir
        .join("vm-crash")
        .join(vimana_vm::driver::HANDLE_FILE);
    {
        let boot = rig.driver.run(rig.ctx("vm-crash", &config(), None));
        let vmm_up = async {
            while !handle_file.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        // Dropping the boot is what a killed daemon does to it.
        tokio::select! {
            r = boot => panic!("the boot ended before it was interrupted: {:?}", r.err()),
            () = vmm_up => {}
        }
    }
    let handle: vimana_vm::driver::VmHandle =
        serde_json::from_slice(&std::fs::read(&handle_file).unwrap()).unwrap();
    assert!(handle.vmm.alive(), "QEMU died with the interrupted boot");

    let vm = rig
        .driver
        .run(rig.ctx("vm-crash", &config(), None))
        .await
        .unwrap_or_else(|e| panic!("start after the crash failed: {e}"));
    assert_eq!(vm.pid(), Some(handle.vmm.pid), "a second QEMU was booted");
    let out = rig
        .agent("vm-crash")
        .exec_collect(["echo", "taken-over"], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "taken-over\n");
    let lines: Vec<String> = rig.log_lines("vm-crash");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("found the VM a previous daemon was booting")),
        "{lines:#?}"
    );
    vm.stop().await.unwrap();
    assert!(!handle.vmm.alive(), "QEMU still runs after stop");
}
