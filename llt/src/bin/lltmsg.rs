//! `lltmsg`: test and benchmark client for LLT's data path. Every result is
//! a JSON line on stdout so tests and benchmarks can parse it; progress
//! markers (`ready`) go to stderr.
//!
//! Message format shared by send, recv, ping: an 8-byte big-endian counter
//! `i`, then byte `k` (k >= 8) = `(i as u8).wrapping_add(k as u8)`, so the
//! receiver can check order, loss, duplication and corruption alone.

use clap::{Args as ClapArgs, Parser, Subcommand};
use llt::cli::{self, HA_ROOT_HELP};
use llt::core::{Dest, DownReason, LinkState};
use llt::ctl::{decode_body, frame_len, Client, ClientMsg, CtlError, Request, Response, ServerMsg};
use llt::{LinkId, NodeId, MAX_NODE_ID};
use serde::Serialize;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROG: &str = "lltmsg";

/// Test and benchmark client for LLT messages: watch events, send and check
/// numbered message streams, measure round trips through LLT, and (rawecho,
/// rawping) the same over a bare Ethernet socket as a baseline.
///
/// Output is JSON lines on stdout. Modes that must be started before their
/// peer (recv, echo, rawecho) print the line `ready` on stderr once they
/// listen.
#[derive(Parser)]
#[command(name = PROG, after_help = HA_ROOT_HELP, subcommand_required = true, arg_required_else_help = true)]
struct Args {
    /// LLT port (0-255) to bind: messages go to, and are received from, the
    /// same port on every node.
    #[arg(long, global = true, default_value_t = 100)]
    port: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print one JSON line per event as it arrives: peer_up, peer_down (with
    /// reason Inactive or Reset), link (a link to a peer changed state),
    /// deliver (a message arrived: sender, length, and "seq", its first 8
    /// bytes as lltmsg send numbers them), send_failed. Each line has t_us,
    /// the wall-clock time in microseconds since the UNIX epoch.
    Watch {
        /// Stop after this many seconds (default: run until killed).
        #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
        duration: Option<Duration>,
    },
    /// Send numbered messages; print {"sent","elapsed_s","msgs_per_s","send_failed"}.
    /// Exits 1 if LLT reported any send as failed.
    Send(SendArgs),
    /// Receive numbered messages from one node and check them: each exactly
    /// once, in order, intact. Exits 0 only if all COUNT did, in time.
    Recv(RecvArgs),
    /// Send every message received back to its sender (the other end of ping).
    Echo,
    /// Measure round trips through LLT to a node running `lltmsg echo`;
    /// print percentiles in microseconds.
    Ping(PingArgs),
    /// Measure round trips between the daemons themselves (LLT's echo
    /// service on port 255; no client process on the path, as GAB inside
    /// clusterd sees LLT). No `lltmsg echo` needed on the peer.
    Dping(DpingArgs),
    /// Baseline without LLT: echo raw Ethernet frames of ethertype 0x88B6 on
    /// an interface (needs CAP_NET_RAW).
    Rawecho {
        /// Network interface to listen on (e.g. eth1).
        #[arg(long, value_name = "IF")]
        iface: String,
    },
    /// Baseline without LLT: round trips of raw Ethernet frames (ethertype
    /// 0x88B6) to a host running `lltmsg rawecho`; same JSON as ping, plus
    /// "lost" (frames unanswered within a second). Needs CAP_NET_RAW.
    Rawping(RawpingArgs),
}

#[derive(ClapArgs)]
struct SendArgs {
    /// Destination node id, or 'all' for every node LLT has OPEN.
    #[arg(long, value_parser = parse_dest, value_name = "N|all")]
    to: Dest,
    /// Number of messages.
    #[arg(long)]
    count: u64,
    /// Bytes per message (at least 8, the counter).
    #[arg(long, default_value_t = 64, value_parser = parse_size)]
    size: usize,
    /// Pace sending at this many messages per second (default: as fast as
    /// LLT accepts them).
    #[arg(long, value_name = "MSGS_PER_S", value_parser = parse_positive)]
    rate: Option<f64>,
    /// Messages written to the daemon per system call.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
}

#[derive(ClapArgs)]
struct RecvArgs {
    /// Node id whose messages are checked (others are ignored).
    #[arg(long, value_parser = parse_node)]
    from: NodeId,
    /// Number of messages expected: counters 0 to COUNT-1.
    #[arg(long)]
    count: u64,
    /// Give up this many seconds after `ready`.
    #[arg(long, default_value = "60", value_parser = parse_seconds, value_name = "SECONDS")]
    timeout: Duration,
}

#[derive(ClapArgs)]
struct PingArgs {
    /// Node id running `lltmsg echo`.
    #[arg(long, value_parser = parse_node)]
    to: NodeId,
    /// Round trips measured.
    #[arg(long)]
    count: u64,
    /// Bytes per message (at least 8).
    #[arg(long, default_value_t = 64, value_parser = parse_size)]
    size: usize,
    /// Round trips done first and not measured (caches, ARP-like warm-up).
    #[arg(long, default_value_t = 100)]
    warmup: u64,
    /// Give up when one reply takes longer than this.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    timeout: Duration,
}

#[derive(ClapArgs)]
struct DpingArgs {
    /// Node id to measure against.
    #[arg(long, value_parser = parse_node)]
    to: NodeId,
    /// Round trips measured (at most 100000).
    #[arg(long)]
    count: u32,
    /// Bytes per message (at least 5).
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Round trips done first and not measured.
    #[arg(long, default_value_t = 100)]
    warmup: u32,
}

#[derive(ClapArgs)]
struct RawpingArgs {
    /// Network interface to send on (e.g. eth1).
    #[arg(long, value_name = "IF")]
    iface: String,
    /// MAC address of the echoing host's interface (aa:bb:cc:dd:ee:ff).
    #[arg(long, value_parser = parse_mac, value_name = "MAC")]
    to_mac: [u8; 6],
    /// Round trips measured.
    #[arg(long)]
    count: u64,
    /// Payload bytes after the Ethernet header (at least 5: a 4-byte
    /// sequence number and a request/reply byte).
    #[arg(long, default_value_t = 64, value_parser = parse_raw_size)]
    size: usize,
    /// Round trips done first and not measured.
    #[arg(long, default_value_t = 100)]
    warmup: u64,
}

fn main() {
    let args: Args = cli::parse(PROG);
    match args.cmd {
        Cmd::Watch { duration } => watch(args.port, duration),
        Cmd::Send(a) => send(args.port, &a),
        Cmd::Recv(a) => recv(args.port, &a),
        Cmd::Echo => echo(args.port),
        Cmd::Ping(a) => ping(args.port, &a),
        Cmd::Dping(a) => dping(&a),
        Cmd::Rawecho { iface } => rawecho(&iface),
        Cmd::Rawping(a) => rawping(&a),
    }
}

// ---------------------------------------------------------------------------
// Argument parsers

fn parse_node(s: &str) -> Result<NodeId, String> {
    match s.parse::<NodeId>() {
        Ok(n) if n <= MAX_NODE_ID => Ok(n),
        _ => Err(format!("'{s}' is not a node id (0-{MAX_NODE_ID})")),
    }
}

fn parse_dest(s: &str) -> Result<Dest, String> {
    if s == "all" {
        Ok(Dest::All)
    } else {
        parse_node(s).map(Dest::Node).map_err(|e| format!("{e} nor 'all'"))
    }
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    parse_positive(s).and_then(|v| Duration::try_from_secs_f64(v).map_err(|e| e.to_string()))
}

fn parse_min_size(s: &str, min: usize) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(format!("'{s}' is not a size of at least {min} bytes")),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    parse_min_size(s, 8)
}

fn parse_raw_size(s: &str) -> Result<usize, String> {
    parse_min_size(s, RAW_MIN_SIZE)
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)");
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

// ---------------------------------------------------------------------------
// Messages and measurements

/// Message `i` of `size` bytes (see the module comment).
fn payload(i: u64, size: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(size);
    data.extend_from_slice(&i.to_be_bytes());
    data.extend((8..size).map(|k| (i as u8).wrapping_add(k as u8)));
    data
}

/// The counter of a received message, or what is wrong with it.
fn check_payload(data: &[u8]) -> Result<u64, String> {
    let head: [u8; 8] = data
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("message of {} bytes has no 8-byte counter", data.len()))?;
    let i = u64::from_be_bytes(head);
    for (k, &b) in data.iter().enumerate().skip(8) {
        let want = (i as u8).wrapping_add(k as u8);
        if b != want {
            return Err(format!("message {i}: byte {k} is {b:#04x}, expected {want:#04x}"));
        }
    }
    Ok(i)
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Messages per second, 0 when nothing was timed.
fn rate(n: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

#[derive(Debug, Serialize)]
struct Latency {
    count: usize,
    size: usize,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    min_us: f64,
    max_us: f64,
    mean_us: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost: Option<u64>,
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds, kept to the nanosecond (f64 noise like 136.01299999999998
/// only makes the JSON harder to read).
fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

fn latency(mut rtts: Vec<Duration>, size: usize) -> Latency {
    rtts.sort();
    let us: Vec<f64> = rtts.iter().map(|&d| micros(d)).collect();
    let mean = if us.is_empty() { 0.0 } else { us.iter().sum::<f64>() / us.len() as f64 };
    Latency {
        count: us.len(),
        size,
        p50_us: percentile(&us, 50.0),
        p90_us: percentile(&us, 90.0),
        p99_us: percentile(&us, 99.0),
        min_us: us.first().copied().unwrap_or(0.0),
        max_us: us.last().copied().unwrap_or(0.0),
        mean_us: (mean * 1000.0).round() / 1000.0,
        lost: None,
    }
}

// ---------------------------------------------------------------------------
// Talking to the daemon

fn die_ctl(e: &CtlError) -> ! {
    cli::die(PROG, cli::ctl_error_text(e))
}

/// A connection bound to `port`, with no read timeout left (deliveries may
/// be far apart; callers that need a deadline set their own).
fn bind(port: u8) -> Client {
    let mut client = cli::connect(PROG);
    let resp = cli::request(PROG, &mut client, Request::Bind { port });
    cli::expect_ok(PROG, resp);
    set_timeout(&client, None);
    client
}

fn set_timeout(client: &Client, t: Option<Duration>) {
    if let Err(e) = client.stream().set_read_timeout(t) {
        cli::die(PROG, format!("connection to the LLT daemon: {e}"));
    }
}

/// How often a deadline reader re-arms the socket's timeout.
const TIMEOUT_REFRESH: Duration = Duration::from_millis(100);

/// Reads messages until an optional deadline. The socket timeout is re-armed
/// at most every [`TIMEOUT_REFRESH`], not per message (a system call per
/// message costs throughput), so a read may end that much past the deadline.
struct Until {
    deadline: Option<Instant>,
    armed_at: Option<Instant>,
}

impl Until {
    fn new(deadline: Option<Instant>) -> Until {
        Until { deadline, armed_at: None }
    }

    /// Next message, or None once the deadline has passed.
    fn next(&mut self, client: &mut Client) -> Option<ServerMsg> {
        if let Some(d) = self.deadline {
            let now = Instant::now();
            let left = d.saturating_duration_since(now);
            if left.is_zero() {
                return None;
            }
            let fresh = matches!(self.armed_at, Some(a) if now - a < TIMEOUT_REFRESH);
            if !fresh {
                set_timeout(client, Some(left));
                self.armed_at = Some(now);
            }
        }
        recv_or_timeout(client)
    }
}

/// Next message, or None when the socket's read timeout expired.
fn recv_or_timeout(client: &mut Client) -> Option<ServerMsg> {
    match client.recv() {
        Ok(m) => Some(m),
        Err(CtlError::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        Err(e) => die_ctl(&e),
    }
}

/// How `dest` appears in JSON: the node id, or "all".
fn dest_json(dest: Dest) -> serde_json::Value {
    match dest {
        Dest::Node(n) => n.into(),
        Dest::All => "all".into(),
    }
}

/// Tells the test or benchmark driving us that it may start the sender.
fn ready() {
    // Not eprintln!: a closed stderr must not panic a long-running server.
    let _ = writeln!(std::io::stderr(), "ready");
}

// ---------------------------------------------------------------------------
// watch

#[derive(Serialize)]
struct WatchLine {
    t_us: u64,
    #[serde(flatten)]
    event: WatchEvent,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum WatchEvent {
    Deliver {
        peer: NodeId,
        len: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    PeerUp {
        peer: NodeId,
    },
    PeerDown {
        peer: NodeId,
        reason: DownReason,
    },
    Link {
        peer: NodeId,
        link: LinkId,
        state: LinkState,
    },
    SendFailed {
        dest: serde_json::Value,
        error: String,
    },
    /// Not expected after Bind; shown rather than hidden.
    Response {
        response: Response,
    },
}

fn watch_event(msg: ServerMsg) -> WatchEvent {
    match msg {
        ServerMsg::Deliver { peer, data } => {
            let seq = data.get(..8).and_then(|h| h.try_into().ok()).map(u64::from_be_bytes);
            WatchEvent::Deliver { peer, len: data.len(), seq }
        }
        ServerMsg::PeerUp { peer } => WatchEvent::PeerUp { peer },
        ServerMsg::PeerDown { peer, reason } => WatchEvent::PeerDown { peer, reason },
        ServerMsg::LinkState { peer, link, state } => WatchEvent::Link { peer, link, state },
        ServerMsg::SendFailed { dest, error } => WatchEvent::SendFailed { dest: dest_json(dest), error },
        ServerMsg::Response(response) => WatchEvent::Response { response },
    }
}

fn watch(port: u8, duration: Option<Duration>) {
    let mut client = bind(port);
    let mut until = Until::new(duration.map(|d| Instant::now() + d));
    while let Some(msg) = until.next(&mut client) {
        // t_us is taken at arrival, before formatting, for cross-process timing.
        let t_us = now_us();
        cli::print_json(PROG, &WatchLine { t_us, event: watch_event(msg) });
    }
}

// ---------------------------------------------------------------------------
// send

#[derive(Serialize)]
struct SendReport {
    sent: u64,
    elapsed_s: f64,
    msgs_per_s: f64,
    send_failed: u64,
}

/// Sends the daemon refused, as seen by the reader thread.
#[derive(Default)]
struct Failures {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

/// Reads the daemon's messages on a second handle of the connection (the
/// main thread only writes): records SendFailed, reports each Response.
fn spawn_reader(stream: UnixStream, failed: Arc<Failures>, responses: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let _ = read_frames(stream, |msg| match msg {
            ServerMsg::SendFailed { error, .. } => {
                failed.count.fetch_add(1, Ordering::Relaxed);
                failed.first.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
            }
            ServerMsg::Response(_) => {
                let _ = responses.send(());
            }
            _ => {}
        });
    });
}

/// The framing loop of `Client::recv`, over a bare stream.
fn read_frames(mut stream: UnixStream, mut on_msg: impl FnMut(ServerMsg)) -> Result<(), CtlError> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(len) = frame_len(&buf)? {
            on_msg(decode_body(&buf[4..4 + len])?);
            buf.drain(..4 + len);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(CtlError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Messages per write: with a rate, small enough that writes go out at
/// least ~100 times a second, so pacing stays smooth.
fn batch_size(a: &SendArgs) -> u64 {
    match a.rate {
        Some(r) => ((r / 100.0) as u64).clamp(1, a.batch),
        None => a.batch,
    }
}

fn send(port: u8, a: &SendArgs) {
    let mut client = bind(port);
    let reader = client.stream().try_clone().unwrap_or_else(|e| cli::die(PROG, format!("connection to the LLT daemon: {e}")));
    let failed = Arc::new(Failures::default());
    let (resp_tx, resp_rx) = mpsc::channel();
    spawn_reader(reader, failed.clone(), resp_tx);

    let batch = batch_size(a);
    let start = Instant::now();
    let mut msgs = Vec::with_capacity(batch as usize);
    let mut i = 0;
    while i < a.count {
        if let Some(r) = a.rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let end = (i + batch).min(a.count);
        msgs.clear();
        msgs.extend((i..end).map(|j| ClientMsg::Send { dest: a.to, data: payload(j, a.size) }));
        client.send_batch(&msgs).unwrap_or_else(|e| die_ctl(&e));
        i = end;
    }
    // The daemon has taken everything once the last write returned.
    let elapsed = start.elapsed();

    // A request after the sends is answered after they were all processed
    // (one connection is served in order), so every SendFailed is counted.
    client.send(&ClientMsg::Request(Request::GetTimers)).unwrap_or_else(|e| die_ctl(&e));
    if resp_rx.recv_timeout(cli::REQUEST_TIMEOUT).is_err() {
        cli::die(PROG, "the LLT daemon did not confirm the sends (connection closed or no answer)");
    }
    let send_failed = failed.count.load(Ordering::Relaxed);
    cli::print_json(
        PROG,
        &SendReport { sent: a.count, elapsed_s: elapsed.as_secs_f64(), msgs_per_s: rate(a.count, elapsed), send_failed },
    );
    if send_failed > 0 {
        let first = failed.first.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        cli::die(PROG, format!("{send_failed} of {} sends failed, the first: {first}", a.count));
    }
}

// ---------------------------------------------------------------------------
// recv

/// The checks of `lltmsg recv`, fed one delivery at a time.
#[derive(Debug, Default, Serialize)]
struct RecvReport {
    received: u64,
    expected: u64,
    in_order: bool,
    duplicates: u64,
    gaps: u64,
    corrupt: u64,
    first_error: Option<String>,
    elapsed_s: f64,
    msgs_per_s: f64,
    timed_out: bool,
    /// Times the sender was reported down meanwhile.
    peer_down: u64,
    #[serde(skip)]
    next: u64,
}

impl RecvReport {
    fn new(expected: u64) -> Self {
        RecvReport { expected, in_order: true, ..Default::default() }
    }

    fn error(&mut self, e: String) {
        self.first_error.get_or_insert(e);
    }

    fn deliver(&mut self, data: &[u8]) {
        self.received += 1;
        let counter = match check_payload(data) {
            Ok(i) => i,
            Err(e) => {
                self.corrupt += 1;
                self.error(e);
                // A readable counter still counts for ordering.
                match data.get(..8).and_then(|h| h.try_into().ok()) {
                    Some(h) => u64::from_be_bytes(h),
                    None => return,
                }
            }
        };
        if counter < self.next {
            self.duplicates += 1;
            self.error(format!("duplicate: message {counter} while expecting {}", self.next));
        } else if counter > self.next {
            self.gaps += 1;
            self.error(format!("gap: message {counter} while expecting {}", self.next));
            // Resynchronise so one loss is one gap, not a gap per message.
            self.next = counter + 1;
        } else {
            self.next += 1;
        }
        self.in_order = self.duplicates == 0 && self.gaps == 0;
    }

    fn done(&self) -> bool {
        self.next >= self.expected
    }

    fn success(&self) -> bool {
        self.received == self.expected
            && self.next == self.expected
            && self.in_order
            && self.corrupt == 0
            && !self.timed_out
    }
}

fn recv(port: u8, a: &RecvArgs) {
    let mut client = bind(port);
    ready();
    let mut until = Until::new(Some(Instant::now() + a.timeout));
    let mut report = RecvReport::new(a.count);
    let (mut first, mut last) = (None, None);
    while !report.done() {
        match until.next(&mut client) {
            None => {
                report.timed_out = true;
                let (got, want) = (report.next, a.count);
                report.error(format!("timeout after {:?} waiting for message {got} of {want}", a.timeout));
                break;
            }
            Some(ServerMsg::Deliver { peer, data }) if peer == a.from => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
                report.deliver(&data);
            }
            Some(ServerMsg::PeerDown { peer, .. }) if peer == a.from => report.peer_down += 1,
            Some(_) => {}
        }
    }
    let elapsed = match (first, last) {
        (Some(f), Some(l)) => l - f,
        _ => Duration::ZERO,
    };
    report.elapsed_s = elapsed.as_secs_f64();
    report.msgs_per_s = rate(report.received, elapsed);
    cli::print_json(PROG, &report);
    if !report.success() {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// echo, ping

fn echo(port: u8) {
    let mut client = bind(port);
    ready();
    loop {
        match client.recv() {
            Ok(ServerMsg::Deliver { peer, data }) => {
                let back = ClientMsg::Send { dest: Dest::Node(peer), data };
                client.send(&back).unwrap_or_else(|e| die_ctl(&e));
            }
            Ok(msg @ ServerMsg::SendFailed { .. }) => {
                cli::print_json(PROG, &WatchLine { t_us: now_us(), event: watch_event(msg) });
            }
            Ok(_) => {}
            Err(e) => die_ctl(&e),
        }
    }
}

fn dping(a: &DpingArgs) {
    let mut client = cli::connect(PROG);
    let mut ask = |count: u32| match cli::request(PROG, &mut client, Request::Ping { peer: a.to, count, size: a.size }) {
        Response::RoundTrips(ns) => ns,
        other => cli::fail(PROG, other),
    };
    if a.warmup > 0 {
        ask(a.warmup);
    }
    let rtts = ask(a.count).into_iter().map(|ns| Duration::from_nanos(ns as u64)).collect();
    cli::print_json(PROG, &latency(rtts, a.size as usize));
}

fn ping(port: u8, a: &PingArgs) {
    let mut client = bind(port);
    let mut rtts = Vec::with_capacity(a.count as usize);
    for i in 0..a.warmup + a.count {
        let msg = ClientMsg::Send { dest: Dest::Node(a.to), data: payload(i, a.size) };
        let t0 = Instant::now();
        client.send(&msg).unwrap_or_else(|e| die_ctl(&e));
        let rtt = await_echo(&mut client, a, i, t0);
        if i >= a.warmup {
            rtts.push(rtt);
        }
    }
    cli::print_json(PROG, &latency(rtts, a.size));
}

/// Waits for message `i` to come back from `a.to`; dies on a failure that
/// means it never will.
fn await_echo(client: &mut Client, a: &PingArgs, i: u64, t0: Instant) -> Duration {
    let mut until = Until::new(Some(t0 + a.timeout));
    loop {
        match until.next(client) {
            None => cli::die(PROG, format!("no reply to message {i} from node {} within {:?} (is lltmsg echo running there?)", a.to, a.timeout)),
            Some(ServerMsg::Deliver { peer, data }) if peer == a.to && check_payload(&data) == Ok(i) => return t0.elapsed(),
            Some(ServerMsg::SendFailed { error, .. }) => cli::die(PROG, format!("send to node {} failed: {error}", a.to)),
            Some(ServerMsg::PeerDown { peer, reason }) if peer == a.to => {
                cli::die(PROG, format!("node {peer} went down ({reason:?}) during message {i}"))
            }
            Some(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------
// rawecho, rawping

/// The benchmark ethertype: an IEEE "local experimental" value, distinct
/// from LLT's so the baseline never disturbs a running LLT.
const ETHERTYPE_BENCH: u16 = 0x88B6;
const ETH_HLEN: usize = 14;
/// Byte after the sequence number: request or reply. Without it a host
/// would take its own request for an answer wherever it sees its own frames
/// as received (on `lo`), and two echoers would bounce a frame forever.
const RAW_KIND: usize = ETH_HLEN + 4;
const RAW_REQUEST: u8 = 0;
const RAW_REPLY: u8 = 1;
/// Smallest rawping payload: sequence number and kind.
const RAW_MIN_SIZE: usize = 5;
/// Consecutive unanswered rawping frames after which the far end is
/// considered absent.
const RAW_MAX_CONSECUTIVE_LOSS: u32 = 5;
const RAW_REPLY_TIMEOUT: Duration = Duration::from_secs(1);

fn open_raw(iface: &str, timeout: Option<Duration>) -> raw::RawSocket {
    let sock = raw::RawSocket::open(iface, ETHERTYPE_BENCH).unwrap_or_else(|e| cli::die(PROG, e));
    if let Err(e) = sock.set_timeout(timeout) {
        cli::die(PROG, format!("setsockopt(SO_RCVTIMEO): {e}"));
    }
    sock
}

fn rawecho(iface: &str) {
    let sock = open_raw(iface, None);
    ready();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match sock.recv(&mut buf) {
            Ok(Some(n)) if n > RAW_KIND && buf[RAW_KIND] == RAW_REQUEST => n,
            Ok(_) => continue,
            Err(e) => cli::die(PROG, format!("receive on {iface}: {e}")),
        };
        // Back to whoever sent it, from our own address (the frame may
        // have been broadcast, so its destination is not necessarily us).
        buf.copy_within(6..12, 0);
        buf[6..12].copy_from_slice(&sock.mac);
        buf[RAW_KIND] = RAW_REPLY;
        if let Err(e) = sock.send(&buf[..n]) {
            eprintln!("{PROG}: send on {iface}: {e}");
        }
    }
}

fn raw_frame(dst: [u8; 6], src: [u8; 6], seq: u32, size: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + size);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE_BENCH.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.push(RAW_REQUEST);
    f.resize(ETH_HLEN + size, 0);
    f
}

/// Whether `frame` is the echo of sequence number `seq` from `from`.
fn is_echo(frame: &[u8], from: [u8; 6], seq: u32) -> bool {
    frame.len() > RAW_KIND
        && frame[6..12] == from
        && frame[ETH_HLEN..RAW_KIND] == seq.to_be_bytes()
        && frame[RAW_KIND] == RAW_REPLY
}

fn rawping(a: &RawpingArgs) {
    let sock = open_raw(&a.iface, Some(RAW_REPLY_TIMEOUT));
    let mut buf = vec![0u8; 65536];
    let mut rtts = Vec::with_capacity(a.count as usize);
    let (mut lost, mut consecutive) = (0u64, 0u32);
    for i in 0..a.warmup + a.count {
        // The sequence number wraps after 4 G frames; harmless for a
        // baseline, late replies just need to differ from the current one.
        let seq = i as u32;
        let frame = raw_frame(a.to_mac, sock.mac, seq, a.size);
        let t0 = Instant::now();
        if let Err(e) = sock.send(&frame) {
            cli::die(PROG, format!("send on {}: {e}", a.iface));
        }
        match await_raw_echo(&sock, &mut buf, a.to_mac, seq, t0) {
            Some(rtt) => {
                consecutive = 0;
                if i >= a.warmup {
                    rtts.push(rtt);
                }
            }
            None => {
                lost += 1;
                consecutive += 1;
                if consecutive >= RAW_MAX_CONSECUTIVE_LOSS {
                    cli::die(PROG, format!("no reply from {} on {} (is lltmsg rawecho running there?)", fmt_mac(a.to_mac), a.iface));
                }
            }
        }
    }
    if rtts.is_empty() && a.count > 0 {
        cli::die(PROG, format!("no reply from {} on {} (is lltmsg rawecho running there?)", fmt_mac(a.to_mac), a.iface));
    }
    let mut report = latency(rtts, a.size);
    report.lost = Some(lost);
    cli::print_json(PROG, &report);
}

/// Round trip of frame `seq`, or None if no echo came within the timeout.
fn await_raw_echo(sock: &raw::RawSocket, buf: &mut [u8], from: [u8; 6], seq: u32, t0: Instant) -> Option<Duration> {
    while t0.elapsed() < RAW_REPLY_TIMEOUT {
        match sock.recv(buf) {
            Ok(Some(n)) if is_echo(&buf[..n], from, seq) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return None,
            Err(e) => cli::die(PROG, format!("receive: {e}")),
        }
    }
    None
}

fn fmt_mac(m: [u8; 6]) -> String {
    llt::core::LinkAddr::Mac(m).to_string()
}

/// A bare AF_PACKET socket for the baseline benchmarks.
mod raw {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    pub struct RawSocket {
        fd: OwnedFd,
        /// The interface's MAC address.
        pub mac: [u8; 6],
    }

    impl RawSocket {
        /// A blocking SOCK_RAW packet socket bound to `iface`, receiving only
        /// `ethertype`. Errors are one line for the user.
        pub fn open(iface: &str, ethertype: u16) -> Result<RawSocket, String> {
            let mac = llt::io::iface_mac(iface).ok_or_else(|| format!("no such Ethernet interface: {iface}"))?;
            let name = std::ffi::CString::new(iface).map_err(|_| format!("bad interface name: {iface:?}"))?;
            // SAFETY: `name` is a valid NUL-terminated string for the call.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if ifindex == 0 {
                return Err(format!("no such interface: {iface}"));
            }
            let proto = ethertype.to_be();
            // SAFETY: socket() takes no pointers; it returns a new fd or -1.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::c_int::from(proto)) };
            if fd < 0 {
                let e = io::Error::last_os_error();
                let hint = if e.kind() == io::ErrorKind::PermissionDenied { " (raw sockets need CAP_NET_RAW: run as root)" } else { "" };
                return Err(format!("socket(AF_PACKET): {e}{hint}"));
            }
            // SAFETY: fd was just returned by socket() and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(format!("bind to {iface}: {}", io::Error::last_os_error()));
            }
            Ok(RawSocket { fd, mac })
        }

        /// Receive timeout (None: block forever). A timeout surfaces as a
        /// WouldBlock error from [`RawSocket::recv`].
        pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
            let t = t.unwrap_or(Duration::ZERO);
            let tv = libc::timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
            // SAFETY: `tv` is a valid timeval and the length passed is its size.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Sends one whole frame (Ethernet header included) on the bound
        /// interface.
        pub fn send(&self, frame: &[u8]) -> io::Result<()> {
            loop {
                // SAFETY: `frame` is valid for reads of frame.len() bytes.
                let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
                if n >= 0 {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }

        /// Receives one frame into `buf`: Some(length) for a frame of ours,
        /// None for one to ignore (our own transmissions looped back, frames
        /// for other hosts that a bridge flooded, another ethertype).
        pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` is valid for writes of buf.len() bytes; `sll` and
            // `len` describe a writable sockaddr_ll of the given size.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(e) };
            }
            let n = n as usize;
            let ours = sll.sll_pkttype != libc::PACKET_OUTGOING
                && sll.sll_pkttype != libc::PACKET_OTHERHOST
                && n >= super::ETH_HLEN
                && buf[12..14] == super::ETHERTYPE_BENCH.to_be_bytes();
            Ok(ours.then_some(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_corruption() {
        let p = payload(300, 40);
        assert_eq!(p.len(), 40);
        assert_eq!(&p[..8], &300u64.to_be_bytes());
        assert_eq!(p[8], (300u64 as u8).wrapping_add(8));
        assert_eq!(check_payload(&p), Ok(300));
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert!(check_payload(&bad).unwrap_err().contains("byte 20"));
        assert!(check_payload(&p[..5]).is_err());
    }

    #[test]
    fn recv_counts_duplicates_gaps_corruption() {
        let mut r = RecvReport::new(5);
        for i in [0, 1, 1, 3, 4] {
            r.deliver(&payload(i, 16));
        }
        assert_eq!((r.received, r.duplicates, r.gaps, r.corrupt), (5, 1, 1, 0));
        assert!(!r.in_order && !r.success());
        assert_eq!(r.first_error.as_deref(), Some("duplicate: message 1 while expecting 2"));

        let mut r = RecvReport::new(3);
        for i in 0..3 {
            r.deliver(&payload(i, 16));
        }
        assert!(r.done() && r.success());

        let mut r = RecvReport::new(2);
        let mut bad = payload(0, 16);
        bad[15] = 0;
        r.deliver(&bad);
        r.deliver(&payload(1, 16));
        assert_eq!((r.corrupt, r.in_order, r.success()), (1, true, false));
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        assert_eq!(percentile(&[], 90.0), 0.0);
    }

    #[test]
    fn watch_lines() {
        let line = WatchLine { t_us: 5, event: watch_event(ServerMsg::PeerDown { peer: 1, reason: DownReason::Inactive }) };
        assert_eq!(serde_json::to_string(&line).unwrap(), r#"{"t_us":5,"event":"peer_down","peer":1,"reason":"Inactive"}"#);
        let line = WatchLine { t_us: 5, event: watch_event(ServerMsg::LinkState { peer: 1, link: 0, state: LinkState::Down }) };
        assert_eq!(serde_json::to_string(&line).unwrap(), r#"{"t_us":5,"event":"link","peer":1,"link":0,"state":"Down"}"#);
        let line = WatchLine { t_us: 5, event: watch_event(ServerMsg::Deliver { peer: 1, data: payload(9, 64) }) };
        assert_eq!(serde_json::to_string(&line).unwrap(), r#"{"t_us":5,"event":"deliver","peer":1,"len":64,"seq":9}"#);
    }

    #[test]
    fn args() {
        assert_eq!(parse_dest("all"), Ok(Dest::All));
        assert_eq!(parse_dest("3"), Ok(Dest::Node(3)));
        assert!(parse_dest("64").is_err());
        assert_eq!(parse_mac("02:00:00:00:0a:01"), Ok([2, 0, 0, 0, 10, 1]));
        assert!(parse_mac("02:00:00").is_err());
        assert!(parse_size("7").is_err());
        let f = raw_frame([1; 6], [2; 6], 7, 10);
        assert_eq!(f.len(), 24);
        // Our own request is not its echo.
        assert!(!is_echo(&f, [2; 6], 7));
        let mut reply = f.clone();
        reply[RAW_KIND] = RAW_REPLY;
        assert!(is_echo(&reply, [2; 6], 7) && !is_echo(&reply, [2; 6], 8));
    }
}
