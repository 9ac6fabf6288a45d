//! The command-line tools as administrators and scripts see them: help,
//! one-line errors when the daemon is absent, and the text and JSON they
//! print, against a small fake daemon speaking the control protocol.

use llt::config::Timers;
use llt::core::{Dest, LinkAddr, LinkState, PeerLinkStatus, PeerStatus, Phase, Stats};
use llt::ctl::{decode_body, encode_frame, frame_len, ClientMsg, LinkReport, Request, Response, ServerMsg, StatusReport};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const LLTCONFIG: &str = env!("CARGO_BIN_EXE_lltconfig");
const LLTSTAT: &str = env!("CARGO_BIN_EXE_lltstat");
const LLTMSG: &str = env!("CARGO_BIN_EXE_lltmsg");

/// An empty directory to use as HA_ROOT, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new() -> TempRoot {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!("llt-cli-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }
    fn socket(&self) -> PathBuf {
        self.0.join("run/ha/llt.sock")
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(bin: &str, root: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).env("HA_ROOT", root).stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_explains_options_and_ha_root() {
    let cases: [(&str, &[&str]); 3] = [
        (LLTCONFIG, &["-c", "-U", "-T", "-a", "--json", "duplicate node id"]),
        (LLTSTAT, &["-n", "-v", "--json", "CONNWAIT"]),
        (LLTMSG, &["watch", "send", "recv", "echo", "ping", "rawecho", "rawping", "--port"]),
    ];
    for (bin, words) in cases {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success(), "{bin} --help failed");
        let help = text(&out.stdout);
        assert!(help.contains("HA_ROOT"), "{bin} --help does not mention HA_ROOT:\n{help}");
        for w in words {
            assert!(help.contains(w), "{bin} --help does not mention {w}:\n{help}");
        }
    }
}

/// Exactly one line on stderr, prefixed by the program, nothing on stdout,
/// exit status 1.
fn assert_one_line_error(out: &Output, prog: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with(&format!("{prog}: ")), "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    err
}

#[test]
fn absent_daemon_is_one_line_naming_the_socket() {
    let root = TempRoot::new();
    let sock = root.socket().display().to_string();
    let cases: [(&str, &str, &[&str]); 7] = [
        (LLTSTAT, "lltstat", &["-n"]),
        (LLTSTAT, "lltstat", &["-nvv"]),
        (LLTSTAT, "lltstat", &["-n", "-vv", "-json"]),
        (LLTSTAT, "lltstat", &[]),
        (LLTCONFIG, "lltconfig", &[]),
        (LLTCONFIG, "lltconfig", &["-c"]),
        (LLTMSG, "lltmsg", &["watch"]),
    ];
    for (bin, prog, args) in cases {
        let err = assert_one_line_error(&run(bin, &root.0, args), prog);
        assert!(err.contains(&sock), "{prog} {args:?}: {err}");
        assert!(err.contains("is clusterd running?"), "{prog} {args:?}: {err}");
    }
}

#[test]
fn usage_errors_are_one_line() {
    let root = TempRoot::new();
    let err = assert_one_line_error(&run(LLTCONFIG, &root.0, &["-T", "x"]), "lltconfig");
    assert_eq!(err, "lltconfig: bad timer 'x' (expected name:value, e.g. peerinact:1600)\n");
    assert_one_line_error(&run(LLTCONFIG, &root.0, &["-T", "bogus:3"]), "lltconfig");
    assert_one_line_error(&run(LLTCONFIG, &root.0, &["-c", "-U"]), "lltconfig");
    assert_one_line_error(&run(LLTCONFIG, &root.0, &["-a", "set"]), "lltconfig");
    assert_one_line_error(&run(LLTSTAT, &root.0, &["-x"]), "lltstat");
    assert_one_line_error(&run(LLTSTAT, &root.0, &["-v"]), "lltstat");
    assert_one_line_error(&run(LLTMSG, &root.0, &["send", "--to", "1"]), "lltmsg");
    assert_one_line_error(&run(LLTMSG, &root.0, &["send", "--to", "1", "--count", "1", "--size", "4"]), "lltmsg");
}

// ---------------------------------------------------------------------------
// A fake daemon: answers requests from a fixed report, and relays every
// `Send` to every other bound connection as a delivery from node 1.

/// Sends to this node fail, as to a node that is down.
const UNREACHABLE: u8 = 9;

type Conns = Arc<Mutex<Vec<(usize, UnixStream)>>>;

struct FakeDaemon {
    report: StatusReport,
    timers_set: Mutex<Vec<(String, u32)>>,
    bound: Conns,
}

fn start_fake(root: &TempRoot, report: StatusReport) -> Arc<FakeDaemon> {
    std::fs::create_dir_all(root.socket().parent().unwrap()).unwrap();
    let listener = UnixListener::bind(root.socket()).unwrap();
    let fake = Arc::new(FakeDaemon { report, timers_set: Mutex::new(Vec::new()), bound: Arc::default() });
    let f = fake.clone();
    std::thread::spawn(move || {
        for (id, conn) in listener.incoming().enumerate() {
            let f = f.clone();
            std::thread::spawn(move || f.serve(id, conn.unwrap()));
        }
    });
    fake
}

fn write_msg(s: &mut UnixStream, m: &ServerMsg) -> bool {
    s.write_all(&encode_frame(m).unwrap()).is_ok()
}

impl FakeDaemon {
    fn serve(&self, id: usize, mut s: UnixStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            while let Some(len) = frame_len(&buf).unwrap() {
                let msg: ClientMsg = decode_body(&buf[4..4 + len]).unwrap();
                buf.drain(..4 + len);
                if !self.handle(id, &mut s, msg) {
                    return;
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn handle(&self, id: usize, s: &mut UnixStream, msg: ClientMsg) -> bool {
        let resp = match msg {
            ClientMsg::Send { dest: dest @ Dest::Node(UNREACHABLE), .. } => {
                return write_msg(s, &ServerMsg::SendFailed { dest, error: "node 9 is not reachable (no link to it is up)".into() });
            }
            ClientMsg::Send { data, .. } => {
                let deliver = ServerMsg::Deliver { peer: 1, data };
                for (other, w) in self.bound.lock().unwrap().iter_mut() {
                    if *other != id {
                        write_msg(w, &deliver);
                    }
                }
                return true;
            }
            ClientMsg::Request(Request::Status) => Response::Status(Box::new(self.report.clone())),
            ClientMsg::Request(Request::GetTimers) => Response::Timers(self.report.timers),
            ClientMsg::Request(Request::Ping { count, .. }) => Response::RoundTrips(vec![20_000; count as usize]),
            ClientMsg::Request(Request::SetTimer { name, value }) => {
                self.timers_set.lock().unwrap().push((name.clone(), value));
                // As clusterd does: the timers now in force.
                let mut t = self.report.timers;
                t.set(&name, value).unwrap();
                Response::Timers(t)
            }
            ClientMsg::Request(Request::Configure) => {
                Response::Error("llttab:3: unknown directive 'lnk'\nllttab:5: set-node missing".into())
            }
            ClientMsg::Request(Request::Unconfigure) => Response::Ok,
            ClientMsg::Request(Request::Bind { .. }) => {
                self.bound.lock().unwrap().push((id, s.try_clone().unwrap()));
                Response::Ok
            }
        };
        write_msg(s, &ServerMsg::Response(resp))
    }
}

fn report() -> StatusReport {
    let link = |id: u8, tag: &str, addr: &str| LinkReport {
        id,
        tag: tag.into(),
        device: tag.into(),
        kind: "ether".into(),
        lowpri: false,
        mtu: 1500,
        address: addr.into(),
    };
    let plink = |link: u8, state, seg: u8| PeerLinkStatus {
        link,
        tag: String::new(),
        state,
        addr: Some(LinkAddr::Mac([2, 0, 0, 0, seg, 2])),
        rx_frames: 1,
        tx_frames: 1,
        hears_us: true,
    };
    StatusReport {
        phase: Some(Phase::Running),
        node_id: 0,
        node_name: "north".into(),
        cluster_id: 1,
        links: vec![link(0, "eth1", "02:00:00:00:0A:01"), link(1, "eth2", "02:00:00:00:0B:01")],
        hosts: BTreeMap::from([(0, "north".into()), (1, "south".into()), (2, "west".into())]),
        peers: vec![PeerStatus {
            node: 1,
            open: true,
            seen: true,
            links: vec![plink(0, LinkState::Up, 0x0A), plink(1, LinkState::Up, 0x0B)],
            in_flight: 0,
        }],
        stats: Stats { snd_data: 152, ..Stats::default() },
        timers: Timers::default(),
        io_errors: 0,
    }
}

fn ok_stdout(out: &Output) -> String {
    assert!(out.status.success(), "status {:?}, stderr: {}", out.status, text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn commands_against_a_fake_daemon() {
    let root = TempRoot::new();
    let fake = start_fake(&root, report());
    let r = &root.0;

    assert_eq!(ok_stdout(&run(LLTCONFIG, r, &[])), "LLT is running\n");
    let nodes = ok_stdout(&run(LLTSTAT, r, &["-n"]));
    assert_eq!(
        nodes,
        "LLT node information:\n    Node                 State    Links\n   * 0 north             OPEN        2\n     1 south             OPEN        2\n     2 west              CONNWAIT    0\n"
    );
    // -nvv and -n -vv are the same command.
    let nvv = ok_stdout(&run(LLTSTAT, r, &["-nvv"]));
    assert_eq!(nvv, ok_stdout(&run(LLTSTAT, r, &["-n", "-vv"])));
    assert!(nvv.contains("                                  eth2   UP      02:00:00:00:0B:02\n"), "{nvv}");
    assert!(ok_stdout(&run(LLTSTAT, r, &[])).contains("    152      Snd data packets\n"));
    assert!(ok_stdout(&run(LLTCONFIG, r, &["-a", "list"])).contains("  Node   1 south       :  02:00:00:00:0A:02\n"));
    assert!(ok_stdout(&run(LLTCONFIG, r, &["-T", "query"])).contains("  peerinact   = 1600\n"));

    // JSON forms parse, and carry what the text shows.
    let j: serde_json::Value = serde_json::from_str(&ok_stdout(&run(LLTSTAT, r, &["-nvv", "-json"]))).unwrap();
    assert_eq!(j["phase"], "Running");
    assert_eq!(j["nodes"][2]["state"], "CONNWAIT");
    let back: StatusReport = serde_json::from_value(j).unwrap();
    assert_eq!(back, report());
    let j: serde_json::Value = serde_json::from_str(&ok_stdout(&run(LLTCONFIG, r, &["-T", "query", "-json"]))).unwrap();
    assert_eq!(j["dupwait"], 500);
    let j: serde_json::Value = serde_json::from_str(&ok_stdout(&run(LLTCONFIG, r, &["-a", "list", "-json"]))).unwrap();
    assert_eq!(j["links"][1]["nodes"][0]["permanent"], true);

    assert!(ok_stdout(&run(LLTCONFIG, r, &["-T", "peerinact:1200,heartbeat:40"])).is_empty());
    assert_eq!(*fake.timers_set.lock().unwrap(), vec![("peerinact".into(), 1200), ("heartbeat".into(), 40)]);

    // Every line of a daemon error, each prefixed.
    let out = run(LLTCONFIG, r, &["-c"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "lltconfig: llttab:3: unknown directive 'lnk'\nlltconfig: llttab:5: set-node missing\n");
}

#[test]
fn not_configured() {
    let root = TempRoot::new();
    let mut r = report();
    r.phase = None;
    start_fake(&root, r);
    let out = run(LLTCONFIG, &root.0, &[]);
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(1), "LLT is not running\n".to_string()));
    let err = assert_one_line_error(&run(LLTSTAT, &root.0, &["-n"]), "lltstat");
    assert!(err.contains("LLT is not running"), "{err}");
}

fn spawn_ready(root: &Path, args: &[&str]) -> std::process::Child {
    let mut child = Command::new(LLTMSG)
        .args(args)
        .env("HA_ROOT", root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    child
}

#[test]
fn lltmsg_send_recv_and_ping_through_a_relay() {
    let root = TempRoot::new();
    start_fake(&root, report());
    let r = &root.0;

    let receiver = spawn_ready(r, &["recv", "--from", "1", "--count", "5000", "--timeout", "20"]);
    let sent: serde_json::Value = serde_json::from_str(&ok_stdout(&run(LLTMSG, r, &["send", "--to", "1", "--count", "5000", "--size", "100", "--batch", "7"]))).unwrap();
    assert_eq!((sent["sent"].as_u64(), sent["send_failed"].as_u64()), (Some(5000), Some(0)));
    let out = receiver.wait_with_output().unwrap();
    let got: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(out.status.success(), "{got}");
    assert_eq!((got["received"].as_u64(), got["in_order"].as_bool()), (Some(5000), Some(true)));

    let mut echo = spawn_ready(r, &["echo"]);
    let p: serde_json::Value = serde_json::from_str(&ok_stdout(&run(LLTMSG, r, &["ping", "--to", "1", "--count", "50", "--warmup", "5"]))).unwrap();
    echo.kill().unwrap();
    let _ = echo.wait();
    assert_eq!(p["count"], 50);
    assert!(p["p50_us"].as_f64().unwrap() > 0.0);
    assert!(p["min_us"].as_f64() <= p["p99_us"].as_f64());

    // Failed sends: counted in the JSON, summed up in one line, exit 1.
    let out = run(LLTMSG, r, &["send", "--to", "9", "--count", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(j["send_failed"], 3);
    assert_eq!(text(&out.stderr), "lltmsg: 3 of 3 sends failed, the first: node 9 is not reachable (no link to it is up)\n");

    // The receiver notices a stream with a hole and says so.
    let receiver = spawn_ready(r, &["recv", "--from", "1", "--count", "10", "--timeout", "2"]);
    ok_stdout(&run(LLTMSG, r, &["send", "--to", "1", "--count", "5"]));
    let out = receiver.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let got: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!((got["received"].as_u64(), got["timed_out"].as_bool()), (Some(5), Some(true)));
}

#[test]
fn watch_prints_timestamped_json_lines() {
    let root = TempRoot::new();
    start_fake(&root, report());
    let r = &root.0;
    let watcher = Command::new(LLTMSG).args(["watch", "--duration", "1.5"]).env("HA_ROOT", r).stdout(Stdio::piped()).spawn().unwrap();
    // Give watch time to bind before sending.
    std::thread::sleep(std::time::Duration::from_millis(500));
    ok_stdout(&run(LLTMSG, r, &["send", "--to", "all", "--count", "3", "--size", "8"]));
    let out = watcher.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[2]["event"], "deliver");
    assert_eq!(lines[2]["seq"], 2);
    assert!(lines[0]["t_us"].as_u64().unwrap() > 1_600_000_000_000_000);
}
