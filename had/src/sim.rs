//! A cluster in memory, for scenario tests, property tests and benchmarks:
//! several engines fed one event stream (as GAB would), and a world of
//! agents that carry out their commands on pretend resources. After every
//! event it checks that the engines agree, that a failover group is never
//! up on two systems, and that resources start bottom-up and stop
//! top-down. Never instead of real agents: the real ones come with the
//! daemon and are tested against real processes.

use crate::config::{ClusterConf, DepCategory, DepKind, DepLocation, GroupDep, Operations};
use crate::engine::{AgentCommand, AgentOp, AgentResult, Engine, Event, Millis, Notification, Observed, Output};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One pretend resource on one system.
#[derive(Debug, Clone, Default)]
pub struct Thing {
    pub up: bool,
    /// online returns but the resource does not come up.
    pub broken_online: bool,
    /// clean reports failure.
    pub clean_fails: bool,
    /// Entry points that time out instead of answering.
    pub hangs: BTreeSet<&'static str>,
}

/// The agents of every system.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub things: BTreeMap<(String, String), Thing>,
}

impl World {
    /// Everything down, except persistent resources (a NIC is up).
    pub fn new(conf: &ClusterConf) -> World {
        let mut w = World::default();
        for r in conf.resources.values() {
            if let Some(g) = conf.groups.get(&r.group) {
                for (s, _) in &g.system_list {
                    let up = r.operations == Operations::None;
                    w.things.insert((r.name.clone(), s.clone()), Thing { up, ..Thing::default() });
                }
            }
        }
        w
    }

    pub fn thing(&mut self, resource: &str, system: &str) -> &mut Thing {
        self.things.entry((resource.to_string(), system.to_string())).or_default()
    }

    /// Carry out `cmd`; the result as GAB would deliver it.
    pub fn answer(&mut self, cmd: &AgentCommand) -> Event {
        let t = self.thing(&cmd.resource, &cmd.system);
        let result = if t.hangs.contains(cmd.op.name()) {
            AgentResult::TimedOut(cmd.op)
        } else {
            match cmd.op {
                AgentOp::Monitor => AgentResult::Monitor(if t.up { Observed::Online } else { Observed::Offline }),
                AgentOp::Online => {
                    if !t.broken_online {
                        t.up = true;
                    }
                    AgentResult::Done(AgentOp::Online)
                }
                AgentOp::Offline => {
                    t.up = false;
                    AgentResult::Done(AgentOp::Offline)
                }
                AgentOp::Clean(_) => {
                    if t.clean_fails {
                        AgentResult::Cleaned { ok: false }
                    } else {
                        t.up = false;
                        AgentResult::Cleaned { ok: true }
                    }
                }
            }
        };
        Event::Agent { system: cmd.system.clone(), resource: cmd.resource.clone(), result }
    }
}

/// Engines, world, clock.
pub struct Cluster {
    pub engines: Vec<Engine>,
    pub world: World,
    pub now: Millis,
    /// Agent commands not answered yet, oldest first.
    pub pending: VecDeque<AgentCommand>,
    /// Every output of the first engine, in order.
    pub log: Vec<Output>,
    /// Allow a failover group up on two systems (a test of the
    /// concurrency-violation handling itself).
    pub allow_concurrency: bool,
    /// Events applied.
    pub events: u64,
    /// Print every event and its outputs (SIM_TRACE=1 in the tests).
    pub trace: bool,
    /// Systems whose agents are gone with their node.
    dead: BTreeSet<String>,
    /// What the hosts report back (builds done or failed, HADs exited),
    /// fed before further agent answers.
    host_events: VecDeque<Event>,
    /// Systems whose main.cf does not verify: their local build fails.
    pub bad_main_cf: BTreeSet<String>,
    /// Systems whose builds do not finish (a snapshot in transit).
    pub held_builds: BTreeSet<String>,
    /// Snapshots carried for REMOTE_BUILD.
    pub snapshots_sent: u64,
    /// (resource, system) whose agent holds its answers until released:
    /// the moment in between (STARTING, STOPPING) can be looked at.
    pub held: BTreeSet<(String, String)>,
}

impl Cluster {
    /// `copies` engines (at least one) over `conf`.
    pub fn new(conf: ClusterConf, copies: usize) -> Cluster {
        Cluster::of(Engine::new(conf), copies)
    }

    /// `copies` copies of `engine`.
    pub fn of(engine: Engine, copies: usize) -> Cluster {
        let world = World::new(engine.conf());
        Cluster {
            engines: vec![engine; copies.max(1)],
            world,
            now: 0,
            pending: VecDeque::new(),
            log: Vec::new(),
            allow_concurrency: false,
            events: 0,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            dead: BTreeSet::new(),
            host_events: VecDeque::new(),
            bad_main_cf: BTreeSet::new(),
            held_builds: BTreeSet::new(),
            snapshots_sent: 0,
            held: BTreeSet::new(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engines[0]
    }

    /// Feed one event to every engine; Err says which invariant broke.
    pub fn feed(&mut self, ev: Event) -> Result<Vec<Output>, String> {
        match &ev {
            Event::SystemFaulted { system } => {
                // The node is gone: so are its resources and its agents.
                self.dead.insert(system.clone());
                for ((_, s), t) in self.world.things.iter_mut() {
                    if s == system {
                        t.up = false;
                    }
                }
                self.pending.retain(|c| &c.system != system);
            }
            Event::HadDown { system } => self.pending.retain(|c| &c.system != system),
            Event::SystemUp { system } => {
                self.dead.remove(system);
            }
            _ => {}
        }
        self.events += 1;
        let mut outs: Option<Vec<Output>> = None;
        for (i, e) in self.engines.iter_mut().enumerate() {
            let o = e.apply(&ev);
            match &outs {
                None => outs = Some(o),
                Some(first) if *first != o => {
                    return Err(format!("engine {i} disagrees with engine 0 after {ev:?}:\n  {first:?}\n  {o:?}"));
                }
                Some(_) => {}
            }
        }
        let outs = outs.unwrap_or_default();
        if self.trace {
            println!("{:>8} {ev:?}", self.now);
            for o in &outs {
                println!("           -> {o:?}");
            }
        }
        for o in &outs {
            match o {
                Output::Agent(cmd) => {
                    self.check_order(cmd)?;
                    self.check_group_deps(cmd)?;
                    if !self.dead.contains(&cmd.system) {
                        self.pending.push_back(cmd.clone());
                    }
                }
                Output::SendSnapshot { to, .. } => self.carry_snapshot(to)?,
                Output::Notify(Notification::SystemState { system, state }) => self.host_sees(system, state),
                _ => {}
            }
        }
        self.check_no_double_online()?;
        self.log.extend(outs.iter().cloned());
        Ok(outs)
    }

    /// Resources start after what they require and stop before what
    /// requires them.
    fn check_order(&self, cmd: &AgentCommand) -> Result<(), String> {
        let e = self.engine();
        let conf = e.conf();
        let r = &conf.resources[&cmd.resource];
        match cmd.op {
            AgentOp::Online => {
                for c in &r.children {
                    if conf.resources[c].enabled && !e.resource(c, &cmd.system).is_some_and(|x| x.is_online()) {
                        return Err(format!("online of {} on {} while {c}, which it requires, is not online", cmd.resource, cmd.system));
                    }
                }
            }
            AgentOp::Offline => {
                for p in conf.resources.values().filter(|p| p.children.contains(&cmd.resource)) {
                    let prt = e.resource(&p.name, &cmd.system);
                    if p.operations == Operations::OnOff && prt.is_some_and(|x| x.is_online()) {
                        return Err(format!("offline of {} on {} while {}, which requires it, is online", cmd.resource, cmd.system, p.name));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Group dependencies hold, checked from the configuration alone (not
    /// through the engine's own rules): a parent starts only where an
    /// online dependency is served by a running child; a child is stopped
    /// only once no unfrozen firm or hard parent relying on it alone still
    /// runs; offline local groups never start on one system together.
    fn check_group_deps(&self, cmd: &AgentCommand) -> Result<(), String> {
        let e = self.engine();
        let conf = e.conf();
        let group = &conf.resources[&cmd.resource].group;
        let up = |g: &str, s: &str| e.group_state(g, s).is_some_and(|st| st.online || st.partial);
        let active = |g: &str, s: &str| e.group_state(g, s).is_some_and(|st| st.active());
        let serves = |d: &GroupDep, parent_sys: &str, child_sys: &str| match d.location {
            DepLocation::Local => parent_sys == child_sys,
            DepLocation::Global => true,
            DepLocation::Remote => parent_sys != child_sys,
        };
        let instances = |g: &str| conf.groups[g].system_list.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>();
        match cmd.op {
            AgentOp::Online => {
                // The parent side: what this group requires.
                for d in &conf.groups[group].deps {
                    match d.category {
                        DepCategory::Online
                            if d.kind != DepKind::Soft && !instances(&d.child).iter().any(|z| serves(d, &cmd.system, z) && up(&d.child, z)) =>
                        {
                            return Err(format!(
                                "online of {} on {} while group {group} requires group {} ({:?} {:?}) and no instance serving it runs",
                                cmd.resource, cmd.system, d.child, d.location, d.kind
                            ));
                        }
                        DepCategory::Offline if active(&d.child, &cmd.system) => {
                            return Err(format!("online of {} on {} while group {} (offline local child of {group}) is up there", cmd.resource, cmd.system, d.child));
                        }
                        _ => {}
                    }
                }
                // The child side: an offline local parent active here.
                for p in conf.groups.values() {
                    if p.deps.iter().any(|d| &d.child == group && d.category == DepCategory::Offline) && active(&p.name, &cmd.system) {
                        return Err(format!("online of {} on {} while group {} (offline local parent of {group}) is up there", cmd.resource, cmd.system, p.name));
                    }
                }
            }
            AgentOp::Offline => {
                for p in conf.groups.values().filter(|p| !e.frozen(&p.name)) {
                    for d in p.deps.iter().filter(|d| &d.child == group && d.category == DepCategory::Online && d.kind != DepKind::Soft) {
                        for y in instances(&p.name) {
                            let onoff_up = conf.resources.values().any(|r| {
                                r.group == p.name && r.operations == Operations::OnOff && e.resource(&r.name, y).is_some_and(|x| x.is_online())
                            });
                            let served_elsewhere = instances(group).iter().any(|z| *z != cmd.system && serves(d, y, z) && up(group, z));
                            if onoff_up && serves(d, y, &cmd.system) && !served_elsewhere {
                                return Err(format!(
                                    "offline of {} on {} while group {} on {y} relies on group {group} there ({:?} {:?}) and is still up",
                                    cmd.resource, cmd.system, p.name, d.location, d.kind
                                ));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_no_double_online(&self) -> Result<(), String> {
        if self.allow_concurrency {
            return Ok(());
        }
        let e = self.engine();
        for g in e.conf().groups.values().filter(|g| !g.parallel) {
            let active = e.active_on(&g.name);
            if active.len() > 1 {
                return Err(format!("failover group {} is up on {} at once", g.name, active.join(" and ")));
            }
        }
        Ok(())
    }

    /// REMOTE_BUILD of `to`: the last engine copy is replaced by one
    /// restored from the first one's snapshot (as the joining HAD would
    /// build it), then the host reports the build done.
    fn carry_snapshot(&mut self, to: &str) -> Result<(), String> {
        let json = serde_json::to_string(&self.engines[0]).map_err(|e| format!("snapshot does not serialize: {e}"))?;
        let last = self.engines.len() - 1;
        self.engines[last] = serde_json::from_str::<Engine>(&json).map_err(|e| format!("snapshot does not restore: {e}"))?;
        self.snapshots_sent += 1;
        if !self.held_builds.contains(to) {
            self.host_events.push_back(Event::SystemBuilt { system: to.to_string() });
        }
        Ok(())
    }

    /// What the host on `system` does when its HAD changes state: a local
    /// build reads main.cf; an exiting HAD leaves port h.
    fn host_sees(&mut self, system: &str, state: &str) {
        let system = system.to_string();
        match state {
            "LOCAL_BUILD" if self.held_builds.contains(&system) => {}
            "LOCAL_BUILD" if self.bad_main_cf.contains(&system) => {
                self.host_events.push_back(Event::BuildFailed { system, why: "main.cf does not verify".into() })
            }
            "LOCAL_BUILD" => self.host_events.push_back(Event::SystemBuilt { system }),
            "EXITING" => self.host_events.push_back(Event::HadDown { system }),
            _ => {}
        }
    }

    /// Answer agent commands and carry out the hosts' reports until none
    /// is left (bounded).
    pub fn settle(&mut self) -> Result<(), String> {
        for _ in 0..1_000_000 {
            if let Some(ev) = self.host_events.pop_front() {
                self.feed(ev)?;
                continue;
            }
            let next = self.pending.iter().position(|c| !self.held.contains(&(c.resource.clone(), c.system.clone())));
            let Some(cmd) = next.and_then(|i| self.pending.remove(i)) else {
                return self.check_agreement();
            };
            let ev = self.world.answer(&cmd);
            self.feed(ev)?;
        }
        Err("agents kept being asked for more: no quiescence after 1,000,000 answers".into())
    }

    /// Time passes, a second at a time, agents answering as it goes.
    pub fn wait(&mut self, secs: u64) -> Result<(), String> {
        for _ in 0..secs {
            self.now += 1000;
            self.feed(Event::Tick { now: self.now })?;
            self.settle()?;
        }
        Ok(())
    }

    /// Every engine holds the same state.
    pub fn check_agreement(&self) -> Result<(), String> {
        let first = self.engines[0].snapshot();
        for (i, e) in self.engines.iter().enumerate().skip(1) {
            if e.snapshot() != first {
                return Err(format!("engine {i} holds another state than engine 0"));
            }
        }
        Ok(())
    }

    /// The failovers notified so far: (group, from, to).
    pub fn failovers(&self) -> Vec<(String, String, Option<String>)> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Notify(Notification::Failover { group, from, to }) => Some((group.clone(), from.clone(), to.clone())),
                _ => None,
            })
            .collect()
    }
}
