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

/// Runs `vimana <args>` on a pseudo-terminal (util-linux `script`), typing `input`.
fn on_tty(env: &Env, args: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_vimana"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("VIMANA_HOME", env.home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    // Give the prompt a moment, then answer.
    std::thread::sleep(std::time::Duration::from_millis(300));
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    out
}

#[test]
fn scaffold_prompts_on_a_terminal() {
    let env = Env::new();
    let dir = env.home().join("tty-proj");
    let d = dir.to_string_lossy();
    let out = on_tty(&env, &format!("scaffold --dir {d}"), "tty-core\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Spacecore name"), "{text}");
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"tty-core\""), "{cargo}");
    // Non-empty dir: asks before overwriting; "n" keeps it and fails clearly.
    std::fs::write(dir.join("src/spacecore.rs"), "// mine\n").unwrap();
    let out = on_tty(&env, &format!("scaffold tty-core --dir {d}"), "n\n");
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("src/spacecore.rs")).unwrap(),
        "// mine\n"
    );
    let out = on_tty(&env, &format!("scaffold tty-core --dir {d}"), "y\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_ne!(
        std::fs::read_to_string(dir.join("src/spacecore.rs")).unwrap(),
        "// mine\n"
    );
}
