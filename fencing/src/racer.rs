//! Runs a [`Race`] on real coordinator disks through SG_IO, blocking.
//!
//! The daemon calls it on a thread of its own (SCSI commands can take
//! seconds; the event loop must keep LLT's heartbeats going), tests call
//! it directly. Every command carries the device's timeout, so a race
//! always ends.

use crate::parse::ReservationType;
use crate::race::{Next, Op, OpResult, Race, Verdict};
use crate::sense::SenseKey;
use crate::sg::{Device, ScsiError};
use llt::time::{Dur, Time};
use std::time::Instant;

/// Drive `race` to its verdict; `disks` in vxfentab order.
pub fn run(race: &mut Race, disks: &mut [Device]) -> Verdict {
    let start = Instant::now();
    let now = || Time(start.elapsed().as_micros() as u64);
    loop {
        match race.poll(now()) {
            Next::Op(op) => {
                let result = perform(disks, &op);
                tracing::debug!(?op, ?result, "race step");
                race.complete(result);
            }
            Next::WaitUntil(t) => {
                let wait = Dur(t.as_micros().saturating_sub(now().as_micros()));
                std::thread::sleep(std::time::Duration::from_micros(wait.as_micros()));
            }
            // Operations here complete before poll is called again.
            Next::Busy => race.complete(OpResult::Failed("no answer".into())),
            Next::Finished(v) => return v,
        }
    }
}

/// One race operation on its disk, the result as the race wants it.
pub fn perform(disks: &mut [Device], op: &Op) -> OpResult {
    let disk = op.disk();
    let Some(dev) = disks.get_mut(disk) else {
        return OpResult::Failed(format!("no coordinator disk #{disk}"));
    };
    const WERO: ReservationType = ReservationType::WriteExclusiveRegistrantsOnly;
    let result = match *op {
        Op::ReadKeys { .. } => dev.read_keys().map(|k| OpResult::Keys(k.keys)),
        // Coordinator disks hold registrations only; the type field is
        // then not checked, and 5 is what VCS sends.
        Op::Preempt { own, victim, abort: true, .. } => match dev.preempt_and_abort(own, victim, WERO) {
            // A target without PREEMPT AND ABORT (STGT 1.0.85 answers
            // INVALID FIELD IN CDB): nothing was done, and a coordinator
            // disk has no I/O to abort, so plain PREEMPT is the same race.
            Err(ScsiError::CheckCondition(s)) if s.key == SenseKey::ILLEGAL_REQUEST => {
                tracing::debug!(disk, "PREEMPT AND ABORT refused ({s}): plain PREEMPT");
                dev.preempt(own, victim, WERO).map(|()| OpResult::Done)
            }
            r => r.map(|()| OpResult::Done),
        },
        Op::Preempt { own, victim, abort: false, .. } => dev.preempt(own, victim, WERO).map(|()| OpResult::Done),
        Op::Register { own, .. } => dev.register_ignore(own).map(|()| OpResult::Done),
    };
    match result {
        Ok(r) => r,
        Err(ScsiError::ReservationConflict) => OpResult::Conflict,
        Err(e) => OpResult::Failed(e.to_string()),
    }
}
