//! `hacf`: check a VCS configuration directory, and convert between
//! main.cf and main.cmd (the ha* commands that build it). The work is in
//! [`had::hacf`]; this only reads the command line and prints.

use clap::{ArgGroup, Parser};
use had::hacf;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const PROG: &str = "hacf";

const AFTER_HELP: &str = "\
DIR is a configuration directory, such as /etc/VRTSvcs/conf/config: its \
main.cf and the files main.cf includes (types.cf, ...), named relative to \
DIR.

Options are written with one dash as in VCS (-verify); --verify works too.

main.cmd holds one command a line, in the order that builds the \
configuration on an empty cluster: haclus -modify (ClusterName first), \
hasys -add/-modify, hagrp -add/-modify (SystemList, AutoStartList, ...), \
hares -add RES TYPE GROUP, hares -modify, hares -local + hares -modify ... \
-sys SYS for per-system values, hares -link PARENT CHILD, hagrp -link \
PARENT CHILD online|offline local|global|remote [soft|firm|hard]. Values: a \
scalar is one word, a list its elements, an association key value pairs, \
an empty list or association -delete -keys; words are quoted as for a \
shell. Types are not converted: main.cf's include lines are kept as \
'# include \"types.cf\"' comment lines, and -cmdtocf reads those files to \
know each attribute's shape.

Exit status: 0 success (nothing printed); 1 the configuration or main.cmd \
has problems, each printed on stderr as FILE:LINE:COLUMN: message (main.cmd: \
FILE:LINE: message), or a file cannot be read or written; 2 usage error.

Examples:
  hacf -verify /etc/VRTSvcs/conf/config
  hacf -cftocmd /etc/VRTSvcs/conf/config     writes .../main.cmd
  hacf -cmdtocf /tmp/newconf                 writes /tmp/newconf/main.cf";

/// Verify a cluster configuration (main.cf, types.cf) before HAD loads it,
/// or convert it to and from the ha* commands that would build it.
#[derive(Parser, Debug)]
#[command(name = PROG, after_help = AFTER_HELP)]
#[command(group(ArgGroup::new("action").required(true).args(["verify", "cftocmd", "cmdtocf"])))]
struct Args {
    /// Load DIR/main.cf and every file it includes and check them: syntax,
    /// known types and attributes, value kinds, systems, groups, resources
    /// and dependencies. Silent when the configuration is valid.
    #[arg(long, value_name = "DIR")]
    verify: Option<PathBuf>,
    /// Verify DIR/main.cf, then write DIR/main.cmd: the ha* commands that
    /// build this configuration on an empty cluster.
    #[arg(long, value_name = "DIR")]
    cftocmd: Option<PathBuf>,
    /// Read DIR/main.cmd and write DIR/main.cf from it. Every bad line is
    /// reported and main.cf is then left as it was.
    #[arg(long, value_name = "DIR")]
    cmdtocf: Option<PathBuf>,
}

/// `-verify` → `--verify` (clap would read `-verify` as `-v -e -r ...`).
/// Anything after `--` is left alone.
fn rewrite_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    const WORDS: [&str; 4] = ["verify", "cftocmd", "cmdtocf", "help"];
    let mut literal = false;
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 || literal {
                return a;
            }
            if a == "--" {
                literal = true;
                return a;
            }
            match a.to_str().and_then(|s| s.strip_prefix('-')) {
                Some(w) if WORDS.contains(&w) => OsString::from(format!("--{w}")),
                _ => a,
            }
        })
        .collect()
}

fn main() -> ExitCode {
    // clap prints help (exit 0) or a usage error (exit 2) itself.
    let args = Args::parse_from(rewrite_args(std::env::args_os()));
    let result = if let Some(dir) = &args.verify {
        hacf::verify(dir).map(|_| ()).map_err(hacf::Error::from)
    } else if let Some(dir) = &args.cftocmd {
        hacf::cf_to_cmd(dir).map(|_| ())
    } else if let Some(dir) = &args.cmdtocf {
        hacf::cmd_to_cf(dir).map(|_| ())
    } else {
        unreachable!("clap requires one action")
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            for line in e.lines() {
                let _ = writeln!(err, "{line}");
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(rewrite_args(args.iter().map(OsString::from)))
    }

    #[test]
    fn single_and_double_dash() {
        assert_eq!(parse(&["hacf", "-verify", "d"]).unwrap().verify, Some(PathBuf::from("d")));
        assert_eq!(parse(&["hacf", "--cftocmd", "d"]).unwrap().cftocmd, Some(PathBuf::from("d")));
        assert_eq!(parse(&["hacf", "-cmdtocf", "d"]).unwrap().cmdtocf, Some(PathBuf::from("d")));
        assert!(parse(&["hacf"]).is_err());
        assert!(parse(&["hacf", "-verify"]).is_err());
        assert!(parse(&["hacf", "-verify", "a", "-cftocmd", "b"]).is_err());
        assert!(parse(&["hacf", "-bogus", "a"]).is_err());
    }
}
