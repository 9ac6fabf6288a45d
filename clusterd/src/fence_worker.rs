//! The fencing disk thread: every SCSI command fencing sends runs here,
//! one at a time, so a slow or hung disk (commands time out after seconds)
//! never stalls the event loop that keeps LLT's heartbeats going. It owns
//! the open coordinator and data devices; the node sends it [`Job`]s and
//! gets [`Done`]s back on a channel the event loop reads.

use fencing::config::Disk;
use fencing::ctl::DiskInUse;
use fencing::key::Key;
use fencing::member::{self, DiskOp};
use fencing::parse::ReservationType;
use fencing::race::OpResult;
use fencing::sg::{Device, ScsiError};
use llt::NodeId;
use std::collections::BTreeSet;
use std::sync::mpsc;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

const WERO: ReservationType = ReservationType::WriteExclusiveRegistrantsOnly;

pub enum Job {
    /// `vxfenconfig -c`: open the disks, run the startup check against the
    /// GAB membership, register this node's keys.
    Start { coordinators: Vec<Disk>, data: Vec<Disk>, cluster: u16, me: NodeId, members: BTreeSet<NodeId> },
    Op(DiskOp),
    /// `vxfenconfig -U`: remove this node's keys.
    Stop,
}

pub enum Done {
    Started(Result<(Vec<DiskInUse>, Vec<DiskInUse>), String>),
    Op(OpResult),
    Stopped(Vec<String>),
}

/// Start the thread; it ends when the job sender is dropped.
pub fn spawn(done: UnboundedSender<Done>) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new().name("fencing-disks".into()).spawn(move || {
        let mut w = Worker { coords: Vec::new(), data: Vec::new(), cluster: 0, me: 0 };
        while let Ok(job) = rx.recv() {
            let d = match job {
                Job::Start { coordinators, data, cluster, me, members } => {
                    w.cluster = cluster;
                    w.me = me;
                    Done::Started(w.start(&coordinators, &data, &members))
                }
                Job::Op(op) => Done::Op(w.perform(&op)),
                Job::Stop => Done::Stopped(w.stop()),
            };
            if done.send(d).is_err() {
                return;
            }
        }
    })?;
    Ok(tx)
}

struct Worker {
    coords: Vec<Device>,
    data: Vec<Device>,
    cluster: u16,
    me: NodeId,
}

fn open_all(disks: &[Disk], what: &str) -> Result<(Vec<Device>, Vec<DiskInUse>), String> {
    let mut devs = Vec::new();
    let mut used = Vec::new();
    for d in disks {
        let mut dev = Device::open(&d.path).map_err(|e| format!("{what} disk {}: {e}", d.path.display()))?;
        let serial = dev.unit_serial().ok();
        if let (Some(want), Some(got)) = (&d.serial, &serial) {
            if want != got {
                return Err(format!("{what} disk {}: unit serial is {got}, the configuration says {want}", d.path.display()));
            }
        }
        let (major, minor) = device_numbers(&d.path);
        used.push(DiskInUse { path: d.path.display().to_string(), serial, major, minor });
        devs.push(dev);
    }
    Ok((devs, used))
}

fn device_numbers(path: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => {
            let rdev = m.rdev();
            (libc::major(rdev), libc::minor(rdev))
        }
        Err(_) => (0, 0),
    }
}

impl Worker {
    fn start(&mut self, coordinators: &[Disk], data: &[Disk], members: &BTreeSet<NodeId>) -> Result<(Vec<DiskInUse>, Vec<DiskInUse>), String> {
        let (mut coords, coord_used) = open_all(coordinators, "coordinator")?;
        let (mut datas, data_used) = open_all(data, "data")?;
        let mut seen = Vec::new();
        for (dev, d) in coords.iter_mut().zip(coordinators) {
            let keys = dev.read_keys().map_err(|e| format!("reading the keys of coordinator disk {}: {e}", d.path.display()))?;
            seen.push((d.path.display().to_string(), keys.keys));
        }
        member::startup_check(self.cluster, members, &seen)?;
        let own = Key::coordinator(self.cluster, self.me);
        for (dev, d) in coords.iter_mut().zip(coordinators) {
            dev.register_ignore(own).map_err(|e| format!("registering {own} on coordinator disk {}: {e}", d.path.display()))?;
        }
        // Data disks: our key, and a Write Exclusive Registrants Only
        // reservation if nobody holds one yet (the first node makes it):
        // then an initiator whose key is removed can no longer write.
        let own_data = Key::data(self.cluster, self.me);
        for (dev, d) in datas.iter_mut().zip(data) {
            let p = d.path.display();
            dev.register_ignore(own_data).map_err(|e| format!("registering {own_data} on data disk {p}: {e}"))?;
            let held = dev.read_reservation().map_err(|e| format!("reading the reservation of data disk {p}: {e}"))?;
            if held.reservation.is_none() {
                match dev.reserve(own_data, WERO) {
                    Ok(()) => info!(disk = %p, key = %own_data, "data disk reserved (Write Exclusive Registrants Only)"),
                    // Another node reserved it at the same moment.
                    Err(ScsiError::ReservationConflict) => {}
                    Err(e) => return Err(format!("reserving data disk {p}: {e}")),
                }
            }
        }
        self.coords = coords;
        self.data = datas;
        Ok((coord_used, data_used))
    }

    fn perform(&mut self, op: &DiskOp) -> OpResult {
        match op {
            DiskOp::Race(op) => fencing::racer::perform(&mut self.coords, op),
            DiskOp::Eject { disk, own, victim } => {
                let Some(dev) = self.data.get_mut(*disk) else { return OpResult::Failed(format!("no data disk #{disk}")) };
                // Preempting a key that is not registered is a conflict
                // too: look first, so a conflict means ours is gone.
                match dev.read_keys() {
                    Ok(k) if !k.keys.contains(victim) => return OpResult::Done,
                    Ok(_) => {}
                    Err(e) => return OpResult::Failed(e.to_string()),
                }
                match dev.preempt_and_abort(*own, *victim, WERO) {
                    Ok(()) => OpResult::Done,
                    Err(ScsiError::ReservationConflict) => OpResult::Conflict,
                    Err(e) => OpResult::Failed(e.to_string()),
                }
            }
        }
    }

    /// Unregister our keys; what failed is reported, the rest goes on.
    fn stop(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        let own = Key::coordinator(self.cluster, self.me);
        for dev in &mut self.coords {
            if let Err(e) = dev.unregister(own) {
                warn!(disk = %dev.path().display(), "removing {own}: {e}");
                errors.push(format!("{}: {e}", dev.path().display()));
            }
        }
        let own_data = Key::data(self.cluster, self.me);
        for dev in &mut self.data {
            if let Err(e) = dev.unregister(own_data) {
                warn!(disk = %dev.path().display(), "removing {own_data}: {e}");
                errors.push(format!("{}: {e}", dev.path().display()));
            }
        }
        self.coords.clear();
        self.data.clear();
        errors
    }
}
