//! Documents a registry sends: an image manifest or index (VM root
//! filesystems pick linux/amd64 from an index) and a component artifact's
//! manifest + config blob.

const REFERENCE: &str = "registry.invalid/fuzz/image:1";

/// The whole input as a manifest or index document (as a VM root pull reads
/// it), and, split at the first NUL byte, as an artifact manifest and its
/// config blob (as a component pull reads them).
pub fn oci_manifest(data: &[u8]) {
    let _ = vimana_vm::rootfs::check_manifest_document(REFERENCE, data);
    let (manifest, config) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let _ = vimana_oci::check_artifact_documents(REFERENCE, manifest, config);
}
