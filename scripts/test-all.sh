#!/usr/bin/env bash
# Every test of the project: unit tests, the deterministic simulation,
# parser fuzz smoke runs, and the multi-node tests in network namespaces.
# Needs root. Usage: scripts/test-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CARGO_TERM_COLOR=never
# The simulator and the namespace tests run on release builds: faster, and
# the same binaries the benchmarks measure.
cargo build --release --workspace --bins --tests
export HA_BIN_DIR="$PWD/target/release"
# Namespace tests build whole labs; two at a time suits a 2-core machine.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
SIM_SEEDS=${SIM_SEEDS:-1000} cargo test --release --workspace -- --test-threads=2 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The real SCSI target: a QEMU guest with LIO (tests/scsi-lab/README.md).
# Its self-test proves the lab (paths, PR through sg_persist, namespaces).
bash tests/scsi-lab/run.sh 2>&1 | tee -a "$log"
lab=${PIPESTATUS[0]}
[ "$lab" -eq 0 ] || status=$lab
# Fencing on that target: PR commands, sg_persist interop, fenced writes.
scripts/fencing-lab.sh 2>&1 | tee -a "$log"
lab=${PIPESTATUS[0]}
[ "$lab" -eq 0 ] || status=$lab
set -e
# One closing line over every test binary (cargo prints one per binary,
# the last often being an empty doc-test run) and the lab's checks.
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     /^scsi-lab: [0-9]+ passed/ { p += $2; f += $4 }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
