#!/usr/bin/env bash
# The one command that runs every check and test of vimana on a fresh
# Debian 12 machine (as root): installs the system packages the tests need,
# then formatting, lints, build, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# One clean build: incremental artifacts would only cost disk (they doubled
# the target directory and filled a CI machine's disk once).
export CARGO_INCREMENTAL=0

# Each stage prints its wall time when it ends, and the run closes with a
# table of all of them (CI's limit is 90 minutes; see README).
RUN_START=$SECONDS
STAGE_NAME=
STAGE_START=$SECONDS
STAGE_TIMES=()
end_stage() {
    [ -n "$STAGE_NAME" ] || return 0
    local took=$((SECONDS - STAGE_START))
    STAGE_TIMES+=("$(printf '%-28s %5d s' "$STAGE_NAME" "$took")")
    echo "== $STAGE_NAME: ${took} s"
    STAGE_NAME=
}
stage() {
    end_stage
    STAGE_NAME=$1
    STAGE_START=$SECONDS
    echo "== $1"
}
print_stage_times() {
    end_stage
    echo "== stage times"
    printf '   %s\n' "${STAGE_TIMES[@]}"
    echo "   total                        $((SECONDS - RUN_START)) s"
}
trap print_stage_times EXIT

stage "installing test dependencies"
bash scripts/install-test-deps.sh

for tool in "cargo fmt" "cargo clippy"; do
    if ! $tool --version >/dev/null 2>&1; then
        echo "error: '$tool' is missing; install the rustfmt and clippy components of this toolchain" >&2
        exit 1
    fi
done

stage "cargo fmt --check"
cargo fmt --all --check

stage "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo build"
cargo build --workspace --all-targets

stage "cargo test"
mkdir -p target
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.log
test_status=${PIPESTATUS[0]}
set -e

# Stage times first, so the suite's closing line stays the last line.
trap - EXIT
print_stage_times

# One closing line for the whole suite (libtest's per-binary lines and the
# e2e harness's "e2e: N passed; M failed" line, summed).
awk '
    /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    /^e2e: [0-9]+ passed/ { p += $2; f += $4 }
    END { printf "%d passed, %d failed\n", p, f }
' target/test-output.log
exit "$test_status"
