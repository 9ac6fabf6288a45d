//! Harness for multi-node tests: a lab of Linux network namespaces joined by
//! independent Ethernet segments (bridges in a switch namespace), with fault
//! injection, packet capture and process management. Needs root.
//!
//! ```no_run
//! use ha_tests::{with_deadline, Lab, LabSpec};
//! use std::time::Duration;
//!
//! with_deadline(Duration::from_secs(60), || {
//!     let lab = Lab::new("example", LabSpec::nodes(3)).unwrap();
//!     let clusterd = ha_tests::bin("clusterd").unwrap();
//!     let d = lab.spawn(1, "clusterd", &[clusterd.to_str().unwrap()], &[]).unwrap();
//!     lab.cut(1, 0).unwrap(); // node 1 loses carrier on eth1
//!     lab.restore(1, 0).unwrap();
//!     d.kill9().unwrap();
//! }); // lab dropped: processes killed, namespaces and directories gone
//! ```
//!
//! Node processes share the host's /proc and file system: each node gets
//! its own directory as HA_ROOT, and node names must come from
//! configuration, never from the host name (see /work/shared/labs/l2/README.md).

pub mod capture;
pub mod cluster;
pub mod cmd;
pub mod corosync;
pub mod gab;
pub mod lab;
pub mod proc;
pub mod raw;
pub mod stats;

pub use cluster::{Cluster, ClusterSpec};
pub use capture::{read_pcap, Capture, Frame};
pub use cmd::{bin, wait_until};
pub use lab::{sweep_stale, with_deadline, Lab, LabSpec, Rule, FAMILY};
pub use proc::Proc;
pub use raw::{RawSocket, RxFrame, BROADCAST, ETH_P_ALL, ETH_P_LLT, ETH_P_PROBE};
