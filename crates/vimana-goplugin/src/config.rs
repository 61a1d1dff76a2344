//! Host-side configuration: handshake parameters and how to launch a plugin.

use std::path::PathBuf;
use std::time::Duration;

/// go-plugin handshake parameters shared by host and plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// Environment variable the plugin checks (e.g. `SPACECORE_PLUGIN`).
    pub cookie_key: String,
    /// Value it must have (e.g. `v1`).
    pub cookie_value: String,
    /// App protocol versions. Host: the versions offered. Plugin: the
    /// versions spoken, `app_versions[0]` being the preferred one.
    pub app_versions: Vec<u32>,
}

impl HandshakeConfig {
    /// The spacecore handshake: `SPACECORE_PLUGIN=v1`, app protocol 1.
    pub fn spacecore() -> Self {
        Self {
            cookie_key: "SPACECORE_PLUGIN".into(),
            cookie_value: "v1".into(),
            app_versions: vec![1],
        }
    }

    /// `KEY=VALUE`, for messages.
    pub fn cookie(&self) -> String {
        format!("{}={}", self.cookie_key, self.cookie_value)
    }
}

/// Where the plugin's stdout/stderr go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Pipes to the host; stderr is parsed into [`crate::LogLine`]s.
    Piped,
    /// Appended to files (O_APPEND|O_CREAT); survives the host going away.
    Files { stdout: PathBuf, stderr: PathBuf },
}

/// How to launch a plugin process.
#[derive(Clone, Debug)]
pub struct LaunchConfig {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment (the host's environment is inherited).
    pub env: Vec<(String, String)>,
    pub handshake: HandshakeConfig,
    /// How long to wait for the handshake line.
    pub start_timeout: Duration,
    /// Use go-plugin AutoMTLS (PLUGIN_CLIENT_CERT).
    pub auto_mtls: bool,
    pub output: Output,
    pub min_port: u16,
    pub max_port: u16,
    /// put the plugin in its own session (setsid) so it outlives the host
    pub detach: bool,
}

impl LaunchConfig {
    /// Defaults: 10 s start timeout, AutoMTLS on, piped output, ports
    /// 10000..=25000, not detached.
    pub fn new(program: impl Into<PathBuf>, handshake: HandshakeConfig) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            handshake,
            start_timeout: Duration::from_secs(10),
            auto_mtls: true,
            output: Output::Piped,
            min_port: 10000,
            max_port: 25000,
            detach: false,
        }
    }
}
