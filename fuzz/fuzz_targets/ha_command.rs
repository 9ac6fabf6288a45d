//! Any bytes as ha* command lines and as a main.cmd: the request parser
//! (`had::command::parse`) and hacf's command interpreter return requests,
//! a configuration or errors, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let _ = had::command::parse(&words);
    }
    let mut no_files = |_: &Path| -> std::io::Result<String> { Err(std::io::Error::other("no files")) };
    let _ = had::hacf::cmd_to_config(Path::new("main.cmd"), &text, Path::new("main.cf"), &mut no_files);
});
