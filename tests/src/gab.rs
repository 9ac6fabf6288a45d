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
