//! The go-plugin handshake line: `CORE|APP|NETWORK|ADDR|PROTOCOL|SERVERCERT[|MUX]`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::error::GoPluginError;

/// go-plugin's core protocol version; the only one we speak.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// A parsed, validated handshake line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub app_version: u32,
    /// `unix` or `tcp`.
    pub network: String,
    pub address: String,
    /// DER of the plugin's AutoMTLS server certificate, if any.
    pub server_cert_der: Option<Vec<u8>>,
    /// go-plugin's optional 7th field (gRPC multiplexing); recorded, unused.
    pub mux: bool,
}

impl Handshake {
    /// Formats the line a plugin prints (certificate base64 without padding).
    pub fn to_line(&self) -> String {
        let cert = self
            .server_cert_der
            .as_deref()
            .map(|d| STANDARD_NO_PAD.encode(d))
            .unwrap_or_default();
        format!(
            "{CORE_PROTOCOL_VERSION}|{}|{}|{}|grpc|{cert}",
            self.app_version, self.network, self.address
        )
    }
}

/// Parses and validates a handshake line printed by the plugin at `path`.
/// `offered` are the app versions the host offered.
pub fn parse_handshake_line(
    path: &Path,
    line: &str,
    offered: &[u32],
) -> Result<Handshake, GoPluginError> {
    let line = line.trim_end_matches(['\n', '\r']);
    let invalid = |reason: &str| GoPluginError::InvalidHandshake {
        path: path.to_path_buf(),
        line: line.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = line.split('|').collect();
    if parts.len() < 5 {
        return Err(invalid("too few fields"));
    }
    let core: u32 = parts[0]
        .trim()
        .parse()
        .map_err(|_| invalid("CORE is not a number"))?;
    if core != CORE_PROTOCOL_VERSION {
        return Err(GoPluginError::CoreProtocol {
            path: path.to_path_buf(),
            got: parts[0].to_string(),
        });
    }
    let app_version: u32 = parts[1]
        .trim()
        .parse()
        .map_err(|_| invalid("APP is not a number"))?;
    let network = parts[2];
    if network != "unix" && network != "tcp" {
        return Err(invalid("NETWORK must be unix or tcp"));
    }
    let address = parts[3];
    if address.is_empty() {
        return Err(invalid("ADDR is empty"));
    }
    let protocol = parts[4];
    if protocol != "grpc" {
        if protocol == "netrpc" || !protocol.is_empty() {
            return Err(GoPluginError::NotGrpc {
                path: path.to_path_buf(),
                protocol: protocol.to_string(),
            });
        }
        return Err(invalid("PROTOCOL is empty"));
    }
    if !offered.contains(&app_version) {
        return Err(GoPluginError::AppVersion {
            path: path.to_path_buf(),
            got: app_version,
            offered: offered.to_vec(),
        });
    }
    let server_cert_der = match parts.get(5).map(|s| s.trim()) {
        None | Some("") => None,
        Some(b64) => Some(decode_cert(b64).ok_or_else(|| invalid("CERT is not base64"))?),
    };
    let mux = parts.get(6).is_some_and(|m| m.trim() == "true");
    Ok(Handshake {
        app_version,
        network: network.to_string(),
        address: address.to_string(),
        server_cert_der,
        mux,
    })
}

fn decode_cert(b64: &str) -> Option<Vec<u8>> {
    if b64.ends_with('=') {
        STANDARD.decode(b64).ok()
    } else {
        STANDARD_NO_PAD.decode(b64).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Handshake, GoPluginError> {
        parse_handshake_line(Path::new("/x/y"), line, &[1, 2])
    }

    #[test]
    fn good_lines() {
        let h = p("1|1|unix|/tmp/plugin123|grpc|\n").unwrap();
        assert_eq!(h.app_version, 1);
        assert_eq!(h.network, "unix");
        assert_eq!(h.address, "/tmp/plugin123");
        assert_eq!(h.server_cert_der, None);
        let h = p("1|2|tcp|127.0.0.1:10000|grpc").unwrap();
        assert_eq!(h.app_version, 2);
        assert_eq!(h.network, "tcp");
        let h = p("1|1|unix|/s|grpc||true").unwrap();
        assert!(h.mux);
    }

    #[test]
    fn cert_padded_and_unpadded() {
        let der = vec![0x30u8, 0x82, 0x01, 0x0a, 0xff];
        let unpadded = STANDARD_NO_PAD.encode(&der);
        let padded = STANDARD.encode(&der);
        assert_ne!(unpadded, padded);
        for enc in [unpadded, padded] {
            let h = p(&format!("1|1|unix|/s|grpc|{enc}")).unwrap();
            assert_eq!(h.server_cert_der.as_deref(), Some(&der[..]));
        }
        let h = Handshake {
            app_version: 1,
            network: "unix".into(),
            address: "/s".into(),
            server_cert_der: Some(der.clone()),
            mux: false,
        };
        assert_eq!(p(&h.to_line()).unwrap(), h);
        let e = p("1|1|unix|/s|grpc|%%%").unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
    }

    #[test]
    fn netrpc_refused() {
        let e = p("1|1|unix|/tmp/x|netrpc|").unwrap_err().to_string();
        assert!(e.contains("\"netrpc\""), "{e}");
        assert!(e.contains("only gRPC plugins"), "{e}");
    }

    #[test]
    fn garbage_quoted() {
        let e = p("hello world").unwrap_err().to_string();
        assert!(e.contains("\"hello world\""), "{e}");
        assert!(e.contains("CORE|APP|NETWORK|ADDR|PROTOCOL|CERT"), "{e}");
        assert!(e.contains("/x/y"), "{e}");
        let e = p("1|1|pipe|/s|grpc|").unwrap_err().to_string();
        assert!(e.contains("unix or tcp"), "{e}");
        assert!(p("x|1|unix|/s|grpc|").is_err());
    }

    #[test]
    fn wrong_core_version() {
        let e = p("2|1|unix|/s|grpc|").unwrap_err();
        assert!(matches!(e, GoPluginError::CoreProtocol { .. }), "{e}");
    }

    #[test]
    fn unoffered_app_version() {
        let e = p("1|5|unix|/s|grpc|").unwrap_err();
        assert!(matches!(e, GoPluginError::AppVersion { got: 5, .. }), "{e}");
        assert!(e.to_string().contains("[1, 2]"));
    }
}
