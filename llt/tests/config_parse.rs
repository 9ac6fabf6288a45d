//! llttab / llthosts parser: valid files, every diagnostic, several problems
//! at once, `load` from disk, and a no-panic fuzz pass.

use llt::config::{self, ConfigError, LinkConfig, LinkKind, LltConfig, Timers};
use llt::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const VALID_TAB: &str = include_str!("data/llttab/valid.llttab");
const VALID_HOSTS: &str = include_str!("data/llttab/valid.llthosts");

/// Interfaces the fake machine has.
fn fake_iface(name: &str) -> bool {
    matches!(name, "eth0" | "eth1" | "eth2" | "eth3" | "eth4" | "eth5" | "eth6" | "eth7" | "eth8" | "eth9" | "lo")
}

fn hosts() -> BTreeMap<NodeId, String> {
    config::parse_llthosts(Path::new("llthosts"), VALID_HOSTS).expect("valid llthosts")
}

fn tab(text: &str) -> Result<LltConfig, ConfigError> {
    config::parse_llttab(Path::new("llttab"), text, &hosts(), &fake_iface)
}

/// The diagnostics of an llttab that must fail, as (line, message).
fn tab_errs(text: &str) -> Vec<(usize, String)> {
    match tab(text) {
        Ok(c) => panic!("expected errors, parsed {c:?}"),
        Err(ConfigError(d)) => d.into_iter().map(|d| (d.line, d.msg)).collect(),
    }
}

fn hosts_errs(text: &str) -> Vec<(usize, String)> {
    match config::parse_llthosts(Path::new("llthosts"), text) {
        Ok(h) => panic!("expected errors, parsed {h:?}"),
        Err(ConfigError(d)) => d.into_iter().map(|d| (d.line, d.msg)).collect(),
    }
}

/// Assert one diagnostic at `line` contains `needle`.
fn has(errs: &[(usize, String)], line: usize, needle: &str) {
    assert!(
        errs.iter().any(|(l, m)| *l == line && m.contains(needle)),
        "no diagnostic at line {line} containing {needle:?}; got {errs:#?}"
    );
}

/// A minimal valid header, 3 lines, so test lines start at line 4.
const HEAD: &str = "set-node beta\nset-cluster 1\nlink eth1 eth1 - ether - -\n";

/// HEAD followed by `rest`; the first line of `rest` is line 4.
fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------------

#[test]
fn valid_full_llttab() {
    let cfg = tab(VALID_TAB).expect("valid llttab");
    let timers = Timers { heartbeat: 40, peerinact: 1200, ..Timers::default() };
    let expected = LltConfig {
        node_id: 1,
        node_name: "beta".into(),
        cluster_id: 4711,
        links: vec![
            LinkConfig { id: 0, tag: "eth1".into(), device: "eth1".into(), lowpri: false, kind: LinkKind::Ether, mtu: None },
            LinkConfig {
                id: 1,
                tag: "eth2".into(),
                device: "eth2".into(),
                lowpri: false,
                kind: LinkKind::Ether,
                mtu: Some(1500),
            },
            LinkConfig { id: 2, tag: "eth3".into(), device: "eth3".into(), lowpri: true, kind: LinkKind::Ether, mtu: None },
            LinkConfig {
                id: 3,
                tag: "udp1".into(),
                device: "/dev/udp".into(),
                lowpri: false,
                kind: LinkKind::Udp {
                    port: 50000,
                    local: ip("192.168.9.2"),
                    broadcast: Some(ip("192.168.9.255")),
                    peers: BTreeMap::from([(0, ip("192.168.9.1")), (2, ip("192.168.9.3"))]),
                },
                mtu: Some(9000),
            },
        ],
        timers,
        hosts: BTreeMap::from([(0, "alpha".into()), (1, "beta".into()), (2, "gamma".into()), (5, "delta".into())]),
        excluded: (10..=20).chain([30]).collect::<BTreeSet<NodeId>>(),
    };
    assert_eq!(cfg, expected);
}

#[test]
fn valid_llthosts() {
    assert_eq!(
        hosts(),
        BTreeMap::from([(0, "alpha".to_string()), (1, "beta".into()), (2, "gamma".into()), (5, "delta".into())])
    );
}

#[test]
fn set_node_by_number_and_udp_variants() {
    let cfg = tab("set-node 5\nset-cluster 0\n\
                   link u1 udp - udp 1 - fe80::1 -\n\
                   link u2 /dev/udp - udp 65535 - 10.0.0.1\n\
                   set-addr 0 u1 fe80::2\n")
    .expect("valid");
    assert_eq!((cfg.node_id, cfg.node_name.as_str(), cfg.cluster_id), (5, "delta", 0));
    assert_eq!(cfg.links[0].device, "/dev/udp");
    assert_eq!(
        cfg.links[0].kind,
        LinkKind::Udp {
            port: 1,
            local: ip("fe80::1"),
            broadcast: None,
            peers: BTreeMap::from([(0, ip("fe80::2"))]),
        }
    );
    // A missing BCAST column is the same as '-'.
    assert!(matches!(cfg.links[1].kind, LinkKind::Udp { port: 65535, broadcast: None, .. }));
    assert_eq!(cfg.links[1].id, 1);
}

#[test]
fn crlf_line_endings_and_comments() {
    let text = VALID_TAB.replace('\n', "\r\n");
    assert_eq!(tab(&text).expect("crlf llttab"), tab(VALID_TAB).unwrap());
    let hosts_crlf = VALID_HOSTS.replace('\n', "\r\n");
    assert_eq!(config::parse_llthosts(Path::new("h"), &hosts_crlf).unwrap(), hosts());
    // Comment glued to a value, tabs as separators.
    let cfg = tab("set-node\tbeta#me\n  set-cluster 7 # c\nlink eth1 eth1 - ether - -#x\n").unwrap();
    assert_eq!((cfg.node_id, cfg.cluster_id), (1, 7));
}

#[test]
fn set_timer_two_forms_and_ignored_directives() {
    let cfg = tab(&with_head("set-timer dupwait:700\nset-timer heartbeatlo 150\nset-flow whatever 1 2 3\n")).unwrap();
    assert_eq!(cfg.timers.dupwait, 700);
    assert_eq!(cfg.timers.heartbeatlo, 150);
}

#[test]
fn display_format() {
    let err = tab(&with_head("link e9 eth10 - ether - -\n")).unwrap_err();
    assert_eq!(err.to_string(), "llttab:4: unknown interface 'eth10' (no such network interface on this node)");
}

// ---------------------------------------------------------------------------
// llthosts errors
// ---------------------------------------------------------------------------

#[test]
fn llthosts_errors_all_reported() {
    let errs = hosts_errs(
        "0 a\n\
         x b\n\
         64 c\n\
         0 d\n\
         1 a\n\
         2\n\
         3 e f\n\
         99999999999999999999999 g\n\
         -1 h\n",
    );
    has(&errs, 2, "bad node id 'x'");
    has(&errs, 3, "node id 64 is out of range (expected 0..63)");
    has(&errs, 4, "duplicate node id 0 (already defined on line 1)");
    has(&errs, 5, "duplicate node name 'a' (already node 0 on line 1)");
    has(&errs, 6, "node '2' has no name");
    has(&errs, 7, "unexpected extra columns 'f'");
    has(&errs, 8, "out of range");
    has(&errs, 9, "bad node id '-1'");
    assert_eq!(errs.len(), 8, "{errs:#?}");
}

// ---------------------------------------------------------------------------
// llttab errors, one directive at a time
// ---------------------------------------------------------------------------

#[test]
fn set_node_errors() {
    let errs = tab_errs("set-node zeta\nset-cluster 1\nlink eth1 eth1 - ether - -\n");
    has(&errs, 1, "node name 'zeta' is not in llthosts");
    let errs = tab_errs("set-node 3\nset-cluster 1\nlink eth1 eth1 - ether - -\n");
    has(&errs, 1, "node 3 is missing from llthosts");
    let errs = tab_errs("set-node 64\nset-cluster 1\nlink eth1 eth1 - ether - -\n");
    has(&errs, 1, "node id 64 is out of range");
    let errs = tab_errs(&with_head("set-node alpha\nset-node\n"));
    has(&errs, 4, "duplicate set-node directive (already set on line 1)");
    has(&errs, 5, "duplicate set-node");
    let errs = tab_errs("set-node\nset-cluster 1\nlink eth1 eth1 - ether - -\n");
    has(&errs, 1, "set-node takes exactly one argument");
    // A bad set-node is not also reported as missing.
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn set_cluster_errors() {
    has(&tab_errs("set-node beta\nset-cluster 65536\nlink eth1 eth1 - ether - -\n"), 2, "cluster id 65536 is out of range");
    has(&tab_errs("set-node beta\nset-cluster abc\nlink eth1 eth1 - ether - -\n"), 2, "bad cluster id 'abc'");
    has(&tab_errs("set-node beta\nset-cluster 1 2\nlink eth1 eth1 - ether - -\n"), 2, "set-cluster takes exactly one argument");
    has(&tab_errs(&with_head("set-cluster 2\n")), 4, "duplicate set-cluster directive (already set on line 2)");
}

#[test]
fn missing_required_directives() {
    let errs = tab_errs("# nothing here\n\n");
    has(&errs, 0, "missing set-node directive");
    has(&errs, 0, "missing set-cluster directive");
    has(&errs, 0, "no link directive");
    assert_eq!(errs.len(), 3);
    let errs = tab_errs("set-node beta\nset-cluster 1\n");
    assert_eq!(errs.len(), 1);
    has(&errs, 0, "no link directive");
}

#[test]
fn ether_link_errors() {
    has(&tab_errs(&with_head("link e9 eth10 - ether - -\n")), 4, "unknown interface 'eth10'");
    has(&tab_errs(&with_head("link e9 /dev/eth10 - ether - -\n")), 4, "unknown interface 'eth10'");
    has(&tab_errs(&with_head("link e2 eth2 0-3 ether - -\n")), 4, "node range '0-3' is not supported");
    has(&tab_errs(&with_head("link e2 eth2 - ether 0xZZ -\n")), 4, "bad SAP '0xZZ'");
    has(&tab_errs(&with_head("link e2 eth2 - ether 0x10000 -\n")), 4, "bad SAP '0x10000'");
    has(&tab_errs(&with_head("link e2 eth2 - ether - 67\n")), 4, "MTU 67 is out of range (expected 68..65535)");
    has(&tab_errs(&with_head("link e2 eth2 - ether - 65536\n")), 4, "MTU 65536 is out of range");
    has(&tab_errs(&with_head("link e2 eth2 - ether - big\n")), 4, "bad MTU 'big'");
    has(&tab_errs(&with_head("link e2 eth2 - ether - - 10.0.0.1 -\n")), 4, "ether link takes no LOCALIP/BCAST");
    has(&tab_errs(&with_head("link e2 eth2 - token-ring - -\n")), 4, "unknown link type 'token-ring' (expected 'ether' or 'udp')");
}

#[test]
fn link_structure_errors() {
    has(&tab_errs(&with_head("link eth1 eth2 - ether - -\n")), 4, "duplicate link tag 'eth1' (already used on line 3)");
    has(
        &tab_errs(&with_head("link-lowpri other /dev/eth1 - ether - -\n")),
        4,
        "interface 'eth1' is already used by link 'eth1' on line 3",
    );
    has(&tab_errs(&with_head("link e2 eth2 - ether -\n")), 4, "link: missing columns: found 5, expected TAG DEVICE");
    has(&tab_errs(&with_head("link-lowpri\n")), 4, "link-lowpri: missing columns: found 0");
    has(&tab_errs(&with_head("link u u - udp 1 - 10.0.0.1 - extra\n")), 4, "too many columns");

    // Nine links: the ninth is refused, the first eight are fine.
    let mut text = String::from("set-node beta\nset-cluster 1\n");
    for i in 0..9 {
        text.push_str(&format!("link l{i} eth{i} - ether - -\n"));
    }
    let errs = tab_errs(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    has(&errs, 11, "too many links: this is link number 9, at most 8 are allowed");
}

#[test]
fn udp_link_errors() {
    let h = |s: &str| tab_errs(&with_head(s));
    has(&h("link u1 /dev/udp - udp - - 10.0.0.1 -\n"), 4, "bad UDP port '-'");
    has(&h("link u1 /dev/udp - udp 0 - 10.0.0.1 -\n"), 4, "UDP port 0 is out of range (expected 1..65535)");
    has(&h("link u1 /dev/udp - udp 65536 - 10.0.0.1 -\n"), 4, "UDP port 65536 is out of range");
    has(&h("link u1 /dev/udp - udp 50000 -\n"), 4, "udp link needs a LOCALIP column");
    has(&h("link u1 /dev/udp - udp 50000 - 10.0.0.300 -\n"), 4, "bad local address '10.0.0.300'");
    has(&h("link u1 /dev/udp - udp 50000 - 10.0.0.1 bcast\n"), 4, "bad broadcast address 'bcast'");
    has(&h("link u1 /dev/udp - udp 50000 - 10.0.0.1 ff02::1\n"), 4, "broadcast address ff02::1 is IPv6 but local address 10.0.0.1 is IPv4");
    has(&h("link u1 eth2 - udp 50000 - 10.0.0.1 -\n"), 4, "bad device 'eth2' for a udp link (expected '/dev/udp')");
    has(&h("link u1 udp - udp 50000 - 10.0.0.1 -\nlink u2 udp - udp 50000 - 10.0.0.1 -\n"), 5, "port 50000 is already used by link 'u1' on line 4");
}

#[test]
fn set_timer_errors() {
    let h = |s: &str| tab_errs(&with_head(s));
    has(&h("set-timer heartbeat\n"), 4, "set-timer: expected NAME:VALUE, found 'heartbeat'");
    has(&h("set-timer\n"), 4, "set-timer takes NAME:VALUE or NAME VALUE, found 0");
    has(&h("set-timer bogus:5\n"), 4, "unknown timer 'bogus'");
    has(&h("set-timer heartbeat:0\n"), 4, "timer heartbeat must be greater than 0");
    has(&h("set-timer heartbeat:-5\n"), 4, "bad value '-5' for timer heartbeat");
    has(&h("set-timer heartbeat:1.5\n"), 4, "bad value '1.5'");
    has(&h("set-timer heartbeat:99999999999\n"), 4, "bad value '99999999999'");
    let errs = h("set-timer bogus:x\n");
    has(&errs, 4, "bad value 'x' for timer bogus");
    has(&errs, 4, "unknown timer 'bogus'");
    // Cross-timer check: reported at the last set-timer line.
    let errs = h("set-timer peerinact:100\n# comment\nset-timer heartbeat 10\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    has(&errs, 6, "must be less than peerinact");
}

#[test]
fn set_addr_errors() {
    let h = |s: &str| tab_errs(&with_head(s));
    has(&h("set-addr 1 nolink 10.0.0.1\n"), 4, "set-addr: unknown link tag 'nolink'");
    has(&h("set-addr 1 eth1 10.0.0.1\n"), 4, "set-addr: link 'eth1' is an ether link");
    has(&h("set-addr 64 eth1 10.0.0.1\n"), 4, "node id 64 is out of range");
    has(&h("set-addr 1 eth1 nothere\n"), 4, "bad peer address 'nothere'");
    has(&h("set-addr 1 eth1\n"), 4, "set-addr takes 3 arguments (NODEID TAG ADDR), found 2");
    let udp = "link u1 udp - udp 50000 - 10.0.0.1 -\n";
    has(&h(&format!("{udp}set-addr 2 u1 10.0.0.2\nset-addr 2 u1 10.0.0.3\n")), 6, "duplicate set-addr for node 2 on link 'u1' (already set on line 5)");
    has(&h(&format!("{udp}set-addr 2 u1 fe80::2\n")), 5, "peer address fe80::2 is IPv6 but link 'u1' has local address 10.0.0.1");
    // A refused ether link is still known to be ether.
    let errs = h("link e9 eth99 - ether - -\nset-addr 2 e9 10.0.0.2\n");
    has(&errs, 4, "unknown interface 'eth99'");
    has(&errs, 5, "link 'e9' is an ether link");
    // A set-addr naming a link whose own line was bad is not reported twice.
    let errs = h("set-addr 2 u9 10.0.0.2\nlink u9 udp - udp 0 - 10.0.0.1 -\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    has(&errs, 5, "UDP port 0");
}

#[test]
fn exclude_errors() {
    let h = |s: &str| tab_errs(&with_head(s));
    has(&h("exclude 0-2\n"), 4, "exclude 0-2 covers this node's own id 1 (set-node on line 1)");
    has(&h("exclude 1\n"), 4, "exclude 1 covers this node's own id 1");
    has(&h("exclude 5-3\n"), 4, "bad exclude range '5-3'");
    has(&h("exclude 5-64\n"), 4, "node id 64 is out of range");
    has(&h("exclude a-3\n"), 4, "bad node id 'a'");
    has(&h("exclude\n"), 4, "exclude needs a node id or range");
    has(&h("exclude 3-\n"), 4, "bad node id ''");
}

#[test]
fn unknown_directive() {
    has(&tab_errs(&with_head("set-nodes beta\n")), 4, "unknown directive 'set-nodes'");
    has(&tab_errs(&with_head("LINK a b\n")), 4, "unknown directive 'LINK'");
}

#[test]
fn many_errors_in_one_file_all_reported() {
    let text = "\
set-node nobody
set-cluster 99999
link e1 eth1 - ether - -
link e1 eth2 - ether - -
link e3 eth42 - ether - -
link u1 /dev/udp - udp 0 - 10.0.0.1 -
set-timer heartbeat:abc
set-addr 2 e1 10.0.0.2
exclude 9-3
frobnicate
";
    let errs = tab_errs(text);
    has(&errs, 1, "node name 'nobody' is not in llthosts");
    has(&errs, 2, "cluster id 99999 is out of range");
    has(&errs, 4, "duplicate link tag 'e1'");
    has(&errs, 5, "unknown interface 'eth42'");
    has(&errs, 6, "UDP port 0 is out of range");
    has(&errs, 7, "bad value 'abc' for timer heartbeat");
    has(&errs, 8, "link 'e1' is an ether link");
    has(&errs, 9, "bad exclude range '9-3'");
    has(&errs, 10, "unknown directive 'frobnicate'");
    assert_eq!(errs.len(), 9, "{errs:#?}");
    // Reported in file order, whatever pass found them.
    assert!(errs.windows(2).all(|w| w[0].0 <= w[1].0), "{errs:#?}");
}

// ---------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("llt-config-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_from_disk() {
    let dir = TempDir::new("load");
    let tab_path = dir.0.join("llttab");
    let hosts_path = dir.0.join("llthosts");

    // Both missing: one line-0 diagnostic per file, each naming its path.
    let ConfigError(errs) = config::load(&tab_path, &hosts_path, &fake_iface).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!((errs[0].file.as_path(), errs[0].line), (hosts_path.as_path(), 0));
    assert!(errs[0].msg.contains("cannot read"), "{errs:#?}");
    assert_eq!((errs[1].file.as_path(), errs[1].line), (tab_path.as_path(), 0));

    // Valid files load into the same config as parsing the text.
    std::fs::write(&tab_path, VALID_TAB).unwrap();
    std::fs::write(&hosts_path, VALID_HOSTS).unwrap();
    assert_eq!(config::load(&tab_path, &hosts_path, &fake_iface).unwrap(), tab(VALID_TAB).unwrap());

    // Problems in both files come back together, llthosts first.
    std::fs::write(&hosts_path, "0 alpha\n1 beta\n1 again\n").unwrap();
    std::fs::write(&tab_path, "set-node beta\nset-cluster 1\nlink e9 eth99 - ether - -\n").unwrap();
    let ConfigError(errs) = config::load(&tab_path, &hosts_path, &fake_iface).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!((errs[0].file.as_path(), errs[0].line), (hosts_path.as_path(), 3));
    assert_eq!((errs[1].file.as_path(), errs[1].line), (tab_path.as_path(), 3));

    // Only llttab missing.
    std::fs::write(&hosts_path, VALID_HOSTS).unwrap();
    std::fs::remove_file(&tab_path).unwrap();
    let ConfigError(errs) = config::load(&tab_path, &hosts_path, &fake_iface).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].file.as_path(), errs[0].line), (tab_path.as_path(), 0));

    // A directory is unreadable as a file.
    let ConfigError(errs) = config::load(&dir.0, &hosts_path, &fake_iface).unwrap_err();
    assert_eq!(errs[0].line, 0);

    let path = dir.0.clone();
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn system_iface_lookup() {
    assert!(config::system_iface_exists("lo"), "loopback exists in every network namespace");
    assert!(!config::system_iface_exists("no-such-if0"));
    assert!(!config::system_iface_exists("lo\0x"));
    assert!(!config::system_iface_exists(""));
    assert!(!config::system_iface_exists(&"x".repeat(300)));
}

// ---------------------------------------------------------------------------
// Fuzz-ish: nothing may panic
// ---------------------------------------------------------------------------

/// xorshift64: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Tokens that hit interesting paths: directives, numbers at the edges,
/// separators, addresses, garbage.
const TOKENS: &[&str] = &[
    "set-node", "set-cluster", "link", "link-lowpri", "set-timer", "set-addr", "exclude", "set-flow", "-", "--", "0",
    "63", "64", "65535", "65536", "99999999999999999999999", "0x", "0xCAFE", "0xfffff", "eth1", "/dev/", "/dev/eth2",
    "udp", "/dev/udp", "ether", "10.0.0.1", "::1", "fe80::1", "1.2.3", "heartbeat:", ":", "peerinact:0", "a-b", "3-",
    "-3", "#", "\r", "\t", "\u{0}", "é", "\u{feff}", "beta", "udp1", "u1",
];

fn random_text(rng: &mut Rng) -> String {
    let len = rng.below(300);
    let mut bytes = Vec::with_capacity(len);
    for _ in 0..len {
        // Bias towards the characters the parser cares about.
        let b = match rng.below(4) {
            0 => b" \n\t\r#-:/.0123456789xX"[rng.below(21)],
            1 => b'a' + rng.below(26) as u8,
            _ => rng.next() as u8,
        };
        bytes.push(b);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_token_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(60) {
        s.push_str(rng.pick(TOKENS));
        s.push_str(rng.pick(&[" ", " ", "\n", "\t", "", "\r\n"]));
    }
    s
}

/// Mutate the valid llttab line by line.
fn mutated_llttab(rng: &mut Rng) -> String {
    let mut lines: Vec<String> = VALID_TAB.lines().map(String::from).collect();
    for _ in 0..1 + rng.below(6) {
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let dup = lines[i].clone();
                lines.insert(i, dup);
            }
            2 => {
                // Replace one column.
                let mut words: Vec<String> = lines[i].split_whitespace().map(String::from).collect();
                if !words.is_empty() {
                    let w = rng.below(words.len());
                    words[w] = rng.pick(TOKENS).to_string();
                }
                lines[i] = words.join(" ");
            }
            3 => {
                // Drop a column.
                let mut words: Vec<&str> = lines[i].split_whitespace().collect();
                if !words.is_empty() {
                    words.remove(rng.below(words.len()));
                }
                lines[i] = words.join(" ");
            }
            4 => {
                // Truncate at a char boundary.
                let cut = rng.below(lines[i].len() + 1);
                let cut = (0..=cut).rev().find(|c| lines[i].is_char_boundary(*c)).unwrap_or(0);
                lines[i].truncate(cut);
            }
            5 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            _ => {
                let extra = rng.pick(TOKENS);
                lines[i].push(' ');
                lines[i].push_str(extra);
            }
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
    }
    lines.join(if rng.below(2) == 0 { "\n" } else { "\r\n" })
}

#[test]
fn fuzz_no_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let hosts = hosts();
    let mut ok = 0;
    for round in 0..6000 {
        let text = match round % 3 {
            0 => random_text(&mut rng),
            1 => random_token_text(&mut rng),
            _ => mutated_llttab(&mut rng),
        };
        let _ = config::parse_llthosts(Path::new("llthosts"), &text);
        if let Ok(cfg) = config::parse_llttab(Path::new("llttab"), &text, &hosts, &fake_iface) {
            // Whatever parses must respect the invariants the core relies on.
            assert!(!cfg.links.is_empty() && cfg.links.len() <= llt::MAX_LINKS);
            assert!(cfg.links.iter().enumerate().all(|(i, l)| usize::from(l.id) == i));
            assert!(!cfg.excluded.contains(&cfg.node_id));
            assert!(cfg.timers.validate().is_ok());
            ok += 1;
        }
    }
    // The mutations keep some files valid, so the Ok path is exercised too.
    assert!(ok > 100, "only {ok} inputs parsed");
}
