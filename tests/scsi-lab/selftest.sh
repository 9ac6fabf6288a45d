#!/bin/sh
# Guest-side self-test of the SCSI lab (runs as /mnt/host/run-in-guest.sh; see run.sh).
# Proves: every LUN through every node's own path honours SCSI-3 PR across the three
# I_T nexuses (register, read keys, WERO reserve, PREEMPT AND ABORT, fenced write -> EBADE,
# clear); a host-built Rust binary runs here; network namespaces, veth, a bridge,
# AF_PACKET and nftables work. Every check prints "CHECK OK: ..." or "CHECK FAILED: ...".
. /run/scsi-lab.env
fail=0
TMO=60
chk() { if [ "$2" = 0 ]; then echo "CHECK OK: $1"; else echo "CHECK FAILED: $1"; fail=1; fi; }
run() { echo "+ $*"; timeout $TMO "$@"; }
step() { echo; echo "===== $* ====="; }
nth() { shift "$1"; echo "$1"; }   # nth N WORDS...: the N-th word
sg_of() {  # sg_of NODE LUN -> this node's /dev/sgN for that LUN (LUN = coord1..3 | data1)
    case $2 in
        coord*) eval "nth ${2#coord} \$NODE$1_COORD" ;;
        data1) eval "echo \$NODE$1_DATA" ;;
    esac
}
sd_of() {
    case $2 in
        coord*) eval "nth ${2#coord} \$NODE$1_COORD_SD" ;;
        data1) eval "echo \$NODE$1_DATA_SD" ;;
    esac
}

step "path map"
cat /run/scsi-lab.env
n=$(for i in 1 2 3; do for l in $SCSI_LAB_LUNS; do sg_of $i $l; sd_of $i $l; done; done | sort -u | wc -l)
[ "$n" -eq 24 ]; chk "12 distinct sg and 12 distinct sd paths ($n)" $?
for i in 1 2 3; do for l in $SCSI_LAB_LUNS; do
    s=$(sg_inq -p 0x80 "$(sg_of $i $l)" 2>/dev/null | sed -n 's/.*Unit serial number: *//p')
    [ "$s" = "$l" ] || { echo "node$i $l: $(sg_of $i $l) has serial '$s'"; bad=1; }
done; done
[ -z "${bad:-}" ]; chk "every node path reaches the LUN its name says (VPD 0x80)" $?

idx=0
for L in $SCSI_LAB_LUNS; do
    idx=$((idx + 1))
    # keys differ per node and per LUN, so a mixed-up path map cannot pass
    K1=0x100$idx K2=0x200$idx K3=0x300$idx
    step "LUN $L: node1 $(sg_of 1 $L) $(sd_of 1 $L), node2 $(sg_of 2 $L) $(sd_of 2 $L), node3 $(sg_of 3 $L) $(sd_of 3 $L)"
    ok=0
    for i in 1 2 3; do
        eval k=\$K$i
        run sg_persist -n -o -G -S "$k" "$(sg_of $i $L)" || ok=1
    done
    chk "$L: register $K1 $K2 $K3 from nodes 1 2 3" $ok
    run sg_persist -n -i -k "$(sd_of 3 $L)" | tee /tmp/keys
    ok=0; for k in $K1 $K2 $K3; do grep -qiw "$k" /tmp/keys || ok=1; done
    grep -q '3 registered reservation keys' /tmp/keys || ok=1
    chk "$L: node3 reads exactly the three keys" $ok
    run sg_persist -n -o -R -K "$K1" -T 5 "$(sg_of 1 $L)"; chk "$L: node1 reserves WERO (type 5)" $?
    run sg_persist -n -i -r "$(sg_of 2 $L)" | tee /tmp/res
    grep -qi "Key=$K1" /tmp/res && grep -qi 'Write Exclusive, registrants only' /tmp/res
    chk "$L: node2 sees the WERO reservation of $K1" $?
    run sg_persist -n -o -A -T 5 -K "$K2" -S "$K1" "$(sg_of 2 $L)"; chk "$L: node2 PREEMPT AND ABORT node1's key" $?
    run sg_persist -n -i -k "$(sg_of 3 $L)" | tee /tmp/keys
    ! grep -qiw "$K1" /tmp/keys && grep -qiw "$K2" /tmp/keys && grep -qiw "$K3" /tmp/keys
    chk "$L: $K1 gone, $K2 and $K3 left" $?
    run sg_persist -n -i -r "$(sg_of 3 $L)" | tee /tmp/res
    grep -qi "Key=$K2" /tmp/res; chk "$L: reservation now held by $K2" $?
    # node1's first command after the preemption gets UNIT ATTENTION (registrations preempted);
    # the block layer retries it and then gets RESERVATION CONFLICT, which it reports as EBADE
    echo "+ dd if=/dev/zero of=$(sd_of 1 $L) bs=4096 count=1 oflag=direct"
    timeout $TMO dd if=/dev/zero of="$(sd_of 1 $L)" bs=4096 count=1 oflag=direct 2>/tmp/dd; r=$?; cat /tmp/dd
    [ $r -ne 0 ] && grep -q 'Invalid exchange' /tmp/dd
    chk "$L: fenced node1 write through its sd path fails with EBADE (Invalid exchange)" $?
    run sg_persist -n -o -G -K "$K1" -S 0x1999 "$(sg_of 1 $L)"; r=$?
    [ $r -eq 24 ]; chk "$L: node1 cannot re-register with its old key (exit $r = RESERVATION CONFLICT)" $?
    for i in 2 3; do
        timeout $TMO dd if=/dev/zero of="$(sd_of $i $L)" bs=4096 count=1 oflag=direct 2>/tmp/dd
        chk "$L: node$i (registered) can still write" $?
    done
    run sg_persist -n -o -C -K "$K2" "$(sg_of 2 $L)"; chk "$L: node2 clears" $?
    run sg_persist -n -i -k "$(sg_of 1 $L)" | tee /tmp/keys
    grep -q 'there are NO registered reservation keys' /tmp/keys; chk "$L: no keys left" $?
    timeout $TMO dd if=/dev/zero of="$(sd_of 1 $L)" bs=4096 count=1 oflag=direct 2>/tmp/dd
    chk "$L: node1 can write again after the clear" $?
done

step "a host-built Rust binary over 9p"
BIN=""
for b in /mnt/host/lltstat /mnt/host/*; do [ -f "$b" ] && [ -x "$b" ] && head -c 4 "$b" | grep -q ELF && { BIN=$b; break; }; done
if [ -n "$BIN" ]; then
    run "$BIN" --help > /tmp/help 2>&1; r=$?; head -5 /tmp/help
    [ $r -eq 0 ] && [ -s /tmp/help ]; chk "$(basename "$BIN") --help runs in the guest" $?
else
    chk "a host-built binary in /mnt/host (none given)" 1
fi

step "network namespaces: 3 nodes on a bridge (eth1) and a veth pair (eth2)"
ok=0
ip link add br0 type bridge && ip link set br0 up || ok=1
for i in 1 2 3; do
    ip netns add n$i || ok=1
    ip link add v$i type veth peer name eth1 netns n$i || ok=1
    ip link set v$i master br0 up || ok=1
    ip -n n$i link set lo up && ip -n n$i addr add 10.77.1.$i/24 dev eth1 && ip -n n$i link set eth1 up || ok=1
done
ip link add eth2 netns n1 type veth peer name eth2 netns n2 || ok=1
for i in 1 2; do ip -n n$i addr add 10.77.2.$i/24 dev eth2 && ip -n n$i link set eth2 up || ok=1; done
chk "3 namespaces, a bridge and veth pairs created" $ok
ip netns list
ip -n n1 -br addr
ok=0
for p in "1 2" "1 3" "2 3" "3 1"; do
    set -- $p
    ip netns exec n$1 ping -c 1 -W 5 10.77.1.$2 >/tmp/ping 2>&1 || { cat /tmp/ping; ok=1; }
done
chk "ping across the bridge between every pair of namespaces" $ok
ip netns exec n1 ping -c 1 -W 5 10.77.2.2 >/dev/null 2>&1; chk "ping across the n1-n2 veth pair" $?
ip netns exec n2 arping -c 1 -w 5 -I eth1 10.77.1.3 >/tmp/arp 2>&1; r=$?; cat /tmp/arp
chk "arping (AF_PACKET) from a namespace" $r
[ "$(ip netns exec n2 cat /sys/class/net/eth1/address)" = "$(ip -n n2 link show eth1 | awk '/ether/{print $2}')" ]
chk "ip netns exec remounts /sys for the namespace" $?
ip netns exec n3 nft add table bridge t && ip netns exec n3 nft add chain bridge t c '{ type filter hook forward priority 0; }' \
    && ip netns exec n3 nft add rule bridge t c numgen random mod 100 \< 50 counter drop \
    && ip netns exec n3 nft list ruleset | grep -q 'numgen random'
chk "nftables (bridge family, numgen) in a namespace" $?
if [ -n "$BIN" ]; then ip netns exec n1 "$BIN" --help >/dev/null 2>&1; chk "host-built binary runs inside a namespace" $?; fi
for i in 1 2 3; do ip netns del n$i; done; ip link del br0

echo
[ $fail -eq 0 ] && echo "SELFTEST: all checks passed" || echo "SELFTEST: some checks FAILED"
exit $fail
