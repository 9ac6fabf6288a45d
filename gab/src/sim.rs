//! Deterministic simulation of N GAB cores over a model of LLT: per pair of
//! nodes a reliable FIFO channel while connected; a cut shorter than
//! `inact` only delays traffic, a longer one drops it and reports the peer
//! down to both ends; crashes and restarts (a new incarnation). One seed
//! decides partitions, crashes, delays and traffic.
//!
//! Checkers, after every step: agreement (one member set per generation),
//! virtual synchrony (survivors moving from one view to the same next view
//! delivered the same messages in it), total order (no two nodes deliver
//! two messages in opposite orders), FIFO per sender, nothing delivered
//! before a node is in a view; after healing, convergence to one view of
//! every node and delivery of new messages everywhere.

use crate::core::{Gab, GabConfig, GabEvent};
use crate::{Port, PORT_A};
use llt::core::Dest;
use llt::rng::Rng;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const PORT_H: Port = b'h';

#[derive(Debug, Clone)]
pub struct GabSimParams {
    pub nodes: usize,
    pub duration: Dur,
    pub faults: bool,
    pub crashes: bool,
    /// LLT's peerinact in the model.
    pub inact: Dur,
    pub stable_timeout: Dur,
    pub send_every: Dur,
}

impl Default for GabSimParams {
    fn default() -> Self {
        GabSimParams {
            nodes: 4,
            duration: Dur::from_millis(15_000),
            faults: true,
            crashes: true,
            inact: Dur::from_millis(500),
            stable_timeout: Dur::from_millis(300),
            send_every: Dur::from_millis(20),
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
}

#[derive(Default)]
struct Pair {
    connected: bool,
    /// Messages in flight, FIFO: (arrival time, bytes).
    queue: VecDeque<(Time, Vec<u8>)>,
    /// When the cut began (None: connected).
    cut_since: Option<Time>,
    /// What each end's LLT reports: true = peer up.
    up: bool,
    /// Peer-up to report at this time (LLT rediscovery after a heal).
    up_at: Option<Time>,
}

#[derive(Clone, Copy)]
enum Fault {
    Cut(usize, usize),
    Heal(usize, usize),
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
    // Checker state.
    gens: BTreeMap<u64, BTreeSet<NodeId>>,
    view_of: Vec<Option<u64>>,
    delivered_in_view: Vec<BTreeSet<u64>>,
    transitions: BTreeMap<(u64, u64), (usize, BTreeSet<u64>)>,
    order: Vec<Vec<u64>>,
    /// Delivery orders of earlier lives of crashed nodes (each life is a
    /// member of its own; total order is checked across all of them).
    past_orders: Vec<Vec<u64>>,
    seen: Vec<BTreeSet<u64>>,
    fifo: Vec<BTreeMap<(NodeId, u32), u64>>,
    report: GabSimReport,
    trace: bool,
}

/// Payload: global message number, then sender's own counter.
fn payload(n: u64, own: u64) -> Vec<u8> {
    let mut v = n.to_be_bytes().to_vec();
    v.extend_from_slice(&own.to_be_bytes());
    v
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
            for b in a + 1..sim.nodes.len() {
                sim.heal(a, b);
            }
        }
        let settle = sim.now + sim.p.inact + sim.p.stable_timeout + Dur::from_millis(4000);
        sim.run_until(settle, false);
        sim.check_converged();
        // New traffic after healing must reach every node.
        let marks: Vec<u64> = (0..sim.nodes.len()).map(|_| { sim.counter += 1; sim.counter }).collect();
        for (i, &n) in marks.iter().enumerate() {
            let now = sim.now;
            if let Some(g) = sim.nodes[i].as_mut() {
                let _ = g.broadcast(now, PORT_H, payload(n, u64::MAX - 1));
            }
            sim.drain(i);
        }
        let fin = sim.now + Dur::from_millis(2000);
        sim.run_until(fin, false);
        for i in 0..sim.nodes.len() {
            let missing: Vec<u64> = marks.iter().copied().filter(|m| !sim.seen[i].contains(m)).collect();
            if !missing.is_empty() {
                let st = sim.nodes[i].as_ref().map(|g| g.debug_state()).unwrap_or_default();
                sim.violation(format!("after healing node {i} never delivered {missing:?}: {st}"));
            }
        }
        sim.check_total_order();
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
            gens: BTreeMap::new(),
            view_of: vec![None; n],
            delivered_in_view: vec![BTreeSet::new(); n],
            transitions: BTreeMap::new(),
            order: vec![Vec::new(); n],
            past_orders: Vec::new(),
            seen: vec![BTreeSet::new(); n],
            fifo: vec![BTreeMap::new(); n],
            report: GabSimReport { seed, ..Default::default() },
            trace: std::env::var_os("SIM_TRACE").is_some(),
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
        self.view_of[i] = None;
        self.delivered_in_view[i].clear();
        // A new life: what the previous one delivered is gone with it.
        let old = std::mem::take(&mut self.order[i]);
        if !old.is_empty() {
            self.past_orders.push(old);
        }
        self.seen[i].clear();
        self.fifo[i].clear();
        // LLT of every connected peer sees the newcomer after discovery.
        for j in 0..self.nodes.len() {
            if j != i && self.pairs[&(i, j)].connected {
                let at = self.now + Dur(20_000 + self.rng.below(30_000));
                for (a, b) in [(i, j), (j, i)] {
                    let pr = self.pairs.get_mut(&(a, b)).expect("pair");
                    if pr.up {
                        // Restart faster than inact: LLT reports a reset.
                        pr.up = false;
                        if let Some(g) = self.nodes[a].as_mut() {
                            g.llt_peer_down(self.now, b as NodeId);
                        }
                    }
                    pr.up_at = Some(at);
                }
            }
        }
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].is_none() {
            self.boot(i);
        }
    }

    fn heal(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let pr = self.pairs.get_mut(&(x, y)).expect("pair");
            pr.connected = true;
            pr.cut_since = None;
            if !pr.up && pr.up_at.is_none() && self.nodes[x].is_some() && self.nodes[y].is_some() {
                pr.up_at = Some(self.now + Dur(20_000));
            }
        }
    }

    fn violation(&mut self, msg: String) {
        if self.report.violation.is_none() {
            self.report.violation = Some(format!("t={}us: {msg}", self.now.as_micros()));
        }
    }

    fn next_time(&self, traffic: bool) -> Option<Time> {
        let mut t: Option<Time> = None;
        let mut take = |x: Time| t = Some(t.map_or(x, |y: Time| y.min(x)));
        for pr in self.pairs.values() {
            if pr.connected {
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
        }
    }

    fn step(&mut self, traffic: bool) {
        let now = self.now;
        while self.faults.first().is_some_and(|(t, _)| *t <= now) {
            let (_, f) = self.faults.remove(0);
            self.apply(f);
        }
        let keys: Vec<(usize, usize)> = self.pairs.keys().copied().collect();
        for (a, b) in keys {
            // LLT declares the peer down after inact of cut: traffic lost.
            let pr = self.pairs.get_mut(&(a, b)).expect("pair");
            if pr.up && pr.cut_since.is_some_and(|c| now >= c + self.p.inact) {
                pr.up = false;
                pr.queue.clear();
                if let Some(g) = self.nodes[b].as_mut() {
                    g.llt_peer_down(now, a as NodeId);
                }
                self.drain(b);
            }
            let pr = self.pairs.get_mut(&(a, b)).expect("pair");
            if pr.up_at.is_some_and(|u| u <= now) {
                pr.up_at = None;
                if pr.connected && self.nodes[a].is_some() && self.nodes[b].is_some() {
                    pr.up = true;
                    pr.queue.clear();
                    if let Some(g) = self.nodes[b].as_mut() {
                        g.llt_peer_up(now, a as NodeId);
                    }
                    self.drain(b);
                }
            }
            loop {
                let pr = self.pairs.get_mut(&(a, b)).expect("pair");
                if !pr.connected || !pr.up || pr.queue.front().is_none_or(|(at, _)| *at > now) {
                    break;
                }
                let (_, bytes) = pr.queue.pop_front().expect("front");
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
                    if let Some(g) = self.nodes[i].as_mut() {
                        let _ = g.broadcast(now, PORT_H, payload(n, n));
                    }
                    self.drain(i);
                }
            }
        }
    }

    fn apply(&mut self, f: Fault) {
        if self.trace {
            eprintln!("{:>10} fault {}", self.now.as_micros(), match f {
                Fault::Cut(a, b) => format!("cut {a}-{b}"),
                Fault::Heal(a, b) => format!("heal {a}-{b}"),
                Fault::Crash(i) => format!("crash {i}"),
                Fault::Restart(i) => format!("restart {i}"),
            });
        }
        match f {
            Fault::Cut(a, b) => {
                for k in [(a, b), (b, a)] {
                    let pr = self.pairs.get_mut(&k).expect("pair");
                    if pr.connected {
                        pr.connected = false;
                        pr.cut_since = Some(self.now);
                    }
                }
            }
            Fault::Heal(a, b) => self.heal(a, b),
            Fault::Crash(i) => {
                self.nodes[i] = None;
                for j in 0..self.nodes.len() {
                    if j != i {
                        for k in [(i, j), (j, i)] {
                            let pr = self.pairs.get_mut(&k).expect("pair");
                            pr.queue.clear();
                            pr.up_at = None;
                        }
                        // The peer's LLT notices after inact.
                        let pr = self.pairs.get_mut(&(i, j)).expect("pair");
                        if pr.up && pr.cut_since.is_none() {
                            pr.cut_since = Some(self.now);
                        }
                        self.pairs.get_mut(&(j, i)).expect("pair").up = false;
                    }
                }
            }
            Fault::Restart(i) => {
                // The crash's "cut" of its outgoing channels ends.
                for j in 0..self.nodes.len() {
                    if j != i {
                        let pr = self.pairs.get_mut(&(i, j)).expect("pair");
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
                let Some(pr) = self.pairs.get_mut(&(i, j)) else { continue };
                // LLT only carries traffic to a peer it reports up.
                if !pr.up {
                    continue;
                }
                let last = pr.queue.back().map_or(Time::ZERO, |(t, _)| *t);
                let at = (self.now + Dur(20 + self.rng.below(400))).max(last);
                pr.queue.push_back((at, bytes.clone()));
            }
        }
        for e in events {
            self.on_event(i, e);
        }
    }

    fn on_event(&mut self, i: usize, e: GabEvent) {
        match e {
            GabEvent::Membership { port, gen, members, .. } if port == PORT_A => {
                self.report.views += 1;
                if self.trace {
                    eprintln!("{:>10} node {i}: port a gen {gen:x} members {members:?}", self.now.as_micros());
                }
                if let Some(known) = self.gens.get(&gen) {
                    if *known != members {
                        return self.violation(format!("gen {gen:x}: node {i} has members {members:?}, others {known:?}"));
                    }
                } else {
                    self.gens.insert(gen, members.clone());
                }
                if !members.contains(&(i as NodeId)) {
                    return self.violation(format!("node {i} installed gen {gen:x} without itself"));
                }
                if let Some(old) = self.view_of[i] {
                    let set = std::mem::take(&mut self.delivered_in_view[i]);
                    match self.transitions.get(&(old, gen)) {
                        Some((other, s)) if *s != set => {
                            let only_me: Vec<_> = set.difference(s).take(5).collect();
                            let only_other: Vec<_> = s.difference(&set).take(5).collect();
                            let msg = format!(
                                "virtual synchrony: nodes {other} and {i} went {old:x} -> {gen:x} having delivered different messages in {old:x} (only {i}: {only_me:?}, only {other}: {only_other:?})"
                            );
                            return self.violation(msg);
                        }
                        Some(_) => {}
                        None => {
                            self.transitions.insert((old, gen), (i, set));
                        }
                    }
                }
                self.view_of[i] = Some(gen);
            }
            GabEvent::Membership { .. } => {}
            GabEvent::Deliver { data, id, .. } => {
                self.report.delivered += 1;
                if self.view_of[i].is_none() {
                    return self.violation(format!("node {i} delivered before being in a view (not seeded)"));
                }
                if data.len() != 16 {
                    return self.violation(format!("node {i}: bad payload"));
                }
                let n = u64::from_be_bytes(data[..8].try_into().expect("8"));
                let own = u64::from_be_bytes(data[8..].try_into().expect("8"));
                if !self.delivered_in_view[i].insert(n) || !self.seen[i].insert(n) {
                    return self.violation(format!("node {i} delivered message {n} twice"));
                }
                let last = *self.fifo[i].entry((id.origin, id.inc)).or_insert(0);
                if own != u64::MAX - 1 {
                    if own <= last {
                        return self.violation(format!("FIFO: node {i} delivered {own} from {} after {last}", id.origin));
                    }
                    self.fifo[i].insert((id.origin, id.inc), own);
                }
                self.order[i].push(n);
            }
        }
    }

    /// Total order: for every two nodes, the messages both delivered come
    /// in the same relative order.
    fn check_total_order(&mut self) {
        let lives: Vec<&Vec<u64>> = self.order.iter().chain(self.past_orders.iter()).collect();
        for i in 0..lives.len() {
            for j in i + 1..lives.len() {
                let pos_j: std::collections::HashMap<u64, usize> = lives[j].iter().enumerate().map(|(k, &m)| (m, k)).collect();
                let mut last: Option<(u64, usize)> = None;
                for &m in lives[i] {
                    let Some(&pj) = pos_j.get(&m) else { continue };
                    if let Some((prev, pprev)) = last {
                        if pj < pprev {
                            let msg = format!("total order: life {i} delivered {prev} before {m}, life {j} the other way round");
                            self.violation(msg);
                            return;
                        }
                    }
                    last = Some((m, pj));
                }
            }
        }
    }

    fn check_converged(&mut self) {
        let all: BTreeSet<NodeId> = (0..self.nodes.len() as NodeId).collect();
        for i in 0..self.nodes.len() {
            let m = self.nodes[i].as_ref().and_then(|g| g.membership());
            match m {
                Some((_, members)) if members == all => {}
                other => return self.violation(format!("after healing node {i} is in {other:?}, not one view of all")),
            }
        }
    }
}
