//! Shared fixtures for the providers' unit tests.

use std::path::PathBuf;

use super::{Accel, DriveSpec, LaunchSpec, NetSpec, VsockSpec};

/// 2 vCPUs, 512 MiB, an initramfs, one root drive, TAP networking, vsock.
pub(crate) fn representative_spec() -> LaunchSpec {
    let run = PathBuf::from("/run/vimana/vms/web");
    LaunchSpec {
        id: "web".into(),
        run_dir: run.clone(),
        cpus: 2,
        memory_mib: 512,
        kernel: "/assets/vmlinux".into(),
        initrd: Some("/assets/initramfs.cpio.gz".into()),
        root_drive: Some(DriveSpec {
            path: "/images/root.ext4".into(),
            read_only: false,
        }),
        extra_drives: Vec::new(),
        cmdline: "console=ttyS0 panic=-1".into(),
        net: NetSpec::Tap {
            tap: "vm-web0".into(),
            mac: "52:54:00:12:34:56".into(),
        },
        vsock: Some(VsockSpec {
            guest_cid: 3,
            uds_path: run.join("vsock.sock"),
        }),
        console_log: run.join("console.log"),
        console_socket: run.join("console.sock"),
        accel: Accel::Kvm,
    }
}
