//! What `lltconfig` and `lltstat` print: pure functions from a
//! [`StatusReport`] (or [`Timers`]) to the text VCS administrators know, and
//! the row models the `-json` forms serialize.
//!
//! Owns: layout (column widths, labels, which nodes appear where). Never:
//! talks to the daemon, prints, or decides exit codes (the binaries do).
//!
//! Each table is built in two steps, a row model ([`node_rows`],
//! [`link_addresses`], [`counters`]) then a renderer, so that the text and
//! the JSON forms cannot disagree about what they show.

use crate::config::Timers;
use crate::core::{LinkState, Phase, Stats};
use crate::ctl::StatusReport;
use crate::{LinkId, NodeId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Name shown for a node that llthosts does not list.
const UNNAMED: &str = "-";

/// The one line `lltconfig` (no option) prints.
pub fn phase_line(phase: Option<Phase>) -> &'static str {
    match phase {
        Some(Phase::Running) => "LLT is running",
        Some(Phase::Probing) => "LLT is listening for a duplicate node id",
        Some(Phase::Refused) => "LLT refused to start: duplicate node id",
        None => "LLT is not running",
    }
}

/// `lltconfig -T query`.
pub fn timers(t: &Timers) -> String {
    let mut out = String::from("Current LLT timer values (.01 sec units):\n");
    for name in Timers::NAMES {
        // NAMES and get() live side by side in config.rs, so a name without a
        // value would be a bug there; show it rather than hide it.
        let value = t.get(name).map_or_else(|| "?".to_string(), |v| v.to_string());
        let _ = writeln!(out, "  {name:<11} = {value}");
    }
    out
}

// ---------------------------------------------------------------------------
// lltstat (counters)

/// Every counter `lltstat` shows, with its label, in display order.
pub fn counters(s: &Stats, io_errors: u64) -> Vec<(&'static str, u64)> {
    // Destructured without `..` so that a counter added to Stats fails to
    // compile here instead of silently missing from lltstat.
    let Stats {
        snd_data,
        snd_retransmit,
        snd_heartbeat,
        snd_announce,
        snd_ack,
        snd_nack,
        snd_would_block,
        rcv_data,
        rcv_heartbeat,
        rcv_announce,
        rcv_ack,
        rcv_nack,
        rcv_duplicate,
        rcv_out_of_window,
        rcv_stale_session,
        msgs_sent,
        msgs_delivered,
        dropped_foreign_cluster,
        dropped_malformed,
        dropped_not_for_us,
        dropped_excluded,
        dropped_duplicate_node,
        dropped_no_port,
    } = *s;
    vec![
        ("Snd data packets", snd_data),
        ("Snd retransmit data", snd_retransmit),
        ("Snd heartbeat packets", snd_heartbeat),
        ("Snd announce packets", snd_announce),
        ("Snd ack packets", snd_ack),
        ("Snd nack packets", snd_nack),
        ("Snd blocked (window full)", snd_would_block),
        ("Rcv data packets", rcv_data),
        ("Rcv heartbeat packets", rcv_heartbeat),
        ("Rcv announce packets", rcv_announce),
        ("Rcv ack packets", rcv_ack),
        ("Rcv nack packets", rcv_nack),
        ("Rcv duplicate", rcv_duplicate),
        ("Rcv out of window", rcv_out_of_window),
        ("Rcv stale session", rcv_stale_session),
        ("Messages sent", msgs_sent),
        ("Messages delivered", msgs_delivered),
        ("Dropped foreign cluster", dropped_foreign_cluster),
        ("Dropped malformed", dropped_malformed),
        ("Dropped not for this node", dropped_not_for_us),
        ("Dropped from excluded node", dropped_excluded),
        ("Dropped from duplicate node id", dropped_duplicate_node),
        ("Dropped for unbound port", dropped_no_port),
        ("Link I/O errors", io_errors),
    ]
}

/// `lltstat` with no option.
pub fn stats(r: &StatusReport) -> String {
    let mut out = String::from("LLT statistics:\n");
    for (label, value) in counters(&r.stats, r.io_errors) {
        // Width 8 plus a space, so even a huge count stays apart from its label.
        let _ = writeln!(out, "    {value:<8} {label}");
    }
    out
}

// ---------------------------------------------------------------------------
// lltstat -n / -nvv

/// One node as `lltstat -n` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub node: NodeId,
    pub name: String,
    /// This node (marked `*`).
    pub local: bool,
    /// `OPEN` or `CONNWAIT`.
    pub state: &'static str,
    /// Links not DOWN (for the local node: configured links).
    pub links_up: usize,
    /// One entry per configured link, in configuration order.
    pub links: Vec<NodeLink>,
}

/// One link of one node as `lltstat -nvv` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLink {
    pub link: LinkId,
    pub tag: String,
    /// `UP`, `DOWN` or `TROUBLE`.
    pub status: &'static str,
    /// The node's address on the link, when known.
    pub address: Option<String>,
}

/// The local node's name: llthosts first (what the peers call it), then the
/// name the daemon reports.
fn local_name(r: &StatusReport) -> String {
    match r.hosts.get(&r.node_id) {
        Some(n) => n.clone(),
        None if !r.node_name.is_empty() => r.node_name.clone(),
        None => UNNAMED.to_string(),
    }
}

fn host_name(r: &StatusReport, node: NodeId) -> String {
    r.hosts.get(&node).cloned().unwrap_or_else(|| UNNAMED.to_string())
}

/// Rows of `lltstat -n`: the local node, every llthosts node and every peer
/// LLT has heard of, sorted by node id.
pub fn node_rows(r: &StatusReport) -> Vec<NodeRow> {
    let mut rows: BTreeMap<NodeId, NodeRow> = BTreeMap::new();
    // Hosts first: a host never heard from is CONNWAIT with every link DOWN.
    for (&node, name) in &r.hosts {
        let links = r
            .links
            .iter()
            .map(|l| NodeLink { link: l.id, tag: l.tag.clone(), status: LinkState::Down.as_str(), address: None })
            .collect();
        rows.insert(node, NodeRow { node, name: name.clone(), local: false, state: "CONNWAIT", links_up: 0, links });
    }
    for p in r.peers.iter().filter(|p| p.node != r.node_id) {
        let links: Vec<NodeLink> = r
            .links
            .iter()
            .map(|l| {
                let pl = p.links.iter().find(|pl| pl.link == l.id);
                NodeLink {
                    link: l.id,
                    tag: l.tag.clone(),
                    status: pl.map_or(LinkState::Down, |pl| pl.state).as_str(),
                    address: pl.and_then(|pl| pl.addr).map(|a| a.to_string()),
                }
            })
            .collect();
        rows.insert(
            p.node,
            NodeRow {
                node: p.node,
                name: host_name(r, p.node),
                local: false,
                state: if p.open { "OPEN" } else { "CONNWAIT" },
                // Counted from the peer's own list, not the joined one, so a
                // link the report does not configure still shows up here.
                links_up: p.links.iter().filter(|l| l.state.is_alive()).count(),
                links,
            },
        );
    }
    let links = r
        .links
        .iter()
        .map(|l| NodeLink { link: l.id, tag: l.tag.clone(), status: LinkState::Up.as_str(), address: Some(l.address.clone()) })
        .collect();
    rows.insert(
        r.node_id,
        NodeRow { node: r.node_id, name: local_name(r), local: true, state: "OPEN", links_up: r.links.len(), links },
    );
    rows.into_values().collect()
}

const NODES_TITLE: &str = "LLT node information:\n";

/// The start of a node line: marker, id, name, padded to the State column.
fn node_prefix(row: &NodeRow) -> String {
    let mark = if row.local { '*' } else { ' ' };
    // Name padded to 17 plus a space: names up to 16 characters stay aligned
    // and a longer one still stays apart from its state.
    format!("   {mark}{:>2} {:<17} ", row.node, row.name)
}

/// `lltstat -n`.
pub fn nodes(rows: &[NodeRow]) -> String {
    let mut out = String::from(NODES_TITLE);
    out.push_str("    Node                 State    Links\n");
    for row in rows {
        let _ = writeln!(out, "{}{:<8}{:>5}", node_prefix(row), row.state, row.links_up);
    }
    out
}

/// `lltstat -nvv`.
pub fn nodes_verbose(rows: &[NodeRow]) -> String {
    let mut out = String::from(NODES_TITLE);
    out.push_str("    Node                 State    Link  Status  Address\n");
    for row in rows {
        let _ = writeln!(out, "{}{}", node_prefix(row), row.state);
        for l in &row.links {
            let line = format!("{:34}{:<6} {:<7} {}", "", l.tag, l.status, l.address.as_deref().unwrap_or(""));
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// lltconfig -a list

/// One configured link and the addresses known on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkAddresses {
    pub link: LinkId,
    pub tag: String,
    pub device: String,
    pub kind: String,
    pub nodes: Vec<NodeAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeAddress {
    pub node: NodeId,
    pub name: String,
    pub address: String,
    /// The local node's own address (VCS calls it permanent: it is
    /// configured, not learned).
    pub permanent: bool,
}

/// Per link: the local address and every peer address learned on it,
/// sorted by node id.
pub fn link_addresses(r: &StatusReport) -> Vec<LinkAddresses> {
    r.links
        .iter()
        .map(|l| {
            let mut nodes: BTreeMap<NodeId, NodeAddress> = BTreeMap::new();
            for p in r.peers.iter().filter(|p| p.node != r.node_id) {
                if let Some(addr) = p.links.iter().find(|pl| pl.link == l.id).and_then(|pl| pl.addr) {
                    let na = NodeAddress { node: p.node, name: host_name(r, p.node), address: addr.to_string(), permanent: false };
                    nodes.insert(p.node, na);
                }
            }
            let own = NodeAddress { node: r.node_id, name: local_name(r), address: l.address.clone(), permanent: true };
            nodes.insert(r.node_id, own);
            LinkAddresses { link: l.id, tag: l.tag.clone(), device: l.device.clone(), kind: l.kind.clone(), nodes: nodes.into_values().collect() }
        })
        .collect()
}

/// `lltconfig -a list`.
pub fn link_addresses_text(links: &[LinkAddresses]) -> String {
    // One name width for the whole listing so the colons line up, at least
    // the VCS width.
    let width = links.iter().flat_map(|l| &l.nodes).map(|n| n.name.len()).max().unwrap_or(0).max(11);
    let mut out = String::new();
    for l in links {
        let _ = writeln!(out, "Link {} ({}):", l.link, l.tag);
        for n in &l.nodes {
            let perm = if n.permanent { "  permanent" } else { "" };
            let _ = writeln!(out, "  Node {:>3} {:<width$} :  {}{perm}", n.node, n.name, n.address);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{LinkAddr, PeerLinkStatus, PeerStatus};
    use crate::ctl::LinkReport;

    fn link(id: LinkId, tag: &str, mac: &str) -> LinkReport {
        LinkReport {
            id,
            tag: tag.into(),
            device: tag.into(),
            kind: "ether".into(),
            lowpri: false,
            mtu: 1500,
            address: mac.into(),
        }
    }

    fn plink(link: LinkId, state: LinkState, last: u8, seg: u8) -> PeerLinkStatus {
        PeerLinkStatus {
            link,
            tag: format!("eth{}", link + 1),
            state,
            addr: Some(LinkAddr::Mac([2, 0, 0, 0, seg, last])),
            rx_frames: 0,
            tx_frames: 0,
            hears_us: true,
        }
    }

    /// north (0, local), south (1, open, link 1 down), west (2, in llthosts,
    /// never heard); two links.
    fn report() -> StatusReport {
        let mut hosts = BTreeMap::new();
        hosts.insert(0, "north".to_string());
        hosts.insert(1, "south".to_string());
        hosts.insert(2, "west".to_string());
        StatusReport {
            phase: Some(Phase::Running),
            node_id: 0,
            node_name: "north".into(),
            cluster_id: 7,
            links: vec![link(0, "eth1", "02:00:00:00:0A:01"), link(1, "eth2", "02:00:00:00:0B:01")],
            hosts,
            peers: vec![PeerStatus {
                node: 1,
                open: true,
                seen: true,
                links: vec![plink(0, LinkState::Up, 2, 0x0A), plink(1, LinkState::Down, 2, 0x0B)],
                in_flight: 0,
            }],
            stats: Stats { snd_data: 152, rcv_out_of_window: 3, ..Stats::default() },
            timers: Timers::default(),
            io_errors: 9,
        }
    }

    #[test]
    fn phase_lines() {
        assert_eq!(phase_line(Some(Phase::Running)), "LLT is running");
        assert_eq!(phase_line(Some(Phase::Probing)), "LLT is listening for a duplicate node id");
        assert_eq!(phase_line(Some(Phase::Refused)), "LLT refused to start: duplicate node id");
        assert_eq!(phase_line(None), "LLT is not running");
    }

    #[test]
    fn timers_query() {
        let expected = "\
Current LLT timer values (.01 sec units):
  heartbeat   = 50
  heartbeatlo = 100
  peertrouble = 200
  peertroublelo = 400
  peerinact   = 1600
  dupwait     = 500
";
        assert_eq!(timers(&Timers::default()), expected);
    }

    #[test]
    fn nodes_table() {
        let expected = "\
LLT node information:
    Node                 State    Links
   * 0 north             OPEN        2
     1 south             OPEN        1
     2 west              CONNWAIT    0
";
        assert_eq!(nodes(&node_rows(&report())), expected);
    }

    #[test]
    fn nodes_verbose_table() {
        let expected = "\
LLT node information:
    Node                 State    Link  Status  Address
   * 0 north             OPEN
                                  eth1   UP      02:00:00:00:0A:01
                                  eth2   UP      02:00:00:00:0B:01
     1 south             OPEN
                                  eth1   UP      02:00:00:00:0A:02
                                  eth2   DOWN    02:00:00:00:0B:02
     2 west              CONNWAIT
                                  eth1   DOWN
                                  eth2   DOWN
";
        assert_eq!(nodes_verbose(&node_rows(&report())), expected);
    }

    #[test]
    fn unknown_peer_trouble_link_and_long_names() {
        let mut r = report();
        r.hosts.insert(1, "a-sixteen-chars!".into());
        let mut stranger = r.peers[0].clone();
        stranger.node = 12;
        stranger.open = false;
        stranger.links[0].state = LinkState::Trouble;
        stranger.links[1].addr = None;
        r.peers.push(stranger);
        let expected = "\
LLT node information:
    Node                 State    Link  Status  Address
   * 0 north             OPEN
                                  eth1   UP      02:00:00:00:0A:01
                                  eth2   UP      02:00:00:00:0B:01
     1 a-sixteen-chars!  OPEN
                                  eth1   UP      02:00:00:00:0A:02
                                  eth2   DOWN    02:00:00:00:0B:02
     2 west              CONNWAIT
                                  eth1   DOWN
                                  eth2   DOWN
    12 -                 CONNWAIT
                                  eth1   TROUBLE 02:00:00:00:0A:02
                                  eth2   DOWN
";
        assert_eq!(nodes_verbose(&node_rows(&r)), expected);
        // A TROUBLE link still counts: the peer is reachable over it.
        assert_eq!(node_rows(&r)[3].links_up, 1);
    }

    #[test]
    fn counters_table() {
        let text = stats(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "LLT statistics:");
        assert_eq!(lines[1], "    152      Snd data packets");
        assert_eq!(lines[2], "    0        Snd retransmit data");
        assert!(lines.contains(&"    3        Rcv out of window"));
        assert!(lines.contains(&"    0        Dropped foreign cluster"));
        assert!(lines.contains(&"    0        Dropped not for this node"));
        assert_eq!(*lines.last().unwrap(), "    9        Link I/O errors");
        // One line per Stats field, plus the title and io_errors.
        let fields = serde_json::to_value(Stats::default()).unwrap().as_object().unwrap().len();
        assert_eq!(lines.len(), fields + 2);
    }

    #[test]
    fn addresses_list() {
        let expected = "\
Link 0 (eth1):
  Node   0 north       :  02:00:00:00:0A:01  permanent
  Node   1 south       :  02:00:00:00:0A:02
Link 1 (eth2):
  Node   0 north       :  02:00:00:00:0B:01  permanent
  Node   1 south       :  02:00:00:00:0B:02
";
        assert_eq!(link_addresses_text(&link_addresses(&report())), expected);
    }

    #[test]
    fn addresses_list_skips_unknown_addresses() {
        let mut r = report();
        r.peers[0].links[1].addr = None;
        let text = link_addresses_text(&link_addresses(&r));
        assert!(!text.contains("0B:02"), "{text}");
    }
}
