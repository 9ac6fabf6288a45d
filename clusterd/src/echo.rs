//! LLT's echo service on a reserved port: a request arriving on
//! [`ECHO_PORT`] is sent straight back by the receiving daemon, and a
//! `Ping` request measures round trips daemon to daemon. This is the path
//! GAB (inside clusterd) uses, without the hops through a client process,
//! so it is what `llt-bench` compares with raw frames.

use llt::NodeId;
use std::collections::BTreeMap;
use std::time::Instant;
use tokio::sync::oneshot;

/// Reserved: no client may bind it.
pub const ECHO_PORT: u8 = 255;
const REQUEST: u8 = 0;
const REPLY: u8 = 1;

#[derive(Default)]
pub struct Echo {
    next: u32,
    waiting: BTreeMap<u32, oneshot::Sender<Instant>>,
}

/// What to do with a message that arrived on the echo port.
pub enum Incoming {
    /// Send this back to the peer.
    Answer(NodeId, Vec<u8>),
    Nothing,
}

impl Echo {
    /// A request of `size` bytes (at least 5) and the receiver of its reply.
    pub fn request(&mut self, size: usize) -> (Vec<u8>, oneshot::Receiver<Instant>) {
        self.next = self.next.wrapping_add(1);
        let mut msg = vec![REQUEST];
        msg.extend_from_slice(&self.next.to_be_bytes());
        msg.resize(size.max(5), 0xa5);
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(self.next, tx);
        (msg, rx)
    }

    /// Forget a request whose reply will not come (peer down, timeout).
    pub fn abandon(&mut self, msg: &[u8]) {
        if let Some(id) = seq_of(msg) {
            self.waiting.remove(&id);
        }
    }

    pub fn incoming(&mut self, peer: NodeId, mut data: Vec<u8>) -> Incoming {
        match data.first() {
            Some(&REQUEST) => {
                data[0] = REPLY;
                Incoming::Answer(peer, data)
            }
            Some(&REPLY) => {
                if let Some(tx) = seq_of(&data).and_then(|id| self.waiting.remove(&id)) {
                    let _ = tx.send(Instant::now());
                }
                Incoming::Nothing
            }
            _ => Incoming::Nothing,
        }
    }
}

fn seq_of(msg: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(msg.get(1..5)?.try_into().ok()?))
}
