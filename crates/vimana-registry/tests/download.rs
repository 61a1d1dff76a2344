//! Downloads: verified, cached by content, resumed with Range.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;

use common::Server;
use sha2::{Digest, Sha256};
use vimana_registry::{RegistryError, download};

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn no_progress(_: u64, _: Option<u64>) {}

#[tokio::test]
async fn full_download_verifies_and_cache_hit_does_no_request() {
    let server = Server::start().await;
    let data = payload(300_000);
    server.put("a.bin", data.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let last = Mutex::new((0u64, None));
    let progress = |d: u64, t: Option<u64>| *last.lock().unwrap() = (d, t);

    let got = download(
        &server.url("a.bin"),
        Some(&sha(&data)),
        cache.path(),
        &progress,
    )
    .await
    .unwrap();
    assert!(got.verified && !got.cached);
    assert_eq!(got.path, cache.path().join("sha256").join(sha(&data)));
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    assert_eq!(*last.lock().unwrap(), (300_000, Some(300_000)));
    assert_eq!(
        std::fs::read_dir(cache.path().join("partial"))
            .unwrap()
            .count(),
        0
    );

    server.clear_requests();
    let again = download(
        &server.url("a.bin"),
        Some(&sha(&data)),
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap();
    assert!(again.cached);
    assert_eq!(again.path, got.path);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[tokio::test]
async fn without_sha256_returns_the_digest_and_caches_by_url() {
    let server = Server::start().await;
    let data = payload(1000);
    server.put("b.bin", data.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let got = download(&server.url("b.bin"), None, cache.path(), &no_progress)
        .await
        .unwrap();
    assert!(!got.verified);
    assert_eq!(got.sha256, sha(&data));
    server.clear_requests();
    let again = download(&server.url("b.bin"), None, cache.path(), &no_progress)
        .await
        .unwrap();
    assert!(again.cached && !again.verified);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn checksum_mismatch_names_both_digests_and_deletes_partial() {
    let server = Server::start().await;
    let data = payload(5000);
    server.put("c.bin", data.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let url = server.url("c.bin");
    let err = download(&url, Some(&wrong), cache.path(), &no_progress)
        .await
        .unwrap_err();
    let RegistryError::ChecksumMismatch {
        expected,
        actual,
        url: u,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*expected, wrong);
    assert_eq!(*actual, sha(&data));
    assert_eq!(*u, url);
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong) && msg.contains(&sha(&data)) && msg.contains(&url),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(cache.path().join("partial"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(cache.path().join("sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn not_found_names_url_and_status() {
    let server = Server::start().await;
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("missing.bin");
    let err = download(&url, None, cache.path(), &no_progress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url) && err.to_string().contains("404"));
}

#[tokio::test]
async fn cut_download_is_resumed_with_range() {
    let server = Server::start().await;
    let data = payload(200_000);
    server.put("d.bin", data.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("d.bin");

    server.cut_next_after(70_000);
    let err = download(&url, Some(&sha(&data)), cache.path(), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Network { .. }), "{err:?}");
    let parts: Vec<_> = std::fs::read_dir(cache.path().join("partial"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(parts.len(), 1);
    let have = std::fs::metadata(&parts[0]).unwrap().len();
    assert!(have > 0 && have <= 70_000, "{have}");

    server.clear_requests();
    let got = download(&url, Some(&sha(&data)), cache.path(), &no_progress)
        .await
        .unwrap();
    assert!(got.verified);
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].range.as_deref(),
        Some(format!("bytes={have}-").as_str())
    );
    assert_eq!(reqs[0].status, 206);
    assert!(!parts[0].exists());
}

#[tokio::test]
async fn server_ignoring_range_restarts_from_zero() {
    let server = Server::start().await;
    let data = payload(100_000);
    server.put("e.bin", data.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("e.bin");
    server.cut_next_after(30_000);
    assert!(
        download(&url, Some(&sha(&data)), cache.path(), &no_progress)
            .await
            .is_err()
    );

    server.ignore_range(true);
    server.clear_requests();
    let got = download(&url, Some(&sha(&data)), cache.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    let reqs = server.requests();
    assert!(reqs[0].range.is_some());
    assert_eq!(reqs[0].status, 200);
}

#[tokio::test]
async fn file_urls_and_paths_are_copied() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data = payload(4096);
    std::fs::write(&src, &data).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let a = download(
        src.to_str().unwrap(),
        Some(&sha(&data)),
        cache.path(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&a.path).unwrap(), data);
    let c2 = tempfile::tempdir().unwrap();
    let b = download(
        &format!("file://{}", src.display()),
        None,
        c2.path(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(b.sha256, sha(&data));
    assert!(src.exists());
}

#[tokio::test]
async fn concurrent_downloads_of_one_url_transfer_once() {
    let server = Server::start().await;
    let data = payload(500_000);
    server.put("f.bin", data.clone(), None);
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("f.bin");
    let digest = sha(&data);
    let (a, b) = tokio::join!(
        download(&url, Some(&digest), cache.path(), &no_progress),
        download(&url, Some(&digest), cache.path(), &no_progress),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.path, b.path);
    assert!(a.cached != b.cached);
    assert_eq!(server.requests().len(), 1);
}
