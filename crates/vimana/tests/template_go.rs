//! The Go template builds with its build.sh (Debian GOPATH recipe) and runs
//! under the real `vimana plugin`.

mod templates;
use templates as common;

use std::process::Command;

use vimana_scaffold::{Lang, ScaffoldOptions, scaffold};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn go_spacecore_builds_and_runs_under_vimana() {
    if !have("go") {
        assert!(
            std::env::var_os("CI").is_none(),
            "go is not installed, and CI is set: install it (scripts/install-test-deps.sh)"
        );
        println!("SKIP: go not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gopher-core");
    let mut opts = ScaffoldOptions::new("gopher-core", Lang::Go);
    opts.dir = dir.clone();
    let written = scaffold(&opts).unwrap();
    assert!(written.contains(&dir.join("build.sh")));

    let gofmt = Command::new("gofmt")
        .arg("-l")
        .args(["main.go", "plugin.go", "spacecore.go"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(gofmt.status.success());
    assert!(
        gofmt.stdout.is_empty(),
        "generated Go is not gofmt-clean: {}",
        String::from_utf8_lossy(&gofmt.stdout)
    );

    let out = Command::new("bash")
        .arg(dir.join("build.sh"))
        .current_dir(tmp.path()) // build.sh must not depend on the cwd
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build.sh failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = dir.join("gopher-core");
    assert!(bin.is_file(), "{} missing", bin.display());

    common::exercise_lifecycle(&bin, tmp.path());
}
