//! Packet captures in lab nodes ([`crate::Lab::capture`]) and a minimal
//! reader for the classic pcap files tcpdump writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cmd::wait_until;
use crate::proc::ProcInner;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time since the Unix epoch.
    pub ts: Duration,
    /// Length on the wire (may exceed `data.len()` if truncated by snaplen).
    pub orig_len: u32,
    /// Frame bytes from the destination MAC on.
    pub data: Vec<u8>,
}

impl Frame {
    pub fn dst(&self) -> [u8; 6] {
        self.data
            .get(0..6)
            .and_then(|s| s.try_into().ok())
            .unwrap_or_default()
    }
    pub fn src(&self) -> [u8; 6] {
        self.data
            .get(6..12)
            .and_then(|s| s.try_into().ok())
            .unwrap_or_default()
    }
    pub fn ethertype(&self) -> u16 {
        match self.data.get(12..14) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => 0,
        }
    }
    pub fn payload(&self) -> &[u8] {
        self.data.get(14..).unwrap_or_default()
    }
}

/// Parses a classic pcap file (either byte order, µs or ns timestamps,
/// Ethernet link type). A truncated last record is ignored, so a file that
/// tcpdump is still writing can be read at any moment.
pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<Frame>> {
    if bytes.len() < 24 {
        // tcpdump writes the header when it starts; a shorter file is one
        // that is still being created.
        return Ok(Vec::new());
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => bail!("not a classic pcap file (magic {magic:02x?}; pcapng is not supported)"),
    };
    let u32_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = u32_at(bytes, 20) & 0x0fff_ffff;
    if linktype != 1 {
        bail!("pcap link type {linktype}, expected 1 (Ethernet)");
    }
    let mut frames = Vec::new();
    let mut o = 24;
    while o + 16 <= bytes.len() {
        let sec = u32_at(bytes, o) as u64;
        let frac = u32_at(bytes, o + 4) as u64;
        let incl = u32_at(bytes, o + 8) as usize;
        let orig_len = u32_at(bytes, o + 12);
        if o + 16 + incl > bytes.len() {
            break;
        }
        let ts = Duration::from_secs(sec)
            + if nanos {
                Duration::from_nanos(frac)
            } else {
                Duration::from_micros(frac)
            };
        frames.push(Frame {
            ts,
            orig_len,
            data: bytes[o + 16..o + 16 + incl].to_vec(),
        });
        o += 16 + incl;
    }
    Ok(frames)
}

/// Reads and parses a pcap file.
pub fn read_pcap(path: &Path) -> Result<Vec<Frame>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_pcap(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// A running tcpdump in a lab node, writing LLT frames (ethertype 0xCAFE)
/// to a pcap file packet by packet (-U), so the file can be read while the
/// capture runs. Dropping the handle without [`Capture::stop`] leaves the
/// capture running until the lab is dropped.
#[derive(Debug)]
pub struct Capture {
    pub(crate) proc: Arc<ProcInner>,
    pub(crate) path: PathBuf,
    /// tcpdump's stderr, collected by a reader thread (for error messages).
    pub(crate) stderr: Arc<Mutex<String>>,
}

impl Capture {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames written so far.
    pub fn frames(&self) -> Result<Vec<Frame>> {
        read_pcap(&self.path)
    }

    /// Waits until at least `n` frames have been written; returns them all.
    /// Use before [`Capture::stop`] when the test knows what it sent: frames
    /// still queued in the kernel when tcpdump stops are not written.
    pub fn wait_frames(&self, n: usize, deadline: Duration) -> Result<Vec<Frame>> {
        let mut last_err = None;
        let r = wait_until(
            &format!("{n} frames in {}", self.path.display()),
            deadline,
            || match self.frames() {
                Ok(f) if f.len() >= n => Some(f),
                Ok(_) => None,
                Err(e) => {
                    last_err = Some(e);
                    None
                }
            },
        );
        match (r, last_err) {
            (Ok(f), _) => Ok(f),
            (Err(e), Some(pe)) => Err(e.context(format!("last read error: {pe:#}"))),
            (Err(e), None) => {
                let got = self.frames().map(|f| f.len()).unwrap_or(0);
                Err(e.context(format!(
                    "only {got} frames captured; tcpdump stderr: {}",
                    self.stderr_text()
                )))
            }
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// Stops tcpdump cleanly (SIGTERM: it flushes and closes the file) and
    /// returns the pcap path. The file stays until the lab is dropped; copy
    /// it elsewhere to keep it.
    pub fn stop(self) -> Result<PathBuf> {
        self.proc.signal(libc::SIGTERM)?;
        match self.proc.wait_exit(Duration::from_secs(10)) {
            Some(st) if st.success() => Ok(self.path),
            Some(st) => bail!("tcpdump exited with {st}: {}", self.stderr_text()),
            None => {
                self.proc.terminate();
                bail!(
                    "tcpdump did not stop within 10 s of SIGTERM; killed. stderr: {}",
                    self.stderr_text()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_le_microsecond_pcap_and_ignores_truncated_tail() {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&262144u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        let frame: Vec<u8> = (0..60u8).collect();
        for (s, us) in [(5u32, 7u32), (6, 8)] {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&us.to_le_bytes());
            b.extend_from_slice(&60u32.to_le_bytes());
            b.extend_from_slice(&60u32.to_le_bytes());
            b.extend_from_slice(&frame);
        }
        b.truncate(b.len() - 1);
        let f = parse_pcap(&b).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].ts, Duration::from_secs(5) + Duration::from_micros(7));
        assert_eq!(f[0].data, frame);
        assert_eq!(f[0].ethertype(), 0x0c0d);
        assert!(parse_pcap(&b[..10]).unwrap().is_empty());
    }
}
