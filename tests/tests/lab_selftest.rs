//! Self-test of the network lab harness (needs root):
//! `cargo test -p ha-tests --test lab_selftest`.
//!
//! Every test body runs under `with_deadline`, and every lab is dropped at
//! the end of its body (also on panic), so no namespace outlives a test.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use ha_tests::{
    read_pcap, sweep_stale, wait_until, with_deadline, Lab, LabSpec, BROADCAST, ETH_P_ALL,
    ETH_P_LLT, ETH_P_PROBE,
};

const DEADLINE: Duration = Duration::from_secs(120);
/// Wait when a frame is expected: it normally arrives in microseconds.
const YES: Duration = Duration::from_secs(2);
/// Wait when no frame is expected: the price of every negative check.
const NO: Duration = Duration::from_millis(300);

fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// (from, to, segment)
type Path3 = (usize, usize, usize);

fn reach(lab: &Lab, from: usize, to: usize, seg: usize) -> Result<bool> {
    lab.l2_reachable(from, to, seg, YES)
}

/// Every ordered pair of distinct nodes on every segment.
fn all_paths(lab: &Lab) -> Vec<Path3> {
    let n = lab.nodes();
    (0..lab.segments())
        .flat_map(|s| {
            (1..=n).flat_map(move |a| (1..=n).filter(move |&b| b != a).map(move |b| (a, b, s)))
        })
        .collect()
}

/// Paths that involve node `i` on `seg`, in both directions.
fn touching(lab: &Lab, i: usize, seg: usize) -> Vec<Path3> {
    all_paths(lab)
        .into_iter()
        .filter(|&(a, b, s)| s == seg && (a == i || b == i))
        .collect()
}

/// Checks that exactly the paths in `cut` are broken: frames on them do not
/// arrive, every other path of the lab works.
fn expect_cut(lab: &Lab, cut: &[Path3], what: &str) -> Result<()> {
    let leaked: Vec<Path3> = cut
        .iter()
        .zip(lab.l2_probe(cut, NO)?)
        .filter(|(_, r)| *r)
        .map(|(p, _)| *p)
        .collect();
    ensure!(
        leaked.is_empty(),
        "{what}: frames still pass on {leaked:?}\n{}",
        lab.show()
    );
    let ok: Vec<Path3> = all_paths(lab)
        .into_iter()
        .filter(|p| !cut.contains(p))
        .collect();
    let broken: Vec<Path3> = ok
        .iter()
        .zip(lab.l2_probe(&ok, YES)?)
        .filter(|(_, r)| !*r)
        .map(|(p, _)| *p)
        .collect();
    ensure!(
        broken.is_empty(),
        "{what}: paths that should work are broken: {broken:?}\n{}",
        lab.show()
    );
    Ok(())
}

/// Every ordered pair of nodes reaches each other on every segment.
fn full_mesh(lab: &Lab) -> Result<()> {
    expect_cut(lab, &[], "full mesh")
}

/// Is the process still running? (Gone or a zombie counts as dead.)
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

fn ns_inode(ns: &str) -> u64 {
    std::fs::metadata(Path::new("/run/netns").join(ns))
        .map(|m| m.ino())
        .unwrap_or(0)
}

#[test]
fn lab_builds_quiet_isolated_segments_with_l2_and_ipv4() {
    with_deadline(DEADLINE, || -> Result<()> {
        let lab = Lab::new("build", LabSpec::default())?;
        let listed = netns_list();
        for ns in lab.namespaces() {
            ensure!(
                listed.contains(&ns),
                "namespace {ns} not in `ip netns list`: {listed:?}"
            );
        }

        // IPv6 is off, so an idle segment is completely silent (no RS, MLD, DAD).
        let sniff = lab.raw_socket(1, 0, ETH_P_ALL)?;
        if let Some(f) = sniff.recv(Duration::from_millis(500))? {
            anyhow::bail!("idle segment not silent: got {:02x?}", f.data);
        }

        for i in 1..=lab.nodes() {
            let out = lab.exec_ok(
                i,
                &[
                    "sh",
                    "-c",
                    "cat /sys/class/net/eth1/address /sys/class/net/eth2/address \
                     /proc/sys/net/ipv6/conf/eth1/disable_ipv6 /sys/class/net/eth1/mtu; \
                     echo $HA_ROOT; pwd",
                ],
            )?;
            let lines: Vec<&str> = out.lines().collect();
            let mac = |seg| {
                lab.mac(i, seg)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            };
            ensure!(
                lines[0] == mac(0) && lines[1] == mac(1),
                "node {i} MACs {lines:?}"
            );
            ensure!(lines[2] == "1", "node {i}: IPv6 not disabled on eth1");
            ensure!(lines[3] == "1500", "node {i}: eth1 mtu {}", lines[3]);
            let root = lab.root(i).to_str().unwrap();
            ensure!(
                lines[4] == root && lines[5] == root,
                "node {i}: HA_ROOT/cwd {lines:?}, want {root}"
            );
            for sub in ["etc", "run", "log"] {
                ensure!(
                    lab.root(i).join(sub).is_dir(),
                    "node {i}: no {sub}/ in root"
                );
            }
        }

        full_mesh(&lab)?;

        // Segments are separate broadcast domains: a broadcast on segment 0
        // reaches node 2's eth1 but not its eth2.
        let tx = lab.raw_socket(1, 0, ETH_P_PROBE)?;
        let rx_a = lab.raw_socket(2, 0, ETH_P_PROBE)?;
        let rx_b = lab.raw_socket(2, 1, ETH_P_PROBE)?;
        tx.send_to(BROADCAST, b"seg-a-broadcast")?;
        let got = rx_a
            .recv_matching(b"seg-a-broadcast", YES)?
            .context("broadcast lost on segment 0")?;
        ensure!(
            got.src() == lab.mac(1, 0) && got.pkttype == libc::PACKET_BROADCAST,
            "odd frame {got:?}"
        );
        ensure!(
            rx_b.recv_matching(b"seg-a-broadcast", NO)?.is_none(),
            "segment 0 broadcast leaked into segment 1"
        );

        // IPv4 over each segment: unicast 1 -> 2 and broadcast 1 -> 3.
        for seg in 0..lab.segments() {
            let (ip1, ip2) = (lab.ip(1, seg), lab.ip(2, seg));
            let bcast = lab.bcast(seg);
            let rx = lab.in_node(2, move || UdpSocket::bind((ip2, 5400)))?;
            let brx = lab.in_node(3, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 5401)))?;
            let tx = lab.in_node(1, move || {
                let s = UdpSocket::bind((ip1, 0))?;
                s.set_broadcast(true)?;
                Ok(s)
            })?;
            rx.set_read_timeout(Some(YES))?;
            brx.set_read_timeout(Some(YES))?;
            tx.send_to(b"udp-unicast", (ip2, 5400))?;
            tx.send_to(b"udp-broadcast", (bcast, 5401))?;
            let mut buf = [0u8; 64];
            let (n, from) = rx
                .recv_from(&mut buf)
                .with_context(|| format!("UDP unicast on seg {seg}"))?;
            ensure!(
                &buf[..n] == b"udp-unicast" && from.ip() == ip1,
                "seg {seg}: got {n} bytes from {from}"
            );
            let (n, from) = brx
                .recv_from(&mut buf)
                .with_context(|| format!("UDP broadcast on seg {seg}"))?;
            ensure!(
                &buf[..n] == b"udp-broadcast" && from.ip() == ip1,
                "seg {seg}: got {n} bytes from {from}"
            );
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn faults_stop_traffic_and_undo_brings_it_back() {
    with_deadline(DEADLINE, || -> Result<()> {
        let lab = Lab::new("faults", LabSpec::default())?;
        let carrier = |i: usize| -> Result<String> {
            Ok(lab
                .exec_ok(i, &["cat", "/sys/class/net/eth1/carrier"])?
                .trim()
                .to_string())
        };

        full_mesh(&lab)?;

        // cut: carrier loss on node 2 seg 0 only.
        lab.cut(2, 0)?;
        expect_cut(&lab, &touching(&lab, 2, 0), "cut 2/0")?;
        ensure!(carrier(2)? == "0", "cut should drop node 2's carrier");
        lab.restore(2, 0)?;
        expect_cut(&lab, &[], "restore 2/0")?;

        // block: silent, carrier stays up.
        lab.block(2, 0)?;
        expect_cut(&lab, &touching(&lab, 2, 0), "block 2/0")?;
        ensure!(carrier(2)? == "1", "block must keep the carrier up");
        lab.unblock(2, 0)?;
        expect_cut(&lab, &[], "unblock 2/0")?;

        // ifdown: node-side admin down (sends fail with ENETDOWN).
        lab.ifdown(1, 1)?;
        expect_cut(&lab, &touching(&lab, 1, 1), "ifdown 1/1")?;
        lab.ifup(1, 1)?;
        expect_cut(&lab, &[], "ifup 1/1")?;

        // drop_one_way: only 1 -> 2 on seg 0; 2 -> 1 still works.
        let rule = lab.drop_one_way(1, 2, 0, 100)?;
        expect_cut(&lab, &[(1, 2, 0)], "drop 1->2 seg 0")?;
        ensure!(
            lab.rule_hits(&rule)? > 0,
            "rule counter did not count the dropped probes"
        );
        lab.remove_rule(&rule)?;
        expect_cut(&lab, &[], "rule removed")?;

        // isolate: node 3 neither hears nor is heard, on every segment.
        lab.isolate(3)?;
        let mut cut = touching(&lab, 3, 0);
        cut.extend(touching(&lab, 3, 1));
        expect_cut(&lab, &cut, "isolate 3")?;
        ensure!(carrier(3)? == "1", "isolate must keep the carrier up");

        // clear_faults undoes everything at once, including a cut and a block.
        lab.cut(1, 0)?;
        lab.block(2, 1)?;
        lab.ifdown(2, 0)?;
        lab.drop_one_way(2, 1, 1, 100)?;
        lab.clear_faults()?;
        full_mesh(&lab)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn random_loss_drops_some_frames_but_not_all() {
    with_deadline(DEADLINE, || -> Result<()> {
        let lab = Lab::new(
            "loss",
            LabSpec {
                nodes: 2,
                segments: 1,
                mtu: 1500,
            },
        )?;
        let rules = lab.loss(2, 0, 50)?;
        let tx = lab.raw_socket(1, 0, ETH_P_PROBE)?;
        let rx = lab.raw_socket(2, 0, ETH_P_PROBE)?;
        const N: u64 = 400;
        let mut sent = 0u64;
        for k in 0..N {
            let payload = format!("loss {k}");
            // ENOBUFS: the receiving CPU's backlog is full (parallel tests on
            // 2 cores); such a frame never reaches the bridge. Back off and retry.
            for _ in 0..1000 {
                match tx.send_to(lab.mac(2, 0), payload.as_bytes()) {
                    Ok(()) => {
                        sent += 1;
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        ensure!(sent == N, "only {sent} of {N} frames could be sent");
        let mut got = 0u64;
        while rx.recv_matching(b"loss ", NO)?.is_some() {
            got += 1;
        }
        // Binomial(400, 0.5): 200 +- 10; outside 100..300 is > 10 sigma.
        ensure!(
            (100..300).contains(&got),
            "50% loss let {got} of {N} frames through"
        );
        // Frames 1 -> 2 match only the "to 2" rule; it counts exactly the lost ones.
        let dropped = lab.rule_hits(&rules[1])?;
        ensure!(
            got + dropped == N,
            "received {got} + dropped {dropped} != sent {N}"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn capture_records_llt_frames_only() {
    with_deadline(DEADLINE, || -> Result<()> {
        let lab = Lab::new("capture", LabSpec::default())?;
        let cap = lab.capture(2, 0)?;
        let llt = lab.raw_socket(1, 0, ETH_P_LLT)?;
        let other = lab.raw_socket(1, 0, ETH_P_PROBE)?;
        for k in 0..5 {
            llt.send_to(BROADCAST, format!("cafe {k}").as_bytes())?;
            other.send_to(BROADCAST, b"not llt")?;
        }
        // Wait for what we sent before stopping: frames still queued in the
        // kernel when tcpdump stops are not written.
        cap.wait_frames(5, Duration::from_secs(10))?;
        let path = cap.stop()?;
        let frames = read_pcap(&path)?;
        ensure!(
            frames.len() == 5,
            "expected 5 LLT frames, pcap has {}",
            frames.len()
        );
        for (k, f) in frames.iter().enumerate() {
            ensure!(
                f.ethertype() == ETH_P_LLT,
                "frame {k} ethertype {:#06x}",
                f.ethertype()
            );
            ensure!(
                f.src() == lab.mac(1, 0) && f.dst() == BROADCAST,
                "frame {k} addresses"
            );
            ensure!(
                f.payload().starts_with(format!("cafe {k}").as_bytes()),
                "frame {k} payload"
            );
        }
        // The file is a real pcap for the standard tools too.
        if Path::new("/usr/bin/tshark").exists() {
            let out = Command::new("tshark")
                .args([
                    "-r",
                    path.to_str().unwrap(),
                    "-T",
                    "fields",
                    "-e",
                    "eth.type",
                ])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            ensure!(
                text.lines().count() == 5 && text.lines().all(|l| l == "0xcafe"),
                "tshark reads: {text}"
            );
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn exec_and_spawn_run_inside_the_node() {
    with_deadline(DEADLINE, || -> Result<()> {
        let lab = Lab::new(
            "procs",
            LabSpec {
                nodes: 2,
                segments: 1,
                mtu: 1500,
            },
        )?;
        let node_ino = ns_inode(&lab.node_ns(2));

        // exec runs in the node's network namespace.
        let out = lab.exec_ok(2, &["readlink", "/proc/self/ns/net"])?;
        ensure!(
            out.trim() == format!("net:[{node_ino}]"),
            "exec ran in {out}, want inode {node_ino}"
        );

        // Failing commands report their stderr; hung ones are killed at the deadline.
        let err = lab
            .exec_ok(2, &["sh", "-c", "echo boom >&2; exit 3"])
            .unwrap_err();
        ensure!(
            format!("{err:#}").contains("boom"),
            "error lacks stderr: {err:#}"
        );
        let t0 = Instant::now();
        let err = lab
            .exec_with(2, &["sleep", "30"], &[], Duration::from_millis(300))
            .unwrap_err();
        ensure!(
            t0.elapsed() < Duration::from_secs(5),
            "exec deadline not enforced"
        );
        ensure!(
            format!("{err:#}").contains("did not finish"),
            "timeout error: {err:#}"
        );

        // spawn: logs to root/log, environment passed, running in the node.
        let p = lab.spawn(
            2,
            "daemon",
            &[
                "sh",
                "-c",
                "echo started $FOO $HA_ROOT; echo warn >&2; exec sleep 1000",
            ],
            &[("FOO", "bar")],
        )?;
        let want = format!("started bar {}", lab.root(2).display());
        wait_until("daemon to log", YES, || {
            p.stdout().contains(&want).then_some(())
        })?;
        ensure!(p.stderr().trim() == "warn", "stderr {:?}", p.stderr());
        ensure!(
            p.stdout_path().starts_with(lab.root(2).join("log")),
            "log at {}",
            p.stdout_path().display()
        );
        let ns = std::fs::read_link(format!("/proc/{}/ns/net", p.pid()))?;
        ensure!(
            ns.to_string_lossy() == format!("net:[{node_ino}]"),
            "spawned process in {ns:?}"
        );
        ensure!(p.is_running(), "daemon exited early:\n{}", p.log_tail(10));
        p.sigterm()?;
        let st = p.wait_exit(YES).context("daemon ignored SIGTERM")?;
        ensure!(st.signal() == Some(libc::SIGTERM), "daemon exit {st}");

        let q = lab.spawn(1, "victim", &["sleep", "1000"], &[])?;
        q.kill9()?;
        let st = q
            .wait_exit(YES)
            .context("SIGKILL did not end the process")?;
        ensure!(st.signal() == Some(libc::SIGKILL), "victim exit {st}");
        ensure!(
            q.kill9().is_err(),
            "signalling a reaped process must fail, not hit a reused pid"
        );

        // A restarted process appends to the same log; its handle shows its own part.
        let a = lab.spawn(1, "again", &["echo", "first"], &[])?;
        a.wait_exit(YES).context("first run")?;
        let b = lab.spawn(1, "again", &["echo", "second"], &[])?;
        b.wait_exit(YES).context("second run")?;
        ensure!(b.stdout() == "second\n", "second run sees {:?}", b.stdout());
        ensure!(
            std::fs::read_to_string(b.stdout_path())? == "first\nsecond\n",
            "log not appended"
        );
        ensure!(
            lab.procs().len() == 4,
            "lab tracks {} processes",
            lab.procs().len()
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn drop_removes_everything_even_when_the_test_panics() {
    with_deadline(DEADLINE, || -> Result<()> {
        // Normal drop.
        let lab = Lab::new(
            "dropok",
            LabSpec {
                nodes: 2,
                segments: 1,
                mtu: 1500,
            },
        )?;
        let (names, dir) = (lab.namespaces(), lab.dir().to_path_buf());
        let p = lab.spawn(1, "sleeper", &["sleep", "1000"], &[])?.pid();
        drop(lab);
        let listed = netns_list();
        ensure!(
            names.iter().all(|n| !listed.contains(n)),
            "namespaces left after drop: {listed:?}"
        );
        ensure!(
            !dir.exists() && !alive(p),
            "directory or process left after drop"
        );

        // Drop while unwinding from a panic in the test body, with a spawned
        // process and a background process the test left behind via exec.
        let (tx, rx) = mpsc::channel();
        let r = std::panic::catch_unwind(move || {
            let lab = Lab::new("panic", LabSpec::default()).unwrap();
            let spawned = lab
                .spawn(1, "sleeper", &["sleep", "1000"], &[])
                .unwrap()
                .pid();
            let out = lab
                .exec_ok(2, &["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"])
                .unwrap();
            let orphan: u32 = out.trim().parse().unwrap();
            tx.send((lab.namespaces(), lab.dir().to_path_buf(), spawned, orphan))
                .unwrap();
            panic!("deliberate panic with a live lab");
        });
        ensure!(r.is_err(), "the body should have panicked");
        let (names, dir, spawned, orphan) = rx.recv()?;
        let listed = netns_list();
        ensure!(
            names.iter().all(|n| !listed.contains(n)),
            "namespaces left after panic: {listed:?}"
        );
        ensure!(!dir.exists(), "{} left after panic", dir.display());
        ensure!(!alive(spawned), "spawned process {spawned} survived");
        // The orphan was SIGKILLed; its new parent reaps it in its own time.
        wait_until("the orphaned background process to die", YES, || {
            (!alive(orphan)).then_some(())
        })?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn with_deadline_tears_down_the_labs_of_a_hung_test() {
    let (names_tx, names_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let r = std::panic::catch_unwind(move || {
        with_deadline(Duration::from_secs(3), move || {
            let lab = Lab::new(
                "hung",
                LabSpec {
                    nodes: 2,
                    segments: 1,
                    mtu: 1500,
                },
            )
            .unwrap();
            names_tx
                .send((lab.namespaces(), lab.dir().to_path_buf()))
                .unwrap();
            // "Hang" until the outer test has checked the teardown.
            let _ = release_rx.recv();
            drop(lab); // second teardown: must be harmless
        })
    });
    assert!(r.is_err(), "with_deadline should panic on a hung body");
    let (names, dir) = names_rx.recv().unwrap();
    let listed = netns_list();
    assert!(
        names.iter().all(|n| !listed.contains(n)),
        "hung test's namespaces not torn down: {listed:?}"
    );
    assert!(!dir.exists(), "hung test's directory not removed");
    drop(release_tx);
}

#[test]
fn parallel_labs_do_not_collide() {
    with_deadline(DEADLINE, || -> Result<()> {
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|k| {
                    s.spawn(move || -> Result<String> {
                        let mtu = if k == 0 { 9000 } else { 1500 };
                        let lab = Lab::new(
                            "par",
                            LabSpec {
                                nodes: 2,
                                segments: 1,
                                mtu,
                            },
                        )?;
                        ensure!(
                            reach(&lab, 1, 2, 0)? && reach(&lab, 2, 1, 0)?,
                            "lab {} broken",
                            lab.id()
                        );
                        let m = lab.exec_ok(1, &["cat", "/sys/class/net/eth1/mtu"])?;
                        ensure!(m.trim() == mtu.to_string(), "mtu {m}");
                        Ok(lab.id().to_string())
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("lab thread panicked"))
                .collect::<Result<Vec<_>>>()
        })?;
        let mut uniq = ids.clone();
        uniq.sort();
        uniq.dedup();
        ensure!(uniq.len() == ids.len(), "lab ids collide: {ids:?}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn sweep_removes_only_labs_of_dead_processes() {
    with_deadline(DEADLINE, || -> Result<()> {
        // A pid that certainly existed and is now gone.
        let mut c = Command::new("true").spawn()?;
        let dead = c.id();
        c.wait()?;
        let stale = format!("ht_{dead}_0_fake_sw");
        let live = format!("ht_{}_99999_keep_sw", std::process::id());
        let stale_dir = std::env::temp_dir()
            .join("ha-lab")
            .join(format!("ht_{dead}_0_fake"));
        std::fs::create_dir_all(&stale_dir)?;
        for ns in [&stale, &live] {
            let st = Command::new("ip").args(["netns", "add", ns]).status()?;
            ensure!(st.success(), "ip netns add {ns}");
        }
        let swept = sweep_stale("ht");
        let listed = netns_list();
        let _ = Command::new("ip").args(["netns", "del", &live]).status();
        swept?;
        // (A concurrent Lab::new may have swept it first; either way it is gone.)
        ensure!(
            !listed.contains(&stale),
            "stale namespace survived the sweep"
        );
        ensure!(
            !stale_dir.exists(),
            "stale lab directory survived the sweep"
        );
        ensure!(
            listed.contains(&live),
            "sweep deleted a namespace of a live process"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn bin_explains_how_to_build_missing_binaries() {
    let err = ha_tests::bin("no-such-ha-binary").unwrap_err().to_string();
    assert!(err.contains("cargo build --workspace --bins"), "{err}");
}
