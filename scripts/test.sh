#!/usr/bin/env bash
# The one command that runs every check and test of vimana on a fresh
# Debian 12 machine (as root): installs the system packages the tests need,
# then formatting, lints, build, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# One clean build: incremental artifacts would only cost disk (they doubled
# the target directory and filled a CI machine's disk once).
export CARGO_INCREMENTAL=0

echo "== installing test dependencies"
bash scripts/install-test-deps.sh

for tool in "cargo fmt" "cargo clippy"; do
    if ! $tool --version >/dev/null 2>&1; then
        echo "error: '$tool' is missing; install the rustfmt and clippy components of this toolchain" >&2
        exit 1
    fi
done

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo build"
cargo build --workspace --all-targets

echo "== cargo test"
mkdir -p target
set -o pipefail
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.log

# One closing line for the whole suite (libtest's per-binary lines and the
# e2e harness's "e2e: N passed; M failed" line, summed).
awk '
    /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    /^e2e: [0-9]+ passed/ { p += $2; f += $4 }
    END { printf "%d passed, %d failed\n", p, f }
' target/test-output.log
