//! The coordinator-disk race of one partition, as a sans-IO state machine.
//!
//! After a membership change that drops nodes, the racer of each partition
//! (its lowest node id) goes through the coordinator disks in one fixed
//! order. On each disk it reads the keys: if its own key is gone, another
//! partition got there first and the disk is lost. Otherwise it preempts
//! and aborts every departed node's key that is still there; a
//! RESERVATION CONFLICT means its own key was removed meanwhile (lost). A
//! disk is won when the racer's key is there and no departed node's key
//! is. The partition survives when it wins a majority of the disks.
//!
//! Why at most one partition wins: nobody registers during a race, so a
//! removed key stays removed. A disk won by A at time t has A's key and
//! not B's; B's key cannot come back, so B cannot win that disk later,
//! and B cannot have won it earlier either (A's key would have been
//! removed). Each disk has at most one winner, and two partitions cannot
//! both hold a majority of an odd number of disks.
//!
//! Preferred fencing: the caller gives a delay (a lighter partition waits
//! before racing so the heavier one wins; [`preferred_delay`]).
//!
//! The race never does I/O: [`Race::poll`] says what to do next (an
//! operation on a disk, or wait until a time), the driver does it and
//! reports the outcome with [`Race::complete`]. The daemon drives it with
//! real SG_IO commands; the simulation with [`crate::memdisk`].

use crate::key::Key;
use llt::time::{Dur, Time};
use llt::NodeId;
use serde::Serialize;
use std::collections::BTreeSet;

/// One operation on coordinator disk `disk` (index in vxfentab order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    ReadKeys { disk: usize },
    /// PERSISTENT RESERVE OUT, PREEMPT (AND ABORT when `abort`): remove
    /// every registration with `victim`, acting as the holder of `own`.
    Preempt { disk: usize, own: Key, victim: Key, abort: bool },
    /// REGISTER AND IGNORE EXISTING KEY with `own`. Never part of a race
    /// (nobody registers while one runs): a partition that won puts its key
    /// back on the disks the losers took from it ([`crate::member`]).
    Register { disk: usize, own: Key },
}

impl Op {
    /// The coordinator disk (index in vxfentab order) it acts on.
    pub fn disk(&self) -> usize {
        match *self {
            Op::ReadKeys { disk } | Op::Preempt { disk, .. } | Op::Register { disk, .. } => disk,
        }
    }
}

/// What the driver observed for the operation it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Keys(Vec<Key>),
    Done,
    /// RESERVATION CONFLICT: our own key is not registered (any more).
    Conflict,
    /// Anything else: I/O error, timeout, sense data. The disk does not
    /// count for us.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Op(Op),
    /// Nothing to do before this time (preferred-fencing delay).
    WaitUntil(Time),
    /// Waiting for the result of the operation handed out last.
    Busy,
    Finished(Verdict),
}

/// How one disk went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DiskOutcome {
    Won,
    /// Our key was gone: another partition preempted us.
    Preempted,
    Failed(String),
    /// Not tried: the race was already decided.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub won: bool,
    pub disks: Vec<DiskOutcome>,
}

impl Verdict {
    pub fn disks_won(&self) -> usize {
        self.disks.iter().filter(|d| **d == DiskOutcome::Won).count()
    }
}

#[derive(Debug, Clone)]
pub struct RaceConfig {
    pub me: NodeId,
    pub cluster: u16,
    /// Number of coordinator disks (odd).
    pub disks: usize,
    /// Preferred fencing: wait this long before the first operation.
    pub delay: Dur,
    /// PREEMPT AND ABORT (as VCS) rather than plain PREEMPT. Coordinator
    /// disks carry no data I/O to abort (the SG_IO driver falls back to
    /// PREEMPT where the target refuses it). Linux LIO locks up when two
    /// racers preempt each other at once, either way (tests/scsi-lab/README).
    pub abort: bool,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the delay to pass.
    Delay(Time),
    /// Next thing to do on the current disk.
    Read,
    /// Victims still to preempt on the current disk.
    Preempt(Vec<Key>),
    /// An operation is out; the victims left after it.
    Pending(Op, Vec<Key>),
    Finished,
}

pub struct Race {
    cfg: RaceConfig,
    own: Key,
    victims: BTreeSet<Key>,
    disk: usize,
    phase: Phase,
    outcomes: Vec<DiskOutcome>,
    /// Keys read again on the current disk after a conflict.
    rereads: usize,
}

impl Race {
    /// Start racing for `cfg.me`'s partition against `departed` at `now`.
    pub fn new(cfg: RaceConfig, departed: &BTreeSet<NodeId>, now: Time) -> Race {
        let own = Key::coordinator(cfg.cluster, cfg.me);
        let victims = departed.iter().map(|&n| Key::coordinator(cfg.cluster, n)).collect();
        let phase = if cfg.delay > Dur(0) { Phase::Delay(now + cfg.delay) } else { Phase::Read };
        Race { own, victims, disk: 0, phase, outcomes: Vec::new(), rereads: 0, cfg }
    }

    pub fn poll(&mut self, now: Time) -> Next {
        loop {
            match &mut self.phase {
                Phase::Delay(until) => {
                    if now < *until {
                        return Next::WaitUntil(*until);
                    }
                    self.phase = Phase::Read;
                }
                Phase::Read => {
                    if let Some(v) = self.decided() {
                        return Next::Finished(v);
                    }
                    let op = Op::ReadKeys { disk: self.disk };
                    self.phase = Phase::Pending(op.clone(), Vec::new());
                    return Next::Op(op);
                }
                Phase::Preempt(left) => match left.pop() {
                    Some(victim) => {
                        let op = Op::Preempt { disk: self.disk, own: self.own, victim, abort: self.cfg.abort };
                        let left = std::mem::take(left);
                        self.phase = Phase::Pending(op.clone(), left);
                        return Next::Op(op);
                    }
                    None => self.disk_done(DiskOutcome::Won),
                },
                Phase::Pending(..) => return Next::Busy,
                Phase::Finished => return Next::Finished(self.verdict()),
            }
        }
    }

    /// The outcome of the operation `poll` handed out last.
    pub fn complete(&mut self, result: OpResult) {
        if !matches!(self.phase, Phase::Pending(..)) {
            return; // nothing was handed out: ignore
        }
        let Phase::Pending(op, left) = std::mem::replace(&mut self.phase, Phase::Read) else { return };
        match (op, result) {
            (Op::ReadKeys { .. }, OpResult::Keys(keys)) => {
                if !keys.contains(&self.own) {
                    self.disk_done(DiskOutcome::Preempted);
                } else {
                    let present: Vec<Key> = self.victims.iter().copied().filter(|v| keys.contains(v)).rev().collect();
                    self.phase = Phase::Preempt(present);
                }
            }
            (Op::Preempt { .. }, OpResult::Done) => self.phase = Phase::Preempt(left),
            // SPC-4 also answers RESERVATION CONFLICT when the victim's key
            // is no longer registered (another partition's racer removed
            // it): read again to tell that from losing our own key.
            (Op::Preempt { .. }, OpResult::Conflict) if self.rereads < self.victims.len() => {
                self.rereads += 1;
                self.phase = Phase::Read;
            }
            (_, OpResult::Conflict) => self.disk_done(DiskOutcome::Preempted),
            (_, OpResult::Failed(why)) => self.disk_done(DiskOutcome::Failed(why)),
            (_, other) => self.disk_done(DiskOutcome::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    fn disk_done(&mut self, outcome: DiskOutcome) {
        self.outcomes.push(outcome);
        self.disk += 1;
        self.rereads = 0;
        self.phase = if self.decided().is_some() { Phase::Finished } else { Phase::Read };
    }

    /// The verdict, once every disk is done or a majority can no longer
    /// be reached. A won majority does not stop the race: the departed
    /// are removed from every disk we can reach.
    fn decided(&self) -> Option<Verdict> {
        let lost = self.outcomes.iter().filter(|o| **o != DiskOutcome::Won).count();
        let majority = self.cfg.disks / 2 + 1;
        if self.disk >= self.cfg.disks || self.cfg.disks - lost < majority {
            Some(self.verdict())
        } else {
            None
        }
    }

    fn verdict(&self) -> Verdict {
        let mut disks = self.outcomes.clone();
        disks.resize(self.cfg.disks, DiskOutcome::Skipped);
        let won = disks.iter().filter(|d| **d == DiskOutcome::Won).count() > self.cfg.disks / 2;
        Verdict { won, disks }
    }
}

/// Preferred fencing: a partition lighter than the rest waits `base`
/// before racing, so a heavier one normally wins; equal weights race at
/// once (then the quicker racer wins).
pub fn preferred_delay(mine: u64, theirs: u64, base: Dur) -> Dur {
    if mine < theirs {
        base
    } else {
        Dur(0)
    }
}
