//! Deterministic fuzz smoke run for CI (coverage-guided: fuzz/scsi_parse):
//! real replies, truncated, mutated, extended, and plain random bytes go
//! through every parser; errors are expected, panics are not.

use fencing::fuzzing::{parse_all, samples};
use fencing::parse;
use llt::rng::Rng;

#[test]
fn samples_parse_cleanly() {
    let s = samples();
    assert_eq!(parse::read_keys(&s[0]).unwrap().keys.len(), 3);
    assert!(parse::read_reservation(&s[1]).unwrap().reservation.is_some());
    assert_eq!(parse::report_capabilities(&s[2]).unwrap().types.len(), 6);
    assert_eq!(parse::standard_inquiry(&s[3]).unwrap().vendor, "LIO-ORG");
    assert_eq!(parse::unit_serial(&s[4]).unwrap(), "prlab-disk0");
    assert_eq!(parse::device_identification(&s[5]).unwrap().len(), 4);
    assert_eq!(parse::read_capacity10(&s[6]).unwrap().block_len, 512);
    assert!(fencing::sense::parse(&s[7]).unwrap().is_unit_attention());
    assert!(fencing::sense::parse(&s[8]).unwrap().field_pointer.is_some());
}

/// Every prefix of every sample: the short replies a device or a small
/// allocation length produce.
#[test]
fn every_truncation() {
    for sample in samples() {
        for n in 0..=sample.len() {
            parse_all(&sample[..n]);
        }
    }
}

#[test]
fn mutated_and_random_input_never_panics() {
    let mut rng = Rng::new(7);
    let samples = samples();
    let mut errors = 0u32;
    for i in 0..20_000u32 {
        let mut b = if i % 5 == 4 {
            (0..rng.below(80)).map(|_| rng.next_u32() as u8).collect()
        } else {
            samples[i as usize % samples.len()].clone()
        };
        for _ in 0..rng.below(4) {
            if !b.is_empty() {
                let k = rng.below(b.len() as u64) as usize;
                b[k] = match rng.below(4) {
                    0 => 0xff,
                    1 => 0,
                    _ => rng.next_u32() as u8,
                };
            }
        }
        match rng.below(4) {
            0 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
            1 => b.extend((0..rng.below(16)).map(|_| rng.next_u32() as u8)),
            _ => {}
        }
        parse_all(&b);
        errors += parse::read_keys(&b).is_err() as u32 + parse::device_identification(&b).is_err() as u32;
    }
    assert!(errors > 1000, "mutations produce errors: {errors}");
}
