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
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub images: ImagesConfig,
    #[serde(default)]
    pub wasm: WasmConfig,
    #[serde(default)]
    pub vm: VmConfig,
    #[serde(default)]
    pub spacecore: SpacecoreConfig,
}

/// `[spacecore]`: deadlines of the plugin calls. A plugin that does not
/// answer in time is killed and reported with its last stderr lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpacecoreConfig {
    /// `Start` (60 000).
    pub start_deadline_ms: u64,
    /// `Stop` (30 000).
    pub stop_deadline_ms: u64,
    /// `Status` and `Logs`, also the daemon's health poll (5 000).
    pub status_deadline_ms: u64,
}

impl Default for SpacecoreConfig {
    fn default() -> Self {
        let d = vimana_spacecore::Deadlines::default();
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            start_deadline_ms: ms(d.start),
            stop_deadline_ms: ms(d.stop),
            status_deadline_ms: ms(d.status),
        }
    }
}

impl SpacecoreConfig {
    /// The validated deadlines: each at least 1 ms.
    pub fn deadlines(&self) -> Result<vimana_spacecore::Deadlines> {
        use std::time::Duration;
        for (key, v) in [
            ("start_deadline_ms", self.start_deadline_ms),
            ("stop_deadline_ms", self.stop_deadline_ms),
            ("status_deadline_ms", self.status_deadline_ms),
        ] {
            if v == 0 {
                anyhow::bail!(
                    "[spacecore] {key} = 0 in config.toml: a deadline must be at least 1 ms; \
                     give a number of milliseconds or remove the key for the default"
                );
            }
        }
        Ok(vimana_spacecore::Deadlines {
            start: Duration::from_millis(self.start_deadline_ms),
            stop: Duration::from_millis(self.stop_deadline_ms),
            status: Duration::from_millis(self.status_deadline_ms),
        })
    }
}

/// `[vm]`: how microVMs boot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmConfig {
    /// Kernel of VMs whose hac.toml names none (default:
    /// `VIMANA_HOME/vm/kernel/vmlinuz` when it exists).
    pub kernel: Option<std::path::PathBuf>,
    /// The static guest agent (default: `$VIMANA_AGENT`, else
    /// `vimana-agent` next to `vimana`, else /usr/lib/vimana/vimana-agent).
    pub agent: Option<std::path::PathBuf>,
    /// busybox-static for the initramfs (default /bin/busybox).
    pub busybox: Option<std::path::PathBuf>,
    /// Seconds a VM may take from launch until its agent answers (120).
    pub ready_timeout_secs: Option<u64>,
    /// Seconds the stop sequence may take before the VMM is killed (30).
    pub stop_timeout_secs: Option<u64>,
}

/// `[gateway]`: where the Wasm services are served.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// TLS listener (SNI routing); empty string = off.
    pub tls_listen: String,
    /// Plaintext HTTP/2 (h2c) and HTTP/1.1 listener; empty string = off.
    pub h2c_listen: String,
    /// Largest gRPC request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// In-flight decode memory of one connection, in bytes (512 MiB): a
    /// request reserves 40 × its message size + 64 KiB before it is
    /// decoded; one that does not fit is answered RESOURCE_EXHAUSTED.
    pub decode_memory_per_connection: usize,
    /// In-flight decode memory of the whole gateway, in bytes (1 GiB).
    pub decode_memory_total: usize,
    /// `[gateway.connections]`: limits of each gateway listener.
    pub connections: ConnectionsConfig,
}

/// `[api]`: the REST API listeners (unix socket, `--listen` TCP).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `[api.connections]`: limits of each API listener.
    pub connections: ConnectionsConfig,
}

/// `[gateway.connections]` / `[api.connections]`: how many clients may be
/// connected to one listener and how long they may take (docs/listeners.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Connections at once; beyond it new connections are closed (4096).
    pub max_connections: usize,
    /// Time for a request's headers, or a connection's first request (10 s).
    pub header_read_timeout_ms: u64,
    /// A connection without a request in flight this long is closed (120 s).
    pub idle_timeout_ms: u64,
    /// HTTP/2 ping interval (30 s).
    pub keepalive_interval_ms: u64,
    /// An unanswered HTTP/2 ping closes the connection after this (10 s).
    pub keepalive_timeout_ms: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        let d = vimana_listen::ConnLimits::default();
        let ms = |t: std::time::Duration| u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
        Self {
            max_connections: d.max_connections,
            header_read_timeout_ms: ms(d.header_read_timeout),
            idle_timeout_ms: ms(d.idle_timeout),
            keepalive_interval_ms: ms(d.keepalive_interval),
            keepalive_timeout_ms: ms(d.keepalive_timeout),
        }
    }
}

impl ConnectionsConfig {
    /// The validated limits; `section` (e.g. `[gateway.connections]`)
    /// names where a bad value is.
    pub fn limits(&self, section: &str) -> Result<vimana_listen::ConnLimits> {
        use std::time::Duration;
        let limits = vimana_listen::ConnLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            keepalive_interval: Duration::from_millis(self.keepalive_interval_ms),
            keepalive_timeout: Duration::from_millis(self.keepalive_timeout_ms),
            ..vimana_listen::ConnLimits::default()
        };
        limits
            .validate()
            .map_err(|why| anyhow::anyhow!("{section} in config.toml: {why}"))?;
        Ok(limits)
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            tls_listen: "127.0.0.1:8443".into(),
            h2c_listen: "127.0.0.1:8080".into(),
            max_request_bytes: 4 << 20,
            decode_memory_per_connection: vimana_gateway::DEFAULT_DECODE_MEMORY_PER_CONNECTION,
            decode_memory_total: vimana_gateway::DEFAULT_DECODE_MEMORY_TOTAL,
            connections: ConnectionsConfig::default(),
        }
    }
}

/// `[images]`: OCI registries of component images.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Registries (`host[:port]`) that may be reached over plain HTTP.
    pub insecure_registries: Vec<String>,
}

/// `[wasm]`: per-request budgets of Wasm components.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Linear memory limit of one instance, in MiB.
    pub memory_limit_mib: usize,
    /// Instances alive at once (the pooling allocator's size).
    pub max_instances: u32,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            memory_limit_mib: 64,
            max_instances: 128,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limits_of_both_listeners_parse_and_bad_values_name_the_key() {
        let text = "[gateway.connections]\nmax_connections = 100\nheader_read_timeout_ms = 1500\n\
                    [api.connections]\nidle_timeout_ms = 0\n";
        let config: Config = toml::from_str(text).unwrap();
        let gw = config
            .gateway
            .connections
            .limits("[gateway.connections]")
            .unwrap();
        assert_eq!(gw.max_connections, 100);
        assert_eq!(gw.header_read_timeout.as_millis(), 1500);
        assert_eq!(gw.idle_timeout.as_secs(), 120);
        let err = config
            .api
            .connections
            .limits("[api.connections]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[api.connections]")
                && err.contains("idle_timeout_ms must be greater than 0"),
            "{err}"
        );
        assert_eq!(Config::default().api.connections.max_connections, 4096);
    }
}
