//! Fencing hosted in the node: `vxfenconfig`'s requests, port b between
//! GAB and the fencing core ([`fencing::member::Fencer`]), the hold on the
//! other ports while departed nodes are not fenced yet, the disk thread's
//! results, and halting this node when its partition loses.

use super::{ClientId, Node, Shared};
use crate::fence_worker::{self, Done, Job};
use fencing::config::{self, Mode};
use fencing::ctl::{DiskInUse, FenResponse, FenStatus};
use fencing::member::{Action, Fencer, FencerConfig, Msg, Notice};
use fencing::race::OpResult;
use gab::ctl::GabServerMsg;
use llt::time::Time;
use llt::NodeId;
use std::collections::BTreeSet;
use tracing::{error, info, warn};

/// GAB port b, held by the node itself.
pub const PORT_B: gab::Port = b'b';
/// The client id of the node's own port b (socket clients count from 1).
pub const FENCE_CLIENT: ClientId = 0;

enum Phase {
    /// The disk thread runs the startup check; `client` waits.
    Starting { client: ClientId },
    Running,
    /// `vxfenconfig -U`: our `Leaving` is on its way, then the keys go.
    Leaving { client: ClientId },
}

pub struct FenceHost {
    core: Fencer,
    mode: config::FenMode,
    /// None when fencing is disabled (no disks).
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    phase: Phase,
    /// What GAB gave the other ports while departed nodes were not fenced.
    held: Vec<(ClientId, GabServerMsg)>,
    coordinators: Vec<DiskInUse>,
    data: Vec<DiskInUse>,
    malformed: u64,
}

impl FenceHost {
    fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }
}

fn names(nodes: &BTreeSet<NodeId>) -> String {
    fencing::member::list(nodes.iter())
}

impl Node {
    /// `vxfenconfig -c`. None: the answer comes when the disk thread is done.
    pub fn fence_configure(&mut self, shared: &Shared, client: ClientId) -> Option<FenResponse> {
        match self.fence_configure_inner(shared, client) {
            Ok(answer) => answer,
            Err(e) => Some(FenResponse::Error(e)),
        }
    }

    fn fence_configure_inner(&mut self, shared: &Shared, client: ClientId) -> Result<Option<FenResponse>, String> {
        if let Some(why) = &self.fence_halted {
            return Err(format!("this node was fenced out ({why}); restart clusterd to let it rejoin"));
        }
        if self.fence.is_some() {
            return Err("fencing is already configured (vxfenconfig -U first)".into());
        }
        let llt = self.cfg.as_ref().ok_or("LLT is not configured: run lltconfig -c first")?;
        let (me, cluster) = (llt.node_id, llt.cluster_id);
        let g = self.gab.as_ref().ok_or("GAB is not configured: run gabconfig -c -n N first")?;
        let (_, members) = g.core.membership().ok_or(
            "GAB has no membership yet: it waits for the seed count of nodes (gabconfig -c -n N), or seed it by hand with gabconfig -x",
        )?;
        let cfg = config::load_default().map_err(|e| e.to_string())?;
        let disabled = cfg.fenmode.mode == Mode::Disabled;
        let mut fc = FencerConfig::new(me, cluster, if disabled { 0 } else { cfg.coordinators.len() }, if disabled { 0 } else { cfg.data.len() });
        fc.weight = cfg.fenmode.node_weight;
        let mut host = FenceHost {
            core: Fencer::new(fc),
            mode: cfg.fenmode.clone(),
            jobs: None,
            phase: Phase::Running,
            held: Vec::new(),
            coordinators: Vec::new(),
            data: Vec::new(),
            malformed: 0,
        };
        if disabled {
            self.fence = Some(host);
            self.fence_join_port_b()?;
            info!(node = me, "fencing configured in disabled mode: port b joined, no race on membership changes");
            return Ok(Some(FenResponse::Ok("I/O fencing configured in disabled mode".into())));
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let jobs = fence_worker::spawn(tx).map_err(|e| format!("cannot start the fencing disk thread: {e}"))?;
        let task_shared = shared.clone();
        tokio::task::spawn_local(async move {
            while let Some(done) = rx.recv().await {
                task_shared.borrow_mut().fence_done(done);
            }
        });
        host.jobs = Some(jobs);
        host.phase = Phase::Starting { client };
        let job = Job::Start { coordinators: cfg.coordinators.clone(), data: cfg.data.clone(), cluster, me, members: members.clone() };
        info!(
            node = me, coordinators = cfg.coordinators.len(), data_disks = cfg.data.len(), members = %names(&members),
            "fencing configuring: checking the coordinator disks for keys of nodes outside the GAB membership"
        );
        if !host.send(job) {
            return Err("the fencing disk thread is gone".into());
        }
        self.fence = Some(host);
        Ok(None)
    }

    fn fence_join_port_b(&mut self) -> Result<(), String> {
        let now = self.now();
        let g = self.gab.as_mut().ok_or("GAB is not configured")?;
        g.register(now, FENCE_CLIENT, Some(std::process::id()), PORT_B, None)?;
        self.flush();
        Ok(())
    }

    /// `vxfenconfig -U`. None: answered once the keys are removed.
    pub fn fence_unconfigure(&mut self, client: ClientId) -> Option<FenResponse> {
        let Some(f) = self.fence.as_mut() else {
            return Some(FenResponse::Error("fencing is not configured".into()));
        };
        if !matches!(f.phase, Phase::Running) {
            return Some(FenResponse::Error("fencing is starting or stopping: try again".into()));
        }
        let others: String = self.gab.as_ref().map(|g| g.open_ports()).unwrap_or_default().chars().filter(|&p| p != PORT_B as char).collect();
        if !others.is_empty() {
            return Some(FenResponse::Error(format!("GAB ports {others} are still open on this node: stop HAD (hastop -local) first")));
        }
        if f.core.holding() {
            return Some(FenResponse::Error("a fencing race is in progress: try again when it is over".into()));
        }
        f.phase = Phase::Leaving { client };
        f.core.leave();
        info!(node = self.my_id(), "fencing unconfiguring: telling port b, then removing this node's keys");
        self.fence_drive();
        self.flush();
        None
    }

    pub fn fence_respond(&mut self, id: ClientId, r: FenResponse) {
        self.queue_to_client(id, &r);
    }

    pub fn fence_status(&self) -> FenStatus {
        let (node, cluster) = self.cfg.as_ref().map_or((0, 0), |c| (c.node_id, c.cluster_id));
        let mut st = FenStatus {
            node,
            cluster,
            configured: false,
            mode: String::new(),
            disk_policy: String::new(),
            weight: 0,
            members: Vec::new(),
            pending: Vec::new(),
            racer: None,
            last_race: None,
            halted: self.fence_halted.clone(),
            coordinators: Vec::new(),
            data: Vec::new(),
        };
        if let Some(f) = &self.fence {
            st.configured = matches!(f.phase, Phase::Running | Phase::Leaving { .. });
            st.mode = fencing::show::mode_name(f.mode.mode).into();
            st.disk_policy = fencing::show::policy_name(f.mode.disk_policy).into();
            st.weight = f.mode.node_weight;
            st.members = f.core.members().iter().copied().collect();
            st.pending = f.core.pending().iter().copied().collect();
            st.racer = f.core.racer();
            st.last_race = f.core.last_race().cloned();
            st.coordinators = f.coordinators.clone();
            st.data = f.data.clone();
        }
        st
    }

    /// A message GAB has for the node's own port b.
    pub(super) fn fence_from_gab(&mut self, msg: GabServerMsg) {
        let now = self.now();
        let Some(f) = self.fence.as_mut() else { return };
        match msg {
            GabServerMsg::Membership(m) if m.port == PORT_B => {
                let members: BTreeSet<NodeId> = m.members.iter().copied().collect();
                f.core.on_membership(now, &members);
            }
            GabServerMsg::Deliver { origin, data, .. } => match Msg::decode(&data) {
                Ok(msg) => f.core.on_message(origin, msg),
                Err(e) => {
                    f.malformed += 1;
                    warn!(node = self.my_id(), peer = origin, "port b: {e}; dropped");
                }
            },
            _ => {}
        }
        self.fence_drive();
    }

    /// Hold what GAB gives the other ports while departed nodes are not
    /// fenced; false: deliver it now.
    pub(super) fn fence_hold(&mut self, id: ClientId, msg: &GabServerMsg) -> bool {
        match self.fence.as_mut() {
            Some(f) if f.core.holding() => {
                f.held.push((id, msg.clone()));
                true
            }
            _ => false,
        }
    }

    pub(super) fn fence_deadline(&self) -> Option<Time> {
        self.fence.as_ref().and_then(|f| f.core.poll_timeout())
    }

    pub(super) fn fence_timeout(&mut self, now: Time) {
        if let Some(f) = self.fence.as_mut() {
            f.core.handle_timeout(now);
            self.fence_drive();
        }
    }

    /// Carry out what the fencing core asks for.
    fn fence_drive(&mut self) {
        let node = self.my_id();
        loop {
            let now = self.now();
            let Some(f) = self.fence.as_mut() else { return };
            let Some(action) = f.core.poll(now) else { break };
            match action {
                Action::Disk(op) => {
                    if !f.send(Job::Op(op)) {
                        f.core.complete(OpResult::Failed("the fencing disk thread is gone".into()));
                    }
                }
                Action::Broadcast(msg) => {
                    if let Some(g) = self.gab.as_mut() {
                        if let Err(e) = g.broadcast(now, PORT_B, msg.encode()) {
                            warn!(node, "port b: cannot send {msg:?}: {e}");
                        }
                    }
                }
                Action::Release => {
                    let held = std::mem::take(&mut f.held);
                    info!(node, released = held.len(), "departed nodes fenced: the other ports get their membership changes");
                    for (id, m) in held {
                        self.queue_to_client(id, &m);
                    }
                }
                Action::Halt(why) => self.fence_halt(why),
                Action::ReadyToLeave => {
                    if f.jobs.is_none() {
                        // Disabled mode: no keys to remove.
                        self.fence_left(Vec::new());
                    } else if !f.send(Job::Stop) {
                        self.fence_left(vec!["the fencing disk thread is gone".into()]);
                    }
                }
                Action::Notice(n) => log_notice(node, n),
            }
        }
    }

    /// The disk thread finished a job.
    fn fence_done(&mut self, done: Done) {
        let node = self.my_id();
        let Some(f) = self.fence.as_mut() else { return };
        match done {
            Done::Started(Ok((coords, data))) => {
                let Phase::Starting { client } = f.phase else { return };
                f.coordinators = coords;
                f.data = data;
                f.phase = Phase::Running;
                let n = f.coordinators.len();
                let answer = match self.fence_join_port_b() {
                    Ok(()) => {
                        info!(node, coordinators = n, "fencing running: keys registered on {n} coordinator disks, port b joined");
                        FenResponse::Ok(format!("I/O fencing configured: SCSI3 mode, {n} coordinator disks"))
                    }
                    Err(e) => {
                        self.fence = None;
                        FenResponse::Error(e)
                    }
                };
                self.queue_to_client(client, &answer);
            }
            Done::Started(Err(e)) => {
                let client = match f.phase {
                    Phase::Starting { client } => Some(client),
                    _ => None,
                };
                error!(node, "fencing refused to start: {e}");
                self.fence = None;
                if let Some(c) = client {
                    self.queue_to_client(c, &FenResponse::Error(e));
                }
            }
            Done::Op(r) => {
                f.core.complete(r);
                self.fence_drive();
            }
            Done::Stopped(errors) => self.fence_left(errors),
        }
        self.flush();
    }

    /// `vxfenconfig -U` is done: port b closes.
    fn fence_left(&mut self, errors: Vec<String>) {
        let now = self.now();
        let Some(f) = self.fence.take() else { return };
        if let Some(g) = self.gab.as_mut() {
            g.client_gone(now, PORT_B);
        }
        let answer = if errors.is_empty() {
            info!(node = self.my_id(), "fencing unconfigured: keys removed, port b left");
            FenResponse::Ok("I/O fencing unconfigured".into())
        } else {
            FenResponse::Error(format!("port b left, but some keys could not be removed: {}", errors.join("; ")))
        };
        if let Phase::Leaving { client } = f.phase {
            self.queue_to_client(client, &answer);
        }
    }

    /// This partition lost: stop every cluster service here at once. GAB's
    /// clients (HAD) are told and detached, GAB leaves, and this node stays
    /// out until clusterd restarts (as VCS panics the node).
    fn fence_halt(&mut self, why: String) {
        let node = self.my_id();
        error!(node, "FENCED OUT: {why}; stopping cluster services on this node (GAB clients halted, GAB left); restart clusterd once the cause is fixed");
        self.fence_halted = Some(why.clone());
        let mut waiting = None;
        if let Some(f) = self.fence.as_mut() {
            f.held.clear();
            f.jobs = None;
            // A `vxfenconfig -c` or `-U` waiting for its answer gets it now.
            if let Phase::Starting { client } | Phase::Leaving { client } = f.phase {
                waiting = Some(client);
            }
            f.phase = Phase::Running;
        }
        if let Some(client) = waiting {
            self.queue_to_client(client, &FenResponse::Error(format!("this node was fenced out: {why}")));
        }
        let ids: Vec<ClientId> = self.clients.iter().filter(|(_, c)| c.gab_port.is_some()).map(|(&id, _)| id).collect();
        for id in ids {
            self.queue_to_client(id, &GabServerMsg::Halted { reason: why.clone() });
            if let Some(c) = self.clients.get_mut(&id) {
                // GAB goes: the client keeps its connection to read why.
                c.gab_port = None;
            }
        }
        if let Some(g) = self.gab.as_mut() {
            g.core.leave();
        }
        self.flush();
        self.gab = None;
        self.gab_busy = false;
    }
}

fn log_notice(node: NodeId, n: Notice) {
    match n {
        Notice::RaceStarted { departed, delay, weight, departed_weight } => warn!(
            node, departed = %names(&departed), delay_ms = delay.as_millis(), weight, departed_weight,
            "nodes {} left port b: racing for the coordinator disks (this partition weighs {weight}, the departed {departed_weight}; delay {} ms)",
            names(&departed), delay.as_millis()
        ),
        Notice::Waiting { racer, departed } => warn!(
            node, racer, departed = %names(&departed),
            "nodes {} left port b: node {racer} races for this partition; services wait for its verdict", names(&departed)
        ),
        Notice::RaceDone { departed, verdict } => {
            let won = verdict.disks_won();
            let of = verdict.disks.len();
            if verdict.won {
                info!(node, departed = %names(&departed), disks_won = won, disks = of, "race WON ({won} of {of} coordinator disks): ejecting {} from the data disks", names(&departed));
            } else {
                error!(node, departed = %names(&departed), disks_won = won, disks = of, outcomes = ?verdict.disks, "race LOST ({won} of {of} coordinator disks)");
            }
        }
        Notice::Ejected { disk, victim, result: Ok(()) } => info!(node, disk, victim, "node {victim} ejected from data disk #{disk}"),
        Notice::Ejected { disk, victim, result: Err(e) } => error!(node, disk, victim, "node {victim} NOT ejected from data disk #{disk}: {e}"),
        Notice::Reregistered { disk, result: Ok(()) } => {
            info!(node, disk, "our key is back on coordinator disk #{disk}, which a losing racer had taken it from")
        }
        Notice::Reregistered { disk, result: Err(e) } => {
            error!(node, disk, "our key could NOT be put back on coordinator disk #{disk}: {e}; the next split may find no majority")
        }
        Notice::Purged { disk, victim, result: Ok(()) } => info!(node, disk, victim, "key of node {victim} gone from coordinator disk #{disk}"),
        Notice::Purged { disk, victim, result: Err(e) } => {
            error!(node, disk, victim, "key of node {victim} NOT removed from coordinator disk #{disk}: {e}")
        }
        Notice::LeftCleanly { nodes } => info!(node, nodes = %names(&nodes), "nodes {} left port b on purpose (vxfenconfig -U): no race", names(&nodes)),
    }
}
