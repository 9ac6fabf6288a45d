//! Seeded swarm simulation of the LLT core (see `llt::sim`).
//!
//! `SIM_SEEDS=N` sets how many seeds run (default 150); `SIM_SEED=S` replays
//! one seed: `SIM_SEED=S cargo test -p llt --test sim -- --nocapture`.

use llt::sim::{Sim, SimParams};

fn seeds() -> Vec<u64> {
    llt::sim::seeds_from_env(150)
}

fn run_all(name: &str, p: SimParams) {
    let mut failures = Vec::new();
    let (mut delivered, mut downs) = (0, 0);
    for seed in seeds() {
        let r = Sim::run(seed, p.clone());
        delivered += r.delivered;
        downs += r.peer_downs;
        if let Some(v) = r.violation {
            failures.push(format!("seed {seed}: {v}\n  replay: SIM_SEED={seed} cargo test -p llt --test sim {name}"));
        }
    }
    println!("{name}: {delivered} messages delivered, {downs} peer-down events");
    assert!(failures.is_empty(), "{} failing seeds:\n{}", failures.len(), failures.join("\n"));
    assert!(delivered > 0, "the simulation delivered nothing: it tests nothing");
}

#[test]
fn faults_and_crashes() {
    run_all("faults_and_crashes", SimParams::default());
}

#[test]
fn two_nodes_one_link_no_crashes() {
    run_all("two_nodes_one_link_no_crashes", SimParams { nodes: 2, links: 1, lowpri: false, crashes: false, ..Default::default() });
}

#[test]
fn quiet_network_never_resets() {
    // Without faults nothing may ever go down.
    for seed in seeds().into_iter().take(20) {
        let r = Sim::run(seed, SimParams { faults: false, crashes: false, ..Default::default() });
        assert_eq!(r.violation, None, "seed {seed}");
        assert_eq!(r.peer_downs, 0, "seed {seed}: peer went down on a quiet network");
        assert!(r.delivered > 1000, "seed {seed}: only {} delivered", r.delivered);
    }
}
