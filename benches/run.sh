#!/usr/bin/env bash
# Runs the vimana benchmarks and prints one JSON line per figure.
#
#   bash benches/run.sh
#
# Builds release binaries (vimana, spacecore-counter, vimana-bench), the Go
# spacecore and HashiCorp go-plugin Go host (benches/go-host) into
# target/go-spacecore, then measures:
#   1. launch → handshake → first Status, vimana host, Rust plugin, AutoMTLS
#   2. the same, vimana host, Go plugin, AutoMTLS on and off
#   3. the same, Go host (go-plugin), Go plugin, AutoMTLS on and off
#   4. daemon RSS idle and with 200 supervised Rust spacecores
# Env: N (launch iterations, default 50), COUNT (spacecores, default 200).
# Results and the targets they are held to: docs/benchmarks.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
N=${N:-50}
COUNT=${COUNT:-200}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
REL=$TARGET_DIR/release
GO_OUT=$TARGET_DIR/go-spacecore

echo "benches/run.sh: building release binaries" >&2
cargo build --release -p vimana -p spacecore-counter -p vimana-bench >&2
echo "benches/run.sh: building the Go spacecore and go-host" >&2
bash scripts/build-go-spacecore.sh "$GO_OUT" >&2

BENCH=$REL/vimana-bench
RUST_PLUGIN=$REL/spacecore-counter
GO_PLUGIN=$GO_OUT/go-spacecore
GO_HOST=$GO_OUT/go-host

echo "benches/run.sh: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ), N=$N COUNT=$COUNT" >&2
"$BENCH" launch --plugin "$RUST_PLUGIN" --n "$N" --mtls true
"$BENCH" launch --plugin "$GO_PLUGIN" --n "$N" --mtls true
"$BENCH" launch --plugin "$GO_PLUGIN" --n "$N" --mtls false
"$GO_HOST" -plugin "$GO_PLUGIN" -n "$N" -mtls=true
"$GO_HOST" -plugin "$GO_PLUGIN" -n "$N" -mtls=false
"$BENCH" daemon-rss --vimana "$REL/vimana" --plugin "$RUST_PLUGIN" --count "$COUNT"
# Packages (issue 3): cached `vimana run`, and download throughput vs curl.
"$BENCH" run-cached --vimana "$REL/vimana" --n "$N"
"$BENCH" download --size-mib 200 --runs 3 --server python
