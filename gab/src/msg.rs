//! Messages between the GAB cores of different nodes, carried by LLT.
//! Encoded with bincode 2 (standard, size-limited); decoding a peer's bad
//! message is an error the core counts and drops.

use crate::Port;
use llt::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Identity of one submission: who, which life of its daemon, which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubmitId {
    pub origin: NodeId,
    pub inc: u32,
    pub lseq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Broadcast {
        port: Port,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Unicast {
        port: Port,
        dest: NodeId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    PortJoin { port: Port },
    PortLeave { port: Port },
}

/// A submission with its place in the total order of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ordered {
    /// Generation: the leader's incarnation in the high half, a counter
    /// and the leader's id in the low half (see `core`).
    pub gen: u64,
    pub seq: u64,
    pub id: SubmitId,
    pub body: Body,
}

/// A view-change attempt: higher counter wins; ties by proposer id.
pub type Attempt = (u64, NodeId);

/// A candidate's answer to a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub attempt: Attempt,
    /// Generation of the candidate's current view (None: never in one).
    pub gen: Option<u64>,
    /// Next sequence it would deliver in that view.
    pub next_seq: u64,
    /// Everything of that view it holds that may not be delivered everywhere.
    pub log: Vec<Ordered>,
    /// Ports registered by clients on the candidate.
    pub ports: BTreeSet<Port>,
    /// Highest submission delivered per origin.
    pub delivered: BTreeMap<NodeId, (u32, u64)>,
    /// Generation counter it knows.
    pub gen_counter: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Install {
    pub attempt: Attempt,
    pub gen: u64,
    pub members: BTreeSet<NodeId>,
    /// Messages of the receiver's old view to deliver before installing.
    pub fill: Vec<Ordered>,
    pub ports: BTreeMap<Port, (u64, BTreeSet<NodeId>)>,
    pub delivered: BTreeMap<NodeId, (u32, u64)>,
    pub gen_counter: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GabMsg {
    /// "GAB is configured here": sent to peers not in our view.
    /// `attempt`: the highest view-change attempt the sender has seen, so
    /// a restarted node numbers its proposals above it.
    /// `sees`: the peers the sender is connected to (LLT up, hello
    /// heard), so a proposer learns of nodes its own LLT has not shown it
    /// yet and waits for them instead of leaving them out.
    Hello { seeded: bool, gen: Option<u64>, attempt: Attempt, sees: BTreeSet<NodeId> },
    /// Member to leader: order this.
    Submit { gen: u64, id: SubmitId, body: Body },
    /// Leader to members: the next message of the total order, and how far
    /// every member has delivered (members may forget up to there).
    Ordered { msg: Ordered, stable: u64 },
    /// Member to leader: delivered everything below `next`.
    Ack { gen: u64, next: u64 },
    /// `force`: the proposer knows it leaves out nodes some candidate is
    /// connected to (it waited for them, or its LLT reports them down).
    Propose { attempt: Attempt, members: BTreeSet<NodeId>, force: bool },
    /// Candidate to proposer: not answering this proposal, because its
    /// attempt is older than `seen`, or, unforced, it leaves out a member
    /// of the candidate's view the candidate is connected to (`sees`), or
    /// the candidate still counts a lower node in (`lower`: it says hello
    /// again once that node is gone).
    Refuse { attempt: Attempt, seen: Attempt, sees: BTreeSet<NodeId>, lower: bool },
    State(Box<State>),
    Install(Box<Install>),
    /// `gabconfig -U`: the sender's GAB stops (its LLT stays up), so peers
    /// drop it from their candidates at once instead of waiting for LLT.
    Leave,
}

/// Peer messages are at most this large once encoded.
pub const MAX_MSG: usize = 8 << 20;

fn cfg() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MSG>()
}

pub fn encode(m: &GabMsg) -> Vec<u8> {
    // Encoding our own types into a Vec cannot fail.
    bincode::serde::encode_to_vec(m, cfg()).unwrap_or_default()
}

pub fn decode(b: &[u8]) -> Result<GabMsg, String> {
    let (m, used) = bincode::serde::decode_from_slice(b, cfg()).map_err(|e| e.to_string())?;
    if used != b.len() {
        return Err(format!("{} trailing bytes", b.len() - used));
    }
    Ok(m)
}
