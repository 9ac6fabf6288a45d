//! GAB inside real clusterd processes over real LLT links between network
//! namespaces: seeding, memberships and generations, atomic broadcast seen
//! through real clients, jeopardy, hung clients. Needs root.

use gab::ctl::{GabClientMsg, GabRequest, GabResponse, GabServerMsg};
use ha_tests::{with_deadline, wait_until, Cluster, ClusterSpec};
use std::time::{Duration, Instant};

const A: u8 = b'a';

/// Fast LLT timers (2 s peerinact) and a short stable timeout for tests.
fn spec(nodes: usize) -> ClusterSpec {
    ClusterSpec::fast(nodes)
}

fn ids(n: usize) -> Vec<u8> {
    (0..n as u8).collect()
}

/// `gabconfig -c -n 3` on two of three nodes forms nothing; the third
/// seeds the cluster and all three agree on one generation.
#[test]
fn seeding_waits_for_n_then_all_agree() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("gseed", spec(3)).unwrap();
        c.gab_start(1, 3).unwrap();
        c.gab_start(2, 3).unwrap();
        // Hellos go out at once and every second: 2.5 s is plenty for the
        // two to see each other, and still they must not seed.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(2500) {
            for i in [1, 2] {
                let s = c.gab_status(i).unwrap();
                assert!(s.configured && !s.seeded, "node {i} seeded with 2 of 3: {s:?}");
                assert!(s.ports.is_empty(), "node {i} formed a membership before seeding: {:?}", s.ports);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        c.gab_start(3, 3).unwrap();
        let gen = c.wait_port(&[1, 2, 3], A, &ids(3), Duration::from_secs(10)).unwrap();
        assert_ne!(gen, 0);
        // `gabconfig -a` in the VCS shape, the same line on every node.
        let mut lines = Vec::new();
        for i in 1..=3 {
            let out = c.gabconfig(i, &["-a"]).unwrap();
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(text.starts_with("GAB Port Memberships\n====="), "{text}");
            let line = text.lines().find(|l| l.starts_with("Port a gen")).unwrap_or_else(|| panic!("no port a line: {text}")).to_string();
            assert_eq!(line, format!("Port a gen {:>8x} membership 012", gen & 0xffff_ffff));
            lines.push(line);
        }
        assert!(lines.windows(2).all(|w| w[0] == w[1]));
    });
}

/// `gabconfig -x` seeds by hand; a node started afterwards joins the
/// running membership without -x, and `-U` leaves it.
#[test]
fn manual_seed_late_join_and_unconfigure() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("gx", spec(3)).unwrap();
        c.gab_start(1, 3).unwrap();
        c.gab_start(2, 3).unwrap();
        let out = c.gabconfig(1, &["-x"]).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let g1 = c.wait_port(&[1, 2], A, &[0, 1], Duration::from_secs(10)).unwrap();
        c.gab_start(3, 3).unwrap();
        let g2 = c.wait_port(&[1, 2, 3], A, &ids(3), Duration::from_secs(10)).unwrap();
        assert_ne!(g1, g2);
        // -U on node 3: the others go on without it in a new generation.
        let out = c.gabconfig(3, &["-U"]).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let g3 = c.wait_port(&[1, 2], A, &[0, 1], Duration::from_secs(10)).unwrap();
        assert!(![g1, g2].contains(&g3));
        assert!(!c.gab_status(3).unwrap().configured);
    });
}

/// Five nodes: a killed node leaves after LLT's peerinact plus the stable
/// timeout, and comes back in a new generation; at every step all nodes
/// show the same generation and members, on port a and on a client port.
#[test]
fn five_nodes_leave_and_rejoin_with_agreed_generations() {
    with_deadline(Duration::from_secs(150), || {
        let mut c = Cluster::start("g5", spec(5)).unwrap();
        c.gab_start_all(5).unwrap();
        let all: Vec<usize> = (1..=5).collect();
        let g1 = c.wait_port(&all, A, &ids(5), Duration::from_secs(15)).unwrap();
        for i in 1..=5 {
            c.gab_request(i, GabRequest::SetStableTimeout { ms: 500 }).unwrap();
        }
        // A client on port t on every node: the port's membership follows.
        let mut clients = Vec::new();
        for i in 1..=5 {
            let mut cl = c.gab_client(i).unwrap();
            assert_eq!(cl.request(GabRequest::Register { port: b't', heartbeat: None }).unwrap(), GabResponse::Ok);
            clients.push(cl);
        }
        let gt1 = c.wait_port(&all, b't', &ids(5), Duration::from_secs(10)).unwrap();
        c.kill9(4).unwrap();
        let survivors = [1, 2, 3, 5];
        let g2 = c.wait_port(&survivors, A, &[0, 1, 2, 4], Duration::from_secs(15)).unwrap();
        let gt2 = c.wait_port(&survivors, b't', &[0, 1, 2, 4], Duration::from_secs(5)).unwrap();
        assert_ne!(g1, g2);
        assert_ne!(gt1, gt2);
        c.restart(4).unwrap();
        c.gab_start(4, 5).unwrap();
        let g3 = c.wait_port(&all, A, &ids(5), Duration::from_secs(20)).unwrap();
        assert!(![g1, g2].contains(&g3), "a rejoin makes a new generation");
        drop(clients);
        // Clients gone: the port empties everywhere.
        wait_until("port t closed everywhere", Duration::from_secs(10), || {
            all.iter().all(|&i| c.port_view(i, b't').ok().flatten().is_none_or(|v| v.1.is_empty())).then_some(())
        })
        .unwrap();
    });
}

/// Link flaps shorter than peerinact change no membership.
#[test]
fn short_link_flaps_change_nothing() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("gflap", spec(3)).unwrap();
        c.gab_start_all(3).unwrap();
        let g = c.wait_port(&[1, 2, 3], A, &ids(3), Duration::from_secs(10)).unwrap();
        // peerinact is 2 s: cut both of node 3's links for 0.8 s, three times.
        for _ in 0..3 {
            c.lab.cut(3, 0).unwrap();
            c.lab.cut(3, 1).unwrap();
            std::thread::sleep(Duration::from_millis(800));
            c.lab.restore(3, 0).unwrap();
            c.lab.restore(3, 1).unwrap();
            std::thread::sleep(Duration::from_millis(700));
        }
        c.wait_all_open(Duration::from_secs(10)).unwrap();
        for i in 1..=3 {
            assert_eq!(c.port_view(i, A).unwrap(), Some((g, ids(3))), "node {i}: {}", c.describe_gab());
            assert_eq!(c.gab_status(i).unwrap().counters.memberships, 1, "node {i} saw one membership only");
        }
    });
}

/// One link left to a node puts it in jeopardy (shown by gabconfig -a and
/// told to port clients); losing that link too removes it with the
/// jeopardy flag set.
#[test]
fn jeopardy_with_one_link_then_loss_is_flagged() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("gjeop", spec(3)).unwrap();
        c.gab_start_all(3).unwrap();
        c.wait_port(&[1, 2, 3], A, &ids(3), Duration::from_secs(10)).unwrap();
        c.gab_request(1, GabRequest::SetStableTimeout { ms: 0 }).unwrap();
        c.gab_request(2, GabRequest::SetStableTimeout { ms: 0 }).unwrap();
        // A client on port j on every node, as HAD is on port h.
        let mut clients: Vec<_> = (1..=3).map(|i| c.gab_client(i).unwrap()).collect();
        for cl in clients.iter_mut() {
            assert_eq!(cl.request(GabRequest::Register { port: b'j', heartbeat: None }).unwrap(), GabResponse::Ok);
        }
        c.wait_port(&[1, 2, 3], b'j', &ids(3), Duration::from_secs(10)).unwrap();
        let watcher = &mut clients[0];
        watcher.stream().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        c.lab.cut(3, 0).unwrap();
        wait_until("node 1 shows node 2 (lab node 3) in jeopardy", Duration::from_secs(10), || {
            let out = c.gabconfig(1, &["-a"]).ok()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.lines().any(|l| l.starts_with("Port a gen") && l.ends_with("jeopardy ;2")).then_some(())
        })
        .unwrap();
        c.lab.cut(3, 1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut flagged = None;
        let mut told_jeopardy = false;
        while Instant::now() < deadline && flagged.is_none() {
            match watcher.recv() {
                Ok(GabServerMsg::Membership(m)) if m.port == b'j' && !m.members.contains(&2) && m.lost_in_jeopardy.contains(&2) => {
                    flagged = Some(m);
                }
                Ok(GabServerMsg::Jeopardy { port: b'j', jeopardy, .. }) => told_jeopardy |= jeopardy == vec![2],
                _ => {}
            }
        }
        assert!(told_jeopardy, "the port client was told node 2 is in jeopardy");
        let m = flagged.unwrap_or_else(|| panic!("no port j membership losing node 2 in jeopardy\n{}", c.describe_gab()));
        assert_eq!(m.members, vec![0, 1]);
        assert!(c.daemon(1).unwrap().log_tail(200).contains("left while in jeopardy"));
        c.wait_port(&[1, 2], A, &[0, 1], Duration::from_secs(10)).unwrap();
    });
}

/// A port h client that stops heartbeating gets SIGABRT (it ignores them)
/// up to the configured count, then SIGKILL, and port h closes everywhere.
#[test]
fn hung_port_h_client_is_aborted_then_killed() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("ghung", spec(2)).unwrap();
        c.gab_start_all(2).unwrap();
        c.wait_port(&[1, 2], A, &[0, 1], Duration::from_secs(10)).unwrap();
        let args = ["--heartbeat-ms", "400", "--abort-interval-ms", "200", "--max-aborts", "3", "--ignore-abort", "--hang-after", "1"];
        let hung = c.gabmsg(1, "had1", b'h', &args).unwrap();
        let _ok = c.gabmsg(2, "had2", b'h', &["--heartbeat-ms", "400"]).unwrap();
        c.wait_port(&[1, 2], b'h', &[0, 1], Duration::from_secs(10)).unwrap();
        let status = hung.wait_exit(Duration::from_secs(15)).expect("the hung client is killed");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "killed by SIGKILL: {status:?}");
        c.wait_port(&[1, 2], b'h', &[1], Duration::from_secs(10)).unwrap();
        let st = c.gab_status(1).unwrap();
        assert_eq!(st.counters.clients_aborted, 3, "{st:?}");
        assert_eq!(st.counters.clients_killed, 1);
        let log = c.daemon(1).unwrap().log_tail(200);
        assert!(log.contains("SIGABRT 3 of 3") && log.contains("SIGKILL"), "{log}");
        // The healthy client on node 2 was never touched.
        assert_eq!(c.gab_status(2).unwrap().counters.clients_aborted, 0);
    });
}

/// gabconfig on a live cluster: -l counters, -json, -U refused while a
/// port is open, registrations refused for port a and for a taken port.
#[test]
fn gabconfig_on_a_live_cluster() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("gcfg", spec(2)).unwrap();
        c.gab_start_all(2).unwrap();
        c.wait_port(&[1, 2], A, &[0, 1], Duration::from_secs(10)).unwrap();
        let mut cl = c.gab_client(1).unwrap();
        assert!(matches!(cl.request(GabRequest::Register { port: b'a', heartbeat: None }).unwrap(), GabResponse::Error(_)));
        assert_eq!(cl.request(GabRequest::Register { port: b'q', heartbeat: None }).unwrap(), GabResponse::Ok);
        let mut other = c.gab_client(1).unwrap();
        match other.request(GabRequest::Register { port: b'q', heartbeat: None }).unwrap() {
            GabResponse::Error(e) => assert!(e.contains("already open"), "{e}"),
            r => panic!("second client on port q accepted: {r:?}"),
        }
        let out = c.gabconfig(1, &["-U"]).unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("ports in use (q)"), "{}", String::from_utf8_lossy(&out.stderr));
        let out = c.gabconfig(1, &["-a", "-json"]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gabconfig -a -json prints JSON");
        assert_eq!(v["seeded"], serde_json::json!(true));
        let out = c.gabconfig(1, &["-t", "700"]).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = c.gabconfig(1, &["-l"]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("Gab Seed Count (-n)") && text.contains("port q"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("Stable Timeout") && l.ends_with(": 700")), "{text}");
        // Messages round trip: a broadcast comes back to its sender.
        cl.send(&GabClientMsg::Broadcast { data: b"hello".to_vec() }).unwrap();
        cl.stream().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        loop {
            match cl.recv().unwrap() {
                GabServerMsg::Deliver { origin, data, .. } => {
                    assert_eq!((origin, data.as_slice()), (0, &b"hello"[..]));
                    break;
                }
                _ => continue,
            }
        }
    });
}

/// Lines of a `gabmsg --print` run from the first membership of the port
/// that has all `n` nodes on.
fn stream_after_full_membership(out: &str, n: usize) -> Vec<String> {
    let full = format!("members={}", (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("membership ") || l.starts_with("deliver ")).collect();
    let start = lines.iter().position(|l| l.starts_with("membership ") && l.contains(&format!("{full} "))).unwrap_or(lines.len());
    lines[start..].iter().map(|l| l.to_string()).collect()
}

/// Five nodes, five concurrent senders of 2,000 messages each: every node
/// delivers the identical sequence (same digest), its own messages included.
#[test]
fn five_senders_deliver_one_identical_sequence_everywhere() {
    with_deadline(Duration::from_secs(180), || {
        let c = Cluster::start("g5x2k", spec(5)).unwrap();
        c.gab_start_all(5).unwrap();
        let all: Vec<usize> = (1..=5).collect();
        c.wait_port(&all, A, &ids(5), Duration::from_secs(15)).unwrap();
        let procs: Vec<_> = all
            .iter()
            .map(|&i| {
                let node = (i - 1).to_string();
                let args = ["--node", &node, "--count", "2000", "--size", "200", "--wait-members", "5", "--expect", "10000", "--digest"];
                c.gabmsg(i, &format!("sender{i}"), b'x', &args).unwrap()
            })
            .collect();
        let mut digests = Vec::new();
        for p in &procs {
            let st = p.wait_exit(Duration::from_secs(60)).unwrap_or_else(|| panic!("{} did not finish\n{}\n{}", p.name(), p.log_tail(20), c.describe_gab()));
            assert!(st.success(), "{} failed: {}", p.name(), p.log_tail(20));
            let line = p.stdout().lines().find(|l| l.starts_with("digest ")).expect("digest line").to_string();
            // Memberships seen differ (each client registered at its own
            // time); the delivered sequence may not.
            let deliveries: String = line.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            digests.push(deliveries);
        }
        assert!(digests[0].starts_with("digest deliveries=10000 hash="), "{}", digests[0]);
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "digests differ: {digests:#?}");
    });
}

/// A node killed while everyone broadcasts: the survivors deliver the same
/// messages, in the same order, before and after the membership that drops
/// it (virtual synchrony seen through real clients).
#[test]
fn node_killed_mid_stream_survivors_deliver_the_same() {
    with_deadline(Duration::from_secs(150), || {
        let mut c = Cluster::start("gkill", spec(3)).unwrap();
        c.gab_start_all(3).unwrap();
        c.wait_port(&[1, 2, 3], A, &ids(3), Duration::from_secs(10)).unwrap();
        for i in 1..=3 {
            c.gab_request(i, GabRequest::SetStableTimeout { ms: 0 }).unwrap();
        }
        let procs: Vec<_> = (1..=3)
            .map(|i| {
                let node = (i - 1).to_string();
                let args = ["--node", &node, "--count", "4000", "--rate", "1000", "--size", "100", "--wait-members", "3", "--duration", "9", "--print"];
                c.gabmsg(i, &format!("stream{i}"), b's', &args).unwrap()
            })
            .collect();
        // Kill node 3's daemon once the stream is well under way.
        wait_until("deliveries flowing on node 1", Duration::from_secs(20), || {
            (procs[0].stdout().matches("deliver origin=2").count() > 500).then_some(())
        })
        .unwrap();
        c.kill9(3).unwrap();
        for p in &procs[..2] {
            p.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("{} did not finish", p.name()));
        }
        let s1 = stream_after_full_membership(&procs[0].stdout(), 3);
        let s2 = stream_after_full_membership(&procs[1].stdout(), 3);
        let cut = s1.iter().position(|l| l.starts_with("membership ") && l.contains("members=0,1 ")).unwrap_or_else(|| {
            let ms: Vec<&String> = s1.iter().filter(|l| l.starts_with("membership")).collect();
            panic!("node 1 did not see node 2 leave: memberships {ms:?}, {} lines\n{}\n{}", s1.len(), procs[0].log_tail(5), c.describe_gab())
        });
        let from_victim = s1[..cut].iter().filter(|l| l.starts_with("deliver origin=2 ")).count();
        assert!(from_victim > 500, "the victim's messages before the change: {from_victim}");
        assert!(s1[cut..].iter().all(|l| !l.starts_with("deliver origin=2 ")), "nothing from the victim after it left");
        assert!(s1.len() > cut + 100, "the survivors kept going after the change");
        // Identical up to the shorter stream's end (one may have read a
        // little further before --duration stopped it).
        let n = s1.len().min(s2.len());
        assert!(n > cut);
        for k in 0..n {
            assert_eq!(s1[k], s2[k], "survivors differ at line {k} (membership change at {cut})");
        }
    });
}

/// A client that stops reading is disconnected once its queue is full,
/// with a logged reason; its port closes everywhere and the sender and
/// the other receivers never lose a message.
#[test]
fn client_that_stops_reading_is_disconnected_not_starved_silently() {
    with_deadline(Duration::from_secs(120), || {
        let c = Cluster::start("gslow", spec(2)).unwrap();
        c.gab_start_all(2).unwrap();
        c.wait_port(&[1, 2], A, &[0, 1], Duration::from_secs(10)).unwrap();
        let mut sleeper = c.gab_client(1).unwrap();
        assert_eq!(sleeper.request(GabRequest::Register { port: b'z', heartbeat: None }).unwrap(), GabResponse::Ok);
        let sender = c.gabmsg(2, "sender", b'z', &["--node", "1", "--count", "30000", "--size", "1000", "--wait-members", "2", "--expect", "30000", "--digest"]).unwrap();
        let st = sender.wait_exit(Duration::from_secs(90)).unwrap_or_else(|| panic!("sender did not finish\n{}", c.describe_gab()));
        assert!(st.success(), "{}", sender.log_tail(10));
        assert!(sender.stdout().contains("digest deliveries=30000 "), "{}", sender.stdout());
        let log = c.daemon(1).unwrap().log_tail(300);
        assert!(log.contains("client cannot keep up") && log.contains("disconnected"), "{log}");
        assert_eq!(c.gab_status(1).unwrap().counters.clients_disconnected_slow, 1);
        // Its port closed (the sender has left port z too by now).
        for i in [1, 2] {
            assert!(c.port_view(i, b'z').unwrap().is_none_or(|(_, m)| !m.contains(&0)), "{}", c.describe_gab());
        }
        drop(sleeper);
    });
}
