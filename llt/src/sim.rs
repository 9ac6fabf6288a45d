//! Deterministic simulation of N LLT cores on simulated links.
//!
//! One seed decides everything: per-link loss, duplication, delay and
//! reordering, link flaps, one-way blocks, node crashes and restarts, and
//! the application traffic. After every step the checker verifies:
//! - per sender and receiver, messages are delivered in order, exactly
//!   once, intact, with gaps only across a reset the receiver was told of;
//! - no peer stays OPEN longer than peerinact after the last frame it sent
//!   arrived;
//! - no link goes to TROUBLE or DOWN sooner than the timers allow;
//! - after the faults heal, every node sees every other OPEN and new
//!   messages all arrive.
//!
//! A failure reports the seed; `Sim::run(seed, params)` replays it exactly.

use crate::config::Timers;
use crate::core::{Core, CoreConfig, Dest, Dst, Event, LinkAddr, LinkSetup, LinkState, SendError};
use crate::rng::Rng;
use crate::time::{Dur, Time};
use crate::wire::{self, MsgType};
use crate::{LinkId, NodeId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Seeds for a simulation test: `SIM_SEED=S` replays one, `SIM_SEEDS=N`
/// runs 1..=N, otherwise 1..=`default`. Shared by every simulator's tests.
pub fn seeds_from_env(default: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    (1..=n).collect()
}

#[derive(Debug, Clone)]
pub struct SimParams {
    pub nodes: usize,
    /// Links per node; with `lowpri`, the last one is low priority.
    pub links: usize,
    pub lowpri: bool,
    pub timers: Timers,
    /// Length of the faulty phase.
    pub duration: Dur,
    pub faults: bool,
    pub crashes: bool,
    /// Mean gap between application sends per node.
    pub send_every: Dur,
    /// Largest application message (above the MTU: fragmentation).
    pub max_msg: usize,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            nodes: 4,
            links: 3,
            lowpri: true,
            // Fast profile: 0.1 s heartbeats, 1 s peerinact.
            timers: Timers { heartbeat: 10, heartbeatlo: 20, peertrouble: 40, peertroublelo: 60, peerinact: 100, dupwait: 20 },
            duration: Dur::from_millis(20_000),
            faults: true,
            crashes: true,
            send_every: Dur::from_millis(5),
            max_msg: 4000,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub seed: u64,
    pub steps: u64,
    pub frames: u64,
    pub delivered: u64,
    pub sent: u64,
    pub peer_downs: u64,
    pub violation: Option<String>,
}

/// A frame on its way through the simulated network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InFlight {
    pub to: usize,
    pub link: LinkId,
    pub from: usize,
    pub frame: Vec<u8>,
}

/// The simulated links between N nodes, shared by every simulator that
/// runs real LLT cores (`llt::sim`, `gab::lltsim`): per link a segment that
/// can go down, a loss rate and an extra delay; per (from, to, link) a
/// one-way block; every frame gets 20..20+`jitter` us of delay (frames sent
/// close together reorder) and, with `dup_pct`, may be duplicated. Node
/// `i`'s address on link `l` is [`addr`]`(i, l)`.
pub struct Network {
    pub nodes: usize,
    /// Segment of each link down: nothing passes.
    pub seg_down: Vec<bool>,
    /// One-way blocks (from, to, link); the value counts overlapping
    /// blocks for callers that nest them.
    pub blocked: BTreeMap<(usize, usize, LinkId), u32>,
    /// Loss per link, percent.
    pub loss: Vec<u32>,
    /// Extra delay per link.
    pub delay: Vec<Dur>,
    /// Chance in percent that a frame is duplicated.
    pub dup_pct: u32,
    /// Random delay on top of 20 us.
    pub jitter: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64, InFlight)>>,
}

impl Network {
    pub fn new(nodes: usize, links: usize, dup_pct: u32, jitter: u64) -> Network {
        Network {
            nodes,
            seg_down: vec![false; links],
            blocked: BTreeMap::new(),
            loss: vec![0; links],
            delay: vec![Dur::ZERO; links],
            dup_pct,
            jitter,
            seq: 0,
            queue: BinaryHeap::new(),
        }
    }

    /// Add one block of from -> to on a link (nested blocks count).
    pub fn block(&mut self, from: usize, to: usize, link: LinkId) {
        *self.blocked.entry((from, to, link)).or_insert(0) += 1;
    }

    /// Remove one block of from -> to on a link.
    pub fn unblock(&mut self, from: usize, to: usize, link: LinkId) {
        if let Some(c) = self.blocked.get_mut(&(from, to, link)) {
            *c -= 1;
            if *c == 0 {
                self.blocked.remove(&(from, to, link));
            }
        }
    }

    /// Whether frames from -> to pass on a link (loss aside).
    pub fn passes(&self, from: usize, to: usize, link: LinkId) -> bool {
        !self.seg_down[link as usize] && !self.blocked.contains_key(&(from, to, link))
    }

    /// Put a frame a node transmitted on the network at `now`.
    pub fn route(&mut self, rng: &mut Rng, now: Time, from: usize, link: LinkId, dst: Dst, frame: Vec<u8>) {
        for to in 0..self.nodes {
            if to == from {
                continue;
            }
            if let Dst::To(a) = dst {
                if a != addr(to, link) {
                    continue;
                }
            }
            if !self.passes(from, to, link) {
                continue;
            }
            if rng.chance(self.loss[link as usize]) {
                continue;
            }
            let copies = if self.dup_pct > 0 && rng.chance(self.dup_pct) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = Dur(20 + rng.below(self.jitter)) + self.delay[link as usize];
                self.seq += 1;
                let pkt = InFlight { to, link, from, frame: frame.clone() };
                self.queue.push(Reverse((now + delay, self.seq, pkt)));
            }
        }
    }

    /// When the next frame arrives.
    pub fn next_arrival(&self) -> Option<Time> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next frame due by `now`, if any.
    pub fn pop_due(&mut self, now: Time) -> Option<InFlight> {
        if self.next_arrival()? > now {
            return None;
        }
        self.queue.pop().map(|Reverse((_, _, pkt))| pkt)
    }

    /// Frames in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    SegmentDown(LinkId),
    SegmentUp(LinkId),
    Block(usize, usize, LinkId),
    Unblock(usize, usize, LinkId),
    Loss(LinkId, u32),
    Crash(usize),
    Restart(usize),
}

/// Per (sender, receiver) bookkeeping of the checker.
#[derive(Debug, Default, Clone)]
struct Flow {
    next_counter: u32,
    last_delivered: Option<u32>,
    /// Resets (PeerDown events for the sender) seen by the receiver.
    epoch: u64,
    epoch_at_last: u64,
}

pub struct Sim {
    p: SimParams,
    rng: Rng,
    now: Time,
    net: Network,
    nodes: Vec<Option<Core>>,
    boots: Vec<u64>,
    faults: Vec<(Time, Fault)>,
    next_send: Vec<Time>,
    /// Truth: when a unicast frame from `from` last reached `to` on a link.
    last_rx: BTreeMap<(usize, usize, LinkId), Time>,
    flows: BTreeMap<(usize, usize), Flow>,
    report: SimReport,
    /// SIM_TRACE set: print faults and events as they happen.
    trace: bool,
}

/// Node `node`'s address on `link` in the simulated network.
pub fn addr(node: usize, link: LinkId) -> LinkAddr {
    LinkAddr::Mac([2, 0, 0, 0, link, node as u8])
}

fn payload(src: usize, dst: usize, counter: u32, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(6));
    v.push(src as u8);
    v.push(dst as u8);
    v.extend_from_slice(&counter.to_be_bytes());
    while v.len() < len {
        v.push((counter as usize ^ v.len()) as u8);
    }
    v
}

impl Sim {
    pub fn new(seed: u64, p: SimParams) -> Sim {
        let mut rng = Rng::new(seed);
        let n = p.nodes;
        let mut sim = Sim {
            rng: Rng::new(seed ^ 0x5EED),
            now: Time::ZERO,
            net: Network::new(n, p.links, if p.faults { 2 } else { 0 }, if p.faults { 500 } else { 50 }),
            nodes: (0..n).map(|_| None).collect(),
            boots: vec![0; n],
            faults: Vec::new(),
            next_send: vec![Time::from_millis(500); n],
            last_rx: BTreeMap::new(),
            flows: BTreeMap::new(),
            report: SimReport { seed, ..Default::default() },
            trace: std::env::var_os("SIM_TRACE").is_some(),
            p,
        };
        if sim.p.faults {
            sim.faults = sim.schedule(&mut rng);
        }
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    /// Random fault schedule within the faulty phase; everything is undone
    /// by the end of it.
    fn schedule(&self, rng: &mut Rng) -> Vec<(Time, Fault)> {
        let end = self.p.duration.as_micros();
        let mut f = Vec::new();
        let at = |rng: &mut Rng| Time(rng.below(end));
        for l in 0..self.p.links as LinkId {
            f.push((at(rng), Fault::Loss(l, rng.below(40) as u32)));
        }
        for _ in 0..rng.below(6) {
            let l = rng.below(self.p.links as u64) as LinkId;
            let t = at(rng);
            f.push((t, Fault::SegmentDown(l)));
            // Short flaps and long cuts (past peerinact) alike.
            f.push((t + Dur(rng.below(3_000_000)), Fault::SegmentUp(l)));
        }
        for _ in 0..rng.below(4) {
            let a = rng.below(self.p.nodes as u64) as usize;
            let b = rng.below(self.p.nodes as u64) as usize;
            let l = rng.below(self.p.links as u64) as LinkId;
            if a != b {
                let t = at(rng);
                f.push((t, Fault::Block(a, b, l)));
                f.push((t + Dur(rng.below(4_000_000)), Fault::Unblock(a, b, l)));
            }
        }
        if self.p.crashes {
            for _ in 0..rng.below(3) {
                let n = rng.below(self.p.nodes as u64) as usize;
                let t = at(rng);
                f.push((t, Fault::Crash(n)));
                f.push((t + Dur(200_000 + rng.below(3_000_000)), Fault::Restart(n)));
            }
        }
        for l in 0..self.p.links as LinkId {
            f.push((Time(end), Fault::Loss(l, 0)));
            f.push((Time(end), Fault::SegmentUp(l)));
        }
        f.sort_by_key(|(t, _)| *t);
        f
    }

    fn boot(&mut self, i: usize) {
        self.boots[i] += 1;
        let links = (0..self.p.links)
            .map(|l| LinkSetup { tag: format!("l{l}"), lowpri: self.p.lowpri && l + 1 == self.p.links, mtu: 1500 })
            .collect();
        let seed = self.report.seed.wrapping_mul(1000).wrapping_add(i as u64 * 17 + self.boots[i]);
        let mut cfg = CoreConfig::new(i as NodeId, 7, links, seed);
        cfg.timers = self.p.timers;
        self.nodes[i] = Some(Core::new(cfg, self.now));
    }

    fn violation(&mut self, msg: String) {
        if self.report.violation.is_none() {
            self.report.violation = Some(format!("t={}us: {msg}", self.now.as_micros()));
        }
    }

    /// Run the faulty phase, heal, settle, and check convergence.
    pub fn run(seed: u64, p: SimParams) -> SimReport {
        let mut sim = Sim::new(seed, p);
        let end = Time(sim.p.duration.as_micros());
        sim.run_until(end, true);
        // Heal: every fault is undone by the schedule; restart the dead.
        sim.net.blocked.clear();
        for i in 0..sim.nodes.len() {
            if sim.nodes[i].is_none() {
                sim.boot(i);
            }
        }
        let inact = Dur::from_centis(sim.p.timers.peerinact);
        let settle = sim.now + inact + inact + Dur::from_centis(sim.p.timers.dupwait) + Dur::from_millis(1000);
        sim.run_until(settle, false);
        sim.check_converged();
        // Final traffic must all arrive.
        let mut marks = BTreeMap::new();
        for a in 0..sim.nodes.len() {
            for b in 0..sim.nodes.len() {
                if a != b {
                    marks.insert((a, b), sim.flows.entry((a, b)).or_default().next_counter);
                    for _ in 0..20 {
                        sim.app_send(a, Some(b));
                    }
                }
            }
        }
        let fin = sim.now + Dur::from_millis(3000);
        sim.run_until(fin, false);
        for ((a, b), start) in marks {
            let f = &sim.flows[&(a, b)];
            let sent = f.next_counter - start;
            let got = f.last_delivered.map_or(0, |l| (l + 1).saturating_sub(start));
            if sent != got {
                sim.violation(format!("after healing, {a}->{b}: {sent} messages sent, {got} delivered"));
            }
        }
        sim.report
    }

    fn next_time(&self) -> Option<Time> {
        let mut t: Option<Time> = None;
        let mut take = |x: Time| t = Some(t.map_or(x, |y: Time| y.min(x)));
        if let Some(at) = self.net.next_arrival() {
            take(at);
        }
        for c in self.nodes.iter().flatten() {
            if let Some(d) = c.poll_timeout() {
                take(d);
            }
        }
        if let Some((at, _)) = self.faults.first() {
            take(*at);
        }
        t
    }

    fn run_until(&mut self, end: Time, traffic: bool) {
        let mut same_time_steps = 0u32;
        while self.report.violation.is_none() {
            let mut t = self.next_time().unwrap_or(end);
            if traffic {
                if let Some(s) = self.next_send.iter().min() {
                    t = t.min(*s);
                }
            }
            if t > end {
                self.now = end;
                break;
            }
            // A core that keeps asking to be woken in the past without
            // making progress would spin the daemon's CPU.
            same_time_steps = if t <= self.now { same_time_steps + 1 } else { 0 };
            if same_time_steps > 10_000 {
                self.violation("busy loop: a core keeps asking for a timeout at the current time".into());
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
        while let Some(pkt) = self.net.pop_due(now) {
            self.deliver(pkt);
        }
        for i in 0..self.nodes.len() {
            if let Some(c) = self.nodes[i].as_mut() {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
            self.drain(i);
        }
        if traffic {
            for i in 0..self.nodes.len() {
                if self.next_send[i] <= now {
                    let gap = self.rng.below(2 * self.p.send_every.as_micros()) + 1;
                    self.next_send[i] = now + Dur(gap);
                    self.app_send(i, None);
                    self.drain(i);
                }
            }
        }
        self.check_open_timeliness();
    }

    fn apply(&mut self, f: Fault) {
        if self.trace {
            eprintln!("{:>10} fault {f:?}", self.now.as_micros());
        }
        match f {
            Fault::SegmentDown(l) => self.net.seg_down[l as usize] = true,
            Fault::SegmentUp(l) => self.net.seg_down[l as usize] = false,
            Fault::Block(a, b, l) => {
                self.net.blocked.insert((a, b, l), 1);
            }
            Fault::Unblock(a, b, l) => {
                self.net.blocked.remove(&(a, b, l));
            }
            Fault::Loss(l, pct) => self.net.loss[l as usize] = pct,
            Fault::Crash(n) => {
                self.nodes[n] = None;
                // A receiver that crashed lost what it had not delivered:
                // its new life starts a new epoch of every flow into it.
                for ((_, dst), f) in self.flows.iter_mut() {
                    if *dst == n {
                        f.epoch += 1;
                    }
                }
            }
            Fault::Restart(n) => {
                if self.nodes[n].is_none() {
                    self.boot(n);
                }
            }
        }
    }

    fn app_send(&mut self, from: usize, to: Option<usize>) {
        let n = self.nodes.len();
        let Some(core) = self.nodes[from].as_ref() else { return };
        let open: Vec<usize> = core.open_peers().map(|p| p as usize).collect();
        let dst = match to {
            Some(d) => d,
            None if open.is_empty() => return,
            None => open[self.rng.below(open.len() as u64) as usize],
        };
        if dst >= n || dst == from {
            return;
        }
        let len = 6 + self.rng.below(self.p.max_msg as u64) as usize;
        let counter = self.flows.entry((from, dst)).or_default().next_counter;
        let data = payload(from, dst, counter, len);
        let now = self.now;
        let core = self.nodes[from].as_mut().expect("checked");
        match core.send(now, Dest::Node(dst as NodeId), 0, &data) {
            Ok(_) => {
                self.flows.get_mut(&(from, dst)).expect("entry").next_counter += 1;
                self.report.sent += 1;
            }
            Err(SendError::WouldBlock | SendError::PeerDown(_) | SendError::NotRunning) => {}
            Err(e) => self.violation(format!("send {from}->{dst} failed: {e}")),
        }
    }

    /// Take a node's outputs: frames onto the simulated links, events to
    /// the checker.
    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        if let Some(c) = self.nodes[i].as_mut() {
            while let Some(t) = c.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = c.poll_event() {
                events.push(e);
            }
        }
        for t in out {
            self.route(i, t.link, t.dst, t.frame);
        }
        for e in events {
            self.on_event(i, e);
        }
    }

    fn route(&mut self, from: usize, link: LinkId, dst: Dst, frame: Vec<u8>) {
        self.net.route(&mut self.rng, self.now, from, link, dst, frame);
    }

    fn deliver(&mut self, pkt: InFlight) {
        let now = self.now;
        let Some(core) = self.nodes[pkt.to].as_mut() else { return };
        self.report.frames += 1;
        let unicast = wire::decode(&pkt.frame).is_ok_and(|(h, _)| h.msg_type != MsgType::Announce);
        let running = core.phase() == crate::core::Phase::Running;
        core.handle_frame(now, pkt.link, addr(pkt.from, pkt.link), &pkt.frame);
        if unicast && running {
            self.last_rx.insert((pkt.to, pkt.from, pkt.link), now);
        }
        self.drain(pkt.to);
    }

    fn on_event(&mut self, at: usize, e: Event) {
        let now = self.now;
        if self.trace && !matches!(e, Event::Deliver { .. }) {
            eprintln!("{:>10} node {at}: {e:?}", now.as_micros());
        }
        match e {
            Event::Deliver { peer, data, .. } => {
                self.report.delivered += 1;
                let src = peer as usize;
                if data.len() < 6 || data[0] as usize != src || data[1] as usize != at {
                    return self.violation(format!("node {at} got a message from {src} with a wrong header"));
                }
                let counter = u32::from_be_bytes([data[2], data[3], data[4], data[5]]);
                if data != payload(src, at, counter, data.len()) {
                    return self.violation(format!("message {src}->{at} #{counter} corrupted"));
                }
                let f = self.flows.entry((src, at)).or_default();
                if let Some(last) = f.last_delivered {
                    if counter <= last {
                        let msg = format!("{src}->{at}: #{counter} delivered after #{last} (duplicate or out of order)");
                        return self.violation(msg);
                    }
                    if counter > last + 1 && f.epoch == f.epoch_at_last {
                        let msg = format!("{src}->{at}: gap #{last} -> #{counter} with no reset reported");
                        return self.violation(msg);
                    }
                }
                f.last_delivered = Some(counter);
                f.epoch_at_last = f.epoch;
            }
            Event::PeerDown { peer, .. } => {
                self.report.peer_downs += 1;
                self.flows.entry((peer as usize, at)).or_default().epoch += 1;
            }
            Event::LinkState { peer, link, state } => {
                let t = &self.p.timers;
                let lowpri = self.p.lowpri && link as usize + 1 == self.p.links;
                let min_silence = match state {
                    LinkState::Up => return,
                    LinkState::Trouble => Dur::from_centis(if lowpri { t.peertroublelo } else { t.peertrouble }),
                    LinkState::Down => Dur::from_centis(t.peerinact),
                };
                if let Some(last) = self.last_rx.get(&(at, peer as usize, link)) {
                    if now.since(*last) < min_silence {
                        let msg = format!(
                            "node {at}: link {link} to {peer} went {} after {} us of silence (< {} us)",
                            state.as_str(),
                            now.since(*last).as_micros(),
                            min_silence.as_micros()
                        );
                        self.violation(msg);
                    }
                }
            }
            Event::DuplicateRefused { .. } | Event::DuplicateNode { .. } => {
                self.violation(format!("node {at}: duplicate node id reported with unique ids"));
            }
            Event::PeerUp { .. } | Event::Configured => {}
        }
    }

    /// No peer stays OPEN past peerinact after its last frame arrived.
    fn check_open_timeliness(&mut self) {
        let inact = Dur::from_centis(self.p.timers.peerinact);
        let mut bad = None;
        for (i, c) in self.nodes.iter().enumerate() {
            let Some(c) = c else { continue };
            for p in c.open_peers() {
                let last = (0..self.p.links as LinkId).filter_map(|l| self.last_rx.get(&(i, p as usize, l))).max();
                if let Some(last) = last {
                    if self.now.since(*last) > inact {
                        bad = Some(format!("node {i} still sees {p} OPEN {} us after its last frame", self.now.since(*last).as_micros()));
                    }
                }
            }
        }
        if let Some(b) = bad {
            self.violation(b);
        }
    }

    fn check_converged(&mut self) {
        let n = self.nodes.len();
        for i in 0..n {
            let Some(c) = &self.nodes[i] else { continue };
            let open: Vec<NodeId> = c.open_peers().collect();
            if open.len() != n - 1 {
                let msg = format!("after healing, node {i} sees only {open:?} OPEN");
                return self.violation(msg);
            }
        }
    }
}
