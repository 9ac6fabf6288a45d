//! The SG_IO ioctl: one SCSI command to a device and its outcome.
//!
//! Works on both kinds of Linux device node: the SCSI generic `/dev/sgN`
//! and the block device `/dev/sdX` (the block layer accepts SG_IO too).
//! The request is `struct sg_io_hdr` of `<scsi/sg.h>`, laid out below; the
//! ioctl call in `sg_io` is the only `unsafe` code of the crate.
//!
//! What comes back is decoded by [`check`] (pure, unit-tested) into
//! success or a [`ScsiError`]: RESERVATION CONFLICT (status 0x18) is its
//! own variant because for fencing it is the answer, not a failure of the
//! transport. UNIT ATTENTION is retried by [`Device::execute`] a bounded
//! number of times: a command that gets it was not executed, and after a
//! preemption the victim's first command gets UNIT ATTENTION / REGISTRATIONS
//! PREEMPTED before anything else. The unit attentions seen are kept for
//! the caller ([`Device::take_unit_attentions`]): "you were preempted" is
//! news the fencing layer wants.

use crate::parse::ParseError;
use crate::sense::{self, Sense, SenseKey};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `SG_IO` request number (`<scsi/sg.h>`).
const SG_IO: libc::Ioctl = 0x2285;
/// `interface_id` must be 'S' for the sg v3 interface.
const SG_INTERFACE_ID: libc::c_int = b'S' as libc::c_int;
const SG_DXFER_NONE: libc::c_int = -1;
const SG_DXFER_TO_DEV: libc::c_int = -2;
const SG_DXFER_FROM_DEV: libc::c_int = -3;

/// Room for sense data; SPC-4 caps it at 252, Linux delivers at most 96.
const SENSE_LEN: usize = 96;

/// How many times a command that got UNIT ATTENTION is sent again. Several
/// conditions can be queued for one nexus (reset, then registrations
/// preempted, then reservations released), each reported once.
pub const UNIT_ATTENTION_RETRIES: u32 = 5;

/// Per-command timeout unless [`Device::set_timeout`] says otherwise.
/// Arrays can take many seconds over a PREEMPT AND ABORT (they abort the
/// victim's outstanding commands first).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `struct sg_io_hdr` from `<scsi/sg.h>` (sg interface version 3), field
/// for field, in the C layout.
#[repr(C)]
struct SgIoHdr {
    interface_id: libc::c_int,
    dxfer_direction: libc::c_int,
    cmd_len: libc::c_uchar,
    mx_sb_len: libc::c_uchar,
    iovec_count: libc::c_ushort,
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    /// Milliseconds; the kernel aborts the command when it expires.
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    sb_len_wr: libc::c_uchar,
    host_status: libc::c_ushort,
    driver_status: libc::c_ushort,
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

/// Where the command's data goes.
pub enum Direction<'a> {
    None,
    /// Data in (INQUIRY, PR IN, READ): the device fills this buffer.
    FromDevice(&'a mut [u8]),
    /// Data out (PR OUT parameter list, WRITE).
    ToDevice(&'a [u8]),
}

/// What the kernel reported for one command, before interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// SCSI status byte (0 GOOD, 2 CHECK CONDITION, 8 BUSY, 0x18
    /// RESERVATION CONFLICT, ...).
    pub status: u8,
    /// Host adapter / transport status (DID_* in Linux).
    pub host_status: u16,
    /// Driver status (DRIVER_SENSE 0x08, DRIVER_TIMEOUT 0x06).
    pub driver_status: u16,
    /// The sense bytes the device wrote (sb_len_wr of them).
    pub sense: Vec<u8>,
    /// Bytes requested but not transferred.
    pub resid: i32,
}

/// A command that did not succeed, or could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ScsiError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("SG_IO failed: {0}{hint}", hint = ioctl_hint(.0))]
    Ioctl(io::Error),
    /// Status 0x18: this I_T nexus is not allowed to do this (not
    /// registered, wrong key, or fenced off by a reservation).
    #[error("RESERVATION CONFLICT")]
    ReservationConflict,
    #[error("CHECK CONDITION: {0}")]
    CheckCondition(Sense),
    #[error("{0}, still after {UNIT_ATTENTION_RETRIES} retries")]
    UnitAttention(Sense),
    /// BUSY (0x08) or TASK SET FULL (0x28): the device may take it later.
    #[error("device busy (SCSI status {})", status_name(*.status))]
    Busy { status: u8 },
    #[error("SCSI status {status:#04x} ({})", status_name(*.status))]
    Status { status: u8 },
    #[error("command timed out (limit {ms} ms)")]
    Timeout { ms: u32 },
    #[error("transport error: host status {code:#04x} ({})", host_status_name(*.code))]
    Host { code: u16 },
    #[error("driver error: driver status {code:#04x}")]
    Driver { code: u16 },
    #[error("CHECK CONDITION with unreadable sense data: {0}")]
    BadSense(ParseError),
    #[error("unreadable reply: {0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Invalid(String),
}

impl ScsiError {
    pub fn is_reservation_conflict(&self) -> bool {
        matches!(self, ScsiError::ReservationConflict)
    }
}

fn ioctl_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOTTY) | Some(libc::EINVAL) => " (not a SCSI device? use /dev/sgN or /dev/sdX)",
        Some(libc::EPERM) | Some(libc::EACCES) => " (PR commands need root or CAP_SYS_RAWIO)",
        _ => "",
    }
}

/// SAM status codes by name.
pub fn status_name(status: u8) -> &'static str {
    match status {
        0x00 => "GOOD",
        0x02 => "CHECK CONDITION",
        0x04 => "CONDITION MET",
        0x08 => "BUSY",
        0x18 => "RESERVATION CONFLICT",
        0x28 => "TASK SET FULL",
        0x30 => "ACA ACTIVE",
        0x40 => "TASK ABORTED",
        _ => "reserved status",
    }
}

/// Linux's DID_* host byte values by name.
pub fn host_status_name(code: u16) -> &'static str {
    match code {
        0x00 => "DID_OK",
        0x01 => "DID_NO_CONNECT: could not connect to the target",
        0x02 => "DID_BUS_BUSY",
        0x03 => "DID_TIME_OUT",
        0x04 => "DID_BAD_TARGET",
        0x05 => "DID_ABORT",
        0x06 => "DID_PARITY",
        0x07 => "DID_ERROR: internal error",
        0x08 => "DID_RESET",
        0x09 => "DID_BAD_INTR",
        0x0a => "DID_PASSTHROUGH",
        0x0b => "DID_SOFT_ERROR",
        0x0c => "DID_IMM_RETRY",
        0x0d => "DID_REQUEUE",
        0x0e => "DID_TRANSPORT_DISRUPTED: the path is being recovered",
        0x0f => "DID_TRANSPORT_FAILFAST: the path is down",
        0x10 => "DID_TARGET_FAILURE",
        0x11 => "DID_NEXUS_FAILURE",
        0x12 => "DID_ALLOC_FAILURE",
        0x13 => "DID_MEDIUM_ERROR",
        0x14 => "DID_TRANSPORT_MARGINAL",
        _ => "unknown host status",
    }
}

const STATUS_GOOD: u8 = 0x00;
const STATUS_CHECK_CONDITION: u8 = 0x02;
const STATUS_BUSY: u8 = 0x08;
const STATUS_RESERVATION_CONFLICT: u8 = 0x18;
const STATUS_TASK_SET_FULL: u8 = 0x28;
const DID_TIME_OUT: u16 = 0x03;
const DRIVER_TIMEOUT: u16 = 0x06;
const DRIVER_SENSE: u16 = 0x08;

/// Turns a completion into success or the error that explains it.
/// `timeout_ms` only labels a timeout.
pub fn check(c: &Completion, timeout_ms: u32) -> Result<(), ScsiError> {
    // First: a conflict is the device's answer, whatever the transport adds
    // (Linux may also set DID_NEXUS_FAILURE so multipath does not retry).
    if c.status == STATUS_RESERVATION_CONFLICT {
        return Err(ScsiError::ReservationConflict);
    }
    if c.host_status == DID_TIME_OUT || c.driver_status & 0x0f == DRIVER_TIMEOUT {
        return Err(ScsiError::Timeout { ms: timeout_ms });
    }
    if c.host_status != 0 {
        return Err(ScsiError::Host { code: c.host_status });
    }
    let has_sense = !c.sense.is_empty() && (c.status == STATUS_CHECK_CONDITION || c.driver_status & DRIVER_SENSE != 0);
    if has_sense {
        let s = sense::parse(&c.sense).map_err(ScsiError::BadSense)?;
        return match s.key {
            // Completed (a recovered error is still a success).
            SenseKey::NO_SENSE | SenseKey::RECOVERED_ERROR => Ok(()),
            SenseKey::UNIT_ATTENTION => Err(ScsiError::UnitAttention(s)),
            _ => Err(ScsiError::CheckCondition(s)),
        };
    }
    match c.status {
        STATUS_GOOD => {}
        STATUS_BUSY | STATUS_TASK_SET_FULL => return Err(ScsiError::Busy { status: c.status }),
        other => return Err(ScsiError::Status { status: other }),
    }
    match c.driver_status & 0x0f {
        0 | DRIVER_SENSE => Ok(()),
        code => Err(ScsiError::Driver { code }),
    }
}

/// Sends a command again while it fails with UNIT ATTENTION, at most
/// [`UNIT_ATTENTION_RETRIES`] more times; every unit attention goes to
/// `seen`. `send` performs one attempt.
pub fn with_unit_attention_retries(
    timeout_ms: u32,
    seen: &mut Vec<Sense>,
    mut send: impl FnMut() -> io::Result<Completion>,
) -> Result<Completion, ScsiError> {
    let mut attempt = 0;
    loop {
        let c = send().map_err(ScsiError::Ioctl)?;
        match check(&c, timeout_ms) {
            Ok(()) => return Ok(c),
            Err(ScsiError::UnitAttention(s)) => {
                seen.push(s);
                if attempt == UNIT_ATTENTION_RETRIES {
                    return Err(ScsiError::UnitAttention(s));
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One SG_IO call: sends `cdb` on `file`, moves the data of `dir`, and
/// returns what the kernel reported. Blocks until the command completes,
/// the timeout expires or a signal interrupts it.
#[allow(unsafe_code)]
fn sg_io(file: &File, cdb: &[u8], dir: &mut Direction<'_>, timeout_ms: u32) -> io::Result<Completion> {
    if cdb.is_empty() || cdb.len() > 16 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a CDB is 1 to 16 bytes"));
    }
    let (direction, dxferp, dxfer_len) = match dir {
        Direction::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0usize),
        Direction::FromDevice(buf) => (SG_DXFER_FROM_DEV, buf.as_mut_ptr().cast(), buf.len()),
        // The kernel only reads a TO_DEV buffer; the field is *mut in C.
        Direction::ToDevice(buf) => (SG_DXFER_TO_DEV, buf.as_ptr() as *mut libc::c_void, buf.len()),
    };
    let dxfer_len =
        u32::try_from(dxfer_len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "transfer too large"))?;
    let mut sense = [0u8; SENSE_LEN];
    let mut hdr = SgIoHdr {
        interface_id: SG_INTERFACE_ID,
        dxfer_direction: direction,
        cmd_len: cdb.len() as u8,
        mx_sb_len: SENSE_LEN as u8,
        iovec_count: 0,
        dxfer_len,
        dxferp,
        cmdp: cdb.as_ptr(),
        sbp: sense.as_mut_ptr(),
        timeout: timeout_ms,
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    // SAFETY: `hdr` is a correctly laid out sg_io_hdr whose pointers refer
    // to `cdb` (cmd_len bytes, read), `sense` (mx_sb_len bytes, written)
    // and the caller's data buffer (dxfer_len bytes, written for FROM_DEV,
    // read for TO_DEV), all borrowed for the whole call. SG_IO is
    // synchronous: the kernel is done with every pointer when ioctl returns,
    // so none outlives its borrow. `file` keeps the descriptor open.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), SG_IO, &mut hdr as *mut SgIoHdr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let written = (hdr.sb_len_wr as usize).min(SENSE_LEN);
    Ok(Completion {
        status: hdr.status,
        host_status: hdr.host_status,
        driver_status: hdr.driver_status,
        sense: sense[..written].to_vec(),
        resid: hdr.resid,
    })
}

/// An open SCSI device (a path to one LUN: one I_T nexus).
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    timeout: Duration,
    unit_attentions: Vec<Sense>,
}

impl Device {
    /// Opens `/dev/sgN` or `/dev/sdX` read-write (SG_IO for PR OUT and
    /// WRITE needs it) and non-blocking (so the open itself never waits for
    /// a device that is not ready; SG_IO still waits for each command).
    pub fn open(path: impl AsRef<Path>) -> Result<Device, ScsiError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| ScsiError::Open { path: path.clone(), source })?;
        Ok(Device { file, path, timeout: DEFAULT_TIMEOUT, unit_attentions: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The time limit of every later command.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The unit attentions met since the last call (oldest first), e.g.
    /// REGISTRATIONS PREEMPTED when this nexus has been fenced.
    pub fn take_unit_attentions(&mut self) -> Vec<Sense> {
        std::mem::take(&mut self.unit_attentions)
    }

    /// Runs one command (retrying UNIT ATTENTION) and returns how many
    /// bytes the device transferred.
    pub fn execute(&mut self, cdb: &[u8], mut dir: Direction<'_>) -> Result<usize, ScsiError> {
        let ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX).max(1);
        let file = &self.file;
        let c = with_unit_attention_retries(ms, &mut self.unit_attentions, || sg_io(file, cdb, &mut dir, ms))?;
        let requested = match &dir {
            Direction::None => 0,
            Direction::FromDevice(b) => b.len(),
            Direction::ToDevice(b) => b.len(),
        };
        Ok(requested.saturating_sub(usize::try_from(c.resid).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ua_sense() -> Vec<u8> {
        vec![0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x2a, 0x05, 0, 0, 0, 0]
    }

    #[test]
    fn header_matches_the_c_layout() {
        // x86_64 / aarch64 (LP64): 88 bytes, pointers 8-aligned.
        if cfg!(target_pointer_width = "64") {
            assert_eq!(std::mem::size_of::<SgIoHdr>(), 88);
            assert_eq!(std::mem::offset_of!(SgIoHdr, dxferp), 16);
            assert_eq!(std::mem::offset_of!(SgIoHdr, timeout), 40);
            assert_eq!(std::mem::offset_of!(SgIoHdr, usr_ptr), 56);
            assert_eq!(std::mem::offset_of!(SgIoHdr, status), 64);
            assert_eq!(std::mem::offset_of!(SgIoHdr, host_status), 68);
            assert_eq!(std::mem::offset_of!(SgIoHdr, resid), 72);
            assert_eq!(std::mem::offset_of!(SgIoHdr, info), 80);
        }
    }

    #[test]
    fn status_decoding() {
        assert!(check(&Completion::default(), 1000).is_ok());
        let conflict = Completion { status: 0x18, host_status: 0x11, ..Completion::default() };
        assert!(check(&conflict, 1000).unwrap_err().is_reservation_conflict());
        let busy = Completion { status: 0x08, ..Completion::default() };
        assert!(matches!(check(&busy, 1000), Err(ScsiError::Busy { status: 0x08 })));
        let full = Completion { status: 0x28, ..Completion::default() };
        assert_eq!(check(&full, 1000).unwrap_err().to_string(), "device busy (SCSI status TASK SET FULL)");
        let aborted = Completion { status: 0x40, ..Completion::default() };
        assert_eq!(check(&aborted, 1000).unwrap_err().to_string(), "SCSI status 0x40 (TASK ABORTED)");
        let timeout = Completion { host_status: 0x03, ..Completion::default() };
        assert_eq!(check(&timeout, 1500).unwrap_err().to_string(), "command timed out (limit 1500 ms)");
        let gone = Completion { host_status: 0x01, ..Completion::default() };
        assert_eq!(
            check(&gone, 1000).unwrap_err().to_string(),
            "transport error: host status 0x01 (DID_NO_CONNECT: could not connect to the target)"
        );
        let driver = Completion { driver_status: 0x04, ..Completion::default() };
        assert!(matches!(check(&driver, 1000), Err(ScsiError::Driver { code: 4 })));
    }

    #[test]
    fn check_condition_decoding() {
        let ua = Completion { status: 0x02, driver_status: 0x08, sense: ua_sense(), ..Completion::default() };
        match check(&ua, 1000) {
            Err(ScsiError::UnitAttention(s)) => assert_eq!(s.codes(), sense::REGISTRATIONS_PREEMPTED),
            other => panic!("{other:?}"),
        }
        let mut bad_field = ua_sense();
        bad_field[2] = 0x05;
        bad_field[12] = 0x24;
        bad_field[13] = 0x00;
        let cc = Completion { status: 0x02, sense: bad_field, ..Completion::default() };
        assert_eq!(
            check(&cc, 1000).unwrap_err().to_string(),
            "CHECK CONDITION: ILLEGAL REQUEST: INVALID FIELD IN CDB (ASC 24h ASCQ 00h)"
        );
        let mut recovered = ua_sense();
        recovered[2] = 0x01;
        assert!(check(&Completion { status: 0x02, sense: recovered, ..Completion::default() }, 1000).is_ok());
        let garbage = Completion { status: 0x02, sense: vec![0x12, 0x34], ..Completion::default() };
        assert!(matches!(check(&garbage, 1000), Err(ScsiError::BadSense(_))));
        // CHECK CONDITION without sense bytes: reported as the status.
        let bare = Completion { status: 0x02, ..Completion::default() };
        assert_eq!(check(&bare, 1000).unwrap_err().to_string(), "SCSI status 0x02 (CHECK CONDITION)");
    }

    #[test]
    fn unit_attention_is_retried_and_remembered() {
        let mut seen = Vec::new();
        let mut calls = 0;
        let c = with_unit_attention_retries(1000, &mut seen, || {
            calls += 1;
            Ok(if calls <= 2 {
                Completion { status: 0x02, sense: ua_sense(), ..Completion::default() }
            } else {
                Completion { resid: 4, ..Completion::default() }
            })
        })
        .unwrap();
        assert_eq!((calls, seen.len(), c.resid), (3, 2, 4));
        assert_eq!(seen[0].codes(), sense::REGISTRATIONS_PREEMPTED);
    }

    #[test]
    fn unit_attention_retries_are_bounded() {
        let mut seen = Vec::new();
        let mut calls = 0;
        let r = with_unit_attention_retries(1000, &mut seen, || {
            calls += 1;
            Ok(Completion { status: 0x02, sense: ua_sense(), ..Completion::default() })
        });
        assert!(matches!(r, Err(ScsiError::UnitAttention(_))));
        assert_eq!(calls, 1 + UNIT_ATTENTION_RETRIES);
        assert_eq!(seen.len() as u32, 1 + UNIT_ATTENTION_RETRIES);
        assert!(r
            .unwrap_err()
            .to_string()
            .ends_with("REGISTRATIONS PREEMPTED (ASC 2Ah ASCQ 05h), still after 5 retries"));
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut seen = Vec::new();
        let mut calls = 0;
        let r = with_unit_attention_retries(1000, &mut seen, || {
            calls += 1;
            Ok(Completion { status: 0x18, ..Completion::default() })
        });
        assert!(r.unwrap_err().is_reservation_conflict());
        assert_eq!(calls, 1);
        let r = with_unit_attention_retries(1000, &mut seen, || Err(io::Error::from_raw_os_error(libc::ENOTTY)));
        assert!(r.unwrap_err().to_string().contains("not a SCSI device"));
    }

    #[test]
    fn opening_a_missing_device_says_which() {
        let e = Device::open("/nonexistent/sg9").unwrap_err();
        assert!(e.to_string().starts_with("cannot open /nonexistent/sg9: "), "{e}");
    }

    #[test]
    fn a_regular_file_is_not_a_scsi_device() {
        let dir = std::env::temp_dir().join(format!("fencing-sg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-disk");
        std::fs::write(&path, b"x").unwrap();
        let mut d = Device::open(&path).unwrap();
        let e = d.execute(&[0, 0, 0, 0, 0, 0], Direction::None).unwrap_err();
        assert!(matches!(e, ScsiError::Ioctl(_)), "{e}");
        assert!(e.to_string().contains("not a SCSI device"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
