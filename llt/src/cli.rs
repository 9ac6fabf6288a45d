//! Helpers shared by `lltconfig`, `lltstat` and `lltmsg`: VCS-style argument
//! spelling, one-line errors, talking to the daemon with a deadline, and
//! printing that survives a closed pipe.
//!
//! Every failure ends the program through [`die`]: one line per message line
//! on stderr, prefixed by the program name, exit status 1. Never a panic or
//! a debug dump, because administrators and scripts read these.

use crate::config::Timers;
use crate::ctl::{Client, CtlError, Request, Response, StatusReport};
use serde::Serialize;
use std::ffi::OsString;
use std::fmt::Display;
use std::io::{self, Write};
use std::time::Duration;

/// Told by every command's `--help`.
pub const HA_ROOT_HELP: &str = "\
Files: every path is under $HA_ROOT (default /): the LLT daemon (clusterd) \
answers on $HA_ROOT/run/ha/llt.sock and reads $HA_ROOT/etc/llttab and \
$HA_ROOT/etc/llthosts. Set HA_ROOT to talk to one node of several run on one \
machine.";

/// How long a request may wait for its answer. `lltconfig -c` alone takes
/// several seconds (the daemon listens ~5 s for a duplicate node id, longer
/// if dupwait was raised), so this is generous; it only exists so a hung
/// daemon does not hang the command forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Single-dash words VCS users type, rewritten to the long options clap
/// parses (clap would read `-json` as `-j -s -o -n`).
const SINGLE_DASH_WORDS: [&str; 1] = ["json"];

/// Rewrites `-json` to `--json` (the first element, the program, and
/// anything after `--` are left alone).
pub fn rewrite_args<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest_literal = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i > 0 && !rest_literal {
            if arg == "--" {
                rest_literal = true;
            } else if let Some(word) = arg.to_str().and_then(|a| a.strip_prefix('-')) {
                if SINGLE_DASH_WORDS.contains(&word) {
                    out.push(OsString::from(format!("--{word}")));
                    continue;
                }
            }
        }
        out.push(arg);
    }
    out
}

/// Parses `args` (argv, program first) after the VCS rewrite.
pub fn try_parse_from<P: clap::Parser, I: IntoIterator<Item = OsString>>(args: I) -> Result<P, clap::Error> {
    P::try_parse_from(rewrite_args(args))
}

/// Parses the process's arguments. `--help` prints and exits 0; a usage
/// error becomes one line (clap's own is a screenful) and exit 1.
pub fn parse<P: clap::Parser>(prog: &str) -> P {
    match try_parse_from(std::env::args_os()) {
        Ok(p) => p,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
                // `lltmsg` alone: the help is the most useful error, but it
                // is still an error (clap would exit 2).
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    std::process::exit(1)
                }
                _ => die(prog, format!("{} (see {prog} --help)", first_error_line(&e))),
            }
        }
    }
}

/// clap's message without its `error: ` prefix, usage and tips, as one
/// line: a message ending in ':' (missing arguments) gets its indented list
/// appended.
fn first_error_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if msg.ends_with(':') {
        let items: Vec<&str> = lines.take_while(|l| l.starts_with(' ')).map(str::trim).collect();
        msg = format!("{} {}", msg, items.join(", "));
    }
    msg
}

/// Prints `msg` on stderr, each of its lines prefixed by `prog: `, and exits 1.
pub fn die(prog: &str, msg: impl Display) -> ! {
    let msg = msg.to_string();
    let mut err = io::stderr().lock();
    let mut lines = msg.lines().filter(|l| !l.trim().is_empty()).peekable();
    if lines.peek().is_none() {
        let _ = writeln!(err, "{prog}: failed");
    }
    for line in lines {
        let _ = writeln!(err, "{prog}: {line}");
    }
    std::process::exit(1)
}

/// One readable line for a control-socket error. A read timeout surfaces as
/// EAGAIN, whose own text ("Resource temporarily unavailable") would mislead.
pub fn ctl_error_text(e: &CtlError) -> String {
    match e {
        CtlError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            format!("the LLT daemon did not answer within {} s", REQUEST_TIMEOUT.as_secs())
        }
        other => other.to_string(),
    }
}

/// One readable line for an error on another service's socket of clusterd
/// (`service`: "GAB", "fencing"); LLT's own texts are [`ctl_error_text`].
pub fn service_error_text(e: &CtlError, service: &str) -> String {
    match e {
        CtlError::Connect { path, source } => format!("cannot reach {service} at {path}: {source} (is clusterd running?)"),
        CtlError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            format!("{service} did not answer within {} s", REQUEST_TIMEOUT.as_secs())
        }
        CtlError::Io(io) => format!("connection to {service}: {io}"),
        CtlError::Closed => format!("{service} closed the connection"),
        other => other.to_string(),
    }
}

/// Connects to the daemon for request/response use, or dies with the one
/// line `cannot reach the LLT daemon at ... (is clusterd running?)`.
pub fn connect(prog: &str) -> Client {
    let client = Client::connect().unwrap_or_else(|e| die(prog, ctl_error_text(&e)));
    if let Err(e) = client.stream().set_read_timeout(Some(REQUEST_TIMEOUT)) {
        die(prog, format!("connection to the LLT daemon: {e}"));
    }
    client
}

/// Sends one request and returns its answer, or dies.
pub fn request(prog: &str, client: &mut Client, req: Request) -> Response {
    client.request(req).unwrap_or_else(|e| die(prog, ctl_error_text(&e)))
}

/// Dies on any answer but `Ok`: `Error(msg)` prints every line of `msg`.
pub fn expect_ok(prog: &str, resp: Response) {
    match resp {
        Response::Ok => {}
        other => fail(prog, other),
    }
}

/// Dies because of an answer the caller cannot use.
pub fn fail(prog: &str, resp: Response) -> ! {
    match resp {
        Response::Error(msg) => die(prog, msg),
        other => die(prog, format!("unexpected answer from the LLT daemon: {}", answer_kind(&other))),
    }
}

fn answer_kind(r: &Response) -> &'static str {
    match r {
        Response::Ok => "Ok",
        Response::Error(_) => "Error",
        Response::Timers(_) => "Timers",
        Response::Status(_) => "Status",
        Response::RoundTrips(_) => "RoundTrips",
    }
}

/// Connects and asks for the full status, or dies.
pub fn status(prog: &str) -> StatusReport {
    let mut client = connect(prog);
    match request(prog, &mut client, Request::Status) {
        Response::Status(r) => *r,
        other => fail(prog, other),
    }
}

/// Writes `text` to stdout. A reader that went away (`lltstat | head`) ends
/// the program quietly instead of panicking as `print!` would.
pub fn print(prog: &str, text: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(1);
        }
        die(prog, format!("writing to stdout: {e}"));
    }
}

/// Prints `value` as one line of JSON.
pub fn print_json<T: Serialize + ?Sized>(prog: &str, value: &T) {
    match serde_json::to_string(value) {
        Ok(mut s) => {
            s.push('\n');
            print(prog, &s);
        }
        Err(e) => die(prog, format!("cannot encode JSON: {e}")),
    }
}

/// Parses `name:value[,name:value...]` as `lltconfig -T` takes it, checking
/// names and values before anything is sent so a typo changes nothing.
pub fn parse_timer_assignments(spec: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for item in spec.split(',') {
        let bad = || format!("bad timer '{item}' (expected name:value, e.g. peerinact:1600)");
        let (name, value) = item.split_once(':').ok_or_else(bad)?;
        let (name, value) = (name.trim(), value.trim());
        let value: u32 = value.parse().map_err(|_| bad())?;
        // Per-timer rules (known name, non-zero) are config.rs's; the
        // cross-timer ones need the daemon's current values, so it checks them.
        Timers::default().set(name, value)?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn json_is_rewritten_once_and_not_after_double_dash() {
        assert_eq!(rewrite_args(os(&["lltstat", "-n", "-json"])), os(&["lltstat", "-n", "--json"]));
        assert_eq!(rewrite_args(os(&["-json", "--", "-json"])), os(&["-json", "--", "-json"]));
        assert_eq!(rewrite_args(os(&["x", "-nvv", "--json"])), os(&["x", "-nvv", "--json"]));
    }

    #[test]
    fn timer_assignments() {
        assert_eq!(
            parse_timer_assignments("peerinact:1600,heartbeat:25").unwrap(),
            vec![("peerinact".to_string(), 1600), ("heartbeat".to_string(), 25)]
        );
        assert_eq!(
            parse_timer_assignments("x").unwrap_err(),
            "bad timer 'x' (expected name:value, e.g. peerinact:1600)"
        );
        assert!(parse_timer_assignments("peerinact:abc").unwrap_err().starts_with("bad timer 'peerinact:abc'"));
        assert!(parse_timer_assignments("bogus:5").unwrap_err().contains("unknown timer 'bogus'"));
        assert!(parse_timer_assignments("peerinact:0").unwrap_err().contains("greater than 0"));
        assert!(parse_timer_assignments("peerinact:10,").is_err());
    }
}
