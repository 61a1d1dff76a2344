#!/usr/bin/env bash
# Wasm services benchmark (issue 4), end to end through a real daemon:
#
#   bash benches/wasm-gateway.sh
#
#   1. gRPC: the adder component applied to a fresh daemon (temporary
#      VIMANA_HOME, gateway on free ports), then benches/gateway.sh: native
#      tonic (h2c) vs vimana h2c vs vimana TLS — max req/s (h2load,
#      grpc-load --max) and p99 at half the max (grpc-load open loop).
#   2. wasi:http: the hello component (`vimana-bench write-hello-http`) as
#      Domain hello.local; req/s with h2load over h2c and over HTTP/1.1
#      (--h1), and with wrk and hey if installed; `wasmtime serve` on the
#      same component if wasmtime is on PATH.
#   3. Many Components: `vimana-bench wasm-deploy` (own temporary home):
#      DOMAINS × VERSIONS adder Components in one apply, per IMAGES mode.
#
# Env: PIN=1 (daemon on SERVER_CPUS=1, load on LOAD_CPUS=0), N, CONNS, STREAMS, DURATION, MAX_DURATION (passed to gateway.sh;
# N/CONNS/STREAMS/DURATION also used for the wasi:http runs),
# DOMAINS (100), VERSIONS (10), IMAGES ("distinct shared"),
# SKIP_GRPC=1, SKIP_HTTP=1, SKIP_DEPLOY=1 to leave a part out; SKIP_BUILD=1
# to use the release binaries as they are (gateway.sh still builds vimana-bench).
# The daemon started here is stopped at the end (also on error/Ctrl-C).
# Results: docs/benchmarks.md, "Wasm services (issue 4)".
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
N=${N:-100000}
CONNS=${CONNS:-4}
STREAMS=${STREAMS:-32}
DURATION=${DURATION:-10s}
DOMAINS=${DOMAINS:-100}
VERSIONS=${VERSIONS:-10}
IMAGES=${IMAGES:-distinct shared}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
REL=$TARGET_DIR/release
VIMANA=$REL/vimana
BENCH=$REL/vimana-bench
log() { echo "benches/wasm-gateway.sh: $*" >&2; }

command -v h2load >/dev/null || { log "h2load (nghttp2-client) not found"; exit 2; }
command -v jq >/dev/null || { log "jq not found"; exit 2; }
command -v curl >/dev/null || { log "curl not found"; exit 2; }

if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building vimana, vimana-bench, adder (release)"
    cargo build --release -p vimana -p vimana-bench -p adder >&2
fi

WORK=$(mktemp -d)
H=$WORK/home
mkdir -p "$H"
cat >"$H/config.toml" <<'EOF'
[gateway]
tls_listen = "127.0.0.1:0"
h2c_listen = "127.0.0.1:0"
EOF

# The pid of the daemon of $H, only if that process really is
# `vimana --home $H daemon` (daemon.lock may be stale).
daemon_pid() {
    local pid
    pid=$(cat "$H/daemon.lock" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "--home $H daemon" || return 1
    echo "$pid"
}
stop_daemon() {
    local pid
    pid=$(daemon_pid) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    stop_daemon
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PIN=1: the daemon (autostarted by the first `vimana apply`, so it inherits
# the affinity and tokio sizes itself to it) runs on SERVER_CPUS, the load
# generators on LOAD_CPUS (see benches/gateway.sh).
SERVER_PREFIX=()
if [[ -n ${PIN:-} ]]; then
    export PIN SERVER_CPUS=${SERVER_CPUS:-1} LOAD_CPUS=${LOAD_CPUS:-0}
    SERVER_PREFIX=(taskset -c "$SERVER_CPUS")
fi
V() { "${SERVER_PREFIX[@]}" "$VIMANA" --home "$H" "$@"; }

# wait_available NAME...: until these Components report Available=True.
wait_available() {
    local want=$# names
    names=$(printf '%s\n' "$@" | jq -R . | jq -s .)
    for _ in $(seq 300); do
        local ok
        ok=$(V -o json get components | jq --argjson n "$names" \
            '[.[] | select(.metadata.name as $m | $n | index($m))
                  | select(any(.status.conditions[]?; .type == "Available" and .status == "True"))] | length')
        [[ $ok == "$want" ]] && return 0
        sleep 0.1
    done
    log "Components not available: $*"
    V get components >&2 || true
    return 1
}

log "$(nproc) cores; $(date -u +%Y-%m-%dT%H:%M:%SZ); uptime:$(uptime)"

# --- the adder component and the resources --------------------------------
# build-adder as built above (a lone `cargo run -p adder` may rebuild with other features)
"$REL/build-adder" "$WORK/adder.wasm" >&2
V image embed "$WORK/adder.wasm" --proto examples/adder/adder.proto >&2
"$BENCH" write-hello-http "$WORK/hello.wasm" >&2
sed "s#image: ../../target/adder.wasm#image: $WORK/adder.wasm#" examples/adder/adder.yaml >"$WORK/adder.yaml"
grep -q "image: $WORK/adder.wasm" "$WORK/adder.yaml" || { log "cannot set the image path in adder.yaml"; exit 1; }
cat >"$WORK/hello.yaml" <<EOF
apiVersion: api.vimana.host/v1alpha1
kind: Domain
metadata:
  name: hello
spec:
  id: 00000000000000000000000000000002
  vimana: local
  aliases:
    - hello.local
---
apiVersion: api.vimana.host/v1alpha1
kind: Server
metadata:
  name: hello
spec:
  id: hello
  domain: 00000000000000000000000000000002
  versionWeights:
    "1.0.0": 1
---
apiVersion: api.vimana.host/v1alpha1
kind: Component
metadata:
  name: hello-1.0.0
spec:
  version: 1.0.0
  server: hello
  domain: 00000000000000000000000000000002
  image: $WORK/hello.wasm
EOF

log "vimana apply (autostarts the daemon in $H)"
V apply -f "$WORK/adder.yaml" -f "$WORK/hello.yaml" >&2
wait_available adder-1.0.0 hello-1.0.0
for _ in $(seq 100); do
    [[ -s $H/gateway.json ]] && jq -e '.h2c and .tls' "$H/gateway.json" >/dev/null 2>&1 && break
    sleep 0.1
done
H2C=$(jq -r .h2c "$H/gateway.json")
TLS=$(jq -r .tls "$H/gateway.json")
V ca export >"$WORK/ca.pem"
DPID=$(daemon_pid) || { log "no daemon for $H"; exit 1; }
log "daemon pid $DPID; gateway h2c $H2C, tls $TLS; RSS $(awk '/^VmRSS/{print $2, $3}' "/proc/$DPID/status")"

# --- 1. gRPC: native vs vimana h2c vs vimana TLS --------------------------
if [[ -z ${SKIP_GRPC:-} ]]; then
    log "gRPC gateway benchmark (benches/gateway.sh)"
    TARGET_H2C=$H2C TARGET_TLS=$TLS AUTHORITY=example.com CA=$WORK/ca.pem \
        bash benches/gateway.sh
    echo
fi

# --- 2. wasi:http hello ---------------------------------------------------
h2load_rps() { sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p'; }
h2load_ok() { sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p'; }
if [[ -z ${SKIP_HTTP:-} ]]; then
    body=$(curl -sS -H 'Host: hello.local' "http://$H2C/")
    [[ $body == "hello from wasm" ]] || { log "hello.local answered $(printf %q "$body")"; exit 1; }
    secs=${DURATION%s}
    ROWS=()
    log "[wasi:http] h2load h2c -n $N -c $CONNS -m $STREAMS"
    out=$(h2load -n "$N" -c "$CONNS" -m "$STREAMS" -t 2 --connect-to "$H2C" http://hello.local/)
    echo "$out" | grep -E '^(finished|requests|status codes)' >&2
    ROWS+=("vimana, h2load h2c -c $CONNS -m $STREAMS|$(h2load_rps <<<"$out")|$(h2load_ok <<<"$out")/$N 2xx")
    sleep 1
    log "[wasi:http] h2load --h1 -n $N -c 64"
    out=$(h2load --h1 -n "$N" -c 64 -t 2 --connect-to "$H2C" http://hello.local/)
    echo "$out" | grep -E '^(finished|requests|status codes)' >&2
    ROWS+=("vimana, h2load HTTP/1.1 -c 64|$(h2load_rps <<<"$out")|$(h2load_ok <<<"$out")/$N 2xx")
    sleep 1
    if command -v wrk >/dev/null; then
        log "[wasi:http] wrk -t2 -c64 -d${secs}s"
        out=$(wrk -t2 -c64 -d"${secs}s" -H 'Host: hello.local' "http://$H2C/")
        echo "$out" >&2
        rps=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$out")
        bad=$(sed -nE 's/.*Non-2xx or 3xx responses: *([0-9]+).*/\1/p' <<<"$out")
        ROWS+=("vimana, wrk HTTP/1.1 -c 64|$rps|${bad:-0} non-2xx")
        sleep 1
    else
        log "wrk not on PATH: skipped (apt-get install wrk)"
    fi
    if command -v hey >/dev/null; then
        log "[wasi:http] hey -z ${secs}s -c 64"
        out=$(hey -z "${secs}s" -c 64 -host hello.local "http://$H2C/")
        echo "$out" | grep -E 'Requests/sec|\[[0-9]+\]|99%' >&2
        rps=$(sed -nE 's/^[[:space:]]*Requests\/sec:[[:space:]]*([0-9.]+).*/\1/p' <<<"$out")
        codes=$(grep -E '^ *\[[0-9]+\]' <<<"$out" | tr -s ' ' | paste -sd' ')
        ROWS+=("vimana, hey HTTP/1.1 -c 64|$rps|$codes")
        sleep 1
    else
        log "hey not on PATH: skipped (apt-get install hey)"
    fi
    if command -v wasmtime >/dev/null; then
        WT_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        wasmtime serve --addr "127.0.0.1:$WT_PORT" "$WORK/hello.wasm" >"$WORK/wasmtime.out" 2>&1 &
        WT_PID=$!
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$WT_PORT/" >/dev/null && break; sleep 0.1; done
        out=$(h2load --h1 -n "$N" -c 64 -t 2 "http://127.0.0.1:$WT_PORT/")
        ROWS+=("wasmtime serve, h2load HTTP/1.1 -c 64|$(h2load_rps <<<"$out")|$(h2load_ok <<<"$out")/$N 2xx")
        if command -v wrk >/dev/null; then
            out=$(wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:$WT_PORT/")
            ROWS+=("wasmtime serve, wrk HTTP/1.1 -c 64|$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$out")|")
        fi
        kill "$WT_PID" 2>/dev/null || true
        wait "$WT_PID" 2>/dev/null || true
    else
        log "wasmtime not on PATH: skipped"
        ROWS+=("wasmtime serve|skipped (wasmtime not on PATH)|")
    fi
    echo "| wasi:http hello (hello.local) | req/s | responses |"
    echo "|---|---|---|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name rps note <<<"$row"
        echo "| $name | $rps | $note |"
    done
    echo
fi
log "daemon RSS after the load: $(awk '/^VmRSS/{print $2, $3}' "/proc/$DPID/status"), peak $(awk '/^VmHWM/{print $2, $3}' "/proc/$DPID/status")"
stop_daemon

# --- 3. many Components ---------------------------------------------------
if [[ -z ${SKIP_DEPLOY:-} ]]; then
    for mode in $IMAGES; do
        log "wasm-deploy --domains $DOMAINS --versions $VERSIONS --images $mode"
        "$BENCH" wasm-deploy --vimana "$VIMANA" --image "$WORK/adder.wasm" \
            --domains "$DOMAINS" --versions "$VERSIONS" --images "$mode"
    done
fi
log "done; uptime:$(uptime)"
