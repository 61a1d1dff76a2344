//! `vimana apply|get|delete` against a real daemon: kubectl-style output,
//! located errors, all-or-nothing applies, and resources that survive a
//! `kill -9` of the daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Stdio;

use common::Env;

const ID: &str = "00000000000000000000000000000001";

fn adder() -> String {
    common::repo()
        .join("crates/vimana-resources/examples/adder.yaml")
        .to_string_lossy()
        .into_owned()
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

const CREATED: [&str; 4] = [
    "vimana/local created",
    "domain/example created",
    "server/adder created",
    "component/adder-1.0.0 created",
];

#[test]
fn apply_get_delete() {
    let env = Env::new();
    let file = adder();
    assert_eq!(lines(&env.ok(&["apply", "-f", &file])), CREATED);
    let again = env.ok(&["apply", "-f", &file]);
    assert_eq!(lines(&again).len(), 4);
    assert!(
        lines(&again).iter().all(|l| l.ends_with(" unchanged")),
        "{again}"
    );

    // JSON: the stored objects with their Available condition.
    let domains = env.json(&["get", "domains"]);
    let d = &domains.as_array().unwrap()[0];
    assert_eq!(d["metadata"]["name"], "example");
    let cond = &d["status"]["conditions"][0];
    // The Wasm runtime serves the Domain (its Component's image does not
    // exist here, which the Component's own status reports).
    assert_eq!(
        (cond["type"].as_str(), cond["status"].as_str()),
        (Some("Available"), Some("True"))
    );
    assert_eq!(cond["reason"], "Serving");
    let comp = env.json(&["get", "components"]);
    let ccond = &comp.as_array().unwrap()[0]["status"]["conditions"][0];
    assert_eq!(ccond["status"], "False");
    assert_eq!(ccond["reason"], "ImageUnavailable");

    // A Component by metadata.name and by <domain>:<server>@<version>, short kinds.
    let cname = format!("{ID}:adder@1.0.0");
    let by_name = env.json(&["get", "component", "adder-1.0.0"]);
    assert_eq!(env.json(&["get", "comp", &cname]), by_name);
    assert_eq!(by_name["spec"]["version"], "1.0.0");

    // YAML is re-appliable.
    let yaml = env.ok(&["-o", "yaml", "get", "servers"]);
    assert!(
        yaml.contains("kind: Server") && yaml.contains("Available"),
        "{yaml}"
    );
    let copy = env.home().join("servers.yaml");
    std::fs::write(&copy, &yaml).unwrap();
    assert_eq!(
        env.ok(&["apply", "-f", &copy.to_string_lossy()]).trim(),
        "server/adder unchanged"
    );

    // Tables per kind, with AVAILABLE.
    let table = env.ok(&["get", "servers"]);
    let header = table.lines().next().unwrap();
    for col in ["NAME", "ID", "DOMAIN", "SERVICES", "VERSIONS", "AVAILABLE"] {
        assert!(header.contains(col), "{table}");
    }
    assert!(
        table.contains("1.0.0=1") && table.contains("VersionsUnavailable"),
        "{table}"
    );
    let table = env.ok(&["get", "components"]);
    assert!(table.contains(&cname), "{table}");

    // Unknown kind and name.
    assert!(
        env.fails(&["get", "widgets"])
            .contains("not a resource kind")
    );
    assert!(
        env.fails(&["get", "domain", "nope"])
            .contains("no Domain named \"nope\"")
    );

    // A Domain still in use is refused; nothing is deleted.
    let err = env.fails(&["delete", "domain", "example"]);
    assert!(
        err.contains("Server/adder") && err.contains("Component/adder-1.0.0"),
        "{err}"
    );
    assert_eq!(env.json(&["get", "domains"]).as_array().unwrap().len(), 1);

    // Delete by kind and name.
    let spare = env.home().join("spare.yaml");
    std::fs::write(
        &spare,
        "apiVersion: api.vimana.host/v1alpha1\nkind: Vimana\nmetadata:\n  name: spare\nspec: {}\n",
    )
    .unwrap();
    assert_eq!(
        env.ok(&["apply", "-f", &spare.to_string_lossy()]).trim(),
        "vimana/spare created"
    );
    assert_eq!(
        env.ok(&["delete", "vm", "spare"]).trim(),
        "vimana/spare deleted"
    );

    // Delete by file: everything at once.
    let out = env.ok(&["delete", "-f", &file]);
    assert_eq!(lines(&out).len(), 4);
    assert!(lines(&out).iter().all(|l| l.ends_with(" deleted")), "{out}");
    assert_eq!(env.json(&["get", "components"]), serde_json::json!([]));
}

#[test]
fn bad_yaml_is_located_and_rejected_applies_change_nothing() {
    let env = Env::new();
    let bad = env.home().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: api.vimana.host/v1alpha1\nkind: Domain\nmetadata:\n  name: example\nspec:\n  id: 123\n  vimana: local\n",
    )
    .unwrap();
    let err = env.fails(&["apply", "-f", &bad.to_string_lossy()]);
    assert!(
        err.contains("bad.yaml") && err.contains("document 1"),
        "{err}"
    );
    assert!(
        err.contains("spec.id") && err.contains("vimana::resources::domain-id"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:6:3"),
        "miette points at the line: {err}"
    );

    std::fs::write(&bad, "kind: [\n").unwrap();
    let err = env.fails(&["apply", "-f", &bad.to_string_lossy()]);
    assert!(err.contains("syntax"), "{err}");

    // Valid YAML the daemon refuses (an immutable version): all or nothing.
    let file = adder();
    env.ok(&["apply", "-f", &file]);
    let before = env.json(&["get", "components"]);
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = env.home().join("changed.yaml");
    std::fs::write(
        &changed,
        text.replace("- example.com", "- example.org")
            .replace("release/adder.wasm", "release/other.wasm"),
    )
    .unwrap();
    let err = env.fails(&["apply", "-f", &changed.to_string_lossy()]);
    assert!(
        err.contains("changed.yaml document 4") && err.contains("immutable-version"),
        "{err}"
    );
    assert_eq!(env.json(&["get", "components"]), before);
    let domain = env.json(&["get", "domain", "example"]);
    assert_eq!(
        domain["spec"]["aliases"][0], "example.com",
        "nothing of the rejected apply stored"
    );
}

#[test]
fn stdin_apply_and_resources_survive_kill9() {
    let env = Env::new();
    let text = std::fs::read_to_string(adder()).unwrap();
    // Relative images on stdin resolve against the current directory, in a
    // file against the file's: run beside the file so both name one image.
    let mut child = env
        .cmd(&["apply", "-f", "-"])
        .current_dir(std::path::Path::new(&adder()).parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(lines(&String::from_utf8_lossy(&out.stdout)), CREATED);

    let daemon = env.daemon_pid().expect("daemon pid");
    env.kill_daemon();
    assert!(!common::alive(daemon));
    // The next call starts a new daemon on the same store.
    let all: usize = ["vimanas", "domains", "servers", "components"]
        .iter()
        .map(|k| env.json(&["get", k]).as_array().unwrap().len())
        .sum();
    assert_eq!(all, 4);
    assert_ne!(env.daemon_pid(), Some(daemon));
    let again = env.ok(&["apply", "-f", &adder()]);
    assert!(
        lines(&again).iter().all(|l| l.ends_with(" unchanged")),
        "{again}"
    );
}
