//! A running LLT cluster on a [`Lab`]: per-node llttab/llthosts under each
//! node's HA_ROOT, one real `clusterd` per node namespace, and typed access
//! to each daemon's control socket (Unix sockets live in the file system,
//! so the test reaches them from any namespace).

use crate::{bin, wait_until, Lab, LabSpec, Proc};
use anyhow::{anyhow, Context, Result};
use llt::core::{LinkState, Phase};
use llt::ctl::{Client, Request, Response, StatusReport};
use std::path::PathBuf;
use std::time::Duration;

/// How each node's llttab is written.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: usize,
    /// Ethernet segments; every node gets one link per segment.
    pub segments: usize,
    /// The last segment is a `link-lowpri`.
    pub lowpri_last: bool,
    pub cluster_id: u16,
    /// `set-timer` lines, e.g. ("peerinact", 200).
    pub timers: Vec<(&'static str, u32)>,
    /// LLT over UDP (one port per segment, subnet broadcast) instead of
    /// raw Ethernet.
    pub udp: bool,
    /// With `udp`: no broadcast address; every peer named by `set-addr`.
    pub udp_set_addr: bool,
}

impl ClusterSpec {
    /// A fast profile for tests: 0.1 s heartbeats, 2 s peerinact, 0.5 s
    /// duplicate-id listening.
    pub fn fast(nodes: usize) -> ClusterSpec {
        ClusterSpec {
            nodes,
            segments: 2,
            lowpri_last: false,
            cluster_id: 42,
            timers: vec![("heartbeat", 10), ("heartbeatlo", 20), ("peertrouble", 50), ("peertroublelo", 80), ("peerinact", 200), ("dupwait", 50)],
            udp: false,
            udp_set_addr: false,
        }
    }
}

pub struct Cluster {
    /// Shared so that another stack (Corosync in the benchmark) can run on
    /// the same namespaces while this cluster is mutated.
    pub lab: std::sync::Arc<Lab>,
    pub spec: ClusterSpec,
    daemons: Vec<Option<Proc>>,
}

/// Node i (1-based in the lab) has LLT node id i-1 and name `nodeI`.
pub fn node_name(i: usize) -> String {
    format!("node{i}")
}

impl Cluster {
    /// Build the lab, write configuration, start every daemon, and wait
    /// until each node sees every other OPEN on all links.
    pub fn start(hint: &str, spec: ClusterSpec) -> Result<Cluster> {
        let lab = Lab::new(hint, LabSpec { nodes: spec.nodes, segments: spec.segments, mtu: 1500 })?;
        let mut c = Cluster { lab: std::sync::Arc::new(lab), spec, daemons: Vec::new() };
        for i in 1..=c.spec.nodes {
            c.write_config(i, i - 1, c.spec.cluster_id)?;
        }
        for i in 1..=c.spec.nodes {
            let p = c.start_daemon(i)?;
            c.daemons.push(Some(p));
        }
        c.wait_all_open(Duration::from_secs(20))?;
        Ok(c)
    }

    pub fn llthosts(&self) -> String {
        (1..=self.spec.nodes).map(|i| format!("{} {}\n", i - 1, node_name(i))).collect()
    }

    /// Write llttab and llthosts for lab node `i` claiming LLT id `id`.
    pub fn write_config(&self, i: usize, id: usize, cluster: u16) -> Result<()> {
        let etc = self.lab.root(i).join("etc");
        std::fs::create_dir_all(&etc)?;
        let mut tab = format!("set-node {id}\nset-cluster {cluster}\n");
        for seg in 0..self.spec.segments {
            let ifc = self.lab.iface(seg);
            let kw = if self.spec.lowpri_last && seg + 1 == self.spec.segments { "link-lowpri" } else { "link" };
            if self.spec.udp {
                let ip = self.lab.ip(i, seg);
                let bcast = if self.spec.udp_set_addr { "-".to_string() } else { self.lab.bcast(seg).to_string() };
                tab += &format!("{kw} udp{seg} /dev/udp - udp {} - {ip} {bcast}\n", 50000 + seg);
                if self.spec.udp_set_addr {
                    for j in (1..=self.spec.nodes).filter(|&j| j != i) {
                        tab += &format!("set-addr {} udp{seg} {}\n", j - 1, self.lab.ip(j, seg));
                    }
                }
            } else {
                tab += &format!("{kw} {ifc} {ifc} - ether - -\n");
            }
        }
        for (name, v) in &self.spec.timers {
            tab += &format!("set-timer {name}:{v}\n");
        }
        std::fs::write(etc.join("llttab"), tab)?;
        std::fs::write(etc.join("llthosts"), self.llthosts())?;
        Ok(())
    }

    /// Start clusterd on node i and configure it (`clusterd -c`).
    pub fn start_daemon(&self, i: usize) -> Result<Proc> {
        let clusterd = bin("clusterd")?;
        let p = self.lab.spawn(i, "clusterd", &[clusterd.to_str().unwrap_or_default(), "-c"], &[("RUST_LOG", "info")])?;
        self.wait_socket(i, Duration::from_secs(10))?;
        Ok(p)
    }

    /// Wait until node i's daemon accepts connections on its control
    /// socket. The file appears at bind(2), a moment before listen(2):
    /// connecting in between is refused, so existence is not enough.
    pub fn wait_socket(&self, i: usize, deadline: Duration) -> Result<()> {
        wait_until(&format!("node {i} control socket"), deadline, || std::os::unix::net::UnixStream::connect(self.socket(i)).ok().map(|_| ()))
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        let p = self.start_daemon(i)?;
        self.daemons[i - 1] = Some(p);
        Ok(())
    }

    pub fn daemon(&self, i: usize) -> Option<&Proc> {
        self.daemons.get(i - 1).and_then(|d| d.as_ref())
    }

    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if let Some(p) = self.daemons[i - 1].take() {
            p.kill9()?;
            p.wait_exit(Duration::from_secs(5));
        }
        let _ = std::fs::remove_file(self.socket(i));
        Ok(())
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        self.lab.root(i).join("run/ha/llt.sock")
    }

    pub fn client(&self, i: usize) -> Result<Client> {
        Client::connect_to(&self.socket(i)).map_err(|e| anyhow!("node {i}: {e}"))
    }

    pub fn status(&self, i: usize) -> Result<StatusReport> {
        match self.client(i)?.request(Request::Status)? {
            Response::Status(s) => Ok(*s),
            r => Err(anyhow!("node {i}: unexpected answer {r:?}")),
        }
    }

    /// A client bound to `port` on node i.
    pub fn bound(&self, i: usize, port: u8) -> Result<Client> {
        let mut c = self.client(i)?;
        match c.request(Request::Bind { port })? {
            Response::Ok => Ok(c),
            r => Err(anyhow!("node {i}: bind {port}: {r:?}")),
        }
    }

    /// State of node `from`'s link `link` to LLT node id `peer`.
    pub fn link_state(&self, from: usize, peer: u8, link: u8) -> Result<LinkState> {
        let s = self.status(from)?;
        Ok(s.peers.iter().find(|p| p.node == peer).and_then(|p| p.links.get(link as usize)).map_or(LinkState::Down, |l| l.state))
    }

    pub fn is_open(&self, from: usize, peer: u8) -> Result<bool> {
        Ok(self.status(from)?.peers.iter().any(|p| p.node == peer && p.open))
    }

    pub fn live_nodes(&self) -> Vec<usize> {
        (1..=self.spec.nodes).filter(|&i| self.daemons[i - 1].is_some()).collect()
    }

    /// Every live node running and seeing every other live node OPEN with
    /// all links UP.
    pub fn wait_all_open(&self, deadline: Duration) -> Result<()> {
        let live = self.live_nodes();
        wait_until("every node sees every other OPEN on all links", deadline, || {
            live.iter().all(|&i| {
                let Ok(s) = self.status(i) else { return false };
                s.phase == Some(Phase::Running)
                    && live.iter().filter(|&&j| j != i).all(|&j| {
                        s.peers.iter().any(|p| p.node as usize == j - 1 && p.open && p.links.iter().all(|l| l.state == LinkState::Up))
                    })
            })
            .then_some(())
        })
        .with_context(|| self.describe())
    }

    /// Everything useful for a failure message.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.spec.nodes {
            out += &format!("--- node {i}: ");
            match self.status(i) {
                Ok(s) => {
                    out += &format!("phase {:?}\n", s.phase);
                    for p in &s.peers {
                        let links: Vec<String> = p.links.iter().map(|l| format!("{}={}", l.tag, l.state.as_str())).collect();
                        out += &format!("    peer {} open={} {}\n", p.node, p.open, links.join(" "));
                    }
                }
                Err(e) => out += &format!("{e}\n"),
            }
            if let Some(d) = self.daemon(i) {
                out += &d.log_tail(15);
            }
        }
        out
    }
}

/// What a receiver saw of a numbered stream of messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamCheck {
    pub received: u64,
    pub duplicates: u64,
    pub gaps: u64,
    pub corrupt: u64,
}

impl StreamCheck {
    pub fn perfect(&self, count: u64) -> bool {
        self.received == count && self.duplicates == 0 && self.gaps == 0 && self.corrupt == 0
    }
}

/// Message `i` of a test stream: 8-byte counter, then a pattern derived from it.
pub fn stream_msg(i: u64, size: usize) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    v.extend((8..size.max(8)).map(|k| (i as u8).wrapping_add(k as u8)));
    v
}

impl Cluster {
    /// Start a receiver on node `to` (bound to `port`) that expects `count`
    /// numbered messages from LLT node `from_id`, in order, exactly once.
    /// Returns when bound; join the handle for the verdict.
    pub fn expect_stream(&self, to: usize, port: u8, from_id: u8, count: u64, timeout: Duration) -> Result<std::thread::JoinHandle<StreamCheck>> {
        let mut rx = self.bound(to, port)?;
        rx.stream().set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(std::thread::spawn(move || {
            let mut c = StreamCheck::default();
            let mut next = 0u64;
            let end = std::time::Instant::now() + timeout;
            while c.received < count && std::time::Instant::now() < end {
                let Ok(msg) = rx.recv() else { continue };
                let llt::ctl::ServerMsg::Deliver { peer, data } = msg else { continue };
                if peer != from_id || data.len() < 8 {
                    continue;
                }
                let i = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                if data != stream_msg(i, data.len()) {
                    c.corrupt += 1;
                }
                if i < next {
                    c.duplicates += 1;
                    continue;
                }
                if i > next {
                    c.gaps += 1;
                }
                next = i + 1;
                c.received += 1;
            }
            c
        }))
    }

    /// Send `count` numbered messages of `size` bytes from node `from` to
    /// LLT node `to_id` on `port`, calling `midway` after half of them.
    pub fn send_stream(&self, from: usize, port: u8, to_id: u8, count: u64, size: usize, midway: impl FnOnce()) -> Result<()> {
        let mut tx = self.bound(from, port)?;
        let mut midway = Some(midway);
        let batch = 50;
        let mut i = 0;
        while i < count {
            if i >= count / 2 {
                if let Some(f) = midway.take() {
                    f();
                }
            }
            let n = batch.min(count - i);
            let msgs: Vec<_> = (i..i + n)
                .map(|k| llt::ctl::ClientMsg::Send { dest: llt::core::Dest::Node(to_id), data: stream_msg(k, size) })
                .collect();
            tx.send_batch(&msgs)?;
            i += n;
        }
        // A status round trip proves the daemon has read every send.
        tx.request(Request::Status)?;
        Ok(())
    }
}
