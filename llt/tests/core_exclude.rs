//! `exclude` in llttab: frames from an excluded node are counted and
//! dropped, and it never becomes a peer (two cores wired back to back).

use llt::core::{Core, CoreConfig, Dst, LinkAddr, LinkSetup};
use llt::time::{Dur, Time};

fn core(id: u8, exclude: &[u8]) -> Core {
    let links = vec![LinkSetup { tag: "eth1".into(), lowpri: false, mtu: 1500 }];
    let mut cfg = CoreConfig::new(id, 9, links, id as u64 + 1);
    cfg.timers.dupwait = 1;
    cfg.excluded = exclude.iter().copied().collect();
    Core::new(cfg, Time::ZERO)
}

/// One core's due timers and output, delivered to the other at once.
fn step(from: &mut Core, to: &mut Core, from_id: u8, now: Time) {
    if from.poll_timeout().is_some_and(|t| t <= now) {
        from.handle_timeout(now);
    }
    let to_mac = LinkAddr::Mac([2, 0, 0, 0, 0, 3 - from_id]);
    while let Some(t) = from.poll_transmit() {
        if t.dst == Dst::Broadcast || t.dst == Dst::To(to_mac) {
            to.handle_frame(now, 0, LinkAddr::Mac([2, 0, 0, 0, 0, from_id]), &t.frame);
        }
    }
    while from.poll_event().is_some() {}
}

/// Run both cores (node 1 and node 2) for two simulated seconds.
fn run(a: &mut Core, b: &mut Core) {
    let mut now = Time::ZERO;
    while now < Time::ZERO + Dur::from_millis(2000) {
        step(a, b, 1, now);
        step(b, a, 2, now);
        now = now + Dur::from_millis(5);
    }
}

#[test]
fn excluded_node_never_becomes_a_peer() {
    let (mut a, mut b) = (core(1, &[2]), core(2, &[]));
    run(&mut a, &mut b);
    assert!(!a.is_open(2), "node 1 excludes node 2");
    assert!(a.stats().dropped_excluded > 0, "its frames are counted: {:?}", a.stats());
}

#[test]
fn without_exclude_the_same_nodes_connect() {
    let (mut a, mut b) = (core(1, &[]), core(2, &[]));
    run(&mut a, &mut b);
    assert!(a.is_open(2) && b.is_open(1));
    assert_eq!(a.stats().dropped_excluded, 0);
}
