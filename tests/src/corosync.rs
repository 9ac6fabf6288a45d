//! Corosync 3 (knet) with CPG on a [`Lab`], the reference GAB is compared
//! with: Debian's `corosync` daemon per node, driven by a small CPG client
//! (bench/cpg/cpgbench.c, embedded here and compiled with gcc at run time).
//! Install the packages with `scripts/bench-deps.sh` (as root).
//!
//! ```no_run
//! use ha_tests::corosync::{CorosyncCluster, CorosyncConfig};
//! use ha_tests::{Lab, LabSpec};
//!
//! let lab = Lab::new("cpg", LabSpec::nodes(3)).unwrap();
//! let mut c = CorosyncCluster::start(&lab, &[1, 2, 3], CorosyncConfig::with_token(1000)).unwrap();
//! let f = c.flood(20_000, 1024).unwrap();
//! println!("{:.0} msgs/s, p99 {:.0} µs", f.msgs_per_sec, f.latency_p99_us);
//! let t = c.kill_to_membership(3).unwrap();
//! c.restart(3).unwrap();
//! # let _ = t;
//! ```
//!
//! Per node `i` (node id `i`, name `n<i>`), everything corosync writes stays
//! under `lab.root(i)/corosync/` or in memory that dies with the node:
//! - `corosync.conf`: knet transport, one knet link per lab segment
//!   (`ring<k>_addr` = the node's address on segment k, i.e. eth1, eth2),
//!   crypto none, nodelist of the cluster's nodes, votequorum, timers from
//!   [`CorosyncConfig`]; `system.state_dir` (what would be /var/lib/corosync)
//!   and the log file point into the same directory; `uidgid.d/` (empty)
//!   sits next to it because corosync reads it relative to the config file.
//! - The daemon runs as `ip netns exec <node ns> unshare --mount
//!   --propagation private sh -c 'mount tmpfs on /run and /dev/shm; exec
//!   corosync -f -c <conf>'` (one pid throughout). The private /run holds the
//!   hard-wired /var/run/corosync.pid lock (three daemons on one host would
//!   otherwise refuse to start: "another Corosync instance is already
//!   running"); the private /dev/shm holds libqb's shared-memory IPC rings
//!   and the blackbox, which would otherwise leak on the host at every
//!   SIGKILL. Both tmpfs vanish with the daemon's mount namespace.
//! - libqb IPC endpoints are abstract Unix sockets, which belong to the
//!   network namespace, and the rings are files in that private /dev/shm,
//!   so clients run as `nsenter -t <corosync pid> -m` inside the node's
//!   network namespace ([`CorosyncCluster::exec`]).
//! - `system.move_to_root_cgroup: no`: corosync must not move itself out of
//!   the caller's cgroup. Scheduling is corosync's default (SCHED_RR, max
//!   priority) unless [`CorosyncConfig::sched_rr`] is false.
//!
//! Floods ([`CorosyncCluster::flood`], [`CorosyncCluster::flood_from`]) run
//! one `cpgbench flood` (or `recv`) client per node in a fresh CPG group,
//! started together by SIGUSR1 once all have joined; the per-delivery
//! latency files are combined here into send-to-delivered-everywhere
//! latencies ([`FloodResult`]).
//!
//! Every node also runs a `cpgbench watch` client (CPG group `hawatch`)
//! printing membership changes with CLOCK_MONOTONIC timestamps; membership
//! waits and [`CorosyncCluster::kill_trial`] read them. All nodes of a lab
//! share one kernel and no time namespace, so CLOCK_MONOTONIC is one clock
//! for every node, the harness included ([`mono_ns`]).

use crate::stats::percentile;
use crate::cmd::{self, wait_until};
use crate::{Lab, Proc};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Source of the CPG client, compiled by [`build_client`].
pub const CLIENT_SOURCE: &str = include_str!("../../bench/cpg/cpgbench.c");

/// CPG group of the membership watchers.
const WATCH_GROUP: &str = "hawatch";
/// Deadline for a (re)started cluster to form its full membership.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline for the survivors to agree on a membership after a kill; far
/// above corosync's default token + consensus (3650 + 4380 ms on 3 nodes).
const KILL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a killed process may take to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Shell run as the node's daemon (after `unshare --mount`): private /run
/// and /dev/shm, then exec corosync (same pid as the spawned process).
const DAEMON_SCRIPT: &str = "set -e
mount -t tmpfs -o mode=0755,size=16m ha-corosync-run /run
mount -t tmpfs -o mode=1777,size=512m ha-corosync-shm /dev/shm
exec corosync -f -c \"$1\"";

/// CLOCK_MONOTONIC in nanoseconds: the clock cpgbench stamps with.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Fails with an installation hint unless corosync, gcc and libcpg's
/// pkg-config file are present.
pub fn check_installed() -> Result<()> {
    let hint = "install with scripts/bench-deps.sh (as root)";
    cmd::run_ok(Command::new("corosync").arg("-v"), Duration::from_secs(10))
        .with_context(|| format!("corosync is not usable; {hint}"))?;
    cmd::run_ok(Command::new("pkg-config").args(["--exists", "libcpg"]), Duration::from_secs(10))
        .with_context(|| format!("libcpg-dev (pkg-config libcpg) is missing; {hint}"))?;
    cmd::run_ok(Command::new("gcc").arg("--version"), Duration::from_secs(10))
        .with_context(|| format!("gcc is missing; {hint}"))?;
    Ok(())
}

/// Writes [`CLIENT_SOURCE`] into `dir` and compiles it there with
/// `gcc -O2 $(pkg-config --cflags --libs libcpg)`; returns the executable.
pub fn build_client(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let src = dir.join("cpgbench.c");
    let exe = dir.join("cpgbench");
    std::fs::write(&src, CLIENT_SOURCE).with_context(|| format!("write {}", src.display()))?;
    let flags = cmd::run_ok(
        Command::new("pkg-config").args(["--cflags", "--libs", "libcpg"]),
        Duration::from_secs(10),
    )
    .context("pkg-config libcpg (install with scripts/bench-deps.sh)")?;
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-Wall", "-o"]).arg(&exe).arg(&src).args(flags.split_whitespace());
    cmd::run_ok(&mut gcc, Duration::from_secs(60)).context("compiling the CPG client")?;
    Ok(exe)
}

/// Totem timers and knet link settings written into each corosync.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorosyncConfig {
    /// `totem.token` in ms; None = corosync's default (3000).
    pub token_ms: Option<u32>,
    /// `totem.token_coefficient` in ms; None = corosync's default (650: the
    /// effective token is token + (nodes - 2) * coefficient).
    pub token_coefficient_ms: Option<u32>,
    /// `knet_ping_interval` / `knet_ping_timeout` (ms) of every link
    /// (`interface { linknumber: k }`); None = corosync derives them from
    /// the token (token/4, token/2), which makes links flap at token <= 500.
    pub knet_ping_ms: Option<(u32, u32)>,
    /// corosync's default `system.sched_rr: yes` (realtime round robin,
    /// maximal priority); false writes `sched_rr: no`.
    pub sched_rr: bool,
}

impl Default for CorosyncConfig {
    /// Corosync as shipped: token 3000 + 650 per node above 2 (3650 ms on 3
    /// nodes; consensus 1.2 x token), knet ping timers derived from it.
    fn default() -> Self {
        CorosyncConfig { token_ms: None, token_coefficient_ms: None, knet_ping_ms: None, sched_rr: true }
    }
}

impl CorosyncConfig {
    /// Token of exactly `ms` (coefficient 0; consensus is then 1.2 x ms).
    /// For `ms <= 500` the knet pings are relaxed to 150 / 600 ms: with the
    /// derived timers knet declares links down spuriously under load and the
    /// membership flaps (shared/labs/peers/REPORT.md, gotcha 9); 150..300 ms
    /// tokens were stable with these. Corosync rejects tokens below ~130 ms.
    pub fn with_token(ms: u32) -> CorosyncConfig {
        CorosyncConfig {
            token_ms: Some(ms),
            token_coefficient_ms: Some(0),
            knet_ping_ms: if ms <= 500 { Some((150, 600)) } else { None },
            sched_rr: true,
        }
    }

    /// Short description for reports: "default (3000 + 650/node)" or
    /// "token 1000 ms, coefficient 0, knet ping 150/600 ms".
    pub fn describe(&self) -> String {
        if *self == CorosyncConfig::default() {
            return "corosync defaults (token 3000 + 650 per node above 2)".to_string();
        }
        let mut s = match self.token_ms {
            Some(t) => format!("token {t} ms"),
            None => "token default".to_string(),
        };
        if let Some(c) = self.token_coefficient_ms {
            let _ = write!(s, ", coefficient {c}");
        }
        if let Some((i, t)) = self.knet_ping_ms {
            let _ = write!(s, ", knet ping {i}/{t} ms");
        }
        if !self.sched_rr {
            s.push_str(", sched_rr no");
        }
        s
    }
}

/// Effective totem timers read back from a running daemon's cmap
/// (`runtime.config.totem.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TotemTimers {
    pub token_ms: u32,
    pub consensus_ms: u32,
}

/// Outcome of [`CorosyncCluster::flood`]: every node sends `msgs_per_node`
/// CPG_TYPE_AGREED messages of `size` bytes as fast as flow control allows,
/// from a common start, and receives everybody's (its own included).
#[derive(Debug, Clone, Serialize)]
pub struct FloodResult {
    /// Receivers (every node), in [`CorosyncCluster::nodes`] order.
    pub nodes: Vec<usize>,
    /// Nodes that sent (all of them for [`CorosyncCluster::flood`]).
    pub senders: Vec<usize>,
    pub msgs_per_node: u64,
    pub size: usize,
    /// Bench messages delivered to each node (its own included); complete
    /// = msgs_per_node x senders.
    pub delivered_per_node: Vec<u64>,
    /// Messages delivered to every node per second: all messages sent
    /// (msgs_per_node x senders) / time from the common start (first send) to
    /// the last delivery on any node. CPG delivers every message to every
    /// member, so this is also the delivery rate of each (the slowest)
    /// receiver, and the cluster's total ordered throughput. Counts only
    /// when every node received everything ([`FloodResult::complete`]).
    pub msgs_per_sec: f64,
    /// Each node's own rate: its deliveries / (its last delivery - start).
    pub msgs_per_sec_per_node: Vec<f64>,
    /// msgs_per_sec x size / 1e6.
    pub mb_per_sec: f64,
    /// Send-to-delivered-everywhere latency: for each message, the maximum
    /// over receivers (its sender included) of delivery time - send time;
    /// percentiles (nearest rank) over all messages delivered everywhere.
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub latency_max_us: f64,
    /// Messages delivered to every node (= msgs_per_node x senders when all
    /// went well).
    pub delivered_everywhere: u64,
    /// True if every node received every message, in per-sender order,
    /// without a membership change.
    pub complete: bool,
    /// From the common start to the last delivery anywhere.
    pub elapsed_ms: f64,
    /// CS_ERR_TRY_AGAIN answers to cpg_mcast_joined, summed over senders.
    pub try_again: u64,
    pub order_errors: u64,
    /// Totem ring changes, and group members lost other than by a clean
    /// cpg_leave, seen by the clients during the run (summed over them).
    pub membership_changes: u64,
    /// CPU time (user + system) of each node's corosync from the start
    /// signal until every client had finished, in % of one core over that
    /// wall time.
    pub corosync_cpu_pct: Vec<f64>,
}

/// Outcome of [`CorosyncCluster::kill_trial`]; times from just before the
/// SIGKILL of the victim's corosync.
#[derive(Debug, Clone, Serialize)]
pub struct KillTrial {
    pub victim: usize,
    /// First survivor's totem membership callback without the victim.
    pub membership_ms: f64,
    /// Last survivor's.
    pub membership_all_ms: f64,
    /// First survivor's CPG confchg reporting the victim as left.
    pub cpg_left_ms: f64,
}

/// One parsed line of `cpgbench watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WatchEvent {
    Totem { t: u64, members: BTreeSet<usize> },
    Cpg { t: u64, left: BTreeSet<usize> },
}

fn parse_ids(s: &str) -> BTreeSet<usize> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .filter_map(|x| x.split('(').next()?.parse().ok())
        .collect()
}

fn parse_watch(out: &str) -> Vec<WatchEvent> {
    let mut v = Vec::new();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        let (Some(t), Some(kind)) = (w.next().and_then(|t| t.parse::<u64>().ok()), w.next()) else {
            continue;
        };
        let field = |name: &str| line.split_whitespace().find_map(|f| f.strip_prefix(name)).map(parse_ids);
        match kind {
            "TOTEM" => v.push(WatchEvent::Totem { t, members: field("members=").unwrap_or_default() }),
            "CPG" => v.push(WatchEvent::Cpg { t, left: field("left=").unwrap_or_default() }),
            _ => {}
        }
    }
    v
}

/// A Corosync cluster on some nodes of a lab. Dropping it SIGKILLs every
/// process it started (daemons, watchers, clients); the lab's own drop
/// would do so too.
pub struct CorosyncCluster<'a> {
    lab: &'a Lab,
    nodes: Vec<usize>,
    cfg: CorosyncConfig,
    client: PathBuf,
    daemons: BTreeMap<usize, Proc>,
    watchers: BTreeMap<usize, Proc>,
    runs: AtomicU32,
}

impl<'a> CorosyncCluster<'a> {
    /// Writes every node's configuration, builds the CPG client (in
    /// `lab.dir()/cpgbench/`), starts corosync and a membership watcher on
    /// each of `nodes` (lab node indices, also the corosync node ids), and
    /// waits until every node sees all of them in one membership.
    pub fn start(lab: &'a Lab, nodes: &[usize], cfg: CorosyncConfig) -> Result<CorosyncCluster<'a>> {
        check_installed()?;
        let mut ids: Vec<usize> = nodes.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() || ids.iter().any(|&i| i < 1 || i > lab.nodes()) {
            bail!("nodes {nodes:?} must be non-empty lab node indices 1..={}", lab.nodes());
        }
        let client = build_client(&lab.dir().join("cpgbench"))?;
        let mut c = CorosyncCluster {
            lab,
            nodes: ids,
            cfg,
            client,
            daemons: BTreeMap::new(),
            watchers: BTreeMap::new(),
            runs: AtomicU32::new(0),
        };
        for &i in &c.nodes {
            c.write_config(i)?;
        }
        for i in c.nodes.clone() {
            c.start_daemon(i)?;
        }
        for i in c.nodes.clone() {
            c.start_watcher(i)?;
        }
        c.wait_membership(&c.nodes.clone(), FORM_TIMEOUT)?;
        Ok(c)
    }

    pub fn lab(&self) -> &'a Lab {
        self.lab
    }
    /// The cluster's nodes (lab indices = corosync node ids), ascending.
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }
    pub fn config(&self) -> &CorosyncConfig {
        &self.cfg
    }
    /// The compiled CPG client.
    pub fn client(&self) -> &Path {
        &self.client
    }
    /// Nodes whose corosync is running (not killed).
    pub fn live_nodes(&self) -> Vec<usize> {
        self.daemons.keys().copied().collect()
    }
    /// The corosync process of node `i`, if running.
    pub fn daemon(&self, i: usize) -> Option<&Proc> {
        self.daemons.get(&i)
    }
    /// Directory holding node `i`'s corosync.conf, state and log.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.lab.root(i).join("corosync")
    }
    pub fn conf_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("corosync.conf")
    }
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("corosync.log")
    }

    /// The corosync.conf of node `i` (identical on every node but for
    /// state and log paths).
    pub fn render_config(&self, i: usize) -> String {
        let dir = self.node_dir(i);
        let mut s = String::new();
        s.push_str("totem {\n\tversion: 2\n\tcluster_name: habench\n\ttransport: knet\n");
        s.push_str("\tcrypto_cipher: none\n\tcrypto_hash: none\n");
        if let Some(t) = self.cfg.token_ms {
            let _ = writeln!(s, "\ttoken: {t}");
        }
        if let Some(c) = self.cfg.token_coefficient_ms {
            let _ = writeln!(s, "\ttoken_coefficient: {c}");
        }
        if let Some((iv, to)) = self.cfg.knet_ping_ms {
            // Only honoured per interface (at totem level they are ignored).
            for k in 0..self.lab.segments() {
                let _ = writeln!(
                    s,
                    "\tinterface {{\n\t\tlinknumber: {k}\n\t\tknet_ping_interval: {iv}\n\t\tknet_ping_timeout: {to}\n\t}}"
                );
            }
        }
        s.push_str("}\n");
        let _ = writeln!(
            s,
            "system {{\n\tstate_dir: {}\n\tmove_to_root_cgroup: no\n\tsched_rr: {}\n}}",
            dir.join("state").display(),
            if self.cfg.sched_rr { "yes" } else { "no" }
        );
        let _ = writeln!(
            s,
            "logging {{\n\tfileline: off\n\tto_stderr: no\n\tto_syslog: no\n\tto_logfile: yes\n\tlogfile: {}\n\ttimestamp: hires\n\tdebug: off\n}}",
            self.log_path(i).display()
        );
        s.push_str("quorum {\n\tprovider: corosync_votequorum\n}\n");
        s.push_str("nodelist {\n");
        for &n in &self.nodes {
            let _ = write!(s, "\tnode {{\n\t\tname: n{n}\n\t\tnodeid: {n}\n");
            for k in 0..self.lab.segments() {
                let _ = writeln!(s, "\t\tring{k}_addr: {}", self.lab.ip(n, k));
            }
            s.push_str("\t}\n");
        }
        s.push_str("}\n");
        s
    }

    fn write_config(&self, i: usize) -> Result<()> {
        let dir = self.node_dir(i);
        for d in [dir.join("state"), dir.join("uidgid.d")] {
            std::fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        let p = self.conf_path(i);
        std::fs::write(&p, self.render_config(i)).with_context(|| format!("write {}", p.display()))
    }

    fn start_daemon(&mut self, i: usize) -> Result<()> {
        if self.daemons.contains_key(&i) {
            bail!("corosync already runs on node {i}");
        }
        let conf = self.conf_path(i);
        let conf = conf.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
        let argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", DAEMON_SCRIPT, "corosync-node", conf];
        let p = self.lab.spawn(i, "corosync", &argv, &[])?;
        // Clients enter this pid's mount namespace: wait until it is
        // corosync itself (ip netns exec, unshare and sh all exec in turn),
        // or a client could enter a namespace before the private /dev/shm
        // is mounted and miss corosync's IPC rings.
        let comm = format!("/proc/{}/comm", p.pid());
        let r = wait_until(&format!("corosync to start on node {i}"), Duration::from_secs(10), || {
            if !p.is_running() {
                return Some(false);
            }
            let c = std::fs::read_to_string(&comm).unwrap_or_default();
            (c.trim() == "corosync").then_some(true)
        });
        let ok = matches!(r, Ok(true));
        self.daemons.insert(i, p);
        if !ok {
            self.check_daemons()?;
            r?;
        }
        Ok(())
    }

    /// argv prefix that enters node `i`'s corosync mount namespace (the
    /// network namespace is the node's already: lab.spawn/exec run there).
    fn enter(&self, i: usize) -> Result<Vec<String>> {
        let d = self.daemons.get(&i).ok_or_else(|| anyhow!("corosync is not running on node {i}"))?;
        Ok(vec!["nsenter".into(), "-t".into(), d.pid().to_string(), "-m".into(), "--".into()])
    }

    fn spawn_client(&self, i: usize, name: &str, args: &[String]) -> Result<Proc> {
        let mut argv = self.enter(i)?;
        argv.push(self.client.to_string_lossy().into_owned());
        argv.extend(args.iter().cloned());
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.lab.spawn(i, name, &a, &[])
    }

    fn start_watcher(&mut self, i: usize) -> Result<()> {
        let args = ["watch", WATCH_GROUP, "--init-timeout", "30"].map(String::from);
        let p = self.spawn_client(i, "cpgwatch", &args)?;
        self.watchers.insert(i, p);
        Ok(())
    }

    /// Runs a command (absolute path or on PATH, e.g. `corosync-cmapctl`)
    /// inside node `i`: its network namespace and its corosync's mount
    /// namespace, where corosync's IPC works. Deadline 30 s.
    pub fn exec(&self, i: usize, argv: &[&str]) -> Result<Output> {
        let mut a = self.enter(i)?;
        a.extend(argv.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        self.lab.exec(i, &a)
    }

    /// Effective token and consensus of node `i`'s running corosync.
    pub fn runtime_timers(&self, i: usize) -> Result<TotemTimers> {
        let get = |key: &str| -> Result<u32> {
            let out = self.exec(i, &["corosync-cmapctl", "-g", key])?;
            let text = String::from_utf8_lossy(&out.stdout);
            // "runtime.config.totem.token (u32) = 1000"
            text.rsplit('=')
                .next()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| anyhow!("corosync-cmapctl -g {key} on node {i}: {text:?} {}", String::from_utf8_lossy(&out.stderr)))
        };
        Ok(TotemTimers {
            token_ms: get("runtime.config.totem.token")?,
            consensus_ms: get("runtime.config.totem.consensus")?,
        })
    }

    /// Fails, with the daemon's log, if a corosync we did not kill exited.
    fn check_daemons(&self) -> Result<()> {
        for (i, d) in &self.daemons {
            if let Some(st) = d.exit_status() {
                let log = std::fs::read_to_string(self.log_path(*i)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                bail!(
                    "corosync on node {i} exited ({st}):\n{}\n{}",
                    d.log_tail(20),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    }

    /// Waits until the watcher of every node in `expect` reports the totem
    /// membership `expect` as its latest.
    fn wait_membership(&self, expect: &[usize], deadline: Duration) -> Result<()> {
        let want: BTreeSet<usize> = expect.iter().copied().collect();
        let mut last_err = String::new();
        let r = wait_until(&format!("corosync membership {want:?}"), deadline, || {
            if let Err(e) = self.check_daemons() {
                last_err = format!("{e:#}");
                return Some(false);
            }
            let all = expect.iter().all(|i| {
                let Some(w) = self.watchers.get(i) else { return false };
                let latest = parse_watch(&w.stdout()).into_iter().rev().find_map(|e| match e {
                    WatchEvent::Totem { members, .. } => Some(members),
                    _ => None,
                });
                latest.as_ref() == Some(&want)
            });
            all.then_some(true)
        });
        match r {
            Ok(true) => Ok(()),
            Ok(false) => bail!("{last_err}"),
            Err(e) => {
                let logs: String = self.watchers.values().map(|w| w.log_tail(5)).collect();
                Err(e.context(logs))
            }
        }
    }

    /// Every node sends `msgs_per_node` messages of `size` bytes (>= 24)
    /// as fast as CPG flow control allows, all starting together, and
    /// receives all of them. See [`FloodResult`] for the figures.
    pub fn flood(&self, msgs_per_node: u64, size: usize) -> Result<FloodResult> {
        self.flood_from(&self.nodes.clone(), msgs_per_node, size)
    }

    /// [`CorosyncCluster::flood`] with only `senders` sending; the other
    /// nodes are members that receive only (`cpgbench recv`).
    pub fn flood_from(&self, senders: &[usize], msgs_per_node: u64, size: usize) -> Result<FloodResult> {
        let nodes = self.nodes.clone();
        if self.live_nodes() != nodes {
            bail!("flood needs every node up; live: {:?}", self.live_nodes());
        }
        let mut senders: Vec<usize> = senders.to_vec();
        senders.sort_unstable();
        senders.dedup();
        if senders.is_empty() || senders.iter().any(|s| !nodes.contains(s)) {
            bail!("senders {senders:?} must be a non-empty subset of {nodes:?}");
        }
        self.wait_membership(&nodes, FORM_TIMEOUT)?;
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let group = format!("flood{run}");
        let total = msgs_per_node * senders.len() as u64;
        // At least 1000 msgs/s or it is broken: bound the whole run.
        let secs = 30 + total / 1000;
        let lat_files: Vec<PathBuf> = nodes.iter().map(|&i| self.node_dir(i).join(format!("{group}-lat.txt"))).collect();
        let mut procs = Vec::new();
        let result = (|| -> Result<FloodResult> {
            for (k, &i) in nodes.iter().enumerate() {
                let mode = if senders.contains(&i) { "flood" } else { "recv" };
                let args = vec![
                    mode.to_string(),
                    group.clone(),
                    "--count".into(),
                    msgs_per_node.to_string(),
                    "--size".into(),
                    size.to_string(),
                    "--members".into(),
                    nodes.len().to_string(),
                    "--expect".into(),
                    total.to_string(),
                    "--lat".into(),
                    lat_files[k].to_string_lossy().into_owned(),
                    "--timeout".into(),
                    secs.to_string(),
                    "--init-timeout".into(),
                    "10".into(),
                ];
                procs.push(self.spawn_client(i, &format!("cpg{group}"), &args)?);
            }
            wait_until("CPG flood clients READY", Duration::from_secs(30), || {
                if procs.iter().any(|p| !p.is_running()) {
                    return Some(false);
                }
                procs.iter().all(|p| p.stdout().contains("READY")).then_some(true)
            })
            .and_then(|ok| if ok { Ok(()) } else { Err(anyhow!("a flood client exited early")) })
            .with_context(|| procs.iter().map(|p| p.log_tail(5)).collect::<String>())?;
            let daemon_pids: Vec<u32> = nodes.iter().filter_map(|i| self.daemons.get(i).map(Proc::pid)).collect();
            let cpu0: Vec<u64> = daemon_pids.iter().map(|&p| cpu_ticks(p)).collect();
            let wall0 = mono_ns();
            for p in &procs {
                p.signal(libc::SIGUSR1)?;
            }
            let mut reports = Vec::new();
            for p in &procs {
                let st = p
                    .wait_exit(Duration::from_secs(secs + 15))
                    .ok_or_else(|| anyhow!("flood client on node {} did not finish", p.node()))?;
                let out = p.stdout();
                let line = out
                    .lines()
                    .rev()
                    .find(|l| l.starts_with('{'))
                    .ok_or_else(|| anyhow!("flood client on node {} ({st}) printed no report\n{}", p.node(), p.log_tail(10)))?;
                let v: Value = serde_json::from_str(line).with_context(|| format!("bad report {line:?}"))?;
                reports.push(v);
            }
            let wall = (mono_ns() - wall0) as f64 / 1e9;
            let cpu: Vec<f64> = daemon_pids
                .iter()
                .zip(&cpu0)
                .map(|(&p, &t0)| cpu_ticks(p).saturating_sub(t0) as f64 / ticks_per_sec() / wall * 100.0)
                .collect();
            self.check_daemons()?;
            let mut f = flood_figures(&nodes, &senders, msgs_per_node, size, &reports, &lat_files)?;
            f.corosync_cpu_pct = cpu;
            Ok(f)
        })();
        for p in &procs {
            if p.is_running() {
                let _ = p.kill9();
                let _ = p.wait_exit(REAP_TIMEOUT);
            }
        }
        for f in &lat_files {
            let _ = std::fs::remove_file(f);
        }
        result
    }

    /// SIGKILLs corosync on `victim` and returns the time until the first
    /// survivor is told the new membership (totem confchg without the
    /// victim). The victim stays down: see [`CorosyncCluster::restart`].
    pub fn kill_to_membership(&mut self, victim: usize) -> Result<Duration> {
        let t = self.kill_trial(victim)?;
        Ok(Duration::from_secs_f64(t.membership_ms / 1e3))
    }

    /// [`CorosyncCluster::kill_to_membership`] with the details: first and
    /// last survivor's membership callback, first CPG confchg naming the
    /// victim as left. Waits until every survivor has seen both.
    pub fn kill_trial(&mut self, victim: usize) -> Result<KillTrial> {
        let live = self.live_nodes();
        if !live.contains(&victim) {
            bail!("node {victim} is not running corosync (live: {live:?})");
        }
        let survivors: Vec<usize> = live.iter().copied().filter(|&i| i != victim).collect();
        if survivors.is_empty() {
            bail!("killing node {victim} would leave no survivor to observe it");
        }
        self.wait_membership(&live, FORM_TIMEOUT)?;
        let want: BTreeSet<usize> = survivors.iter().copied().collect();
        let daemon = self.daemons.remove(&victim).expect("checked live");
        let t_kill = mono_ns();
        daemon.kill9()?;
        let seen = wait_until("survivors' membership after the kill", KILL_TIMEOUT, || {
            let mut totem = Vec::new();
            let mut cpg = Vec::new();
            for s in &survivors {
                let ev = parse_watch(&self.watchers.get(s)?.stdout());
                totem.push(ev.iter().find_map(|e| match e {
                    WatchEvent::Totem { t, members } if *t >= t_kill && *members == want => Some(*t),
                    _ => None,
                })?);
                cpg.push(ev.iter().find_map(|e| match e {
                    WatchEvent::Cpg { t, left } if *t >= t_kill && left.contains(&victim) => Some(*t),
                    _ => None,
                })?);
            }
            Some((totem, cpg))
        });
        let _ = daemon.wait_exit(REAP_TIMEOUT);
        // The victim's watcher loses corosync's IPC and exits by itself.
        if let Some(w) = self.watchers.remove(&victim) {
            if w.wait_exit(REAP_TIMEOUT).is_none() {
                let _ = w.kill9();
                let _ = w.wait_exit(REAP_TIMEOUT);
            }
        }
        let (totem, cpg) = seen.with_context(|| self.watchers.values().map(|w| w.log_tail(5)).collect::<String>())?;
        let ms = |t: u64| (t - t_kill) as f64 / 1e6;
        Ok(KillTrial {
            victim,
            membership_ms: ms(*totem.iter().min().expect("survivors")),
            membership_all_ms: ms(*totem.iter().max().expect("survivors")),
            cpg_left_ms: ms(*cpg.iter().min().expect("survivors")),
        })
    }

    /// Starts corosync (and its watcher) again on a killed node and waits
    /// until every running node sees the full membership again.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if !self.nodes.contains(&i) {
            bail!("node {i} is not in this cluster {:?}", self.nodes);
        }
        self.start_daemon(i)?;
        self.start_watcher(i)?;
        self.wait_membership(&self.live_nodes(), FORM_TIMEOUT)
    }

    /// SIGKILLs every watcher and daemon (what Drop does).
    pub fn stop(&mut self) {
        for p in self.watchers.values().chain(self.daemons.values()) {
            let _ = p.kill9();
        }
        for p in self.watchers.values().chain(self.daemons.values()) {
            let _ = p.wait_exit(REAP_TIMEOUT);
        }
        self.watchers.clear();
        self.daemons.clear();
    }
}

impl Drop for CorosyncCluster<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Combines the clients' JSON reports and latency files.
fn flood_figures(
    nodes: &[usize],
    senders: &[usize],
    msgs_per_node: u64,
    size: usize,
    reports: &[Value],
    lat_files: &[PathBuf],
) -> Result<FloodResult> {
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let t0 = reports.iter().map(|r| u(r, "t_start_ns")).filter(|&t| t > 0).min().unwrap_or(0);
    let t_last = reports.iter().map(|r| u(r, "t_last_deliv_ns")).max().unwrap_or(0);
    let total = msgs_per_node * senders.len() as u64;
    let delivered_per_node: Vec<u64> = reports.iter().map(|r| u(r, "delivered")).collect();
    let per_node_rate: Vec<f64> = reports
        .iter()
        .map(|r| {
            let span = u(r, "t_last_deliv_ns").saturating_sub(t0) as f64 / 1e9;
            if span > 0.0 { u(r, "delivered") as f64 / span } else { 0.0 }
        })
        .collect();
    // Per message (sender position, index): worst latency over receivers
    // and how many receivers got it.
    let pos: BTreeMap<usize, usize> = senders.iter().enumerate().map(|(k, &n)| (n, k)).collect();
    let n = msgs_per_node as usize;
    let mut worst = vec![0u64; senders.len() * n];
    let mut got = vec![0u8; senders.len() * n];
    for f in lat_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        for line in text.lines() {
            let mut w = line.split_whitespace().map(|x| x.parse::<u64>());
            let (Some(Ok(origin)), Some(Ok(index)), Some(Ok(lat))) = (w.next(), w.next(), w.next()) else {
                bail!("bad latency line {line:?} in {}", f.display());
            };
            let Some(&p) = pos.get(&(origin as usize)) else { bail!("message from node {origin}, not a sender") };
            if index < 1 || index > msgs_per_node {
                bail!("message index {index} out of range in {}", f.display());
            }
            let k = p * n + (index as usize - 1);
            worst[k] = worst[k].max(lat);
            got[k] = got[k].saturating_add(1);
        }
    }
    let mut everywhere: Vec<u64> = worst
        .iter()
        .zip(&got)
        .filter(|(_, &g)| g as usize == nodes.len())
        .map(|(&w, _)| w)
        .collect();
    everywhere.sort_unstable();
    let order_errors: u64 = reports.iter().map(|r| u(r, "order_err")).sum();
    let membership_changes: u64 = reports.iter().map(|r| u(r, "memb_changes")).sum();
    let complete = everywhere.len() as u64 == total
        && delivered_per_node.iter().all(|&d| d == total)
        && order_errors == 0
        && membership_changes == 0;
    let elapsed = t_last.saturating_sub(t0) as f64 / 1e9;
    let msgs_per_sec = if elapsed > 0.0 { total as f64 / elapsed } else { 0.0 };
    let us = |ns: u64| ns as f64 / 1e3;
    Ok(FloodResult {
        nodes: nodes.to_vec(),
        senders: senders.to_vec(),
        msgs_per_node,
        size,
        delivered_per_node,
        msgs_per_sec,
        msgs_per_sec_per_node: per_node_rate,
        mb_per_sec: msgs_per_sec * size as f64 / 1e6,
        latency_p50_us: us(percentile(&everywhere, 0.50)),
        latency_p99_us: us(percentile(&everywhere, 0.99)),
        latency_max_us: us(everywhere.last().copied().unwrap_or(0)),
        delivered_everywhere: everywhere.len() as u64,
        complete,
        elapsed_ms: elapsed * 1e3,
        try_again: reports.iter().map(|r| u(r, "tryagain")).sum(),
        order_errors,
        membership_changes,
        corosync_cpu_pct: Vec::new(),
    })
}

/// utime + stime of a process in clock ticks (0 if it is gone).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |k: usize| f.get(k).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_watch_lines() {
        let out = "10 START node=1\n20 TOTEM ring=1.5 members=1,2,3\n30 CPG members=1,2 left=3(r3) joined=\n\
                   40 TOTEM ring=1.6 members=1,2\n50 DISPATCH_ERR 2\n";
        let ev = parse_watch(out);
        assert_eq!(
            ev,
            vec![
                WatchEvent::Totem { t: 20, members: [1, 2, 3].into() },
                WatchEvent::Cpg { t: 30, left: [3].into() },
                WatchEvent::Totem { t: 40, members: [1, 2].into() },
            ]
        );
        assert_eq!(parse_ids(""), BTreeSet::new());
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn config_text() {
        let c = CorosyncConfig::with_token(300);
        assert_eq!(c.knet_ping_ms, Some((150, 600)));
        assert!(c.describe().contains("token 300 ms"));
        assert!(CorosyncConfig::with_token(1000).knet_ping_ms.is_none());
    }
}
