#!/usr/bin/env bash
# Fencing on a real SCSI target, in two boots of the SCSI lab (tests/scsi-lab/:
# QEMU + LIO, three coordinator LUNs and a data LUN seen by three initiators):
#  1. fencing/tests/lab_guest.sh: vxfenadm, vxfenclearpre and the library's guest
#     tests (fencing/tests/guest.rs) on LIO, then two racers at once on LUNs that
#     tgt serves in the guest (LIO deadlocks on simultaneous mutual PREEMPTs);
#  2. fencing/tests/cluster_guest.sh: three clusterd nodes in namespaces, split
#     and crashed, on the same LUNs.
# Builds everything on the host first. Needs root. Prints "scsi-lab: N passed,
# N failed" for each boot; exit 0 only if both passed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p fencing --bins
cargo build --release -p clusterd -p llt -p gab --bins
exe=$(cargo test --release -p fencing --test guest --no-run 2>&1 | sed -n 's/.*Executable .*(\(target\/release\/deps\/guest-[0-9a-f]*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "fencing-lab: cannot find the guest test binary" >&2; exit 2; }
work=$(mktemp -d /tmp/fencing-lab.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$exe" "$work/fencing-guest-tests"
T=target/release
rc=0
bash tests/scsi-lab/run.sh fencing/tests/lab_guest.sh \
    $T/vxfenadm $T/vxfenclearpre "$work/fencing-guest-tests" || rc=1
# The cluster test runs daemons that wait for each other: more time than the default.
TIMEOUT=${TIMEOUT:-600} WATCHDOG=${WATCHDOG:-500} bash tests/scsi-lab/run.sh fencing/tests/cluster_guest.sh \
    $T/clusterd $T/lltstat $T/gabconfig $T/gabmsg $T/vxfenconfig $T/vxfenadm $T/vxfenclearpre || rc=1
exit $rc
