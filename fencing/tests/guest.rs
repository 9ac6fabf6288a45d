//! Fencing on a real SCSI target: run inside the SCSI lab's guest
//! (tests/scsi-lab/), where LIO serves three coordinator LUNs and one data
//! LUN to three iSCSI initiators ("nodes"), each with its own /dev/sgN
//! paths (its own I_T nexus). The lab exports NODEi_COORD, NODEi_DATA and
//! NODEi_DATA_SD. On the host these tests are ignored (no such disks);
//! `scripts/fencing-lab.sh` builds them and runs them in the guest with
//! `--ignored`.
//!
//! Covered: every PR IN/OUT command our crate issues; interop with
//! sg_persist both ways; PREEMPT AND ABORT fences the victim (its writes
//! fail with RESERVATION CONFLICT through SG_IO and with EBADE through the
//! block device; its old key cannot register again); two racers on
//! different initiators race at once over three coordinator disks and
//! exactly one wins a majority, 50 times.

use fencing::key::Key;
use fencing::parse::ReservationType;
use fencing::race::{Race, RaceConfig};
use fencing::sense::REGISTRATIONS_PREEMPTED;
use fencing::sg::{Device, ScsiError};
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Barrier};

const CLUSTER: u16 = 0xDEED;
const WERO: ReservationType = ReservationType::WriteExclusiveRegistrantsOnly;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run inside tests/scsi-lab (scripts/fencing-lab.sh)"))
}

/// Node i's (1..=3) paths to the three coordinator disks, in vxfentab order.
fn coord_paths(node: usize) -> Vec<String> {
    env(&format!("NODE{node}_COORD")).split_whitespace().map(str::to_string).collect()
}

fn open(path: &str) -> Device {
    Device::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"))
}

fn data(node: usize) -> Device {
    open(&env(&format!("NODE{node}_DATA")))
}

/// Remove every registration and reservation on a disk, from node 1's path.
fn wipe(dev_path: &str) {
    let mut d = open(dev_path);
    let tmp = Key(0x7e57);
    d.register_ignore(tmp).expect("register (ignore existing) for the wipe");
    d.clear(tmp).expect("clear");
    assert!(d.read_keys().expect("read keys").keys.is_empty(), "{dev_path} still has keys after CLEAR");
}

fn sg_persist(args: &[&str]) -> String {
    let out = Command::new("sg_persist").args(args).output().expect("sg_persist runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sg_persist {args:?} failed: {text}");
    text
}

#[test]
#[ignore = "needs the SCSI lab (scripts/fencing-lab.sh)"]
fn every_pr_command_on_a_real_target() {
    let p1 = env("NODE1_DATA");
    wipe(&p1);
    let (mut n1, mut n2) = (data(1), data(2));
    n1.test_unit_ready().expect("TEST UNIT READY");
    let inq = n1.inquiry().expect("INQUIRY");
    assert_eq!((inq.vendor.as_str(), inq.peripheral_type), ("LIO-ORG", 0), "a disk: {inq:?}");
    let serial = n1.unit_serial().expect("unit serial page");
    assert_eq!(serial, n2.unit_serial().expect("serial via node 2"), "both paths reach the same LUN");
    assert_eq!(serial, "data1");
    let ids = n1.device_identification().expect("page 0x83");
    assert!(ids.iter().any(|d| d.value.to_string().starts_with("naa.")), "{ids:?}");
    let caps = n1.report_capabilities().expect("REPORT CAPABILITIES");
    assert!(caps.types.contains(&WERO), "{caps:?}");

    let (k1, k2) = (Key::data(CLUSTER, 0), Key::data(CLUSTER, 1));
    n1.register(Key::NONE, k1).expect("REGISTER node 1");
    n2.register(Key::NONE, k2).expect("REGISTER node 2");
    assert!(matches!(n1.register(Key::NONE, k1), Err(ScsiError::ReservationConflict)), "this path already holds a key");
    assert!(matches!(n1.reserve(Key(0x99), WERO), Err(ScsiError::ReservationConflict)), "reserving with an unregistered key");
    let keys = n2.read_keys().expect("READ KEYS").keys;
    assert_eq!(keys.iter().copied().collect::<BTreeSet<_>>(), [k1, k2].into(), "keys seen from node 2");
    n1.reserve(k1, WERO).expect("RESERVE WERO");
    let r = n2.read_reservation().expect("READ RESERVATION");
    let held = r.reservation.expect("a reservation");
    assert_eq!((held.key, held.kind, held.scope), (k1, WERO, 0));
    n1.release(k1, WERO).expect("RELEASE");
    assert!(n2.read_reservation().expect("READ RESERVATION").reservation.is_none());
    // A wrong current key is a conflict; the right one changes the key.
    let k1b = Key::data(CLUSTER, 2);
    assert!(matches!(n1.register(k2, k1b), Err(ScsiError::ReservationConflict)));
    n1.register(k1, k1b).expect("REGISTER with the current key changes it");
    n1.register_ignore(k1).expect("REGISTER AND IGNORE EXISTING KEY");
    n1.unregister(k1).expect("unregister (REGISTER to key 0)");
    n1.register(Key::NONE, k1).expect("register again");
    n2.preempt(k2, k1, WERO).expect("PREEMPT");
    assert_eq!(n1.read_keys().expect("keys").keys, vec![k2], "node 1 preempted");
    n2.clear(k2).expect("CLEAR");
    assert!(n1.read_keys().expect("keys").keys.is_empty());
}

#[test]
#[ignore = "needs the SCSI lab (scripts/fencing-lab.sh)"]
fn keys_interoperate_with_sg_persist() {
    let p1 = env("NODE1_DATA");
    let p2 = env("NODE2_DATA");
    wipe(&p1);
    // Ours -> sg_persist.
    let k = Key::coordinator(CLUSTER, 0);
    data(1).register(Key::NONE, k).expect("register");
    let shown = sg_persist(&["-n", "-i", "-k", &p2]);
    assert!(shown.contains(&format!("0x{:x}", k.0)), "sg_persist -i -k does not show {k} (0x{:x}): {shown}", k.0);
    // sg_persist -> ours: register, reserve type 5, as fence_scsi does.
    sg_persist(&["-n", "-o", "-I", "-S", "0x123abc", &p2]);
    sg_persist(&["-n", "-o", "-R", "-T", "5", "-K", "0x123abc", &p2]);
    let mut n1 = data(1);
    let keys = n1.read_keys().expect("keys").keys;
    assert!(keys.contains(&Key(0x123abc)) && keys.contains(&k), "{keys:?}");
    let held = n1.read_reservation().expect("reservation").reservation.expect("held");
    assert_eq!((held.key, held.kind), (Key(0x123abc), WERO));
    // And vxfenadm shows the same (the command an administrator runs).
    if let Some(bin) = std::env::var_os("VXFENADM") {
        let out = Command::new(bin).args(["-s", &p1]).output().expect("vxfenadm runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("VFDEED00"), "vxfenadm -s: {text}");
    }
    wipe(&p1);
}

#[test]
#[ignore = "needs the SCSI lab (scripts/fencing-lab.sh)"]
fn preempt_and_abort_fences_the_victim() {
    let p1 = env("NODE1_DATA");
    wipe(&p1);
    let (mut n1, mut n2) = (data(1), data(2));
    let (k1, k2) = (Key::data(CLUSTER, 0), Key::data(CLUSTER, 1));
    n1.register(Key::NONE, k1).expect("register node 1");
    n2.register(Key::NONE, k2).expect("register node 2");
    n1.reserve(k1, WERO).expect("node 1 reserves");
    let block_len = n1.read_capacity().expect("READ CAPACITY").block_len;
    let block = vec![0x5a; block_len as usize];
    n1.write_block(8, &block).expect("the holder writes");
    n2.write_block(9, &block).expect("a registrant writes (WERO)");
    assert_eq!(n2.read_block(8, block_len).expect("read back"), block);
    n2.preempt_and_abort(k2, k1, WERO).expect("node 2 preempts and aborts node 1");
    match n1.write_block(8, &block) {
        Err(ScsiError::ReservationConflict) => {}
        other => panic!("node 1's write after being fenced: expected RESERVATION CONFLICT, got {other:?}"),
    }
    let uas = n1.take_unit_attentions();
    assert!(uas.iter().any(|s| s.codes() == REGISTRATIONS_PREEMPTED), "the victim is told REGISTRATIONS PREEMPTED: {uas:?}");
    n1.read_block(8, block_len).expect("WERO still lets anyone read");
    // Through the block device: the kernel turns the conflict into EBADE.
    let sd = env("NODE1_DATA_SD");
    let err = write_direct(&sd).expect_err("a fenced node's block write must fail");
    assert_eq!(err.raw_os_error(), Some(libc::EBADE), "expected EBADE (Invalid exchange), got {err}");
    match n1.register(k1, k1) {
        Err(ScsiError::ReservationConflict) => {}
        other => panic!("node 1 re-registering with its old key: expected RESERVATION CONFLICT, got {other:?}"),
    }
    let held = n2.read_reservation().expect("reservation").reservation.expect("held");
    assert_eq!(held.key, k2, "the reservation moved to node 2");
    n2.write_block(8, &block).expect("the new holder writes");
    wipe(&p1);
}

/// One O_DIRECT 4 KiB write at offset 64 KiB of a block device.
fn write_direct(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path)?;
    let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("layout");
    // O_DIRECT needs an aligned buffer.
    // SAFETY: allocated with a non-zero size, freed below, never aliased.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null());
    // SAFETY: ptr points to 4096 initialised bytes we own.
    let buf = unsafe { std::slice::from_raw_parts(ptr, 4096) };
    let r = f.write_all_at(buf, 65536).and_then(|()| f.sync_all());
    // SAFETY: same pointer and layout as the allocation.
    unsafe { std::alloc::dealloc(ptr, layout) };
    r
}

/// Every node registers its coordinator key on the three disks.
fn register_all(nodes: &[usize]) {
    for path in coord_paths(1) {
        wipe(&path);
    }
    for &n in nodes {
        for path in coord_paths(n) {
            open(&path).register(Key::NONE, Key::coordinator(CLUSTER, (n - 1) as NodeId)).expect("register coordinator key");
        }
    }
}

/// Run on tgt LUNs (fencing/tests/lab_guest.sh): LIO locks up when two
/// initiators PREEMPT each other at once (tests/scsi-lab/README.md).
/// RACE_ABORT=1: PREEMPT AND ABORT (tgt refuses it; the racer falls back).
#[test]
#[ignore = "needs the SCSI lab (scripts/fencing-lab.sh)"]
fn two_racers_at_once_exactly_one_wins_50_times() {
    let abort = std::env::var_os("RACE_ABORT").is_some();
    let mut wins = [0usize; 2];
    for run in 0..50 {
        register_all(&[1, 2]);
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [1usize, 2]
            .into_iter()
            .map(|node| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut disks: Vec<Device> = coord_paths(node).iter().map(|p| open(p)).collect();
                    let me = (node - 1) as NodeId;
                    let other: BTreeSet<NodeId> = [1 - me].into();
                    let cfg = RaceConfig { me, cluster: CLUSTER, disks: disks.len(), delay: Dur(0), abort };
                    let mut race = Race::new(cfg, &other, Time::ZERO);
                    barrier.wait();
                    fencing::racer::run(&mut race, &mut disks)
                })
            })
            .collect();
        let verdicts: Vec<_> = racers.into_iter().map(|r| r.join().expect("racer thread")).collect();
        let winners: Vec<usize> = (0..2).filter(|&i| verdicts[i].won).collect();
        assert_eq!(winners.len(), 1, "run {run}: exactly one racer must win: {verdicts:?}");
        wins[winners[0]] += 1;
        // The winner's key is on a majority of disks, the loser's on none
        // of the disks the winner counts.
        let w = winners[0];
        let (wk, lk) = (Key::coordinator(CLUSTER, w as NodeId), Key::coordinator(CLUSTER, (1 - w) as NodeId));
        for (d, path) in coord_paths(1).iter().enumerate() {
            let keys = open(path).read_keys().expect("keys").keys;
            if verdicts[w].disks[d] == fencing::race::DiskOutcome::Won {
                assert!(keys.contains(&wk) && !keys.contains(&lk), "run {run} disk {d}: {keys:?}");
            }
        }
    }
    println!("two racers x 50: node 1 won {} times, node 2 won {} times", wins[0], wins[1]);
    for path in coord_paths(1) {
        wipe(&path);
    }
}
