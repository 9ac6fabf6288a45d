//! The HAD engine: a deterministic state machine over one ordered stream of
//! events ([`Event`]), as GAB delivers them on port h. It decides which
//! agent entry points run where, brings groups online bottom-up and offline
//! top-down, handles faults and fails groups over, and answers the
//! administrator. It does no I/O and reads no clock: two engines fed the
//! same stream hold the same state and emit the same outputs; the host on
//! each node carries out the agent commands meant for its own system.
//!
//! Module map: `event` (inputs and outputs), `state` (the replicated
//! run-time state), `placement` (where a group may go), `resource` (agent
//! results, faults, restarts), `group` (bringing groups online and offline,
//! failover), `deps` (group dependencies in motion), `systems` (HAD joining,
//! building, leaving; nodes lost), `admin` (requests).

mod admin;
mod deps;
pub mod event;
mod group;
mod placement;
mod reconfig;
mod resource;
pub mod state;
mod systems;

pub use event::*;
pub use reconfig::Source;
use state::*;

use crate::config::{ClusterConf, Operations};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Lookups the configuration does not give directly, rebuilt when it
/// changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Index {
    /// Resources of each group, in name order.
    group_resources: BTreeMap<String, Vec<String>>,
    /// Resources that require each resource.
    parents: BTreeMap<String, Vec<String>>,
    /// Groups that require each group.
    dependents: BTreeMap<String, Vec<String>>,
    /// The enabled resources of each group and their Operations (the
    /// group state is computed from them at every change).
    group_enabled: BTreeMap<String, Vec<(String, Operations)>>,
}

impl Index {
    fn build(conf: &ClusterConf) -> Index {
        let mut idx = Index::default();
        for g in conf.groups.values() {
            idx.group_resources.insert(g.name.clone(), Vec::new());
            for d in &g.deps {
                idx.dependents.entry(d.child.clone()).or_default().push(g.name.clone());
            }
        }
        for r in conf.resources.values() {
            idx.group_resources.entry(r.group.clone()).or_default().push(r.name.clone());
            if r.enabled {
                idx.group_enabled.entry(r.group.clone()).or_default().push((r.name.clone(), r.operations));
            }
            for c in &r.children {
                idx.parents.entry(c.clone()).or_default().push(r.name.clone());
            }
        }
        idx
    }
}

/// The engine. See the module header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Engine {
    conf: ClusterConf,
    idx: Index,
    now: Millis,
    systems: BTreeMap<String, SystemRt>,
    /// resource -> system -> state, for every system of its group's SystemList.
    res: BTreeMap<String, BTreeMap<String, ResourceRt>>,
    /// group -> system -> state, for every system of its SystemList.
    groups: BTreeMap<String, BTreeMap<String, GroupSysRt>>,
    /// Temporarily frozen groups (`hagrp -freeze` without -persistent).
    tfrozen: BTreeSet<String>,
    /// Groups whose AutoStart was acted on (started, or found running).
    autostarted: BTreeSet<String>,
    /// The configuration as text, for changes at run time (None: built
    /// from a ClusterConf alone; changes are refused).
    source: Option<Source>,
    /// Between `haconf -makerw` and `haconf -dump -makero`.
    read_write: bool,
    /// Resources to take offline on a system because something they
    /// require faulted (FaultPropagation): (resource, system).
    stopping: BTreeSet<(String, String)>,
    /// Groups that left a system and wait for a place that satisfies
    /// their group dependencies: (group, the system it left). A parallel
    /// group has one per instance, each to come back where it was.
    awaiting: BTreeSet<(String, String)>,
    /// Monitors due: (when, sequence, resource, system). The sequence
    /// number orders timers due at once and spares string comparisons.
    timers: BTreeSet<(Millis, u64, String, String)>,
    timer_seq: u64,
    /// Groups to look at again after the current event.
    #[serde(skip)]
    dirty: BTreeSet<String>,
    /// A group touched on one system only (an agent result): its state
    /// there is told; the group is looked at whole only if it is moving.
    #[serde(skip)]
    touched: BTreeSet<(String, String)>,
    #[serde(skip)]
    out: Vec<Output>,
    /// Something that may let a group waiting for its dependencies go
    /// changed (a group's state, a system, an administrator's request):
    /// look at `awaiting` again. Most events (monitors that find nothing
    /// new) leave it false, and the waiting groups are not looked at.
    #[serde(skip)]
    recheck_awaiting: bool,
}

impl Engine {
    pub fn new(conf: ClusterConf) -> Engine {
        let idx = Index::build(&conf);
        let systems = conf
            .systems
            .keys()
            .map(|s| (s.clone(), SystemRt::new()))
            .collect();
        let mut e = Engine {
            idx,
            now: 0,
            systems,
            res: BTreeMap::new(),
            groups: BTreeMap::new(),
            tfrozen: BTreeSet::new(),
            autostarted: BTreeSet::new(),
            awaiting: BTreeSet::new(),
            stopping: BTreeSet::new(),
            source: None,
            read_write: false,
            timers: BTreeSet::new(),
            timer_seq: 0,
            dirty: BTreeSet::new(),
            touched: BTreeSet::new(),
            out: Vec::new(),
            recheck_awaiting: false,
            conf,
        };
        e.fill_runtime();
        e
    }

    /// Run-time entries for every (group, system) and (resource, system)
    /// the configuration names; existing ones are kept.
    fn fill_runtime(&mut self) {
        for g in self.conf.groups.values() {
            let per = self.groups.entry(g.name.clone()).or_default();
            for (s, _) in &g.system_list {
                per.entry(s.clone()).or_insert_with(|| {
                    let mut rt = GroupSysRt::new();
                    // Nothing is known of a system not seen yet; it blocks
                    // nothing until its HAD is known to be down.
                    rt.auto_disabled = false;
                    rt
                });
            }
        }
        for r in self.conf.resources.values() {
            let Some(g) = self.conf.groups.get(&r.group) else { continue };
            let per = self.res.entry(r.name.clone()).or_default();
            for (s, _) in &g.system_list {
                per.entry(s.clone()).or_default();
            }
        }
    }

    /// Apply one event; the outputs it caused, in order.
    pub fn apply(&mut self, ev: &Event) -> Vec<Output> {
        self.recheck_awaiting = !matches!(ev, Event::Tick { .. } | Event::Agent { .. });
        match ev {
            Event::Tick { now } => self.tick(*now),
            Event::SystemUp { system } => {
                self.system_join(system, false);
                self.system_built(system);
            }
            Event::SystemJoin { system } => self.system_join(system, true),
            Event::SystemBuilt { system } => self.system_built(system),
            Event::BuildFailed { system, why } => self.build_failed(system, why),
            Event::SystemFaulted { system } => self.system_gone(system, true),
            Event::HadDown { system } => self.system_gone(system, false),
            Event::Admin { id, from, request } => {
                let result = self.request(request);
                self.out.push(Output::Reply { id: *id, to: from.clone(), result });
            }
            Event::Agent { system, resource, result } => self.agent_result(system, resource, result),
        }
        self.settle();
        std::mem::take(&mut self.out)
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn conf(&self) -> &ClusterConf {
        &self.conf
    }

    pub fn system(&self, system: &str) -> Option<&SystemRt> {
        self.systems.get(system)
    }

    pub fn resource(&self, resource: &str, system: &str) -> Option<&ResourceRt> {
        self.res.get(resource)?.get(system)
    }

    pub fn group_rt(&self, group: &str, system: &str) -> Option<&GroupSysRt> {
        self.groups.get(group)?.get(system)
    }

    pub fn frozen(&self, group: &str) -> bool {
        self.tfrozen.contains(group) || self.conf.groups.get(group).is_some_and(|g| g.frozen)
    }

    /// The group's state on `system`, from its resources (None: the
    /// system is not in its SystemList).
    pub fn group_state(&self, group: &str, system: &str) -> Option<GroupState> {
        let rt = self.groups.get(group)?.get(system)?;
        let mut st = GroupState {
            online: false,
            partial: false,
            faulted: rt.faulted,
            starting: rt.intent == Intent::Online,
            stopping: rt.intent == Intent::Offline,
            auto_disabled: rt.auto_disabled,
        };
        // On-Off resources decide; On-Only and persistent ones stay up
        // whatever HAD does, so they count only for a group made of them
        // alone, and only where HAD brought it online.
        let (mut onoff, mut onoff_up, mut all, mut all_up) = (0, 0, 0, 0);
        for (r, ops) in self.idx.group_enabled.get(group).into_iter().flatten() {
            // Going offline is still up: the group is not down (nor may
            // it start elsewhere) until the offline is done.
            let on = self.res.get(r).and_then(|p| p.get(system)).is_some_and(|x| x.is_online() || x.state == ResState::GoingOffline) as usize;
            all += 1;
            all_up += on;
            if *ops == Operations::OnOff {
                onoff += 1;
                onoff_up += on;
            }
        }
        if onoff == 0 {
            st.online = all > 0 && all_up == all && rt.onlined;
        } else if all_up == all {
            st.online = true;
        } else if onoff_up > 0 {
            st.partial = true;
        }
        Some(st)
    }

    /// Everything that decides the future, for comparing engines.
    pub fn snapshot(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Look at every group touched by the last event: start what may
    /// start, finish what is done, tell what changed.
    fn settle(&mut self) {
        for (g, s) in std::mem::take(&mut self.touched) {
            if self.moving(&g) || self.dirty.contains(&g) {
                self.dirty.insert(g);
            } else if self.notify_group_on(&g, &s) {
                if let Some(parents) = self.idx.dependents.get(&g) {
                    self.dirty.extend(parents.iter().cloned());
                }
            }
        }
        // Bounded: each pass either issues commands or changes an intent;
        // a group settles in a few passes.
        for _ in 0..64 {
            if self.dirty.is_empty() && std::mem::take(&mut self.recheck_awaiting) {
                self.place_awaiting();
            }
            if self.dirty.is_empty() {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for g in &dirty {
                self.advance(g);
            }
            if std::mem::take(&mut self.recheck_awaiting) {
                self.place_awaiting();
            }
            for g in &dirty {
                self.autostart(g);
            }
            for g in &dirty {
                // A group whose state changed may unblock the groups that
                // depend on it.
                if self.notify_group(g) {
                    if let Some(parents) = self.idx.dependents.get(g) {
                        self.dirty.extend(parents.iter().cloned());
                    }
                }
            }
        }
        for g in std::mem::take(&mut self.dirty) {
            self.notify_group(&g);
        }
        self.check_leaving();
    }

    /// Whether the group is going somewhere (or may autostart): then every
    /// result of its resources may let it take a step.
    fn moving(&self, group: &str) -> bool {
        !self.autostarted.contains(group)
            || self.groups.get(group).is_some_and(|p| p.values().any(|r| r.intent != Intent::None))
            || (!self.stopping.is_empty() && self.stopping.iter().any(|(r, _)| self.conf.resources.get(r).is_some_and(|c| c.group == group)))
    }

    /// Tell the group's state where it changed; whether it did.
    fn notify_group(&mut self, group: &str) -> bool {
        let mut changed = false;
        let systems: Vec<String> = self.groups.get(group).map(|p| p.keys().cloned().collect()).unwrap_or_default();
        for s in systems {
            changed |= self.notify_group_on(group, &s);
        }
        changed
    }

    fn notify_group_on(&mut self, group: &str, system: &str) -> bool {
        let Some(st) = self.group_state(group, system) else { return false };
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        if rt.told == Some(st) {
            return false;
        }
        rt.told = Some(st);
        let name = st.name();
        self.recheck_awaiting = true;
        self.out.push(Output::Notify(Notification::GroupState { group: group.to_string(), system: system.to_string(), state: name }));
        true
    }

    fn tick(&mut self, now: Millis) {
        self.now = self.now.max(now);
        while let Some((t, seq, _, _)) = self.timers.first() {
            if *t > self.now {
                break;
            }
            let (t, seq) = (*t, *seq);
            let Some((_, _, r, s)) = self.timers.pop_first() else { break };
            let Some(rt) = self.res.get_mut(&r).and_then(|p| p.get_mut(&s)) else { continue };
            if rt.next_monitor != Some((t, seq)) || rt.busy.is_some() {
                continue;
            }
            rt.next_monitor = None;
            self.command(&r, &s, AgentOp::Monitor);
        }
    }

    /// Hand an entry point to the agent of `resource` on `system`.
    fn command(&mut self, resource: &str, system: &str, op: AgentOp) {
        let conf = &self.conf.resources[resource];
        let timing = conf.timing;
        let timeout = match op {
            AgentOp::Monitor => timing.monitor_timeout,
            AgentOp::Online => timing.online_timeout,
            AgentOp::Offline => timing.offline_timeout,
            AgentOp::Clean(_) => timing.clean_timeout,
        };
        let cmd = AgentCommand {
            system: system.to_string(),
            resource: resource.to_string(),
            type_name: conf.type_name.clone(),
            op,
            args: conf.args_for(system),
            timeout,
        };
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        if let Some((t, seq)) = rt.next_monitor.take() {
            self.timers.remove(&(t, seq, resource.to_string(), system.to_string()));
        }
        rt.busy = Some(op);
        self.out.push(Output::Agent(cmd));
    }

    /// The next monitor of `resource` on `system` in `secs`.
    fn schedule_monitor(&mut self, resource: &str, system: &str, secs: u32) {
        let at = self.now + u64::from(secs) * 1000;
        self.timer_seq += 1;
        let seq = self.timer_seq;
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        if let Some((t, old)) = rt.next_monitor.replace((at, seq)) {
            self.timers.remove(&(t, old, resource.to_string(), system.to_string()));
        }
        self.timers.insert((at, seq, resource.to_string(), system.to_string()));
    }
}
