//! Port b fencing ([`fencing::member::Fencer`]) on every node of a cluster
//! in a seeded simulation: an abstract GAB splits the cluster, crashes
//! nodes, lets them leave on purpose; the fencers race over in-memory
//! PR disks ([`fencing::memdisk`]), eject the departed from the data
//! disks, hold and release, halt a losing partition.
//!
//! The GAB model: nodes that can talk form a group. Everything GAB tells
//! a group (port b memberships, port b broadcasts) is sequenced once and
//! pushed into every member's inbox in that order; each member takes it
//! out after its own delay (GAB's total order, per-node latency). A
//! membership is sequenced a detection delay after a split or crash (a
//! broadcast sent meanwhile comes before it), shortly after a node leaves
//! GAB (halted, or `vxfenconfig -U` once its keys are removed). At a
//! split, a new group may miss an end of the old group's sequence that
//! none of its members got yet (all its members the same end); a crashed
//! node's broadcasts that nobody got yet are lost for all or delivered to
//! all (a suffix is lost, FIFO). Broadcasts go through `Msg::encode` and
//! `Msg::decode`. Disk operations take effect at a random moment of their
//! latency and are answered later; coordinator operations may fail (data
//! disk ejections do not: see `disk_failures_and_crashes`). A halted node
//! leaves GAB and does nothing more; a hung node stays in GAB and does
//! nothing more.
//!
//! Checked after every step:
//! 1. a node that is active (alive, not halted, not leaving, not holding)
//!    and whose membership excludes a node it shared one with: that node's
//!    data key is on no data disk, unless it left cleanly (the active
//!    node's fencer said `LeftCleanly`); two nodes never are both active
//!    with memberships excluding each other while both have data keys;
//! 2. a halted fencer stays halted, says `Halt` exactly when it halts, and
//!    asks for nothing (disk, broadcast, release) after `Halt`; holding
//!    ends with `Release` (the host flushes what it held then);
//! 3. the members of a group that processed the same delivery agree on
//!    `pending()` and `racer()` (a racer whose own verdict is still on its
//!    way is ahead of the others and is left out until it gets it back).
//!
//! Checked at quiescence (nothing sequenced, no operation out, no timer):
//! 4. active nodes are all in one group; in runs without disk failures,
//!    racer crashes or hangs, where at most two partitions race at once
//!    (and no partition lost keys to an earlier race, see `split`): every
//!    halted node was fenced out by a race someone won (each race had a
//!    winner), and without crashes or leaves some group is active; with
//!    preferred fencing, the heavier partition of the split wins;
//! 5. every live node is active, halted or gone: nobody holds forever.
//!
//! Replay one seed: SIM_SEED=N cargo test -p fencing --test member_sim;
//! SIM_SEEDS=N runs seeds 1..=N (default 200, CI: 1000); SIM_TRACE=1
//! prints the trace of every run.

use fencing::key::Key;
use fencing::member::{startup_check, Action, DiskOp, Fencer, FencerConfig, Msg, Notice};
use fencing::memdisk::{self, MemDisk};
use fencing::race::{Op, OpResult};
use llt::rng::Rng;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const CLUSTER: u16 = 0xDEED;
/// Coordinator disk operations: each phase (to the disk, back) takes up to this.
const DISK_LATENCY_US: u64 = 8_000;
/// Delivery jitter of a sequenced event to one member.
const JITTER_US: u64 = 20_000;
/// Nothing after this: a run that has not settled by then is stuck.
const HORIZON: Time = Time(30 * 60 * 1_000_000);
const MAX_STEPS: u64 = 200_000;

/// A GAB-level event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gev {
    /// The largest group splits into this many parts.
    Split(usize),
    /// A random live node crashes.
    Crash,
    /// The racer (or the lowest node) of a group crashes.
    CrashRacer,
    /// The racer of a group hangs: GAB still counts it, it does nothing.
    FreezeRacer,
    /// A random active node runs `vxfenconfig -U`.
    Leave,
    /// The next node to broadcast a verdict crashes while it is on its way.
    CrashAtVerdict,
    /// The group of the next node to broadcast a verdict splits in two
    /// while it is on its way.
    SplitAtVerdict,
}

type Plan = fn(&mut Rng) -> Vec<(Time, Gev)>;

#[derive(Clone, Copy)]
struct Params {
    plan: Plan,
    /// Chance in percent that a coordinator disk operation fails.
    fail_pct: u32,
    /// Chance in percent that nodes get random weights (else all 1).
    weights_pct: u32,
    /// Check that the heavier partition of the first split wins.
    preferred: bool,
    /// Detection delay of a split or crash, in ms.
    detect_ms: (u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    Crashed,
    Frozen,
    /// Left cleanly (`vxfenconfig -U` done).
    Left,
}

struct OpOut {
    op: DiskOp,
    apply_at: Time,
    answer_at: Time,
    result: Option<OpResult>,
    fail_before: bool,
    fail_after: bool,
    /// The node crashed before the command reached the disk.
    lost: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Membership(BTreeSet<NodeId>),
    Msg { from: NodeId, id: u64, bytes: Vec<u8> },
}

struct Delivery {
    at: Time,
    ev: u64,
    kind: Kind,
}

struct Node {
    id: NodeId,
    f: Fencer,
    state: State,
    /// The fencer said `Halt`.
    halted: bool,
    /// Sent `Leaving`: HAD is stopped, it writes nothing.
    leaving: bool,
    in_gab: bool,
    group: u32,
    inbox: VecDeque<Delivery>,
    op: Option<OpOut>,
    /// Every node this one shared a port b membership with.
    seen: BTreeSet<NodeId>,
    /// Nodes its fencer said left cleanly.
    clean: BTreeSet<NodeId>,
    /// Its own verdicts not yet delivered back to it.
    own_verdicts: BTreeSet<u64>,
    /// The last sequenced event it processed.
    last_ev: u64,
}

impl Node {
    fn runs(&self) -> bool {
        self.state == State::Live && !self.halted
    }

    fn active(&self) -> bool {
        self.runs() && self.in_gab && !self.leaving && !self.f.members().is_empty() && !self.f.holding()
    }

    fn excluded(&self) -> BTreeSet<NodeId> {
        self.seen.difference(self.f.members()).copied().collect()
    }
}

struct Group {
    nodes: BTreeSet<NodeId>,
    last: Option<BTreeSet<NodeId>>,
}

#[derive(Debug)]
enum Sched {
    Gab(Gev),
    SeqMembership(u32),
    KeyRemoval(NodeId),
    GabLeave(NodeId),
    Crash(NodeId),
    SplitGroupOf(NodeId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    Sched((Time, u64)),
    OpApply(usize),
    OpAnswer(usize),
    Deliver(usize),
    Wake(usize),
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    races: u64,
    won: u64,
    lost: u64,
    releases: u64,
    halts: u64,
    timeout_halts: u64,
    /// Races started by a node that was not the racer of the first
    /// `Waiting`/`RaceStarted` of that departure (the racer changed).
    successor_races: u64,
    ejected: u64,
    /// Winners' keys put back on a coordinator disk a loser took.
    reregistered: u64,
    clean_leaves: u64,
    left_cleanly_notices: u64,
    /// Runs where some partition is active at the end.
    runs_with_winner: u64,
    /// Clean runs that checked invariant 4 / preferred fencing.
    checked_one: u64,
    checked_preferred: u64,
    racer_crashes: u64,
    dropped_msgs: u64,
    /// Races started by a node that said it was leaving.
    leaving_racers: u64,
    /// Splits of a group whose keys are gone from some coordinator disk.
    degraded_splits: u64,
    /// Two members compared after the same delivery (invariant 3).
    agreements: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.races += o.races;
        self.won += o.won;
        self.lost += o.lost;
        self.releases += o.releases;
        self.halts += o.halts;
        self.timeout_halts += o.timeout_halts;
        self.successor_races += o.successor_races;
        self.ejected += o.ejected;
        self.reregistered += o.reregistered;
        self.clean_leaves += o.clean_leaves;
        self.left_cleanly_notices += o.left_cleanly_notices;
        self.runs_with_winner += o.runs_with_winner;
        self.checked_one += o.checked_one;
        self.checked_preferred += o.checked_preferred;
        self.racer_crashes += o.racer_crashes;
        self.dropped_msgs += o.dropped_msgs;
        self.leaving_racers += o.leaving_racers;
        self.degraded_splits += o.degraded_splits;
        self.agreements += o.agreements;
    }
}

struct Sim {
    p: Params,
    rng: Rng,
    now: Time,
    nodes: Vec<Node>,
    groups: BTreeMap<u32, Group>,
    next_gid: u32,
    sched: BTreeMap<(Time, u64), Sched>,
    next_seq: u64,
    next_ev: u64,
    next_msg: u64,
    coord: Vec<MemDisk>,
    data: Vec<MemDisk>,
    trace: Vec<String>,
    /// Per sequenced event: (node, pending, racer) of the first member
    /// that processed it.
    snapshots: BTreeMap<u64, (NodeId, BTreeSet<NodeId>, Option<NodeId>)>,
    stats: Stats,
    /// No disk failure, no racer crash or hang, no three partitions racing.
    clean: bool,
    /// The first split: each part and its weight.
    first_split: Option<Vec<(BTreeSet<NodeId>, u64)>>,
    /// Per node: the racer it waits for (or itself), until released or halted.
    racer_of: BTreeMap<NodeId, NodeId>,
    /// Armed `CrashAtVerdict` / `SplitAtVerdict`.
    at_verdict: Vec<Gev>,
    /// Per message: the nodes that got it (it cannot be lost for them).
    got: BTreeMap<u64, BTreeSet<NodeId>>,
    /// Nodes some racer won against.
    fenced_out: BTreeSet<NodeId>,
    crashed_any: bool,
}

fn ms(t: Time) -> String {
    format!("{:>5}.{:03}", t.as_micros() / 1_000_000, (t.as_micros() / 1000) % 1000)
}

fn op_str(op: &DiskOp) -> String {
    match op {
        DiskOp::Race(Op::ReadKeys { disk }) => format!("read keys of coordinator disk {disk}"),
        DiskOp::Race(Op::Preempt { disk, own, victim, abort }) => {
            format!("preempt{} {victim} as {own} on coordinator disk {disk}", if *abort { " and abort" } else { "" })
        }
        DiskOp::Race(Op::Register { disk, own }) => format!("register {own} again on coordinator disk {disk}"),
        DiskOp::Eject { disk, own, victim } => format!("eject {victim} as {own} from data disk {disk}"),
    }
}

fn res_str(r: &OpResult) -> String {
    match r {
        OpResult::Keys(k) => format!("keys [{}]", k.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" ")),
        other => format!("{other:?}"),
    }
}

fn set(s: &BTreeSet<NodeId>) -> String {
    format!("{{{}}}", fencing::member::list(s.iter()))
}

impl Sim {
    fn new(seed: u64, p: Params) -> Sim {
        let mut rng = Rng::new(seed);
        let n = 2 + rng.below(4) as usize;
        let ncoord = [1, 3, 3, 3, 5][rng.below(5) as usize];
        let ndata = 1 + rng.below(2) as usize;
        let weighted = p.preferred || rng.chance(p.weights_pct);
        let abort = rng.chance(50);
        let mut coord: Vec<MemDisk> = (0..ncoord).map(|_| MemDisk::new()).collect();
        let mut data: Vec<MemDisk> = (0..ndata).map(|_| MemDisk::new()).collect();
        for d in &mut coord {
            for i in 0..n {
                d.register(i, Key(0), Key::coordinator(CLUSTER, i as NodeId)).expect("fresh coordinator registration");
            }
        }
        for d in &mut data {
            for i in 0..n {
                d.register(i, Key(0), Key::data(CLUSTER, i as NodeId)).expect("fresh data registration");
            }
            let holder = rng.below(n as u64) as usize;
            d.reserve_wero(holder, Key::data(CLUSTER, holder as NodeId)).expect("reservation");
        }
        let mut nodes = Vec::new();
        let mut weights = Vec::new();
        for i in 0..n {
            let mut cfg = FencerConfig::new(i as NodeId, CLUSTER, ncoord, ndata);
            cfg.abort = abort;
            cfg.weight = if weighted { 1 + rng.below(9) as u32 } else { 1 };
            weights.push(cfg.weight);
            nodes.push(Node {
                id: i as NodeId,
                f: Fencer::new(cfg),
                state: State::Live,
                halted: false,
                leaving: false,
                in_gab: true,
                group: 0,
                inbox: VecDeque::new(),
                op: None,
                seen: BTreeSet::new(),
                clean: BTreeSet::new(),
                own_verdicts: BTreeSet::new(),
                last_ev: 0,
            });
        }
        let all: BTreeSet<NodeId> = (0..n as NodeId).collect();
        let mut groups = BTreeMap::new();
        groups.insert(0, Group { nodes: all, last: None });
        let mut sim = Sim {
            p,
            rng,
            now: Time::ZERO,
            nodes,
            groups,
            next_gid: 1,
            sched: BTreeMap::new(),
            next_seq: 0,
            next_ev: 0,
            next_msg: 0,
            coord,
            data,
            trace: Vec::new(),
            snapshots: BTreeMap::new(),
            stats: Stats::default(),
            clean: true,
            first_split: None,
            racer_of: BTreeMap::new(),
            at_verdict: Vec::new(),
            got: BTreeMap::new(),
            fenced_out: BTreeSet::new(),
            crashed_any: false,
        };
        sim.log(format!(
            "seed {seed}: {n} nodes, {ncoord} coordinator disks, {ndata} data disks, abort {abort}, weights {weights:?}"
        ));
        let plan = (p.plan)(&mut sim.rng);
        for (t, g) in plan {
            sim.at(t, Sched::Gab(g));
        }
        sim.at(Time::ZERO, Sched::SeqMembership(0));
        sim
    }

    fn log(&mut self, s: String) {
        self.trace.push(format!("{} {s}", ms(self.now)));
    }

    fn at(&mut self, t: Time, s: Sched) {
        self.next_seq += 1;
        self.sched.insert((t, self.next_seq), s);
    }

    fn rand_ms(&mut self, lo: u64, hi: u64) -> Dur {
        Dur(lo * 1000 + self.rng.below((hi - lo) * 1000 + 1))
    }

    fn detect(&mut self) -> Dur {
        let (lo, hi) = self.p.detect_ms;
        self.rand_ms(lo, hi)
    }

    fn fail(&self, why: String) -> String {
        let tail = self.trace.len().saturating_sub(400);
        format!("{why}\ntrace{}:\n{}", if tail > 0 { " (last 400 lines)" } else { "" }, self.trace[tail..].join("\n"))
    }

    /// The earliest thing that happens next.
    fn next(&self) -> Option<(Time, What)> {
        let mut best: Option<(Time, What)> = None;
        let mut offer = |t: Time, w: What| {
            if best.as_ref().is_none_or(|b| (t, w) < *b) {
                best = Some((t, w));
            }
        };
        if let Some((&k, _)) = self.sched.iter().next() {
            offer(k.0, What::Sched(k));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(op) = &n.op {
                if op.result.is_none() && !op.lost {
                    offer(op.apply_at, What::OpApply(i));
                } else if n.runs() {
                    offer(op.answer_at, What::OpAnswer(i));
                }
            }
            if !n.runs() {
                continue;
            }
            if let Some(d) = n.inbox.front() {
                offer(d.at, What::Deliver(i));
            }
            if let Some(t) = n.f.poll_timeout() {
                offer(t.max(self.now), What::Wake(i));
            }
        }
        best
    }

    /// The run's statistics and trace, or what broke with the trace.
    fn run(mut self) -> Result<(Stats, String), String> {
        let mut steps = 0u64;
        while let Some((t, what)) = self.next() {
            steps += 1;
            if steps > MAX_STEPS || t > HORIZON {
                return Err(self.fail(format!("no quiescence after {steps} steps (at {} s): {what:?}", ms(t))));
            }
            self.now = self.now.max(t);
            if let Err(e) = self.step(what).and_then(|()| self.check()) {
                return Err(self.fail(e));
            }
        }
        match self.check_end() {
            Ok(()) => Ok((self.stats, self.trace.join("\n"))),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn step(&mut self, what: What) -> Result<(), String> {
        match what {
            What::Sched(k) => {
                let s = self.sched.remove(&k).expect("scheduled");
                self.sched_event(s)
            }
            What::OpApply(i) => {
                self.apply_op(i);
                Ok(())
            }
            What::OpAnswer(i) => {
                let op = self.nodes[i].op.take().expect("op out");
                let res = op.result.expect("applied");
                self.log(format!("n{i} <- {}", res_str(&res)));
                self.feed(i, |f, _| f.complete(res))
            }
            What::Deliver(i) => self.deliver(i),
            What::Wake(i) => {
                let now = self.now;
                self.feed(i, |f, _| f.handle_timeout(now))
            }
        }
    }

    fn apply_op(&mut self, i: usize) {
        let op = self.nodes[i].op.as_mut().expect("op out");
        let res = if op.fail_before {
            OpResult::Failed("injected: no answer".into())
        } else {
            match op.op {
                DiskOp::Race(ref race_op) => memdisk::perform(&mut self.coord, i, race_op),
                DiskOp::Eject { disk, own, victim } => match self.data[disk].preempt_abort(i, own, victim) {
                    Ok(()) => OpResult::Done,
                    Err(_) => OpResult::Conflict,
                },
            }
        };
        let res = if op.fail_after { OpResult::Failed("injected: answer lost".into()) } else { res };
        op.result = Some(res.clone());
        let line = format!("n{i} disk: {} -> {}", op_str(&op.op), res_str(&res));
        self.log(line);
    }

    fn deliver(&mut self, i: usize) -> Result<(), String> {
        let d = self.nodes[i].inbox.pop_front().expect("delivery");
        self.nodes[i].last_ev = d.ev;
        let now = self.now;
        match d.kind {
            Kind::Membership(m) => {
                self.log(format!("n{i} membership {} (ev {})", set(&m), d.ev));
                self.nodes[i].seen.extend(m.iter().copied());
                self.feed(i, |f, _| f.on_membership(now, &m))?;
            }
            Kind::Msg { from, id, bytes } => {
                let msg = Msg::decode(&bytes).map_err(|e| format!("n{i}: a port b message from {from} does not decode: {e}"))?;
                self.log(format!("n{i} from n{from}: {msg:?} (ev {})", d.ev));
                if from == self.nodes[i].id {
                    self.nodes[i].own_verdicts.remove(&id);
                }
                self.got.entry(id).or_default().insert(i as NodeId);
                self.feed(i, |f, _| f.on_message(from, msg))?;
            }
        }
        self.snapshot(i, d.ev)
    }

    /// Invariant 3: members agree at the same delivery.
    fn snapshot(&mut self, i: usize, ev: u64) -> Result<(), String> {
        let n = &self.nodes[i];
        if !n.runs() || !n.own_verdicts.is_empty() {
            return Ok(());
        }
        let snap = (n.id, n.f.pending().clone(), n.f.racer());
        match self.snapshots.get(&ev) {
            None => {
                self.snapshots.insert(ev, snap);
                Ok(())
            }
            Some((other, pending, racer)) if (pending, racer) != (&snap.1, &snap.2) => Err(format!(
                "after the same delivery (ev {ev}) node {other} has pending {} racer {racer:?}, node {} has pending {} racer {:?}",
                set(pending),
                snap.0,
                set(&snap.1),
                snap.2
            )),
            Some(_) => {
                self.stats.agreements += 1;
                Ok(())
            }
        }
    }

    /// Give node `i`'s fencer one input, then carry out its actions.
    fn feed(&mut self, i: usize, input: impl FnOnce(&mut Fencer, Time)) -> Result<(), String> {
        let now = self.now;
        let was_holding = self.nodes[i].f.holding();
        input(&mut self.nodes[i].f, now);
        let mut halted = false;
        let mut released = false;
        for _ in 0..10_000 {
            let Some(a) = self.nodes[i].f.poll(now) else {
                let n = &self.nodes[i];
                if n.f.halted().is_some() != (n.halted || halted) {
                    return Err(format!("node {i}: fencer halted {:?} but Action::Halt seen {}", n.f.halted(), n.halted || halted));
                }
                if was_holding && !n.f.holding() && n.f.halted().is_none() && !released {
                    return Err(format!("node {i} stopped holding without Action::Release"));
                }
                if released && n.f.holding() {
                    return Err(format!("node {i}: Action::Release but still holding (pending {})", set(n.f.pending())));
                }
                return Ok(());
            };
            if halted && !matches!(a, Action::Notice(_)) {
                return Err(format!("node {i} asked for {a:?} after Action::Halt"));
            }
            match a {
                Action::Disk(op) => {
                    if self.nodes[i].op.is_some() {
                        return Err(format!("node {i} asked for {op:?} with an operation still out"));
                    }
                    let apply_at = now + Dur(1 + self.rng.below(DISK_LATENCY_US));
                    let answer_at = apply_at + Dur(1 + self.rng.below(DISK_LATENCY_US));
                    let race = matches!(op, DiskOp::Race(_));
                    let fail_before = race && self.rng.chance(self.p.fail_pct);
                    let fail_after = race && !fail_before && self.rng.chance(self.p.fail_pct);
                    if fail_before || fail_after {
                        self.clean = false;
                    }
                    self.log(format!("n{i} -> {}{}", op_str(&op), if fail_before || fail_after { " (will fail)" } else { "" }));
                    self.nodes[i].op = Some(OpOut { op, apply_at, answer_at, result: None, fail_before, fail_after, lost: false });
                }
                Action::Broadcast(msg) => {
                    let bytes = msg.encode();
                    match Msg::decode(&bytes) {
                        Ok(back) if back == msg => {}
                        other => return Err(format!("node {i}: {msg:?} encodes to {bytes:?}, decodes to {other:?}")),
                    }
                    self.next_msg += 1;
                    let id = self.next_msg;
                    if matches!(msg, Msg::Verdict { .. }) {
                            self.nodes[i].own_verdicts.insert(id);
                        for g in std::mem::take(&mut self.at_verdict) {
                            let t = now + Dur(self.rng.below(JITTER_US));
                            let what = if g == Gev::CrashAtVerdict { Sched::Crash(i as NodeId) } else { Sched::SplitGroupOf(i as NodeId) };
                            self.at(t, what);
                        }
                    }
                    self.log(format!("n{i} broadcasts {msg:?} (msg {id})"));
                    let gid = self.nodes[i].group;
                    if !self.nodes[i].in_gab {
                        return Err(format!("node {i} broadcasts {msg:?} outside GAB"));
                    }
                    self.sequence(gid, Kind::Msg { from: i as NodeId, id, bytes });
                }
                Action::Release => {
                    released = true;
                    self.racer_of.remove(&(i as NodeId));
                    self.stats.releases += 1;
                    self.log(format!("n{i} RELEASE"));
                }
                Action::Halt(why) => {
                    halted = true;
                    self.nodes[i].halted = true;
                    self.racer_of.remove(&(i as NodeId));
                    self.stats.halts += 1;
                    if why.contains("no fencing verdict") {
                        self.stats.timeout_halts += 1;
                    }
                    self.log(format!("n{i} HALT: {why}"));
                    let t = now + self.rand_ms(1, 20);
                    self.at(t, Sched::GabLeave(i as NodeId));
                }
                Action::ReadyToLeave => {
                    self.log(format!("n{i} ready to leave"));
                    let t = now + self.rand_ms(1, 20);
                    self.at(t, Sched::KeyRemoval(i as NodeId));
                }
                Action::Notice(n) => self.notice(i, n),
            }
        }
        Err(format!("node {i}: the fencer keeps asking for actions"))
    }

    fn notice(&mut self, i: usize, n: Notice) {
        match &n {
            Notice::RaceStarted { .. } => {
                self.stats.races += 1;
                if self.nodes[i].leaving {
                    self.stats.leaving_racers += 1;
                }
                self.note_racer(i, i as NodeId);
            }
            Notice::Waiting { racer, .. } => self.note_racer(i, *racer),
            Notice::RaceDone { verdict, departed } => {
                if verdict.won {
                    self.stats.won += 1;
                    self.fenced_out.extend(departed.iter().copied());
                } else {
                    self.stats.lost += 1;
                }
            }
            Notice::Ejected { result: Ok(()), .. } => self.stats.ejected += 1,
            Notice::Ejected { .. } => {}
            Notice::Reregistered { result: Ok(()), .. } => self.stats.reregistered += 1,
            Notice::Reregistered { .. } | Notice::Purged { .. } => {}
            Notice::LeftCleanly { nodes } => {
                self.stats.left_cleanly_notices += 1;
                self.nodes[i].clean.extend(nodes.iter().copied());
            }
        }
        self.log(format!("n{i} {n:?}"));
    }

    /// Node `i` races or waits for `racer`: count a change of racer.
    fn note_racer(&mut self, i: usize, racer: NodeId) {
        if self.racer_of.insert(i as NodeId, racer).is_some_and(|r| r != racer) {
            self.stats.successor_races += 1;
        }
    }

    /// GAB sequences `kind` in group `gid`: every member gets it in this order.
    fn sequence(&mut self, gid: u32, kind: Kind) {
        self.next_ev += 1;
        let ev = self.next_ev;
        let members: Vec<NodeId> = self.groups[&gid].nodes.iter().copied().collect();
        for m in members {
            let jitter = Dur(1 + self.rng.below(JITTER_US));
            let n = &mut self.nodes[m as usize];
            let at = n.inbox.back().map_or(self.now + jitter, |b| b.at.max(self.now + jitter));
            n.inbox.push_back(Delivery { at, ev, kind: kind.clone() });
        }
    }

    fn sched_event(&mut self, s: Sched) -> Result<(), String> {
        match s {
            Sched::Gab(g) => self.gab_event(g),
            Sched::Crash(n) => {
                if self.nodes[n as usize].state == State::Live {
                    self.crash(n as usize, false);
                }
                Ok(())
            }
            Sched::SplitGroupOf(n) => {
                let gid = self.nodes[n as usize].group;
                if self.groups.contains_key(&gid) {
                    self.split(Some(gid), 2);
                }
                Ok(())
            }
            Sched::SeqMembership(gid) => {
                if let Some(g) = self.groups.get_mut(&gid) {
                    if !g.nodes.is_empty() && g.last.as_ref() != Some(&g.nodes) {
                        g.last = Some(g.nodes.clone());
                        let m = g.nodes.clone();
                        self.log(format!("GAB group {gid} sequences membership {}", set(&m)));
                        self.sequence(gid, Kind::Membership(m));
                    }
                }
                Ok(())
            }
            Sched::KeyRemoval(n) => {
                let i = n as usize;
                if self.nodes[i].state != State::Live || self.nodes[i].halted || !self.nodes[i].in_gab {
                    return Ok(());
                }
                for d in &mut self.coord {
                    let _ = d.register(i, Key::coordinator(CLUSTER, n), Key(0));
                }
                for d in &mut self.data {
                    let _ = d.register(i, Key::data(CLUSTER, n), Key(0));
                }
                self.log(format!("n{i} removed its keys"));
                // The disk thread removes them one disk after the other
                // before port b closes.
                let disks = (self.coord.len() + self.data.len()) as u64;
                let t = self.now + Dur(disks * (2 + self.rng.below(2 * DISK_LATENCY_US)));
                self.at(t, Sched::GabLeave(n));
                Ok(())
            }
            Sched::GabLeave(n) => {
                let i = n as usize;
                if !self.nodes[i].in_gab || self.nodes[i].state != State::Live {
                    return Ok(());
                }
                self.nodes[i].in_gab = false;
                if !self.nodes[i].halted {
                    self.nodes[i].state = State::Left;
                    self.stats.clean_leaves += 1;
                }
                self.nodes[i].inbox.clear();
                let gid = self.nodes[i].group;
                self.groups.get_mut(&gid).expect("group").nodes.remove(&n);
                self.log(format!("n{i} leaves GAB"));
                let t = self.now + self.rand_ms(1, 10);
                self.at(t, Sched::SeqMembership(gid));
                Ok(())
            }
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].runs() && self.nodes[i].in_gab).collect()
    }

    fn gab_event(&mut self, g: Gev) -> Result<(), String> {
        match g {
            Gev::Split(k) => self.split(None, k),
            Gev::CrashAtVerdict | Gev::SplitAtVerdict => self.at_verdict.push(g),
            Gev::Crash => {
                let live = self.live();
                if live.is_empty() {
                    return Ok(());
                }
                let v = live[self.rng.below(live.len() as u64) as usize];
                self.crash(v, false);
            }
            Gev::CrashRacer | Gev::FreezeRacer => {
                // A group with a successor if there is one.
                let mut gids: Vec<u32> =
                    self.groups.iter().filter(|(_, g)| g.nodes.iter().filter(|&&n| self.nodes[n as usize].runs()).count() >= 2).map(|(&id, _)| id).collect();
                if gids.is_empty() {
                    gids = self.groups.iter().filter(|(_, g)| g.nodes.iter().any(|&n| self.nodes[n as usize].runs())).map(|(&id, _)| id).collect();
                }
                if gids.is_empty() {
                    return Ok(());
                }
                let gid = gids[self.rng.below(gids.len() as u64) as usize];
                let runs: Vec<NodeId> = self.groups[&gid].nodes.iter().copied().filter(|&n| self.nodes[n as usize].runs()).collect();
                let v = runs.iter().copied().find(|&n| self.nodes[n as usize].f.racer() == Some(n)).unwrap_or(runs[0]) as usize;
                self.crash(v, g == Gev::FreezeRacer);
            }
            Gev::Leave => {
                let active: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].active()).collect();
                if active.is_empty() {
                    return Ok(());
                }
                let v = active[self.rng.below(active.len() as u64) as usize];
                self.log(format!("n{v} vxfenconfig -U"));
                self.nodes[v].leaving = true;
                self.nodes[v].f.leave();
                return self.feed(v, |_, _| {});
            }
        }
        Ok(())
    }

    fn crash(&mut self, v: usize, freeze: bool) {
        let n = &self.nodes[v];
        if n.f.racer() == Some(n.id) || !n.own_verdicts.is_empty() {
            self.clean = false;
            self.stats.racer_crashes += 1;
        }
        if freeze {
            // Nobody can tell what a hung node does with its disks.
            self.clean = false;
            self.log(format!("n{v} HANGS (GAB still counts it)"));
            self.nodes[v].state = State::Frozen;
            return;
        }
        self.log(format!("n{v} CRASHES"));
        self.crashed_any = true;
        self.nodes[v].state = State::Crashed;
        if let Some(op) = self.nodes[v].op.as_mut() {
            if op.result.is_none() {
                op.lost = self.rng.chance(50);
            }
        }
        if !self.nodes[v].in_gab {
            return;
        }
        self.nodes[v].in_gab = false;
        self.nodes[v].inbox.clear();
        let gid = self.nodes[v].group;
        self.groups.get_mut(&gid).expect("group").nodes.remove(&(v as NodeId));
        // Its broadcasts nobody got yet: a suffix is lost for everyone.
        let mut ids: BTreeSet<u64> = BTreeSet::new();
        for n in &self.nodes {
            for d in &n.inbox {
                if let Kind::Msg { from, id, .. } = d.kind {
                    if from as usize == v {
                        ids.insert(id);
                    }
                }
            }
        }
        let first_got = ids.iter().rposition(|id| self.got.contains_key(id)).map_or(0, |p| p + 1);
        let ids: Vec<u64> = ids.into_iter().skip(first_got).collect();
        // GAB is FIFO per sender: what follows a message someone got may be lost.
        let keep = self.rng.below(ids.len() as u64 + 1) as usize;
        let lost: BTreeSet<u64> = ids.into_iter().skip(keep).collect();
        if !lost.is_empty() {
            self.log(format!("n{v}'s undelivered messages {lost:?} are lost"));
            self.stats.dropped_msgs += lost.len() as u64;
            for n in &mut self.nodes {
                n.inbox.retain(|d| !matches!(d.kind, Kind::Msg { id, .. } if lost.contains(&id)));
            }
        }
        let t = self.now + self.detect();
        self.at(t, Sched::SeqMembership(gid));
    }

    /// Split `gid` (the largest group if None) into `k` parts.
    fn split(&mut self, gid: Option<u32>, k: usize) {
        let largest = self.groups.iter().max_by_key(|(&id, g)| (g.nodes.len(), std::cmp::Reverse(id))).map(|(&id, _)| id);
        let Some(gid) = gid.or(largest) else { return };
        let mut nodes: Vec<NodeId> = self.groups[&gid].nodes.iter().copied().collect();
        if nodes.len() < 2 {
            return;
        }
        let k = k.min(nodes.len());
        for i in (1..nodes.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            nodes.swap(i, j);
        }
        let mut parts: Vec<BTreeSet<NodeId>> = nodes[..k].iter().map(|&n| [n].into()).collect();
        for &n in &nodes[k..] {
            let p = self.rng.below(k as u64) as usize;
            parts[p].insert(n);
        }
        // Three partitions racing at once: any two may knock out one disk
        // each, no winner is then a fair outcome.
        let racing = self.nodes.iter().filter(|n| n.runs() && n.f.holding()).count() > 0;
        if k > 2 || racing {
            self.clean = false;
        }
        // A partition that won an earlier race lost its keys on the disks
        // the loser got to first; it registers them again after its
        // verdict, but a split before that (or a failed disk) may leave
        // its halves splitting the disks left so that neither wins.
        let missing: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&n| self.coord.iter().any(|d| !d.read_keys().contains(&Key::coordinator(CLUSTER, n))))
            .collect();
        if !missing.is_empty() {
            self.clean = false;
            self.stats.degraded_splits += 1;
            self.log(format!("nodes {missing:?} lack their key on some coordinator disk: a winner may not exist"));
        }
        self.groups.remove(&gid);
        let mut new = Vec::new();
        for part in &parts {
            let id = self.next_gid;
            self.next_gid += 1;
            for &n in part {
                self.nodes[n as usize].group = id;
            }
            self.groups.insert(id, Group { nodes: part.clone(), last: None });
            new.push(id);
        }
        let desc: Vec<String> = parts.iter().map(set).collect();
        self.log(format!("GAB group {gid} SPLITS into {}", desc.join(" | ")));
        if self.first_split.is_none() {
            let w = parts.iter().map(|p| (p.clone(), p.iter().map(|&n| u64::from(self.nodes[n as usize].f.config().weight)).sum())).collect();
            self.first_split = Some(w);
        }
        // The old group's sequence that no one of a new group got yet:
        // the new group may miss an end of it (messages of the other side
        // and old memberships), all its members the same end. Its own
        // members' messages reach it.
        for (pi, part) in parts.iter().enumerate() {
            let done = part.iter().map(|&m| self.nodes[m as usize].last_ev).max().unwrap_or(0);
            let mut tail: BTreeMap<u64, bool> = BTreeMap::new();
            for &m in part {
                for d in &self.nodes[m as usize].inbox {
                    if d.ev > done {
                        let ours = matches!(d.kind, Kind::Msg { from, .. } if part.contains(&from));
                        tail.insert(d.ev, !ours);
                    }
                }
            }
            let from = tail.values().rposition(|&droppable| !droppable).map_or(0, |p| p + 1);
            let droppable: Vec<u64> = tail.keys().copied().skip(from).collect();
            let keep = self.rng.below(droppable.len() as u64 + 1) as usize;
            let lost: BTreeSet<u64> = droppable.into_iter().skip(keep).collect();
            if !lost.is_empty() {
                self.log(format!("events {lost:?} of the old group do not reach {}", set(part)));
                self.stats.dropped_msgs += lost.len() as u64;
                for &m in part {
                    self.nodes[m as usize].inbox.retain(|d| !lost.contains(&d.ev));
                }
            }
            let t = self.now + self.detect();
            self.at(t, Sched::SeqMembership(new[pi]));
        }
    }

    fn data_disks_with(&self, n: NodeId) -> Vec<usize> {
        let k = Key::data(CLUSTER, n);
        (0..self.data.len()).filter(|&d| self.data[d].read_keys().contains(&k)).collect()
    }

    /// Invariants 1 and 2, after every step.
    fn check(&self) -> Result<(), String> {
        for x in &self.nodes {
            if x.halted && x.f.halted().is_none() {
                return Err(format!("node {} said Halt but its fencer is not halted any more", x.id));
            }
            if !x.active() {
                continue;
            }
            for y in x.excluded() {
                if x.clean.contains(&y) {
                    continue;
                }
                let on = self.data_disks_with(y);
                if !on.is_empty() {
                    return Err(format!(
                        "SAFETY: node {} is active with membership {} that excludes node {y}, but node {y}'s data key is still on data disk(s) {on:?} (node {y}: {:?}, halted {})",
                        x.id,
                        set(x.f.members()),
                        self.nodes[y as usize].state,
                        self.nodes[y as usize].halted
                    ));
                }
                let yn = &self.nodes[y as usize];
                if yn.active() && yn.excluded().contains(&x.id) && !yn.clean.contains(&x.id) && !self.data_disks_with(x.id).is_empty() {
                    return Err(format!("SPLIT BRAIN: nodes {} and {y} are both active, each without the other", x.id));
                }
            }
        }
        Ok(())
    }

    /// Invariants 4 and 5, at quiescence.
    fn check_end(&mut self) -> Result<(), String> {
        for n in &self.nodes {
            if n.state != State::Live || n.halted {
                continue;
            }
            if n.leaving {
                return Err(format!("node {} said it was leaving and never left", n.id));
            }
            if !n.active() {
                return Err(format!(
                    "node {} holds forever: pending {}, racer {:?}, members {}",
                    n.id,
                    set(n.f.pending()),
                    n.f.racer(),
                    set(n.f.members())
                ));
            }
        }
        let active: BTreeSet<NodeId> = self.nodes.iter().filter(|n| n.active()).map(|n| n.id).collect();
        let active_groups: BTreeSet<u32> = active.iter().map(|&n| self.nodes[n as usize].group).collect();
        if !active.is_empty() {
            self.stats.runs_with_winner += 1;
        }
        if active_groups.len() > 1 {
            return Err(format!("SPLIT BRAIN at the end: active nodes {} in groups {active_groups:?}", set(&active)));
        }
        self.log(format!("end: active {}, clean run {}", set(&active), self.clean));
        if self.clean {
            // Each race had a winner: whoever halted was fenced out by one.
            self.stats.checked_one += 1;
            // (A leaving node left alone races without its keys and halts:
            // it was going anyway.)
            let halted: BTreeSet<NodeId> = self.nodes.iter().filter(|n| n.halted && !n.leaving).map(|n| n.id).collect();
            let unfenced: BTreeSet<NodeId> = halted.difference(&self.fenced_out).copied().collect();
            if !unfenced.is_empty() {
                return Err(format!(
                    "nothing failed, no racer died, at most two partitions raced, yet nodes {} halted without a winner fencing them out (winners fenced out {})",
                    set(&unfenced),
                    set(&self.fenced_out)
                ));
            }
            // Without crashes or leaves someone survives.
            if !self.crashed_any && self.stats.clean_leaves == 0 && active.is_empty() {
                return Err("nothing failed, crashed or left, at most two partitions raced: yet no partition is active".into());
            }
        }
        if self.p.preferred && self.clean {
            if let Some(parts) = &self.first_split {
                if parts.len() == 2 && parts[0].1 != parts[1].1 {
                    self.stats.checked_preferred += 1;
                    let heavy = if parts[0].1 > parts[1].1 { &parts[0].0 } else { &parts[1].0 };
                    if active.is_empty() || !active.is_subset(heavy) {
                        return Err(format!(
                            "preferred fencing: the heavier partition {} should have won ({:?}), active {}",
                            set(heavy),
                            parts.iter().map(|(p, w)| (set(p), *w)).collect::<Vec<_>>(),
                            set(&active)
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn sweep(name: &str, p: Params, check: impl Fn(&Stats, usize)) {
    let started = std::time::Instant::now();
    let seeds = llt::sim::seeds_from_env(200);
    let mut failures = Vec::new();
    let mut total = Stats::default();
    let show = std::env::var_os("SIM_TRACE").is_some();
    for &seed in &seeds {
        match Sim::new(seed, p).run() {
            Ok((s, trace)) => {
                if show {
                    eprintln!("{trace}");
                }
                total.add(&s)
            }
            Err(e) => failures.push((seed, e)),
        }
    }
    eprintln!("{name}: {} seeds in {:.2} s: {total:?}", seeds.len(), started.elapsed().as_secs_f64());
    if let Some((seed, e)) = failures.first() {
        let all: Vec<String> = failures.iter().take(20).map(|(s, e)| format!("seed {s}: {}", e.lines().next().unwrap_or(""))).collect();
        panic!(
            "{name}: {} of {} seeds fail:\n{}\n\nfirst failure, seed {seed} (replay: SIM_SEED={seed} cargo test -p fencing --test member_sim {name}):\n{e}",
            failures.len(),
            seeds.len(),
            all.join("\n")
        );
    }
    // How much the runs exercised (not for a replay of a few seeds).
    if seeds.len() >= 100 {
        check(&total, seeds.len());
    }
}

fn at_ms(rng: &mut Rng, lo: u64, hi: u64) -> Time {
    Time::from_millis(lo + rng.below(hi - lo + 1))
}

fn plan_two_way(r: &mut Rng) -> Vec<(Time, Gev)> {
    let t = at_ms(r, 1000, 2000);
    let mut v = vec![(t, Gev::Split(2))];
    if r.chance(50) {
        // Once the first race is long over.
        v.push((t + Dur::from_millis(5000 + r.below(3000)), Gev::Split(2)));
    }
    v
}

fn plan_three_way(r: &mut Rng) -> Vec<(Time, Gev)> {
    let mut t = at_ms(r, 1000, 2000);
    let mut v = Vec::new();
    for _ in 0..1 + r.below(3) {
        let g = match r.below(10) {
            0..=2 => Gev::Crash,
            3 => Gev::CrashAtVerdict,
            4 => Gev::SplitAtVerdict,
            _ => Gev::Split(2 + r.below(2) as usize),
        };
        v.push((t, g));
        t = t + Dur::from_millis(r.below(1000));
    }
    v
}

fn plan_one_split(r: &mut Rng) -> Vec<(Time, Gev)> {
    vec![(at_ms(r, 1000, 2000), Gev::Split(2))]
}

fn plan_racer_dies(r: &mut Rng) -> Vec<(Time, Gev)> {
    let t = at_ms(r, 1000, 2000);
    let g = match r.below(4) {
        0 | 1 => Gev::CrashRacer,
        2 => Gev::CrashAtVerdict,
        _ => Gev::FreezeRacer,
    };
    // Armed before the split for the verdict of its race.
    let after = if g == Gev::CrashAtVerdict { Dur(0) } else { Dur::from_millis(r.below(1200)) };
    vec![(t, Gev::Split(2 + r.below(2) as usize)), (t + after, g)]
}

fn plan_leaves(r: &mut Rng) -> Vec<(Time, Gev)> {
    let mut t = at_ms(r, 1000, 2000);
    let mut v = vec![(t, Gev::Leave)];
    if r.chance(50) {
        // A node leaves while a crash is being detected: the crash may
        // come through port b before or after its `Leaving`.
        v.insert(0, (t - Dur::from_millis(r.below(450)), Gev::Crash));
    }
    for _ in 0..1 + r.below(2) {
        t = t + Dur::from_millis(r.below(600));
        let g = match r.below(4) {
            0 | 1 => Gev::Crash,
            2 => Gev::Leave,
            _ => Gev::Split(2),
        };
        v.push((t, g));
    }
    v
}

const BASE: Params =
    Params { plan: plan_two_way, fail_pct: 0, weights_pct: 50, preferred: false, detect_ms: (50, 400) };

/// One split in two (half of the runs: a second one of the winners once
/// the first race is over), nothing fails: one side wins, ejects the
/// other from the data disks, the other halts.
#[test]
fn two_way_splits() {
    sweep("two_way_splits", BASE, |s, seeds| {
        assert!(s.checked_one + s.degraded_splits >= seeds as u64, "every run is clean: {s:?}");
        assert!(s.reregistered > 0, "winners put their keys back: {s:?}");
        assert!(s.lost > 0 && s.ejected > 0 && s.halts > 0, "{s:?}");
    });
}

/// One to three events close together, during races: splits in two or
/// three, crashes, a crash or split while a verdict is on its way.
#[test]
fn three_way_splits_and_crashes() {
    sweep("three_way_splits_and_crashes", Params { plan: plan_three_way, ..BASE }, |s, _| {
        assert!(s.won > 0 && s.lost > 0 && s.successor_races > 0 && s.dropped_msgs > 0 && s.agreements > 0, "{s:?}");
    });
}

/// Random node weights, one split in two, detection faster than the
/// preferred delay: the heavier side wins.
#[test]
fn preferred_fencing_heavier_wins() {
    sweep("preferred_fencing_heavier_wins", Params { plan: plan_one_split, preferred: true, detect_ms: (20, 200), ..BASE }, |s, seeds| {
        assert!(s.checked_preferred as usize > seeds / 2, "too few runs with unequal weights: {s:?}");
    });
}

/// A split, then the racer of one side crashes during its race, crashes
/// while its verdict is on its way, or hangs (GAB still counts it: its
/// partition halts on the verdict timeout).
#[test]
fn racer_dies_mid_race() {
    sweep("racer_dies_mid_race", Params { plan: plan_racer_dies, ..BASE }, |s, _| {
        assert!(s.racer_crashes > 0 && s.successor_races > 0 && s.timeout_halts > 0, "{s:?}");
    });
}

/// Coordinator operations fail (10%). Data disk ejections never fail
/// here: the fencer releases after a failed ejection all the same, and
/// the ejected node may still write (invariant 1 trips at once).
#[test]
fn disk_failures_and_crashes() {
    sweep("disk_failures_and_crashes", Params { plan: plan_three_way, fail_pct: 10, ..BASE }, |s, _| {
        assert!(s.won > 0 && s.lost > 0, "{s:?}");
    });
}

/// `vxfenconfig -U` on an active node, with crashes being detected around
/// it, more leaves and splits.
#[test]
fn clean_leaves_and_crashes() {
    sweep("clean_leaves_and_crashes", Params { plan: plan_leaves, ..BASE }, |s, _| {
        assert!(s.clean_leaves > 0 && s.left_cleanly_notices > 0 && s.races > 0, "{s:?}");
    });
}

// ---- The fencer alone, step by step. ----

fn nodes(v: &[NodeId]) -> BTreeSet<NodeId> {
    v.iter().copied().collect()
}

fn fencer(me: NodeId) -> Fencer {
    Fencer::new(FencerConfig::new(me, CLUSTER, 3, 1))
}

fn drain(f: &mut Fencer, now: Time) -> Vec<Action> {
    std::iter::from_fn(|| f.poll(now)).collect()
}

#[test]
fn a_joining_node_does_not_race_for_nodes_it_never_saw() {
    let t = Time::from_millis(10);
    // Node 0 saw node 3 go and races for it.
    let mut old = fencer(0);
    old.on_membership(t, &nodes(&[0, 1, 2, 3]));
    drain(&mut old, t);
    old.on_membership(t, &nodes(&[0, 1, 2]));
    assert_eq!(old.pending(), &nodes(&[3]));
    assert!(drain(&mut old, t).iter().any(|a| matches!(a, Action::Notice(Notice::RaceStarted { .. }))));
    // Node 5 joins meanwhile: its first membership makes nothing pending.
    let mut new = fencer(5);
    new.on_membership(t, &nodes(&[0, 1, 2, 5]));
    assert!(new.pending().is_empty() && !new.holding() && new.racer().is_none());
    assert_eq!(drain(&mut new, t), vec![Action::Broadcast(Msg::Hello { weight: 1 })]);
    // Node 0 says hello to it and keeps racing for node 3 alone.
    old.on_membership(t, &nodes(&[0, 1, 2, 5]));
    assert_eq!(old.pending(), &nodes(&[3]));
    assert_eq!(old.racer(), Some(0));
    let acts = drain(&mut old, t);
    assert!(acts.contains(&Action::Broadcast(Msg::Hello { weight: 1 })), "{acts:?}");
    assert!(!acts.iter().any(|a| matches!(a, Action::Notice(Notice::RaceStarted { .. }))), "{acts:?}");
}

#[test]
fn a_leaving_node_causes_no_race() {
    let t = Time::from_millis(10);
    let mut f = fencer(1);
    f.on_membership(t, &nodes(&[0, 1, 2]));
    drain(&mut f, t);
    f.on_message(2, Msg::Leaving);
    f.on_membership(t, &nodes(&[0, 1]));
    assert!(!f.holding() && f.pending().is_empty());
    assert_eq!(drain(&mut f, t), vec![Action::Notice(Notice::LeftCleanly { nodes: nodes(&[2]) })]);
    // Its own Leaving back from GAB: port b may close.
    f.leave();
    assert_eq!(drain(&mut f, t), vec![Action::Broadcast(Msg::Leaving)]);
    f.on_message(1, Msg::Leaving);
    assert_eq!(drain(&mut f, t), vec![Action::ReadyToLeave]);
    // A node that did not say so is raced for.
    f.on_membership(t, &nodes(&[1]));
    assert!(f.holding());
    assert_eq!(f.pending(), &nodes(&[0]));
    assert_eq!(f.racer(), Some(1));
}

#[test]
fn a_leaving_node_is_no_new_racer() {
    let t = Time::from_millis(10);
    // Node 0 (the lowest) said it is leaving, then node 2 crashes: node 1
    // races, not node 0, whose keys may be gone already.
    let mut f1 = fencer(1);
    let mut f0 = fencer(0);
    for f in [&mut f0, &mut f1] {
        f.on_membership(t, &nodes(&[0, 1, 2]));
        drain(f, t);
    }
    f0.leave();
    assert_eq!(drain(&mut f0, t), vec![Action::Broadcast(Msg::Leaving)]);
    f1.on_message(0, Msg::Leaving);
    f0.on_message(0, Msg::Leaving);
    assert_eq!(drain(&mut f0, t), vec![Action::ReadyToLeave]);
    f1.on_membership(t, &nodes(&[0, 1]));
    f0.on_membership(t, &nodes(&[0, 1]));
    assert_eq!((f0.racer(), f1.racer()), (Some(1), Some(1)));
    assert!(matches!(drain(&mut f1, t).first(), Some(Action::Notice(Notice::RaceStarted { .. }))));
    assert_eq!(drain(&mut f0, t), vec![Action::Notice(Notice::Waiting { racer: 1, departed: nodes(&[2]) })]);
    // Left alone, it is the racer all the same.
    let mut f = fencer(0);
    f.on_membership(t, &nodes(&[0, 1]));
    f.on_message(0, Msg::Leaving);
    f.on_membership(t, &nodes(&[0]));
    assert_eq!(f.racer(), Some(0));
}

#[test]
fn a_racer_that_is_leaving_keeps_its_keys_until_the_race_is_over() {
    let t = Time::from_millis(10);
    let mut f = fencer(0);
    f.on_membership(t, &nodes(&[0, 1, 2]));
    drain(&mut f, t);
    f.leave();
    drain(&mut f, t);
    // Node 2's crash comes through port b before our own `Leaving`.
    f.on_membership(t, &nodes(&[0, 1]));
    assert_eq!(f.racer(), Some(0));
    let acts = drain(&mut f, t);
    assert!(matches!(acts.last(), Some(Action::Disk(DiskOp::Race(Op::ReadKeys { disk: 0 })))), "{acts:?}");
    f.on_message(0, Msg::Leaving);
    assert!(drain(&mut f, t).is_empty(), "no ReadyToLeave while racing");
    let k = |n| Key::coordinator(CLUSTER, n);
    let mut acts = Vec::new();
    for _ in 0..3 {
        f.complete(OpResult::Keys(vec![k(0), k(1), k(2)]));
        acts.extend(drain(&mut f, t));
        f.complete(OpResult::Done);
        acts.extend(drain(&mut f, t));
    }
    // The ejection from the data disk, then the verdict, the release and
    // only then port b may close.
    f.complete(OpResult::Done);
    acts.extend(drain(&mut f, t));
    let tail: Vec<&Action> = acts.iter().filter(|a| !matches!(a, Action::Notice(_) | Action::Disk(_))).collect();
    assert_eq!(
        tail,
        vec![
            &Action::Broadcast(Msg::Verdict { won: true, departed: vec![2], disks_won: 3, disks: 3 }),
            &Action::Release,
            &Action::ReadyToLeave
        ],
        "{acts:?}"
    );
}

#[test]
fn the_racer_changes_when_the_racer_departs_mid_race() {
    let t = Time::from_millis(10);
    let mut f = fencer(2);
    f.on_membership(t, &nodes(&[0, 1, 2, 3]));
    drain(&mut f, t);
    f.on_membership(t, &nodes(&[0, 1, 2]));
    assert_eq!(f.racer(), Some(0));
    assert_eq!(drain(&mut f, t), vec![Action::Notice(Notice::Waiting { racer: 0, departed: nodes(&[3]) })]);
    let t1 = Time::from_millis(500);
    f.on_membership(t1, &nodes(&[1, 2]));
    assert_eq!(f.racer(), Some(1));
    assert_eq!(drain(&mut f, t1), vec![Action::Notice(Notice::Waiting { racer: 1, departed: nodes(&[0, 3]) })]);
    assert_eq!(f.poll_timeout(), Some(t1 + f.config().verdict_timeout));
    let t2 = Time::from_millis(700);
    f.on_membership(t2, &nodes(&[2]));
    assert_eq!(f.racer(), Some(2));
    let acts = drain(&mut f, t2);
    // Lighter than the departed (1 against 3): it waits the preferred delay.
    let delay = f.config().preferred_delay;
    assert_eq!(
        acts,
        vec![Action::Notice(Notice::RaceStarted { departed: nodes(&[0, 1, 3]), delay, weight: 1, departed_weight: 3 })]
    );
    assert_eq!(f.poll_timeout(), Some(t2 + delay));
    f.handle_timeout(t2 + delay);
    assert_eq!(drain(&mut f, t2 + delay), vec![Action::Disk(DiskOp::Race(Op::ReadKeys { disk: 0 }))]);
    assert!(f.holding());
}

#[test]
fn verdicts_release_or_halt_the_members_and_silence_halts_them() {
    let t = Time::from_millis(10);
    let start = |me| {
        let mut f = fencer(me);
        f.on_membership(t, &nodes(&[0, 1, 2]));
        f.on_membership(t, &nodes(&[0, 1]));
        drain(&mut f, t);
        f
    };
    let mut f = start(1);
    f.on_message(0, Msg::Verdict { won: true, departed: vec![2], disks_won: 3, disks: 3 });
    assert_eq!(drain(&mut f, t), vec![Action::Release]);
    assert!(!f.holding() && f.halted().is_none() && f.poll_timeout().is_none());

    let mut f = start(1);
    f.on_message(0, Msg::Verdict { won: false, departed: vec![2], disks_won: 1, disks: 3 });
    assert!(matches!(drain(&mut f, t).as_slice(), [Action::Halt(_)]));
    assert!(f.halted().is_some() && !f.holding());
    // A halted node ignores everything after.
    f.on_membership(t, &nodes(&[1]));
    f.on_message(0, Msg::Verdict { won: true, departed: vec![2], disks_won: 3, disks: 3 });
    assert!(drain(&mut f, t).is_empty() && f.halted().is_some());

    let mut f = start(1);
    let deadline = f.poll_timeout().expect("waits for the verdict");
    f.handle_timeout(deadline - Dur(1));
    assert!(drain(&mut f, deadline).is_empty() && f.holding());
    f.handle_timeout(deadline);
    assert!(matches!(drain(&mut f, deadline).as_slice(), [Action::Halt(why)] if why.contains("no fencing verdict")));
}

#[test]
fn messages_survive_the_wire_and_trailing_bytes_are_refused() {
    for m in [Msg::Hello { weight: 7 }, Msg::Leaving, Msg::Verdict { won: true, departed: vec![1, 4], disks_won: 2, disks: 3 }] {
        let mut b = m.encode();
        assert_eq!(Msg::decode(&b), Ok(m));
        b.push(0);
        assert!(Msg::decode(&b).is_err());
    }
    assert!(Msg::decode(&[]).is_err());
}

#[test]
fn startup_check_refuses_strangers_and_accepts_foreign_and_data_keys() {
    let members = nodes(&[0, 1]);
    let k = |n| Key::coordinator(CLUSTER, n);
    let ok = vec![
        ("sdb".to_string(), vec![k(0), k(1), Key::coordinator(0x1234, 5), Key::data(CLUSTER, 3), Key(0x123abc)]),
        ("sdc".to_string(), vec![k(0)]),
    ];
    assert_eq!(startup_check(CLUSTER, &members, &ok), Ok(()));
    let bad = vec![("sdb".to_string(), vec![k(0), k(2)]), ("sdc".to_string(), vec![k(2), k(3)]), ("sdd".to_string(), vec![])];
    let e = startup_check(CLUSTER, &members, &bad).expect_err("node 2 and 3 are strangers");
    assert!(e.contains("node 2") && e.contains("sdb, sdc") && e.contains("node 3") && e.contains("vxfenclearpre"), "{e}");
    assert!(startup_check(CLUSTER, &BTreeSet::new(), &[("sdb".into(), vec![k(0)])]).is_err());
}
