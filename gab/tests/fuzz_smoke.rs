//! Deterministic fuzz smoke run for CI (coverage-guided: fuzz/gab_decode):
//! random and mutated GAB messages into a running core never panic, and
//! undecodable ones are counted.

use gab::core::{Gab, GabConfig};
use gab::msg::{self, Body, GabMsg, Ordered, SubmitId};
use llt::rng::Rng;
use llt::time::{Dur, Time};
use std::collections::BTreeSet;

fn sample(rng: &mut Rng) -> GabMsg {
    let id = SubmitId { origin: rng.below(4) as u8, inc: 1, lseq: rng.below(50) };
    let body = Body::Broadcast { port: b'h', data: vec![rng.next_u32() as u8; rng.below(40) as usize] };
    match rng.below(8) {
        0 => GabMsg::Hello { seeded: rng.chance(50), gen: None, attempt: (rng.below(5), rng.below(4) as u8), sees: (0..rng.below(4) as u8).collect() },
        1 => GabMsg::Submit { gen: rng.below(3), id, body },
        2 => GabMsg::Ordered { msg: Ordered { gen: rng.below(3), seq: rng.below(10), id, body }, stable: rng.below(10) },
        3 => GabMsg::Ack { gen: rng.below(3), next: rng.below(10) },
        4 => GabMsg::Propose { attempt: (rng.below(5), rng.below(4) as u8), members: (0..rng.below(4) as u8).collect(), force: rng.chance(50) },
        5 => GabMsg::Leave,
        6 => GabMsg::Refuse { attempt: (rng.below(5), rng.below(4) as u8), seen: (rng.below(6), rng.below(4) as u8), sees: (0..rng.below(4) as u8).collect(), lower: rng.chance(50) },
        _ => GabMsg::Hello { seeded: true, gen: Some(rng.below(3)), attempt: (0, 0), sees: BTreeSet::new() },
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

/// The client socket's messages and GAB's chunks over LLT: mutated and
/// truncated input decodes to an error or a value, never a panic, and a
/// length prefix cannot make the decoder allocate beyond the frame limit.
#[test]
fn client_messages_and_chunks_never_panic() {
    use gab::ctl::{GabClientMsg, GabRequest, GabServerMsg, Heartbeat};
    let mut rng = Rng::new(11);
    let samples = [
        GabClientMsg::Request(GabRequest::Register { port: b'h', heartbeat: Some(Heartbeat::default()) }),
        GabClientMsg::Request(GabRequest::Configure { seed_n: 3 }),
        GabClientMsg::Broadcast { data: vec![7; 100] },
        GabClientMsg::Unicast { dest: 2, data: vec![1; 10] },
        GabClientMsg::Heartbeat,
    ];
    let mut errors = 0;
    let mut reassembly = gab::frag::Reassembly::default();
    for i in 0..50_000u32 {
        let mut b = llt::ctl::encode_frame(&samples[i as usize % samples.len()]).unwrap().split_off(4);
        for _ in 0..rng.below(4) {
            if !b.is_empty() {
                let k = rng.below(b.len() as u64) as usize;
                b[k] = rng.next_u32() as u8;
            }
        }
        if i % 4 == 0 {
            b.truncate(rng.below(b.len() as u64 + 1) as usize);
        }
        errors += llt::ctl::decode_body::<GabClientMsg>(&b).is_err() as u32;
        let _ = llt::ctl::decode_body::<GabServerMsg>(&b);
        let _ = reassembly.push((i % 3) as u8, &b);
    }
    assert!(errors > 1000, "mutations produce errors: {errors}");
}
