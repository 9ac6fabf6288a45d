//! Where a group may go and where it goes: pure functions of the
//! replicated state, so every node picks the same system without asking.

use super::state::SysState;
use super::Engine;
use crate::config::{DepCategory, DepLocation, FailOverPolicy, GroupConf};

impl Engine {
    /// Why `group` may not go online on `system` now, or None.
    pub fn ineligible(&self, group: &str, system: &str) -> Option<String> {
        self.ineligible_as(group, system, false)
    }

    /// As [`Self::ineligible`]; with `failover`, an offline local parent
    /// running there does not keep the group off (it is pushed off).
    fn ineligible_as(&self, group: &str, system: &str, failover: bool) -> Option<String> {
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
        self.deps_block(g, system, failover)
    }

    /// A group dependency that keeps `g` off `system`, said as such.
    pub(super) fn deps_block(&self, g: &GroupConf, system: &str, parents_yield: bool) -> Option<String> {
        // On the placement path (every candidate of every choice): only
        // what the location needs is looked at, and words only on refusal.
        for d in g.deps.iter().filter(|d| d.category == DepCategory::Online) {
            let ok = match d.location {
                DepLocation::Local => self.group_state(&d.child, system).is_some_and(|s| s.online),
                DepLocation::Global => !self.online_on(&d.child).is_empty(),
                DepLocation::Remote => self.online_on(&d.child).iter().any(|s| s != system),
            };
            if !ok {
                let how = match d.location {
                    DepLocation::Local => format!("online on {system}"),
                    DepLocation::Global => "online somewhere".to_string(),
                    DepLocation::Remote => format!("online on a system other than {system}"),
                };
                return Some(format!("group {} requires group {} {how}", g.name, d.child));
            }
        }
        // Offline local binds both ways, and the other's state must be
        // known: not where it runs or may run.
        self.offline_local_block(&g.name, system, parents_yield)
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
        self.choose_as(group, candidates, exclude, false)
    }

    /// As [`Self::choose`] for a failover away from `from`: offline local
    /// parents yield to the group (see `ineligible_as`).
    pub(super) fn choose_for_failover<'a>(&self, group: &str, candidates: impl Iterator<Item = &'a String>, from: &str) -> Option<String> {
        self.choose_as(group, candidates, Some(from), true)
    }

    fn choose_as<'a>(&self, group: &str, candidates: impl Iterator<Item = &'a String>, exclude: Option<&str>, failover: bool) -> Option<String> {
        let g = &self.conf.groups[group];
        let eligible: Vec<&String> =
            candidates.filter(|s| Some(s.as_str()) != exclude && self.ineligible_as(group, s, failover).is_none()).collect();
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
