//! A multi-node L2 lab made of Linux network namespaces (the Rust form of
//! /work/shared/labs/l2/{setup,teardown,fault}.sh).
//!
//! ```text
//!   node ns <id>_n1 .. <id>_nN : lo, eth1 (segment 0), eth2 (segment 1), ...
//!   switch ns <id>_sw          : brA, brB, ... ; ports n1a, n2a, ... n1b, ...
//! ```
//!
//! Everything (links, bridges, nftables rules) lives in the lab's own
//! namespaces, nothing in the root namespace, so deleting the namespaces
//! removes the whole lab, faults included, and labs never see each other.
//! That is also why interface names need not be unique across labs.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::capture::Capture;
use crate::cmd::{self, describe, poll_many, sh, wait_until, PidFd};
use crate::proc::{Proc, ProcInner};
use crate::raw::{self, RawSocket, ETH_P_PROBE};

/// Name prefix ("family") of every namespace this harness creates:
/// `ht_<pid>_<seq>_<hint>_{n<i>|sw}`. The owner pid in the name is what lets
/// [`sweep_stale`] tell leftovers of crashed runs from live labs.
pub const FAMILY: &str = "ht";

/// Default deadline of [`Lab::exec`].
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long link state changes (restore, unblock, lab creation) may take to
/// settle before we call the lab broken.
const LINK_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// nftables table (bridge family, in the switch namespace) holding all
/// frame-dropping faults; one forward-hook chain.
const NFT_TABLE: &str = "lab_faults";
const NFT_CHAIN: &str = "filt";

/// Segment count limit: MAC byte 0x0a + seg must stay a readable hex
/// letter, and bridge names use letters A.. .
const MAX_SEGMENTS: usize = 6;
/// Node count limit: the node number is the last byte of MACs and IPs.
const MAX_NODES: usize = 254;

/// Shape of a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabSpec {
    /// Number of nodes (1-based everywhere in the API).
    pub nodes: usize,
    /// Number of independent Ethernet segments (0-based; eth1 is segment 0).
    pub segments: usize,
    pub mtu: u32,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            nodes: 3,
            segments: 2,
            mtu: 1500,
        }
    }
}

impl LabSpec {
    /// `n` nodes, two segments, MTU 1500.
    pub fn nodes(n: usize) -> LabSpec {
        LabSpec {
            nodes: n,
            ..LabSpec::default()
        }
    }
}

/// An nftables rule installed by a fault; pass it to [`Lab::remove_rule`] to
/// undo just that fault, or use [`Lab::clear_faults`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub handle: u64,
    /// Human-readable description (also the rule's nft comment).
    pub what: String,
}

/// Labs alive in this process, by creating thread, so that
/// [`with_deadline`] can tear down the labs of a test that hangs.
struct Live {
    id: String,
    thread: ThreadId,
    namespaces: Vec<String>,
    dir: PathBuf,
}
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
static LAB_SEQ: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Teardown must work after a panic anywhere, so poisoning is ignored:
    // the protected lists and maps are never left half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn labs_dir() -> PathBuf {
    std::env::temp_dir().join("ha-lab")
}

/// One lab. See the module docs for the layout. Dropping it kills every
/// process started in it and deletes its namespaces and directories.
#[derive(Debug)]
pub struct Lab {
    id: String,
    spec: LabSpec,
    dir: PathBuf,
    roots: Vec<PathBuf>,
    procs: Mutex<Vec<Arc<ProcInner>>>,
    /// Probe sockets by (node, segment), see [`Lab::l2_probe`].
    probe_socks: Mutex<HashMap<(usize, usize), RawSocket>>,
    seq: AtomicU64,
}

impl Lab {
    /// Builds a lab and waits until every link forwards. `name_hint` (a few
    /// letters, e.g. the test name) only makes names easier to recognise.
    pub fn new(name_hint: &str, spec: LabSpec) -> Result<Lab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("the network lab needs root (network namespaces, raw sockets)");
        }
        if spec.nodes == 0 || spec.nodes > MAX_NODES {
            bail!("LabSpec.nodes must be 1..={MAX_NODES}, got {}", spec.nodes);
        }
        if spec.segments == 0 || spec.segments > MAX_SEGMENTS {
            bail!(
                "LabSpec.segments must be 1..={MAX_SEGMENTS}, got {}",
                spec.segments
            );
        }
        if !(68..=65535).contains(&spec.mtu) {
            bail!("LabSpec.mtu must be 68..=65535, got {}", spec.mtu);
        }
        // Once per process: clean up after earlier runs that crashed
        // (SIGKILL, abort) before their labs were dropped.
        SWEEP.call_once(|| {
            if let Err(e) = sweep_stale(FAMILY) {
                eprintln!("ha-tests: sweeping stale labs failed: {e:#}");
            }
        });
        let mut hint: String = name_hint
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .take(10)
            .collect();
        if hint.is_empty() {
            hint.push_str("lab");
        }
        let id = format!(
            "{FAMILY}_{}_{}_{hint}",
            std::process::id(),
            LAB_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = labs_dir().join(&id);
        let roots = (1..=spec.nodes)
            .map(|i| dir.join(format!("n{i}")))
            .collect();
        let lab = Lab {
            id,
            spec,
            dir,
            roots,
            procs: Mutex::new(Vec::new()),
            probe_socks: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        };
        lock(&LIVE).push(Live {
            id: lab.id.clone(),
            thread: std::thread::current().id(),
            namespaces: lab.namespaces(),
            dir: lab.dir.clone(),
        });
        // On error `lab` is dropped here, which removes whatever was built.
        lab.build()
            .with_context(|| format!("building lab {}", lab.id))?;
        Ok(lab)
    }

    fn build(&self) -> Result<()> {
        for r in &self.roots {
            for sub in ["etc", "run", "log"] {
                let d = r.join(sub);
                fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
            }
        }
        {
            // `ip netns add` makes /run/netns a shared mount the first time;
            // concurrent first calls (parallel test processes on a fresh
            // machine) can stack mounts. Serialise creation across processes.
            let _lock = FileLock::take(&labs_dir().join(".netns.lock"))?;
            for ns in self.namespaces() {
                sh("ip", &["netns", "add", &ns])?;
            }
        }
        let sw = self.switch_ns();
        for ns in self.namespaces() {
            // IPv6 off BEFORE any link exists, so new devices inherit
            // "default" and never send router solicitations, MLD or DAD.
            let sysctl =
                "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1";
            let mut args = vec!["netns", "exec", &ns];
            args.extend(sysctl.split(' '));
            sh("ip", &args)?;
            ip_in(&ns, "link set lo up")?;
        }
        let mtu = self.spec.mtu;
        for seg in 0..self.spec.segments {
            let br = self.bridge(seg);
            // STP off: ports forward at once. No multicast snooping: every
            // multicast frame reaches every port, like a dumb switch.
            ip_in(
                &sw,
                &format!("link add {br} type bridge stp_state 0 forward_delay 0 mcast_snooping 0"),
            )?;
            ip_in(&sw, &format!("link set {br} mtu {mtu} up"))?;
        }
        for i in 1..=self.spec.nodes {
            let node = self.node_ns(i);
            for seg in 0..self.spec.segments {
                let (ifc, port, br) = (self.iface(seg), self.port(i, seg), self.bridge(seg));
                let mac = fmt_mac(&self.mac(i, seg));
                // Created from inside the switch namespace with the peer put
                // straight into the node: never touches the root namespace,
                // so names like eth1 cannot clash with the host's.
                ip_in(
                    &sw,
                    &format!(
                        "link add {port} mtu {mtu} type veth \
                         peer name {ifc} address {mac} mtu {mtu} netns {node}"
                    ),
                )?;
                let (addr, brd) = (self.ip(i, seg), self.bcast(seg));
                ip_in(&node, &format!("addr add {addr}/24 brd {brd} dev {ifc}"))?;
                ip_in(&node, &format!("link set {ifc} up"))?;
                ip_in(&sw, &format!("link set {port} master {br} up"))?;
            }
        }
        self.wait_ready(&self.all_ports())
    }

    // ---- names and addresses -------------------------------------------

    /// Unique lab id, `ht_<pid>_<seq>_<hint>`; prefix of all its namespaces.
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn spec(&self) -> LabSpec {
        self.spec
    }
    pub fn nodes(&self) -> usize {
        self.spec.nodes
    }
    pub fn segments(&self) -> usize {
        self.spec.segments
    }
    /// Network namespace of node `i` (1-based), usable with `ip netns exec`.
    pub fn node_ns(&self, i: usize) -> String {
        self.assert_node(i);
        format!("{}_n{i}", self.id)
    }
    /// The switch namespace (bridges, fault rules).
    pub fn switch_ns(&self) -> String {
        format!("{}_sw", self.id)
    }
    /// All namespaces of the lab: nodes, then the switch.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = (1..=self.spec.nodes).map(|i| self.node_ns(i)).collect();
        v.push(self.switch_ns());
        v
    }
    /// Node-side interface of a segment: "eth1" for segment 0.
    pub fn iface(&self, seg: usize) -> String {
        self.assert_seg(seg);
        format!("eth{}", seg + 1)
    }
    /// Switch-side port of node `i` on `seg` (in [`Lab::switch_ns`]): "n1a".
    pub fn port(&self, i: usize, seg: usize) -> String {
        self.assert_node(i);
        self.assert_seg(seg);
        format!("n{i}{}", (b'a' + seg as u8) as char)
    }
    /// Bridge of a segment (in [`Lab::switch_ns`]): "brA" for segment 0.
    pub fn bridge(&self, seg: usize) -> String {
        self.assert_seg(seg);
        format!("br{}", (b'A' + seg as u8) as char)
    }
    /// Fixed MAC of node `i` on `seg`: 02:00:00:00:0a:01 for node 1, seg 0
    /// (locally administered; the same in every lab, labs are isolated).
    pub fn mac(&self, i: usize, seg: usize) -> [u8; 6] {
        self.assert_node(i);
        self.assert_seg(seg);
        [0x02, 0, 0, 0, 0x0a + seg as u8, i as u8]
    }
    /// IPv4 address of node `i` on `seg`: `10.77.<seg+1>.<i>/24`.
    pub fn ip(&self, i: usize, seg: usize) -> Ipv4Addr {
        self.assert_node(i);
        self.assert_seg(seg);
        Ipv4Addr::new(10, 77, seg as u8 + 1, i as u8)
    }
    /// Broadcast address of `seg`: `10.77.<seg+1>.255`.
    pub fn bcast(&self, seg: usize) -> Ipv4Addr {
        self.assert_seg(seg);
        Ipv4Addr::new(10, 77, seg as u8 + 1, 255)
    }
    /// HA_ROOT of node `i`: a directory with etc/, run/ and log/ (spawned
    /// processes' output, captures), removed when the lab is dropped.
    pub fn root(&self, i: usize) -> &Path {
        self.assert_node(i);
        &self.roots[i - 1]
    }
    /// The lab's directory (holds every node root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn assert_node(&self, i: usize) {
        assert!(
            i >= 1 && i <= self.spec.nodes,
            "lab {}: node {i} out of range 1..={}",
            self.id,
            self.spec.nodes
        );
    }
    fn assert_seg(&self, seg: usize) {
        assert!(
            seg < self.spec.segments,
            "lab {}: segment {seg} out of range 0..{}",
            self.id,
            self.spec.segments
        );
    }
    fn check(&self, i: usize, seg: usize) -> Result<()> {
        if i < 1 || i > self.spec.nodes {
            bail!(
                "lab {}: node {i} out of range 1..={}",
                self.id,
                self.spec.nodes
            );
        }
        if seg >= self.spec.segments {
            bail!(
                "lab {}: segment {seg} out of range 0..{}",
                self.id,
                self.spec.segments
            );
        }
        Ok(())
    }
    fn all_ports(&self) -> Vec<(usize, usize)> {
        (1..=self.spec.nodes)
            .flat_map(|i| (0..self.spec.segments).map(move |s| (i, s)))
            .collect()
    }

    // ---- running things in nodes ---------------------------------------

    fn node_command(&self, i: usize, argv: &[&str], env: &[(&str, &str)]) -> Result<Command> {
        self.check(i, 0)?;
        let (prog, args) = argv.split_first().ok_or_else(|| anyhow!("empty argv"))?;
        let mut c = Command::new("ip");
        // `ip netns exec` execs the program (same pid) after also giving it a
        // private /sys showing the node's own interfaces.
        c.args(["netns", "exec", &self.node_ns(i), prog])
            .args(args)
            .env("HA_ROOT", self.root(i))
            .current_dir(self.root(i));
        for (k, v) in env {
            c.env(k, v);
        }
        Ok(c)
    }

    /// Runs `argv` in node `i` with HA_ROOT=root(i), cwd root(i); waits up to
    /// [`EXEC_TIMEOUT`] (then kills it and fails). A non-zero exit is not an
    /// error: inspect `status`, or use [`Lab::exec_ok`].
    pub fn exec(&self, i: usize, argv: &[&str]) -> Result<Output> {
        self.exec_with(i, argv, &[], EXEC_TIMEOUT)
    }

    /// [`Lab::exec`] with extra environment and an explicit deadline.
    pub fn exec_with(
        &self,
        i: usize,
        argv: &[&str],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Output> {
        let mut c = self.node_command(i, argv, env)?;
        cmd::run(&mut c, timeout).with_context(|| format!("on node {i} of lab {}", self.id))
    }

    /// Runs `argv` in node `i`; fails (with its stderr) unless it exits 0;
    /// returns stdout.
    pub fn exec_ok(&self, i: usize, argv: &[&str]) -> Result<String> {
        let mut c = self.node_command(i, argv, &[])?;
        let what = describe(&c);
        let out = cmd::check(&what, cmd::run(&mut c, EXEC_TIMEOUT)?)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a long-running process in node `i` with HA_ROOT=root(i) plus
    /// `env`. stdout/stderr are appended to `root(i)/log/<name>.out`/`.err`
    /// (appended, so a restarted daemon keeps its predecessor's log;
    /// [`Proc::stdout`] shows only this run's part). The lab kills (SIGKILL,
    /// whole process group) and reaps it on drop.
    pub fn spawn(&self, i: usize, name: &str, argv: &[&str], env: &[(&str, &str)]) -> Result<Proc> {
        if name.is_empty() || name.contains('/') {
            bail!("process name {name:?} must be a non-empty file name");
        }
        let log = self.root(i).join("log");
        let open = |ext: &str| -> Result<(File, PathBuf, u64)> {
            let p = log.join(format!("{name}.{ext}"));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .with_context(|| format!("open {}", p.display()))?;
            let start = f.metadata()?.len();
            Ok((f, p, start))
        };
        let (out, out_path, out_start) = open("out")?;
        let (err, err_path, err_start) = open("err")?;
        let mut c = self.node_command(i, argv, env)?;
        c.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let what = describe(&c);
        let child = c
            .spawn()
            .with_context(|| format!("cannot start `{what}`"))?;
        let inner = Arc::new(ProcInner::new(
            name, i, child, out_path, err_path, out_start, err_start,
        )?);
        lock(&self.procs).push(inner.clone());
        Ok(Proc { inner })
    }

    /// Every process spawned so far (running or not), oldest first.
    pub fn procs(&self) -> Vec<Proc> {
        lock(&self.procs)
            .iter()
            .map(|p| Proc { inner: p.clone() })
            .collect()
    }

    /// Runs `f` on a thread inside node `i`'s network namespace; sockets it
    /// creates (UdpSocket::bind, ...) stay in that namespace.
    pub fn in_node<T: Send>(
        &self,
        i: usize,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> Result<T> {
        raw::in_netns(&self.node_ns(i), f)
    }

    /// A raw AF_PACKET socket on node `i`'s interface of `seg` for one
    /// ethertype ([`raw::ETH_P_LLT`], [`raw::ETH_P_PROBE`], [`raw::ETH_P_ALL`]).
    pub fn raw_socket(&self, i: usize, seg: usize, ethertype: u16) -> Result<RawSocket> {
        self.check(i, seg)?;
        let ifc = self.iface(seg);
        self.in_node(i, move || RawSocket::open_here(&ifc, ethertype))
            .with_context(|| format!("raw socket on node {i} {}", self.iface(seg)))
    }

    /// Does a frame from node `from` reach node `to` on `seg`? Sends probe
    /// frames (ethertype [`ETH_P_PROBE`], invisible to LLT) unicast to `to`'s
    /// MAC every 50 ms until one arrives or `wait` passes. Use a generous
    /// `wait` when expecting true (it returns as soon as a probe arrives) and
    /// a short one when expecting false (the wait is the price of a "no").
    pub fn l2_reachable(&self, from: usize, to: usize, seg: usize, wait: Duration) -> Result<bool> {
        Ok(self.l2_probe(&[(from, to, seg)], wait)?[0])
    }

    /// [`Lab::l2_reachable`] for many `(from, to, seg)` paths at once. All
    /// are probed together, so checking that ten paths are cut costs one
    /// `wait`, not ten.
    pub fn l2_probe(&self, paths: &[(usize, usize, usize)], wait: Duration) -> Result<Vec<bool>> {
        const RESEND: Duration = Duration::from_millis(50);
        let enetdown = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENETDOWN);
        for &(a, b, seg) in paths {
            self.check(a, seg)?;
            self.check(b, seg)?;
        }
        // One prober at a time: two would read each other's frames. The
        // sockets are kept for the lab's life because opening (setns) and
        // closing (an RCU grace period) an AF_PACKET socket costs ~10 ms.
        let mut socks = lock(&self.probe_socks);
        for &(a, b, _) in paths {
            for n in [a, b] {
                if !socks.contains_key(&(n, 0)) {
                    let ifaces: Vec<String> =
                        (0..self.spec.segments).map(|s| self.iface(s)).collect();
                    let v: Vec<RawSocket> = self
                        .in_node(n, move || {
                            ifaces
                                .iter()
                                .map(|i| RawSocket::open_here(i, ETH_P_PROBE))
                                .collect()
                        })
                        .with_context(|| format!("probe sockets on node {n}"))?;
                    for (seg, sock) in v.into_iter().enumerate() {
                        socks.insert((n, seg), sock);
                    }
                }
            }
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        // ';' ends the token so that "... 1;" is not a prefix of "... 10;".
        let tokens: Vec<Vec<u8>> = (0..paths.len())
            .map(|k| format!("probe {} {seq} {k};", self.id).into_bytes())
            .collect();
        let mut rx_keys: Vec<(usize, usize)> = paths.iter().map(|&(_, b, seg)| (b, seg)).collect();
        rx_keys.sort_unstable();
        rx_keys.dedup();
        for k in &rx_keys {
            // Leftovers of earlier probes (late resends, floods) are useless.
            while let Ok(Some(_)) = socks[k].recv(Duration::ZERO) {}
        }
        let fds: Vec<std::os::fd::RawFd> = rx_keys.iter().map(|k| socks[k].as_raw_fd()).collect();
        let mut got = vec![false; paths.len()];
        // An admin-down interface refuses to send (ENETDOWN): unreachable.
        let mut unsendable = vec![false; paths.len()];
        let end = Instant::now() + wait;
        loop {
            for (k, &(a, b, seg)) in paths.iter().enumerate() {
                if got[k] || unsendable[k] {
                    continue;
                }
                match socks[&(a, seg)].send_to(self.mac(b, seg), &tokens[k]) {
                    Ok(()) => {}
                    Err(e) if enetdown(&e) => unsendable[k] = true,
                    // Transient: the veth dropped it (peer's backlog full on
                    // a busy machine, or carrier just lost). The next round
                    // resends.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                    Err(e) => bail!("probe send on node {a} {}: {e}", self.iface(seg)),
                }
            }
            let resend_at = (Instant::now() + RESEND).min(end);
            loop {
                if (0..paths.len()).all(|k| got[k] || unsendable[k]) {
                    return Ok(got);
                }
                let ready = poll_many(&fds, resend_at.saturating_duration_since(Instant::now()))?;
                if !ready.contains(&true) {
                    break;
                }
                for (key, _) in rx_keys.iter().zip(&ready).filter(|(_, r)| **r) {
                    loop {
                        match socks[key].recv(Duration::ZERO) {
                            Ok(Some(f)) => {
                                let hit = tokens.iter().position(|t| f.payload().starts_with(t));
                                if let Some(k) = hit.filter(|&k| (paths[k].1, paths[k].2) == *key) {
                                    got[k] = true;
                                }
                            }
                            Ok(None) => break,
                            // The receiver went admin down (ifdown): reported
                            // once; nothing arrives while it is down.
                            Err(e) if enetdown(&e) => break,
                            Err(e) => {
                                bail!("probe receive on node {} {}: {e}", key.0, self.iface(key.1))
                            }
                        }
                    }
                }
            }
            if Instant::now() >= end {
                return Ok(got);
            }
        }
    }

    // ---- faults ---------------------------------------------------------
    // All fault state lives in the switch namespace (or a node namespace),
    // so deleting the namespaces also removes every fault.

    /// Switch-side port down: node `i` sees carrier loss on `seg`; its sends
    /// vanish silently.
    pub fn cut(&self, i: usize, seg: usize) -> Result<()> {
        self.check(i, seg)?;
        ip_in(
            &self.switch_ns(),
            &format!("link set {} down", self.port(i, seg)),
        )?;
        // Until linkwatch has processed the carrier loss, the node's sends
        // still reach the veth and fail with ENOBUFS; afterwards they vanish
        // silently, as on a real cut cable. Return in that steady state.
        self.wait_links(&[(i, seg)], "to lose carrier", |s| s.node_oper != "UP")
    }

    /// Undoes [`Lab::cut`]; returns once the link forwards again.
    pub fn restore(&self, i: usize, seg: usize) -> Result<()> {
        self.check(i, seg)?;
        ip_in(
            &self.switch_ns(),
            &format!("link set {} up", self.port(i, seg)),
        )?;
        self.wait_ready(&[(i, seg)])
    }

    /// Node-side admin down: sends on the interface fail with ENETDOWN.
    pub fn ifdown(&self, i: usize, seg: usize) -> Result<()> {
        self.check(i, seg)?;
        ip_in(
            &self.node_ns(i),
            &format!("link set {} down", self.iface(seg)),
        )
        .map(drop)
    }

    /// Undoes [`Lab::ifdown`]; returns once the link forwards again.
    pub fn ifup(&self, i: usize, seg: usize) -> Result<()> {
        self.check(i, seg)?;
        ip_in(
            &self.node_ns(i),
            &format!("link set {} up", self.iface(seg)),
        )?;
        self.wait_ready(&[(i, seg)])
    }

    /// Bridge port state "disabled": a silent cut, carrier stays up.
    pub fn block(&self, i: usize, seg: usize) -> Result<()> {
        self.check(i, seg)?;
        bridge_in(
            &self.switch_ns(),
            &format!("link set dev {} state 0", self.port(i, seg)),
        )
        .map(drop)
    }

    /// Undoes [`Lab::block`] (state "forwarding").
    pub fn unblock(&self, i: usize, seg: usize) -> Result<()> {
        self.check(i, seg)?;
        bridge_in(
            &self.switch_ns(),
            &format!("link set dev {} state 3", self.port(i, seg)),
        )?;
        self.wait_ready(&[(i, seg)])
    }

    /// Drops frames from node `from` to node `to` on `seg` only (one
    /// direction; broadcasts to `to` included). `pct` 100 drops all, less
    /// drops that percentage at random.
    pub fn drop_one_way(&self, from: usize, to: usize, seg: usize, pct: u32) -> Result<Rule> {
        self.check(from, seg)?;
        self.check(to, seg)?;
        let (pf, pt) = (self.port(from, seg), self.port(to, seg));
        let what = format!("drop {from}->{to} seg {seg} {pct}%");
        self.add_drop_rule(&format!("iifname \"{pf}\" oifname \"{pt}\""), pct, &what)
    }

    /// Random loss of `pct`% on everything to and from node `i` on `seg`
    /// (two rules: from, then to).
    pub fn loss(&self, i: usize, seg: usize, pct: u32) -> Result<Vec<Rule>> {
        self.check(i, seg)?;
        let p = self.port(i, seg);
        Ok(vec![
            self.add_drop_rule(
                &format!("iifname \"{p}\""),
                pct,
                &format!("loss from {i} seg {seg} {pct}%"),
            )?,
            self.add_drop_rule(
                &format!("oifname \"{p}\""),
                pct,
                &format!("loss to {i} seg {seg} {pct}%"),
            )?,
        ])
    }

    /// Drops everything to and from node `i` on every segment (carrier
    /// stays up: the node just stops hearing and being heard).
    pub fn isolate(&self, i: usize) -> Result<Vec<Rule>> {
        let mut v = Vec::new();
        for seg in 0..self.spec.segments {
            v.extend(self.loss(i, seg, 100)?);
        }
        Ok(v)
    }

    /// Removes one rule added by a fault.
    pub fn remove_rule(&self, rule: &Rule) -> Result<()> {
        let cmd = format!(
            "delete rule bridge {NFT_TABLE} {NFT_CHAIN} handle {}",
            rule.handle
        );
        self.nft(&[], &cmd)
            .with_context(|| format!("removing rule '{}'", rule.what))
            .map(drop)
    }

    /// How many frames a rule has dropped so far.
    pub fn rule_hits(&self, rule: &Rule) -> Result<u64> {
        let listing = self.nft(
            &["-a"],
            &format!("list chain bridge {NFT_TABLE} {NFT_CHAIN}"),
        )?;
        let suffix = format!("# handle {}", rule.handle);
        let line = listing
            .lines()
            .find(|l| l.trim_end().ends_with(&suffix))
            .ok_or_else(|| anyhow!("rule '{}' (handle {}) not found", rule.what, rule.handle))?;
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "packets" {
                if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                    return Ok(n);
                }
            }
        }
        bail!("no packet counter in rule line: {line}")
    }

    /// Removes every fault: nft rules, cuts, ifdowns, blocks; returns once
    /// every link forwards again.
    pub fn clear_faults(&self) -> Result<()> {
        let sw = self.switch_ns();
        let tables = self.nft(&[], "list tables bridge")?;
        if tables
            .lines()
            .any(|l| l.trim() == format!("table bridge {NFT_TABLE}"))
        {
            self.nft(&[], &format!("delete table bridge {NFT_TABLE}"))?;
        }
        for (i, seg) in self.all_ports() {
            // Links up first: the bridge recomputes a port's state when its
            // carrier returns, so a state set on a down port would not stick.
            let port = self.port(i, seg);
            ip_in(
                &self.node_ns(i),
                &format!("link set {} up", self.iface(seg)),
            )?;
            ip_in(&sw, &format!("link set {port} up"))?;
            bridge_in(&sw, &format!("link set dev {port} state 3"))?;
        }
        self.wait_ready(&self.all_ports())
    }

    /// Runs `nft <flags> <command>` in the switch namespace. nft joins its
    /// arguments into one command line, so a whole command (even several,
    /// separated by ';') is passed as one argument.
    fn nft(&self, flags: &[&str], command: &str) -> Result<String> {
        let sw = self.switch_ns();
        let mut args = vec!["netns", "exec", &sw, "nft"];
        args.extend_from_slice(flags);
        args.push(command);
        sh("ip", &args)
    }

    fn add_drop_rule(&self, matches: &str, pct: u32, what: &str) -> Result<Rule> {
        if pct == 0 || pct > 100 {
            bail!("loss percentage must be 1..=100, got {pct}");
        }
        self.nft(
            &[],
            &format!(
                "add table bridge {NFT_TABLE} ; add chain bridge {NFT_TABLE} {NFT_CHAIN} \
                 {{ type filter hook forward priority 0 ; policy accept ; }}"
            ),
        )?;
        let random = if pct < 100 {
            format!("numgen random mod 100 < {pct}")
        } else {
            String::new()
        };
        // -a -e: echo the added rule with its handle, so it can be removed alone.
        let out = self.nft(
            &["-a", "-e"],
            &format!("add rule bridge {NFT_TABLE} {NFT_CHAIN} {matches} {random} counter drop comment \"{what}\""),
        )?;
        let handle = out
            .split("# handle ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| anyhow!("no rule handle in nft output: {out}"))?;
        Ok(Rule {
            handle,
            what: what.to_string(),
        })
    }

    /// Waits until each (node, seg) link is up on both ends and its bridge
    /// port forwards. Carrier changes are applied by the kernel's linkwatch
    /// worker, asynchronously, so "ip link set up" returning is not enough.
    fn wait_ready(&self, ports: &[(usize, usize)]) -> Result<()> {
        self.wait_links(ports, "to forward", LinkState::forwarding)
    }

    /// Polls the links' kernel state until `ok` holds for all of them.
    fn wait_links(
        &self,
        ports: &[(usize, usize)],
        what: &str,
        ok: impl Fn(&LinkState) -> bool,
    ) -> Result<()> {
        let mut last = String::new();
        let r = wait_until(
            &format!("links {ports:?} of lab {} {what}", self.id),
            LINK_READY_TIMEOUT,
            || match self.link_states(ports) {
                Ok(v) if v.iter().all(&ok) => Some(()),
                Ok(v) => {
                    last = format!("{v:?}");
                    None
                }
                Err(e) => {
                    last = format!("{e:#}");
                    None
                }
            },
        );
        r.with_context(|| format!("last seen: {last}"))
    }

    /// Kernel state of each (node, seg) link, in the order given.
    fn link_states(&self, ports: &[(usize, usize)]) -> Result<Vec<LinkState>> {
        let json = |prog: &str, ns: &str| -> Result<Vec<Value>> {
            let s = sh(prog, &["-n", ns, "-j", "link", "show"])?;
            serde_json::from_str(&s)
                .with_context(|| format!("parsing `{prog} -n {ns} -j link show`"))
        };
        let bridge_ports = json("bridge", &self.switch_ns())?;
        let mut node_links = HashMap::new();
        for &(i, _) in ports {
            if let std::collections::hash_map::Entry::Vacant(e) = node_links.entry(i) {
                e.insert(json("ip", &self.node_ns(i))?);
            }
        }
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_string();
        let mut states = Vec::new();
        for &(i, seg) in ports {
            let ifc = self.iface(seg);
            let node = node_links[&i].iter().find(|l| l["ifname"] == ifc.as_str());
            let port = self.port(i, seg);
            let p = bridge_ports.iter().find(|l| l["ifname"] == port.as_str());
            states.push(LinkState {
                node: i,
                seg,
                node_oper: text(node.map(|l| &l["operstate"])),
                port_state: text(p.map(|l| &l["state"])),
                port_lower_up: p
                    .and_then(|l| l["flags"].as_array())
                    .is_some_and(|f| f.iter().any(|x| x == "LOWER_UP")),
            });
        }
        Ok(states)
    }

    /// Current fault and link state, for failure messages.
    pub fn show(&self) -> String {
        let sw = self.switch_ns();
        let mut s = format!(
            "lab {} ({} nodes, {} segments)\n",
            self.id, self.spec.nodes, self.spec.segments
        );
        let mut add = |title: &str, prog: &str, args: &[&str]| {
            s.push_str(&format!("-- {title}\n"));
            match sh(prog, args) {
                Ok(o) => s.push_str(&o),
                Err(e) => s.push_str(&format!("({e:#})\n")),
            }
        };
        add("bridge ports", "bridge", &["-n", &sw, "link", "show"]);
        add(
            "switch nft",
            "ip",
            &["netns", "exec", &sw, "nft", "list", "ruleset"],
        );
        for i in 1..=self.spec.nodes {
            add(
                &format!("node {i}"),
                "ip",
                &["-n", &self.node_ns(i), "-br", "addr", "show"],
            );
        }
        s
    }

    // ---- captures -------------------------------------------------------

    /// Starts tcpdump on node `i`'s interface of `seg`, capturing LLT frames
    /// (ether proto 0xcafe) into `root(i)/log/cap-<iface>-<n>.pcap`. Returns
    /// once tcpdump reports "listening on", i.e. the capture socket is
    /// active and no later frame is missed.
    pub fn capture(&self, i: usize, seg: usize) -> Result<Capture> {
        self.check(i, seg)?;
        let ifc = self.iface(seg);
        let k = self.seq.fetch_add(1, Ordering::Relaxed);
        let log = self.root(i).join("log");
        let path = log.join(format!("cap-{ifc}-{k}.pcap"));
        let err_path = log.join(format!("cap-{ifc}-{k}.err"));
        let path_s = path
            .to_str()
            .ok_or_else(|| anyhow!("non-UTF-8 path {}", path.display()))?;
        // -Z root: Debian's tcpdump otherwise drops to user "tcpdump" before
        // creating the file. -U: write each packet at once (readable while
        // running). --immediate-mode: no batching in the kernel ring.
        let argv = [
            "tcpdump",
            "-Z",
            "root",
            "-i",
            &ifc,
            "-n",
            "-U",
            "--immediate-mode",
            "-w",
            path_s,
            "ether proto 0xcafe",
        ];
        let mut c = self.node_command(i, &argv, &[])?;
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let what = describe(&c);
        let mut child = c
            .spawn()
            .with_context(|| format!("cannot start `{what}`"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("no stderr pipe"))?;
        let proc = Arc::new(ProcInner::new(
            &format!("tcpdump-{ifc}-{k}"),
            i,
            child,
            // stdout is discarded (the pcap is the output); keep log_tail text.
            PathBuf::from("/dev/null"),
            err_path.clone(),
            0,
            0,
        )?);
        lock(&self.procs).push(proc.clone());

        // A reader thread keeps draining tcpdump's stderr (so it never blocks
        // on a full pipe), copies it to a file and tells us when it listens.
        let text = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let text = text.clone();
            let mut file = File::create(&err_path).ok();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                // Bytes, not lines(): a non-UTF-8 line must not stop the draining.
                for line in BufReader::new(stderr).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line);
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    if line.contains("listening on") {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    lock(&text).push_str(&format!("{line}\n"));
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => Ok(Capture {
                proc,
                path,
                stderr: text,
            }),
            Err(e) => {
                // Either tcpdump exited (pipe closed) or it is stuck.
                proc.terminate();
                let msg = lock(&text).trim().to_string();
                let hint = if msg.contains("No such file") || msg.contains("not found") {
                    " (is tcpdump installed? apt-get install tcpdump)"
                } else {
                    ""
                };
                let why = if e == mpsc::RecvTimeoutError::Timeout {
                    "did not start listening within 10 s"
                } else {
                    "exited"
                };
                bail!("`{what}` {why}{hint}: {msg}")
            }
        }
    }
}

/// What the kernel reports about one node's link on one segment.
#[derive(Debug)]
#[allow(dead_code)] // node/seg are read through Debug, in timeout messages
struct LinkState {
    node: usize,
    seg: usize,
    /// operstate of the node's interface: UP, DOWN, LOWERLAYERDOWN...
    node_oper: String,
    /// Bridge port state: forwarding, disabled...
    port_state: String,
    /// Carrier on the switch-side port.
    port_lower_up: bool,
}

impl LinkState {
    fn forwarding(&self) -> bool {
        self.node_oper == "UP" && self.port_state == "forwarding" && self.port_lower_up
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let procs: Vec<Arc<ProcInner>> = std::mem::take(&mut *lock(&self.procs));
        if std::thread::panicking() {
            // The test failed: the daemons' last words are usually the clue.
            eprintln!(
                "ha-tests: lab {} dropped during a panic; process logs follow",
                self.id
            );
            for p in &procs {
                eprint!("{}", p.log_tail(30));
            }
        }
        for p in &procs {
            p.terminate();
        }
        // Open sockets would keep the namespaces alive (nameless) after
        // `ip netns del`; close them first.
        lock(&self.probe_socks).clear();
        teardown(&self.namespaces(), &self.dir);
        lock(&LIVE).retain(|l| l.id != self.id);
    }
}

/// Kills whatever still runs in the namespaces (processes started inside
/// them, e.g. by a command the test ran, that outlived it), deletes them and
/// removes `dir`. Never panics; reports problems on stderr.
fn teardown(namespaces: &[String], dir: &Path) {
    for ns in namespaces {
        if !Path::new("/run/netns").join(ns).exists() {
            continue;
        }
        kill_ns_procs(ns);
        // A process still inside would keep the namespace alive after its
        // name is gone (ip netns del only unmounts); we killed them above.
        if let Err(e) = sh("ip", &["netns", "del", ns]) {
            eprintln!("ha-tests: {e:#}");
        }
    }
    if dir.exists() {
        if let Err(e) = fs::remove_dir_all(dir) {
            eprintln!("ha-tests: cannot remove {}: {e}", dir.display());
        }
    }
}

/// SIGKILLs every process whose network namespace is `ns` (what `ip netns
/// pids` lists). Each candidate is pinned with a pidfd before its namespace
/// is checked, so a pid reused in between is not hit.
fn kill_ns_procs(ns: &str) {
    let Ok(target) = fs::metadata(Path::new("/run/netns").join(ns)) else {
        return;
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(pidfd) = PidFd::open(pid) else {
            continue;
        };
        let Ok(m) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if m.dev() == target.dev() && m.ino() == target.ino() {
            let _ = pidfd.signal(libc::SIGKILL);
        }
    }
}

/// Deletes namespaces (and lab directories) left by earlier runs of this
/// harness that died without dropping their labs: names
/// `<family>_<pid>_...` whose owner pid no longer exists. Labs of live
/// processes - including parallel test processes - are never touched.
/// Returns the deleted namespace names. [`Lab::new`] calls this once per
/// process with [`FAMILY`].
pub fn sweep_stale(family: &str) -> Result<Vec<String>> {
    let owner_dead = |name: &str| -> bool {
        let Some(rest) = name.strip_prefix(family).and_then(|r| r.strip_prefix('_')) else {
            return false;
        };
        let Some(pid) = rest.split('_').next().and_then(|p| p.parse::<u32>().ok()) else {
            return false;
        };
        !Path::new(&format!("/proc/{pid}")).exists()
    };
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    if let Ok(entries) = fs::read_dir("/run/netns") {
        let names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for name in names.into_iter().filter(|n| owner_dead(n)) {
            kill_ns_procs(&name);
            match sh("ip", &["netns", "del", &name]) {
                Ok(_) => removed.push(name),
                // Another process sweeping at the same time got there first.
                Err(_) if !Path::new("/run/netns").join(&name).exists() => {}
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
    }
    if let Ok(entries) = fs::read_dir(labs_dir()) {
        for e in entries.flatten() {
            if e.file_name().to_str().is_some_and(owner_dead) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    if !errors.is_empty() {
        bail!("cannot delete stale namespaces: {}", errors.join("; "));
    }
    Ok(removed)
}

/// Runs a test body with a deadline. The body runs on its own thread; if it
/// panics, the panic is passed on; if it is still running after `deadline`,
/// the labs it created are torn down (processes killed, namespaces deleted)
/// and this panics, so a hung test fails without leaving anything behind.
pub fn with_deadline<T: Send + 'static>(
    deadline: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let name = std::thread::current().name().unwrap_or("test").to_string();
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            let _ = tx.send(r);
        })
        .expect("cannot spawn the test body thread");
    let body_thread = handle.thread().id();
    match rx.recv_timeout(deadline) {
        Ok(Ok(v)) => {
            let _ = handle.join();
            v
        }
        Ok(Err(panic)) => {
            let _ = handle.join();
            std::panic::resume_unwind(panic)
        }
        Err(_) => {
            let hung: Vec<Live> = {
                let mut live = lock(&LIVE);
                let (mine, rest): (Vec<Live>, Vec<Live>) =
                    live.drain(..).partition(|l| l.thread == body_thread);
                *live = rest;
                mine
            };
            for l in &hung {
                teardown(&l.namespaces, &l.dir);
            }
            let ids: Vec<&str> = hung.iter().map(|l| l.id.as_str()).collect();
            panic!("test body did not finish within {deadline:?}; tore down its labs {ids:?}")
        }
    }
}

/// An exclusive flock(2) on a file, released on drop.
struct FileLock(File);

impl FileLock {
    fn take(path: &Path) -> Result<FileLock> {
        if let Some(d) = path.parent() {
            fs::create_dir_all(d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        loop {
            // Blocking: holders only run a few `ip netns add`, each bounded
            // by PLUMBING_TIMEOUT.
            // SAFETY: valid fd.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(anyhow!("flock {}: {e}", path.display()));
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: valid fd (closing would also release it).
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// `ip -n <ns> <words>`; `words` is split at spaces (lab names have none).
fn ip_in(ns: &str, words: &str) -> Result<String> {
    let mut args = vec!["-n", ns];
    args.extend(words.split_whitespace());
    sh("ip", &args)
}

/// `bridge -n <ns> <words>`, like [`ip_in`].
fn bridge_in(ns: &str, words: &str) -> Result<String> {
    let mut args = vec!["-n", ns];
    args.extend(words.split_whitespace());
    sh("bridge", &args)
}

fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
