//! `gabconfig`: start, seed, stop and show GAB on this node, as in VCS.
//!
//! The command line is turned into an [`Action`] by [`action_from`] (unit
//! tested below); `main` only talks to the daemon and prints.

use clap::{CommandFactory, Parser};
use gab::ctl::{self, GabClient, GabRequest, GabResponse, GabStatus};
use llt::cli;
use std::io::{self, Write};

const PROG: &str = "gabconfig";

/// Told by `--help`: where GAB answers and what gabtab is.
const GAB_FILES_HELP: &str = "\
Files: every path is under $HA_ROOT (default /). GAB runs inside the node \
daemon (clusterd) and answers on $HA_ROOT/run/ha/gab.sock; LLT must be \
running (lltconfig -c) before GAB can be configured. $HA_ROOT/etc/gabtab \
holds the line that starts GAB at boot, as in VCS: gabconfig -c -n N, with N \
the number of nodes in the cluster. Set HA_ROOT to talk to one node of \
several run on one machine.

Examples:
  gabconfig -c -n 3       start GAB; the cluster seeds once 3 nodes see each other
  gabconfig -x            seed now with the nodes present (when a node will not come)
  gabconfig -c -x         start GAB and seed at once (a single node, or by hand)
  gabconfig -a            port memberships (a: GAB, b: fencing, h: HAD)
  gabconfig -l -json      configuration and counters as JSON
  gabconfig -U            stop GAB (refused while a port is open)";

/// Configure GAB (Group membership and Atomic Broadcast), the cluster's
/// membership and ordered messaging layer, through this node's daemon
/// (clusterd), and show its port memberships.
///
/// With no option: print this help and exit 1.
#[derive(Parser, Debug)]
#[command(name = PROG, after_help = GAB_FILES_HELP)]
struct Args {
    /// Configure (start) GAB on this node, with the seed count -n (the
    /// gabtab line: gabconfig -c -n N). LLT must be running. No membership
    /// forms and no message is delivered until the cluster is seeded: until
    /// N nodes see each other, or -x seeds it by hand. A node that comes
    /// later joins the running cluster without waiting for N.
    #[arg(short = 'c')]
    configure: bool,
    /// With -c: the seed count, how many nodes must see each other before the
    /// cluster seeds (normally every node of the cluster, 1 to 64). Protects
    /// against two halves each starting their own cluster at boot.
    #[arg(short = 'n', value_name = "N", value_parser = parse_seed_n)]
    seed_n: Option<u32>,
    /// Seed the cluster now with the nodes present, without waiting for the
    /// seed count (VCS's manual seeding: only when the missing nodes are
    /// known to be down, or two clusters may form). With -c: configure and
    /// seed at once (seed count 1 unless -n gives one).
    #[arg(short = 'x')]
    seed: bool,
    /// Unconfigure (stop) GAB on this node: leave the membership. Refused
    /// while a client (HAD on port h, fencing on b, ...) has its port open.
    #[arg(short = 'U')]
    unconfigure: bool,
    /// Set the stable timeout, in milliseconds: how long a node that LLT
    /// reports down stays a member before GAB forms a new membership without
    /// it (default 5000). Alone, or with -c (applied right after configuring).
    #[arg(short = 't', value_name = "MS", value_parser = parse_ms)]
    stable_timeout: Option<u32>,
    /// Show the port memberships: for each open port (a: GAB itself, b: I/O
    /// fencing, h: HAD, other letters: other clients) its generation number
    /// and members (one digit per node id, at position id mod 10, ';' before
    /// each further ten), and a jeopardy line when members are reachable over
    /// a single LLT link only.
    #[arg(short = 'a')]
    ports: bool,
    /// Show the configuration (state, node id, seed count, seeded or not,
    /// stable timeout), GAB's counters and the local clients with their
    /// heartbeat state.
    #[arg(short = 'l')]
    config: bool,
    /// With -a or -l: print GAB's whole status as JSON instead of text (VCS
    /// spelling: -json).
    #[arg(long)]
    json: bool,
}

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// No option: print the help, exit 1.
    Usage,
    /// Requests sent in order, each answered by Ok.
    Requests(Vec<GabRequest>),
    /// `-a`.
    ShowPorts { json: bool },
    /// `-l`.
    ShowConfig { json: bool },
}

/// The largest seed count: every possible node id.
const MAX_SEED_N: u32 = llt::MAX_NODE_ID as u32 + 1;

fn parse_seed_n(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_SEED_N).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a seed count (1-{MAX_SEED_N} nodes)")),
    }
}

fn parse_ms(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive number of milliseconds")),
    }
}

/// Checks how the options combine and says what to do.
fn action_from(a: Args) -> Result<Action, String> {
    let any_change = a.configure || a.seed_n.is_some() || a.seed || a.unconfigure || a.stable_timeout.is_some();
    if a.ports && a.config {
        return Err("-a and -l cannot be combined".into());
    }
    if a.ports || a.config {
        if any_change {
            return Err(format!("{} only shows; it takes no other option than -json", if a.ports { "-a" } else { "-l" }));
        }
        return Ok(if a.ports { Action::ShowPorts { json: a.json } } else { Action::ShowConfig { json: a.json } });
    }
    if a.json {
        return Err("-json goes with -a or -l".into());
    }
    if a.unconfigure {
        if a.configure || a.seed_n.is_some() || a.seed || a.stable_timeout.is_some() {
            return Err("-U takes no other option".into());
        }
        return Ok(Action::Requests(vec![GabRequest::Unconfigure]));
    }
    if a.seed_n.is_some() && !a.configure {
        return Err("-n N goes with -c (gabconfig -c -n N)".into());
    }
    if a.configure && a.seed_n.is_none() && !a.seed {
        return Err("-c needs -n N, the number of nodes that must see each other before the cluster seeds \
                    (as in gabtab: gabconfig -c -n N), or -x to seed at once"
            .into());
    }
    let mut reqs = Vec::new();
    if a.configure {
        reqs.push(GabRequest::Configure { seed_n: a.seed_n.unwrap_or(1) });
    }
    if let Some(ms) = a.stable_timeout {
        reqs.push(GabRequest::SetStableTimeout { ms });
    }
    if a.seed {
        reqs.push(GabRequest::Seed);
    }
    Ok(if reqs.is_empty() { Action::Usage } else { Action::Requests(reqs) })
}

/// The whole command line to an action (what `main` does, without exiting).
#[cfg(test)]
fn parse_action(argv: &[&str]) -> Result<Action, String> {
    let argv = std::iter::once(PROG).chain(argv.iter().copied()).map(std::ffi::OsString::from);
    cli::try_parse_from::<Args, _>(argv).map_err(|e| e.to_string()).and_then(action_from)
}

fn main() {
    let args: Args = cli::parse(PROG);
    match action_from(args).unwrap_or_else(|e| cli::die(PROG, format!("{e} (see {PROG} --help)"))) {
        Action::Usage => {
            let help = Args::command().render_help();
            let _ = write!(io::stderr(), "{help}");
            std::process::exit(1);
        }
        Action::Requests(reqs) => {
            let mut client = connect();
            for req in reqs {
                match request(&mut client, req) {
                    GabResponse::Ok => {}
                    other => fail(other),
                }
            }
        }
        Action::ShowPorts { json } => {
            let st = status();
            if json {
                print_pretty_json(&st);
            } else if !st.configured {
                cli::die(PROG, "GAB is not configured on this node (gabconfig -c -n N starts it)");
            } else {
                cli::print(PROG, &ctl::render_ports(&st));
            }
        }
        Action::ShowConfig { json } => {
            let st = status();
            if json {
                print_pretty_json(&st);
            } else {
                cli::print(PROG, &ctl::render_config(&st));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Talking to the daemon


fn connect() -> GabClient {
    let client = GabClient::connect().unwrap_or_else(|e| cli::die(PROG, gab::ctl::error_text(&e)));
    if let Err(e) = client.stream().set_read_timeout(Some(cli::REQUEST_TIMEOUT)) {
        cli::die(PROG, format!("connection to GAB: {e}"));
    }
    client
}

fn request(client: &mut GabClient, req: GabRequest) -> GabResponse {
    client.request(req).unwrap_or_else(|e| cli::die(PROG, gab::ctl::error_text(&e)))
}

/// Dies because of an answer the caller cannot use.
fn fail(resp: GabResponse) -> ! {
    match resp {
        GabResponse::Error(msg) => cli::die(PROG, msg),
        GabResponse::Ok => cli::die(PROG, "unexpected answer from GAB: Ok"),
        GabResponse::Status(_) => cli::die(PROG, "unexpected answer from GAB: Status"),
    }
}

fn status() -> GabStatus {
    let mut client = connect();
    match request(&mut client, GabRequest::Status) {
        GabResponse::Status(st) => *st,
        other => fail(other),
    }
}

fn print_pretty_json(st: &GabStatus) {
    match serde_json::to_string_pretty(st) {
        Ok(s) => cli::print(PROG, &format!("{s}\n")),
        Err(e) => cli::die(PROG, format!("cannot encode JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llt::ctl::CtlError;
    use GabRequest::*;

    fn reqs(argv: &[&str]) -> Vec<GabRequest> {
        match parse_action(argv) {
            Ok(Action::Requests(r)) => r,
            other => panic!("{argv:?} gave {other:?}"),
        }
    }

    fn err(argv: &[&str]) -> String {
        match parse_action(argv) {
            Err(e) => e,
            Ok(a) => panic!("{argv:?} was accepted as {a:?}"),
        }
    }

    #[test]
    fn valid_command_lines() {
        assert_eq!(parse_action(&[]), Ok(Action::Usage));
        assert_eq!(reqs(&["-c", "-n", "3"]), vec![Configure { seed_n: 3 }]);
        assert_eq!(reqs(&["-c", "-n3"]), vec![Configure { seed_n: 3 }]);
        assert_eq!(reqs(&["-n", "64", "-c"]), vec![Configure { seed_n: 64 }]);
        assert_eq!(reqs(&["-c", "-x"]), vec![Configure { seed_n: 1 }, Seed]);
        assert_eq!(reqs(&["-cx"]), vec![Configure { seed_n: 1 }, Seed]);
        assert_eq!(reqs(&["-c", "-n", "2", "-x"]), vec![Configure { seed_n: 2 }, Seed]);
        assert_eq!(reqs(&["-x"]), vec![Seed]);
        assert_eq!(reqs(&["-U"]), vec![Unconfigure]);
        assert_eq!(reqs(&["-t", "100"]), vec![SetStableTimeout { ms: 100 }]);
        assert_eq!(reqs(&["-c", "-n", "3", "-t", "2000", "-x"]), vec![Configure { seed_n: 3 }, SetStableTimeout { ms: 2000 }, Seed]);
        assert_eq!(parse_action(&["-a"]), Ok(Action::ShowPorts { json: false }));
        assert_eq!(parse_action(&["-a", "-json"]), Ok(Action::ShowPorts { json: true }));
        assert_eq!(parse_action(&["-json", "-a"]), Ok(Action::ShowPorts { json: true }));
        assert_eq!(parse_action(&["-l"]), Ok(Action::ShowConfig { json: false }));
        assert_eq!(parse_action(&["-l", "--json"]), Ok(Action::ShowConfig { json: true }));
    }

    #[test]
    fn invalid_command_lines() {
        assert!(err(&["-c"]).contains("-c needs -n N"));
        assert!(err(&["-n", "3"]).contains("-n N goes with -c"));
        assert!(err(&["-x", "-n", "3"]).contains("-n N goes with -c"));
        assert!(err(&["-c", "-n", "0"]).contains("'0' is not a seed count"));
        assert!(err(&["-c", "-n", "65"]).contains("'65' is not a seed count (1-64 nodes)"));
        assert!(err(&["-c", "-n", "x"]).contains("not a seed count"));
        assert!(err(&["-c", "-n"]).contains("value is required"));
        assert!(err(&["-t", "0"]).contains("not a positive number of milliseconds"));
        assert!(err(&["-t", "-5"]).contains("-5"));
        assert_eq!(err(&["-U", "-c", "-n", "2"]), "-U takes no other option");
        assert_eq!(err(&["-U", "-t", "10"]), "-U takes no other option");
        assert_eq!(err(&["-a", "-l"]), "-a and -l cannot be combined");
        assert_eq!(err(&["-a", "-x"]), "-a only shows; it takes no other option than -json");
        assert_eq!(err(&["-l", "-c", "-n", "2"]), "-l only shows; it takes no other option than -json");
        assert_eq!(err(&["-json"]), "-json goes with -a or -l");
        assert_eq!(err(&["-U", "-json"]), "-json goes with -a or -l");
        assert!(err(&["-z"]).contains("unexpected argument '-z'"));
        assert!(err(&["extra"]).contains("unexpected argument 'extra'"));
    }

    #[test]
    fn help_mentions_every_option() {
        let help = Args::command().render_long_help().to_string();
        for opt in ["-c", "-n <N>", "-x", "-U", "-t <MS>", "-a", "-l", "--json", "gabtab", "seed", "stable timeout"] {
            assert!(help.contains(opt), "help lacks {opt}:\n{help}");
        }
    }

    #[test]
    fn connect_errors_name_gab() {
        let e = CtlError::Connect { path: "/x/gab.sock".into(), source: io::Error::from(io::ErrorKind::NotFound) };
        let text = gab::ctl::error_text(&e);
        assert!(text.starts_with("cannot reach GAB at /x/gab.sock: "), "{text}");
        assert!(!text.contains('\n'));
    }
}
