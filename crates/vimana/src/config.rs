//! `VIMANA_HOME/config.toml`: host facts written by `vimana init`, and
//! daemon tunables.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub host: HostFacts,
    #[serde(default)]
    pub daemon: DaemonConfig,
}

/// What `vimana init` found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    #[serde(default)]
    pub kvm: bool,
    #[serde(default)]
    pub tun: bool,
    #[serde(default)]
    pub vsock: bool,
    #[serde(default)]
    pub cgroup_v2: bool,
    #[serde(default)]
    pub hypervisors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// How often a running spacecore is asked for its Status.
    pub poll_interval_ms: u64,
    /// First restart delay after a crash; doubles up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// A run this long resets the backoff.
    pub healthy_reset_ms: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 2000,
            backoff_base_ms: 500,
            backoff_max_ms: 60_000,
            healthy_reset_ms: 60_000,
        }
    }
}

impl Config {
    /// Reads the file; a missing file is the default configuration.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid vimana config; fix it or delete it and run `vimana init`",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}
