//! The sans-IO LLT core of one node.
//!
//! Inputs: [`Core::handle_frame`] (a frame received on a link, with the
//! address it came from), [`Core::handle_timeout`], [`Core::send`] and timer
//! changes. Outputs: [`Core::poll_transmit`] (frames to put on links),
//! [`Core::poll_event`] (peer and link state changes, deliveries, duplicate
//! node ids), [`Core::poll_timeout`] (when to call `handle_timeout` next).
//! Time is always an argument; randomness comes from the seed in the
//! configuration; every map is ordered, so two cores fed the same inputs
//! produce the same outputs.
//!
//! Protocol in brief: every link broadcasts announcements (cluster id, node
//! id, nonce) so peers learn each other's addresses; each node then sends a
//! unicast heartbeat to each peer on each link; a link to a peer is UP while
//! frames arrive, in TROUBLE after peertrouble of silence, DOWN after
//! peerinact; a peer is OPEN while any link is alive. Data runs over a
//! reliable channel per peer (see [`channel`]) keyed by a pair of sessions:
//! either side renewing its session (restart, or declaring the other down)
//! resets the channel on both sides and is reported as the peer going down,
//! so "reliable while connected" never silently loses a message.

pub mod channel;
pub mod peer;

use crate::config::Timers;
use crate::time::{Dur, Time};
use crate::wire::{self, flags, Header, MsgType, DEST_ALL};
use crate::{LinkId, NodeId, MAX_NODE_ID};
pub use channel::ChannelParams;
pub use peer::{LinkAddr, LinkState, Peer, Silence};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use crate::rng::Rng;

/// One link as the core needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSetup {
    pub tag: String,
    pub lowpri: bool,
    /// Bytes a frame may carry on this link (Ethernet payload or UDP
    /// payload), header included.
    pub mtu: usize,
}

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub node_id: NodeId,
    pub cluster_id: u16,
    pub timers: Timers,
    pub links: Vec<LinkSetup>,
    pub excluded: BTreeSet<NodeId>,
    /// Seeds the nonce and session numbers.
    pub seed: u64,
    pub channel: ChannelParams,
    /// Largest message `send` accepts.
    pub max_message: usize,
}

impl CoreConfig {
    pub fn new(node_id: NodeId, cluster_id: u16, links: Vec<LinkSetup>, seed: u64) -> CoreConfig {
        CoreConfig {
            node_id,
            cluster_id,
            timers: Timers::default(),
            links,
            excluded: BTreeSet::new(),
            seed,
            channel: ChannelParams::default(),
            max_message: 256 * 1024,
        }
    }
}

/// Where a frame goes on its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst {
    /// Everybody on the link (Ethernet broadcast, UDP broadcast or set-addr peers).
    Broadcast,
    To(LinkAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub link: LinkId,
    pub dst: Dst,
    pub frame: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownReason {
    /// Every link silent for peerinact.
    Inactive,
    /// The peer renewed its session (restarted, or lost us and came back):
    /// whatever was in flight is gone.
    Reset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The duplicate-id listening period ended with no duplicate: running.
    Configured,
    /// Another node answered with our node id while we were listening: we
    /// refuse to run.
    DuplicateRefused { link: LinkId, from: LinkAddr },
    /// A node with our id appeared while we run: logged loudly, never merged.
    DuplicateNode { link: LinkId, from: LinkAddr, nonce: u32 },
    LinkState { peer: NodeId, link: LinkId, state: LinkState },
    PeerUp { peer: NodeId },
    PeerDown { peer: NodeId, reason: DownReason },
    /// A complete message from a peer, in order, exactly once.
    Deliver { peer: NodeId, port: u8, data: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("LLT is not running (still listening for a duplicate node id, or refused)")]
    NotRunning,
    #[error("node {0} is not reachable (no link to it is up)")]
    PeerDown(NodeId),
    #[error("the window to a peer is full: retry after acknowledgements")]
    WouldBlock,
    #[error("message of {0} bytes exceeds the maximum")]
    TooLarge(usize),
    #[error("node {0} is this node")]
    ToSelf(NodeId),
}

/// Destination of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dest {
    Node(NodeId),
    /// Every OPEN peer (each over its own reliable channel).
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Listening for a duplicate node id until the given time.
    Probing,
    Running,
    /// A duplicate node id answered: nothing is sent or accepted.
    Refused,
}

/// Counters shown by `lltstat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub snd_data: u64,
    pub snd_retransmit: u64,
    pub snd_heartbeat: u64,
    pub snd_announce: u64,
    pub snd_ack: u64,
    pub snd_nack: u64,
    pub snd_would_block: u64,
    pub rcv_data: u64,
    pub rcv_heartbeat: u64,
    pub rcv_announce: u64,
    pub rcv_ack: u64,
    pub rcv_nack: u64,
    pub rcv_duplicate: u64,
    pub rcv_out_of_window: u64,
    pub rcv_stale_session: u64,
    pub msgs_sent: u64,
    pub msgs_delivered: u64,
    pub dropped_foreign_cluster: u64,
    pub dropped_malformed: u64,
    pub dropped_not_for_us: u64,
    pub dropped_excluded: u64,
    pub dropped_duplicate_node: u64,
    /// Delivered for a port no client had bound (counted by the daemon).
    pub dropped_no_port: u64,
}

/// A peer link as `lltstat -nvv` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLinkStatus {
    pub link: LinkId,
    pub tag: String,
    pub state: LinkState,
    pub addr: Option<LinkAddr>,
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// The peer's last heartbeat on this link said it hears us here (data
    /// goes only to links where it does).
    pub hears_us: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node: NodeId,
    pub open: bool,
    pub seen: bool,
    pub links: Vec<PeerLinkStatus>,
    pub in_flight: usize,
}

/// Heartbeats due this close together are sent in one wake-up (VCS LLT's
/// internal tick is 50 ms).
const HB_COALESCE: Dur = Dur(50_000);

pub struct Core {
    cfg: CoreConfig,
    rng: Rng,
    nonce: u32,
    started: Time,
    phase: Phase,
    probe_until: Time,
    next_announce: Time,
    last_dup_answer: Option<Time>,
    dup_nonces_seen: BTreeSet<u32>,
    peers: BTreeMap<NodeId, Peer>,
    lowpri: Vec<bool>,
    frag_size: usize,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Core {
    /// A core that starts listening for a duplicate of its node id at `now`
    /// for `timers.dupwait`.
    pub fn new(cfg: CoreConfig, now: Time) -> Core {
        let mut rng = Rng::new(cfg.seed);
        let nonce = rng.nonzero();
        let lowpri = cfg.links.iter().map(|l| l.lowpri).collect();
        let min_mtu = cfg.links.iter().map(|l| l.mtu).min().unwrap_or(1500);
        let frag_size = min_mtu.saturating_sub(wire::HEADER_LEN).max(64);
        let probe_until = now + Dur::from_centis(cfg.timers.dupwait);
        Core {
            rng,
            nonce,
            started: now,
            phase: Phase::Probing,
            probe_until,
            next_announce: now,
            last_dup_answer: None,
            dup_nonces_seen: BTreeSet::new(),
            peers: BTreeMap::new(),
            lowpri,
            frag_size,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            cfg,
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }
    pub fn cluster_id(&self) -> u16 {
        self.cfg.cluster_id
    }
    pub fn nonce(&self) -> u32 {
        self.nonce
    }
    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn timers(&self) -> Timers {
        self.cfg.timers
    }
    pub fn links(&self) -> &[LinkSetup] {
        &self.cfg.links
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Count a frame the I/O layer dropped because it was addressed to
    /// another MAC (veth floods unknown unicast).
    pub fn count_not_for_us(&mut self) {
        self.stats.dropped_not_for_us += 1;
    }
    /// Count a frame the I/O layer could not use (runt, oversize).
    pub fn count_malformed(&mut self) {
        self.stats.dropped_malformed += 1;
    }
    /// Largest payload of one fragment.
    pub fn fragment_size(&self) -> usize {
        self.frag_size
    }

    /// Change timers at run time (`lltconfig -T`). Deadlines already
    /// scheduled keep their time; new ones use the new values.
    pub fn set_timers(&mut self, timers: Timers) -> Result<(), String> {
        timers.validate()?;
        self.cfg.timers = timers;
        Ok(())
    }

    pub fn is_open(&self, peer: NodeId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.open)
    }

    pub fn open_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.values().filter(|p| p.open).map(|p| p.id)
    }

    pub fn peer_status(&self) -> Vec<PeerStatus> {
        self.peers
            .values()
            .map(|p| PeerStatus {
                node: p.id,
                open: p.open,
                seen: p.seen,
                in_flight: p.send.in_flight(),
                links: p
                    .links
                    .iter()
                    .enumerate()
                    .map(|(i, l)| PeerLinkStatus {
                        link: i as LinkId,
                        tag: self.cfg.links[i].tag.clone(),
                        state: l.state,
                        addr: l.addr,
                        rx_frames: l.rx_frames,
                        tx_frames: l.tx_frames,
                        hears_us: l.hears_us,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Last time anything was received from a peer on a link (for tests and
    /// the simulator's checks).
    pub fn last_rx(&self, peer: NodeId, link: LinkId) -> Option<Time> {
        self.peers.get(&peer)?.links.get(link as usize)?.last_rx
    }

    pub fn link_state(&self, peer: NodeId, link: LinkId) -> LinkState {
        self.peers.get(&peer).and_then(|p| p.links.get(link as usize)).map_or(LinkState::Down, |l| l.state)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn hb_interval(&self, link: usize) -> Dur {
        let t = &self.cfg.timers;
        Dur::from_centis(if self.lowpri[link] { t.heartbeatlo } else { t.heartbeat })
    }

    fn silence(&self) -> Silence {
        let t = &self.cfg.timers;
        Silence {
            trouble_hi: Dur::from_centis(t.peertrouble),
            trouble_lo: Dur::from_centis(t.peertroublelo),
            inact: Dur::from_centis(t.peerinact),
        }
    }

    /// Announcements go out every second, faster when heartbeats are
    /// faster, so discovery never waits longer than the heartbeat cadence
    /// requires.
    fn announce_interval(&self) -> Dur {
        Dur::from_centis((self.cfg.timers.heartbeat * 2).clamp(1, 100))
    }

    /// When `handle_timeout` must run next.
    pub fn poll_timeout(&self) -> Option<Time> {
        match self.phase {
            Phase::Refused => None,
            Phase::Probing => Some(self.probe_until.min(self.next_announce)),
            Phase::Running => {
                let silence = self.silence();
                let mut t = self.next_announce;
                for p in self.peers.values() {
                    for l in &p.links {
                        if let Some(h) = l.next_hb {
                            t = t.min(h);
                        }
                    }
                    if let Some(d) = p.state_deadline(&self.lowpri, silence) {
                        t = t.min(d);
                    }
                    // A peer that is not open has no channel work to do.
                    if let Some(d) = p.channel_deadline(&self.cfg.channel).filter(|_| p.open) {
                        t = t.min(d);
                    }
                }
                Some(t)
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Time) {
        match self.phase {
            Phase::Refused => return,
            Phase::Probing => {
                if now >= self.probe_until {
                    self.phase = Phase::Running;
                    self.events.push_back(Event::Configured);
                    self.next_announce = now;
                }
            }
            Phase::Running => {}
        }
        if now >= self.next_announce {
            self.announce(now);
            self.next_announce = now + self.announce_interval();
        }
        if self.phase != Phase::Running {
            return;
        }
        self.check_liveness(now);
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            self.peer_timers(now, id);
        }
    }

    fn announce(&mut self, now: Time) {
        let mut h = self.header(MsgType::Announce, DEST_ALL, now);
        if self.phase == Phase::Probing {
            h.flags |= flags::PROBING;
        }
        for link in 0..self.cfg.links.len() {
            h.link = link as u8;
            let frame = wire::encode(&h, &[]);
            self.transmits.push_back(Transmit { link: link as LinkId, dst: Dst::Broadcast, frame });
            self.stats.snd_announce += 1;
        }
    }

    fn header(&self, t: MsgType, dest: NodeId, now: Time) -> Header {
        let mut h = Header::new(t, self.cfg.cluster_id, self.cfg.node_id, dest);
        h.nonce = self.nonce;
        h.time = (now.since(self.started).as_micros() / 10_000) as u32;
        h
    }

    /// Silence turns links to TROUBLE, then DOWN; a peer with no link alive
    /// is down and its channel is reset under a new session of ours.
    fn check_liveness(&mut self, now: Time) {
        let silence = self.silence();
        let max_message = self.cfg.max_message;
        for p in self.peers.values_mut() {
            for (i, l) in p.links.iter_mut().enumerate() {
                let Some(last) = l.last_rx else { continue };
                let silent = now.since(last);
                let new = if silent >= silence.inact {
                    LinkState::Down
                } else if silent >= silence.trouble(self.lowpri[i]) {
                    LinkState::Trouble
                } else {
                    LinkState::Up
                };
                // Silence only ever lowers a state; frames raise it.
                let lowered = matches!((l.state, new), (LinkState::Up, LinkState::Trouble | LinkState::Down) | (LinkState::Trouble, LinkState::Down));
                if lowered {
                    l.state = new;
                    self.events.push_back(Event::LinkState { peer: p.id, link: i as LinkId, state: new });
                }
            }
            if p.open && p.alive_links() == 0 {
                p.open = false;
                // Only our side renews: the peer may not have noticed
                // anything and keeps its session, which stays valid; it will
                // reset its half when it sees our new one.
                p.my_session = next_session(p.my_session);
                p.reset_channel(max_message);
                self.events.push_back(Event::PeerDown { peer: p.id, reason: DownReason::Inactive });
            }
        }
    }

    /// Heartbeats, acks, retransmission requests and timeout resends of one peer.
    fn peer_timers(&mut self, now: Time, id: NodeId) {
        for link in 0..self.cfg.links.len() {
            // Heartbeats due within the next tick go now: one wake-up per
            // tick instead of one per peer and link. The cadence keeps its
            // grid (send_heartbeat schedules from the due time).
            let slack = HB_COALESCE.min(Dur(self.hb_interval(link).as_micros() / 4));
            let due = self.peers[&id].links[link].next_hb.is_some_and(|t| t <= now + slack);
            if due {
                self.send_heartbeat(now, id, link as LinkId);
            }
        }
        let p = &self.cfg.channel;
        let peer = self.peers.get_mut(&id).expect("peer exists");
        if !peer.open {
            return;
        }
        if let Some((from, to)) = peer.recv.nack_now(now, p) {
            self.send_nack(now, id, from, to);
        }
        let peer = self.peers.get_mut(&id).expect("peer exists");
        if peer.recv.ack_deadline().is_some_and(|t| t <= now) {
            self.send_ack(now, id);
        }
        let peer = self.peers.get_mut(&id).expect("peer exists");
        let due = peer.send.rto_candidates(now, &self.cfg.channel);
        for i in due {
            self.transmit_fragment(now, id, i, true);
        }
    }

    fn send_heartbeat(&mut self, now: Time, id: NodeId, link: LinkId) {
        let interval = self.hb_interval(link as usize);
        let mut h = self.header(MsgType::Heartbeat, id, now);
        h.link = link;
        let peer = self.peers.get_mut(&id).expect("peer exists");
        let pl = &mut peer.links[link as usize];
        let Some(addr) = pl.addr else { return };
        pl.hb_seq = pl.hb_seq.wrapping_add(1);
        pl.tx_frames += 1;
        // Keep the cadence even when a call comes late, without bursts.
        pl.next_hb = Some(match pl.next_hb {
            Some(t) if now.since(t) < interval => t + interval,
            _ => now + interval,
        });
        h.seq = pl.hb_seq;
        if pl.state.is_alive() {
            h.flags |= flags::HEAR_YOU;
        }
        h.session = peer.my_session;
        h.dest_session = peer.peer_session;
        h.ack = peer.recv.expected();
        h.aux1 = peer.send.next_seq();
        peer.recv.acked();
        self.stats.snd_heartbeat += 1;
        self.push_frame(link, Dst::To(addr), &h, &[]);
    }

    fn push_frame(&mut self, link: LinkId, dst: Dst, h: &Header, payload: &[u8]) {
        self.transmits.push_back(Transmit { link, dst, frame: wire::encode(h, payload) });
    }

    /// Header for a frame of the reliable channel to `id`.
    fn channel_header(&mut self, t: MsgType, now: Time, id: NodeId) -> Option<(Header, LinkId, LinkAddr)> {
        let mut h = self.header(t, id, now);
        let peer = self.peers.get_mut(&id)?;
        let link = peer.pick_link(&self.lowpri)?;
        let pl = &mut peer.links[link as usize];
        let addr = pl.addr?;
        pl.tx_frames += 1;
        h.link = link;
        h.session = peer.my_session;
        h.dest_session = peer.peer_session;
        h.ack = peer.recv.expected();
        peer.recv.acked();
        Some((h, link, addr))
    }

    fn send_ack(&mut self, now: Time, id: NodeId) {
        if let Some((h, link, addr)) = self.channel_header(MsgType::Ack, now, id) {
            self.stats.snd_ack += 1;
            self.push_frame(link, Dst::To(addr), &h, &[]);
        }
    }

    fn send_nack(&mut self, now: Time, id: NodeId, from: u32, to: u32) {
        if let Some((mut h, link, addr)) = self.channel_header(MsgType::Nack, now, id) {
            h.aux1 = from;
            h.aux2 = to;
            self.stats.snd_nack += 1;
            self.push_frame(link, Dst::To(addr), &h, &[]);
        }
    }

    /// Put the fragment at position `i` of the peer's history on a link.
    fn transmit_fragment(&mut self, now: Time, id: NodeId, i: usize, retrans: bool) {
        let Some((mut h, link, addr)) = self.channel_header(MsgType::Data, now, id) else {
            // No usable link: leave it for the timeout resend.
            if let Some(f) = self.peers.get_mut(&id).and_then(|p| p.send.at_mut(i)) {
                f.last_sent = Some(now);
            }
            return;
        };
        let peer = self.peers.get_mut(&id).expect("peer exists");
        let Some(f) = peer.send.at_mut(i) else { return };
        f.last_sent = Some(now);
        h.seq = f.seq;
        h.port = f.port;
        if f.more {
            h.flags |= flags::MORE;
        }
        if retrans {
            h.flags |= flags::RETRANS;
            self.stats.snd_retransmit += 1;
        } else {
            self.stats.snd_data += 1;
        }
        let frame = wire::encode(&h, &f.payload);
        self.transmits.push_back(Transmit { link, dst: Dst::To(addr), frame });
    }

    /// Whether a message of `len` bytes to `to` would be accepted now.
    pub fn can_send(&self, to: Dest, len: usize) -> bool {
        let need = self.frags_for(len);
        match to {
            Dest::Node(id) => self.peers.get(&id).is_some_and(|p| p.open && p.send.room(&self.cfg.channel) >= need),
            Dest::All => self.peers.values().filter(|p| p.open).all(|p| p.send.room(&self.cfg.channel) >= need),
        }
    }

    fn frags_for(&self, len: usize) -> usize {
        len.div_ceil(self.frag_size).max(1)
    }

    /// Queue a message for reliable, in-order delivery. `All` sends to every
    /// OPEN peer, all or none (WouldBlock if any window is full). Returns the
    /// number of peers it went to.
    pub fn send(&mut self, now: Time, to: Dest, port: u8, data: &[u8]) -> Result<usize, SendError> {
        if self.phase != Phase::Running {
            return Err(SendError::NotRunning);
        }
        if data.len() > self.cfg.max_message || self.frags_for(data.len()) > self.cfg.channel.window as usize {
            return Err(SendError::TooLarge(data.len()));
        }
        let targets: Vec<NodeId> = match to {
            Dest::Node(id) if id == self.cfg.node_id => return Err(SendError::ToSelf(id)),
            Dest::Node(id) => {
                if !self.is_open(id) {
                    return Err(SendError::PeerDown(id));
                }
                vec![id]
            }
            Dest::All => self.open_peers().collect(),
        };
        if !self.can_send(to, data.len()) {
            self.stats.snd_would_block += 1;
            return Err(SendError::WouldBlock);
        }
        for &id in &targets {
            let frag = self.frag_size;
            let peer = self.peers.get_mut(&id).expect("open peer exists");
            let range = peer.send.push(port, data, frag);
            for i in range {
                self.transmit_fragment(now, id, i, false);
            }
            self.stats.msgs_sent += 1;
        }
        Ok(targets.len())
    }

    /// A frame arrived on `link` from `from`.
    pub fn handle_frame(&mut self, now: Time, link: LinkId, from: LinkAddr, bytes: &[u8]) {
        let (h, payload) = match wire::decode(bytes) {
            Ok(x) => x,
            Err(_) => {
                match wire::peek_cluster(bytes) {
                    Some(c) if c != self.cfg.cluster_id => self.stats.dropped_foreign_cluster += 1,
                    _ => self.stats.dropped_malformed += 1,
                }
                return;
            }
        };
        if h.cluster_id != self.cfg.cluster_id {
            self.stats.dropped_foreign_cluster += 1;
            return;
        }
        if h.src > MAX_NODE_ID || (link as usize) >= self.cfg.links.len() {
            self.stats.dropped_malformed += 1;
            return;
        }
        if self.phase == Phase::Refused {
            return;
        }
        if h.src == self.cfg.node_id {
            if h.nonce != self.nonce {
                self.duplicate(now, link, from, &h);
            }
            // Our own frame looped back (UDP broadcast): nothing to learn.
            return;
        }
        if self.phase == Phase::Probing || (h.msg_type == MsgType::Announce && h.flags & flags::PROBING != 0) {
            // Not a member of the link yet (ours or theirs): only duplicate
            // detection looks at these frames.
            return;
        }
        if self.cfg.excluded.contains(&h.src) {
            self.stats.dropped_excluded += 1;
            return;
        }
        if h.dest != DEST_ALL && h.dest != self.cfg.node_id {
            self.stats.dropped_not_for_us += 1;
            return;
        }
        if h.msg_type == MsgType::Announce {
            self.stats.rcv_announce += 1;
            self.on_announce(now, link, from, &h);
            return;
        }
        self.on_unicast(now, link, from, &h, payload);
    }

    fn duplicate(&mut self, now: Time, link: LinkId, from: LinkAddr, h: &Header) {
        self.stats.dropped_duplicate_node += 1;
        match self.phase {
            Phase::Probing => {
                self.phase = Phase::Refused;
                self.events.push_back(Event::DuplicateRefused { link, from });
            }
            Phase::Running => {
                if self.dup_nonces_seen.insert(h.nonce) {
                    self.events.push_back(Event::DuplicateNode { link, from, nonce: h.nonce });
                }
                // Answer a newcomer's probe at once (at most once a second)
                // so it sees us within its listening period.
                if self.last_dup_answer.is_none_or(|t| now.since(t) >= Dur::from_millis(1000)) {
                    self.last_dup_answer = Some(now);
                    self.announce(now);
                }
            }
            Phase::Refused => {}
        }
    }

    fn peer_entry(&mut self, id: NodeId) -> &mut Peer {
        peer_entry(&mut self.peers, &mut self.rng, &self.cfg, id)
    }

    /// An announcement teaches the peer's address on this link; when it is
    /// new we heartbeat at once so the peer learns ours without waiting.
    fn on_announce(&mut self, now: Time, link: LinkId, from: LinkAddr, h: &Header) {
        let peer = self.peer_entry(h.src);
        let pl = &mut peer.links[link as usize];
        if pl.addr != Some(from) {
            pl.addr = Some(from);
            pl.next_hb = Some(now);
            self.send_heartbeat(now, h.src, link);
        }
    }

    fn on_unicast(&mut self, now: Time, link: LinkId, from: LinkAddr, h: &Header, payload: &[u8]) {
        let max_message = self.cfg.max_message;
        let cp = self.cfg.channel;
        let peer = peer_entry(&mut self.peers, &mut self.rng, &self.cfg, h.src);
        peer.seen = true;
        // A frame of an older session of the peer's current life, delayed
        // in the network: a node that has just started never had it, so it
        // is not among the retired ones, and taking it for a new session
        // would retire the current one and drop the peer's frames for good
        // (found by the LLT+GAB simulator: a restarted node got its peer's
        // renewed session first, then a frame of the one before over a
        // slower link, and never heard that peer again). Sessions of one
        // life only grow; frames of an earlier life cannot arrive this late
        // (a new life listens for dupwait before it sends unicasts).
        if peer.peer_session != 0
            && h.nonce == peer.nonce
            && h.session != peer.peer_session
            && channel::seq_diff(h.session, peer.peer_session) < 0
        {
            self.stats.rcv_stale_session += 1;
            return;
        }
        peer.nonce = h.nonce;
        // A frame of a session the peer already left, delayed in the
        // network: it must not drag the channel back.
        if peer.retired.contains(&h.session) {
            self.stats.rcv_stale_session += 1;
            return;
        }
        // A new session of the peer's: what was in flight either way is
        // gone; tell the layer above before anything of the new session.
        if h.session != peer.peer_session {
            if peer.peer_session != 0 {
                peer.retire(peer.peer_session);
                peer.reset_channel(max_message);
                if peer.open {
                    peer.open = false;
                    self.events.push_back(Event::PeerDown { peer: h.src, reason: DownReason::Reset });
                }
            }
            peer.peer_session = h.session;
        }
        let pl = &mut peer.links[link as usize];
        pl.last_rx = Some(now);
        pl.rx_frames += 1;
        let new_addr = pl.addr != Some(from);
        pl.addr = Some(from);
        let raised = pl.state != LinkState::Up;
        if raised {
            pl.state = LinkState::Up;
            self.events.push_back(Event::LinkState { peer: h.src, link, state: LinkState::Up });
        }
        if h.msg_type == MsgType::Heartbeat {
            pl.hears_us = h.flags & flags::HEAR_YOU != 0;
        }
        if !peer.open {
            peer.open = true;
            self.events.push_back(Event::PeerUp { peer: h.src });
        }
        if raised || new_addr {
            // Answer at once so the peer sees this link come up without
            // waiting for our next heartbeat.
            self.send_heartbeat(now, h.src, link);
        }
        let peer = self.peers.get_mut(&h.src).expect("peer exists");
        let current = h.dest_session == peer.my_session;
        match h.msg_type {
            MsgType::Heartbeat => {
                self.stats.rcv_heartbeat += 1;
                if current {
                    peer.send.on_ack(h.ack);
                    peer.recv.on_peer_next(h.aux1);
                }
            }
            MsgType::Ack | MsgType::Nack | MsgType::Data if !current => {
                self.stats.rcv_stale_session += 1;
            }
            MsgType::Ack => {
                self.stats.rcv_ack += 1;
                peer.send.on_ack(h.ack);
            }
            MsgType::Nack => {
                self.stats.rcv_nack += 1;
                peer.send.on_ack(h.ack);
                let todo = peer.send.resend_candidates(h.aux1, h.aux2, now, &cp);
                for i in todo {
                    self.transmit_fragment(now, h.src, i, true);
                }
            }
            MsgType::Data => {
                self.stats.rcv_data += 1;
                peer.send.on_ack(h.ack);
                let more = h.flags & flags::MORE != 0;
                match peer.recv.on_fragment(h.seq, h.port, more, payload, now, &cp) {
                    channel::Accept::New => {}
                    channel::Accept::Duplicate => self.stats.rcv_duplicate += 1,
                    channel::Accept::OutOfWindow => self.stats.rcv_out_of_window += 1,
                }
                while let Some((port, data)) = peer.recv.take_ready() {
                    self.stats.msgs_delivered += 1;
                    self.events.push_back(Event::Deliver { peer: h.src, port, data });
                }
                if let Some((from, to)) = peer.recv.nack_now(now, &cp) {
                    self.send_nack(now, h.src, from, to);
                }
                let peer = self.peers.get_mut(&h.src).expect("peer exists");
                if peer.recv.ack_deadline().is_some_and(|t| t <= now) {
                    self.send_ack(now, h.src);
                }
            }
            MsgType::Announce => {}
        }
    }
}

/// The session after `s` when we renew ours with a peer: larger in serial
/// order (never 0, which means "not known yet"), so the peer can tell a
/// delayed frame of an earlier session of ours from a new one.
fn next_session(s: u32) -> u32 {
    match s.wrapping_add(1) {
        0 => 1,
        n => n,
    }
}

/// The peer entry for `id`, created on first contact with a fresh session.
fn peer_entry<'a>(peers: &'a mut BTreeMap<NodeId, Peer>, rng: &mut Rng, cfg: &CoreConfig, id: NodeId) -> &'a mut Peer {
    peers.entry(id).or_insert_with(|| Peer::new(id, cfg.links.len(), rng.nonzero(), cfg.max_message))
}
