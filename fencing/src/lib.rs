//! I/O fencing: what keeps two halves of a split cluster from writing the
//! same disks, through SCSI-3 persistent reservations (PR).
//!
//! Owns:
//! - [`cdb`]: building command descriptor blocks (PERSISTENT RESERVE IN and
//!   OUT with its parameter list, INQUIRY, TEST UNIT READY, READ/WRITE(10),
//!   READ CAPACITY(10)), pure and tested byte by byte against SPC-4;
//! - [`parse`] and [`sense`]: reading what devices answer (key lists,
//!   reservations, capabilities, INQUIRY and VPD pages 0x80/0x83, sense data
//!   in fixed and descriptor format) into types, with a typed error naming
//!   the field and byte offset for anything short or malformed;
//! - [`sg`]: the SG_IO ioctl on `/dev/sgN` or `/dev/sdX`, status decoding
//!   (RESERVATION CONFLICT is its own error), UNIT ATTENTION retries,
//!   per-command timeouts, and [`Device`]; its ioctl call is the only
//!   `unsafe` code of the crate. [`commands`] adds the typed commands
//!   (`read_keys`, `register`, `preempt_and_abort`, ...) to [`Device`];
//! - [`key`]: keys as VCS makes them (`VFDEED00` on coordinator disks,
//!   `APGRDEED` on data disks) and reads them back;
//! - [`config`]: `$HA_ROOT/etc/vxfenmode`, `vxfentab`, `vxfendata`;
//! - [`show`] and the commands `vxfenadm` and `vxfenclearpre`;
//! - [`fuzzing`]: every parser behind one entry point, for the fuzz target
//!   and its CI smoke run;
//! - [`race`]: the coordinator-disk race of one partition, sans-IO (who
//!   to preempt, when a disk is won, when the partition has won or lost),
//!   [`racer`] drives it on real devices, [`memdisk`] models a PR disk
//!   for its seeded simulation;
//! - [`member`]: what a node does with GAB port b memberships, sans-IO:
//!   which nodes are pending, who races, holding the other ports until the
//!   departed are fenced, ejecting them from data disks, halting a losing
//!   partition; and the startup check for a pre-existing split brain.
//!
//! Never: touches the network or GAB itself. clusterd hosts [`member`]:
//! it feeds it port b from GAB, runs its disk operations on a thread and
//! carries out its holds and halts.
//!
//! # How to test on a real disk
//!
//! Unit tests need no device (`cargo test -p fencing`). For the real
//! thing, a LUN must be reachable through two or more paths that are
//! different I_T nexuses (two initiators: iSCSI sessions from two
//! initiator names, or two HBAs), e.g. the QEMU + LIO lab of
//! `tests/scsi-lab/`, where each lab node has its own `/dev/sgN` path to
//! every LUN (`/run/scsi-lab.env` in the guest). `tests/lab_guest.sh`
//! runs the commands below and the library test `tests/real_device.rs`
//! there (its header says how). By hand, as root, with `/dev/sg1` and
//! `/dev/sg2` two paths to one LUN:
//!
//! ```text
//! vxfenadm -i /dev/sg1                       # same Serial Number on both paths
//! vxfenadm -m /dev/sg1 -k VFDEED00           # node 0 registers
//! vxfenadm -m /dev/sg2 -k VFDEED01           # node 1 registers
//! vxfenadm -n /dev/sg1 -k VFDEED00           # node 0 reserves (type 5, WERO)
//! vxfenadm -s /dev/sg2                       # both keys; sg_persist -i -k shows the same
//! vxfenadm -p /dev/sg1 -k VFDEED00 -v VFDEED01   # node 0 fences node 1
//! sg_raw -s 512 -i blk /dev/sg2 2a 00 00 00 00 08 00 00 01 00   # -> RESERVATION CONFLICT
//! vxfenclearpre -y                           # with the disks in $HA_ROOT/etc/vxfentab
//! ```
//!
//! Never use LIO's tcm_loop fabric for PREEMPT AND ABORT: it deadlocks
//! the target (see ../shared/labs/scsi/README.md); use `--no-abort` there.

// The SG_IO call in `sg` is the one exception, allowed where it stands.
#![deny(unsafe_code)]

pub mod cdb;
pub mod commands;
pub mod config;
pub mod ctl;
pub mod fuzzing;
pub mod key;
pub mod member;
pub mod memdisk;
pub mod parse;
pub mod race;
pub mod racer;
pub mod sense;
pub mod sg;
pub mod show;

pub use key::{Key, KeyOwner};
pub use parse::{ParseError, ReservationType};
pub use sense::Sense;
pub use sg::{Device, ScsiError};
