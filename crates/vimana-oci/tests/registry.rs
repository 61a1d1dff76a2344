#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Push and pull against a real `docker-registry` on loopback.

mod support;

use sha2::{Digest, Sha256};
use support::{Registry, cache_dir, sample_parts};
use vimana_oci::{OciConfig, OciError, pull, push};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test]
async fn push_then_pull_round_trip() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_push_dir, push_cache) = cache_dir();
    let (_pull_dir, pull_cache) = cache_dir();
    let parts = sample_parts(1, 300_000);
    let reference = registry.reference("dom-1/srv-1", "1.0.1");
    let pushed = push(&registry.config(&push_cache), &reference, &parts)
        .await
        .unwrap();
    assert_eq!(pushed.reference, reference);
    assert!(
        pushed
            .pinned
            .ends_with(&format!("@{}", pushed.manifest_digest))
    );

    let cfg = registry.config(&pull_cache);
    let pulled = pull(&cfg, &reference).await.unwrap();
    assert_eq!(pulled.wasm, parts.wasm);
    assert_eq!(pulled.descriptor_set, parts.descriptor_set);
    assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
    assert_eq!(pulled.wasm_digest, sha256(&parts.wasm));
    assert_eq!(std::fs::read(&pulled.wasm_path).unwrap(), parts.wasm);
    assert_eq!(pulled.version.as_deref(), Some("1.0.1"));
    assert_eq!(pulled.exports, parts.exports);
    assert_eq!(pulled.imports, parts.imports);
    assert!(!pulled.from_cache && !pulled.stale);

    let again = pull(&cfg, &reference).await.unwrap();
    assert!(
        again.from_cache && !again.stale,
        "second tag pull reuses the cache"
    );
    assert_eq!(again.wasm, parts.wasm);

    let by_digest = pull(&registry.config(&cache_dir().1), &pushed.pinned)
        .await
        .unwrap();
    assert_eq!(by_digest.wasm, parts.wasm);
    assert_eq!(by_digest.manifest_digest, pushed.manifest_digest);
}

#[tokio::test]
async fn minimal_artifact_under_two_tags_round_trips() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let mut parts = sample_parts(2, 1000);
    parts.descriptor_set = None;
    parts.exports.clear();
    parts.imports.clear();
    let cfg = registry.config(&cache);
    let first = push(&cfg, &registry.reference("d/s", "a"), &parts)
        .await
        .unwrap();
    let second = push(&cfg, &registry.reference("d/s", "b"), &parts)
        .await
        .unwrap();
    assert_eq!(first.reference, registry.reference("d/s", "a"));
    assert_eq!(second.reference, registry.reference("d/s", "b"));
    let pulled = pull(&cfg, &registry.reference("d/s", "b")).await.unwrap();
    assert_eq!(pulled.wasm, parts.wasm);
    assert_eq!(pulled.descriptor_set, None);
    assert!(pulled.exports.is_empty() && pulled.imports.is_empty());
    assert_eq!(pulled.manifest_digest, second.manifest_digest);
}

#[tokio::test]
async fn missing_tag_is_not_found_naming_the_reference() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let reference = registry.reference("dom-1/absent", "9.9.9");
    let err = pull(&registry.config(&cache), &reference)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&reference), "{err}");
}

#[tokio::test]
async fn http_registry_not_listed_as_insecure_is_refused() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let cfg = OciConfig {
        insecure_registries: vec![],
        cache_dir: cache,
        auth: None,
    };
    let reference = registry.reference("dom-1/srv-1", "1");
    let err = push(&cfg, &reference, &sample_parts(3, 100))
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::InsecureRegistry { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&registry.addr) && text.contains("insecure_registries"),
        "{text}"
    );
    let err = pull(&cfg, &reference).await.unwrap_err();
    assert!(matches!(err, OciError::InsecureRegistry { .. }), "{err:?}");
}

#[tokio::test]
async fn corrupted_cached_blob_is_detected_and_refetched() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let cfg = registry.config(&cache);
    let parts = sample_parts(4, 5000);
    let reference = registry.reference("dom-1/srv-4", "1");
    push(&cfg, &reference, &parts).await.unwrap();
    let first = pull(&cfg, &reference).await.unwrap();
    let mut corrupt = parts.wasm.clone();
    corrupt[100] ^= 0xff;
    std::fs::write(&first.wasm_path, &corrupt).unwrap();

    let second = pull(&cfg, &reference).await.unwrap();
    assert!(
        !second.from_cache,
        "the corrupt blob must be downloaded again"
    );
    assert_eq!(second.wasm, parts.wasm);
    assert_eq!(std::fs::read(&second.wasm_path).unwrap(), parts.wasm);
}

#[tokio::test]
async fn digest_pinned_pull_is_served_from_cache_offline() {
    let Some(mut registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let cfg = registry.config(&cache);
    let parts = sample_parts(5, 2000);
    let pushed = push(&cfg, &registry.reference("dom-1/srv-5", "1"), &parts)
        .await
        .unwrap();
    let online = pull(&cfg, &pushed.pinned).await.unwrap();
    assert!(!online.from_cache);
    registry.stop();

    let offline = pull(&cfg, &pushed.pinned).await.unwrap();
    assert!(offline.from_cache && !offline.stale);
    assert_eq!(offline.wasm, parts.wasm);
    assert_eq!(offline.descriptor_set, parts.descriptor_set);
}

#[tokio::test]
async fn tag_pull_falls_back_to_cache_when_registry_is_down() {
    let Some(mut registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let cfg = registry.config(&cache);
    let parts = sample_parts(6, 2000);
    let reference = registry.reference("dom-1/srv-6", "2.0.0");
    push(&cfg, &reference, &parts).await.unwrap();
    let online = pull(&cfg, &reference).await.unwrap();
    registry.stop();

    let offline = pull(&cfg, &reference).await.unwrap();
    assert!(offline.from_cache && offline.stale);
    assert_eq!(offline.manifest_digest, online.manifest_digest);
    assert_eq!(offline.wasm, parts.wasm);

    let err = pull(&cfg, &registry.reference("dom-1/srv-6", "never-pulled"))
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains(&registry.addr), "{err}");
}

#[tokio::test]
async fn container_image_manifest_is_rejected_on_pull() {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::manifest::{OciDescriptor, OciImageManifest};

    let Some(registry) = Registry::start() else {
        return;
    };
    let reference = registry.reference("dom-1/not-wasm", "1");
    let parsed: oci_client::Reference = reference.parse().unwrap();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"tarball".to_vec();
    let descriptor = |media_type: &str, bytes: &[u8]| OciDescriptor {
        media_type: media_type.into(),
        digest: sha256(bytes),
        size: bytes.len() as i64,
        ..OciDescriptor::default()
    };
    let manifest = OciImageManifest {
        media_type: Some(vimana_oci::MANIFEST_MEDIA_TYPE.into()),
        config: descriptor("application/vnd.oci.image.config.v1+json", &config),
        layers: vec![descriptor("application/wasm", &layer)],
        ..OciImageManifest::default()
    };
    client
        .push_blob(&parsed, config.clone(), &sha256(&config))
        .await
        .unwrap();
    client
        .push_blob(&parsed, layer.clone(), &sha256(&layer))
        .await
        .unwrap();
    client
        .push_manifest(&parsed, &manifest.into())
        .await
        .unwrap();

    let (_dir, cache) = cache_dir();
    let err = pull(&registry.config(&cache), &reference)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::InvalidManifest { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("application/vnd.wasm.config.v0+json") && text.contains(&reference),
        "{text}"
    );
}

#[tokio::test]
async fn moved_tag_is_followed_and_unknown_digest_is_not_found() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_dir, cache) = cache_dir();
    let cfg = registry.config(&cache);
    let reference = registry.reference("dom-1/srv-7", "latest");
    let first = push(&cfg, &reference, &sample_parts(7, 800)).await.unwrap();
    assert_eq!(
        pull(&cfg, &reference).await.unwrap().manifest_digest,
        first.manifest_digest
    );

    let moved = sample_parts(8, 900);
    let second = push(&cfg, &reference, &moved).await.unwrap();
    let pulled = pull(&cfg, &reference).await.unwrap();
    assert_eq!(pulled.manifest_digest, second.manifest_digest);
    assert_eq!(pulled.wasm, moved.wasm);
    assert!(!pulled.from_cache);

    let unknown = format!("{}/dom-1/srv-7@{}", registry.addr, sha256(b"nothing"));
    let err = pull(&cfg, &unknown).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains(&unknown), "{err}");
}
