//! The demo: a 3-node cluster in network namespaces (two private Ethernet
//! segments), real clusterd daemons: LLT discovering and heartbeating
//! (`lltstat -nvv`), GAB seeding and forming port memberships
//! (`gabconfig -a`), a link cut putting a node in jeopardy, a node killed
//! and the survivors' new membership. Then everything is torn down. Needs
//! root.

use ha_tests::{Cluster, ClusterSpec};
use std::time::{Duration, Instant};

fn lltstat(c: &Cluster, title: &str) -> anyhow::Result<()> {
    let lltstat = ha_tests::bin("lltstat")?;
    println!("\n=== {title} ===");
    for i in c.live_nodes() {
        println!("\n# node{i}: HA_ROOT={} lltstat -nvv", c.lab.root(i).display());
        print!("{}", c.lab.exec_ok(i, &[lltstat.to_str().unwrap_or_default(), "-nvv"])?);
    }
    Ok(())
}

fn gabconfig_a(c: &Cluster, title: &str) -> anyhow::Result<()> {
    println!("\n=== {title} ===");
    for i in c.live_nodes() {
        println!("\n# node{i}: gabconfig -a");
        let out = c.gabconfig(i, &["-a"])?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut spec = ClusterSpec::fast(3);
    // VCS heartbeat cadence, a shorter peerinact so the demo is quick.
    spec.timers = vec![("peertrouble", 100), ("peertroublelo", 150), ("peerinact", 300), ("dupwait", 100)];
    println!("Building 3 node namespaces on 2 bridged segments and starting clusterd on each...");
    let mut c = Cluster::start("demo", spec)?;
    lltstat(&c, "all nodes discovered each other (no MAC configured anywhere)")?;

    println!("\nRunning gabtab (gabconfig -c -n 3) on every node, a port h client on each...");
    c.gab_start_all(3)?;
    c.wait_port(&[1, 2, 3], b'a', &[0, 1, 2], Duration::from_secs(10))?;
    let clients: Vec<_> = (1..=3).map(|i| c.gabmsg(i, &format!("client{i}"), b'h', &["--heartbeat-ms", "2000"])).collect::<Result<_, _>>()?;
    c.wait_port(&[1, 2, 3], b'h', &[0, 1, 2], Duration::from_secs(10))?;
    gabconfig_a(&c, "the cluster seeded: ports a and h, one generation on every node")?;

    println!("\nCutting node3's eth1 (carrier loss): LLT waits peerinact (3 s), GAB a jeopardy grace of two heartbeats...");
    let t0 = Instant::now();
    c.lab.cut(3, 0)?;
    ha_tests::wait_until("node1 shows node3 in jeopardy", Duration::from_secs(15), || {
        let out = c.gabconfig(1, &["-a"]).ok()?;
        String::from_utf8_lossy(&out.stdout).contains("jeopardy").then_some(())
    })?;
    println!("jeopardy after {:.1} s", t0.elapsed().as_secs_f64());
    lltstat(&c, "node3's eth1 is DOWN; node3 stays OPEN over eth2")?;
    gabconfig_a(&c, "node3 is reachable over one link only: jeopardy")?;

    println!("\nKilling node3's clusterd (SIGKILL); GAB's stable timeout is 5 s after LLT's 3 s peerinact...");
    let t0 = Instant::now();
    c.kill9(3)?;
    let gen = c.wait_port(&[1, 2], b'a', &[0, 1], Duration::from_secs(20))?;
    println!("new port a membership on node1 and node2 after {:.1} s (gen {:08x})", t0.elapsed().as_secs_f64(), gen & 0xffff_ffff);
    gabconfig_a(&c, "survivors agree on a new generation without node 2")?;
    drop(clients);
    println!("\nTearing the lab down.");
    Ok(())
}
