//! The ha* command lines that change state, read into engine requests:
//! `hagrp`, `hares`, `hasys`, `hastop`, `haconf`, and the configuration
//! commands (`-add`, `-modify`, `-link`, `-local`), which go whole to the
//! configuration. Errors say which word was wrong and what was expected.
//! (Read-only commands come with the daemon.)

use crate::engine::Request;

/// `words[0]` is the command (`hagrp`, ...), the rest its arguments.
pub fn parse(words: &[&str]) -> Result<Request, String> {
    let (cmd, args) = words.split_first().ok_or("empty command line")?;
    // Configuration commands go to the configuration as they are.
    let config_op = matches!(
        (*cmd, args.first().copied().unwrap_or("")),
        ("hagrp", "-add" | "-modify" | "-link" | "-local" | "-unlink" | "-delete")
            | ("hares", "-add" | "-modify" | "-link" | "-local" | "-unlink" | "-delete")
            | ("hasys", "-add" | "-modify" | "-local")
            | ("haclus", "-modify" | "-local")
    );
    if config_op {
        return Ok(Request::Config { words: words.iter().map(|w| w.to_string()).collect() });
    }
    let mut a = Args { cmd, words: args, at: 0 };
    let req = match *cmd {
        "haconf" => a.haconf()?,
        "hagrp" => a.hagrp()?,
        "hares" => a.hares()?,
        "hasys" => a.hasys()?,
        "hastop" => a.hastop()?,
        other => return Err(format!("unknown command {other}: expected hagrp, hares, hasys, haclus, haconf or hastop")),
    };
    if let Some(extra) = a.words.get(a.at) {
        return Err(format!("{cmd}: unexpected {extra} at the end"));
    }
    Ok(req)
}

struct Args<'a> {
    cmd: &'a str,
    words: &'a [&'a str],
    at: usize,
}

impl<'a> Args<'a> {
    fn next(&mut self, what: &str) -> Result<String, String> {
        let w = self.words.get(self.at).ok_or_else(|| format!("{}: expected {what}", self.cmd))?;
        self.at += 1;
        Ok(w.to_string())
    }

    /// `-flag VALUE` if `-flag` comes next.
    fn opt(&mut self, flag: &str, what: &str) -> Result<Option<String>, String> {
        if self.words.get(self.at) == Some(&flag) {
            self.at += 1;
            return self.next(&format!("{what} after {flag}")).map(Some);
        }
        Ok(None)
    }

    fn flag(&mut self, flag: &str) -> bool {
        if self.words.get(self.at) == Some(&flag) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn sys(&mut self) -> Result<String, String> {
        self.opt("-sys", "a system")?.ok_or_else(|| format!("{}: expected -sys SYSTEM", self.cmd))
    }

    fn hagrp(&mut self) -> Result<Request, String> {
        let op = self.next("an operation (-online, -offline, -switch, -clear, -flush, -freeze, -unfreeze, -autoenable)")?;
        let group = self.next("a group")?;
        Ok(match op.as_str() {
            "-online" => Request::GroupOnline { group, system: self.sys()? },
            "-offline" => Request::GroupOffline { group, system: self.sys()? },
            "-switch" => {
                if self.flag("-any") {
                    Request::GroupSwitch { group, to: None }
                } else {
                    let to = self.opt("-to", "a system")?.ok_or("hagrp -switch: expected -to SYSTEM or -any")?;
                    Request::GroupSwitch { group, to: Some(to) }
                }
            }
            "-clear" => Request::GroupClear { group, system: self.opt("-sys", "a system")? },
            "-flush" => Request::GroupFlush { group, system: self.sys()? },
            "-freeze" => Request::GroupFreeze { group, persistent: self.flag("-persistent") },
            "-unfreeze" => Request::GroupUnfreeze { group, persistent: self.flag("-persistent") },
            "-autoenable" => Request::GroupAutoEnable { group, system: self.sys()? },
            other => return Err(format!("hagrp: unknown operation {other}")),
        })
    }

    fn hares(&mut self) -> Result<Request, String> {
        let op = self.next("an operation (-online, -offline, -clear, -probe)")?;
        let resource = self.next("a resource")?;
        Ok(match op.as_str() {
            "-online" => Request::ResourceOnline { resource, system: self.sys()? },
            "-offline" => Request::ResourceOffline { resource, system: self.sys()? },
            "-clear" => Request::ResourceClear { resource, system: self.opt("-sys", "a system")? },
            "-probe" => Request::ResourceProbe { resource, system: self.sys()? },
            other => return Err(format!("hares: unknown operation {other}")),
        })
    }

    fn hasys(&mut self) -> Result<Request, String> {
        let op = self.next("an operation (-freeze, -unfreeze)")?;
        let system = self.next("a system")?;
        Ok(match op.as_str() {
            "-freeze" => Request::SystemFreeze { system },
            "-unfreeze" => Request::SystemUnfreeze { system },
            other => return Err(format!("hasys: unknown operation {other}")),
        })
    }

    fn haconf(&mut self) -> Result<Request, String> {
        match self.next("-makerw or -dump")?.as_str() {
            "-makerw" => Ok(Request::ConfMakeRw),
            "-dump" => Ok(Request::ConfDump { makero: self.flag("-makero") }),
            other => Err(format!("haconf: unknown operation {other}: expected -makerw or -dump [-makero]")),
        }
    }

    fn hastop(&mut self) -> Result<Request, String> {
        let system = self.sys()?;
        let evacuate = self.flag("-evacuate");
        Ok(Request::SystemStop { system, evacuate })
    }
}
