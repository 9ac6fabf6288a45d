//! Group dependencies in motion (`requires group C online|offline
//! local|global|remote soft|firm|hard`): which parent instances rely on a
//! child instance, which go when it goes, which follow it when it comes up
//! elsewhere, and the hard parent whose fault takes its child along.
//! Where a group may start at all is in `placement`.
//!
//! What VCS documents, and what this does:
//! - firm or hard, any location: the child is not taken offline or
//!   switched by an administrator while a parent relies on it; when it
//!   goes anyway (fault, node loss, evacuation) the parents that relied on
//!   it are taken offline first and come back where they may once it is up
//!   again (a remote parent on its own system if it still may).
//! - soft: the parent stays. Local: when the child comes up on another
//!   system, the parent migrates there. Remote: when the child comes up on
//!   the parent's system, the parent moves away.
//! - hard: the parent's fault fails the child over, and the parent follows.
//! - offline local: never both on one system, and neither starts before
//!   the other's state there is known; the administrator may bring neither
//!   onto the other, but a child failing over pushes an unfrozen parent
//!   off (`make_room`): production wins over test.
//!
//! A frozen parent is left as it is, and nothing waits for it. A restart
//! in place happens only where the group's dependencies let it run
//! (`deps_let_run`).

use super::state::*;
use super::*;
use crate::config::{DepCategory, DepKind, DepLocation, GroupDep};

/// Whether a child instance on `child_sys` serves the (online) dependency
/// `d` of a parent instance on `parent_sys`.
pub(super) fn serves(d: &GroupDep, parent_sys: &str, child_sys: &str) -> bool {
    match d.location {
        DepLocation::Local => parent_sys == child_sys,
        DepLocation::Global => true,
        DepLocation::Remote => parent_sys != child_sys,
    }
}

/// The dependency as main.cf says it: `online local firm`.
pub(super) fn words(d: &GroupDep) -> String {
    let category = match d.category {
        DepCategory::Online => "online",
        DepCategory::Offline => return "offline local".to_string(),
    };
    let location = match d.location {
        DepLocation::Local => "local",
        DepLocation::Global => "global",
        DepLocation::Remote => "remote",
    };
    let kind = match d.kind {
        DepKind::Soft => "soft",
        DepKind::Firm => "firm",
        DepKind::Hard => "hard",
    };
    format!("{category} {location} {kind}")
}

impl Engine {
    /// The child group runs on `system` (online or partially) and is not
    /// on its way down there.
    fn child_up(&self, child: &str, system: &str) -> bool {
        let up = self.group_state(child, system).is_some_and(|s| s.online || s.partial);
        up && self.groups[child][system].intent != Intent::Offline
    }

    /// Parent instances (group, system, dependency) that rely on `child`
    /// running on `system` through a firm or hard online dependency: they
    /// run, and no other instance of the child serves them.
    pub(super) fn parents_relying(&self, child: &str, system: &str) -> Vec<(String, String, GroupDep)> {
        let mut out = Vec::new();
        let Some(parents) = self.idx.dependents.get(child) else { return out };
        let child_systems: Vec<&String> = self.groups[child].keys().collect();
        for p in parents {
            for d in self.conf.groups[p].deps.iter().filter(|d| d.child == child && d.category == DepCategory::Online && d.kind != DepKind::Soft) {
                for y in self.groups[p].keys() {
                    if !serves(d, y, system) || !self.group_state(p, y).is_some_and(|s| s.active()) {
                        continue;
                    }
                    let served_elsewhere = child_systems.iter().any(|z| z.as_str() != system && serves(d, y, z) && self.child_up(child, z));
                    if !served_elsewhere {
                        out.push((p.clone(), y.clone(), d.clone()));
                    }
                }
            }
        }
        out
    }

    /// Why `child` may not be taken offline (or switched away) from
    /// `system` by an administrator: a parent relies on it there.
    pub(super) fn relied_on(&self, child: &str, system: &str) -> Result<(), String> {
        match self.parents_relying(child, system).first() {
            None => Ok(()),
            Some((p, y, d)) => Err(format!(
                "group {p} requires group {child} ({}) and is online on {y}: take it offline first",
                words(d)
            )),
        }
    }

    /// Take down the parents that rely on `child` on `system` (it is going
    /// or gone), except on `skip`; they follow the child wherever it comes
    /// up. Whether any of them still runs (the child waits for them).
    pub(super) fn take_down_relying(&mut self, child: &str, system: &str, skip: Option<&str>) -> bool {
        let mut waiting = false;
        for (p, y, _) in self.parents_relying(child, system) {
            if self.frozen(&p) || Some(y.as_str()) == skip {
                continue;
            }
            waiting = true;
            // A parent still coming online stops and goes back down; one
            // already going down (a switch) goes its way.
            if self.groups[&p][&y].intent != Intent::Offline {
                self.stop_then(&p, &y, Then::FollowChild);
            }
        }
        waiting
    }

    /// Whether the firm and hard online dependencies of `group` are served
    /// on `system`: a parent starts no more of its resources once the
    /// child it relies on is on its way down.
    pub(super) fn firm_deps_hold(&self, group: &str, system: &str) -> bool {
        self.conf.groups[group].deps.iter().filter(|d| d.category == DepCategory::Online && d.kind != DepKind::Soft).all(|d| {
            self.groups.get(&d.child).is_some_and(|per| per.keys().any(|z| serves(d, system, z) && self.child_up(&d.child, z)))
        })
    }

    /// `child` came up on `system`: soft parents running where their
    /// dependency is not met move (local: to the child; remote: away).
    pub(super) fn soft_parents_follow(&mut self, child: &str, system: &str) {
        let Some(parents) = self.idx.dependents.get(child).cloned() else { return };
        if !self.child_up(child, system) {
            return;
        }
        for p in parents {
            let g = &self.conf.groups[&p];
            if g.parallel || self.frozen(&p) {
                continue;
            }
            let soft: Vec<GroupDep> = g
                .deps
                .iter()
                .filter(|d| d.child == child && d.category == DepCategory::Online && d.kind == DepKind::Soft && d.location != DepLocation::Global)
                .cloned()
                .collect();
            for d in soft {
                for x in self.active_on(&p) {
                    if self.groups[&p][&x].intent != Intent::None {
                        continue;
                    }
                    let met = self.groups[child].keys().any(|z| serves(&d, &x, z) && self.child_up(child, z));
                    if met {
                        continue;
                    }
                    let then = match d.location {
                        DepLocation::Local if self.ineligible(&p, system).is_none() => Then::OnlineOn(system.to_string()),
                        DepLocation::Local => continue,
                        _ => Then::FailOver,
                    };
                    if let Then::OnlineOn(to) = &then {
                        self.out.push(Output::Notify(Notification::Failover { group: p.clone(), from: x.clone(), to: Some(to.clone()) }));
                    }
                    self.stop_then(&p, &x, then);
                }
            }
        }
    }

    /// A parent with a hard dependency faulted on `system`: its child there
    /// fails over and the parent follows it. Whether that happened.
    pub(super) fn hard_child_goes(&mut self, parent: &str, system: &str) -> bool {
        let hard: Vec<String> = self.conf.groups[parent].deps.iter().filter(|d| d.kind == DepKind::Hard).map(|d| d.child.clone()).collect();
        let mut moved = false;
        for c in hard {
            let movable = !self.conf.groups[&c].parallel && !self.frozen(&c) && self.conf.groups[&c].auto_fail_over;
            let here = self.group_state(&c, system).is_some_and(|s| s.active());
            let idle = self.groups[&c].get(system).is_some_and(|rt| rt.intent == Intent::None);
            if movable && here && idle {
                self.stop_then(&c, system, Then::FailOver);
                moved = true;
            }
        }
        if moved {
            self.awaiting.insert((parent.to_string(), system.to_string()));
            self.out.push(Output::Notify(Notification::Stuck {
                group: parent.into(),
                why: format!("faulted on {system}; the groups it requires (online local hard) fail over and it follows them"),
            }));
        }
        moved
    }

    /// Groups bound to `group` by an offline local dependency that are up
    /// or starting on `system`, or whose state there is not known yet (not
    /// probed, with `unknown_blocks`): its offline local children first,
    /// then its offline local parents, each with whether it is the parent.
    fn offline_local_partners(&self, group: &str, system: &str, unknown_blocks: bool) -> Vec<(String, bool)> {
        let children = self.conf.groups[group].deps.iter().filter(|d| d.category == DepCategory::Offline).map(|d| (&d.child, false));
        let parents = self
            .idx
            .dependents
            .get(group)
            .into_iter()
            .flatten()
            .filter(|p| self.conf.groups[*p].deps.iter().any(|d| d.child == group && d.category == DepCategory::Offline))
            .map(|p| (p, true));
        children
            .chain(parents)
            .filter(|(other, _)| {
                let active = self.group_state(other, system).is_some_and(|s| s.active());
                let unknown = self.groups[*other].get(system).is_some_and(|rt| !rt.probed);
                active || unknown_blocks && unknown
            })
            .map(|(other, is_parent)| (other.clone(), is_parent))
            .collect()
    }

    /// Why an offline local dependency keeps `group` off `system`, or None.
    /// With `parents_yield` (a failover, not an administrator's request)
    /// an unfrozen offline local parent running there does not: it is
    /// pushed off when the child comes (`make_room`), as VCS does.
    pub(super) fn offline_local_block(&self, group: &str, system: &str, parents_yield: bool) -> Option<String> {
        self.offline_local_partners(group, system, true)
            .into_iter()
            .find(|(other, is_parent)| {
                let probed = self.groups[other].get(system).is_some_and(|rt| rt.probed);
                !(parents_yield && *is_parent && probed && !self.frozen(other))
            })
            .map(|(other, _)| format!("groups {group} and {other} are bound offline local and {other} is up or not probed on {system}"))
    }

    /// Whether a resource of `group` may (re)start on `system` as far as
    /// group dependencies go: what it relies on runs, and no offline local
    /// partner does.
    pub(super) fn deps_let_run(&self, group: &str, system: &str) -> bool {
        self.firm_deps_hold(group, system) && self.offline_local_partners(group, system, false).is_empty()
    }

    /// `group` is coming online on `system` and an offline local partner
    /// runs there. An unfrozen parent is pushed off (taken offline and
    /// failed over) and `group` waits for it; otherwise (a child, or a
    /// frozen parent, found there by a probe or started behind HAD's
    /// back) `group` goes back offline. Whether `group` must wait.
    pub(super) fn make_room(&mut self, group: &str, system: &str) -> bool {
        let partners = self.offline_local_partners(group, system, false);
        if partners.is_empty() {
            return false;
        }
        if let Some((other, _)) = partners.iter().find(|(other, is_parent)| !is_parent || self.frozen(other)) {
            self.stop_then(group, system, Then::Nothing);
            self.out.push(Output::Notify(Notification::Stuck {
                group: group.into(),
                why: format!("group {other} runs on {system} and the two are bound offline local: {group} goes back offline there"),
            }));
            return true;
        }
        for (parent, _) in partners {
            if self.groups[&parent][system].intent != Intent::Offline {
                self.stop_then(&parent, system, Then::FailOver);
                self.out.push(Output::Notify(Notification::Stuck {
                    group: parent.clone(),
                    why: format!("group {group} comes online on {system} and requires it offline there (offline local): it goes elsewhere"),
                }));
            }
        }
        true
    }
}
