//! `lltconfig`: start, stop and tune LLT on this node, as in VCS.

use clap::{ArgGroup, Parser};
use llt::cli::{self, HA_ROOT_HELP};
use llt::ctl::{Request, Response};
use llt::show;
use serde::Serialize;

const PROG: &str = "lltconfig";

/// Configure LLT (Low Latency Transport), the cluster's private-network
/// transport, through this node's LLT daemon (clusterd).
///
/// With no option: tell whether LLT is running (exit status 0) or not
/// (exit status 1).
#[derive(Parser)]
#[command(
    name = PROG,
    after_help = HA_ROOT_HELP,
    group(ArgGroup::new("action").args(["configure", "unconfigure", "timers", "addresses"]))
)]
struct Args {
    /// Start LLT: read llttab and llthosts, open the links, and listen a few
    /// seconds (dupwait) for another node using this node id. Exits 0 once
    /// LLT runs; prints the configuration errors (llttab:LINE: ...) or the
    /// duplicate node id and exits 1 otherwise.
    #[arg(short = 'c')]
    configure: bool,
    /// Stop LLT: close every link and forget the peers. Other nodes see this
    /// node leave when their peerinact timer runs out.
    #[arg(short = 'U')]
    unconfigure: bool,
    /// 'query' shows the LLT timers; 'name:value[,name:value...]' sets them,
    /// in hundredths of a second (e.g. -T peerinact:1600,peertrouble:200).
    /// Timers: heartbeat, heartbeatlo (heartbeat interval on high/low-priority
    /// links), peertrouble, peertroublelo (silence before a link is in
    /// TROUBLE), peerinact (silence before a link is DOWN), dupwait (how long
    /// -c listens for a duplicate node id).
    #[arg(short = 'T', value_name = "query|name:value,...")]
    timers: Option<String>,
    /// 'list' shows each link and the addresses of the nodes on it: this
    /// node's own (marked permanent) and those learned from the peers.
    #[arg(short = 'a', value_name = "list", value_parser = ["list"])]
    addresses: Option<String>,
    /// Print JSON instead of text (VCS spelling: -json), for no option (the
    /// full status report), -T query (the timers) and -a list (the links).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LinksJson {
    links: Vec<show::LinkAddresses>,
}

fn main() {
    let args: Args = cli::parse(PROG);
    if args.configure {
        run_ok(Request::Configure);
    } else if args.unconfigure {
        run_ok(Request::Unconfigure);
    } else if let Some(spec) = &args.timers {
        if spec == "query" {
            query_timers(args.json);
        } else {
            set_timers(spec);
        }
    } else if args.addresses.is_some() {
        list_addresses(args.json);
    } else {
        show_phase(args.json);
    }
}

/// Requests answered by Ok or by an error to print.
fn run_ok(req: Request) {
    let mut client = cli::connect(PROG);
    let resp = cli::request(PROG, &mut client, req);
    cli::expect_ok(PROG, resp);
}

fn show_phase(json: bool) {
    let report = cli::status(PROG);
    if json {
        cli::print_json(PROG, &report);
    } else {
        cli::print(PROG, &format!("{}\n", show::phase_line(report.phase)));
    }
    // Like VCS: the exit status answers "is LLT running?" for scripts.
    if report.phase != Some(llt::core::Phase::Running) {
        std::process::exit(1);
    }
}

fn query_timers(json: bool) {
    let mut client = cli::connect(PROG);
    match cli::request(PROG, &mut client, Request::GetTimers) {
        Response::Timers(t) if json => cli::print_json(PROG, &t),
        Response::Timers(t) => cli::print(PROG, &show::timers(&t)),
        other => cli::fail(PROG, other),
    }
}

fn set_timers(spec: &str) {
    // All pairs are checked before the first is sent.
    let pairs = cli::parse_timer_assignments(spec).unwrap_or_else(|e| cli::die(PROG, e));
    let mut client = cli::connect(PROG);
    for (name, value) in pairs {
        match cli::request(PROG, &mut client, Request::SetTimer { name, value }) {
            // ctl.rs leaves the success answer open; clusterd sends the
            // timers now in force.
            Response::Ok | Response::Timers(_) => {}
            other => cli::fail(PROG, other),
        }
    }
}

fn list_addresses(json: bool) {
    let report = cli::status(PROG);
    if report.phase.is_none() {
        cli::die(PROG, show::phase_line(None));
    }
    let links = show::link_addresses(&report);
    if json {
        cli::print_json(PROG, &LinksJson { links });
    } else {
        cli::print(PROG, &show::link_addresses_text(&links));
    }
}
