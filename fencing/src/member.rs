//! Port b: what one node's fencing does with GAB memberships, sans-IO.
//!
//! Every node with fencing configured holds GAB port b. When a port b
//! membership drops nodes (a crash or a split: GAB cannot tell them
//! apart), the departed become *pending*: until they are fenced, this
//! node *holds* the memberships and messages of the other ports (HAD on
//! port h must not take over a group whose old owner may still write).
//! The partition's racer (its lowest node when the race starts; the next
//! lowest if that one departs too) runs the coordinator-disk race
//! ([`crate::race`]) against every pending node:
//! - won: it ejects the departed from the data disks (PREEMPT AND ABORT of
//!   their data keys), puts its key back on the coordinator disks a losing
//!   racer took it from, then tells port b; every member releases its hold;
//! - lost: it tells port b and halts; every member halts: stops its
//!   cluster services, leaves GAB and stays out until an administrator
//!   restarts it.
//!
//! An ejection that fails (the data disk does not answer, our data key is
//! gone) is logged as an error and does not keep the hold: the coordinator
//! disks decided, the departed lost their keys there and halt if they are
//! still alive, and holding would stop the surviving partition's services
//! too. Who imports a data disk checks its keys again (as VCS's DiskGroup
//! agent does) and refuses while a departed node is still registered.
//!
//! A member that hears no verdict within `verdict_timeout` halts too: it
//! cannot know that its partition owns the disks. A node that leaves on
//! purpose (`vxfenconfig -U`) says so first and nobody races for it, nor
//! is it chosen as a new racer once its `Leaving` is through. Nodes
//! announce their weight when port b changes; the lighter partition
//! delays its race ([`race::preferred_delay`]).
//!
//! Every member of a partition sees the same port b memberships in the same
//! order (GAB's guarantee), so they agree on the pending set and on the
//! racer without asking each other.
//!
//! The core does no I/O: the host feeds it memberships, port b messages,
//! disk results and time, and carries out its [`Action`]s.

use crate::key::Key;
use crate::race::{self, DiskOutcome, Next, OpResult, Race, RaceConfig, Verdict};
use llt::time::{Dur, Time};
use llt::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A message on GAB port b.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Sent whenever port b gains a member: the sender's weight for
    /// preferred fencing.
    Hello { weight: u32 },
    /// `vxfenconfig -U`: the sender leaves on purpose and takes its keys
    /// away; nobody races for it.
    Leaving,
    /// The racer's verdict on the race against `departed`.
    Verdict { won: bool, departed: Vec<NodeId>, disks_won: u32, disks: u32 },
}

impl Msg {
    pub fn encode(&self) -> Vec<u8> {
        // Plain enums of integers: encoding cannot fail.
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Decode a port b message; trailing bytes are an error too.
    pub fn decode(bytes: &[u8]) -> Result<Msg, String> {
        let cfg = bincode::config::standard().with_limit::<4096>();
        match bincode::serde::decode_from_slice(bytes, cfg) {
            Ok((m, used)) if used == bytes.len() => Ok(m),
            Ok((_, used)) => Err(format!("{} bytes after a {used}-byte port b message", bytes.len() - used)),
            Err(e) => Err(format!("undecodable port b message: {e}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FencerConfig {
    pub me: NodeId,
    pub cluster: u16,
    /// Coordinator disks (vxfentab); 0 means fencing is disabled: port b
    /// membership is kept, nobody races or holds.
    pub coord_disks: usize,
    /// Data disks (vxfendata) the winner ejects the departed from.
    pub data_disks: usize,
    /// PREEMPT AND ABORT on coordinator disks (as VCS) or plain PREEMPT.
    pub abort: bool,
    pub weight: u32,
    /// How long the lighter partition waits before racing.
    pub preferred_delay: Dur,
    /// How long a member waits for its racer's verdict before halting.
    pub verdict_timeout: Dur,
}

impl FencerConfig {
    pub fn new(me: NodeId, cluster: u16, coord_disks: usize, data_disks: usize) -> FencerConfig {
        FencerConfig {
            me,
            cluster,
            coord_disks,
            data_disks,
            abort: true,
            weight: 1,
            preferred_delay: Dur::from_millis(1000),
            verdict_timeout: Dur::from_millis(60_000),
        }
    }
}

/// A disk operation for the host to carry out and report with
/// [`Fencer::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskOp {
    /// A step of the coordinator race.
    Race(race::Op),
    /// Remove `victim`'s registration from data disk `disk` (PREEMPT AND
    /// ABORT, Write Exclusive Registrants Only, acting as `own`); the
    /// victim's queued I/O is aborted and its next write is refused.
    Eject { disk: usize, own: Key, victim: Key },
}

/// What happened, for the host's log and `vxfenadm -d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    RaceStarted { departed: BTreeSet<NodeId>, delay: Dur, weight: u64, departed_weight: u64 },
    /// Another node races for this partition.
    Waiting { racer: NodeId, departed: BTreeSet<NodeId> },
    RaceDone { departed: BTreeSet<NodeId>, verdict: Verdict },
    Ejected { disk: usize, victim: NodeId, result: Result<(), String> },
    /// After a won race: our key was put back on a coordinator disk a
    /// losing racer had taken it from (else the next split might find no
    /// partition able to win a majority).
    Reregistered { disk: usize, result: Result<(), String> },
    /// ... and the departed node's key left there removed.
    Purged { disk: usize, victim: NodeId, result: Result<(), String> },
    /// Nodes that said they were leaving left: no race.
    LeftCleanly { nodes: BTreeSet<NodeId> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Disk(DiskOp),
    Broadcast(Msg),
    /// Every departed node is fenced: what was held for the other ports
    /// may go to their clients.
    Release,
    /// This partition lost (or heard no verdict): stop cluster services,
    /// leave GAB, do not come back until an administrator says so.
    Halt(String),
    /// Our own `Leaving` came back through GAB: every member has it, port
    /// b may close (and our keys go). Not before the departed pending then
    /// are fenced: we may be their racer.
    ReadyToLeave,
    Notice(Notice),
}

/// How the last race of this partition went (`vxfenadm -d`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRace {
    pub racer: NodeId,
    pub departed: Vec<NodeId>,
    pub won: bool,
    pub disks_won: u32,
    pub disks: u32,
}

struct RaceRun {
    race: Race,
    departed: BTreeSet<NodeId>,
    /// An operation is out with the host.
    out: bool,
    /// The pending set grew: start again once the operation is back.
    restart: bool,
    /// When the race asked to be polled again (preferred delay).
    wake: Option<Time>,
    /// Won: what is left to do before the verdict goes out (ejections
    /// from the data disks, then repairs of the coordinator disks).
    won: Option<(Verdict, VecDeque<FollowUp>)>,
    /// The follow-up that is out.
    following: Option<FollowUp>,
}

/// A disk operation after a won race, and what its outcome means.
#[derive(Debug, Clone)]
enum FollowUp {
    Eject { disk: usize, victim: NodeId, op: DiskOp },
    Reregister { disk: usize, op: DiskOp },
    Purge { disk: usize, victim: NodeId, op: DiskOp },
}

impl FollowUp {
    fn op(&self) -> &DiskOp {
        match self {
            FollowUp::Eject { op, .. } | FollowUp::Reregister { op, .. } | FollowUp::Purge { op, .. } => op,
        }
    }

    /// The notice for `result`, the outcome of [`FollowUp::op`].
    fn notice(self, result: OpResult) -> Notice {
        let text = |r: OpResult, conflict: &str| match r {
            OpResult::Done => Ok(()),
            OpResult::Conflict => Err(conflict.to_string()),
            OpResult::Failed(why) => Err(why),
            OpResult::Keys(_) => Err("unexpected answer".into()),
        };
        match self {
            // The disk thread reads the keys first: a conflict then means
            // our own data key is not there.
            FollowUp::Eject { disk, victim, .. } => {
                Notice::Ejected { disk, victim, result: text(result, "RESERVATION CONFLICT: our data key is not registered there") }
            }
            FollowUp::Reregister { disk, .. } => Notice::Reregistered { disk, result: text(result, "RESERVATION CONFLICT") },
            // A conflict: the key was gone already (or ours was taken
            // again by a racer still going; the next race sees to it).
            FollowUp::Purge { disk, victim, .. } => {
                let result = if result == OpResult::Conflict { Ok(()) } else { text(result, "") };
                Notice::Purged { disk, victim, result }
            }
        }
    }
}

pub struct Fencer {
    cfg: FencerConfig,
    joined: bool,
    members: BTreeSet<NodeId>,
    weights: BTreeMap<NodeId, u32>,
    /// Nodes whose `Leaving` came through port b (this one too): they may
    /// be removing their keys, so they do not race.
    leaving: BTreeSet<NodeId>,
    /// Our own `Leaving` came back while departed nodes were pending: port
    /// b may close (and our keys go) once they are fenced.
    leave_deferred: bool,
    pending: BTreeSet<NodeId>,
    racer: Option<NodeId>,
    run: Option<RaceRun>,
    wait_deadline: Option<Time>,
    halted: Option<String>,
    last: Option<LastRace>,
    actions: VecDeque<Action>,
}

impl Fencer {
    pub fn new(cfg: FencerConfig) -> Fencer {
        Fencer {
            cfg,
            joined: false,
            members: BTreeSet::new(),
            weights: BTreeMap::new(),
            leaving: BTreeSet::new(),
            leave_deferred: false,
            pending: BTreeSet::new(),
            racer: None,
            run: None,
            wait_deadline: None,
            halted: None,
            last: None,
            actions: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &FencerConfig {
        &self.cfg
    }

    fn enabled(&self) -> bool {
        self.cfg.coord_disks > 0
    }

    /// Port b members as this node last saw them (empty before it joins).
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    /// Departed nodes not fenced yet.
    pub fn pending(&self) -> &BTreeSet<NodeId> {
        &self.pending
    }

    /// The racer of the race in progress.
    pub fn racer(&self) -> Option<NodeId> {
        self.racer.filter(|_| !self.pending.is_empty())
    }

    /// While true the host holds what GAB gives the other ports.
    pub fn holding(&self) -> bool {
        self.halted.is_none() && !self.pending.is_empty()
    }

    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    pub fn last_race(&self) -> Option<&LastRace> {
        self.last.as_ref()
    }

    pub fn weight_of(&self, node: NodeId) -> u32 {
        self.weights.get(&node).copied().unwrap_or(1)
    }

    /// A port b membership from GAB.
    pub fn on_membership(&mut self, now: Time, members: &BTreeSet<NodeId>) {
        if self.halted.is_some() || !members.contains(&self.cfg.me) {
            return;
        }
        let gained = members.difference(&self.members).count() > 0;
        if gained {
            self.actions.push_back(Action::Broadcast(Msg::Hello { weight: self.cfg.weight }));
        }
        if !self.joined {
            // Nodes we never shared a membership with are not ours to fence.
            self.joined = true;
            self.members = members.clone();
            return;
        }
        let gone: BTreeSet<NodeId> = self.members.difference(members).copied().collect();
        self.members = members.clone();
        let clean: BTreeSet<NodeId> = gone.intersection(&self.leaving).copied().collect();
        self.leaving.retain(|n| !gone.contains(n));
        if !clean.is_empty() {
            self.actions.push_back(Action::Notice(Notice::LeftCleanly { nodes: clean.clone() }));
        }
        let departed: BTreeSet<NodeId> = gone.difference(&clean).copied().collect();
        if departed.is_empty() && self.pending.is_empty() {
            return;
        }
        if !self.enabled() {
            return;
        }
        self.pending.extend(departed.iter().copied());
        // The racer stays the racer while it is a member (a node joining
        // meanwhile never saw the departed and cannot race for them). A
        // node that is leaving is no new racer: its keys may be gone.
        if self.racer.is_none_or(|r| !members.contains(&r)) {
            self.racer = members.iter().find(|n| !self.leaving.contains(n)).or(members.first()).copied();
        }
        if self.racer == Some(self.cfg.me) {
            match self.run.as_mut() {
                Some(run) => run.restart |= !departed.is_empty(),
                None => self.start_race(now),
            }
        } else if !departed.is_empty() || self.wait_deadline.is_none() {
            self.wait_deadline = Some(now + self.cfg.verdict_timeout);
            let racer = self.racer.unwrap_or(self.cfg.me);
            self.actions.push_back(Action::Notice(Notice::Waiting { racer, departed: self.pending.clone() }));
        }
    }

    fn start_race(&mut self, now: Time) {
        let weight: u64 = self.members.iter().map(|&n| u64::from(self.weight_of(n))).sum();
        let departed_weight: u64 = self.pending.iter().map(|&n| u64::from(self.weight_of(n))).sum();
        let delay = race::preferred_delay(weight, departed_weight, self.cfg.preferred_delay);
        let rc = RaceConfig { me: self.cfg.me, cluster: self.cfg.cluster, disks: self.cfg.coord_disks, delay, abort: self.cfg.abort };
        let departed = self.pending.clone();
        self.actions.push_back(Action::Notice(Notice::RaceStarted { departed: departed.clone(), delay, weight, departed_weight }));
        self.run = Some(RaceRun { race: Race::new(rc, &departed, now), departed, out: false, restart: false, wake: None, won: None, following: None });
        self.wait_deadline = None;
    }

    /// A message GAB delivered on port b.
    pub fn on_message(&mut self, from: NodeId, msg: Msg) {
        if self.halted.is_some() {
            return;
        }
        match msg {
            Msg::Hello { weight } => {
                self.weights.insert(from, weight);
            }
            Msg::Leaving if from == self.cfg.me => {
                self.leaving.insert(from);
                // Racing or waiting for a verdict: the keys stay until the
                // departed are fenced.
                if self.pending.is_empty() {
                    self.actions.push_back(Action::ReadyToLeave);
                } else {
                    self.leave_deferred = true;
                }
            }
            Msg::Leaving => {
                self.leaving.insert(from);
            }
            // The racer acted on its own verdict when it had it.
            Msg::Verdict { .. } if from == self.cfg.me => {}
            Msg::Verdict { won, departed, disks_won, disks } => {
                self.last = Some(LastRace { racer: from, departed: departed.clone(), won, disks_won, disks });
                if won {
                    self.settle(&departed);
                } else {
                    self.halt(format!(
                        "this partition lost the fencing race: racer node {from} won {disks_won} of {disks} coordinator disks against nodes {}",
                        list(departed.iter())
                    ));
                }
            }
        }
    }

    /// The pending nodes in `departed` are fenced.
    fn settle(&mut self, departed: &[NodeId]) {
        let was = !self.pending.is_empty();
        self.pending.retain(|n| !departed.contains(n));
        if was && self.pending.is_empty() {
            self.wait_deadline = None;
            self.racer = None;
            self.actions.push_back(Action::Release);
            if std::mem::take(&mut self.leave_deferred) {
                self.actions.push_back(Action::ReadyToLeave);
            }
        }
    }

    fn halt(&mut self, why: String) {
        if self.halted.is_none() {
            self.halted = Some(why.clone());
            self.run = None;
            self.wait_deadline = None;
            self.actions.push_back(Action::Halt(why));
        }
    }

    /// `vxfenconfig -U`: tell port b before leaving.
    pub fn leave(&mut self) {
        self.actions.push_back(Action::Broadcast(Msg::Leaving));
    }

    /// The result of the [`DiskOp`] handed out last.
    pub fn complete(&mut self, result: OpResult) {
        let Some(run) = self.run.as_mut().filter(|r| r.out) else { return };
        run.out = false;
        match run.following.take() {
            // A follow-up is logged; it does not change the verdict (the
            // coordinator disks decided).
            Some(f) => self.actions.push_back(Action::Notice(f.notice(result))),
            None => run.race.complete(result),
        }
    }

    /// The next thing for the host to do.
    pub fn poll(&mut self, now: Time) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        self.drive(now);
        self.actions.pop_front()
    }

    fn drive(&mut self, now: Time) {
        loop {
            let Some(run) = self.run.as_mut() else { return };
            if run.out {
                return;
            }
            if run.restart {
                self.start_race(now);
                continue;
            }
            if let Some((verdict, follow)) = run.won.as_mut() {
                if let Some(f) = follow.pop_front() {
                    run.out = true;
                    self.actions.push_back(Action::Disk(f.op().clone()));
                    run.following = Some(f);
                    return;
                }
                let verdict = verdict.clone();
                let departed: Vec<NodeId> = run.departed.iter().copied().collect();
                self.run = None;
                self.finish(verdict, departed);
                return;
            }
            match run.race.poll(now) {
                Next::Op(op) => {
                    run.out = true;
                    run.wake = None;
                    self.actions.push_back(Action::Disk(DiskOp::Race(op)));
                    return;
                }
                Next::WaitUntil(t) => {
                    run.wake = Some(t);
                    return;
                }
                Next::Busy => return,
                Next::Finished(v) => {
                    self.actions.push_back(Action::Notice(Notice::RaceDone { departed: run.departed.clone(), verdict: v.clone() }));
                    if v.won {
                        let follow = follow_ups(&self.cfg, &run.departed, &v);
                        run.won = Some((v, follow));
                    } else {
                        let departed: Vec<NodeId> = run.departed.iter().copied().collect();
                        self.run = None;
                        self.finish(v, departed);
                        return;
                    }
                }
            }
        }
    }

    /// The racer's verdict: told to port b, acted on here at once.
    fn finish(&mut self, v: Verdict, departed: Vec<NodeId>) {
        let disks_won = v.disks_won() as u32;
        let disks = v.disks.len() as u32;
        self.actions.push_back(Action::Broadcast(Msg::Verdict { won: v.won, departed: departed.clone(), disks_won, disks }));
        self.last = Some(LastRace { racer: self.cfg.me, departed: departed.clone(), won: v.won, disks_won, disks });
        if v.won {
            self.settle(&departed);
        } else {
            self.halt(format!("this node lost the fencing race against nodes {}: won {disks_won} of {disks} coordinator disks", list(departed.iter())));
        }
    }

    /// When to call [`Fencer::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Time> {
        let wake = self.run.as_ref().and_then(|r| r.wake);
        [wake, self.wait_deadline].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Time) {
        if self.wait_deadline.is_some_and(|d| now >= d) {
            let racer = self.racer.map_or("?".to_string(), |r| r.to_string());
            self.halt(format!(
                "no fencing verdict from racer node {racer} within {} s: this node cannot know that its partition owns the disks",
                self.cfg.verdict_timeout.as_millis() / 1000
            ));
        }
        // A race waiting out its delay is polled again by `poll`.
    }
}

/// What a partition that won does before it tells its verdict: eject the
/// departed from every data disk (their writes stop there), then, on each
/// coordinator disk that was not won (a losing racer took our key, or the
/// disk failed), put our key back and remove the departed keys left there.
/// Without the repair the winners would hold fewer coordinator disks
/// after every close race, until a later split leaves no partition able to
/// win a majority. Safe: a partition that won a majority is the only one
/// that can, whatever registers now.
fn follow_ups(cfg: &FencerConfig, departed: &BTreeSet<NodeId>, v: &Verdict) -> VecDeque<FollowUp> {
    let (cluster, me) = (cfg.cluster, cfg.me);
    let own_data = Key::data(cluster, me);
    let own = Key::coordinator(cluster, me);
    let mut follow = VecDeque::new();
    for disk in 0..cfg.data_disks {
        for &victim in departed {
            follow.push_back(FollowUp::Eject { disk, victim, op: DiskOp::Eject { disk, own: own_data, victim: Key::data(cluster, victim) } });
        }
    }
    for (disk, outcome) in v.disks.iter().enumerate() {
        if *outcome == DiskOutcome::Won {
            continue;
        }
        follow.push_back(FollowUp::Reregister { disk, op: DiskOp::Race(race::Op::Register { disk, own }) });
        for &victim in departed {
            let op = DiskOp::Race(race::Op::Preempt { disk, own, victim: Key::coordinator(cluster, victim), abort: cfg.abort });
            follow.push_back(FollowUp::Purge { disk, victim, op });
        }
    }
    follow
}

/// "0,1,2".
pub fn list<'a>(nodes: impl Iterator<Item = &'a NodeId>) -> String {
    nodes.map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

/// The startup check of `vxfenconfig -c`: keys on the coordinator disks of
/// this cluster's nodes outside the GAB membership mean a split brain may
/// exist already (a partition fenced us out, or a node died with its key
/// in place). Each disk: its name and the keys read on it.
pub fn startup_check(cluster: u16, gab_members: &BTreeSet<NodeId>, disks: &[(String, Vec<Key>)]) -> Result<(), String> {
    let mut strangers: BTreeMap<NodeId, Vec<&str>> = BTreeMap::new();
    for (name, keys) in disks {
        for k in keys {
            if let crate::key::KeyOwner::Coordinator { cluster: c, node } = k.owner() {
                if c == cluster && !gab_members.contains(&node) {
                    strangers.entry(node).or_default().push(name);
                }
            }
        }
    }
    if strangers.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = strangers
        .iter()
        .map(|(n, on)| format!("node {n} ({} on {})", Key::coordinator(cluster, *n), on.join(", ")))
        .collect();
    Err(format!(
        "pre-existing split brain suspected: the coordinator disks hold keys of nodes that are not in the GAB membership ({}): {}. \
         If those nodes are really down, clear their keys with vxfenclearpre, then run vxfenconfig -c again",
        list(gab_members.iter()),
        found.join("; ")
    ))
}
