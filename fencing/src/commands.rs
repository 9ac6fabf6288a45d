//! The commands fencing sends, as methods of [`Device`]: each builds its
//! CDB ([`crate::cdb`]), runs it through SG_IO ([`crate::sg`]) and parses
//! the reply ([`crate::parse`]). No decisions here: which key to register
//! or preempt is the caller's business.

use crate::cdb::{self, PrInAction, PrOutAction, ProutParams};
use crate::key::Key;
use crate::parse::{
    self, Capabilities, Capacity, Designator, KeyList, ReservationReply, ReservationType, StandardInquiry,
};
use crate::sg::{Device, Direction, ScsiError};

/// Allocation length of standard INQUIRY: the 36 bytes we read and then
/// some (SPC-4 devices return 96 or more; they truncate to what we ask).
const INQUIRY_LEN: u16 = 96;
/// First allocation length for VPD pages. 252 is what older devices
/// accept; a longer page is asked for again at its full size.
const VPD_LEN: u16 = 252;
/// READ KEYS header + 32 keys; more keys are asked for again.
const READ_KEYS_LEN: u16 = 8 + 8 * 32;
/// READ RESERVATION: header + one 16-byte descriptor, with room to spare.
const READ_RESERVATION_LEN: u16 = 64;
const CAPABILITIES_LEN: u16 = 8;

impl Device {
    /// Runs a data-in command with an `alloc` byte buffer and returns the
    /// bytes the device actually sent.
    fn data_in(&mut self, cdb: &[u8], alloc: u16) -> Result<Vec<u8>, ScsiError> {
        let mut buf = vec![0u8; alloc as usize];
        let n = self.execute(cdb, Direction::FromDevice(&mut buf))?;
        buf.truncate(n);
        Ok(buf)
    }

    pub fn test_unit_ready(&mut self) -> Result<(), ScsiError> {
        self.execute(&cdb::test_unit_ready(), Direction::None).map(drop)
    }

    pub fn inquiry(&mut self) -> Result<StandardInquiry, ScsiError> {
        let buf = self.data_in(&cdb::inquiry(INQUIRY_LEN), INQUIRY_LEN)?;
        Ok(parse::standard_inquiry(&buf)?)
    }

    /// A VPD page, asked for again at full size if the first answer says
    /// the page is longer than the first allocation.
    fn vpd_page(&mut self, page: u8) -> Result<Vec<u8>, ScsiError> {
        let buf = self.data_in(&cdb::inquiry_vpd(page, VPD_LEN), VPD_LEN)?;
        let full = buf.get(2..4).map(|l| 4 + u16::from_be_bytes([l[0], l[1]]) as usize).unwrap_or(0);
        if full > buf.len() && buf.len() == VPD_LEN as usize {
            let alloc = u16::try_from(full).unwrap_or(u16::MAX);
            return self.data_in(&cdb::inquiry_vpd(page, alloc), alloc);
        }
        Ok(buf)
    }

    /// Unit serial number (VPD page 0x80): what tells two paths to one LUN.
    pub fn unit_serial(&mut self) -> Result<String, ScsiError> {
        Ok(parse::unit_serial(&self.vpd_page(0x80)?)?)
    }

    /// Device identification (VPD page 0x83): NAA, T10, EUI-64 and SCSI
    /// name designators of the LU, the target port and the target device.
    pub fn device_identification(&mut self) -> Result<Vec<Designator>, ScsiError> {
        Ok(parse::device_identification(&self.vpd_page(0x83)?)?)
    }

    /// PERSISTENT RESERVE IN / READ KEYS, asking again with a buffer big
    /// enough when the device has more keys than the first one held.
    pub fn read_keys(&mut self) -> Result<KeyList, ScsiError> {
        let cdb = cdb::pr_in(PrInAction::ReadKeys, READ_KEYS_LEN);
        let list = parse::read_keys(&self.data_in(&cdb, READ_KEYS_LEN)?)?;
        if !list.truncated {
            return Ok(list);
        }
        let alloc = u16::try_from(8 + list.additional_length as usize).unwrap_or(u16::MAX);
        let cdb = cdb::pr_in(PrInAction::ReadKeys, alloc);
        Ok(parse::read_keys(&self.data_in(&cdb, alloc)?)?)
    }

    pub fn read_reservation(&mut self) -> Result<ReservationReply, ScsiError> {
        let cdb = cdb::pr_in(PrInAction::ReadReservation, READ_RESERVATION_LEN);
        Ok(parse::read_reservation(&self.data_in(&cdb, READ_RESERVATION_LEN)?)?)
    }

    pub fn report_capabilities(&mut self) -> Result<Capabilities, ScsiError> {
        let cdb = cdb::pr_in(PrInAction::ReportCapabilities, CAPABILITIES_LEN);
        Ok(parse::report_capabilities(&self.data_in(&cdb, CAPABILITIES_LEN)?)?)
    }

    /// Any PERSISTENT RESERVE OUT with its 24-byte parameter list.
    pub fn prout(
        &mut self,
        action: PrOutAction,
        kind: Option<ReservationType>,
        params: &ProutParams,
    ) -> Result<(), ScsiError> {
        let list = cdb::prout_params(params);
        self.execute(&cdb::pr_out(action, kind), Direction::ToDevice(&list)).map(drop)
    }

    /// REGISTER: `current` is the key this nexus holds (`Key::NONE` if
    /// none), `new` the key it will hold (`Key::NONE` unregisters). A wrong
    /// `current` gets RESERVATION CONFLICT: that is how a fenced node's old
    /// key is refused.
    pub fn register(&mut self, current: Key, new: Key) -> Result<(), ScsiError> {
        self.prout(PrOutAction::Register, None, &ProutParams { key: current, sa_key: new, ..ProutParams::default() })
    }

    /// REGISTER AND IGNORE EXISTING KEY: registers `new` whatever this
    /// nexus held before (vxfenclearpre's way in).
    pub fn register_ignore(&mut self, new: Key) -> Result<(), ScsiError> {
        let params = ProutParams { sa_key: new, ..ProutParams::default() };
        self.prout(PrOutAction::RegisterAndIgnoreExistingKey, None, &params)
    }

    /// Removes this nexus's registration `current` (REGISTER to key 0).
    pub fn unregister(&mut self, current: Key) -> Result<(), ScsiError> {
        self.register(current, Key::NONE)
    }

    pub fn reserve(&mut self, key: Key, kind: ReservationType) -> Result<(), ScsiError> {
        self.prout(PrOutAction::Reserve, Some(kind), &ProutParams { key, ..ProutParams::default() })
    }

    pub fn release(&mut self, key: Key, kind: ReservationType) -> Result<(), ScsiError> {
        self.prout(PrOutAction::Release, Some(kind), &ProutParams { key, ..ProutParams::default() })
    }

    /// CLEAR: removes every registration and the reservation; `key` must
    /// be this nexus's own registered key.
    pub fn clear(&mut self, key: Key) -> Result<(), ScsiError> {
        self.prout(PrOutAction::Clear, None, &ProutParams { key, ..ProutParams::default() })
    }

    /// PREEMPT: removes every registration of `victim` (and takes its
    /// reservation with type `kind` if it held one), as `own`.
    pub fn preempt(&mut self, own: Key, victim: Key, kind: ReservationType) -> Result<(), ScsiError> {
        self.prout(
            PrOutAction::Preempt,
            Some(kind),
            &ProutParams { key: own, sa_key: victim, ..ProutParams::default() },
        )
    }

    /// PREEMPT AND ABORT: as [`Device::preempt`], and the device also
    /// aborts the victims' commands in flight, so none lands after we won.
    pub fn preempt_and_abort(&mut self, own: Key, victim: Key, kind: ReservationType) -> Result<(), ScsiError> {
        let params = ProutParams { key: own, sa_key: victim, ..ProutParams::default() };
        self.prout(PrOutAction::PreemptAndAbort, Some(kind), &params)
    }

    pub fn read_capacity(&mut self) -> Result<Capacity, ScsiError> {
        Ok(parse::read_capacity10(&self.data_in(&cdb::read_capacity10(), 8)?)?)
    }

    /// READ(10) of one block of `block_len` bytes.
    pub fn read_block(&mut self, lba: u32, block_len: u32) -> Result<Vec<u8>, ScsiError> {
        let mut buf = vec![0u8; block_len as usize];
        self.execute(&cdb::read10(lba, 1), Direction::FromDevice(&mut buf))?;
        Ok(buf)
    }

    /// WRITE(10) of one block; `data` must be exactly one block long. A
    /// fenced nexus gets RESERVATION CONFLICT here.
    pub fn write_block(&mut self, lba: u32, data: &[u8]) -> Result<(), ScsiError> {
        if data.is_empty() {
            return Err(ScsiError::Invalid("write_block: one block of data is needed".into()));
        }
        self.execute(&cdb::write10(lba, 1), Direction::ToDevice(data)).map(drop)
    }
}
