//! `vimana vm …` without booting a VM: hac.toml errors, flag checks and
//! unknown VMs (the boot end-to-end test lives with the VM driver).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::Env;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `vimana ARGS` in `dir`.
fn run_in(env: &Env, dir: &Path, args: &[&str]) -> Output {
    env.cmd(args).current_dir(dir).output().expect("run vimana")
}

fn no_daemon_started(env: &Env) {
    assert!(
        !env.home().join("vimanad.sock").exists() && !env.home().join("daemon.lock").exists(),
        "a daemon was started"
    );
}

#[test]
fn spawn_with_a_bad_hac_points_into_the_file_and_starts_nothing() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hac.toml"),
        "[spacecore]\nname = \"node\"\n\n[hardware]\ncores = 0\n",
    )
    .unwrap();
    for args in [&["vm", "spawn"][..], &["spawn", "--hac", "hac.toml"][..]] {
        let out = run_in(&env, dir.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "no id may be printed");
        let err = stderr(&out);
        assert!(err.contains("hac.toml:5:9"), "{err}");
        assert!(err.contains("cores"), "{err}");
        assert!(err.contains("vimana::hac::cpus"), "{err}");
    }
    no_daemon_started(&env);
}

#[test]
fn spawn_with_a_missing_hac_says_so() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(&env, dir.path(), &["vm", "spawn"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot read hac.toml"), "{err}");
    no_daemon_started(&env);
}

#[test]
fn spawn_with_an_unknown_provider_lists_the_providers() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hac.toml"), "[spacecore]\nname = \"n\"\n").unwrap();
    let out = run_in(&env, dir.path(), &["vm", "spawn", "--provider", "xen"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for p in ["xen", "qemu", "firecracker", "cloud-hypervisor"] {
        assert!(err.contains(p), "{p} missing: {err}");
    }
    no_daemon_started(&env);
}

#[test]
fn spawn_with_a_bad_name_fails_before_starting_anything() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hac.toml"), "[spacecore]\nname = \"n\"\n").unwrap();
    let out = run_in(&env, dir.path(), &["vm", "spawn", "--name", "Bad_Name"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Bad_Name"), "{}", stderr(&out));
    no_daemon_started(&env);
}

#[test]
fn commands_on_an_unknown_vm_name_it() {
    let env = Env::new();
    let cases: &[&[&str]] = &[
        &["vm", "exec", "vm-nope", "--", "uname", "-a"],
        &["vm", "attach", "vm-nope"],
        &["attach", "vm-nope"],
        &["vm", "logs", "vm-nope"],
        &["vm", "logs", "-f", "vm-nope"],
        &["vm", "stop", "vm-nope"],
        &["vm", "rm", "vm-nope"],
    ];
    for args in cases {
        let err = env.fails(args);
        assert!(err.contains("no VM named vm-nope"), "{args:?}: {err}");
        assert!(err.contains("vimana vm list"), "{args:?}: {err}");
    }
    // An id that cannot be a workload name is named as given.
    let err = env.fails(&["vm", "logs", "Nope"]);
    assert!(err.contains("no VM named \"Nope\""), "{err}");
}

#[test]
fn list_is_empty_without_vms() {
    let env = Env::new();
    let table = env.ok(&["vm", "list"]);
    assert!(
        table.contains("ID") && table.contains("PROVIDER"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 1, "{table}");
    assert_eq!(env.json(&["vm", "ls"]), serde_json::json!([]));
}

#[test]
fn exec_needs_a_command() {
    let env = Env::new();
    let out = env.run(&["vm", "exec", "vm-x"]);
    assert_eq!(out.status.code(), Some(2));
    no_daemon_started(&env);
}

/// `PUT /v1/workloads/<name>` with `body` over the daemon's socket; the
/// whole HTTP response.
fn put_workload(env: &Env, name: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(env.home().join("vimanad.sock")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let req = format!(
        "PUT /v1/workloads/{name} HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A VM spec as the API receives it, with `config` patched by `patch`.
fn vm_spec(patch: serde_json::Value) -> String {
    let mut config = serde_json::json!({
        "cpus": 1,
        "memory_mib": 256,
        "root": { "kind": "initramfs" },
    });
    for (k, v) in patch.as_object().unwrap() {
        config[k] = v.clone();
    }
    serde_json::json!({ "spec": { "kind": "vm", "config": config } }).to_string()
}

/// The daemon checks a VM description from the API by the hac.toml rules
/// (the CLI is not the only client): 400 naming the rule, nothing stored,
/// no supervisor, no run directory.
#[test]
fn the_daemon_refuses_invalid_vm_specs_from_the_api() {
    let env = Env::new();
    env.ok(&["status"]);
    let cases = [
        (
            serde_json::json!({
                "memory_mib": 1u64 << 50,
                "kernel": "vmlinuz",
                "cmdline_extra": ["a b"],
                "network": { "mode": "none", "forwards": [{ "host": 0, "guest": 80 }] },
                "volumes": [{ "source": "/nonexistent.img", "target": "../etc" }],
            }),
            "vimana::hac::memory_exceeds_host",
        ),
        (
            serde_json::json!({ "kernel": "vmlinuz" }),
            "vimana::hac::kernel_missing",
        ),
        (
            serde_json::json!({ "cmdline_extra": ["a b"] }),
            "vimana::hac::cmdline",
        ),
        (
            serde_json::json!({ "network": { "mode": "user", "forwards": [{ "host": 0, "guest": 80 }] } }),
            "vimana::hac::port_forward",
        ),
        (
            serde_json::json!({ "network": { "mode": "none", "forwards": [{ "host": 8080, "guest": 80 }] } }),
            "vimana::hac::forwards_without_network",
        ),
        (
            serde_json::json!({ "network": { "mode": "bridge", "host_interface": "eth0; rm -rf /" } }),
            "vimana::hac::interface",
        ),
        (
            serde_json::json!({ "volumes": [{ "source": "/dev/null", "target": "../etc" }] }),
            "vimana::hac::volume_target",
        ),
        (
            serde_json::json!({ "root": { "kind": "image", "reference": "a b" } }),
            "vimana::hac::image_ref",
        ),
    ];
    for (i, (patch, rule)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        let resp = put_workload(&env, &name, &vm_spec(patch));
        assert!(resp.starts_with("HTTP/1.1 400"), "{rule}: {resp}");
        assert!(resp.contains(rule), "{rule} not named: {resp}");
        assert!(
            !env.home().join("vms").join(&name).exists(),
            "{name}: a run directory was made"
        );
    }
    let all = env.json(&["status", "-o", "json"]);
    assert_eq!(all.as_array().map(Vec::len), Some(0), "{all}");
}
