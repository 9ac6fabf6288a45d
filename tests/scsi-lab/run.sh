#!/bin/bash
# Run a script inside the SCSI-lab guest and return its verdict.
#
#   tests/scsi-lab/run.sh [GUEST_SCRIPT] [EXTRA_FILES...]
#
# GUEST_SCRIPT (default: selftest.sh beside this file) becomes /mnt/host/run-in-guest.sh;
# each EXTRA_FILE (binaries such as target/release/vxfenadm, data, scripts) appears as
# /mnt/host/<basename>. With no argument the self-test runs, with target/release/lltstat
# (built with cargo if missing).
#
# Prepares the cache (setup-host.sh, idempotent), the initramfs (build-initramfs.sh, cached),
# boots the guest (run-qemu.sh) and exits with its status (0 only on PASS). The environment
# variables of run-qemu.sh (SMP, MEM, TIMEOUT, WATCHDOG, LAB, LOG ...) pass through.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export LAB=${LAB:-/var/cache/ha-scsi-lab}

if [ $# -eq 0 ]; then
    if [ ! -x "$ROOT/target/release/lltstat" ]; then
        echo "run.sh: building lltstat for the self-test" >&2
        (cd "$ROOT" && cargo build --release -p llt --bin lltstat)
    fi
    set -- "$HERE/selftest.sh" "$ROOT/target/release/lltstat"
fi
script=$1; shift
[ -f "$script" ] || { echo "run.sh: no such guest script: $script" >&2; exit 2; }

SHARE=$(mktemp -d /tmp/scsi-lab-share.XXXXXX)
trap 'rm -rf "$SHARE"' EXIT
place() {  # hard link when possible (big binaries, same filesystem), else copy
    ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}
cp "$script" "$SHARE/run-in-guest.sh"
for f in "$@"; do
    [ -e "$f" ] || { echo "run.sh: no such file: $f" >&2; exit 2; }
    if [ -d "$f" ]; then cp -a "$f" "$SHARE/"; else place "$f" "$SHARE/$(basename "$f")"; fi
done


mkdir -p "$LAB"
# one lab preparation at a time (setup-host.sh and build-initramfs.sh rewrite the cache)
exec 9>"$LAB/.prepare.lock"
flock 9
bash "$HERE/setup-host.sh"
bash "$HERE/build-initramfs.sh"
flock -u 9
exec 9>&-

# in the background + wait, so that a TERM or INT to this script reaches run-qemu.sh (which then
# stops qemu) at once instead of after the guest ends
set +e
SHARE=$SHARE bash "$HERE/run-qemu.sh" &
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 130' INT TERM
wait $child
exit $?
