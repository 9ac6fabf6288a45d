//! The coordinator-disk race in a seeded simulation over in-memory disks:
//! partitions of a split cluster race at once, operations interleave at
//! random, take effect at a random moment inside their latency, fail
//! (before or after taking effect), and racers die mid-race. After every
//! run: at most one partition wins; each disk a winner counts has its key
//! and none of its victims'; with two partitions and nothing failing,
//! exactly one wins; with preferred fencing, the heavier one wins. The
//! real target (tests/scsi-lab/) runs the same race through SG_IO.
//!
//! Replay one seed: SIM_SEED=N cargo test -p fencing --test race_sim.

use fencing::key::Key;
use fencing::memdisk::{self, MemDisk};
use fencing::race::{DiskOutcome, Next, Op, OpResult, Race, RaceConfig, Verdict};
use llt::rng::Rng;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::BTreeSet;

const CLUSTER: u16 = 0xDEED;

#[derive(Clone, Copy)]
struct Params {
    /// Chance in percent that an operation fails.
    fail_pct: u64,
    /// Chance in percent that a racer dies during the race.
    crash_pct: u64,
    /// Most partitions of the split.
    max_parts: u64,
    /// Preferred fencing: the partition holding node 0 is heavier.
    preferred: bool,
}

struct Racer {
    part: BTreeSet<NodeId>,
    race: Race,
    /// Pending operation: (applies at, answers at, op).
    pending: Option<(Time, Time, Op)>,
    applied: Option<OpResult>,
    /// The operation takes effect but its answer is lost (a timeout).
    fail_after: bool,
    fail_before: bool,
    dies_at: Option<Time>,
    verdict: Option<Verdict>,
    wake: Option<Time>,
}

struct Outcome {
    parts: Vec<BTreeSet<NodeId>>,
    verdicts: Vec<Option<Verdict>>,
    disks: Vec<MemDisk>,
    nothing_failed: bool,
}

fn run(seed: u64, p: Params) -> Outcome {
    let mut rng = Rng::new(seed);
    let nodes = 2 + rng.below(4) as usize;
    let ndisks = [1, 3, 3, 5][rng.below(4) as usize];
    let mut disks: Vec<MemDisk> = (0..ndisks).map(|_| MemDisk::new()).collect();
    for d in &mut disks {
        for n in 0..nodes {
            d.register(n, Key(0), Key::coordinator(CLUSTER, n as NodeId)).expect("fresh registration");
        }
    }
    // Split into 2..=max_parts non-empty partitions.
    let nparts = (2 + rng.below(p.max_parts - 1) as usize).min(nodes);
    let mut parts: Vec<BTreeSet<NodeId>> = (0..nparts).map(|i| [i as NodeId].into()).collect();
    for n in nparts..nodes {
        parts[rng.below(nparts as u64) as usize].insert(n as NodeId);
    }
    let all: BTreeSet<NodeId> = (0..nodes as NodeId).collect();
    let mut nothing_failed = true;
    let mut racers: Vec<Racer> = parts
        .iter()
        .map(|part| {
            let me = *part.iter().next().expect("non-empty");
            let departed: BTreeSet<NodeId> = all.difference(part).copied().collect();
            // Preferred fencing: node 0's partition weighs more; the others
            // wait longer than a whole race can take (5 disks x 5 ops x 50 ms).
            let delay = if p.preferred && me != 0 { Dur::from_millis(2000) } else { Dur(rng.below(3000)) };
            let cfg = RaceConfig { me, cluster: CLUSTER, disks: ndisks, delay, abort: rng.chance(50) };
            let dies_at = rng.chance(p.crash_pct as u32).then(|| Time(rng.below(200_000)));
            nothing_failed &= dies_at.is_none();
            Racer {
                part: part.clone(),
                race: Race::new(cfg, &departed, Time::ZERO),
                pending: None,
                applied: None,
                fail_after: false,
                fail_before: false,
                dies_at,
                verdict: None,
                wake: Some(Time::ZERO),
            }
        })
        .collect();
    let mut now = Time::ZERO;
    for _ in 0..100_000 {
        // The earliest thing that happens next, over every racer.
        let mut next: Option<(Time, usize)> = None;
        for (i, r) in racers.iter().enumerate() {
            if r.verdict.is_some() || r.dies_at.is_some_and(|d| d <= now) {
                continue;
            }
            let t = match (&r.pending, r.applied.is_some()) {
                (Some((apply, _, _)), false) => Some(*apply),
                (Some((_, answer, _)), true) => Some(*answer),
                (None, _) => r.wake,
            };
            if let Some(t) = t {
                if next.is_none_or(|(nt, _)| t < nt) {
                    next = Some((t, i));
                }
            }
        }
        let Some((t, i)) = next else { break };
        now = now.max(t);
        let r = &mut racers[i];
        if r.dies_at.is_some_and(|d| d <= now) {
            continue;
        }
        match (&r.pending, r.applied.is_some()) {
            (Some((_, _, op)), false) => {
                // The operation takes effect now (unless it fails first).
                let res = if r.fail_before {
                    OpResult::Failed("injected: no answer".into())
                } else {
                    apply(&mut disks, op, r.race_me())
                };
                r.applied = Some(if r.fail_after { OpResult::Failed("injected: answer lost".into()) } else { res });
            }
            (Some(_), true) => {
                r.pending = None;
                let res = r.applied.take().expect("checked");
                r.race.complete(res);
                r.wake = Some(now);
            }
            (None, _) => match r.race.poll(now) {
                Next::Op(op) => {
                    let apply_at = now + Dur(1 + rng.below(25_000));
                    let answer_at = apply_at + Dur(1 + rng.below(25_000));
                    r.fail_before = rng.chance(p.fail_pct as u32);
                    r.fail_after = !r.fail_before && rng.chance(p.fail_pct as u32);
                    nothing_failed &= !(r.fail_before || r.fail_after);
                    r.pending = Some((apply_at, answer_at, op));
                    r.wake = None;
                }
                Next::WaitUntil(t) => r.wake = Some(t),
                Next::Busy => r.wake = None,
                Next::Finished(v) => r.verdict = Some(v),
            },
        }
    }
    Outcome { parts: racers.iter().map(|r| r.part.clone()).collect(), verdicts: racers.into_iter().map(|r| r.verdict).collect(), disks, nothing_failed }
}

impl Racer {
    fn race_me(&self) -> usize {
        *self.part.iter().next().expect("non-empty") as usize
    }
}

fn apply(disks: &mut [MemDisk], op: &Op, path: usize) -> OpResult {
    memdisk::perform(disks, path, op)
}

/// The invariants of one run; `Err` says what broke.
fn check(o: &Outcome, p: Params) -> Result<(), String> {
    let winners: Vec<usize> = (0..o.parts.len()).filter(|&i| o.verdicts[i].as_ref().is_some_and(|v| v.won)).collect();
    if winners.len() > 1 {
        let w: Vec<_> = winners.iter().map(|&i| &o.parts[i]).collect();
        return Err(format!("split brain: partitions {w:?} all won"));
    }
    for &w in &winners {
        let v = o.verdicts[w].as_ref().expect("winner");
        let me = *o.parts[w].iter().next().expect("non-empty");
        for (d, outcome) in v.disks.iter().enumerate() {
            if *outcome != DiskOutcome::Won {
                continue;
            }
            let keys = o.disks[d].read_keys();
            if !keys.contains(&Key::coordinator(CLUSTER, me)) {
                return Err(format!("disk {d} counted as won by node {me}, but its key is gone: {keys:?}"));
            }
            for (j, part) in o.parts.iter().enumerate() {
                if j != w && part.iter().any(|&n| keys.contains(&Key::coordinator(CLUSTER, n))) {
                    return Err(format!("disk {d} counted as won by node {me}, but partition {part:?} still has a key: {keys:?}"));
                }
            }
        }
    }
    if o.nothing_failed {
        if o.verdicts.iter().any(|v| v.is_none()) {
            return Err("a racer never finished".into());
        }
        if o.parts.len() == 2 && winners.len() != 1 {
            return Err(format!("two partitions {:?}, nothing failed, and no winner", o.parts));
        }
        if p.preferred && winners.first().is_none_or(|&w| !o.parts[w].contains(&0)) {
            return Err(format!("preferred fencing: node 0's partition should win, winners {winners:?} of {:?}", o.parts));
        }
    }
    Ok(())
}

fn sweep(p: Params) {
    let mut failures = Vec::new();
    let mut won = 0;
    for seed in llt::sim::seeds_from_env(1000) {
        let o = run(seed, p);
        won += o.verdicts.iter().flatten().filter(|v| v.won).count();
        if let Err(e) = check(&o, p) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} failing seeds:\n{}", failures.len(), failures.join("\n"));
    assert!(won > 0, "no race was ever won: the simulation is not racing");
}

#[test]
fn two_partitions_exactly_one_wins() {
    sweep(Params { fail_pct: 0, crash_pct: 0, max_parts: 2, preferred: false });
}

#[test]
fn three_way_splits_never_two_winners() {
    sweep(Params { fail_pct: 0, crash_pct: 0, max_parts: 3, preferred: false });
}

#[test]
fn failures_and_dying_racers_never_two_winners() {
    sweep(Params { fail_pct: 10, crash_pct: 20, max_parts: 3, preferred: false });
}

#[test]
fn preferred_fencing_heavier_partition_wins() {
    sweep(Params { fail_pct: 0, crash_pct: 0, max_parts: 2, preferred: true });
}

/// The unit-level behaviour of one racer, step by step.
#[test]
fn a_racer_preempts_every_departed_key_then_wins() {
    let cfg = RaceConfig { me: 0, cluster: CLUSTER, disks: 3, delay: Dur(0), abort: true };
    let departed: BTreeSet<NodeId> = [1, 2].into();
    let mut race = Race::new(cfg, &departed, Time::ZERO);
    let k = |n| Key::coordinator(CLUSTER, n);
    for disk in 0..3 {
        assert_eq!(race.poll(Time::ZERO), Next::Op(Op::ReadKeys { disk }));
        assert_eq!(race.poll(Time::ZERO), Next::Busy);
        race.complete(OpResult::Keys(vec![k(0), k(1), k(2)]));
        let mut victims = Vec::new();
        for _ in 0..2 {
            match race.poll(Time::ZERO) {
                Next::Op(Op::Preempt { disk: d, own, victim, abort: true }) => {
                    assert_eq!((d, own), (disk, k(0)));
                    victims.push(victim);
                }
                other => panic!("expected a preempt, got {other:?}"),
            }
            race.complete(OpResult::Done);
        }
        victims.sort();
        assert_eq!(victims, vec![k(1), k(2)]);
    }
    match race.poll(Time::ZERO) {
        Next::Finished(v) => assert!(v.won && v.disks_won() == 3, "{v:?}"),
        other => panic!("expected the verdict, got {other:?}"),
    }
}

#[test]
fn a_racer_that_loses_two_disks_stops_and_loses() {
    let cfg = RaceConfig { me: 1, cluster: CLUSTER, disks: 3, delay: Dur::from_millis(10), abort: true };
    let mut race = Race::new(cfg, &[0].into(), Time::ZERO);
    assert_eq!(race.poll(Time::ZERO), Next::WaitUntil(Time::from_millis(10)));
    let t = Time::from_millis(10);
    assert_eq!(race.poll(t), Next::Op(Op::ReadKeys { disk: 0 }));
    race.complete(OpResult::Keys(vec![Key::coordinator(CLUSTER, 0)]));
    assert_eq!(race.poll(t), Next::Op(Op::ReadKeys { disk: 1 }));
    race.complete(OpResult::Failed("timeout".into()));
    match race.poll(t) {
        Next::Finished(v) => {
            assert!(!v.won);
            assert_eq!(v.disks, vec![DiskOutcome::Preempted, DiskOutcome::Failed("timeout".into()), DiskOutcome::Skipped]);
        }
        other => panic!("expected the verdict, got {other:?}"),
    }
}
