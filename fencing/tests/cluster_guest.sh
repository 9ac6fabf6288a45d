#!/bin/sh
# Fencing in a running cluster, on real LUNs, inside the SCSI lab guest
# (tests/scsi-lab/). Run from the host with scripts/fencing-lab.sh, which
# builds the binaries and boots the lab.
#
# Three nodes, each in its own network namespace (veth on one bridge) with its
# own clusterd, HA_ROOT (/tmp/cN) and its own initiator's paths to the three
# coordinator LUNs and the data LUN. LLT, GAB and fencing start as on a real
# node (lltconfig through clusterd -c, gabconfig -c -n 3, vxfenconfig -c).
# Node 3 is then cut off the bridge: a 2|1 split. The pair must win the race
# (it is heavier: node 3 delays its race), eject node 3 from the data disk and
# hold port h until then; node 3 must lose, halt its GAB client, leave GAB,
# refuse to rejoin and be unable to write the data disk.
# Checks print "CHECK OK" / "CHECK FAILED".
. /run/scsi-lab.env
H=/mnt/host; fail=0
chk() { if [ "$2" = 0 ]; then echo "CHECK OK: $1"; else echo "CHECK FAILED: $1"; fail=1; fi; }
step() { echo; echo "===== $* ====="; }
# need DESCRIPTION STATUS: a check the rest depends on; stop with the logs if it failed.
need() {
    chk "$1" "$2"; [ "$2" = 0 ] && return 0
    for n in 1 2 3; do echo "----- node $n clusterd log -----"; tail -40 /tmp/c$n/clusterd.log; done
    echo "cluster_guest: FAIL (stopped early)"; exit 1
}
# on N CMD...: run CMD in node N's namespace with its HA_ROOT.
on() { _n=$1; shift; ip netns exec fn$_n env HA_ROOT=/tmp/c$_n "$@"; }
# wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds; 1 on timeout.
wait_for() {
    t=$1; what=$2; shift 2; i=0
    while [ $i -lt $((t * 5)) ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2; i=$((i + 1))
    done
    echo "timed out after ${t}s waiting for: $what"; return 1
}
# start_node N: clusterd in node N's namespace; its pid (ip and env exec it) in /tmp/cN/pid.
start_node() {
    ip netns exec fn$1 env HA_ROOT=/tmp/c$1 RUST_LOG=info $H/clusterd -c > /tmp/c$1/clusterd.log 2>&1 &
    echo $! > /tmp/c$1/pid
}
port_is() { on "$1" $H/gabconfig -a | grep -q "^Port $2 gen .* membership $3\$"; }
cleanup() {
    for n in 1 2 3; do [ -f /tmp/c$n/pid ] && kill "$(cat /tmp/c$n/pid)" 2>/dev/null; done
    [ -n "${hpid:-}" ] && kill $hpid 2>/dev/null
    [ -n "${h1pid:-}" ] && kill $h1pid 2>/dev/null
    sleep 0.5
    for n in 1 2 3; do ip netns del fn$n 2>/dev/null; done
    ip link del fbr 2>/dev/null
}
trap cleanup EXIT

step "clear the disks, build three nodes"
mkdir -p /tmp/c0/etc; for p in $NODE1_COORD; do echo $p; done > /tmp/c0/etc/vxfentab; echo $NODE1_DATA > /tmp/c0/etc/vxfendata
HA_ROOT=/tmp/c0 $H/vxfenclearpre -y >/dev/null; chk "disks cleared" $?
ip link add fbr type bridge && ip link set fbr up
for n in 1 2 3; do
    R=/tmp/c$n; mkdir -p $R/etc
    ip netns add fn$n
    ip link add fv$n type veth peer name eth1 netns fn$n
    ip link set fv$n master fbr up
    ip -n fn$n link set lo up; ip -n fn$n link set eth1 up
    eval "c=\$NODE${n}_COORD; d=\$NODE${n}_DATA"
    for p in $c; do echo $p; done > $R/etc/vxfentab
    echo $d > $R/etc/vxfendata
    printf 'vxfen_mode=scsi3\nscsi3_disk_policy=raw\n' > $R/etc/vxfenmode
    printf '0 n1\n1 n2\n2 n3\n' > $R/etc/llthosts
    # Fast timers (1/100 s): 0.1 s heartbeats, 2 s peerinact.
    printf 'set-node %s\nset-cluster 57069\nlink eth1 eth1 - ether - -\nset-timer heartbeat:10\nset-timer heartbeatlo:20\nset-timer peertrouble:50\nset-timer peertroublelo:80\nset-timer peerinact:200\nset-timer dupwait:50\n' $((n - 1)) > $R/etc/llttab
    start_node $n
done
for n in 1 2 3; do wait_for 20 "node $n LLT" on $n $H/lltstat; need "node $n clusterd and LLT up" $?; done
for n in 1 2 3; do on $n $H/gabconfig -c -n 3; need "node $n gabconfig -c -n 3" $?; done
for n in 1 2 3; do wait_for 30 "port a 012 on node $n" port_is $n a 012; need "node $n: port a membership 012" $?; done

step "vxfenconfig -c on every node"
for n in 1 2 3; do on $n $H/vxfenconfig -c; need "node $n vxfenconfig -c" $?; done
for n in 1 2 3; do wait_for 20 "port b 012 on node $n" port_is $n b 012; need "node $n: port b membership 012" $?; done
on 1 $H/vxfenadm -d | tee /tmp/d1
grep -q "Fencing Mode: SCSI3" /tmp/d1 && grep -q "^	\* 0 (n1)" /tmp/d1 && grep -q "node   2 in state  8 (running)" /tmp/d1; chk "vxfenadm -d: SCSI3, 3 members, * on this node" $?
on 1 $H/vxfenconfig -l | tee /tmp/l1
grep -q "Count              : 3" /tmp/l1 && grep -q "coord1" /tmp/l1; chk "vxfenconfig -l lists the coordinator disks with serials" $?
on 1 $H/vxfenadm -s all | tee /tmp/s1
[ "$(grep -c 'Total Number of Keys: 3' /tmp/s1)" = 3 ]; chk "3 keys on each coordinator disk" $?
$H/vxfenadm -s $NODE1_DATA | grep -q "Total Number of Keys: 3"; chk "3 data keys on the data disk" $?
$H/vxfenadm -r $NODE1_DATA -json | grep -q '"type":5'; chk "data disk reserved Write Exclusive Registrants Only" $?
dd if=/dev/zero of=$NODE3_DATA_SD bs=4096 count=1 seek=100 oflag=direct 2>/dev/null; chk "node 3 writes the data disk before the split" $?
on 1 $H/gabconfig -U 2>/tmp/u1; r=$?; [ $r != 0 ] && grep -q "vxfenconfig -U" /tmp/u1; chk "gabconfig -U refused under fencing" $?

step "startup check: a stranger's key on the coordinator disks"
# Node 2 leaves fencing cleanly; a key of an unknown node 5 is put on
# coordinator disk 1 through node 2's path: node 2 must refuse to start.
on 2 $H/vxfenconfig -U; chk "node 2 vxfenconfig -U" $?
wait_for 20 "port b 01 without node 2" port_is 1 b "0 2"; chk "port b: node 2 left cleanly (no race)" $?
grep -q "left port b on purpose" /tmp/c1/clusterd.log; chk "node 1 logged the clean leave" $?
c21=$(echo $NODE2_COORD | cut -d' ' -f1)
$H/vxfenadm -m $c21 -k VFDEED05; chk "key VFDEED05 registered on coord1" $?
on 2 $H/vxfenconfig -c 2>/tmp/c2err; r=$?; cat /tmp/c2err
[ $r != 0 ] && grep -q "pre-existing split brain" /tmp/c2err && grep -q "node 5" /tmp/c2err && grep -q vxfenclearpre /tmp/c2err; chk "node 2 refuses to start: split brain suspected, names node 5" $?
$H/vxfenadm -x $c21 -k VFDEED05; chk "key VFDEED05 removed" $?
on 2 $H/vxfenconfig -c; chk "node 2 vxfenconfig -c again" $?
for n in 1 2 3; do wait_for 20 "port b 012 on node $n" port_is $n b 012; chk "node $n: port b 012 again" $?; done

step "clients on port h: node 1 and node 3"
on 1 $H/gabmsg join -p h --print > /tmp/c1/h.out 2>&1 &
h1pid=$!
on 3 $H/gabmsg join -p h --print > /tmp/c3/h.out 2>&1 &
hpid=$!
for n in 1 3; do wait_for 20 "port h on node $n" port_is $n h "0 2"; chk "port h membership 0 2 on node $n" $?; done

step "split 2|1: node 3 cut off"
ip link set fv3 down
wait_for 60 "node 3 halted" sh -c "ip netns exec fn3 env HA_ROOT=/tmp/c3 $H/vxfenadm -d | grep -q HALTED"; chk "node 3 halted by fencing" $?
on 3 $H/vxfenadm -d
wait_for 30 "port b 01 on nodes 1 and 2" sh -c "ip netns exec fn1 env HA_ROOT=/tmp/c1 $H/gabconfig -a | grep -q 'Port b gen .* membership 01\$'"; chk "port b membership 01 on node 1" $?
wait_for 30 "race won" sh -c "ip netns exec fn1 env HA_ROOT=/tmp/c1 $H/vxfenadm -d | grep -q 'Last race: node 0 won against 2'"; chk "node 1: the pair won its race against node 2" $?
on 1 $H/vxfenadm -d | tee /tmp/d1b
grep -q "^	\* 0 (n1)" /tmp/d1b && grep -q "^	  1 (n2)" /tmp/d1b && ! grep -q "(n3)" /tmp/d1b; chk "vxfenadm -d on node 1: members n1 n2" $?
on 2 $H/vxfenadm -d | grep -q "Last race: node 0 won"; chk "node 2 heard the verdict" $?
grep -q "race WON (3 of 3" /tmp/c1/clusterd.log; chk "node 1 won 3 of 3 coordinator disks" $?
grep -q "race LOST (0 of 3" /tmp/c3/clusterd.log; chk "node 3 lost 0 of 3 (its race came after the heavier partition's)" $?
grep -q "node 2 ejected from data disk #0" /tmp/c1/clusterd.log; chk "node 1 ejected node 3 (id 2) from the data disk" $?
grep -q "the other ports get their membership changes" /tmp/c1/clusterd.log; chk "node 1 held port h until the race was won" $?
wait_for 10 "port h 0 on node 1" sh -c "grep -q 'members=0 ' /tmp/c1/h.out"; chk "node 1's port h client sees node 3 gone" $?
# The held membership reached the client after the verdict: the log line
# that releases it comes after the race was won.
awk '/race WON/{w=NR} /other ports get their membership/{r=NR} END{exit !(w && r > w)}' /tmp/c1/clusterd.log; chk "port h released only after the race" $?

step "node 3 after losing"
wait_for 10 "node 3 gabmsg exits" sh -c "! kill -0 $hpid 2>/dev/null"; chk "node 3's port h client exited" $?
cat /tmp/c3/h.out
grep -q "halted by I/O fencing" /tmp/c3/h.out; chk "node 3's port h client was told to halt" $?
on 3 $H/gabconfig -a 2>&1 | tee /tmp/g3; grep -q "Port a" /tmp/g3; [ $? != 0 ]; chk "node 3 is out of GAB" $?
on 3 $H/gabconfig -c -n 3 2>/tmp/g3c; r=$?; cat /tmp/g3c; [ $r != 0 ] && grep -q "fenced out" /tmp/g3c; chk "node 3 may not rejoin GAB" $?
on 3 $H/vxfenconfig -c 2>/tmp/v3c; r=$?; [ $r != 0 ] && grep -q "fenced out" /tmp/v3c; chk "node 3 may not restart fencing" $?
on 1 $H/vxfenadm -s all | tee /tmp/s2
[ "$(grep -c 'Total Number of Keys: 2' /tmp/s2)" = 3 ] && ! grep -q "VFDEED02" /tmp/s2; chk "coordinator disks: node 3's key gone, 2 keys each" $?
$H/vxfenadm -s $NODE1_DATA | tee /tmp/sd
grep -q "Total Number of Keys: 2" /tmp/sd && ! grep -q "CPGRDEED" /tmp/sd; chk "data disk: node 3's key gone" $?
dd if=/dev/zero of=$NODE3_DATA_SD bs=4096 count=1 seek=100 oflag=direct 2>/tmp/dd3; r=$?; cat /tmp/dd3
[ $r != 0 ]; chk "node 3 cannot write the data disk (dd exit $r)" $?
dd if=/dev/zero of=$NODE1_DATA_SD bs=4096 count=1 seek=100 oflag=direct 2>/dev/null; chk "node 1 still writes the data disk" $?

step "network back: node 3 stays out"
ip link set fv3 up
sleep 4
port_is 1 b 01 && port_is 1 a 01; chk "nodes 1-2 keep membership 01 after the network heals" $?

step "node 3 restarted by the administrator rejoins"
pid3=$(cat /tmp/c3/pid); kill $pid3
wait_for 10 "node 3's old clusterd exits" sh -c "! kill -0 $pid3 2>/dev/null"; need "node 3's clusterd stopped" $?
mv /tmp/c3/clusterd.log /tmp/c3/clusterd.log.1
start_node 3
wait_for 20 "node 3 LLT" on 3 $H/lltstat; need "node 3 clusterd restarted" $?
on 3 $H/gabconfig -c -n 3; chk "node 3 gabconfig -c -n 3" $?
for n in 1 2 3; do wait_for 30 "port a 012 on node $n" port_is $n a 012; need "node $n: port a 012 with node 3 back" $?; done
on 3 $H/vxfenconfig -c; need "node 3 vxfenconfig -c (its old keys were ejected: no stranger)" $?
for n in 1 2 3; do wait_for 20 "port b 012 on node $n" port_is $n b 012; chk "node $n: port b 012 with node 3 back" $?; done
dd if=/dev/zero of=$NODE3_DATA_SD bs=4096 count=1 seek=100 oflag=direct 2>/dev/null; chk "node 3 writes the data disk again" $?

step "node 2 crashes: the others race for it, node 1 is the racer"
kill -9 "$(cat /tmp/c2/pid)"
wait_for 30 "port b 0 2 on nodes 1 and 3" sh -c "ip netns exec fn1 env HA_ROOT=/tmp/c1 $H/gabconfig -a | grep -q 'Port b gen .* membership 0 2\$' && ip netns exec fn3 env HA_ROOT=/tmp/c3 $H/gabconfig -a | grep -q 'Port b gen .* membership 0 2\$'"; chk "port b 0 2 on nodes 1 and 3" $?
wait_for 30 "node 3 hears the verdict on node 2" sh -c "ip netns exec fn3 env HA_ROOT=/tmp/c3 $H/vxfenadm -d | grep -q 'Last race: node 0 won against 1 '"; chk "node 3: node 1 raced for it and won against node 2 (id 1)" $?
grep -q "node 0 races for this partition" /tmp/c3/clusterd.log; chk "node 3 waited for racer node 0" $?
on 1 $H/vxfenadm -s all > /tmp/s3
[ "$(grep -c 'Total Number of Keys: 2' /tmp/s3)" = 3 ] && ! grep -q "VFDEED01" /tmp/s3; chk "coordinator disks: the crashed node's key gone" $?
$H/vxfenadm -s $NODE1_DATA | grep -q "BPGRDEED"; [ $? != 0 ]; chk "data disk: the crashed node's key gone" $?
dd if=/dev/zero of=$NODE2_DATA_SD bs=4096 count=1 seek=100 oflag=direct 2>/dev/null; r=$?; [ $r != 0 ]; chk "the crashed node's path cannot write (dd exit $r)" $?

echo
for n in 1 2 3; do echo "----- node $n clusterd log (fencing lines) -----"; grep -E "fenc|race|port b|Port b|FENCED|eject" /tmp/c$n/clusterd.log | tail -25; done
if [ $fail = 0 ]; then echo "cluster_guest: PASS"; else echo "cluster_guest: FAIL"; fi
[ $fail = 0 ]
