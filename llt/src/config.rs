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

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------
//
// Both files are read line by line: `#` starts a comment anywhere on a line,
// columns are separated by any whitespace, blank lines are skipped. Every
// problem is recorded as a Diagnostic and parsing carries on, so an operator
// sees all mistakes of a file at once instead of fixing them one per restart.
// Nothing here indexes user data directly or unwraps a parse: any input,
// however broken, ends in Ok or Err, never a panic.

use std::collections::HashMap;
use std::path::Path;

/// Column layout of a link line, quoted in "missing columns" messages.
const LINK_USAGE: &str = "TAG DEVICE NODERANGE TYPE SAP MTU [LOCALIP BCAST]";

/// Parse llthosts text. `file` is used only in diagnostics.
pub fn parse_llthosts(file: &Path, text: &str) -> Result<BTreeMap<NodeId, String>, ConfigError> {
    let mut sink = Sink::new(file);
    let hosts = parse_llthosts_into(&mut sink, text);
    sink.finish(hosts)
}

/// Parse llttab text against already-parsed hosts. `iface_exists` says
/// whether a network interface name exists on this machine (the daemon
/// passes a real lookup; tests pass a closure).
pub fn parse_llttab(
    file: &Path,
    text: &str,
    hosts: &BTreeMap<NodeId, String>,
    iface_exists: &dyn Fn(&str) -> bool,
) -> Result<LltConfig, ConfigError> {
    let mut sink = Sink::new(file);
    let config = parse_llttab_into(&mut sink, text, hosts, iface_exists);
    match config {
        Some(config) => sink.finish(config),
        // The parser only yields None after recording why.
        None => Err(ConfigError(sink.diags)),
    }
}

/// Read both files from disk (the daemon passes `crate::paths::llttab()` and
/// `crate::paths::llthosts()`, which honour `$HA_ROOT`) and parse them. A
/// missing or unreadable file is a Diagnostic with line 0. Problems of both
/// files are returned together, llthosts first.
pub fn load(llttab: &Path, llthosts: &Path, iface_exists: &dyn Fn(&str) -> bool) -> Result<LltConfig, ConfigError> {
    let mut hosts_sink = Sink::new(llthosts);
    let hosts = match read_config_file(llthosts) {
        Ok(text) => parse_llthosts_into(&mut hosts_sink, &text),
        Err(msg) => {
            hosts_sink.err(0, msg);
            BTreeMap::new()
        }
    };

    // llttab is parsed even when llthosts is broken: its own mistakes (an
    // unknown interface, a bad timer) are worth reporting in the same run.
    let mut tab_sink = Sink::new(llttab);
    let config = match read_config_file(llttab) {
        Ok(text) => parse_llttab_into(&mut tab_sink, &text, &hosts, iface_exists),
        Err(msg) => {
            tab_sink.err(0, msg);
            None
        }
    };

    let mut diags = hosts_sink.diags;
    diags.append(&mut tab_sink.diags);
    match config {
        Some(config) if diags.is_empty() => Ok(config),
        _ => Err(ConfigError(diags)),
    }
}

/// Real interface lookup in the caller's network namespace.
///
/// if_nametoindex asks the kernel about the current namespace, which is what
/// a node running in its own namespace needs; /sys/class/net would show the
/// namespace sysfs was mounted in, which is not always the same.
pub fn system_iface_exists(name: &str) -> bool {
    // A name with an interior NUL cannot be passed to C and cannot exist.
    let Ok(cname) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: cname is a valid NUL-terminated string that outlives the call.
    unsafe { libc::if_nametoindex(cname.as_ptr()) != 0 }
}

/// Read a whole configuration file, turning the I/O error into a message.
fn read_config_file(path: &Path) -> Result<String, String> {
    match std::fs::read(path) {
        // Lossy: a stray non-UTF-8 byte should produce a diagnostic about its
        // line (an unknown name, a bad number), not make the file unreadable.
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Collects the diagnostics of one file (every configuration parser of the
/// project reports through one, so all say file:line the same way).
pub struct Sink {
    pub file: PathBuf,
    pub diags: Vec<Diagnostic>,
}

impl Sink {
    pub fn new(file: &Path) -> Self {
        Sink { file: file.to_path_buf(), diags: Vec::new() }
    }

    pub fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.diags.push(Diagnostic { file: self.file.clone(), line, msg: msg.into() });
    }

    /// The value if nothing went wrong, else every problem found.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.diags.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(self.diags))
        }
    }
}

/// The non-empty lines of a file as (1-based line number, columns), with
/// comments and Windows `\r` removed.
fn logical_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.split('\n').enumerate().filter_map(|(i, raw)| {
        let line = raw.trim_end_matches('\r');
        let line = match line.find('#') {
            Some(pos) => line.get(..pos).unwrap_or(""),
            None => line,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            None
        } else {
            Some((i + 1, words))
        }
    })
}

// ---------------------------------------------------------------------------
// Numbers and addresses
// ---------------------------------------------------------------------------

/// A plain decimal number (ASCII digits only: no sign, no spaces) within
/// lo..=hi. `what` names the value in messages ("node id", "port").
fn decimal_in(tok: &str, lo: u64, hi: u64, what: &str) -> Result<u64, String> {
    if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} '{tok}' (expected a number {lo}..{hi})"));
    }
    match tok.parse::<u64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        // Digits that overflow u64 are out of range too.
        _ => Err(format!("{what} {tok} is out of range (expected {lo}..{hi})")),
    }
}

fn node_id(tok: &str) -> Result<NodeId, String> {
    // The range check makes the narrowing cast lossless.
    decimal_in(tok, 0, u64::from(crate::MAX_NODE_ID), "node id").map(|v| v as NodeId)
}

/// `0x`-prefixed hex or plain decimal, as VCS writes SAP values (0xCAFE).
fn hex_or_decimal(tok: &str) -> Option<u64> {
    let hex = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X"));
    match hex {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) => tok.parse().ok(),
        None => None,
    }
}

/// MTU column: `-` (use the interface MTU) or 68..=65535 (68 is the IPv4
/// minimum; below that no frame could carry an LLT header and payload).
fn mtu(tok: &str) -> Result<Option<u16>, String> {
    if tok == "-" {
        return Ok(None);
    }
    decimal_in(tok, 68, 65535, "MTU")
        .map(|v| Some(v as u16))
        .map_err(|e| format!("{e}; use '-' for the interface MTU"))
}

fn ip_addr(tok: &str, what: &str) -> Result<IpAddr, String> {
    tok.parse().map_err(|_| format!("bad {what} '{tok}' (expected an IPv4 or IPv6 address)"))
}

fn family(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

// ---------------------------------------------------------------------------
// llthosts
// ---------------------------------------------------------------------------

/// Parse llthosts, recording problems in `sink`. The map holds every line
/// that was fine (the first definition wins on duplicates), so llttab can
/// still be checked against it when llthosts has mistakes.
fn parse_llthosts_into(sink: &mut Sink, text: &str) -> BTreeMap<NodeId, String> {
    let mut hosts = BTreeMap::new();
    let mut id_line: HashMap<NodeId, usize> = HashMap::new();
    let mut name_line: HashMap<String, (usize, NodeId)> = HashMap::new();

    for (line, words) in logical_lines(text) {
        let (id_tok, name) = match words.as_slice() {
            [id, name] => (*id, *name),
            [id] => {
                sink.err(line, format!("node '{id}' has no name (expected '<nodeid> <name>')"));
                continue;
            }
            [_, _, extra @ ..] => {
                sink.err(line, format!("unexpected extra columns '{}' (expected '<nodeid> <name>')", extra.join(" ")));
                continue;
            }
            [] => continue,
        };
        let id = match node_id(id_tok) {
            Ok(id) => id,
            Err(e) => {
                sink.err(line, e);
                continue;
            }
        };
        if let Some(first) = id_line.get(&id) {
            sink.err(line, format!("duplicate node id {id} (already defined on line {first})"));
            continue;
        }
        if let Some((first, other)) = name_line.get(name) {
            sink.err(line, format!("duplicate node name '{name}' (already node {other} on line {first})"));
            continue;
        }
        id_line.insert(id, line);
        name_line.insert(name.to_string(), (line, id));
        hosts.insert(id, name.to_string());
    }
    hosts
}

// ---------------------------------------------------------------------------
// llttab
// ---------------------------------------------------------------------------

/// A `set-addr` line, kept until the end of the file because it may name a
/// link defined further down.
struct PendingAddr {
    line: usize,
    node: NodeId,
    tag: String,
    addr: IpAddr,
}

/// Where a link tag or interface was first used, for duplicate messages.
struct FirstUse {
    line: usize,
    tag: String,
}

/// State accumulated while walking llttab.
struct TabParser<'a> {
    sink: &'a mut Sink,
    hosts: &'a BTreeMap<NodeId, String>,
    iface_exists: &'a dyn Fn(&str) -> bool,
    /// Line of the first set-node / set-cluster, even if its value was bad:
    /// a bad value must not also be reported as "missing".
    node_line: Option<usize>,
    node: Option<(NodeId, String)>,
    cluster_line: Option<usize>,
    cluster: Option<u16>,
    /// Number of link lines seen, valid or not (for the MAX_LINKS check).
    link_lines: usize,
    /// The valid links, ids assigned in order.
    links: Vec<LinkConfig>,
    /// Every tag seen on a link line, valid or not: its line and TYPE column.
    tags: HashMap<String, (usize, String)>,
    /// Ether interfaces in use.
    devices: HashMap<String, FirstUse>,
    /// UDP (local address, port) pairs in use: two links cannot bind both.
    udp_binds: HashMap<(IpAddr, u16), FirstUse>,
    timers: Timers,
    last_timer_line: Option<usize>,
    addrs: Vec<PendingAddr>,
    /// (line, first, last) of each exclude range.
    excludes: Vec<(usize, NodeId, NodeId)>,
}

fn parse_llttab_into(
    sink: &mut Sink,
    text: &str,
    hosts: &BTreeMap<NodeId, String>,
    iface_exists: &dyn Fn(&str) -> bool,
) -> Option<LltConfig> {
    let mut p = TabParser {
        sink,
        hosts,
        iface_exists,
        node_line: None,
        node: None,
        cluster_line: None,
        cluster: None,
        link_lines: 0,
        links: Vec::new(),
        tags: HashMap::new(),
        devices: HashMap::new(),
        udp_binds: HashMap::new(),
        timers: Timers::default(),
        last_timer_line: None,
        addrs: Vec::new(),
        excludes: Vec::new(),
    };
    for (line, words) in logical_lines(text) {
        p.directive(line, &words);
    }
    p.finish()
}

impl TabParser<'_> {
    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.sink.err(line, msg);
    }

    /// Dispatch one line. `words[0]` is the directive, the rest its arguments.
    fn directive(&mut self, line: usize, words: &[&str]) {
        let Some((&name, args)) = words.split_first() else {
            return;
        };
        match name {
            "set-node" => self.set_node(line, args),
            "set-cluster" => self.set_cluster(line, args),
            "link" => self.link(line, args, false),
            "link-lowpri" => self.link(line, args, true),
            "set-timer" => self.set_timer(line, args),
            "set-addr" => self.set_addr(line, args),
            "exclude" => self.exclude(line, args),
            // VCS tuning knobs with no equivalent here: debug link minimum,
            // flow-control watermarks, verbosity, heartbeat broadcasting and
            // ARP for UDP peers. Accepted so a VCS llttab loads unchanged.
            "set-dbg-minlinks" | "set-flow" | "set-verbose" | "set-bcasthb" | "set-arp" => {}
            _ => self.err(
                line,
                format!(
                    "unknown directive '{name}' (expected set-node, set-cluster, link, link-lowpri, \
                     set-timer, set-addr or exclude)"
                ),
            ),
        }
    }

    /// The single argument of a directive, or a message naming what it takes.
    fn one_arg<'w>(&mut self, line: usize, directive: &str, usage: &str, args: &[&'w str]) -> Option<&'w str> {
        match args {
            [one] => Some(*one),
            _ => {
                self.err(line, format!("{directive} takes exactly one argument ({usage}), found {}", args.len()));
                None
            }
        }
    }

    /// `set-node NAME|NUMBER`: this node, which must be listed in llthosts.
    fn set_node(&mut self, line: usize, args: &[&str]) {
        if let Some(first) = self.node_line {
            self.err(line, format!("duplicate set-node directive (already set on line {first})"));
            return;
        }
        self.node_line = Some(line);
        let Some(tok) = self.one_arg(line, "set-node", "a node name or number", args) else {
            return;
        };
        match self.lookup_node(tok) {
            Ok(node) => self.node = Some(node),
            Err(e) => self.err(line, e),
        }
    }

    /// Resolve a set-node value: all digits means a node id, anything else a
    /// name; either way it must be in llthosts, which gives the name.
    fn lookup_node(&self, tok: &str) -> Result<(NodeId, String), String> {
        if tok.bytes().all(|b| b.is_ascii_digit()) {
            let id = node_id(tok)?;
            match self.hosts.get(&id) {
                Some(name) => Ok((id, name.clone())),
                None => Err(format!("node {id} is missing from llthosts (set-node must name a node listed there)")),
            }
        } else {
            match self.hosts.iter().find(|(_, name)| name.as_str() == tok) {
                Some((id, name)) => Ok((*id, name.clone())),
                None => Err(format!("node name '{tok}' is not in llthosts (set-node must name a node listed there)")),
            }
        }
    }

    /// `set-cluster N`.
    fn set_cluster(&mut self, line: usize, args: &[&str]) {
        if let Some(first) = self.cluster_line {
            self.err(line, format!("duplicate set-cluster directive (already set on line {first})"));
            return;
        }
        self.cluster_line = Some(line);
        let Some(tok) = self.one_arg(line, "set-cluster", "a cluster id 0..65535", args) else {
            return;
        };
        match decimal_in(tok, 0, 65535, "cluster id") {
            Ok(v) => self.cluster = Some(v as u16),
            Err(e) => self.err(line, e),
        }
    }

    /// `link` / `link-lowpri TAG DEVICE NODERANGE TYPE SAP MTU [LOCALIP BCAST]`.
    /// Every problem of the line is reported; the link is kept only if none.
    fn link(&mut self, line: usize, args: &[&str], lowpri: bool) {
        let directive = if lowpri { "link-lowpri" } else { "link" };
        self.link_lines += 1;
        if self.link_lines > crate::MAX_LINKS {
            self.err(
                line,
                format!("too many links: this is link number {}, at most {} are allowed", self.link_lines, crate::MAX_LINKS),
            );
        }
        let (tag, device, range, kind, sap, mtu_tok, extra) = match args {
            [tag, device, range, kind, sap, mtu, extra @ ..] if extra.len() <= 2 => {
                (*tag, *device, *range, *kind, *sap, *mtu, extra)
            }
            [_, _, _, _, _, _, extra @ ..] => {
                self.err(
                    line,
                    format!("{directive}: too many columns: found {}, expected {LINK_USAGE}", 6 + extra.len()),
                );
                return;
            }
            _ => {
                self.err(line, format!("{directive}: missing columns: found {}, expected {LINK_USAGE}", args.len()));
                return;
            }
        };
        let before = self.sink.diags.len();

        if let Some((first, _)) = self.tags.get(tag) {
            let first = *first;
            self.err(line, format!("duplicate link tag '{tag}' (already used on line {first})"));
        } else {
            self.tags.insert(tag.to_string(), (line, kind.to_string()));
        }
        if range != "-" {
            self.err(line, format!("node range '{range}' is not supported (expected '-': the link reaches all nodes)"));
        }
        let mtu = match mtu(mtu_tok) {
            Ok(m) => m,
            Err(e) => {
                self.err(line, e);
                None
            }
        };
        let parsed = match kind {
            "ether" => self.ether_link(line, tag, device, sap, extra),
            "udp" => self.udp_link(line, tag, device, sap, extra),
            _ => {
                self.err(line, format!("unknown link type '{kind}' (expected 'ether' or 'udp')"));
                None
            }
        };
        // Keep the link only if this line produced no diagnostic at all.
        if let Some((device, kind)) = parsed {
            if self.sink.diags.len() == before {
                // At most MAX_LINKS links get here, so the id fits a LinkId.
                let id = self.links.len() as LinkId;
                self.links.push(LinkConfig { id, tag: tag.to_string(), device, lowpri, kind, mtu });
            }
        }
    }

    /// Columns of an ether link. Returns the interface name and kind.
    fn ether_link(&mut self, line: usize, tag: &str, device: &str, sap: &str, extra: &[&str]) -> Option<(String, LinkKind)> {
        let mut ok = true;
        // VCS writes `/dev/eth1` on some platforms; the interface is `eth1`.
        let iface = device.strip_prefix("/dev/").unwrap_or(device);
        if !(self.iface_exists)(iface) {
            self.err(line, format!("unknown interface '{iface}' (no such network interface on this node)"));
            ok = false;
        }
        if let Some(first) = self.devices.get(iface) {
            let msg = format!(
                "interface '{iface}' is already used by link '{}' on line {} (two links cannot share one interface)",
                first.tag, first.line
            );
            self.err(line, msg);
            ok = false;
        } else {
            self.devices.insert(iface.to_string(), FirstUse { line, tag: tag.to_string() });
        }
        // The SAP is only validated: frames always travel under
        // ETHERTYPE_LLT, so every node agrees whatever the file says.
        let sap_ok = sap == "-" || hex_or_decimal(sap).is_some_and(|v| v <= 0xFFFF);
        if !sap_ok {
            self.err(line, format!("bad SAP '{sap}' (expected '-' or a hex/decimal number 0..0xFFFF, such as 0xCAFE)"));
            ok = false;
        }
        // LOCALIP/BCAST mean nothing for ether; an address there most likely
        // means the type column should have said udp.
        if let Some(bad) = extra.iter().find(|t| **t != "-") {
            self.err(line, format!("ether link takes no LOCALIP/BCAST columns, found '{bad}' (did you mean type 'udp'?)"));
            ok = false;
        }
        ok.then(|| (iface.to_string(), LinkKind::Ether))
    }

    /// Columns of a udp link. Returns `/dev/udp` and the kind (peers empty
    /// until set-addr lines are resolved).
    fn udp_link(&mut self, line: usize, tag: &str, device: &str, sap: &str, extra: &[&str]) -> Option<(String, LinkKind)> {
        let mut ok = true;
        if device != "/dev/udp" && device != "udp" {
            self.err(line, format!("bad device '{device}' for a udp link (expected '/dev/udp')"));
            ok = false;
        }
        let port = match decimal_in(sap, 1, 65535, "UDP port") {
            Ok(p) => Some(p as u16),
            Err(e) => {
                self.err(line, format!("{e}; a udp link takes its port in the SAP column"));
                None
            }
        };
        let local = match extra.first() {
            None => {
                self.err(line, format!("udp link needs a LOCALIP column (IPv4 or IPv6 address), expected {LINK_USAGE}"));
                None
            }
            Some(tok) => match ip_addr(tok, "local address") {
                Ok(a) => Some(a),
                Err(e) => {
                    self.err(line, e);
                    None
                }
            },
        };
        // A missing BCAST column means the same as `-`: no broadcast, peers
        // come from set-addr only.
        let broadcast = match extra.get(1) {
            None | Some(&"-") => None,
            Some(tok) => match ip_addr(tok, "broadcast address") {
                Ok(a) => Some(a),
                Err(e) => {
                    self.err(line, e);
                    ok = false;
                    None
                }
            },
        };
        let (Some(port), Some(local)) = (port, local) else {
            return None;
        };
        if let Some(b) = broadcast {
            if b.is_ipv4() != local.is_ipv4() {
                self.err(
                    line,
                    format!("broadcast address {b} is {} but local address {local} is {}", family(&b), family(&local)),
                );
                ok = false;
            }
        }
        if let Some(first) = self.udp_binds.get(&(local, port)) {
            let msg = format!(
                "local address {local} port {port} is already used by link '{}' on line {} (each udp link needs its own port)",
                first.tag, first.line
            );
            self.err(line, msg);
            ok = false;
        } else {
            self.udp_binds.insert((local, port), FirstUse { line, tag: tag.to_string() });
        }
        ok.then(|| ("/dev/udp".to_string(), LinkKind::Udp { port, local, broadcast, peers: BTreeMap::new() }))
    }

    /// `set-timer NAME:VALUE` or `set-timer NAME VALUE`.
    fn set_timer(&mut self, line: usize, args: &[&str]) {
        self.last_timer_line = Some(line);
        let (name, value) = match args {
            [one] => match one.split_once(':') {
                Some(pair) => pair,
                None => {
                    self.err(line, format!("set-timer: expected NAME:VALUE, found '{one}'"));
                    return;
                }
            },
            [name, value] => (*name, *value),
            _ => {
                self.err(line, format!("set-timer takes NAME:VALUE or NAME VALUE, found {} arguments", args.len()));
                return;
            }
        };
        match value.parse::<u32>() {
            Ok(v) if value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Err(e) = self.timers.set(name, v) {
                    self.err(line, e);
                }
            }
            _ => {
                self.err(
                    line,
                    format!("bad value '{value}' for timer {name} (expected a positive whole number of hundredths of a second)"),
                );
                // Also say if the name is wrong; a scratch copy lets
                // Timers::set word that message without touching our timers.
                if let Err(e) = Timers::default().set(name, 1) {
                    self.err(line, e);
                }
            }
        }
    }

    /// `set-addr NODEID TAG ADDR`: checked now, attached to its link at the end.
    fn set_addr(&mut self, line: usize, args: &[&str]) {
        let [node_tok, tag, addr_tok] = args else {
            self.err(line, format!("set-addr takes 3 arguments (NODEID TAG ADDR), found {}", args.len()));
            return;
        };
        let node = node_id(node_tok).map_err(|e| self.err(line, e)).ok();
        let addr = ip_addr(addr_tok, "peer address").map_err(|e| self.err(line, e)).ok();
        if let (Some(node), Some(addr)) = (node, addr) {
            self.addrs.push(PendingAddr { line, node, tag: tag.to_string(), addr });
        }
    }

    /// `exclude A` or `exclude A-B` (several ranges on one line are accepted).
    fn exclude(&mut self, line: usize, args: &[&str]) {
        if args.is_empty() {
            self.err(line, "exclude needs a node id or range (A or A-B)");
        }
        for tok in args {
            match exclude_range(tok) {
                Ok((a, b)) => self.excludes.push((line, a, b)),
                Err(e) => self.err(line, e),
            }
        }
    }

    /// Checks that need the whole file, then the configuration if no
    /// problem was found anywhere.
    fn finish(mut self) -> Option<LltConfig> {
        if self.node_line.is_none() {
            self.err(0, "missing set-node directive (expected 'set-node NAME' or 'set-node NUMBER')");
        }
        if self.cluster_line.is_none() {
            self.err(0, "missing set-cluster directive (expected 'set-cluster N', N in 0..65535)");
        }
        if self.link_lines == 0 {
            self.err(0, "no link directive (expected at least one 'link' line)");
        }
        if let Err(e) = self.timers.validate() {
            let line = self.last_timer_line.unwrap_or(0);
            self.err(line, e);
        }
        self.resolve_addrs();
        let excluded = self.excluded_set();
        // Whole-file checks were reported last; present everything in file
        // order (line 0, the file as a whole, first). The sort is stable, so
        // several problems of one line keep their column order.
        self.sink.diags.sort_by_key(|d| d.line);

        if !self.sink.diags.is_empty() {
            return None;
        }
        let (Some((node_id, node_name)), Some(cluster_id)) = (self.node.take(), self.cluster) else {
            // Unreachable: a missing or bad value was reported above. Say so
            // rather than panic if that ever changes.
            self.err(0, "internal error: incomplete configuration without a diagnostic");
            return None;
        };
        Some(LltConfig {
            node_id,
            node_name,
            cluster_id,
            links: std::mem::take(&mut self.links),
            timers: self.timers,
            hosts: self.hosts.clone(),
            excluded,
        })
    }

    /// Attach each set-addr to its udp link; wrong tags are reported here
    /// because the link may be defined after the set-addr line.
    fn resolve_addrs(&mut self) {
        let mut first_line: HashMap<(NodeId, String), usize> = HashMap::new();
        for pending in std::mem::take(&mut self.addrs) {
            let PendingAddr { line, node, tag, addr } = pending;
            if let Some(first) = first_line.get(&(node, tag.clone())) {
                let msg = format!("duplicate set-addr for node {node} on link '{tag}' (already set on line {first})");
                self.err(line, msg);
                continue;
            }
            first_line.insert((node, tag.clone()), line);
            let Some(link) = self.links.iter_mut().find(|l| l.tag == tag) else {
                // The link line was refused (already reported) or never
                // written. Only the type column of a refused line still
                // tells us something worth saying.
                match self.tags.get(&tag).map(|(_, kind)| kind.as_str()) {
                    None => self.err(line, format!("set-addr: unknown link tag '{tag}' (expected the tag of a udp link)")),
                    Some("ether") => self.err(line, ether_set_addr_msg(&tag)),
                    Some(_) => {}
                }
                continue;
            };
            match &mut link.kind {
                LinkKind::Ether => self.err(line, ether_set_addr_msg(&tag)),
                LinkKind::Udp { local, peers, .. } => {
                    if local.is_ipv4() != addr.is_ipv4() {
                        let msg = format!(
                            "set-addr: peer address {addr} is {} but link '{tag}' has local address {local} ({})",
                            family(&addr),
                            family(local)
                        );
                        self.err(line, msg);
                    } else {
                        peers.insert(node, addr);
                    }
                }
            }
        }
    }

    /// The excluded node ids; reports an exclude that covers this node.
    fn excluded_set(&mut self) -> BTreeSet<NodeId> {
        let mut set = BTreeSet::new();
        let own = self.node.as_ref().map(|(id, _)| *id);
        for (line, a, b) in self.excludes.clone() {
            if let Some(own) = own.filter(|id| (a..=b).contains(id)) {
                let set_node = self.node_line.unwrap_or(0);
                let range = if a == b { a.to_string() } else { format!("{a}-{b}") };
                self.err(line, format!("exclude {range} covers this node's own id {own} (set-node on line {set_node})"));
            }
            set.extend(a..=b);
        }
        set
    }
}

fn ether_set_addr_msg(tag: &str) -> String {
    format!("set-addr: link '{tag}' is an ether link (set-addr applies only to udp links)")
}

/// `A` or `A-B` of an exclude line, both node ids, A <= B.
fn exclude_range(tok: &str) -> Result<(NodeId, NodeId), String> {
    let (a, b) = match tok.split_once('-') {
        Some((a, b)) => (node_id(a)?, node_id(b)?),
        None => {
            let a = node_id(tok)?;
            (a, a)
        }
    };
    if a > b {
        return Err(format!("bad exclude range '{tok}' (the first node id must not exceed the second)"));
    }
    Ok((a, b))
}
