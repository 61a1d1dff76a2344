//! Network namespaces a test makes (and deletes when dropped, also on
//! failure), and running code inside one: netlink sockets, tun devices,
//! sockets and `/proc/sys/net` belong to the namespace of the thread that
//! opens them, so each namespace gets a thread of its own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// A network namespace, deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    /// `ip netns add <prefix>-<pid>`; `Err` says why it cannot be made.
    pub fn create(prefix: &str) -> Result<Netns, String> {
        let name = format!("{prefix}-{}", std::process::id());
        match Command::new("ip").args(["netns", "add", &name]).output() {
            Ok(o) if o.status.success() => Ok(Netns(name)),
            Ok(o) => Err(format!(
                "cannot create network namespace {name}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run `ip netns add`: {e}")),
        }
    }

    /// Moves the calling thread into the namespace.
    pub fn enter(&self) {
        enter(&self.0);
    }

    /// `ip -n <ns> <args>`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `sysctl -w <setting>` inside the namespace.
    pub fn sysctl(&self, setting: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "sysctl", "-qw", setting])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sysctl {setting} in {}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Moves the calling thread into namespace `name`.
fn enter(name: &str) {
    let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `Err(reason)` when this host cannot run bridge tests: root, tun, `ip`.
pub fn precondition() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (creates a network namespace and tap devices)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing (modprobe tun)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("the `ip` command (iproute2) is not installed".into()),
    }
}

/// Whether the `nft` command is installed.
pub fn nft_installed() -> bool {
    ["/usr/sbin/nft", "/sbin/nft"]
        .iter()
        .any(|p| Path::new(p).is_file())
}

/// Runs `f` on a new thread inside `ns` and returns its result (a panic in
/// it is the caller's panic).
pub fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = ns.0.clone();
    std::thread::spawn(move || {
        enter(&name);
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
