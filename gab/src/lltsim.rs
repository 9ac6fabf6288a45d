//! GAB over real LLT cores: a deterministic simulation of N nodes, each a real
//! [`llt::core::Core`] and a real [`Gab`] joined by the glue, over the
//! simulated links of [`llt::sim::Network`].
//!
//! One seed decides everything: loss and extra delay per link, single-link
//! cuts (jeopardy), one-way blocks of one link or of every link between two
//! nodes, symmetric partitions, crashes and restarts (a new LLT core with a
//! new nonce, a new GAB with a higher incarnation), and the clients'
//! traffic: broadcasts and unicasts on two ports, small messages and
//! messages LLT must fragment. After every step the shared [`Checker`] of
//! `gab::sim` checks the events of every node (agreement per generation,
//! virtual synchrony, FIFO per sender, unicasts only at their target,
//! nothing twice, nothing before seeding), and this simulator checks that
//! jeopardy follows LLT's links (after the grace), that `lost_in_jeopardy`
//! flags exactly the members lost with one link left and never a crashed
//! node whose links all fell silent at once, and that the glue neither
//! refuses nor orphans a chunk. At the end, after healing: convergence to
//! one view of all, delivery of new messages everywhere, no message lost,
//! one total order across every node life, and no chunk left waiting in a
//! glue's queue.
//!
//! A failure reports the seed; `LltGabSim::run(seed, params)` replays it
//! exactly (`SIM_TRACE=1` prints faults, LLT's peer and link events,
//! submissions, deliveries and views).

use crate::core::{Gab, GabConfig, GabEvent};

use crate::sim::{payload, Checker, NO_FIFO};
use crate::{Port, PORT_A};
use llt::config::Timers;
use llt::core::{ChannelParams, Core, CoreConfig, Event, LinkSetup};
use llt::rng::Rng;
use llt::sim::{addr, Network};
use llt::time::{Dur, Time};
use llt::{LinkId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::glue::{jeopardy_grace, links_alive, GlueStats, LltGlue, Pumped};

// ----- the simulation ---------------------------------------------------------

const PORT_H: Port = b'h';
const PORT_X: Port = b'x';

#[derive(Debug, Clone)]
pub struct LltGabSimParams {
    pub nodes: usize,
    /// Links per node; with `lowpri`, the last one is low priority.
    pub links: usize,
    pub lowpri: bool,
    pub timers: Timers,
    /// LLT's window per peer, in fragments (small: GAB's messages often
    /// wait in the glue's queue).
    pub window: u32,
    /// Length of the faulty phase.
    pub duration: Dur,
    pub faults: bool,
    pub crashes: bool,
    /// Faults that take peers down: symmetric partitions, one-way cuts of
    /// every link, and link cuts that can leave no link up. Without them
    /// only one link at a time fails for good (jeopardy), LLT's peers stay
    /// up, and the membership never changes.
    pub partitions: bool,
    pub stable_timeout: Dur,
    /// Mean gap between client messages per sending node.
    pub send_every: Dur,
    /// How many nodes have clients that send (the highest ids); every node
    /// has clients that receive.
    pub senders: usize,
    /// Largest client payload (above LLT's fragment size: fragmentation).
    pub max_msg: usize,
}

impl Default for LltGabSimParams {
    fn default() -> Self {
        LltGabSimParams {
            nodes: 4,
            links: 3,
            lowpri: true,
            // 0.1 s heartbeats, 0.8 s peerinact, 0.2 s duplicate-id wait.
            timers: Timers { heartbeat: 10, heartbeatlo: 20, peertrouble: 30, peertroublelo: 50, peerinact: 80, dupwait: 20 },
            window: 1024,
            duration: Dur::from_millis(8_000),
            faults: true,
            crashes: true,
            partitions: true,
            stable_timeout: Dur::from_millis(400),
            send_every: Dur::from_millis(25),
            senders: usize::MAX,
            max_msg: 4000,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LltGabSimReport {
    pub seed: u64,
    pub steps: u64,
    pub frames: u64,
    pub delivered: u64,
    pub views: u64,
    /// GAB messages that waited for LLT's window in a glue's queue.
    pub queued: u64,
    pub llt_peer_downs: u64,
    pub violation: Option<String>,
}

#[derive(Debug, Clone)]
enum Fault {
    Loss(LinkId, u32),
    Delay(LinkId, Dur),
    SegmentDown(LinkId),
    SegmentUp(LinkId),
    /// Frames from the first node to the second are lost on these links.
    Block(usize, usize, Vec<LinkId>),
    Unblock(usize, usize, Vec<LinkId>),
    /// Every link between the group and the others, both ways.
    Partition(Vec<usize>),
    Unpartition(Vec<usize>),
    Crash(usize),
    Restart(usize),
}

struct Node {
    llt: Core,
    gab: Gab,
    glue: LltGlue,
    /// What the jeopardy checker knows of this node.
    jt: JeopardyTrack,
    /// The glue's `queued` count already added to the report.
    queued_seen: u64,
}

/// Bookkeeping of the "lost in jeopardy" check.
#[derive(Default)]
struct JeopardyTrack {
    /// Links alive to each peer after the last pump, and since when.
    alive: BTreeMap<NodeId, (usize, Time)>,
    /// Peers LLT reported down with exactly one link alive, in pumps after
    /// the last view install (GAB must flag them if the next view loses them).
    surely: BTreeSet<NodeId>,
    /// The same, possibly before the last install too (GAB may flag them).
    maybe: BTreeSet<NodeId>,
    /// Members of the current view.
    members: BTreeSet<NodeId>,
}

pub struct LltGabSim {
    p: LltGabSimParams,
    rng: Rng,
    now: Time,
    net: Network,
    nodes: Vec<Option<Node>>,
    boots: Vec<u32>,
    faults: Vec<(Time, Fault)>,
    next_send: Vec<Time>,
    counter: u64,
    own: Vec<u64>,
    check: Checker,
    /// (j, i): node i crashed while node j's two freshest links to it
    /// had last heard it within the jeopardy grace of each other: all its
    /// links then fall silent at once (forgotten when i starts again).
    crash_links: BTreeSet<(usize, usize)>,
    report: LltGabSimReport,
    trace: bool,
}

impl LltGabSim {
    /// Run the faulty phase, heal, settle, and check convergence and delivery.
    pub fn run(seed: u64, p: LltGabSimParams) -> LltGabSimReport {
        let mut sim = LltGabSim::new(seed, p);
        let end = Time(sim.p.duration.as_micros());
        sim.run_until(end, true);
        // Heal: the schedule undoes its faults by the end; make sure, and
        // restart the dead.
        sim.net.blocked.clear();
        for l in 0..sim.p.links {
            sim.net.seg_down[l] = false;
            sim.net.loss[l] = 0;
            sim.net.delay[l] = Dur::ZERO;
        }
        sim.faults.clear();
        for i in 0..sim.nodes.len() {
            if sim.nodes[i].is_none() {
                sim.boot(i);
            }
        }
        let t = sim.p.timers;
        let settle = sim.now
            + Dur::from_centis(t.peerinact + t.peerinact + t.dupwait)
            + sim.p.stable_timeout
            + Dur::from_millis(3000);
        sim.run_until(settle, false);
        let gabs: Vec<Option<&Gab>> = sim.nodes.iter().map(|n| n.as_ref().map(|n| &n.gab)).collect();
        let r = sim.check.check_converged(&gabs);
        sim.record(r);
        // New traffic after healing must reach every node.
        let mut marks = Vec::new();
        for i in 0..sim.nodes.len() {
            sim.counter += 1;
            let n = sim.counter;
            let to = ((i + 1) % sim.nodes.len()) as NodeId;
            sim.counter += 1;
            let u = sim.counter;
            let now = sim.now;
            if let Some(node) = sim.nodes[i].as_mut() {
                if node.gab.broadcast(now, PORT_H, payload(n, NO_FIFO, 100)).is_ok() {
                    sim.check.submitted(i, n, None);
                    marks.push((n, None));
                }
                if node.gab.unicast(now, PORT_X, to, payload(u, NO_FIFO, 2000)).is_ok() {
                    sim.check.submitted(i, u, Some(to));
                    marks.push((u, Some(to as usize)));
                }
            }
            sim.pump(i);
        }
        let fin = sim.now + Dur::from_millis(2000);
        sim.run_until(fin, false);
        for i in 0..sim.nodes.len() {
            let missing: Vec<u64> =
                marks.iter().filter(|(n, to)| to.is_none_or(|t| t == i) && !sim.check.has_delivered(i, *n)).map(|(n, _)| *n).collect();
            if !missing.is_empty() {
                let st = sim.nodes[i].as_ref().map(|n| n.gab.debug_state()).unwrap_or_default();
                sim.violation(format!("delivery after healing: node {i} never delivered {missing:?}: {st}"));
            }
            let waiting = sim.nodes[i].as_ref().map_or(0, |n| n.glue.backlog_total());
            if waiting > 0 {
                sim.violation(format!("glue: after healing node {i} still has {waiting} GAB messages waiting for LLT's window"));
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

    fn new(seed: u64, p: LltGabSimParams) -> LltGabSim {
        let n = p.nodes;
        let mut rng = Rng::new(seed ^ 0x6AB);
        let faults = if p.faults { schedule(&mut rng, &p) } else { Vec::new() };
        let mut sim = LltGabSim {
            rng,
            now: Time::ZERO,
            net: Network::new(n, p.links, if p.faults { 1 } else { 0 }, if p.faults { 400 } else { 50 }),
            nodes: (0..n).map(|_| None).collect(),
            boots: vec![0; n],
            faults,
            // Nodes without sending clients never send.
            next_send: (0..n).map(|i| if i >= n.saturating_sub(p.senders) { Time::from_millis(300) } else { Time(u64::MAX) }).collect(),
            counter: 0,
            own: vec![0; n],
            check: Checker::new(n),
            crash_links: BTreeSet::new(),
            report: LltGabSimReport { seed, ..Default::default() },
            trace: std::env::var_os("SIM_TRACE").is_some(),
            p,
        };
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    /// A new life of node `i`: a new LLT core (new nonce and sessions) and
    /// a new GAB with a higher incarnation, clients registered on two ports.
    fn boot(&mut self, i: usize) {
        self.boots[i] += 1;
        self.crash_links.retain(|&(_, c)| c != i);
        let links = (0..self.p.links)
            .map(|l| LinkSetup { tag: format!("l{l}"), lowpri: self.p.lowpri && l + 1 == self.p.links, mtu: 1500 })
            .collect();
        let seed = self.report.seed.wrapping_mul(7919).wrapping_add(i as u64 * 131 + self.boots[i] as u64);
        let mut cfg = CoreConfig::new(i as NodeId, 9, links, seed);
        cfg.timers = self.p.timers;
        cfg.channel = ChannelParams { window: self.p.window, ..Default::default() };
        let llt = Core::new(cfg, self.now);
        let mut gcfg = GabConfig::new(i as NodeId, self.p.nodes, self.boots[i]);
        gcfg.stable_timeout = self.p.stable_timeout;
        let mut gab = Gab::new(gcfg, self.now);
        gab.register(self.now, PORT_H);
        gab.register(self.now, PORT_X);
        self.nodes[i] = Some(Node { llt, gab, glue: LltGlue::new(), jt: JeopardyTrack::default(), queued_seen: 0 });
        self.own[i] = 0;
        self.check.new_life(i);
        self.pump(i);
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
        if let Some(at) = self.net.next_arrival() {
            take(at);
        }
        for n in self.nodes.iter().flatten() {
            if let Some(d) = n.glue.poll_timeout(&n.llt, &n.gab) {
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
        let mut same = 0u32;
        while self.report.violation.is_none() {
            let Some(t) = self.next_time(traffic) else {
                self.now = end;
                break;
            };
            if t > end {
                self.now = end;
                break;
            }
            // A core asking to be woken in the past without progress would
            // spin the daemon's CPU.
            same = if t <= self.now { same + 1 } else { 0 };
            if same > 10_000 {
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
            let Some(node) = self.nodes[pkt.to].as_mut() else { continue };
            self.report.frames += 1;
            node.llt.handle_frame(now, pkt.link, addr(pkt.from, pkt.link), &pkt.frame);
            self.pump(pkt.to);
        }
        for i in 0..self.nodes.len() {
            let Some(node) = self.nodes[i].as_mut() else { continue };
            if node.glue.poll_timeout(&node.llt, &node.gab).is_some_and(|t| t <= now) {
                let out = node.glue.handle_timeout(now, &mut node.llt, &mut node.gab);
                self.output(i, out);
            }
        }
        if traffic {
            let first_sender = self.nodes.len().saturating_sub(self.p.senders);
            for i in first_sender..self.nodes.len() {
                if self.next_send[i] <= now {
                    let gap = self.rng.below(2 * self.p.send_every.as_micros()) + 1;
                    self.next_send[i] = now + Dur(gap);
                    self.client_send(i);
                }
            }
        }
    }

    /// A client of node `i` sends: a broadcast or a unicast, on port h or x,
    /// mostly small, sometimes larger than a link's MTU.
    fn client_send(&mut self, i: usize) {
        let n = self.nodes.len();
        let port = if self.rng.chance(50) { PORT_H } else { PORT_X };
        let to = if self.rng.chance(30) { Some(((i as u64 + 1 + self.rng.below(n as u64 - 1)) % n as u64) as NodeId) } else { None };
        let pad = if self.rng.chance(15) { self.rng.below(self.p.max_msg as u64) } else { self.rng.below(64) } as usize;
        self.counter += 1;
        let num = self.counter;
        let now = self.now;
        let Some(node) = self.nodes[i].as_mut() else { return };
        let own = self.own[i] + 1;
        let data = payload(num, own, pad);
        let r = match to {
            Some(t) => node.gab.unicast(now, port, t, data),
            None => node.gab.broadcast(now, port, data),
        };
        if let Ok(id) = r {
            self.own[i] = own;
            if self.trace {
                eprintln!("{:>10} node {i}: submits message {num} as {id:?} to {to:?}", now.as_micros());
            }
            self.check.submitted(i, num, to);
        }
        self.pump(i);
    }

    /// Pump node `i`'s glue and route its outputs.
    fn pump(&mut self, i: usize) {
        let now = self.now;
        let Some(node) = self.nodes[i].as_mut() else { return };
        let out = node.glue.pump(now, &mut node.llt, &mut node.gab);
        self.output(i, out);
    }

    /// Frames onto the network, LLT events to the trace and checks, GAB
    /// events to the checker.
    fn output(&mut self, i: usize, out: Pumped) {
        let now = self.now;
        for t in out.transmits {
            self.net.route(&mut self.rng, now, i, t.link, t.dst, t.frame);
        }
        let mut single_link_losses = BTreeSet::new();
        let mut llt_downs = BTreeSet::new();
        for e in out.events {
            if self.trace && !matches!(e, Event::Deliver { .. }) {
                eprintln!("{:>10} node {i} llt: {e:?}", now.as_micros());
            }
            match e {
                Event::PeerDown { peer, .. } => {
                    self.report.llt_peer_downs += 1;
                    llt_downs.insert(peer);
                    // GAB knew it was on one link: it had been for the grace.
                    let told = self.nodes[i].as_ref().is_some_and(|n| {
                        n.jt.alive.get(&peer).is_some_and(|&(k, since)| k == 1 && now.since(since) >= jeopardy_grace(&n.llt))
                    });
                    if told {
                        single_link_losses.insert(peer);
                    }
                }
                Event::DuplicateRefused { .. } | Event::DuplicateNode { .. } => {
                    self.violation(format!("llt: node {i} reports a duplicate node id with unique ids: {e:?}"));
                }
                _ => {}
            }
        }
        let Some(node) = self.nodes[i].as_mut() else { return };
        let mut events = Vec::new();
        while let Some(e) = node.gab.poll_event() {
            events.push(e);
        }
        let stats = node.glue.stats().clone();
        self.report.queued += stats.queued - node.queued_seen;
        node.queued_seen = stats.queued;
        if stats.too_large > 0 {
            self.violation(format!("glue: node {i}: LLT refused {} GAB message chunks as too large", stats.too_large));
        }
        // LLT delivers a peer's messages in order within a session and
        // reports its end: a chunk never continues a lost start.
        if stats.dropped_chunks > 0 {
            self.violation(format!("glue: node {i} dropped {} malformed or orphan chunks", stats.dropped_chunks));
        }
        for e in &events {
            let r = self.check.on_event(i, now, e);
            self.record(r);
        }
        let r = self.check_lost_in_jeopardy(i, &events, single_link_losses, llt_downs);
        self.record(r);
        self.check_jeopardy(i);
    }

    /// A member lost while in jeopardy (LLT had had one link left to it for
    /// the grace) is flagged `lost_in_jeopardy` in the port a change that
    /// drops it (HAD must not take its groups over without fencing), and
    /// only such a member: a node whose links all time out within the
    /// grace died. The glue must give GAB the count before the last link
    /// went, not 0.
    fn check_lost_in_jeopardy(
        &mut self,
        i: usize,
        events: &[GabEvent],
        single: BTreeSet<NodeId>,
        events_llt_down: BTreeSet<NodeId>,
    ) -> Result<(), String> {
        let crash_links = &self.crash_links;
        let Some(node) = self.nodes[i].as_mut() else { return Ok(()) };
        let jt = &mut node.jt;
        let mut maybe: BTreeSet<NodeId> = jt.maybe.union(&single).copied().collect();
        let mut installed = false;
        for e in events {
            let GabEvent::Membership { port: PORT_A, members, lost_in_jeopardy, .. } = e else { continue };
            let lost: BTreeSet<NodeId> = jt.members.difference(members).copied().collect();
            if let Some(p) = lost_in_jeopardy.iter().find(|p| !lost.contains(p) || !maybe.contains(p)) {
                return Err(format!("jeopardy: node {i} flags {p} lost in jeopardy; it was not lost with one link left"));
            }
            // A crash silences every link at once: a death, not jeopardy
            // (HAD would refuse to fail the node's groups over).
            if let Some(p) = lost_in_jeopardy.iter().find(|&&p| crash_links.contains(&(i, p as usize))) {
                return Err(format!("jeopardy: node {i} flags {p} lost in jeopardy, but {p} crashed with several links alive"));
            }
            if !installed {
                if let Some(p) = lost.intersection(&jt.surely).find(|p| !lost_in_jeopardy.contains(p)) {
                    return Err(format!("jeopardy: node {i} lost {p} with one link left, not flagged lost in jeopardy"));
                }
            }
            installed = true;
            jt.members = members.clone();
            jt.surely.clear();
            // Losses of this pump may come after the install: GAB keeps them.
            maybe = single.clone();
        }
        if !installed {
            jt.surely.extend(single.iter().copied());
        }
        jt.maybe = maybe;
        let now = self.now;
        // A peer LLT reported down starts afresh (as in the glue).
        for e in events_llt_down {
            jt.alive.remove(&e);
        }
        jt.alive = node
            .llt
            .open_peers()
            .map(|p| {
                let k = links_alive(&node.llt, p);
                let since = jt.alive.get(&p).filter(|(old, _)| *old == k).map_or(now, |&(_, t)| t);
                (p, (k, since))
            })
            .collect();
        Ok(())
    }

    /// Jeopardy follows LLT: a member is in jeopardy exactly when LLT has
    /// had one link alive to it for the jeopardy grace (the glue keeps
    /// GAB's link counts current).
    fn check_jeopardy(&mut self, i: usize) {
        let now = self.now;
        let Some(node) = self.nodes[i].as_ref() else { return };
        let Some((_, members)) = node.gab.membership() else { return };
        let jeopardy = node.gab.jeopardy();
        let grace = jeopardy_grace(&node.llt);
        for m in members {
            if m as usize == i || !node.glue.is_up(m) {
                continue;
            }
            let Some(&(alive, since)) = node.jt.alive.get(&m) else { continue };
            let expected = alive == 1 && now.since(since) >= grace;
            if expected != jeopardy.contains(&m) {
                let msg = format!(
                    "jeopardy: node {i} has had {alive} links alive to {m} for {} us (grace {} us), GAB's jeopardy is {jeopardy:?}",
                    now.since(since).as_micros(),
                    grace.as_micros()
                );
                return self.violation(msg);
            }
        }
    }

    fn apply(&mut self, f: Fault) {
        if self.trace {
            eprintln!("{:>10} fault {f:?}", self.now.as_micros());
        }
        let links: Vec<LinkId> = (0..self.p.links as LinkId).collect();
        match f {
            Fault::Loss(l, pct) => self.net.loss[l as usize] = pct,
            Fault::Delay(l, d) => self.net.delay[l as usize] = d,
            Fault::SegmentDown(l) => self.net.seg_down[l as usize] = true,
            Fault::SegmentUp(l) => self.net.seg_down[l as usize] = false,
            Fault::Block(a, b, ls) => ls.iter().for_each(|&l| self.net.block(a, b, l)),
            Fault::Unblock(a, b, ls) => ls.iter().for_each(|&l| self.net.unblock(a, b, l)),
            Fault::Partition(group) | Fault::Unpartition(group) if group.is_empty() => {}
            Fault::Partition(group) => {
                for a in 0..self.nodes.len() {
                    for b in 0..self.nodes.len() {
                        if group.contains(&a) != group.contains(&b) {
                            links.iter().for_each(|&l| self.net.block(a, b, l));
                        }
                    }
                }
            }
            Fault::Unpartition(group) => {
                for a in 0..self.nodes.len() {
                    for b in 0..self.nodes.len() {
                        if group.contains(&a) != group.contains(&b) {
                            links.iter().for_each(|&l| self.net.unblock(a, b, l));
                        }
                    }
                }
            }
            Fault::Crash(i) => {
                self.nodes[i] = None;
                self.check.crashed(i);
                for (j, node) in self.nodes.iter().enumerate() {
                    let Some(n) = node.as_ref().filter(|n| n.llt.is_open(i as NodeId)) else { continue };
                    let mut heard: Vec<Time> = (0..self.p.links as LinkId)
                        .filter(|&l| n.llt.link_state(i as NodeId, l).is_alive())
                        .filter_map(|l| n.llt.last_rx(i as NodeId, l))
                        .collect();
                    heard.sort();
                    if let [.., second, first] = heard[..] {
                        if first.since(second) < jeopardy_grace(&n.llt) {
                            self.crash_links.insert((j, i));
                        }
                    }
                }
            }
            Fault::Restart(i) => {
                if self.nodes[i].is_none() {
                    self.boot(i);
                }
            }
        }
    }
}

/// A random fault schedule within the faulty phase; every fault is undone
/// by its end.
fn schedule(rng: &mut Rng, p: &LltGabSimParams) -> Vec<(Time, Fault)> {
    let end = p.duration.as_micros();
    let n = p.nodes as u64;
    let nl = p.links as u64;
    // Faults start once the cluster has formed (about 0.5 s).
    let at = |rng: &mut Rng| Time(500_000 + rng.below(end.saturating_sub(500_000)));
    // Short (under peerinact: only delay) and long (peers go down) alike.
    let span = |rng: &mut Rng| Dur(rng.below(3_000_000));
    let mut f = Vec::new();
    for l in 0..nl as LinkId {
        if rng.chance(50) {
            f.push((at(rng), Fault::Loss(l, rng.below(30) as u32)));
        }
        if rng.chance(30) {
            let t = at(rng);
            f.push((t, Fault::Delay(l, Dur(rng.below(20_000)))));
            f.push((t + span(rng), Fault::Delay(l, Dur::ZERO)));
        }
    }
    // Links that may fail for good: all, or all but the last one (peers
    // then never lose every link and LLT keeps them up).
    let nf = if p.partitions { nl } else { nl - 1 };
    // One link down for everybody: peers in jeopardy when one is left.
    for _ in 0..if nf > 0 { rng.below(4) } else { 0 } {
        let l = rng.below(nf) as LinkId;
        let t = at(rng);
        f.push((t, Fault::SegmentDown(l)));
        f.push((t + span(rng), Fault::SegmentUp(l)));
    }
    // One-way: one link, or every link, from a to b.
    for _ in 0..if nf > 0 { rng.below(4) } else { 0 } {
        let a = rng.below(n) as usize;
        let b = ((a as u64 + 1 + rng.below(n - 1)) % n) as usize;
        let ls: Vec<LinkId> = if p.partitions && rng.chance(50) { (0..nl as LinkId).collect() } else { vec![rng.below(nf) as LinkId] };
        let t = at(rng);
        f.push((t, Fault::Block(a, b, ls.clone())));
        f.push((t + span(rng), Fault::Unblock(a, b, ls)));
    }
    // Symmetric partitions.
    for _ in 0..if p.partitions { rng.below(3) } else { 0 } {
        let group: Vec<usize> = (0..p.nodes).filter(|_| rng.chance(50)).collect();
        if group.is_empty() || group.len() == p.nodes {
            continue;
        }
        let t = at(rng);
        f.push((t, Fault::Partition(group.clone())));
        f.push((t + span(rng), Fault::Unpartition(group)));
    }
    if p.crashes {
        for _ in 0..rng.below(3) {
            let i = rng.below(n) as usize;
            let t = at(rng);
            f.push((t, Fault::Crash(i)));
            // Faster than peerinact (LLT sees a new nonce: reset) or slower.
            f.push((t + Dur(100_000 + rng.below(2_500_000)), Fault::Restart(i)));
        }
    }
    let end = Time(end);
    for l in 0..nl as LinkId {
        f.push((end, Fault::Loss(l, 0)));
    }
    // Every fault is undone by the end of the faulty phase.
    for (t, _) in f.iter_mut() {
        if *t > end {
            *t = end;
        }
    }
    // Stable: undo events moved to the end keep their order after their do.
    f.sort_by_key(|(t, _)| *t);
    f
}
