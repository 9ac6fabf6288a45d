//! GAB hosted in the daemon: GAB's core joined to LLT's by
//! [`gab::glue::LltGlue`] (the glue the LLT+GAB simulator tests: peer
//! events, link counts with the jeopardy grace, chunks on LLT port 1, a
//! queue per peer for LLT's window), and GAB's local clients (one per port,
//! with heartbeats). Pure bookkeeping: the node does the I/O and signals.

use crate::node::ClientId;
use gab::core::{Gab, GabConfig, GabError, GabEvent};
use gab::ctl::{GabCounters, GabServerMsg, GabStatus, Heartbeat, LocalClient, MembershipMsg, PortStatus};
use gab::glue::{LltGlue, Pumped};
use gab::{Port, PORT_A};
use llt::core::Core;
use llt::time::{Dur, Time};
use llt::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// The local client of a port.
pub struct PortClient {
    pub id: ClientId,
    pub pid: Option<u32>,
    pub heartbeat: Option<Heartbeat>,
    last_beat: Time,
    aborts: u32,
    next_signal: Time,
}

/// What the node must do to a hung client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Punish {
    Abort { id: ClientId, port: Port, pid: Option<u32>, count: u32 },
    Kill { id: ClientId, port: Port, pid: Option<u32> },
}

pub struct GabHost {
    pub core: Gab,
    pub glue: LltGlue,
    node: NodeId,
    seed_n: u32,
    ports: BTreeMap<Port, PortClient>,
    pub counters: GabCounters,
    last_jeopardy: BTreeSet<NodeId>,
}

fn ms(d: u32) -> Dur {
    Dur::from_millis(d as u64)
}

fn gen32(gen: u64) -> String {
    format!("{:08x}", gen & 0xffff_ffff)
}

impl GabHost {
    /// `gabconfig -c -n N`, told what LLT already knows.
    pub fn new(now: Time, llt: &Core, seed_n: u32, incarnation: u32) -> GabHost {
        let node = llt.node_id();
        let cfg = GabConfig::new(node, seed_n as usize, incarnation);
        let mut h = GabHost {
            core: Gab::new(cfg, now),
            glue: LltGlue::new(),
            node,
            seed_n,
            ports: BTreeMap::new(),
            counters: GabCounters::default(),
            last_jeopardy: BTreeSet::new(),
        };
        h.glue.attach(now, llt, &mut h.core);
        h
    }

    pub fn set_stable_timeout(&mut self, now: Time, ms_: u32) {
        self.core.set_stable_timeout(now, ms(ms_));
    }

    /// Move everything between LLT and GAB (see `LltGlue::pump`): returns
    /// the frames for the links and LLT's events other than GAB's own
    /// deliveries, for the node to log and pass to LLT clients.
    pub fn pump(&mut self, now: Time, llt: &mut Core) -> Pumped {
        let p = self.glue.pump(now, llt, &mut self.core);
        let st = self.glue.stats();
        self.counters.llt_backlog = self.glue.backlog_total();
        self.counters.dropped_chunks = st.dropped_chunks;
        self.counters.llt_refused = st.too_large;
        self.counters.dropped_malformed = self.core.dropped_malformed;
        p
    }

    // ----- clients -----------------------------------------------------------

    pub fn register(&mut self, now: Time, id: ClientId, pid: Option<u32>, port: Port, heartbeat: Option<Heartbeat>) -> Result<(), String> {
        if !port.is_ascii_lowercase() {
            return Err(format!("port {port:#x} is not a letter a-z"));
        }
        if port == PORT_A {
            return Err("port a is GAB's own membership port".into());
        }
        if let Some(c) = self.ports.get(&port) {
            return Err(format!("port {} is already open on this node (pid {})", port as char, c.pid.map_or("unknown".into(), |p| p.to_string())));
        }
        // VCS kills a hung HAD: on port h a heartbeat is not optional.
        let heartbeat = if port == b'h' { Some(heartbeat.unwrap_or_default()) } else { heartbeat };
        if let Some(h) = heartbeat {
            if h.timeout_ms == 0 {
                return Err("heartbeat timeout must be at least 1 ms".into());
            }
        }
        let next_signal = heartbeat.map_or(now, |h| now + ms(h.timeout_ms));
        self.ports.insert(port, PortClient { id, pid, heartbeat, last_beat: now, aborts: 0, next_signal });
        self.core.register(now, port);
        info!(node = self.node, port = %(port as char), ?pid, heartbeat_ms = heartbeat.map(|h| h.timeout_ms), "port {} opened by a client", port as char);
        Ok(())
    }

    /// The client of `port` went away (disconnected, killed, too slow).
    pub fn client_gone(&mut self, now: Time, port: Port) {
        if self.ports.remove(&port).is_some() {
            self.core.unregister(now, port);
            info!(node = self.node, port = %(port as char), "port {} closed", port as char);
        }
    }

    pub fn heartbeat(&mut self, now: Time, port: Port) {
        if let Some(c) = self.ports.get_mut(&port) {
            if c.aborts > 0 {
                info!(node = self.node, port = %(port as char), pid = ?c.pid, "client of port {} heartbeats again after {} SIGABRT", port as char, c.aborts);
            }
            c.last_beat = now;
            c.aborts = 0;
            c.next_signal = c.heartbeat.map_or(now, |h| now + ms(h.timeout_ms));
        }
    }

    /// Letters of the ports local clients hold ("" when none).
    pub fn open_ports(&self) -> String {
        self.ports.keys().map(|&p| p as char).collect()
    }

    pub fn broadcast(&mut self, now: Time, port: Port, data: Vec<u8>) -> Result<(), GabError> {
        self.core.broadcast(now, port, data)?;
        self.counters.broadcasts_sent += 1;
        Ok(())
    }

    pub fn unicast(&mut self, now: Time, port: Port, dest: NodeId, data: Vec<u8>) -> Result<(), GabError> {
        self.core.unicast(now, port, dest, data)?;
        self.counters.unicasts_sent += 1;
        Ok(())
    }

    /// Hung clients: SIGABRT once silent past the timeout, again every
    /// abort interval up to `max_aborts` times, then SIGKILL and the port
    /// closes (as VCS GAB treats a hung HAD).
    pub fn check_heartbeats(&mut self, now: Time) -> Vec<Punish> {
        let mut out = Vec::new();
        for (&port, c) in self.ports.iter_mut() {
            let Some(h) = c.heartbeat else { continue };
            if now < c.next_signal {
                continue;
            }
            let silent = now.since(c.last_beat).as_millis();
            if c.aborts < h.max_aborts {
                c.aborts += 1;
                c.next_signal = now + ms(h.abort_interval_ms.max(1));
                self.counters.clients_aborted += 1;
                warn!(
                    node = self.node, port = %(port as char), pid = ?c.pid, silent_ms = silent,
                    "client of port {} has not heartbeat for {silent} ms (timeout {} ms): SIGABRT {} of {}",
                    port as char, h.timeout_ms, c.aborts, h.max_aborts
                );
                out.push(Punish::Abort { id: c.id, port, pid: c.pid, count: c.aborts });
            } else {
                self.counters.clients_killed += 1;
                warn!(
                    node = self.node, port = %(port as char), pid = ?c.pid, silent_ms = silent,
                    "client of port {} still silent after {} SIGABRT: SIGKILL, port closed", port as char, c.aborts
                );
                out.push(Punish::Kill { id: c.id, port, pid: c.pid });
            }
        }
        for p in &out {
            if let Punish::Kill { port, .. } = p {
                self.client_gone(now, *port);
            }
        }
        out
    }

    /// GAB's timers, the jeopardy grace and client heartbeats (LLT's own
    /// timer is included too).
    pub fn poll_timeout(&self, llt: &Core) -> Option<Time> {
        let hb = self.ports.values().filter(|c| c.heartbeat.is_some()).map(|c| c.next_signal).min();
        [self.glue.poll_timeout(llt, &self.core), hb].into_iter().flatten().min()
    }

    // ----- GAB to clients -------------------------------------------------

    /// GAB's events for clients (and the jeopardy notices).
    pub fn client_messages(&mut self) -> Vec<(ClientId, GabServerMsg)> {
        let mut to_clients = Vec::new();
        while let Some(e) = self.core.poll_event() {
            self.on_event(e, &mut to_clients);
        }
        self.watch_jeopardy(&mut to_clients);
        to_clients
    }

    fn on_event(&mut self, e: GabEvent, out: &mut Vec<(ClientId, GabServerMsg)>) {
        let node = self.node;
        match e {
            GabEvent::Membership { port, gen, members, jeopardy, lost_in_jeopardy } => {
                self.counters.memberships += 1;
                let list = gab::ctl::membership_string(&members.iter().copied().collect::<Vec<_>>());
                info!(node, port = %(port as char), gen = %gen32(gen), members = ?members, "Port {} gen {} membership {list}", port as char, gen32(gen));
                if !lost_in_jeopardy.is_empty() {
                    warn!(
                        node, port = %(port as char), gen = %gen32(gen), lost = ?lost_in_jeopardy,
                        "Port {} gen {}: {:?} left while in jeopardy: their last link died, they may still run (fence before taking over)",
                        port as char, gen32(gen), lost_in_jeopardy
                    );
                }
                if port == PORT_A {
                    self.last_jeopardy = jeopardy;
                    return;
                }
                if let Some(c) = self.ports.get(&port) {
                    out.push((c.id, GabServerMsg::Membership(MembershipMsg {
                        port,
                        gen,
                        members: members.into_iter().collect(),
                        jeopardy: jeopardy.into_iter().collect(),
                        lost_in_jeopardy: lost_in_jeopardy.into_iter().collect(),
                    })));
                }
            }
            GabEvent::Deliver { port, id, data, unicast } => match self.ports.get(&port) {
                Some(c) => {
                    self.counters.delivered += 1;
                    self.counters.delivered_bytes += data.len() as u64;
                    out.push((c.id, GabServerMsg::Deliver { origin: id.origin, inc: id.inc, lseq: id.lseq, unicast, data }));
                }
                None => self.counters.dropped_no_client += 1,
            },
        }
    }

    /// Jeopardy follows LLT's links, not views: log each change as VCS does
    /// and tell each client.
    fn watch_jeopardy(&mut self, out: &mut Vec<(ClientId, GabServerMsg)>) {
        let now_j = self.core.jeopardy();
        if now_j == self.last_jeopardy {
            return;
        }
        let Some((gen, _)) = self.core.membership() else { return };
        let list: Vec<NodeId> = now_j.iter().copied().collect();
        if list.is_empty() {
            info!(node = self.node, gen = %gen32(gen), "Port a gen {}: no member in jeopardy any more", gen32(gen));
        } else {
            warn!(
                node = self.node, gen = %gen32(gen), jeopardy = ?list,
                "Port a gen {} jeopardy {}: reachable over one link only", gen32(gen), gab::ctl::jeopardy_string(&list)
            );
        }
        self.last_jeopardy = now_j.clone();
        for (&port, c) in &self.ports {
            if let Some((pgen, pmembers)) = self.core.port_membership(port) {
                let jeopardy = now_j.intersection(&pmembers).copied().collect();
                out.push((c.id, GabServerMsg::Jeopardy { port, gen: pgen, jeopardy }));
            }
        }
    }

    pub fn status(&self, now: Time, configured_queue: impl Fn(ClientId) -> usize) -> GabStatus {
        let jeopardy = self.core.jeopardy();
        let mut ports = Vec::new();
        if let Some((gen, m)) = self.core.membership() {
            ports.push(PortStatus { port: PORT_A, gen, jeopardy: jeopardy.intersection(&m).copied().collect(), members: m.into_iter().collect() });
        }
        for port in b'b'..=b'z' {
            if let Some((gen, m)) = self.core.port_membership(port) {
                ports.push(PortStatus { port, gen, jeopardy: jeopardy.intersection(&m).copied().collect(), members: m.into_iter().collect() });
            }
        }
        let clients = self
            .ports
            .iter()
            .map(|(&port, c)| LocalClient {
                port,
                pid: c.pid,
                heartbeat: c.heartbeat,
                silent_ms: now.since(c.last_beat).as_millis(),
                aborts_sent: c.aborts,
                queued: configured_queue(c.id),
            })
            .collect();
        GabStatus {
            configured: true,
            node: self.node,
            seed_n: self.seed_n,
            seeded: self.core.is_seeded(),
            stable_timeout_ms: self.core.config().stable_timeout.as_millis() as u32,
            ports,
            clients,
            counters: self.counters.clone(),
            core_state: self.core.debug_state(),
        }
    }
}
