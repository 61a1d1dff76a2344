//! `vimana scaffold` through the CLI (the templates themselves are built
//! and run in crates/vimana-scaffold/tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;

#[test]
fn scaffold_writes_a_project_non_interactively() {
    let env = Env::new();
    let dir = env.home().join("proj");
    let out = env.ok(&["scaffold", "my-core", "--dir", &dir.to_string_lossy()]);
    assert!(out.contains("created"), "{out}");
    for f in [
        "Cargo.toml",
        "src/main.rs",
        "src/spacecore.rs",
        "hac.toml",
        "proto/sc.proto",
        "README.md",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"my-core\""), "{cargo}");
    // A second run into the now non-empty dir needs --force.
    let err = env.fails(&["scaffold", "my-core", "--dir", &dir.to_string_lossy()]);
    assert!(err.contains("--force"), "{err}");
    env.ok(&[
        "scaffold",
        "my-core",
        "--dir",
        &dir.to_string_lossy(),
        "--force",
    ]);
    // Go template.
    let go = env.home().join("goproj");
    env.ok(&[
        "scaffold",
        "go-core",
        "--lang",
        "go",
        "--dir",
        &go.to_string_lossy(),
    ]);
    assert!(go.join("build.sh").exists() && go.join("spacecore.go").exists());
}

#[test]
fn scaffold_refuses_bad_names_and_needs_a_name_without_a_terminal() {
    let env = Env::new();
    let err = env.fails(&[
        "scaffold",
        "Bad_Name",
        "--dir",
        &env.home().join("x").to_string_lossy(),
    ]);
    assert!(err.contains("^[a-z][a-z0-9-]{0,62}$"), "{err}");
    assert!(!env.home().join("x").exists());
    let out = env
        .cmd(&["scaffold"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give the spacecore a name"));
}
