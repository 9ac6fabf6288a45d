//! The glue between one node's LLT core and its GAB core ([`LltGlue`]), as
//! the daemon runs it and the LLT+GAB simulator ([`crate::lltsim`]) tests
//! it: peer events and link counts (with the jeopardy grace), GAB messages
//! in chunks on LLT port 1, a per-peer queue for LLT's window.
//!
//! Never: I/O or clocks (time is an argument), client ports, protocol
//! decisions (those are GAB's core).

use crate::core::Gab;
use crate::frag::Reassembly;
use crate::LLT_PORT;
use llt::core::{Core, Dest, Event, SendError, Transmit};
use llt::time::{Dur, Time};
use llt::{LinkId, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Counters of one [`LltGlue`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlueStats {
    /// LLT messages (GAB message chunks) LLT accepted.
    pub sent: u64,
    /// Chunks that found LLT's window to their peer full (or others already
    /// waiting) and were queued.
    pub queued: u64,
    /// Queued chunks dropped because their peer went down.
    pub dropped_backlog: u64,
    /// Chunks for a peer that is down (GAB resynchronises it in the next
    /// view change).
    pub dropped_peer_down: u64,
    /// Chunks LLT refused as too large: chunks are cut to fit, so any count
    /// here is a bug.
    pub too_large: u64,
    /// LLT messages on GAB's port that were not a valid chunk (or continued
    /// a message whose start was lost): counted and dropped.
    pub dropped_chunks: u64,
}

/// What one [`LltGlue::pump`] hands back to the caller.
#[derive(Debug, Default)]
pub struct Pumped {
    /// Frames to put on the links.
    pub transmits: Vec<Transmit>,
    /// LLT's events other than deliveries on GAB's port, in order, for the
    /// caller to log or pass on (peer and link states were already given to
    /// GAB; deliveries on other ports belong to other LLT clients).
    pub events: Vec<Event>,
}

/// The glue between one node's LLT core and its GAB core, as the daemon
/// and the simulator both run it. No I/O, no clock: time is an argument.
///
/// - LLT's `PeerUp`/`PeerDown` go to [`Gab::llt_peer_up`]/[`Gab::llt_peer_down`].
/// - The number of links alive to a peer (UP or in TROUBLE, as LLT counts
///   them) goes to [`Gab::llt_links`] on every change, except that a drop to
///   one link is told only once it lasted [`jeopardy_grace`]: a node that
///   dies silences all its links and they time out a heartbeat or so apart
///   (LLT's deadlines are exact, per link); that is a death, not jeopardy.
/// - GAB's messages are cut into chunks ([`crate::frag`]) that go to
///   [`Core::send`] on [`LLT_PORT`]; LLT's deliveries there are reassembled
///   per peer and go to [`Gab::llt_deliver`]. GAB relies on LLT being
///   reliable while a peer stays up, so a chunk the window refuses
///   (`WouldBlock`) waits in a queue per peer, in order, and is retried on
///   every later pump (acknowledgements open the window) — never dropped,
///   until LLT reports the peer down: then the queue and any partial
///   message go (GAB resyncs the peer in the view change). A chunk for a
///   peer down, or while LLT is not running, is dropped.
#[derive(Debug, Default)]
pub struct LltGlue {
    /// Chunks waiting for LLT's window, per peer, in order.
    backlog: BTreeMap<NodeId, VecDeque<Vec<u8>>>,
    /// Peers GAB was told are up.
    up: BTreeSet<NodeId>,
    /// Peers down to one link, and since when (not yet told to GAB).
    one_link_since: BTreeMap<NodeId, Time>,
    reassembly: Reassembly,
    stats: GlueStats,
}

/// Links to `peer` that still carry its frames (UP or in trouble).
pub fn links_alive(llt: &Core, peer: NodeId) -> usize {
    (0..llt.links().len() as LinkId).filter(|&l| llt.link_state(peer, l).is_alive()).count()
}

/// How long a peer must stay on one link before GAB counts it in jeopardy:
/// two of the slower heartbeat intervals.
pub fn jeopardy_grace(llt: &Core) -> Dur {
    let t = llt.timers();
    Dur::from_centis(2 * t.heartbeat.max(t.heartbeatlo))
}

impl LltGlue {
    pub fn new() -> LltGlue {
        LltGlue::default()
    }

    /// A GAB core created while LLT already runs: tell it which peers LLT
    /// reports up. Call once, right after creating the GAB core.
    pub fn attach(&mut self, now: Time, llt: &Core, gab: &mut Gab) {
        for peer in llt.open_peers() {
            self.up.insert(peer);
            gab.llt_peer_up(now, peer);
            self.set_links(now, llt, gab, peer);
        }
    }

    /// When [`LltGlue::handle_timeout`] is due: either core's timer, or the
    /// end of a jeopardy grace.
    pub fn poll_timeout(&self, llt: &Core, gab: &Gab) -> Option<Time> {
        let grace = jeopardy_grace(llt);
        [llt.poll_timeout(), gab.poll_timeout(), self.one_link_since.values().map(|&t| t + grace).min()].into_iter().flatten().min()
    }

    /// Run whichever core's timer is due, then [`LltGlue::pump`].
    pub fn handle_timeout(&mut self, now: Time, llt: &mut Core, gab: &mut Gab) -> Pumped {
        if llt.poll_timeout().is_some_and(|t| t <= now) {
            llt.handle_timeout(now);
        }
        if gab.poll_timeout().is_some_and(|t| t <= now) {
            gab.handle_timeout(now);
        }
        self.pump(now, llt, gab)
    }

    /// Move everything between the two cores until both are quiet: peers
    /// whose jeopardy grace ended go to GAB with one link; GAB's new
    /// messages go to LLT; LLT's events go to GAB one by one (GAB's answers
    /// to each go to LLT before the next event: nothing GAB sends after
    /// learning that a peer is down reaches it, and a queue dropped at a
    /// PeerDown never leaks into the peer's next session); then the queued
    /// chunks are retried (acknowledgements may have opened the window).
    /// Call after every input to either core: a frame, a timeout, a
    /// client's call. GAB's own events stay in [`Gab::poll_event`] for the
    /// caller.
    pub fn pump(&mut self, now: Time, llt: &mut Core, gab: &mut Gab) -> Pumped {
        let mut out = Pumped::default();
        let grace = jeopardy_grace(llt);
        let due: Vec<NodeId> = self.one_link_since.iter().filter(|(_, &t)| now.since(t) >= grace).map(|(&p, _)| p).collect();
        for p in due {
            self.one_link_since.remove(&p);
            gab.llt_links(p, 1);
        }
        self.drain_gab(now, llt, gab);
        while let Some(e) = llt.poll_event() {
            self.on_llt_event(now, llt, gab, e, &mut out.events);
            self.drain_gab(now, llt, gab);
        }
        self.flush_backlog(now, llt);
        while let Some(t) = llt.poll_transmit() {
            out.transmits.push(t);
        }
        out
    }

    /// Chunks waiting for the window to `peer`.
    pub fn backlog(&self, peer: NodeId) -> usize {
        self.backlog.get(&peer).map_or(0, VecDeque::len)
    }

    /// Chunks waiting for LLT's window, all peers.
    pub fn backlog_total(&self) -> usize {
        self.backlog.values().map(VecDeque::len).sum()
    }

    pub fn stats(&self) -> &GlueStats {
        &self.stats
    }

    /// Whether GAB was last told that LLT reports `peer` up.
    pub fn is_up(&self, peer: NodeId) -> bool {
        self.up.contains(&peer)
    }

    /// Tell GAB how many links reach `peer` (a drop to one only after the
    /// grace). Zero is never told: LLT has already lost the peer and its
    /// PeerDown event follows; GAB must see the peer go with the count it
    /// had (one link: lost in jeopardy).
    fn set_links(&mut self, now: Time, llt: &Core, gab: &mut Gab, peer: NodeId) {
        match links_alive(llt, peer) {
            0 => {}
            1 => {
                self.one_link_since.entry(peer).or_insert(now);
            }
            n => {
                self.one_link_since.remove(&peer);
                gab.llt_links(peer, n);
            }
        }
    }

    fn on_llt_event(&mut self, now: Time, llt: &Core, gab: &mut Gab, e: Event, out: &mut Vec<Event>) {
        match e {
            Event::Deliver { peer, port: LLT_PORT, data } => {
                match self.reassembly.push(peer, &data) {
                    Ok(Some(msg)) => gab.llt_deliver(now, peer, &msg),
                    Ok(None) => {}
                    Err(_) => self.stats.dropped_chunks += 1,
                }
                return;
            }
            Event::PeerUp { peer } => {
                self.up.insert(peer);
                self.reassembly.reset(peer);
                gab.llt_peer_up(now, peer);
                self.set_links(now, llt, gab, peer);
            }
            Event::PeerDown { peer, .. } => {
                self.up.remove(&peer);
                if let Some(q) = self.backlog.remove(&peer) {
                    self.stats.dropped_backlog += q.len() as u64;
                }
                self.reassembly.reset(peer);
                self.one_link_since.remove(&peer);
                gab.llt_peer_down(now, peer);
            }
            Event::LinkState { peer, .. } => {
                if self.up.contains(&peer) {
                    self.set_links(now, llt, gab, peer);
                }
            }
            Event::Configured | Event::DuplicateRefused { .. } | Event::DuplicateNode { .. } | Event::Deliver { .. } => {}
        }
        out.push(e);
    }

    /// Hand GAB's pending messages to LLT (or to the queues), in chunks.
    fn drain_gab(&mut self, now: Time, llt: &mut Core, gab: &mut Gab) {
        while let Some((dest, msg)) = gab.poll_send() {
            let peers: Vec<NodeId> = match dest {
                Dest::Node(peer) => vec![peer],
                Dest::All => self.up.iter().copied().collect(),
            };
            for chunk in crate::frag::split(&msg) {
                for &peer in &peers {
                    self.send_to(now, llt, peer, chunk.clone());
                }
            }
        }
    }

    fn send_to(&mut self, now: Time, llt: &mut Core, peer: NodeId, chunk: Vec<u8>) {
        if !self.up.contains(&peer) {
            self.stats.dropped_peer_down += 1;
            return;
        }
        // FIFO: behind what already waits for this peer.
        if let Some(q) = self.backlog.get_mut(&peer) {
            q.push_back(chunk);
            self.stats.queued += 1;
            return;
        }
        match llt.send(now, Dest::Node(peer), LLT_PORT, &chunk) {
            Ok(_) => self.stats.sent += 1,
            Err(SendError::WouldBlock) => {
                self.stats.queued += 1;
                self.backlog.entry(peer).or_default().push_back(chunk);
            }
            Err(SendError::TooLarge(_) | SendError::ToSelf(_)) => self.stats.too_large += 1,
            // LLT already knows the peer is down (its event is queued), or
            // is not running: GAB learns it from the event.
            Err(SendError::PeerDown(_) | SendError::NotRunning) => self.stats.dropped_peer_down += 1,
        }
    }

    /// Retry the queues, oldest first, until a window is full again.
    fn flush_backlog(&mut self, now: Time, llt: &mut Core) {
        let peers: Vec<NodeId> = self.backlog.keys().copied().collect();
        for peer in peers {
            let Some(q) = self.backlog.get_mut(&peer) else { continue };
            while let Some(front) = q.front() {
                match llt.send(now, Dest::Node(peer), LLT_PORT, front) {
                    Ok(_) => {
                        q.pop_front();
                        self.stats.sent += 1;
                    }
                    Err(SendError::WouldBlock) => break,
                    Err(SendError::TooLarge(_) | SendError::ToSelf(_)) => {
                        q.pop_front();
                        self.stats.too_large += 1;
                    }
                    // The peer went down (its PeerDown event is queued) or
                    // LLT stopped: what waited for it is gone.
                    Err(_) => {
                        self.stats.dropped_backlog += q.len() as u64;
                        q.clear();
                    }
                }
            }
            if q.is_empty() {
                self.backlog.remove(&peer);
            }
        }
    }
}

