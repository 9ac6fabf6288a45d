//! Fencing inside real clusterd processes over real LLT links between
//! network namespaces, through the real commands (`vxfenconfig`,
//! `vxfenadm -d`, `gabconfig`): port b follows GAB, refusals say why.
//! These run on the host, which has no SCSI disk: they use the disabled
//! mode and bad disk paths. The race on real disks (a 2|1 split where the
//! pair wins and the single node halts) runs in the SCSI lab:
//! `fencing/tests/cluster_guest.sh`, called by scripts/fencing-lab.sh.
//! Needs root.

use ha_tests::{bin, with_deadline, Cluster, ClusterSpec};
use std::process::Output;
use std::time::Duration;

fn vxfenconfig(c: &Cluster, i: usize, args: &[&str]) -> Output {
    run(c, i, "vxfenconfig", args)
}

fn vxfenadm(c: &Cluster, i: usize, args: &[&str]) -> Output {
    run(c, i, "vxfenadm", args)
}

fn run(c: &Cluster, i: usize, prog: &str, args: &[&str]) -> Output {
    let p = bin(prog).unwrap();
    let mut argv = vec![p.to_str().unwrap()];
    argv.extend_from_slice(args);
    c.lab.exec(i, &argv).unwrap()
}

fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "expected success: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Fails, and stderr says `why`.
fn refused(o: Output, why: &str) {
    assert!(!o.status.success(), "expected a refusal: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(why), "expected '{why}' in: {}", text(&o));
}

fn write_etc(c: &Cluster, i: usize, name: &str, content: &str) {
    std::fs::write(c.lab.root(i).join("etc").join(name), content).unwrap();
}

/// Disabled mode: `vxfenconfig -c` joins port b on every node, port b
/// follows GAB (a clean `-U` and a killed daemon), `vxfenadm -d` shows
/// the members as VCS does, GAB cannot be stopped under fencing.
#[test]
fn disabled_mode_port_b_follows_gab() {
    with_deadline(Duration::from_secs(120), || {
        let mut c = Cluster::start("fdis", ClusterSpec::fast(3)).unwrap();
        for i in 1..=3 {
            write_etc(&c, i, "vxfenmode", "vxfen_mode=disabled\n");
        }
        refused(vxfenconfig(&c, 1, &["-c"]), "GAB is not configured");
        c.gab_start_all(3).unwrap();
        c.wait_port(&[1, 2, 3], b'a', &[0, 1, 2], Duration::from_secs(15)).unwrap();
        // Running, not configured yet: -d says so and fails.
        let o = vxfenadm(&c, 1, &["-d"]);
        assert!(!o.status.success() && String::from_utf8_lossy(&o.stdout).contains("not configured"), "{}", text(&o));
        for i in 1..=3 {
            assert!(ok(vxfenconfig(&c, i, &["-c"])).contains("disabled mode"));
        }
        c.wait_port(&[1, 2, 3], b'b', &[0, 1, 2], Duration::from_secs(15)).unwrap();
        refused(vxfenconfig(&c, 1, &["-c"]), "already configured");

        let d = ok(vxfenadm(&c, 2, &["-d"]));
        assert!(d.starts_with("I/O Fencing Cluster Information:\n================================\n"), "{d}");
        assert!(d.contains(" Fencing Mode: Disabled\n"), "{d}");
        assert!(d.contains("\t  0 (node1)\n\t* 1 (node2)\n\t  2 (node3)\n"), "{d}");
        assert!(d.contains("\tnode   2 in state  8 (running)\n"), "{d}");
        let j: serde_json::Value = serde_json::from_str(&ok(vxfenadm(&c, 2, &["-d", "-json"]))).unwrap();
        assert_eq!(j["members"], serde_json::json!([0, 1, 2]), "{j}");
        assert_eq!(j["mode"], "Disabled");
        assert_eq!(j["node"], 1);

        // GAB cannot go from under fencing; a clean -U leaves port b.
        refused(c.gabconfig(3, &["-U"]).unwrap(), "vxfenconfig -U");
        assert!(ok(vxfenconfig(&c, 3, &["-U"])).contains("unconfigured"));
        c.wait_port(&[1, 2], b'b', &[0, 1], Duration::from_secs(15)).unwrap();
        assert!(c.gabconfig(3, &["-U"]).unwrap().status.success());
        refused(vxfenconfig(&c, 3, &["-U"]), "not configured");

        // A node that dies leaves port b with GAB (disabled: no race).
        c.kill9(2).unwrap();
        c.wait_port(&[1], b'b', &[0], Duration::from_secs(20)).unwrap();
        let j: serde_json::Value = serde_json::from_str(&ok(vxfenadm(&c, 1, &["-d", "-json"]))).unwrap();
        assert_eq!(j["members"], serde_json::json!([0]), "{j}");
        assert_eq!(j["pending"], serde_json::json!([]), "{j}");
    });
}

/// SCSI3 mode refuses to start, and says why, when GAB has no membership
/// yet, when the configuration is wrong (file:line), or when a
/// coordinator disk cannot be opened; nothing is left half started.
#[test]
fn configure_refusals_name_the_cause() {
    with_deadline(Duration::from_secs(120), || {
        let c = Cluster::start("fref", ClusterSpec::fast(2)).unwrap();
        c.gab_start(1, 2).unwrap();
        refused(vxfenconfig(&c, 1, &["-c"]), "GAB has no membership yet");
        c.gab_start(2, 2).unwrap();
        c.wait_port(&[1, 2], b'a', &[0, 1], Duration::from_secs(15)).unwrap();
        refused(vxfenconfig(&c, 1, &["-c"]), "vxfenmode");
        write_etc(&c, 1, "vxfenmode", "vxfen_mode=scsi3\nscsi3_disk_policy=raw\n");
        write_etc(&c, 1, "vxfentab", "/dev/ha-test-no-such-disk-1\n/dev/ha-test-no-such-disk-2\n");
        refused(vxfenconfig(&c, 1, &["-c"]), "vxfentab");
        write_etc(&c, 1, "vxfentab", "/dev/ha-test-no-such-disk-1\n/dev/ha-test-no-such-disk-2\n/dev/ha-test-no-such-disk-3\n");
        refused(vxfenconfig(&c, 1, &["-c"]), "coordinator disk /dev/ha-test-no-such-disk-1");
        // Nothing half started: not configured, port b not joined, GAB
        // can still stop.
        let j: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(&vxfenadm(&c, 1, &["-d", "-json"]).stdout)).unwrap();
        assert_eq!(j["configured"], false, "{j}");
        assert!(c.port_view(1, b'b').unwrap().is_none());
        refused(vxfenconfig(&c, 1, &["-l"]), "not configured");
        assert!(c.gabconfig(1, &["-U"]).unwrap().status.success());
    });
}
