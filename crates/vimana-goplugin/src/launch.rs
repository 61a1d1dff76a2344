//! Launching a plugin: checks, spawn with the go-plugin environment,
//! handshake line, AutoMTLS connect and health check.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{PluginClient, ReattachConfig};
use crate::config::{LaunchConfig, Output};
use crate::connect::{Target, check_health, connect};
use crate::error::GoPluginError;
use crate::handshake::parse_handshake_line;
use crate::output::{HandshakeSource, StderrTail, spawn_stderr_pump};
use crate::process::{Proc, pid_start_time};
use crate::tail::TailFollower;
use crate::tls::{self, CertPair};

/// Capacity of the parsed-stderr channel.
const STDERR_CHANNEL: usize = 1024;

fn check_program(path: &Path) -> Result<(), GoPluginError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => GoPluginError::NotFound {
            path: path.to_path_buf(),
        },
        _ => GoPluginError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(GoPluginError::NotExecutable {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn open_append(program: &Path, file: &Path) -> Result<(std::fs::File, u64), GoPluginError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|f| f.metadata().map(|m| (f, m.len())));
    f.map_err(|source| GoPluginError::OutputFile {
        path: program.to_path_buf(),
        file: file.to_path_buf(),
        source,
    })
}

/// Starts the plugin and returns once it is connected and healthy.
pub async fn launch(cfg: LaunchConfig) -> Result<PluginClient, GoPluginError> {
    spawn(cfg)?.handshake().await
}

/// A plugin process that runs but has not yet sent its handshake line.
/// Its pid and start time are known, so a host can record them (to find
/// the process again if the host dies) before the slow part,
/// [`Spawned::handshake`].
pub struct Spawned {
    cfg: LaunchConfig,
    pid: u32,
    start_time: Option<u64>,
    host_cert: Option<CertPair>,
    source: HandshakeSource,
    stderr_tail: StderrTail,
    stderr_rx: Option<mpsc::Receiver<crate::hclog::LogLine>>,
    proc: Proc,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `/proc/<pid>/stat` field 22, to tell a reused pid apart.
    pub fn start_time(&self) -> Option<u64> {
        self.start_time
    }

    /// Waits for the handshake line, connects (AutoMTLS) and checks health;
    /// the process is killed on any failure.
    pub async fn handshake(self) -> Result<PluginClient, GoPluginError> {
        let Spawned {
            cfg,
            pid,
            start_time,
            host_cert,
            mut source,
            stderr_tail,
            stderr_rx,
            proc,
        } = self;
        let path = cfg.program.clone();
        let hs = &cfg.handshake;
        let deadline = Instant::now() + cfg.start_timeout;
        let line = match wait_line(&mut source, &proc, deadline).await {
            Ok(line) => line,
            Err(Waited::Exited) => {
                proc.wait_exit().await;
                return Err(GoPluginError::ExitedBeforeHandshake {
                    path,
                    status: proc
                        .exit_status()
                        .unwrap_or_else(|| "unknown status".into()),
                    stderr_tail: stderr_tail.text().await,
                });
            }
            Err(Waited::TimedOut) => {
                kill_and_reap(&proc).await;
                return Err(GoPluginError::HandshakeTimeout {
                    path,
                    timeout: cfg.start_timeout,
                    cookie: hs.cookie(),
                });
            }
            Err(Waited::Io(source)) => {
                kill_and_reap(&proc).await;
                return Err(GoPluginError::Io { path, source });
            }
        };
        tracing::debug!(plugin = %path.display(), pid, "handshake: {line}");

        let result = finish(&path, &cfg, &line, host_cert).await;
        let (reattach, channel) = match result {
            Ok(ok) => ok,
            Err(e) => {
                kill_and_reap(&proc).await;
                return Err(e);
            }
        };
        source.drain_in_background(path.clone());
        Ok(PluginClient {
            path,
            proc,
            reattach: ReattachConfig {
                pid,
                pid_start_time: start_time,
                ..reattach
            },
            channel,
            stderr_rx,
        })
    }
}

/// Starts the plugin process with the go-plugin environment; returns before
/// its handshake ([`Spawned::handshake`] does the rest).
pub fn spawn(cfg: LaunchConfig) -> Result<Spawned, GoPluginError> {
    let path = cfg.program.clone();
    check_program(&path)?;
    let tls_err = |reason: String| GoPluginError::Tls {
        path: path.clone(),
        reason,
    };
    let host_cert: Option<CertPair> = if cfg.auto_mtls {
        Some(tls::generate_cert(false).map_err(tls_err)?)
    } else {
        None
    };

    let hs = &cfg.handshake;
    let versions: Vec<String> = hs.app_versions.iter().map(u32::to_string).collect();
    let mut cmd = tokio::process::Command::new(&path);
    cmd.args(&cfg.args)
        .envs(cfg.env.iter().map(|(k, v)| (k, v)))
        .env(&hs.cookie_key, &hs.cookie_value)
        .env("PLUGIN_PROTOCOL_VERSIONS", versions.join(","))
        .env("PLUGIN_MIN_PORT", cfg.min_port.to_string())
        .env("PLUGIN_MAX_PORT", cfg.max_port.to_string())
        .stdin(Stdio::null());
    match &host_cert {
        Some(c) => cmd.env("PLUGIN_CLIENT_CERT", &c.cert_pem),
        None => cmd.env_remove("PLUGIN_CLIENT_CERT"),
    };
    let mut files = None;
    match &cfg.output {
        Output::Piped => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Output::Files { stdout, stderr } => {
            let (out, out_len) = open_append(&path, stdout)?;
            let (err, err_len) = open_append(&path, stderr)?;
            cmd.stdout(out).stderr(err);
            files = Some((stdout.clone(), out_len, stderr.clone(), err_len));
        }
    }
    if cfg.detach {
        crate::process::own_session(&mut cmd);
    }
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::PermissionDenied => GoPluginError::NotExecutable { path: path.clone() },
        _ => GoPluginError::Spawn {
            path: path.clone(),
            source,
        },
    })?;
    let pid = child.id().ok_or_else(|| GoPluginError::Spawn {
        path: path.clone(),
        source: std::io::Error::other("child exited immediately"),
    })?;
    let start_time = pid_start_time(pid);

    let (tx, rx) = mpsc::channel(STDERR_CHANNEL);
    let (source, stderr_tail, stderr_rx) = match files {
        None => {
            let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
                return Err(GoPluginError::Spawn {
                    path,
                    source: std::io::Error::other("stdout/stderr pipes missing"),
                });
            };
            let tail = spawn_stderr_pump(err, tx);
            (HandshakeSource::Pipe(BufReader::new(out)), tail, Some(rx))
        }
        Some((out, out_len, err, err_len)) => (
            HandshakeSource::File(TailFollower::new(out, out_len)),
            StderrTail::File {
                path: err,
                offset: err_len,
            },
            None,
        ),
    };
    let proc = Proc::watch_child(child, pid);
    Ok(Spawned {
        cfg,
        pid,
        start_time,
        host_cert,
        source,
        stderr_tail,
        stderr_rx,
        proc,
    })
}

/// Parses the line, connects (AutoMTLS if the plugin sent a certificate)
/// and checks health.
async fn finish(
    path: &Path,
    cfg: &LaunchConfig,
    line: &str,
    host_cert: Option<CertPair>,
) -> Result<(ReattachConfig, tonic::transport::Channel), GoPluginError> {
    let hs = parse_handshake_line(path, line, &cfg.handshake.app_versions)?;
    let tls = match (&hs.server_cert_der, &host_cert) {
        (Some(der), Some(host)) => Some(Arc::new(
            tls::client_config(der.clone(), &host.cert_pem, &host.key_pem).map_err(|reason| {
                GoPluginError::Tls {
                    path: path.to_path_buf(),
                    reason,
                }
            })?,
        )),
        (Some(_), None) => {
            return Err(GoPluginError::Tls {
                path: path.to_path_buf(),
                reason:
                    "the plugin sent a server certificate but AutoMTLS is off: enable auto_mtls"
                        .into(),
            });
        }
        (None, Some(_)) => {
            tracing::warn!(plugin = %path.display(), "AutoMTLS requested but the plugin sent no certificate; using plaintext");
            None
        }
        (None, None) => None,
    };
    let target = Target {
        network: hs.network.clone(),
        address: hs.address.clone(),
        tls,
    };
    let timeout = cfg.start_timeout.max(Duration::from_secs(1));
    let channel = connect(path, &target, timeout).await?;
    check_health(path, channel.clone(), timeout).await?;
    let mtls = hs.server_cert_der.is_some();
    Ok((
        ReattachConfig {
            pid: 0,
            pid_start_time: None,
            network: hs.network,
            address: hs.address,
            app_version: hs.app_version,
            client_cert_pem: host_cert
                .as_ref()
                .filter(|_| mtls)
                .map(|c| c.cert_pem.clone()),
            client_key_pem: host_cert
                .as_ref()
                .filter(|_| mtls)
                .map(|c| c.key_pem.clone()),
            server_cert_der: hs.server_cert_der,
        },
        channel,
    ))
}

enum Waited {
    Exited,
    TimedOut,
    Io(std::io::Error),
}

async fn wait_line(
    source: &mut HandshakeSource,
    proc: &Proc,
    deadline: Instant,
) -> Result<String, Waited> {
    let mut eof = false;
    loop {
        tokio::select! {
            biased;
            r = source.next_line(), if !eof => match r {
                Ok(Some(line)) => return Ok(line),
                Ok(None) => eof = true,
                Err(e) => return Err(Waited::Io(e)),
            },
            _ = proc.wait_exit() => return Err(Waited::Exited),
            _ = tokio::time::sleep_until(deadline) => return Err(Waited::TimedOut),
        }
    }
}

async fn kill_and_reap(proc: &Proc) {
    proc.kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), proc.wait_exit()).await;
}
