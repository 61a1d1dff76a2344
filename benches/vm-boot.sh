#!/usr/bin/env bash
# MicroVM benchmark (issue 5): `vimana-bench vm-boot`.
#
#   bash benches/vm-boot.sh [--json]
#   RUNS=2 CONCURRENT=3 bash benches/vm-boot.sh    # smoke test
#
#   1. Boot time, in one run, alternating: raw QEMU (the daemon's exact
#      launch: same argv, kernel, initramfs, command line, vsock sidecar;
#      no daemon) from process start to the agent's ready marker on the
#      console, versus `vimana vm spawn` from process start to its exit
#      (the daemon got the agent's answer over vsock). Median/mean/min/max
#      of each and vimana's overhead. KVM when usable, else TCG.
#   2. Daemon memory per running VM: daemon VmRSS with no VM, then with
#      CONCURRENT VMs spawned at once (all must reach ready), delta / N.
#
# Parts: the Debian cloud kernel + modules (scripts/vm-test-assets.sh), the
# static agent (scripts/build-agent.sh), qemu-system-x86_64 and
# vhost-device-vsock (PATH or ~/.cargo/bin). Builds vimana and vimana-bench
# in the DEBUG profile (`cargo build -p vimana -p vimana-bench`); set
# PROFILE=release to build and measure release binaries instead.
# Env: RUNS (10), CONCURRENT (10), CORES (1), MEMORY_MIB (256),
# SKIP_BUILD=1 to use the binaries as they are.
# Everything runs in a temporary /tmp/vbXXXXXX (own VIMANA_HOME); the bench
# kills the daemon and every VM it started, also on error and Ctrl-C.
# Results: docs/benchmarks.md, "MicroVMs (issue 5)".
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
RUNS=${RUNS:-10}
CONCURRENT=${CONCURRENT:-10}
CORES=${CORES:-1}
MEMORY_MIB=${MEMORY_MIB:-256}
PROFILE=${PROFILE:-debug}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
log() { echo "benches/vm-boot.sh: $*" >&2; }
die() { log "$*"; exit 1; }

export PATH="$PATH:$HOME/.cargo/bin"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
command -v vhost-device-vsock >/dev/null || die "vhost-device-vsock missing (cargo install vhost-device-vsock)"
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"

assets=$(bash scripts/vm-test-assets.sh) || die "scripts/vm-test-assets.sh failed"
KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$assets")
MODULES=$(sed -n 's/^MODULES=//p' <<<"$assets")
[ -f "$KERNEL" ] || die "no kernel from scripts/vm-test-assets.sh"
[ -d "$MODULES" ] || die "no modules from scripts/vm-test-assets.sh"

log "building the static guest agent (scripts/build-agent.sh)"
AGENT=$(bash scripts/build-agent.sh | tail -n 1)
[ -f "$AGENT" ] || die "scripts/build-agent.sh printed no agent path"

case $PROFILE in
    debug) BIN=$TARGET_DIR/debug; build_flags=() ;;
    release) BIN=$TARGET_DIR/release; build_flags=(--release) ;;
    *) die "PROFILE must be debug or release, not $PROFILE" ;;
esac
if [ "${SKIP_BUILD:-}" != 1 ]; then
    log "building vimana and vimana-bench ($PROFILE profile)"
    cargo build "${build_flags[@]}" -p vimana -p vimana-bench >&2
fi
[ -x "$BIN/vimana" ] && [ -x "$BIN/vimana-bench" ] || die "no $PROFILE binaries in $BIN"

log "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "vimana: $BIN/vimana ($PROFILE build); kernel $KERNEL; agent $AGENT"
log "RUNS=$RUNS CONCURRENT=$CONCURRENT CORES=$CORES MEMORY_MIB=$MEMORY_MIB"
exec "$BIN/vimana-bench" vm-boot \
    --vimana "$BIN/vimana" \
    --kernel "$KERNEL" \
    --modules "$MODULES" \
    --agent "$AGENT" \
    --runs "$RUNS" \
    --concurrent "$CONCURRENT" \
    --cores "$CORES" \
    --memory-mib "$MEMORY_MIB" \
    "$@"
