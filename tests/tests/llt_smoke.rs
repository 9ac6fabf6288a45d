use ha_tests::{with_deadline, Cluster, ClusterSpec};
use std::time::Duration;

#[test]
fn three_nodes_discover_each_other() {
    with_deadline(Duration::from_secs(90), || {
        let c = Cluster::start("disc", ClusterSpec::fast(3)).expect("cluster");
        println!("{}", c.describe());
    });
}
