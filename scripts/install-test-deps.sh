#!/usr/bin/env bash
# Install the Debian 12 packages needed to build and run the Go test spacecore
# (tests/go-spacecore) and the Go benchmark host (benches/go-host); see
# scripts/build-go-spacecore.sh. Run as root. Idempotent: when every package
# is already installed it only runs dpkg-query and exits.
set -euo pipefail

PACKAGES=(
    golang-go    # Go 1.19, a fallback only: scripts/build-go-spacecore.sh uses /usr/local/go (1.26) when present
    golang-github-hashicorp-go-plugin-dev
    golang-google-grpc-dev
    golang-google-protobuf-dev
    golang-github-golang-protobuf-1-5-dev
    protobuf-compiler
    git
    ca-certificates
    procps
    cmake        # aws-lc-sys (rustls crypto provider) may build with it
    gcc
    make
    util-linux   # flock, used by build-go-spacecore.sh (Essential, normally present)
    docker-registry  # OCI distribution registry for the Wasm image tests
    nghttp2-client   # h2load, for the gateway benchmarks
    python3-pip      # the Python grpcio clients of the gateway tests
    qemu-system-x86  # microVM tests (TCG where KVM is not usable)
    busybox-static   # the initramfs vimana assembles for microVMs
    e2fsprogs        # mkfs.ext4 -d: root filesystems from OCI images
    cpio
    file
    nftables         # NAT rules of the microVM bridge (tests check them)
    iproute2         # ip netns / ip link in the network tests
)

# PyPI packages of the Python test clients (tests/py) and schemathesis (the
# API fuzz run of crates/vimana/tests/schemathesis.rs; its CLI flags changed
# in 4.x, hence the range). Installed for the `python3` on PATH; idempotent
# (pip skips what is present).
PIP_PACKAGES=(grpcio grpcio-tools grpcio-reflection "schemathesis>=4,<5")
pip_install() {
    if python3 -c 'import grpc, grpc_tools, grpc_reflection, schemathesis' >/dev/null 2>&1; then
        return 0
    fi
    echo "install-test-deps: pip installing ${PIP_PACKAGES[*]}" >&2
    python3 -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}"
}

# vhost-device-vsock (rust-vmm): the vsock backend of QEMU microVMs on hosts
# without /dev/vhost-vsock. Built once with cargo into ~/.cargo/bin.
vhost_vsock_install() {
    if command -v vhost-device-vsock >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/vhost-device-vsock" ]; then
        return 0
    fi
    echo "install-test-deps: cargo install vhost-device-vsock" >&2
    cargo install --locked --quiet vhost-device-vsock
}

# One dpkg-query for all packages; unknown packages print nothing (and make
# dpkg-query exit 1), so compare against the full list.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! grep -Eq "^${pkg}(:[a-z0-9]+)? ii" <<<"$installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    pip_install
    vhost_vsock_install
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing packages: ${missing[*]}; re-run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-test-deps: installing ${missing[*]}" >&2
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
pip_install
vhost_vsock_install
