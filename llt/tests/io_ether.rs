//! `ether` link I/O over a veth pair between two network namespaces.
//! Needs root: `cargo test -p llt --test io_ether`.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{join_both, set_link, spawn_in_netns, NetnsPair, PATIENCE};
use llt::io::ether::{EtherLink, EtherRecv, RecvBatch, BROADCAST_MAC};
use llt::io::{iface_mac, IoError};

/// Waits for the next receive result, whatever it is.
async fn next(link: &EtherLink, buf: &mut [u8]) -> EtherRecv {
    tokio::time::timeout(PATIENCE, async {
        loop {
            link.readable().await.expect("readable");
            if let Some(r) = link.try_recv(buf).expect("try_recv") {
                return r;
            }
        }
    })
    .await
    .expect("a frame within the patience window")
}

/// Waits for the next frame and checks its addresses and payload.
async fn expect_frame(link: &EtherLink, src: [u8; 6], dst: [u8; 6], payload: &[u8]) {
    let mut buf = vec![0u8; link.mtu()];
    match next(link, &mut buf).await {
        EtherRecv::Frame {
            src: s,
            dst: d,
            len,
        } => {
            assert_eq!((s, d), (src, dst), "addresses on {}", link.ifname());
            assert_eq!(&buf[..len], payload, "payload on {}", link.ifname());
        }
        other => panic!("{}: expected a frame, got {other:?}", link.ifname()),
    }
}

/// Asserts nothing arrives for a little while.
async fn expect_silence(link: &EtherLink) {
    let mut buf = vec![0u8; link.mtu()];
    let quiet = tokio::time::timeout(Duration::from_millis(200), async {
        loop {
            link.readable().await.expect("readable");
            if let Some(r) = link.try_recv(&mut buf).expect("try_recv") {
                return r;
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "unexpected {:?} on {}",
        quiet,
        link.ifname()
    );
}

/// Exchanges MACs with the other side: each side has its link open before
/// it sends its MAC, so nothing sent after the exchange is lost.
fn exchange(tx: &mpsc::Sender<[u8; 6]>, rx: &mpsc::Receiver<[u8; 6]>, mine: [u8; 6]) -> [u8; 6] {
    tx.send(mine).expect("peer thread alive");
    rx.recv_timeout(PATIENCE).expect("peer MAC")
}

/// Two threads, one per namespace, each running `side(ifname, tx, rx)`
/// with a channel pair to the other.
fn run_pair<F, Fut>(pair: &NetnsPair, side: F)
where
    F: Fn(String, mpsc::Sender<[u8; 6]>, mpsc::Receiver<[u8; 6]>, bool) -> Fut
        + Send
        + Sync
        + Clone
        + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx_ab, rx_ab) = mpsc::channel();
    let (tx_ba, rx_ba) = mpsc::channel();
    let (fa, fb) = (side.clone(), side);
    let if_a = pair.if_a.clone();
    let if_b = pair.if_b.clone();
    let a = spawn_in_netns(&pair.ns_a, move || fa(if_a, tx_ab, rx_ba, true));
    let b = spawn_in_netns(&pair.ns_b, move || fb(if_b, tx_ba, rx_ab, false));
    join_both(a, b);
}

#[test]
fn unicast_broadcast_and_sizes_both_ways() {
    let pair = NetnsPair::new("u");
    run_pair(&pair, |ifname, tx, rx, is_a| async move {
        let link = EtherLink::open(&ifname).expect("open");
        assert_eq!(iface_mac(&ifname), Some(link.mac()));
        assert_eq!(link.mtu(), 1500, "veth default MTU");
        let me = link.mac();
        let peer = exchange(&tx, &rx, me);
        let (mine, theirs) = if is_a { ("a", "b") } else { ("b", "a") };

        // Unicast.
        link.try_send(peer, format!("unicast from {mine}").as_bytes())
            .expect("send unicast");
        expect_frame(&link, peer, me, format!("unicast from {theirs}").as_bytes()).await;

        // Broadcast.
        link.try_send(BROADCAST_MAC, format!("broadcast from {mine}").as_bytes())
            .expect("send broadcast");
        expect_frame(
            &link,
            peer,
            BROADCAST_MAC,
            format!("broadcast from {theirs}").as_bytes(),
        )
        .await;

        // A full-MTU payload goes through whole; one byte more is refused.
        let full: Vec<u8> = (0..link.mtu()).map(|i| i as u8).collect();
        link.try_send(peer, &full).expect("send full-size frame");
        expect_frame(&link, peer, me, &full).await;
        let too_big = vec![0u8; link.mtu() + 1];
        assert!(matches!(
            link.try_send(peer, &too_big),
            Err(IoError::TooBig { len, max }) if len == 1501 && max == 1500
        ));

        // A frame larger than the receive buffer is reported, not truncated.
        link.try_send(peer, &[7u8; 100]).expect("send 100 bytes");
        let mut small = [0u8; 50];
        assert_eq!(
            next(&link, &mut small).await,
            EtherRecv::Oversize { len: 100 }
        );

        // A short payload arrives with its exact length on veth (no NIC
        // padding to 60 bytes).
        link.try_send(peer, b"x").expect("send 1 byte");
        expect_frame(&link, peer, me, b"x").await;
    });
}

#[test]
fn frame_for_another_mac_is_not_for_us() {
    let pair = NetnsPair::new("n");
    run_pair(&pair, |ifname, tx, rx, is_a| async move {
        let link = EtherLink::open(&ifname).expect("open");
        let peer = exchange(&tx, &rx, link.mac());
        if is_a {
            // veth delivers everything to the peer, which marks it
            // PACKET_OTHERHOST: like a switch flooding an unlearned MAC.
            link.try_send([0x02, 0, 0, 0, 0, 0x99], b"for someone else")
                .expect("send");
            link.try_send(peer, b"for b").expect("send");
            expect_silence(&link).await;
        } else {
            let mut buf = vec![0u8; link.mtu()];
            assert_eq!(next(&link, &mut buf).await, EtherRecv::NotForUs);
            expect_frame(&link, peer, link.mac(), b"for b").await;
        }
    });
}

const BURST: usize = 2000;

/// Payload `seq` of a burst: the sequence number, then a pattern.
fn burst_payload(seq: usize, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| (i + seq) as u8).collect();
    p[..4].copy_from_slice(&(seq as u32).to_be_bytes());
    p
}

#[test]
fn burst_of_2000_frames_arrives() {
    let pair = NetnsPair::new("b");
    run_pair(&pair, |ifname, tx, rx, is_a| async move {
        let link = EtherLink::open(&ifname).expect("open");
        let (rcv, snd) = link.buffer_sizes().expect("buffer sizes");
        // The kernel reports twice the size asked for.
        assert!(rcv >= llt::io::SOCKET_BUFFER_BYTES, "receive buffer {rcv}");
        assert!(snd >= llt::io::SOCKET_BUFFER_BYTES, "send buffer {snd}");
        let peer = exchange(&tx, &rx, link.mac());
        let me = link.mac();
        const LEN: usize = 1400;

        if is_a {
            // One frame per call, back to back, never yielding.
            for seq in 0..BURST {
                link.try_send(peer, &burst_payload(seq, LEN))
                    .expect("send burst frame");
            }
            // Batched: wait until b has drained the first burst.
            rx.recv_timeout(PATIENCE * 2).expect("b done with burst 1");
            let frames: Vec<Vec<u8>> = (0..BURST)
                .map(|seq| burst_payload(BURST + seq, LEN))
                .collect();
            let list: Vec<([u8; 6], &[u8])> = frames.iter().map(|f| (peer, f.as_slice())).collect();
            let sent = link.try_send_batch(&list).expect("send batch");
            assert_eq!(sent, BURST);
            rx.recv_timeout(PATIENCE * 2).expect("b done with burst 2");
        } else {
            let mut buf = vec![0u8; link.mtu()];
            for seq in 0..BURST {
                match next(&link, &mut buf).await {
                    EtherRecv::Frame { src, dst, len } => {
                        assert_eq!((src, dst, len), (peer, me, LEN), "frame {seq}");
                        assert_eq!(buf[..len], burst_payload(seq, LEN)[..], "frame {seq}");
                    }
                    other => panic!("frame {seq}: {other:?}"),
                }
            }
            tx.send(me).expect("a alive");

            let mut batch = RecvBatch::new(64, link.mtu());
            let mut seq = BURST;
            let deadline = Instant::now() + PATIENCE;
            while seq < 2 * BURST {
                assert!(Instant::now() < deadline, "batched burst stalled at {seq}");
                let _ = tokio::time::timeout(PATIENCE, link.readable()).await;
                let n = link.try_recv_batch(&mut batch).expect("recv batch");
                assert_eq!(n, batch.len());
                for (r, payload) in batch.iter() {
                    assert_eq!(
                        r,
                        EtherRecv::Frame {
                            src: peer,
                            dst: me,
                            len: LEN
                        },
                        "frame {seq}"
                    );
                    assert_eq!(payload, &burst_payload(seq, LEN)[..], "frame {seq}");
                    seq += 1;
                }
            }
            tx.send(me).expect("a alive");
            expect_silence(&link).await;
        }
    });
}

#[test]
fn admin_down_is_an_error_and_a_cut_link_is_silent() {
    let pair = NetnsPair::new("d");
    let (ns_a, ns_b) = (pair.ns_a.clone(), pair.ns_b.clone());
    run_pair(&pair, move |ifname, tx, rx, is_a| {
        let ns = if is_a { ns_a.clone() } else { ns_b.clone() };
        async move {
            let link = EtherLink::open(&ifname).expect("open");
            let peer = exchange(&tx, &rx, link.mac());
            let set = |up: bool| set_link(&ns, &ifname, up);
            if is_a {
                // Our own end administratively down: the kernel refuses.
                set(false);
                assert!(matches!(
                    link.try_send(peer, b"while down"),
                    Err(IoError::NetDown)
                ));
                assert!(matches!(
                    link.try_send_batch(&[(peer, b"while down")]),
                    Err(IoError::NetDown)
                ));
                set(true);
                link.try_send(peer, b"a is back").expect("send after up");

                // The socket survived the down/up: it still receives. The
                // kernel may report the down once, on the next receive.
                let mut buf = vec![0u8; link.mtu()];
                let mut net_down_reports = 0;
                let got = tokio::time::timeout(PATIENCE, async {
                    loop {
                        link.readable().await.expect("readable");
                        match link.try_recv(&mut buf) {
                            Ok(Some(r)) => return r,
                            Ok(None) => {}
                            Err(IoError::NetDown) => net_down_reports += 1,
                            Err(e) => panic!("receive after up: {e}"),
                        }
                    }
                })
                .await
                .expect("b's frame after up");
                assert!(matches!(got, EtherRecv::Frame { len: 9, .. }), "{got:?}");
                assert_eq!(&buf[..9], b"b says hi");
                assert!(net_down_reports <= 1);

                // The far end down: a cut link, silent for the sender.
                rx.recv_timeout(PATIENCE).expect("b is down");
                // veth reports drops (ENOBUFS) until the kernel has seen
                // the carrier go, then swallows frames silently: either way
                // a count, never a panic or a dead link.
                for _ in 0..3 {
                    match link.try_send(peer, b"into the void") {
                        Ok(()) | Err(IoError::Dropped) => {}
                        Err(e) => panic!("send on a cut link: {e}"),
                    }
                }
                tx.send([0; 6]).expect("b alive");
            } else {
                expect_frame(&link, peer, link.mac(), b"a is back").await;
                link.try_send(peer, b"b says hi").expect("send");
                set(false);
                tx.send([0; 6]).expect("a alive");
                rx.recv_timeout(PATIENCE).expect("a sent into the void");
                set(true);
            }
        }
    });
}

#[test]
fn open_on_a_down_interface_then_up() {
    let pair = NetnsPair::new("o");
    pair.set_up_a(false);
    let (ns_a, if_a) = (pair.ns_a.clone(), pair.if_a.clone());
    run_pair(&pair, move |ifname, tx, rx, is_a| {
        let (ns_a, if_a) = (ns_a.clone(), if_a.clone());
        async move {
            let link = EtherLink::open(&ifname).expect("open, even on a down interface");
            let peer = exchange(&tx, &rx, link.mac());
            if is_a {
                assert!(matches!(
                    link.try_send(peer, b"early"),
                    Err(IoError::NetDown)
                ));
                set_link(&ns_a, &if_a, true);
                link.try_send(peer, b"a is up").expect("send once up");
                expect_frame(&link, peer, link.mac(), b"b answers").await;
            } else {
                expect_frame(&link, peer, link.mac(), b"a is up").await;
                link.try_send(peer, b"b answers").expect("send");
            }
        }
    });
}

#[tokio::test]
async fn open_errors() {
    assert!(matches!(
        EtherLink::open("nosuchif0"),
        Err(IoError::NoSuchInterface(n)) if n == "nosuchif0"
    ));
    let long = "x".repeat(20);
    assert!(matches!(
        EtherLink::open(&long),
        Err(IoError::NoSuchInterface(_))
    ));
    assert!(matches!(
        EtherLink::open(""),
        Err(IoError::NoSuchInterface(_))
    ));
    assert_eq!(iface_mac("nosuchif0"), None);
}

/// Throughput, one frame per syscall; run with
/// `cargo test --release -p llt --test io_ether -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn throughput_single() {
    throughput(false);
}

/// Throughput with sendmmsg/recvmmsg, 64 frames per syscall.
#[test]
#[ignore = "measurement, not a check"]
fn throughput_batched() {
    throughput(true);
}

fn throughput(batched: bool) {
    const FRAMES: usize = 200_000;
    const LEN: usize = 200;
    let pair = NetnsPair::new(if batched { "t" } else { "s" });
    run_pair(&pair, move |ifname, tx, rx, is_a| async move {
        let link = EtherLink::open(&ifname).expect("open");
        let peer = exchange(&tx, &rx, link.mac());
        let mode = if batched { "batched" } else { "single" };
        if is_a {
            let payload = vec![0x55u8; LEN];
            let list = vec![(peer, payload.as_slice()); 64];
            let start = Instant::now();
            let (mut sent, mut refused) = (0, 0);
            while sent < FRAMES {
                let want = (FRAMES - sent).min(if batched { 64 } else { 1 });
                let r = if batched {
                    link.try_send_batch(&list[..want])
                } else {
                    link.try_send(peer, &payload).map(|()| 1)
                };
                match r {
                    Ok(n) => sent += n,
                    Err(IoError::WouldBlock) | Err(IoError::Dropped) => {
                        refused += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{mode}: sent {sent} ({refused} refused) in {secs:.3}s: {:.0} frames/s",
                sent as f64 / secs
            );
        } else {
            let mut batch = RecvBatch::new(64, link.mtu());
            let mut buf = vec![0u8; link.mtu()];
            let mut got = 0;
            let mut start = None;
            let mut last = Instant::now();
            loop {
                match tokio::time::timeout(Duration::from_millis(500), link.readable()).await {
                    Ok(r) => r.expect("readable"),
                    Err(_) => break,
                }
                let n = if batched {
                    link.try_recv_batch(&mut batch).expect("recv batch")
                } else {
                    usize::from(link.try_recv(&mut buf).expect("recv").is_some())
                };
                if n > 0 {
                    start.get_or_insert_with(Instant::now);
                    last = Instant::now();
                }
                got += n;
            }
            let secs = start.map(|s| (last - s).as_secs_f64()).unwrap_or(1.0);
            eprintln!(
                "{mode}: received {got} of {FRAMES} in {secs:.3}s: {:.0} frames/s",
                got as f64 / secs
            );
        }
    });
}
