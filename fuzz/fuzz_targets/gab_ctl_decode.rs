//! Any bytes on GAB's client socket, and any LLT message as GAB chunks:
//! decoding errors, never panics, never unbounded allocations.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = llt::ctl::decode_body::<gab::ctl::GabClientMsg>(data);
    let _ = llt::ctl::decode_body::<gab::ctl::GabServerMsg>(data);
    let _ = llt::ctl::frame_len(data);
    // The same bytes cut into chunks from two peers.
    let mut r = gab::frag::Reassembly::default();
    for (i, part) in data.chunks(7).enumerate() {
        let _ = r.push((i % 2) as u8, part);
    }
});
