//! Unexpected `KVM_RUN` exits of the probe guest: encoded as plain integers in the
//! forked child (no allocation) and named in the parent.

use std::fmt;

use kvm_ioctls::VcpuExit;

use crate::kvm::{MAX_RUNS, PORT, VALUE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ExitKind {
    Other,
    IoOut,
    IoIn,
    MmioRead,
    MmioWrite,
    HltEarly,
    Shutdown,
    FailEntry,
    InternalError,
    SystemEvent,
    Unknown,
    Exception,
    Debug,
    Hypercall,
    Unsupported,
    TooManyInterrupts,
}

impl ExitKind {
    const ALL: [ExitKind; 16] = [
        ExitKind::Other,
        ExitKind::IoOut,
        ExitKind::IoIn,
        ExitKind::MmioRead,
        ExitKind::MmioWrite,
        ExitKind::HltEarly,
        ExitKind::Shutdown,
        ExitKind::FailEntry,
        ExitKind::InternalError,
        ExitKind::SystemEvent,
        ExitKind::Unknown,
        ExitKind::Exception,
        ExitKind::Debug,
        ExitKind::Hypercall,
        ExitKind::Unsupported,
        ExitKind::TooManyInterrupts,
    ];

    pub(crate) fn from_u32(v: u32) -> ExitKind {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(ExitKind::Other)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExitInfo {
    pub(crate) kind: ExitKind,
    pub(crate) a: u64,
    pub(crate) b: u64,
    pub(crate) c: u64,
}

impl ExitInfo {
    pub(crate) fn classify(exit: &VcpuExit<'_>, saw_out: bool) -> ExitInfo {
        let (kind, a, b, c) = match exit {
            VcpuExit::IoOut(port, data) => {
                let mut packed = [0u8; 8];
                let n = data.len().min(8);
                packed[..n].copy_from_slice(&data[..n]);
                (
                    ExitKind::IoOut,
                    u64::from(*port),
                    u64::from_le_bytes(packed),
                    data.len() as u64,
                )
            }
            VcpuExit::IoIn(port, _) => (ExitKind::IoIn, u64::from(*port), 0, 0),
            VcpuExit::MmioRead(addr, _) => (ExitKind::MmioRead, *addr, 0, 0),
            VcpuExit::MmioWrite(addr, _) => (ExitKind::MmioWrite, *addr, 0, 0),
            VcpuExit::Hlt => (ExitKind::HltEarly, 0, 0, 0),
            VcpuExit::Shutdown => (ExitKind::Shutdown, 0, 0, 0),
            VcpuExit::FailEntry(reason, cpu) => (ExitKind::FailEntry, *reason, u64::from(*cpu), 0),
            VcpuExit::InternalError => (ExitKind::InternalError, 0, 0, 0),
            VcpuExit::SystemEvent(ty, _) => (ExitKind::SystemEvent, u64::from(*ty), 0, 0),
            VcpuExit::Unknown => (ExitKind::Unknown, 0, 0, 0),
            VcpuExit::Exception => (ExitKind::Exception, 0, 0, 0),
            VcpuExit::Debug(_) => (ExitKind::Debug, 0, 0, 0),
            VcpuExit::Hypercall(_) => (ExitKind::Hypercall, 0, 0, 0),
            VcpuExit::Unsupported(reason) => (ExitKind::Unsupported, u64::from(*reason), 0, 0),
            _ => (ExitKind::Other, 0, 0, 0),
        };
        // `c` doubles as "after the expected OUT" for exits that carry no length.
        let c = if kind == ExitKind::IoOut {
            c
        } else {
            u64::from(saw_out)
        };
        ExitInfo { kind, a, b, c }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ExitInfo { kind, a, b, c } = *self;
        match kind {
            ExitKind::IoOut => {
                let bytes = b.to_le_bytes();
                let n = (c as usize).min(8);
                write!(f, "IoOut(port {a:#x}, data {:02x?}", &bytes[..n])?;
                if c > 8 {
                    write!(f, "… {c} bytes")?;
                }
                write!(
                    f,
                    "), expected IoOut(port {PORT:#x}, [{VALUE:#04x}]) then Hlt"
                )
            }
            ExitKind::IoIn => write!(f, "IoIn(port {a:#x})"),
            ExitKind::MmioRead => write!(f, "MmioRead({a:#x})"),
            ExitKind::MmioWrite => write!(f, "MmioWrite({a:#x})"),
            ExitKind::HltEarly => write!(f, "Hlt before IoOut(port {PORT:#x})"),
            ExitKind::Shutdown => f.write_str("Shutdown (triple fault)"),
            ExitKind::FailEntry => write!(
                f,
                "FailEntry(hardware_entry_failure_reason {a:#x}, cpu {b})"
            ),
            ExitKind::InternalError => f.write_str("InternalError"),
            ExitKind::SystemEvent => write!(f, "SystemEvent(type {a})"),
            ExitKind::Unknown => f.write_str("Unknown"),
            ExitKind::Exception => f.write_str("Exception"),
            ExitKind::Debug => f.write_str("Debug"),
            ExitKind::Hypercall => f.write_str("Hypercall"),
            ExitKind::Unsupported => write!(f, "unsupported exit reason {a}"),
            ExitKind::TooManyInterrupts => {
                write!(f, "KVM_RUN interrupted {MAX_RUNS} times in a row")
            }
            ExitKind::Other => f.write_str("unrecognised exit"),
        }?;
        if kind != ExitKind::IoOut && c == 1 {
            f.write_str(" after the expected IoOut")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn exit_names() {
        let out = ExitInfo {
            kind: ExitKind::IoOut,
            a: 0x11,
            b: 0x41,
            c: 1,
        };
        assert_eq!(
            out.to_string(),
            "IoOut(port 0x11, data [41]), expected IoOut(port 0x10, [0x42]) then Hlt"
        );
        let shutdown = ExitInfo {
            kind: ExitKind::Shutdown,
            a: 0,
            b: 0,
            c: 1,
        };
        assert_eq!(
            shutdown.to_string(),
            "Shutdown (triple fault) after the expected IoOut"
        );
        let early = ExitInfo {
            kind: ExitKind::HltEarly,
            a: 0,
            b: 0,
            c: 0,
        };
        assert_eq!(early.to_string(), "Hlt before IoOut(port 0x10)");
    }

    #[test]
    fn codes_round_trip() {
        for (i, k) in ExitKind::ALL.iter().enumerate() {
            assert_eq!(*k as u32, i as u32);
            assert_eq!(ExitKind::from_u32(i as u32), *k);
        }
    }
}
