//! Wire compatibility with sg3_utils, without a device: the CDBs and PR OUT
//! parameter lists below were captured from `sg_persist -n -vvv ...`
//! (sg3_utils 1.46, Debian 12), which prints both before the ioctl, and the
//! replies are the ones LIO sent sg_persist in the SCSI lab
//! (../shared/labs/scsi/logs/final-run.log), rebuilt byte by byte. If our
//! bytes equal sg_persist's, a device treats both tools alike, and keys one
//! writes are the keys the other reads.

use fencing::cdb::{self, PrInAction, PrOutAction, ProutParams};
use fencing::parse;
use fencing::{Key, KeyOwner, ReservationType};

const WERO: Option<ReservationType> = Some(ReservationType::WriteExclusiveRegistrantsOnly);

/// A 24-byte parameter list from sg_persist's hex dump.
fn params(rk: u64, sark: u64, byte20: u8) -> [u8; 24] {
    let mut p = [0u8; 24];
    p[0..8].copy_from_slice(&rk.to_be_bytes());
    p[8..16].copy_from_slice(&sark.to_be_bytes());
    p[20] = byte20;
    p
}

fn ours(rk: Key, sark: Key, aptpl: bool) -> [u8; 24] {
    cdb::prout_params(&ProutParams { key: rk, sa_key: sark, aptpl, all_tg_pt: false })
}

#[test]
fn pr_out_matches_sg_persist() {
    // sg_persist --out --register --param-sark=0x5646444545443030
    assert_eq!(cdb::pr_out(PrOutAction::Register, None), [0x5f, 0x00, 0x00, 0, 0, 0, 0, 0, 0x18, 0]);
    assert_eq!(ours(Key::NONE, Key::coordinator(0xDEED, 0), false), params(0, 0x5646_4445_4544_3030, 0));
    // --out --reserve --param-rk=0x1111aaaa --prout-type=5
    assert_eq!(cdb::pr_out(PrOutAction::Reserve, WERO), [0x5f, 0x01, 0x05, 0, 0, 0, 0, 0, 0x18, 0]);
    assert_eq!(ours(Key(0x1111_aaaa), Key::NONE, false), params(0x1111_aaaa, 0, 0));
    // --out --release --param-rk=0x1111aaaa --prout-type=5
    assert_eq!(cdb::pr_out(PrOutAction::Release, WERO), [0x5f, 0x02, 0x05, 0, 0, 0, 0, 0, 0x18, 0]);
    // --out --clear --param-rk=0x3333cccc
    assert_eq!(cdb::pr_out(PrOutAction::Clear, None), [0x5f, 0x03, 0x00, 0, 0, 0, 0, 0, 0x18, 0]);
    // --out --preempt --param-rk=0x3333cccc --param-sark=0x2222bbbb --prout-type=5
    assert_eq!(cdb::pr_out(PrOutAction::Preempt, WERO), [0x5f, 0x04, 0x05, 0, 0, 0, 0, 0, 0x18, 0]);
    assert_eq!(ours(Key(0x3333_cccc), Key(0x2222_bbbb), false), params(0x3333_cccc, 0x2222_bbbb, 0));
    // --out --preempt-abort (same parameters)
    assert_eq!(cdb::pr_out(PrOutAction::PreemptAndAbort, WERO), [0x5f, 0x05, 0x05, 0, 0, 0, 0, 0, 0x18, 0]);
    // --out --register-ignore --param-sark=0x434c454152505245 ("CLEARPRE")
    assert_eq!(
        cdb::pr_out(PrOutAction::RegisterAndIgnoreExistingKey, None),
        [0x5f, 0x06, 0x00, 0, 0, 0, 0, 0, 0x18, 0]
    );
    assert_eq!(ours(Key::NONE, Key::from_bytes(*b"CLEARPRE"), false), params(0, 0x434c_4541_5250_5245, 0));
    // --out --register --param-rk=0x2222bbbb --param-sark=0x0 (unregister)
    assert_eq!(ours(Key(0x2222_bbbb), Key::NONE, false), params(0x2222_bbbb, 0, 0));
    // --out --register --param-sark=0x1 --param-aptpl
    assert_eq!(ours(Key::NONE, Key(1), true), params(0, 1, 0x01));
}

#[test]
fn pr_in_and_others_match_sg3_utils() {
    // sg_persist -i -k / -i -r / -i -c (allocation length 0x2000)
    assert_eq!(cdb::pr_in(PrInAction::ReadKeys, 0x2000), [0x5e, 0x00, 0, 0, 0, 0, 0, 0x20, 0x00, 0]);
    assert_eq!(cdb::pr_in(PrInAction::ReadReservation, 0x2000), [0x5e, 0x01, 0, 0, 0, 0, 0, 0x20, 0x00, 0]);
    assert_eq!(cdb::pr_in(PrInAction::ReportCapabilities, 0x2000), [0x5e, 0x02, 0, 0, 0, 0, 0, 0x20, 0x00, 0]);
    // sg_inq: [12 00 00 00 24 00]; sg_vpd -p sn: [12 01 80 00 fc 00]
    assert_eq!(cdb::inquiry(0x24), [0x12, 0x00, 0x00, 0x00, 0x24, 0x00]);
    assert_eq!(cdb::inquiry_vpd(0x80, 0xfc), [0x12, 0x01, 0x80, 0x00, 0xfc, 0x00]);
    // sg_turs, sg_readcap
    assert_eq!(cdb::test_unit_ready(), [0; 6]);
    assert_eq!(cdb::read_capacity10(), [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn sg_persist_keys_read_back() {
    // "PR generation=0x4, 2 registered reservation keys follow: 0x1111aaaa 0x3333cccc"
    let mut reply = vec![0, 0, 0, 4, 0, 0, 0, 16];
    reply.extend_from_slice(&0x1111_aaaau64.to_be_bytes());
    reply.extend_from_slice(&0x3333_ccccu64.to_be_bytes());
    let list = parse::read_keys(&reply).unwrap();
    assert_eq!(list.generation, 4);
    let shown: Vec<String> = list.keys.iter().map(|k| k.hex()).collect();
    assert_eq!(shown, ["0x1111aaaa", "0x3333cccc"], "the same spelling as sg_persist");
    assert!(list.keys.iter().all(|k| k.owner() == KeyOwner::Foreign));
    // Our key as sg_persist prints it, and back.
    assert_eq!(Key::coordinator(0xDEED, 0).hex(), "0x5646444545443030");
    assert_eq!(Key::parse("0x5646444545443030").unwrap().owner(), KeyOwner::Coordinator { cluster: 0xDEED, node: 0 });
}

#[test]
fn sg_persist_reservation_reads_back() {
    // "PR generation=0x5, Reservation follows: Key=0x3333cccc
    //  scope: LU_SCOPE,  type: Write Exclusive, registrants only"
    let mut reply = vec![0, 0, 0, 5, 0, 0, 0, 16];
    reply.extend_from_slice(&0x3333_ccccu64.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0, 0, 0x05, 0, 0]);
    let r = parse::read_reservation(&reply).unwrap().reservation.unwrap();
    assert_eq!((r.key.hex(), r.scope), ("0x3333cccc".to_string(), 0));
    assert_eq!(r.kind.to_string(), "Write Exclusive, registrants only");
}
