//! Deterministic fuzz smoke run for CI (coverage-guided: fuzz/ha_command):
//! command lines made of real words, mutated and random, go through the
//! request parser and hacf's main.cmd interpreter; errors are expected,
//! panics are not.

use had::{command, hacf};
use llt::rng::Rng;
use std::path::Path;

const WORDS: &[&str] = &[
    "hagrp", "hares", "hasys", "haclus", "haconf", "hastop", "-online", "-offline", "-switch", "-to", "-any", "-sys", "-clear",
    "-flush", "-freeze", "-unfreeze", "-persistent", "-autoenable", "-probe", "-add", "-modify", "-link", "-unlink", "-delete",
    "-local", "-makerw", "-dump", "-makero", "-evacuate", "-keys", "app", "north", "south", "Process", "FileOnOff", "SystemList",
    "PathName", "0", "1", "online", "local", "firm", "\"quoted word\"", "'single'", "\\", "\"", "#", "",
];

#[test]
fn random_command_lines_never_panic() {
    let mut rng = Rng::new(7);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let n = rng.below(8) as usize;
        let words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]).collect();
        accepted += command::parse(&words).is_ok() as u32;
    }
    // Real commands are among them, so some parse.
    assert!(accepted > 0);
}

#[test]
fn random_main_cmd_never_panics() {
    let mut rng = Rng::new(11);
    let mut none = |_: &Path| -> std::io::Result<String> { Err(std::io::Error::other("no files")) };
    for _ in 0..2_000 {
        let mut text = String::new();
        for _ in 0..rng.below(12) {
            for _ in 0..rng.below(8) {
                text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                text.push(if rng.chance(90) { ' ' } else { '"' });
            }
            text.push('\n');
        }
        let _ = hacf::cmd_to_config(Path::new("main.cmd"), &text, Path::new("main.cf"), &mut none);
    }
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.below(256) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = hacf::cmd_to_config(Path::new("main.cmd"), &text, Path::new("main.cf"), &mut none);
    }
}
