//! The demo: a 3-node cluster in network namespaces (two private Ethernet
//! segments), real clusterd daemons, LLT discovering and heartbeating, and
//! `lltstat -nvv` printed from every node. Then a link is cut to show LLT
//! noticing, and everything is torn down. Needs root.

use ha_tests::{Cluster, ClusterSpec};
use std::time::Duration;

fn show(c: &Cluster, title: &str) -> anyhow::Result<()> {
    let lltstat = ha_tests::bin("lltstat")?;
    println!("\n=== {title} ===");
    for i in 1..=c.spec.nodes {
        println!("\n# node{i}: HA_ROOT={} lltstat -nvv", c.lab.root(i).display());
        print!("{}", c.lab.exec_ok(i, &[lltstat.to_str().unwrap_or_default(), "-nvv"])?);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut spec = ClusterSpec::fast(3);
    // VCS heartbeat cadence, a shorter peerinact so the demo is quick.
    spec.timers = vec![("peertrouble", 100), ("peertroublelo", 150), ("peerinact", 300), ("dupwait", 100)];
    println!("Building 3 node namespaces on 2 bridged segments and starting clusterd on each...");
    let c = Cluster::start("demo", spec)?;
    show(&c, "all nodes discovered each other (no MAC configured anywhere)")?;
    println!("\nCutting node3's eth1 (carrier loss) and waiting peerinact (3 s)...");
    c.lab.cut(3, 0)?;
    std::thread::sleep(Duration::from_millis(3500));
    show(&c, "node3's eth1 is DOWN; node3 stays OPEN over eth2")?;
    println!("\nTearing the lab down.");
    Ok(())
}
