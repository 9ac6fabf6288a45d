//! `vxfenadm`: read and change SCSI-3 registrations and reservations on
//! fencing disks, as VCS's vxfenadm does.
//!
//! The command line becomes an [`Action`] in [`action_from`] (unit-tested
//! below); `main` only opens devices, runs the commands and prints.

use clap::{ArgGroup, Parser};
use fencing::config;
use fencing::show::{self, ClusterView};
use fencing::{Device, Key, ReservationType, ScsiError};
use llt::cli;
use std::path::PathBuf;

const PROG: &str = "vxfenadm";

/// Exit status when every failure was a RESERVATION CONFLICT: the number
/// sg3_utils (sg_persist, sg_raw) uses, so scripts test both tools alike.
const EXIT_CONFLICT: i32 = 24;

const AFTER_HELP: &str = "\
DEVICE is a SCSI generic node (/dev/sgN) or a block device (/dev/sdX, \
/dev/disk/by-id/...): each path to a LUN is its own initiator (I_T nexus) \
and holds its own registration. 'all' means every disk listed in -f FILE, \
by default $HA_ROOT/etc/vxfentab (the coordinator disks, one path per line).

KEY is 8 bytes, written as VCS does (VFDEED00; shorter keys are padded with \
'-'), as 8 comma-separated byte values (86,70,68,69,69,68,48,48) or in hex as \
sg_persist writes it (0x5646444545443030). Fencing keys: VF + cluster id (4 \
hex digits) + node id (2 hex digits) on coordinator disks; 'A'+node id, PGR, \
cluster id (4 hex digits) on data disks (APGRDEED = node 0 of cluster 0xDEED).

TYPE (-t) is a reservation type: 5 or WERO (Write Exclusive, Registrants \
Only; the default, what fencing uses), 1 WE, 3 EA, 6 EARO, 7 WEAR, 8 EAAR.

Exit status: 0 success; 24 RESERVATION CONFLICT (on every device that \
failed; as sg_persist); 1 any other error (bad arguments, unreadable \
configuration, device errors). Needs root (SG_IO).

Files: $HA_ROOT/etc/vxfentab, $HA_ROOT/etc/vxfenmode; key owners are named \
from $HA_ROOT/etc/llttab and llthosts when readable.

Examples:
  vxfenadm -s all                          keys on every coordinator disk
  vxfenadm -s /dev/sdb -json               the same for one disk, as JSON
  vxfenadm -i /dev/sg1                     vendor, product, revision, serial
  vxfenadm -m /dev/sg1 -k VFDEED00         register node 0 of cluster 0xDEED
  vxfenadm -n /dev/sg1 -k VFDEED00         reserve (Write Exclusive, Registrants Only)
  vxfenadm -p /dev/sg1 -k VFDEED00 -v VFDEED01   preempt and abort node 1's key
  vxfenadm -x /dev/sg1 -k VFDEED00         remove this path's registration";

/// Manage SCSI-3 persistent reservations on I/O fencing disks: read keys,
/// reservations and INQUIRY data, and (for troubleshooting only) register,
/// reserve, preempt and remove keys by hand.
///
/// Do not use -m, -n, -p or -x on disks of a running cluster: they change
/// the keys fencing relies on.
#[derive(Parser, Debug)]
#[command(name = PROG, after_help = AFTER_HELP)]
#[command(group(ArgGroup::new("action").required(true).args(["keys", "keys_short", "reservation", "inquiry", "mode", "register", "reserve", "preempt", "remove"])))]
struct Args {
    /// Read the registration keys: each key in numeric, character and hex
    /// form, and the cluster and node it belongs to ('*': this node's
    /// cluster).
    #[arg(short = 's', value_name = "DEVICE|all")]
    keys: Option<String>,
    /// Read the registration keys, in the older two-line format.
    #[arg(short = 'g', value_name = "DEVICE|all")]
    keys_short: Option<String>,
    /// Read the reservation: its type and the holder's key.
    #[arg(short = 'r', value_name = "DEVICE|all")]
    reservation: Option<String>,
    /// Read INQUIRY data: vendor, product, revision and unit serial number
    /// (with -json also the device identifiers of VPD page 0x83).
    #[arg(short = 'i', value_name = "DEVICE")]
    inquiry: Option<String>,
    /// Show the fencing mode and disk policy (from vxfenmode). The fencing
    /// state and membership need the fencing driver in clusterd, which is
    /// not there yet: exits 1 after the mode.
    #[arg(short = 'd')]
    mode: bool,
    /// Register KEY (-k) through DEVICE, or through each disk of -f FILE.
    /// Refused (RESERVATION CONFLICT) if this path already holds a key.
    #[arg(short = 'm', value_name = "DEVICE|all", num_args = 0..=1)]
    register: Option<Option<String>>,
    /// Reserve with KEY (-k), which must be registered through this path,
    /// with reservation type -t (default 5, Write Exclusive Registrants Only).
    #[arg(short = 'n', value_name = "DEVICE|all", num_args = 0..=1)]
    reserve: Option<Option<String>>,
    /// Preempt and abort: remove every registration of the victim key (-v)
    /// and abort its commands in flight, as KEY (-k), which must be
    /// registered through this path. If the victim held the reservation,
    /// KEY takes it over with type -t.
    #[arg(short = 'p', value_name = "DEVICE|all", num_args = 0..=1, requires = "victim")]
    preempt: Option<Option<String>>,
    /// Remove this path's registration of KEY (-k) (also releases its
    /// reservation, if it holds one).
    #[arg(short = 'x', value_name = "DEVICE|all", num_args = 0..=1)]
    remove: Option<Option<String>>,
    /// The key to register, reserve with, preempt as or remove (-K is the
    /// same, for VCS's numeric form).
    #[arg(short = 'k', visible_short_alias = 'K', value_name = "KEY", value_parser = parse_key)]
    key: Option<Key>,
    /// With -p: the key to preempt.
    #[arg(short = 'v', value_name = "KEY", value_parser = parse_key)]
    victim: Option<Key>,
    /// With -n or -p: the reservation type (default 5 = WERO).
    #[arg(short = 't', value_name = "TYPE", value_parser = parse_type)]
    kind: Option<ReservationType>,
    /// The list of disks 'all' (or -m/-n/-p/-x without DEVICE) acts on, one
    /// path per line (default $HA_ROOT/etc/vxfentab).
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// With -p: plain PREEMPT, without aborting the victim's commands (for
    /// targets where PREEMPT AND ABORT misbehaves, such as LIO's tcm_loop).
    #[arg(long)]
    no_abort: bool,
    /// With -s, -g, -r, -i or -d: print JSON instead of text (VCS spelling:
    /// -json).
    #[arg(long)]
    json: bool,
}

fn parse_key(s: &str) -> Result<Key, String> {
    Key::parse(s).map_err(|e| e.to_string())
}

fn parse_type(s: &str) -> Result<ReservationType, String> {
    let t = match s.to_ascii_uppercase().as_str() {
        "1" | "WE" => ReservationType::WriteExclusive,
        "3" | "EA" => ReservationType::ExclusiveAccess,
        "5" | "WERO" => ReservationType::WriteExclusiveRegistrantsOnly,
        "6" | "EARO" => ReservationType::ExclusiveAccessRegistrantsOnly,
        "7" | "WEAR" => ReservationType::WriteExclusiveAllRegistrants,
        "8" | "EAAR" => ReservationType::ExclusiveAccessAllRegistrants,
        _ => return Err(format!("'{s}' is not a reservation type (1 WE, 3 EA, 5 WERO, 6 EARO, 7 WEAR, 8 EAAR)")),
    };
    Ok(t)
}

/// Which devices a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Device(String),
    /// Every disk of the file (default vxfentab).
    List(Option<PathBuf>),
}

/// A PR OUT change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Register(Key),
    Reserve(Key, ReservationType),
    Preempt { own: Key, victim: Key, kind: ReservationType, abort: bool },
    Remove(Key),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Keys { target: Target, long: bool, json: bool },
    Reservation { target: Target, json: bool },
    Inquiry { device: String, json: bool },
    Mode { json: bool },
    Change { target: Target, change: Change },
}

/// `DEVICE|all` of a read option.
fn read_target(spec: String, file: Option<PathBuf>) -> Result<Target, String> {
    match (spec.as_str(), file) {
        ("all", file) => Ok(Target::List(file)),
        (_, Some(_)) => Err("-f FILE goes with 'all' (e.g. -s all -f FILE), not with a device".into()),
        (_, None) => Ok(Target::Device(spec)),
    }
}

/// `[DEVICE|all]` of a change option: no DEVICE means the -f list, as in
/// VCS (vxfenadm -m -k KEY -f FILE).
fn change_target(opt: &str, spec: Option<String>, file: Option<PathBuf>) -> Result<Target, String> {
    match spec {
        Some(spec) => read_target(spec, file),
        None if file.is_some() => Ok(Target::List(file)),
        None => Err(format!("{opt} needs a DEVICE, 'all', or -f FILE")),
    }
}

/// Checks how the options combine and says what to do.
fn action_from(a: Args) -> Result<Action, String> {
    let is_change = a.register.is_some() || a.reserve.is_some() || a.preempt.is_some() || a.remove.is_some();
    if a.json && is_change {
        return Err("-json goes with -s, -g, -r, -i or -d".into());
    }
    if !is_change && (a.key.is_some() || a.victim.is_some() || a.kind.is_some()) {
        return Err("-k, -v and -t go with -m, -n, -p or -x".into());
    }
    if a.victim.is_some() && a.preempt.is_none() {
        return Err("-v goes with -p".into());
    }
    if a.kind.is_some() && a.reserve.is_none() && a.preempt.is_none() {
        return Err("-t goes with -n or -p".into());
    }
    if a.no_abort && a.preempt.is_none() {
        return Err("--no-abort goes with -p".into());
    }
    let json = a.json;
    if let Some(spec) = a.keys {
        return Ok(Action::Keys { target: read_target(spec, a.file)?, long: true, json });
    }
    if let Some(spec) = a.keys_short {
        return Ok(Action::Keys { target: read_target(spec, a.file)?, long: false, json });
    }
    if let Some(spec) = a.reservation {
        return Ok(Action::Reservation { target: read_target(spec, a.file)?, json });
    }
    if let Some(device) = a.inquiry {
        if device == "all" || a.file.is_some() {
            return Err("-i reads one DEVICE".into());
        }
        return Ok(Action::Inquiry { device, json });
    }
    if a.mode {
        if a.file.is_some() {
            return Err("-d takes no -f".into());
        }
        return Ok(Action::Mode { json });
    }
    let key = a.key.ok_or("-m, -n, -p and -x need the key: -k KEY")?;
    let kind = a.kind.unwrap_or(ReservationType::WriteExclusiveRegistrantsOnly);
    let (opt, spec, change) = if let Some(spec) = a.register {
        ("-m", spec, Change::Register(key))
    } else if let Some(spec) = a.reserve {
        ("-n", spec, Change::Reserve(key, kind))
    } else if let Some(spec) = a.preempt {
        let victim = a.victim.ok_or("-p needs the victim's key: -v KEY")?;
        ("-p", spec, Change::Preempt { own: key, victim, kind, abort: !a.no_abort })
    } else if let Some(spec) = a.remove {
        ("-x", spec, Change::Remove(key))
    } else {
        return Err("no action".into()); // clap's required group prevents this
    };
    Ok(Action::Change { target: change_target(opt, spec, a.file)?, change })
}

fn main() {
    let args: Args = cli::parse(PROG);
    let action = action_from(args).unwrap_or_else(|e| cli::die(PROG, format!("{e} (see {PROG} --help)")));
    let status = match action {
        Action::Keys { target, long, json } => show_keys(&devices(&target), long, json),
        Action::Reservation { target, json } => show_reservation(&devices(&target), json),
        Action::Inquiry { device, json } => show_inquiry(&device, json),
        Action::Mode { json } => show_mode(json),
        Action::Change { target, change } => apply(&devices(&target), change),
    };
    std::process::exit(status);
}

/// The device paths of a target, or dies with the list file's errors.
fn devices(target: &Target) -> Vec<String> {
    match target {
        Target::Device(d) => vec![d.clone()],
        Target::List(file) => {
            let path = file.clone().unwrap_or_else(config::vxfentab_path);
            let disks = config::load_disk_list(&path).unwrap_or_else(|e| cli::die(PROG, e));
            if disks.is_empty() {
                cli::die(PROG, format!("{}: no disks listed", path.display()));
            }
            disks.iter().map(|d| d.path.display().to_string()).collect()
        }
    }
}

/// Opens `device` and runs `f` on it.
fn with_device<T>(device: &str, f: impl FnOnce(&mut Device) -> Result<T, ScsiError>) -> Result<T, ScsiError> {
    let mut dev = Device::open(device)?;
    f(&mut dev)
}

/// The exit status for a set of outcomes: 0 if all succeeded, 24 if every
/// failure was a RESERVATION CONFLICT, else 1.
fn exit_status<'a>(errors: impl IntoIterator<Item = &'a ScsiError>) -> i32 {
    let mut status = 0;
    for e in errors {
        status = match (status, e.is_reservation_conflict()) {
            (0 | EXIT_CONFLICT, true) => EXIT_CONFLICT,
            _ => 1,
        };
    }
    status
}

/// Runs a read on every device; the outcome per device in order.
fn read_each<T>(
    devices: &[String],
    f: impl Fn(&mut Device) -> Result<T, ScsiError>,
) -> Vec<(String, Result<T, ScsiError>)> {
    devices.iter().map(|d| (d.clone(), with_device(d, &f))).collect()
}

/// The per-device results in the borrowed shape `show` takes.
fn borrowed<T>(results: &[(String, Result<T, ScsiError>)]) -> Vec<show::DeviceResult<'_, T>> {
    results.iter().map(|(d, r)| (d.as_str(), r.as_ref().map_err(|e| e.to_string()))).collect()
}

fn show_keys(devices: &[String], long: bool, json: bool) -> i32 {
    let results = read_each(devices, Device::read_keys);
    let view = ClusterView::load();
    let shown = borrowed(&results);
    if json {
        cli::print_json(PROG, &show::keys_json(&shown, &view));
    } else {
        cli::print(PROG, &show::keys_text(&shown, &view, long));
    }
    exit_status(results.iter().filter_map(|(_, r)| r.as_ref().err()))
}

fn show_reservation(devices: &[String], json: bool) -> i32 {
    let results = read_each(devices, Device::read_reservation);
    let view = ClusterView::load();
    let shown = borrowed(&results);
    if json {
        cli::print_json(PROG, &show::reservation_json(&shown, &view));
    } else {
        cli::print(PROG, &show::reservation_text(&shown, &view));
    }
    exit_status(results.iter().filter_map(|(_, r)| r.as_ref().err()))
}

fn show_inquiry(device: &str, json: bool) -> i32 {
    let result = with_device(device, |dev| {
        let inq = dev.inquiry()?;
        // Devices need not support the VPD pages: show what there is.
        let serial = dev.unit_serial().ok();
        let ids = if json { dev.device_identification().unwrap_or_default() } else { Vec::new() };
        Ok((inq, serial, ids))
    });
    match result {
        Ok((inq, serial, ids)) => {
            if json {
                cli::print_json(PROG, &show::inquiry_json(device, &inq, serial.as_deref(), &ids));
            } else {
                cli::print(PROG, &show::inquiry_text(&inq, serial.as_deref()));
            }
            0
        }
        Err(e) => {
            eprintln!("{PROG}: {device}: {e}");
            exit_status([&e])
        }
    }
}

fn show_mode(json: bool) -> i32 {
    use fencing::ctl::{FenClient, FenRequest, FenResponse};
    // The daemon knows the state and the membership; without it, say what
    // vxfenmode says.
    if let Ok(mut c) = FenClient::connect() {
        match c.request(FenRequest::Status) {
            Ok(FenResponse::Status(st)) => {
                if json {
                    cli::print_json(PROG, &st);
                } else {
                    cli::print(PROG, &show::status_text(&st, &ClusterView::load()));
                }
                return if st.configured && st.halted.is_none() { 0 } else { 1 };
            }
            Ok(other) => cli::die(PROG, format!("unexpected answer from fencing: {other:?}")),
            Err(e) => cli::die(PROG, fencing::ctl::error_text(&e)),
        }
    }
    let path = config::vxfenmode_path();
    let fenmode = config::read_file(&path)
        .and_then(|text| config::parse_vxfenmode(&path, &text))
        .unwrap_or_else(|e| cli::die(PROG, e));
    #[derive(serde::Serialize)]
    struct ModeJson<'a> {
        #[serde(flatten)]
        fenmode: &'a config::FenMode,
        configured: bool,
    }
    if json {
        cli::print_json(PROG, &ModeJson { fenmode: &fenmode, configured: false });
    } else {
        cli::print(PROG, &show::mode_text(&fenmode));
    }
    eprintln!("{PROG}: fencing state and membership: clusterd does not answer on {}", fencing::ctl::socket().display());
    1
}

/// What a RESERVATION CONFLICT most likely means for each change.
fn conflict_hint(change: &Change) -> &'static str {
    match change {
        Change::Register(_) => "this path already holds a key (vxfenadm -s shows it; -x DEVICE -k ITSKEY removes it)",
        Change::Reserve(..) => "the key is not registered through this path, or another reservation is held",
        Change::Preempt { .. } => "the key -k is not registered through this path (was this path preempted?)",
        Change::Remove(_) => "this path is not registered with that key",
    }
}

fn describe(change: &Change) -> String {
    match change {
        Change::Register(k) => format!("registered key {k}"),
        Change::Reserve(k, t) => format!("reserved with key {k}, type {} ({t})", t.code()),
        Change::Preempt { own, victim, abort, .. } => {
            format!("{} key {victim} as {own}", if *abort { "preempted and aborted" } else { "preempted" })
        }
        Change::Remove(k) => format!("removed key {k}"),
    }
}

fn apply(devices: &[String], change: Change) -> i32 {
    let mut errors = Vec::new();
    for device in devices {
        let result = with_device(device, |dev| match change {
            Change::Register(k) => dev.register(Key::NONE, k),
            Change::Reserve(k, t) => dev.reserve(k, t),
            Change::Preempt { own, victim, kind, abort: true } => dev.preempt_and_abort(own, victim, kind),
            Change::Preempt { own, victim, kind, abort: false } => dev.preempt(own, victim, kind),
            Change::Remove(k) => dev.unregister(k),
        });
        match result {
            Ok(()) => cli::print(PROG, &format!("{device}: {}\n", describe(&change))),
            Err(e) => {
                if e.is_reservation_conflict() {
                    eprintln!("{PROG}: {device}: {e}: {}", conflict_hint(&change));
                } else {
                    eprintln!("{PROG}: {device}: {e}");
                }
                errors.push(e);
            }
        }
    }
    exit_status(&errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_action(argv: &[&str]) -> Result<Action, String> {
        let argv = std::iter::once(PROG).chain(argv.iter().copied()).map(std::ffi::OsString::from);
        cli::try_parse_from::<Args, _>(argv).map_err(|e| e.to_string()).and_then(action_from)
    }

    fn dev(d: &str) -> Target {
        Target::Device(d.into())
    }

    #[test]
    fn reads() {
        assert_eq!(
            parse_action(&["-s", "/dev/sdb"]).unwrap(),
            Action::Keys { target: dev("/dev/sdb"), long: true, json: false }
        );
        assert_eq!(
            parse_action(&["-g", "all"]).unwrap(),
            Action::Keys { target: Target::List(None), long: false, json: false }
        );
        assert_eq!(
            parse_action(&["-s", "all", "-f", "/tmp/disks", "-json"]).unwrap(),
            Action::Keys { target: Target::List(Some("/tmp/disks".into())), long: true, json: true }
        );
        assert_eq!(
            parse_action(&["-r", "/dev/sg1", "-json"]).unwrap(),
            Action::Reservation { target: dev("/dev/sg1"), json: true }
        );
        assert_eq!(
            parse_action(&["-i", "/dev/sg1"]).unwrap(),
            Action::Inquiry { device: "/dev/sg1".into(), json: false }
        );
        assert_eq!(parse_action(&["-d"]).unwrap(), Action::Mode { json: false });
    }

    #[test]
    fn changes() {
        let k0 = Key::coordinator(0xDEED, 0);
        let k1 = Key::coordinator(0xDEED, 1);
        assert_eq!(
            parse_action(&["-m", "/dev/sg1", "-k", "VFDEED00"]).unwrap(),
            Action::Change { target: dev("/dev/sg1"), change: Change::Register(k0) }
        );
        // VCS order: the flag, the key, the disk file.
        assert_eq!(
            parse_action(&["-m", "-k", "VFDEED00", "-f", "/etc/disks"]).unwrap(),
            Action::Change { target: Target::List(Some("/etc/disks".into())), change: Change::Register(k0) }
        );
        assert_eq!(
            parse_action(&["-n", "/dev/sg1", "-K", "86,70,68,69,69,68,48,48"]).unwrap(),
            Action::Change {
                target: dev("/dev/sg1"),
                change: Change::Reserve(k0, ReservationType::WriteExclusiveRegistrantsOnly)
            }
        );
        assert_eq!(
            parse_action(&["-n", "/dev/sg1", "-k", "0x1", "-t", "EAAR"]).unwrap(),
            Action::Change {
                target: dev("/dev/sg1"),
                change: Change::Reserve(Key(1), ReservationType::ExclusiveAccessAllRegistrants)
            }
        );
        assert_eq!(
            parse_action(&["-p", "/dev/sg1", "-k", "VFDEED00", "-v", "VFDEED01"]).unwrap(),
            Action::Change {
                target: dev("/dev/sg1"),
                change: Change::Preempt {
                    own: k0,
                    victim: k1,
                    kind: ReservationType::WriteExclusiveRegistrantsOnly,
                    abort: true
                }
            }
        );
        assert_eq!(
            parse_action(&["-p", "all", "-k", "VFDEED00", "-v", "VFDEED01", "--no-abort", "-t", "1"]).unwrap(),
            Action::Change {
                target: Target::List(None),
                change: Change::Preempt { own: k0, victim: k1, kind: ReservationType::WriteExclusive, abort: false }
            }
        );
        assert_eq!(
            parse_action(&["-x", "/dev/sg1", "-k", "VFDEED00"]).unwrap(),
            Action::Change { target: dev("/dev/sg1"), change: Change::Remove(k0) }
        );
    }

    #[test]
    fn refused_combinations() {
        let err = |argv: &[&str]| parse_action(argv).unwrap_err();
        assert!(err(&[]).contains("required"), "{}", err(&[]));
        assert_eq!(err(&["-m", "/dev/sg1"]), "-m, -n, -p and -x need the key: -k KEY");
        assert_eq!(err(&["-m", "-k", "VFDEED00"]), "-m needs a DEVICE, 'all', or -f FILE");
        assert!(err(&["-p", "/dev/sg1", "-k", "VFDEED00"]).contains("-v"));
        assert_eq!(err(&["-s", "/dev/sg1", "-k", "VFDEED00"]), "-k, -v and -t go with -m, -n, -p or -x");
        assert_eq!(err(&["-m", "/dev/sg1", "-k", "A", "-t", "5"]), "-t goes with -n or -p");
        assert_eq!(err(&["-m", "/dev/sg1", "-k", "A", "-json"]), "-json goes with -s, -g, -r, -i or -d");
        assert_eq!(
            err(&["-s", "/dev/sg1", "-f", "x"]),
            "-f FILE goes with 'all' (e.g. -s all -f FILE), not with a device"
        );
        assert_eq!(err(&["-i", "all"]), "-i reads one DEVICE");
        assert!(err(&["-s", "/dev/a", "-r", "/dev/b"]).contains("cannot be used with"));
        assert!(err(&["-m", "/dev/sg1", "-k", "0x0"]).contains("no key"));
        assert!(err(&["-n", "/dev/sg1", "-k", "A", "-t", "2"]).contains("not a reservation type"));
        assert_eq!(err(&["-s", "/dev/sg1", "--no-abort"]), "--no-abort goes with -p");
    }

    #[test]
    fn exit_statuses() {
        let conflict = ScsiError::ReservationConflict;
        let other = ScsiError::Busy { status: 8 };
        assert_eq!(exit_status([]), 0);
        assert_eq!(exit_status([&conflict, &conflict]), EXIT_CONFLICT);
        assert_eq!(exit_status([&conflict, &other]), 1);
        assert_eq!(exit_status([&other, &conflict]), 1);
    }
}
