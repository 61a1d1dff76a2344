//! `[hardware]` cores/memory or `[resources]` cpu/memory/disk.

use toml::Spanned;

use super::context::Cx;
use super::error::HacError;
use super::raw::{RawHardware, RawResources, SizeValue};
use super::rules;
use super::size::{MIB, SizeError, UNITS, parse_size};
use super::{DEFAULT_CPUS, DEFAULT_MEMORY_MIB};

/// vCPUs, memory (MiB) and disk (bytes) from whichever table is present.
pub(crate) fn check(
    cx: &Cx<'_>,
    hw: Option<&Spanned<RawHardware>>,
    res: Option<&Spanned<RawResources>>,
) -> Result<(u32, u64, Option<u64>), HacError> {
    let (cpus, memory, disk, table) = match (hw, res) {
        (Some(h), Some(r)) => {
            let second = if h.span().start > r.span().start {
                h.span()
            } else {
                r.span()
            };
            return Err(cx.err(
                "vimana::hac::conflict",
                second,
                "[hardware] and [resources] both set the VM's resources",
                "second resources table",
                "keep one: [hardware] (cores, memory in MiB) or [resources] (cpu, memory, disk); kernel, drive and ref also go in [boot]",
            ));
        }
        (Some(h), None) => {
            let h = h.get_ref();
            (
                h.cores.as_ref().map(|c| (c, "cores")),
                h.memory.as_ref(),
                None,
                "[hardware]",
            )
        }
        (None, Some(r)) => {
            let r = r.get_ref();
            (
                r.cpu.as_ref().map(|c| (c, "cpu")),
                r.memory.as_ref(),
                r.disk.as_ref(),
                "[resources]",
            )
        }
        (None, None) => (None, None, None, ""),
    };
    let cpus = match cpus {
        Some((c, key)) => check_cpus(cx, c, &format!("{table} {key}"))?,
        None => DEFAULT_CPUS,
    };
    let memory_mib = match memory {
        Some(m) => check_memory(cx, m, &format!("{table} memory"))?,
        None => DEFAULT_MEMORY_MIB,
    };
    let disk_bytes = disk.map(|d| check_disk(cx, d)).transpose()?;
    Ok((cpus, memory_mib, disk_bytes))
}

fn check_cpus(cx: &Cx<'_>, c: &Spanned<i64>, name: &str) -> Result<u32, HacError> {
    rules::cpus(*c.get_ref(), name).map_err(|b| cx.fail(c.span(), b))
}

/// Bytes of a size value; a bare integer counts MiB.
fn size_bytes(cx: &Cx<'_>, v: &Spanned<SizeValue>, name: &str) -> Result<u64, HacError> {
    let bytes = match v.get_ref() {
        SizeValue::Int(n) if *n < 0 => Err(SizeError::Negative),
        SizeValue::Int(n) => n.unsigned_abs().checked_mul(MIB).ok_or(SizeError::Overflow),
        SizeValue::Text(s) => parse_size(s),
    };
    bytes.map_err(|e| {
        cx.err(
            "vimana::hac::size",
            v.span(),
            format!("{name}: {e}; accepted units: {UNITS}"),
            "invalid size",
            "write a whole number with a unit, e.g. \"512MB\" or \"2GiB\"; a bare integer means MiB",
        )
    })
}

fn check_memory(cx: &Cx<'_>, v: &Spanned<SizeValue>, name: &str) -> Result<u64, HacError> {
    let bytes = size_bytes(cx, v, name)?;
    if bytes % MIB != 0 {
        return Err(cx.err(
            "vimana::hac::memory_unit",
            v.span(),
            format!("{name} must be a whole number of MiB, got {bytes} bytes"),
            "not whole MiB",
            "round the memory to whole MiB, e.g. \"512MB\"",
        ));
    }
    rules::memory_mib(bytes / MIB, name, cx.opts.host_memory_mib).map_err(|b| cx.fail(v.span(), b))
}

fn check_disk(cx: &Cx<'_>, v: &Spanned<SizeValue>) -> Result<u64, HacError> {
    let bytes = size_bytes(cx, v, "[resources] disk")?;
    rules::disk_bytes(bytes).map_err(|b| cx.fail(v.span(), b))
}
