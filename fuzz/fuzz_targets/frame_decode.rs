//! Any bytes from a link: the decoder returns a frame or an error, and a
//! running core fed them counts and drops what it cannot use, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llt::core::LinkAddr;
use llt::fuzzing::running_core;
use llt::time::Time;

fuzz_target!(|data: &[u8]| {
    let _ = llt::wire::decode(data);
    let (mut core, now) = running_core();
    core.handle_frame(now, 0, LinkAddr::Mac([2, 0, 0, 0, 0, 9]), data);
    core.handle_timeout(now + llt::time::Dur::from_millis(10));
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
    let _ = Time::ZERO;
});
