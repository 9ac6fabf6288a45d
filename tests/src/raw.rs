//! Sockets inside a lab namespace, made from the test process itself.
//!
//! A socket belongs to the network namespace it was created in, for its
//! whole life, whichever thread later uses it. So we create sockets on a
//! short-lived thread that has entered the namespace (setns(2) with
//! CLONE_NEWNET is per-thread and allowed in a multi-threaded process), and
//! hand them back to the caller. No helper programs needed.

use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::cmd::poll_readable;

/// LLT's ethertype.
pub const ETH_P_LLT: u16 = 0xCAFE;
/// IEEE "local experimental" ethertype: what the harness's own probes use,
/// so LLT daemons running in the lab never see them.
pub const ETH_P_PROBE: u16 = 0x88B5;
/// Every ethertype (for "is the wire silent?" checks).
pub const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Runs `f` on a fresh thread that has joined the named network namespace
/// (`ip netns` name). Whatever `f` creates (sockets) stays in that namespace.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> io::Result<T> + Send) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let nsfile = File::open(&path).with_context(|| format!("cannot open {path}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: valid fd; CLONE_NEWNET affects only this thread, which
            // ends when the scope does.
            if unsafe { libc::setns(nsfile.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(anyhow!("setns({path}): {}", io::Error::last_os_error()));
            }
            f().with_context(|| format!("inside namespace {ns}"))
        })
        .join()
        .map_err(|_| anyhow!("thread working in namespace {ns} panicked"))?
    })
}

/// A raw AF_PACKET socket bound to one interface and one ethertype, like the
/// LLT link layer uses; for injecting and observing frames in tests.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
    mac: [u8; 6],
    ethertype: u16,
}

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxFrame {
    /// Kernel packet type: PACKET_HOST (0), PACKET_BROADCAST (1),
    /// PACKET_MULTICAST (2), PACKET_OTHERHOST (3: unicast for another MAC,
    /// which veth delivers when the bridge floods).
    pub pkttype: u8,
    /// The whole frame, starting with the destination MAC.
    pub data: Vec<u8>,
}

impl RxFrame {
    pub fn dst(&self) -> [u8; 6] {
        self.data[0..6].try_into().unwrap_or_default()
    }
    pub fn src(&self) -> [u8; 6] {
        self.data[6..12].try_into().unwrap_or_default()
    }
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.data[12], self.data[13]])
    }
    /// Bytes after the 14-byte header (including any padding to 60 bytes).
    pub fn payload(&self) -> &[u8] {
        &self.data[14..]
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl AsRawFd for RawSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl RawSocket {
    /// Must run inside the target namespace (see [`in_netns`]).
    pub(crate) fn open_here(iface: &str, ethertype: u16) -> io::Result<RawSocket> {
        let name = std::ffi::CString::new(iface)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        let proto = ethertype.to_be();
        // SAFETY: plain socket(2).
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto as libc::c_int,
            )
        })?;
        // SAFETY: fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_ll is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        // SAFETY: pointer/length describe `sll`.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        // The default ~208 KiB receive buffer overflows on bursts of ~1000
        // frames (measured in the lab README); we run as root, so force 4 MiB.
        let size: libc::c_int = 4 << 20;
        // SAFETY: pointer/length describe `size`.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const libc::c_int as *const libc::c_void,
                mem::size_of::<libc::c_int>() as u32,
            )
        })?;
        let mac = read_mac(iface)?;
        Ok(RawSocket {
            fd,
            ifindex,
            mac,
            ethertype,
        })
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Sends dst | our MAC | our ethertype | payload, zero-padded to the
    /// 60-byte Ethernet minimum. (A socket opened for [`ETH_P_ALL`] sends
    /// [`ETH_P_PROBE`] frames.)
    pub fn send_to(&self, dst: [u8; 6], payload: &[u8]) -> io::Result<()> {
        let mut f = Vec::with_capacity(60.max(14 + payload.len()));
        f.extend_from_slice(&dst);
        f.extend_from_slice(&self.mac);
        let et = if self.ethertype == ETH_P_ALL {
            ETH_P_PROBE
        } else {
            self.ethertype
        };
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(payload);
        f.resize(f.len().max(60), 0);
        self.send_frame(&f)
    }

    /// Sends a complete frame as given (any header, any ethertype).
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: pointer/length describe `frame`.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Next frame that arrived from the wire (our own and other local
    /// sockets' outgoing frames are skipped), or None after `timeout`.
    pub fn recv(&self, timeout: Duration) -> io::Result<Option<RxFrame>> {
        let end = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if !poll_readable(self.fd.as_raw_fd(), left)? {
                return Ok(None);
            }
            // SAFETY: zeroed sockaddr_ll is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buffers and lengths are valid; MSG_DONTWAIT because poll said ready.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) {
                    continue;
                }
                return Err(e);
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(RxFrame {
                pkttype: sll.sll_pkttype,
                data: buf[..n as usize].to_vec(),
            }));
        }
    }

    /// Waits for a frame whose payload starts with `prefix`, skipping others.
    pub fn recv_matching(&self, prefix: &[u8], timeout: Duration) -> io::Result<Option<RxFrame>> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                None => return Ok(None),
                Some(f) if f.data.len() >= 14 && f.payload().starts_with(prefix) => {
                    return Ok(Some(f))
                }
                Some(_) if left.is_zero() => return Ok(None),
                Some(_) => {}
            }
        }
    }

    /// Discards everything already queued.
    pub fn drain(&self) -> io::Result<usize> {
        let mut n = 0;
        while self.recv(Duration::ZERO)?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

/// MAC of an interface in the current (thread's) namespace, via SIOCGIFHWADDR.
fn read_mac(iface: &str) -> io::Result<[u8; 6]> {
    // SAFETY: plain socket(2).
    let s = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fresh fd.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: zeroed ifreq is valid.
    let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
    for (d, b) in ifr
        .ifr_name
        .iter_mut()
        .zip(iface.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = b as libc::c_char;
    }
    // SAFETY: ifreq is the documented argument of SIOCGIFHWADDR.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) })?;
    // SAFETY: the kernel filled the hwaddr member of the union.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}
