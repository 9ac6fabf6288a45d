#!/bin/bash
# Host side of the SCSI lab: everything the guest needs, in a cache directory.
# Idempotent; a warm run does no apt work at all and takes well under a second.
#
#   LAB=/var/cache/ha-scsi-lab   cache directory (debs, unpacked kernel, qemu, open-iscsi)
#
# What it does:
#  - apt-get installs the host tools (busybox-static, sg3-utils, iproute2, nftables, cpio ...)
#    and the shared libraries qemu-system-x86_64 links against.
#  - downloads and UNPACKS (never installs) qemu-system-x86 (+ -common, -data, seabios), tgt,
#    the Debian kernel behind linux-image-amd64, and open-iscsi with its two libraries.
#
# Why qemu is unpacked rather than installed: the Debian 12 image this project runs on ships
# qemu-utils 10.x from bookworm-backports, which Breaks bookworm's qemu-system-common 7.2;
# `apt-get install qemu-system-x86` would remove it (pitfall 9 of the recipe). Unpacking leaves
# the host's packages as they are. QEMU=/path/to/qemu-system-x86_64 skips this and uses that one.
set -euo pipefail
LAB=${LAB:-/var/cache/ha-scsi-lab}
mkdir -p "$LAB/debs"
export DEBIAN_FRONTEND=noninteractive
STAMP=$LAB/setup.done
STAMP_VERSION=5   # bump when this script changes what it produces

HOST_PKGS="busybox-static sg3-utils cpio gzip xz-utils iproute2 nftables bc"

log() { echo "setup-host: $*" >&2; }
retry() {  # retry CMD...: another apt/dpkg (e.g. a concurrent deps.sh) can make one attempt fail
    local n
    for n in 1 2 3 4 5; do
        "$@" && return 0
        log "attempt $n failed: $*"; sleep $((n * 3))
    done
    return 1
}
APT_OPTS=(-q -o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root)
updated=0
apt_update() { [ $updated = 1 ] && return 0; retry apt-get "${APT_OPTS[@]}" update >/dev/null; updated=1; }
missing_pkgs() {  # prints the packages of "$@" that are not installed
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
    done
}
apt_install() {
    local miss; miss=$(missing_pkgs "$@")
    [ -z "$miss" ] && return 0
    log "installing: $miss"
    apt_update
    # shellcheck disable=SC2086
    retry apt-get "${APT_OPTS[@]}" install -y --no-install-recommends $miss
}
download() {  # download PKG... into $LAB/debs unless a .deb of it is there already
    local p need=()
    for p in "$@"; do ls "$LAB/debs/${p}_"*.deb >/dev/null 2>&1 || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    apt_update
    (cd "$LAB/debs" && retry apt-get "${APT_OPTS[@]}" download "${need[@]}")
}
unpack() {  # unpack DIR PKG...: fresh tree DIR from the cached .debs of PKG...
    local dir=$1 p; shift
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    for p in "$@"; do dpkg-deb -x "$(ls "$LAB/debs/${p}_"*.deb | head -1)" "$dir.tmp"; done
    rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

# ---- warm path: everything was done and is still there ----
if [ -f "$STAMP" ] && [ "$(head -1 "$STAMP")" = "v$STAMP_VERSION" ] && [ -z "$(missing_pkgs $HOST_PKGS $(sed -n 's/^libs //p' "$STAMP"))" ]; then
    . <(sed -n 's/^\(KVER\|KPKG\)=/\1=/p' "$STAMP")
    if [ -f "$LAB/kroot/lib/modules/$KVER/modules.dep" ] && [ -x "$LAB/qemu/usr/bin/qemu-system-x86_64" ] \
       && [ -x "$LAB/iscsiroot/sbin/iscsistart" ] && [ -x "$LAB/tgtroot/usr/sbin/tgtd" ]; then
        log "warm: kernel $KVER, qemu, open-iscsi and tgt in $LAB"
        exit 0
    fi
fi
rm -f "$STAMP"

# ---- host tools (busybox and sg3-utils are copied into the guest from the host) ----
apt_install $HOST_PKGS

# ---- qemu, unpacked (see the header) ----
QPKGS="qemu-system-x86 qemu-system-common qemu-system-data seabios"
download $QPKGS
# qemu-system-x86's library dependencies, without the qemu/firmware packages we unpack instead.
# "a (>= 1) | b" -> "a"
QLIBS=$(dpkg-deb -f "$(ls "$LAB/debs/qemu-system-x86_"*.deb | head -1)" Depends \
        | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v -E '^(qemu-|seabios|ipxe-qemu)' | sort -u)
apt_install $QLIBS
unpack "$LAB/qemu" $QPKGS
for f in "$LAB/qemu/usr/bin/qemu-system-x86_64" "$LAB/qemu/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"; do
    if ldd "$f" | grep 'not found'; then log "FATAL: $f misses libraries"; exit 1; fi
done

# ---- open-iscsi userspace for the guest: unpacked only (installing it would pull udev and
#      start iscsid on the host) ----
download open-iscsi libisns0 libopeniscsiusr
unpack "$LAB/iscsiroot" open-iscsi libisns0 libopeniscsiusr

# ---- tgt (STGT), a userspace SCSI target, for the guest: unpacked only (installing it would
#      start tgtd on the host). LIO deadlocks when two initiators PREEMPT each other at the same
#      moment (README.md); the two-racer test runs on LUNs tgtd serves in the guest. Its
#      libraries are installed on the host, where build-initramfs.sh's ldd finds them.
download tgt
TLIBS=$(dpkg-deb -f "$(ls "$LAB/debs/tgt_"*.deb | head -1)" Depends \
        | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep '^lib' | grep -v -- '-perl$' | sort -u)
apt_install $TLIBS
unpack "$LAB/tgtroot" tgt

# ---- the Debian kernel behind the linux-image-amd64 metapackage: unpacked, not installed ----
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then apt_update; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
[ -n "$KPKG" ] || { log "FATAL: cannot resolve linux-image-amd64"; exit 1; }
log "kernel package: $KPKG"
if ! download "$KPKG"; then
    # the package lists were stale (the ABI package was superseded): refresh and resolve again
    updated=0; apt_update
    KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    download "$KPKG"
fi
# keep only this kernel's .deb (a newer ABI package has a new name; the old one is 70 MB)
for d in "$LAB/debs"/linux-image-*.deb; do case $d in */"${KPKG}_"*) ;; *) rm -f "$d" ;; esac; done
unpack "$LAB/kroot" "$KPKG"
KVER=$(ls "$LAB/kroot/lib/modules" | head -1)
# bookworm-backports/trixie kernels ship .ko.xz: decompress, so busybox modprobe/depmod need no xz
find "$LAB/kroot/lib/modules" -name '*.ko.xz' -print0 | xargs -0 -r -P"$(nproc)" -n 200 xz -d
# the .deb has no modules.dep (its postinst runs depmod) and the host may have no kmod
busybox depmod -b "$LAB/kroot" "$KVER"

{ echo "v$STAMP_VERSION"; echo "KPKG=$KPKG"; echo "KVER=$KVER"; echo "libs" $QLIBS $TLIBS; } > "$STAMP"
log "ready: kernel $KVER ($LAB/kroot), qemu $("$LAB/qemu/usr/bin/qemu-system-x86_64" --version | head -1)"
