//! Regression (found by the LLT+GAB simulator, `gab::lltsim`): a node that
//! has just started receives its peer's renewed session first and then,
//! over a slower link, a frame of the peer's session before. It took that
//! frame for a newer session, retired the current one, and dropped every
//! later frame of the peer as stale: it never heard the peer again, with
//! the network perfect. Sessions of one life now only grow, and a frame of
//! an older session of the same life is stale.

use llt::config::Timers;
use llt::core::{Core, CoreConfig, Event, LinkSetup, Phase};
use llt::sim::addr;
use llt::time::{Dur, Time};

fn core(id: u8, seed: u64, now: Time) -> Core {
    let mut cfg = CoreConfig::new(id, 9, vec![LinkSetup { tag: "l0".into(), lowpri: false, mtu: 1500 }], seed);
    cfg.timers = Timers { heartbeat: 10, heartbeatlo: 20, peertrouble: 30, peertroublelo: 50, peerinact: 80, dupwait: 20 };
    Core::new(cfg, now)
}

/// Run node 0 (`a`) and node 1 (`b`) on one link until `end`, frames
/// delivered at once (or dropped, per direction); returns a's frames.
fn run(a: &mut Core, b: &mut Core, now: &mut Time, end: Time, a_to_b: bool, b_to_a: bool) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit() {
            moved = true;
            if a_to_b {
                b.handle_frame(*now, 0, addr(0, 0), &t.frame);
            }
            sent.push(t.frame);
        }
        while let Some(t) = b.poll_transmit() {
            moved = true;
            if b_to_a {
                a.handle_frame(*now, 0, addr(1, 0), &t.frame);
            }
        }
        if moved {
            continue;
        }
        let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min().expect("cores have timers");
        if next > end {
            *now = end;
            return sent;
        }
        *now = next.max(*now);
        for c in [&mut *a, &mut *b] {
            if c.poll_timeout().is_some_and(|t| t <= *now) {
                c.handle_timeout(*now);
            }
        }
    }
}

#[test]
fn a_delayed_frame_of_the_previous_session_does_not_deafen_a_restarted_node() {
    let mut now = Time::ZERO;
    let mut a = core(0, 1, now);
    let mut b = core(1, 2, now);
    run(&mut a, &mut b, &mut now, Time::from_millis(1000), true, true);
    assert!(a.is_open(1) && b.is_open(0));
    // Node 1 dies: node 0 keeps its session until it declares 1 down.
    let mut gone = core(1, 3, now);
    let end = now + Dur::from_millis(500);
    let old_session = run(&mut a, &mut gone, &mut now, end, false, false);
    let end = now + Dur::from_millis(500);
    run(&mut a, &mut gone, &mut now, end, false, false);
    assert!(!a.is_open(1), "node 0 declared node 1 down and renewed its session");
    // Node 1 starts again and listens for a duplicate id.
    let mut b2 = core(1, 4, now);
    let end = now + Dur::from_millis(300);
    run(&mut gone, &mut b2, &mut now, end, false, false);
    assert_eq!(b2.phase(), Phase::Running);
    // Node 0's renewed session arrives first, then a late frame of the old one.
    a.handle_timeout(now + Dur::from_millis(100));
    while let Some(t) = a.poll_transmit() {
        b2.handle_frame(now, 0, addr(0, 0), &t.frame);
    }
    b2.handle_frame(now, 0, addr(0, 0), old_session.last().expect("node 0 sent frames"));
    let end = now + Dur::from_millis(3000);
    run(&mut a, &mut b2, &mut now, end, true, true);
    let mut events = Vec::new();
    while let Some(e) = b2.poll_event() {
        events.push(e);
    }
    assert!(b2.is_open(0), "the restarted node hears node 0: {events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::PeerDown { .. })), "no reset, no loss: {events:?}");
    assert!(b2.stats().rcv_stale_session >= 1, "the late frame counted as stale");
}
