//! Taking over VMs a previous daemon started: from the handle in the store
//! (the VM was running), or from the handle file in the run directory (the
//! daemon died while the VM booted, before the handle reached the store).

use std::time::Duration;

use vimana_agent::AGENT_PORT;
use vimana_agent::client::AgentClient;
use vimana_core::{DriverError, Instance, RunContext};

use super::VmDriverConfig;
use super::handle::{VmHandle, take_spawning};
use super::instance::{TAIL_LINES, VmInstance};
use super::launch::{resolved_vmm, with_tail};
use super::prepare::console_tail;
use super::ready::agent_ready;
use crate::provider::HostFacts;

/// Kills what is left of a VM whose VMM is gone (or must go) and releases
/// its TAP lease.
async fn reap(handle: &VmHandle, ctx: &RunContext, driver: &super::VmDriver) {
    for p in handle.procs() {
        if p.alive() {
            kill(p);
        }
    }
    // Its processes were reparented when the old daemon died; give them a
    // moment to be gone before devices and sockets are reused.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while handle.procs().any(super::handle::Proc::alive) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The handle file may describe a newer boot of this VM (the daemon died
    // while relaunching it) that holds the same TAP: it keeps its lease.
    let newer = VmHandle::load(&handle.spec.run_dir)
        .filter(|h| h.vmm != handle.vmm && h.vmm.alive())
        .filter(|h| h.net.as_ref().map(|l| &l.tap) == handle.net.as_ref().map(|l| &l.tap));
    if let Some(lease) = &handle.net
        && newer.is_none()
        && let Ok(net) = driver.network()
        && let Err(e) = net.detach(lease).await
    {
        ctx.logs
            .daemon(format!("cannot release {}: {e}", lease.tap));
    }
}

fn kill(p: &super::handle::Proc) {
    if let Ok(raw) = i32::try_from(p.pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(raw),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn instance(
    cfg: &VmDriverConfig,
    ctx: &RunContext,
    handle: VmHandle,
    driver: &super::VmDriver,
) -> Result<Box<dyn Instance>, DriverError> {
    let net = match handle.net {
        Some(_) => Some(driver.network()?),
        None => None,
    };
    let host = HostFacts::from_env(Err("not probed".into()));
    let vmm = resolved_vmm(handle.provider, &host);
    Ok(Box::new(VmInstance::new(
        handle,
        vmm,
        None,
        cfg.stop_timeout,
        ctx.logs.clone(),
        Vec::new(),
        net,
    )))
}

/// Re-adopts the VM a previous daemon started, if its VMM still runs; a
/// VM whose VMM is gone gets its sidecars killed and its TAP released.
pub(crate) async fn adopt(
    cfg: &VmDriverConfig,
    ctx: &RunContext,
    handle: serde_json::Value,
    driver: &super::VmDriver,
) -> Result<Box<dyn Instance>, DriverError> {
    let handle: VmHandle = serde_json::from_value(handle)
        .map_err(|e| DriverError::new(format!("unreadable VM handle: {e}")))?;
    if !handle.vmm.alive() {
        let tail = console_tail(&handle.spec.console_log, TAIL_LINES);
        reap(&handle, ctx, driver).await;
        return Err(DriverError::new(with_tail(
            format!("the {} process {} is gone", handle.provider, handle.vmm.pid),
            &tail,
        )));
    }
    ctx.logs.daemon(format!(
        "re-adopted the VM ({} pid {})",
        handle.provider, handle.vmm.pid
    ));
    instance(cfg, ctx, handle, driver)
}

/// Before a fresh boot: a VM a previous daemon was still booting when it
/// died (its handle file is in the run directory, the store has none).
/// Its VMM still runs: wait for its agent and take it over. Its VMM is
/// gone, or its agent does not come up in time: clean up and return
/// `None`, so the caller boots anew.
pub(crate) async fn resume_unfinished(
    cfg: &VmDriverConfig,
    ctx: &RunContext,
    driver: &super::VmDriver,
) -> Result<Option<Box<dyn Instance>>, DriverError> {
    let run_dir = cfg.state_dir.join(ctx.name.as_str());
    // Sidecars of a boot whose daemon died before its VMM started.
    for p in take_spawning(&run_dir) {
        if p.alive() {
            ctx.logs.daemon(format!(
                "killing {} (pid {}), left by a boot that did not finish",
                p.name, p.pid
            ));
            kill(&p);
        }
    }
    let Some(handle) = VmHandle::load(&run_dir) else {
        return Ok(None);
    };
    if !handle.vmm.alive() {
        reap(&handle, ctx, driver).await;
        VmHandle::forget(&run_dir);
        return Ok(None);
    }
    ctx.logs.daemon(format!(
        "found the VM a previous daemon was booting ({} pid {}); waiting for its agent",
        handle.provider, handle.vmm.pid
    ));
    let Some(vsock) = &handle.spec.vsock else {
        reap(&handle, ctx, driver).await;
        VmHandle::forget(&run_dir);
        return Ok(None);
    };
    let agent = AgentClient::hybrid_unix(vsock.uds_path.clone(), AGENT_PORT);
    // Its announcement went to the dead daemon: the console line and a
    // status request tell instead.
    match agent_ready(
        None,
        &handle.spec.console_log,
        &agent,
        cfg.ready_timeout.max(Duration::from_secs(1)),
    )
    .await
    {
        Ok((status, _)) => {
            ctx.logs.daemon(format!(
                "re-adopted the VM ({} pid {}): guest agent ready (kernel {}, agent {})",
                handle.provider, handle.vmm.pid, status.kernel_release, status.agent_version
            ));
            instance(cfg, ctx, handle, driver).map(Some)
        }
        Err(e) => {
            ctx.logs.daemon(format!(
                "the VM a previous daemon was booting did not get ready ({e}); booting it anew"
            ));
            reap(&handle, ctx, driver).await;
            VmHandle::forget(&run_dir);
            Ok(None)
        }
    }
}
