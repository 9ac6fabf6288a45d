//! Sense data: what a device says went wrong with CHECK CONDITION.
//!
//! Both SPC-4 formats are read: fixed (response codes 0x70 current, 0x71
//! deferred) and descriptor (0x72, 0x73). Only the sense key, ASC and ASCQ
//! are required; the INFORMATION field and the sense-key specific field
//! pointer (where in the CDB or parameter list an ILLEGAL REQUEST points)
//! are taken when present and well formed, and ignored otherwise, so a
//! device's sloppy trailing descriptor never hides the key and codes.

use crate::parse::{Bytes, ParseError};
use serde::Serialize;
use std::fmt;

/// The 4-bit sense key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SenseKey(pub u8);

impl SenseKey {
    pub const NO_SENSE: SenseKey = SenseKey(0x0);
    pub const RECOVERED_ERROR: SenseKey = SenseKey(0x1);
    pub const NOT_READY: SenseKey = SenseKey(0x2);
    pub const MEDIUM_ERROR: SenseKey = SenseKey(0x3);
    pub const HARDWARE_ERROR: SenseKey = SenseKey(0x4);
    pub const ILLEGAL_REQUEST: SenseKey = SenseKey(0x5);
    pub const UNIT_ATTENTION: SenseKey = SenseKey(0x6);
    pub const DATA_PROTECT: SenseKey = SenseKey(0x7);
    pub const ABORTED_COMMAND: SenseKey = SenseKey(0xb);

    pub fn name(self) -> &'static str {
        match self.0 {
            0x0 => "NO SENSE",
            0x1 => "RECOVERED ERROR",
            0x2 => "NOT READY",
            0x3 => "MEDIUM ERROR",
            0x4 => "HARDWARE ERROR",
            0x5 => "ILLEGAL REQUEST",
            0x6 => "UNIT ATTENTION",
            0x7 => "DATA PROTECT",
            0x8 => "BLANK CHECK",
            0x9 => "VENDOR SPECIFIC",
            0xa => "COPY ABORTED",
            0xb => "ABORTED COMMAND",
            0xd => "VOLUME OVERFLOW",
            0xe => "MISCOMPARE",
            0xf => "COMPLETED",
            _ => "RESERVED SENSE KEY",
        }
    }
}

impl fmt::Display for SenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of the two layouts the device used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SenseFormat {
    Fixed,
    Descriptor,
}

/// Where an ILLEGAL REQUEST points (sense-key specific field pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FieldPointer {
    /// True: in the CDB; false: in the parameter list (data out).
    pub in_cdb: bool,
    pub byte: u16,
    pub bit: Option<u8>,
}

/// Decoded sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sense {
    pub format: SenseFormat,
    /// Reports an earlier command's failure (0x71, 0x73), not this one's.
    pub deferred: bool,
    pub key: SenseKey,
    pub asc: u8,
    pub ascq: u8,
    pub information: Option<u64>,
    pub field_pointer: Option<FieldPointer>,
}

/// ASC 2Ah ASCQ 05h: this I_T nexus's registration was preempted (it has
/// been fenced). The first command after the preemption reports it.
pub const REGISTRATIONS_PREEMPTED: (u8, u8) = (0x2a, 0x05);
/// ASC 2Ah ASCQ 03h: the reservation this nexus relied on was preempted.
pub const RESERVATIONS_PREEMPTED: (u8, u8) = (0x2a, 0x03);
/// ASC 2Ah ASCQ 04h: the reservation was released.
pub const RESERVATIONS_RELEASED: (u8, u8) = (0x2a, 0x04);

impl Sense {
    /// Whether the command failed because of UNIT ATTENTION: the command was
    /// not executed and may be sent again.
    pub fn is_unit_attention(&self) -> bool {
        self.key == SenseKey::UNIT_ATTENTION
    }
    pub fn codes(&self) -> (u8, u8) {
        (self.asc, self.ascq)
    }
    /// The SPC-4 text for ASC/ASCQ, or the codes when unknown.
    pub fn asc_text(&self) -> String {
        asc_text(self.asc, self.ascq)
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (ASC {:02X}h ASCQ {:02X}h)", self.key, self.asc_text(), self.asc, self.ascq)?;
        if self.deferred {
            f.write_str(", deferred")?;
        }
        if let Some(p) = self.field_pointer {
            let place = if p.in_cdb { "CDB" } else { "parameter list" };
            write!(f, ", at {place} byte {}", p.byte)?;
            if let Some(bit) = p.bit {
                write!(f, " bit {bit}")?;
            }
        }
        Ok(())
    }
}

/// Texts for the additional sense codes fencing meets (SPC-4 Annex D).
const ASC_TEXT: &[(u8, u8, &str)] = &[
    (0x00, 0x00, "NO ADDITIONAL SENSE INFORMATION"),
    (0x04, 0x00, "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE"),
    (0x04, 0x01, "LOGICAL UNIT IS IN PROCESS OF BECOMING READY"),
    (0x04, 0x02, "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED"),
    (0x04, 0x03, "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED"),
    (0x04, 0x0a, "LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION"),
    (0x04, 0x0b, "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE"),
    (0x04, 0x0c, "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE"),
    (0x08, 0x00, "LOGICAL UNIT COMMUNICATION FAILURE"),
    (0x08, 0x01, "LOGICAL UNIT COMMUNICATION TIME-OUT"),
    (0x0c, 0x00, "WRITE ERROR"),
    (0x11, 0x00, "UNRECOVERED READ ERROR"),
    (0x1a, 0x00, "PARAMETER LIST LENGTH ERROR"),
    (0x20, 0x00, "INVALID COMMAND OPERATION CODE"),
    (0x21, 0x00, "LOGICAL BLOCK ADDRESS OUT OF RANGE"),
    (0x24, 0x00, "INVALID FIELD IN CDB"),
    (0x25, 0x00, "LOGICAL UNIT NOT SUPPORTED"),
    (0x26, 0x00, "INVALID FIELD IN PARAMETER LIST"),
    (0x27, 0x00, "WRITE PROTECTED"),
    (0x28, 0x00, "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED"),
    (0x29, 0x00, "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED"),
    (0x29, 0x01, "POWER ON OCCURRED"),
    (0x29, 0x02, "SCSI BUS RESET OCCURRED"),
    (0x29, 0x03, "BUS DEVICE RESET FUNCTION OCCURRED"),
    (0x29, 0x04, "DEVICE INTERNAL RESET"),
    (0x29, 0x07, "I_T NEXUS LOSS OCCURRED"),
    (0x2a, 0x00, "PARAMETERS CHANGED"),
    (0x2a, 0x01, "MODE PARAMETERS CHANGED"),
    (0x2a, 0x03, "RESERVATIONS PREEMPTED"),
    (0x2a, 0x04, "RESERVATIONS RELEASED"),
    (0x2a, 0x05, "REGISTRATIONS PREEMPTED"),
    (0x2a, 0x06, "ASYMMETRIC ACCESS STATE CHANGED"),
    (0x2a, 0x09, "CAPACITY DATA HAS CHANGED"),
    (0x2c, 0x00, "COMMAND SEQUENCE ERROR"),
    (0x2f, 0x00, "COMMANDS CLEARED BY ANOTHER INITIATOR"),
    (0x2f, 0x01, "COMMANDS CLEARED BY POWER LOSS NOTIFICATION"),
    (0x3a, 0x00, "MEDIUM NOT PRESENT"),
    (0x3e, 0x02, "TIMEOUT ON LOGICAL UNIT"),
    (0x3f, 0x01, "MICROCODE HAS BEEN CHANGED"),
    (0x3f, 0x03, "INQUIRY DATA HAS CHANGED"),
    (0x3f, 0x0e, "REPORTED LUNS DATA HAS CHANGED"),
    (0x44, 0x00, "INTERNAL TARGET FAILURE"),
    (0x47, 0x00, "SCSI PARITY ERROR"),
    (0x4b, 0x00, "DATA PHASE ERROR"),
    (0x55, 0x03, "INSUFFICIENT RESOURCES"),
    (0x55, 0x04, "INSUFFICIENT REGISTRATION RESOURCES"),
];

/// The SPC-4 text for an ASC/ASCQ pair, or the codes themselves.
pub fn asc_text(asc: u8, ascq: u8) -> String {
    if let Some((_, _, text)) = ASC_TEXT.iter().find(|(a, q, _)| *a == asc && *q == ascq) {
        return (*text).to_string();
    }
    if asc >= 0x80 || ascq >= 0x80 {
        return format!("VENDOR SPECIFIC ASC {asc:02X}h ASCQ {ascq:02X}h");
    }
    format!("ASC {asc:02X}h ASCQ {ascq:02X}h")
}

/// Decodes sense data of either format. The buffer is what the device
/// wrote (sb_len_wr bytes), not the whole sense buffer.
pub fn parse(buf: &[u8]) -> Result<Sense, ParseError> {
    let b = Bytes::new("sense data", buf);
    let code = b.u8("RESPONSE CODE", 0)? & 0x7f;
    match code {
        0x70 | 0x71 => fixed(&b, code == 0x71),
        0x72 | 0x73 => descriptor(&b, code == 0x73),
        _ => Err(b.invalid("RESPONSE CODE", 0, code.into(), "0x70..0x73 (fixed or descriptor sense)")),
    }
}

/// The sense-key specific bytes as a field pointer, for ILLEGAL REQUEST.
fn field_pointer(key: SenseKey, sks: &[u8]) -> Option<FieldPointer> {
    if key != SenseKey::ILLEGAL_REQUEST || sks.len() < 3 || sks[0] & 0x80 == 0 {
        return None;
    }
    Some(FieldPointer {
        in_cdb: sks[0] & 0x40 != 0,
        byte: u16::from_be_bytes([sks[1], sks[2]]),
        bit: (sks[0] & 0x08 != 0).then_some(sks[0] & 0x07),
    })
}

/// Fixed format: key at byte 2, INFORMATION 3..7 (if VALID), ADDITIONAL
/// SENSE LENGTH at 7, ASC 12, ASCQ 13, sense-key specific 15..18. A short
/// reply (additional length 0) is legal and means ASC/ASCQ 0.
fn fixed(b: &Bytes<'_>, deferred: bool) -> Result<Sense, ParseError> {
    let key = SenseKey(b.u8("SENSE KEY", 2)? & 0x0f);
    let valid = b.u8("VALID", 0)? & 0x80 != 0;
    // Bytes the device says it filled: 8 + ADDITIONAL SENSE LENGTH.
    let filled = match b.u8("ADDITIONAL SENSE LENGTH", 7) {
        Ok(n) => (8 + n as usize).min(b.len()),
        Err(_) => b.len(),
    };
    let within = |off: usize, len: usize| off + len <= filled;
    let information = if valid && within(3, 4) { Some(b.be32("INFORMATION", 3)? as u64) } else { None };
    let (asc, ascq) = if within(12, 2) { (b.u8("ASC", 12)?, b.u8("ASCQ", 13)?) } else { (0, 0) };
    let sks = if within(15, 3) { b.slice("SENSE KEY SPECIFIC", 15, 3)? } else { &[][..] };
    Ok(Sense {
        format: SenseFormat::Fixed,
        deferred,
        key,
        asc,
        ascq,
        information,
        field_pointer: field_pointer(key, sks),
    })
}

/// Descriptor format: key at 1, ASC 2, ASCQ 3, ADDITIONAL SENSE LENGTH at
/// 7, then descriptors (type, length, body). Descriptor 0x00 carries
/// INFORMATION, 0x02 the sense-key specific bytes.
fn descriptor(b: &Bytes<'_>, deferred: bool) -> Result<Sense, ParseError> {
    let key = SenseKey(b.u8("SENSE KEY", 1)? & 0x0f);
    let asc = b.u8("ASC", 2)?;
    let ascq = b.u8("ASCQ", 3)?;
    let mut sense =
        Sense { format: SenseFormat::Descriptor, deferred, key, asc, ascq, information: None, field_pointer: None };
    let end = match b.u8("ADDITIONAL SENSE LENGTH", 7) {
        Ok(n) => (8 + n as usize).min(b.len()),
        Err(_) => return Ok(sense),
    };
    let mut off = 8;
    while off + 2 <= end {
        let (kind, len) = (b.buf[off], b.buf[off + 1] as usize);
        let body = off + 2;
        if body + len > end {
            break; // a descriptor cut short: keep what was read
        }
        match kind {
            0x00 if len >= 0x0a && b.buf[body] & 0x80 != 0 => {
                sense.information = Some(b.be64("INFORMATION", body + 2)?);
            }
            0x02 if len >= 6 => {
                sense.field_pointer = field_pointer(key, b.slice("SENSE KEY SPECIFIC", body + 2, 3)?);
            }
            _ => {}
        }
        off = body + len;
    }
    Ok(sense)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_unit_attention_registrations_preempted() {
        // What LIO sent the preempted path in the lab (sg_turs -v: "Fixed
        // format, current; Sense key: Unit Attention; Additional sense:
        // Registrations preempted").
        let buf = [0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x2a, 0x05, 0, 0, 0, 0];
        let s = parse(&buf).unwrap();
        assert_eq!(s.format, SenseFormat::Fixed);
        assert!(s.is_unit_attention() && !s.deferred);
        assert_eq!(s.codes(), REGISTRATIONS_PREEMPTED);
        assert_eq!(s.information, None);
        assert_eq!(s.to_string(), "UNIT ATTENTION: REGISTRATIONS PREEMPTED (ASC 2Ah ASCQ 05h)");
    }

    #[test]
    fn fixed_not_ready_communication_failure_with_information() {
        // LIO when its PR directory is missing (lab gotcha 3).
        let buf = [0xf0, 0, 0x02, 0x00, 0x00, 0x12, 0x34, 0x0a, 0, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0];
        let s = parse(&buf).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (SenseKey::NOT_READY, 0x08, 0x00));
        assert_eq!(s.information, Some(0x1234));
        assert_eq!(s.to_string(), "NOT READY: LOGICAL UNIT COMMUNICATION FAILURE (ASC 08h ASCQ 00h)");
    }

    #[test]
    fn fixed_illegal_request_points_into_the_cdb() {
        // INVALID FIELD IN CDB, SKSV, C/D=1, BPV, bit 4 of byte 1.
        let buf = [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0xcc, 0x00, 0x01];
        let s = parse(&buf).unwrap();
        assert_eq!(s.field_pointer, Some(FieldPointer { in_cdb: true, byte: 1, bit: Some(4) }));
        assert_eq!(s.to_string(), "ILLEGAL REQUEST: INVALID FIELD IN CDB (ASC 24h ASCQ 00h), at CDB byte 1 bit 4");
    }

    #[test]
    fn fixed_short_forms() {
        // Only up to the key: ASC/ASCQ read as 0.
        let s = parse(&[0x70, 0, 0x06]).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (SenseKey::UNIT_ATTENTION, 0, 0));
        // ADDITIONAL SENSE LENGTH 0: bytes after it are not sense.
        let s = parse(&[0x71, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x01]).unwrap();
        assert!(s.deferred);
        assert_eq!(s.codes(), (0, 0));
        assert_eq!(
            parse(&[0x70, 0]).unwrap_err().to_string(),
            "sense data: SENSE KEY at byte 2 needs 1 byte(s), only 2 received"
        );
    }

    #[test]
    fn descriptor_format() {
        // 0x72, RESERVATIONS RELEASED, with an information descriptor.
        let buf = [0x72, 0x06, 0x2a, 0x04, 0, 0, 0, 12, 0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
        let s = parse(&buf).unwrap();
        assert_eq!(s.format, SenseFormat::Descriptor);
        assert_eq!(s.codes(), RESERVATIONS_RELEASED);
        assert_eq!(s.information, Some(0x100));
        assert_eq!(s.to_string(), "UNIT ATTENTION: RESERVATIONS RELEASED (ASC 2Ah ASCQ 04h)");
        // Sense-key specific descriptor, parameter list byte 20.
        let buf = [0x73, 0x05, 0x26, 0x00, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0x80, 0x00, 0x14, 0];
        let s = parse(&buf).unwrap();
        assert!(s.deferred);
        assert_eq!(s.field_pointer, Some(FieldPointer { in_cdb: false, byte: 20, bit: None }));
        // A descriptor running past the end is ignored, the codes are kept.
        let s = parse(&[0x72, 0x06, 0x2a, 0x03, 0, 0, 0, 20, 0x00, 0x0a, 0x80]).unwrap();
        assert_eq!((s.codes(), s.information), (RESERVATIONS_PREEMPTED, None));
        assert!(parse(&[0x72, 0x06, 0x2a]).is_err());
    }

    #[test]
    fn unknown_response_code_and_texts() {
        assert_eq!(
            parse(&[0x7f, 0, 0]).unwrap_err().to_string(),
            "sense data: RESPONSE CODE at byte 0 is 0x7f, expected 0x70..0x73 (fixed or descriptor sense)"
        );
        assert!(parse(&[]).is_err());
        assert_eq!(asc_text(0x2a, 0x07), "ASC 2Ah ASCQ 07h");
        assert_eq!(asc_text(0x80, 0x01), "VENDOR SPECIFIC ASC 80h ASCQ 01h");
        assert_eq!(SenseKey(0xc).name(), "RESERVED SENSE KEY");
    }
}
