//! Any bytes from a peer's GAB: decoding errors are counted, a running
//! core never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llt::time::Time;

fuzz_target!(|data: &[u8]| {
    let _ = gab::msg::decode(data);
    let mut g = gab::core::Gab::new(gab::core::GabConfig::new(1, 1, 1), Time::ZERO);
    g.register(Time::ZERO, b'h');
    g.llt_peer_up(Time::ZERO, 0);
    g.llt_deliver(Time::ZERO, 0, data);
    while g.poll_send().is_some() {}
    while g.poll_event().is_some() {}
});
