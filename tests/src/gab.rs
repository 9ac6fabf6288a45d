//! GAB on a running [`Cluster`]: configure it on each node, read its
//! status, wait until every node agrees on a port's membership, and run
//! port clients (`gabmsg`, or a typed client in the test process).

use crate::cluster::Cluster;
use crate::{bin, wait_until, Proc};
use anyhow::{anyhow, Context, Result};
use gab::ctl::{GabClient, GabRequest, GabResponse, GabStatus};
use gab::Port;
use std::path::PathBuf;
use std::time::Duration;

/// One port's view on one node: (generation, members).
pub type PortView = (u64, Vec<u8>);

impl Cluster {
    pub fn gab_socket(&self, i: usize) -> PathBuf {
        self.lab.root(i).join("run/ha/gab.sock")
    }

    pub fn gab_client(&self, i: usize) -> Result<GabClient> {
        GabClient::connect_to(&self.gab_socket(i)).map_err(|e| anyhow!("node {i}: {e}"))
    }

    pub fn gab_request(&self, i: usize, req: GabRequest) -> Result<()> {
        match self.gab_client(i)?.request(req.clone())? {
            GabResponse::Ok => Ok(()),
            r => Err(anyhow!("node {i}: {req:?}: {r:?}")),
        }
    }

    /// `gabconfig -c -n N` on node i, through the real command.
    pub fn gabconfig(&self, i: usize, args: &[&str]) -> Result<std::process::Output> {
        let g = bin("gabconfig")?;
        let mut argv = vec![g.to_str().unwrap_or_default()];
        argv.extend_from_slice(args);
        self.lab.exec(i, &argv)
    }

    /// Write gabtab on every node and run it (as gab.service does).
    pub fn gab_start_all(&self, seed_n: usize) -> Result<()> {
        for i in self.live_nodes() {
            self.gab_start(i, seed_n)?;
        }
        Ok(())
    }

    pub fn gab_start(&self, i: usize, seed_n: usize) -> Result<()> {
        let g = bin("gabconfig")?;
        let tab = self.lab.root(i).join("etc/gabtab");
        std::fs::write(&tab, format!("{} -c -n {seed_n}\n", g.display()))?;
        let out = self.lab.exec(i, &["sh", tab.to_str().unwrap_or_default()])?;
        if !out.status.success() {
            return Err(anyhow!("node {i}: gabtab failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    pub fn gab_status(&self, i: usize) -> Result<GabStatus> {
        match self.gab_client(i)?.request(GabRequest::Status)? {
            GabResponse::Status(s) => Ok(*s),
            r => Err(anyhow!("node {i}: unexpected answer {r:?}")),
        }
    }

    /// Node i's view of `port` (None: no membership).
    pub fn port_view(&self, i: usize, port: Port) -> Result<Option<PortView>> {
        let s = self.gab_status(i)?;
        Ok(s.ports.iter().find(|p| p.port == port).map(|p| (p.gen, p.members.clone())))
    }

    /// Wait until every node in `nodes` shows `members` on `port` with one
    /// and the same generation; returns it.
    pub fn wait_port(&self, nodes: &[usize], port: Port, members: &[u8], deadline: Duration) -> Result<u64> {
        wait_until(&format!("nodes {nodes:?} agree: port {} membership {members:?}", port as char), deadline, || {
            let views: Vec<Option<PortView>> = nodes.iter().map(|&i| self.port_view(i, port).ok().flatten()).collect();
            let first = views.first()?.clone()?;
            (first.1 == members && views.iter().all(|v| v.as_ref() == Some(&first))).then_some(first.0)
        })
        .with_context(|| self.describe_gab())
    }

    /// Spawn `gabmsg join -p PORT ARGS...` on node i.
    pub fn gabmsg(&self, i: usize, name: &str, port: Port, args: &[&str]) -> Result<Proc> {
        let g = bin("gabmsg")?;
        let p = (port as char).to_string();
        let mut argv = vec![g.to_str().unwrap_or_default(), "join", "-p", &p];
        argv.extend_from_slice(args);
        self.lab.spawn(i, name, &argv, &[])
    }

    /// GAB state of every node, for failure messages.
    pub fn describe_gab(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.spec.nodes {
            out += &format!("--- node {i} GAB: ");
            match self.gab_status(i) {
                Ok(s) => {
                    out += &format!("seeded={} ", s.seeded);
                    for p in &s.ports {
                        out += &format!("[{} {:08x} {:?} j{:?}] ", p.port as char, p.gen & 0xffff_ffff, p.members, p.jeopardy);
                    }
                    out += &format!("\n    {:?}\n    {}\n", s.counters, s.core_state);
                }
                Err(e) => out += &format!("{e}\n"),
            }
            if let Some(d) = self.daemon(i) {
                out += &d.log_tail(12);
            }
        }
        out
    }
}

/// Outcome of [`Cluster::gab_flood`]: every sender broadcasts
/// `msgs_per_node` messages of `size` bytes on one port through `gabmsg`
/// as fast as backpressure allows, from a common start (the port's full
/// membership); every node receives all of them, its own included.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GabFlood {
    pub nodes: Vec<usize>,
    pub msgs_per_node: u64,
    pub size: usize,
    pub delivered_per_node: Vec<u64>,
    /// All messages sent / (first send anywhere to last delivery
    /// anywhere): the rate at which messages reached every node, which is
    /// also the cluster's ordered throughput (the same definition as the
    /// Corosync side of the benchmark).
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    /// Send-to-delivered-everywhere: per message, the maximum over
    /// receivers of delivery time - send time; nearest-rank percentiles.
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub latency_max_us: f64,
    pub delivered_everywhere: u64,
    pub complete: bool,
    pub elapsed_ms: f64,
    /// CPU time of each node's clusterd over the flood, in % of one core.
    pub daemon_cpu_pct: Vec<f64>,
}

/// User + system CPU time of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

impl Cluster {
    /// Flood `port` from every node in `nodes` (see [`GabFlood`]); each
    /// sender keeps at most `window` of its messages undelivered (0: as
    /// many as GAB's backpressure lets through).
    pub fn gab_flood(&self, nodes: &[usize], port: Port, msgs_per_node: u64, size: usize, window: u64, deadline: Duration) -> Result<GabFlood> {
        let total = msgs_per_node * nodes.len() as u64;
        let ticks0: Vec<Option<u64>> = nodes.iter().map(|&i| self.daemon(i).and_then(|d| cpu_ticks(d.pid()))).collect();
        let t0 = std::time::Instant::now();
        let mut procs = Vec::new();
        let mut files = Vec::new();
        for &i in nodes {
            let file = self.lab.dir().join(format!("gab-flood-{}-n{i}.lat", port as char));
            let _ = std::fs::remove_file(&file);
            let (node, count, sz, members, expect, win) =
                ((i - 1).to_string(), msgs_per_node.to_string(), size.to_string(), nodes.len().to_string(), total.to_string(), window.to_string());
            let args = [
                "--node", &node, "--count", &count, "--size", &sz, "--wait-members", &members, "--expect", &expect, "--window", &win,
                "--latency-file", file.to_str().unwrap_or_default(),
            ];
            procs.push(self.gabmsg(i, &format!("flood{i}"), port, &args)?);
            files.push(file);
        }
        for p in &procs {
            let st = p.wait_exit(deadline).ok_or_else(|| anyhow!("{} did not finish within {deadline:?}\n{}", p.name(), self.describe_gab()))?;
            if !st.success() {
                return Err(anyhow!("{} failed: {}\n{}", p.name(), p.log_tail(10), self.describe_gab()));
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        // SAFETY: sysconf reads a constant; no memory is involved.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let daemon_cpu_pct = nodes
            .iter()
            .zip(&ticks0)
            .map(|(&i, t0)| match (t0, self.daemon(i).and_then(|d| cpu_ticks(d.pid()))) {
                (Some(a), Some(b)) => (b - a) as f64 / hz / wall * 100.0,
                _ => f64::NAN,
            })
            .collect();
        // (sender, index) -> (max latency, receivers)
        let mut per_msg: std::collections::HashMap<(u32, u64), (u64, usize)> = std::collections::HashMap::new();
        let (mut first_send, mut last_recv) = (u64::MAX, 0u64);
        let mut delivered_per_node = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let mut n = 0;
            for line in text.lines() {
                let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                let [node, index, lat, sent] = v[..] else { continue };
                n += 1;
                first_send = first_send.min(sent);
                last_recv = last_recv.max(sent + lat);
                let e = per_msg.entry((node as u32, index)).or_insert((0, 0));
                e.0 = e.0.max(lat);
                e.1 += 1;
            }
            delivered_per_node.push(n);
        }
        let mut lat: Vec<u64> = per_msg.values().filter(|(_, r)| *r == nodes.len()).map(|(l, _)| *l).collect();
        lat.sort_unstable();
        let elapsed_ns = last_recv.saturating_sub(first_send).max(1);
        let msgs_per_sec = total as f64 / (elapsed_ns as f64 / 1e9);
        Ok(GabFlood {
            nodes: nodes.to_vec(),
            msgs_per_node,
            size,
            complete: delivered_per_node.iter().all(|&d| d == total) && lat.len() as u64 == total,
            delivered_per_node,
            msgs_per_sec,
            mb_per_sec: msgs_per_sec * size as f64 / 1e6,
            latency_p50_us: crate::stats::percentile(&lat, 0.50) as f64 / 1e3,
            latency_p99_us: crate::stats::percentile(&lat, 0.99) as f64 / 1e3,
            latency_max_us: lat.last().copied().unwrap_or(0) as f64 / 1e3,
            delivered_everywhere: lat.len() as u64,
            elapsed_ms: elapsed_ns as f64 / 1e6,
            daemon_cpu_pct,
        })
    }

    /// SIGKILL node `victim`'s clusterd and time until every survivor
    /// shows a port a membership without it (polled every millisecond).
    pub fn gab_kill_to_membership(&mut self, victim: usize, deadline: Duration) -> Result<(Duration, Duration)> {
        let survivors: Vec<usize> = self.live_nodes().into_iter().filter(|&i| i != victim).collect();
        let victim_id = (victim - 1) as u8;
        let mut clients: Vec<GabClient> = survivors.iter().map(|&i| self.gab_client(i)).collect::<Result<_>>()?;
        let t0 = std::time::Instant::now();
        self.daemon(victim).ok_or_else(|| anyhow!("node {victim} is not running"))?.kill9()?;
        let mut seen: Vec<Option<Duration>> = vec![None; survivors.len()];
        while seen.iter().any(Option::is_none) {
            if t0.elapsed() > deadline {
                return Err(anyhow!("no new membership on every survivor within {deadline:?}\n{}", self.describe_gab()));
            }
            for (k, c) in clients.iter_mut().enumerate() {
                if seen[k].is_some() {
                    continue;
                }
                if let GabResponse::Status(s) = c.request(GabRequest::Status)? {
                    if s.ports.iter().any(|p| p.port == b'a' && !p.members.contains(&victim_id)) {
                        seen[k] = Some(t0.elapsed());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.kill9(victim)?;
        let first = seen.iter().flatten().min().copied().unwrap_or_default();
        let last = seen.iter().flatten().max().copied().unwrap_or_default();
        Ok((first, last))
    }
}
