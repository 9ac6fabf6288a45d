//! LLT on real AF_PACKET sockets between network namespaces, with real
//! clusterd processes and real faults. Needs root.

use ha_tests::cluster::{node_name, StreamCheck};
use ha_tests::{with_deadline, wait_until, Cluster, ClusterSpec};
use llt::core::{DownReason, LinkAddr, LinkState};
use llt::ctl::{Request, Response, ServerMsg};
use std::time::{Duration, Instant};

const PORT: u8 = 7;

fn mac(c: &Cluster, i: usize, seg: usize) -> [u8; 6] {
    c.lab.mac(i, seg)
}

#[test]
fn three_nodes_discover_on_two_links_without_macs() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("disc", ClusterSpec::fast(3)).unwrap();
        for i in 1..=3 {
            let tab = std::fs::read_to_string(c.lab.root(i).join("etc/llttab")).unwrap();
            assert!(!tab.contains(':') || !tab.contains("00:"), "no MAC may be configured");
            let s = c.status(i).unwrap();
            for j in (1..=3).filter(|&j| j != i) {
                let p = s.peers.iter().find(|p| p.node as usize == j - 1).expect("peer known");
                assert!(p.open, "node {i} sees node {j} OPEN");
                for seg in 0..2 {
                    assert_eq!(p.links[seg].state, LinkState::Up);
                    assert_eq!(p.links[seg].addr, Some(LinkAddr::Mac(mac(&c, j, seg))), "learned MAC of node {j} on segment {seg}");
                }
            }
        }
    });
}

/// Heartbeats counted from a capture match the timers (0.5 s on
/// high-priority links, 1 s on low-priority ones), and tshark decodes them
/// as LLT with the right cluster and node ids.
#[test]
fn heartbeat_rate_matches_timers_and_tshark_decodes_llt() {
    with_deadline(Duration::from_secs(120), || {
        let mut spec = ClusterSpec::fast(2);
        spec.lowpri_last = true;
        spec.cluster_id = 0x1234;
        // Default VCS heartbeat timers; only the start-up wait is short.
        spec.timers = vec![("dupwait", 50)];
        let c = Cluster::start("hbrate", spec).unwrap();
        let hi = c.lab.capture(1, 0).unwrap();
        let lo = c.lab.capture(1, 1).unwrap();
        let window = Duration::from_secs(6);
        std::thread::sleep(window);
        let count = |cap: &ha_tests::Capture| {
            let frames = cap.frames().unwrap();
            frames
                .iter()
                .filter(|f| f.data.len() >= 14 + 44 && f.data[12..14] == [0xca, 0xfe] && f.data[14 + 3] == 0x0a)
                .filter(|f| f.data[6..12] == c.lab.mac(2, 0) || f.data[6..12] == c.lab.mac(2, 1))
                .filter(|f| f.data[0..6] == c.lab.mac(1, 0) || f.data[0..6] == c.lab.mac(1, 1))
                .count()
        };
        let (n_hi, n_lo) = (count(&hi), count(&lo));
        // 6 s at 0.5 s = 12 (+1 for the edges); at 1 s = 6.
        assert!((11..=13).contains(&n_hi), "high-priority heartbeats node2->node1 in 6 s: {n_hi}, expected 12");
        assert!((5..=7).contains(&n_lo), "low-priority heartbeats node2->node1 in 6 s: {n_lo}, expected 6");
        let pcap = hi.stop().unwrap();
        lo.stop().unwrap();
        let out = std::process::Command::new("tshark")
            .args(["-r", pcap.to_str().unwrap(), "-Y", "llt.message_type == 0x0a", "-T", "fields", "-e", "llt.cluster_num", "-e", "llt.node_id", "-e", "llt.message_type"])
            .output()
            .expect("tshark runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        assert!(rows.len() >= 20, "tshark decoded {} LLT heartbeats: {text}\n{}", rows.len(), String::from_utf8_lossy(&out.stderr));
        for r in &rows {
            assert_eq!(r.len(), 3, "row {r:?}");
            assert_eq!(r[0], "52", "cluster number is the low byte of 0x1234 (0x34 = 52): {r:?}");
            assert!(r[1] == "0" || r[1] == "1" || r[1] == "0x00" || r[1] == "0x01", "node id: {r:?}");
            assert!(r[2].ends_with('a') || r[2] == "10", "heartbeat type: {r:?}");
        }
        let nodes: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[1]).collect();
        assert_eq!(nodes.len(), 2, "heartbeats of both nodes decoded: {nodes:?}");
    });
}

#[test]
fn one_link_cut_goes_down_within_peerinact_and_data_keeps_flowing() {
    with_deadline(Duration::from_secs(120), || {
        let c = Cluster::start("cut", ClusterSpec::fast(3)).unwrap();
        let cut_at = Instant::now();
        c.lab.cut(2, 0).unwrap();
        wait_until("node1 sees eth1 to node2 DOWN", Duration::from_secs(6), || {
            (c.link_state(1, 1, 0).ok()? == LinkState::Down).then_some(())
        })
        .unwrap();
        let took = cut_at.elapsed();
        // peerinact is 2 s; status polling adds a little.
        assert!(took <= Duration::from_millis(2600), "link DOWN after {took:?}");
        assert!(took >= Duration::from_millis(1700), "link DOWN too early: {took:?}");
        assert!(c.is_open(1, 1).unwrap(), "node2 stays OPEN over eth2");
        assert_eq!(c.link_state(1, 1, 1).unwrap(), LinkState::Up);
        let rx = c.expect_stream(2, PORT, 0, 2000, Duration::from_secs(30)).unwrap();
        c.send_stream(1, PORT, 1, 2000, 300, || {}).unwrap();
        let got = rx.join().unwrap();
        assert!(got.perfect(2000), "{got:?}");
        c.lab.restore(2, 0).unwrap();
        c.wait_all_open(Duration::from_secs(10)).unwrap();
    });
}

fn tx_on(c: &Cluster, from: usize, peer: u8, link: usize) -> u64 {
    let s = c.status(from).unwrap();
    s.peers.iter().find(|p| p.node == peer).map_or(0, |p| p.links[link].tx_frames)
}

#[test]
fn low_priority_link_carries_data_only_while_high_priority_links_are_down() {
    with_deadline(Duration::from_secs(150), || {
        let mut spec = ClusterSpec::fast(2);
        spec.segments = 3;
        spec.lowpri_last = true;
        let c = Cluster::start("lowpri", spec).unwrap();
        let stream = |n: u64, base_port: u8| {
            let rx = c.expect_stream(2, base_port, 0, n, Duration::from_secs(30)).unwrap();
            c.send_stream(1, base_port, 1, n, 200, || {}).unwrap();
            let got: StreamCheck = rx.join().unwrap();
            assert!(got.perfect(n), "{got:?}");
        };
        // All up: the low-priority link carries heartbeats only.
        let (a0, b0, lo0) = (tx_on(&c, 1, 1, 0), tx_on(&c, 1, 1, 1), tx_on(&c, 1, 1, 2));
        stream(1000, 10);
        let (a1, b1, lo1) = (tx_on(&c, 1, 1, 0), tx_on(&c, 1, 1, 1), tx_on(&c, 1, 1, 2));
        assert!(lo1 - lo0 < 100, "low-priority link carried {} frames with high-priority links up", lo1 - lo0);
        assert!(a1 - a0 >= 400 && b1 - b0 >= 400, "traffic spread over both high-priority links: {} and {}", a1 - a0, b1 - b0);
        // Both high-priority links of node 2 cut: everything on the low one.
        c.lab.block(2, 0).unwrap();
        c.lab.block(2, 1).unwrap();
        wait_until("both high-priority links DOWN", Duration::from_secs(6), || {
            (c.link_state(1, 1, 0).ok()? == LinkState::Down && c.link_state(1, 1, 1).ok()? == LinkState::Down).then_some(())
        })
        .unwrap();
        assert!(c.is_open(1, 1).unwrap());
        let lo2 = tx_on(&c, 1, 1, 2);
        stream(1000, 20);
        let lo3 = tx_on(&c, 1, 1, 2);
        assert!(lo3 - lo2 >= 1000, "low-priority link carried only {} frames for 1000 messages", lo3 - lo2);
        // One high-priority link back: traffic leaves the low one at once.
        c.lab.unblock(2, 0).unwrap();
        wait_until("eth1 UP again", Duration::from_secs(5), || (c.link_state(1, 1, 0).ok()? == LinkState::Up).then_some(())).unwrap();
        let (hi4, lo4) = (tx_on(&c, 1, 1, 0), tx_on(&c, 1, 1, 2));
        stream(1000, 30);
        let (hi5, lo5) = (tx_on(&c, 1, 1, 0), tx_on(&c, 1, 1, 2));
        assert!(hi5 - hi4 >= 1000, "returned high-priority link carried {} frames", hi5 - hi4);
        assert!(lo5 - lo4 < 100, "low-priority link still carried {} frames", lo5 - lo4);
    });
}

#[test]
fn killed_daemon_is_down_on_the_others_within_peerinact() {
    with_deadline(Duration::from_secs(90), || {
        let mut c = Cluster::start("kill", ClusterSpec::fast(3)).unwrap();
        let mut w1 = c.bound(1, PORT).unwrap();
        let mut w2 = c.bound(2, PORT).unwrap();
        let killed_at = Instant::now();
        c.kill9(3).unwrap();
        for (who, w) in [(1, &mut w1), (2, &mut w2)] {
            w.stream().set_read_timeout(Some(Duration::from_secs(8))).unwrap();
            loop {
                match w.recv().unwrap_or_else(|e| panic!("node {who}: no peer-down event: {e}")) {
                    ServerMsg::PeerDown { peer: 2, reason } => {
                        assert_eq!(reason, DownReason::Inactive);
                        break;
                    }
                    _ => continue,
                }
            }
            let took = killed_at.elapsed();
            // peerinact 2 s after the last heartbeat (sent at most 0.1 s
            // before the kill); one 50 ms tick and scheduling slack.
            assert!(took <= Duration::from_millis(2000 + 50 + 250), "node {who}: peer down after {took:?}");
            assert!(took >= Duration::from_millis(1850), "node {who}: peer down too early: {took:?}");
        }
    });
}

#[test]
fn foreign_cluster_is_ignored_and_counted() {
    with_deadline(Duration::from_secs(90), || {
        let mut spec = ClusterSpec::fast(3);
        spec.nodes = 3;
        let mut c = Cluster::start("foreign", spec).unwrap();
        // Node 3 leaves and comes back as node 3 of cluster 43.
        c.kill9(3).unwrap();
        c.write_config(3, 2, 43).unwrap();
        c.restart(3).unwrap();
        let before = c.status(1).unwrap().stats.dropped_foreign_cluster;
        wait_until("node1 counts foreign frames", Duration::from_secs(5), || {
            (c.status(1).ok()?.stats.dropped_foreign_cluster > before + 10).then_some(())
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!c.is_open(1, 2).unwrap(), "node of cluster 43 must not be a peer");
        let s3 = c.status(3).unwrap();
        assert!(s3.peers.iter().all(|p| !p.open), "cluster 43 node sees no peer: {:?}", s3.peers);
        assert!(s3.stats.dropped_foreign_cluster > 0);
    });
}

#[test]
fn duplicate_node_id_is_refused() {
    with_deadline(Duration::from_secs(90), || {
        let mut spec = ClusterSpec::fast(3);
        spec.nodes = 3;
        let mut c = Cluster::start("dup", spec).unwrap();
        // Node 3 restarts claiming node 1's id (0).
        c.kill9(3).unwrap();
        c.write_config(3, 0, 42).unwrap();
        let clusterd = ha_tests::bin("clusterd").unwrap();
        let p = c.lab.spawn(3, "clusterd-dup", &[clusterd.to_str().unwrap()], &[]).unwrap();
        c.wait_socket(3, Duration::from_secs(5)).unwrap();
        let r = c.client(3).unwrap().request(Request::Configure).unwrap();
        match r {
            Response::Error(msg) => assert!(msg.contains("already used"), "{msg}"),
            r => panic!("duplicate id accepted: {r:?}"),
        }
        assert_eq!(c.status(3).unwrap().phase, None, "refused node stays unconfigured");
        let log1 = c.daemon(1).unwrap().stderr();
        assert!(log1.contains("DUPLICATE NODE ID"), "node 1 logs the duplicate loudly:\n{log1}");
        assert!(c.is_open(1, 1).unwrap() && c.is_open(2, 0).unwrap(), "the running cluster is undisturbed");
        drop(p);
    });
}

#[test]
fn ten_thousand_messages_with_30pct_loss_and_a_link_flap() {
    with_deadline(Duration::from_secs(180), || {
        let c = Cluster::start("loss", ClusterSpec::fast(2)).unwrap();
        c.lab.loss(2, 0, 30).unwrap();
        let rx = c.expect_stream(2, PORT, 0, 10_000, Duration::from_secs(90)).unwrap();
        c.send_stream(1, PORT, 1, 10_000, 200, || {
            // Flap the clean link for less than peerinact.
            c.lab.cut(1, 1).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            c.lab.restore(1, 1).unwrap();
        })
        .unwrap();
        let got = rx.join().unwrap();
        let s = c.status(1).unwrap();
        assert!(got.perfect(10_000), "{got:?}\nsender stats {:?}", s.stats);
        assert!(s.stats.snd_retransmit > 0, "30% loss must have caused retransmissions");
        assert!(s.stats.snd_would_block > 0, "the sender outran the window and was held back, not dropped: {:?}", s.stats);
        assert!(c.is_open(1, 1).unwrap(), "a flap shorter than peerinact keeps the peer");
    });
}

#[test]
fn large_messages_are_fragmented_and_reassembled() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("frag", ClusterSpec::fast(2)).unwrap();
        let rx = c.expect_stream(2, PORT, 0, 200, Duration::from_secs(30)).unwrap();
        c.send_stream(1, PORT, 1, 200, 20_000, || {}).unwrap();
        let got = rx.join().unwrap();
        assert!(got.perfect(200), "{got:?}");
    });
}

#[test]
fn timers_change_at_run_time_and_unconfigure_stops_links() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("timers", ClusterSpec::fast(2)).unwrap();
        let mut cl = c.client(1).unwrap();
        match cl.request(Request::SetTimer { name: "peerinact".into(), value: 300 }).unwrap() {
            Response::Timers(t) => assert_eq!(t.peerinact, 300),
            r => panic!("{r:?}"),
        }
        match cl.request(Request::SetTimer { name: "peerinact".into(), value: 5 }).unwrap() {
            Response::Error(e) => assert!(e.contains("peertrouble"), "{e}"),
            r => panic!("inconsistent timers accepted: {r:?}"),
        }
        assert_eq!(cl.request(Request::Unconfigure).unwrap(), Response::Ok);
        assert_eq!(c.status(1).unwrap().phase, None);
        wait_until("node2 loses node1", Duration::from_secs(5), || (!c.is_open(2, 0).ok()?).then_some(())).unwrap();
        match cl.request(Request::Configure).unwrap() {
            Response::Ok => {}
            r => panic!("reconfigure: {r:?}"),
        }
        c.wait_all_open(Duration::from_secs(10)).unwrap();
        let _ = node_name(1);
    });
}

/// Node 2's frames on eth1 no longer reach node 1, node 1's still reach
/// node 2: node 1 marks eth1 DOWN, its heartbeats tell node 2 so, and node 2
/// stops sending data on eth1 (no retransmission storm).
#[test]
fn one_way_drop_moves_data_off_the_deaf_link() {
    with_deadline(Duration::from_secs(120), || {
        let c = Cluster::start("oneway", ClusterSpec::fast(2)).unwrap();
        c.lab.drop_one_way(2, 1, 0, 100).unwrap();
        wait_until("node1 sees eth1 to node2 DOWN", Duration::from_secs(6), || (c.link_state(1, 1, 0).ok()? == LinkState::Down).then_some(())).unwrap();
        assert_eq!(c.link_state(2, 0, 0).unwrap(), LinkState::Up, "node2 still hears node1 on eth1");
        // Node 1's next heartbeat on eth1 tells node 2 (on a loaded machine
        // it can come late: data sent before that goes to eth1 too).
        wait_until("node2 learns that node1 does not hear it on eth1", Duration::from_secs(6), || {
            let s = c.status(2).ok()?;
            (!s.peers.iter().find(|p| p.node == 0)?.links[0].hears_us).then_some(())
        })
        .unwrap();
        // Frames node 2 sent to node 1 on (deaf eth1, healthy eth2), and
        // its retransmissions. Per link, not retransmissions alone: on a
        // starved CPU acks come late and some retransmissions are honest,
        // but they must still avoid the deaf link.
        let sent = || {
            let s = c.status(2).unwrap();
            let p = s.peers.iter().find(|p| p.node == 0).unwrap().clone();
            (p.links[0].tx_frames, p.links[1].tx_frames, s.stats.snd_retransmit)
        };
        let before = sent();
        let rx = c.expect_stream(1, PORT, 1, 3000, Duration::from_secs(30)).unwrap();
        c.send_stream(2, PORT, 0, 3000, 200, || {}).unwrap();
        let got = rx.join().unwrap();
        assert!(got.perfect(3000), "{got:?}");
        let after = sent();
        let (deaf, healthy, rexmit) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
        // Heartbeats still go to the deaf link (that is how it comes back):
        // about as many as the healthy link's, never the data.
        assert!(
            deaf * 10 < healthy,
            "deaf eth1 carried {deaf} frames, healthy eth2 {healthy} ({rexmit} retransmissions): data still went to the deaf link"
        );
    });
}

#[test]
fn isolated_node_goes_down_everywhere_and_comes_back() {
    with_deadline(Duration::from_secs(120), || {
        let c = Cluster::start("isol", ClusterSpec::fast(3)).unwrap();
        c.lab.isolate(3).unwrap();
        wait_until("isolation seen on every node", Duration::from_secs(6), || {
            (!c.is_open(1, 2).ok()? && !c.is_open(2, 2).ok()? && !c.is_open(3, 0).ok()? && !c.is_open(3, 1).ok()?).then_some(())
        })
        .unwrap();
        assert!(c.is_open(1, 1).unwrap(), "the other two keep each other");
        c.lab.clear_faults().unwrap();
        c.wait_all_open(Duration::from_secs(10)).unwrap();
        let rx = c.expect_stream(3, PORT, 0, 500, Duration::from_secs(20)).unwrap();
        c.send_stream(1, PORT, 2, 500, 100, || {}).unwrap();
        assert!(rx.join().unwrap().perfect(500));
    });
}

#[test]
fn udp_links_discover_by_broadcast_and_carry_data() {
    with_deadline(Duration::from_secs(120), || {
        let mut spec = ClusterSpec::fast(3);
        spec.udp = true;
        let c = Cluster::start("udp", spec).unwrap();
        let s = c.status(1).unwrap();
        let p = s.peers.iter().find(|p| p.node == 1).unwrap();
        assert_eq!(p.links[0].addr, Some(LinkAddr::Ip(std::net::SocketAddr::new(c.lab.ip(2, 0).into(), 50000))));
        c.lab.cut(2, 0).unwrap();
        let rx = c.expect_stream(2, PORT, 0, 2000, Duration::from_secs(30)).unwrap();
        c.send_stream(1, PORT, 1, 2000, 1000, || {}).unwrap();
        assert!(rx.join().unwrap().perfect(2000));
        wait_until("udp0 to node2 DOWN", Duration::from_secs(6), || (c.link_state(1, 1, 0).ok()? == LinkState::Down).then_some(())).unwrap();
        assert!(c.is_open(1, 1).unwrap());
    });
}

/// The operator commands against live daemons: VCS shapes, -json, the echo
/// service, and the one-line error of a stopped daemon.
#[test]
fn commands_show_a_live_cluster() {
    with_deadline(Duration::from_secs(120), || {
        let mut c = Cluster::start("cmds", ClusterSpec::fast(3)).unwrap();
        let b = |n: &str| ha_tests::bin(n).unwrap().to_string_lossy().into_owned();
        let (lltstat, lltconfig, lltmsg) = (b("lltstat"), b("lltconfig"), b("lltmsg"));
        let nvv = c.lab.exec_ok(1, &[&lltstat, "-nvv"]).unwrap();
        assert!(nvv.starts_with("LLT node information:"), "{nvv}");
        assert!(nvv.contains("* 0 node1"), "{nvv}");
        assert!(nvv.contains("02:00:00:00:0A:02") && nvv.contains("02:00:00:00:0B:03"), "peer MACs shown:\n{nvv}");
        assert_eq!(nvv.matches("OPEN").count(), 3, "{nvv}");
        let n = c.lab.exec_ok(2, &[&lltstat, "-n"]).unwrap();
        assert!(n.lines().any(|l| l.contains("0 node1") && l.contains("OPEN") && l.trim_end().ends_with('2')), "{n}");
        let json: serde_json::Value = serde_json::from_str(&c.lab.exec_ok(1, &[&lltstat, "-nvv", "-json"]).unwrap()).unwrap();
        assert_eq!(json["node_name"], "node1");
        let stats = c.lab.exec_ok(1, &[&lltstat]).unwrap();
        assert!(stats.contains("Snd heartbeat packets") && stats.contains("Dropped foreign cluster"), "{stats}");
        let timers = c.lab.exec_ok(1, &[&lltconfig, "-T", "query"]).unwrap();
        assert!(timers.contains("peerinact   = 200"), "{timers}");
        c.lab.exec_ok(1, &[&lltconfig, "-T", "peerinact:250"]).unwrap();
        assert!(c.lab.exec_ok(1, &[&lltconfig, "-T", "query"]).unwrap().contains("peerinact   = 250"));
        let list = c.lab.exec_ok(1, &[&lltconfig, "-a", "list"]).unwrap();
        assert!(list.contains("Link 0 (eth1)") && list.contains("02:00:00:00:0A:03"), "{list}");
        assert_eq!(c.lab.exec_ok(1, &[&lltconfig]).unwrap().trim(), "LLT is running");
        let ping: serde_json::Value = serde_json::from_str(c.lab.exec_ok(1, &[&lltmsg, "dping", "--to", "2", "--count", "200"]).unwrap().trim()).unwrap();
        assert_eq!(ping["count"], 200);
        assert!(ping["p50_us"].as_f64().unwrap() > 0.0);
        c.kill9(3).unwrap();
        let out = c.lab.exec(3, &[&lltstat, "-nvv"]).unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("lltstat: ") && err.contains("llt.sock"), "{err}");
    });
}

/// A bad llttab is refused with file:line by `lltconfig -c`; a good one
/// then starts; SIGTERM stops the daemon cleanly and removes its socket.
#[test]
fn bad_llttab_is_refused_with_file_and_line_and_sigterm_stops_cleanly() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("badtab", ClusterSpec::fast(2)).unwrap();
        let lltconfig = ha_tests::bin("lltconfig").unwrap().to_string_lossy().into_owned();
        c.lab.exec_ok(2, &[&lltconfig, "-U"]).unwrap();
        let tab = c.lab.root(2).join("etc/llttab");
        let good = std::fs::read_to_string(&tab).unwrap();
        std::fs::write(&tab, format!("{good}link eth9 eth9 - ether - -\nset-timer peerinact:abc\n")).unwrap();
        let out = c.lab.exec(2, &[&lltconfig, "-c"]).unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let n = good.lines().count();
        assert!(err.contains(&format!("llttab:{}:", n + 1)) && err.contains("eth9"), "unknown interface with its line:\n{err}");
        assert!(err.contains(&format!("llttab:{}:", n + 2)), "bad number with its line, in the same pass:\n{err}");
        std::fs::write(&tab, good).unwrap();
        c.lab.exec_ok(2, &[&lltconfig, "-c"]).unwrap();
        c.wait_all_open(Duration::from_secs(10)).unwrap();
        let d = c.daemon(1).unwrap();
        d.sigterm().unwrap();
        let st = d.wait_exit(Duration::from_secs(5)).expect("clusterd exits on SIGTERM");
        assert!(st.success(), "clean exit: {st:?}");
        assert!(!c.socket(1).exists(), "socket removed");
        assert!(d.stderr().contains("clusterd stopping (SIGTERM)"));
    });
}

#[test]
fn udp_links_with_set_addr_peers_and_no_broadcast() {
    with_deadline(Duration::from_secs(90), || {
        let mut spec = ClusterSpec::fast(3);
        spec.udp = true;
        spec.udp_set_addr = true;
        let c = Cluster::start("udpaddr", spec).unwrap();
        let tab = std::fs::read_to_string(c.lab.root(1).join("etc/llttab")).unwrap();
        assert!(tab.contains("set-addr 1 udp0") && !tab.contains(".255"), "{tab}");
        let rx = c.expect_stream(3, PORT, 0, 1000, Duration::from_secs(20)).unwrap();
        c.send_stream(1, PORT, 2, 1000, 500, || {}).unwrap();
        assert!(rx.join().unwrap().perfect(1000));
    });
}
