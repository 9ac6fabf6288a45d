//! The node's link sockets: opening them from the configuration, reading
//! frames into the core, and putting the core's frames on the wire.

use llt::config::{LinkConfig, LinkKind};
use llt::core::{Dst, LinkAddr, LinkSetup, Transmit};
use llt::ctl::LinkReport;
use llt::io::{EtherLink, EtherRecv, IoError, UdpLink, UdpRecv, BROADCAST_MAC};
use std::net::SocketAddr;

/// One open link.
pub struct Link {
    pub cfg: LinkConfig,
    pub sock: Sock,
}

pub enum Sock {
    Ether(EtherLink),
    Udp { link: UdpLink, broadcast: Option<SocketAddr>, peers: Vec<SocketAddr> },
}

/// A frame read from a link.
pub struct Received {
    pub from: LinkAddr,
    pub len: usize,
}

/// What one read attempt produced.
pub enum ReadOutcome {
    Frame(Received),
    /// Addressed to another MAC, or our own broadcast looping back.
    NotForUs,
    /// Unusable bytes (runt, oversize).
    Malformed,
    Empty,
}

impl Link {
    pub fn open(cfg: &LinkConfig) -> Result<Link, String> {
        let sock = match &cfg.kind {
            LinkKind::Ether => Sock::Ether(EtherLink::open(&cfg.device).map_err(|e| format!("link {}: {e}", cfg.tag))?),
            LinkKind::Udp { port, local, broadcast, peers } => {
                let link = UdpLink::open(*local, *port).map_err(|e| format!("link {}: {e}", cfg.tag))?;
                Sock::Udp {
                    link,
                    broadcast: broadcast.map(|b| SocketAddr::new(b, *port)),
                    peers: peers.values().map(|ip| SocketAddr::new(*ip, *port)).collect(),
                }
            }
        };
        Ok(Link { cfg: cfg.clone(), sock })
    }

    /// What the core needs to know: tag, priority, usable frame size.
    pub fn setup(&self) -> LinkSetup {
        let dev_mtu = match &self.sock {
            Sock::Ether(e) => e.mtu(),
            Sock::Udp { link, .. } => link.mtu(),
        };
        let mtu = self.cfg.mtu.map_or(dev_mtu, |m| (m as usize).min(dev_mtu));
        LinkSetup { tag: self.cfg.tag.clone(), lowpri: self.cfg.lowpri, mtu }
    }

    pub fn report(&self) -> LinkReport {
        let (kind, address) = match &self.sock {
            Sock::Ether(e) => ("ether", LinkAddr::Mac(e.mac()).to_string()),
            Sock::Udp { link, .. } => ("udp", link.local_addr().to_string()),
        };
        LinkReport {
            id: self.cfg.id,
            tag: self.cfg.tag.clone(),
            device: self.cfg.device.clone(),
            kind: kind.into(),
            lowpri: self.cfg.lowpri,
            mtu: self.setup().mtu,
            address,
        }
    }

    pub async fn readable(&self) -> std::io::Result<()> {
        match &self.sock {
            Sock::Ether(e) => e.readable().await,
            Sock::Udp { link, .. } => link.readable().await,
        }
    }

    /// Read one frame without blocking.
    pub fn try_read(&self, buf: &mut [u8]) -> Result<ReadOutcome, IoError> {
        Ok(match &self.sock {
            Sock::Ether(e) => match e.try_recv(buf)? {
                None => ReadOutcome::Empty,
                Some(EtherRecv::Frame { src, dst, len }) => {
                    if dst != e.mac() && dst != BROADCAST_MAC {
                        ReadOutcome::NotForUs
                    } else {
                        ReadOutcome::Frame(Received { from: LinkAddr::Mac(src), len })
                    }
                }
                Some(EtherRecv::NotForUs) => ReadOutcome::NotForUs,
                Some(EtherRecv::Runt | EtherRecv::Oversize { .. }) => ReadOutcome::Malformed,
            },
            Sock::Udp { link, .. } => match link.try_recv(buf)? {
                None => ReadOutcome::Empty,
                Some(UdpRecv::Datagram { src, .. }) if src == link.local_addr() => ReadOutcome::NotForUs,
                Some(UdpRecv::Datagram { src, len }) => ReadOutcome::Frame(Received { from: LinkAddr::Ip(src), len }),
                Some(UdpRecv::Oversize { .. }) => ReadOutcome::Malformed,
            },
        })
    }

    /// Put one frame of the core on this link. Failures are counted by the
    /// caller: LLT's own retransmission and heartbeats cover lost frames.
    pub fn transmit(&self, t: &Transmit) -> Result<(), IoError> {
        match (&self.sock, t.dst) {
            (Sock::Ether(e), Dst::Broadcast) => e.try_send(BROADCAST_MAC, &t.frame),
            (Sock::Ether(e), Dst::To(LinkAddr::Mac(m))) => e.try_send(m, &t.frame),
            (Sock::Udp { link, broadcast, peers }, Dst::Broadcast) => {
                // Broadcast where the network allows it, and always to the
                // peers named by set-addr (routed networks have no broadcast).
                let mut last = Ok(());
                for dst in broadcast.iter().chain(peers.iter()) {
                    if let Err(e) = link.try_send(*dst, &t.frame) {
                        last = Err(e);
                    }
                }
                last
            }
            (Sock::Udp { link, .. }, Dst::To(LinkAddr::Ip(a))) => link.try_send(a, &t.frame),
            // An address of the other kind cannot come from this link.
            _ => Ok(()),
        }
    }
}

/// Open every configured link, in configuration order (link id = index).
pub fn open_all(cfgs: &[LinkConfig]) -> Result<Vec<Link>, String> {
    cfgs.iter().map(Link::open).collect()
}
