#!/usr/bin/env bash
# Fetch the kernel the VM tests boot: Debian's cloud kernel
# (linux-image-cloud-amd64 → linux-image-<release>-cloud-amd64), extracted
# into ${VIMANA_VM_ASSETS:-<repo>/target/vm-assets}/kernel/.
#
# Prints:
#   KERNEL=<path to vmlinuz>
#   MODULES=<path to lib/modules/<release>>
#
# Idempotent: once extracted it only prints the paths. Concurrent runs are
# serialised with flock. Needs apt-get/apt-cache/dpkg-deb (Debian 12); run as
# root on a fresh machine (for apt-get update when the package lists are
# empty).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
assets=${VIMANA_VM_ASSETS:-$repo/target/vm-assets}
kdir=$assets/kernel
meta=linux-image-cloud-amd64

die() { echo "vm-test-assets: $*" >&2; exit 1; }

print_paths() {
    local release
    release=$(cat "$kdir/release")
    echo "KERNEL=$kdir/boot/vmlinuz-$release"
    echo "MODULES=$kdir/lib/modules/$release"
}

complete() {
    [ -f "$kdir/release" ] || return 1
    local release
    release=$(cat "$kdir/release")
    [ -f "$kdir/boot/vmlinuz-$release" ] && [ -d "$kdir/lib/modules/$release/kernel" ]
}

if complete; then
    print_paths
    exit 0
fi

for tool in apt-get apt-cache dpkg-deb flock; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (this script needs Debian's apt and dpkg)"
done

mkdir -p "$assets"
exec 9>"$assets/.kernel.lock"
flock 9
# Another run may have finished while this one waited for the lock.
if complete; then
    print_paths
    exit 0
fi

# The candidate image package the metapackage points at.
depends() { apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
pkg=$(depends || true)
if [ -z "$pkg" ]; then
    echo "vm-test-assets: $meta unknown to apt; running apt-get update" >&2
    apt-get update -qq >&2 || die "apt-get update failed (run as root with network access)"
    pkg=$(depends || true)
    [ -n "$pkg" ] || die "apt does not know $meta (is this Debian with the main component?)"
fi
release=${pkg#linux-image-}

# Download into a fresh directory under $TMPDIR that the _apt user can reach
# (apt-get download drops privileges to _apt and warns when it cannot);
# extract next to the destination so the final mv is a rename.
dl=$(mktemp -d "${TMPDIR:-/tmp}/vimana-kernel-dl.XXXXXX")
work=$(mktemp -d "$assets/.kernel-work.XXXXXX")
trap 'rm -rf "$dl" "$work"' EXIT
chmod 0755 "$dl"
chown _apt "$dl" 2>/dev/null || true

echo "vm-test-assets: downloading $pkg" >&2
(cd "$dl" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
deb=$(find "$dl" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
[ -n "$deb" ] || die "apt-get download produced no ${pkg}_*.deb"

dpkg-deb -x "$deb" "$work/x" || die "cannot extract $deb"
[ -f "$work/x/boot/vmlinuz-$release" ] || die "$deb has no boot/vmlinuz-$release"
[ -d "$work/x/lib/modules/$release/kernel" ] || die "$deb has no lib/modules/$release/kernel"

# Only the kernel and its modules are kept (not /usr/share/doc …).
stage=$work/stage
mkdir -p "$stage/boot" "$stage/lib/modules"
mv "$work/x/boot/vmlinuz-$release" "$stage/boot/"
[ -f "$work/x/boot/config-$release" ] && mv "$work/x/boot/config-$release" "$stage/boot/"
mv "$work/x/lib/modules/$release" "$stage/lib/modules/"
# Debian installs vmlinuz 0600; let unprivileged QEMU read it.
chmod 0644 "$stage/boot/vmlinuz-$release"
echo "$release" >"$stage/release"
basename "$deb" >"$stage/package"

rm -rf "$kdir"
mv "$stage" "$kdir"
print_paths
