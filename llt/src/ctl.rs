//! The control protocol between clusterd's LLT and its local clients
//! (`lltconfig`, `lltstat`, `lltmsg`, tests): a Unix stream socket at
//! `$HA_ROOT/run/ha/llt.sock` carrying frames of a 4-byte big-endian length
//! followed by a bincode (v2, standard config) encoding of [`ClientMsg`] or
//! [`ServerMsg`].
//!
//! A connection sends requests and gets one response each, in order. After
//! `Bind { port }` it also receives, unsolicited, every message delivered to
//! that port and every peer/link event, and may send data with
//! `ClientMsg::Send`. Sends are not answered one by one (that would halve
//! throughput): a send that fails comes back as `ServerMsg::SendFailed`.
//! Backpressure: while LLT's window to a peer is full the daemon stops
//! reading the connection, so the client's writes block.

use crate::config::Timers;
use crate::core::{Dest, DownReason, LinkState, Phase, PeerStatus, Stats};
use crate::{LinkId, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Largest frame accepted on the socket (a message plus its envelope).
pub const MAX_FRAME: usize = 512 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// `lltconfig -c`: read llttab/llthosts, open the links, listen for a
    /// duplicate node id; answered when running or refused.
    Configure,
    /// `lltconfig -U`: close every link and forget the peers.
    Unconfigure,
    /// `lltconfig -T query`.
    GetTimers,
    /// `lltconfig -T name:value` (hundredths of a second); answered with
    /// the timers now in force.
    SetTimer { name: String, value: u32 },
    /// Everything `lltstat` and `lltconfig -a list` show.
    Status,
    /// Receive deliveries for `port` and peer/link events on this connection.
    Bind { port: u8 },
    /// Measure `count` round trips of `size`-byte messages to `peer` inside
    /// the daemons (LLT's echo service, port 255): no client process on
    /// the path. Answered with `RoundTrips`.
    Ping { peer: NodeId, count: u32, size: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    Request(Request),
    /// Data for the reliable channel (after `Bind`; the port is the bound one).
    Send {
        dest: Dest,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Error(String),
    Timers(Timers),
    Status(Box<StatusReport>),
    /// Round-trip times in nanoseconds, in the order measured.
    RoundTrips(Vec<u32>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    Response(Response),
    Deliver {
        peer: NodeId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    PeerUp { peer: NodeId },
    PeerDown { peer: NodeId, reason: DownReason },
    LinkState { peer: NodeId, link: LinkId, state: LinkState },
    SendFailed { dest: Dest, error: String },
}

/// One configured link as `lltconfig -a list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub id: LinkId,
    pub tag: String,
    pub device: String,
    /// `ether` or `udp`.
    pub kind: String,
    pub lowpri: bool,
    pub mtu: usize,
    /// Our own address on the link (MAC or ip:port).
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// None while unconfigured.
    pub phase: Option<Phase>,
    pub node_id: NodeId,
    pub node_name: String,
    pub cluster_id: u16,
    pub links: Vec<LinkReport>,
    pub hosts: BTreeMap<NodeId, String>,
    pub peers: Vec<PeerStatus>,
    pub stats: Stats,
    pub timers: Timers,
    /// Send and receive errors on the link sockets (frames addressed to
    /// another MAC are `stats.dropped_not_for_us`).
    pub io_errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("cannot reach the LLT daemon at {path}: {source} (is clusterd running?)")]
    Connect { path: String, source: std::io::Error },
    #[error("connection to the LLT daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("undecodable message: {0}")]
    Decode(String),
    #[error("the daemon closed the connection")]
    Closed,
}

/// bincode's standard encoding, with a decode limit: a length prefix in a
/// hostile frame must not make the daemon allocate gigabytes (found by the
/// ctl_decode fuzz target).
fn bincode_cfg() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encode a message as one length-prefixed frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, CtlError> {
    let mut out = vec![0u8; 4];
    bincode::serde::encode_into_std_write(msg, &mut out, bincode_cfg()).map_err(|e| CtlError::Decode(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(CtlError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Decode a frame body (without its length prefix).
pub fn decode_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, CtlError> {
    let (v, used) = bincode::serde::decode_from_slice(body, bincode_cfg()).map_err(|e| CtlError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CtlError::Decode(format!("{} trailing bytes", body.len() - used)));
    }
    Ok(v)
}

/// If `buf` starts with a complete frame, its body length; errors on an
/// oversize length so a bad client cannot make the daemon buffer forever.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CtlError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(CtlError::TooLarge(len));
    }
    Ok((buf.len() >= 4 + len).then_some(len))
}

/// Blocking client used by the commands.
pub struct Client {
    stream: std::os::unix::net::UnixStream,
    rbuf: Vec<u8>,
    /// Start of the unread part of `rbuf`: compacted once per read, not
    /// once per frame (a 64 KiB read holds hundreds of small frames).
    roff: usize,
}

impl Client {
    /// Connect to `$HA_ROOT/run/ha/llt.sock`.
    pub fn connect() -> Result<Client, CtlError> {
        Self::connect_to(&crate::paths::llt_socket())
    }

    pub fn connect_to(path: &std::path::Path) -> Result<Client, CtlError> {
        let stream = std::os::unix::net::UnixStream::connect(path)
            .map_err(|source| CtlError::Connect { path: path.display().to_string(), source })?;
        Ok(Client { stream, rbuf: Vec::new(), roff: 0 })
    }

    pub fn stream(&self) -> &std::os::unix::net::UnixStream {
        &self.stream
    }

    pub fn send(&mut self, msg: &ClientMsg) -> Result<(), CtlError> {
        self.send_any(msg)
    }

    /// Send any serializable message (GAB's socket uses the same framing
    /// with its own message types).
    pub fn send_any<T: Serialize>(&mut self, msg: &T) -> Result<(), CtlError> {
        self.stream.write_all(&encode_frame(msg)?)?;
        Ok(())
    }

    /// Write several messages in one system call (throughput tools).
    pub fn send_batch<T: Serialize>(&mut self, msgs: &[T]) -> Result<(), CtlError> {
        let mut buf = Vec::new();
        for m in msgs {
            buf.extend_from_slice(&encode_frame(m)?);
        }
        self.stream.write_all(&buf)?;
        Ok(())
    }

    /// Next message from the daemon (blocking).
    pub fn recv(&mut self) -> Result<ServerMsg, CtlError> {
        self.recv_any()
    }

    /// Next message of any type from the daemon (blocking).
    pub fn recv_any<T: for<'de> Deserialize<'de>>(&mut self) -> Result<T, CtlError> {
        loop {
            if let Some(len) = frame_len(&self.rbuf[self.roff..])? {
                let start = self.roff + 4;
                self.roff = start + len;
                return decode_body(&self.rbuf[start..start + len]);
            }
            self.rbuf.drain(..self.roff);
            self.roff = 0;
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(CtlError::Closed);
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Send a request and wait for its response, skipping deliveries and
    /// events that arrive meanwhile.
    pub fn request(&mut self, req: Request) -> Result<Response, CtlError> {
        self.send(&ClientMsg::Request(req))?;
        loop {
            if let ServerMsg::Response(r) = self.recv()? {
                return Ok(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let m = ClientMsg::Send { dest: Dest::Node(3), data: vec![1, 2, 3] };
        let f = encode_frame(&m).unwrap();
        let len = frame_len(&f).unwrap().unwrap();
        assert_eq!(decode_body::<ClientMsg>(&f[4..4 + len]).unwrap(), m);
        assert_eq!(frame_len(&f[..3]).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(frame_len(&[0xff, 0xff, 0xff, 0xff]).is_err());
        for body in [&[0xffu8, 0xff, 0xff][..], &[9, 9, 9, 9, 9], &[]] {
            assert!(decode_body::<ClientMsg>(body).is_err());
        }
    }
}
