#!/bin/bash
# Boot the SCSI-lab guest, stream its serial console to stdout and $LOG, summarise.
# Exits 0 only if the guest printed "SCSILAB-RESULT: PASS" and no "CHECK FAILED" line.
#
#   LAB=/var/cache/ha-scsi-lab   cache filled by setup-host.sh and build-initramfs.sh
#   SHARE=/host/dir              exported read-only over 9p, mounted at /mnt/host in the guest;
#                                its run-in-guest.sh, if any, is the test
#   SMP=2 MEM=1024               guest CPUs and MiB
#   TIMEOUT=900                  host-side limit (seconds) for the whole boot
#   WATCHDOG=600                 guest-side limit (seconds) after /init starts
#   LUNMB=64                     size of each LUN
#   ACCEL=kvm|tcg                default: tcg when /dev/kvm is kvm_pvm or unusable
#   QEMU=path                    default: the qemu unpacked by setup-host.sh
#   LOG=$LAB/console.log         console log
#   APPEND="..."                 extra kernel command line
# Prints "scsi-lab: N passed, N failed" (CHECK OK / CHECK FAILED lines; a missing PASS counts as a failure).
set -uo pipefail
LAB=${LAB:-/var/cache/ha-scsi-lab}
KROOT=$LAB/kroot
KVER=$(ls "$KROOT/lib/modules" | head -1)
INITRD=${INITRD:-$LAB/initramfs.cpio.gz}
LOG=${LOG:-$LAB/console.log}
SMP=${SMP:-2}; MEM=${MEM:-1024}; TIMEOUT=${TIMEOUT:-900}; WATCHDOG=${WATCHDOG:-600}; LUNMB=${LUNMB:-64}
QDIR=$LAB/qemu
QEMU=${QEMU:-$QDIR/usr/bin/qemu-system-x86_64}
if [ -z "${ACCEL:-}" ]; then
    # GOTCHA: on hosts with nested PVM, /dev/kvm is kvm_pvm: it runs only PVM-enabled guest
    # kernels; a stock Debian kernel aborts (MSR 0x10a) or hangs after "Probing EDD". Use TCG.
    if [ -d /sys/module/kvm_pvm ]; then ACCEL=tcg; echo "run-qemu: /dev/kvm is kvm_pvm -> TCG" >&2
    elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
if [ "$ACCEL" = kvm ]; then CPU=host; else CPU=max; fi
EXTRA=()
if [ "$QEMU" = "$QDIR/usr/bin/qemu-system-x86_64" ]; then
    # unpacked, not installed: point qemu at its firmware and its modules (accel-tcg is one)
    EXTRA+=(-L "$QDIR/usr/share/qemu" -L "$QDIR/usr/share/seabios")
    export QEMU_MODULE_DIR=$QDIR/usr/lib/x86_64-linux-gnu/qemu
fi
if [ -n "${SHARE:-}" ]; then
    EXTRA+=(-virtfs "local,path=$SHARE,mount_tag=hostshare,security_model=none,readonly=on,id=hostshare")
fi
mkdir -p "$(dirname "$LOG")"
start=$(date +%s.%N)
# -pidfile + trap: no qemu is left behind, even if this script is interrupted
PIDFILE=$(mktemp /tmp/scsi-lab-qemu.XXXXXX)
RCFILE=$PIDFILE.rc
cleanup() {
    local pid; pid=$(cat "$PIDFILE" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null; sleep 1; kill -9 "$pid" 2>/dev/null; fi
    rm -f "$PIDFILE" "$RCFILE"
}
trap cleanup EXIT
trap 'echo "run-qemu: interrupted, stopping qemu" >&2; exit 130' INT TERM
# The pipeline runs in the background and we 'wait' for it: bash runs a trap only once the
# foreground command ends, but interrupts 'wait' at once.
{ timeout --foreground -k 10 "$TIMEOUT" "$QEMU" \
    -nodefaults -no-user-config -display none -no-reboot \
    -machine q35,accel=$ACCEL -cpu $CPU -smp "$SMP" -m "$MEM" \
    -kernel "$KROOT/boot/vmlinuz-$KVER" -initrd "$INITRD" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init scsilab.watchdog=$WATCHDOG scsilab.lunmb=$LUNMB ${APPEND:-}" \
    -serial stdio -monitor none -pidfile "$PIDFILE" \
    "${EXTRA[@]}" </dev/null 2>&1; echo $? > "$RCFILE"; } | tr -d '\r' | tee "$LOG" &
wait $!
qrc=$(cat "$RCFILE" 2>/dev/null || echo "?")
: > "$PIDFILE"   # qemu is gone: never signal a recycled pid
end=$(date +%s.%N)
wall=$(echo "$end - $start" | bc -l 2>/dev/null | sed 's/\(\.[0-9]\)[0-9]*/\1/')
echo "run-qemu: accel=$ACCEL smp=$SMP mem=$MEM qemu_rc=$qrc wall=${wall}s log=$LOG"
ok=$(grep -c '^CHECK OK' "$LOG"); bad=$(grep -c '^CHECK FAILED' "$LOG")
if ! grep -q '^SCSILAB-RESULT: PASS' "$LOG"; then   # setup failure, hang, timeout
    echo "run-qemu: no SCSILAB-RESULT: PASS from the guest ($(grep -m1 '^SCSILAB-RESULT' "$LOG" || echo 'no result line; host timeout or crash?'))"
    bad=$((bad + 1))
fi
echo "scsi-lab: $ok passed, $bad failed"
[ "$bad" -eq 0 ]
