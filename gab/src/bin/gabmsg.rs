//! `gabmsg`: test and benchmark client for GAB ports, as `lltmsg` is for
//! LLT. `gabmsg join -p PORT` registers on a port, optionally heartbeats,
//! sends numbered messages and reads everything GAB delivers to the port,
//! keeping digests of the ordered stream so tests can compare nodes.
//!
//! Threads: the main thread only reads (so the client never stops draining
//! its deliveries, whatever the sender is doing; GAB disconnects a client
//! whose queue fills). The sender and the heartbeat thread write through one
//! `Mutex`-protected clone of the socket, one whole batch of frames per lock,
//! so frames never interleave.
//!
//! Payload (at least [`HEADER`] = 24 bytes, all little-endian): sender's
//! node id (u32, from `--node`), message index (u64), send time (u64, ns of
//! CLOCK_MONOTONIC, which all network namespaces of a host share), total
//! length (u32); then byte k = `(index as u8).wrapping_add(k as u8)`.
//!
//! Digests (64-bit FNV-1a): deliveries hash, per delivery, origin (u32),
//! inc (u32), lseq (u64), data length (u64), data; memberships hash, per
//! membership, gen (u64), member count (u32), each member (u32).

use clap::{Args as ClapArgs, Parser, Subcommand};
use gab::ctl::{
    GabClient, GabClientMsg, GabRequest, GabResponse, GabServerMsg, Heartbeat, MembershipMsg, DEFAULT_ABORT_INTERVAL_MS,
    DEFAULT_HEARTBEAT_TIMEOUT_MS, DEFAULT_MAX_ABORTS,
};
use gab::Port;
use llt::cli;
use llt::ctl::{encode_frame, CtlError};
use llt::{NodeId, MAX_NODE_ID};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const PROG: &str = "gabmsg";

/// Files, told by `--help`.
const GAB_FILES_HELP: &str = "\
Files: GAB runs inside the node daemon (clusterd) and answers on \
$HA_ROOT/run/ha/gab.sock (HA_ROOT default /). Set HA_ROOT to talk to one node \
of several run on one machine.";

/// Test and benchmark client for GAB ports: join a port, send numbered
/// messages in GAB's total order, and check what is delivered.
#[derive(Parser)]
#[command(name = PROG, after_help = GAB_FILES_HELP, subcommand_required = true, arg_required_else_help = true)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Join a GAB port: register, send, read and check deliveries.
    ///
    /// Prints `registered port=P` once GAB accepted the registration, then
    /// reads every membership change and delivery of the port (printed with
    /// --print), while sending --count messages once the port has
    /// --wait-members members. Ends after --expect deliveries (exit 0),
    /// after --duration (exit 0, or 1 if --expect was not reached), when GAB
    /// closes the connection (exit 1), or when killed. Exits 1 at once if GAB
    /// refuses a send (SendFailed).
    Join(JoinArgs),
}

#[derive(ClapArgs, Debug)]
struct JoinArgs {
    /// The port: a lowercase letter (a is GAB's own, b fencing, h HAD).
    #[arg(short = 'p', long, value_parser = parse_port, value_name = "LETTER")]
    port: Port,
    /// This node's id, written into each payload (the protocol does not tell
    /// a client its node id); used by --latency-file.
    #[arg(long, default_value_t = 0, value_parser = parse_node, value_name = "ID")]
    node: NodeId,

    /// Register with a heartbeat of this timeout: a thread sends a heartbeat
    /// every MS/4, and GAB sends SIGABRT (then SIGKILL) if none comes for MS.
    /// Default: 30000 on port h (where GAB requires one), none elsewhere.
    #[arg(long, value_name = "MS", value_parser = parse_positive_u32)]
    heartbeat_ms: Option<u32>,
    /// Register without a heartbeat, even on port h (to see GAB refuse it).
    #[arg(long, conflicts_with_all = ["heartbeat_ms", "abort_interval_ms", "max_aborts"])]
    no_heartbeat: bool,
    /// With a heartbeat: milliseconds between GAB's SIGABRTs to a silent
    /// client (default 5000).
    #[arg(long, value_name = "MS", value_parser = parse_positive_u32)]
    abort_interval_ms: Option<u32>,
    /// With a heartbeat: SIGABRTs before GAB sends SIGKILL (default 5).
    #[arg(long, value_name = "N")]
    max_aborts: Option<u32>,

    /// Messages to send.
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Bytes per message (at least 24: the payload header).
    #[arg(long, default_value_t = 64, value_parser = parse_size)]
    size: usize,
    /// Messages per second (0 or absent: as fast as GAB takes them).
    #[arg(long, value_name = "MSGS_PER_S", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Messages written per system call (with --rate, fewer so pacing stays
    /// smooth).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Keep at most this many of our own messages sent but not yet
    /// delivered back (a closed loop, like CPG's TRY_AGAIN): send times
    /// then measure GAB, not a queue in front of it. 0: no limit.
    #[arg(long, default_value_t = 0, value_name = "N")]
    window: u64,
    /// Start sending once a membership of the port has at least this many
    /// members (1: just this node).
    #[arg(long, default_value_t = 1, value_name = "K")]
    wait_members: usize,
    /// Send each message to this node only (Unicast) instead of to every
    /// member (Broadcast).
    #[arg(long, value_parser = parse_node, value_name = "NODE")]
    unicast_to: Option<NodeId>,

    /// Print one line per membership change (`membership port=P
    /// gen=0000c040 members=0,1 jeopardy= lost=`), per delivery
    /// (`deliver origin=O lseq=L size=N`, plus ` unicast`) and per change
    /// of the members in jeopardy (`jeopardy port=P gen=X jeopardy=2`:
    /// this node's LLT view, not in the total order).
    #[arg(long)]
    print: bool,
    /// Exit 0 after this many deliveries (this node's own broadcasts
    /// included).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    expect: Option<u64>,
    /// Exit this many seconds after registering.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// At exit, print `digest deliveries=N hash=H memberships=M mhash=H`.
    #[arg(long)]
    digest: bool,
    /// At exit, print a JSON summary: deliveries, digests, memberships,
    /// per-origin counts, rate, latency percentiles (VCS spelling: -json).
    #[arg(long)]
    json: bool,
    /// Write one line per delivered gabmsg payload: `NODE INDEX LATENCY_NS
    /// SENT_NS` (NODE as the sender's --node gave it; SENT_NS its
    /// CLOCK_MONOTONIC send time), for cross-node aggregation.
    #[arg(long, value_name = "PATH")]
    latency_file: Option<PathBuf>,

    /// Ignore SIGABRT, so GAB's aborts of a silent client do not kill it
    /// (only SIGKILL will).
    #[arg(long)]
    ignore_abort: bool,
    /// After this many seconds from registering, stop heartbeating, sending
    /// and reading, and sleep forever: a hung HAD.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds_or_zero)]
    hang_after: Option<Duration>,
}

fn main() {
    let args: Args = cli::parse(PROG);
    match args.cmd {
        Cmd::Join(a) => join(&a),
    }
}

// ---------------------------------------------------------------------------
// Argument parsers

fn parse_port(s: &str) -> Result<Port, String> {
    match s.as_bytes() {
        [c @ b'a'..=b'z'] => Ok(*c),
        _ => Err(format!("'{s}' is not a port (a lowercase letter)")),
    }
}

fn parse_node(s: &str) -> Result<NodeId, String> {
    match s.parse::<NodeId>() {
        Ok(n) if n <= MAX_NODE_ID => Ok(n),
        _ => Err(format!("'{s}' is not a node id (0-{MAX_NODE_ID})")),
    }
}

fn parse_positive_u32(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= HEADER => Ok(n),
        _ => Err(format!("'{s}' is not a size of at least {HEADER} bytes")),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a rate (messages per second, 0 for unpaced)")),
    }
}

fn parse_seconds_or_zero(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Duration::try_from_secs_f64(v).map_err(|e| e.to_string()),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match parse_seconds_or_zero(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// The heartbeat to register with: `--heartbeat-ms`, else the VCS default on
/// port h, else none (then the abort options make no sense).
fn heartbeat_for(a: &JoinArgs) -> Result<Option<Heartbeat>, String> {
    if a.no_heartbeat {
        return Ok(None);
    }
    let timeout_ms = match (a.heartbeat_ms, a.port) {
        (Some(ms), _) => ms,
        (None, b'h') => DEFAULT_HEARTBEAT_TIMEOUT_MS,
        (None, _) if a.abort_interval_ms.is_some() || a.max_aborts.is_some() => {
            return Err("--abort-interval-ms and --max-aborts need a heartbeat: give --heartbeat-ms (only port h has one by default)".into())
        }
        (None, _) => return Ok(None),
    };
    Ok(Some(Heartbeat {
        timeout_ms,
        abort_interval_ms: a.abort_interval_ms.unwrap_or(DEFAULT_ABORT_INTERVAL_MS),
        max_aborts: a.max_aborts.unwrap_or(DEFAULT_MAX_ABORTS),
    }))
}

/// How often the heartbeat thread writes: four times per timeout.
fn heartbeat_interval(hb: &Heartbeat) -> Duration {
    Duration::from_millis(u64::from(hb.timeout_ms / 4).max(1))
}

/// Messages per write: with a rate, small enough that writes go out at
/// least ~100 times a second.
fn batch_size(rate: Option<f64>, batch: u64) -> u64 {
    match rate {
        Some(r) => ((r / 100.0) as u64).clamp(1, batch),
        None => batch,
    }
}

// ---------------------------------------------------------------------------
// Payload, digests, percentiles

/// Bytes of the payload header (see the module comment).
const HEADER: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Payload {
    node: u32,
    index: u64,
    sent_ns: u64,
}

fn pattern_byte(index: u64, k: usize) -> u8 {
    (index as u8).wrapping_add(k as u8)
}

/// Message `p.index` of `size` bytes (at least [`HEADER`]).
fn encode_payload(p: Payload, size: usize) -> Vec<u8> {
    let size = size.max(HEADER);
    let mut data = Vec::with_capacity(size);
    data.extend_from_slice(&p.node.to_le_bytes());
    data.extend_from_slice(&p.index.to_le_bytes());
    data.extend_from_slice(&p.sent_ns.to_le_bytes());
    data.extend_from_slice(&(size as u32).to_le_bytes());
    data.extend((HEADER..size).map(|k| pattern_byte(p.index, k)));
    data
}

/// The header of a gabmsg payload, or what is wrong with it.
fn decode_payload(data: &[u8]) -> Result<Payload, String> {
    if data.len() < HEADER {
        return Err(format!("payload of {} bytes is shorter than the {HEADER}-byte header", data.len()));
    }
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes"));
    let p = Payload { node: u32_at(0), index: u64_at(4), sent_ns: u64_at(12) };
    let len = u32_at(20) as usize;
    if len != data.len() {
        return Err(format!("payload of {} bytes says it has {len}", data.len()));
    }
    if let Some(k) = (HEADER..data.len()).find(|&k| data[k] != pattern_byte(p.index, k)) {
        return Err(format!(
            "message {} from node {}: byte {k} is {:#04x}, expected {:#04x}",
            p.index,
            p.node,
            data[k],
            pattern_byte(p.index, k)
        ));
    }
    Ok(p)
}

/// 64-bit FNV-1a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv {
        Fnv(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }
}

/// Digests of the delivered stream and of the membership changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Digest {
    deliveries: u64,
    hash: Fnv,
    memberships: u64,
    mhash: Fnv,
}

impl Digest {
    fn new() -> Digest {
        Digest { deliveries: 0, hash: Fnv::new(), memberships: 0, mhash: Fnv::new() }
    }

    fn deliver(&mut self, origin: NodeId, inc: u32, lseq: u64, data: &[u8]) {
        self.deliveries += 1;
        self.hash.write(&u32::from(origin).to_le_bytes());
        self.hash.write(&inc.to_le_bytes());
        self.hash.write(&lseq.to_le_bytes());
        self.hash.write(&(data.len() as u64).to_le_bytes());
        self.hash.write(data);
    }

    fn membership(&mut self, gen: u64, members: &[NodeId]) {
        self.memberships += 1;
        self.mhash.write(&gen.to_le_bytes());
        self.mhash.write(&(members.len() as u32).to_le_bytes());
        for &m in members {
            self.mhash.write(&u32::from(m).to_le_bytes());
        }
    }

    fn line(&self) -> String {
        format!(
            "digest deliveries={} hash={:016x} memberships={} mhash={:016x}",
            self.deliveries, self.hash.0, self.memberships, self.mhash.0
        )
    }
}

/// Nearest-rank percentile of sorted samples (0 when there are none).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Serialize, PartialEq)]
struct Latency {
    samples: usize,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

fn latency(mut ns: Vec<u64>) -> Latency {
    ns.sort_unstable();
    let us = |v: u64| v as f64 / 1000.0;
    Latency {
        samples: ns.len(),
        p50_us: us(percentile(&ns, 50.0)),
        p99_us: us(percentile(&ns, 99.0)),
        max_us: us(ns.last().copied().unwrap_or(0)),
    }
}

/// CLOCK_MONOTONIC in nanoseconds (one clock for every namespace of a host,
/// unlike `Instant`, whose value cannot be sent).
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn list(nodes: &[NodeId]) -> String {
    nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

fn membership_line(m: &MembershipMsg) -> String {
    format!(
        "membership port={} gen={:08x} members={} jeopardy={} lost={}",
        m.port as char,
        m.gen & 0xffff_ffff,
        list(&m.members),
        list(&m.jeopardy),
        list(&m.lost_in_jeopardy)
    )
}

fn deliver_line(origin: NodeId, lseq: u64, size: usize, unicast: bool) -> String {
    format!("deliver origin={origin} lseq={lseq} size={size}{}", if unicast { " unicast" } else { "" })
}

// ---------------------------------------------------------------------------
// What was received

#[derive(Serialize)]
struct MembershipJson {
    gen: u64,
    members: Vec<NodeId>,
}

#[derive(Serialize)]
struct Summary {
    port: String,
    deliveries: u64,
    hash: String,
    memberships: Vec<MembershipJson>,
    mhash: String,
    /// Deliveries per origin node id.
    per_origin: BTreeMap<NodeId, u64>,
    unicast: u64,
    /// Deliveries that are not intact gabmsg payloads.
    bad_payloads: u64,
    first_bad_payload: Option<String>,
    /// Messages this client sent.
    sent: u64,
    /// From the first delivery to the last.
    elapsed_s: f64,
    msgs_per_s: f64,
    latency: Latency,
}

/// Everything the reader keeps.
struct Received {
    digest: Digest,
    memberships: Vec<MembershipJson>,
    per_origin: BTreeMap<NodeId, u64>,
    unicast: u64,
    bad_payloads: u64,
    first_bad_payload: Option<String>,
    latencies_ns: Vec<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Received {
    fn new() -> Received {
        Received {
            digest: Digest::new(),
            memberships: Vec::new(),
            per_origin: BTreeMap::new(),
            unicast: 0,
            bad_payloads: 0,
            first_bad_payload: None,
            latencies_ns: Vec::new(),
            first: None,
            last: None,
        }
    }

    fn membership(&mut self, m: &MembershipMsg) {
        self.digest.membership(m.gen, &m.members);
        self.memberships.push(MembershipJson { gen: m.gen, members: m.members.clone() });
    }

    /// Records a delivery; the decoded payload and its latency, if it is one
    /// of ours.
    fn deliver(&mut self, origin: NodeId, inc: u32, lseq: u64, unicast: bool, data: &[u8], now_ns: u64) -> Option<(Payload, u64)> {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.digest.deliver(origin, inc, lseq, data);
        *self.per_origin.entry(origin).or_default() += 1;
        self.unicast += u64::from(unicast);
        match decode_payload(data) {
            Ok(p) => {
                let lat = now_ns.saturating_sub(p.sent_ns);
                self.latencies_ns.push(lat);
                Some((p, lat))
            }
            Err(e) => {
                self.bad_payloads += 1;
                self.first_bad_payload.get_or_insert(e);
                None
            }
        }
    }

    fn summary(self, port: Port, sent: u64) -> Summary {
        let elapsed = match (self.first, self.last) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        };
        let secs = elapsed.as_secs_f64();
        Summary {
            port: (port as char).to_string(),
            deliveries: self.digest.deliveries,
            hash: format!("{:016x}", self.digest.hash.0),
            memberships: self.memberships,
            mhash: format!("{:016x}", self.digest.mhash.0),
            per_origin: self.per_origin,
            unicast: self.unicast,
            bad_payloads: self.bad_payloads,
            first_bad_payload: self.first_bad_payload,
            sent,
            elapsed_s: secs,
            msgs_per_s: if secs > 0.0 { self.digest.deliveries as f64 / secs } else { 0.0 },
            latency: latency(self.latencies_ns),
        }
    }
}

// ---------------------------------------------------------------------------
// Talking to the daemon


fn die_ctl(e: &CtlError) -> ! {
    cli::die(PROG, gab::ctl::error_text(e))
}

/// The writing half of the connection, shared by the sender and the
/// heartbeat thread.
type Writer = Arc<Mutex<UnixStream>>;

/// Writes `msgs` as one write under the lock, so frames never interleave.
fn write_msgs(writer: &Writer, msgs: &[GabClientMsg]) -> Result<(), CtlError> {
    let mut buf = Vec::new();
    for m in msgs {
        buf.extend_from_slice(&encode_frame(m)?);
    }
    let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
    w.write_all(&buf)?;
    Ok(())
}

fn set_timeout(client: &GabClient, t: Option<Duration>) {
    if let Err(e) = client.stream().set_read_timeout(t) {
        cli::die(PROG, format!("connection to GAB: {e}"));
    }
}

/// How often a deadline reader re-arms the socket's timeout.
const TIMEOUT_REFRESH: Duration = Duration::from_millis(100);

/// Next message, or None once the socket's read timeout expired.
fn recv_or_timeout(client: &mut GabClient) -> Result<Option<GabServerMsg>, CtlError> {
    match client.recv() {
        Ok(m) => Ok(Some(m)),
        Err(CtlError::Io(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
        Err(e) => Err(e),
    }
}

fn hang_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn spawn_heartbeat(writer: Writer, hung: Arc<AtomicBool>, interval: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(interval);
        if hung.load(Ordering::Relaxed) {
            hang_forever();
        }
        // A failed write means the connection is gone: the reader sees it.
        if write_msgs(&writer, &[GabClientMsg::Heartbeat]).is_err() {
            return;
        }
    });
}

struct SendPlan {
    node: NodeId,
    window: u64,
    count: u64,
    size: usize,
    rate: Option<f64>,
    batch: u64,
    unicast_to: Option<NodeId>,
}

/// Our own messages delivered back to us, for `--window`.
type OwnDelivered = Arc<(Mutex<u64>, Condvar)>;

fn spawn_sender(writer: Writer, hung: Arc<AtomicBool>, sent: Arc<AtomicU64>, own: OwnDelivered, plan: SendPlan) {
    std::thread::spawn(move || {
        let mut batch = batch_size(plan.rate, plan.batch);
        if plan.window > 0 {
            batch = batch.min(plan.window);
        }
        let start = Instant::now();
        let mut msgs = Vec::with_capacity(batch as usize);
        let mut i = 0;
        while i < plan.count {
            if let Some(r) = plan.rate {
                let due = start + Duration::from_secs_f64(i as f64 / r);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            if hung.load(Ordering::Relaxed) {
                hang_forever();
            }
            let end = (i + batch).min(plan.count);
            if plan.window > 0 {
                let (lock, cv) = &*own;
                let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                while end - *done > plan.window {
                    done = cv.wait(done).unwrap_or_else(|e| e.into_inner());
                }
            }
            let now = monotonic_ns();
            msgs.clear();
            msgs.extend((i..end).map(|index| {
                let data = encode_payload(Payload { node: u32::from(plan.node), index, sent_ns: now }, plan.size);
                match plan.unicast_to {
                    Some(dest) => GabClientMsg::Unicast { dest, data },
                    None => GabClientMsg::Broadcast { data },
                }
            }));
            if let Err(e) = write_msgs(&writer, &msgs) {
                cli::die(PROG, format!("sending message {i}: {}", gab::ctl::error_text(&e)));
            }
            i = end;
            sent.store(i, Ordering::Relaxed);
        }
    });
}

// ---------------------------------------------------------------------------
// join

fn ignore_sigabrt() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler.
    if unsafe { libc::signal(libc::SIGABRT, libc::SIG_IGN) } == libc::SIG_ERR {
        cli::die(PROG, format!("signal(SIGABRT, SIG_IGN): {}", io::Error::last_os_error()));
    }
}

/// Connects and registers; returns the client and what arrived before the
/// answer (handled as if read afterwards).
fn register(port: Port, heartbeat: Option<Heartbeat>) -> (GabClient, Vec<GabServerMsg>) {
    let mut client = GabClient::connect().unwrap_or_else(|e| die_ctl(&e));
    set_timeout(&client, Some(cli::REQUEST_TIMEOUT));
    let mut early = Vec::new();
    let resp = client.request_with(GabRequest::Register { port, heartbeat }, |m| early.push(m)).unwrap_or_else(|e| die_ctl(&e));
    match resp {
        GabResponse::Ok => {}
        GabResponse::Error(msg) => cli::die(PROG, format!("cannot register on port {}: {msg}", port as char)),
        GabResponse::Status(_) => cli::die(PROG, "unexpected answer from GAB to Register: Status"),
    }
    set_timeout(&client, None);
    (client, early)
}

/// The reading side of `join`: state and the reaction to each message.
struct Join<'a> {
    a: &'a JoinArgs,
    start: Instant,
    received: Received,
    latency_file: Option<BufWriter<File>>,
    sent: Arc<AtomicU64>,
    /// Set while the sender waits for --wait-members; taken when it starts.
    pending_sender: Option<Box<dyn FnOnce() + 'a>>,
    own: OwnDelivered,
}

impl Join<'_> {
    fn handle(&mut self, msg: GabServerMsg) {
        match msg {
            GabServerMsg::Membership(m) => {
                if self.a.print {
                    cli::print(PROG, &format!("{}\n", membership_line(&m)));
                }
                self.received.membership(&m);
                if m.port == self.a.port && m.members.len() >= self.a.wait_members {
                    if let Some(start_sender) = self.pending_sender.take() {
                        start_sender();
                    }
                }
            }
            GabServerMsg::Deliver { origin, inc, lseq, unicast, data } => {
                let now_ns = monotonic_ns();
                if self.a.print {
                    cli::print(PROG, &format!("{}\n", deliver_line(origin, lseq, data.len(), unicast)));
                }
                if let Some((p, lat)) = self.received.deliver(origin, inc, lseq, unicast, &data, now_ns) {
                    if self.a.window > 0 && p.node == u32::from(self.a.node) {
                        let (lock, cv) = &*self.own;
                        *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        cv.notify_one();
                    }
                    if let Some(f) = &mut self.latency_file {
                        if let Err(e) = writeln!(f, "{} {} {lat} {}", p.node, p.index, p.sent_ns) {
                            cli::die(PROG, format!("writing the latency file: {e}"));
                        }
                    }
                }
                if self.a.expect.is_some_and(|n| self.received.digest.deliveries >= n) {
                    self.finish(None);
                }
            }
            GabServerMsg::Jeopardy { port, gen, jeopardy } => {
                if self.a.print {
                    let list: Vec<String> = jeopardy.iter().map(|n| n.to_string()).collect();
                    cli::print(PROG, &format!("jeopardy port={} gen={:08x} jeopardy={}\n", port as char, gen & 0xffff_ffff, list.join(",")));
                }
            }
            GabServerMsg::Halted { reason } => {
                self.finish_quiet();
                cli::die(PROG, format!("halted by I/O fencing: {reason}"));
            }
            GabServerMsg::SendFailed { error } => {
                // stderr only: stdout belongs to the summary.
                self.finish_quiet();
                cli::die(PROG, format!("send failed: {error}"));
            }
            GabServerMsg::Response(r) => {
                let _ = writeln!(io::stderr(), "{PROG}: unexpected response from GAB: {r:?}");
            }
        }
    }

    /// Flushes the latency file.
    fn finish_quiet(&mut self) {
        if let Some(mut f) = self.latency_file.take() {
            if let Err(e) = f.flush() {
                cli::die(PROG, format!("writing the latency file: {e}"));
            }
        }
    }

    /// Prints what was asked for and exits: 0, or 1 with `error`.
    fn finish(&mut self, error: Option<String>) -> ! {
        self.finish_quiet();
        let received = std::mem::replace(&mut self.received, Received::new());
        if self.a.digest {
            cli::print(PROG, &format!("{}\n", received.digest.line()));
        }
        if self.a.json {
            cli::print_json(PROG, &received.summary(self.a.port, self.sent.load(Ordering::Relaxed)));
        }
        match error {
            Some(e) => cli::die(PROG, e),
            None => std::process::exit(0),
        }
    }
}

fn join(a: &JoinArgs) {
    let heartbeat = heartbeat_for(a).unwrap_or_else(|e| cli::die(PROG, e));
    if a.ignore_abort {
        ignore_sigabrt();
    }
    // Opened first, so a bad path fails before anything joins.
    let latency_file = a.latency_file.as_ref().map(|path| match File::create(path) {
        Ok(f) => BufWriter::new(f),
        Err(e) => cli::die(PROG, format!("cannot create {}: {e}", path.display())),
    });

    let (mut client, early) = register(a.port, heartbeat);
    let start = Instant::now();
    cli::print(PROG, &format!("registered port={}\n", a.port as char));

    let stream = client.stream().try_clone().unwrap_or_else(|e| cli::die(PROG, format!("connection to GAB: {e}")));
    let writer: Writer = Arc::new(Mutex::new(stream));
    let hung = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    if let Some(hb) = &heartbeat {
        spawn_heartbeat(writer.clone(), hung.clone(), heartbeat_interval(hb));
    }
    let own: OwnDelivered = Arc::new((Mutex::new(0), Condvar::new()));
    let pending_sender: Option<Box<dyn FnOnce()>> = (a.count > 0).then(|| {
        let (writer, hung, sent, own) = (writer.clone(), hung.clone(), sent.clone(), own.clone());
        let plan = SendPlan {
            node: a.node,
            count: a.count,
            size: a.size,
            rate: a.rate.filter(|&r| r > 0.0),
            batch: a.batch,
            unicast_to: a.unicast_to,
            window: a.window,
        };
        Box::new(move || spawn_sender(writer, hung, sent, own, plan)) as Box<dyn FnOnce()>
    });

    let mut join = Join { a, start, received: Received::new(), latency_file, sent, pending_sender, own };
    for m in early {
        join.handle(m);
    }

    let end_at = a.duration.map(|d| join.start + d);
    let hang_at = a.hang_after.map(|d| join.start + d);
    let deadline = [end_at, hang_at].into_iter().flatten().min();
    let mut armed_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if hang_at.is_some_and(|t| now >= t) {
            hung.store(true, Ordering::Relaxed);
            join.finish_quiet();
            hang_forever();
        }
        if end_at.is_some_and(|t| now >= t) {
            let err = a
                .expect
                .map(|n| format!("{} of {n} deliveries within {:?}", join.received.digest.deliveries, a.duration.unwrap_or_default()));
            join.finish(err);
        }
        if let Some(d) = deadline {
            // Re-armed at most every TIMEOUT_REFRESH, not per message.
            // (Not Option::is_none_or: the workspace supports Rust 1.80.)
            let stale = match armed_at {
                Some(t) => now - t >= TIMEOUT_REFRESH,
                None => true,
            };
            if stale {
                set_timeout(&client, Some(d.saturating_duration_since(now).max(Duration::from_millis(1))));
                armed_at = Some(now);
            }
        }
        match recv_or_timeout(&mut client) {
            Ok(Some(m)) => join.handle(m),
            Ok(None) => {}
            Err(CtlError::Closed) => {
                join.finish(Some(format!("GAB closed the connection (port {} closed or GAB stopped)", a.port as char)))
            }
            Err(e) => join.finish(Some(gab::ctl::error_text(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_corruption() {
        let p = Payload { node: 3, index: 0x0102_0304_0506_0708, sent_ns: 42 };
        let data = encode_payload(p, 40);
        assert_eq!(data.len(), 40);
        assert_eq!(&data[..4], &3u32.to_le_bytes());
        assert_eq!(&data[4..12], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&data[12..20], &42u64.to_le_bytes());
        assert_eq!(&data[20..24], &40u32.to_le_bytes());
        assert_eq!(data[24], 0x08u8.wrapping_add(24));
        assert_eq!(decode_payload(&data), Ok(p));
        // The smallest payload is the header alone.
        assert_eq!(encode_payload(p, 0).len(), HEADER);
        assert_eq!(decode_payload(&encode_payload(p, HEADER)), Ok(p));

        let mut bad = data.clone();
        bad[30] ^= 1;
        assert!(decode_payload(&bad).unwrap_err().contains("byte 30"));
        assert!(decode_payload(&data[..39]).unwrap_err().contains("says it has 40"));
        assert!(decode_payload(&data[..10]).unwrap_err().contains("shorter than"));
        // Deterministic: the same message encodes the same way.
        assert_eq!(encode_payload(p, 100), encode_payload(p, 100));
    }

    #[test]
    fn fnv1a_known_values() {
        let mut h = Fnv::new();
        assert_eq!(h.0, 0xcbf29ce484222325);
        h.write(b"a");
        assert_eq!(h.0, 0xaf63dc4c8601ec8c);
        let mut h = Fnv::new();
        h.write(b"foobar");
        assert_eq!(h.0, 0x85944171f73967e8);
    }

    #[test]
    fn digest_covers_fields_and_order() {
        let mut d = Digest::new();
        d.deliver(1, 7, 0, b"xy");
        let mut expect = Fnv::new();
        for part in [&1u32.to_le_bytes()[..], &7u32.to_le_bytes(), &0u64.to_le_bytes(), &2u64.to_le_bytes(), b"xy"] {
            expect.write(part);
        }
        assert_eq!(d.hash, expect);
        assert_eq!(d.deliveries, 1);

        let mut a = Digest::new();
        a.deliver(0, 1, 0, b"m");
        a.deliver(1, 1, 0, b"m");
        let mut b = Digest::new();
        b.deliver(1, 1, 0, b"m");
        b.deliver(0, 1, 0, b"m");
        assert_ne!(a.hash, b.hash, "order must matter");
        let mut c = Digest::new();
        c.deliver(0, 2, 0, b"m");
        c.deliver(1, 1, 0, b"m");
        assert_ne!(a.hash, c.hash, "incarnation must matter");

        let mut m1 = Digest::new();
        m1.membership(5, &[0, 1]);
        m1.membership(6, &[0]);
        let mut m2 = Digest::new();
        m2.membership(5, &[0]);
        m2.membership(6, &[0, 1]);
        assert_ne!(m1.mhash, m2.mhash);
        assert_eq!(m1.hash, Fnv::new(), "memberships are digested apart");
        let line = m1.line();
        assert!(line.starts_with("digest deliveries=0 hash=cbf29ce484222325 memberships=2 mhash="), "{line}");
        assert_eq!(line.len(), "digest deliveries=0 hash= memberships=2 mhash=".len() + 32);
    }

    #[test]
    fn percentiles_and_latency() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let l = latency(vec![3000, 1000, 2000, 250_000]);
        assert_eq!(l, Latency { samples: 4, p50_us: 2.0, p99_us: 250.0, max_us: 250.0 });
        assert_eq!(latency(vec![]), Latency { samples: 0, p50_us: 0.0, p99_us: 0.0, max_us: 0.0 });
    }

    #[test]
    fn received_counts_and_summary() {
        let mut r = Received::new();
        r.membership(&MembershipMsg { port: b'g', gen: 0x1_0000_0002, members: vec![0, 1], jeopardy: vec![], lost_in_jeopardy: vec![] });
        let ours = encode_payload(Payload { node: 1, index: 9, sent_ns: 1_000 }, 32);
        assert_eq!(r.deliver(1, 1, 0, false, &ours, 6_000), Some((Payload { node: 1, index: 9, sent_ns: 1_000 }, 5_000)));
        assert_eq!(r.deliver(0, 1, 0, true, b"short", 6_000), None);
        let s = r.summary(b'g', 3);
        assert_eq!((s.deliveries, s.unicast, s.bad_payloads, s.sent), (2, 1, 1, 3));
        assert_eq!(s.per_origin, BTreeMap::from([(0, 1), (1, 1)]));
        assert_eq!(s.latency.samples, 1);
        assert_eq!(s.latency.p50_us, 5.0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["port"], "g");
        assert_eq!(json["memberships"][0]["members"], serde_json::json!([0, 1]));
        assert_eq!(json["per_origin"]["1"], 1);
        assert_eq!(json["hash"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn printed_lines() {
        let m = MembershipMsg { port: b'h', gen: 0x7_0026_cd3f, members: vec![0, 1, 2], jeopardy: vec![1], lost_in_jeopardy: vec![] };
        assert_eq!(membership_line(&m), "membership port=h gen=0026cd3f members=0,1,2 jeopardy=1 lost=");
        assert_eq!(deliver_line(2, 17, 64, false), "deliver origin=2 lseq=17 size=64");
        assert_eq!(deliver_line(2, 17, 64, true), "deliver origin=2 lseq=17 size=64 unicast");
    }

    fn join_args(argv: &[&str]) -> Result<JoinArgs, String> {
        let argv = [PROG, "join"].iter().chain(argv).map(std::ffi::OsString::from);
        match cli::try_parse_from::<Args, _>(argv).map_err(|e| e.to_string())?.cmd {
            Cmd::Join(a) => Ok(a),
        }
    }

    #[test]
    fn join_command_lines() {
        let a = join_args(&["-p", "h"]).unwrap();
        assert_eq!((a.port, a.node, a.count, a.size, a.wait_members), (b'h', 0, 0, 64, 1));
        assert_eq!(heartbeat_for(&a), Ok(Some(Heartbeat::default())));
        assert_eq!(heartbeat_interval(&Heartbeat::default()), Duration::from_millis(7500));

        let a = join_args(&["-p", "g"]).unwrap();
        assert_eq!(heartbeat_for(&a), Ok(None));
        let a = join_args(&["-p", "g", "--heartbeat-ms", "400", "--max-aborts", "2"]).unwrap();
        assert_eq!(heartbeat_for(&a), Ok(Some(Heartbeat { timeout_ms: 400, abort_interval_ms: DEFAULT_ABORT_INTERVAL_MS, max_aborts: 2 })));
        let a = join_args(&["-p", "h", "--abort-interval-ms", "100"]).unwrap();
        assert_eq!(heartbeat_for(&a).unwrap().unwrap().abort_interval_ms, 100);
        let a = join_args(&["-p", "h", "--no-heartbeat"]).unwrap();
        assert_eq!(heartbeat_for(&a), Ok(None));
        let a = join_args(&["-p", "g", "--max-aborts", "2"]).unwrap();
        assert!(heartbeat_for(&a).unwrap_err().contains("need a heartbeat"));
        assert_eq!(heartbeat_interval(&Heartbeat { timeout_ms: 2, ..Heartbeat::default() }), Duration::from_millis(1));

        let all = "--port g --node 2 --count 100 --size 24 --rate 0 --unicast-to 1 --wait-members 3 --print --expect 300 \
                   --duration 1.5 --digest -json --latency-file /tmp/x --ignore-abort --hang-after 0";
        let a = join_args(&all.split_whitespace().collect::<Vec<_>>()).unwrap();
        assert_eq!((a.node, a.count, a.size, a.rate, a.unicast_to, a.wait_members), (2, 100, 24, Some(0.0), Some(1), 3));
        assert!(a.print && a.digest && a.json && a.ignore_abort);
        assert_eq!((a.expect, a.duration, a.hang_after), (Some(300), Some(Duration::from_millis(1500)), Some(Duration::ZERO)));

        for bad in [
            &["-p", "A"][..],
            &["-p", "gh"],
            &[],
            &["-p", "g", "--size", "23"],
            &["-p", "g", "--node", "64"],
            &["-p", "g", "--rate", "-1"],
            &["-p", "g", "--expect", "0"],
            &["-p", "g", "--duration", "0"],
            &["-p", "h", "--no-heartbeat", "--heartbeat-ms", "100"],
            &["-p", "g", "--heartbeat-ms", "0"],
        ] {
            assert!(join_args(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn batches_follow_the_rate() {
        assert_eq!(batch_size(None, 64), 64);
        assert_eq!(batch_size(Some(50.0), 64), 1);
        assert_eq!(batch_size(Some(1000.0), 64), 10);
        assert_eq!(batch_size(Some(1e9), 64), 64);
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
