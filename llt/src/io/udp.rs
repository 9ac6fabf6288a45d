//! `udp` links: LLT frames as UDP datagrams, for links that cross routers
//! or interfaces where raw Ethernet is not an option.
//!
//! Owns: the link's sockets and their buffers, the datagram size limit
//! derived from the interface MTU, and socket-address conversion.
//!
//! Two sockets, because Linux does not deliver a broadcast datagram to a
//! socket bound to a unicast address: the main socket is bound to
//! `local:port` and carries every send and the unicast receives; for IPv4 a
//! receive-only socket bound to `0.0.0.0:port` and to the interface
//! (`SO_BINDTODEVICE`) picks up the broadcasts (the subnet's and
//! 255.255.255.255) arriving on that interface. Unicast to `local:port`
//! still lands on the main socket: the kernel prefers the socket bound to
//! the exact address, which also keeps several links sharing one port on
//! different addresses of one interface (nodes on 127.0.0.x) apart. Our own
//! broadcasts loop back to us; the caller recognises them by their source,
//! [`UdpLink::local_addr`]. Order is kept among broadcasts and among
//! unicasts, not between the two: they queue on different sockets.
//!
//! Never: interprets the payload, retries, or blocks.

use std::ffi::c_int;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::IoError;

/// Payload limit used when the interface holding the local address cannot
/// be found: a 1500-byte MTU minus the IPv4 and UDP headers.
pub const DEFAULT_UDP_MTU: usize = 1472;
/// IPv4 header (no options) plus UDP header.
const V4_OVERHEAD: usize = 20 + 8;
/// IPv6 header plus UDP header.
const V6_OVERHEAD: usize = 40 + 8;
/// Largest UDP payload IPv4 can carry at all (the 16-bit total length):
/// loopback's 64 KiB MTU would otherwise promise more.
const V4_MAX_PAYLOAD: usize = 65535 - V4_OVERHEAD;
/// Largest UDP payload without IPv6 jumbograms (the 16-bit UDP length).
const V6_MAX_PAYLOAD: usize = 65535 - 8;

/// What one receive produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpRecv {
    /// A datagram from `src`; its `len` bytes are at the start of the
    /// caller's buffer. It may be our own broadcast: compare `src` with
    /// [`UdpLink::local_addr`].
    Datagram { src: SocketAddr, len: usize },
    /// A datagram of `len` bytes, larger than the caller's buffer. Dropped
    /// rather than silently truncated; count it as malformed.
    Oversize { src: SocketAddr, len: usize },
}

/// One `udp` link.
#[derive(Debug)]
pub struct UdpLink {
    /// Bound to `local`: all sends, unicast receives.
    sock: UdpSocket,
    /// IPv4 only, when the interface is known: broadcast receives.
    bcast: Option<UdpSocket>,
    local: SocketAddr,
    ifname: Option<String>,
    broadcast: Option<SocketAddr>,
    mtu: usize,
    /// Which socket `try_recv` reads first; alternates so a unicast flood
    /// cannot starve the broadcast heartbeats, nor the other way round.
    bcast_first: AtomicBool,
}

impl UdpLink {
    /// Opens the link on `local:port` (`port` 0 lets the kernel choose; see
    /// [`UdpLink::local_addr`]) with `SO_REUSEADDR`, `SO_BROADCAST` and
    /// buffers raised to [`super::SOCKET_BUFFER_BYTES`], plus the broadcast
    /// receive socket described in the module header. The interface holding
    /// `local` is looked up in the calling thread's network namespace; it
    /// gives the MTU and, for an IPv6 link-local address, the scope.
    ///
    /// Needs a Tokio runtime with I/O enabled ([`IoError::NoRuntime`]
    /// without a runtime).
    pub fn open(local: IpAddr, port: u16) -> Result<UdpLink, IoError> {
        super::require_runtime()?;

        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.ips.iter().any(|n| n.ip() == local));
        let ifname = iface.as_ref().map(|i| i.name.clone());
        let bind_addr = match local {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
            IpAddr::V6(ip) => {
                // fe80::/10 addresses mean nothing without their interface.
                let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
                let scope = match (&iface, link_local) {
                    (Some(i), true) => i.index,
                    _ => 0,
                };
                SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))
            }
        };

        let family = match local {
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        };
        let fd = super::socket(family, libc::SOCK_DGRAM, 0, "socket(udp)")?;
        reuse_and_broadcast(&fd)?;
        super::raise_buffers(fd.as_fd())?;
        bind(&fd, &bind_addr)?;
        let sock = register(fd)?;
        let local = sock.local_addr().map_err(|source| IoError::Os {
            op: "getsockname",
            source,
        })?;

        let (overhead, max) = if local.is_ipv4() {
            (V4_OVERHEAD, V4_MAX_PAYLOAD)
        } else {
            (V6_OVERHEAD, V6_MAX_PAYLOAD)
        };
        let mtu = ifname
            .as_deref()
            .and_then(|name| super::iface_mtu(sock.as_raw_fd(), name).ok())
            .map(|m| m.saturating_sub(overhead).min(max))
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_UDP_MTU);

        let mut bcast = None;
        let mut broadcast = None;
        if let (IpAddr::V4(ip), Some(iface)) = (local.ip(), &iface) {
            let fd = super::socket(libc::AF_INET, libc::SOCK_DGRAM, 0, "socket(udp broadcast)")?;
            reuse_and_broadcast(&fd)?;
            super::raise_buffers(fd.as_fd())?;
            bind_to_device(&fd, &iface.name)?;
            bind(
                &fd,
                &SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port())),
            )?;
            bcast = Some(register(fd)?);
            // The subnet's broadcast address, if the subnet has one (not
            // for /31 and /32).
            broadcast = iface
                .ips
                .iter()
                .find(|n| n.ip() == IpAddr::V4(ip) && n.prefix() < 31)
                .map(|n| SocketAddr::new(n.broadcast(), local.port()));
        }

        Ok(UdpLink {
            sock,
            bcast,
            local,
            ifname,
            broadcast,
            mtu,
            bcast_first: AtomicBool::new(false),
        })
    }

    /// The address the link is bound to: the source of every datagram we
    /// send, and so how our own looped-back broadcasts are recognised.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The subnet broadcast address (same port) of the interface holding
    /// the local address, if IPv4 and the subnet has one.
    pub fn broadcast_addr(&self) -> Option<SocketAddr> {
        self.broadcast
    }

    /// The interface holding the local address, if it was found.
    pub fn ifname(&self) -> Option<&str> {
        self.ifname.as_deref()
    }

    /// Largest payload one datagram carries without IP fragmentation: the
    /// interface MTU minus 28 bytes of IPv4 and UDP headers (48 for IPv6),
    /// at most what a UDP datagram can hold, or [`DEFAULT_UDP_MTU`] if the
    /// interface was not found. Read once, at open.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Kernel receive and send buffer sizes granted to the main socket.
    pub fn buffer_sizes(&self) -> io::Result<(usize, usize)> {
        super::buffer_sizes(self.sock.as_fd())
    }

    /// Sends `payload` to `dst` with one `sendto`, without blocking. A full
    /// buffer is [`IoError::WouldBlock`], a drop the device reports
    /// [`IoError::Dropped`], no route (the interface is down)
    /// [`IoError::NetDown`]; in each case the datagram is gone, and the
    /// link stays usable.
    pub fn try_send(&self, dst: SocketAddr, payload: &[u8]) -> Result<(), IoError> {
        if payload.len() > self.mtu {
            return Err(IoError::TooBig {
                len: payload.len(),
                max: self.mtu,
            });
        }
        let (addr, addr_len) = to_sockaddr(&dst);
        // Straight to the socket, not through the reactor: a fresh socket is
        // writable, but Tokio would not know it until its first poll.
        // SAFETY: `payload` and `addr` are live for the call, the lengths
        // are theirs, and the kernel only reads them.
        let n = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                payload.as_ptr().cast(),
                payload.len(),
                libc::MSG_DONTWAIT,
                (&addr as *const libc::sockaddr_storage).cast(),
                addr_len,
            )
        };
        if n < 0 {
            return Err(IoError::from_io(
                "sendto(udp)",
                io::Error::last_os_error(),
                self.ifname.as_deref().unwrap_or(""),
            ));
        }
        Ok(())
    }

    /// Receives one datagram if one is queued on either socket, without
    /// blocking: `Ok(None)` when both are empty. Use it after
    /// [`UdpLink::readable`]; as with [`super::EtherLink::try_recv`], the
    /// caller may stop reading at any point.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<UdpRecv>, IoError> {
        let bcast_first = self.bcast_first.fetch_xor(true, Ordering::Relaxed);
        let order = match (&self.bcast, bcast_first) {
            (Some(b), true) => [Some(b), Some(&self.sock)],
            (Some(b), false) => [Some(&self.sock), Some(b)],
            (None, _) => [Some(&self.sock), None],
        };
        for sock in order.into_iter().flatten() {
            match sock.try_io(Interest::READABLE, || recv_from(sock.as_raw_fd(), buf)) {
                Ok(r) => return Ok(Some(r)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    return Err(IoError::from_io(
                        "recvfrom(udp)",
                        e,
                        self.ifname.as_deref().unwrap_or(""),
                    ))
                }
            }
        }
        Ok(None)
    }

    /// Waits until a receive may succeed on either socket. Cancel-safe.
    pub async fn readable(&self) -> io::Result<()> {
        match &self.bcast {
            None => self.sock.readable().await,
            Some(b) => tokio::select! {
                r = self.sock.readable() => r,
                r = b.readable() => r,
            },
        }
    }
}

/// `SO_REUSEADDR` (so the broadcast socket can share the port with the
/// unicast one, and a restarted daemon can rebind at once) and
/// `SO_BROADCAST` (so broadcast destinations are allowed).
fn reuse_and_broadcast(fd: &OwnedFd) -> Result<(), IoError> {
    super::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(
        |source| IoError::Os {
            op: "setsockopt(SO_REUSEADDR)",
            source,
        },
    )?;
    super::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_BROADCAST, 1).map_err(|source| {
        IoError::Os {
            op: "setsockopt(SO_BROADCAST)",
            source,
        }
    })
}

/// `SO_BINDTODEVICE`: receive only what arrives on interface `name`.
fn bind_to_device(fd: &OwnedFd, name: &str) -> Result<(), IoError> {
    // SAFETY: the pointer and length describe the bytes of `name` (the
    // kernel copies at most IFNAMSIZ-1 of them and needs no NUL); it only
    // reads them.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(IoError::Os {
            op: "setsockopt(SO_BINDTODEVICE)",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn bind(fd: &OwnedFd, addr: &SocketAddr) -> Result<(), IoError> {
    let (sa, len) = to_sockaddr(addr);
    // SAFETY: the pointer and length describe `sa`, a live sockaddr_storage
    // holding a sockaddr_in or sockaddr_in6 of that length; bind only reads.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc < 0 {
        return Err(IoError::Os {
            op: "bind(udp)",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Hands a bound, non-blocking socket to Tokio.
fn register(fd: OwnedFd) -> Result<UdpSocket, IoError> {
    UdpSocket::from_std(std::net::UdpSocket::from(fd)).map_err(|source| IoError::Os {
        op: "register with reactor",
        source,
    })
}

/// One `recvfrom` into `buf`, the datagram's full length reported thanks to
/// `MSG_TRUNC`.
fn recv_from(fd: c_int, buf: &mut [u8]) -> io::Result<UdpRecv> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut from: libc::sockaddr_storage = unsafe { zeroed() };
    let mut from_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` and `from` are live and writable for the lengths given;
    // the kernel writes at most those.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            (&mut from as *mut libc::sockaddr_storage).cast(),
            &mut from_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = n as usize;
    let src =
        from_sockaddr(&from).ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
    if len > buf.len() {
        return Ok(UdpRecv::Oversize { src, len });
    }
    Ok(UdpRecv::Datagram { src, len })
}

/// A `SocketAddr` as the kernel's `sockaddr_in`/`sockaddr_in6`.
fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for every
            // sockaddr type, sockaddr_in included.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The kernel's `sockaddr_in`/`sockaddr_in6` as a `SocketAddr`; `None` for
/// other families.
fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in [
            "192.0.2.7:50000".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:9".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 0, 3)),
        ] {
            let (ss, len) = to_sockaddr(&a);
            assert!(len as usize <= size_of::<libc::sockaddr_storage>());
            assert_eq!(from_sockaddr(&ss), Some(a));
        }
    }

    #[test]
    fn open_outside_runtime_is_an_error() {
        assert!(matches!(
            UdpLink::open(Ipv4Addr::LOCALHOST.into(), 0),
            Err(IoError::NoRuntime)
        ));
    }
}
