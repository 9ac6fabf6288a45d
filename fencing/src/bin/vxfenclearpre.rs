//! `vxfenclearpre`: clear stale registrations and reservations from the
//! coordinator and data disks, as VCS's vxfenclearpre does.
//!
//! A node that was fenced, or a cluster stopped uncleanly, can leave keys
//! behind; fencing then refuses to start ("possible pre-existing split
//! brain"). Once an administrator has checked that no node of the cluster
//! is running, this tool removes them: on each disk it registers a
//! temporary key with REGISTER AND IGNORE EXISTING KEY (so it works whatever
//! this path held) and then issues CLEAR, which removes every registration
//! and the reservation.

use clap::Parser;
use fencing::config::{self, Disk};
use fencing::parse::{KeyList, ReservationReply};
use fencing::{Device, Key, ScsiError};
use llt::cli;
use std::io::{self, BufRead};
use std::os::unix::net::UnixStream;
use std::path::Path;

const PROG: &str = "vxfenclearpre";

/// `println!` through `cli::print`: a closed pipe ends the program
/// quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => { cli::print(PROG, &format!("{}\n", format_args!($($arg)*))) };
}

/// The key held for the moment between REGISTER AND IGNORE EXISTING KEY
/// and CLEAR. Recognisable if a run is interrupted in between (it is then
/// the only key left, and the next run removes it).
const TEMP_KEY: Key = Key(u64::from_be_bytes(*b"CLEARPRE"));

const AFTER_HELP: &str = "\
Disks: the coordinator disks of $HA_ROOT/etc/vxfentab and the data disks of \
$HA_ROOT/etc/vxfendata (optional), one device path per line.

Run it only when the cluster is stopped on every node: the keys of a \
running node are what protects its data, and clearing them lets a \
partitioned node write. The tool refuses to run while clusterd answers on \
this node ($HA_ROOT/run/ha/llt.sock), but it cannot see the other nodes.

Exit status: 0 every disk is clear (or was already); 1 otherwise, or when \
the answer to the question was not yes.";

/// Remove stale SCSI-3 registrations and reservations from the coordinator
/// and data disks, after showing them and asking for confirmation.
#[derive(Parser, Debug)]
#[command(name = PROG, after_help = AFTER_HELP)]
struct Args {
    /// Do not ask: clear at once.
    #[arg(short = 'y')]
    yes: bool,
}

/// What one disk holds before clearing.
struct Found {
    disk: Disk,
    state: Result<(KeyList, ReservationReply), ScsiError>,
}

impl Found {
    fn has_anything(&self) -> bool {
        matches!(&self.state, Ok((keys, res)) if !keys.keys.is_empty() || res.reservation.is_some())
    }
}

fn read_state(path: &Path) -> Result<(KeyList, ReservationReply), ScsiError> {
    let mut dev = Device::open(path)?;
    Ok((dev.read_keys()?, dev.read_reservation()?))
}

fn describe(state: &Result<(KeyList, ReservationReply), ScsiError>) -> String {
    match state {
        Err(e) => format!("cannot read: {e}"),
        Ok((keys, res)) => {
            let list: Vec<String> = keys.keys.iter().map(Key::to_string).collect();
            let keys_text = if list.is_empty() { "no keys".to_string() } else { format!("keys {}", list.join(" ")) };
            match res.reservation {
                Some(r) => format!("{keys_text}; reservation by {} (type {})", r.key, r.kind.code()),
                None => format!("{keys_text}; no reservation"),
            }
        }
    }
}

/// Registers the temporary key and clears; returns what is left.
fn clear(path: &Path) -> Result<KeyList, ScsiError> {
    let mut dev = Device::open(path)?;
    dev.register_ignore(TEMP_KEY)?;
    dev.clear(TEMP_KEY)?;
    dev.read_keys()
}

fn load_disks(path: &Path, optional: bool) -> Vec<Disk> {
    if optional && !path.exists() {
        return Vec::new();
    }
    config::load_disk_list(path).unwrap_or_else(|e| cli::die(PROG, e))
}

fn confirm() -> bool {
    cli::print(PROG, "Do you still want to continue: [y/n] (default : n) ");
    let mut line = String::new();
    match io::stdin().lock().read_line(&mut line) {
        // End of input: no answer, and end the prompt's line.
        Ok(0) => {
            say!("");
            return false;
        }
        Ok(_) => {}
        Err(_) => return false,
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

fn main() {
    let args: Args = cli::parse(PROG);
    let socket = llt::paths::llt_socket();
    if UnixStream::connect(&socket).is_ok() {
        cli::die(
            PROG,
            format!(
                "clusterd is running on this node ({} answers): stop the cluster on every node first",
                socket.display()
            ),
        );
    }
    let (tab, data) = (config::vxfentab_path(), config::vxfendata_path());
    let groups = [("coordinator", &tab, load_disks(&tab, false)), ("data", &data, load_disks(&data, true))];

    say!("{PROG}: make sure that no node of the cluster is running (clusterd stopped everywhere):");
    say!("clearing the keys of a running node lets a partitioned node write its data disks.\n");
    let mut found: Vec<(&str, Vec<Found>)> = Vec::new();
    for (kind, file, disks) in groups {
        if disks.is_empty() {
            continue;
        }
        say!("{} disks ({}):", capitalise(kind), file.display());
        let mut list = Vec::new();
        for disk in disks {
            let state = read_state(&disk.path);
            say!("  {}: {}", disk.path.display(), describe(&state));
            list.push(Found { disk, state });
        }
        found.push((kind, list));
    }
    let unreadable = found.iter().flat_map(|(_, l)| l).filter(|f| f.state.is_err()).count();
    if !found.iter().flat_map(|(_, l)| l).any(Found::has_anything) {
        say!("\nNo keys or reservations to clear.");
        std::process::exit(if unreadable == 0 { 0 } else { 1 });
    }
    say!("");
    if !args.yes && !confirm() {
        say!("Nothing was changed.");
        std::process::exit(1);
    }
    let mut failed = unreadable;
    for (kind, list) in &found {
        say!("Cleaning up the {kind} disks...");
        for f in list.iter().filter(|f| f.has_anything()) {
            let path = f.disk.path.display();
            match clear(&f.disk.path) {
                Ok(left) if left.keys.is_empty() => say!("  {path}: removed {}", removed(f)),
                Ok(left) => {
                    failed += 1;
                    let keys: Vec<String> = left.keys.iter().map(Key::to_string).collect();
                    say!("  {path}: cleared, but keys are back: {} (is a node running?)", keys.join(" "));
                }
                Err(e) => {
                    failed += 1;
                    say!("  {path}: FAILED: {e}");
                }
            }
        }
    }
    if failed == 0 {
        say!("Successfully removed SCSI-3 persistent registrations and reservations from the coordinator disks as well as the shared data disks.");
    } else {
        eprintln!("{PROG}: {failed} disk(s) could not be read or cleared");
        std::process::exit(1);
    }
}

/// What was on a disk before, as removed.
fn removed(f: &Found) -> String {
    match &f.state {
        Ok((keys, res)) => {
            let list: Vec<String> = keys.keys.iter().map(Key::to_string).collect();
            let mut s = if list.is_empty() { "no keys".to_string() } else { format!("keys {}", list.join(" ")) };
            if let Some(r) = res.reservation {
                s.push_str(&format!(" and the reservation of {}", r.key));
            }
            s
        }
        Err(_) => String::new(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
