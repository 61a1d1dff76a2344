use super::*;
use crate::provider::test_support::representative_spec;
use crate::provider::{Accel, Vmm};
use crate::{PortForward, Protocol};

#[test]
fn vm_create_body_golden() {
    let spec = representative_spec();
    let got = CloudHypervisor::vm_config(&spec).unwrap();
    let want = json!({
        "cpus": { "boot_vcpus": 2, "max_vcpus": 2 },
        "memory": { "size": 536870912u64, "shared": true },
        "payload": {
            "kernel": "/assets/vmlinux",
            "initramfs": "/assets/initramfs.cpio.gz",
            "cmdline": "console=ttyS0 panic=-1",
        },
        "disks": [ { "path": "/images/root.ext4", "readonly": false, "serial": "vimana-d0" } ],
        "net": [ { "tap": "vm-web0", "mac": "52:54:00:12:34:56" } ],
        "vsock": { "cid": 3, "socket": "/run/vimana/vms/web/vsock.sock" },
        "serial": { "mode": "File", "file": "/run/vimana/vms/web/console.log" },
        "console": { "mode": "Off" },
    });
    assert_eq!(got, want);
}

#[test]
fn plan_starts_the_vmm_then_creates_and_boots() {
    let spec = representative_spec();
    let plan = CloudHypervisor::default().plan(&spec).unwrap();
    assert_eq!(plan.processes.len(), 1);
    let p = &plan.processes[0];
    assert_eq!(
        p.argv,
        [
            "cloud-hypervisor",
            "--api-socket",
            "path=/run/vimana/vms/web/ch.sock"
        ]
    );
    assert_eq!(p.wait_for, [PathBuf::from("/run/vimana/vms/web/ch.sock")]);
    assert_eq!(
        plan.api_socket,
        Some(PathBuf::from("/run/vimana/vms/web/ch.sock"))
    );
    let paths: Vec<_> = plan.api_calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/api/v1/vm.create", "/api/v1/vm.boot"]);
    assert!(plan.api_calls.iter().all(|c| c.method == HttpMethod::Put));
    assert_eq!(plan.api_calls[1].body, None);
    assert_eq!(
        plan.remove_first,
        [PathBuf::from("/run/vimana/vms/web/vsock.sock")]
    );
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
    let err = CloudHypervisor::default()
        .plan(&spec)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cloud-hypervisor does not support user-mode networking"),
        "{err}"
    );
    assert!(err.contains("bridge"), "{err}");
    let mut spec = representative_spec();
    spec.accel = Accel::Tcg;
    let err = CloudHypervisor::vm_config(&spec).unwrap_err().to_string();
    assert!(err.contains("TCG") && err.contains("KVM"), "{err}");
}

#[test]
fn guest_memory_too_large_for_bytes_is_an_error_not_an_overflow() {
    let mut spec = representative_spec();
    spec.memory_mib = 1 << 50;
    let err = CloudHypervisor::vm_config(&spec).unwrap_err().to_string();
    assert!(err.contains("1125899906842624 MiB"), "{err}");
    assert!(err.contains("at most"), "{err}");
}
