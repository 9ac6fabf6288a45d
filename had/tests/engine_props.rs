//! Property tests of the engine: random clusters (2-5 systems, failover and
//! parallel groups, resource trees, group dependencies), written as main.cf
//! and loaded through the parser and validator, then random event streams
//! (faults, broken and hung entry points, node crashes, HAD stops, HADs
//! joining and building from main.cf or a snapshot, some main.cf files
//! that do not verify, admin requests, time). Checked after every event by [`had::sim::Cluster`]:
//! three engines agree (one of them restored from a JSON snapshot midway,
//! as a joining HAD would be), no failover group is up on two systems,
//! resources start bottom-up and stop top-down. One run in ten is replayed
//! and must give the same outputs.
//!
//! SIM_SEEDS=N runs seeds 1..=N (default 200); SIM_SEED=N one seed.

use had::engine::{Engine, Event, Request, Source};
use had::sim::Cluster;
use llt::rng::Rng;
use std::fmt::Write as _;
use std::path::Path;

fn pick<'a, T>(rng: &mut Rng, v: &'a [T]) -> &'a T {
    &v[rng.below(v.len() as u64) as usize]
}

/// A random main.cf: its text, systems, groups, resources.
fn random_main_cf(rng: &mut Rng) -> (String, Vec<String>, Vec<String>, Vec<String>) {
    let nsys = 2 + rng.below(4) as usize;
    let systems: Vec<String> = (0..nsys).map(|i| format!("s{i}")).collect();
    let mut text = String::from("include \"types.cf\"\ncluster prop ( )\n");
    for s in &systems {
        let _ = writeln!(text, "system {s} ( Capacity = {} )", 50 + rng.below(100));
    }
    let ngroups = 1 + rng.below(6) as usize;
    let (mut groups, mut resources, mut parallels) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..ngroups {
        let name = format!("g{g}");
        let parallel = rng.chance(20);
        // SystemList: a random subset of at least two systems, random priorities.
        let mut list: Vec<&String> = systems.iter().filter(|_| rng.chance(70)).collect();
        if list.len() < 2 {
            list = systems.iter().take(2).collect();
        }
        let sl: Vec<String> = list.iter().enumerate().map(|(i, s)| format!("{s} = {i}")).collect();
        let asl: Vec<&str> = list.iter().filter(|_| rng.chance(60)).map(|s| s.as_str()).collect();
        let policy = *pick(rng, &["Priority", "RoundRobin", "Load"]);
        let _ = writeln!(
            text,
            "group {name} (\n    SystemList = {{ {} }}\n    AutoStartList = {{ {} }}\n    Parallel = {}\n    FailOverPolicy = {policy}\n    Load = {}\n    )",
            sl.join(", "),
            asl.join(", "),
            parallel as u8,
            rng.below(60)
        );
        let nres = 1 + rng.below(5) as usize;
        let mut mine = Vec::new();
        for r in 0..nres {
            let rname = format!("{name}_r{r}");
            let ty = *pick(rng, &["FileOnOff", "FileOnOff", "Process", "FileOnOnly", "NIC"]);
            let attrs = match ty {
                "Process" => "PathName = \"/bin/sleep\"".to_string(),
                "NIC" => "Device = eth0".to_string(),
                _ => format!("PathName = \"/tmp/{rname}\""),
            };
            let _ = writeln!(
                text,
                "    {ty} {rname} ( {attrs} Critical = {} RestartLimit = {} ToleranceLimit = {} OnlineRetryLimit = {} MonitorInterval = {} OfflineMonitorInterval = {} )",
                rng.chance(80) as u8,
                rng.below(3),
                rng.below(2),
                rng.below(2),
                10 + rng.below(50),
                30 + rng.below(100)
            );
            mine.push(rname);
        }
        // A random tree: each resource may require an earlier one.
        for i in 1..mine.len() {
            if rng.chance(60) {
                let c = rng.below(i as u64) as usize;
                let _ = writeln!(text, "    {} requires {}", mine[i], mine[c]);
            }
        }
        if g > 0 && rng.chance(25) {
            let child = rng.below(g as u64);
            let child_parallel = parallels[child as usize];
            let dep = *pick(rng, &[
                "online local firm",
                "online local soft",
                "online local hard",
                "online global firm",
                "online global soft",
                "online remote firm",
                "online remote soft",
                "offline local",
            ]);
            // Combinations VCS does not support are refused by the
            // validator (a corpus case); not generated here.
            let supported = match (parallel, child_parallel) {
                (true, false) => !dep.starts_with("online local"),
                (true, true) => !dep.contains("global") && !dep.contains("remote") && !dep.ends_with("hard"),
                (false, true) => !dep.ends_with("hard"),
                (false, false) => true,
            };
            if supported {
                let _ = writeln!(text, "    requires group g{child} {dep}");
            }
        }
        resources.extend(mine);
        groups.push(name);
        parallels.push(parallel);
    }
    (text, systems, groups, resources)
}

fn random_request(rng: &mut Rng, systems: &[String], groups: &[String], resources: &[String]) -> Request {
    let (g, s, r) = (pick(rng, groups).clone(), pick(rng, systems).clone(), pick(rng, resources).clone());
    match rng.below(13) {
        0 | 1 => Request::GroupOnline { group: g, system: s },
        2 => Request::GroupOffline { group: g, system: s },
        3 => Request::GroupSwitch { group: g, to: if rng.chance(50) { Some(s) } else { None } },
        4 => Request::GroupClear { group: g, system: if rng.chance(50) { Some(s) } else { None } },
        5 => Request::GroupFlush { group: g, system: s },
        6 => Request::GroupFreeze { group: g, persistent: rng.chance(50) },
        7 => Request::GroupUnfreeze { group: g, persistent: rng.chance(50) },
        8 => Request::ResourceOnline { resource: r, system: s },
        9 => Request::ResourceOffline { resource: r, system: s },
        10 => Request::ResourceClear { resource: r, system: None },
        11 => {
            // Configuration changes at run time (some refused: a new
            // resource's name may exist already, ...).
            let w = |v: &[&str]| Request::Config { words: v.iter().map(|x| x.to_string()).collect() };
            let n = rng.below(1000).to_string();
            match rng.below(6) {
                5 => w(&["hares", "-delete", &r]),
                0 => w(&["hares", "-modify", &r, "RestartLimit", &rng.below(3).to_string()]),
                1 => w(&["hares", "-modify", &r, "Critical", &rng.below(2).to_string()]),
                2 => w(&["hagrp", "-modify", &g, "FailOverPolicy", *pick(rng, &["Priority", "RoundRobin", "Load"])]),
                3 => w(&["hares", "-add", &format!("{g}_new{n}"), "FileOnOff", &g]),
                _ => w(&["hares", "-modify", &r, "Enabled", &rng.below(2).to_string()]),
            }
        }
        _ => {
            if rng.chance(50) {
                Request::SystemFreeze { system: s }
            } else {
                Request::SystemUnfreeze { system: s }
            }
        }
    }
}

/// One run; its outputs (for the replay check) or what broke.
fn run(seed: u64) -> Result<String, String> {
    let mut rng = Rng::new(seed);
    let types = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/types.cf")).expect("conf/types.cf");
    let (main, systems, groups, resources) = random_main_cf(&mut rng);
    let source = Source::new(main.clone(), [("types.cf".to_string(), types)]);
    let conf = source.conf().map_err(|e| format!("generated main.cf does not load: {e}\n{main}"))?;
    let mut c = Cluster::of(Engine::with_source(conf, source), 3);
    c.feed(Event::Admin { id: 0, from: systems[0].clone(), request: Request::ConfMakeRw }).map_err(|e| format!("seed {seed}: {e}"))?;
    let ctx = |e: String, step: usize| format!("seed {seed} step {step}: {e}\n--- main.cf\n{main}");
    // Some systems' main.cf does not verify (their local builds fail);
    // systems join one by one or all at once (builds wait for each other).
    for s in &systems {
        if rng.chance(10) {
            c.bad_main_cf.insert(s.clone());
        }
    }
    let join_all = rng.chance(50);
    for s in &systems {
        let ev = if join_all { Event::SystemJoin { system: s.clone() } } else { Event::SystemUp { system: s.clone() } };
        c.feed(ev).map_err(|e| ctx(e, 0))?;
    }
    c.settle().map_err(|e| ctx(e, 0))?;
    let steps = 40 + rng.below(60) as usize;
    let restore_at = rng.below(steps as u64) as usize;
    for step in 1..=steps {
        if step == restore_at {
            // A joining HAD builds from a running one's snapshot.
            let json = serde_json::to_string(&c.engines[0]).map_err(|e| e.to_string())?;
            c.engines[2] = serde_json::from_str::<Engine>(&json).map_err(|e| ctx(format!("snapshot does not restore: {e}"), step))?;
        }
        let s = pick(&mut rng, &systems).clone();
        let r = pick(&mut rng, &resources).clone();
        let res = match rng.below(20) {
            0..=3 => {
                c.world.thing(&r, &s).up = false;
                Ok(())
            }
            4 => {
                c.world.thing(&r, &s).broken_online = rng.chance(50);
                Ok(())
            }
            5 => {
                let t = c.world.thing(&r, &s);
                if rng.chance(50) {
                    t.hangs.insert(*pick(&mut rng, &["online", "offline", "monitor", "clean"]));
                } else {
                    t.hangs.clear();
                }
                Ok(())
            }
            6 => {
                c.world.thing(&r, &s).clean_fails = rng.chance(30);
                Ok(())
            }
            7 => c.feed(Event::SystemFaulted { system: s }).and_then(|_| c.settle()),
            8 => c.feed(Event::HadDown { system: s }).and_then(|_| c.settle()),
            9 => c.feed(Event::SystemUp { system: s }).and_then(|_| c.settle()),
            10 => c.feed(Event::SystemJoin { system: s }).and_then(|_| c.settle()),
            11..=15 => {
                let request = random_request(&mut rng, &systems, &groups, &resources);
                c.feed(Event::Admin { id: step as u64, from: systems[0].clone(), request }).and_then(|_| c.settle())
            }
            _ => c.wait(1 + rng.below(120)),
        };
        res.map_err(|e| ctx(e, step))?;
    }
    c.wait(600).map_err(|e| ctx(e, steps + 1))?;
    Ok(format!("{:?}", c.log))
}

fn seeds() -> Vec<u64> {
    if let Some(one) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![one];
    }
    let n = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200u64);
    (1..=n).collect()
}

#[test]
fn random_clusters_keep_the_invariants() {
    let mut failures = Vec::new();
    for seed in seeds() {
        match run(seed) {
            Ok(log) => {
                // The same seed again (one in ten): the same outputs.
                if seed % 10 == 0 && run(seed).ok().as_ref() != Some(&log) {
                    failures.push(format!("seed {seed}: a replay gave other outputs"));
                }
            }
            Err(e) => failures.push(e),
        }
        if failures.len() >= 3 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
