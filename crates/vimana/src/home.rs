//! `VIMANA_HOME` and the files in it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The layout of a vimana home directory.
#[derive(Clone, Debug)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// `--home`, else `VIMANA_HOME`, else `~/.vimana`.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        let root = match flag.or_else(|| std::env::var_os("VIMANA_HOME").map(PathBuf::from)) {
            Some(p) => p,
            None => {
                let home = std::env::var_os("HOME")
                    .context("neither --home, VIMANA_HOME nor HOME is set; pass --home DIR")?;
                PathBuf::from(home).join(".vimana")
            }
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()?.join(root)
        };
        Ok(Self { root })
    }

    pub fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(self.logs())
            .with_context(|| format!("cannot create {}", self.logs().display()))
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("state.redb")
    }
    pub fn socket(&self) -> PathBuf {
        self.root.join("vimanad.sock")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn token(&self) -> PathBuf {
        self.root.join("token")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    /// The local CA of the gateway (key 0600).
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }
    /// OCI image cache (blobs by digest).
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    /// Compiled components, by image digest and engine.
    pub fn compiled_dir(&self) -> PathBuf {
        self.root.join("compiled")
    }
    /// Where the daemon writes the gateway's bound addresses.
    pub fn gateway_file(&self) -> PathBuf {
        self.root.join("gateway.json")
    }
    /// The daemon's own log (its stdout/stderr when autostarted). Not in
    /// `logs/`, which holds only workloads' logs (`logs/<name>.*`), so a
    /// workload may be named `daemon`. Daemons before this change wrote to
    /// `logs/daemon.log`; that file is left alone.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    /// One directory per microVM (`vms/<name>`): its sockets
    /// (`console.sock`, `vsock.sock`, `qmp.sock`), `console.log`, VMM logs.
    pub fn vms_dir(&self) -> PathBuf {
        self.root.join("vms")
    }
    /// The run directory of the microVM `name`.
    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.vms_dir().join(name)
    }
    /// Built guest images (initramfs archives), by content hash.
    pub fn vm_cache_dir(&self) -> PathBuf {
        self.root.join("cache").join("vm")
    }
}

/// Reads the API token, creating it (mode 0600) on first use.
pub fn token(path: &Path) -> Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, token.as_bytes())?;
    Ok(token)
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("cannot read /dev/urandom")
}

/// Writes a file readable only by its owner, atomically.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
