//! GAB messages cut to LLT's size. LLT carries messages up to its
//! `max_message` (256 KiB); GAB's view-change messages (a State with a log
//! tail, an Install with its fill) and large client broadcasts can be
//! bigger, so every GAB message travels as one or more chunks, each with a
//! one-byte header. LLT delivers a peer's messages in order while its
//! session lives; a session reset (LLT reports the peer down) loses a
//! partial message, which the receiver then drops, counted, and GAB's view
//! change resynchronises.

use crate::msg::MAX_MSG;
use llt::NodeId;
use std::collections::BTreeMap;

/// Payload per chunk: far below LLT's limit, so one chunk never fills its
/// window by itself.
pub const CHUNK: usize = 64 * 1024;

const WHOLE: u8 = 0;
const FIRST: u8 = 1;
const MIDDLE: u8 = 2;
const LAST: u8 = 3;

/// Cut one encoded GAB message into LLT messages.
pub fn split(msg: &[u8]) -> Vec<Vec<u8>> {
    if msg.len() <= CHUNK {
        let mut v = Vec::with_capacity(msg.len() + 1);
        v.push(WHOLE);
        v.extend_from_slice(msg);
        return vec![v];
    }
    let n = msg.len().div_ceil(CHUNK);
    msg.chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| {
            let kind = if i == 0 { FIRST } else if i + 1 == n { LAST } else { MIDDLE };
            let mut v = Vec::with_capacity(c.len() + 1);
            v.push(kind);
            v.extend_from_slice(c);
            v
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragError {
    #[error("empty LLT message")]
    Empty,
    #[error("unknown chunk kind {0}")]
    Kind(u8),
    #[error("chunk continues a message whose start was lost")]
    Orphan,
    #[error("reassembled message exceeds {MAX_MSG} bytes")]
    TooLarge,
}

/// Per-peer reassembly of chunked messages.
#[derive(Debug, Default)]
pub struct Reassembly {
    partial: BTreeMap<NodeId, Vec<u8>>,
}

impl Reassembly {
    /// One LLT message from `from`: a whole GAB message when complete.
    pub fn push(&mut self, from: NodeId, bytes: &[u8]) -> Result<Option<Vec<u8>>, FragError> {
        let (&kind, body) = bytes.split_first().ok_or(FragError::Empty)?;
        match kind {
            WHOLE => {
                // A whole message after a lost end: forget the fragment.
                self.partial.remove(&from);
                Ok(Some(body.to_vec()))
            }
            FIRST => {
                self.partial.insert(from, body.to_vec());
                Ok(None)
            }
            MIDDLE | LAST => {
                let Some(p) = self.partial.get_mut(&from) else { return Err(FragError::Orphan) };
                if p.len() + body.len() > MAX_MSG {
                    self.partial.remove(&from);
                    return Err(FragError::TooLarge);
                }
                p.extend_from_slice(body);
                if kind == LAST {
                    return Ok(self.partial.remove(&from));
                }
                Ok(None)
            }
            k => Err(FragError::Kind(k)),
        }
    }

    /// LLT's session with `peer` ended: its partial message is lost.
    pub fn reset(&mut self, peer: NodeId) {
        self.partial.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_messages_round_trip() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let parts = split(&msg);
            assert_eq!(parts.len(), len.div_ceil(CHUNK).max(1));
            assert!(parts.iter().all(|p| p.len() <= CHUNK + 1));
            let mut r = Reassembly::default();
            let mut out = None;
            for p in &parts {
                assert!(out.is_none(), "complete before the last chunk");
                out = r.push(3, p).unwrap();
            }
            assert_eq!(out.as_deref(), Some(msg.as_slice()), "len {len}");
        }
    }

    #[test]
    fn chunks_after_a_lost_start_are_dropped_not_spliced() {
        let big: Vec<u8> = vec![9; 2 * CHUNK + 5];
        let parts = split(&big);
        let mut r = Reassembly::default();
        assert_eq!(r.push(1, &parts[0]), Ok(None));
        r.reset(1);
        assert_eq!(r.push(1, &parts[1]), Err(FragError::Orphan));
        assert_eq!(r.push(1, &parts[2]), Err(FragError::Orphan));
        // Peers are independent; a new first chunk starts over.
        assert_eq!(r.push(2, &parts[0]), Ok(None));
        assert_eq!(r.push(1, &split(b"x")[0]), Ok(Some(b"x".to_vec())));
        assert_eq!(r.push(2, &parts[1]), Ok(None));
        assert_eq!(r.push(2, &parts[2]), Ok(Some(big)));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut r = Reassembly::default();
        assert_eq!(r.push(1, &[]), Err(FragError::Empty));
        assert_eq!(r.push(1, &[9, 1, 2]), Err(FragError::Kind(9)));
        assert_eq!(r.push(1, &[LAST, 1]), Err(FragError::Orphan));
        let mut huge = Reassembly::default();
        huge.push(1, &[FIRST]).unwrap();
        let chunk = vec![MIDDLE; CHUNK + 1];
        let mut result = Ok(None);
        for _ in 0..(MAX_MSG / CHUNK + 2) {
            result = huge.push(1, &chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FragError::TooLarge));
    }
}
