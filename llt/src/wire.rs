//! The LLT frame: a fixed 48-byte header followed by `len` payload bytes,
//! carried after an Ethernet header with ethertype 0xCAFE (or as a UDP
//! datagram on udp links).
//!
//! The header keeps the fields Wireshark's LLT dissector reads at the places
//! it reads them (cluster number at 2, message type at 3, node id at 7,
//! sequence number at 24, time at 40), so `tshark` decodes our heartbeats.
//!
//! ```text
//!  0  u8  version (1)            1  u8  flags
//!  2  u8  cluster number (low 8 bits of the cluster id)
//!  3  u8  message type           4  u16 cluster id
//!  6  u8  destination node (0xff: all)
//!  7  u8  source node            8  u16 payload length
//! 10  u8  sender's link id      11  u8  port (upper-layer SAP)
//! 12  u32 sender's nonce (per start of the daemon: duplicate-id detection)
//! 16  u32 ack: next sequence the sender expects from the destination
//! 20  u32 sender's session with the destination
//! 24  u32 sequence number       28  u32 aux1      32  u32 aux2
//! 36  u32 destination's session as the sender knows it
//! 40  u32 time (hundredths of a second since the sender started)
//! 44  u32 reserved (0)
//! ```
//!
//! Decoding never panics: anything short, of an unknown version or type, or
//! whose length field disagrees with the bytes present is an error the
//! caller counts as malformed. Trailing bytes beyond `len` are padding
//! (Ethernet pads short frames to 60 bytes) and are ignored.

use crate::NodeId;

pub const HEADER_LEN: usize = 48;
pub const VERSION: u8 = 1;
/// Destination node meaning "every node" (announcements).
pub const DEST_ALL: NodeId = 0xff;

/// Frame flags.
pub mod flags {
    /// More fragments of the same message follow.
    pub const MORE: u8 = 0x01;
    /// A retransmission (for captures and counters; semantics unchanged).
    pub const RETRANS: u8 = 0x02;
    /// Heartbeat: the sender hears the destination on the link this frame travels.
    pub const HEAR_YOU: u8 = 0x04;
    /// Announcement: the sender is still listening for a duplicate of its id.
    pub const PROBING: u8 = 0x08;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    /// Broadcast discovery: "node N of cluster C is here".
    Announce = 0x01,
    /// Reliable data (one fragment of a message).
    Data = 0x02,
    /// Cumulative acknowledgement, no payload.
    Ack = 0x03,
    /// Retransmission request for sequences aux1..aux2 (end exclusive).
    Nack = 0x04,
    /// Unicast heartbeat; the value Wireshark names "heartbeat".
    Heartbeat = 0x0a,
}

impl MsgType {
    fn from_u8(v: u8) -> Option<MsgType> {
        Some(match v {
            0x01 => MsgType::Announce,
            0x02 => MsgType::Data,
            0x03 => MsgType::Ack,
            0x04 => MsgType::Nack,
            0x0a => MsgType::Heartbeat,
            _ => return None,
        })
    }
}

/// The decoded header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub flags: u8,
    pub msg_type: MsgType,
    pub cluster_id: u16,
    pub dest: NodeId,
    pub src: NodeId,
    pub link: u8,
    pub port: u8,
    pub nonce: u32,
    pub ack: u32,
    pub session: u32,
    pub seq: u32,
    pub aux1: u32,
    pub aux2: u32,
    pub dest_session: u32,
    pub time: u32,
}

impl Header {
    /// A header with every numeric field zero.
    pub fn new(msg_type: MsgType, cluster_id: u16, src: NodeId, dest: NodeId) -> Header {
        Header {
            flags: 0,
            msg_type,
            cluster_id,
            dest,
            src,
            link: 0,
            port: 0,
            nonce: 0,
            ack: 0,
            session: 0,
            seq: 0,
            aux1: 0,
            aux2: 0,
            dest_session: 0,
            time: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("unknown version {0}")]
    Version(u8),
    #[error("unknown message type 0x{0:02x}")]
    Type(u8),
    #[error("length field says {claimed} payload bytes but only {present} are present")]
    Length { claimed: usize, present: usize },
    #[error("cluster number byte {byte} disagrees with cluster id {id}")]
    ClusterByte { byte: u8, id: u16 },
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Decode a frame; returns the header and the payload (padding removed).
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Short(bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(DecodeError::Version(bytes[0]));
    }
    let msg_type = MsgType::from_u8(bytes[3]).ok_or(DecodeError::Type(bytes[3]))?;
    let cluster_id = u16_at(bytes, 4);
    if bytes[2] != cluster_id as u8 {
        return Err(DecodeError::ClusterByte { byte: bytes[2], id: cluster_id });
    }
    let len = u16_at(bytes, 8) as usize;
    let present = bytes.len() - HEADER_LEN;
    if len > present {
        return Err(DecodeError::Length { claimed: len, present });
    }
    let h = Header {
        flags: bytes[1],
        msg_type,
        cluster_id,
        dest: bytes[6],
        src: bytes[7],
        link: bytes[10],
        port: bytes[11],
        nonce: u32_at(bytes, 12),
        ack: u32_at(bytes, 16),
        session: u32_at(bytes, 20),
        seq: u32_at(bytes, 24),
        aux1: u32_at(bytes, 28),
        aux2: u32_at(bytes, 32),
        dest_session: u32_at(bytes, 36),
        time: u32_at(bytes, 40),
    };
    Ok((h, &bytes[HEADER_LEN..HEADER_LEN + len]))
}

/// Encode header and payload into `out` (cleared first). Payloads longer than
/// u16::MAX are a caller bug; the core fragments far below that.
pub fn encode_into(h: &Header, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= u16::MAX as usize);
    out.clear();
    out.reserve(HEADER_LEN + payload.len());
    out.push(VERSION);
    out.push(h.flags);
    out.push(h.cluster_id as u8);
    out.push(h.msg_type as u8);
    out.extend_from_slice(&h.cluster_id.to_be_bytes());
    out.push(h.dest);
    out.push(h.src);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.push(h.link);
    out.push(h.port);
    for v in [h.nonce, h.ack, h.session, h.seq, h.aux1, h.aux2, h.dest_session, h.time, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

pub fn encode(h: &Header, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_into(h, payload, &mut v);
    v
}

/// Cheap pre-check used before full decoding: the cluster id of a frame, if
/// it has a header at all. Lets the core count foreign frames separately
/// from malformed ones.
pub fn peek_cluster(bytes: &[u8]) -> Option<u16> {
    (bytes.len() >= HEADER_LEN).then(|| u16_at(bytes, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        let mut h = Header::new(MsgType::Heartbeat, 0x1234, 3, 7);
        h.flags = flags::HEAR_YOU;
        h.link = 1;
        h.port = 9;
        h.nonce = 0xdeadbeef;
        h.ack = 5;
        h.session = 6;
        h.seq = 0x01020304;
        h.aux1 = 8;
        h.aux2 = 9;
        h.dest_session = 10;
        h.time = 0x0a0b0c0d;
        h
    }

    #[test]
    fn round_trip_with_padding() {
        let h = sample();
        let mut f = encode(&h, b"hello");
        f.extend_from_slice(&[0u8; 20]); // Ethernet padding
        let (d, p) = decode(&f).unwrap();
        assert_eq!(d, h);
        assert_eq!(p, b"hello");
    }

    #[test]
    fn wireshark_offsets() {
        let f = encode(&sample(), &[]);
        assert_eq!(f[2], 0x34, "cluster number at offset 2");
        assert_eq!(f[3], 0x0a, "message type at offset 3");
        assert_eq!(f[7], 3, "node id at offset 7");
        assert_eq!(&f[24..28], &[1, 2, 3, 4], "sequence at offset 24");
        assert_eq!(&f[40..44], &[0x0a, 0x0b, 0x0c, 0x0d], "time at offset 40");
        assert!(f.len() >= 44);
    }

    #[test]
    fn malformed_is_error() {
        assert_eq!(decode(&[1; 10]), Err(DecodeError::Short(10)));
        let mut f = encode(&sample(), b"abc");
        f[8] = 0;
        f[9] = 200;
        assert!(matches!(decode(&f), Err(DecodeError::Length { .. })));
        let mut f = encode(&sample(), b"abc");
        f[3] = 0x77;
        assert_eq!(decode(&f), Err(DecodeError::Type(0x77)));
        let mut f = encode(&sample(), b"abc");
        f[0] = 9;
        assert_eq!(decode(&f), Err(DecodeError::Version(9)));
    }
}
