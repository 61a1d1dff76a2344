#!/usr/bin/env bash
# Gateway benchmark: foo.bar.AdderService/AddFloats served natively (tonic,
# `vimana-bench native-adder`) vs by a running vimana gateway (the adder
# WebAssembly component) over h2c and TLS. Prints a markdown table.
#
#   TARGET_H2C=127.0.0.1:8080 TARGET_TLS=127.0.0.1:8443 \
#   AUTHORITY=adder.example CA=/path/ca.pem bash benches/gateway.sh
#
# Env (the gateway is set up by the caller):
#   TARGET_H2C  host:port of the gateway's h2c listener (required)
#   TARGET_TLS  host:port of its TLS listener (optional; row skipped if unset)
#   AUTHORITY   :authority sent to the gateway, host[:port] (default: TARGET_H2C);
#               its host is also the TLS SNI name
#   CA          PEM CA that verifies the gateway's TLS certificate (with TARGET_TLS)
#   N           requests per h2load run (default 100000)
#   MAX_DURATION  grpc-load --max duration (default 10s)
#   DURATION      open-loop duration at half the max rate (default 10s)
#   CONNS STREAMS  connections and streams per connection (default 4, 32)
#   NATIVE_WORKERS LOAD_WORKERS  tokio workers of native-adder / grpc-load (2, 2)
#
# Per target: max throughput with h2load (-c CONNS -m STREAMS -t 2, POST of
# the length-prefixed AddFloatsRequest{3.5,-1.2}; h2load sees only HTTP
# status, not grpc-status) and with `grpc-load --max` (checks grpc-status 0
# and result 2.3), then `grpc-load` open loop at half the lower of the two
# maxima for DURATION, reporting p99 from the scheduled send times. The
# ratio column is the target's h2load max over native's. Raw tool output
# goes to stderr. Load generators and servers share this machine's cores.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
: "${TARGET_H2C:?set TARGET_H2C=host:port of the gateway h2c listener}"
TARGET_TLS=${TARGET_TLS:-}
AUTHORITY=${AUTHORITY:-$TARGET_H2C}
N=${N:-100000}
MAX_DURATION=${MAX_DURATION:-10s}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-4}
STREAMS=${STREAMS:-32}
NATIVE_WORKERS=${NATIVE_WORKERS:-2}
LOAD_WORKERS=${LOAD_WORKERS:-2}
PATH_RPC=/foo.bar.AdderService/AddFloats
SNI=${AUTHORITY%:*}
if [[ -n $TARGET_TLS && -z ${CA:-} ]]; then
    echo "benches/gateway.sh: TARGET_TLS needs CA=<pem>" >&2
    exit 2
fi
command -v h2load >/dev/null || { echo "benches/gateway.sh: h2load (nghttp2-client) not found" >&2; exit 2; }
command -v jq >/dev/null || { echo "benches/gateway.sh: jq not found" >&2; exit 2; }

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "benches/gateway.sh: building vimana-bench (release)" >&2
    cargo build --release -p vimana-bench >&2
fi
BENCH=${CARGO_TARGET_DIR:-$REPO/target}/release/vimana-bench

WORK=$(mktemp -d)
NATIVE_PID=
cleanup() {
    if [[ -n $NATIVE_PID ]]; then
        kill "$NATIVE_PID" 2>/dev/null || true
        wait "$NATIVE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# gRPC frame: flag 0, length 18, then field 1 (double 3.5), field 2 (double -1.2).
BODY=$WORK/add_floats.bin
printf '\x00\x00\x00\x00\x12\x09\x00\x00\x00\x00\x00\x00\x0c\x40\x11\x33\x33\x33\x33\x33\x33\xf3\xbf' >"$BODY"

"$BENCH" native-adder --listen 127.0.0.1:0 --workers "$NATIVE_WORKERS" >"$WORK/native.out" &
NATIVE_PID=$!
for _ in $(seq 100); do
    grep -q '^listening ' "$WORK/native.out" && break
    sleep 0.05
done
NATIVE=$(awk '/^listening /{print $2}' "$WORK/native.out")
[[ -n $NATIVE ]] || { echo "benches/gateway.sh: native-adder did not start" >&2; exit 1; }
echo "benches/gateway.sh: native-adder on $NATIVE; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&2

# measure NAME URL_AUTHORITY CONNECT_ADDR SCHEME [grpc-load TLS/authority args...]
# Prints one table row's fields: name|h2load max|grpc-load max|half rate|p99.
measure() {
    local name=$1 url_auth=$2 connect=$3 scheme=$4
    shift 4
    local h2 h2max gl glmax half open p99 ok
    echo "benches/gateway.sh: [$name] h2load -n $N -c $CONNS -m $STREAMS" >&2
    h2=$(h2load -n "$N" -c "$CONNS" -m "$STREAMS" -t 2 -d "$BODY" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        --connect-to "$connect" "$scheme://$url_auth$PATH_RPC")
    echo "$h2" | grep -E '^(finished|requests|status codes)' >&2
    h2max=$(echo "$h2" | sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p')
    ok=$(echo "$h2" | sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p')
    [[ $ok == "$N" ]] || echo "benches/gateway.sh: [$name] WARNING: only $ok of $N h2load requests got 2xx" >&2
    sleep 1
    echo "benches/gateway.sh: [$name] grpc-load --max" >&2
    gl=$("$BENCH" grpc-load --target "$scheme://$connect" "$@" --max \
        --connections "$CONNS" --streams "$STREAMS" --duration "$MAX_DURATION" \
        --workers "$LOAD_WORKERS" --json)
    echo "$gl" >&2
    glmax=$(jq -r .achieved_rps <<<"$gl")
    half=$(jq -n --argjson a "$h2max" --argjson b "$glmax" '[$a, $b] | min / 2 | floor')
    sleep 1
    echo "benches/gateway.sh: [$name] grpc-load --rate $half" >&2
    open=$("$BENCH" grpc-load --target "$scheme://$connect" "$@" --rate "$half" \
        --connections "$CONNS" --duration "$DURATION" --workers "$LOAD_WORKERS" --json)
    echo "$open" >&2
    p99=$(jq -r '"\(.p99_us) µs (\(.ok)/\(.sent) ok)"' <<<"$open")
    echo "$name|$h2max|$glmax|$half|$p99"
    sleep 1
}

ROWS=()
ROWS+=("$(measure "native h2c" "$NATIVE" "$NATIVE" http)")
ROWS+=("$(measure "vimana h2c" "$AUTHORITY" "$TARGET_H2C" http --authority "$AUTHORITY")")
if [[ -n $TARGET_TLS ]]; then
    ROWS+=("$(measure "vimana TLS" "$AUTHORITY" "$TARGET_TLS" https \
        --authority "$AUTHORITY" --tls-ca "$CA" --sni "$SNI")")
fi

NATIVE_MAX=${ROWS[0]#*|}
NATIVE_MAX=${NATIVE_MAX%%|*}
echo "| target | max req/s (h2load) | max req/s (grpc-load) | p99 at half max (rate) | ratio to native (h2load max) |"
echo "|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r name h2max glmax half p99 <<<"$row"
    ratio=$(jq -n --argjson a "$h2max" --argjson b "$NATIVE_MAX" '($a / $b * 100 | round) / 100')
    printf '| %s | %.0f | %.0f | %s @ %s/s | %s |\n' "$name" "$h2max" "$glmax" "$p99" "$half" "$ratio"
done
