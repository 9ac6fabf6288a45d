//! Helpers shared by the fuzz targets (`fuzz/`) and the fuzz smoke tests:
//! a core already past its duplicate-id listening period, and a frame
//! mutator driven by the project's seeded generator.

use crate::core::{Core, CoreConfig, LinkSetup};
use crate::rng::Rng;
use crate::time::{Dur, Time};
use crate::wire::{self, Header, MsgType};

/// A running core of node 1, cluster 7, with two links.
pub fn running_core() -> (Core, Time) {
    let links = (0..2).map(|i| LinkSetup { tag: format!("eth{i}"), lowpri: i == 1, mtu: 1500 }).collect();
    let mut cfg = CoreConfig::new(1, 7, links, 42);
    cfg.timers.dupwait = 1;
    let mut core = Core::new(cfg, Time::ZERO);
    let now = Time::ZERO + Dur::from_millis(20);
    core.handle_timeout(now);
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
    (core, now)
}

/// A plausible frame (valid header for cluster 7 from node 2) with a few
/// random bytes changed: exercises the paths behind the decoder.
pub fn mutated_frame(rng: &mut Rng) -> Vec<u8> {
    let types = [MsgType::Announce, MsgType::Data, MsgType::Ack, MsgType::Nack, MsgType::Heartbeat];
    let mut h = Header::new(types[rng.below(5) as usize], 7, 2, 1);
    h.session = rng.below(3) as u32;
    h.dest_session = rng.below(3) as u32;
    h.seq = rng.below(2000) as u32;
    h.ack = rng.below(2000) as u32;
    h.aux1 = rng.next_u32();
    h.aux2 = rng.next_u32();
    h.flags = rng.below(16) as u8;
    let len = rng.below(1600) as usize;
    let payload: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
    let mut f = wire::encode(&h, &payload);
    for _ in 0..rng.below(4) {
        let i = rng.below(f.len() as u64) as usize;
        f[i] = rng.next_u32() as u8;
    }
    if rng.chance(10) {
        f.truncate(rng.below(f.len() as u64 + 1) as usize);
    }
    f
}
