//! Deterministic fuzz smoke run for CI (coverage-guided: fuzz/gab_decode):
//! random and mutated GAB messages into a running core never panic, and
//! undecodable ones are counted.

use gab::core::{Gab, GabConfig};
use gab::msg::{self, Body, GabMsg, Ordered, SubmitId};
use llt::rng::Rng;
use llt::time::{Dur, Time};

fn sample(rng: &mut Rng) -> GabMsg {
    let id = SubmitId { origin: rng.below(4) as u8, inc: 1, lseq: rng.below(50) };
    let body = Body::Broadcast { port: b'h', data: vec![rng.next_u32() as u8; rng.below(40) as usize] };
    match rng.below(6) {
        0 => GabMsg::Hello { seeded: rng.chance(50), gen: None, attempt: (rng.below(5), rng.below(4) as u8) },
        1 => GabMsg::Submit { gen: rng.below(3), id, body },
        2 => GabMsg::Ordered { msg: Ordered { gen: rng.below(3), seq: rng.below(10), id, body }, stable: rng.below(10) },
        3 => GabMsg::Ack { gen: rng.below(3), next: rng.below(10) },
        4 => GabMsg::Propose { attempt: (rng.below(5), rng.below(4) as u8), members: (0..rng.below(4) as u8).collect() },
        _ => GabMsg::Hello { seeded: true, gen: Some(rng.below(3)), attempt: (0, 0) },
    }
}

#[test]
fn gab_messages_never_panic() {
    let mut rng = Rng::new(3);
    let mut g = Gab::new(GabConfig::new(1, 1, 1), Time::ZERO);
    g.register(Time::ZERO, b'h');
    let mut now = Time::ZERO;
    g.llt_peer_up(now, 0);
    g.llt_peer_up(now, 2);
    let mut undecodable = 0;
    for i in 0..100_000u32 {
        let mut b = msg::encode(&sample(&mut rng));
        for _ in 0..rng.below(3) {
            let k = rng.below(b.len() as u64) as usize;
            b[k] = rng.next_u32() as u8;
        }
        if i % 3 == 0 {
            b.truncate(rng.below(b.len() as u64 + 1) as usize);
        }
        if msg::decode(&b).is_err() {
            undecodable += 1;
        }
        g.llt_deliver(now, (i % 3) as u8, &b);
        if i % 50 == 0 {
            now = now + Dur::from_millis(10);
            g.handle_timeout(now);
        }
        while g.poll_send().is_some() {}
        while g.poll_event().is_some() {}
    }
    assert_eq!(g.dropped_malformed, undecodable, "every undecodable message is counted");
    assert!(undecodable > 1000 && undecodable < 100_000);
}
