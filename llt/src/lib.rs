//! LLT, the Low Latency Transport: everything between a node and its private
//! networks.
//!
//! Owns: the wire format ([`wire`]), the sans-IO protocol core ([`core`]:
//! discovery, per-link heartbeats, peer state, the reliable per-peer channel,
//! fragmentation, flow control), the socket I/O for `ether` (AF_PACKET) and
//! `udp` links ([`io`]), the llttab/llthosts configuration ([`config`]), the
//! `HA_ROOT` path rules ([`paths`]) and the control protocol spoken by
//! `lltconfig`, `lltstat` and `lltmsg` ([`ctl`]).
//!
//! Never: reads the clock or does I/O inside [`core`] (time is an argument),
//! interprets the payload it carries (that is GAB's job), or decides
//! membership (LLT reports peers up and down; GAB turns that into membership).

pub mod cli;
pub mod config;
pub mod core;
pub mod fuzzing;
pub mod ctl;
pub mod io;
pub mod paths;
pub mod rng;
pub mod show;
pub mod sim;
pub mod time;
pub mod wire;

/// Node id, 0..=63 as in VCS.
pub type NodeId = u8;
/// Highest node id allowed.
pub const MAX_NODE_ID: NodeId = 63;
/// Index of a link in the node's configuration (0..8).
pub type LinkId = u8;
/// Most links a node may configure.
pub const MAX_LINKS: usize = 8;
/// The ethertype LLT frames travel under.
pub const ETHERTYPE_LLT: u16 = 0xCAFE;
