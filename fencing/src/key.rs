//! Reservation keys as VCS makes them, shows them and reads them back.
//!
//! A SCSI-3 reservation key is 8 bytes; VCS fills them with ASCII so an
//! administrator can tell whose a key is:
//!
//! - **Coordinator disks**: `VF` + cluster id as 4 upper-case hex digits +
//!   node id as 2 upper-case hex digits. `VFDEED00` = cluster 0xDEED
//!   (57069), node 0; node 10 would end in `0A`. Nodes only register there.
//! - **Data disks** (our scheme, after VCS's `APGR0001`): byte 0 is
//!   `'A'` + node id (node 0 = `A`, node 1 = `B`, ... as VCS does, so node
//!   ids above 25 give the bytes after `Z`), then `PGR`, then the cluster id
//!   as 4 upper-case hex digits: `APGRDEED` = cluster 0xDEED, node 0. VCS
//!   puts a disk-group counter in those last 4 characters; we have one set
//!   of data disks per cluster (`vxfendata`), so the cluster id goes there
//!   instead, which tells keys of two clusters sharing a SAN apart, as the
//!   coordinator keys do.
//! - Anything else is **foreign** (e.g. `0x123abc` written by sg_persist).
//!
//! [`Key::owner`] recognises exactly the keys [`Key::coordinator`] and
//! [`Key::data`] make (upper-case hex, node id 0..=63), no near misses.
//! On the wire and in the `u64` of [`Key`] the first character is the most
//! significant byte, so sg_persist shows `VFDEED00` as `0x5646444545443030`.

use llt::NodeId;
use serde::{Serialize, Serializer};
use std::fmt;

/// An 8-byte reservation key (0 means "no key" in SCSI-3 PR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub u64);

/// Whose key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeyOwner {
    Coordinator { cluster: u16, node: NodeId },
    Data { cluster: u16, node: NodeId },
    Foreign,
}

/// Why a key given on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad key '{input}': {why}")]
pub struct KeyError {
    pub input: String,
    pub why: &'static str,
}

/// VCS pads character keys shorter than 8 with '-'.
const PAD: u8 = b'-';

fn upper_hex_digit(v: u8) -> u8 {
    b"0123456789ABCDEF"[(v & 0x0f) as usize]
}

fn upper_hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reads upper-case hex digits only (VCS writes upper case).
fn read_upper_hex(bytes: &[u8]) -> Option<u16> {
    bytes.iter().try_fold(0u16, |acc, &c| Some(acc << 4 | u16::from(upper_hex_value(c)?)))
}

fn cluster_hex(cluster: u16) -> [u8; 4] {
    let c = cluster.to_be_bytes();
    [upper_hex_digit(c[0] >> 4), upper_hex_digit(c[0]), upper_hex_digit(c[1] >> 4), upper_hex_digit(c[1])]
}

impl Key {
    pub const NONE: Key = Key(0);

    pub fn from_bytes(b: [u8; 8]) -> Key {
        Key(u64::from_be_bytes(b))
    }
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// The key a node registers on the coordinator disks.
    pub fn coordinator(cluster: u16, node: NodeId) -> Key {
        let c = cluster_hex(cluster);
        Key::from_bytes([b'V', b'F', c[0], c[1], c[2], c[3], upper_hex_digit(node >> 4), upper_hex_digit(node)])
    }

    /// The key a node registers on the data disks.
    pub fn data(cluster: u16, node: NodeId) -> Key {
        let c = cluster_hex(cluster);
        Key::from_bytes([b'A'.wrapping_add(node), b'P', b'G', b'R', c[0], c[1], c[2], c[3]])
    }

    pub fn owner(self) -> KeyOwner {
        let b = self.to_bytes();
        if &b[..2] == b"VF" {
            if let (Some(cluster), Some(node)) = (read_upper_hex(&b[2..6]), read_upper_hex(&b[6..8])) {
                if node <= u16::from(llt::MAX_NODE_ID) {
                    return KeyOwner::Coordinator { cluster, node: node as NodeId };
                }
            }
        }
        if &b[1..4] == b"PGR" && (b'A'..=b'A' + llt::MAX_NODE_ID).contains(&b[0]) {
            if let Some(cluster) = read_upper_hex(&b[4..8]) {
                return KeyOwner::Data { cluster, node: b[0] - b'A' };
            }
        }
        KeyOwner::Foreign
    }

    /// VCS's "[Numeric Format]": the 8 bytes in decimal, comma separated.
    pub fn numeric(self) -> String {
        self.to_bytes().iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",")
    }

    /// VCS's "[Character Format]": the bytes as characters; bytes that
    /// are not printable ASCII show as '.'.
    pub fn chars(self) -> String {
        self.to_bytes().iter().map(|&c| if (0x20..0x7f).contains(&c) { c as char } else { '.' }).collect()
    }

    /// sg_persist's spelling (`0x` + lower-case hex without leading
    /// zeros), so `grep` finds the same key in both tools' output.
    pub fn hex(self) -> String {
        format!("{:#x}", self.0)
    }

    /// A key as administrators type it (vxfenadm -k / -K / -v):
    /// `0x...` hex (sg_persist's form), 8 comma-separated decimal byte
    /// values (VCS's numeric form), or up to 8 characters (VCS's character
    /// form, `VFDEED00`); character and numeric keys shorter than 8 bytes
    /// are padded with '-' as vxfenadm does. A key of 0 is refused: it
    /// means "no key".
    pub fn parse(input: &str) -> Result<Key, KeyError> {
        let err = |why| KeyError { input: input.to_string(), why };
        let s = input.trim();
        let key = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            if hex.is_empty() || hex.len() > 16 {
                return Err(err("hex keys have 1 to 16 digits after 0x"));
            }
            Key(u64::from_str_radix(hex, 16).map_err(|_| err("not a hex number"))?)
        } else if s.contains(',') {
            let mut bytes = [PAD; 8];
            let parts: Vec<&str> = s.split(',').collect();
            if parts.len() > 8 {
                return Err(err("a numeric key has at most 8 byte values"));
            }
            for (slot, part) in bytes.iter_mut().zip(&parts) {
                *slot =
                    part.trim().parse().map_err(|_| err("numeric keys are byte values 0..255 separated by commas"))?;
            }
            Key::from_bytes(bytes)
        } else {
            if s.is_empty() || s.len() > 8 {
                return Err(err("character keys have 1 to 8 characters (or use 0x... hex)"));
            }
            if !s.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(err("character keys are printable ASCII without spaces"));
            }
            let mut bytes = [PAD; 8];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Key::from_bytes(bytes)
        };
        if key == Key::NONE {
            return Err(err("key 0 means \"no key\" in SCSI-3 persistent reservations"));
        }
        Ok(key)
    }
}

impl fmt::Display for Key {
    /// The character form when all 8 bytes are printable (as VCS shows
    /// keys), otherwise the hex form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.to_bytes().iter().all(|c| c.is_ascii_graphic()) {
            f.write_str(&self.chars())
        } else {
            f.write_str(&self.hex())
        }
    }
}

impl Serialize for Key {
    /// JSON carries keys in sg_persist's hex form: exact and unambiguous.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_key_as_in_the_vcs_guide() {
        let k = Key::coordinator(0xDEED, 0);
        assert_eq!(&k.to_bytes(), b"VFDEED00");
        assert_eq!(k.numeric(), "86,70,68,69,69,68,48,48");
        assert_eq!(k.chars(), "VFDEED00");
        assert_eq!(k.hex(), "0x5646444545443030");
        assert_eq!(k.owner(), KeyOwner::Coordinator { cluster: 57069, node: 0 });
        assert_eq!(&Key::coordinator(0xDEED, 10).to_bytes(), b"VFDEED0A");
        assert_eq!(&Key::coordinator(7, 63).to_bytes(), b"VF00073F");
    }

    #[test]
    fn data_keys() {
        assert_eq!(&Key::data(0xDEED, 0).to_bytes(), b"APGRDEED");
        assert_eq!(&Key::data(2, 1).to_bytes(), b"BPGR0002");
        assert_eq!(Key::data(2, 1).owner(), KeyOwner::Data { cluster: 2, node: 1 });
        // Node 63: 'A' + 63 = 0x80, not ASCII, still recognised.
        assert_eq!(Key::data(9, 63).to_bytes()[0], 0x80);
        assert_eq!(Key::data(9, 63).owner(), KeyOwner::Data { cluster: 9, node: 63 });
        assert_eq!(Key::data(9, 63).chars(), ".PGR0009");
    }

    #[test]
    fn every_vcs_key_round_trips_and_near_misses_are_foreign() {
        for cluster in [0u16, 1, 0xDEED, 0xFFFF] {
            for node in 0..=llt::MAX_NODE_ID {
                assert_eq!(Key::coordinator(cluster, node).owner(), KeyOwner::Coordinator { cluster, node });
                assert_eq!(Key::data(cluster, node).owner(), KeyOwner::Data { cluster, node });
            }
        }
        for foreign in [*b"VFdeed00", *b"VFDEED40", *b"VFDEEG00", *b"APGRdeed", *b"@PGR0001", *b"APGX0001"] {
            assert_eq!(Key::from_bytes(foreign).owner(), KeyOwner::Foreign, "{}", Key::from_bytes(foreign));
        }
        assert_eq!(Key(0x123abc).owner(), KeyOwner::Foreign);
    }

    #[test]
    fn foreign_key_shapes() {
        let k = Key(0x123abc);
        assert_eq!(k.hex(), "0x123abc");
        assert_eq!(k.numeric(), "0,0,0,0,0,18,58,188");
        assert_eq!(k.chars(), "......:.");
        assert_eq!(k.to_string(), "0x123abc");
        assert_eq!(Key::coordinator(0xDEED, 1).to_string(), "VFDEED01");
    }

    #[test]
    fn parse_command_line_forms() {
        assert_eq!(Key::parse("VFDEED00").unwrap(), Key::coordinator(0xDEED, 0));
        assert_eq!(Key::parse("0x5646444545443030").unwrap(), Key::coordinator(0xDEED, 0));
        assert_eq!(Key::parse("86,70,68,69,69,68,48,48").unwrap(), Key::coordinator(0xDEED, 0));
        assert_eq!(Key::parse("0x1111aaaa").unwrap(), Key(0x1111_aaaa));
        assert_eq!(&Key::parse("A").unwrap().to_bytes(), b"A-------");
        assert_eq!(&Key::parse("65,66").unwrap().to_bytes(), b"AB------");
        assert_eq!(Key::parse("0x").unwrap_err().why, "hex keys have 1 to 16 digits after 0x");
        assert!(Key::parse("0x12345678901234567").is_err());
        assert!(Key::parse("0xzz").is_err());
        assert!(Key::parse("0x0").unwrap_err().to_string().contains("no key"));
        assert!(Key::parse("0,0,0,0,0,0,0,0").is_err());
        assert!(Key::parse("1,2,3,4,5,6,7,8,9").is_err());
        assert!(Key::parse("1,256").is_err());
        assert!(Key::parse("TOOLONGKEY").is_err());
        assert!(Key::parse("A B").is_err());
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn json_form() {
        assert_eq!(serde_json::to_string(&Key(0x1111_aaaa)).unwrap(), "\"0x1111aaaa\"");
        assert_eq!(
            serde_json::to_string(&KeyOwner::Coordinator { cluster: 1, node: 2 }).unwrap(),
            r#"{"kind":"coordinator","cluster":1,"node":2}"#
        );
    }
}
