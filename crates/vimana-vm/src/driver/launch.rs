//! Booting a VM (plan → processes → agent ready) and re-adopting one that
//! a previous daemon started.

use std::sync::Arc;

use vimana_agent::AGENT_PORT;
use vimana_agent::client::AgentClient;
use vimana_core::{DriverError, Instance, RunContext};

use super::handle::{Proc, VmHandle, save_spawning};
use super::instance::{TAIL_LINES, VmInstance};
use super::prepare::{console_tail, launch_spec, modules_next_to};
use super::ready::{Announcements, NotReady, ReadyBy, agent_ready};
use super::{SharedVmm, VmDriverConfig};
use crate::model::{Provider, VmConfig};
use crate::network::{BridgeNetwork, TapLease};
use crate::provider::{
    Accel, CloudHypervisor, ExecuteOptions, Firecracker, HostFacts, Qemu, Spawned,
    execute_plan_with,
};

/// The provider with its binaries resolved on this host (PATH and
/// `~/.cargo/bin`), so the daemon's own PATH does not matter.
pub(crate) fn resolved_vmm(provider: Provider, host: &HostFacts) -> SharedVmm {
    match provider {
        Provider::Qemu => {
            let mut q = Qemu::default();
            if let Some(p) = host.find(&q.binary) {
                q.binary = p;
            }
            if let Some(p) = host.find(&q.vsock_binary) {
                q.vsock_binary = p;
            }
            Arc::new(q)
        }
        Provider::Firecracker => {
            let mut f = Firecracker::default();
            if let Some(p) = host.find(&f.binary) {
                f.binary = p;
            }
            Arc::new(f)
        }
        Provider::CloudHypervisor => {
            let mut c = CloudHypervisor::default();
            if let Some(p) = host.find(&c.binary) {
                c.binary = p;
            }
            Arc::new(c)
        }
    }
}

fn proc_of(s: &Spawned) -> Proc {
    Proc {
        name: s.name.clone(),
        pid: s.pid,
        start: vimana_goplugin::pid_start_time(s.pid),
    }
}

/// A fresh run directory (0700); the console log of an earlier boot is kept
/// as `console.log.1`.
fn prepare_run_dir(dir: &std::path::Path) -> Result<(), DriverError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| DriverError::new(format!("cannot create {}: {e}", dir.display())))?;
    let log = dir.join("console.log");
    if log.exists() {
        let _ = std::fs::rename(&log, dir.join("console.log.1"));
    }
    Ok(())
}

/// Boots the VM and waits until its agent answers. In bridge mode the VM
/// gets a TAP lease first, released again if the boot fails.
pub(crate) async fn launch(
    cfg: &VmDriverConfig,
    ctx: &RunContext,
    config: &VmConfig,
    kvm: Result<(), String>,
    net: Option<Arc<BridgeNetwork>>,
) -> Result<Box<dyn Instance>, DriverError> {
    let lease = match &net {
        Some(net) => {
            let lease = net
                .attach(ctx.name.as_str(), &config.network)
                .await
                .map_err(|e| DriverError::new(format!("bridge networking: {e}")))?;
            for w in &lease.warnings {
                ctx.logs.daemon(format!("warning: {w}"));
            }
            ctx.logs.daemon(format!(
                "network: {} on {} with {}/{}",
                lease.tap, lease.bridge, lease.address, lease.prefix
            ));
            Some(lease)
        }
        None => None,
    };
    let booted = boot(cfg, ctx, config, kvm, lease.clone(), net.clone()).await;
    if booted.is_err()
        && let (Some(net), Some(lease)) = (&net, &lease)
        && let Err(e) = net.detach(lease).await
    {
        ctx.logs
            .daemon(format!("cannot release {}: {e}", lease.tap));
    }
    booted
}

async fn boot(
    cfg: &VmDriverConfig,
    ctx: &RunContext,
    config: &VmConfig,
    kvm: Result<(), String>,
    lease: Option<TapLease>,
    net: Option<Arc<BridgeNetwork>>,
) -> Result<Box<dyn Instance>, DriverError> {
    let provider = config.provider_or(Provider::Qemu);
    let host = HostFacts::from_env(kvm.clone());
    let vmm = resolved_vmm(provider, &host);
    vmm.check(&host)
        .map_err(|why| DriverError::new(format!("cannot run {provider} here: {why}")))?;
    let accel = match (&kvm, provider) {
        (Ok(()), _) => Accel::Kvm,
        (Err(why), Provider::Qemu) => {
            ctx.logs.daemon(format!(
                "warning: KVM is not usable ({why}); running under TCG software emulation, \
                 which is much slower"
            ));
            Accel::Tcg
        }
        (Err(why), p) => {
            return Err(DriverError::new(format!(
                "{p} needs KVM, which is not usable here: {why}; use provider qemu"
            )));
        }
    };
    let name = ctx.name.as_str();
    let run_dir = cfg.state_dir.join(name);
    prepare_run_dir(&run_dir)?;
    let config = &image_root(cfg, ctx, config, &run_dir).await?;
    let spec = {
        let (config, name, run_dir, cfg) = (
            config.clone(),
            name.to_string(),
            run_dir.clone(),
            cfg.clone(),
        );
        let lease = lease.clone();
        tokio::task::spawn_blocking(move || {
            launch_spec(&config, &name, &run_dir, accel, &cfg, lease.as_ref())
        })
        .await
        .map_err(|e| DriverError::new(format!("preparing the VM failed: {e}")))??
    };
    let plan = vmm
        .plan(&spec)
        .map_err(|e| DriverError::new(e.to_string()))?;
    // Listening before the VMM starts: the agent may announce itself early.
    let announcements = spec
        .vsock
        .as_ref()
        .and_then(|v| Announcements::bind(&v.uds_path));
    // Every process is recorded in the run directory as soon as it starts
    // (the VMM: the whole handle), before its sockets are waited for, so a
    // daemon killed from here on leaves a VM the next one finds.
    let processes = plan.processes.len();
    let mut record = |started: &[Spawned]| {
        let saved = match started.split_last() {
            Some((vmm, sidecars)) if started.len() == processes => VmHandle {
                provider,
                spec: spec.clone(),
                vmm: proc_of(vmm),
                sidecars: sidecars.iter().map(proc_of).collect(),
                net: lease.clone(),
            }
            .save(&run_dir),
            _ => save_spawning(&run_dir, &started.iter().map(proc_of).collect::<Vec<_>>()),
        };
        if let Err(e) = saved {
            ctx.logs.daemon(format!(
                "warning: cannot record the VM's processes in {}: {e} (a daemon crash during \
                 this boot would leave them unmanaged)",
                run_dir.display()
            ));
        }
    };
    let mut spawned = execute_plan_with(&plan, &ExecuteOptions::default(), &mut record)
        .await
        .map_err(|e| {
            let tail = console_tail(&spec.console_log, TAIL_LINES);
            DriverError::new(with_tail(format!("cannot start the VM: {e}"), &tail))
        })?;
    let Some(mut vmm_proc) = spawned.pop() else {
        return Err(DriverError::new("the launch plan started no VMM process"));
    };
    let handle = VmHandle {
        provider,
        spec: spec.clone(),
        vmm: proc_of(&vmm_proc),
        sidecars: spawned.iter().map(proc_of).collect(),
        net: lease,
    };
    ctx.logs.daemon(format!(
        "{provider} started (pid {}), waiting for the guest agent",
        vmm_proc.pid
    ));

    let kill_all = |spawned: &mut Vec<Spawned>, vmm_proc: &mut Spawned| {
        let _ = vmm_proc.child.start_kill();
        for s in spawned.iter_mut() {
            let _ = s.child.start_kill();
        }
    };
    let Some(vsock) = spec.vsock.clone() else {
        kill_all(&mut spawned, &mut vmm_proc);
        return Err(DriverError::new(
            "the VM has no vsock device to reach its agent",
        ));
    };
    let agent = AgentClient::hybrid_unix(vsock.uds_path, AGENT_PORT);
    let ready = agent_ready(
        announcements.as_ref(),
        &spec.console_log,
        &agent,
        cfg.ready_timeout,
    );
    let outcome = tokio::select! {
        r = ready => Ok(r),
        status = vmm_proc.child.wait() => Err(status),
    };
    match outcome {
        Ok(Ok((status, by))) => {
            let how = match by {
                ReadyBy::Announced => "announced itself over vsock",
                ReadyBy::Polled => "answered over vsock",
            };
            ctx.logs.daemon(format!(
                "guest agent ready: {how} (kernel {}, agent {})",
                status.kernel_release, status.agent_version
            ));
        }
        Ok(Err(e)) => {
            kill_all(&mut spawned, &mut vmm_proc);
            let _ = vmm_proc.child.wait().await;
            let tail = console_tail(&spec.console_log, TAIL_LINES);
            let message = match e {
                NotReady::NoVsock => no_vsock_message(config, &spec.kernel),
                NotReady::Agent(e) => format!(
                    "the guest agent did not answer within {}s: {e}",
                    cfg.ready_timeout.as_secs()
                ),
            };
            return Err(DriverError::new(with_tail(message, &tail)));
        }
        Err(status) => {
            kill_all(&mut spawned, &mut vmm_proc);
            let how = status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let tail = console_tail(&spec.console_log, TAIL_LINES);
            return Err(DriverError::new(with_tail(
                format!("the VM stopped while booting ({provider} {how})"),
                &tail,
            )));
        }
    }
    let children = spawned.into_iter().map(|s| s.child).collect();
    Ok(Box::new(VmInstance::new(
        handle,
        Arc::clone(&vmm),
        Some(vmm_proc.child),
        cfg.stop_timeout,
        ctx.logs.clone(),
        children,
        net,
    )))
}

/// For a root from an OCI image: the cached ext4 image (pulled and built
/// once per digest, with the agent), copied for this VM (the cached one is
/// shared) and used as its drive.
async fn image_root(
    cfg: &VmDriverConfig,
    ctx: &RunContext,
    config: &VmConfig,
    run_dir: &std::path::Path,
) -> Result<VmConfig, DriverError> {
    let crate::model::RootFs::Image { reference } = &config.root else {
        return Ok(config.clone());
    };
    let agent = super::prepare::guest_agent(cfg)?;
    let builder =
        crate::rootfs::RootfsBuilder::new(cfg.rootfs_cache(), cfg.insecure_registries.clone());
    let image = builder
        .build(reference, &agent, config.disk_bytes)
        .await
        .map_err(|e| DriverError::new(format!("root filesystem from {reference}: {e}")))?;
    ctx.logs.daemon(format!(
        "root filesystem from {reference} ({}{})",
        image.manifest_digest,
        if image.reused { ", cached" } else { "" }
    ));
    // Copied beside and renamed into place: a VMM that still had the old
    // disk open keeps its own file, and a crash mid-copy leaves no
    // half-copied root.ext4.
    let disk = run_dir.join("root.ext4");
    let partial = run_dir.join(".root.ext4.partial");
    let copied = tokio::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(&image.path)
        .arg(&partial)
        .status()
        .await
        .map_err(|e| DriverError::new(format!("cannot copy {}: {e}", image.path.display())))?;
    if !copied.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(DriverError::new(format!(
            "copying {} to {} failed ({copied})",
            image.path.display(),
            partial.display()
        )));
    }
    std::fs::rename(&partial, &disk).map_err(|e| {
        DriverError::new(format!(
            "cannot move {} to {}: {e}",
            partial.display(),
            disk.display()
        ))
    })?;
    let mut config = config.clone();
    config.root = crate::model::RootFs::Drive { path: disk };
    Ok(config)
}

/// The guest kernel has no vsock (the agent said so): why, and the fix.
fn no_vsock_message(config: &VmConfig, kernel: &std::path::Path) -> String {
    let head = format!(
        "the guest kernel {} has no vsock support, so the agent cannot be reached",
        kernel.display()
    );
    let fix = "or boot a kernel built with CONFIG_VIRTIO_VSOCKETS=y";
    match config.modules.clone().or_else(|| modules_next_to(kernel)) {
        None => format!(
            "{head}: no kernel modules were found for it (it is not in the Debian layout \
             <root>/boot/vmlinuz-<release> next to <root>/lib/modules/<release>, and hac.toml \
             sets no modules directory); set `[boot] modules = DIR` to the kernel's \
             lib/modules/<release> directory, {fix}"
        ),
        Some(dir) => format!(
            "{head}: the modules in {} did not provide it (vmw_vsock_virtio_transport); check \
             that `[boot] modules` names this kernel's lib/modules/<release> directory, {fix}",
            dir.display()
        ),
    }
}

pub(crate) fn with_tail(message: String, tail: &str) -> String {
    if tail.is_empty() {
        format!("{message} (the console printed nothing)")
    } else {
        format!("{message}; last console lines:\n{tail}")
    }
}
