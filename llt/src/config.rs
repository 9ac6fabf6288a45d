//! /etc/llttab and /etc/llthosts: parsing and validation.
//!
//! TYPES BELOW ARE THE CONTRACT used by the core and the daemon; the parser
//! is implemented under them.

use crate::{LinkId, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

/// LLT timers, in hundredths of a second as VCS counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timers {
    /// Heartbeat interval on high-priority links (default 50 = 0.5 s).
    pub heartbeat: u32,
    /// Heartbeat interval on low-priority links (default 100 = 1 s).
    pub heartbeatlo: u32,
    /// Silence after which a high-priority link to a peer is in trouble (200).
    pub peertrouble: u32,
    /// Silence after which a low-priority link to a peer is in trouble (400).
    pub peertroublelo: u32,
    /// Silence after which a link to a peer is DOWN (1600 = 16 s).
    pub peerinact: u32,
    /// How long `lltconfig -c` listens for a duplicate node id (500 = 5 s).
    pub dupwait: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { heartbeat: 50, heartbeatlo: 100, peertrouble: 200, peertroublelo: 400, peerinact: 1600, dupwait: 500 }
    }
}

impl Timers {
    /// Names accepted by `set-timer` and `lltconfig -T name:value`.
    pub const NAMES: [&'static str; 6] = ["heartbeat", "heartbeatlo", "peertrouble", "peertroublelo", "peerinact", "dupwait"];

    /// Set one timer by name. Errors name what is wrong.
    pub fn set(&mut self, name: &str, value: u32) -> Result<(), String> {
        if value == 0 {
            return Err(format!("timer {name} must be greater than 0"));
        }
        match name {
            "heartbeat" => self.heartbeat = value,
            "heartbeatlo" => self.heartbeatlo = value,
            "peertrouble" => self.peertrouble = value,
            "peertroublelo" => self.peertroublelo = value,
            "peerinact" => self.peerinact = value,
            "dupwait" => self.dupwait = value,
            _ => return Err(format!("unknown timer '{name}' (expected one of: {})", Self::NAMES.join(", "))),
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        Some(match name {
            "heartbeat" => self.heartbeat,
            "heartbeatlo" => self.heartbeatlo,
            "peertrouble" => self.peertrouble,
            "peertroublelo" => self.peertroublelo,
            "peerinact" => self.peerinact,
            "dupwait" => self.dupwait,
            _ => return None,
        })
    }

    /// Cross-timer sanity: trouble must come before inactive, heartbeats
    /// before trouble.
    pub fn validate(&self) -> Result<(), String> {
        if self.peertrouble >= self.peerinact || self.peertroublelo >= self.peerinact {
            return Err(format!(
                "peertrouble ({}) and peertroublelo ({}) must be less than peerinact ({})",
                self.peertrouble, self.peertroublelo, self.peerinact
            ));
        }
        if self.heartbeat >= self.peertrouble || self.heartbeatlo >= self.peertroublelo {
            return Err(format!(
                "heartbeat ({}) must be less than peertrouble ({}) and heartbeatlo ({}) less than peertroublelo ({})",
                self.heartbeat, self.peertrouble, self.heartbeatlo, self.peertroublelo
            ));
        }
        Ok(())
    }
}

/// One `link` or `link-lowpri` line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkConfig {
    /// Position in the configuration: the link id carried in frames.
    pub id: LinkId,
    /// The tag (first column), unique per node: `eth1`, `udp1`, ...
    pub tag: String,
    /// Interface name (`/dev/` prefix stripped), or `/dev/udp` for udp links.
    pub device: String,
    pub lowpri: bool,
    pub kind: LinkKind,
    /// MTU column: None for `-` (use the interface MTU).
    pub mtu: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LinkKind {
    Ether,
    Udp {
        /// The SAP column: UDP port (one per link).
        port: u16,
        /// Local address to bind.
        local: IpAddr,
        /// Broadcast address for discovery; None (`-`) means only set-addr peers.
        broadcast: Option<IpAddr>,
        /// Peer addresses from `set-addr NODE TAG ADDR`.
        peers: BTreeMap<NodeId, IpAddr>,
    },
}

/// The whole LLT configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LltConfig {
    pub node_id: NodeId,
    pub node_name: String,
    /// set-cluster, 0..=65535.
    pub cluster_id: u16,
    pub links: Vec<LinkConfig>,
    pub timers: Timers,
    /// llthosts: node id -> name.
    pub hosts: BTreeMap<NodeId, String>,
    /// `exclude A-B` / `exclude A`: node ids never accepted as peers.
    pub excluded: BTreeSet<NodeId>,
}

/// A problem at one place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {msg}", file.display())]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub msg: String,
}

/// All problems found in one pass; the configuration is refused if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<Diagnostic>);
