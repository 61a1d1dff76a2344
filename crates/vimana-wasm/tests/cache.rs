//! The compile cache of `Host::load_cached`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use vimana_wasm::testing::{ADDER_FUNC, ADDER_INTERFACE, adder_component, hello_http_component};
use vimana_wasm::{CacheOutcome, CallOptions, Host, HostConfig, LoadedComponent, Val};

const DIGEST: &str = "sha256:0123456789abcdef";

fn assert_adds(c: &LoadedComponent) {
    let args = [Val::Record(vec![
        ("x".to_string(), Val::Float64(3.5)),
        ("y".to_string(), Val::Float64(-1.2)),
    ])];
    let out = c.call(ADDER_INTERFACE, ADDER_FUNC, &args).unwrap();
    let Val::Result(Ok(Some(resp))) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        **resp,
        Val::Record(vec![("result".to_string(), Val::Float64(3.5 - 1.2))])
    );
}

#[test]
fn second_load_is_a_faster_hit_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let host = Host::new().unwrap();
    let bytes = adder_component();

    let t = Instant::now();
    let (c, outcome) = host.load_cached(&bytes, DIGEST, &cache).unwrap();
    let miss = t.elapsed();
    assert_eq!(outcome, CacheOutcome::Miss);
    assert_adds(&c);
    let path = host.cache_path(DIGEST, &cache);
    assert!(path.is_file(), "{}", path.display());

    let t = Instant::now();
    let (c, outcome) = host.load_cached(&bytes, DIGEST, &cache).unwrap();
    let hit = t.elapsed();
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_adds(&c);
    eprintln!("load_cached: miss {miss:?}, hit {hit:?}");
    assert!(hit < miss, "hit {hit:?} not faster than miss {miss:?}");

    // A second host with the same configuration shares the artifact.
    let other = Host::new().unwrap();
    let (c, outcome) = other.load_cached(&bytes, DIGEST, &cache).unwrap();
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_adds(&c);
}

#[test]
fn http_component_round_trips_through_cache() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new().unwrap();
    let bytes = hello_http_component();
    let (_, first) = host.load_cached(&bytes, "hello", dir.path()).unwrap();
    let (c, second) = host.load_cached(&bytes, "hello", dir.path()).unwrap();
    assert_eq!((first, second), (CacheOutcome::Miss, CacheOutcome::Hit));
    let req = http::Request::get("/").body(bytes::Bytes::new()).unwrap();
    let resp = c.handle_http(req, CallOptions::default()).unwrap();
    assert_eq!(resp.body().as_ref(), b"hello from wasm\n");
}

#[test]
fn corrupt_artifacts_are_recompiled_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new().unwrap();
    let bytes = adder_component();
    let path = host.cache_path(DIGEST, dir.path());
    host.load_cached(&bytes, DIGEST, dir.path()).unwrap();
    let good = std::fs::read(&path).unwrap();

    // Truncated.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let (c, outcome) = host.load_cached(&bytes, DIGEST, dir.path()).unwrap();
    assert_eq!(outcome, CacheOutcome::Miss);
    assert_adds(&c);
    assert_eq!(std::fs::read(&path).unwrap(), good, "artifact rewritten");
    assert_eq!(
        host.load_cached(&bytes, DIGEST, dir.path()).unwrap().1,
        CacheOutcome::Hit
    );

    // Same length, one byte flipped.
    let mut tampered = good.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    std::fs::write(&path, &tampered).unwrap();
    let (c, outcome) = host.load_cached(&bytes, DIGEST, dir.path()).unwrap();
    assert_eq!(outcome, CacheOutcome::Miss);
    assert_adds(&c);

    // Missing sidecar, then garbage.
    let mut sidecar = path.clone().into_os_string();
    sidecar.push(".sha256");
    std::fs::remove_file(&sidecar).unwrap();
    assert_eq!(
        host.load_cached(&bytes, DIGEST, dir.path()).unwrap().1,
        CacheOutcome::Miss
    );
    std::fs::write(&path, b"not a cwasm").unwrap();
    assert_eq!(
        host.load_cached(&bytes, DIGEST, dir.path()).unwrap().1,
        CacheOutcome::Miss
    );
    assert_eq!(
        host.load_cached(&bytes, DIGEST, dir.path()).unwrap().1,
        CacheOutcome::Hit
    );
}

#[test]
fn key_depends_on_digest_and_dir_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new().unwrap();
    assert_ne!(
        host.cache_path("a", dir.path()),
        host.cache_path("b", dir.path())
    );
    // Same engine configuration, same key.
    let same = Host::with_config(HostConfig::default()).unwrap();
    assert_eq!(
        host.cache_path("a", dir.path()),
        same.cache_path("a", dir.path())
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = host
        .load_cached(&adder_component(), "a", dir.path())
        .unwrap_err();
    assert!(matches!(e, vimana_wasm::HostError::Cache(_)), "{e:?}");
}
