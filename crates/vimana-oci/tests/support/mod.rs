//! A real `docker-registry` (distribution 2.8) on a free loopback port.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vimana_oci::{ArtifactParts, OciConfig};

/// Where Debian installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; killed on drop.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Start a registry, or `None` (with the reason printed) when the binary is absent.
    pub fn start() -> Option<Self> {
        if !Path::new(REGISTRY_BIN).exists() {
            eprintln!(
                "skipping: {REGISTRY_BIN} is not installed (apt-get install docker-registry)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: vimana-test-secret\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("registry.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let registry = Self {
            child: Some(child),
            addr,
            _dir: dir,
        };
        registry.wait_ready();
        Some(registry)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut head = String::new();
                let _ = s.read_to_string(&mut head);
                if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not become ready on {}", self.addr);
    }

    /// Kill the registry and wait for it to exit (the port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A config that allows this registry over http, caching in `cache`.
    pub fn config(&self, cache: &Path) -> OciConfig {
        OciConfig {
            insecure_registries: vec![self.addr.clone()],
            cache_dir: cache.to_path_buf(),
            auth: None,
        }
    }

    /// `<addr>/<domain>/<server>:<tag>`.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A component-shaped artifact of about `len` bytes, distinct per `seed`.
pub fn sample_parts(seed: u8, len: usize) -> ArtifactParts {
    let mut wasm = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    wasm.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    ArtifactParts {
        wasm,
        descriptor_set: Some(vec![0x0a, 0x03, b'a', b'b', seed]),
        version: Some(format!("1.0.{seed}")),
        exports: vec!["vimana:grpc/handler@0.1.0".into()],
        imports: vec!["wasi:logging/logging".into()],
    }
}

/// A fresh temp dir for a cache.
pub fn cache_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oci-cache");
    (dir, path)
}
