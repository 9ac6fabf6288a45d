//! The GAB core of one node.
//!
//! **Order.** Inside a view, the leader (lowest node id) orders every
//! submission; members deliver what it orders as it arrives. LLT delivers
//! each peer's messages reliably and in order, so every member receives a
//! prefix of the leader's stream and FIFO per sender follows.
//!
//! **Views.** A node's candidates are itself and the peers whose LLT is up
//! and whose GAB said hello (a peer that LLT reports down stays a candidate
//! for the stable timeout). When the candidates differ from the view, or a
//! member's LLT channel was reset, the lowest candidate proposes a new view.
//! Candidates freeze their old view and answer with its unstable log tail;
//! the proposer sends each the messages of its old view it lacks (the
//! longest prefix any survivor holds), then everyone installs the new view.
//! So every survivor of a view delivers the same messages before the next
//! one (virtual synchrony), and a message is delivered to all survivors or
//! to none. Submissions not yet delivered are resubmitted in the new view;
//! a replicated map of the highest submission delivered per origin keeps
//! delivery exactly-once.
//!
//! **No healthy node left out.** Fencing races on every membership loss,
//! so a view must not drop a node that is merely slow to be seen. Hellos
//! carry whom the sender is connected to; a proposer waits (up to the join
//! wait) for a node a candidate sees that its own LLT has not shown it yet,
//! and marks a proposal that leaves such a node out as forced. A candidate
//! refuses an unforced proposal that leaves out a connected member of its
//! view, or one with a stale attempt, or one from a node that is not the
//! lowest it knows, and says why, so the proposer tries again at once
//! instead of timing it out. An LLT reset with a member restarts a pending
//! proposal (its messages may be lost).
//!
//! **Seeding.** No view forms until `seed_n` nodes see each other, or an
//! administrator seeds by hand, or a seeded peer is seen.

use crate::msg::{self, Attempt, Body, GabMsg, Install, Ordered, State, SubmitId};
use crate::{Port, PORT_A};
use llt::core::Dest;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug, Clone)]
pub struct GabConfig {
    pub node: NodeId,
    /// `gabconfig -c -n N`.
    pub seed_n: usize,
    /// How long a peer LLT reports down stays a member (`gabconfig -t`).
    pub stable_timeout: Dur,
    /// How long a proposer waits for answers before dropping the silent.
    pub propose_timeout: Dur,
    /// How long a proposer waits for a node that a candidate is connected
    /// to but its own LLT has not shown it yet (discovery in progress)
    /// before proposing without it.
    pub join_wait: Dur,
    /// Most submissions of this node waiting to be ordered (backpressure).
    pub max_pending: usize,
    /// Distinguishes lives of this node's daemon; must grow from one life
    /// to the next (the daemon uses its start time in seconds).
    pub incarnation: u32,
}

impl GabConfig {
    pub fn new(node: NodeId, seed_n: usize, incarnation: u32) -> GabConfig {
        GabConfig {
            node,
            seed_n,
            stable_timeout: Dur::from_millis(5000),
            propose_timeout: Dur::from_millis(1000),
            join_wait: Dur::from_millis(1000),
            max_pending: 512,
            incarnation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GabEvent {
    /// A port's membership changed (port a: the node membership).
    Membership { port: Port, gen: u64, members: BTreeSet<NodeId>, jeopardy: BTreeSet<NodeId>, lost_in_jeopardy: BTreeSet<NodeId> },
    /// A message for a port this node registered, in the total order.
    Deliver { port: Port, id: SubmitId, data: Vec<u8>, unicast: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GabError {
    #[error("port {} is not registered on this node", *.0 as char)]
    NotRegistered(Port),
    #[error("too many messages waiting to be ordered: retry")]
    WouldBlock,
}

#[derive(Debug, Clone, Default)]
struct PeerInfo {
    llt_up: bool,
    down_since: Option<Time>,
    hello: bool,
    seeded: bool,
    /// LLT went down (and maybe up) since the current view: resync needed.
    reset: bool,
    links: usize,
    /// The peers this peer last said it is connected to.
    sees: BTreeSet<NodeId>,
}

#[derive(Debug, Clone)]
struct View {
    gen: u64,
    members: BTreeSet<NodeId>,
    leader: NodeId,
}

struct Proposal {
    attempt: Attempt,
    members: BTreeSet<NodeId>,
    states: BTreeMap<NodeId, State>,
    deadline: Time,
}

pub struct Gab {
    cfg: GabConfig,
    seeded: bool,
    peers: BTreeMap<NodeId, PeerInfo>,
    view: Option<View>,
    /// Old view frozen by a proposal we answered: no delivery until install.
    frozen: Option<Attempt>,
    next_seq: u64,
    log: BTreeMap<u64, Ordered>,
    /// Payload bytes in `log` (on the leader: ordered, not yet stable).
    log_bytes: usize,
    /// Leader: submissions waiting until enough of the log is stable.
    held: VecDeque<(SubmitId, Body)>,
    /// Member: payload bytes delivered since the last ack.
    unacked_bytes: usize,
    /// A local client is behind on its deliveries: hold acks, so the
    /// leader (bounded by the unstable log) slows every sender down.
    receiver_busy: bool,
    // Leader side.
    leader_next: u64,
    acks: BTreeMap<NodeId, u64>,
    stable: u64,
    last_ack_sent: u64,
    delivered: BTreeMap<NodeId, (u32, u64)>,
    my_lseq: u64,
    pending: VecDeque<(SubmitId, Body)>,
    ports: BTreeMap<Port, (u64, BTreeSet<NodeId>)>,
    my_ports: BTreeSet<Port>,
    gen_counter: u32,
    attempt_seen: Attempt,
    proposal: Option<Proposal>,
    /// Nodes a candidate sees and we do not: until when we wait for each
    /// (None: we waited and gave up).
    waiting: BTreeMap<NodeId, Option<Time>>,
    /// Who lost membership while in jeopardy, for the next port a event.
    jeopardy_at_loss: BTreeSet<NodeId>,
    next_hello: Time,
    out: VecDeque<(Dest, Vec<u8>)>,
    events: VecDeque<GabEvent>,
    pub dropped_malformed: u64,
}

impl Gab {
    pub fn new(cfg: GabConfig, now: Time) -> Gab {
        Gab {
            seeded: cfg.seed_n <= 1,
            cfg,
            peers: BTreeMap::new(),
            view: None,
            frozen: None,
            next_seq: 1,
            log: BTreeMap::new(),
            log_bytes: 0,
            held: VecDeque::new(),
            unacked_bytes: 0,
            receiver_busy: false,
            leader_next: 1,
            acks: BTreeMap::new(),
            stable: 0,
            last_ack_sent: 0,
            delivered: BTreeMap::new(),
            my_lseq: 0,
            pending: VecDeque::new(),
            ports: BTreeMap::new(),
            my_ports: BTreeSet::new(),
            gen_counter: 0,
            attempt_seen: (0, 0),
            proposal: None,
            waiting: BTreeMap::new(),
            jeopardy_at_loss: BTreeSet::new(),
            next_hello: now,
            out: VecDeque::new(),
            events: VecDeque::new(),
            dropped_malformed: 0,
        }
    }

    pub fn node(&self) -> NodeId {
        self.cfg.node
    }
    pub fn is_seeded(&self) -> bool {
        self.seeded
    }
    /// Whether a submission now would be refused with WouldBlock.
    pub fn would_block(&self) -> bool {
        self.pending.len() >= self.cfg.max_pending
    }
    pub fn config(&self) -> &GabConfig {
        &self.cfg
    }
    /// `gabconfig -t`: takes effect for peers already down too.
    pub fn set_stable_timeout(&mut self, now: Time, t: Dur) {
        self.cfg.stable_timeout = t;
        self.evaluate(now);
    }
    /// Current generation and members of port a.
    pub fn membership(&self) -> Option<(u64, BTreeSet<NodeId>)> {
        self.view.as_ref().map(|v| (v.gen, v.members.clone()))
    }
    /// Generation and members of a client port.
    pub fn port_membership(&self, port: Port) -> Option<(u64, BTreeSet<NodeId>)> {
        if port == PORT_A {
            return self.membership();
        }
        self.ports.get(&port).filter(|(_, m)| !m.is_empty()).cloned()
    }
    /// Members reachable over exactly one LLT link.
    pub fn jeopardy(&self) -> BTreeSet<NodeId> {
        let Some(v) = &self.view else { return BTreeSet::new() };
        v.members.iter().copied().filter(|m| self.peers.get(m).is_some_and(|p| p.llt_up && p.links == 1)).collect()
    }
    /// One line of internal state, for simulator traces and failures.
    pub fn debug_state(&self) -> String {
        format!(
            "node {} seeded={} view={:?} frozen={:?} next_seq={} leader_next={} pending={} log={} stable={} ports={:?}",
            self.cfg.node, self.seeded, self.view.as_ref().map(|v| (v.gen, v.members.clone())), self.frozen,
            self.next_seq, self.leader_next, self.pending.len(), self.log.len(), self.stable, self.ports
        )
    }

    pub fn poll_send(&mut self) -> Option<(Dest, Vec<u8>)> {
        self.out.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<GabEvent> {
        self.events.pop_front()
    }

    // ----- inputs from LLT -------------------------------------------------

    pub fn llt_peer_up(&mut self, now: Time, peer: NodeId) {
        let p = self.peers.entry(peer).or_default();
        p.llt_up = true;
        p.down_since = None;
        p.reset = true;
        p.hello = false;
        self.abandon_proposal_with(peer);
        self.send(Dest::Node(peer), &self.hello());
        self.evaluate(now);
    }

    /// LLT renewed its session with `peer`: what was in flight either way
    /// is lost, maybe our proposal or its answer. Start over rather than
    /// wait for the timeout and drop a node that did answer.
    fn abandon_proposal_with(&mut self, peer: NodeId) {
        if self.proposal.as_ref().is_some_and(|p| p.members.contains(&peer)) {
            self.proposal = None;
        }
    }

    pub fn llt_peer_down(&mut self, now: Time, peer: NodeId) {
        let p = self.peers.entry(peer).or_default();
        if p.llt_up && p.links == 1 {
            self.jeopardy_at_loss.insert(peer);
        }
        p.llt_up = false;
        p.down_since = Some(now);
        p.reset = true;
        p.links = 0;
        self.abandon_proposal_with(peer);
        self.evaluate(now);
    }

    /// Number of LLT links alive to a peer (jeopardy at exactly one).
    pub fn llt_links(&mut self, peer: NodeId, alive: usize) {
        self.peers.entry(peer).or_default().links = alive;
    }

    pub fn llt_deliver(&mut self, now: Time, from: NodeId, bytes: &[u8]) {
        let m = match msg::decode(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.dropped_malformed += 1;
                return;
            }
        };
        match m {
            GabMsg::Hello { seeded, gen: _, attempt, sees } => {
                self.attempt_seen = self.attempt_seen.max((attempt.0, 0));
                let p = self.peers.entry(from).or_default();
                let first = !p.hello;
                p.hello = true;
                p.sees = sees;
                p.seeded |= seeded;
                if seeded {
                    // Seeding spreads: a node that sees a seeded peer joins
                    // the running cluster rather than waiting for N.
                    self.seeded = true;
                }
                if first {
                    self.send(Dest::Node(from), &self.hello());
                }
            }
            GabMsg::Submit { gen, id, body } => self.on_submit(now, from, gen, id, body),
            GabMsg::Ordered { msg, stable } => self.on_ordered(from, msg, stable),
            GabMsg::Ack { gen, next } => {
                if self.view.as_ref().is_some_and(|v| v.gen == gen && v.leader == self.cfg.node) {
                    self.acks.insert(from, next);
                    self.recompute_stable();
                }
            }
            GabMsg::Propose { attempt, members, force } => self.on_propose(now, from, attempt, members, force),
            GabMsg::Refuse { attempt, seen, sees, lower } => self.on_refuse(from, attempt, seen, sees, lower),
            GabMsg::State(s) => self.on_state(now, from, *s),
            GabMsg::Install(i) => self.on_install(now, from, *i),
            GabMsg::Leave => {
                // Not a candidate until it says hello again (a new life).
                if let Some(p) = self.peers.get_mut(&from) {
                    p.hello = false;
                }
            }
        }
        self.evaluate(now);
    }

    // ----- inputs from clients and the administrator -----------------------

    /// `gabconfig -U`: tell every peer this GAB stops; the caller drops
    /// the core after handing these messages to LLT.
    pub fn leave(&mut self) {
        let targets: Vec<NodeId> = self.peers.iter().filter(|(_, p)| p.llt_up).map(|(&id, _)| id).collect();
        for id in targets {
            self.send(Dest::Node(id), &GabMsg::Leave);
        }
    }

    /// `gabconfig -x`: seed now, with whoever is here.
    pub fn seed(&mut self, now: Time) {
        self.seeded = true;
        self.evaluate(now);
    }

    pub fn register(&mut self, now: Time, port: Port) {
        if self.my_ports.insert(port) {
            self.submit(now, Body::PortJoin { port });
        }
    }

    pub fn unregister(&mut self, now: Time, port: Port) {
        if self.my_ports.remove(&port) {
            self.submit(now, Body::PortLeave { port });
        }
    }

    pub fn broadcast(&mut self, now: Time, port: Port, data: Vec<u8>) -> Result<SubmitId, GabError> {
        self.check_port(port)?;
        Ok(self.submit(now, Body::Broadcast { port, data }))
    }

    pub fn unicast(&mut self, now: Time, port: Port, dest: NodeId, data: Vec<u8>) -> Result<SubmitId, GabError> {
        self.check_port(port)?;
        Ok(self.submit(now, Body::Unicast { port, dest, data }))
    }

    fn check_port(&self, port: Port) -> Result<(), GabError> {
        if !self.my_ports.contains(&port) {
            return Err(GabError::NotRegistered(port));
        }
        if self.pending.len() >= self.cfg.max_pending {
            return Err(GabError::WouldBlock);
        }
        Ok(())
    }

    fn submit(&mut self, now: Time, body: Body) -> SubmitId {
        self.my_lseq += 1;
        let id = SubmitId { origin: self.cfg.node, inc: self.cfg.incarnation, lseq: self.my_lseq };
        self.pending.push_back((id, body.clone()));
        self.forward(now, id, body);
        id
    }

    /// Hand a submission to the current leader (if a view is running).
    fn forward(&mut self, now: Time, id: SubmitId, body: Body) {
        let Some(v) = &self.view else { return };
        if self.frozen.is_some() {
            return;
        }
        let (gen, leader) = (v.gen, v.leader);
        if leader == self.cfg.node {
            self.on_submit(now, self.cfg.node, gen, id, body);
        } else {
            self.send(Dest::Node(leader), &GabMsg::Submit { gen, id, body });
        }
    }

    // ----- ordering inside a view ------------------------------------------

    fn on_submit(&mut self, _now: Time, from: NodeId, gen: u64, id: SubmitId, body: Body) {
        let Some(v) = &self.view else { return };
        // A submission for another view is resubmitted by its origin after
        // the install; ordering it here could duplicate it.
        if v.gen != gen || v.leader != self.cfg.node || self.frozen.is_some() {
            return;
        }
        // LLT reset the channel from this member since the view began:
        // submissions it sent before the reset may be lost, and this one
        // may follow that gap. Ordering it would let the exactly-once map
        // skip the lost ones forever (found by the simulator: a member
        // that never left the view lost 40 broadcasts). A reset always
        // brings a view change; the origin resubmits everything
        // undelivered after it, in order.
        if self.peers.get(&from).is_some_and(|p| p.reset) {
            return;
        }
        // Flow control: the unstable part of the log is what a view change
        // must carry (in State and Install messages), so it stays bounded;
        // submissions wait here, in arrival order, until members ack.
        if !self.held.is_empty() || self.unstable_full() {
            self.held.push_back((id, body));
            return;
        }
        self.order(id, body);
    }

    fn unstable_full(&self) -> bool {
        self.leader_next.saturating_sub(self.stable) >= MAX_UNSTABLE_MSGS || self.log_bytes >= MAX_UNSTABLE_BYTES
    }

    /// Leader: order held submissions as far as stability allows.
    fn release_held(&mut self) {
        // A frozen view orders nothing more (its tail goes into the fill).
        if self.frozen.is_some() || self.view.as_ref().is_none_or(|v| v.leader != self.cfg.node) {
            return;
        }
        while !self.held.is_empty() && !self.unstable_full() {
            let (id, body) = self.held.pop_front().expect("not empty");
            self.order(id, body);
        }
    }

    /// Leader: give a submission the next place in the total order.
    fn order(&mut self, id: SubmitId, body: Body) {
        let Some(v) = &self.view else { return };
        let gen = v.gen;
        let msg = Ordered { gen, seq: self.leader_next, id, body };
        self.leader_next += 1;
        let members: Vec<NodeId> = v.members.iter().copied().filter(|&m| m != self.cfg.node).collect();
        let stable = self.stable;
        let bytes = msg::encode(&GabMsg::Ordered { msg: msg.clone(), stable });
        for m in members {
            self.out.push_back((Dest::Node(m), bytes.clone()));
        }
        self.on_ordered(self.cfg.node, msg, stable);
    }

    fn on_ordered(&mut self, from: NodeId, msg: Ordered, stable: u64) {
        let Some(v) = &self.view else { return };
        if v.gen != msg.gen || v.leader != from || self.frozen.is_some() {
            return;
        }
        if msg.seq != self.next_seq {
            // LLT is FIFO per peer: anything else is a stale duplicate.
            return;
        }
        let size = body_size(&msg.body);
        self.log_bytes += size;
        self.unacked_bytes += size;
        self.log.insert(msg.seq, msg.clone());
        self.deliver(msg);
        self.prune(stable);
        self.maybe_ack();
    }

    /// Apply one ordered message: the replicated state changes here and
    /// only here (and in `install`).
    fn deliver(&mut self, msg: Ordered) {
        self.next_seq = msg.seq + 1;
        let id = msg.id;
        let seen = self.delivered.get(&id.origin).copied();
        // Incarnations grow across restarts, so (inc, lseq) orders all
        // submissions of an origin.
        if seen.is_some_and(|d| d >= (id.inc, id.lseq)) {
            return; // resubmitted after a view change, already delivered
        }
        self.delivered.insert(id.origin, (id.inc, id.lseq));
        if id.origin == self.cfg.node {
            // Pending is in submission order: what is delivered is a prefix.
            while self.pending.front().is_some_and(|(p, _)| (p.inc, p.lseq) <= (id.inc, id.lseq)) {
                self.pending.pop_front();
            }
        }
        let me = self.cfg.node;
        match msg.body {
            Body::Broadcast { port, data } => {
                if self.my_ports.contains(&port) && self.ports.get(&port).is_some_and(|(_, m)| m.contains(&me)) {
                    self.events.push_back(GabEvent::Deliver { port, id, data, unicast: false });
                }
            }
            Body::Unicast { port, dest, data } => {
                if dest == me && self.my_ports.contains(&port) && self.ports.get(&port).is_some_and(|(_, m)| m.contains(&me)) {
                    self.events.push_back(GabEvent::Deliver { port, id, data, unicast: true });
                }
            }
            Body::PortJoin { port } => self.port_change(port, id.origin, true),
            Body::PortLeave { port } => self.port_change(port, id.origin, false),
        }
    }

    /// A generation no other view can have: the counter orders views a
    /// leader makes in one life; the leader's incarnation in the high half
    /// separates its lives (a restarted node knows nothing of the views
    /// its previous life made in another partition); the leader's id in
    /// the low bits separates leaders. `gabconfig -a` shows the low half.
    fn gen_of(counter: u32, leader_inc: u32, leader: NodeId) -> u64 {
        ((leader_inc as u64) << 32) | ((counter as u64) << 6) | leader as u64
    }

    fn new_gen(&mut self) -> u64 {
        self.gen_counter += 1;
        let v = self.view.as_ref().expect("port changes happen inside a view");
        (v.gen & !0xffff_ffff) | ((self.gen_counter as u64) << 6) | v.leader as u64
    }

    fn port_change(&mut self, port: Port, node: NodeId, join: bool) {
        let gen = self.new_gen();
        let entry = self.ports.entry(port).or_default();
        let changed = if join { entry.1.insert(node) } else { entry.1.remove(&node) };
        if changed {
            entry.0 = gen;
            let members = entry.1.clone();
            if self.my_ports.contains(&port) || node == self.cfg.node {
                let jeopardy = self.jeopardy().intersection(&members).copied().collect();
                self.events.push_back(GabEvent::Membership { port, gen, members, jeopardy, lost_in_jeopardy: BTreeSet::new() });
            }
        }
    }

    fn prune(&mut self, stable: u64) {
        if stable > self.stable {
            self.stable = stable;
        }
        while let Some((&s, _)) = self.log.first_key_value() {
            if s < self.stable {
                if let Some((_, m)) = self.log.pop_first() {
                    self.log_bytes -= body_size(&m.body);
                }
            } else {
                break;
            }
        }
    }

    /// The host's clients are behind (or caught up again). While busy this
    /// node acks nothing, so the cluster's unstable log fills and every
    /// sender gets backpressure: the cluster goes at the pace of its
    /// slowest reader, as CPG does, instead of queueing without bound.
    pub fn set_receiver_busy(&mut self, busy: bool) {
        if self.receiver_busy == busy {
            return;
        }
        self.receiver_busy = busy;
        if !busy {
            self.ack(true);
        }
    }

    /// Members report progress so the leader can declare messages stable.
    fn maybe_ack(&mut self) {
        self.ack(false);
    }

    fn ack(&mut self, now_anyway: bool) {
        let Some(v) = &self.view else { return };
        if self.receiver_busy || self.next_seq <= self.last_ack_sent {
            return;
        }
        if !now_anyway && self.next_seq < self.last_ack_sent + ACK_EVERY_MSGS && self.unacked_bytes < ACK_EVERY_BYTES {
            return;
        }
        self.last_ack_sent = self.next_seq;
        self.unacked_bytes = 0;
        let (gen, leader, next) = (v.gen, v.leader, self.next_seq);
        if leader == self.cfg.node {
            self.acks.insert(leader, next);
            self.recompute_stable();
        } else {
            self.send(Dest::Node(leader), &GabMsg::Ack { gen, next });
        }
    }

    fn recompute_stable(&mut self) {
        let Some(v) = &self.view else { return };
        let min = v.members.iter().map(|m| self.acks.get(m).copied().unwrap_or(0)).min().unwrap_or(0);
        if min > self.stable {
            self.prune(min);
            self.release_held();
        }
    }

    // ----- membership ------------------------------------------------------

    fn candidates(&self, now: Time) -> BTreeSet<NodeId> {
        let mut c: BTreeSet<NodeId> = [self.cfg.node].into();
        let in_view = |id: &NodeId| self.view.as_ref().is_some_and(|v| v.members.contains(id));
        for (&id, p) in &self.peers {
            let lingering = p.down_since.is_some_and(|t| now.since(t) < self.cfg.stable_timeout) && in_view(&id);
            if (p.llt_up && p.hello) || lingering {
                c.insert(id);
            }
        }
        c
    }

    /// Decide whether to seed or to propose a new view.
    fn evaluate(&mut self, now: Time) {
        if !self.seeded {
            let here = 1 + self.peers.values().filter(|p| p.llt_up && p.hello).count();
            if here >= self.cfg.seed_n {
                self.seeded = true;
            }
        }
        if !self.seeded {
            return;
        }
        let cand = self.candidates(now);
        let reset = self.view.as_ref().is_some_and(|v| v.members.iter().any(|m| self.peers.get(m).is_some_and(|p| p.reset)));
        let differs = self.view.as_ref().is_none_or(|v| v.members != cand);
        // A lower node proposes, or nothing to change.
        if cand.iter().next() != Some(&self.cfg.node) || !(differs || reset) {
            self.waiting.clear();
            return;
        }
        // Members that LLT reports down but that are still within the
        // stable timeout cannot answer: wait until they come back or leave.
        if cand.iter().any(|m| *m != self.cfg.node && self.peers.get(m).is_some_and(|p| !p.llt_up)) {
            return;
        }
        if matches!(&self.proposal, Some(p) if p.members == cand && now < p.deadline) {
            return;
        }
        // A node some candidate is connected to, that our LLT has not
        // shown us yet, is most likely being discovered: leaving it out
        // would drop a healthy node (and fencing would race against it).
        let missing = self.missing(&cand);
        let discovering: BTreeSet<NodeId> = missing.iter().copied().filter(|x| self.peers.get(x).is_none_or(|p| p.llt_up)).collect();
        self.waiting.retain(|id, _| discovering.contains(id));
        for &id in &discovering {
            let until = self.waiting.entry(id).or_insert(Some(now + self.cfg.join_wait));
            if until.is_some_and(|t| now >= t) {
                *until = None;
            }
        }
        if self.waiting.values().any(Option::is_some) {
            return;
        }
        let force = !missing.is_empty();
        self.propose(now, cand, force);
    }

    /// The peers our candidates report they are connected to and that are
    /// not candidates here. We wait for those our LLT has not reported
    /// down (discovery in progress); one it declared down is a failure.
    fn missing(&self, cand: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let mut missing = BTreeSet::new();
        for id in cand {
            if let Some(p) = self.peers.get(id) {
                missing.extend(p.sees.iter().filter(|x| **x != self.cfg.node && !cand.contains(x)));
            }
        }
        missing
    }

    /// Peers with LLT up that said hello.
    fn connected(&self) -> BTreeSet<NodeId> {
        self.peers.iter().filter(|(_, p)| p.llt_up && p.hello).map(|(&id, _)| id).collect()
    }

    fn propose(&mut self, now: Time, members: BTreeSet<NodeId>, force: bool) {
        let attempt = (self.attempt_seen.0 + 1, self.cfg.node);
        self.attempt_seen = attempt;
        self.proposal = Some(Proposal { attempt, members: members.clone(), states: BTreeMap::new(), deadline: now + self.cfg.propose_timeout });
        let bytes = msg::encode(&GabMsg::Propose { attempt, members: members.clone(), force });
        for &m in &members {
            if m != self.cfg.node {
                self.out.push_back((Dest::Node(m), bytes.clone()));
            }
        }
        self.on_propose(now, self.cfg.node, attempt, members, force);
    }

    fn on_propose(&mut self, now: Time, from: NodeId, attempt: Attempt, members: BTreeSet<NodeId>, force: bool) {
        if !members.contains(&self.cfg.node) {
            return;
        }
        if from != self.cfg.node {
            // Say why we do not answer, so the proposer tries again at
            // once (higher attempt, or waiting for whom it left out) or
            // when we say hello again, rather than timing us out.
            // Only the lowest node we know may lead us.
            let lower = self.candidates(now).iter().next().is_some_and(|&low| low < from);
            let sees = self.connected();
            let in_view = |id: &NodeId| self.view.as_ref().is_some_and(|v| v.members.contains(id));
            let left_out = !force && sees.iter().any(|id| in_view(id) && !members.contains(id));
            if lower || attempt < self.attempt_seen || left_out {
                let refuse = GabMsg::Refuse { attempt, seen: self.attempt_seen, sees, lower };
                self.send(Dest::Node(from), &refuse);
                return;
            }
        } else if attempt < self.attempt_seen {
            return;
        }
        self.attempt_seen = attempt;
        self.seeded = true;
        self.frozen = Some(attempt);
        let state = State {
            attempt,
            gen: self.view.as_ref().map(|v| v.gen),
            next_seq: self.next_seq,
            log: self.log.values().cloned().collect(),
            ports: self.my_ports.clone(),
            delivered: self.delivered.clone(),
            gen_counter: self.gen_counter,
        };
        if from == self.cfg.node {
            self.on_state(now, from, state);
        } else {
            self.send(Dest::Node(from), &GabMsg::State(Box::new(state)));
        }
    }

    fn on_refuse(&mut self, from: NodeId, attempt: Attempt, seen: Attempt, sees: BTreeSet<NodeId>, lower: bool) {
        if !self.proposal.as_ref().is_some_and(|p| p.attempt == attempt && p.members.contains(&from)) {
            return;
        }
        self.attempt_seen = self.attempt_seen.max(seen);
        if let Some(p) = self.peers.get_mut(&from) {
            p.sees = sees;
            if lower {
                // Not a candidate until it says hello again.
                p.hello = false;
            }
        }
        // Abandoned: evaluate() proposes again with what we just learnt.
        self.proposal = None;
    }

    fn on_state(&mut self, now: Time, from: NodeId, state: State) {
        let Some(p) = &mut self.proposal else { return };
        if state.attempt != p.attempt || !p.members.contains(&from) {
            return;
        }
        p.states.insert(from, state);
        if p.states.len() == p.members.len() {
            self.conclude(now);
        }
    }

    /// Every candidate answered: compute fills and install everywhere.
    fn conclude(&mut self, now: Time) {
        let Some(p) = self.proposal.take() else { return };
        let gen_counter = p.states.values().map(|s| s.gen_counter).max().unwrap_or(0);
        // The longest prefix of each old view that any survivor holds.
        let mut logs: BTreeMap<u64, BTreeMap<u64, Ordered>> = BTreeMap::new();
        for s in p.states.values() {
            if let Some(g) = s.gen {
                let l = logs.entry(g).or_default();
                for m in &s.log {
                    l.entry(m.seq).or_insert_with(|| m.clone());
                }
            }
        }
        // Ports after the fills: replay each old view's tail on its ports.
        let leader = *p.members.iter().next().expect("members include the proposer");
        debug_assert_eq!(leader, self.cfg.node, "the proposer is the lowest member");
        let gen = Self::gen_of(gen_counter + 1, self.cfg.incarnation, leader);
        let mut ports: BTreeMap<Port, (u64, BTreeSet<NodeId>)> = BTreeMap::new();
        for (&node, s) in &p.states {
            for &port in &s.ports {
                ports.entry(port).or_insert_with(|| (gen, BTreeSet::new())).1.insert(node);
            }
        }
        let mut delivered: BTreeMap<NodeId, (u32, u64)> = BTreeMap::new();
        let mut fills = BTreeMap::new();
        for (&node, s) in &p.states {
            let fill: Vec<Ordered> = match s.gen {
                Some(g) => logs.get(&g).map(|l| l.range(s.next_seq..).map(|(_, m)| m.clone()).collect()).unwrap_or_default(),
                None => Vec::new(),
            };
            let mut d = s.delivered.clone();
            for m in &fill {
                note_delivered(&mut d, m.id);
            }
            for (o, v) in d {
                let e = delivered.entry(o).or_insert(v);
                if *e < v {
                    *e = v;
                }
            }
            fills.insert(node, fill);
        }
        // Everyone else's Install goes out before ours is applied: applying
        // it orders our pending submissions at once, and LLT's FIFO must
        // carry the Install to each member ahead of those.
        let mut mine = None;
        for (node, fill) in fills {
            let install = Install {
                attempt: p.attempt,
                gen,
                members: p.members.clone(),
                fill,
                ports: ports.clone(),
                delivered: delivered.clone(),
                gen_counter: gen_counter + 1,
            };
            if node == self.cfg.node {
                mine = Some(install);
            } else {
                self.send(Dest::Node(node), &GabMsg::Install(Box::new(install)));
            }
        }
        if let Some(install) = mine {
            self.on_install(now, self.cfg.node, install);
        }
    }

    fn on_install(&mut self, now: Time, from: NodeId, i: Install) {
        if self.frozen != Some(i.attempt) || i.attempt.1 != from {
            return;
        }
        // Finish the old view exactly as every other survivor of it does.
        self.frozen = None;
        for m in i.fill {
            if m.seq == self.next_seq {
                self.deliver(m);
            }
        }
        let old_members = self.view.as_ref().map(|v| v.members.clone()).unwrap_or_default();
        let leader = *i.members.iter().next().expect("non-empty view");
        self.view = Some(View { gen: i.gen, members: i.members.clone(), leader });
        self.next_seq = 1;
        self.leader_next = 1;
        self.log.clear();
        self.log_bytes = 0;
        // Their origins resubmit them to the new leader.
        self.held.clear();
        self.unacked_bytes = 0;
        self.acks.clear();
        self.stable = 0;
        self.last_ack_sent = 0;
        self.gen_counter = i.gen_counter;
        self.delivered = i.delivered;
        for p in self.peers.values_mut() {
            p.reset = false;
        }
        let lost: BTreeSet<NodeId> = old_members.difference(&i.members).copied().collect();
        let lost_in_jeopardy: BTreeSet<NodeId> = lost.intersection(&self.jeopardy_at_loss).copied().collect();
        self.jeopardy_at_loss.clear();
        let jeopardy = self.jeopardy();
        self.events.push_back(GabEvent::Membership {
            port: PORT_A,
            gen: i.gen,
            members: i.members.clone(),
            jeopardy: jeopardy.clone(),
            lost_in_jeopardy: lost_in_jeopardy.clone(),
        });
        // Client ports: everyone learns the same memberships and gens.
        let old_ports = std::mem::replace(&mut self.ports, i.ports);
        for (&port, (gen, members)) in &self.ports {
            let before = old_ports.get(&port).map(|(_, m)| m.clone()).unwrap_or_default();
            if self.my_ports.contains(&port) && (before != *members || lost.iter().any(|l| before.contains(l))) {
                // HAD watches its own port: it needs the jeopardy facts too.
                self.events.push_back(GabEvent::Membership {
                    port,
                    gen: *gen,
                    members: members.clone(),
                    jeopardy: jeopardy.intersection(members).copied().collect(),
                    lost_in_jeopardy: lost_in_jeopardy.intersection(&before).copied().collect(),
                });
            }
        }
        // What we submitted and is not delivered yet goes to the new leader.
        let me = self.cfg.node;
        let done = self.delivered.get(&me).copied();
        self.pending.retain(|(id, _)| done.is_none_or(|d| d < (id.inc, id.lseq)));
        let pending: Vec<(SubmitId, Body)> = self.pending.iter().cloned().collect();
        for (id, body) in pending {
            self.forward(now, id, body);
        }
    }

    // ----- time ------------------------------------------------------------

    pub fn poll_timeout(&self) -> Option<Time> {
        let mut t = Some(self.next_hello);
        let mut take = |x: Time| t = Some(t.map_or(x, |y: Time| y.min(x)));
        if let Some(p) = &self.proposal {
            take(p.deadline);
        }
        for &until in self.waiting.values().flatten() {
            take(until);
        }
        for p in self.peers.values() {
            if let Some(d) = p.down_since {
                take(d + self.cfg.stable_timeout);
            }
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Time) {
        if now >= self.next_hello {
            self.next_hello = now + Dur::from_millis(1000);
            // Peers outside our view learn we are here (and seeded).
            self.hello_everyone();
        }
        let mut expired = false;
        for p in self.peers.values_mut() {
            if p.down_since.is_some_and(|t| now.since(t) >= self.cfg.stable_timeout) {
                p.down_since = None;
                expired = true;
            }
        }
        if expired {
            // A proposer we refused for a lower node may lead us now.
            self.hello_everyone();
        }
        for until in self.waiting.values_mut() {
            if until.is_some_and(|t| now >= t) {
                *until = None; // gave up waiting
            }
        }
        if self.proposal.as_ref().is_some_and(|p| now >= p.deadline) {
            // Drop the silent and try again with those who answered.
            let p = self.proposal.take().expect("checked");
            let answered: BTreeSet<NodeId> = p.states.keys().copied().collect();
            for id in p.members.difference(&answered) {
                if let Some(pi) = self.peers.get_mut(id) {
                    pi.hello = false;
                }
            }
        }
        self.evaluate(now);
    }

    fn hello_everyone(&mut self) {
        let hello = self.hello();
        let targets: Vec<NodeId> = self.peers.iter().filter(|(_, p)| p.llt_up).map(|(&id, _)| id).collect();
        for id in targets {
            self.send(Dest::Node(id), &hello);
        }
    }

    fn hello(&self) -> GabMsg {
        GabMsg::Hello { seeded: self.seeded, gen: self.view.as_ref().map(|v| v.gen), attempt: self.attempt_seen, sees: self.connected() }
    }

    fn send(&mut self, to: Dest, m: &GabMsg) {
        self.out.push_back((to, msg::encode(m)));
    }
}

/// Members ack this often (in messages or payload bytes, whichever first);
/// the leader holds new submissions while the unstable log is this large.
/// Acks come well inside the limits, so holding never waits forever.
const ACK_EVERY_MSGS: u64 = 16;
const ACK_EVERY_BYTES: usize = 32 * 1024;
const MAX_UNSTABLE_MSGS: u64 = 1024;
const MAX_UNSTABLE_BYTES: usize = 1024 * 1024;

fn body_size(b: &Body) -> usize {
    match b {
        Body::Broadcast { data, .. } | Body::Unicast { data, .. } => data.len() + 16,
        Body::PortJoin { .. } | Body::PortLeave { .. } => 16,
    }
}

fn note_delivered(d: &mut BTreeMap<NodeId, (u32, u64)>, id: SubmitId) {
    let e = d.entry(id.origin).or_insert((id.inc, 0));
    if *e < (id.inc, id.lseq) {
        *e = (id.inc, id.lseq);
    }
}
