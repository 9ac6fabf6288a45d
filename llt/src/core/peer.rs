//! One peer as this node sees it: its address and liveness on each link,
//! its sessions, and the reliable channel to it.

use super::channel::{ChannelParams, RecvHalf, SendHalf};
use crate::time::{Dur, Time};
use crate::{LinkId, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Where a peer is reached on one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LinkAddr {
    Mac([u8; 6]),
    Ip(SocketAddr),
}

impl std::fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkAddr::Mac(m) => write!(f, "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", m[0], m[1], m[2], m[3], m[4], m[5]),
            LinkAddr::Ip(a) => write!(f, "{a}"),
        }
    }
}

/// State of one link to one peer, from what this node receives on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// Nothing heard for peerinact (or never).
    Down,
    /// Heard within peertrouble.
    Up,
    /// Silent longer than peertrouble but not yet peerinact: still used if
    /// nothing better is left, and logged as a warning.
    Trouble,
}

impl LinkState {
    pub fn is_alive(self) -> bool {
        self != LinkState::Down
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Down => "DOWN",
            LinkState::Up => "UP",
            LinkState::Trouble => "TROUBLE",
        }
    }
}

/// How long a link may stay silent before it is in trouble (per link
/// priority) and before it is DOWN.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    pub trouble_hi: Dur,
    pub trouble_lo: Dur,
    pub inact: Dur,
}

impl Silence {
    pub fn trouble(self, lowpri: bool) -> Dur {
        if lowpri {
            self.trouble_lo
        } else {
            self.trouble_hi
        }
    }
}

#[derive(Debug, Clone)]
pub struct PeerLink {
    pub addr: Option<LinkAddr>,
    pub last_rx: Option<Time>,
    pub state: LinkState,
    /// The peer's last heartbeat on this link said it hears us here.
    pub hears_us: bool,
    pub next_hb: Option<Time>,
    pub hb_seq: u32,
    pub rx_frames: u64,
    pub tx_frames: u64,
}

impl PeerLink {
    fn new() -> Self {
        PeerLink { addr: None, last_rx: None, state: LinkState::Down, hears_us: false, next_hb: None, hb_seq: 0, rx_frames: 0, tx_frames: 0 }
    }
}

#[derive(Debug)]
pub struct Peer {
    pub id: NodeId,
    pub links: Vec<PeerLink>,
    /// The peer's nonce (changes when its daemon restarts).
    pub nonce: u32,
    /// Our session with this peer; renewed whenever we reset the channel.
    pub my_session: u32,
    /// The peer's session with us; 0 until learned.
    pub peer_session: u32,
    /// The peer's previous sessions, newest last: frames bearing one are
    /// stale (bounded: sessions are random, a handful is plenty).
    pub retired: VecDeque<u32>,
    /// OPEN: at least one link alive.
    pub open: bool,
    /// Ever heard from: distinguishes CONNWAIT from a peer that left.
    pub seen: bool,
    pub send: SendHalf,
    pub recv: RecvHalf,
    rr: usize,
}

impl Peer {
    pub fn new(id: NodeId, nlinks: usize, my_session: u32, max_message: usize) -> Peer {
        Peer {
            id,
            links: (0..nlinks).map(|_| PeerLink::new()).collect(),
            nonce: 0,
            my_session,
            peer_session: 0,
            retired: VecDeque::new(),
            open: false,
            seen: false,
            send: SendHalf::default(),
            recv: RecvHalf::new(max_message),
            rr: 0,
        }
    }

    /// Remember a session the peer has left.
    pub fn retire(&mut self, session: u32) {
        if session != 0 {
            if self.retired.len() >= 8 {
                self.retired.pop_front();
            }
            self.retired.push_back(session);
        }
    }

    /// Forget everything in flight both ways (a session changed).
    pub fn reset_channel(&mut self, max_message: usize) {
        self.send = SendHalf::default();
        self.recv = RecvHalf::new(max_message);
    }

    /// Choose the link for the next data frame. High-priority links that
    /// are UP and that the peer hears us on come first, spread round-robin;
    /// then any UP high-priority link; then the first UP low-priority link;
    /// then any link in trouble.
    pub fn pick_link(&mut self, lowpri: &[bool]) -> Option<LinkId> {
        for tier in 0..4 {
            let usable: Vec<usize> =
                (0..self.links.len()).filter(|&i| self.links[i].addr.is_some() && in_tier(tier, lowpri[i], &self.links[i])).collect();
            if usable.is_empty() {
                continue;
            }
            // Spread only among high-priority links; a low-priority or
            // troubled link is a fallback and the first one carries all.
            let pick = if tier < 2 {
                self.rr = self.rr.wrapping_add(1);
                usable[self.rr % usable.len()]
            } else {
                usable[0]
            };
            return Some(pick as LinkId);
        }
        None
    }

    /// Earliest time a link's state will change by silence alone.
    pub fn state_deadline(&self, lowpri: &[bool], s: Silence) -> Option<Time> {
        self.links
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let last = l.last_rx?;
                match l.state {
                    LinkState::Up => Some(last + s.trouble(lowpri[i])),
                    LinkState::Trouble => Some(last + s.inact),
                    LinkState::Down => None,
                }
            })
            .min()
    }

    pub fn alive_links(&self) -> usize {
        self.links.iter().filter(|l| l.state.is_alive()).count()
    }

    /// Deadline of anything the channel needs to do on its own.
    pub fn channel_deadline(&self, p: &ChannelParams) -> Option<Time> {
        [self.recv.ack_deadline(), self.recv.nack_deadline(p), self.send.rto_deadline(p)].into_iter().flatten().min()
    }
}

/// Preference tiers for data, best first: 0 high-priority UP and the peer
/// hears us there; 1 high-priority UP; 2 low-priority UP; 3 in trouble.
fn in_tier(tier: usize, lowpri: bool, l: &PeerLink) -> bool {
    match tier {
        0 => !lowpri && l.state == LinkState::Up && l.hears_us,
        1 => !lowpri && l.state == LinkState::Up,
        2 => lowpri && l.state == LinkState::Up,
        _ => l.state == LinkState::Trouble,
    }
}
