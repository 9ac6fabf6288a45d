//! HA_ROOT: one prefix for every path a binary uses, so several nodes can run
//! on one machine (one namespace and one root directory each).

use std::path::PathBuf;

/// The value of `HA_ROOT`, or empty (meaning `/`).
pub fn ha_root() -> PathBuf {
    PathBuf::from(std::env::var_os("HA_ROOT").unwrap_or_default())
}

/// `$HA_ROOT` joined with an absolute path such as `/etc/llttab`.
pub fn under_root(abs: &str) -> PathBuf {
    let root = ha_root();
    if root.as_os_str().is_empty() {
        PathBuf::from(abs)
    } else {
        root.join(abs.trim_start_matches('/'))
    }
}

pub fn llttab() -> PathBuf { under_root("/etc/llttab") }
pub fn llthosts() -> PathBuf { under_root("/etc/llthosts") }
/// Directory of the node daemon's sockets.
pub fn run_dir() -> PathBuf { under_root("/run/ha") }
/// Control socket of clusterd's LLT part (lltconfig, lltstat, lltmsg).
pub fn llt_socket() -> PathBuf { run_dir().join("llt.sock") }
/// Client socket of clusterd's GAB part (gabconfig, GAB clients such as HAD).
pub fn gab_socket() -> PathBuf { run_dir().join("gab.sock") }
/// Where GAB keeps its incarnation counter (it must grow across restarts).
pub fn gab_incarnation() -> PathBuf { under_root("/var/lib/ha/gab.incarnation") }
pub fn gabtab() -> PathBuf { under_root("/etc/gabtab") }
