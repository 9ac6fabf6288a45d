//! GAB, Group membership and Atomic Broadcast, over LLT.
//!
//! Owns: seeding, membership with generation numbers (port a and client
//! ports), one total order of messages per cluster delivered per port,
//! virtual synchrony across membership changes, jeopardy. The core
//! ([`core::Gab`]) is sans-IO: it takes LLT's peer events and deliveries and
//! time as arguments, and hands back messages for LLT and events for clients.
//!
//! Never: talks to sockets, reads a clock, or retransmits (LLT's per-peer
//! channel is reliable and FIFO while a peer is up; GAB turns peer changes
//! into membership changes and resynchronises in the view change).

pub mod core;
pub mod ctl;
pub mod frag;
pub mod glue;
pub mod lltsim;
pub mod msg;
pub mod sim;

/// A GAB port: a lowercase letter as VCS names them (a: GAB's own
/// membership, b: fencing, h: HAD).
pub type Port = u8;
pub const PORT_A: Port = b'a';
/// The LLT port GAB's messages travel on.
pub const LLT_PORT: u8 = 1;
