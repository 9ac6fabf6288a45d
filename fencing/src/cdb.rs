//! Command descriptor blocks and the PERSISTENT RESERVE OUT parameter list,
//! byte for byte as SPC-4 (and SBC-3 for READ/WRITE/READ CAPACITY) lays
//! them out. Pure functions: no I/O, so every layout is unit-tested below.
//!
//! Multi-byte fields are big-endian. The CONTROL byte (last) is always 0.

use crate::key::Key;
use crate::parse::ReservationType;

/// PERSISTENT RESERVE IN operation code.
pub const PR_IN: u8 = 0x5e;
/// PERSISTENT RESERVE OUT operation code.
pub const PR_OUT: u8 = 0x5f;
pub const INQUIRY: u8 = 0x12;
pub const TEST_UNIT_READY: u8 = 0x00;
pub const READ_10: u8 = 0x28;
pub const WRITE_10: u8 = 0x2a;
pub const READ_CAPACITY_10: u8 = 0x25;

/// Length of the basic PR OUT parameter list (no SPEC_I_PT TransportIDs).
pub const PROUT_PARAM_LEN: usize = 24;

/// PERSISTENT RESERVE IN service actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrInAction {
    ReadKeys = 0,
    ReadReservation = 1,
    ReportCapabilities = 2,
}

/// PERSISTENT RESERVE OUT service actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrOutAction {
    Register = 0,
    Reserve = 1,
    Release = 2,
    Clear = 3,
    Preempt = 4,
    PreemptAndAbort = 5,
    RegisterAndIgnoreExistingKey = 6,
}

/// PERSISTENT RESERVE IN (10 bytes): service action in byte 1, allocation
/// length in bytes 7..9.
pub fn pr_in(action: PrInAction, alloc_len: u16) -> [u8; 10] {
    let len = alloc_len.to_be_bytes();
    [PR_IN, action as u8, 0, 0, 0, 0, 0, len[0], len[1], 0]
}

/// PERSISTENT RESERVE OUT (10 bytes): service action in byte 1, SCOPE
/// (high nibble, 0 = LU_SCOPE) and TYPE (low nibble) in byte 2, PARAMETER
/// LIST LENGTH in bytes 5..9 (SPC-4; SPC-3 used 7..9, the same bytes for
/// our 24).
pub fn pr_out(action: PrOutAction, kind: Option<ReservationType>) -> [u8; 10] {
    let len = (PROUT_PARAM_LEN as u32).to_be_bytes();
    let type_code = kind.map_or(0, |k| k.code());
    [PR_OUT, action as u8, type_code & 0x0f, 0, 0, len[0], len[1], len[2], len[3], 0]
}

/// The fields of the PR OUT parameter list that fencing sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProutParams {
    /// RESERVATION KEY: the key this I_T nexus is registered with (0 when
    /// registering for the first time).
    pub key: Key,
    /// SERVICE ACTION RESERVATION KEY: the new key (REGISTER), or the
    /// victim's key (PREEMPT).
    pub sa_key: Key,
    /// Activate Persist Through Power Loss.
    pub aptpl: bool,
    /// Register on all target ports of the device at once.
    pub all_tg_pt: bool,
}

/// The 24-byte parameter list: RESERVATION KEY (0..8), SERVICE ACTION
/// RESERVATION KEY (8..16), obsolete (16..20), flags in byte 20 (SPEC_I_PT
/// bit 3, ALL_TG_PT bit 2, APTPL bit 0), reserved/obsolete (21..24).
pub fn prout_params(p: &ProutParams) -> [u8; PROUT_PARAM_LEN] {
    let mut out = [0u8; PROUT_PARAM_LEN];
    out[0..8].copy_from_slice(&p.key.to_bytes());
    out[8..16].copy_from_slice(&p.sa_key.to_bytes());
    out[20] = (u8::from(p.all_tg_pt) << 2) | u8::from(p.aptpl);
    out
}

/// Standard INQUIRY (6 bytes; allocation length in bytes 3..5 as SPC-4).
pub fn inquiry(alloc_len: u16) -> [u8; 6] {
    let len = alloc_len.to_be_bytes();
    [INQUIRY, 0, 0, len[0], len[1], 0]
}

/// INQUIRY for a vital product data page: EVPD (byte 1 bit 0) and the page
/// code in byte 2 (0x80 unit serial number, 0x83 device identification).
pub fn inquiry_vpd(page: u8, alloc_len: u16) -> [u8; 6] {
    let len = alloc_len.to_be_bytes();
    [INQUIRY, 0x01, page, len[0], len[1], 0]
}

/// TEST UNIT READY: six zero bytes.
pub fn test_unit_ready() -> [u8; 6] {
    [TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// READ CAPACITY(10): the block length, needed to write one block.
pub fn read_capacity10() -> [u8; 10] {
    [READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// READ(10)/WRITE(10): LBA in bytes 2..6, TRANSFER LENGTH (blocks) in 7..9.
fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [op, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

pub fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    rw10(READ_10, lba, blocks)
}

/// A fenced nexus's WRITE must end in RESERVATION CONFLICT: the test of
/// fencing that matters.
pub fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    rw10(WRITE_10, lba, blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_in_layouts() {
        assert_eq!(pr_in(PrInAction::ReadKeys, 0x1234), [0x5e, 0x00, 0, 0, 0, 0, 0, 0x12, 0x34, 0]);
        assert_eq!(pr_in(PrInAction::ReadReservation, 24), [0x5e, 0x01, 0, 0, 0, 0, 0, 0, 24, 0]);
        assert_eq!(pr_in(PrInAction::ReportCapabilities, 8), [0x5e, 0x02, 0, 0, 0, 0, 0, 0, 8, 0]);
    }

    #[test]
    fn pr_out_layouts() {
        // REGISTER: type ignored, written as 0; parameter list length 24.
        assert_eq!(pr_out(PrOutAction::Register, None), [0x5f, 0x00, 0x00, 0, 0, 0, 0, 0, 24, 0]);
        // RESERVE type 5 (WERO), LU_SCOPE: byte 2 = 0x05.
        let wero = Some(ReservationType::WriteExclusiveRegistrantsOnly);
        assert_eq!(pr_out(PrOutAction::Reserve, wero), [0x5f, 0x01, 0x05, 0, 0, 0, 0, 0, 24, 0]);
        assert_eq!(pr_out(PrOutAction::Release, wero)[..3], [0x5f, 0x02, 0x05]);
        assert_eq!(pr_out(PrOutAction::Clear, None)[..3], [0x5f, 0x03, 0x00]);
        assert_eq!(pr_out(PrOutAction::Preempt, wero)[..3], [0x5f, 0x04, 0x05]);
        let eaar = Some(ReservationType::ExclusiveAccessAllRegistrants);
        assert_eq!(pr_out(PrOutAction::PreemptAndAbort, eaar)[..3], [0x5f, 0x05, 0x08]);
        assert_eq!(pr_out(PrOutAction::RegisterAndIgnoreExistingKey, None)[..3], [0x5f, 0x06, 0x00]);
        for (t, code) in [
            (ReservationType::WriteExclusive, 1),
            (ReservationType::ExclusiveAccess, 3),
            (ReservationType::ExclusiveAccessRegistrantsOnly, 6),
            (ReservationType::WriteExclusiveAllRegistrants, 7),
        ] {
            assert_eq!(pr_out(PrOutAction::Reserve, Some(t))[2], code);
        }
    }

    #[test]
    fn prout_parameter_list() {
        let p =
            ProutParams { key: Key(0x3333_cccc), sa_key: Key::from_bytes(*b"VFDEED00"), aptpl: true, all_tg_pt: false };
        let b = prout_params(&p);
        assert_eq!(b[0..8], [0, 0, 0, 0, 0x33, 0x33, 0xcc, 0xcc]);
        assert_eq!(&b[8..16], b"VFDEED00");
        assert_eq!(b[16..20], [0; 4]);
        assert_eq!(b[20], 0x01);
        assert_eq!(b[21..24], [0; 3]);
        let all = prout_params(&ProutParams { all_tg_pt: true, ..ProutParams::default() });
        assert_eq!(all, {
            let mut z = [0u8; 24];
            z[20] = 0x04;
            z
        });
    }

    #[test]
    fn inquiry_and_small_commands() {
        assert_eq!(inquiry(96), [0x12, 0, 0, 0, 96, 0]);
        assert_eq!(inquiry_vpd(0x80, 252), [0x12, 0x01, 0x80, 0, 252, 0]);
        assert_eq!(inquiry_vpd(0x83, 0x1000), [0x12, 0x01, 0x83, 0x10, 0x00, 0]);
        assert_eq!(test_unit_ready(), [0; 6]);
        assert_eq!(read_capacity10(), [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn read_write_10() {
        // The lab's sg_raw write: 2a 00 00 00 00 08 00 00 01 00.
        assert_eq!(write10(8, 1), [0x2a, 0, 0, 0, 0, 0x08, 0, 0, 0x01, 0]);
        assert_eq!(read10(0x0102_0304, 0x0506), [0x28, 0, 1, 2, 3, 4, 0, 5, 6, 0]);
    }
}
