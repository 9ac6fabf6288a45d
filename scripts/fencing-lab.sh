#!/usr/bin/env bash
# Fencing on a real SCSI target: builds vxfenadm, vxfenclearpre and the
# guest tests (fencing/tests/guest.rs) on the host, boots the SCSI lab
# (tests/scsi-lab/: QEMU + LIO, three coordinator LUNs and a data LUN seen
# by three initiators) and runs fencing/tests/lab_guest.sh inside it.
# Needs root. Prints "scsi-lab: N passed, N failed"; exit 0 only on PASS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p fencing --bins
exe=$(cargo test --release -p fencing --test guest --no-run 2>&1 | sed -n 's/.*Executable .*(\(target\/release\/deps\/guest-[0-9a-f]*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "fencing-lab: cannot find the guest test binary" >&2; exit 2; }
work=$(mktemp -d /tmp/fencing-lab.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$exe" "$work/fencing-guest-tests"
exec bash tests/scsi-lab/run.sh fencing/tests/lab_guest.sh \
    target/release/vxfenadm target/release/vxfenclearpre "$work/fencing-guest-tests"
