//! Deterministic fuzz smoke run for CI (the coverage-guided targets live in
//! fuzz/): random and mutated frames into the decoder and a running core,
//! random bytes into the control-socket decoder. Nothing may panic, and
//! every rejected frame must be counted.

use llt::core::LinkAddr;
use llt::fuzzing::{mutated_frame, running_core};
use llt::rng::Rng;
use llt::time::Dur;

#[test]
fn frames_never_panic_and_rejects_are_counted() {
    let mut rng = Rng::new(7);
    let (mut core, mut now) = running_core();
    let mut rejected = 0u64;
    for i in 0..200_000u32 {
        let f = if i % 2 == 0 {
            mutated_frame(&mut rng)
        } else {
            (0..rng.below(120)).map(|_| rng.next_u32() as u8).collect()
        };
        if llt::wire::decode(&f).is_err() {
            rejected += 1;
        }
        core.handle_frame(now, (i % 2) as u8, LinkAddr::Mac([2, 0, 0, 0, 0, 2]), &f);
        if i % 100 == 0 {
            now = now + Dur::from_millis(5);
            core.handle_timeout(now);
        }
        while core.poll_transmit().is_some() {}
        while core.poll_event().is_some() {}
    }
    let s = core.stats();
    let counted = s.dropped_malformed + s.dropped_foreign_cluster;
    // Decodable frames with a node id above 63 or another cluster id are
    // counted too, so the count is at least the decoder's rejects.
    assert!(counted >= rejected, "every undecodable frame is counted as malformed or foreign ({counted} < {rejected}): {s:?}");
    assert!(s.rcv_data + s.rcv_heartbeat > 0, "mutated frames must also reach the protocol paths: {s:?}");
}

/// Inputs the ctl_decode fuzz target found making bincode reserve ~4 GiB
/// up front: the decode limit must refuse them before any allocation.
#[test]
fn control_message_with_huge_length_prefix_is_refused_by_the_limit() {
    let found: [&[u8]; 1] = [&[0x00, 0x03, 0xfc, 0x00, 0x03, 0xfc, 0xff, 0xff, 0xff, 0xfd, 0xff]];
    for body in found {
        let c = llt::ctl::decode_body::<llt::ctl::ClientMsg>(body).unwrap_err().to_string();
        let s = llt::ctl::decode_body::<llt::ctl::ServerMsg>(body).unwrap_err().to_string();
        assert!(
            c.contains("Limit") || s.contains("Limit"),
            "refused by the size limit, not after reserving: {c} / {s}"
        );
    }
}

#[test]
fn control_messages_never_panic() {
    let mut rng = Rng::new(11);
    for _ in 0..100_000 {
        let b: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u32() as u8).collect();
        let _ = llt::ctl::frame_len(&b);
        let _ = llt::ctl::decode_body::<llt::ctl::ClientMsg>(&b);
        let _ = llt::ctl::decode_body::<llt::ctl::ServerMsg>(&b);
    }
}
