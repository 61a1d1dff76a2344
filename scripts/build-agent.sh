#!/usr/bin/env bash
# Build the guest agent (crates/vimana-agent) as a static Linux binary, to be
# baked into guest initramfs images.
#
#   scripts/build-agent.sh
#
# Uses the gnu target with crt-static (no musl target is needed) and builds
# without the default `client` feature, so tokio is not linked. The build
# goes to $CARGO_TARGET_DIR, by default <repo>/target/agent: a separate
# directory, so these RUSTFLAGS do not invalidate the main build cache.
# Symbols are stripped and LTO is on to keep the binary small.
#
# On success prints a single line on stdout: the path of the binary. Fails
# if the result is not statically linked.
set -euo pipefail

die() { echo "build-agent: $*" >&2; exit 1; }

[ $# -eq 0 ] || die "usage: $0 (no arguments; set CARGO_TARGET_DIR to change the output directory)"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target/agent}

command -v cargo >/dev/null 2>&1 || die "cargo not found in PATH"

cd "$REPO"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=symbols \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    cargo build --release -p vimana-agent --no-default-features \
        --bin vimana-agent --target "$TARGET" >&2 \
    || die "cargo build failed"

BIN=$CARGO_TARGET_DIR/$TARGET/release/vimana-agent
[ -x "$BIN" ] || die "expected binary not found: $BIN"

# Verify it is static: `file` says "statically linked" (or "static-pie
# linked"), `ldd` says "not a dynamic executable" / "statically linked".
static=no
if command -v file >/dev/null 2>&1; then
    desc=$(file -b "$BIN")
    case $desc in
        *"statically linked"*|*"static-pie linked"*) static=yes ;;
        *"dynamically linked"*) die "$BIN is dynamically linked: $desc" ;;
    esac
fi
if [ "$static" = no ] && command -v ldd >/dev/null 2>&1; then
    out=$(ldd "$BIN" 2>&1 || true)
    case $out in
        *"not a dynamic executable"*|*"statically linked"*) static=yes ;;
        *) die "$BIN is not static; ldd says: $out" ;;
    esac
fi
[ "$static" = yes ] || die "cannot verify that $BIN is static (need file or ldd)"

echo "build-agent: $(du -h "$BIN" | cut -f1) static binary" >&2
echo "$BIN"
