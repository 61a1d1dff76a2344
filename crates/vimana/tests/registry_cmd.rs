//! `vimana repo` and `vimana registry` through the CLI (downloads, index
//! rules and unpacking are tested in crates/vimana-registry/tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;

const GOOD: &str = r#"schema = 1

[repository]
name = "local"
description = "test repository"

[[package]]
name = "counter-node"
description = "counts things"
tags = ["demo"]
version = "0.1.0"

[package.node_types.light]
description = "light"
kind = "process"
start = ["{{bin}}", "--store", "{{store}}"]

[[package.node_types.light.artifacts]]
os = "linux"
arch = "x86_64"
url = "counter"
format = "raw"
bin = "counter"
"#;

#[test]
fn repo_add_list_search_remove() {
    let env = Env::new();
    let index = env.home().join("index.toml");
    std::fs::write(&index, GOOD).unwrap();
    env.ok(&["repo", "add", "local", &index.to_string_lossy()]);
    let repos = env.json(&["repo", "list"]);
    let names: Vec<_> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["vimana", "local"]);
    let hits = env.json(&["registry", "search", "counter"]);
    assert_eq!(hits[0]["name"], "counter-node");
    assert_eq!(hits[0]["repo"], "local");
    let hits = env.json(&["registry", "search", "celestia"]);
    assert_eq!(hits[0]["name"], "celestia");
    let all = env.json(&["registry", "list"]);
    assert!(all.as_array().unwrap().len() >= 3);
    let err = env.fails(&["repo", "remove", "vimana"]);
    assert!(err.contains("vimana"), "{err}");
    env.ok(&["repo", "remove", "local"]);
    assert_eq!(env.json(&["repo", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn repo_add_of_a_broken_index_points_at_the_line_and_adds_nothing() {
    let env = Env::new();
    let index = env.home().join("bad.toml");
    std::fs::write(&index, GOOD.replace("version = \"0.1.0\"", "version = ")).unwrap();
    let err = env.fails(&["repo", "add", "bad", &index.to_string_lossy()]);
    assert!(err.contains("bad.toml:11:"), "{err}");
    let repos = env.json(&["repo", "list"]);
    assert_eq!(repos.as_array().unwrap().len(), 1, "{repos}");
    assert!(!env.home().join("repos/bad.toml").exists());
}
