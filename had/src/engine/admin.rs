//! Administrators' requests (`hagrp`, `hares`, `hasys`, `hastop`): checked
//! against the replicated state, so every node accepts or refuses alike,
//! and answered with what was done or why not.

use super::state::*;
use super::*;

type Answer = Result<String, String>;

impl Engine {
    pub(super) fn request(&mut self, req: &Request) -> Answer {
        match req {
            Request::GroupOnline { group, system } => self.group_online(group, system),
            Request::GroupOffline { group, system } => self.group_offline(group, system),
            Request::GroupSwitch { group, to } => self.group_switch(group, to.as_deref()),
            Request::GroupClear { group, system } => self.group_clear(group, system.as_deref()),
            Request::GroupFlush { group, system } => self.group_flush(group, system),
            Request::GroupFreeze { group, persistent } => self.group_freeze(group, *persistent, true),
            Request::GroupUnfreeze { group, persistent } => self.group_freeze(group, *persistent, false),
            Request::GroupAutoEnable { group, system } => self.group_autoenable(group, system),
            Request::ResourceOnline { resource, system } => self.resource_online(resource, system),
            Request::ResourceOffline { resource, system } => self.resource_offline(resource, system),
            Request::ResourceClear { resource, system } => self.resource_clear(resource, system.as_deref()),
            Request::ResourceProbe { resource, system } => self.resource_probe(resource, system),
            Request::SystemFreeze { system } => self.system_freeze(system, true),
            Request::SystemUnfreeze { system } => self.system_freeze(system, false),
            Request::SystemStop { system, evacuate } => self.system_stop(system, *evacuate),
            Request::ConfMakeRw => self.conf_makerw(),
            Request::ConfDump { makero } => self.conf_dump(*makero),
            Request::Config { words } => self.conf_command(words),
        }
    }

    fn known_group(&self, group: &str) -> Result<(), String> {
        if self.conf.groups.contains_key(group) {
            Ok(())
        } else {
            Err(format!("no group {group}"))
        }
    }

    /// The group exists and `system` is in its SystemList.
    fn group_on(&self, group: &str, system: &str) -> Result<(), String> {
        self.known_group(group)?;
        if self.groups[group].contains_key(system) {
            Ok(())
        } else {
            Err(format!("system {system} is not in the SystemList of group {group}"))
        }
    }

    fn not_frozen(&self, group: &str) -> Result<(), String> {
        if self.frozen(group) {
            Err(format!("group {group} is frozen"))
        } else {
            Ok(())
        }
    }

    fn group_online(&mut self, group: &str, system: &str) -> Answer {
        self.group_on(group, system)?;
        self.not_frozen(group)?;
        if let Some(st) = self.group_state(group, system) {
            if st.online {
                return Err(format!("group {group} is already online on {system}"));
            }
        }
        // Eligibility first: an auto-disabled group is refused for that,
        // not for where it last ran.
        if let Some(why) = self.ineligible(group, system) {
            return Err(why);
        }
        if !self.conf.groups[group].parallel {
            let elsewhere: Vec<String> = self.active_on(group).into_iter().filter(|s| s != system).collect();
            if !elsewhere.is_empty() {
                return Err(format!("group {group} is a failover group and runs on {}: switch it (hagrp -switch)", elsewhere.join(",")));
            }
        }
        self.start_online(group, system);
        // The administrator decided: AutoStart has nothing left to do.
        self.autostarted.insert(group.to_string());
        Ok(format!("group {group} going online on {system}"))
    }

    fn group_offline(&mut self, group: &str, system: &str) -> Answer {
        self.group_on(group, system)?;
        self.not_frozen(group)?;
        let active = self.group_state(group, system).is_some_and(|s| s.active());
        if !active {
            return Err(format!("group {group} is not online on {system}"));
        }
        self.relied_on(group, system)?;
        self.stop_then(group, system, Then::Nothing);
        self.autostarted.insert(group.to_string());
        Ok(format!("group {group} going offline on {system}"))
    }

    fn group_switch(&mut self, group: &str, to: Option<&str>) -> Answer {
        self.known_group(group)?;
        self.not_frozen(group)?;
        if self.conf.groups[group].parallel {
            return Err(format!("group {group} is parallel: it cannot be switched"));
        }
        let from = match self.active_on(group).as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("group {group} is not online anywhere")),
            many => return Err(format!("group {group} runs on {}", many.join(","))),
        };
        if self.groups[group][&from].intent != Intent::None {
            return Err(format!("group {group} is busy on {from}: wait, or hagrp -flush"));
        }
        self.relied_on(group, &from)?;
        let target = match to {
            Some(t) => {
                self.group_on(group, t)?;
                if t == from {
                    return Err(format!("group {group} already runs on {t}"));
                }
                // The target is checked now and again once the group is down.
                if let Some(why) = self.ineligible(group, t) {
                    return Err(why);
                }
                t.to_string()
            }
            None => {
                let list: Vec<String> = self.conf.groups[group].system_list.iter().map(|(s, _)| s.clone()).collect();
                match self.choose(group, list.iter(), Some(&from)) {
                    Some(t) => t,
                    None => return Err(format!("no system group {group} may switch to")),
                }
            }
        };
        self.stop_then(group, &from, Then::OnlineOn(target.clone()));
        Ok(format!("group {group} switching from {from} to {target}"))
    }

    fn group_clear(&mut self, group: &str, system: Option<&str>) -> Answer {
        self.known_group(group)?;
        if let Some(s) = system {
            self.group_on(group, s)?;
        }
        let systems: Vec<String> = self.groups[group].keys().filter(|s| system.is_none_or(|x| x == s.as_str())).cloned().collect();
        let mut cleared = 0;
        for s in &systems {
            let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(s)).expect("group rt");
            cleared += rt.faulted as usize;
            rt.faulted = false;
            for r in self.idx.group_resources.get(group).cloned().unwrap_or_default() {
                let rt = self.res.get_mut(&r).and_then(|p| p.get_mut(s)).expect("resource rt");
                let waited = std::mem::take(&mut rt.admin_wait);
                if rt.faulted || waited {
                    rt.faulted = false;
                    rt.restarts = 0;
                    rt.online_retries = 0;
                    if rt.state == ResState::Unknown {
                        // Its clean had failed: probe it again.
                        self.command(&r, s, AgentOp::Monitor);
                    }
                    self.notify_resource(&r, s);
                }
            }
        }
        self.dirty.insert(group.to_string());
        Ok(format!("group {group}: faults cleared on {cleared} system(s)"))
    }

    fn group_flush(&mut self, group: &str, system: &str) -> Answer {
        self.group_on(group, system)?;
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        rt.intent = Intent::None;
        rt.then = Then::Nothing;
        // Whatever was going online or offline is probed again.
        for r in self.idx.group_resources.get(group).cloned().unwrap_or_default() {
            let rt = self.res.get_mut(&r).and_then(|p| p.get_mut(system)).expect("resource rt");
            if matches!(rt.state, ResState::GoingOnline | ResState::GoingOffline) {
                rt.state = ResState::Unknown;
                rt.busy = None;
                self.command(&r, system, AgentOp::Monitor);
            }
        }
        self.dirty.insert(group.to_string());
        Ok(format!("group {group} flushed on {system}"))
    }

    fn group_freeze(&mut self, group: &str, persistent: bool, freeze: bool) -> Answer {
        self.known_group(group)?;
        if persistent {
            // The Frozen attribute: a configuration change (read-write
            // only), kept by the next haconf -dump.
            let words = ["hagrp", "-modify", group, "Frozen", if freeze { "1" } else { "0" }].map(String::from);
            self.conf_command(&words)?;
        } else if freeze {
            self.tfrozen.insert(group.to_string());
        } else {
            self.tfrozen.remove(group);
        }
        self.dirty.insert(group.to_string());
        Ok(format!("group {group} {}{}", if freeze { "frozen" } else { "unfrozen" }, if persistent { " (persistent)" } else { "" }))
    }

    fn group_autoenable(&mut self, group: &str, system: &str) -> Answer {
        self.group_on(group, system)?;
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        if !rt.auto_disabled {
            return Err(format!("group {group} is not auto-disabled on {system}"));
        }
        rt.auto_disabled = false;
        // Taken at the administrator's word: nothing of it runs there.
        for r in self.idx.group_resources.get(group).cloned().unwrap_or_default() {
            let rt = self.res.get_mut(&r).and_then(|p| p.get_mut(system)).expect("resource rt");
            if self.systems[system].state != SysState::Running {
                rt.state = ResState::Offline;
            }
        }
        self.dirty.insert(group.to_string());
        Ok(format!("group {group} auto-enabled on {system}"))
    }

    fn resource_of(&self, resource: &str, system: &str) -> Result<String, String> {
        let Some(r) = self.conf.resources.get(resource) else { return Err(format!("no resource {resource}")) };
        self.group_on(&r.group, system)?;
        if self.systems[system].state != SysState::Running {
            return Err(format!("system {system} is {}", self.systems[system].state.name()));
        }
        Ok(r.group.clone())
    }

    fn resource_online(&mut self, resource: &str, system: &str) -> Answer {
        let group = self.resource_of(resource, system)?;
        self.not_frozen(&group)?;
        let conf = &self.conf.resources[resource];
        if conf.operations == Operations::None {
            return Err(format!("resource {resource} is persistent (Operations = None): it is only monitored"));
        }
        let rt = &self.res[resource][system];
        if rt.faulted {
            return Err(format!("resource {resource} is faulted on {system}: hares -clear first"));
        }
        if rt.state != ResState::Offline || rt.busy.is_some() {
            return Err(format!("resource {resource} is {} on {system}", rt.state_name()));
        }
        if let Some(c) = conf.children.iter().find(|c| self.conf.resources[*c].enabled && !self.res[*c][system].is_online()) {
            return Err(format!("resource {resource} requires {c}, which is not online on {system}"));
        }
        if !self.conf.groups[&group].parallel {
            if let Some(s) = self.active_on(&group).into_iter().find(|s| s != system) {
                return Err(format!("group {group} runs on {s}"));
            }
        }
        // A resource goes where its group could: group dependencies hold.
        if let Some(why) = self.deps_block(&self.conf.groups[&group], system, false) {
            return Err(why);
        }
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.state = ResState::GoingOnline;
        rt.wait_monitors = 0;
        self.command(resource, system, AgentOp::Online);
        self.notify_resource(resource, system);
        self.dirty.insert(group);
        Ok(format!("resource {resource} going online on {system}"))
    }

    fn resource_offline(&mut self, resource: &str, system: &str) -> Answer {
        let group = self.resource_of(resource, system)?;
        self.not_frozen(&group)?;
        let rt = &self.res[resource][system];
        if !rt.is_online() || rt.busy.is_some() {
            return Err(format!("resource {resource} is {} on {system}", rt.state_name()));
        }
        if self.conf.resources[resource].operations != Operations::OnOff {
            return Err(format!("resource {resource} cannot be taken offline (Operations is not OnOff)"));
        }
        // Its group would no longer serve the parents that rely on it.
        self.relied_on(&group, system)?;
        if let Some(p) = self.idx.parents.get(resource).into_iter().flatten().find(|p| self.res[*p][system].is_online()) {
            return Err(format!("resource {p} requires {resource} and is online on {system}: take it offline first"));
        }
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.state = ResState::GoingOffline;
        self.command(resource, system, AgentOp::Offline);
        self.notify_resource(resource, system);
        self.dirty.insert(group);
        Ok(format!("resource {resource} going offline on {system}"))
    }

    fn resource_clear(&mut self, resource: &str, system: Option<&str>) -> Answer {
        let Some(r) = self.conf.resources.get(resource) else { return Err(format!("no resource {resource}")) };
        let group = r.group.clone();
        let systems: Vec<String> = self.res[resource].keys().filter(|s| system.is_none_or(|x| x == s.as_str())).cloned().collect();
        if systems.is_empty() {
            return Err(format!("system {} is not in the SystemList of group {group}", system.unwrap_or("?")));
        }
        for s in &systems {
            let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(s)).expect("resource rt");
            rt.admin_wait = false;
            if rt.faulted {
                rt.faulted = false;
                rt.restarts = 0;
                rt.online_retries = 0;
                if rt.state == ResState::Unknown && rt.busy.is_none() {
                    // Its clean had failed: probe it again.
                    self.command(resource, s, AgentOp::Monitor);
                }
                self.notify_resource(resource, s);
            }
            // The group's fault goes once none of its critical resources
            // is faulted there.
            let still = self.idx.group_resources[&group].iter().any(|x| self.conf.resources[x].critical && self.res[x][s].faulted);
            if !still {
                self.groups.get_mut(&group).and_then(|p| p.get_mut(s)).expect("group rt").faulted = false;
            }
        }
        self.dirty.insert(group);
        Ok(format!("resource {resource} cleared"))
    }

    fn resource_probe(&mut self, resource: &str, system: &str) -> Answer {
        self.resource_of(resource, system)?;
        if self.res[resource][system].busy.is_some() {
            return Err(format!("resource {resource} is busy on {system}"));
        }
        self.command(resource, system, AgentOp::Monitor);
        Ok(format!("resource {resource} probed on {system}"))
    }

    fn system_freeze(&mut self, system: &str, freeze: bool) -> Answer {
        let Some(s) = self.systems.get_mut(system) else { return Err(format!("no system {system}")) };
        s.frozen = freeze;
        self.dirty.extend(self.conf.groups.keys().cloned());
        Ok(format!("system {system} {}", if freeze { "frozen" } else { "unfrozen" }))
    }

    /// `hastop -sys S [-evacuate]`.
    fn system_stop(&mut self, system: &str, evacuate: bool) -> Answer {
        let Some(s) = self.systems.get_mut(system) else { return Err(format!("no system {system}")) };
        if s.state != SysState::Running {
            return Err(format!("system {system} is {}", s.state.name()));
        }
        s.state = SysState::Leaving;
        self.out.push(Output::Notify(Notification::SystemState { system: system.into(), state: "LEAVING".into() }));
        let groups: Vec<String> = self.conf.groups.keys().cloned().collect();
        for g in groups {
            if !self.group_state(&g, system).is_some_and(|st| st.active()) {
                continue;
            }
            let fail_over = evacuate && !self.conf.groups[&g].parallel && !self.frozen(&g);
            self.stop_then(&g, system, if fail_over { Then::FailOver } else { Then::Nothing });
        }
        self.check_leaving();
        Ok(format!("system {system} leaving{}", if evacuate { ", evacuating its groups" } else { "" }))
    }
}
