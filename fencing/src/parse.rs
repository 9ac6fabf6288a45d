//! Parsers for the data a device returns: PERSISTENT RESERVE IN replies
//! (READ KEYS, READ RESERVATION, REPORT CAPABILITIES), standard INQUIRY,
//! the VPD pages 0x80 (unit serial number) and 0x83 (device
//! identification), and READ CAPACITY(10). Layouts from SPC-4 / SBC-3.
//!
//! A device, a transport or a fuzzer can hand us anything: every read goes
//! through `Bytes`, which checks bounds and reports what was being read
//! and where, so a short or garbled reply is a [`ParseError`], never a panic.

use crate::key::Key;
use serde::Serialize;
use std::fmt;

/// Why a reply could not be read: which reply, which field, at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{what}: {field} at byte {offset} needs {len} byte(s), only {have} received")]
    Truncated { what: &'static str, field: &'static str, offset: usize, len: usize, have: usize },
    #[error("{what}: {field} at byte {offset} is {value:#x}, expected {expected}")]
    Invalid { what: &'static str, field: &'static str, offset: usize, value: u64, expected: &'static str },
}

/// A checked view of one reply. `what` names the reply in errors.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    pub what: &'static str,
    pub buf: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(what: &'static str, buf: &'a [u8]) -> Bytes<'a> {
        Bytes { what, buf }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn slice(&self, field: &'static str, offset: usize, len: usize) -> Result<&'a [u8], ParseError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.buf.len() => Ok(&self.buf[offset..end]),
            _ => Err(ParseError::Truncated { what: self.what, field, offset, len, have: self.buf.len() }),
        }
    }
    pub fn u8(&self, field: &'static str, offset: usize) -> Result<u8, ParseError> {
        Ok(self.slice(field, offset, 1)?[0])
    }
    pub fn be16(&self, field: &'static str, offset: usize) -> Result<u16, ParseError> {
        let s = self.slice(field, offset, 2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    pub fn be32(&self, field: &'static str, offset: usize) -> Result<u32, ParseError> {
        let s = self.slice(field, offset, 4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub fn be64(&self, field: &'static str, offset: usize) -> Result<u64, ParseError> {
        let s = self.slice(field, offset, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    pub fn invalid(&self, field: &'static str, offset: usize, value: u64, expected: &'static str) -> ParseError {
        ParseError::Invalid { what: self.what, field, offset, value, expected }
    }
}

// ---------------------------------------------------------------------------
// PERSISTENT RESERVE IN
// ---------------------------------------------------------------------------

/// Reservation types (SPC-4 table "Persistent reservation type codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ReservationType {
    WriteExclusive,
    ExclusiveAccess,
    WriteExclusiveRegistrantsOnly,
    ExclusiveAccessRegistrantsOnly,
    WriteExclusiveAllRegistrants,
    ExclusiveAccessAllRegistrants,
    /// A code SPC-4 does not define (obsolete 0, 2, 4 or reserved 9..15).
    Other(u8),
}

impl ReservationType {
    pub fn code(self) -> u8 {
        match self {
            ReservationType::WriteExclusive => 1,
            ReservationType::ExclusiveAccess => 3,
            ReservationType::WriteExclusiveRegistrantsOnly => 5,
            ReservationType::ExclusiveAccessRegistrantsOnly => 6,
            ReservationType::WriteExclusiveAllRegistrants => 7,
            ReservationType::ExclusiveAccessAllRegistrants => 8,
            ReservationType::Other(c) => c & 0x0f,
        }
    }
    pub fn from_code(code: u8) -> ReservationType {
        match code & 0x0f {
            1 => ReservationType::WriteExclusive,
            3 => ReservationType::ExclusiveAccess,
            5 => ReservationType::WriteExclusiveRegistrantsOnly,
            6 => ReservationType::ExclusiveAccessRegistrantsOnly,
            7 => ReservationType::WriteExclusiveAllRegistrants,
            8 => ReservationType::ExclusiveAccessAllRegistrants,
            c => ReservationType::Other(c),
        }
    }
    /// The name VCS's vxfenadm -r prints (SCSI3_RESV_...).
    pub fn vcs_name(self) -> String {
        match self {
            ReservationType::WriteExclusive => "SCSI3_RESV_WRITEEXCLUSIVE".into(),
            ReservationType::ExclusiveAccess => "SCSI3_RESV_EXCLUSIVEACCESS".into(),
            ReservationType::WriteExclusiveRegistrantsOnly => "SCSI3_RESV_WRITEEXCLUSIVEREGISTRANTSONLY".into(),
            ReservationType::ExclusiveAccessRegistrantsOnly => "SCSI3_RESV_EXCLUSIVEACCESSREGISTRANTSONLY".into(),
            ReservationType::WriteExclusiveAllRegistrants => "SCSI3_RESV_WRITEEXCLUSIVEALLREGISTRANTS".into(),
            ReservationType::ExclusiveAccessAllRegistrants => "SCSI3_RESV_EXCLUSIVEACCESSALLREGISTRANTS".into(),
            ReservationType::Other(c) => format!("SCSI3_RESV_TYPE_{c}"),
        }
    }
}

impl fmt::Display for ReservationType {
    /// The words sg_persist uses, so both tools read the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReservationType::WriteExclusive => f.write_str("Write Exclusive"),
            ReservationType::ExclusiveAccess => f.write_str("Exclusive Access"),
            ReservationType::WriteExclusiveRegistrantsOnly => f.write_str("Write Exclusive, registrants only"),
            ReservationType::ExclusiveAccessRegistrantsOnly => f.write_str("Exclusive Access, registrants only"),
            ReservationType::WriteExclusiveAllRegistrants => f.write_str("Write Exclusive, all registrants"),
            ReservationType::ExclusiveAccessAllRegistrants => f.write_str("Exclusive Access, all registrants"),
            ReservationType::Other(c) => write!(f, "type {c} (obsolete or reserved)"),
        }
    }
}

/// READ KEYS: the generation and the registered keys, one per I_T nexus
/// (the same key registered through two paths appears twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyList {
    /// PRgeneration: bumped by every REGISTER, CLEAR, PREEMPT.
    pub generation: u32,
    pub keys: Vec<Key>,
    /// The device had more keys than the allocation length let through:
    /// ask again with at least `8 + additional_length` bytes.
    pub truncated: bool,
    /// ADDITIONAL LENGTH as the device reported it (8 per key).
    pub additional_length: u32,
}

pub fn read_keys(buf: &[u8]) -> Result<KeyList, ParseError> {
    let b = Bytes::new("READ KEYS reply", buf);
    let generation = b.be32("PRGENERATION", 0)?;
    let additional_length = b.be32("ADDITIONAL LENGTH", 4)?;
    if additional_length % 8 != 0 {
        return Err(b.invalid(
            "ADDITIONAL LENGTH",
            4,
            additional_length.into(),
            "a multiple of 8 (one key is 8 bytes)",
        ));
    }
    let listed = additional_length as usize / 8;
    let present = (b.len() - 8) / 8;
    let mut keys = Vec::with_capacity(listed.min(present));
    for i in 0..listed.min(present) {
        keys.push(Key(b.be64("RESERVATION KEY", 8 + 8 * i)?));
    }
    Ok(KeyList { generation, keys, truncated: present < listed, additional_length })
}

/// One persistent reservation as READ RESERVATION reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// The holder's key (0 for the all-registrants types).
    pub key: Key,
    /// 0 = LU_SCOPE, the only scope SPC-4 still defines.
    pub scope: u8,
    pub kind: ReservationType,
}

/// READ RESERVATION: the generation and the reservation, if one is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservationReply {
    pub generation: u32,
    pub reservation: Option<Reservation>,
}

pub fn read_reservation(buf: &[u8]) -> Result<ReservationReply, ParseError> {
    let b = Bytes::new("READ RESERVATION reply", buf);
    let generation = b.be32("PRGENERATION", 0)?;
    let additional_length = b.be32("ADDITIONAL LENGTH", 4)?;
    if additional_length == 0 {
        return Ok(ReservationReply { generation, reservation: None });
    }
    if additional_length < 16 {
        return Err(b.invalid("ADDITIONAL LENGTH", 4, additional_length.into(), "0 or 16"));
    }
    let key = Key(b.be64("RESERVATION KEY", 8)?);
    let scope_type = b.u8("SCOPE/TYPE", 21)?;
    let reservation = Reservation { key, scope: scope_type >> 4, kind: ReservationType::from_code(scope_type) };
    Ok(ReservationReply { generation, reservation: Some(reservation) })
}

/// REPORT CAPABILITIES: what the device's persistent reservations support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Compatible Reservation Handling (SPC-2 RESERVE/RELEASE interplay).
    pub crh: bool,
    /// Specify Initiator Ports capable.
    pub sip_c: bool,
    /// All Target Ports capable.
    pub atp_c: bool,
    /// Persist Through Power Loss capable.
    pub ptpl_c: bool,
    /// Persist Through Power Loss activated.
    pub ptpl_a: bool,
    /// The type mask below is valid.
    pub tmv: bool,
    /// ALLOW COMMANDS field (SPC-4 table; 0 = not reported).
    pub allow_commands: u8,
    /// Supported reservation types (empty unless `tmv`).
    pub types: Vec<ReservationType>,
}

pub fn report_capabilities(buf: &[u8]) -> Result<Capabilities, ParseError> {
    let b = Bytes::new("REPORT CAPABILITIES reply", buf);
    let length = b.be16("LENGTH", 0)?;
    if length < 8 {
        return Err(b.invalid("LENGTH", 0, length.into(), "at least 8"));
    }
    let flags = b.u8("capability flags", 2)?;
    let state = b.u8("TMV/ALLOW COMMANDS/PTPL_A", 3)?;
    let mask = b.be16("PERSISTENT RESERVATION TYPE MASK", 4)?;
    let tmv = state & 0x80 != 0;
    // Type mask bits (SPC-4): byte 4 = WR_EX_AR(7) EX_AC_RO(6) WR_EX_RO(5)
    // EX_AC(3) WR_EX(1); byte 5 bit 0 = EX_AC_AR.
    let bits: [(u16, ReservationType); 6] = [
        (0x0200, ReservationType::WriteExclusive),
        (0x0800, ReservationType::ExclusiveAccess),
        (0x2000, ReservationType::WriteExclusiveRegistrantsOnly),
        (0x4000, ReservationType::ExclusiveAccessRegistrantsOnly),
        (0x8000, ReservationType::WriteExclusiveAllRegistrants),
        (0x0001, ReservationType::ExclusiveAccessAllRegistrants),
    ];
    let types =
        if tmv { bits.iter().filter(|(bit, _)| mask & bit != 0).map(|&(_, t)| t).collect() } else { Vec::new() };
    Ok(Capabilities {
        crh: flags & 0x10 != 0,
        sip_c: flags & 0x08 != 0,
        atp_c: flags & 0x04 != 0,
        ptpl_c: flags & 0x01 != 0,
        ptpl_a: state & 0x01 != 0,
        tmv,
        allow_commands: (state >> 4) & 0x07,
        types,
    })
}

// ---------------------------------------------------------------------------
// INQUIRY
// ---------------------------------------------------------------------------

/// Standard INQUIRY data (the fields an administrator looks at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StandardInquiry {
    /// 0 = a device is connected at this LUN; 1 = could be, is not; 3 = no LUN.
    pub peripheral_qualifier: u8,
    pub peripheral_type: u8,
    /// The version of the standard claimed (5 = SPC-3, 6 = SPC-4).
    pub version: u8,
    /// Target Port Group Support (ALUA), 0..3.
    pub tpgs: u8,
    pub vendor: String,
    pub product: String,
    pub revision: String,
}

impl StandardInquiry {
    pub fn peripheral_type_name(&self) -> &'static str {
        peripheral_type_name(self.peripheral_type)
    }
}

/// Names from SPC-4's peripheral device type table (as sg_inq spells them).
pub fn peripheral_type_name(t: u8) -> &'static str {
    match t {
        0x00 => "disk",
        0x01 => "tape",
        0x02 => "printer",
        0x03 => "processor",
        0x04 => "write once optical disk",
        0x05 => "cd/dvd",
        0x07 => "optical memory device",
        0x08 => "medium changer",
        0x0c => "storage array controller",
        0x0d => "enclosure services device",
        0x0e => "simplified direct access device",
        0x0f => "optical card reader/writer device",
        0x11 => "object based storage",
        0x12 => "automation/driver interface",
        0x14 => "host managed zoned block device",
        0x1e => "well known logical unit",
        0x1f => "unknown or no device type",
        _ => "reserved",
    }
}

/// INQUIRY strings are space-padded ASCII; anything else shows as '.'.
fn ascii_field(bytes: &[u8]) -> String {
    let s: String = bytes.iter().map(|&c| if (0x20..0x7f).contains(&c) { c as char } else { '.' }).collect();
    s.trim_end_matches([' ', '.']).trim_start().to_string()
}

pub fn standard_inquiry(buf: &[u8]) -> Result<StandardInquiry, ParseError> {
    let b = Bytes::new("INQUIRY data", buf);
    let byte0 = b.u8("PERIPHERAL QUALIFIER/DEVICE TYPE", 0)?;
    Ok(StandardInquiry {
        peripheral_qualifier: byte0 >> 5,
        peripheral_type: byte0 & 0x1f,
        version: b.u8("VERSION", 2)?,
        tpgs: (b.u8("TPGS", 5)? >> 4) & 0x03,
        vendor: ascii_field(b.slice("T10 VENDOR IDENTIFICATION", 8, 8)?),
        product: ascii_field(b.slice("PRODUCT IDENTIFICATION", 16, 16)?),
        revision: ascii_field(b.slice("PRODUCT REVISION LEVEL", 32, 4)?),
    })
}

/// Checks a VPD page header (page code at byte 1, length at 2..4) and
/// returns the page's payload, the bytes after the 4-byte header.
fn vpd_payload<'a>(b: &Bytes<'a>, page: u8, expected: &'static str) -> Result<&'a [u8], ParseError> {
    let code = b.u8("PAGE CODE", 1)?;
    if code != page {
        return Err(b.invalid("PAGE CODE", 1, code.into(), expected));
    }
    let len = b.be16("PAGE LENGTH", 2)? as usize;
    b.slice("page contents", 4, len)
}

/// VPD page 0x80: the unit serial number, trimmed of padding.
pub fn unit_serial(buf: &[u8]) -> Result<String, ParseError> {
    let b = Bytes::new("unit serial number page (0x80)", buf);
    let payload = vpd_payload(&b, 0x80, "0x80")?;
    Ok(ascii_field(payload).trim_end_matches('\0').to_string())
}

/// What a designator names (the ASSOCIATION field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Association {
    LogicalUnit,
    TargetPort,
    TargetDevice,
    Reserved,
}

/// The value of one designation descriptor, decoded by DESIGNATOR TYPE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DesignatorValue {
    /// Type 3: NAA, shown as `naa.` + hex (what /dev/disk/by-id shows).
    Naa(Vec<u8>),
    /// Type 1: T10 vendor id (8 bytes) + vendor-specific text.
    T10 { vendor: String, specific: String },
    /// Type 2: EUI-64 based (8, 12 or 16 bytes).
    Eui64(Vec<u8>),
    /// Type 8: SCSI name string (iqn..., naa..., eui...).
    ScsiName(String),
    /// Type 4: relative target port identifier.
    RelativeTargetPort(u16),
    /// Type 5: target port group.
    TargetPortGroup(u16),
    /// Type 6: logical unit group.
    LogicalUnitGroup(u16),
    /// Type 0xA: UUID (16 bytes after 2 header bytes, as given).
    Uuid(Vec<u8>),
    /// Vendor specific (0), MD5 (7), protocol specific (9) or reserved.
    Other { designator_type: u8, bytes: Vec<u8> },
}

/// One designation descriptor of VPD page 0x83.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Designator {
    pub association: Association,
    /// PROTOCOL IDENTIFIER when PIV says it is valid (5 = iSCSI, 6 = SAS...).
    pub protocol: Option<u8>,
    /// CODE SET: 1 binary, 2 ASCII, 3 UTF-8.
    pub code_set: u8,
    pub value: DesignatorValue,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text up to the first NUL, non-printables as '.'.
fn text_field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    ascii_field(&bytes[..end])
}

impl fmt::Display for DesignatorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DesignatorValue::Naa(b) => write!(f, "naa.{}", hex(b)),
            DesignatorValue::T10 { vendor, specific } => write!(f, "t10.{vendor} {specific}"),
            DesignatorValue::Eui64(b) => write!(f, "eui.{}", hex(b)),
            DesignatorValue::ScsiName(s) => f.write_str(s),
            DesignatorValue::RelativeTargetPort(n) => write!(f, "relative target port {n:#x}"),
            DesignatorValue::TargetPortGroup(n) => write!(f, "target port group {n:#x}"),
            DesignatorValue::LogicalUnitGroup(n) => write!(f, "logical unit group {n:#x}"),
            DesignatorValue::Uuid(b) => write!(f, "uuid.{}", hex(b)),
            DesignatorValue::Other { designator_type, bytes } => write!(f, "type {designator_type}: {}", hex(bytes)),
        }
    }
}

/// The low 16 bits of a 4-byte designator (types 4, 5, 6), if 4 bytes long.
fn low16(value: &[u8]) -> Option<u16> {
    (value.len() == 4).then(|| u16::from_be_bytes([value[2], value[3]]))
}

fn designator_value(designator_type: u8, value: &[u8]) -> DesignatorValue {
    let other = || DesignatorValue::Other { designator_type, bytes: value.to_vec() };
    match designator_type {
        1 if value.len() >= 8 => {
            DesignatorValue::T10 { vendor: ascii_field(&value[..8]), specific: text_field(&value[8..]) }
        }
        2 => DesignatorValue::Eui64(value.to_vec()),
        3 => DesignatorValue::Naa(value.to_vec()),
        4 => low16(value).map(DesignatorValue::RelativeTargetPort).unwrap_or_else(other),
        5 => low16(value).map(DesignatorValue::TargetPortGroup).unwrap_or_else(other),
        6 => low16(value).map(DesignatorValue::LogicalUnitGroup).unwrap_or_else(other),
        8 => DesignatorValue::ScsiName(text_field(value)),
        0x0a if value.len() >= 2 => DesignatorValue::Uuid(value[2..].to_vec()),
        _ => other(),
    }
}

/// VPD page 0x83: every designation descriptor, in the device's order.
pub fn device_identification(buf: &[u8]) -> Result<Vec<Designator>, ParseError> {
    let b = Bytes::new("device identification page (0x83)", buf);
    let payload = vpd_payload(&b, 0x83, "0x83")?;
    let end = 4 + payload.len();
    // Descriptors must lie within PAGE LENGTH, whatever follows it in the
    // buffer; offsets in errors stay counted from the start of the page.
    let page = Bytes::new(b.what, &buf[..end]);
    let mut out = Vec::new();
    let mut off = 4;
    while off < end {
        let head = page.slice("designation descriptor header", off, 4)?;
        let len = head[3] as usize;
        if off + 4 + len > end {
            return Err(ParseError::Truncated {
                what: b.what,
                field: "DESIGNATOR (past the page length)",
                offset: off + 4,
                len,
                have: end.saturating_sub(off + 4),
            });
        }
        let value = page.slice("DESIGNATOR", off + 4, len)?;
        let piv = head[1] & 0x80 != 0;
        let association = match (head[1] >> 4) & 0x03 {
            0 => Association::LogicalUnit,
            1 => Association::TargetPort,
            2 => Association::TargetDevice,
            _ => Association::Reserved,
        };
        out.push(Designator {
            association,
            protocol: piv.then_some(head[0] >> 4),
            code_set: head[0] & 0x0f,
            value: designator_value(head[1] & 0x0f, value),
        });
        off += 4 + len;
    }
    Ok(out)
}

/// READ CAPACITY(10): the last LBA and the block length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub last_lba: u32,
    pub block_len: u32,
}

pub fn read_capacity10(buf: &[u8]) -> Result<Capacity, ParseError> {
    let b = Bytes::new("READ CAPACITY(10) data", buf);
    let last_lba = b.be32("RETURNED LOGICAL BLOCK ADDRESS", 0)?;
    let block_len = b.be32("LOGICAL BLOCK LENGTH IN BYTES", 4)?;
    if block_len == 0 {
        return Err(b.invalid("LOGICAL BLOCK LENGTH IN BYTES", 4, 0, "a non-zero block length"));
    }
    Ok(Capacity { last_lba, block_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_keys_as_lio_answered_in_the_lab() {
        // PR generation=0x3, 3 registered reservation keys (logs/final-run.log).
        let mut buf = vec![0, 0, 0, 3, 0, 0, 0, 24];
        for k in [0x1111_aaaau64, 0x2222_bbbb, 0x3333_cccc] {
            buf.extend_from_slice(&k.to_be_bytes());
        }
        let r = read_keys(&buf).unwrap();
        assert_eq!(r.generation, 3);
        assert_eq!(r.keys, vec![Key(0x1111_aaaa), Key(0x2222_bbbb), Key(0x3333_cccc)]);
        assert!(!r.truncated);
    }

    #[test]
    fn read_keys_empty_truncated_and_bad() {
        let r = read_keys(&[0, 0, 0, 6, 0, 0, 0, 0]).unwrap();
        assert_eq!((r.generation, r.keys.len(), r.truncated), (6, 0, false));
        // Allocation length let only one of two keys through.
        let mut buf = vec![0, 0, 0, 1, 0, 0, 0, 16];
        buf.extend_from_slice(b"VFDEED00");
        buf.extend_from_slice(b"VFDE"); // a partial second key is ignored
        let r = read_keys(&buf).unwrap();
        assert_eq!(r.keys, vec![Key::from_bytes(*b"VFDEED00")]);
        assert!(r.truncated);
        assert_eq!(r.additional_length, 16);
        assert_eq!(
            read_keys(&[0, 0, 0, 1, 0, 0]).unwrap_err().to_string(),
            "READ KEYS reply: ADDITIONAL LENGTH at byte 4 needs 4 byte(s), only 6 received"
        );
        assert_eq!(
            read_keys(&[0, 0, 0, 1, 0, 0, 0, 12]).unwrap_err().to_string(),
            "READ KEYS reply: ADDITIONAL LENGTH at byte 4 is 0xc, expected a multiple of 8 (one key is 8 bytes)"
        );
    }

    #[test]
    fn read_reservation_held_and_none() {
        // PR generation=0x3, Key=0x1111aaaa, LU_SCOPE, type 5.
        let mut buf = vec![0, 0, 0, 3, 0, 0, 0, 16];
        buf.extend_from_slice(&0x1111_aaaau64.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0, 0, 0x05, 0, 0]);
        let r = read_reservation(&buf).unwrap();
        let res = r.reservation.unwrap();
        assert_eq!((r.generation, res.key, res.scope), (3, Key(0x1111_aaaa), 0));
        assert_eq!(res.kind, ReservationType::WriteExclusiveRegistrantsOnly);
        assert_eq!(res.kind.to_string(), "Write Exclusive, registrants only");
        assert_eq!(read_reservation(&[0, 0, 0, 6, 0, 0, 0, 0]).unwrap().reservation, None);
        let err = read_reservation(&buf[..20]).unwrap_err();
        assert_eq!(err.to_string(), "READ RESERVATION reply: SCOPE/TYPE at byte 21 needs 1 byte(s), only 20 received");
        assert!(matches!(read_reservation(&[0, 0, 0, 0, 0, 0, 0, 8]), Err(ParseError::Invalid { offset: 4, .. })));
    }

    #[test]
    fn capabilities_of_a_lio_like_device() {
        // LENGTH 8; CRH, ATP_C, PTPL_C; TMV; WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX + EX_AC_AR.
        let buf = [0x00, 0x08, 0x15, 0x80, 0xea, 0x01, 0, 0];
        let c = report_capabilities(&buf).unwrap();
        assert!(c.crh && c.atp_c && c.ptpl_c && !c.sip_c && c.tmv && !c.ptpl_a);
        assert_eq!(c.types.len(), 6);
        assert!(c.types.contains(&ReservationType::WriteExclusiveRegistrantsOnly));
        let no_mask = report_capabilities(&[0x00, 0x08, 0x00, 0x00, 0xff, 0xff, 0, 0]).unwrap();
        assert!(no_mask.types.is_empty(), "the mask is ignored without TMV");
        assert!(report_capabilities(&[0x00, 0x08, 0x00]).is_err());
        assert!(report_capabilities(&[0x00, 0x02, 0, 0, 0, 0, 0, 0]).is_err());
    }

    /// LIO's standard INQUIRY reply, as sg_inq shows it ("LIO-ORG FILEIO 4.0").
    pub(crate) fn lio_inquiry() -> Vec<u8> {
        let mut buf = vec![0x00, 0x00, 0x06, 0x12, 0x3f, 0x10, 0x00, 0x02];
        buf.extend_from_slice(b"LIO-ORG ");
        buf.extend_from_slice(b"FILEIO          ");
        buf.extend_from_slice(b"4.0 ");
        buf.resize(64, 0);
        buf
    }

    #[test]
    fn standard_inquiry_fields() {
        let i = standard_inquiry(&lio_inquiry()).unwrap();
        assert_eq!((i.vendor.as_str(), i.product.as_str(), i.revision.as_str()), ("LIO-ORG", "FILEIO", "4.0"));
        assert_eq!((i.peripheral_qualifier, i.peripheral_type, i.version, i.tpgs), (0, 0, 6, 1));
        assert_eq!(i.peripheral_type_name(), "disk");
        let err = standard_inquiry(&lio_inquiry()[..20]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "INQUIRY data: PRODUCT IDENTIFICATION at byte 16 needs 16 byte(s), only 20 received"
        );
        let odd = standard_inquiry(&[
            0x7f, 0, 0, 0, 0, 0, 0, 0, 0xff, b'A', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ]);
        let odd = odd.unwrap();
        assert_eq!((odd.peripheral_qualifier, odd.peripheral_type), (3, 0x1f));
        assert_eq!(odd.vendor, ".A");
    }

    #[test]
    fn unit_serial_page() {
        let mut buf = vec![0x00, 0x80, 0x00, 0x0b];
        buf.extend_from_slice(b"prlab-disk0");
        assert_eq!(unit_serial(&buf).unwrap(), "prlab-disk0");
        buf[1] = 0x83;
        assert_eq!(
            unit_serial(&buf).unwrap_err().to_string(),
            "unit serial number page (0x80): PAGE CODE at byte 1 is 0x83, expected 0x80"
        );
        buf[1] = 0x80;
        buf[3] = 0x20;
        assert!(matches!(unit_serial(&buf), Err(ParseError::Truncated { offset: 4, len: 32, have: 15, .. })));
    }

    /// The device identification page LIO answered in the lab
    /// (sg_vpd -p di /dev/sdb in logs/final-run.log), rebuilt byte by byte.
    pub(crate) fn lio_page_83() -> Vec<u8> {
        let mut d = Vec::new();
        // NAA, binary, LU: 6001405abd0000000000000000000000
        d.extend_from_slice(&[0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x5a, 0xbd]);
        d.extend_from_slice(&[0; 11]);
        // T10 vendor id, ASCII, LU: "LIO-ORG " + "FILEIO:prlab-disk0"
        let t10 = b"LIO-ORG FILEIO:prlab-disk0\0\0";
        d.extend_from_slice(&[0x02, 0x01, 0x00, t10.len() as u8]);
        d.extend_from_slice(t10);
        // Logical unit group 0
        d.extend_from_slice(&[0x01, 0x06, 0x00, 0x04, 0, 0, 0, 0]);
        // Relative target port 1, iSCSI (protocol 5), PIV, target port
        d.extend_from_slice(&[0x51, 0x94, 0x00, 0x04, 0, 0, 0, 1]);
        // Target port group 0
        d.extend_from_slice(&[0x51, 0x95, 0x00, 0x04, 0, 0, 0, 0]);
        // SCSI name string, UTF-8, target port
        let port = b"iqn.2003-01.org.linux-iscsi.prlab:disk0,t,0x0001\0\0\0\0";
        d.extend_from_slice(&[0x53, 0x98, 0x00, port.len() as u8]);
        d.extend_from_slice(port);
        // SCSI name string, UTF-8, target device
        let dev = b"iqn.2003-01.org.linux-iscsi.prlab:disk0";
        d.extend_from_slice(&[0x53, 0xa8, 0x00, dev.len() as u8]);
        d.extend_from_slice(dev);
        let mut page = vec![0x00, 0x83];
        page.extend_from_slice(&(d.len() as u16).to_be_bytes());
        page.extend_from_slice(&d);
        page
    }

    #[test]
    fn device_identification_page() {
        let ds = device_identification(&lio_page_83()).unwrap();
        let shown: Vec<String> = ds.iter().map(|d| d.value.to_string()).collect();
        assert_eq!(
            shown,
            [
                "naa.6001405abd0000000000000000000000",
                "t10.LIO-ORG FILEIO:prlab-disk0",
                "logical unit group 0x0",
                "relative target port 0x1",
                "target port group 0x0",
                "iqn.2003-01.org.linux-iscsi.prlab:disk0,t,0x0001",
                "iqn.2003-01.org.linux-iscsi.prlab:disk0",
            ]
        );
        assert_eq!(ds[0].association, Association::LogicalUnit);
        assert_eq!((ds[3].association, ds[3].protocol), (Association::TargetPort, Some(5)));
        assert_eq!(ds[6].association, Association::TargetDevice);
        assert_eq!(ds[1].protocol, None);
        let eui = [0x00, 0x83, 0x00, 0x0c, 0x01, 0x02, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(device_identification(&eui).unwrap()[0].value.to_string(), "eui.0102030405060708");
    }

    #[test]
    fn device_identification_descriptor_past_page_end() {
        // Page length 8 but the descriptor claims 16 bytes.
        let buf = [0x00, 0x83, 0x00, 0x08, 0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x5a];
        assert_eq!(
            device_identification(&buf).unwrap_err(),
            ParseError::Truncated {
                what: "device identification page (0x83)",
                field: "DESIGNATOR (past the page length)",
                offset: 8,
                len: 16,
                have: 4
            }
        );
    }

    #[test]
    fn capacity() {
        let c = read_capacity10(&[0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x02, 0x00]).unwrap();
        assert_eq!(c, Capacity { last_lba: 0x1ffff, block_len: 512 });
        assert!(read_capacity10(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(read_capacity10(&[0, 0, 0]).is_err());
    }
}
