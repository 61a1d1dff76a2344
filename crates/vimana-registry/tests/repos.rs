//! Repository management against a loopback HTTP server and local files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, index_toml};
use vimana_registry::{MatchKind, Registry, RegistryError, UpdateStatus};

#[tokio::test]
async fn add_http_file_and_path_then_list_and_search() {
    let server = Server::start().await;
    server.put(
        "r1/index.toml",
        index_toml(
            "one",
            &[
                ("cel", &["x"], "exact name"),
                ("marcel", &["y"], "contains the term"),
                ("celery", &["z"], "prefix"),
            ],
        ),
        Some("\"v1\""),
    );
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let p2 = files.path().join("two.toml");
    std::fs::write(&p2, index_toml("two", &[("tagged", &["cel"], "by tag")])).unwrap();
    let p3 = files.path().join("three.toml");
    std::fs::write(
        &p3,
        index_toml("three", &[("zzz", &[], "a parcel of bytes")]),
    )
    .unwrap();

    let reg = Registry::new(home.path());
    let one = reg.add("one", &server.url("r1/index.toml")).await.unwrap();
    assert_eq!(one.etag.as_deref(), Some("\"v1\""));
    let file_url = format!("file://{}", p2.display());
    reg.add("two", &file_url).await.unwrap();
    reg.add("three", p3.to_str().unwrap()).await.unwrap();

    let list = reg.list().unwrap();
    let names: Vec<_> = list.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["vimana", "one", "three", "two"]);
    assert!(list[0].builtin);
    assert!(home.path().join("repos/one.toml").is_file());
    assert!(home.path().join("repos.toml").is_file());

    // Adding the same name again, or an unknown scheme, is refused.
    assert!(matches!(
        reg.add("one", &server.url("r1/index.toml")).await,
        Err(RegistryError::RepoExists(_))
    ));
    assert!(matches!(
        reg.add("ftp", "ftp://example.invalid/i.toml").await,
        Err(RegistryError::BadUrl { .. })
    ));

    let hits = reg.search("cel").unwrap();
    let got: Vec<(&str, MatchKind)> = hits.iter().map(|h| (h.name.as_str(), h.matched)).collect();
    assert_eq!(
        got,
        [
            ("cel", MatchKind::ExactName),
            ("celery", MatchKind::NamePrefix),
            ("celestia", MatchKind::NamePrefix),
            ("marcel", MatchKind::NameContains),
            ("tagged", MatchKind::Tag),
            ("zzz", MatchKind::Description),
        ]
    );
    assert_eq!(hits[2].repo, "vimana");
    assert_eq!(hits[2].node_types, ["bridge", "full", "light"]);
    assert_eq!(hits[0].repo, "one");
    assert_eq!(hits[0].version, "1.0.0");

    let all = reg.list_packages().unwrap();
    assert_eq!(all.len(), 7);

    // A relative artifact URL resolves against the repository URL.
    let r = vimana_registry::resolve_in(
        &reg.load_all().unwrap(),
        "cel",
        "light-node",
        "linux",
        "x86_64",
    )
    .unwrap();
    assert_eq!(r.url, server.url("r1/bin/cel"));
    let r = vimana_registry::resolve_in(&reg.load_all().unwrap(), "zzz", "light", "linux", "amd64")
        .unwrap();
    assert_eq!(r.url, files.path().join("bin/zzz").to_string_lossy());

    reg.remove("two").unwrap();
    assert!(!home.path().join("repos/two.toml").exists());
    assert_eq!(reg.list().unwrap().len(), 3);
    assert!(matches!(
        reg.remove("two"),
        Err(RegistryError::RepoNotFound { .. })
    ));
}

#[tokio::test]
async fn add_with_broken_index_adds_nothing() {
    let server = Server::start().await;
    let broken =
        index_toml("bad", &[("x", &[], "d")]).replace("version = \"1.0.0\"", "version = 1.0.0\"");
    server.put("bad.toml", broken, None);
    let home = tempfile::tempdir().unwrap();
    let reg = Registry::new(home.path());
    let err = reg.add("bad", &server.url("bad.toml")).await.unwrap_err();
    let RegistryError::Index(e) = &err else {
        panic!("{err:?}");
    };
    let (line, col) = e.line_col.unwrap();
    assert!(line > 1 && col > 1, "{e}");
    assert!(e.source_name().contains("bad.toml"));
    let report = format!("{:?}", miette::Report::new(err));
    assert!(
        report.contains(&format!("bad.toml:{line}:{col}")),
        "{report}"
    );

    // Nothing was written.
    assert!(!home.path().join("repos.toml").exists());
    assert!(!home.path().join("repos/bad.toml").exists());
    assert_eq!(reg.list().unwrap().len(), 1);

    // 404 adds nothing either, and names the URL and status.
    let err = reg.add("gone", &server.url("nope.toml")).await.unwrap_err();
    assert!(
        err.to_string().contains("404") && err.to_string().contains("nope.toml"),
        "{err}"
    );
    assert_eq!(reg.list().unwrap().len(), 1);
}

#[tokio::test]
async fn update_uses_etag_and_304() {
    let server = Server::start().await;
    server.put(
        "i.toml",
        index_toml("u", &[("alpha", &[], "first")]),
        Some("\"e1\""),
    );
    let home = tempfile::tempdir().unwrap();
    let reg = Registry::new(home.path());
    reg.add("u", &server.url("i.toml")).await.unwrap();
    server.clear_requests();

    let out = reg.update(Some("u")).await.unwrap();
    assert_eq!(*out[0].status.as_ref().unwrap(), UpdateStatus::NotModified);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].if_none_match.as_deref(), Some("\"e1\""));
    assert_eq!(reqs[0].status, 304);

    // A new version: fetched, validated and cached, with the new ETag.
    server.put(
        "i.toml",
        index_toml("u", &[("beta", &[], "second")]),
        Some("\"e2\""),
    );
    let out = reg.update(None).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(*out[0].status.as_ref().unwrap(), UpdateStatus::Updated);
    assert_eq!(reg.list().unwrap()[1].etag.as_deref(), Some("\"e2\""));
    assert_eq!(reg.search("beta").unwrap().len(), 1);

    // A broken new version keeps the old cache.
    server.put("i.toml", "schema = 1\n[repository\n", Some("\"e3\""));
    let out = reg.update(Some("u")).await.unwrap();
    assert!(matches!(out[0].status, Err(RegistryError::Index(_))));
    assert_eq!(reg.search("beta").unwrap().len(), 1);
    assert_eq!(reg.list().unwrap()[1].etag.as_deref(), Some("\"e2\""));

    // The built-in repository: always there, cannot be removed.
    let err = reg.remove("vimana").unwrap_err();
    assert!(err.to_string().contains("cannot be removed"), "{err}");
    let out = reg.update(Some("vimana")).await.unwrap();
    assert_eq!(*out[0].status.as_ref().unwrap(), UpdateStatus::Builtin);
    assert!(matches!(
        reg.update(Some("nope")).await,
        Err(RegistryError::RepoNotFound { .. })
    ));
}
