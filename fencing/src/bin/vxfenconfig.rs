//! `vxfenconfig`: start and stop I/O fencing on this node, as VCS's
//! vxfenconfig configures the vxfen driver. Fencing runs in clusterd; this
//! command asks it over `$HA_ROOT/run/ha/vxfen.sock`.

use clap::{ArgGroup, Parser};
use fencing::ctl::{FenClient, FenRequest, FenResponse};
use fencing::show;
use llt::cli;

const PROG: &str = "vxfenconfig";

const AFTER_HELP: &str = "\
-c reads $HA_ROOT/etc/vxfenmode (vxfen_mode=scsi3|disabled, \
scsi3_disk_policy, node_weight), vxfentab (coordinator disks: an odd \
number) and vxfendata (data disks, optional). GAB must be running with a \
membership. In scsi3 mode it refuses to start when a coordinator disk holds \
the key of a node of this cluster that is not in the GAB membership (a \
possible pre-existing split brain): once those nodes are known to be down, \
clear the keys with vxfenclearpre. Then it registers this node's key \
(VF<cluster><node>) on every coordinator disk and its data key on every \
data disk (reserving a data disk Write Exclusive Registrants Only if nobody \
has), and joins GAB port b.

From then on, when nodes leave port b without vxfenconfig -U, the lowest \
node of each partition races for the coordinator disks; the partition that \
wins a majority ejects the departed from the data disks, the others stop \
their cluster services (GAB clients such as HAD are told to halt, GAB \
leaves) and stay out until clusterd restarts.

-U removes this node's keys and leaves port b (refused while HAD holds port \
h). -l lists the disks in use.

Exit status: 0 done; 1 refused or failed (the reason is printed).";

/// Configure (-c), unconfigure (-U) or list (-l) I/O fencing on this node.
#[derive(Parser, Debug)]
#[command(name = PROG, after_help = AFTER_HELP)]
#[command(group(ArgGroup::new("action").required(true).args(["configure", "unconfigure", "list"])))]
struct Args {
    /// Start fencing: startup check, register keys, join port b.
    #[arg(short = 'c')]
    configure: bool,
    /// Stop fencing: remove this node's keys, leave port b.
    #[arg(short = 'U')]
    unconfigure: bool,
    /// List the coordinator and data disks in use.
    #[arg(short = 'l')]
    list: bool,
    /// With -l: JSON.
    #[arg(long = "json")]
    json: bool,
}

fn main() {
    let a: Args = cli::parse(PROG);
    let mut client = FenClient::connect().unwrap_or_else(|e| cli::die(PROG, fencing::ctl::error_text(&e)));
    let req = if a.configure {
        FenRequest::Configure
    } else if a.unconfigure {
        FenRequest::Unconfigure
    } else {
        FenRequest::Status
    };
    match client.request(req).unwrap_or_else(|e| cli::die(PROG, fencing::ctl::error_text(&e))) {
        FenResponse::Ok(text) => cli::print(PROG, &format!("{text}\n")),
        FenResponse::Error(e) => cli::die(PROG, e),
        FenResponse::Status(st) => {
            if !st.configured {
                cli::die(PROG, st.halted.map_or("fencing is not configured (vxfenconfig -c)".to_string(), |h| format!("fencing halted: {h}")));
            }
            if a.json {
                cli::print_json(PROG, &st);
            } else {
                cli::print(PROG, &show::disks_text(&st));
            }
        }
    }
}
