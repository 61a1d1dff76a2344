#!/usr/bin/env bash
# The main job on a fresh machine: build vimana and the example Rust
# spacecore, start it as a managed workload (the daemon starts by itself),
# and show its status and logs. Uses VIMANA_HOME (default ./target/demo-home).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vimana -p spacecore-counter
export VIMANA_HOME="${VIMANA_HOME:-$PWD/target/demo-home}"
vimana=target/release/vimana
$vimana start counter --plugin target/release/spacecore-counter
sleep 3
$vimana status
$vimana logs counter --tail 10
echo
echo "The daemon and the spacecore keep running. Stop them with:"
echo "  VIMANA_HOME=$VIMANA_HOME $vimana stop counter"
echo "  kill \$(cat $VIMANA_HOME/daemon.lock)"
