//! Where a group may go and where it goes: pure functions of the
//! replicated state, so every node picks the same system without asking.

use super::state::SysState;
use super::Engine;
use crate::config::{DepCategory, DepLocation, FailOverPolicy, GroupConf};

impl Engine {
    /// Why `group` may not go online on `system` now, or None.
    pub fn ineligible(&self, group: &str, system: &str) -> Option<String> {
        let g = &self.conf.groups[group];
        if g.priority(system).is_none() {
            return Some(format!("system {system} is not in the SystemList of group {group}"));
        }
        let sys = &self.systems[system];
        if sys.state != SysState::Running {
            return Some(format!("system {system} is {}", sys.state.name()));
        }
        if sys.frozen {
            return Some(format!("system {system} is frozen"));
        }
        let gs = &self.groups[group][system];
        if gs.faulted {
            return Some(format!("group {group} is faulted on system {system}: clear it first (hagrp -clear)"));
        }
        if !gs.probed {
            return Some(format!("group {group} is not probed on system {system} yet"));
        }
        if !g.parallel {
            if let Some((s, _)) = self.groups[group].iter().find(|(_, r)| r.auto_disabled) {
                return Some(format!("group {group} is auto-disabled on system {s} (its state there is unknown): hagrp -autoenable once it is known not to run there"));
            }
        }
        self.deps_block(g, system)
    }

    /// A group dependency that keeps `g` off `system`, said as such.
    fn deps_block(&self, g: &GroupConf, system: &str) -> Option<String> {
        for d in &g.deps {
            let child_here = self.group_state(&d.child, system).is_some_and(|s| s.online);
            let child_active_here = self.group_state(&d.child, system).is_some_and(|s| s.active());
            let child_anywhere = self.online_on(&d.child);
            let ok = match (d.category, d.location) {
                (DepCategory::Online, DepLocation::Local) => child_here,
                (DepCategory::Online, DepLocation::Global) => !child_anywhere.is_empty(),
                (DepCategory::Online, DepLocation::Remote) => child_anywhere.iter().any(|s| s != system),
                (DepCategory::Offline, _) => !child_active_here,
            };
            if !ok {
                let how = match (d.category, d.location) {
                    (DepCategory::Online, DepLocation::Local) => format!("online on {system}"),
                    (DepCategory::Online, DepLocation::Global) => "online somewhere".to_string(),
                    (DepCategory::Online, DepLocation::Remote) => format!("online on a system other than {system}"),
                    (DepCategory::Offline, _) => format!("offline on {system}"),
                };
                return Some(format!("group {} requires group {} {how}", g.name, d.child));
            }
        }
        // Offline local binds both ways: not where such a parent runs.
        for p in self.idx.dependents.get(&g.name).into_iter().flatten() {
            let offline_dep = self.conf.groups[p].deps.iter().any(|d| d.child == g.name && d.category == DepCategory::Offline);
            if offline_dep && self.group_state(p, system).is_some_and(|s| s.active()) {
                return Some(format!("group {p} requires group {} offline on {system} and runs there", g.name));
            }
        }
        None
    }

    /// Systems where `group` is fully online.
    pub fn online_on(&self, group: &str) -> Vec<String> {
        let Some(per) = self.groups.get(group) else { return Vec::new() };
        per.keys().filter(|s| self.group_state(group, s).is_some_and(|st| st.online)).cloned().collect()
    }

    /// Systems where `group` is online, partial or starting.
    pub fn active_on(&self, group: &str) -> Vec<String> {
        let Some(per) = self.groups.get(group) else { return Vec::new() };
        per.keys().filter(|s| self.group_state(group, s).is_some_and(|st| st.active())).cloned().collect()
    }

    /// The system the policy picks for `group` among `candidates` that are
    /// eligible and not `exclude`.
    pub fn choose<'a>(&self, group: &str, candidates: impl Iterator<Item = &'a String>, exclude: Option<&str>) -> Option<String> {
        let g = &self.conf.groups[group];
        let eligible: Vec<&String> =
            candidates.filter(|s| Some(s.as_str()) != exclude && self.ineligible(group, s).is_none()).collect();
        let prio = |s: &String| g.priority(s).unwrap_or(u32::MAX);
        let pick = match g.fail_over_policy {
            FailOverPolicy::Priority => eligible.iter().min_by_key(|s| (prio(s), s.to_string())),
            FailOverPolicy::RoundRobin => eligible.iter().min_by_key(|s| (self.groups_active_on(s), prio(s), s.to_string())),
            FailOverPolicy::Load => eligible.iter().min_by_key(|s| (-self.available_capacity(s), prio(s), s.to_string())),
        };
        pick.map(|s| s.to_string())
    }

    /// How many groups are online, partial or starting on `system`.
    pub fn groups_active_on(&self, system: &str) -> usize {
        self.conf.groups.keys().filter(|g| self.group_state(g, system).is_some_and(|s| s.active())).count()
    }

    /// Capacity minus the Load of the groups active on `system`.
    pub fn available_capacity(&self, system: &str) -> i64 {
        let cap = self.conf.systems.get(system).map_or(0, |s| s.capacity);
        let used: i64 = self
            .conf
            .groups
            .values()
            .filter(|g| self.group_state(&g.name, system).is_some_and(|s| s.active()))
            .map(|g| g.load)
            .sum();
        cap - used
    }
}
