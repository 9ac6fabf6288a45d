//! `ether` links: LLT frames straight on Ethernet, ethertype
//! [`crate::ETHERTYPE_LLT`], through one raw `AF_PACKET` socket per link.
//!
//! Owns: the socket (bound to one interface and to the LLT ethertype, so the
//! kernel filters everything else out), its buffers, the 14-byte Ethernet
//! header (written on send, stripped on receive) and the drop of frames the
//! kernel hands over that were not addressed to this host.
//!
//! Never: looks past the Ethernet header, decides anything, or blocks. A
//! full buffer is reported as [`IoError::WouldBlock`] and the frame is gone;
//! LLT retransmits. (The one resend it does is of a frame the kernel refused
//! with a stale error: see [`EtherLink::try_send`].) It does not use pnet's
//! datalink channel, which blocks, sees every ethertype and its own frames,
//! turns on promiscuous mode and truncates frames at 4 KiB.

use std::ffi::{c_int, c_void};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::IoError;

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Length of the Ethernet header LLT frames carry (no VLAN tag: a tagged
/// link is configured on the VLAN interface, whose kernel strips the tag).
pub const ETH_HEADER_LEN: usize = 14;

/// Most frames one batched call moves ([`EtherLink::try_recv_batch`],
/// [`EtherLink::try_send_batch`]); the per-call scratch lives on the stack.
pub const MAX_BATCH: usize = 64;

/// What one receive produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherRecv {
    /// An LLT frame for this host (unicast to our MAC, broadcast or
    /// multicast). `len` payload bytes, the Ethernet header removed, were
    /// written at the start of the caller's buffer. A NIC pads frames to the
    /// 60-byte Ethernet minimum, so `len` may exceed what the sender wrote:
    /// the LLT header's own length is authoritative.
    Frame {
        src: [u8; 6],
        dst: [u8; 6],
        len: usize,
    },
    /// A frame addressed to some other host (the kernel marks it
    /// `PACKET_OTHERHOST`: veth and bridges flood unicast to unlearned MACs,
    /// and promiscuous mode delivers everything), or one of our own outgoing
    /// frames. Dropped; count it as `dropped_not_for_us`.
    NotForUs,
    /// A frame shorter than an Ethernet header. Dropped; count it as
    /// malformed.
    Runt,
    /// A frame whose payload (`len` bytes) is larger than the caller's
    /// buffer. Dropped rather than silently truncated; count it as malformed.
    Oversize { len: usize },
}

/// One `ether` link: a raw socket on one interface that sends and receives
/// LLT frames only.
#[derive(Debug)]
pub struct EtherLink {
    fd: AsyncFd<OwnedFd>,
    ifindex: c_int,
    ifname: String,
    mac: [u8; 6],
    mtu: usize,
}

impl EtherLink {
    /// Opens the link on interface `ifname` (in the calling thread's network
    /// namespace): `socket(AF_PACKET, SOCK_RAW, 0)`, buffers raised to
    /// [`super::SOCKET_BUFFER_BYTES`], then bound to the interface and the LLT
    /// ethertype, and registered with the current Tokio reactor.
    ///
    /// The socket is created with protocol 0 so it receives nothing until
    /// `bind` narrows it to LLT frames on this interface; creating it with
    /// the ethertype would let frames from every interface queue up in
    /// between.
    ///
    /// The interface may be down: the link starts carrying frames when it
    /// comes up. The MAC and MTU are read once, here. Needs `CAP_NET_RAW`, and a Tokio
    /// runtime with I/O enabled ([`IoError::NoRuntime`] without a runtime;
    /// Tokio panics if the runtime has I/O disabled).
    pub fn open(ifname: &str) -> Result<EtherLink, IoError> {
        super::require_runtime()?;
        let fd = super::socket(libc::AF_PACKET, libc::SOCK_RAW, 0, "socket(AF_PACKET)")?;
        let raw = fd.as_raw_fd();

        let ifindex = super::iface_index(raw, ifname)?;
        let (hwtype, mac) = super::iface_hwaddr(raw, ifname)?;
        if hwtype != libc::ARPHRD_ETHER && hwtype != libc::ARPHRD_LOOPBACK {
            return Err(IoError::NotEthernet(ifname.to_owned()));
        }
        let mtu = super::iface_mtu(raw, ifname)?;

        super::raise_buffers(fd.as_fd())?;

        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = crate::ETHERTYPE_LLT.to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: the pointer and length describe `addr`, a live
        // sockaddr_ll; bind only reads it.
        let rc = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(IoError::from_io(
                "bind(AF_PACKET)",
                io::Error::last_os_error(),
                ifname,
            ));
        }

        // Read interest only: sends go straight to the non-blocking socket
        // and report a full buffer as a drop, so nothing ever waits to write.
        // SAFETY: `fd` is an open socket owned by the AsyncFd from here on;
        // it is neither closed nor replaced while registered (it is only
        // closed when the AsyncFd, and so the EtherLink, is dropped).
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| {
                IoError::Os {
                    op: "register with reactor",
                    source: e.into_parts().1,
                }
            })?;

        Ok(EtherLink {
            fd,
            ifindex,
            ifname: ifname.to_owned(),
            mac,
            mtu,
        })
    }

    /// This interface's MAC address: the source of every frame we send.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Largest LLT payload (the bytes after the 14-byte Ethernet header) one
    /// frame carries: the interface MTU, as read at open.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The interface name the link was opened on.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Kernel receive and send buffer sizes actually granted, in bytes (the
    /// kernel reports twice what was asked: it counts its bookkeeping).
    pub fn buffer_sizes(&self) -> io::Result<(usize, usize)> {
        super::buffer_sizes(self.fd.get_ref().as_fd())
    }

    /// Sends one frame to `dst`: the Ethernet header (`dst`, our MAC, the LLT
    /// ethertype) and `payload`, gathered by one `sendmsg` from two buffers,
    /// so nothing is copied or allocated. Never blocks: a full buffer is
    /// [`IoError::WouldBlock`], a drop the device reports
    /// [`IoError::Dropped`], an administratively down interface
    /// [`IoError::NetDown`]; in each case the frame is gone. Every error is
    /// about this frame only: the link stays usable.
    ///
    /// When the interface goes down, the kernel records it on the socket and
    /// reports it to the next call even if the interface is up again by
    /// then; a send refused that way is made once more, so a frame sent on
    /// an up interface is not refused for a past down.
    ///
    /// `Ok` means the kernel took the frame, not that it left: a cut cable
    /// is silent, and so are the first moments after an interface comes up,
    /// before the kernel has attached its queue.
    pub fn try_send(&self, dst: [u8; 6], payload: &[u8]) -> Result<(), IoError> {
        if payload.len() > self.mtu {
            return Err(IoError::TooBig {
                len: payload.len(),
                max: self.mtu,
            });
        }
        let header = eth_header(dst, self.mac);
        let iov = [iov_const(&header), iov_const(payload)];
        // SAFETY: msghdr is plain old data; all-zero is valid (no name, no
        // control data).
        let mut msg: libc::msghdr = unsafe { zeroed() };
        // No destination address: the socket is bound, and the kernel sends
        // on the bound interface with the bound protocol.
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len() as _;
        let send = || {
            // SAFETY: `msg` points at `iov`, whose two entries describe
            // `header` and `payload`; all three outlive the call and the
            // kernel only reads them (the *mut in iovec is the C API's, not
            // a write).
            let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        match send() {
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) && self.stale_net_down() => send(),
            r => r,
        }
        .map_err(|e| IoError::from_io("sendmsg(AF_PACKET)", e, &self.ifname))
    }

    /// After `ENETDOWN` on a send: true if the interface is up again, so the
    /// error was the kernel's delayed report of an earlier down (it records
    /// the down on the socket and hands it to the next call, even once the
    /// interface is back up) and the send is worth one more try.
    fn stale_net_down(&self) -> bool {
        super::iface_is_up(self.fd.as_raw_fd(), &self.ifname).unwrap_or(false)
    }

    /// Receives one frame if one is queued, without blocking: `Ok(None)`
    /// when there is none. The payload goes to the start of `buf`; frames
    /// not for this host, runts and frames larger than `buf` come back as
    /// the matching [`EtherRecv`] variant so the caller can count them.
    ///
    /// Use it after [`EtherLink::readable`]: the reactor's readiness is
    /// cleared when this call finds the queue empty, so the caller may stop
    /// reading at any point and the next `readable` still wakes it for
    /// frames left behind.
    ///
    /// An error is about this call only; keep reading. In particular, when
    /// the interface goes administratively down the kernel stops delivering
    /// to the socket and records the event; the next receive (or send)
    /// returns it once as [`IoError::NetDown`], possibly after the interface
    /// is up again, and delivery resumes when it is.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<EtherRecv>, IoError> {
        match self
            .fd
            .try_io(Interest::READABLE, |fd| recv_one(fd.as_raw_fd(), buf))
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(IoError::from_io("recvmsg(AF_PACKET)", e, &self.ifname)),
        }
    }

    /// Waits until a receive may succeed. Cancel-safe, so it can sit in a
    /// `select!` with timers and other links. Readiness stays set until a
    /// [`EtherLink::try_recv`] (or batch) finds the queue empty.
    pub async fn readable(&self) -> io::Result<()> {
        // Dropping the guard without clear_ready keeps the readiness: only a
        // receive that hits EAGAIN clears it (inside try_io).
        let _guard = self.fd.readable().await?;
        Ok(())
    }

    /// Receives up to [`RecvBatch::capacity`] frames with one `recvmmsg`.
    /// Returns how many results are in `batch` (0 if nothing was queued);
    /// each result is what [`EtherLink::try_recv`] would have returned.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, IoError> {
        batch.count = 0;
        let slots = batch.results.len();
        let slot_len = batch.slot_len;

        let mut headers = [[0u8; ETH_HEADER_LEN]; MAX_BATCH];
        // SAFETY (these three): plain old data; all-zero is valid.
        let mut froms: [libc::sockaddr_ll; MAX_BATCH] = unsafe { zeroed() };
        let mut iovs: [[libc::iovec; 2]; MAX_BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };

        let data_ptr = batch.data.as_mut_ptr();
        for i in 0..slots {
            iovs[i][0] = libc::iovec {
                iov_base: headers[i].as_mut_ptr().cast(),
                iov_len: ETH_HEADER_LEN,
            };
            // SAFETY: data holds `slots * slot_len` bytes, so slot i starts
            // in bounds (or one past the end when slot_len is 0).
            let slot = unsafe { data_ptr.add(i * slot_len) };
            iovs[i][1] = libc::iovec {
                iov_base: slot.cast(),
                iov_len: slot_len,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&mut froms[i] as *mut libc::sockaddr_ll).cast::<c_void>();
            hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            hdr.msg_iov = iovs[i].as_mut_ptr();
            hdr.msg_iovlen = 2;
        }

        let res = self.fd.try_io(Interest::READABLE, |fd| {
            // SAFETY: the first `slots` entries of `msgs` point at live
            // iovecs, sockaddr_ll and header arrays on this stack frame and
            // at disjoint slots of `batch.data`, all valid for writing of
            // the lengths given; no timeout pointer.
            let n = unsafe {
                libc::recvmmsg(
                    fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    slots as libc::c_uint,
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        let n = match res {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(IoError::from_io("recvmmsg(AF_PACKET)", e, &self.ifname)),
        };
        for i in 0..n {
            batch.results[i] = classify(
                msgs[i].msg_len as usize,
                &headers[i],
                froms[i].sll_pkttype,
                slot_len,
            );
        }
        batch.count = n;
        Ok(n)
    }

    /// Sends `frames` (destination, payload) with as few `sendmmsg` calls as
    /// possible (one per [`MAX_BATCH`] frames). Returns how many were handed
    /// to the kernel, in order; if that is fewer than `frames.len()`, the
    /// kernel refused the next one (a full buffer, a down link) and the rest
    /// were not sent: count them as drops, or send the next one alone to
    /// learn the error. Fails without sending anything if a payload is too
    /// big, or if the very first frame is refused.
    pub fn try_send_batch(&self, frames: &[([u8; 6], &[u8])]) -> Result<usize, IoError> {
        if let Some((_, p)) = frames.iter().find(|(_, p)| p.len() > self.mtu) {
            return Err(IoError::TooBig {
                len: p.len(),
                max: self.mtu,
            });
        }
        let mut sent = 0;
        let mut retried = false;
        while sent < frames.len() {
            let chunk = &frames[sent..frames.len().min(sent + MAX_BATCH)];
            match self.sendmmsg(chunk) {
                Ok(n) => {
                    sent += n;
                    if n < chunk.len() {
                        break;
                    }
                }
                // Some frames went: report those; the next call meets the
                // error again if it lasts.
                Err(_) if sent > 0 => break,
                Err(e)
                    if e.raw_os_error() == Some(libc::ENETDOWN)
                        && !retried
                        && self.stale_net_down() =>
                {
                    retried = true;
                }
                Err(e) => return Err(IoError::from_io("sendmmsg(AF_PACKET)", e, &self.ifname)),
            }
        }
        Ok(sent)
    }

    /// One `sendmmsg` of up to [`MAX_BATCH`] frames: how many the kernel
    /// took, or the error that stopped the first one.
    fn sendmmsg(&self, chunk: &[([u8; 6], &[u8])]) -> io::Result<usize> {
        debug_assert!(chunk.len() <= MAX_BATCH);
        let mut headers = [[0u8; ETH_HEADER_LEN]; MAX_BATCH];
        // SAFETY (both): plain old data; all-zero is valid.
        let mut iovs: [[libc::iovec; 2]; MAX_BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
        // Headers first, pointers after: no header is written once pointed at.
        for (h, (dst, _)) in headers.iter_mut().zip(chunk) {
            *h = eth_header(*dst, self.mac);
        }
        for (i, (_, payload)) in chunk.iter().enumerate() {
            iovs[i] = [iov_const(&headers[i]), iov_const(payload)];
            msgs[i].msg_hdr.msg_iov = iovs[i].as_mut_ptr();
            msgs[i].msg_hdr.msg_iovlen = 2;
        }
        // SAFETY: the first `chunk.len()` entries of `msgs` point at iovecs
        // describing live headers on this stack frame and the caller's
        // payloads; the kernel only reads those and writes each msg_len.
        let n = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                chunk.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// Reusable receive buffers for [`EtherLink::try_recv_batch`]: up to
/// [`MAX_BATCH`] slots of `slot_len` payload bytes each, allocated once.
#[derive(Debug)]
pub struct RecvBatch {
    data: Vec<u8>,
    slot_len: usize,
    results: Vec<EtherRecv>,
    count: usize,
}

impl RecvBatch {
    /// `slots` (capped at [`MAX_BATCH`]) buffers of `slot_len` bytes; a slot
    /// should hold the link's [`EtherLink::mtu`].
    pub fn new(slots: usize, slot_len: usize) -> RecvBatch {
        let slots = slots.clamp(1, MAX_BATCH);
        RecvBatch {
            data: vec![0; slots * slot_len],
            slot_len,
            results: vec![EtherRecv::Runt; slots],
            count: 0,
        }
    }

    /// Most frames one call can return.
    pub fn capacity(&self) -> usize {
        self.results.len()
    }

    /// How many results the last [`EtherLink::try_recv_batch`] left.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last call returned nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Result `i` of the last call and, for a [`EtherRecv::Frame`], its
    /// payload (empty for the other variants).
    pub fn get(&self, i: usize) -> Option<(EtherRecv, &[u8])> {
        if i >= self.count {
            return None;
        }
        let r = self.results[i];
        let payload = match r {
            EtherRecv::Frame { len, .. } => &self.data[i * self.slot_len..i * self.slot_len + len],
            _ => &[][..],
        };
        Some((r, payload))
    }

    /// The results of the last call, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (EtherRecv, &[u8])> + '_ {
        (0..self.count).filter_map(move |i| self.get(i))
    }
}

/// The 14-byte Ethernet header of an LLT frame.
fn eth_header(dst: [u8; 6], src: [u8; 6]) -> [u8; ETH_HEADER_LEN] {
    let mut h = [0u8; ETH_HEADER_LEN];
    h[0..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    h[12..14].copy_from_slice(&crate::ETHERTYPE_LLT.to_be_bytes());
    h
}

/// An iovec over a buffer the kernel will only read.
fn iov_const(b: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: b.as_ptr().cast_mut().cast(),
        iov_len: b.len(),
    }
}

/// One `recvmsg` into (header, `buf`), the frame's full length reported
/// thanks to `MSG_TRUNC`.
fn recv_one(fd: c_int, buf: &mut [u8]) -> io::Result<EtherRecv> {
    let mut header = [0u8; ETH_HEADER_LEN];
    let mut iov = [
        libc::iovec {
            iov_base: header.as_mut_ptr().cast(),
            iov_len: ETH_HEADER_LEN,
        },
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
    ];
    // SAFETY (both): plain old data; all-zero is valid.
    let mut from: libc::sockaddr_ll = unsafe { zeroed() };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast::<c_void>();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: `msg` points at `from` and `iov`, whose entries describe
    // `header` and `buf`; all are live and writable for the lengths given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_TRUNC | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(classify(n as usize, &header, from.sll_pkttype, buf.len()))
}

/// Turns a received frame of `total` bytes (header included, the true
/// length even if it did not fit) into an [`EtherRecv`].
fn classify(total: usize, header: &[u8; ETH_HEADER_LEN], pkttype: u8, cap: usize) -> EtherRecv {
    if pkttype == libc::PACKET_OTHERHOST || pkttype == libc::PACKET_OUTGOING {
        return EtherRecv::NotForUs;
    }
    if total < ETH_HEADER_LEN {
        return EtherRecv::Runt;
    }
    let len = total - ETH_HEADER_LEN;
    if len > cap {
        return EtherRecv::Oversize { len };
    }
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&header[0..6]);
    src.copy_from_slice(&header[6..12]);
    EtherRecv::Frame { src, dst, len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = eth_header([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]);
        assert_eq!(h, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xCA, 0xFE]);
    }

    #[test]
    fn classify_variants() {
        let h = eth_header([1; 6], [2; 6]);
        assert_eq!(
            classify(14 + 10, &h, libc::PACKET_HOST, 100),
            EtherRecv::Frame {
                src: [2; 6],
                dst: [1; 6],
                len: 10
            }
        );
        assert_eq!(
            classify(24, &h, libc::PACKET_OTHERHOST, 100),
            EtherRecv::NotForUs
        );
        assert_eq!(
            classify(24, &h, libc::PACKET_OUTGOING, 100),
            EtherRecv::NotForUs
        );
        assert_eq!(classify(13, &h, libc::PACKET_HOST, 100), EtherRecv::Runt);
        assert_eq!(
            classify(14 + 101, &h, libc::PACKET_BROADCAST, 100),
            EtherRecv::Oversize { len: 101 }
        );
        assert_eq!(
            classify(14 + 100, &h, libc::PACKET_BROADCAST, 100),
            EtherRecv::Frame {
                src: [2; 6],
                dst: [1; 6],
                len: 100
            }
        );
    }

    #[test]
    fn open_outside_runtime_is_an_error() {
        assert!(matches!(EtherLink::open("lo"), Err(IoError::NoRuntime)));
    }
}
