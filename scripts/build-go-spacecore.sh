#!/usr/bin/env bash
# Build the Go test spacecore (tests/go-spacecore) and the Go benchmark host
# (benches/go-host) into OUTDIR, using only Debian-packaged Go sources
# (GOPATH mode, no network). Prerequisites: scripts/install-test-deps.sh.
#
#   scripts/build-go-spacecore.sh OUTDIR
#
# Produces OUTDIR/go-spacecore and OUTDIR/go-host. Reruns are no-ops while the
# outputs are newer than every input. protoc-gen-go / protoc-gen-go-grpc and
# the Go build cache live in $VIMANA_GO_CACHE (default ~/.cache/vimana-go).
# On success prints a single line with the output paths.
set -euo pipefail

die() { echo "build-go-spacecore: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
PROTO_ROOT=$REPO/proto
PROTO_REL=spacecore/v1/sc.proto
PLUGIN_SRC=$REPO/tests/go-spacecore
HOST_SRC=$REPO/benches/go-host
SYS_GOPATH=${SYS_GOPATH:-/usr/share/gocode}

PLUGIN_PKG=vimana.local/go-spacecore
HOST_PKG=vimana.local/go-host

# The Go toolchain: /usr/local/go (Go 1.26 on this project's machines) when
# it is there, whatever a PATH puts first (Debian's golang-go 1.19 also works
# in GOPATH mode, but must not shadow the newer one); else `go` on PATH.
# GO=/path/to/go overrides both.
if [ -z "${GO:-}" ]; then
    if [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; else GO=$(command -v go || true); fi
fi
[ -n "$GO" ] && [ -x "$GO" ] || die "no Go toolchain (install Go at /usr/local/go, or run scripts/install-test-deps.sh as root)"
command -v protoc >/dev/null 2>&1 ||
    die "'protoc' not found; run scripts/install-test-deps.sh as root"
for dir in github.com/hashicorp/go-plugin google.golang.org/grpc google.golang.org/protobuf; do
    [ -d "$SYS_GOPATH/src/$dir" ] ||
        die "$SYS_GOPATH/src/$dir missing; run scripts/install-test-deps.sh as root"
done
[ -f "$PROTO_ROOT/$PROTO_REL" ] || die "missing $PROTO_ROOT/$PROTO_REL"

mkdir -p "$1" || die "cannot create $1"
OUTDIR=$(cd "$1" && pwd)
PLUGIN_OUT=$OUTDIR/go-spacecore
HOST_OUT=$OUTDIR/go-host

if [ -z "${VIMANA_GO_CACHE:-}" ]; then
    if [ -n "${XDG_CACHE_HOME:-}" ]; then
        VIMANA_GO_CACHE=$XDG_CACHE_HOME/vimana-go
    elif [ -n "${HOME:-}" ] && [ -d "$HOME" ] && [ -w "$HOME" ]; then
        VIMANA_GO_CACHE=$HOME/.cache/vimana-go
    else
        VIMANA_GO_CACHE=${TMPDIR:-/tmp}/vimana-go-cache-$(id -u)
    fi
fi
CACHE=$VIMANA_GO_CACHE
mkdir -p "$CACHE/bin" "$CACHE/gocache"

# Serialise concurrent builds (parallel test runners) on the cache.
exec 9>"$CACHE/.lock"
flock 9

export GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0
export GOCACHE=$CACHE/gocache

# Is $1 missing or older than any of the remaining input files?
stale() {
    local out=$1; shift
    [ -e "$out" ] || return 0
    local f
    for f in "$@"; do
        [ "$f" -nt "$out" ] && return 0
    done
    return 1
}

inputs_common=("$PROTO_ROOT/$PROTO_REL" "$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")")
plugin_inputs=("$PLUGIN_SRC"/*.go)
host_inputs=("$HOST_SRC"/*.go)
[ -e "${plugin_inputs[0]}" ] || die "no Go sources in $PLUGIN_SRC"
[ -e "${host_inputs[0]}" ] || die "no Go sources in $HOST_SRC"

need_plugin=0; need_host=0
stale "$PLUGIN_OUT" "${inputs_common[@]}" "${plugin_inputs[@]}" && need_plugin=1
stale "$HOST_OUT" "${inputs_common[@]}" "${host_inputs[@]}" && need_host=1

if [ $need_plugin = 1 ] || [ $need_host = 1 ]; then
    # 1. protoc plugins, built once from the Debian Go sources.
    GEN_GOPATH=$CACHE/empty-gopath
    mkdir -p "$GEN_GOPATH"
    for gen in google.golang.org/protobuf/cmd/protoc-gen-go \
               google.golang.org/grpc/cmd/protoc-gen-go-grpc; do
        bin=$CACHE/bin/${gen##*/}
        if stale "$bin" "$SYS_GOPATH/src/$gen"/*.go; then
            GOPATH=$GEN_GOPATH:$SYS_GOPATH "$GO" build -trimpath -o "$bin.tmp.$$" "$gen" ||
                die "building $gen failed"
            mv -f "$bin.tmp.$$" "$bin"
        fi
    done

    # 2. A throwaway GOPATH holding the sources plus generated stubs.
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/go-spacecore-build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$WORK/src/$PLUGIN_PKG" "$WORK/src/$HOST_PKG"
    cp "${plugin_inputs[@]}" "$WORK/src/$PLUGIN_PKG/"
    cp "${host_inputs[@]}" "$WORK/src/$HOST_PKG/"
    # The proto says go_package "./proto"; map it to a real import path.
    M="M$PROTO_REL=$PLUGIN_PKG/proto"
    protoc -I "$PROTO_ROOT" \
        --plugin=protoc-gen-go="$CACHE/bin/protoc-gen-go" \
        --plugin=protoc-gen-go-grpc="$CACHE/bin/protoc-gen-go-grpc" \
        --go_out="$WORK/src" --go_opt="$M" \
        --go-grpc_out="$WORK/src" --go-grpc_opt="$M" \
        "$PROTO_ROOT/$PROTO_REL" || die "protoc failed"

    # 3. The binaries.
    export GOPATH=$WORK:$SYS_GOPATH
    if [ $need_plugin = 1 ]; then
        "$GO" build -trimpath -o "$PLUGIN_OUT.tmp.$$" "$PLUGIN_PKG" || die "building go-spacecore failed"
        mv -f "$PLUGIN_OUT.tmp.$$" "$PLUGIN_OUT"
    fi
    if [ $need_host = 1 ]; then
        "$GO" build -trimpath -o "$HOST_OUT.tmp.$$" "$HOST_PKG" || die "building go-host failed"
        mv -f "$HOST_OUT.tmp.$$" "$HOST_OUT"
    fi
fi

echo "$PLUGIN_OUT $HOST_OUT"
