//! An in-memory model of a disk's SCSI-3 persistent reservations, for the
//! race simulation and tests that need many schedules (never instead of
//! the real target of `tests/scsi-lab/`).
//!
//! What it models, as SPC-4 and LIO behave: one registration per I_T
//! nexus (here: per path id); READ KEYS lists them; REGISTER from an
//! unregistered nexus with a zero current key adds one; PREEMPT AND ABORT
//! from a registered nexus removes every registration holding the victim
//! key, and from an unregistered one, or for a victim key no one holds,
//! is a RESERVATION CONFLICT; a write
//! through a nexus that is not registered while a Write Exclusive
//! Registrants Only reservation exists is a RESERVATION CONFLICT.

use crate::key::Key;
use crate::race::{Op, OpResult};
use std::collections::BTreeMap;

/// An I_T nexus: one initiator's path to the disk.
pub type Path = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemDiskError {
    #[error("RESERVATION CONFLICT")]
    Conflict,
}

#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    registrations: BTreeMap<Path, Key>,
    /// The holder of a Write Exclusive Registrants Only reservation.
    wero: Option<Key>,
    pub generation: u32,
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    pub fn read_keys(&self) -> Vec<Key> {
        self.registrations.values().copied().collect()
    }

    /// REGISTER with current key `current` (zero: not registered yet).
    pub fn register(&mut self, path: Path, current: Key, new: Key) -> Result<(), MemDiskError> {
        match self.registrations.get(&path) {
            None if current == Key(0) => {}
            Some(&k) if k == current => {}
            _ => return Err(MemDiskError::Conflict),
        }
        if new == Key(0) {
            self.registrations.remove(&path);
        } else {
            self.registrations.insert(path, new);
        }
        self.generation += 1;
        Ok(())
    }

    /// REGISTER AND IGNORE EXISTING KEY: whatever the nexus held, it now
    /// holds `new` (zero: nothing).
    pub fn register_ignore(&mut self, path: Path, new: Key) {
        if new == Key(0) {
            self.registrations.remove(&path);
        } else {
            self.registrations.insert(path, new);
        }
        self.generation += 1;
    }

    pub fn reserve_wero(&mut self, path: Path, key: Key) -> Result<(), MemDiskError> {
        if self.registrations.get(&path) != Some(&key) || self.wero.is_some_and(|h| h != key) {
            return Err(MemDiskError::Conflict);
        }
        self.wero = Some(key);
        Ok(())
    }

    pub fn preempt_abort(&mut self, path: Path, own: Key, victim: Key) -> Result<(), MemDiskError> {
        // SPC-4: conflict when the caller is not registered with `own`,
        // and also when no one is registered with `victim`.
        if self.registrations.get(&path) != Some(&own) || !self.registrations.values().any(|k| *k == victim) {
            return Err(MemDiskError::Conflict);
        }
        self.registrations.retain(|_, k| *k != victim);
        if self.wero == Some(victim) {
            self.wero = Some(own);
        }
        self.generation += 1;
        Ok(())
    }

    pub fn write(&self, path: Path) -> Result<(), MemDiskError> {
        match self.wero {
            Some(_) if !self.registrations.contains_key(&path) => Err(MemDiskError::Conflict),
            _ => Ok(()),
        }
    }
}

/// A race operation on the coordinator disks `disks` through `path`, as
/// the SG_IO driver ([`crate::racer::perform`]) would answer it.
pub fn perform(disks: &mut [MemDisk], path: Path, op: &Op) -> OpResult {
    let Some(disk) = disks.get_mut(op.disk()) else {
        return OpResult::Failed(format!("no coordinator disk #{}", op.disk()));
    };
    match *op {
        Op::ReadKeys { .. } => OpResult::Keys(disk.read_keys()),
        Op::Preempt { own, victim, .. } => match disk.preempt_abort(path, own, victim) {
            Ok(()) => OpResult::Done,
            Err(MemDiskError::Conflict) => OpResult::Conflict,
        },
        Op::Register { own, .. } => {
            disk.register_ignore(path, own);
            OpResult::Done
        }
    }
}
