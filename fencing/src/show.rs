//! vxfenadm's output: the text VCS administrators know, and the JSON of
//! `-json`. Pure functions of what was read from the disks, so the shapes
//! are unit-tested without a device.
//!
//! Text shapes, after VCS:
//!
//! ```text
//! Reading SCSI Registration Keys...
//!
//! Device Name: /dev/sdb
//! Total Number of Keys: 1
//! key[0]:
//!   [Numeric Format]: 86,70,68,69,69,68,48,48
//!   [Character Format]: VFDEED00
//!   [Hex Format]: 0x5646444545443030
//! * [Node Format]: Cluster ID: 57069 Node ID: 0 Node Name: galaxy
//! ```
//!
//! `[Hex Format]` is ours (sg_persist's spelling of the same key, so the
//! two tools' output can be compared). As in VCS, `*` marks a key of the
//! cluster this node belongs to (the cluster id of `$HA_ROOT/etc/llttab`);
//! node names come from `$HA_ROOT/etc/llthosts`.

use crate::config::FenMode;
use crate::key::{Key, KeyOwner};
use crate::parse::{Designator, KeyList, ReservationReply, StandardInquiry};
use llt::NodeId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What this node knows of its cluster, to name the owners of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// set-cluster of llttab, when it can be read.
    pub cluster_id: Option<u16>,
    /// llthosts: node id -> name.
    pub hosts: BTreeMap<NodeId, String>,
}

impl ClusterView {
    /// Best effort from `$HA_ROOT/etc/llttab` and `llthosts`: keys can be
    /// shown without them, only with less detail.
    pub fn load() -> ClusterView {
        let (tab, hosts) = (llt::paths::llttab(), llt::paths::llthosts());
        if let Ok(c) = llt::config::load(&tab, &hosts, &|_| true) {
            return ClusterView { cluster_id: Some(c.cluster_id), hosts: c.hosts };
        }
        let hosts = std::fs::read_to_string(&hosts)
            .ok()
            .and_then(|t| llt::config::parse_llthosts(&hosts, &t).ok())
            .unwrap_or_default();
        ClusterView { cluster_id: None, hosts }
    }

    /// The name of a node of *this* cluster; a node id of another cluster
    /// says nothing about which machine it is.
    fn node_name(&self, cluster: u16, node: NodeId) -> Option<&str> {
        (self.cluster_id == Some(cluster)).then(|| self.hosts.get(&node).map(String::as_str)).flatten()
    }

    fn is_ours(&self, owner: KeyOwner) -> bool {
        match owner {
            KeyOwner::Coordinator { cluster, .. } | KeyOwner::Data { cluster, .. } => self.cluster_id == Some(cluster),
            KeyOwner::Foreign => false,
        }
    }
}

/// VCS's "[Node Format]" line, and whether it gets the `*`.
fn node_format(key: Key, view: &ClusterView) -> (bool, String) {
    let owner = key.owner();
    let text = match owner {
        KeyOwner::Coordinator { cluster, node } | KeyOwner::Data { cluster, node } => {
            format!(
                "Cluster ID: {cluster} Node ID: {node} Node Name: {}",
                view.node_name(cluster, node).unwrap_or("unknown")
            )
        }
        KeyOwner::Foreign => "Cluster ID: unknown Node ID: unknown Node Name: unknown (not a VCS key)".to_string(),
    };
    (view.is_ours(owner), text)
}

/// One key in the `-s` shape.
fn key_block(out: &mut String, i: usize, key: Key, view: &ClusterView) {
    let (ours, node) = node_format(key, view);
    let _ = writeln!(out, "key[{i}]:");
    let _ = writeln!(out, "  [Numeric Format]: {}", key.numeric());
    let _ = writeln!(out, "  [Character Format]: {}", key.chars());
    let _ = writeln!(out, "  [Hex Format]: {}", key.hex());
    let _ = writeln!(out, "{} [Node Format]: {node}", if ours { "*" } else { " " });
}

/// One key in the older `-g` shape (two lines, as VCS 4/5 printed).
fn key_block_short(out: &mut String, i: usize, key: Key) {
    let _ = writeln!(out, "key[{i}]:");
    let _ = writeln!(out, "  Key Value [Numeric Format]: {}", key.numeric());
    let _ = writeln!(out, "  Key Value [Character Format]: {}", key.chars());
}

/// The reply of one device, or why there is none.
pub type DeviceResult<'a, T> = (&'a str, Result<&'a T, String>);

/// `vxfenadm -s` (`long`) or `-g`: the keys of each device. A device that
/// could not be read shows its error in place of its keys.
pub fn keys_text(devices: &[DeviceResult<'_, KeyList>], view: &ClusterView, long: bool) -> String {
    let mut out = String::from("Reading SCSI Registration Keys...\n");
    for (device, result) in devices {
        let _ = write!(out, "\nDevice Name: {device}\n");
        match result {
            Ok(list) => {
                let _ = writeln!(out, "Total Number of Keys: {}", list.keys.len());
                for (i, &key) in list.keys.iter().enumerate() {
                    if long {
                        key_block(&mut out, i, key, view);
                    } else {
                        key_block_short(&mut out, i, key);
                    }
                }
                if list.truncated {
                    let _ = writeln!(out, "(the device reported more keys than could be read)");
                }
            }
            Err(e) => {
                let _ = writeln!(out, "Error: {e}");
            }
        }
    }
    out
}

/// `vxfenadm -r`: the reservation of each device.
pub fn reservation_text(devices: &[DeviceResult<'_, ReservationReply>], view: &ClusterView) -> String {
    let mut out = String::from("Reading SCSI Reservation Information...\n");
    for (device, result) in devices {
        let _ = write!(out, "\nDevice Name: {device}\n");
        match result {
            Ok(ReservationReply { reservation: Some(r), .. }) => {
                let _ = writeln!(out, "Total Number of Keys: 1");
                let _ = writeln!(out, "key[0]:");
                let _ = writeln!(out, "  Reservation Type: {} (type {}: {})", r.kind.vcs_name(), r.kind.code(), r.kind);
                let (ours, node) = node_format(r.key, view);
                let _ = writeln!(out, "  Key Value [Numeric Format]: {}", r.key.numeric());
                let _ = writeln!(out, "  Key Value [Character Format]: {}", r.key.chars());
                let _ = writeln!(out, "  Key Value [Hex Format]: {}", r.key.hex());
                let _ = writeln!(out, "{} [Node Format]: {node}", if ours { "*" } else { " " });
            }
            Ok(ReservationReply { reservation: None, .. }) => {
                let _ = writeln!(out, "Total Number of Keys: 0");
                let _ = writeln!(out, "No reservation on this device");
            }
            Err(e) => {
                let _ = writeln!(out, "Error: {e}");
            }
        }
    }
    out
}

/// `vxfenadm -i`: the four lines VCS prints.
pub fn inquiry_text(inq: &StandardInquiry, serial: Option<&str>) -> String {
    format!(
        "Vendor id       : {}\nProduct id      : {}\nRevision        : {}\nSerial Number   : {}\n",
        inq.vendor,
        inq.product,
        inq.revision,
        serial.unwrap_or("(not reported)")
    )
}

/// VCS's name of a fencing mode.
pub fn mode_name(m: crate::config::Mode) -> &'static str {
    match m {
        crate::config::Mode::Scsi3 => "SCSI3",
        crate::config::Mode::Disabled => "Disabled",
    }
}

pub fn policy_name(p: crate::config::DiskPolicy) -> &'static str {
    match p {
        crate::config::DiskPolicy::Raw => "raw",
        crate::config::DiskPolicy::Dmp => "dmp",
    }
}

/// `vxfenadm -d` when clusterd's fencing cannot be reached: what
/// vxfenmode says, in VCS's shape.
pub fn mode_text(m: &FenMode) -> String {
    format!(
        "I/O Fencing Cluster Information:\n================================\n\n Fencing Mode: {}\n Fencing SCSI3 Disk Policy: {}\n Node Weight: {}\n",
        mode_name(m.mode),
        policy_name(m.disk_policy),
        m.node_weight
    )
}

fn node_label(node: NodeId, view: &ClusterView) -> String {
    match view.hosts.get(&node) {
        Some(name) => format!("{node} ({name})"),
        None => node.to_string(),
    }
}

/// `vxfenadm -d` from clusterd's fencing, in VCS's shape: mode, members
/// (`*` marks this node), each member's state; then what VCS has no line
/// for: departed nodes still being fenced, the last race, a halt.
pub fn status_text(st: &crate::ctl::FenStatus, view: &ClusterView) -> String {
    let mut out = String::from("I/O Fencing Cluster Information:\n================================\n\n");
    out += " Fencing Protocol Version: 201\n";
    if let Some(why) = &st.halted {
        out += &format!(" Fencing State: HALTED: {why}\n");
        return out;
    }
    if !st.configured {
        out += " Fencing State: not configured (vxfenconfig -c)\n";
        return out;
    }
    out += &format!(" Fencing Mode: {}\n Fencing SCSI3 Disk Policy: {}\n Node Weight: {}\n Cluster Members:\n\n", st.mode, st.disk_policy, st.weight);
    for &m in &st.members {
        let star = if m == st.node { '*' } else { ' ' };
        out += &format!("\t{star} {}\n", node_label(m, view));
    }
    out += "\n RFSM State Information:\n";
    for &m in &st.members {
        out += &format!("\tnode {m:3} in state  8 (running)\n");
    }
    for &p in &st.pending {
        let racer = st.racer.map_or("?".to_string(), |r| r.to_string());
        out += &format!("\tnode {p:3} departed: being fenced (racer node {racer}); other ports wait\n");
    }
    if let Some(r) = &st.last_race {
        let departed: Vec<String> = r.departed.iter().map(|n| n.to_string()).collect();
        out += &format!(
            "\n Last race: node {} {} against {} ({} of {} coordinator disks)\n",
            r.racer,
            if r.won { "won" } else { "lost" },
            departed.join(","),
            r.disks_won,
            r.disks
        );
    }
    out
}

/// `vxfenconfig -l`: the coordinator (and data) disks in use, as VCS lists
/// its coordination points.
pub fn disks_text(st: &crate::ctl::FenStatus) -> String {
    let mut out = String::from("I/O Fencing Configuration Information:\n======================================\n\n");
    let table = |title: &str, disks: &[crate::ctl::DiskInUse]| {
        let mut t = format!(" {title}\n Count              : {}\n", disks.len());
        if !disks.is_empty() {
            t += &format!(" {:<28}{:>6}{:>6}  {:<34}{}\n", "Disk Name", "Major", "Minor", "Serial Number", "Policy");
            for d in disks {
                t += &format!(" {:<28}{:>6}{:>6}  {:<34}{}\n", d.path, d.major, d.minor, d.serial.as_deref().unwrap_or("-"), st.disk_policy);
            }
        }
        t
    };
    out += &table("Coordinator disks", &st.coordinators);
    if !st.data.is_empty() {
        out += "\n";
        out += &table("Data disks", &st.data);
    }
    out
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A key with every way of reading it.
#[derive(Debug, Serialize)]
pub struct KeyJson {
    pub hex: String,
    pub chars: String,
    pub numeric: String,
    pub owner: KeyOwner,
    /// From llthosts, for keys of known nodes of this node's cluster.
    pub node_name: Option<String>,
    /// The key belongs to this node's cluster (the `*` of the text).
    pub local_cluster: bool,
}

impl KeyJson {
    pub fn new(key: Key, view: &ClusterView) -> KeyJson {
        let owner = key.owner();
        let node_name = match owner {
            KeyOwner::Coordinator { cluster, node } | KeyOwner::Data { cluster, node } => {
                view.node_name(cluster, node).map(str::to_string)
            }
            KeyOwner::Foreign => None,
        };
        KeyJson {
            hex: key.hex(),
            chars: key.chars(),
            numeric: key.numeric(),
            owner,
            node_name,
            local_cluster: view.is_ours(owner),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KeysJson {
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn keys_json(devices: &[DeviceResult<'_, KeyList>], view: &ClusterView) -> Vec<KeysJson> {
    devices
        .iter()
        .map(|(device, result)| match result {
            Ok(list) => KeysJson {
                device: device.to_string(),
                generation: Some(list.generation),
                keys: Some(list.keys.iter().map(|&k| KeyJson::new(k, view)).collect()),
                error: None,
            },
            Err(e) => KeysJson { device: device.to_string(), generation: None, keys: None, error: Some(e.clone()) },
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ReservationJson {
    pub key: KeyJson,
    /// SPC type code (5 = Write Exclusive, registrants only).
    #[serde(rename = "type")]
    pub type_code: u8,
    pub type_name: String,
    pub scope: u8,
}

#[derive(Debug, Serialize)]
pub struct DeviceReservationJson {
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// `null` when no reservation is held (and no error).
    pub reservation: Option<ReservationJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn reservation_json(
    devices: &[DeviceResult<'_, ReservationReply>],
    view: &ClusterView,
) -> Vec<DeviceReservationJson> {
    devices
        .iter()
        .map(|(device, result)| match result {
            Ok(r) => DeviceReservationJson {
                device: device.to_string(),
                generation: Some(r.generation),
                reservation: r.reservation.map(|res| ReservationJson {
                    key: KeyJson::new(res.key, view),
                    type_code: res.kind.code(),
                    type_name: res.kind.to_string(),
                    scope: res.scope,
                }),
                error: None,
            },
            Err(e) => DeviceReservationJson {
                device: device.to_string(),
                generation: None,
                reservation: None,
                error: Some(e.clone()),
            },
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct InquiryJson<'a> {
    pub device: &'a str,
    pub vendor: &'a str,
    pub product: &'a str,
    pub revision: &'a str,
    pub serial: Option<&'a str>,
    pub peripheral_type: u8,
    pub peripheral_type_name: &'static str,
    /// VPD page 0x83, each designator as text (`naa.6001405...`) with its
    /// association; empty if the device did not answer the page.
    pub designators: Vec<DesignatorJson>,
}

#[derive(Debug, Serialize)]
pub struct DesignatorJson {
    pub association: crate::parse::Association,
    pub value: String,
}

pub fn inquiry_json<'a>(
    device: &'a str,
    inq: &'a StandardInquiry,
    serial: Option<&'a str>,
    ids: &[Designator],
) -> InquiryJson<'a> {
    InquiryJson {
        device,
        vendor: &inq.vendor,
        product: &inq.product,
        revision: &inq.revision,
        serial,
        peripheral_type: inq.peripheral_type,
        peripheral_type_name: inq.peripheral_type_name(),
        designators: ids
            .iter()
            .map(|d| DesignatorJson { association: d.association, value: d.value.to_string() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Reservation, ReservationType};

    fn view() -> ClusterView {
        ClusterView { cluster_id: Some(0xDEED), hosts: [(0, "galaxy".to_string()), (1, "nebula".to_string())].into() }
    }

    fn keys(keys: Vec<Key>) -> KeyList {
        KeyList { generation: 3, additional_length: 8 * keys.len() as u32, keys, truncated: false }
    }

    #[test]
    fn keys_in_the_vcs_s_shape() {
        let list = keys(vec![Key::coordinator(0xDEED, 0), Key::coordinator(0x0001, 1), Key(0x123abc)]);
        let err = "cannot open /dev/sdz: No such file or directory (os error 2)".to_string();
        let text = keys_text(&[("/dev/sdb", Ok(&list)), ("/dev/sdz", Err(err))], &view(), true);
        assert_eq!(
            text,
            "Reading SCSI Registration Keys...\n\
             \n\
             Device Name: /dev/sdb\n\
             Total Number of Keys: 3\n\
             key[0]:\n\
             \x20 [Numeric Format]: 86,70,68,69,69,68,48,48\n\
             \x20 [Character Format]: VFDEED00\n\
             \x20 [Hex Format]: 0x5646444545443030\n\
             * [Node Format]: Cluster ID: 57069 Node ID: 0 Node Name: galaxy\n\
             key[1]:\n\
             \x20 [Numeric Format]: 86,70,48,48,48,49,48,49\n\
             \x20 [Character Format]: VF000101\n\
             \x20 [Hex Format]: 0x5646303030313031\n\
             \x20 [Node Format]: Cluster ID: 1 Node ID: 1 Node Name: unknown\n\
             key[2]:\n\
             \x20 [Numeric Format]: 0,0,0,0,0,18,58,188\n\
             \x20 [Character Format]: ......:.\n\
             \x20 [Hex Format]: 0x123abc\n\
             \x20 [Node Format]: Cluster ID: unknown Node ID: unknown Node Name: unknown (not a VCS key)\n\
             \n\
             Device Name: /dev/sdz\n\
             Error: cannot open /dev/sdz: No such file or directory (os error 2)\n"
        );
    }

    #[test]
    fn keys_in_the_vcs_g_shape() {
        let list = keys(vec![Key::from_bytes(*b"APGR0000")]);
        let text = keys_text(&[("/dev/sdb", Ok(&list))], &ClusterView::default(), false);
        assert!(text.ends_with(
            "Total Number of Keys: 1\nkey[0]:\n  Key Value [Numeric Format]: 65,80,71,82,48,48,48,48\n  Key Value [Character Format]: APGR0000\n"
        ));
    }

    #[test]
    fn reservation_shapes() {
        let held = ReservationReply {
            generation: 4,
            reservation: Some(Reservation {
                key: Key::data(0xDEED, 1),
                scope: 0,
                kind: ReservationType::WriteExclusiveRegistrantsOnly,
            }),
        };
        let none = ReservationReply { generation: 4, reservation: None };
        let text = reservation_text(&[("/dev/sdd", Ok(&held)), ("/dev/sde", Ok(&none))], &view());
        assert_eq!(
            text,
            "Reading SCSI Reservation Information...\n\
             \n\
             Device Name: /dev/sdd\n\
             Total Number of Keys: 1\n\
             key[0]:\n\
             \x20 Reservation Type: SCSI3_RESV_WRITEEXCLUSIVEREGISTRANTSONLY (type 5: Write Exclusive, registrants only)\n\
             \x20 Key Value [Numeric Format]: 66,80,71,82,68,69,69,68\n\
             \x20 Key Value [Character Format]: BPGRDEED\n\
             \x20 Key Value [Hex Format]: 0x4250475244454544\n\
             * [Node Format]: Cluster ID: 57069 Node ID: 1 Node Name: nebula\n\
             \n\
             Device Name: /dev/sde\n\
             Total Number of Keys: 0\n\
             No reservation on this device\n"
        );
        let json = serde_json::to_string(&reservation_json(&[("/dev/sdd", Ok(&held))], &view())).unwrap();
        assert_eq!(
            json,
            r#"[{"device":"/dev/sdd","generation":4,"reservation":{"key":{"hex":"0x4250475244454544","chars":"BPGRDEED","numeric":"66,80,71,82,68,69,69,68","owner":{"kind":"data","cluster":57069,"node":1},"node_name":"nebula","local_cluster":true},"type":5,"type_name":"Write Exclusive, registrants only","scope":0}}]"#
        );
    }

    #[test]
    fn keys_json_with_an_error() {
        let list = keys(vec![Key::coordinator(0xDEED, 0)]);
        let json =
            serde_json::to_string(&keys_json(&[("/dev/sdb", Ok(&list)), ("/dev/sdc", Err("boom".into()))], &view()))
                .unwrap();
        assert_eq!(
            json,
            r#"[{"device":"/dev/sdb","generation":3,"keys":[{"hex":"0x5646444545443030","chars":"VFDEED00","numeric":"86,70,68,69,69,68,48,48","owner":{"kind":"coordinator","cluster":57069,"node":0},"node_name":"galaxy","local_cluster":true}]},{"device":"/dev/sdc","error":"boom"}]"#
        );
    }

    #[test]
    fn inquiry_and_mode_shapes() {
        let inq = StandardInquiry {
            peripheral_qualifier: 0,
            peripheral_type: 0,
            version: 6,
            tpgs: 1,
            vendor: "LIO-ORG".into(),
            product: "FILEIO".into(),
            revision: "4.0".into(),
        };
        assert_eq!(
            inquiry_text(&inq, Some("prlab-disk0")),
            "Vendor id       : LIO-ORG\nProduct id      : FILEIO\nRevision        : 4.0\nSerial Number   : prlab-disk0\n"
        );
        let m =
            FenMode { mode: crate::config::Mode::Scsi3, disk_policy: crate::config::DiskPolicy::Raw, node_weight: 1 };
        assert!(mode_text(&m).contains(" Fencing Mode: SCSI3\n Fencing SCSI3 Disk Policy: raw\n"));
    }
}
