//! LLT benchmarks on a namespace lab with real clusterd daemons. Prints a
//! Markdown table for docs/BENCHMARKS.md. Needs root.
//!
//!   llt-bench rtt         message round trip through the daemons vs raw frames
//!   llt-bench throughput  one-way messages/s, 64 B and 1 KiB
//!   llt-bench idle        CPU and RSS of one daemon in a 16-node lab
//!   llt-bench all

use anyhow::{anyhow, bail, Context, Result};
use ha_tests::{bin, wait_until, Cluster, ClusterSpec};
use serde_json::Value;
use std::time::{Duration, Instant};

fn lltmsg() -> Result<String> {
    Ok(bin("lltmsg")?.to_string_lossy().into_owned())
}

/// Run `lltmsg` in node i and parse the last JSON line it prints.
fn lltmsg_json(c: &Cluster, i: usize, args: &[&str], timeout: Duration) -> Result<Value> {
    let m = lltmsg()?;
    let mut argv = vec![m.as_str()];
    argv.extend_from_slice(args);
    let out = c.lab.exec_with(i, &argv, &[], timeout)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| {
        anyhow!("lltmsg {args:?} printed no JSON: {text}\n{}", String::from_utf8_lossy(&out.stderr))
    })?;
    let v: Value = serde_json::from_str(line)?;
    if !out.status.success() {
        bail!("lltmsg {args:?} failed: {line}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(v)
}

/// Spawn a long-running lltmsg mode in node i and wait for its `ready`.
fn lltmsg_server(c: &Cluster, i: usize, name: &str, args: &[&str]) -> Result<ha_tests::Proc> {
    let m = lltmsg()?;
    let mut argv = vec![m.as_str()];
    argv.extend_from_slice(args);
    let p = c.lab.spawn(i, name, &argv, &[])?;
    wait_until(&format!("{name} ready"), Duration::from_secs(10), || p.stderr().contains("ready").then_some(()))?;
    Ok(p)
}

fn bench_spec(nodes: usize) -> ClusterSpec {
    let mut s = ClusterSpec::fast(nodes);
    // VCS default heartbeat timers: what an idle production node pays.
    s.timers = vec![("dupwait", 50)];
    s
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn rtt() -> Result<()> {
    let c = Cluster::start("bench_rtt", bench_spec(2))?;
    let count = "20000";
    let _echo = lltmsg_server(&c, 2, "echo", &["echo"])?;
    let llt = lltmsg_json(&c, 1, &["ping", "--to", "1", "--count", count, "--size", "64"], Duration::from_secs(120))?;
    let dping = lltmsg_json(&c, 1, &["dping", "--to", "1", "--count", count, "--size", "64"], Duration::from_secs(120))?;
    let _raw = lltmsg_server(&c, 2, "rawecho", &["rawecho", "--iface", "eth1"])?;
    let mac = mac_str(c.lab.mac(2, 0));
    let raw = lltmsg_json(&c, 1, &["rawping", "--iface", "eth1", "--to-mac", &mac, "--count", count, "--size", "64"], Duration::from_secs(120))?;
    println!("| round trip, 64 B, {count} samples | p50 µs | p99 µs | ratio to raw p50 / p99 |");
    println!("|---|---|---|---|");
    println!("| raw AF_PACKET frame (baseline) | {:.1} | {:.1} | 1x |", f(&raw, "p50_us"), f(&raw, "p99_us"));
    let ratio = |v: &Value| format!("{:.2}x / {:.2}x", f(v, "p50_us") / f(&raw, "p50_us"), f(v, "p99_us") / f(&raw, "p99_us"));
    println!("| LLT message daemon to daemon (echo service inside clusterd; GAB's path) | {:.1} | {:.1} | {} |", f(&dping, "p50_us"), f(&dping, "p99_us"), ratio(&dping));
    println!("| LLT message client to client (lltmsg ping/echo over each daemon's socket) | {:.1} | {:.1} | {} |", f(&llt, "p50_us"), f(&llt, "p99_us"), ratio(&llt));
    Ok(())
}

fn throughput() -> Result<()> {
    let c = Cluster::start("bench_tput", bench_spec(2))?;
    println!("| one-way throughput node1 -> node2 | messages | msgs/s | MB/s | retransmitted |");
    println!("|---|---|---|---|---|");
    for (size, count) in [(64usize, 400_000u64), (1024, 300_000)] {
        let (s, n) = (size.to_string(), count.to_string());
        let recv = {
            let m = lltmsg()?;
            let argv = [m.as_str(), "recv", "--from", "0", "--count", n.as_str(), "--timeout", "120"];
            let p = c.lab.spawn(2, &format!("recv{size}"), &argv, &[])?;
            wait_until("recv ready", Duration::from_secs(10), || p.stderr().contains("ready").then_some(()))?;
            p
        };
        let before = c.status(1)?.stats.snd_retransmit;
        lltmsg_json(&c, 1, &["send", "--to", "1", "--count", &n, "--size", &s], Duration::from_secs(180))?;
        recv.wait_exit(Duration::from_secs(150)).context("receiver did not finish")?;
        let out = recv.stdout();
        let line = out.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| anyhow!("recv printed nothing: {}", recv.stderr()))?;
        let v: Value = serde_json::from_str(line)?;
        if v.get("in_order") != Some(&Value::Bool(true)) || v.get("received").and_then(Value::as_u64) != Some(count) {
            bail!("throughput run lost or reordered messages: {line}");
        }
        let rate = f(&v, "msgs_per_s");
        let rexmit = c.status(1)?.stats.snd_retransmit - before;
        println!("| {size} B | {count} | {:.0} | {:.1} | {rexmit} |", rate, rate * size as f64 / 1e6);
    }
    Ok(())
}

/// utime+stime of a process in clock ticks, and its RSS in KiB.
fn proc_usage(pid: u32) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|x| x.1).ok_or_else(|| anyhow!("bad stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks, rss))
}

fn idle() -> Result<()> {
    let nodes = 16;
    let t0 = Instant::now();
    let c = Cluster::start("bench_idle", bench_spec(nodes))?;
    eprintln!("16-node lab up in {:?}", t0.elapsed());
    // Let start-up effects pass, then measure a quiet minute.
    std::thread::sleep(Duration::from_secs(5));
    let secs = 60;
    let tick = 100.0; // USER_HZ on Linux
    let pids: Vec<u32> = (1..=nodes).filter_map(|i| c.daemon(i).map(|d| d.pid())).collect();
    let before: Vec<(u64, u64)> = pids.iter().map(|&p| proc_usage(p)).collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(secs));
    let after: Vec<(u64, u64)> = pids.iter().map(|&p| proc_usage(p)).collect::<Result<_>>()?;
    let cpu: Vec<f64> = before.iter().zip(&after).map(|(b, a)| (a.0 - b.0) as f64 / tick / secs as f64 * 100.0).collect();
    let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    let max = cpu.iter().cloned().fold(0.0, f64::max);
    let rss_max = after.iter().map(|a| a.1).max().unwrap_or(0);
    let open = c.status(1)?.peers.iter().filter(|p| p.open).count();
    println!("| idle daemon, 16-node lab, default timers, {secs} s | value |");
    println!("|---|---|");
    println!("| peers OPEN seen by node1 | {open} |");
    println!("| CPU per daemon, mean of 16 | {mean:.3}% of a core |");
    println!("| CPU per daemon, max of 16 | {max:.3}% of a core |");
    println!("| RSS per daemon, max of 16 | {:.1} MiB |", rss_max as f64 / 1024.0);
    Ok(())
}

fn main() -> Result<()> {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    match what.as_str() {
        "rtt" => rtt(),
        "throughput" => throughput(),
        "idle" => idle(),
        "all" => {
            rtt()?;
            println!();
            throughput()?;
            println!();
            idle()
        }
        _ => bail!("usage: llt-bench rtt|throughput|idle|all"),
    }
}
