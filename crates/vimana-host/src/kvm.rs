//! "Is /dev/kvm really usable?" — run a tiny real-mode guest and watch it exit.
//!
//! Opening `/dev/kvm` proves little: some kernels expose a KVM (e.g. the paravirtual
//! PVM) that creates VMs fine but cannot run an ordinary guest: it fails at some step,
//! or it executes guest code roughly a thousand times slower than hardware (it
//! appears to emulate each instruction), so a stock kernel never gets anywhere. So
//! the probe runs a tiny real-mode guest that first spins through a
//! [`GUEST_LOOP_ITERATIONS`]-iteration `dec ecx; jnz` loop and then does
//! `mov al, 0x42; out 0x10, al; hlt`, and requires exactly `IoOut(0x10, [0x42])`
//! followed by `Hlt` within the timeout. Hardware-assisted KVM finishes the loop in
//! a few milliseconds; an emulating KVM needs over ten seconds, and the probe
//! reports a timeout in `KVM_RUN`. (On the PVM host this crate was written on, the
//! loop-free 5-byte guest passes, so the loop is what makes the probe meaningful.)
//!
//! # Process model
//!
//! `/dev/kvm` is opened in the caller (so permission errors are reported precisely);
//! everything after that runs in a `fork()`ed child that reports through a shared
//! anonymous page and `_exit()`s. The caller polls `waitpid` until the timeout and
//! then `SIGKILL`s the child, so a hang anywhere in the KVM ioctls cannot hang it.
//!
//! Fork safety: after `fork()` in a multi-threaded process only async-signal-safe
//! functions are strictly allowed in the child. The child only makes raw syscalls
//! (KVM ioctls, `mmap`, `prctl`, `getppid`, `close`, `_exit`) and atomic stores to
//! the shared page; kvm-ioctls does not allocate on these paths. It never touches
//! stdio, locks or the allocator, except on a panic path that should not happen (a
//! panic is caught and turned into exit status 101; glibc's fork handlers also
//! keep `malloc` usable in the child). Calling [`kvm_usable`] early, before the
//! program starts many threads, is still recommended, and it is fine from an async
//! runtime via `spawn_blocking` (it blocks for at most `timeout` + ~0.5 s).

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_regs, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use crate::fmt::format_duration;
use crate::kvm_exit::{ExitInfo, ExitKind};

/// The step of the probe that failed or hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmStage {
    /// The probe process has not reported any progress yet.
    Spawn,
    /// `KVM_GET_API_VERSION`.
    ApiVersion,
    /// `KVM_CREATE_VM`.
    CreateVm,
    /// Guest memory: `mmap` + `KVM_SET_USER_MEMORY_REGION`.
    GuestMemory,
    /// `KVM_CREATE_VCPU`.
    CreateVcpu,
    /// `KVM_GET_SREGS` / `KVM_SET_SREGS` / `KVM_SET_REGS`.
    Registers,
    /// `KVM_RUN`.
    Run,
}

impl KvmStage {
    const ALL: [KvmStage; 7] = [
        KvmStage::Spawn,
        KvmStage::ApiVersion,
        KvmStage::CreateVm,
        KvmStage::GuestMemory,
        KvmStage::CreateVcpu,
        KvmStage::Registers,
        KvmStage::Run,
    ];

    fn from_u32(v: u32) -> KvmStage {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(KvmStage::Spawn)
    }
}

impl fmt::Display for KvmStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvmStage::Spawn => "starting the KVM probe process",
            KvmStage::ApiVersion => "KVM_GET_API_VERSION",
            KvmStage::CreateVm => "KVM_CREATE_VM",
            KvmStage::GuestMemory => "KVM_SET_USER_MEMORY_REGION",
            KvmStage::CreateVcpu => "KVM_CREATE_VCPU",
            KvmStage::Registers => "KVM_SET_SREGS/KVM_SET_REGS",
            KvmStage::Run => "KVM_RUN",
        })
    }
}

/// Why KVM is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvmError {
    /// `/dev/kvm` does not exist (or has no driver behind it).
    #[error("/dev/kvm not found: no KVM on this host (module not loaded or virtualization off)")]
    NoDevice,
    /// `/dev/kvm` exists but this user may not open it.
    #[error("cannot open /dev/kvm: permission denied")]
    PermissionDenied,
    /// Opening `/dev/kvm` failed for another reason.
    #[error("cannot open /dev/kvm: {0}")]
    Open(Errno),
    /// `KVM_GET_API_VERSION` returned something other than 12.
    #[error("KVM API version is {0}, expected 12")]
    ApiVersion(i32),
    /// `KVM_CREATE_VM` failed.
    #[error("KVM_CREATE_VM failed: {0}")]
    CreateVm(Errno),
    /// Guest memory could not be mapped or registered.
    #[error("guest memory setup failed (mmap/KVM_SET_USER_MEMORY_REGION): {0}")]
    GuestMemory(Errno),
    /// `KVM_CREATE_VCPU` (or mapping its `kvm_run` area) failed.
    #[error("KVM_CREATE_VCPU failed: {0}")]
    CreateVcpu(Errno),
    /// Reading or setting vCPU registers failed.
    #[error("setting vCPU registers failed (KVM_SET_SREGS/KVM_SET_REGS): {0}")]
    Registers(Errno),
    /// The `KVM_RUN` ioctl itself returned an error.
    #[error("KVM_RUN failed: {0}")]
    Run(Errno),
    /// The test guest exited in a way it should not have; names the exit.
    #[error("test guest made an unexpected exit: {0}")]
    UnexpectedExit(String),
    /// A step (normally `KVM_RUN`) did not finish in time; the probe was killed.
    #[error(
        "{stage} did not return within {}: this kernel's KVM cannot run guests (e.g. PVM); \
         vimana will use QEMU TCG",
        format_duration(*timeout)
    )]
    TimedOut {
        /// The step that hung.
        stage: KvmStage,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The probe process itself could not be run or died (fork/wait failure, crash).
    #[error("KVM probe process failed: {0}")]
    Probe(String),
}

impl KvmError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        const TCG: &str = "vimana will use QEMU TCG (slower) instead";
        match self {
            KvmError::NoDevice => format!(
                "enable VT-x/AMD-V (or nested virtualization for a VM host) and \
                 `modprobe kvm_intel` or `modprobe kvm_amd`; until then {TCG}"
            ),
            KvmError::PermissionDenied => "add your user to the kvm group: \
                 `sudo usermod -aG kvm $USER`, then log in again"
                .to_owned(),
            KvmError::Open(_) => {
                format!("check /dev/kvm's permissions and owner; until then {TCG}")
            }
            KvmError::CreateVm(_) => format!(
                "another hypervisor (VirtualBox, VMware) may hold the CPU's virtualization \
                 extensions; otherwise {TCG}"
            ),
            KvmError::TimedOut { .. } => format!(
                "this kernel's KVM cannot run guests; {TCG}. Bare metal or nested \
                 virtualization gives real KVM"
            ),
            KvmError::ApiVersion(_)
            | KvmError::GuestMemory(_)
            | KvmError::CreateVcpu(_)
            | KvmError::Registers(_)
            | KvmError::Run(_)
            | KvmError::UnexpectedExit(_)
            | KvmError::Probe(_) => format!("this kernel's KVM cannot run guests; {TCG}"),
        }
    }
}

/// Guest-physical (and code) layout of the test guest.
const GUEST_MEM_SIZE: usize = 0x1_0000;
const LOAD_ADDR: u64 = 0x1000;
pub(crate) const PORT: u16 = 0x10;
pub(crate) const VALUE: u8 = 0x42;
/// Iterations of the guest's busy loop: a few ms with hardware virtualization,
/// well over ten seconds when every guest instruction is emulated (PVM).
pub const GUEST_LOOP_ITERATIONS: u32 = 10_000_000;
/// Real mode: `mov ecx, N; l: dec ecx; jnz l; mov al, 0x42; out 0x10, al; hlt`.
const GUEST_CODE: [u8; 15] = {
    let n = GUEST_LOOP_ITERATIONS.to_le_bytes();
    [
        0x66, 0xb9, n[0], n[1], n[2], n[3], // mov ecx, N
        0x66, 0x49, // l: dec ecx
        0x75, 0xfc, // jnz l
        0xb0, VALUE, // mov al, 0x42
        0xe6, PORT as u8, // out 0x10, al
        0xf4,       // hlt
    ]
};
/// Bound on `KVM_RUN` re-entries after signal interruptions.
pub(crate) const MAX_RUNS: usize = 64;

/// Probe whether KVM can actually run a guest, giving up after `timeout`.
///
/// Returns within about `timeout` + 0.5 s whatever happens. See the module docs for
/// how the forked child is used and why it is safe in a multi-threaded caller.
pub fn kvm_usable(timeout: Duration) -> Result<(), KvmError> {
    let kvm = Kvm::new().map_err(|e| match Errno::from_raw(e.errno()) {
        Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => KvmError::NoDevice,
        Errno::EACCES | Errno::EPERM => KvmError::PermissionDenied,
        other => KvmError::Open(other),
    })?;
    let shared = SharedPage::new().map_err(|e| KvmError::Probe(format!("mmap: {e}")))?;
    let parent = getpid();

    // SAFETY: the child only performs raw syscalls and atomic stores (see module docs)
    // and leaves with `_exit`, never returning into the caller's code.
    match unsafe { fork() } {
        Err(e) => Err(KvmError::Probe(format!("fork: {e}"))),
        Ok(ForkResult::Child) => child_main(&kvm, shared.get(), parent),
        Ok(ForkResult::Parent { child }) => wait_for_child(child, shared.get(), timeout),
    }
}

// ---------------------------------------------------------------------------------
// Shared page between parent and child.

/// Result record written by the child. Zeroed memory is a valid initial state.
#[repr(C)]
struct Shared {
    stage: AtomicU32,
    outcome: AtomicU32,
    errno: AtomicI32,
    exit_kind: AtomicU32,
    a: AtomicU64,
    b: AtomicU64,
    c: AtomicU64,
    done: AtomicU32,
}

const OUTCOME_OK: u32 = 1;
const OUTCOME_ERRNO: u32 = 2;
const OUTCOME_EXIT: u32 = 3;
const OUTCOME_API: u32 = 4;

impl Shared {
    fn stage(&self, stage: KvmStage) {
        self.stage.store(stage as u32, Ordering::Release);
    }

    fn finish(&self, outcome: u32) {
        self.outcome.store(outcome, Ordering::Release);
        self.done.store(1, Ordering::Release);
    }

    fn fail(&self, errno: i32) {
        self.errno.store(errno, Ordering::Release);
        self.finish(OUTCOME_ERRNO);
    }

    fn unexpected(&self, info: ExitInfo) {
        self.exit_kind.store(info.kind as u32, Ordering::Release);
        self.a.store(info.a, Ordering::Release);
        self.b.store(info.b, Ordering::Release);
        self.c.store(info.c, Ordering::Release);
        self.finish(OUTCOME_EXIT);
    }

    /// Decode a finished record into the probe result.
    fn result(&self) -> Result<(), KvmError> {
        let stage = KvmStage::from_u32(self.stage.load(Ordering::Acquire));
        let errno = Errno::from_raw(self.errno.load(Ordering::Acquire));
        match self.outcome.load(Ordering::Acquire) {
            OUTCOME_OK => Ok(()),
            OUTCOME_API => Err(KvmError::ApiVersion(
                self.a.load(Ordering::Acquire) as i64 as i32
            )),
            OUTCOME_EXIT => Err(KvmError::UnexpectedExit(
                ExitInfo {
                    kind: ExitKind::from_u32(self.exit_kind.load(Ordering::Acquire)),
                    a: self.a.load(Ordering::Acquire),
                    b: self.b.load(Ordering::Acquire),
                    c: self.c.load(Ordering::Acquire),
                }
                .to_string(),
            )),
            _ => Err(match stage {
                KvmStage::Spawn | KvmStage::ApiVersion => {
                    KvmError::Probe(format!("{stage}: {errno}"))
                }
                KvmStage::CreateVm => KvmError::CreateVm(errno),
                KvmStage::GuestMemory => KvmError::GuestMemory(errno),
                KvmStage::CreateVcpu => KvmError::CreateVcpu(errno),
                KvmStage::Registers => KvmError::Registers(errno),
                KvmStage::Run => KvmError::Run(errno),
            }),
        }
    }
}

/// One page of `MAP_SHARED | MAP_ANONYMOUS` memory holding a [`Shared`].
struct SharedPage(NonNull<Shared>);

const PAGE: usize = 4096;
const _: () = assert!(std::mem::size_of::<Shared>() <= PAGE);

impl SharedPage {
    fn new() -> Result<Self, Errno> {
        // SAFETY: anonymous mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        NonNull::new(ptr.cast::<Shared>())
            .map(SharedPage)
            .ok_or(Errno::ENOMEM)
    }

    fn get(&self) -> &Shared {
        // SAFETY: the page is mapped, page-aligned and zero-initialised, and all-zero
        // bytes are a valid `Shared` (only atomics). It lives as long as `self`.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mapped in `new`.
        unsafe {
            libc::munmap(self.0.as_ptr().cast(), PAGE);
        }
    }
}

// ---------------------------------------------------------------------------------
// Child side.

fn child_main(kvm: &Kvm, shared: &Shared, parent: Pid) -> ! {
    // Die with the parent, and don't outlive a parent that is already gone.
    // SAFETY: plain prctl syscall.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    if getppid() != parent {
        // SAFETY: `_exit` is async-signal-safe and never returns.
        unsafe { libc::_exit(2) }
    }
    let code = match std::panic::catch_unwind(AssertUnwindSafe(|| probe(kvm, shared))) {
        Ok(()) => 0,
        Err(_) => 101,
    };
    // SAFETY: `_exit` skips atexit handlers and stdio flushing that belong to the parent.
    unsafe { libc::_exit(code) }
}

/// The probe proper. Runs in the child; records its progress and result in `sh`.
fn probe(kvm: &Kvm, sh: &Shared) {
    sh.stage(KvmStage::ApiVersion);
    let version = kvm.get_api_version();
    if version != kvm_bindings::KVM_API_VERSION as i32 {
        sh.a.store(version as u64, Ordering::Release);
        return sh.finish(OUTCOME_API);
    }

    sh.stage(KvmStage::CreateVm);
    let vm = match kvm.create_vm() {
        Ok(vm) => vm,
        Err(e) => return sh.fail(e.errno()),
    };

    sh.stage(KvmStage::GuestMemory);
    // SAFETY: fresh private anonymous mapping; the result is checked. It is never
    // unmapped: the child `_exit`s and the kernel reclaims it.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            GUEST_MEM_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return sh.fail(Errno::last_raw());
    }
    // SAFETY: `LOAD_ADDR + GUEST_CODE.len()` is inside the fresh mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(
            GUEST_CODE.as_ptr(),
            mem.cast::<u8>().add(LOAD_ADDR as usize),
            GUEST_CODE.len(),
        );
    }
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: GUEST_MEM_SIZE as u64,
        userspace_addr: mem as u64,
    };
    // SAFETY: the region is a valid mapping that stays mapped for the VM's lifetime.
    if let Err(e) = unsafe { vm.set_user_memory_region(region) } {
        return sh.fail(e.errno());
    }

    sh.stage(KvmStage::CreateVcpu);
    let mut vcpu = match vm.create_vcpu(0) {
        Ok(v) => v,
        Err(e) => return sh.fail(e.errno()),
    };

    sh.stage(KvmStage::Registers);
    let mut sregs = match vcpu.get_sregs() {
        Ok(s) => s,
        Err(e) => return sh.fail(e.errno()),
    };
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if let Err(e) = vcpu.set_sregs(&sregs) {
        return sh.fail(e.errno());
    }
    let regs = kvm_regs {
        rip: LOAD_ADDR,
        rflags: 2,
        ..Default::default()
    };
    if let Err(e) = vcpu.set_regs(&regs) {
        return sh.fail(e.errno());
    }

    sh.stage(KvmStage::Run);
    let mut saw_out = false;
    for _ in 0..MAX_RUNS {
        match vcpu.run() {
            Err(e) if matches!(Errno::from_raw(e.errno()), Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return sh.fail(e.errno()),
            Ok(VcpuExit::Intr) => {}
            Ok(VcpuExit::IoOut(PORT, [VALUE])) if !saw_out => saw_out = true,
            Ok(VcpuExit::Hlt) if saw_out => return sh.finish(OUTCOME_OK),
            Ok(exit) => return sh.unexpected(ExitInfo::classify(&exit, saw_out)),
        }
    }
    sh.unexpected(ExitInfo {
        kind: ExitKind::TooManyInterrupts,
        a: 0,
        b: 0,
        c: 0,
    })
}

// ---------------------------------------------------------------------------------
// Parent side.

fn wait_for_child(child: Pid, shared: &Shared, timeout: Duration) -> Result<(), KvmError> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                return finished(shared, Some(status));
            }
            Ok(_) => {}
            // Someone else reaped it (or SIGCHLD is ignored): the record still tells.
            Err(Errno::ECHILD) => return finished(shared, None),
            Err(e) => {
                kill_and_reap(child);
                return Err(KvmError::Probe(format!("waitpid: {e}")));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
    // One last look: it may have finished just as the deadline passed.
    if shared.done.load(Ordering::Acquire) == 1 {
        kill_and_reap(child);
        return shared.result();
    }
    kill_and_reap(child);
    Err(KvmError::TimedOut {
        stage: KvmStage::from_u32(shared.stage.load(Ordering::Acquire)),
        timeout,
    })
}

fn finished(shared: &Shared, status: Option<WaitStatus>) -> Result<(), KvmError> {
    if shared.done.load(Ordering::Acquire) == 1 {
        return shared.result();
    }
    let stage = KvmStage::from_u32(shared.stage.load(Ordering::Acquire));
    Err(KvmError::Probe(match status {
        Some(WaitStatus::Signaled(_, sig, _)) => format!("probe killed by {sig} during {stage}"),
        Some(WaitStatus::Exited(_, 101)) => format!("probe panicked during {stage}"),
        Some(WaitStatus::Exited(_, code)) => {
            format!("probe exited with status {code} during {stage}")
        }
        _ => format!("probe vanished during {stage} (reaped elsewhere?)"),
    }))
}

/// SIGKILL the child and reap it; if it does not die promptly (e.g. stuck in an
/// uninterruptible KVM call), leave a background thread to reap it later.
fn kill_and_reap(child: Pid) {
    let _ = kill(child, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => return,
            Ok(_) => {}
        }
    }
    let _ = std::thread::Builder::new()
        .name("kvm-probe-reaper".to_owned())
        .spawn(move || {
            let _ = waitpid(child, None);
        });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timed_out_message_names_run_and_tcg() {
        let e = KvmError::TimedOut {
            stage: KvmStage::Run,
            timeout: Duration::from_secs(3),
        };
        assert_eq!(
            e.to_string(),
            "KVM_RUN did not return within 3s: this kernel's KVM cannot run guests (e.g. PVM); \
             vimana will use QEMU TCG"
        );
        assert!(e.hint().contains("QEMU TCG"));
    }

    #[test]
    fn permission_hint_mentions_kvm_group() {
        assert!(KvmError::PermissionDenied.hint().contains("kvm group"));
        assert_eq!(
            KvmError::CreateVm(Errno::EINVAL).to_string(),
            "KVM_CREATE_VM failed: EINVAL: Invalid argument"
        );
    }

    #[test]
    fn codes_round_trip() {
        for (i, s) in KvmStage::ALL.iter().enumerate() {
            assert_eq!(*s as u32, i as u32);
            assert_eq!(KvmStage::from_u32(i as u32), *s);
        }
    }

    #[test]
    fn guest_code_is_the_documented_program() {
        assert_eq!(GUEST_CODE[..6], [0x66, 0xb9, 0x80, 0x96, 0x98, 0x00]);
        assert_eq!(
            GUEST_CODE[6..],
            [0x66, 0x49, 0x75, 0xfc, 0xb0, 0x42, 0xe6, 0x10, 0xf4]
        );
    }

    #[test]
    fn kvm_usable_returns_within_timeout_plus_one_second() {
        let timeout = Duration::from_secs(3);
        let start = Instant::now();
        let outcome = kvm_usable(timeout);
        let took = start.elapsed();
        match &outcome {
            Ok(()) => println!("kvm_usable: OK (guest ran OUT 0x10,0x42 + HLT) in {took:?}"),
            Err(e) => println!("kvm_usable: {e} [{took:?}]\n  hint: {}", e.hint()),
        }
        assert!(
            took < timeout + Duration::from_secs(1),
            "took {took:?}: {outcome:?}"
        );
    }

    #[test]
    fn kvm_usable_with_tiny_timeout_is_bounded() {
        let start = Instant::now();
        let outcome = kvm_usable(Duration::from_millis(1));
        println!("kvm_usable(1ms): {outcome:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
