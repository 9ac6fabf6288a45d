//! Fencing configuration files, all under `$HA_ROOT`:
//!
//! - `/etc/vxfenmode`: `key=value` lines, `#` comments.
//!   - `vxfen_mode=scsi3|disabled` (required). `customized` (coordination
//!     point servers) is refused: not supported yet.
//!   - `scsi3_disk_policy=raw|dmp` (default `raw`). There is no DMP layer
//!     here: both use the paths of vxfentab as written (a multipath device
//!     node works if its driver passes PR commands through); `dmp` is
//!     accepted so a VCS vxfenmode reads unchanged.
//!   - `node_weight=N` (ours, default 1, 0..=1000000): this node's weight
//!     for preferred fencing. After a split each partition adds up its
//!     members' weights; the lighter one delays its race so the heavier
//!     wins. With every weight 1 the partition with more nodes is heavier.
//! - `/etc/vxfentab`: the coordinator disks, one per line: a device path
//!   (`/dev/sdb`, `/dev/sg1`, `/dev/disk/by-id/...`), optionally followed by
//!   the disk's unit serial number as VCS writes it. An odd number is
//!   required (3 by default): the race is won by a strict majority.
//! - `/etc/vxfendata` (ours; VCS finds data disks through its disk
//!   groups): the data disks, same line format, optional. After winning a
//!   race the survivors eject the losers' keys from these.
//!
//! Every problem found is reported with file and line (line 0 when it is
//! about the file as a whole) and what was expected; the whole file is
//! read so every mistake shows at once. Parsing never panics.

use llt::config::{ConfigError, Diagnostic, Sink};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn vxfenmode_path() -> PathBuf {
    llt::paths::under_root("/etc/vxfenmode")
}
pub fn vxfentab_path() -> PathBuf {
    llt::paths::under_root("/etc/vxfentab")
}
pub fn vxfendata_path() -> PathBuf {
    llt::paths::under_root("/etc/vxfendata")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// SCSI-3 persistent reservations on coordinator disks.
    Scsi3,
    /// No fencing: the cluster runs without protection against split brain.
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskPolicy {
    Raw,
    Dmp,
}

pub const DEFAULT_NODE_WEIGHT: u32 = 1;
pub const MAX_NODE_WEIGHT: u32 = 1_000_000;

/// The contents of vxfenmode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FenMode {
    pub mode: Mode,
    pub disk_policy: DiskPolicy,
    pub node_weight: u32,
}

/// One disk of vxfentab or vxfendata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub path: PathBuf,
    /// The unit serial number written after the path, if any.
    pub serial: Option<String>,
    /// Line in its file, for later messages ("disk of vxfentab line 2").
    pub line: usize,
}

/// Everything fencing reads at configuration time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FencingConfig {
    pub fenmode: FenMode,
    /// Empty when the mode is `disabled`.
    pub coordinators: Vec<Disk>,
    pub data: Vec<Disk>,
}

/// Lines without comments and surrounding blanks, numbered from 1; empty
/// lines are skipped.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

const SETTINGS: &str = "vxfen_mode, scsi3_disk_policy or node_weight";

pub fn parse_vxfenmode(file: &Path, text: &str) -> Result<FenMode, ConfigError> {
    let mut sink = Sink::new(file);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut mode = None;
    let mut disk_policy = DiskPolicy::Raw;
    let mut node_weight = DEFAULT_NODE_WEIGHT;
    for (n, line) in content_lines(text) {
        let Some((name, value)) = line.split_once('=') else {
            sink.err(n, format!("expected name=value (e.g. vxfen_mode=scsi3), found '{line}'"));
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if let Some(first) = seen.insert(name.to_string(), n) {
            sink.err(n, format!("{name} is set twice (first on line {first})"));
            continue;
        }
        match name {
            "vxfen_mode" => match value.to_ascii_lowercase().as_str() {
                "scsi3" => mode = Some(Mode::Scsi3),
                "disabled" => mode = Some(Mode::Disabled),
                "customized" => sink.err(
                    n,
                    "vxfen_mode=customized (coordination point servers) is not supported yet; use scsi3 or disabled",
                ),
                _ => sink.err(n, format!("unknown vxfen_mode '{value}' (expected scsi3 or disabled)")),
            },
            "scsi3_disk_policy" => match value.to_ascii_lowercase().as_str() {
                "raw" => disk_policy = DiskPolicy::Raw,
                "dmp" => disk_policy = DiskPolicy::Dmp,
                _ => sink.err(n, format!("unknown scsi3_disk_policy '{value}' (expected raw or dmp)")),
            },
            "node_weight" => match value.parse::<u32>() {
                Ok(w) if w <= MAX_NODE_WEIGHT => node_weight = w,
                _ => sink.err(n, format!("bad node_weight '{value}' (expected a whole number 0..={MAX_NODE_WEIGHT})")),
            },
            "vxfendg" => {
                sink.err(n, "vxfendg (a VxVM disk group) is not used here: list the coordinator disks in vxfentab")
            }
            "vxfen_mechanism" => {
                sink.err(n, "vxfen_mechanism belongs to vxfen_mode=customized, which is not supported yet")
            }
            _ => sink.err(n, format!("unknown setting '{name}' (expected {SETTINGS})")),
        }
    }
    if mode.is_none() && !seen.contains_key("vxfen_mode") {
        sink.err(0, "vxfen_mode is missing (expected vxfen_mode=scsi3 or vxfen_mode=disabled)");
    }
    let fenmode = FenMode { mode: mode.unwrap_or(Mode::Disabled), disk_policy, node_weight };
    sink.finish(fenmode)
}

/// Checks a disk list line by line (what `vxfenadm -f FILE` reads, and
/// the common part of vxfentab and vxfendata): an absolute path, at most a
/// serial after it, no path or serial twice (two paths to one LUN would
/// count one disk twice in a majority).
fn parse_disks_into(sink: &mut Sink, text: &str) -> Vec<Disk> {
    let mut disks: Vec<Disk> = Vec::new();
    for (n, line) in content_lines(text) {
        let mut fields = line.split_whitespace();
        let path = fields.next().unwrap_or_default();
        let serial = fields.next().map(str::to_string);
        if fields.next().is_some() {
            sink.err(n, format!("expected a device path and at most a serial number, found '{line}'"));
            continue;
        }
        if !path.starts_with('/') {
            sink.err(n, format!("expected an absolute device path such as /dev/sdb, found '{path}'"));
            continue;
        }
        if let Some(first) = disks.iter().find(|d| d.path == Path::new(path)) {
            sink.err(n, format!("{path} is listed twice (first on line {})", first.line));
            continue;
        }
        if let Some(first) = disks.iter().find(|d| serial.is_some() && d.serial == serial) {
            sink.err(
                n,
                format!(
                    "serial {} is already on line {}: two paths to one disk must be listed once",
                    serial.as_deref().unwrap_or_default(),
                    first.line
                ),
            );
            continue;
        }
        disks.push(Disk { path: PathBuf::from(path), serial, line: n });
    }
    disks
}

/// A plain list of disks (vxfendata, or a file given to vxfenadm -f).
pub fn parse_disk_list(file: &Path, text: &str) -> Result<Vec<Disk>, ConfigError> {
    let mut sink = Sink::new(file);
    let disks = parse_disks_into(&mut sink, text);
    sink.finish(disks)
}

/// vxfentab: a disk list with an odd number of disks.
pub fn parse_vxfentab(file: &Path, text: &str) -> Result<Vec<Disk>, ConfigError> {
    let mut sink = Sink::new(file);
    let disks = parse_disks_into(&mut sink, text);
    if sink.diags.is_empty() {
        match disks.len() {
            0 => sink.err(0, "no coordinator disks (expected an odd number of device paths, one per line; 3 by default)"),
            n if n % 2 == 0 => sink.err(
                0,
                format!("{n} coordinator disks: an even number cannot give a strict majority (expected an odd number, 3 by default)"),
            ),
            _ => {}
        }
    }
    sink.finish(disks)
}

/// A whole file as text; a missing or unreadable file is a line-0 error.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            let mut sink = Sink::new(path);
            sink.err(0, format!("cannot read {}: {e}", path.display()));
            Err(ConfigError(sink.diags))
        }
    }
}

/// Reads and checks a disk list file (vxfenadm -f).
pub fn load_disk_list(path: &Path) -> Result<Vec<Disk>, ConfigError> {
    parse_disk_list(path, &read_file(path)?)
}

/// Reads vxfenmode, and with `vxfen_mode=scsi3` vxfentab and (if it
/// exists) vxfendata. A data disk that is also a coordinator disk is
/// refused: coordinator disks hold no data. Problems of every file are
/// returned together.
pub fn load(vxfenmode: &Path, vxfentab: &Path, vxfendata: &Path) -> Result<FencingConfig, ConfigError> {
    let fenmode = parse_vxfenmode(vxfenmode, &read_file(vxfenmode)?)?;
    if fenmode.mode == Mode::Disabled {
        return Ok(FencingConfig { fenmode, coordinators: Vec::new(), data: Vec::new() });
    }
    let mut diags = Vec::new();
    let coordinators = read_file(vxfentab).and_then(|t| parse_vxfentab(vxfentab, &t)).unwrap_or_else(|e| {
        diags.extend(e.0);
        Vec::new()
    });
    let data = if vxfendata.exists() {
        read_file(vxfendata).and_then(|t| parse_disk_list(vxfendata, &t)).unwrap_or_else(|e| {
            diags.extend(e.0);
            Vec::new()
        })
    } else {
        Vec::new()
    };
    for d in &data {
        if let Some(c) = coordinators.iter().find(|c| c.path == d.path || (c.serial.is_some() && c.serial == d.serial))
        {
            diags.push(Diagnostic {
                file: vxfendata.to_path_buf(),
                line: d.line,
                msg: format!(
                    "{} is a coordinator disk ({} line {}): coordinator disks cannot be data disks",
                    d.path.display(),
                    vxfentab.display(),
                    c.line
                ),
            });
        }
    }
    if diags.is_empty() {
        Ok(FencingConfig { fenmode, coordinators, data })
    } else {
        Err(ConfigError(diags))
    }
}

/// [`load`] with the files under `$HA_ROOT`.
pub fn load_default() -> Result<FencingConfig, ConfigError> {
    load(&vxfenmode_path(), &vxfentab_path(), &vxfendata_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(text: &str) -> Result<FenMode, String> {
        parse_vxfenmode(Path::new("/etc/vxfenmode"), text).map_err(|e| e.to_string())
    }

    fn tab(text: &str) -> Result<Vec<Disk>, String> {
        parse_vxfentab(Path::new("/etc/vxfentab"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn vxfenmode_as_vcs_writes_it() {
        let text = "# vxfen_mode determines in what mode VCS I/O Fencing should work.\n\
                    vxfen_mode=scsi3\n\n\
                    scsi3_disk_policy=dmp   # VCS default\n";
        assert_eq!(mode(text).unwrap(), FenMode { mode: Mode::Scsi3, disk_policy: DiskPolicy::Dmp, node_weight: 1 });
        assert_eq!(mode("vxfen_mode = disabled\nnode_weight = 10\n").unwrap().node_weight, 10);
        assert_eq!(mode("vxfen_mode=SCSI3").unwrap().disk_policy, DiskPolicy::Raw);
    }

    #[test]
    fn vxfenmode_errors_name_file_line_and_expectation() {
        assert_eq!(
            mode("vxfen_mode=customized\nvxfen_mechanism=cps\n").unwrap_err(),
            "/etc/vxfenmode:1: vxfen_mode=customized (coordination point servers) is not supported yet; use scsi3 or disabled\n\
             /etc/vxfenmode:2: vxfen_mechanism belongs to vxfen_mode=customized, which is not supported yet"
        );
        assert_eq!(
            mode("# nothing\n").unwrap_err(),
            "/etc/vxfenmode:0: vxfen_mode is missing (expected vxfen_mode=scsi3 or vxfen_mode=disabled)"
        );
        assert_eq!(
            mode("vxfen_mode=scsi3\nvxfen_mode=disabled\n").unwrap_err(),
            "/etc/vxfenmode:2: vxfen_mode is set twice (first on line 1)"
        );
        let all =
            mode("vxfen_mode=scsi4\nscsi3_disk_policy=fast\nnode_weight=-1\nbogus=1\njunk\nvxfendg=vxfencoorddg\n")
                .unwrap_err();
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(
            lines,
            [
                "/etc/vxfenmode:1: unknown vxfen_mode 'scsi4' (expected scsi3 or disabled)",
                "/etc/vxfenmode:2: unknown scsi3_disk_policy 'fast' (expected raw or dmp)",
                "/etc/vxfenmode:3: bad node_weight '-1' (expected a whole number 0..=1000000)",
                "/etc/vxfenmode:4: unknown setting 'bogus' (expected vxfen_mode, scsi3_disk_policy or node_weight)",
                "/etc/vxfenmode:5: expected name=value (e.g. vxfen_mode=scsi3), found 'junk'",
                "/etc/vxfenmode:6: vxfendg (a VxVM disk group) is not used here: list the coordinator disks in vxfentab",
            ]
        );
    }

    #[test]
    fn vxfentab_odd_number_of_disks() {
        let disks = tab("# coordinator disks\n/dev/sdb\n/dev/sdc  prlab-disk1\n\n/dev/sg3 # third\n").unwrap();
        assert_eq!(disks.len(), 3);
        assert_eq!(disks[1], Disk { path: "/dev/sdc".into(), serial: Some("prlab-disk1".into()), line: 3 });
        assert_eq!(disks[2].line, 5);
        assert_eq!(tab("/dev/sdb\n").unwrap().len(), 1);
        assert_eq!(
            tab("/dev/sdb\n/dev/sdc\n").unwrap_err(),
            "/etc/vxfentab:0: 2 coordinator disks: an even number cannot give a strict majority (expected an odd number, 3 by default)"
        );
        assert!(tab("# empty\n").unwrap_err().contains("no coordinator disks"));
    }

    #[test]
    fn vxfentab_line_errors() {
        assert_eq!(
            tab("/dev/sdb\nsdc\n/dev/sdd a b\n/dev/sdb\n").unwrap_err(),
            "/etc/vxfentab:2: expected an absolute device path such as /dev/sdb, found 'sdc'\n\
             /etc/vxfentab:3: expected a device path and at most a serial number, found '/dev/sdd a b'\n\
             /etc/vxfentab:4: /dev/sdb is listed twice (first on line 1)"
        );
        assert_eq!(
            tab("/dev/sdb S1\n/dev/sdc S2\n/dev/sdd S1\n").unwrap_err(),
            "/etc/vxfentab:3: serial S1 is already on line 1: two paths to one disk must be listed once"
        );
    }

    #[test]
    fn load_reads_all_three_files() {
        let dir = std::env::temp_dir().join(format!("fencing-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (m, t, d) = (dir.join("vxfenmode"), dir.join("vxfentab"), dir.join("vxfendata"));
        std::fs::write(&m, "vxfen_mode=scsi3\n").unwrap();
        std::fs::write(&t, "/dev/sda\n/dev/sdb\n/dev/sdc\n").unwrap();
        let c = load(&m, &t, &d).unwrap();
        assert_eq!((c.coordinators.len(), c.data.len()), (3, 0), "vxfendata is optional");
        std::fs::write(&d, "/dev/sdd\n/dev/sdb\n").unwrap();
        let e = load(&m, &t, &d).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:2: /dev/sdb is a coordinator disk ({} line 2): coordinator disks cannot be data disks",
                d.display(),
                t.display()
            )
        );
        std::fs::write(&d, "/dev/sdd\n").unwrap();
        assert_eq!(load(&m, &t, &d).unwrap().data[0].path, PathBuf::from("/dev/sdd"));
        std::fs::write(&m, "vxfen_mode=disabled\n").unwrap();
        std::fs::remove_file(&t).unwrap();
        assert!(load(&m, &t, &d).unwrap().coordinators.is_empty(), "disabled needs no vxfentab");
        std::fs::write(&m, "vxfen_mode=scsi3\n").unwrap();
        assert!(load(&m, &t, &d).unwrap_err().to_string().contains(":0: cannot read "));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
