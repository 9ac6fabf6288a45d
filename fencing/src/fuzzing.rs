//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/scsi_parse.rs`)
//! and the CI smoke run (`tests/fuzz_smoke.rs`): one entry point that
//! hands the same bytes to every parser, and real replies to start from.

use crate::show::{self, ClusterView};
use crate::{config, key, parse, sense, sg};
use std::path::Path;

/// Feeds `data` to every parser of the crate, and what parses on to the
/// output code. Anything may come back as an error; nothing may panic.
pub fn parse_all(data: &[u8]) {
    let view = ClusterView { cluster_id: Some(0xDEED), hosts: [(0, "galaxy".to_string())].into() };
    if let Ok(list) = parse::read_keys(data) {
        let _ = show::keys_text(&[("/dev/sdb", Ok(&list))], &view, true);
        let _ = show::keys_text(&[("/dev/sdb", Ok(&list))], &view, false);
        let _ = serde_json::to_string(&show::keys_json(&[("/dev/sdb", Ok(&list))], &view));
    }
    if let Ok(res) = parse::read_reservation(data) {
        let _ = show::reservation_text(&[("/dev/sdb", Ok(&res))], &view);
        let _ = serde_json::to_string(&show::reservation_json(&[("/dev/sdb", Ok(&res))], &view));
    }
    let _ = parse::report_capabilities(data);
    if let Ok(inq) = parse::standard_inquiry(data) {
        let _ = show::inquiry_text(&inq, None);
    }
    let _ = parse::unit_serial(data);
    if let Ok(ids) = parse::device_identification(data) {
        for d in &ids {
            let _ = d.value.to_string();
        }
    }
    let _ = parse::read_capacity10(data);
    if let Ok(s) = sense::parse(data) {
        let _ = s.to_string();
    }
    // The status decoder, with the first byte as SCSI status and the rest
    // as sense data.
    if let Some((&status, rest)) = data.split_first() {
        let c = sg::Completion { status, host_status: 0, driver_status: 0x08, sense: rest.to_vec(), resid: 0 };
        if let Err(e) = sg::check(&c, 1000) {
            let _ = e.to_string();
        }
    }
    if data.len() >= 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[..8]);
        let k = key::Key::from_bytes(b);
        let _ = (k.owner(), k.numeric(), k.chars(), k.hex(), k.to_string());
    }
    let text = String::from_utf8_lossy(data);
    let _ = key::Key::parse(&text);
    let _ = config::parse_vxfenmode(Path::new("vxfenmode"), &text);
    let _ = config::parse_vxfentab(Path::new("vxfentab"), &text);
    // What arrives on GAB port b and on the vxfen socket.
    if let Ok(m) = crate::member::Msg::decode(data) {
        let _ = m.encode();
    }
    let _ = llt::ctl::decode_body::<crate::ctl::FenRequest>(data);
    let _ = llt::ctl::decode_body::<crate::ctl::FenResponse>(data);
}

/// Well-formed replies of every kind (as LIO answered in the lab, rebuilt
/// from SPC-4 layouts): seeds that mutations turn into near misses.
pub fn samples() -> Vec<Vec<u8>> {
    let mut keys = vec![0, 0, 0, 3, 0, 0, 0, 24];
    for k in [0x1111_aaaau64, 0x2222_bbbb, 0x5646_4445_4544_3030] {
        keys.extend_from_slice(&k.to_be_bytes());
    }
    let mut reservation = vec![0, 0, 0, 3, 0, 0, 0, 16];
    reservation.extend_from_slice(b"VFDEED00");
    reservation.extend_from_slice(&[0, 0, 0, 0, 0, 0x05, 0, 0]);
    let mut inquiry = vec![0x00, 0x00, 0x06, 0x12, 0x3f, 0x10, 0x00, 0x02];
    inquiry.extend_from_slice(b"LIO-ORG FILEIO          4.0 ");
    inquiry.resize(64, 0);
    let mut serial = vec![0x00, 0x80, 0x00, 0x0b];
    serial.extend_from_slice(b"prlab-disk0");
    let mut ids = vec![0x00, 0x83, 0x00, 0x00];
    ids.extend_from_slice(&[0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x5a, 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let t10 = b"LIO-ORG FILEIO:prlab-disk0";
    ids.extend_from_slice(&[0x02, 0x01, 0x00, t10.len() as u8]);
    ids.extend_from_slice(t10);
    ids.extend_from_slice(&[0x51, 0x94, 0x00, 0x04, 0, 0, 0, 1]);
    let name = b"iqn.2003-01.org.linux-iscsi.prlab:disk0,t,0x0001\0\0\0\0";
    ids.extend_from_slice(&[0x53, 0x98, 0x00, name.len() as u8]);
    ids.extend_from_slice(name);
    let page_len = (ids.len() - 4) as u16;
    ids[2..4].copy_from_slice(&page_len.to_be_bytes());
    vec![
        keys,
        reservation,
        vec![0x00, 0x08, 0x15, 0x80, 0xea, 0x01, 0, 0],
        inquiry,
        serial,
        ids,
        vec![0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x02, 0x00],
        vec![0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x2a, 0x05, 0, 0, 0, 0],
        vec![0x72, 0x05, 0x24, 0x00, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0xcf, 0x00, 0x01, 0],
        b"vxfen_mode=scsi3\nscsi3_disk_policy=raw\nnode_weight=2\n".to_vec(),
        b"/dev/sdb\n/dev/sdc serial\n/dev/sdd\n".to_vec(),
        b"VFDEED00".to_vec(),
    ]
}
