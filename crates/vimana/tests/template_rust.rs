//! The Rust template builds against this checkout's SDK and runs under the
//! real `vimana plugin`.

mod templates;
use templates as common;

use std::process::Command;

use vimana_scaffold::{Lang, ScaffoldOptions, SdkSource, scaffold};

#[test]
fn rust_spacecore_builds_and_runs_under_vimana() {
    let repo = common::repo();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rusty-core");
    let mut opts = ScaffoldOptions::new("rusty-core", Lang::Rust);
    opts.dir = dir.clone();
    opts.sdk = SdkSource::Path(repo.join("crates/vimana-spacecore"));
    scaffold(&opts).unwrap();

    let fmt = Command::new(common::cargo())
        .args(["fmt", "--check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        fmt.status.success(),
        "generated code is not rustfmt-clean:\n{}",
        String::from_utf8_lossy(&fmt.stdout)
    );

    // Reuse the workspace's resolved versions: no new resolution, and the
    // dependencies compiled into target/scaffold-test stay valid across runs.
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = repo.join("target/scaffold-test");
    let out = Command::new(common::cargo())
        .arg("build")
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build of the generated project failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target.join("debug/rusty-core");
    assert!(bin.is_file(), "{} missing", bin.display());

    common::exercise_lifecycle(&bin, tmp.path());
}
