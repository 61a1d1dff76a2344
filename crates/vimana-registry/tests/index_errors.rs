//! Index diagnostics: each error names the rule and points at the place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vimana_registry::index::{self, IndexError};

const GOOD: &str = r#"schema = 1

[repository]
name = "test"
description = "a test repository"

[[package]]
name = "demo"
description = "demo node"
tags = ["demo"]
version = "1.0.0"

[package.node_types.light]
description = "light"
kind = "process"
init = ["{{bin}}", "init", "--store", "{{store}}"]
start = ["{{bin}}", "start", "--network", "{{network}}", "--peer", "{{peer}}"]
ports = [2121]
resources = { cpu = 1.0, memory = "2GiB" }

[package.node_types.light.flags.network]
default = "main"
description = "network"

[package.node_types.light.flags.peer]
default = "p1"
description = "peer"

[[package.node_types.light.artifacts]]
os = "linux"
arch = "x86_64"
url = "https://example.invalid/demo.tar.gz"
sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
format = "tar.gz"
bin = "demo/bin/demo"
"#;

fn err(text: &str) -> Box<IndexError> {
    index::parse("test.toml", text).expect_err("should fail")
}

/// The text the error's span covers.
fn spanned<'a>(text: &'a str, e: &IndexError) -> &'a str {
    let r = e.span.clone().expect("span");
    &text[r]
}

fn rendered(e: IndexError) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, &e)
        .unwrap();
    out
}

#[test]
fn good_index_parses() {
    let idx = index::parse("test.toml", GOOD).unwrap();
    let nt = &idx.packages[0].node_types["light"];
    assert_eq!(nt.resources.as_ref().unwrap().memory_bytes, Some(2 << 30));
    assert_eq!(nt.ports, [2121]);
    assert!(idx.packages[0].is_verified());
}

#[test]
fn syntax_error_has_line_and_column() {
    let text = GOOD.replace("version = \"1.0.0\"", "version = \"1.0.0");
    let e = err(&text);
    assert_eq!(e.rule, "index::syntax");
    let (line, col) = e.line_col.unwrap();
    assert_eq!(line, 11, "{e}");
    assert!(col > 1, "{e}");
    assert!(e.to_string().starts_with("test.toml:11:"), "{e}");
    let shown = rendered(*e);
    assert!(shown.contains("test.toml:11:"), "{shown}");
    assert!(shown.contains("vimana::index::syntax"), "{shown}");
}

#[test]
fn unknown_key_is_pointed_at() {
    let text = GOOD.replace(
        "bin = \"demo/bin/demo\"",
        "bin = \"demo/bin/demo\"\nchecksum = \"x\"",
    );
    let e = err(&text);
    assert_eq!(e.rule, "index::unknown_key", "{e}");
    assert!(e.message.contains("checksum"), "{e}");
    assert!(
        spanned(&text, &e).contains("checksum"),
        "{:?}",
        spanned(&text, &e)
    );
}

#[test]
fn bad_sha256_is_pointed_at() {
    let text = GOOD.replace(&"a".repeat(64), "abc123");
    let e = err(&text);
    assert_eq!(e.rule, "index::sha256");
    assert_eq!(spanned(&text, &e), "\"abc123\"");
    assert_eq!(e.line_col.unwrap().0, 33);
    assert!(e.help.contains("sha256sum"));
}

#[test]
fn unknown_placeholder_is_pointed_at() {
    let text = GOOD.replace("\"{{peer}}\"", "\"{{peers}}\"");
    let e = err(&text);
    assert_eq!(e.rule, "index::unknown_placeholder");
    assert_eq!(spanned(&text, &e), "{{peers}}");
    assert!(e.help.contains("peer"), "{}", e.help);
    let shown = rendered(*e);
    assert!(
        shown.contains("neither a builtin nor a declared flag"),
        "{shown}"
    );
}

#[test]
fn newer_schema_is_named() {
    let text = GOOD
        .replace("schema = 1", "schema = 2")
        .replace("[repository]", "[repository]\nmirror = \"x\"");
    let e = err(&text);
    assert_eq!(e.rule, "index::schema_newer");
    assert!(e.message.contains("schema 2"), "{e}");
    assert!(e.help.contains("upgrade vimana"));
    assert_eq!(spanned(&text, &e), "2");
}

#[test]
fn other_rules() {
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"demo\"", "name = \"Demo\"", "index::name"),
        ("format = \"tar.gz\"", "format = \"rar\"", "index::format"),
        ("kind = \"process\"", "kind = \"docker\"", "index::kind"),
        (
            "url = \"https://example.invalid/demo.tar.gz\"",
            "url = \"ftp://example.invalid/demo.tar.gz\"",
            "index::url",
        ),
        ("ports = [2121]", "ports = [70000]", "index::port"),
        (
            "ports = [2121]",
            "ports = [2121]\nrestart = \"sometimes\"",
            "index::restart",
        ),
        ("memory = \"2GiB\"", "memory = \"lots\"", "index::memory"),
        ("bin = \"demo/bin/demo\"", "bin = \"../demo\"", "index::bin"),
        (
            "start = [\"{{bin}}\", \"start\", \"--network\", \"{{network}}\", \"--peer\", \"{{peer}}\"]",
            "start = []",
            "index::start",
        ),
        ("schema = 1", "", "index::schema"),
    ];
    for (from, to, rule) in cases {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "{from}");
        let e = err(&text);
        assert_eq!(e.rule, *rule, "{from} -> {to}: {e}");
    }
}

/// A version becomes a directory name (`packages/<name>/<version>`): one
/// that could leave that directory is refused, pointing at the value.
#[test]
fn unsafe_version_is_pointed_at() {
    for bad in [
        "../../../tmp/x",
        "..",
        "1.0/../../x",
        "/etc",
        "1.0.0/evil",
        ".hidden",
        "1..2",
        "1.0 beta",
        "1.0\\\\x",
    ] {
        let text = GOOD.replace("version = \"1.0.0\"", &format!("version = \"{bad}\""));
        assert_ne!(text, GOOD);
        let e = err(&text);
        assert_eq!(e.rule, "index::version", "{bad}: {e}");
        assert_eq!(spanned(&text, &e), format!("\"{bad}\""), "{bad}");
        assert_eq!(e.line_col.unwrap().0, 11, "{bad}");
        assert!(e.help.contains("1.2.3"), "{}", e.help);
        let shown = rendered(*e);
        assert!(shown.contains("vimana::index::version"), "{shown}");
    }
    for good in ["1.0.0", "v0.21.5", "1.0.0-rc.1+build.5", "2024_05_01"] {
        let text = GOOD.replace("version = \"1.0.0\"", &format!("version = \"{good}\""));
        let idx = index::parse("test.toml", &text).unwrap();
        assert_eq!(idx.packages[0].version, good);
    }
}
