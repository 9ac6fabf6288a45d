//! The reliable channel to one peer: sequence numbers, the bounded history
//! of unacknowledged fragments, receiver-driven retransmission, reordering
//! and reassembly.
//!
//! Both halves are pure data structures: they say what to send, the node
//! ([`super::Core`]) builds and routes the frames.

use crate::time::{Dur, Time};
use std::collections::{BTreeMap, VecDeque};

/// Serial-number comparison (RFC 1982 style): how far `a` is ahead of `b`.
pub fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// One fragment as the sender keeps it for retransmission.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub seq: u32,
    pub port: u8,
    /// More fragments of the same message follow.
    pub more: bool,
    pub payload: Vec<u8>,
    /// When it was last put on a link; None until first sent.
    pub last_sent: Option<Time>,
}

/// Tunables of the channel. Defaults are sized for 100k frames/s through
/// the daemon; every bound here is also a bound on memory.
#[derive(Debug, Clone, Copy)]
pub struct ChannelParams {
    /// Most fragments in flight (sent, unacknowledged) to one peer.
    pub window: u32,
    /// Acknowledge at once after this many fragments received.
    pub ack_every: u32,
    /// Otherwise acknowledge this long after the first unacknowledged one.
    pub ack_delay: Dur,
    /// At most one retransmission request per peer per this interval
    /// (against NACK implosion, as Linux-HA Heartbeat rate limits its
    /// requests).
    pub nack_interval: Dur,
    /// A fragment is not sent again sooner than this after its last send,
    /// whoever asks (duplicate NACKs must not multiply traffic).
    pub min_resend_gap: Dur,
    /// Retransmit the oldest unacknowledged fragments when nothing has
    /// acknowledged them for this long (covers a lost tail and lost NACKs).
    pub rto: Dur,
    /// Most fragments resent per request or timeout.
    pub resend_burst: usize,
}

impl Default for ChannelParams {
    fn default() -> Self {
        ChannelParams {
            window: 1024,
            ack_every: 64,
            ack_delay: Dur::from_millis(1),
            nack_interval: Dur::from_millis(5),
            min_resend_gap: Dur::from_millis(2),
            rto: Dur::from_millis(40),
            resend_burst: 128,
        }
    }
}

/// Sending half: assigns sequence numbers and keeps what is unacknowledged.
#[derive(Debug)]
pub struct SendHalf {
    next_seq: u32,
    unacked: VecDeque<Fragment>,
}

impl Default for SendHalf {
    fn default() -> Self {
        SendHalf { next_seq: 1, unacked: VecDeque::new() }
    }
}

impl SendHalf {
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }
    /// Free slots in the window.
    pub fn room(&self, p: &ChannelParams) -> usize {
        (p.window as usize).saturating_sub(self.unacked.len())
    }

    /// Queue a message cut into fragments of at most `frag` bytes; returns
    /// the range of new sequence numbers. The caller checked the room.
    pub fn push(&mut self, port: u8, data: &[u8], frag: usize) -> std::ops::Range<usize> {
        let start = self.unacked.len();
        let mut chunks = data.chunks(frag.max(1)).peekable();
        if data.is_empty() {
            self.push_one(port, false, Vec::new());
        }
        while let Some(c) = chunks.next() {
            let more = chunks.peek().is_some();
            self.push_one(port, more, c.to_vec());
        }
        start..self.unacked.len()
    }

    fn push_one(&mut self, port: u8, more: bool, payload: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.unacked.push_back(Fragment { seq, port, more, payload, last_sent: None });
    }

    /// Fragment at a position of the history (positions from `push`).
    pub fn at_mut(&mut self, i: usize) -> Option<&mut Fragment> {
        self.unacked.get_mut(i)
    }

    /// Cumulative acknowledgement: the peer expects `ack` next. Returns how
    /// many fragments were released. An ack beyond what was sent is ignored
    /// (a confused or stale peer must not free what it never received).
    pub fn on_ack(&mut self, ack: u32) -> usize {
        if seq_diff(ack, self.next_seq) > 0 {
            return 0;
        }
        let mut freed = 0;
        while let Some(f) = self.unacked.front() {
            if seq_diff(ack, f.seq) > 0 {
                self.unacked.pop_front();
                freed += 1;
            } else {
                break;
            }
        }
        freed
    }

    /// Positions of unacknowledged fragments with seq in `from..to` that may
    /// be resent now.
    pub fn resend_candidates(&self, from: u32, to: u32, now: Time, p: &ChannelParams) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, f) in self.unacked.iter().enumerate() {
            if seq_diff(f.seq, from) < 0 {
                continue;
            }
            if seq_diff(f.seq, to) >= 0 || out.len() >= p.resend_burst {
                break;
            }
            if f.last_sent.is_none_or(|t| now.since(t) >= p.min_resend_gap) {
                out.push(i);
            }
        }
        out
    }

    /// Positions due for a timeout retransmission.
    pub fn rto_candidates(&self, now: Time, p: &ChannelParams) -> Vec<usize> {
        self.unacked
            .iter()
            .enumerate()
            .filter(|(_, f)| f.last_sent.is_some_and(|t| now.since(t) >= p.rto))
            .map(|(i, _)| i)
            .take(p.resend_burst)
            .collect()
    }

    /// When the oldest sent fragment will be due for a timeout resend.
    pub fn rto_deadline(&self, p: &ChannelParams) -> Option<Time> {
        self.unacked.iter().filter_map(|f| f.last_sent).min().map(|t| t + p.rto)
    }

    /// Positions never sent yet (queued while no link was usable).
    pub fn unsent(&self) -> Vec<usize> {
        self.unacked.iter().enumerate().filter(|(_, f)| f.last_sent.is_none()).map(|(i, _)| i).collect()
    }
}

/// What the receiving half made of one fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Accept {
    /// New, in order or buffered.
    New,
    /// Already received: the sender missed our ack.
    Duplicate,
    /// Too far ahead: beyond the window.
    OutOfWindow,
}

/// Receiving half: puts fragments back in order and reassembles messages.
#[derive(Debug)]
pub struct RecvHalf {
    expected: u32,
    ooo: BTreeMap<u32, (u8, bool, Vec<u8>)>,
    reassembly: Vec<u8>,
    /// Complete messages ready for the upper layer: (port, data).
    ready: VecDeque<(u8, Vec<u8>)>,
    since_ack: u32,
    ack_due: Option<Time>,
    last_nack: Option<Time>,
    /// The peer's next sequence as its heartbeats tell: reveals a lost tail.
    peer_next: u32,
    /// Limit on one reassembled message.
    max_message: usize,
}

impl RecvHalf {
    pub fn new(max_message: usize) -> Self {
        RecvHalf {
            expected: 1,
            ooo: BTreeMap::new(),
            reassembly: Vec::new(),
            ready: VecDeque::new(),
            since_ack: 0,
            ack_due: None,
            last_nack: None,
            peer_next: 1,
            max_message,
        }
    }

    /// Next sequence expected: the cumulative ack we give.
    pub fn expected(&self) -> u32 {
        self.expected
    }

    pub fn take_ready(&mut self) -> Option<(u8, Vec<u8>)> {
        self.ready.pop_front()
    }

    pub fn on_fragment(&mut self, seq: u32, port: u8, more: bool, payload: &[u8], now: Time, p: &ChannelParams) -> Accept {
        let d = seq_diff(seq, self.expected);
        if d < 0 {
            // Ack again soon so the sender stops resending.
            self.ack_due.get_or_insert(now);
            return Accept::Duplicate;
        }
        if d as u32 >= p.window {
            return Accept::OutOfWindow;
        }
        if d > 0 {
            if self.ooo.contains_key(&seq) {
                return Accept::Duplicate;
            }
            self.ooo.insert(seq, (port, more, payload.to_vec()));
            return Accept::New;
        }
        self.take_in_order(port, more, payload);
        while let Some((port, more, data)) = self.ooo.remove(&self.expected) {
            self.take_in_order(port, more, &data);
        }
        self.note_received(now, p);
        Accept::New
    }

    fn take_in_order(&mut self, port: u8, more: bool, payload: &[u8]) {
        self.expected = self.expected.wrapping_add(1);
        self.since_ack += 1;
        if self.reassembly.len() + payload.len() <= self.max_message {
            self.reassembly.extend_from_slice(payload);
        }
        if !more {
            let msg = std::mem::take(&mut self.reassembly);
            self.ready.push_back((port, msg));
        }
    }

    fn note_received(&mut self, now: Time, p: &ChannelParams) {
        if self.since_ack >= p.ack_every {
            self.ack_due = Some(now);
        } else {
            self.ack_due.get_or_insert(now + p.ack_delay);
        }
    }

    /// The peer says its next sequence is `next`.
    pub fn on_peer_next(&mut self, next: u32) {
        if seq_diff(next, self.peer_next) > 0 {
            self.peer_next = next;
        }
    }

    /// An ack went out (piggybacked or alone).
    pub fn acked(&mut self) {
        self.since_ack = 0;
        self.ack_due = None;
    }

    pub fn ack_deadline(&self) -> Option<Time> {
        self.ack_due
    }

    /// The missing range to request, if any: from `expected` up to the first
    /// buffered fragment or the peer's announced next sequence.
    pub fn gap(&self) -> Option<(u32, u32)> {
        let end = match self.ooo.keys().next() {
            Some(&first) => first,
            None if seq_diff(self.peer_next, self.expected) > 0 => self.peer_next,
            None => return None,
        };
        Some((self.expected, end))
    }

    /// When the next retransmission request may go, if a gap is open.
    pub fn nack_deadline(&self, p: &ChannelParams) -> Option<Time> {
        self.gap()?;
        Some(self.last_nack.map_or(Time::ZERO, |t| t + p.nack_interval))
    }

    /// A gap to request now, respecting the rate limit; records the request.
    pub fn nack_now(&mut self, now: Time, p: &ChannelParams) -> Option<(u32, u32)> {
        let gap = self.gap()?;
        if self.last_nack.is_some_and(|t| now.since(t) < p.nack_interval) {
            return None;
        }
        self.last_nack = Some(now);
        Some(gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_in_order() {
        let p = ChannelParams::default();
        let mut s = SendHalf::default();
        let r = s.push(3, &[7u8; 2500], 1000);
        assert_eq!(r, 0..3);
        let mut rx = RecvHalf::new(1 << 20);
        let frags: Vec<_> = (0..3).map(|i| s.at_mut(i).unwrap().clone()).collect();
        // Deliver out of order: 3rd, 1st, 2nd.
        for i in [2, 0, 1] {
            let f = &frags[i];
            assert_eq!(rx.on_fragment(f.seq, f.port, f.more, &f.payload, Time::ZERO, &p), Accept::New);
        }
        assert_eq!(rx.take_ready(), Some((3, vec![7u8; 2500])));
        assert_eq!(rx.expected(), 4);
        assert_eq!(s.on_ack(4), 3);
    }

    #[test]
    fn duplicate_and_window() {
        let p = ChannelParams { window: 4, ..Default::default() };
        let mut rx = RecvHalf::new(100);
        assert_eq!(rx.on_fragment(1, 0, false, b"a", Time::ZERO, &p), Accept::New);
        assert_eq!(rx.on_fragment(1, 0, false, b"a", Time::ZERO, &p), Accept::Duplicate);
        assert_eq!(rx.on_fragment(6, 0, false, b"a", Time::ZERO, &p), Accept::OutOfWindow);
        assert_eq!(rx.on_fragment(4, 0, false, b"d", Time::ZERO, &p), Accept::New);
        assert_eq!(rx.gap(), Some((2, 4)));
    }

    #[test]
    fn ack_beyond_sent_is_ignored() {
        let mut s = SendHalf::default();
        s.push(0, b"x", 10);
        assert_eq!(s.on_ack(50), 0);
        assert_eq!(s.on_ack(2), 1);
    }

    #[test]
    fn nack_rate_limited() {
        let p = ChannelParams::default();
        let mut rx = RecvHalf::new(100);
        rx.on_fragment(3, 0, false, b"c", Time::ZERO, &p);
        assert_eq!(rx.nack_now(Time::from_millis(1), &p), Some((1, 3)));
        assert_eq!(rx.nack_now(Time::from_millis(2), &p), None);
        assert!(rx.nack_now(Time::from_millis(7), &p).is_some());
    }

    #[test]
    fn sequence_wraps() {
        assert!(seq_diff(1, u32::MAX) > 0);
        assert!(seq_diff(u32::MAX, 1) < 0);
    }
}
