//! Groups on the move: online bottom-up (a resource starts once every
//! resource it requires is online; independent branches start together),
//! offline top-down, what follows an offline (a switch, a failover), and
//! AutoStart.

use super::state::*;
use super::*;
use crate::config::DepLocation;

impl Engine {
    /// Issue what may start now for each system where `group` is going
    /// online or offline; finish what is done.
    /// Resources taken offline because something they require faulted:
    /// each once nothing online requires it any more.
    fn advance_stopping(&mut self, group: &str) {
        let mine: Vec<(String, String)> =
            self.stopping.iter().filter(|(r, _)| self.conf.resources.get(r).is_none_or(|c| c.group == group)).cloned().collect();
        for (r, s) in mine {
            let Some(rt) = self.res.get(&r).and_then(|p| p.get(&s)) else {
                self.stopping.remove(&(r, s));
                continue;
            };
            if rt.busy.is_some() || rt.state == ResState::GoingOffline {
                continue;
            }
            if !rt.is_online() || self.conf.resources[&r].operations != Operations::OnOff {
                self.stopping.remove(&(r, s));
                continue;
            }
            let parents_down = self.idx.parents.get(&r).into_iter().flatten().all(|p| {
                let prt = &self.res[p][&s];
                !(prt.is_online() && self.conf.resources[p].operations == Operations::OnOff) && prt.busy.is_none()
            });
            if parents_down {
                self.stopping.remove(&(r.clone(), s.clone()));
                let rt = self.res.get_mut(&r).and_then(|p| p.get_mut(&s)).expect("resource rt");
                rt.state = ResState::GoingOffline;
                self.command(&r, &s, AgentOp::Offline);
                self.notify_resource(&r, &s);
            }
        }
    }

    pub(super) fn advance(&mut self, group: &str) {
        if !self.stopping.is_empty() {
            self.advance_stopping(group);
        }
        let systems: Vec<(String, Intent)> = match self.groups.get(group) {
            Some(per) => per.iter().filter(|(_, r)| r.intent != Intent::None).map(|(s, r)| (s.clone(), r.intent)).collect(),
            None => return,
        };
        for (s, intent) in systems {
            let done = match intent {
                Intent::Online => self.advance_online(group, &s),
                Intent::Offline => self.advance_offline(group, &s),
                Intent::None => false,
            };
            if done {
                self.finished(group, &s, intent);
            }
        }
    }

    /// True when nothing more will start.
    fn advance_online(&mut self, group: &str, system: &str) -> bool {
        if self.systems[system].state != SysState::Running {
            return true;
        }
        if !self.firm_deps_hold(group, system) {
            // A group it relies on is going: that group takes this one
            // down first (take_down_relying); nothing more starts here.
            return false;
        }
        if self.make_room(group, system) {
            return false;
        }
        let mut waiting = false;
        for r in self.idx.group_resources.get(group).cloned().unwrap_or_default() {
            let conf = &self.conf.resources[&r];
            if !conf.enabled || conf.operations == Operations::None {
                continue;
            }
            let rt = &self.res[&r][system];
            if rt.busy.is_some() || matches!(rt.state, ResState::GoingOnline | ResState::GoingOffline) {
                waiting = true;
                continue;
            }
            if rt.faulted || rt.admin_wait || rt.state != ResState::Offline {
                continue;
            }
            let ready = conf.children.iter().all(|c| !self.conf.resources[c].enabled || self.res[c][system].is_online());
            if ready {
                let rt = self.res.get_mut(&r).and_then(|p| p.get_mut(system)).expect("resource rt");
                rt.state = ResState::GoingOnline;
                rt.wait_monitors = 0;
                self.command(&r, system, AgentOp::Online);
                self.notify_resource(&r, system);
                waiting = true;
            } else if conf.children.iter().any(|c| self.may_come_online(c, system)) {
                waiting = true;
            }
        }
        !waiting
    }

    /// Whether `resource` is online or still may come online on `system`
    /// in the current online of its group.
    fn may_come_online(&self, resource: &str, system: &str) -> bool {
        let conf = &self.conf.resources[resource];
        let rt = &self.res[resource][system];
        if !conf.enabled || rt.faulted || conf.operations == Operations::None && !rt.is_online() {
            return false;
        }
        rt.is_online() || rt.state == ResState::GoingOnline || rt.busy.is_some() || conf.children.iter().all(|c| self.may_come_online(c, system))
    }

    /// True when nothing is online (of the On-Off resources) or on its way.
    fn advance_offline(&mut self, group: &str, system: &str) -> bool {
        // Parents that rely on this one here (firm or hard) go first, and
        // follow it wherever it comes up; also when its node is gone, so
        // that it fails over only once they are down.
        if self.take_down_relying(group, system, None) {
            return false;
        }
        if !self.systems[system].state.has_config() {
            return true;
        }
        let mut waiting = false;
        let resources = self.idx.group_resources.get(group).cloned().unwrap_or_default();
        for r in &resources {
            let conf = &self.conf.resources[r];
            let rt = &self.res[r][system];
            if rt.busy.is_some() || matches!(rt.state, ResState::GoingOnline | ResState::GoingOffline) {
                waiting = true;
                continue;
            }
            if conf.operations != Operations::OnOff || !rt.is_online() {
                continue;
            }
            let parents_down = self.idx.parents.get(r).into_iter().flatten().all(|p| {
                let prt = &self.res[p][system];
                !(prt.is_online() && self.conf.resources[p].operations == Operations::OnOff) && prt.busy.is_none() && prt.state != ResState::GoingOffline
            });
            waiting = true;
            if parents_down {
                let rt = self.res.get_mut(r).and_then(|p| p.get_mut(system)).expect("resource rt");
                rt.state = ResState::GoingOffline;
                self.command(r, system, AgentOp::Offline);
                self.notify_resource(r, system);
            }
        }
        !waiting
    }

    /// `group` finished going `intent` on `system`.
    fn finished(&mut self, group: &str, system: &str, intent: Intent) {
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        rt.intent = Intent::None;
        rt.onlined = intent == Intent::Online;
        let then = std::mem::replace(&mut rt.then, Then::Nothing);
        if intent != Intent::Offline {
            self.soft_parents_follow(group, system);
            return;
        }
        // The groups it requires may have waited for it to go.
        let children: Vec<String> = self.conf.groups[group].deps.iter().map(|d| d.child.clone()).collect();
        self.dirty.extend(children);
        match then {
            Then::Nothing => {}
            Then::OnlineOn(to) => match self.ineligible(group, &to) {
                None => self.start_online(group, &to),
                Some(why) => {
                    self.out.push(Output::Notify(Notification::Stuck { group: group.into(), why: format!("switch to {to}: {why}") }));
                    self.fail_over(group, system);
                }
            },
            Then::FailOver => self.fail_over(group, system),
            Then::FollowChild => {
                self.awaiting.insert((group.to_string(), system.to_string()));
            }
        }
    }

    /// Place the groups waiting for their dependencies, where they now may
    /// go: a failover group where its policy says (a remote parent back on
    /// its own system if it may), each instance of a parallel group back
    /// on the system it left.
    pub(super) fn place_awaiting(&mut self) {
        if self.awaiting.is_empty() {
            return;
        }
        for (g, from) in self.awaiting.clone() {
            let entry = (g.clone(), from.clone());
            let (Some(conf), Some(per)) = (self.conf.groups.get(&g), self.groups.get(&g)) else {
                self.awaiting.remove(&entry); // deleted meanwhile
                continue;
            };
            if conf.parallel {
                let here = per.get(&from).is_some_and(|r| r.intent != Intent::None) || self.group_state(&g, &from).is_some_and(|s| s.active());
                if here {
                    self.awaiting.remove(&entry);
                } else if self.ineligible(&g, &from).is_none() {
                    self.awaiting.remove(&entry);
                    self.start_online(&g, &from);
                }
                continue;
            }
            if !self.active_on(&g).is_empty() || per.values().any(|r| r.intent != Intent::None) {
                self.awaiting.retain(|(x, _)| *x != g);
                continue;
            }
            let systems: Vec<String> = conf.system_list.iter().map(|(s, _)| s.clone()).collect();
            // A remote parent goes back to its own system if it still may.
            let home = conf.deps.iter().any(|d| d.location == DepLocation::Remote) && self.ineligible(&g, &from).is_none();
            let to = if home { Some(from.clone()) } else { self.choose(&g, systems.iter(), None) };
            if let Some(to) = to {
                self.awaiting.retain(|(x, _)| *x != g);
                self.out.push(Output::Notify(Notification::Failover { group: g.clone(), from, to: Some(to.clone()) }));
                self.start_online(&g, &to);
            }
        }
    }

    /// Take `group` offline on `system`, then do `then`.
    pub(super) fn stop_then(&mut self, group: &str, system: &str, then: Then) {
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        rt.intent = Intent::Offline;
        rt.then = then;
        self.dirty.insert(group.to_string());
    }

    pub(super) fn start_online(&mut self, group: &str, system: &str) {
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        rt.intent = Intent::Online;
        rt.then = Then::Nothing;
        self.dirty.insert(group.to_string());
    }

    /// `group` left `from` (fault, node gone, evacuation): start it where
    /// the FailOverPolicy says, if anywhere.
    pub(super) fn fail_over(&mut self, group: &str, from: &str) {
        let g = &self.conf.groups[group];
        if self.frozen(group) || !g.auto_fail_over || g.parallel {
            return;
        }
        if !self.active_on(group).into_iter().all(|s| s == from) {
            return; // it runs elsewhere already
        }
        if self.hard_child_goes(group, from) {
            return;
        }
        let g = &self.conf.groups[group];
        let systems: Vec<String> = g.system_list.iter().map(|(s, _)| s.clone()).collect();
        let has_deps = !g.deps.is_empty();
        let to = self.choose_for_failover(group, systems.iter(), from);
        if to.is_some() || !has_deps {
            self.out.push(Output::Notify(Notification::Failover { group: group.into(), from: from.into(), to: to.clone() }));
        }
        match to {
            Some(t) => self.start_online(group, &t),
            None if has_deps => {
                // Perhaps once the groups it requires are up somewhere.
                self.awaiting.insert((group.to_string(), from.to_string()));
                self.out.push(Output::Notify(Notification::Stuck {
                    group: group.into(),
                    why: format!("left {from}; waits for the groups it requires to be online where it may run"),
                }));
            }
            None => {
                let why = systems
                    .iter()
                    .filter(|s| s.as_str() != from)
                    .filter_map(|s| self.ineligible(group, s))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.out.push(Output::Notify(Notification::Stuck {
                    group: group.into(),
                    why: format!("no system to fail over to from {from}{}", if why.is_empty() { String::new() } else { format!(": {why}") }),
                }));
            }
        }
    }

    /// AutoStart: once the group is probed on every running system of its
    /// SystemList, start it on the AutoStartList system the policy picks
    /// (every eligible one for a parallel group). Once per group: a group
    /// the administrator took offline stays offline.
    pub(super) fn autostart(&mut self, group: &str) {
        if self.autostarted.contains(group) {
            return;
        }
        let g = &self.conf.groups[group];
        if !g.auto_start || self.frozen(group) {
            return;
        }
        let per = &self.groups[group];
        let mut running = 0;
        for (s, _) in &g.system_list {
            if self.systems[s].state == SysState::Running {
                running += 1;
                if !per[s].probed {
                    return;
                }
            }
        }
        if running == 0 || per.values().any(|r| r.intent != Intent::None) {
            return;
        }
        if !self.active_on(group).is_empty() {
            self.autostarted.insert(group.to_string());
            return;
        }
        let list = g.auto_start_list.clone();
        let targets: Vec<String> = if g.parallel {
            list.iter().filter(|s| self.ineligible(group, s).is_none()).cloned().collect()
        } else {
            self.choose(group, list.iter(), None).into_iter().collect()
        };
        if targets.is_empty() {
            return; // tried again when something changes
        }
        self.autostarted.insert(group.to_string());
        for t in targets {
            self.start_online(group, &t);
        }
    }
}
