//! clusterd: the per-node cluster daemon, the userspace counterpart of
//! VCS's kernel modules. It hosts LLT, GAB and I/O fencing in one event
//! loop (fencing's SCSI commands run on a thread of their own).
//!
//! Owns: the process (signals, systemd readiness, logging) and the drivers
//! that connect the sans-IO cores to sockets and clocks.
//! Never: protocol decisions (those live in the cores, tested in simulation).

mod control;
mod echo;
mod fence_control;
mod fence_worker;
mod gab_control;
mod gab_host;
mod incarnation;
mod links;
mod node;
mod notify;

use clap::Parser;
use node::{Node, Shared};
use std::cell::RefCell;
use std::rc::Rc;
use tracing::{error, info};

/// Per-node cluster daemon: LLT, GAB and I/O fencing.
///
/// Runs in the foreground and logs to stderr. It starts unconfigured and
/// listens on $HA_ROOT/run/ha/llt.sock, gab.sock and vxfen.sock;
/// `lltconfig -c` (or `-c` here) reads $HA_ROOT/etc/llttab and
/// $HA_ROOT/etc/llthosts and starts the links; `gabconfig -c -n N` (from
/// $HA_ROOT/etc/gabtab) starts GAB; `vxfenconfig -c` reads
/// $HA_ROOT/etc/vxfenmode, vxfentab and vxfendata and starts fencing. HA_ROOT (default empty, meaning /) prefixes every path, so several
/// nodes can run on one machine. Log level: RUST_LOG (default info).
#[derive(Parser, Debug)]
#[command(name = "clusterd", version)]
struct Args {
    /// Configure LLT at start, as `lltconfig -c` would (exit if it fails).
    #[arg(short = 'c', long = "configure")]
    configure: bool,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clusterd: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    if let Err(e) = local.block_on(&rt, run(args)) {
        error!("{e:#}");
        eprintln!("clusterd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let path = llt::paths::llt_socket();
    let listener = control::bind(&path)?;
    let gab_path = llt::paths::gab_socket();
    let gab_listener = control::bind(&gab_path)?;
    let fen_path = fencing::ctl::socket();
    let fen_listener = control::bind(&fen_path)?;
    let shared: Shared = Rc::new(RefCell::new(Node::new()));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::task::spawn_local(node::timer_task(shared.clone()));
    tokio::task::spawn_local(control::accept_loop::<control::Llt>(shared.clone(), listener));
    tokio::task::spawn_local(control::accept_loop::<gab_control::GabSocket>(shared.clone(), gab_listener));
    tokio::task::spawn_local(control::accept_loop::<fence_control::FenSocket>(shared.clone(), fen_listener));
    info!(llt_socket = %path.display(), gab_socket = %gab_path.display(), vxfen_socket = %fen_path.display(), "clusterd started");
    if args.configure {
        shared.borrow_mut().configure(&shared, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let _ = notify::sd_notify("READY=1");
    let why = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!("clusterd stopping ({why})");
    let _ = notify::sd_notify("STOPPING=1");
    shared.borrow_mut().unconfigure();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&gab_path);
    let _ = std::fs::remove_file(&fen_path);
    Ok(())
}
