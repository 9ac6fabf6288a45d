//! GAB core behaviour on a perfect network (every message delivered at
//! once, in order): seeding, joining, unicast, port memberships, jeopardy.
//! Faults are the simulator's job (tests/sim.rs).

use gab::core::{Gab, GabConfig, GabError, GabEvent};
use gab::PORT_A;
use llt::core::Dest;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::{BTreeSet, VecDeque};

const H: u8 = b'h';

struct Net {
    nodes: Vec<Option<Gab>>,
    /// Which pairs LLT reports up.
    up: BTreeSet<(usize, usize)>,
    events: Vec<Vec<GabEvent>>,
    now: Time,
}

impl Net {
    fn new(n: usize, seed_n: usize) -> Net {
        let nodes = (0..n).map(|i| Some(Gab::new(GabConfig::new(i as NodeId, seed_n, 1), Time::ZERO))).collect();
        Net { nodes, up: BTreeSet::new(), events: vec![Vec::new(); n], now: Time::ZERO }
    }

    /// `n` nodes (seeding at `n`), each with a client on `port`, all
    /// connected to each other.
    fn registered_and_connected(n: usize, port: u8) -> Net {
        let mut net = Net::new(n, n);
        for i in 0..n {
            let now = net.now;
            net.g(i).register(now, port);
        }
        for i in 0..n {
            for j in i + 1..n {
                net.connect(i, j);
            }
        }
        net
    }

    fn g(&mut self, i: usize) -> &mut Gab {
        self.nodes[i].as_mut().expect("node running")
    }

    /// LLT reports i and j up to each other.
    fn connect(&mut self, i: usize, j: usize) {
        self.up.insert((i, j));
        self.up.insert((j, i));
        let now = self.now;
        self.g(i).llt_peer_up(now, j as NodeId);
        self.g(j).llt_peer_up(now, i as NodeId);
        self.settle();
    }

    fn disconnect(&mut self, i: usize, j: usize) {
        self.up.remove(&(i, j));
        self.up.remove(&(j, i));
        let now = self.now;
        self.g(i).llt_peer_down(now, j as NodeId);
        self.g(j).llt_peer_down(now, i as NodeId);
        self.settle();
    }

    /// Deliver everything until quiet.
    fn settle(&mut self) {
        let mut q: VecDeque<(usize, usize, Vec<u8>)> = VecDeque::new();
        let n = self.nodes.len();
        loop {
            for i in 0..n {
                let Some(g) = self.nodes[i].as_mut() else { continue };
                while let Some((d, b)) = g.poll_send() {
                    let targets: Vec<usize> = match d {
                        Dest::Node(j) => vec![j as usize],
                        Dest::All => (0..n).filter(|&j| j != i).collect(),
                    };
                    for j in targets {
                        if self.up.contains(&(i, j)) {
                            q.push_back((i, j, b.clone()));
                        }
                    }
                }
                while let Some(e) = g.poll_event() {
                    self.events[i].push(e);
                }
            }
            let Some((from, to, b)) = q.pop_front() else { break };
            let now = self.now;
            if let Some(g) = self.nodes[to].as_mut() {
                g.llt_deliver(now, from as NodeId, &b);
            }
        }
    }

    /// Let time pass (timeouts fire).
    fn advance(&mut self, d: Dur) {
        let end = self.now + d;
        loop {
            let next = self.nodes.iter().flatten().filter_map(|g| g.poll_timeout()).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for g in self.nodes.iter_mut().flatten() {
                        if g.poll_timeout().is_some_and(|t| t <= now) {
                            g.handle_timeout(now);
                        }
                    }
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn members(&self, i: usize) -> Option<BTreeSet<NodeId>> {
        self.nodes[i].as_ref()?.membership().map(|(_, m)| m)
    }

    fn delivered(&self, i: usize) -> Vec<(Vec<u8>, bool)> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                GabEvent::Deliver { data, unicast, .. } => Some((data.clone(), *unicast)),
                _ => None,
            })
            .collect()
    }
}

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

#[test]
fn seeding_waits_for_n_nodes() {
    let mut net = Net::new(3, 3);
    net.connect(0, 1);
    net.advance(Dur::from_millis(3000));
    assert_eq!(net.members(0), None, "two of three nodes must not form a membership");
    assert!(!net.nodes[0].as_ref().unwrap().is_seeded());
    let now = net.now;
    net.g(0).register(now, H);
    assert!(net.g(0).broadcast(now, H, b"early".to_vec()).is_ok());
    net.settle();
    assert!(net.delivered(0).is_empty(), "nothing is delivered before seeding");
    net.connect(0, 2);
    net.connect(1, 2);
    for i in 0..3 {
        assert_eq!(net.members(i), Some(set(&[0, 1, 2])), "node {i}");
    }
    // Port a generation is the same everywhere.
    let gens: BTreeSet<u64> = (0..3).map(|i| net.nodes[i].as_ref().unwrap().membership().unwrap().0).collect();
    assert_eq!(gens.len(), 1);
    // The message submitted before seeding is delivered once seeded.
    assert_eq!(net.delivered(0), vec![(b"early".to_vec(), false)]);
}

#[test]
fn manual_seed_and_late_joiner() {
    let mut net = Net::new(3, 3);
    net.connect(0, 1);
    let now = net.now;
    net.g(0).seed(now);
    net.settle();
    assert_eq!(net.members(0), Some(set(&[0, 1])), "gabconfig -x seeds with whoever is here");
    assert_eq!(net.members(1), Some(set(&[0, 1])));
    let gen1 = net.nodes[0].as_ref().unwrap().membership().unwrap().0;
    // A node started later joins the running membership in a new generation.
    net.connect(0, 2);
    net.connect(1, 2);
    for i in 0..3 {
        assert_eq!(net.members(i), Some(set(&[0, 1, 2])), "node {i}");
    }
    assert_ne!(net.nodes[2].as_ref().unwrap().membership().unwrap().0, gen1);
}

#[test]
fn leave_after_stable_timeout_and_rejoin() {
    let mut net = Net::new(3, 3);
    net.connect(0, 1);
    net.connect(0, 2);
    net.connect(1, 2);
    net.disconnect(0, 2);
    net.disconnect(1, 2);
    assert_eq!(net.members(0), Some(set(&[0, 1, 2])), "no change before the stable timeout");
    net.advance(Dur::from_millis(5100));
    assert_eq!(net.members(0), Some(set(&[0, 1])));
    assert_eq!(net.members(1), Some(set(&[0, 1])));
    net.connect(0, 2);
    net.connect(1, 2);
    net.advance(Dur::from_millis(100));
    for i in 0..3 {
        assert_eq!(net.members(i), Some(set(&[0, 1, 2])), "node {i} after rejoin");
    }
}

#[test]
fn unicast_is_ordered_with_broadcasts_and_reaches_only_its_target() {
    let mut net = Net::registered_and_connected(3, H);
    let now = net.now;
    net.g(1).broadcast(now, H, b"b1".to_vec()).unwrap();
    net.g(1).unicast(now, H, 2, b"u".to_vec()).unwrap();
    net.g(1).broadcast(now, H, b"b2".to_vec()).unwrap();
    net.settle();
    assert_eq!(net.delivered(2), vec![(b"b1".to_vec(), false), (b"u".to_vec(), true), (b"b2".to_vec(), false)]);
    assert_eq!(net.delivered(0), vec![(b"b1".to_vec(), false), (b"b2".to_vec(), false)]);
    assert_eq!(net.delivered(1), vec![(b"b1".to_vec(), false), (b"b2".to_vec(), false)], "the sender gets its broadcasts");
}

#[test]
fn port_membership_follows_registration() {
    let mut net = Net::new(2, 2);
    net.connect(0, 1);
    let now = net.now;
    net.g(0).register(now, H);
    net.settle();
    let (g1, m1) = net.nodes[0].as_ref().unwrap().port_membership(H).unwrap();
    assert_eq!(m1, set(&[0]));
    let now = net.now;
    net.g(1).register(now, H);
    net.settle();
    let (g2, m2) = net.nodes[1].as_ref().unwrap().port_membership(H).unwrap();
    assert_eq!(m2, set(&[0, 1]));
    assert_ne!(g1, g2, "a port membership change has a new generation");
    assert_eq!(net.nodes[0].as_ref().unwrap().port_membership(H).unwrap(), (g2, m2), "same on both nodes");
    assert_eq!(net.nodes[0].as_ref().unwrap().port_membership(b'b'), None);
    let now = net.now;
    assert!(net.g(0).broadcast(now, b'b', vec![]).is_err(), "cannot send on a port not registered");
}

#[test]
fn jeopardy_is_shown_and_flagged_when_the_last_link_dies() {
    let mut net = Net::new(2, 2);
    net.connect(0, 1);
    net.g(0).llt_links(1, 2);
    assert!(net.nodes[0].as_ref().unwrap().jeopardy().is_empty());
    net.g(0).llt_links(1, 1);
    assert_eq!(net.nodes[0].as_ref().unwrap().jeopardy(), set(&[1]), "one link left: jeopardy");
    net.disconnect(0, 1);
    net.advance(Dur::from_millis(5100));
    let flagged = net.events[0].iter().rev().find_map(|e| match e {
        GabEvent::Membership { port, members, lost_in_jeopardy, .. } if *port == PORT_A => Some((members.clone(), lost_in_jeopardy.clone())),
        _ => None,
    });
    assert_eq!(flagged, Some((set(&[0]), set(&[1]))), "the change carries the jeopardy flag");
}

#[test]
fn too_many_unordered_submissions_push_back_until_ordered() {
    let mut net = Net::new(2, 2);
    let now = net.now;
    net.g(0).register(now, H);
    // Not seeded yet: nothing is ordered, submissions wait.
    let limit = GabConfig::new(0, 2, 1).max_pending;
    let mut accepted = 0;
    let refused = loop {
        match net.g(0).broadcast(now, H, vec![1]) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= limit, "no limit on waiting submissions");
    };
    assert_eq!(refused, gab::core::GabError::WouldBlock);
    assert!(accepted < limit, "the port join counts among the waiting ones too");
    // Seeding orders the backlog; the node accepts again.
    net.connect(0, 1);
    assert_eq!(net.delivered(0).len(), accepted);
    let now = net.now;
    assert!(net.g(0).broadcast(now, H, vec![2]).is_ok());
}

/// Regression (found by the LLT+GAB simulator, `gab::sim` seed 426): LLT
/// resets the channel between a member and the leader while another member
/// is down but still within the stable timeout, so the leader waits instead
/// of proposing at once. A submission the member sent before the reset is
/// lost with the old channel; the one it sends after must not be ordered
/// ahead of it, or the exactly-once map skips the lost one forever.
#[test]
fn submission_after_a_channel_reset_waits_for_the_view_change() {
    let mut net = Net::registered_and_connected(3, H);
    // Node 1 goes away: a member for the stable timeout, nobody proposes.
    net.disconnect(0, 1);
    net.disconnect(1, 2);
    let now = net.now;
    net.g(2).broadcast(now, H, b"first".to_vec()).unwrap();
    // LLT loses it with the old channel and reports the reset to both ends.
    while net.g(2).poll_send().is_some() {}
    net.g(0).llt_peer_down(now, 2);
    net.g(2).llt_peer_down(now, 0);
    net.g(0).llt_peer_up(now, 2);
    net.g(2).llt_peer_up(now, 0);
    net.g(2).broadcast(now, H, b"second".to_vec()).unwrap();
    net.settle();
    net.advance(Dur::from_millis(5100));
    assert_eq!(net.members(0), Some(set(&[0, 2])));
    let both = vec![(b"first".to_vec(), false), (b"second".to_vec(), false)];
    assert_eq!(net.delivered(2), both, "node 2 delivers both of its messages, in order");
    assert_eq!(net.delivered(0), both, "and so does the leader");
}

/// A member whose client is behind holds its acks: the leader stops
/// ordering once its unstable log is full, the sender's submissions back
/// up until `broadcast` refuses more (backpressure reaches the sender on
/// another node), and everything flows, in order, once the reader catches
/// up.
#[test]
fn a_busy_receiver_slows_every_sender_then_releases_them() {
    let mut net = Net::registered_and_connected(2, H);
    let now = net.now;
    net.g(1).set_receiver_busy(true);
    let mut accepted = 0u32;
    while accepted < 100_000 {
        let data = accepted.to_be_bytes().to_vec();
        match net.g(0).broadcast(now, H, data) {
            Ok(_) => accepted += 1,
            Err(GabError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
        if accepted.is_multiple_of(64) {
            net.settle();
        }
    }
    net.settle();
    assert!(accepted < 100_000, "a busy receiver must push back on the sender");
    let held = net.delivered(1).len();
    assert!(held < accepted as usize, "the leader stopped ordering: {held} of {accepted} delivered");
    net.g(1).set_receiver_busy(false);
    net.settle();
    let want: Vec<(Vec<u8>, bool)> = (0..accepted).map(|i| (i.to_be_bytes().to_vec(), false)).collect();
    assert_eq!(net.delivered(1), want, "all of them, in order, once the reader caught up");
    assert_eq!(net.delivered(0), want);
    assert!(net.g(0).broadcast(now, H, vec![1]).is_ok(), "and the sender may send again");
}
