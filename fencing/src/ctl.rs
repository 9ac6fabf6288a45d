//! The protocol between clusterd's fencing and its commands (`vxfenconfig`,
//! `vxfenadm -d`): a Unix stream socket at `$HA_ROOT/run/ha/vxfen.sock`,
//! framed as LLT's control socket (4-byte big-endian length, bincode 2 with
//! a decode limit). One [`FenRequest`], one [`FenResponse`], in order.

use crate::member::LastRace;
use llt::ctl::{Client, CtlError};
use llt::NodeId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenRequest {
    /// `vxfenconfig -c`: read vxfenmode/vxfentab/vxfendata, check the
    /// coordinator disks for keys of nodes outside the GAB membership,
    /// register this node's keys and join port b.
    Configure,
    /// `vxfenconfig -U`: tell port b, remove this node's keys, leave port b
    /// (refused while other GAB ports are open: stop HAD first).
    Unconfigure,
    /// `vxfenadm -d`, `vxfenconfig -l`.
    Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenResponse {
    /// Done; the text says what was done.
    Ok(String),
    Error(String),
    Status(Box<FenStatus>),
}

/// A coordinator or data disk in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInUse {
    pub path: String,
    /// Unit serial number (VPD page 0x80) read at configuration.
    pub serial: Option<String>,
    pub major: u32,
    pub minor: u32,
}

/// What the node's fencing is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenStatus {
    pub node: NodeId,
    pub cluster: u16,
    /// Fencing is running on this node (port b held).
    pub configured: bool,
    /// "SCSI3" or "Disabled".
    pub mode: String,
    pub disk_policy: String,
    pub weight: u32,
    /// Port b members as this node sees them.
    pub members: Vec<NodeId>,
    /// Departed nodes not fenced yet (the other ports are held meanwhile).
    pub pending: Vec<NodeId>,
    pub racer: Option<NodeId>,
    pub last_race: Option<LastRace>,
    /// Why this node stopped its cluster services, if it lost a race.
    pub halted: Option<String>,
    pub coordinators: Vec<DiskInUse>,
    pub data: Vec<DiskInUse>,
}

/// A blocking connection to `$HA_ROOT/run/ha/vxfen.sock`.
pub struct FenClient {
    conn: Client,
}

impl FenClient {
    pub fn connect() -> Result<FenClient, CtlError> {
        Self::connect_to(&socket())
    }

    pub fn connect_to(path: &std::path::Path) -> Result<FenClient, CtlError> {
        let conn = Client::connect_to(path)?;
        conn.stream().set_read_timeout(Some(llt::cli::REQUEST_TIMEOUT))?;
        Ok(FenClient { conn })
    }

    pub fn request(&mut self, req: FenRequest) -> Result<FenResponse, CtlError> {
        self.conn.send_any(&req)?;
        self.conn.recv_any()
    }
}

/// Where clusterd's fencing listens.
pub fn socket() -> std::path::PathBuf {
    llt::paths::run_dir().join("vxfen.sock")
}

/// One readable line for an error on the fencing socket.
pub fn error_text(e: &CtlError) -> String {
    llt::cli::service_error_text(e, "fencing")
}
