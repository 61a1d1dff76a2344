//! The generated `/init`: a busybox `sh` script that prepares the guest
//! (pseudo filesystems, kernel modules) and hands over to the agent, or —
//! without an agent — to a shell on the console.
//!
//! It prints nothing on success except its markers, so the console tail a
//! failed boot is reported with stays readable; `vimana.debug=1` on the
//! kernel command line traces it (`set -x`).

use std::fmt::Write as _;

/// Where the agent is put in the guest.
pub const AGENT_GUEST_PATH: &str = "/sbin/vimana-agent";
/// Printed on the console (no agent) when the shell is about to start.
pub const READY_MARKER: &str = "vimana-init: ready";
/// Printed once every module was loaded without an error.
pub const MODULES_OK_MARKER: &str = "vimana-init: modules ok";
/// Prefix of the line printed for each module that failed to load.
pub const MODULE_FAILED_PREFIX: &str = "vimana-init: insmod failed:";

/// The applets linked into `/bin` in the archive itself: enough for `/init`
/// and a debugging shell before `busybox --install` has run.
pub(crate) const APPLETS: &[&str] = &[
    "cat",
    "cttyhack",
    "dmesg",
    "echo",
    "grep",
    "ifconfig",
    "insmod",
    "ip",
    "kill",
    "ls",
    "lsmod",
    "mkdir",
    "mount",
    "poweroff",
    "ps",
    "reboot",
    "setsid",
    "sh",
    "sleep",
    "umount",
    "uname",
    "cp",
    "switch_root",
];

/// Quotes `s` for `sh` (single quotes; `'` becomes `'\''`).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `/init` script. `module_paths` are guest paths loaded in this
/// order (dependencies first); `with_agent` ends in
/// `exec /sbin/vimana-agent --init`, otherwise in a respawning console
/// shell after [`READY_MARKER`].
pub fn init_script(module_paths: &[String], with_agent: bool) -> String {
    let mut s = String::new();
    s.push_str(
        r#"#!/bin/sh
# /init of a vimana guest (generated; do not edit).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
/bin/busybox mount -t proc -o nosuid,nodev,noexec proc /proc
case " $(cat /proc/cmdline 2>/dev/null) " in
*" vimana.debug=1 "*) set -x ;;
esac
/bin/busybox --install -s 2>/dev/null
mnt() {
    mount -t "$1" -o "$2" "$1" "$3" 2>/dev/null || echo "vimana-init: mount $1 on $3 failed"
}
mnt sysfs nosuid,nodev,noexec /sys
mnt devtmpfs nosuid,mode=0755 /dev
mkdir -p /dev/pts /dev/shm
mnt devpts nosuid,noexec,gid=5,mode=0620 /dev/pts
mnt tmpfs nosuid,nodev,mode=0755 /run
mnt tmpfs nosuid,nodev,mode=1777 /tmp
hostname vimana 2>/dev/null
ip link set lo up 2>/dev/null
"#,
    );
    s.push_str("failed=0\n");
    for path in module_paths {
        // One line per failure, with insmod's own reason; never stops.
        let _ = writeln!(
            s,
            "out=$(insmod {p} 2>&1) || {{ echo \"{MODULE_FAILED_PREFIX} {p}: $out\"; failed=1; }}",
            p = quote(path)
        );
    }
    let _ = writeln!(
        s,
        "[ \"$failed\" = 0 ] && echo {}",
        quote(MODULES_OK_MARKER)
    );
    if with_agent {
        // `vimana.root=<device or serial>`: the root is a disk (a `drive`,
        // or an OCI image turned into ext4), named `/dev/…` or by its
        // virtio-blk serial. Mount it, give it the agent if it has none (on
        // a tmpfs, the disk is not changed), and switch to it.
        let _ = write!(
            s,
            r#"root=""
for w in $(cat /proc/cmdline); do
    case "$w" in vimana.root=*) root="${{w#vimana.root=}}" ;; esac
done
if [ -n "$root" ]; then
    want="$root"
    i=0
    while [ "$i" -lt 100 ]; do
        case "$want" in
        /dev/*) ;;
        *)
            for b in /sys/block/*; do
                [ "$(cat "$b/serial" 2>/dev/null)" = "$want" ] && root="/dev/${{b##*/}}"
            done
            ;;
        esac
        [ -b "$root" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    mkdir -p /newroot
    if mount -t ext4 -o rw "$root" /newroot 2>/dev/null || mount -o rw "$root" /newroot; then
        agent={agent}
        if [ ! -x "/newroot$agent" ]; then
            mkdir -p /newroot/run
            mount -t tmpfs -o mode=0755 tmpfs /newroot/run
            mkdir -p /newroot/run/vimana
            cp {agent} /newroot/run/vimana/vimana-agent
            agent=/run/vimana/vimana-agent
        fi
        for d in dev proc sys; do
            mkdir -p "/newroot/$d"
        done
        mount --move /dev /newroot/dev 2>/dev/null
        umount /dev/pts /sys 2>/dev/null
        exec switch_root /newroot "$agent" --init
    fi
    echo "vimana-init: cannot mount the root disk $root"
fi
"#,
            agent = AGENT_GUEST_PATH,
        );
        let _ = writeln!(s, "exec {AGENT_GUEST_PATH} --init");
    } else {
        let _ = write!(
            s,
            r#"echo {ready}
while true; do
    setsid cttyhack sh
    echo "vimana-init: console shell exited ($?); respawning"
    sleep 1
done
"#,
            ready = quote(READY_MARKER)
        );
    }
    s
}
