//! `lltstat`: LLT counters and node/link states, as VCS prints them.

use clap::{ArgAction, Parser};
use llt::cli::{self, HA_ROOT_HELP};
use llt::ctl::StatusReport;
use llt::show::{self, NodeRow};
use serde::Serialize;

const PROG: &str = "lltstat";

/// Show LLT (Low Latency Transport) statistics and the state of every node
/// and link, as reported by this node's LLT daemon.
///
/// With no option: LLT's packet counters (sent, received, retransmitted,
/// dropped and why).
#[derive(Parser)]
#[command(name = PROG, after_help = HA_ROOT_HELP)]
struct Args {
    /// Show every node: its id, name (from llthosts), state (OPEN: reachable
    /// over at least one link; CONNWAIT: not reachable) and how many of its
    /// links are up. The local node is marked '*'.
    #[arg(short = 'n')]
    nodes: bool,
    /// With -n, also show each link of each node: its tag, status (UP, DOWN,
    /// TROUBLE: silent longer than peertrouble) and the node's address on it.
    /// Type -nvv as in VCS (one -v is enough).
    #[arg(short = 'v', action = ArgAction::Count, requires = "nodes")]
    verbose: u8,
    /// Print the daemon's full status report as JSON instead of text (VCS
    /// spelling: -json). With -n, it also holds a "nodes" list: the rows of
    /// the table. Printed even when LLT is not configured ("phase": null).
    #[arg(long)]
    json: bool,
}

/// `-n -json`: the report plus the table's rows, so scripts need not redo
/// the OPEN/CONNWAIT and link counting.
#[derive(Serialize)]
struct NodesJson<'a> {
    #[serde(flatten)]
    report: &'a StatusReport,
    nodes: Vec<NodeRow>,
}

fn main() {
    let args: Args = cli::parse(PROG);
    let report = cli::status(PROG);
    if args.json {
        if args.nodes {
            cli::print_json(PROG, &NodesJson { report: &report, nodes: show::node_rows(&report) });
        } else {
            cli::print_json(PROG, &report);
        }
        return;
    }
    if report.phase.is_none() {
        cli::die(PROG, show::phase_line(None));
    }
    let text = match (args.nodes, args.verbose) {
        (false, _) => show::stats(&report),
        (true, 0) => show::nodes(&show::node_rows(&report)),
        (true, _) => show::nodes_verbose(&show::node_rows(&report)),
    };
    cli::print(PROG, &text);
}
