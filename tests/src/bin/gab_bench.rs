//! GAB against Corosync CPG, side by side in one run on the same three
//! node namespaces: clusterd (LLT over raw Ethernet on eth1 and eth2, GAB
//! on top) and Debian's corosync (knet over UDP on the same two segments)
//! run at once; the floods alternate (GAB, then CPG, per round) so each
//! measures on an otherwise idle lab. Needs root, and for the Corosync side
//! scripts/bench-deps.sh.
//!
//!   cargo run --release -p ha-tests --bin gab-bench -- [--count 20000]
//!       [--size 1024] [--runs 3] [--trials 3] [--peerinact 100]
//!       [--stable-ms 0] [--token 1000] [--no-corosync] [--json]
//!
//! Floods: every node broadcasts `--count` messages of `--size` bytes as
//! fast as flow control allows (gabmsg on a GAB port; cpgbench with
//! CPG_TYPE_AGREED); delivered msgs/s (all messages / first send to last
//! delivery anywhere) and send-to-delivered-everywhere latency.
//! Kill trials: SIGKILL the victim's daemon and time until every survivor
//! shows the new membership (GAB: port a; Corosync: totem), against the
//! configured timers (LLT peerinact + GAB stable timeout; Corosync token
//! and consensus).

use anyhow::{bail, Result};
use clap::Parser;
use ha_tests::corosync::{self, CorosyncCluster, CorosyncConfig, FloodResult, KillTrial};
use ha_tests::gab::GabFlood;
use ha_tests::stats::median;
use ha_tests::{with_deadline, Cluster, ClusterSpec};
use serde::Serialize;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(name = "gab-bench", about = "GAB vs Corosync CPG: 3-node broadcast throughput, latency, kill-to-membership")]
struct Args {
    /// Messages each node broadcasts per flood.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Message size in bytes (>= 24).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Flood rounds (one GAB and one CPG flood each).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Kill-to-membership trials per stack.
    #[arg(long, default_value_t = 3)]
    trials: usize,
    /// LLT peerinact in hundredths of a second (heartbeats every 0.1 s).
    #[arg(long, default_value_t = 100)]
    peerinact: u32,
    /// GAB stable timeout in ms (`gabconfig -t`).
    #[arg(long, default_value_t = 0)]
    stable_ms: u32,
    /// Corosync token in ms (coefficient 0); 0 = corosync's defaults.
    #[arg(long, default_value_t = 1000)]
    token: u32,
    /// GAB only.
    #[arg(long)]
    no_corosync: bool,
    /// Each GAB sender keeps at most this many of its messages undelivered
    /// (gabmsg --window; 0: no limit). Corosync's client is closed-loop
    /// too: CPG answers TRY_AGAIN when its queue is full.
    #[arg(long, default_value_t = 128)]
    window: u64,
    /// LLT links (lab segments) per node; Corosync gets the same number of
    /// knet links.
    #[arg(long, default_value_t = 2)]
    links: usize,
    /// One JSON document on stdout (progress on stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Side<F: Serialize> {
    config: String,
    floods: Vec<F>,
    /// (first survivor, last survivor) in ms after the SIGKILL.
    kills_ms: Vec<(f64, f64)>,
    msgs_per_sec_median: f64,
    latency_p50_us_median: f64,
    latency_p99_us_median: f64,
    kill_last_ms_median: f64,
}

#[derive(Serialize)]
struct Report {
    count_per_node: u64,
    size: usize,
    gab: Side<GabFlood>,
    corosync: Option<Side<FloodResult>>,
}

impl<F: Serialize> Side<F> {
    fn new(config: String) -> Side<F> {
        Side {
            config,
            floods: Vec::new(),
            kills_ms: Vec::new(),
            msgs_per_sec_median: f64::NAN,
            latency_p50_us_median: f64::NAN,
            latency_p99_us_median: f64::NAN,
            kill_last_ms_median: f64::NAN,
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.no_corosync {
        corosync::check_installed()?;
    }
    let json = args.json;
    let report = with_deadline(Duration::from_secs(1800), move || run(&args, &move |s: String| if json { eprintln!("{s}") } else { println!("{s}") }))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    if !report.gab.floods.iter().all(|f| f.complete) || report.corosync.as_ref().is_some_and(|c| !c.floods.iter().all(|f| f.complete)) {
        bail!("a flood was incomplete");
    }
    Ok(())
}

fn run(args: &Args, log: &dyn Fn(String)) -> Result<Report> {
    let mut spec = ClusterSpec::fast(3);
    spec.segments = args.links;
    spec.timers = vec![("heartbeat", 10), ("heartbeatlo", 20), ("peertrouble", 50), ("peertroublelo", 80), ("peerinact", args.peerinact), ("dupwait", 50)];
    let mut c = Cluster::start("gabbench", spec)?;
    let all = [1, 2, 3];
    c.gab_start_all(3)?;
    c.wait_port(&all, b'a', &[0, 1, 2], Duration::from_secs(15))?;
    for i in all {
        c.gab_request(i, gab::ctl::GabRequest::SetStableTimeout { ms: args.stable_ms })?;
    }
    let mut gab = Side::<GabFlood>::new(format!("LLT heartbeat 0.1 s, peerinact {} ms; GAB stable timeout {} ms", args.peerinact * 10, args.stable_ms));
    log(format!("GAB: {}", gab.config));
    let cfg = if args.token == 0 { CorosyncConfig::default() } else { CorosyncConfig::with_token(args.token) };
    // Corosync runs on the same namespaces, next to the GAB cluster.
    let lab = c.lab.clone();
    let mut cpg = if args.no_corosync { None } else { Some(CorosyncCluster::start(&lab, &all, cfg.clone())?) };
    let cside = cpg.as_ref().map(|cc| -> Result<Side<FloodResult>> {
        let t = cc.runtime_timers(1)?;
        Ok(Side::new(format!("{} (effective token {} ms, consensus {} ms)", cfg.describe(), t.token_ms, t.consensus_ms)))
    });
    let mut cside = cside.transpose()?;
    if let Some(s) = &cside {
        log(format!("Corosync: {}", s.config));
    }
    for r in 1..=args.runs {
        let f = c.gab_flood(&all, b'f', args.count, args.size, args.window, Duration::from_secs(300))?;
        log(format!(
            "  round {r} GAB: {:.0} msgs/s ({:.1} MB/s), latency p50 {:.0} µs p99 {:.0} µs max {:.0} µs, clusterd CPU {}{}",
            f.msgs_per_sec,
            f.mb_per_sec,
            f.latency_p50_us,
            f.latency_p99_us,
            f.latency_max_us,
            f.daemon_cpu_pct.iter().map(|c| format!("{c:.0}%")).collect::<Vec<_>>().join("/"),
            if f.complete { "" } else { " INCOMPLETE" }
        ));
        gab.floods.push(f);
        if let (Some(cc), Some(s)) = (&cpg, &mut cside) {
            let f = cc.flood(args.count, args.size)?;
            log(format!(
                "  round {r} CPG: {:.0} msgs/s ({:.1} MB/s), latency p50 {:.0} µs p99 {:.0} µs max {:.0} µs, corosync CPU {}{}",
                f.msgs_per_sec,
                f.mb_per_sec,
                f.latency_p50_us,
                f.latency_p99_us,
                f.latency_max_us,
                f.corosync_cpu_pct.iter().map(|c| format!("{c:.0}%")).collect::<Vec<_>>().join("/"),
                if f.complete { "" } else { " INCOMPLETE" }
            ));
            s.floods.push(f);
        }
    }
    for k in 0..args.trials {
        let victim = 3 - k % 3;
        let (first, last) = c.gab_kill_to_membership(victim, Duration::from_secs(60))?;
        log(format!("  kill node {victim} GAB: new membership on first survivor {:.1} ms, last {:.1} ms", ms(first), ms(last)));
        gab.kills_ms.push((ms(first), ms(last)));
        c.restart(victim)?;
        c.gab_start(victim, 3)?;
        c.wait_port(&all, b'a', &[0, 1, 2], Duration::from_secs(30))?;
        c.gab_request(victim, gab::ctl::GabRequest::SetStableTimeout { ms: args.stable_ms })?;
        if let (Some(cc), Some(s)) = (&mut cpg, &mut cside) {
            std::thread::sleep(Duration::from_secs(1));
            let t: KillTrial = cc.kill_trial(victim)?;
            log(format!("  kill node {victim} CPG: new membership on first survivor {:.1} ms, last {:.1} ms", t.membership_ms, t.membership_all_ms));
            s.kills_ms.push((t.membership_ms, t.membership_all_ms));
            cc.restart(victim)?;
        }
    }
    summarize(&mut gab, |f| (f.complete, f.msgs_per_sec, f.latency_p50_us, f.latency_p99_us));
    if let Some(s) = &mut cside {
        summarize(s, |f| (f.complete, f.msgs_per_sec, f.latency_p50_us, f.latency_p99_us));
    }
    drop(cpg);
    Ok(Report { count_per_node: args.count, size: args.size, gab, corosync: cside })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summarize<F: Serialize>(s: &mut Side<F>, key: impl Fn(&F) -> (bool, f64, f64, f64)) {
    let ok: Vec<(bool, f64, f64, f64)> = s.floods.iter().map(&key).filter(|k| k.0).collect();
    s.msgs_per_sec_median = median(ok.iter().map(|k| k.1).collect());
    s.latency_p50_us_median = median(ok.iter().map(|k| k.2).collect());
    s.latency_p99_us_median = median(ok.iter().map(|k| k.3).collect());
    s.kill_last_ms_median = median(s.kills_ms.iter().map(|k| k.1).collect());
}

fn print_table(r: &Report) {
    println!("\n3 nodes, every node broadcasts {} x {} B; medians over the runs", r.count_per_node, r.size);
    println!("| stack | configuration | delivered msgs/s | p50 µs | p99 µs | kill -> membership on all survivors, ms (median; trials) |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, config: &str, m: f64, p50: f64, p99: f64, kills: &[(f64, f64)], kmed: f64| {
        let ks: Vec<String> = kills.iter().map(|k| format!("{:.0}", k.1)).collect();
        println!("| {name} | {config} | {m:.0} | {p50:.0} | {p99:.0} | {kmed:.0} ({}) |", ks.join(", "));
    };
    let g = &r.gab;
    row("GAB", &g.config, g.msgs_per_sec_median, g.latency_p50_us_median, g.latency_p99_us_median, &g.kills_ms, g.kill_last_ms_median);
    if let Some(c) = &r.corosync {
        row("Corosync CPG", &c.config, c.msgs_per_sec_median, c.latency_p50_us_median, c.latency_p99_us_median, &c.kills_ms, c.kill_last_ms_median);
        println!(
            "\nGAB / Corosync: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x (lower latency ratio is better)",
            g.msgs_per_sec_median / c.msgs_per_sec_median,
            g.latency_p50_us_median / c.latency_p50_us_median,
            g.latency_p99_us_median / c.latency_p99_us_median
        );
    }
}
