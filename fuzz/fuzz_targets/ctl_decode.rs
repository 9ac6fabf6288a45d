//! Any bytes on the control socket: framing and decoding return errors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = llt::ctl::frame_len(data);
    let _ = llt::ctl::decode_body::<llt::ctl::ClientMsg>(data);
    let _ = llt::ctl::decode_body::<llt::ctl::ServerMsg>(data);
});
