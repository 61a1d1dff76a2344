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
#   PIN=1         servers on SERVER_CPUS (default 1), h2load and grpc-load on
#                 LOAD_CPUS (default 0), one worker/thread each, so the load
#                 generator never queues behind the server for a core (the
#                 gateway under test must be started on SERVER_CPUS by the
#                 caller, as benches/wasm-gateway.sh does)
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
H2LOAD_THREADS=2
SERVER_PREFIX=()
LOAD_PREFIX=()
if [[ -n ${PIN:-} ]]; then
    SERVER_CPUS=${SERVER_CPUS:-1}
    LOAD_CPUS=${LOAD_CPUS:-0}
    NATIVE_WORKERS=${PIN_NATIVE_WORKERS:-1}
    LOAD_WORKERS=${PIN_LOAD_WORKERS:-1}
    H2LOAD_THREADS=1
    SERVER_PREFIX=(taskset -c "$SERVER_CPUS")
    LOAD_PREFIX=(taskset -c "$LOAD_CPUS")
fi
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

"${SERVER_PREFIX[@]}" "$BENCH" native-adder --listen 127.0.0.1:0 --workers "$NATIVE_WORKERS" >"$WORK/native.out" &
NATIVE_PID=$!
for _ in $(seq 100); do
    grep -q '^listening ' "$WORK/native.out" && break
    sleep 0.05
done
NATIVE=$(awk '/^listening /{print $2}' "$WORK/native.out")
[[ -n $NATIVE ]] || { echo "benches/gateway.sh: native-adder did not start" >&2; exit 1; }
echo "benches/gateway.sh: native-adder on $NATIVE; $(nproc) cores; ${PIN:+pinned: servers on CPU $SERVER_CPUS, load on CPU $LOAD_CPUS; }$(date -u +%Y-%m-%dT%H:%M:%SZ)" >&2

# h2load_latency N RPS_PER_CONN CONNS STREAMS URL_AUTHORITY CONNECT_ADDR SCHEME
# Paced h2load run (--rps per connection) logging every request; prints
# "p50 / p99 µs (ok/N 2xx)" from the log (latency from each request's start).
h2load_latency() {
    local n=$1 rps=$2 c=$3 m=$4 url_auth=$5 connect=$6 scheme=$7 log=$WORK/latency.log out ok
    local t=$H2LOAD_THREADS
    ((t > c)) && t=$c
    rm -f "$log"
    out=$("${LOAD_PREFIX[@]}" h2load -n "$n" -c "$c" -m "$m" -t "$t" --rps "$rps" \
        --log-file "$log" -d "$BODY" -H 'content-type: application/grpc' -H 'te: trailers' \
        --connect-to "$connect" "$scheme://$url_auth$PATH_RPC")
    echo "$out" | grep -E '^(finished|status codes|time for request)' >&2
    ok=$(echo "$out" | sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p')
    awk '{print $3}' "$log" | sort -n | awk -v ok="$ok" -v n="$n" '
        { a[NR] = $1 }
        END { printf "%d / %d µs (%s/%s 2xx)", a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1], ok, n }'
}

# measure NAME URL_AUTHORITY CONNECT_ADDR SCHEME [grpc-load TLS/authority args...]
# Prints one table row's fields: name|h2load max|grpc-load max|half rate|p99.
measure() {
    local name=$1 url_auth=$2 connect=$3 scheme=$4
    shift 4
    local h2 h2max gl glmax half open p99 ok
    echo "benches/gateway.sh: [$name] h2load -n $N -c $CONNS -m $STREAMS" >&2
    h2=$("${LOAD_PREFIX[@]}" h2load -n "$N" -c "$CONNS" -m "$STREAMS" -t "$H2LOAD_THREADS" -d "$BODY" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        --connect-to "$connect" "$scheme://$url_auth$PATH_RPC")
    echo "$h2" | grep -E '^(finished|requests|status codes)' >&2
    h2max=$(echo "$h2" | sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p')
    ok=$(echo "$h2" | sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p')
    [[ $ok == "$N" ]] || echo "benches/gateway.sh: [$name] WARNING: only $ok of $N h2load requests got 2xx" >&2
    sleep 1
    echo "benches/gateway.sh: [$name] grpc-load --max" >&2
    gl=$("${LOAD_PREFIX[@]}" "$BENCH" grpc-load --target "$scheme://$connect" "$@" --max \
        --connections "$CONNS" --streams "$STREAMS" --duration "$MAX_DURATION" \
        --workers "$LOAD_WORKERS" --json)
    echo "$gl" >&2
    glmax=$(jq -r .achieved_rps <<<"$gl")
    half=$(jq -n --argjson a "$h2max" --argjson b "$glmax" '[$a, $b] | min / 2 | floor')
    sleep 1
    echo "benches/gateway.sh: [$name] grpc-load --rate $half" >&2
    open=$("${LOAD_PREFIX[@]}" "$BENCH" grpc-load --target "$scheme://$connect" "$@" --rate "$half" \
        --connections "$CONNS" --duration "$DURATION" --workers "$LOAD_WORKERS" --json)
    echo "$open" >&2
    p99=$(jq -r '"\(.p99_us) µs (\(.ok)/\(.sent) ok)"' <<<"$open")
    sleep 1
    local per=$(((half + CONNS - 1) / CONNS)) secs=${DURATION%s} h2p99
    echo "benches/gateway.sh: [$name] h2load --rps $per per connection (-c $CONNS)" >&2
    h2p99=$(h2load_latency "$((half * secs))" "$per" "$CONNS" "$STREAMS" "$url_auth" "$connect" "$scheme")
    echo "$name|$h2max|$glmax|$half|$p99|$h2p99"
    sleep 1
}

ROWS=()
ROWS+=("$(measure "native h2c" "$NATIVE" "$NATIVE" http)")
ROWS+=("$(measure "vimana h2c" "$AUTHORITY" "$TARGET_H2C" http --authority "$AUTHORITY")")
if [[ -n $TARGET_TLS ]]; then
    ROWS+=("$(measure "vimana TLS" "$AUTHORITY" "$TARGET_TLS" https \
        --authority "$AUTHORITY" --tls-ca "$CA" --sni "$SNI")")
fi

# The machine's own floor: native, one stream, 100 req/s (nothing queues).
echo "benches/gateway.sh: [floor] native h2load -c 1 -m 1 --rps 100" >&2
FLOOR=$(h2load_latency 1000 100 1 1 "$NATIVE" "$NATIVE" http)
NATIVE_MAX=${ROWS[0]#*|}
NATIVE_MAX=${NATIVE_MAX%%|*}
echo "| target | max req/s (h2load) | max req/s (grpc-load) | half max | p99 at half max (grpc-load open loop) | p50 / p99 at half max (h2load --rps) | ratio to native (h2load max) |"
echo "|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r name h2max glmax half p99 h2p99 <<<"$row"
    ratio=$(jq -n --argjson a "$h2max" --argjson b "$NATIVE_MAX" '($a / $b * 100 | round) / 100')
    printf '| %s | %.0f | %.0f | %s/s | %s | %s | %s |\n' "$name" "$h2max" "$glmax" "$half" "$p99" "$h2p99" "$ratio"
done
echo
echo "Latency floor of this machine (native, h2load -c 1 -m 1 --rps 100, p50 / p99): $FLOOR"
