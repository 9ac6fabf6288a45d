//! `udp` link I/O: on loopback, and (root) broadcast and link-down between
//! two network namespaces. `cargo test -p llt --test io_udp`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::time::Duration;

use common::{join_both, set_link, spawn_in_netns, NetnsPair, PATIENCE};
use llt::io::udp::{UdpLink, UdpRecv};
use llt::io::IoError;

/// Waits for the next receive result.
async fn next(link: &UdpLink, buf: &mut [u8]) -> UdpRecv {
    tokio::time::timeout(PATIENCE, async {
        loop {
            link.readable().await.expect("readable");
            if let Some(r) = link.try_recv(buf).expect("try_recv") {
                return r;
            }
        }
    })
    .await
    .expect("a datagram within the patience window")
}

/// Waits for the next datagram and checks its source and payload.
async fn expect_datagram(link: &UdpLink, src: SocketAddr, payload: &[u8]) {
    let mut buf = vec![0u8; link.mtu()];
    match next(link, &mut buf).await {
        UdpRecv::Datagram { src: s, len } => {
            assert_eq!(
                s,
                src,
                "source at {}, payload {:?}",
                link.local_addr(),
                String::from_utf8_lossy(&buf[..len])
            );
            assert_eq!(&buf[..len], payload, "payload at {}", link.local_addr());
        }
        other => panic!("{}: expected a datagram, got {other:?}", link.local_addr()),
    }
}

/// Asserts nothing arrives for a little while.
async fn expect_silence(link: &UdpLink) {
    let mut buf = vec![0u8; link.mtu()];
    let quiet = tokio::time::timeout(Duration::from_millis(200), next(link, &mut buf)).await;
    assert!(
        quiet.is_err(),
        "unexpected {:?} at {}",
        quiet,
        link.local_addr()
    );
}

#[tokio::test]
async fn loopback_unicast_sizes_and_burst() {
    let a = UdpLink::open(Ipv4Addr::LOCALHOST.into(), 0).expect("open a");
    let b = UdpLink::open(Ipv4Addr::LOCALHOST.into(), 0).expect("open b");
    assert_ne!(a.local_addr().port(), 0);
    assert_eq!(a.local_addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(a.ifname(), Some("lo"));
    // 64 KiB loopback MTU, capped at what an IPv4 UDP datagram holds.
    assert_eq!(a.mtu(), 65507);
    let (rcv, snd) = a.buffer_sizes().expect("buffer sizes");
    assert!(
        rcv >= llt::io::SOCKET_BUFFER_BYTES && snd >= llt::io::SOCKET_BUFFER_BYTES,
        "{rcv} {snd}"
    );

    a.try_send(b.local_addr(), b"a to b").expect("send");
    expect_datagram(&b, a.local_addr(), b"a to b").await;
    b.try_send(a.local_addr(), b"b to a").expect("send");
    expect_datagram(&a, b.local_addr(), b"b to a").await;

    // Loopback broadcast: b's broadcast socket (bound to lo) hears it.
    let b_bcast = b.broadcast_addr().expect("lo has 127.255.255.255");
    assert_eq!(
        b_bcast,
        SocketAddr::new(
            Ipv4Addr::new(127, 255, 255, 255).into(),
            b.local_addr().port()
        )
    );
    a.try_send(b_bcast, b"a to all on b's port")
        .expect("send broadcast");
    expect_datagram(&b, a.local_addr(), b"a to all on b's port").await;

    // Largest payload goes through whole; one byte more is refused.
    let full: Vec<u8> = (0..a.mtu()).map(|i| i as u8).collect();
    a.try_send(b.local_addr(), &full).expect("send full size");
    expect_datagram(&b, a.local_addr(), &full).await;
    assert!(matches!(
        a.try_send(b.local_addr(), &vec![0; a.mtu() + 1]),
        Err(IoError::TooBig {
            len: 65508,
            max: 65507
        })
    ));

    // Larger than the receive buffer: reported, not truncated.
    a.try_send(b.local_addr(), &[1; 100]).expect("send");
    let mut small = [0u8; 50];
    assert_eq!(
        next(&b, &mut small).await,
        UdpRecv::Oversize {
            src: a.local_addr(),
            len: 100
        }
    );

    // A burst of 2000 back-to-back datagrams all arrive (buffers raised).
    const BURST: usize = 2000;
    for seq in 0..BURST as u32 {
        let mut p = [0u8; 1400];
        p[..4].copy_from_slice(&seq.to_be_bytes());
        a.try_send(b.local_addr(), &p).expect("send burst");
    }
    let mut buf = vec![0u8; b.mtu()];
    for seq in 0..BURST as u32 {
        match next(&b, &mut buf).await {
            UdpRecv::Datagram { len: 1400, .. } => {
                assert_eq!(buf[..4], seq.to_be_bytes(), "datagram {seq}")
            }
            other => panic!("datagram {seq}: {other:?}"),
        }
    }
    expect_silence(&b).await;
}

#[tokio::test]
async fn open_errors() {
    // Not an address of this host.
    assert!(matches!(
        UdpLink::open(Ipv4Addr::new(192, 0, 2, 1).into(), 0),
        Err(IoError::Os {
            op: "bind(udp)",
            ..
        })
    ));
    // The port is taken by another link on the same address: SO_REUSEADDR
    // lets UDP share it, so this opens; documented rather than refused.
    let a = UdpLink::open(Ipv4Addr::LOCALHOST.into(), 0).expect("open");
    UdpLink::open(Ipv4Addr::LOCALHOST.into(), a.local_addr().port())
        .expect("second open, shared port");
}

#[test]
fn broadcast_and_link_down_between_namespaces() {
    const PORT: u16 = 50000;
    let pair = NetnsPair::new("u");
    let (ip_a, ip_b) = pair.add_ipv4(201, (std::process::id() % 250) as u8);
    let (tx_ab, rx_ab) = mpsc::channel::<()>();
    let (tx_ba, rx_ba) = mpsc::channel::<()>();
    let (ns_a, if_a) = (pair.ns_a.clone(), pair.if_a.clone());

    let a = spawn_in_netns(&pair.ns_a, move || async move {
        let link = UdpLink::open(ip_a.into(), PORT).expect("open a");
        let peer = SocketAddr::new(ip_b.into(), PORT);
        let bcast = link.broadcast_addr().expect("a broadcast address");
        assert_eq!(
            bcast.ip(),
            IpAddr::V4(Ipv4Addr::from(u32::from(ip_a) | 0xff))
        );
        tx_ab.send(()).expect("b alive");
        rx_ba.recv_timeout(PATIENCE).expect("b open");

        // Subnet broadcast: b hears it, and so do we (loopback of our own
        // broadcast, recognisable by its source).
        link.try_send(bcast, b"subnet broadcast from a")
            .expect("send broadcast");
        expect_datagram(&link, link.local_addr(), b"subnet broadcast from a").await;
        // b's limited broadcast (255.255.255.255) and unicast reach us.
        // One at a time: broadcasts and unicasts arrive on different
        // sockets, so their relative order is not kept.
        expect_datagram(&link, peer, b"limited broadcast from b").await;
        tx_ab.send(()).expect("b alive");
        expect_datagram(&link, peer, b"unicast from b").await;
        link.try_send(peer, b"unicast from a")
            .expect("send unicast");

        // Our interface administratively down: the kernel refuses (no
        // route), and it is a countable error, not a panic.
        rx_ba.recv_timeout(PATIENCE).expect("b got unicast");
        set_link(&ns_a, &if_a, false);
        assert!(matches!(
            link.try_send(peer, b"while down"),
            Err(IoError::NetDown)
        ));
        assert!(matches!(
            link.try_send(bcast, b"while down"),
            Err(IoError::NetDown)
        ));
        set_link(&ns_a, &if_a, true);
        link.try_send(peer, b"a is back").expect("send after up");
        rx_ba.recv_timeout(PATIENCE).expect("b got a is back");
    });

    let b = spawn_in_netns(&pair.ns_b, move || async move {
        let link = UdpLink::open(ip_b.into(), PORT).expect("open b");
        let peer = SocketAddr::new(ip_a.into(), PORT);
        rx_ab.recv_timeout(PATIENCE).expect("a open");
        tx_ba.send(()).expect("a alive");

        expect_datagram(&link, peer, b"subnet broadcast from a").await;
        let limited = SocketAddr::new(Ipv4Addr::BROADCAST.into(), PORT);
        link.try_send(limited, b"limited broadcast from b")
            .expect("send limited broadcast");
        expect_datagram(&link, link.local_addr(), b"limited broadcast from b").await;
        rx_ab
            .recv_timeout(PATIENCE)
            .expect("a got the limited broadcast");
        link.try_send(peer, b"unicast from b")
            .expect("send unicast");
        expect_datagram(&link, peer, b"unicast from a").await;
        tx_ba.send(()).expect("a alive");
        expect_datagram(&link, peer, b"a is back").await;
        tx_ba.send(()).expect("a alive");
    });
    join_both(a, b);
}
