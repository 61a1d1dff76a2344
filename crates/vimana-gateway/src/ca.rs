//! The local certificate authority: a CA kept in a directory that issues
//! (and caches) leaf certificates for hostnames without their own.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use time::{Duration as TimeDuration, OffsetDateTime};

use crate::error::GatewayError;

/// The CA certificate's common name.
pub const CA_COMMON_NAME: &str = "vimana local CA";
const KEY_FILE: &str = "ca.key.pem";
const CERT_FILE: &str = "ca.cert.pem";
/// Issued leaves are cached; past this many the cache starts over.
const CACHE_LIMIT: usize = 4096;

/// A local CA (ECDSA P-256) whose key and certificate live in a directory.
pub struct LocalCa {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GatewayError + '_ {
    move |source| GatewayError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The CA's parameters; also rebuilt to sign with a reloaded key (the
/// issuer name and key identifier method are all signing needs).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - TimeDuration::days(1);
    params.not_after = now + TimeDuration::days(3650);
    params
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), GatewayError> {
    let tmp: PathBuf = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

impl LocalCa {
    /// Loads the CA from `dir`, or creates it there (key `ca.key.pem` with
    /// mode 0600, certificate `ca.cert.pem`, valid 10 years).
    pub fn load_or_create(dir: &Path) -> Result<LocalCa, GatewayError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let (key, ca_pem) = if key_path.exists() && cert_path.exists() {
            let key_pem = fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
            let cert_pem = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
            (KeyPair::from_pem(&key_pem)?, cert_pem)
        } else {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let cert = ca_params().self_signed(&key)?;
            write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
            (key, cert.pem())
        };
        let ca_der =
            CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| GatewayError::Io {
                path: cert_path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })?;
        Ok(LocalCa {
            ca_pem,
            ca_der,
            issuer: Issuer::new(ca_params(), key),
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM-encoded (what clients should trust).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A certificate for `hostname` (SAN = hostname, valid 1 year, chain
    /// leaf + CA), issued on first use and cached.
    pub fn issue(&self, hostname: &str) -> Result<Arc<CertifiedKey>, GatewayError> {
        let host = hostname.to_ascii_lowercase();
        if let Some(found) = self.lock().get(&host) {
            return Ok(Arc::clone(found));
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(vec![host.clone()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host.clone());
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - TimeDuration::days(1);
        params.not_after = now + TimeDuration::days(365);
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der)?;
        let certified = Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signer,
        ));
        let mut issued = self.lock();
        if issued.len() >= CACHE_LIMIT {
            issued.clear();
        }
        issued.insert(host, Arc::clone(&certified));
        Ok(certified)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CertifiedKey>>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_the_same_ca_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalCa::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = LocalCa::load_or_create(dir.path()).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        let a = second.issue("Example.Test").unwrap();
        let b = second.issue("example.test").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.cert.len(), 2);
    }
}
