//! The protocol between clusterd's GAB and its local users: `gabconfig`,
//! and clients that join a port (HAD on h, tests and benchmarks on other
//! letters). A Unix stream socket at `$HA_ROOT/run/ha/gab.sock`, framed as
//! LLT's control socket is (4-byte big-endian length, bincode 2 with a
//! decode limit), carrying [`GabClientMsg`] and [`GabServerMsg`].
//!
//! A connection sends requests and gets one response each, in order. After
//! `Register { port }` it receives, unsolicited and in GAB's total order,
//! the port's membership changes and the messages delivered to the port,
//! and may send `Broadcast` and `Unicast` (not answered one by one; a
//! refused send comes back as `SendFailed`). Backpressure: while GAB has
//! too many of this node's messages waiting to be ordered the daemon stops
//! reading the connection. A client that does not read its deliveries is
//! disconnected once its queue is full, with a logged reason.
//!
//! Heartbeat: a client registered with a [`Heartbeat`] (mandatory on port
//! h) must send `Heartbeat` at least every `timeout_ms`. A silent one gets
//! SIGABRT, then again every `abort_interval_ms` up to `max_aborts` times,
//! then SIGKILL; its port is closed. The pid comes from the socket's peer
//! credentials, never from the client's word.

use crate::Port;
use llt::ctl::{Client, CtlError};
use llt::NodeId;
use serde::{Deserialize, Serialize};

/// VCS's HAD heartbeat timeout (VCS_GAB_TIMEOUT): 30 s.
pub const DEFAULT_HEARTBEAT_TIMEOUT_MS: u32 = 30_000;
/// Interval between SIGABRTs to a hung client.
pub const DEFAULT_ABORT_INTERVAL_MS: u32 = 5_000;
/// VCS sends SIGABRT up to 5 times before SIGKILL.
pub const DEFAULT_MAX_ABORTS: u32 = 5;

/// How a client proves it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub timeout_ms: u32,
    pub abort_interval_ms: u32,
    pub max_aborts: u32,
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat { timeout_ms: DEFAULT_HEARTBEAT_TIMEOUT_MS, abort_interval_ms: DEFAULT_ABORT_INTERVAL_MS, max_aborts: DEFAULT_MAX_ABORTS }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GabRequest {
    /// `gabconfig -c -n N`: start GAB on this node (LLT must be running);
    /// no membership forms until `seed_n` nodes see each other.
    Configure { seed_n: u32 },
    /// `gabconfig -x`: seed now with whoever is here.
    Seed,
    /// `gabconfig -U`: leave the cluster and stop GAB (refused while
    /// clients are registered, as VCS refuses with ports open).
    Unconfigure,
    /// `gabconfig -t MS`: how long a peer LLT reports down stays a member.
    SetStableTimeout { ms: u32 },
    /// Everything `gabconfig -a` and `-l` show.
    Status,
    /// Join `port` (a lowercase letter other than a). The first
    /// `Membership` that includes this node follows once GAB ordered it.
    Register { port: Port, heartbeat: Option<Heartbeat> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GabClientMsg {
    Request(GabRequest),
    /// To every member of the port, this node included, in the total order.
    Broadcast {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// To one member of the port, ordered with this node's broadcasts.
    Unicast {
        dest: NodeId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Heartbeat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GabResponse {
    Ok,
    Error(String),
    Status(Box<GabStatus>),
}

/// A change of the port's membership, in the ordered stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipMsg {
    pub port: Port,
    pub gen: u64,
    pub members: Vec<NodeId>,
    /// Members reachable over one LLT link only.
    pub jeopardy: Vec<NodeId>,
    /// Nodes that left while in jeopardy: their last link died, so they may
    /// still be running (HAD must not take their groups without fencing).
    pub lost_in_jeopardy: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GabServerMsg {
    Response(GabResponse),
    Membership(MembershipMsg),
    /// A message in the total order: `origin` sent it, `lseq` counts its
    /// submissions in the life `inc` of its daemon.
    Deliver {
        origin: NodeId,
        inc: u32,
        lseq: u64,
        unicast: bool,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    SendFailed { error: String },
    /// The port's members reachable over one LLT link changed. Local
    /// knowledge from this node's LLT, not a membership change and not in
    /// the total order: other nodes may learn it at another point.
    Jeopardy { port: Port, gen: u64, jeopardy: Vec<NodeId> },
    /// This node lost a fencing race (or heard no verdict): GAB is gone
    /// and the client must stop its services now. Nothing follows.
    Halted { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub port: Port,
    pub gen: u64,
    pub members: Vec<NodeId>,
    pub jeopardy: Vec<NodeId>,
}

/// A client registered on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalClient {
    pub port: Port,
    pub pid: Option<u32>,
    pub heartbeat: Option<Heartbeat>,
    /// Milliseconds since its last heartbeat (or registration).
    pub silent_ms: u64,
    pub aborts_sent: u32,
    pub queued: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GabCounters {
    pub broadcasts_sent: u64,
    pub unicasts_sent: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
    pub memberships: u64,
    /// Deliveries for a port whose local client had just gone.
    pub dropped_no_client: u64,
    /// GAB messages from peers that did not decode.
    pub dropped_malformed: u64,
    /// Chunks of GAB messages that could not be reassembled (the rest of
    /// the message was lost in an LLT session reset).
    pub dropped_chunks: u64,
    /// GAB messages LLT refused (never expected: a bug if not zero).
    pub llt_refused: u64,
    /// GAB messages waiting for LLT's window to a peer, now.
    pub llt_backlog: usize,
    pub clients_disconnected_slow: u64,
    pub clients_aborted: u64,
    pub clients_killed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GabStatus {
    pub configured: bool,
    pub node: NodeId,
    pub seed_n: u32,
    pub seeded: bool,
    pub stable_timeout_ms: u32,
    /// Port a first, then client ports, by letter.
    pub ports: Vec<PortStatus>,
    pub clients: Vec<LocalClient>,
    pub counters: GabCounters,
    /// One line of the core's internal state, for diagnostics.
    pub core_state: String,
}

/// A blocking connection to `$HA_ROOT/run/ha/gab.sock`.
pub struct GabClient {
    conn: Client,
}

impl GabClient {
    pub fn connect() -> Result<GabClient, CtlError> {
        Self::connect_to(&llt::paths::gab_socket())
    }

    pub fn connect_to(path: &std::path::Path) -> Result<GabClient, CtlError> {
        Ok(GabClient { conn: Client::connect_to(path)? })
    }

    pub fn stream(&self) -> &std::os::unix::net::UnixStream {
        self.conn.stream()
    }

    pub fn send(&mut self, msg: &GabClientMsg) -> Result<(), CtlError> {
        self.conn.send_any(msg)
    }

    /// Several messages in one system call (throughput tools).
    pub fn send_batch(&mut self, msgs: &[GabClientMsg]) -> Result<(), CtlError> {
        self.conn.send_batch(msgs)
    }

    pub fn recv(&mut self) -> Result<GabServerMsg, CtlError> {
        self.conn.recv_any()
    }

    /// Send a request and wait for its response. Deliveries and membership
    /// changes that arrive meanwhile are handed to `other` (never lost).
    pub fn request_with(&mut self, req: GabRequest, mut other: impl FnMut(GabServerMsg)) -> Result<GabResponse, CtlError> {
        self.send(&GabClientMsg::Request(req))?;
        loop {
            match self.recv()? {
                GabServerMsg::Response(r) => return Ok(r),
                m => other(m),
            }
        }
    }

    /// A request on a connection that has not registered a port.
    pub fn request(&mut self, req: GabRequest) -> Result<GabResponse, CtlError> {
        self.request_with(req, |_| {})
    }
}

/// One readable line for an error on GAB's socket (llt's own texts name the
/// LLT daemon), for the commands.
pub fn error_text(e: &CtlError) -> String {
    llt::cli::service_error_text(e, "GAB")
}

/// VCS's membership string: one digit per node id at position id mod 10,
/// a space where a node is absent, `;` before each further ten.
/// {0,1,2} → "012", {0,2} → "0 2", {0,11} → "0         ; 1".
pub fn membership_string(members: &[NodeId]) -> String {
    let Some(&max) = members.iter().max() else { return String::new() };
    let mut s = String::new();
    for id in 0..=max {
        if id > 0 && id % 10 == 0 {
            s.push(';');
        }
        s.push(if members.contains(&id) { char::from(b'0' + id % 10) } else { ' ' });
    }
    s
}

/// The jeopardy line's node list as VCS prints it (`jeopardy ;1` for node
/// 1): a `;` and the membership string without its leading blanks.
pub fn jeopardy_string(nodes: &[NodeId]) -> String {
    format!(";{}", membership_string(nodes).trim_start())
}

/// `gabconfig -a`.
pub fn render_ports(st: &GabStatus) -> String {
    let mut out = String::from("GAB Port Memberships\n===============================================================\n");
    for p in &st.ports {
        let gen = p.gen & 0xffff_ffff;
        out.push_str(&format!("Port {} gen {:>8x} membership {}\n", p.port as char, gen, membership_string(&p.members)));
        if !p.jeopardy.is_empty() {
            out.push_str(&format!("Port {} gen {:>8x}   jeopardy {}\n", p.port as char, gen, jeopardy_string(&p.jeopardy)));
        }
    }
    out
}

/// `gabconfig -l`: configuration and counters.
pub fn render_config(st: &GabStatus) -> String {
    let c = &st.counters;
    let mut out = String::from("GAB Driver Configuration\n");
    let row = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<28}: {v}\n"));
    row(&mut out, "Driver state", if st.configured { "Configured" } else { "Unconfigured" }.into());
    row(&mut out, "Node id", st.node.to_string());
    row(&mut out, "Control Seed Port", if st.seeded { "Seeded" } else { "Unseeded" }.into());
    row(&mut out, "Gab Seed Count (-n)", st.seed_n.to_string());
    row(&mut out, "Stable Timeout (-t, ms)", st.stable_timeout_ms.to_string());
    row(&mut out, "Broadcasts sent", c.broadcasts_sent.to_string());
    row(&mut out, "Unicasts sent", c.unicasts_sent.to_string());
    row(&mut out, "Messages delivered", c.delivered.to_string());
    row(&mut out, "Bytes delivered", c.delivered_bytes.to_string());
    row(&mut out, "Membership changes", c.memberships.to_string());
    row(&mut out, "Dropped, no client", c.dropped_no_client.to_string());
    row(&mut out, "Dropped, malformed", c.dropped_malformed.to_string());
    row(&mut out, "Dropped, partial chunks", c.dropped_chunks.to_string());
    row(&mut out, "Refused by LLT", c.llt_refused.to_string());
    row(&mut out, "Waiting for LLT window", c.llt_backlog.to_string());
    row(&mut out, "Clients too slow", c.clients_disconnected_slow.to_string());
    row(&mut out, "Clients sent SIGABRT", c.clients_aborted.to_string());
    row(&mut out, "Clients killed", c.clients_killed.to_string());
    if !st.clients.is_empty() {
        out.push_str("Local clients:\n");
        for cl in &st.clients {
            let hb = cl.heartbeat.map_or("none".to_string(), |h| format!("timeout {} ms", h.timeout_ms));
            let pid = cl.pid.map_or("-".to_string(), |p| p.to_string());
            out.push_str(&format!(
                "  port {} pid {pid} heartbeat {hb} silent {} ms aborts {} queued {}\n",
                cl.port as char, cl.silent_ms, cl.aborts_sent, cl.queued
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_strings_as_vcs_prints_them() {
        assert_eq!(membership_string(&[0, 1, 2]), "012");
        assert_eq!(membership_string(&[0, 2]), "0 2");
        assert_eq!(membership_string(&[1]), " 1");
        assert_eq!(membership_string(&[0, 11]), "0         ; 1");
        assert_eq!(membership_string(&[]), "");
        assert_eq!(jeopardy_string(&[1]), ";1");
        assert_eq!(jeopardy_string(&[1, 3]), ";1 3");
    }

    #[test]
    fn ports_render_in_the_vcs_shape() {
        let st = GabStatus {
            configured: true,
            node: 0,
            seed_n: 3,
            seeded: true,
            stable_timeout_ms: 5000,
            ports: vec![
                PortStatus { port: b'a', gen: (7u64 << 32) | 0x4a1c0001, members: vec![0, 1, 2], jeopardy: vec![1] },
                PortStatus { port: b'h', gen: 0x26cd3f, members: vec![0, 1, 2], jeopardy: vec![] },
            ],
            clients: vec![],
            counters: GabCounters::default(),
            core_state: String::new(),
        };
        let out = render_ports(&st);
        assert_eq!(
            out,
            "GAB Port Memberships\n===============================================================\n\
             Port a gen 4a1c0001 membership 012\n\
             Port a gen 4a1c0001   jeopardy ;1\n\
             Port h gen   26cd3f membership 012\n"
        );
    }

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let m = GabClientMsg::Request(GabRequest::Register { port: b'h', heartbeat: Some(Heartbeat::default()) });
        let f = llt::ctl::encode_frame(&m).unwrap();
        assert_eq!(llt::ctl::decode_body::<GabClientMsg>(&f[4..]).unwrap(), m);
        for body in [&[0xffu8, 0xff, 0xff][..], &[9, 9, 9, 9, 9], &[]] {
            assert!(llt::ctl::decode_body::<GabClientMsg>(body).is_err());
        }
    }
}
