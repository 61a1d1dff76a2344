use super::*;
use crate::PortForward;
use crate::provider::DriveSpec;
use crate::provider::test_support::representative_spec;

fn has_pair(argv: &[String], flag: &str, value: &str) -> bool {
    argv.windows(2).any(|w| w[0] == flag && w[1] == value)
}

fn values<'a>(argv: &'a [String], flag: &str) -> Vec<&'a str> {
    argv.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

#[test]
fn kvm_tap_drive_initrd_vsock() {
    let spec = representative_spec();
    let argv = Qemu::default().argv(&spec).unwrap();
    let want: Vec<String> = [
        "qemu-system-x86_64",
        "-name",
        "web",
        "-M",
        "microvm,memory-backend=mem,rtc=on",
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-smp",
        "2",
        "-m",
        "512M",
        "-object",
        "memory-backend-memfd,id=mem,size=512M,share=on",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-kernel",
        "/assets/vmlinux",
        "-initrd",
        "/assets/initramfs.cpio.gz",
        "-append",
        "console=ttyS0 panic=-1",
        "-chardev",
        "socket,id=con0,path=/run/vimana/vms/web/console.sock,server=on,wait=off,logfile=/run/vimana/vms/web/console.log,logappend=on",
        "-serial",
        "chardev:con0",
        "-qmp",
        "unix:/run/vimana/vms/web/qmp.sock,server=on,wait=off",
        "-chardev",
        "socket,id=vsock0,path=/run/vimana/vms/web/vhost-vsock.sock",
        "-device",
        "vhost-user-vsock-device,chardev=vsock0",
        "-drive",
        "id=d0,file=/images/root.ext4,format=raw,if=none",
        "-device",
        "virtio-blk-device,drive=d0,serial=vimana-d0",
        "-netdev",
        "tap,id=n0,ifname=vm-web0,script=no,downscript=no",
        "-device",
        "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(argv, want);
}

#[test]
fn tcg_user_net_with_forwards_and_read_only_extra_drive() {
    let mut spec = representative_spec();
    spec.accel = Accel::Tcg;
    spec.net = NetSpec::User {
        forwards: vec![
            PortForward {
                host: 8080,
                guest: 80,
                protocol: Protocol::Tcp,
            },
            PortForward {
                host: 5353,
                guest: 53,
                protocol: Protocol::Udp,
            },
        ],
    };
    spec.extra_drives.push(DriveSpec {
        path: "/data/a,b.img".into(),
        read_only: true,
    });
    let argv = Qemu::default().argv(&spec).unwrap();
    assert!(has_pair(&argv, "-accel", "tcg"));
    assert!(has_pair(&argv, "-cpu", "max"));
    assert!(has_pair(
        &argv,
        "-netdev",
        "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:127.0.0.1:5353-:53"
    ));
    assert!(has_pair(&argv, "-device", "virtio-net-device,netdev=n0"));
    assert_eq!(
        values(&argv, "-drive"),
        [
            "id=d0,file=/images/root.ext4,format=raw,if=none",
            "id=d1,file=/data/a,,b.img,format=raw,if=none,readonly=on",
        ],
        "commas in paths are doubled"
    );
    assert!(has_pair(
        &argv,
        "-device",
        "virtio-blk-device,drive=d1,serial=vimana-d1"
    ));
}

#[test]
fn no_net_no_initrd_no_vsock() {
    let mut spec = representative_spec();
    spec.net = NetSpec::None;
    spec.initrd = None;
    spec.root_drive = None;
    spec.vsock = None;
    let argv = Qemu::default().argv(&spec).unwrap();
    for flag in ["-netdev", "-initrd", "-drive"] {
        assert!(!argv.iter().any(|a| a == flag), "unexpected {flag}");
    }
    assert!(!argv.iter().any(|a| a.contains("vsock")));
    assert_eq!(values(&argv, "-device"), Vec::<&str>::new());
    assert_eq!(values(&argv, "-chardev").len(), 1, "only the console");
}

#[test]
fn plan_starts_the_vsock_sidecar_first() {
    let spec = representative_spec();
    let qemu = Qemu {
        binary: "/usr/bin/qemu-system-x86_64".into(),
        vsock_binary: "/opt/bin/vhost-device-vsock".into(),
    };
    let plan = qemu.plan(&spec).unwrap();
    assert!(plan.files.is_empty() && plan.api_calls.is_empty());
    let names: Vec<_> = plan.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vhost-device-vsock", "qemu"]);
    let sidecar = &plan.processes[0];
    assert_eq!(
        sidecar.argv,
        [
            "/opt/bin/vhost-device-vsock",
            "--guest-cid",
            "3",
            "--socket",
            "/run/vimana/vms/web/vhost-vsock.sock",
            "--uds-path",
            "/run/vimana/vms/web/vsock.sock",
        ]
    );
    assert_eq!(
        sidecar.wait_for,
        [
            PathBuf::from("/run/vimana/vms/web/vhost-vsock.sock"),
            PathBuf::from("/run/vimana/vms/web/vsock.sock"),
        ]
    );
    let vmm = &plan.processes[1];
    assert_eq!(vmm.argv[0], "/usr/bin/qemu-system-x86_64");
    assert_eq!(
        vmm.wait_for,
        [
            PathBuf::from("/run/vimana/vms/web/qmp.sock"),
            PathBuf::from("/run/vimana/vms/web/console.sock"),
        ]
    );
    assert_eq!(vmm.stderr, PathBuf::from("/run/vimana/vms/web/qemu.stderr"));
    assert_eq!(
        plan.remove_first,
        [PathBuf::from("/run/vimana/vms/web/vsock.sock")]
    );

    let mut no_vsock = spec.clone();
    no_vsock.vsock = None;
    let plan = qemu.plan(&no_vsock).unwrap();
    assert_eq!(plan.processes.len(), 1);
}

#[test]
fn cpuinfo_mhz_becomes_khz() {
    let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2445.428\ncache size\t: 512 KB\n\nprocessor\t: 1\ncpu MHz\t\t: 1800.000\n";
    assert_eq!(parse_cpuinfo_khz(cpuinfo), Some(2_445_428));
    assert_eq!(parse_cpuinfo_khz("processor\t: 0\n"), None);
    assert_eq!(parse_cpuinfo_khz("cpu MHz\t: nan\n"), None);
    assert!(
        host_tsc_khz().is_some_and(|k| k > 100_000),
        "this host reports its clock"
    );
}

#[test]
fn a_run_dir_too_long_for_socket_addresses_is_refused() {
    let mut spec = representative_spec();
    spec.run_dir = PathBuf::from(format!("/home/{}/vms/web", "x".repeat(100)));
    spec.console_socket = spec.run_dir.join("console.sock");
    let err = Qemu::default().plan(&spec).unwrap_err().to_string();
    assert!(
        err.contains("xxx/vms/web/vhost-vsock.sock is 131 bytes"),
        "{err}"
    );
    assert!(err.contains("VIMANA_HOME"), "{err}");
}
