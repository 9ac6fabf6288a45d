//! Any bytes as main.cf: the parser (and the validator after it) return a
//! model or diagnostics, never panic; a cleanly parsed model survives write → parse unchanged and
//! write → parse → write byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (mut config, diags) = had::cf::parse_str_with_diags(Path::new("main.cf"), &text);
    if diags.is_empty() {
        // The validator takes whatever parsed: diagnostics, never a panic.
        let _ = had::validate::validate(&config);
        let written = had::cf::write_config(&config);
        config.sort_like_dump();
        let again = had::cf::parse_str(Path::new("main.cf"), &written).expect("written text parses");
        assert_eq!(config, again);
        assert_eq!(written, had::cf::write_config(&again));
    }
});
