//! Benchmarks of HAD's core (docs/BENCHMARKS.md):
//!
//!   had-bench parse    parse and validate a generated main.cf of 1,000
//!                      groups and 10,000 resources (target < 200 ms)
//!   had-bench engine   apply 100,000 events to one engine (target
//!                      > 200,000 events/s)
//!   had-bench engine-deps   the same with group dependencies: every
//!                      second group requires the one before it (online
//!                      local firm or online global soft, alternately)
//!   had-bench all      all three
//!
//! Release build: `cargo run --release -p had --bin had-bench -- all`.

use had::engine::{Engine, Event, Output, Source};
use had::sim::World;
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// A main.cf of `groups` failover groups of `per` resources each (a chain
/// of FileOnOff and Process resources) on `systems` systems; with `deps`,
/// every odd group requires the one before it.
fn generate(groups: usize, per: usize, systems: usize, deps: bool) -> String {
    let mut s = String::from("include \"types.cf\"\n\ncluster bench (\n    UserNames = { admin = x }\n    )\n\n");
    for i in 0..systems {
        s.push_str(&format!("system sys{i}\n\n"));
    }
    for g in 0..groups {
        let sl: Vec<String> = (0..systems).map(|i| format!("sys{} = {i}", (g + i) % systems)).collect();
        let dep = if deps && g % 2 == 1 { Some(if g % 4 == 1 { "online local firm" } else { "online global soft" }) } else { None };
        // A local parent starts where its child does.
        let home = if dep.is_some() { (g - 1) % systems } else { g % systems };
        s.push_str(&format!("group grp{g} (\n    SystemList = {{ {} }}\n    AutoStartList = {{ sys{home} }}\n    )\n\n", sl.join(", ")));
        if let Some(d) = dep {
            s.push_str(&format!("    requires group grp{} {d}\n\n", g - 1));
        }
        for r in 0..per {
            if r % 2 == 0 {
                s.push_str(&format!("    FileOnOff grp{g}_res{r} (\n        PathName = \"/var/run/grp{g}/res{r}\"\n        )\n\n"));
            } else {
                s.push_str(&format!(
                    "    Process grp{g}_res{r} (\n        PathName = \"/usr/bin/sleep\"\n        Arguments = \"1000\"\n        RestartLimit = 1\n        )\n\n"
                ));
            }
        }
        for r in 1..per {
            s.push_str(&format!("    grp{g}_res{r} requires grp{g}_res{}\n", r - 1));
        }
        s.push('\n');
    }
    s
}

fn types_cf() -> String {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/types.cf");
    std::fs::read_to_string(&here).unwrap_or_else(|e| panic!("{}: {e}", here.display()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_parse() {
    let text = generate(1000, 10, 4, false);
    let types = types_cf();
    let mut times = Vec::new();
    let mut conf = None;
    for _ in 0..7 {
        let t = Instant::now();
        let c = Source::new(text.clone(), [("types.cf".to_string(), types.clone())]).conf().expect("generated main.cf is valid");
        times.push(t.elapsed());
        conf = Some(c);
    }
    let conf = conf.expect("one run");
    let m = median(times.clone());
    println!(
        "parse+validate: main.cf of {} bytes, {} groups, {} resources: median {:.1} ms (min {:.1}, max {:.1}; 7 runs; target < 200 ms)",
        text.len(),
        conf.groups.len(),
        conf.resources.len(),
        m.as_secs_f64() * 1e3,
        times.iter().min().expect("runs").as_secs_f64() * 1e3,
        times.iter().max().expect("runs").as_secs_f64() * 1e3
    );
}

/// One engine with its agents answering at once; only `Engine::apply` is timed.
struct Run {
    engine: Engine,
    world: World,
    pending: VecDeque<Event>,
    busy: Duration,
    applied: u64,
    commands: u64,
}

impl Run {
    fn apply(&mut self, ev: &Event) {
        let t = Instant::now();
        let out = self.engine.apply(ev);
        self.busy += t.elapsed();
        self.applied += 1;
        for o in out {
            if let Output::Agent(cmd) = o {
                self.commands += 1;
                self.pending.push_back(self.world.answer(&cmd));
            }
        }
    }
}

/// Bring a cluster up, then run it: ticks, monitors, faults and the
/// restarts and failovers they cause, until `events` events were applied.
/// `bench_engine_once` five times (the same run each time: the engine is
/// deterministic); the median and best rates, as the machine is shared.
fn bench_engine(events: u64, deps: bool) {
    let mut rates: Vec<f64> = (0..5).map(|_| bench_engine_once(events, deps)).collect();
    rates.sort_by(f64::total_cmp);
    println!("  five runs: median {:.0} events/s, best {:.0}", rates[2], rates[4]);
}

fn bench_engine_once(events: u64, deps: bool) -> f64 {
    let types = types_cf();
    let conf = Source::new(generate(200, 10, 4, deps), [("types.cf".to_string(), types)]).conf().expect("valid");
    let mut run = Run {
        engine: Engine::new(conf.clone()),
        world: World::new(&conf),
        pending: VecDeque::new(),
        busy: Duration::ZERO,
        applied: 0,
        commands: 0,
    };
    for s in conf.systems.keys() {
        run.apply(&Event::SystemUp { system: s.clone() });
    }
    let resources: Vec<String> = conf.resources.keys().cloned().collect();
    let systems: Vec<String> = conf.systems.keys().cloned().collect();
    let (mut kill, mut now) = (0usize, 0u64);
    while run.applied < events {
        if let Some(ev) = run.pending.pop_front() {
            run.apply(&ev);
            continue;
        }
        now += 1000;
        // Now and then a resource dies somewhere (every 5 s of cluster time).
        if now % 5000 == 0 {
            let r = &resources[(kill * 7919) % resources.len()];
            let s = &systems[kill % systems.len()];
            run.world.thing(r, s).up = false;
            kill += 1;
        }
        run.apply(&Event::Tick { now });
    }
    let rate = run.applied as f64 / run.busy.as_secs_f64();
    println!(
        "engine{}: {} events ({} agent commands, {} s of cluster time, {} groups, {} resources, {} systems) in {:.1} ms of apply: {:.0} events/s (target > 200,000)",
        if deps { " with group dependencies" } else { "" },
        run.applied,
        run.commands,
        now / 1000,
        conf.groups.len(),
        conf.resources.len(),
        conf.systems.len(),
        run.busy.as_secs_f64() * 1e3,
        rate
    );
    rate
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    match what.as_str() {
        "parse" => bench_parse(),
        "engine" => bench_engine(100_000, false),
        "engine-deps" => bench_engine(100_000, true),
        "all" => {
            bench_parse();
            bench_engine(100_000, false);
            bench_engine(100_000, true);
        }
        _ => {
            eprintln!("usage: had-bench [parse|engine|engine-deps|all]");
            std::process::exit(2);
        }
    }
}
