//! Data-driven scenarios (tests/scenarios/*.scn, see tests/scenarios/README.md):
//! a main.cf (with the shipped conf/types.cf) and a script of events and
//! expectations, run on three engines fed the same stream over a world of
//! pretend agents ([`had::sim`]). Every step is checked as it goes; a
//! failure names the file, the line and what differed.

use had::engine::{AgentOp, Engine, Event, Notification, Output, Source};
use had::sim::Cluster;
use had::command;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Run one scenario file; Err: `file:line: step: what went wrong`.
fn run(path: &Path) -> Result<usize, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut main, mut script) = (String::new(), Vec::new());
    let mut section = "";
    for (i, line) in text.lines().enumerate() {
        match line.trim_end() {
            "main.cf:" => section = "main",
            "script:" => section = "script",
            l if section == "main" => {
                main.push_str(l);
                main.push('\n');
            }
            l if section == "script" => script.push((i + 1, l.trim().to_string())),
            _ => {}
        }
    }
    let types = fs::read_to_string(root().join("../conf/types.cf")).map_err(|e| format!("conf/types.cf: {e}"))?;
    let source = Source::new(main, [("types.cf".to_string(), types)]);
    let conf = source.conf().map_err(|e| format!("{}: main.cf:\n{e}", path.display()))?;
    let mut c = Cluster::of(Engine::with_source(conf, source), 3);
    let mut mark = 0; // log position of the last `expect commands`
    let mut steps = 0;
    for (line, step) in script {
        if step.is_empty() || step.starts_with('#') {
            continue;
        }
        steps += 1;
        do_step(&mut c, &step, &mut mark).map_err(|e| format!("{}:{line}: {step}: {e}", path.display()))?;
    }
    c.check_agreement().map_err(|e| format!("{}: at the end: {e}", path.display()))?;
    Ok(steps)
}

fn do_step(c: &mut Cluster, step: &str, mark: &mut usize) -> Result<(), String> {
    let w: Vec<&str> = step.split_whitespace().collect();
    match w.as_slice() {
        ["up", systems @ ..] => {
            for s in systems {
                c.feed(Event::SystemUp { system: s.to_string() })?;
            }
            c.settle()
        }
        ["join", systems @ ..] => {
            for s in systems {
                c.feed(Event::SystemJoin { system: s.to_string() })?;
            }
            c.settle()
        }
        ["hold", "build", "on", s] => {
            c.held_builds.insert(s.to_string());
            Ok(())
        }
        ["built", s] => {
            c.held_builds.remove(*s);
            c.feed(Event::SystemBuilt { system: s.to_string() })?;
            c.settle()
        }
        ["bad", "main.cf", "on", s] => {
            c.bad_main_cf.insert(s.to_string());
            Ok(())
        }
        ["good", "main.cf", "on", s] => {
            c.bad_main_cf.remove(*s);
            Ok(())
        }
        ["expect", "snapshots", n] => {
            let want: u64 = n.parse().map_err(|_| format!("{n}: expected a number"))?;
            if c.snapshots_sent == want {
                Ok(())
            } else {
                Err(format!("{} snapshots were sent, not {want}", c.snapshots_sent))
            }
        }
        ["hold", r, "on", s] => {
            c.held.insert((r.to_string(), s.to_string()));
            Ok(())
        }
        ["release", r, "on", s] => {
            c.held.remove(&(r.to_string(), s.to_string()));
            c.settle()
        }
        ["crash", s] => {
            c.feed(Event::SystemFaulted { system: s.to_string() })?;
            c.settle()
        }
        ["had-down", s] => {
            c.feed(Event::HadDown { system: s.to_string() })?;
            c.settle()
        }
        ["wait", n] => c.wait(secs(n)?),
        ["allow", "concurrency"] => {
            c.allow_concurrency = true;
            Ok(())
        }
        ["kill", r, "on", s] => {
            c.world.thing(r, s).up = false;
            Ok(())
        }
        ["start", r, "on", s] => {
            c.world.thing(r, s).up = true;
            Ok(())
        }
        ["break", r, "on", s, "online"] => {
            c.world.thing(r, s).broken_online = true;
            Ok(())
        }
        ["break", r, "on", s, "clean"] => {
            c.world.thing(r, s).clean_fails = true;
            Ok(())
        }
        ["hang", r, "on", s, op] => {
            let op = match *op {
                "online" => "online",
                "offline" => "offline",
                "monitor" => "monitor",
                "clean" => "clean",
                other => return Err(format!("unknown entry point {other}")),
            };
            c.world.thing(r, s).hangs.insert(op);
            Ok(())
        }
        ["fix", r, "on", s] => {
            let t = c.world.thing(r, s);
            t.broken_online = false;
            t.clean_fails = false;
            t.hangs.clear();
            Ok(())
        }
        ["expect", "group", g, "on", s, "is", state] => {
            let got = c.engine().group_state(g, s).map(|x| x.name()).ok_or(format!("no group {g} on {s}"))?;
            same(&got, state)
        }
        ["expect", "resource", r, "on", s, "is", state @ ..] => {
            let got = c.engine().resource(r, s).map(|x| x.state_name()).ok_or(format!("no resource {r} on {s}"))?;
            same(&got, &state.join(" "))
        }
        ["expect", "system", s, "is", state] => {
            let got = c.engine().system(s).map(|x| x.state.name()).ok_or(format!("no system {s}"))?;
            same(got, state)
        }
        ["expect", "commands:", rest @ ..] => {
            let want: Vec<String> = if rest == ["none"] {
                Vec::new()
            } else {
                rest.join(" ").split(',').map(|x| x.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
            };
            let got: Vec<String> = c.log[*mark..]
                .iter()
                .filter_map(|o| match o {
                    Output::Agent(cmd) if cmd.op != AgentOp::Monitor => Some(format!("{} {} {}", cmd.system, cmd.op.name(), cmd.resource)),
                    _ => None,
                })
                .collect();
            *mark = c.log.len();
            if got == want {
                Ok(())
            } else {
                Err(format!("agent commands were {got:?}"))
            }
        }
        ["expect", "failover", g, "from", s, "to", t] => {
            let to = if *t == "nowhere" { None } else { Some(t.to_string()) };
            let want = (g.to_string(), s.to_string(), to);
            if c.failovers().contains(&want) {
                Ok(())
            } else {
                Err(format!("failovers were {:?}", c.failovers()))
            }
        }
        ["expect", "dump", "has", words @ ..] => {
            let want = words.join(" ");
            let dump = c.log.iter().rev().find_map(|o| match o {
                Output::MainCf(text) => Some(text.clone()),
                _ => None,
            });
            match dump {
                Some(text) if text.contains(&want) => Ok(()),
                Some(text) => Err(format!("the last dump has no \"{want}\":\n{text}")),
                None => Err("no haconf -dump yet".into()),
            }
        }
        ["expect", "dump", "lacks", words @ ..] => {
            let unwanted = words.join(" ");
            match c.log.iter().rev().find_map(|o| if let Output::MainCf(t) = o { Some(t.clone()) } else { None }) {
                Some(text) if text.contains(&unwanted) => Err(format!("the last dump has \"{unwanted}\"")),
                Some(_) => Ok(()),
                None => Err("no haconf -dump yet".into()),
            }
        }
        ["expect", "no", "failover"] => match c.failovers().as_slice() {
            [] => Ok(()),
            f => Err(format!("failovers were {f:?}")),
        },
        ["expect", "stuck", g, words @ ..] => {
            let want = words.join(" ");
            let found = c.log.iter().any(|o| matches!(o, Output::Notify(Notification::Stuck { group, why }) if group == g && why.contains(&want)));
            if found {
                Ok(())
            } else {
                Err(format!("no notice for {g} saying \"{want}\""))
            }
        }
        [cmd, ..] if cmd.starts_with("ha") => admin(c, step),
        _ => Err("unknown step".into()),
    }
}

/// `hagrp ... => ok` or `hagrp ... => error TEXT`.
fn admin(c: &mut Cluster, step: &str) -> Result<(), String> {
    let (cmdline, want) = step.split_once("=>").ok_or("an admin step ends with => ok or => error TEXT")?;
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let request = command::parse(&words)?;
    let id = c.events;
    let from = c.engine().conf().systems.keys().next().cloned().unwrap_or_default();
    let outs = c.feed(Event::Admin { id, from, request })?;
    let result = outs
        .iter()
        .find_map(|o| match o {
            Output::Reply { id: rid, result, .. } if *rid == id => Some(result.clone()),
            _ => None,
        })
        .ok_or("no reply")?;
    c.settle()?;
    let want = want.trim();
    match (want.split_once(' ').map_or((want, ""), |(a, b)| (a, b)), &result) {
        (("ok", ""), Ok(_)) => Ok(()),
        (("error", text), Err(e)) if e.contains(text) => Ok(()),
        _ => Err(format!("the reply was {result:?}")),
    }
}

fn same(got: &str, want: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("it is {got}"))
    }
}

/// `30`, `30s`, `5m`.
fn secs(n: &str) -> Result<u64, String> {
    let (num, mul) = match n.strip_suffix('m') {
        Some(m) => (m, 60),
        None => (n.strip_suffix('s').unwrap_or(n), 1),
    };
    num.parse::<u64>().map(|v| v * mul).map_err(|_| format!("{n}: expected seconds (30, 30s, 5m)"))
}

#[test]
fn scenarios() {
    let dir = root().join("tests/scenarios");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir).expect("scenario dir").map(|e| e.expect("entry").path()).filter(|p| p.extension().is_some_and(|x| x == "scn")).collect();
    // SCN=part runs only the scenarios whose file name contains it.
    if let Ok(part) = std::env::var("SCN") {
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(&part)));
    }
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        match run(f) {
            Ok(steps) => println!("{}: {steps} steps ok", f.file_name().unwrap().to_string_lossy()),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{} of {} scenarios failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
}
