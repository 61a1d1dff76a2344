use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::provider::test_support::representative_spec;
use crate::provider::{Accel, DriveSpec};
use crate::{PortForward, Protocol};

#[test]
fn config_file_golden() {
    let spec = representative_spec();
    let got = Firecracker::config_file(&spec).unwrap();
    let want = json!({
        "boot-source": {
            "kernel_image_path": "/assets/vmlinux",
            "initrd_path": "/assets/initramfs.cpio.gz",
            "boot_args": "console=ttyS0 panic=-1",
        },
        "drives": [{
            "drive_id": "root",
            "path_on_host": "/images/root.ext4",
            "is_root_device": true,
            "is_read_only": false,
        }],
        "machine-config": { "vcpu_count": 2, "mem_size_mib": 512, "smt": false },
        "network-interfaces": [{
            "iface_id": "eth0",
            "host_dev_name": "vm-web0",
            "guest_mac": "52:54:00:12:34:56",
        }],
        "vsock": { "guest_cid": 3, "uds_path": "/run/vimana/vms/web/vsock.sock" },
        "logger": { "log_path": "/run/vimana/vms/web/firecracker.log", "level": "Info" },
    });
    assert_eq!(got, want);
}

#[test]
fn config_file_plan_writes_the_file_and_routes_the_serial_to_the_console_log() {
    let spec = representative_spec();
    let plan = Firecracker::default().plan(&spec).unwrap();
    let p = &plan.processes[0];
    assert_eq!(
        p.argv,
        [
            "firecracker",
            "--api-sock",
            "/run/vimana/vms/web/fc.sock",
            "--config-file",
            "/run/vimana/vms/web/fc.json",
        ]
    );
    assert_eq!(p.stdout, spec.console_log);
    assert_eq!(p.wait_for, [PathBuf::from("/run/vimana/vms/web/fc.sock")]);
    assert!(plan.api_calls.is_empty());
    let (path, bytes) = &plan.files[1];
    assert_eq!(path, &PathBuf::from("/run/vimana/vms/web/fc.json"));
    let written: Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(written, Firecracker::config_file(&spec).unwrap());
    assert_eq!(
        plan.files[0],
        (
            PathBuf::from("/run/vimana/vms/web/firecracker.log"),
            Vec::new()
        )
    );
    assert_eq!(
        plan.remove_first,
        [PathBuf::from("/run/vimana/vms/web/vsock.sock")]
    );
}

#[test]
fn api_mode_puts_each_part_then_starts() {
    let mut spec = representative_spec();
    spec.extra_drives.push(DriveSpec {
        path: "/images/data.img".into(),
        read_only: true,
    });
    let fc = Firecracker {
        mode: FirecrackerMode::Api,
        ..Firecracker::default()
    };
    let plan = fc.plan(&spec).unwrap();
    assert_eq!(
        plan.processes[0].argv.len(),
        3,
        "no --config-file in API mode"
    );
    assert_eq!(plan.api_socket, Some(Firecracker::api_socket(&spec)));
    let calls: Vec<_> = plan
        .api_calls
        .iter()
        .map(|c| (c.method, c.path.as_str()))
        .collect();
    let put = HttpMethod::Put;
    assert_eq!(
        calls,
        [
            (put, "/logger"),
            (put, "/machine-config"),
            (put, "/boot-source"),
            (put, "/drives/root"),
            (put, "/drives/d1"),
            (put, "/network-interfaces/eth0"),
            (put, "/vsock"),
            (put, "/actions"),
        ]
    );
    assert_eq!(
        plan.api_calls[4].body,
        Some(json!({
            "drive_id": "d1",
            "path_on_host": "/images/data.img",
            "is_root_device": false,
            "is_read_only": true,
        }))
    );
    assert_eq!(
        plan.api_calls.last().and_then(|c| c.body.clone()),
        Some(json!({ "action_type": "InstanceStart" }))
    );
}

#[test]
fn initramfs_only_boot_has_no_root_device_and_no_optional_sections() {
    let mut spec = representative_spec();
    spec.root_drive = None;
    spec.net = NetSpec::None;
    spec.vsock = None;
    let cfg = Firecracker::config_file(&spec).unwrap();
    assert_eq!(cfg["drives"], json!([]));
    assert_eq!(cfg["network-interfaces"], json!([]));
    assert!(cfg.get("vsock").is_none());
}

#[test]
fn user_networking_and_tcg_are_refused_with_a_fix() {
    let mut spec = representative_spec();
    spec.net = NetSpec::User {
        forwards: vec![PortForward {
            host: 8080,
            guest: 80,
            protocol: Protocol::Tcp,
        }],
    };
    let err = Firecracker::default().plan(&spec).unwrap_err().to_string();
    assert!(
        err.contains("firecracker does not support user-mode networking"),
        "{err}"
    );
    assert!(err.contains("mode = \"bridge\""), "{err}");
    let mut spec = representative_spec();
    spec.accel = Accel::Tcg;
    let err = Firecracker::default().plan(&spec).unwrap_err().to_string();
    assert!(err.contains("TCG"), "{err}");
}

#[test]
fn check_needs_the_binary_and_kvm() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("firecracker");
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fc = Firecracker::default();
    let mut host = HostFacts {
        kvm: Err("/dev/kvm is missing".into()),
        search_path: vec![dir.path().to_path_buf()],
    };
    let err = fc.check(&host).unwrap_err();
    assert!(
        err.contains("needs KVM") && err.contains("/dev/kvm is missing"),
        "{err}"
    );
    host.kvm = Ok(());
    fc.check(&host).unwrap();
    host.search_path.clear();
    let err = fc.check(&host).unwrap_err();
    assert!(err.contains("firecracker not found"), "{err}");
}

#[test]
fn guests_name_disks_by_serial_or_by_firecracker_order() {
    use crate::provider::guest_disk;
    assert_eq!(guest_disk(Provider::Qemu, 1), "vimana-d1");
    assert_eq!(guest_disk(Provider::CloudHypervisor, 0), "vimana-d0");
    assert_eq!(guest_disk(Provider::Firecracker, 0), "/dev/vda");
    assert_eq!(guest_disk(Provider::Firecracker, 1), "/dev/vdb");
    assert_eq!(guest_disk(Provider::Firecracker, 25), "/dev/vdz");
    assert_eq!(guest_disk(Provider::Firecracker, 26), "/dev/vdaa");
}
