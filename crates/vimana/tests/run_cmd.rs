//! `vimana run` end to end against a local repository with a real program
//! packed in a tar.gz (the HTTP paths of downloads are tested in
//! crates/vimana-registry/tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::Env;

const NODE: &str = r#"#!/bin/sh
if [ "$1" = init ]; then echo initialised > "$2/initialised"; exit 0; fi
echo "node up $* net=$NODE_NET"
trap 'exit 0' TERM
while :; do echo tick; sleep 0.2; done
"#;

/// Writes `node.tar.gz` (bin/node) and an index naming it; returns the index path.
fn repo(dir: &Path, sha: Option<&str>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = dir.join("src/bin");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("node"), NODE).unwrap();
    std::fs::set_permissions(src.join("node"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let st = Command::new("tar")
        .args(["czf", "node.tar.gz", "-C", "src", "bin"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("sha256sum")
        .arg(dir.join("node.tar.gz"))
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let sha = sha.map(str::to_string).unwrap_or(real);
    let index = format!(
        r#"schema = 1

[repository]
name = "local"
description = "test"

[[package]]
name = "counter-node"
description = "a test node"
tags = ["demo"]
version = "0.1.0"

[package.node_types.light]
description = "light node"
kind = "process"
init = ["{{{{bin}}}}", "init", "{{{{store}}}}"]
start = ["{{{{bin}}}}", "--store", "{{{{store}}}}", "--network", "{{{{network}}}}"]
restart = "on-failure"

[package.node_types.light.env]
NODE_NET = "{{{{network}}}}"

[package.node_types.light.flags.network]
default = "testnet"
description = "network to join"

[[package.node_types.light.artifacts]]
os = "linux"
arch = "x86_64"
url = "node.tar.gz"
sha256 = "{sha}"
format = "tar.gz"
bin = "bin/node"
"#
    );
    let p = dir.join("index.toml");
    std::fs::write(&p, index).unwrap();
    p
}

#[test]
fn run_installs_inits_and_supervises_a_node() {
    let env = Env::new();
    let pkg = env.home().join("pkgsrc");
    std::fs::create_dir_all(&pkg).unwrap();
    let index = repo(&pkg, None);
    env.ok(&["repo", "add", "local", &index.to_string_lossy()]);
    env.ok(&["run", "counter-node", "light-node", "--network", "devnet"]);
    let w = env.workload("counter-node-light");
    assert_eq!(w["kind"], "process");
    assert_eq!(w["state"], "running");
    assert_eq!(w["spec"]["restart"], "on-failure");
    assert_eq!(w["spec"]["env"]["NODE_NET"], "devnet");
    let pid = w["pid"].as_i64().unwrap();
    let store = env.home().join("stores/counter-node-light");
    assert_eq!(
        std::fs::read_to_string(store.join("initialised"))
            .unwrap()
            .trim(),
        "initialised"
    );
    assert!(
        env.home()
            .join("packages/counter-node/0.1.0/bin/node")
            .exists()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let logs = env.ok(&["logs", "counter-node-light"]);
        if logs.contains("node up --store") && logs.contains("--network devnet net=devnet") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{logs}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The same run again is not a second node.
    env.ok(&["run", "counter-node", "light", "--network=devnet"]);
    assert_eq!(
        env.workload("counter-node-light")["pid"].as_i64(),
        Some(pid)
    );
    // Different flags: told how to change them.
    let err = env.fails(&["run", "counter-node", "light", "--network", "mainnet"]);
    assert!(
        err.contains("different configuration") && err.contains("vimana stop counter-node-light"),
        "{err}"
    );
    // Unknown flag: the known ones are listed.
    let err = env.fails(&["run", "counter-node", "light", "--peers", "x"]);
    assert!(err.contains("--network"), "{err}");
    // stop, then start by name: same configuration, init not run again.
    std::fs::remove_file(store.join("initialised")).unwrap();
    env.ok(&["stop", "counter-node-light"]);
    assert_eq!(env.workload("counter-node-light")["state"], "stopped");
    env.ok(&["start", "counter-node-light"]);
    let w = env.workload("counter-node-light");
    assert_eq!(w["state"], "running");
    assert!(w["spec"]["args"].to_string().contains("devnet"), "{w}");
    assert!(!store.join("initialised").exists());
    env.ok(&["stop", "counter-node-light"]);
}

#[test]
fn checksum_mismatch_installs_nothing() {
    let env = Env::new();
    let pkg = env.home().join("pkgsrc");
    std::fs::create_dir_all(&pkg).unwrap();
    let index = repo(&pkg, Some(&"0".repeat(64)));
    env.ok(&["repo", "add", "local", &index.to_string_lossy()]);
    let err = env.fails(&["run", "counter-node", "light"]);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!env.home().join("packages/counter-node").exists());
    assert!(!env.home().join("stores/counter-node-light").exists());
    let err = env.fails(&["status", "counter-node-light"]);
    assert!(err.contains("no workload named"), "{err}");
}

/// A third-party index whose version climbs out of `packages/<name>/`:
/// refused when the repository is added (file, line and rule named), and
/// nothing is written outside VIMANA_HOME.
#[test]
fn version_that_leaves_vimana_home_is_refused() {
    let env = Env::new();
    let pkg = env.home().join("pkgsrc");
    std::fs::create_dir_all(&pkg).unwrap();
    let index = repo(&pkg, None);
    // packages/counter-node/../../../<escape> is the parent of VIMANA_HOME.
    let escape = format!("vimana-escape-{}", std::process::id());
    let outside = env.home().parent().unwrap().join(&escape);
    let text = std::fs::read_to_string(&index).unwrap().replace(
        "version = \"0.1.0\"",
        &format!("version = \"../../../{escape}\""),
    );
    std::fs::write(&index, text).unwrap();
    let added = env.run(&["repo", "add", "local", &index.to_string_lossy()]);
    let run = env.run(&["run", "counter-node", "light"]);
    let escaped = outside.exists();
    let _ = std::fs::remove_dir_all(&outside);
    assert!(
        !escaped,
        "the package was installed at {}",
        outside.display()
    );
    let err = String::from_utf8_lossy(&added.stderr);
    assert!(!added.status.success(), "repo add accepted it: {err}");
    assert!(
        err.contains("index::version") && err.contains("index.toml:11:") && err.contains("1.2.3"),
        "{err}"
    );
    assert!(!run.status.success());
    assert!(!env.home().join("packages").exists());
}

/// A static HTTP server on loopback (Python's http.server), killed on drop.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn serve(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 http.server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "http server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn end_to_end_over_http() {
    let env = Env::new();
    let pkg = env.home().join("www");
    std::fs::create_dir_all(&pkg).unwrap();
    repo(&pkg, None);
    let server = HttpServer::serve(&pkg);
    let url = format!("http://127.0.0.1:{}/index.toml", server.port);
    env.ok(&["repo", "add", "web", &url]);
    let hits = env.json(&["registry", "search", "counter"]);
    assert_eq!(hits[0]["name"], "counter-node");
    assert_eq!(hits[0]["repo"], "web");
    env.ok(&["run", "counter-node", "light-node"]);
    let w = env.workload("counter-node-light");
    assert_eq!(w["state"], "running");
    assert!(
        w["spec"]["args"].to_string().contains("testnet"),
        "default flag: {w}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !env.ok(&["logs", "counter-node-light"]).contains("tick") {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    env.ok(&["stop", "counter-node-light"]);
    assert_eq!(env.workload("counter-node-light")["state"], "stopped");
    // Everything it wrote is under VIMANA_HOME.
    assert!(env.home().join("cache").exists() && env.home().join("packages/counter-node").exists());
}
