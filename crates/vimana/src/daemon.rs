//! `vimana daemon`: one per VIMANA_HOME (a lock), re-adopts the workloads it
//! finds in the store, serves the API on a 0600 unix socket (and TCP with a
//! bearer token when asked), and leaves workloads running when it exits.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{SignalKind, signal};
use vimana_core::{Core, CoreApi, CoreOptions, LogBook};

use crate::config::Config;
use crate::home::Home;

/// The microVM driver, configured from `[vm]`.
fn vm_driver(home: &Home, config: &Config) -> vimana_vm::driver::VmDriver {
    let mut cfg = vimana_vm::driver::VmDriverConfig::under(&home.root);
    cfg.state_dir = home.vms_dir();
    cfg.cache_dir = home.vm_cache_dir();
    cfg.insecure_registries = config.images.insecure_registries.clone();
    let vm = &config.vm;
    if let Some(k) = &vm.kernel {
        cfg.default_kernel = Some(k.clone());
    }
    if let Some(a) = &vm.agent {
        cfg.agent = Some(a.clone());
    }
    if let Some(b) = &vm.busybox {
        cfg.busybox = b.clone();
    }
    if let Some(s) = vm.ready_timeout_secs {
        cfg.ready_timeout = Duration::from_secs(s);
    }
    if let Some(s) = vm.stop_timeout_secs {
        cfg.stop_timeout = Duration::from_secs(s);
    }
    vimana_vm::driver::VmDriver::new(cfg)
}

pub async fn run(home: Home, listen: Option<SocketAddr>) -> Result<ExitCode> {
    home.ensure()?;
    let _ = std::fs::set_permissions(&home.root, std::fs::Permissions::from_mode(0o700));
    let _ = nix::unistd::setsid();
    let _lock = lock(&home)?;
    let config = Config::load(&home.config())?;
    let api_limits = config.api.connections.limits("[api.connections]")?;
    let gateway_limits = config.gateway.connections.limits("[gateway.connections]")?;
    raise_fd_limit(&api_limits, &gateway_limits, listen.is_some());
    let store = vimana_store::Store::open(&home.state())?;
    let logs = LogBook::new(home.logs(), Default::default())?;
    let d = &config.daemon;
    let deadlines = config.spacecore.deadlines()?;
    let opts = CoreOptions {
        poll_interval: Duration::from_millis(d.poll_interval_ms.max(50)),
        backoff_base: Duration::from_millis(d.backoff_base_ms),
        backoff_max: Duration::from_millis(d.backoff_max_ms),
        healthy_reset: Duration::from_millis(d.healthy_reset_ms),
        // The spacecore driver's own Status/Logs deadlines (with the
        // plugin's stderr in the message) come first.
        probe_timeout: deadlines.status.saturating_mul(2) + Duration::from_secs(1),
        start_wait: (deadlines.start + Duration::from_secs(60))
            .max(CoreOptions::default().start_wait),
    };
    let vms = Arc::new(vm_driver(&home, &config));
    let core = Core::new(
        store,
        logs,
        vec![
            Arc::new(vimana_spacecore::SpacecoreDriver::with_deadlines(deadlines)),
            Arc::new(vimana_process::ProcessDriver::new()),
            vms.clone(),
        ],
        opts,
    );
    let wasm = wasm_runtime(&home, &config, gateway_limits)?;
    let core = core.with_resource_observer(wasm.clone());
    let adopted = core.adopt_all(Duration::from_secs(30)).await?;
    cleanup_vm_orphans(&core, &vms).await;
    tracing::info!(adopted, home = %home.root.display(), "vimana daemon ready");
    let api: Arc<dyn CoreApi> = Arc::new(core.clone());
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut rx = stop_tx.subscribe();
    let socket = home.socket();
    let unix_api = api.clone();
    let limits = api_limits.clone();
    tasks.spawn(async move {
        vimana_server::serve_unix_with(&socket, unix_api, limits, async move {
            let _ = rx.recv().await;
        })
        .await
        .map_err(anyhow::Error::from)
    });
    if let Some(addr) = listen {
        let token = crate::home::token(&home.token())?;
        let mut rx = stop_tx.subscribe();
        let tcp_api = api.clone();
        tasks.spawn(async move {
            vimana_server::serve_tcp_with(addr, tcp_api, token, api_limits, async move {
                let _ = rx.recv().await;
            })
            .await
            .map_err(anyhow::Error::from)
        });
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let failed = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        r = tasks.join_next() => r,
    };
    let _ = stop_tx.send(());
    wasm.shutdown();
    core.detach_all();
    let _ = std::fs::remove_file(home.socket());
    match failed {
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => bail!("API server task failed: {e}"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// TAP devices, leases and forward tables of VMs the store no longer holds
/// (a daemon killed while a VM booted, then the VM removed); a problem is
/// logged, not fatal.
async fn cleanup_vm_orphans(core: &Core, vms: &vimana_vm::driver::VmDriver) {
    let live: Vec<vimana_api::WorkloadName> = match core.handle(vimana_api::Action::List).await {
        Ok(vimana_api::ActionOutcome::Workloads(all)) => all
            .into_iter()
            .filter(|w| w.kind == vimana_api::WorkloadKind::Vm)
            .map(|w| w.name)
            .collect(),
        _ => return,
    };
    match vms.cleanup_orphans(&live).await {
        Ok(r) if r.taps.is_empty() && r.leases.is_empty() => {}
        Ok(r) => tracing::info!(taps = ?r.taps, leases = ?r.leases, "removed what gone VMs left"),
        Err(e) => tracing::warn!("{e}"),
    }
}

/// The Wasm service runtime: one wasmtime host, the gateway with the local
/// CA, and the listeners from `[gateway]`.
fn wasm_runtime(
    home: &Home,
    config: &Config,
    connections: vimana_listen::ConnLimits,
) -> Result<Arc<vimana_services::WasmRuntime>> {
    let w = &config.wasm;
    let host = vimana_wasm::Host::with_config(vimana_wasm::HostConfig {
        memory_limit: w.memory_limit_mib.saturating_mul(1 << 20),
        max_instances: w.max_instances,
        ..vimana_wasm::HostConfig::default()
    })
    .context("cannot set up the WebAssembly engine; check [wasm] in config.toml")?;
    let ca = vimana_gateway::LocalCa::load_or_create(&home.ca_dir()).with_context(|| {
        format!(
            "cannot load or create the local CA in {}",
            home.ca_dir().display()
        )
    })?;
    let gateway = Arc::new(vimana_gateway::Gateway::new(
        vimana_gateway::GatewayConfig {
            max_request_bytes: config.gateway.max_request_bytes,
            decode_memory_per_connection: config.gateway.decode_memory_per_connection,
            decode_memory_total: config.gateway.decode_memory_total,
            connections,
            local_ca: Some(Arc::new(ca)),
            ..vimana_gateway::GatewayConfig::default()
        },
    ));
    let loader = vimana_services::Loader {
        host,
        oci: crate::cmd::image_oci_config(home, config),
        compile_cache: home.compiled_dir(),
        rt: tokio::runtime::Handle::current(),
    };
    let g = &config.gateway;
    let listen = vimana_services::ListenConfig {
        tls: Some(g.tls_listen.clone()).filter(|s| !s.is_empty()),
        h2c: Some(g.h2c_listen.clone()).filter(|s| !s.is_empty()),
        state_file: Some(home.gateway_file()),
    };
    let _ = std::fs::remove_file(home.gateway_file());
    Ok(Arc::new(vimana_services::WasmRuntime::new(
        loader, gateway, listen,
    )))
}

/// Takes the one-daemon-per-home lock and records our pid in it.
fn lock(home: &Home) -> Result<Flock<std::fs::File>> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(home.lock())
        .with_context(|| format!("cannot open {}", home.lock().display()))?;
    let mut other = String::new();
    let _ = file.read_to_string(&mut other);
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, _)) => bail!(
            "another vimana daemon (pid {}) already runs on {}; stop it first or use another --home",
            other.trim(),
            home.root.display()
        ),
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    Ok(lock)
}

/// Every supervised workload holds a few descriptors (log file, gRPC
/// connection) and every listener up to its connection cap: lift the
/// descriptor limit to fit both (the hard limit too when we may).
fn raise_fd_limit(
    api: &vimana_listen::ConnLimits,
    gateway: &vimana_listen::ConnLimits,
    tcp_api: bool,
) {
    let api_listeners = if tcp_api { 2 } else { 1 };
    let needed = (api.max_connections * api_listeners + gateway.max_connections * 2) as u64 + 4096;
    let now = vimana_listen::raise_nofile(needed);
    if now < needed {
        tracing::warn!(
            limit = now,
            needed,
            "RLIMIT_NOFILE is below what the connection caps need; raise the hard limit \
             (ulimit -Hn, LimitNOFILE=) or lower max_connections in [gateway.connections] / [api.connections]"
        );
    }
}
