//! Names, target directories, rendering and rollback.

use std::path::Path;

use vimana_scaffold::{
    Lang, NAME_RULE, SC_PROTO, ScaffoldError, ScaffoldOptions, SdkSource, render, scaffold,
    validate_name,
};

fn opts(name: &str, lang: Lang, dir: &Path) -> ScaffoldOptions {
    let mut o = ScaffoldOptions::new(name, lang);
    o.dir = dir.to_path_buf();
    o
}

fn rel(files: &[std::path::PathBuf], dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(dir).ok())
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn valid_names() {
    let longest = format!("a{}", "b".repeat(62));
    for name in [
        "a",
        "my-core",
        "core2",
        "a-1-b",
        "x--y",
        "z-",
        longest.as_str(),
    ] {
        validate_name(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
}

#[test]
fn invalid_names_state_the_rule() {
    let too_long = format!("a{}", "b".repeat(63));
    for name in [
        "",
        "1core",
        "-core",
        "Core",
        "my_core",
        "my core",
        "my.core",
        "café",
        "core/x",
        too_long.as_str(),
    ] {
        let err = validate_name(name).unwrap_err();
        assert!(
            matches!(err, ScaffoldError::InvalidName { .. }),
            "{name:?}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("^[a-z][a-z0-9-]{0,62}$"), "{msg}");
        assert!(msg.contains(NAME_RULE), "{msg}");
    }
    // scaffold validates too, before touching the disk.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let err = scaffold(&opts("Bad", Lang::Rust, &dir)).unwrap_err();
    assert!(matches!(err, ScaffoldError::InvalidName { .. }));
    assert!(!dir.exists());
}

#[test]
fn lang_parses() {
    assert_eq!("rust".parse::<Lang>().unwrap(), Lang::Rust);
    assert_eq!("Go".parse::<Lang>().unwrap(), Lang::Go);
    assert!("cobol".parse::<Lang>().is_err());
    assert_eq!(Lang::Go.to_string(), "go");
}

#[test]
fn defaults() {
    let o = ScaffoldOptions::new("my-core", Lang::Go);
    assert_eq!(o.dir, Path::new("./my-core"));
    assert!(!o.force);
    assert_eq!(
        o.sdk,
        SdkSource::CratesIo {
            version: env!("CARGO_PKG_VERSION").into()
        }
    );
}

#[test]
fn writes_the_rust_project() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-core");
    let files = scaffold(&opts("my-core", Lang::Rust, &dir)).unwrap();
    assert_eq!(
        rel(&files, &dir),
        [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "hac.toml",
            "proto/sc.proto",
            "src/main.rs",
            "src/spacecore.rs"
        ]
    );
    for f in &files {
        assert!(f.is_file(), "{}", f.display());
    }
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let doc: toml::Table = cargo.parse().unwrap();
    assert_eq!(doc["package"]["name"].as_str(), Some("my-core"));
    assert_eq!(
        doc["dependencies"]["vimana-spacecore"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(doc["dependencies"]["async-trait"].is_str());
    let tokio_features = doc["dependencies"]["tokio"]["features"].as_array().unwrap();
    assert!(tokio_features.iter().any(|f| f.as_str() == Some("macros")));
    assert!(
        tokio_features
            .iter()
            .any(|f| f.as_str() == Some("rt-multi-thread"))
    );
    assert!(doc["workspace"].as_table().unwrap().is_empty());

    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert!(main.contains("vimana_spacecore::serve(spacecore::MyCore::new())"));
    let sc = std::fs::read_to_string(dir.join("src/spacecore.rs")).unwrap();
    for m in [
        "async fn start",
        "async fn stop",
        "async fn status",
        "async fn logs",
    ] {
        assert!(sc.contains(m), "{m}");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for call in ["start", "status", "logs", "stop"] {
        assert!(
            readme.contains(&format!("vimana plugin ./target/debug/my-core {call}")),
            "{call}"
        );
    }
    assert!(readme.contains("vimana start my-core --plugin ./target/debug/my-core"));
    assert_eq!(
        std::fs::read_to_string(dir.join("proto/sc.proto")).unwrap(),
        SC_PROTO
    );
    assert!(SC_PROTO.contains("service ScPlugin"));
}

#[test]
fn hac_toml() {
    for lang in [Lang::Rust, Lang::Go] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        scaffold(&opts("my-core", lang, &dir)).unwrap();
        let text = std::fs::read_to_string(dir.join("hac.toml")).unwrap();
        let hac: toml::Table = text.parse().unwrap();
        let sc = hac["spacecore"].as_table().unwrap();
        assert_eq!(sc["name"].as_str(), Some("my-core"));
        assert!(sc["description"].as_str().unwrap().contains("my-core"));
        assert_eq!(sc["version"].as_str(), Some("0.1.0"));
        assert_eq!(sc["backend"].as_str(), Some("process"));
        let res = hac["resources"].as_table().unwrap();
        assert_eq!(res["cpu"].as_integer(), Some(1));
        assert_eq!(res["memory"].as_str(), Some("512MB"));
        assert_eq!(res["disk"].as_str(), Some("1GB"));
        assert!(!hac.contains_key("commands"));
        assert!(text.contains("# [commands]"));
    }
}

#[test]
fn writes_the_go_project() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("go-core");
    let files = scaffold(&opts("go-core", Lang::Go, &dir)).unwrap();
    assert_eq!(
        rel(&files, &dir),
        [
            ".gitignore",
            "README.md",
            "build.sh",
            "hac.toml",
            "main.go",
            "plugin.go",
            "proto/sc.proto",
            "spacecore.go"
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("build.sh"), 0o755);
        assert_eq!(mode("main.go"), 0o644);
    }
    let main = std::fs::read_to_string(dir.join("main.go")).unwrap();
    assert!(main.contains("plugin.DefaultGRPCServer"));
    assert!(main.contains("JSONFormat: true"));
    let plugin = std::fs::read_to_string(dir.join("plugin.go")).unwrap();
    assert!(plugin.contains("\"SPACECORE_PLUGIN\""));
    assert!(plugin.contains("\"vimana.local/go-core/proto\""));
    let build = std::fs::read_to_string(dir.join("build.sh")).unwrap();
    assert!(build.contains("GO111MODULE=off"));
    assert!(build.contains("protoc-gen-go-grpc"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("vimana plugin ./go-core start"));
    assert!(readme.contains("./build.sh"));
}

#[test]
fn rendering_leaves_no_template_syntax() {
    for lang in [Lang::Rust, Lang::Go] {
        for sdk in [
            SdkSource::default(),
            SdkSource::Path("/some/where/vimana-spacecore".into()),
        ] {
            let mut o = ScaffoldOptions::new("a-b-c", lang);
            o.sdk = sdk;
            for f in render(&o).unwrap() {
                for marker in ["{{", "}}", "{%", "%}", "{#", "#}"] {
                    assert!(
                        !f.contents.contains(marker),
                        "{lang} {}: leftover {marker}",
                        f.path
                    );
                }
                assert!(f.contents.ends_with('\n'), "{}", f.path);
            }
        }
    }
}

#[test]
fn sdk_path_dependency() {
    let mut o = ScaffoldOptions::new("p", Lang::Rust);
    o.sdk = SdkSource::Path("/opt/vimana \"x\"/crates/vimana-spacecore".into());
    let files = render(&o).unwrap();
    let cargo = files.iter().find(|f| f.path == "Cargo.toml").unwrap();
    let doc: toml::Table = cargo.contents.parse().unwrap();
    assert_eq!(
        doc["dependencies"]["vimana-spacecore"]["path"].as_str(),
        Some("/opt/vimana \"x\"/crates/vimana-spacecore")
    );
    // A relative path is made absolute.
    o.sdk = SdkSource::Path("crates/vimana-spacecore".into());
    let files = render(&o).unwrap();
    let cargo = files.iter().find(|f| f.path == "Cargo.toml").unwrap();
    let doc: toml::Table = cargo.contents.parse().unwrap();
    let p = doc["dependencies"]["vimana-spacecore"]["path"]
        .as_str()
        .unwrap();
    assert!(Path::new(p).is_absolute(), "{p}");
}

#[test]
fn empty_existing_dir_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    scaffold(&opts("p", Lang::Go, tmp.path())).unwrap();
    assert!(tmp.path().join("main.go").is_file());
}

#[test]
fn refuses_non_empty_dir_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let err = scaffold(&opts("p", Lang::Rust, tmp.path())).unwrap_err();
    assert!(matches!(err, ScaffoldError::NotEmpty { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("--force"), "{msg}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing written");
}

#[test]
fn refuses_a_file_as_target() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let err = scaffold(&opts("p", Lang::Rust, &file)).unwrap_err();
    assert!(matches!(err, ScaffoldError::NotADirectory(_)), "{err:?}");
}

#[test]
fn force_overwrites_only_the_templates_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/extra.rs"), "// mine").unwrap();
    std::fs::write(dir.join("README.md"), "old readme").unwrap();
    let mut o = opts("p", Lang::Rust, dir);
    o.force = true;
    let files = scaffold(&o).unwrap();
    assert!(files.contains(&dir.join("README.md")));
    assert_ne!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "old readme"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("src/extra.rs")).unwrap(),
        "// mine"
    );
    // Running again with force is idempotent, and leaves no temp files.
    scaffold(&o).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "hac.toml",
            "notes.txt",
            "proto",
            "src"
        ]
    );
}

#[test]
fn failure_midway_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("README.md"), "old readme").unwrap();
    // src/main.rs is a directory: writing it fails after README.md,
    // hac.toml, proto/sc.proto and Cargo.toml were written.
    std::fs::create_dir_all(dir.join("src/main.rs")).unwrap();
    let mut o = opts("p", Lang::Rust, dir);
    o.force = true;
    let err = scaffold(&o).unwrap_err();
    assert!(matches!(err, ScaffoldError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("main.rs"), "{err}");
    // The overwritten file is restored; created files and dirs are gone.
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "old readme"
    );
    for gone in [
        "hac.toml",
        "Cargo.toml",
        "proto",
        ".gitignore",
        "src/spacecore.rs",
    ] {
        assert!(!dir.join(gone).exists(), "{gone} left behind");
    }
    assert!(dir.join("src/main.rs").is_dir());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md", "src"]);
}

#[test]
fn a_file_in_the_way_of_a_directory_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/project");
    std::fs::create_dir_all(&dir).unwrap();
    // A file where the template needs the `proto` directory.
    std::fs::write(dir.join("proto"), "in the way").unwrap();
    let mut o = opts("p", Lang::Go, &dir);
    o.force = true;
    let err = scaffold(&o).unwrap_err();
    assert!(matches!(err, ScaffoldError::NotADirectory(_)), "{err:?}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["proto"], "README.md and hac.toml were rolled back");
    assert_eq!(
        std::fs::read_to_string(dir.join("proto")).unwrap(),
        "in the way"
    );
}
