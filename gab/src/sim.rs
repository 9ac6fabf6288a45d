//! Deterministic simulation of N GAB cores over a model of LLT, and the
//! checkers every GAB simulator shares ([`Checker`]).
//!
//! The model, per ordered pair of nodes x -> y: a reliable FIFO channel
//! while y's LLT reports x up; x can send only while its LLT reports y up.
//! A cut of x -> y shorter than `inact` only delays traffic; a longer one
//! makes y declare x down (y's LLT renews its session: whatever was in
//! flight either way is lost); if y -> x still works, x then sees y's new
//! session and LLT reports a reset to x (down, then up at once). Cuts are
//! symmetric or one-way. Crashes and restarts (a new incarnation). One seed
//! decides partitions, crashes, delays and traffic.
//!
//! Checkers, after every step: agreement (one member set per generation),
//! virtual synchrony (survivors moving from one view to the same next view
//! delivered the same broadcasts in it), total order (one order per view,
//! and one order among lives that went through view changes together; see
//! [`Checker::check_total_order`]), FIFO per sender, unicasts only at
//! their target, nothing delivered twice or before a node is in a view;
//! after healing, convergence to one view of every node, delivery of new
//! messages everywhere, and no message lost: every broadcast a node's
//! surviving life submitted was delivered back to it.

use crate::core::{Gab, GabConfig, GabEvent};
use crate::{Port, PORT_A};
use llt::core::Dest;
use llt::rng::Rng;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

const PORT_H: Port = b'h';

/// Payload of a simulated client message: global message number, the
/// sender's own counter (`u64::MAX - 1`: not in its FIFO sequence), then
/// `pad` bytes derived from the number (checked on delivery).
pub fn payload(n: u64, own: u64, pad: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + pad);
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(&own.to_be_bytes());
    for k in 0..pad {
        v.push((n as usize).wrapping_mul(31).wrapping_add(k) as u8);
    }
    v
}

/// Own counter of messages outside a sender's FIFO sequence.
pub const NO_FIFO: u64 = u64::MAX - 1;

/// A simulation reports its first violation only (later ones follow from
/// it), stamped with the simulated time.
pub(crate) fn keep_first_violation(slot: &mut Option<String>, now: Time, msg: String) {
    if slot.is_none() {
        *slot = Some(format!("t={}us: {msg}", now.as_micros()));
    }
}

/// GAB's guarantees as its clients see them, checked on the events of
/// every node. Shared by `gab::sim` (GAB over a model of LLT) and
/// `gab::lltsim` (GAB over real LLT cores). Every node registers the same
/// ports; message payloads come from [`payload`].
pub struct Checker {
    gens: BTreeMap<u64, BTreeSet<NodeId>>,
    view_of: Vec<Option<u64>>,
    /// Broadcasts delivered in the current view.
    delivered_in_view: Vec<BTreeSet<u64>>,
    transitions: BTreeMap<(u64, u64), (usize, BTreeSet<u64>)>,
    /// Each node's current life: the views it installed, in order, each
    /// with the broadcasts it delivered in it, in order (see
    /// [`Checker::check_total_order`]).
    history: Vec<Vec<(u64, Vec<u64>)>>,
    /// Histories of earlier lives of crashed nodes (each life is a member
    /// of its own).
    past_histories: Vec<Vec<(u64, Vec<u64>)>>,
    seen: Vec<BTreeSet<u64>>,
    fifo: Vec<BTreeMap<(NodeId, u32), u64>>,
    /// Target of each unicast.
    unicast_to: HashMap<u64, NodeId>,
    /// Broadcasts each node's current life submitted (GAB accepted them),
    /// with the event count at the time.
    accepted: Vec<BTreeMap<u64, u64>>,
    /// Events seen so far (orders submissions and view installs).
    events: u64,
    /// Event count when the node last took part in a split: a view
    /// without it was installed somewhere, or it installed a view leaving
    /// behind a member of its previous view that still runs.
    split_at: Vec<u64>,
    /// Each node's life (counts `new_life`) and whether it runs.
    life: Vec<u64>,
    alive: Vec<bool>,
    /// Lives of the members of each node's current view, as it installed it.
    view_lives: Vec<BTreeMap<NodeId, u64>>,
    pub delivered: u64,
    pub views: u64,
    trace: bool,
}

impl Checker {
    pub fn new(nodes: usize) -> Checker {
        Checker {
            gens: BTreeMap::new(),
            view_of: vec![None; nodes],
            delivered_in_view: vec![BTreeSet::new(); nodes],
            transitions: BTreeMap::new(),
            history: vec![Vec::new(); nodes],
            past_histories: Vec::new(),
            seen: vec![BTreeSet::new(); nodes],
            fifo: vec![BTreeMap::new(); nodes],
            unicast_to: HashMap::new(),
            accepted: vec![BTreeMap::new(); nodes],
            events: 0,
            split_at: vec![0; nodes],
            life: vec![0; nodes],
            alive: vec![false; nodes],
            view_lives: vec![BTreeMap::new(); nodes],
            delivered: 0,
            views: 0,
            trace: std::env::var_os("SIM_TRACE").is_some(),
        }
    }

    /// Node `i` crashed.
    pub fn crashed(&mut self, i: usize) {
        self.alive[i] = false;
    }

    /// Node `i` starts a new life: what the previous one delivered and
    /// submitted is gone with it.
    pub fn new_life(&mut self, i: usize) {
        self.life[i] += 1;
        self.alive[i] = true;
        self.view_lives[i].clear();
        self.view_of[i] = None;
        self.delivered_in_view[i].clear();
        let old = std::mem::take(&mut self.history[i]);
        if !old.is_empty() {
            self.past_histories.push(old);
        }
        self.seen[i].clear();
        self.fifo[i].clear();
        self.accepted[i].clear();
    }

    /// GAB accepted message `n` from node `i` (a broadcast, or a unicast to
    /// `unicast_to`).
    pub fn submitted(&mut self, i: usize, n: u64, unicast_to: Option<NodeId>) {
        match unicast_to {
            Some(t) => {
                self.unicast_to.insert(n, t);
            }
            None => {
                self.events += 1;
                self.accepted[i].insert(n, self.events);
            }
        }
    }

    /// Whether node `i`'s current life delivered message `n`.
    pub fn has_delivered(&self, i: usize, n: u64) -> bool {
        self.seen[i].contains(&n)
    }

    /// One event of node `i`'s GAB.
    pub fn on_event(&mut self, i: usize, now: Time, e: &GabEvent) -> Result<(), String> {
        self.events += 1;
        match e {
            GabEvent::Membership { port, gen, members, .. } if *port == PORT_A => {
                let gen = *gen;
                self.views += 1;
                for (k, at) in self.split_at.iter_mut().enumerate() {
                    if !members.contains(&(k as NodeId)) {
                        *at = self.events;
                    }
                }
                let left_running = self.view_lives[i]
                    .iter()
                    .any(|(&k, &life)| !members.contains(&k) && self.alive[k as usize] && self.life[k as usize] == life);
                if left_running {
                    self.split_at[i] = self.events;
                }
                self.view_lives[i] = members.iter().map(|&k| (k, self.life[k as usize])).collect();
                if self.trace {
                    eprintln!("{:>10} node {i}: port a gen {gen:x} members {members:?}", now.as_micros());
                }
                if let Some(known) = self.gens.get(&gen) {
                    if known != members {
                        return Err(format!("agreement: gen {gen:x}: node {i} has members {members:?}, others {known:?}"));
                    }
                } else {
                    self.gens.insert(gen, members.clone());
                }
                if !members.contains(&(i as NodeId)) {
                    return Err(format!("agreement: node {i} installed gen {gen:x} without itself"));
                }
                if let Some(old) = self.view_of[i] {
                    let set = std::mem::take(&mut self.delivered_in_view[i]);
                    match self.transitions.get(&(old, gen)) {
                        Some((other, s)) if *s != set => {
                            let only_me: Vec<_> = set.difference(s).take(5).collect();
                            let only_other: Vec<_> = s.difference(&set).take(5).collect();
                            return Err(format!(
                                "virtual synchrony: nodes {other} and {i} went {old:x} -> {gen:x} having delivered different messages in {old:x} (only {i}: {only_me:?}, only {other}: {only_other:?})"
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.transitions.insert((old, gen), (i, set));
                        }
                    }
                }
                self.view_of[i] = Some(gen);
                self.history[i].push((gen, Vec::new()));
            }
            GabEvent::Membership { .. } => {}
            GabEvent::Deliver { data, id, unicast, .. } => {
                self.delivered += 1;
                if self.view_of[i].is_none() {
                    return Err(format!("seeding: node {i} delivered before being in a view (not seeded)"));
                }
                if data.len() < 16 {
                    return Err(format!("integrity: node {i}: payload of {} bytes", data.len()));
                }
                let n = u64::from_be_bytes(data[..8].try_into().expect("8"));
                let own = u64::from_be_bytes(data[8..16].try_into().expect("8"));
                if *data != payload(n, own, data.len() - 16) {
                    return Err(format!("integrity: node {i}: message {n} corrupted"));
                }
                match (self.unicast_to.get(&n), unicast) {
                    (Some(&t), true) if t as usize == i => {}
                    (None, false) => {}
                    (t, u) => return Err(format!("unicast: node {i} delivered message {n} (unicast={u}) meant for {t:?}")),
                }
                if !self.seen[i].insert(n) {
                    return Err(format!("exactly once: node {i} delivered message {n} twice"));
                }
                if !unicast {
                    self.delivered_in_view[i].insert(n);
                    if let Some((_, msgs)) = self.history[i].last_mut() {
                        msgs.push(n);
                    }
                }
                let last = *self.fifo[i].entry((id.origin, id.inc)).or_insert(0);
                if own != NO_FIFO {
                    if own <= last {
                        return Err(format!("FIFO: node {i} delivered {own} from {} after {last}", id.origin));
                    }
                    self.fifo[i].insert((id.origin, id.inc), own);
                }
                if self.trace {
                    eprintln!("{:>10} node {i}: delivers {n} ({}/{}/{})", now.as_micros(), id.origin, id.inc, id.lseq);
                }
            }
        }
        Ok(())
    }

    /// Total order, as GAB promises it (non-uniform, as Corosync's agreed
    /// order): one order within a membership, and one order among the lives
    /// that survive membership changes together. Nothing is promised about
    /// the order seen by a life that did not survive a view (it crashed) or
    /// that was on the other side of a split: the leader delivers what it
    /// orders at once and members deliver on arrival, so such a life may
    /// have delivered messages that the survivors then resubmit and order
    /// differently in their next view (the HA layer fences the other side).
    /// What is lost with it is bounded by the other checks: virtual
    /// synchrony (survivors of a view change delivered the same broadcasts
    /// in the old view), FIFO per sender, exactly once, agreement, no loss.
    ///
    /// Checked over broadcasts (a unicast reaches one life only):
    /// (a) per view (generation), the sequences the lives that installed it
    ///     delivered in it are prefix-consistent: all are prefixes of the
    ///     longest (one sequence, the leader's, cut short where a life left);
    /// (b) for every two lives, over every run of consecutive views that
    ///     both installed consecutively (they went through each view change
    ///     of the run together), the messages both delivered within the run
    ///     come in the same relative order.
    pub fn check_total_order(&self) -> Result<(), String> {
        let lives: Vec<&Vec<(u64, Vec<u64>)>> = self.history.iter().chain(self.past_histories.iter()).collect();
        // (a) One sequence per view.
        let mut per_gen: BTreeMap<u64, Vec<(usize, &Vec<u64>)>> = BTreeMap::new();
        for (l, h) in lives.iter().enumerate() {
            for (gen, msgs) in h.iter() {
                per_gen.entry(*gen).or_default().push((l, msgs));
            }
        }
        for (gen, seqs) in &per_gen {
            let &(longest, full) = seqs.iter().max_by_key(|(_, s)| s.len()).expect("one life at least");
            for &(l, s) in seqs {
                if let Some(k) = s.iter().zip(full.iter()).position(|(a, b)| a != b) {
                    return Err(format!(
                        "total order: in gen {gen:x} life {l} delivered {} as its message #{k}, life {longest} delivered {}",
                        s[k], full[k]
                    ));
                }
            }
        }
        // (b) One order among lives that survived view changes together.
        for i in 0..lives.len() {
            for j in i + 1..lives.len() {
                let (a, b) = (lives[i], lives[j]);
                let pos_b: HashMap<u64, usize> = b.iter().enumerate().map(|(k, (g, _))| (*g, k)).collect();
                let mut ka = 0;
                while ka < a.len() {
                    let Some(&kb) = pos_b.get(&a[ka].0) else {
                        ka += 1;
                        continue;
                    };
                    let mut len = 1;
                    while ka + len < a.len() && kb + len < b.len() && a[ka + len].0 == b[kb + len].0 {
                        len += 1;
                    }
                    if len > 1 {
                        // (A run of one view is (a).)
                        let run_a = a[ka..ka + len].iter().flat_map(|(_, m)| m.iter().copied());
                        let pos: HashMap<u64, usize> =
                            b[kb..kb + len].iter().flat_map(|(_, m)| m.iter().copied()).enumerate().map(|(k, m)| (m, k)).collect();
                        let mut last: Option<(u64, usize)> = None;
                        for m in run_a {
                            let Some(&pj) = pos.get(&m) else { continue };
                            if let Some((prev, pprev)) = last {
                                if pj < pprev {
                                    return Err(format!(
                                        "total order: lives {i} and {j} went together through gens {:x}..={:x}; life {i} delivered {prev} before {m}, life {j} the other way round",
                                        a[ka].0,
                                        a[ka + len - 1].0
                                    ));
                                }
                            }
                            last = Some((m, pj));
                        }
                    }
                    ka += len;
                }
            }
        }
        Ok(())
    }

    /// After healing: every node in one view of all nodes.
    pub fn check_converged(&self, nodes: &[Option<&Gab>]) -> Result<(), String> {
        let all: BTreeSet<NodeId> = (0..nodes.len() as NodeId).collect();
        for (i, g) in nodes.iter().enumerate() {
            match g.and_then(|g| g.membership()) {
                Some((_, members)) if members == all => {}
                other => return Err(format!("convergence: after healing node {i} is in {other:?}, not one view of all")),
            }
        }
        Ok(())
    }

    /// Nothing lost: every broadcast a node's current life submitted was
    /// delivered back to it, unless the node took part in a split after
    /// the submission (call once the cluster has healed and settled). Nodes
    /// on two sides of a split may each miss what the other side delivered
    /// in their common old view, their own messages included: they did not
    /// survive that membership change together, and the exactly-once map
    /// skips those messages when they merge back.
    pub fn check_no_loss(&self) -> Result<(), String> {
        for (i, acc) in self.accepted.iter().enumerate() {
            let lost: Vec<u64> =
                acc.iter().filter(|&(n, &at)| at > self.split_at[i] && !self.seen[i].contains(n)).map(|(&n, _)| n).collect();
            if !lost.is_empty() {
                let some: Vec<u64> = lost.iter().copied().take(8).collect();
                return Err(format!(
                    "no loss: node {i} submitted {} broadcasts it never delivered, with no split since (GAB lost them), e.g. {some:?}",
                    lost.len()
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct GabSimParams {
    pub nodes: usize,
    pub duration: Dur,
    pub faults: bool,
    pub crashes: bool,
    /// One-way cuts besides symmetric ones.
    pub oneway: bool,
    /// LLT's peerinact in the model.
    pub inact: Dur,
    pub stable_timeout: Dur,
    pub send_every: Dur,
    /// Most delay of a message on a connected channel (at least 20 us).
    pub max_delay: Dur,
    /// Bound of the "no one left out" check: a node that runs and is
    /// connected both ways to every running node (no fault touches it)
    /// may be out of the view of another such node for at most this long
    /// (None: unchecked).
    pub left_out_bound: Option<Dur>,
}

impl Default for GabSimParams {
    fn default() -> Self {
        GabSimParams {
            nodes: 4,
            duration: Dur::from_millis(15_000),
            faults: true,
            crashes: true,
            oneway: true,
            inact: Dur::from_millis(500),
            stable_timeout: Dur::from_millis(300),
            send_every: Dur::from_millis(20),
            max_delay: Dur(420),
            // peerinact + stable timeout + propose timeout + 3 hellos.
            left_out_bound: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GabSimReport {
    pub seed: u64,
    pub steps: u64,
    pub delivered: u64,
    pub views: u64,
    pub violation: Option<String>,
    /// Longest time a clean node was out of another clean node's view
    /// (measured when `left_out_bound` is set).
    pub max_left_out: Dur,
}

/// The channel x -> y of the model.
#[derive(Default)]
struct Pair {
    /// Frames x -> y pass.
    connected: bool,
    /// Messages in flight, FIFO: (arrival time, bytes).
    queue: VecDeque<(Time, Vec<u8>)>,
    /// When the cut of x -> y began (None: connected).
    cut_since: Option<Time>,
    /// y's LLT reports x up.
    up: bool,
    /// y's LLT reports x up at this time (discovery after a heal or boot).
    up_at: Option<Time>,
    /// x renewed its LLT session (it declared y down) while y still sees
    /// x up: y's LLT reports a reset when x -> y frames next pass, at this
    /// time at the earliest.
    reset_at: Option<Time>,
}

#[derive(Clone, Copy)]
enum Fault {
    Cut(usize, usize),
    Heal(usize, usize),
    /// Only frames from the first node to the second are lost.
    CutOneWay(usize, usize),
    HealOneWay(usize, usize),
    Crash(usize),
    Restart(usize),
}

pub struct GabSim {
    p: GabSimParams,
    rng: Rng,
    now: Time,
    nodes: Vec<Option<Gab>>,
    incs: Vec<u32>,
    pairs: BTreeMap<(usize, usize), Pair>,
    faults: Vec<(Time, Fault)>,
    next_send: Vec<Time>,
    counter: u64,
    check: Checker,
    report: GabSimReport,
    trace: bool,
    /// Since when each node runs and is connected to every running node.
    clean_since: Vec<Option<Time>>,
    /// Since when y's view excludes x, both clean: (y, x) -> time.
    left_out_since: BTreeMap<(usize, usize), Time>,
    /// Each node's last view seen by the left-out check.
    last_view: Vec<Option<(u64, BTreeSet<NodeId>)>>,
}

impl GabSim {
    pub fn run(seed: u64, p: GabSimParams) -> GabSimReport {
        let mut sim = GabSim::new(seed, p);
        let end = Time(sim.p.duration.as_micros());
        sim.run_until(end, true);
        for i in 0..sim.nodes.len() {
            if sim.nodes[i].is_none() {
                sim.restart(i);
            }
        }
        for a in 0..sim.nodes.len() {
            for b in 0..sim.nodes.len() {
                if a != b {
                    sim.heal_one_way(a, b);
                }
            }
        }
        let settle = sim.now + sim.p.inact + sim.p.stable_timeout + Dur::from_millis(4000);
        sim.run_until(settle, false);
        let r = sim.check.check_converged(&sim.nodes.iter().map(|g| g.as_ref()).collect::<Vec<_>>());
        sim.record(r);
        // New traffic after healing must reach every node.
        let marks: Vec<u64> = (0..sim.nodes.len()).map(|_| { sim.counter += 1; sim.counter }).collect();
        for (i, &n) in marks.iter().enumerate() {
            let now = sim.now;
            if let Some(g) = sim.nodes[i].as_mut() {
                if g.broadcast(now, PORT_H, payload(n, NO_FIFO, 0)).is_ok() {
                    sim.check.submitted(i, n, None);
                }
            }
            sim.drain(i);
        }
        let fin = sim.now + Dur::from_millis(2000);
        sim.run_until(fin, false);
        for i in 0..sim.nodes.len() {
            let missing: Vec<u64> = marks.iter().copied().filter(|&m| !sim.check.has_delivered(i, m)).collect();
            if !missing.is_empty() {
                let st = sim.nodes[i].as_ref().map(|g| g.debug_state()).unwrap_or_default();
                sim.violation(format!("delivery after healing: node {i} never delivered {missing:?}: {st}"));
            }
        }
        let r = sim.check.check_no_loss();
        sim.record(r);
        let r = sim.check.check_total_order();
        sim.record(r);
        sim.report.delivered = sim.check.delivered;
        sim.report.views = sim.check.views;
        sim.report
    }

    fn new(seed: u64, p: GabSimParams) -> GabSim {
        let n = p.nodes;
        let mut sim = GabSim {
            rng: Rng::new(seed),
            now: Time::ZERO,
            nodes: (0..n).map(|_| None).collect(),
            incs: vec![0; n],
            pairs: BTreeMap::new(),
            faults: Vec::new(),
            next_send: vec![Time::from_millis(100); n],
            counter: 0,
            check: Checker::new(n),
            report: GabSimReport { seed, ..Default::default() },
            trace: std::env::var_os("SIM_TRACE").is_some(),
            clean_since: vec![None; n],
            left_out_since: BTreeMap::new(),
            last_view: vec![None; n],
            p,
        };
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    sim.pairs.insert((a, b), Pair { connected: true, ..Default::default() });
                }
            }
        }
        if sim.p.faults {
            sim.schedule();
        }
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    fn schedule(&mut self) {
        let end = self.p.duration.as_micros();
        let n = self.p.nodes as u64;
        for _ in 0..self.rng.below(6) + 1 {
            let (a, b) = (self.rng.below(n) as usize, self.rng.below(n) as usize);
            if a == b {
                continue;
            }
            let t = Time(1_000_000 + self.rng.below(end.saturating_sub(1_000_000)));
            self.faults.push((t, Fault::Cut(a, b)));
            // Short cuts (under inact) and long ones alike.
            self.faults.push((t + Dur(self.rng.below(3_000_000)), Fault::Heal(a, b)));
        }
        if self.p.oneway {
            for _ in 0..self.rng.below(4) {
                let (a, b) = (self.rng.below(n) as usize, self.rng.below(n) as usize);
                if a == b {
                    continue;
                }
                let t = Time(1_000_000 + self.rng.below(end.saturating_sub(1_000_000)));
                self.faults.push((t, Fault::CutOneWay(a, b)));
                self.faults.push((t + Dur(self.rng.below(3_000_000)), Fault::HealOneWay(a, b)));
            }
        }
        if self.p.crashes {
            for _ in 0..self.rng.below(3) {
                let i = self.rng.below(n) as usize;
                let t = Time(1_000_000 + self.rng.below(end.saturating_sub(1_000_000)));
                self.faults.push((t, Fault::Crash(i)));
                self.faults.push((t + Dur(100_000 + self.rng.below(2_000_000)), Fault::Restart(i)));
            }
        }
        self.faults.sort_by_key(|(t, _)| *t);
    }

    fn boot(&mut self, i: usize) {
        self.incs[i] += 1;
        let mut cfg = GabConfig::new(i as NodeId, self.p.nodes, self.incs[i]);
        cfg.stable_timeout = self.p.stable_timeout;
        let mut g = Gab::new(cfg, self.now);
        g.register(self.now, PORT_H);
        self.nodes[i] = Some(g);
        self.check.new_life(i);
        // LLT of every peer sees the newcomer after discovery; one that
        // still saw the previous life sees a reset.
        let at = self.now + Dur(20_000 + self.rng.below(30_000));
        for j in 0..self.nodes.len() {
            if j == i {
                continue;
            }
            for (x, y) in [(i, j), (j, i)] {
                let pr = self.pair(x, y);
                pr.queue.clear();
                pr.reset_at = None;
                if pr.up {
                    pr.up = false;
                    if let Some(g) = self.nodes[y].as_mut() {
                        g.llt_peer_down(self.now, x as NodeId);
                    }
                }
                if self.pair(x, y).connected {
                    self.pair(x, y).up_at = Some(at);
                }
            }
            self.drain(j);
        }
    }

    fn pair(&mut self, x: usize, y: usize) -> &mut Pair {
        self.pairs.get_mut(&(x, y)).expect("pair")
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].is_none() {
            self.boot(i);
        }
    }

    fn heal_one_way(&mut self, x: usize, y: usize) {
        let alive = self.nodes[x].is_some() && self.nodes[y].is_some();
        let now = self.now;
        let pr = self.pair(x, y);
        pr.connected = true;
        pr.cut_since = None;
        if !pr.up && pr.up_at.is_none() && alive {
            pr.up_at = Some(now + Dur(20_000));
        }
    }

    fn cut_one_way(&mut self, x: usize, y: usize) {
        let now = self.now;
        let pr = self.pair(x, y);
        if pr.connected {
            pr.connected = false;
            pr.cut_since = Some(now);
        }
    }

    fn record(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.violation(e);
        }
    }

    fn violation(&mut self, msg: String) {
        crate::sim::keep_first_violation(&mut self.report.violation, self.now, msg);
    }

    fn next_time(&self, traffic: bool) -> Option<Time> {
        let mut t: Option<Time> = None;
        let mut take = |x: Time| t = Some(t.map_or(x, |y: Time| y.min(x)));
        for (&(a, b), pr) in &self.pairs {
            // (What a sent before it saw b's new session waits for that.)
            if pr.connected && pr.up && self.pairs[&(b, a)].reset_at.is_none() {
                if let Some((at, _)) = pr.queue.front() {
                    take(*at);
                }
            }
            if let Some(c) = pr.cut_since {
                if pr.up {
                    take(c + self.p.inact);
                }
            }
            if let Some(u) = pr.up_at {
                take(u);
            }
            if let Some(r) = pr.reset_at {
                if pr.connected {
                    take(r);
                }
            }
        }
        for g in self.nodes.iter().flatten() {
            if let Some(d) = g.poll_timeout() {
                take(d);
            }
        }
        if let Some((at, _)) = self.faults.first() {
            take(*at);
        }
        if traffic {
            if let Some(s) = self.next_send.iter().min() {
                take(*s);
            }
        }
        t
    }

    fn run_until(&mut self, end: Time, traffic: bool) {
        let mut same = 0;
        while self.report.violation.is_none() {
            let Some(t) = self.next_time(traffic) else { break };
            if t > end {
                self.now = end;
                break;
            }
            same = if t <= self.now { same + 1 } else { 0 };
            if same > 100_000 {
                self.violation("busy loop: time does not advance".into());
                break;
            }
            self.now = self.now.max(t);
            self.step(traffic);
            self.report.steps += 1;
            self.check_left_out();
        }
    }

    /// y's LLT declares x down: y renews its session, so what was in
    /// flight either way is lost, and x, if it still sees y, will see a
    /// reset once y's frames reach it.
    fn declare_down(&mut self, x: usize, y: usize) {
        let now = self.now;
        let pr = self.pair(x, y);
        pr.up = false;
        pr.queue.clear();
        pr.reset_at = None;
        let delay = Dur(10_000 + self.rng.below(100_000));
        let back = self.pair(y, x);
        back.queue.clear();
        if back.up {
            back.reset_at = Some(now + delay);
        }
        if let Some(g) = self.nodes[y].as_mut() {
            g.llt_peer_down(now, x as NodeId);
        }
        self.drain(y);
    }

    /// b's LLT sees a's new session: it reports a reset (down, then up at
    /// once) and drops what b still had in flight to a (stale).
    fn reset(&mut self, a: usize, b: usize) {
        let now = self.now;
        let pr = self.pair(a, b);
        pr.reset_at = None;
        if !pr.up {
            return;
        }
        self.pair(b, a).queue.clear();
        if let Some(g) = self.nodes[b].as_mut() {
            g.llt_peer_down(now, a as NodeId);
            g.llt_peer_up(now, a as NodeId);
        }
        self.drain(b);
    }

    fn step(&mut self, traffic: bool) {
        let now = self.now;
        while self.faults.first().is_some_and(|(t, _)| *t <= now) {
            let (_, f) = self.faults.remove(0);
            self.apply(f);
        }
        let keys: Vec<(usize, usize)> = self.pairs.keys().copied().collect();
        for (a, b) in keys {
            // b's LLT declares a down after inact of cut.
            let pr = self.pair(a, b);
            if pr.up && pr.cut_since.is_some_and(|c| now >= c + self.p.inact) {
                self.declare_down(a, b);
            }
            // b sees a's new session (a heartbeat): LLT reports a reset.
            let pr = self.pair(a, b);
            if pr.connected && pr.reset_at.is_some_and(|r| r <= now) {
                self.reset(a, b);
            }
            let alive = self.nodes[a].is_some() && self.nodes[b].is_some();
            let pr = self.pair(a, b);
            if pr.up_at.is_some_and(|u| u <= now) {
                pr.up_at = None;
                if pr.connected && !pr.up && alive {
                    pr.up = true;
                    // b's channel to a starts afresh; what a sent while
                    // it saw b up (its current session) is delivered now.
                    self.pair(b, a).queue.clear();
                    if let Some(g) = self.nodes[b].as_mut() {
                        g.llt_peer_up(now, a as NodeId);
                    }
                    self.drain(b);
                }
            }
            loop {
                // What a sent before it saw b's new session is stale.
                if self.pairs[&(b, a)].reset_at.is_some() {
                    break;
                }
                let pr = self.pair(a, b);
                if !pr.connected || !pr.up || pr.queue.front().is_none_or(|(at, _)| *at > now) {
                    break;
                }
                // Everything queued since b renewed its session is of the
                // new session: b sees the reset before the first of it.
                if pr.reset_at.is_some() {
                    self.reset(a, b);
                }
                let (_, bytes) = self.pair(a, b).queue.pop_front().expect("front");
                if self.trace {
                    let kind = crate::msg::decode(&bytes).map(|m| format!("{m:?}").chars().take(90).collect::<String>());
                    eprintln!("{:>10} {a} -> {b}: {}", now.as_micros(), kind.unwrap_or_default());
                }
                if let Some(g) = self.nodes[b].as_mut() {
                    g.llt_deliver(now, a as NodeId, &bytes);
                }
                self.drain(b);
            }
        }
        for i in 0..self.nodes.len() {
            if let Some(g) = self.nodes[i].as_mut() {
                if g.poll_timeout().is_some_and(|t| t <= now) {
                    g.handle_timeout(now);
                }
            }
            self.drain(i);
        }
        if traffic {
            for i in 0..self.nodes.len() {
                if self.next_send[i] <= now {
                    self.next_send[i] = now + Dur(1 + self.rng.below(2 * self.p.send_every.as_micros()));
                    self.counter += 1;
                    let n = self.counter;
                    // One message in four is a unicast to another node.
                    let to = if self.rng.chance(25) { Some(self.rng.below(self.p.nodes as u64) as NodeId) } else { None };
                    if let Some(g) = self.nodes[i].as_mut() {
                        let r = match to {
                            Some(t) if t as usize != i => g.unicast(now, PORT_H, t, payload(n, n, 0)).map(|id| (id, Some(t))),
                            _ => g.broadcast(now, PORT_H, payload(n, n, 0)).map(|id| (id, None)),
                        };
                        if let Ok((id, t)) = r {
                            if self.trace {
                                eprintln!("{:>10} node {i}: submits message {n} as {id:?} to {t:?}", now.as_micros());
                            }
                            self.check.submitted(i, n, t);
                        }
                    }
                    self.drain(i);
                }
            }
        }
    }

    /// No one left out: y's view (if it has one) does not exclude x for
    /// longer than `left_out_bound` while nodes x and y both run and are
    /// connected both ways to every running node (links up, no cut, no
    /// reset pending).
    fn check_left_out(&mut self) {
        let Some(bound) = self.p.left_out_bound else { return };
        let n = self.nodes.len();
        for x in 0..n {
            let clean = self.nodes[x].is_some()
                && (0..n).filter(|&y| y != x && self.nodes[y].is_some()).all(|y| {
                    [(x, y), (y, x)].iter().all(|k| {
                        let pr = &self.pairs[k];
                        pr.connected && pr.up && pr.cut_since.is_none() && pr.up_at.is_none() && pr.reset_at.is_none()
                    })
                });
            if !clean {
                self.clean_since[x] = None;
            } else if self.clean_since[x].is_none() {
                self.clean_since[x] = Some(self.now);
            }
        }
        // No eviction: a view change must not drop a member that has been
        // clean (running, connected both ways to every running node) for
        // longer than a proposal can take: such a drop would make fencing
        // race against a healthy node.
        let grace = self.evict_grace();
        for y in 0..n {
            let view = self.nodes[y].as_ref().and_then(|g| g.membership());
            let before = std::mem::replace(&mut self.last_view[y], view.clone());
            let (Some((old_gen, old)), Some((gen, m))) = (before, view) else { continue };
            if old_gen == gen || self.clean_since[y].is_none_or(|t| self.now.since(t) < grace) {
                continue;
            }
            for &x in old.difference(&m) {
                if self.clean_since[x as usize].is_some_and(|t| self.now.since(t) >= grace) {
                    self.violation(format!(
                        "evicted: node {y} went from view {old_gen:x} {old:?} to {gen:x} {m:?}, dropping node {x}, though both ran and were connected to every running node"
                    ));
                    return;
                }
            }
        }
        for y in 0..n {
            let members = match (self.clean_since[y], self.nodes[y].as_ref().and_then(|g| g.membership())) {
                (Some(_), Some((gen, m))) => Some((gen, m)),
                _ => None,
            };
            for x in 0..n {
                let out = self.clean_since[x].is_some() && members.as_ref().is_some_and(|(_, m)| !m.contains(&(x as NodeId)));
                if !out {
                    if let Some(since) = self.left_out_since.remove(&(y, x)) {
                        if self.trace {
                            eprintln!("{:>10} check: node {x} back in node {y}'s view after {}us", self.now.as_micros(), self.now.since(since).as_micros());
                        }
                    }
                    continue;
                }
                let since = *self.left_out_since.entry((y, x)).or_insert(self.now);
                self.report.max_left_out = self.report.max_left_out.max(self.now.since(since));
                if self.now >= since + bound {
                    let (gen, m) = members.clone().expect("in a view");
                    let us = self.now.as_micros() - since.as_micros();
                    self.violation(format!(
                        "left out: node {y}'s view {gen:x} {m:?} has excluded node {x} for {us}us, though both run and are connected to every running node"
                    ));
                    return;
                }
            }
        }
    }

    /// How long a node must have been clean before dropping it from a
    /// view is wrong: a proposal started while it was not may conclude
    /// within the propose timeout (plus message delays).
    fn evict_grace(&self) -> Dur {
        GabConfig::new(0, 1, 0).propose_timeout + self.p.max_delay + self.p.max_delay + Dur::from_millis(100)
    }

    fn apply(&mut self, f: Fault) {
        if self.trace {
            eprintln!("{:>10} fault {}", self.now.as_micros(), match f {
                Fault::Cut(a, b) => format!("cut {a}-{b}"),
                Fault::Heal(a, b) => format!("heal {a}-{b}"),
                Fault::CutOneWay(a, b) => format!("cut {a}->{b}"),
                Fault::HealOneWay(a, b) => format!("heal {a}->{b}"),
                Fault::Crash(i) => format!("crash {i}"),
                Fault::Restart(i) => format!("restart {i}"),
            });
        }
        match f {
            Fault::Cut(a, b) => {
                self.cut_one_way(a, b);
                self.cut_one_way(b, a);
            }
            Fault::Heal(a, b) => {
                self.heal_one_way(a, b);
                self.heal_one_way(b, a);
            }
            Fault::CutOneWay(a, b) => self.cut_one_way(a, b),
            Fault::HealOneWay(a, b) => self.heal_one_way(a, b),
            Fault::Crash(i) => {
                self.nodes[i] = None;
                self.check.crashed(i);
                let now = self.now;
                for j in 0..self.nodes.len() {
                    if j != i {
                        for k in [(i, j), (j, i)] {
                            let pr = self.pair(k.0, k.1);
                            pr.queue.clear();
                            pr.up_at = None;
                            pr.reset_at = None;
                        }
                        // The peer's LLT notices after inact.
                        let pr = self.pair(i, j);
                        if pr.up && pr.cut_since.is_none() {
                            pr.cut_since = Some(now);
                        }
                        self.pair(j, i).up = false;
                    }
                }
            }
            Fault::Restart(i) => {
                // The crash's "cut" of its outgoing channels ends.
                for j in 0..self.nodes.len() {
                    if j != i {
                        let pr = self.pair(i, j);
                        if pr.connected {
                            pr.cut_since = None;
                        }
                    }
                }
                self.restart(i);
            }
        }
    }

    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        if let Some(g) = self.nodes[i].as_mut() {
            while let Some(o) = g.poll_send() {
                out.push(o);
            }
            while let Some(e) = g.poll_event() {
                events.push(e);
            }
        }
        for (dest, bytes) in out {
            let targets: Vec<usize> = match dest {
                Dest::Node(j) => vec![j as usize],
                Dest::All => (0..self.nodes.len()).filter(|&j| j != i).collect(),
            };
            for j in targets {
                // LLT only takes traffic for a peer it reports up.
                if !self.pairs.get(&(j, i)).is_some_and(|p| p.up) {
                    continue;
                }
                let now = self.now;
                let d = Dur(20 + self.rng.below(self.p.max_delay.as_micros().saturating_sub(20).max(1)));
                let pr = self.pair(i, j);
                let last = pr.queue.back().map_or(Time::ZERO, |(t, _)| *t);
                pr.queue.push_back(((now + d).max(last), bytes.clone()));
            }
        }
        for e in events {
            let r = self.check.on_event(i, self.now, &e);
            self.record(r);
        }
    }
}
