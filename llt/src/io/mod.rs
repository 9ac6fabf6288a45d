//! Link socket I/O: the sockets LLT links send and receive frames on.
//!
//! Owns: opening the per-link sockets ([`ether::EtherLink`], a raw `AF_PACKET`
//! socket bound to the LLT ethertype; [`udp::UdpLink`], a UDP socket for
//! links that must cross routers), sizing their kernel buffers, reading the
//! interface facts a link needs (MAC, MTU, index), and turning the kernel's
//! errno values into an [`IoError`] a caller can count.
//!
//! Never: interprets the LLT payload, keeps protocol state, retries, or
//! decides anything (which peer is up, whether a drop matters). It moves
//! bytes and reports what the kernel said; the sans-IO [`crate::core`] and
//! the driver that feeds it do the rest.
//!
//! Namespace note: everything here asks the kernel through a socket created
//! by the calling thread (ioctl, netlink via `getifaddrs`), never through
//! `/sys/class/net`, because `/sys` shows the network namespace it was
//! mounted in, not the one the thread has entered with `setns`.

pub mod ether;
pub mod udp;

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use ether::{EtherLink, EtherRecv, BROADCAST_MAC};
pub use udp::{UdpLink, UdpRecv};

/// Kernel socket buffer size asked for, each way. The default (~208 KiB)
/// overflows on bursts of about a thousand small frames; 8 MiB absorbs a
/// burst of several thousand full-size frames while the event loop is busy.
pub const SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// What went wrong on a link socket. Every variant is something the driver
/// may count and carry on from; none of them is a reason to panic.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The link cannot carry frames now: the interface is administratively
    /// down (`ENETDOWN`), or, for UDP, there is no route to the peer
    /// (`ENETUNREACH`, `EHOSTUNREACH`), as happens when the interface holding
    /// the route goes down. A physically cut link is silent instead: the
    /// kernel accepts the frame and nobody hears it.
    #[error("network is down")]
    NetDown,
    /// The socket's send buffer is full (`EAGAIN`). The frame was dropped;
    /// LLT's retransmission covers it.
    #[error("socket buffer full, frame dropped")]
    WouldBlock,
    /// The device or its queue dropped the frame and said so (`ENOBUFS`): a
    /// full qdisc, or a veth whose peer just went down (until the kernel
    /// notices the lost carrier, after which a cut link is silent). Count
    /// it as a drop, like [`IoError::WouldBlock`].
    #[error("frame dropped by the device")]
    Dropped,
    /// The interface does not exist (at open) or has disappeared
    /// (`ENODEV`/`ENXIO` on send), or the name is not a valid interface name.
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    /// The interface exists but does not carry Ethernet frames (a tunnel, a
    /// WireGuard device...): an `ether` link cannot run over it.
    #[error("interface {0} is not an Ethernet interface")]
    NotEthernet(String),
    /// The payload does not fit in one frame of this link.
    #[error("payload of {len} bytes exceeds the link's {max}-byte limit")]
    TooBig { len: usize, max: usize },
    /// `open` was called outside a Tokio runtime, so the socket cannot be
    /// registered with a reactor.
    #[error("link sockets must be opened inside a Tokio runtime")]
    NoRuntime,
    /// Any other failure of a system call.
    #[error("{op}: {source}")]
    Os {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl IoError {
    /// Classifies an errno returned by a send or receive call. `ifname` names
    /// the interface in [`IoError::NoSuchInterface`].
    pub(crate) fn from_io(op: &'static str, err: io::Error, ifname: &str) -> IoError {
        match err.raw_os_error() {
            Some(libc::EAGAIN) => IoError::WouldBlock,
            Some(libc::ENOBUFS) => IoError::Dropped,
            Some(libc::ENETDOWN) | Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) => {
                IoError::NetDown
            }
            Some(libc::ENODEV) | Some(libc::ENXIO) => IoError::NoSuchInterface(ifname.to_owned()),
            _ if err.kind() == io::ErrorKind::WouldBlock => IoError::WouldBlock,
            _ => IoError::Os { op, source: err },
        }
    }
}

/// Either kind of link socket, for a driver that holds its links in one list.
/// Sending and receiving stay on the concrete types, whose addresses differ
/// (a MAC for `ether`, a socket address for `udp`).
#[derive(Debug)]
pub enum LinkSocket {
    Ether(EtherLink),
    Udp(UdpLink),
}

impl LinkSocket {
    /// Largest payload one frame of this link carries.
    pub fn mtu(&self) -> usize {
        match self {
            LinkSocket::Ether(l) => l.mtu(),
            LinkSocket::Udp(l) => l.mtu(),
        }
    }

    /// Waits until a receive may succeed; see [`EtherLink::readable`].
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            LinkSocket::Ether(l) => l.readable().await,
            LinkSocket::Udp(l) => l.readable().await,
        }
    }
}

/// The MAC address of interface `name` in the calling thread's network
/// namespace, or `None` if there is no such interface or it has no
/// Ethernet-style hardware address.
pub fn iface_mac(name: &str) -> Option<[u8; 6]> {
    let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0, "socket(AF_INET)").ok()?;
    match iface_hwaddr(fd.as_raw_fd(), name) {
        Ok((libc::ARPHRD_ETHER, mac)) | Ok((libc::ARPHRD_LOOPBACK, mac)) => Some(mac),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Small syscall helpers shared by ether.rs and udp.rs.

/// `socket(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC` added, as an owned fd.
pub(crate) fn socket(
    family: c_int,
    ty: c_int,
    protocol: c_int,
    op: &'static str,
) -> Result<OwnedFd, IoError> {
    // SAFETY: socket() takes no pointers; it returns a new fd or -1.
    let fd = unsafe {
        libc::socket(
            family,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(IoError::Os {
            op,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: fd was just returned by socket(), is open, and nothing else
    // owns it; the OwnedFd closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(2)` for an integer-valued option.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, a live c_int, and the
    // kernel only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Raises both socket buffers to [`SOCKET_BUFFER_BYTES`]. The `FORCE`
/// variants ignore `net.core.{r,w}mem_max` but need `CAP_NET_ADMIN`; without
/// it the plain options still get as much as the sysctl allows.
pub(crate) fn raise_buffers(fd: BorrowedFd<'_>) -> Result<(), IoError> {
    let want = SOCKET_BUFFER_BYTES as c_int;
    for (force, plain, op) in [
        (
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            "setsockopt(SO_RCVBUF)",
        ),
        (
            libc::SO_SNDBUFFORCE,
            libc::SO_SNDBUF,
            "setsockopt(SO_SNDBUF)",
        ),
    ] {
        if setsockopt_int(fd, libc::SOL_SOCKET, force, want).is_err() {
            setsockopt_int(fd, libc::SOL_SOCKET, plain, want)
                .map_err(|source| IoError::Os { op, source })?;
        }
    }
    Ok(())
}

/// An `ifreq` naming `name`, or `None` if the name cannot be an interface
/// name (empty, too long, or containing a NUL).
fn ifreq_for(name: &str) -> Option<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return None;
    }
    // SAFETY: ifreq is plain old data (a char array and a union of integers
    // and sockaddrs); all-zero is a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Some(req)
}

/// Runs one `SIOCGIF*` ioctl for interface `name` on `fd` (any socket: the
/// kernel answers from the socket's network namespace).
fn iface_ioctl(fd: c_int, name: &str, request: libc::c_ulong) -> Result<libc::ifreq, IoError> {
    let mut req = ifreq_for(name).ok_or_else(|| IoError::NoSuchInterface(name.to_owned()))?;
    // SAFETY: `req` is a live, initialised ifreq with a NUL-terminated name;
    // the SIOCGIF* requests used here read the name and write one union field
    // of that same struct, nothing beyond it.
    let rc = unsafe { libc::ioctl(fd, request as _, &mut req as *mut libc::ifreq) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENODEV) => IoError::NoSuchInterface(name.to_owned()),
            _ => IoError::Os {
                op: "ioctl(SIOCGIF*)",
                source: err,
            },
        });
    }
    Ok(req)
}

/// Interface index of `name`.
pub(crate) fn iface_index(fd: c_int, name: &str) -> Result<c_int, IoError> {
    let req = iface_ioctl(fd, name, libc::SIOCGIFINDEX)?;
    // SAFETY: SIOCGIFINDEX succeeded, so the kernel wrote ifru_ifindex.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// MTU of `name`.
pub(crate) fn iface_mtu(fd: c_int, name: &str) -> Result<usize, IoError> {
    let req = iface_ioctl(fd, name, libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote ifru_mtu.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(0))
}

/// Whether interface `name` is administratively up (`IFF_UP`).
pub(crate) fn iface_is_up(fd: c_int, name: &str) -> Result<bool, IoError> {
    let req = iface_ioctl(fd, name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(c_int::from(flags) & libc::IFF_UP != 0)
}

/// Hardware type (`ARPHRD_*`) and the first six bytes of the hardware
/// address of `name`.
pub(crate) fn iface_hwaddr(fd: c_int, name: &str) -> Result<(u16, [u8; 6]), IoError> {
    let req = iface_ioctl(fd, name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote ifru_hwaddr.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok((hw.sa_family, mac))
}

/// Fails with [`IoError::NoRuntime`] unless called inside a Tokio runtime:
/// registering a socket with the reactor would panic otherwise.
pub(crate) fn require_runtime() -> Result<(), IoError> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| IoError::NoRuntime)
}

/// Receive and send buffer sizes the kernel granted `fd`.
pub(crate) fn buffer_sizes(fd: BorrowedFd<'_>) -> io::Result<(usize, usize)> {
    let get = |name: c_int| -> io::Result<usize> {
        let mut value: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: the pointers describe `value` and `len`, live locals the
        // kernel writes at most size_of::<c_int>() bytes into.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&mut value as *mut c_int).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(value).unwrap_or(0))
    };
    Ok((get(libc::SO_RCVBUF)?, get(libc::SO_SNDBUF)?))
}
