#!/bin/bash
# Assemble the guest's initramfs: busybox shell, the kernel modules (SCSI, LIO, iSCSI, 9p,
# veth, bridge, nftables), sg3-utils, open-iscsi, iproute2 (ip, bridge), nft, the glibc and
# libgcc_s a host-built Rust binary links against, and /init.
#
#   LAB=/var/cache/ha-scsi-lab   cache directory filled by setup-host.sh
#   OUT=$LAB/initramfs.cpio.gz   result
#   FORCE=1                      rebuild even if the inputs did not change
#
# Cached: the build is skipped when a digest of its inputs (this script, init, the kernel
# version, the versions of the host packages copied in) matches the one of the last build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=${LAB:-/var/cache/ha-scsi-lab}
KROOT=$LAB/kroot
ISCSIROOT=$LAB/iscsiroot
OUT=${OUT:-$LAB/initramfs.cpio.gz}
KVER=$(ls "$KROOT/lib/modules" | head -1)
MD=$KROOT/lib/modules/$KVER
log() { echo "build-initramfs: $*" >&2; }

key=$( { cat "$HERE/build-initramfs.sh" "$HERE/init"; echo "$KVER"; ls "$LAB/debs";
         dpkg-query -W dash bash busybox-static sg3-utils libsgutils2-1.46-2 iproute2 nftables libc6 libgcc-s1 $(sed -n 's/^libs //p' "$LAB/setup.done") 2>&1; } | sha256sum | cut -c1-16)
if [ -z "${FORCE:-}" ] && [ -f "$OUT" ] && [ "$(cat "$OUT.key" 2>/dev/null)" = "$key" ]; then
    log "cached: $OUT ($key)"
    exit 0
fi

ST=$LAB/initramfs-staging
rm -rf "$ST"
mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,etc,proc,sys,dev,tmp,run,mnt/host,srv,root}
mkdir -p "$ST/var/lib"; ln -s /run "$ST/var/run"   # ip netns uses /run/netns (or /var/run/netns)
mkdir -p "$ST/usr/lib"; ln -s ../../lib/x86_64-linux-gnu "$ST/usr/lib/x86_64-linux-gnu"

# busybox (static); its applet links are made at boot by 'busybox --install -s /bin'.
# The real tools copied below go to /usr/sbin and /usr/bin, which come first in the guest's PATH.
# GOTCHA: /bin/sh is the host's dash, not busybox ash: Debian's busybox ash runs its own applet
# for any applet name before searching PATH (FEATURE_SH_STANDALONE), so in a busybox shell
# 'ip' is always busybox's ip, which has no 'netns' and no 'type veth'.
cp /bin/busybox "$ST/bin/busybox"
for a in modprobe insmod depmod poweroff; do ln -s ../bin/busybox "$ST/sbin/$a"; done

# ---- kernel modules: the wanted set plus transitive dependencies from modules.dep ----
WANT="configfs scsi_mod sd_mod sg target_core_mod target_core_file iscsi_target_mod iscsi_tcp
      virtio_pci 9pnet_virtio 9p veth bridge nf_tables"
# optional: may be built-in or absent in another kernel. crc32c: iscsi_tcp needs a crc32c driver.
OPTIONAL="crc32c_intel crc32c_generic crct10dif_pclmul crct10dif_generic
          nft_numgen nft_meta_bridge nft_reject_bridge nft_limit nft_ct nft_reject nft_reject_inet
          nfnetlink sch_netem af_packet"
declare -A seen
add() {
    local rel=$1 deps d
    [ -n "${seen[$rel]:-}" ] && return 0
    seen[$rel]=1
    mkdir -p "$ST/lib/modules/$KVER/$(dirname "$rel")"
    cp "$MD/$rel" "$ST/lib/modules/$KVER/$rel"
    deps=$(grep "^$rel:" "$MD/modules.dep" | cut -d: -f2)
    for d in $deps; do add "$d"; done
}
for m in $WANT $OPTIONAL; do
    pat=$(echo "$m" | sed 's/[-_]/[-_]/g')   # file names mix '-' and '_' (crct10dif-pclmul.ko)
    rel=$(grep -E "(^|/)$pat\.ko:" "$MD/modules.dep" | cut -d: -f1 | head -1 || true)
    if [ -z "$rel" ]; then
        if grep -qE "(^|/)$pat\.ko$" "$MD/modules.builtin"; then continue; fi
        case " $(echo $WANT) " in
            *" $m "*) log "FATAL: module $m not found"; exit 1 ;;
            *) log "note: optional module $m absent" ;;
        esac
        continue
    fi
    add "$rel"
done
cp "$MD"/modules.builtin* "$MD/modules.order" "$ST/lib/modules/$KVER/"
busybox depmod -b "$ST" "$KVER"   # modules.dep and modules.alias for just this subset

# ---- userspace tools with their shared libraries (all libs go flat into /lib/x86_64-linux-gnu) ----
copy_with_libs() {  # copy_with_libs DESTDIR FILE...
    local dest=$1 f l; shift
    for f in "$@"; do
        cp -L "$f" "$ST$dest/"
        ldd "$f" | awk '/=>/{print $3} /ld-linux/{print $1}' | while read -r l; do
            [ -f "$l" ] || continue
            [ -e "$ST/lib/x86_64-linux-gnu/$(basename "$l")" ] || cp -L "$l" "$ST/lib/x86_64-linux-gnu/"
        done
        if ldd "$f" | grep 'not found'; then log "FATAL: $f misses libraries"; exit 1; fi
    done
}
copy_with_libs /usr/bin /usr/bin/sg_persist /usr/bin/sg_inq /usr/bin/sg_vpd /usr/bin/sg_turs \
                        /usr/bin/sg_raw /usr/bin/sg_readcap /usr/bin/sg_map /usr/bin/sg_luns
copy_with_libs /bin /bin/dash /bin/bash
ln -s dash "$ST/bin/sh"
copy_with_libs /usr/sbin /usr/sbin/ip /usr/sbin/bridge /usr/sbin/nft
# open-iscsi userspace, from the unpacked .debs (its libraries live in the unpacked tree)
export LD_LIBRARY_PATH=$ISCSIROOT/usr/lib/x86_64-linux-gnu:$ISCSIROOT/lib/x86_64-linux-gnu
copy_with_libs /usr/sbin "$ISCSIROOT/sbin/iscsistart" "$ISCSIROOT/sbin/iscsiadm"
unset LD_LIBRARY_PATH
mkdir -p "$ST/etc/iscsi" "$ST/run/lock/iscsi" "$ST/var/lib/iscsi"
# tgt (STGT), a second SCSI target in userspace, from its unpacked .deb (libraries: the host's)
copy_with_libs /usr/sbin "$LAB/tgtroot/usr/sbin/tgtd" "$LAB/tgtroot/usr/sbin/tgtadm"
cp "$ISCSIROOT/etc/iscsi/iscsid.conf" "$ST/etc/iscsi/"

# the dynamic loader at the path in every binary's PT_INTERP, and what a host-built
# (Debian 12, dynamically linked glibc) Rust binary needs beyond libc
cp -L /lib64/ld-linux-x86-64.so.2 "$ST/lib64/"
for l in ld-linux-x86-64.so.2 libc.so.6 libgcc_s.so.1 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1; do
    [ -e "$ST/lib/x86_64-linux-gnu/$l" ] || cp -L "/lib/x86_64-linux-gnu/$l" "$ST/lib/x86_64-linux-gnu/"
done

cp "$HERE/init" "$ST/init"; chmod +x "$ST/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ST/etc/passwd"
printf 'root:x:0:\n' > "$ST/etc/group"
printf '127.0.0.1 localhost\n' > "$ST/etc/hosts"
printf 'hosts: files\n' > "$ST/etc/nsswitch.conf"

( cd "$ST" && find . -print0 | cpio --null -o -H newc --quiet ) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$key" > "$OUT.key"
log "built $OUT ($(du -h "$OUT" | cut -f1), staging $(du -sh "$ST" | cut -f1), kernel $KVER, key $key)"
