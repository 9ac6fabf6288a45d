#!/bin/sh
# vxfenadm, vxfenclearpre and the fencing library against real LUNs, inside the
# SCSI lab guest (tests/scsi-lab/). Run from the host with scripts/fencing-lab.sh
# (it builds the binaries and the guest tests and boots the lab).
#
# Each of the lab's three nodes gets an HA_ROOT (/tmp/nN) whose vxfentab lists
# that node's own paths to the coordinator LUNs and whose vxfendata lists its
# path to the data LUN. Checks print "CHECK OK" / "CHECK FAILED".
. /run/scsi-lab.env
H=/mnt/host; fail=0
chk() { if [ "$2" = 0 ]; then echo "CHECK OK: $1"; else echo "CHECK FAILED: $1"; fail=1; fi; }
step() { echo; echo "===== $* ====="; }
nth() { shift "$1"; echo "$1"; }
A=$H/vxfenadm
for n in 1 2 3; do
    R=/tmp/n$n; mkdir -p $R/etc
    eval "c=\$NODE${n}_COORD; d=\$NODE${n}_DATA"
    for p in $c; do echo $p; done > $R/etc/vxfentab
    echo $d > $R/etc/vxfendata
    echo "vxfen_mode=scsi3" > $R/etc/vxfenmode
    printf '0 n1\n1 n2\n2 n3\n' > $R/etc/llthosts
    printf 'set-node n%s\nset-cluster 57069\nlink eth1 eth1 - ether - -\n' $n > $R/etc/llttab
done
N1C1=$(nth 1 $NODE1_COORD); N2C1=$(nth 1 $NODE2_COORD)

step "library tests (fencing/tests/guest.rs)"
# The two-racer test is skipped: LIO (Linux 6.1) deadlocks when two initiators'
# PREEMPTs name each other at the same moment (core_scsi3_pro_preempt holds
# dev_reservation_lock while __core_scsi3_free_registration spins for the other
# command's reference; soft lockup in iscsi_trx). RACE_LAB=1 runs it anyway.
skip="--skip two_racers"; [ -n "${RACE_LAB:-}" ] && skip=
VXFENADM=$H/vxfenadm $H/fencing-guest-tests --ignored --test-threads=1 --nocapture $skip; chk "fencing guest tests" $?

step "inquiry"
$A -i $N1C1 | tee /tmp/inq
grep -q "^Vendor id       : LIO-ORG" /tmp/inq; chk "-i vendor" $?
grep -q "^Serial Number   : coord1" /tmp/inq; chk "-i serial" $?
$A -i $NODE1_DATA_SD -json | tee /tmp/inqj
grep -q '"serial":"data1"' /tmp/inqj && grep -q '"value":"naa\.' /tmp/inqj; chk "-i -json on a block device: serial and NAA" $?

step "register on every coordinator disk (vxfentab) from each node"
for n in 1 2 3; do HA_ROOT=/tmp/n$n $A -m all -k VFDEED0$((n-1)); chk "node $n registers" $?; done
HA_ROOT=/tmp/n1 $A -s all | tee /tmp/s
[ "$(grep -c 'Total Number of Keys: 3' /tmp/s)" = 3 ]; chk "-s all: 3 keys on each of 3 disks" $?
grep -q '^\* \[Node Format\]: Cluster ID: 57069 Node ID: 1 Node Name: n2' /tmp/s; chk "-s node format with name and *" $?
HA_ROOT=/tmp/n1 $A -m all -k VFDEED00; r=$?; [ $r = 24 ]; chk "registering again -> exit 24 ($r)" $?
sg_persist -n -i -k $N2C1 | tee /tmp/sgk
grep -q 0x5646444545443030 /tmp/sgk && grep -q 0x5646444545443032 /tmp/sgk; chk "sg_persist reads our keys" $?

step "keys written by sg_persist, read by vxfenadm"
sg_persist -n --out --register --param-sark=0x123abc $NODE3_DATA; chk "sg_persist registers 0x123abc" $?
sg_persist -n --out --reserve --param-rk=0x123abc --prout-type=5 $NODE3_DATA; chk "sg_persist reserves" $?
$A -s $NODE1_DATA | tee /tmp/s2
grep -q '\[Hex Format\]: 0x123abc' /tmp/s2 && grep -q 'not a VCS key' /tmp/s2; chk "-s shows the foreign key" $?
$A -r $NODE2_DATA -json | tee /tmp/rj
grep -q '"hex":"0x123abc"' /tmp/rj && grep -q '"type":5' /tmp/rj; chk "-r -json reads sg_persist's reservation" $?

step "vxfenclearpre"
HA_ROOT=/tmp/n1 $H/vxfenclearpre </dev/null; r=$?; [ $r = 1 ]; chk "no answer: nothing changed (exit $r)" $?
HA_ROOT=/tmp/n1 $H/vxfenclearpre -y | tee /tmp/clr; chk "vxfenclearpre -y" $?
HA_ROOT=/tmp/n1 $A -s all -json | tee /tmp/sj
grep -q '"keys":\[\]' /tmp/sj && ! grep -q '"hex"' /tmp/sj; chk "coordinator disks clear" $?
sg_persist -n -i -k $NODE1_DATA | grep -q "NO registered"; chk "data disk clear (sg_persist)" $?
sg_persist -n -i -r $NODE1_DATA | grep -qi "no reservation"; chk "no reservation left" $?

step "data disk fencing with vxfenadm"
$A -m $NODE1_DATA -k APGRDEED && $A -m $NODE2_DATA -k BPGRDEED; chk "register data keys" $?
$A -n $NODE1_DATA -k APGRDEED; chk "reserve WERO" $?
$A -r $NODE3_DATA | tee /tmp/r
grep -q SCSI3_RESV_WRITEEXCLUSIVEREGISTRANTSONLY /tmp/r && grep -q 'Character Format\]: APGRDEED' /tmp/r; chk "-r shows type and holder" $?
sg_persist -n -i -r $NODE2_DATA | grep -qi "Key=0x4150475244454544"; chk "sg_persist reads our reservation" $?
$A -p $NODE1_DATA -k APGRDEED -v BPGRDEED; chk "preempt and abort BPGRDEED" $?
dd if=/dev/zero of=$NODE2_DATA_SD bs=4096 count=1 oflag=direct 2>/tmp/dd; r=$?; cat /tmp/dd
[ $r != 0 ]; chk "fenced block-device write fails" $?
$A -x $NODE2_DATA -k BPGRDEED; r=$?; [ $r = 24 ]; chk "old key cannot be removed/used: exit 24 ($r)" $?
$A -g $NODE2_DATA | grep -q "Total Number of Keys: 1"; chk "-g: one key left" $?
$A -x $NODE1_DATA -k APGRDEED; chk "-x removes the holder's key" $?
$A -r $NODE1_DATA | grep -q "No reservation"; chk "and its reservation" $?

step "-d"
HA_ROOT=/tmp/n1 $A -d; r=$?; [ $r = 1 ]; chk "-d shows the mode, exit 1 (no daemon)" $?
exit $fail
