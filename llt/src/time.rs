//! Time as the cores see it: microseconds since an arbitrary origin chosen by
//! the driver. Cores never read a clock; the daemon passes real time, the
//! simulator passes simulated time.

use std::ops::{Add, Sub};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);
    pub fn from_micros(us: u64) -> Time { Time(us) }
    pub fn from_millis(ms: u64) -> Time { Time(ms * 1000) }
    pub fn as_micros(self) -> u64 { self.0 }
    pub fn as_millis(self) -> u64 { self.0 / 1000 }
    /// The span from the origin to this time.
    pub fn as_dur(self) -> Dur { Dur(self.0) }
    /// Duration since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Dur { Dur(self.0.saturating_sub(earlier.0)) }
}

/// A span of time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub u64);

impl Dur {
    pub const ZERO: Dur = Dur(0);
    pub fn from_micros(us: u64) -> Dur { Dur(us) }
    pub fn from_millis(ms: u64) -> Dur { Dur(ms * 1000) }
    /// VCS timers are in hundredths of a second.
    pub fn from_centis(cs: u32) -> Dur { Dur(cs as u64 * 10_000) }
    pub fn as_micros(self) -> u64 { self.0 }
    pub fn as_millis(self) -> u64 { self.0 / 1000 }
    pub fn to_std(self) -> std::time::Duration { std::time::Duration::from_micros(self.0) }
}

impl Add<Dur> for Time {
    type Output = Time;
    fn add(self, d: Dur) -> Time { Time(self.0.saturating_add(d.0)) }
}
impl Sub<Dur> for Time {
    type Output = Time;
    fn sub(self, d: Dur) -> Time { Time(self.0.saturating_sub(d.0)) }
}
impl Add for Dur {
    type Output = Dur;
    fn add(self, d: Dur) -> Dur { Dur(self.0.saturating_add(d.0)) }
}
