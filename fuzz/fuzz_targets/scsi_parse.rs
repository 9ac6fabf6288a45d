//! Any bytes as a device's reply: every SCSI parser (PR IN replies,
//! INQUIRY and VPD pages, sense data, status decoding), keys and the
//! fencing configuration files return a value or an error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fencing::fuzzing::parse_all(data);
});
