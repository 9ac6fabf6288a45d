//! Corosync CPG benchmark on a 3-node namespace lab (the reference for the
//! GAB figures): Debian's corosync with knet over both lab segments, and
//! the CPG client from bench/cpg/cpgbench.c. Needs root and
//! scripts/bench-deps.sh.
//!
//!   cargo run --release -p ha-tests --bin cpg-bench -- [--count 20000]
//!       [--size 1024] [--runs 3] [--trials 5] [--token default|MS]...
//!       [--senders 1,2,3] [--json]
//!
//! For each `--token` (default: corosync's shipped defaults): `--runs`
//! floods (every node, or each of `--senders`, sends `--count` messages of
//! `--size` bytes as fast as flow control allows; delivered msgs/s and
//! send-to-delivered-everywhere latency), then `--trials` kill-to-membership trials (SIGKILL the victim's
//! corosync, time to the survivors' new membership; victims 3, 2, 1, 3, ...;
//! the victim is restarted between trials). A token in ms means exactly
//! that token (coefficient 0), with relaxed knet pings at <= 500 ms.

use anyhow::{bail, Result};
use clap::Parser;
use ha_tests::corosync::{CorosyncCluster, CorosyncConfig, FloodResult, KillTrial, TotemTimers};
use ha_tests::stats::median;
use ha_tests::{with_deadline, Lab, LabSpec};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "Corosync CPG throughput, latency and kill-to-membership on a 3-node namespace lab")]
struct Args {
    /// Messages each node sends per flood.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Message size in bytes (>= 24).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Floods per token setting.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Kill-to-membership trials per token setting.
    #[arg(long, default_value_t = 5)]
    trials: usize,
    /// Token setting: "default" (corosync as shipped) or a token in ms;
    /// repeat to compare several.
    #[arg(long = "token", default_values_t = vec!["default".to_string()])]
    tokens: Vec<String>,
    /// Nodes that send in the floods (the others only receive), e.g.
    /// `--senders 1`; default all three.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 2, 3])]
    senders: Vec<usize>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Give up (and tear the lab down) after this many seconds.
    #[arg(long, default_value_t = 1200)]
    deadline: u64,
}

#[derive(Serialize)]
struct ConfigReport {
    token: String,
    config: CorosyncConfig,
    config_text: String,
    /// Effective timers read back from node 1's cmap.
    timers: TotemTimers,
    floods: Vec<FloodResult>,
    kills: Vec<KillTrial>,
    summary: Summary,
}

#[derive(Serialize)]
struct Summary {
    complete_floods: usize,
    msgs_per_sec_median: f64,
    latency_p50_us_median: f64,
    latency_p99_us_median: f64,
    kill_to_membership_ms_median: f64,
    kill_to_membership_ms_min: f64,
    kill_to_membership_ms_max: f64,
}

#[derive(Serialize)]
struct Report {
    corosync_version: String,
    nodes: usize,
    senders: Vec<usize>,
    count_per_node: u64,
    size: usize,
    configs: Vec<ConfigReport>,
}

fn parse_token(t: &str) -> Result<CorosyncConfig> {
    if t == "default" {
        return Ok(CorosyncConfig::default());
    }
    match t.parse::<u32>() {
        Ok(ms) if ms > 0 => Ok(CorosyncConfig::with_token(ms)),
        _ => bail!("--token must be \"default\" or a token in ms, not {t:?}"),
    }
}

fn run_config(lab: &Lab, args: &Args, token: &str, log: &dyn Fn(String)) -> Result<ConfigReport> {
    let cfg = parse_token(token)?;
    let t0 = Instant::now();
    let mut c = CorosyncCluster::start(lab, &[1, 2, 3], cfg.clone())?;
    let timers = c.runtime_timers(1)?;
    log(format!(
        "[{}] 3-node membership formed in {:.1} s; effective token {} ms, consensus {} ms",
        cfg.describe(),
        t0.elapsed().as_secs_f64(),
        timers.token_ms,
        timers.consensus_ms
    ));
    let mut floods = Vec::new();
    for r in 1..=args.runs {
        let f = c.flood_from(&args.senders, args.count, args.size)?;
        log(format!(
            "  flood {r}: {:.0} msgs/s ({:.1} MB/s) delivered everywhere, latency p50 {:.0} µs p99 {:.0} µs max {:.0} µs, \
             {:.0} ms, delivered {:?}, try_again {}, corosync CPU {}{}",
            f.msgs_per_sec,
            f.mb_per_sec,
            f.latency_p50_us,
            f.latency_p99_us,
            f.latency_max_us,
            f.elapsed_ms,
            f.delivered_per_node,
            f.try_again,
            f.corosync_cpu_pct.iter().map(|c| format!("{c:.0}%")).collect::<Vec<_>>().join("/"),
            if f.complete { "" } else { "  INCOMPLETE" }
        ));
        floods.push(f);
    }
    let mut kills = Vec::new();
    for k in 0..args.trials {
        let victim = 3 - k % 3;
        // Let the ring settle after the restart before the next kill.
        std::thread::sleep(Duration::from_secs(1));
        let t = c.kill_trial(victim)?;
        log(format!(
            "  kill node {victim}: membership on first survivor {:.1} ms (last {:.1} ms), CPG confchg {:.1} ms",
            t.membership_ms, t.membership_all_ms, t.cpg_left_ms
        ));
        kills.push(t);
        c.restart(victim)?;
    }
    let km: Vec<f64> = kills.iter().map(|k| k.membership_ms).collect();
    // Medians over the complete floods only (an incomplete one is reported
    // in `floods` with complete = false).
    let ok: Vec<&FloodResult> = floods.iter().filter(|f| f.complete).collect();
    let summary = Summary {
        complete_floods: ok.len(),
        msgs_per_sec_median: median(ok.iter().map(|f| f.msgs_per_sec).collect()),
        latency_p50_us_median: median(ok.iter().map(|f| f.latency_p50_us).collect()),
        latency_p99_us_median: median(ok.iter().map(|f| f.latency_p99_us).collect()),
        kill_to_membership_ms_median: median(km.clone()),
        kill_to_membership_ms_min: km.iter().cloned().fold(f64::NAN, f64::min),
        kill_to_membership_ms_max: km.iter().cloned().fold(f64::NAN, f64::max),
    };
    Ok(ConfigReport {
        token: token.to_string(),
        config_text: cfg.describe(),
        config: cfg,
        timers,
        floods,
        kills,
        summary,
    })
}

fn corosync_version() -> String {
    std::process::Command::new("corosync")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.split('\'').nth(1).map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<()> {
    let args = Args::parse();
    for t in &args.tokens {
        parse_token(t)?;
    }
    let json = args.json;
    let deadline = Duration::from_secs(args.deadline);
    let report = with_deadline(deadline, move || -> Result<Report> {
        // Progress goes to stderr with --json, stdout otherwise.
        let log = move |s: String| if json { eprintln!("{s}") } else { println!("{s}") };
        let mut configs = Vec::new();
        for token in &args.tokens {
            // A fresh lab per setting: nothing carries over between them.
            let lab = Lab::new("cpgbench", LabSpec::nodes(3))?;
            configs.push(run_config(&lab, &args, token, &log)?);
        }
        Ok(Report {
            corosync_version: corosync_version(),
            nodes: 3,
            senders: args.senders.clone(),
            count_per_node: args.count,
            size: args.size,
            configs,
        })
    })?;
    let incomplete: usize = report.configs.iter().map(|c| c.floods.len() - c.summary.complete_floods).sum();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    if incomplete > 0 {
        bail!("{incomplete} flood(s) incomplete (lost, reordered or a membership change)");
    }
    Ok(())
}

fn print_table(report: &Report) {
    println!(
        "\nCorosync {} / knet, 3 nodes, 2 knet links, nodes {:?} each send {} x {} B (CPG_TYPE_AGREED), all 3 receive",
        report.corosync_version, report.senders, report.count_per_node, report.size
    );
    println!("| setting | effective token / consensus ms | complete floods | delivered msgs/s | p50 µs | p99 µs | kill -> membership ms, median [min..max] |");
    println!("|---|---|---|---|---|---|---|");
    for c in &report.configs {
        let s = &c.summary;
        let kills = if c.kills.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.0} [{:.0}..{:.0}] (n={})",
                s.kill_to_membership_ms_median,
                s.kill_to_membership_ms_min,
                s.kill_to_membership_ms_max,
                c.kills.len()
            )
        };
        println!(
            "| {} | {} / {} | {}/{} | {:.0} | {:.0} | {:.0} | {kills} |",
            c.config_text,
            c.timers.token_ms,
            c.timers.consensus_ms,
            s.complete_floods,
            c.floods.len(),
            s.msgs_per_sec_median,
            s.latency_p50_us_median,
            s.latency_p99_us_median,
        );
    }
    println!(
        "\ndelivered msgs/s = all messages sent / time from the common start to the last delivery on any node \
         (each node delivers every message); latency = per message, max over the 3 receivers of delivery - send time \
         (CLOCK_MONOTONIC); medians over the complete floods."
    );
}
