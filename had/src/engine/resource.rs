//! Agent results: probes, the monitors that confirm an online or an
//! offline, steady-state monitors, faults with ToleranceLimit,
//! RestartLimit, OnlineWaitLimit, OnlineRetryLimit and ConfInterval, and
//! clean.

use super::state::*;
use super::*;

impl Engine {
    pub(super) fn agent_result(&mut self, system: &str, resource: &str, result: &AgentResult) {
        let Some(rt) = self.res.get(resource).and_then(|p| p.get(system)) else { return };
        // A result from a system that is no longer running, or for an entry
        // point we did not hand out (flushed, restarted HAD): dropped.
        let running = self.systems.get(system).is_some_and(|s| s.state.has_config());
        let expected = match result {
            AgentResult::Monitor(_) => rt.busy == Some(AgentOp::Monitor),
            AgentResult::Done(op) | AgentResult::TimedOut(op) => rt.busy == Some(*op),
            AgentResult::Cleaned { .. } => matches!(rt.busy, Some(AgentOp::Clean(_))),
        };
        if !running || !expected {
            return;
        }
        let before = rt.state_name();
        let group = self.conf.resources[resource].group.clone();
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.busy = None;
        match result {
            AgentResult::Monitor(seen) => {
                rt.monitor_timeouts = 0;
                self.monitored(resource, system, *seen)
            }
            AgentResult::Done(AgentOp::Online) | AgentResult::Done(AgentOp::Offline) => {
                // The monitor that follows says whether it worked.
                self.command(resource, system, AgentOp::Monitor);
            }
            AgentResult::Done(_) => {}
            AgentResult::TimedOut(AgentOp::Online) => self.online_failed(resource, system, CleanReason::OnlineHung),
            AgentResult::TimedOut(AgentOp::Offline) => self.clean(resource, system, CleanReason::OfflineHung, AfterClean::Offline),
            AgentResult::TimedOut(AgentOp::Monitor) => {
                // FaultOnMonitorTimeouts in a row: the resource is hung.
                let limit = self.conf.resources[resource].timing.fault_on_monitor_timeouts;
                let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
                rt.monitor_timeouts += 1;
                if limit > 0 && rt.monitor_timeouts >= limit && rt.state == ResState::Online {
                    rt.monitor_timeouts = 0;
                    self.clean(resource, system, CleanReason::MonitorHung, AfterClean::Fault);
                } else {
                    let secs = self.monitor_secs(resource, system);
                    self.schedule_monitor(resource, system, secs);
                }
            }
            AgentResult::TimedOut(AgentOp::Clean(_)) | AgentResult::Cleaned { ok: false } => self.clean_failed(resource, system),
            AgentResult::Cleaned { ok: true } => {
                let after = self.res[resource][system].after_clean;
                let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
                rt.state = ResState::Offline;
                rt.online_since = None;
                match after {
                    AfterClean::Fault => self.fault(resource, system),
                    AfterClean::Online => {
                        // Restart in place, or retry an online: only on top
                        // of what it requires, and where the group's
                        // dependencies let it run; else it is a fault.
                        let conf = &self.conf.resources[resource];
                        let children_up = conf.children.iter().all(|c| !self.conf.resources[c].enabled || self.res[c][system].is_online());
                        if children_up && self.deps_let_run(&conf.group, system) {
                            let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
                            rt.state = ResState::GoingOnline;
                            rt.wait_monitors = 0;
                            self.command(resource, system, AgentOp::Online);
                        } else {
                            self.fault(resource, system);
                        }
                    }
                    AfterClean::Offline => {
                        let secs = self.conf.resources[resource].timing.offline_monitor_interval;
                        self.schedule_monitor(resource, system, secs);
                    }
                }
            }
        }
        // Most results are monitors that change nothing: the group is
        // looked at again only if the resource changed or the group moves.
        if self.res[resource][system].state_name() != before {
            self.notify_resource(resource, system);
            self.touched.insert((group, system.to_string()));
        } else if self.moving(&group) {
            self.touched.insert((group, system.to_string()));
        }
    }

    /// Seconds to the next monitor in the resource's current state.
    fn monitor_secs(&self, resource: &str, system: &str) -> u32 {
        let t = self.conf.resources[resource].timing;
        if self.res[resource][system].is_online() {
            t.monitor_interval
        } else {
            t.offline_monitor_interval
        }
    }

    fn monitored(&mut self, resource: &str, system: &str, seen: Observed) {
        let conf = &self.conf.resources[resource];
        let (timing, group) = (conf.timing, conf.group.clone());
        let now = self.now;
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        match (rt.state, seen) {
            // A probe.
            (ResState::Unknown, Observed::Online) => {
                rt.state = ResState::Online;
                rt.online_since = Some(now);
                self.schedule_monitor(resource, system, timing.monitor_interval);
                self.update_probed(&group, system);
                self.check_concurrency(&group, system);
            }
            (ResState::Unknown, Observed::Offline) => {
                rt.state = ResState::Offline;
                self.schedule_monitor(resource, system, timing.offline_monitor_interval);
                self.update_probed(&group, system);
            }
            (ResState::Unknown, Observed::Unknown) => self.schedule_monitor(resource, system, timing.offline_monitor_interval),
            // Confirming an online.
            (ResState::GoingOnline, Observed::Online) => {
                rt.state = ResState::Online;
                rt.wait_monitors = 0;
                rt.online_since = Some(now);
                self.schedule_monitor(resource, system, timing.monitor_interval);
            }
            (ResState::GoingOnline, _) => {
                rt.wait_monitors += 1;
                if rt.wait_monitors <= timing.online_wait_limit {
                    self.schedule_monitor(resource, system, timing.monitor_interval);
                } else {
                    self.online_failed(resource, system, CleanReason::OnlineIneffective);
                }
            }
            // Confirming an offline.
            (ResState::GoingOffline, Observed::Offline) => {
                rt.state = ResState::Offline;
                rt.online_since = None;
                self.schedule_monitor(resource, system, timing.offline_monitor_interval);
            }
            (ResState::GoingOffline, _) => self.clean(resource, system, CleanReason::OfflineIneffective, AfterClean::Offline),
            // Steady state.
            (ResState::Online, Observed::Online) => {
                // Back by itself (or by the administrator's hand).
                rt.admin_wait = false;
                // Online for ConfInterval: earlier restarts and tolerated
                // offlines are forgiven (not before: a resource that keeps
                // dropping out must not be tolerated for ever).
                if rt.online_since.is_some_and(|t| now >= t + u64::from(timing.conf_interval) * 1000) {
                    rt.restarts = 0;
                    rt.online_retries = 0;
                    rt.tolerated = 0;
                }
                self.schedule_monitor(resource, system, timing.monitor_interval);
            }
            (ResState::Online, Observed::Offline) => self.unexpected_offline(resource, system),
            (ResState::Online, Observed::Unknown) | (ResState::Offline, Observed::Unknown) => {
                let secs = self.monitor_secs(resource, system);
                self.schedule_monitor(resource, system, secs);
            }
            (ResState::Offline, Observed::Offline) => self.schedule_monitor(resource, system, timing.offline_monitor_interval),
            (ResState::Offline, Observed::Online) => {
                // Started behind our back.
                rt.state = ResState::Online;
                rt.online_since = Some(now);
                self.schedule_monitor(resource, system, timing.monitor_interval);
                self.check_concurrency(&group, system);
            }
        }
    }

    /// An online resource went offline by itself.
    fn unexpected_offline(&mut self, resource: &str, system: &str) {
        let conf = &self.conf.resources[resource];
        let (timing, group, ops) = (conf.timing, conf.group.clone(), conf.operations);
        let frozen = self.frozen(&group);
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        if rt.admin_wait {
            // Already waiting for the administrator.
            self.schedule_monitor(resource, system, timing.monitor_interval);
            return;
        }
        if rt.tolerated < timing.tolerance_limit {
            rt.tolerated += 1;
            // Still online as far as the group goes; the ConfInterval clock
            // restarts at the next good monitor.
            rt.online_since = None;
            self.schedule_monitor(resource, system, timing.monitor_interval);
            return;
        }
        rt.tolerated = 0;
        if ops == Operations::None {
            // Nothing to clean or restart: it is faulted.
            rt.state = ResState::Offline;
            self.fault(resource, system);
            return;
        }
        if !frozen && rt.restarts < timing.restart_limit {
            rt.restarts += 1;
            self.clean(resource, system, CleanReason::UnexpectedOffline, AfterClean::Online);
        } else {
            self.clean(resource, system, CleanReason::UnexpectedOffline, AfterClean::Fault);
        }
    }

    /// An online that hung or did not bring the resource up.
    fn online_failed(&mut self, resource: &str, system: &str, why: CleanReason) {
        let limit = self.conf.resources[resource].timing.online_retry_limit;
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.wait_monitors = 0;
        if rt.online_retries < limit {
            rt.online_retries += 1;
            self.clean(resource, system, why, AfterClean::Online);
        } else {
            self.clean(resource, system, why, AfterClean::Fault);
        }
    }

    fn clean(&mut self, resource: &str, system: &str, why: CleanReason, after: AfterClean) {
        let conf = &self.conf.resources[resource];
        let (group, timing) = (conf.group.clone(), conf.timing);
        if !self.conf.groups[&group].manage_faults {
            // ManageFaults NONE: no clean, no restart, no retry; the
            // resource waits for the administrator where it is.
            let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
            rt.admin_wait = true;
            rt.state = match why {
                CleanReason::OnlineHung | CleanReason::OnlineIneffective => ResState::Offline,
                _ => ResState::Online,
            };
            self.out.push(Output::Notify(Notification::Stuck {
                group,
                why: format!("{resource} on {system} needs the administrator (ManageFaults NONE): ADMIN_WAIT until hagrp -clear"),
            }));
            self.schedule_monitor(resource, system, timing.monitor_interval);
            return;
        }
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.after_clean = after;
        self.command(resource, system, AgentOp::Clean(why));
    }

    /// Clean failed: the resource may still be up. It is marked faulted
    /// and its group stays where it is (failing it over could run it twice)
    /// until an administrator clears it.
    fn clean_failed(&mut self, resource: &str, system: &str) {
        let group = self.conf.resources[resource].group.clone();
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.faulted = true;
        rt.state = ResState::Unknown;
        let g = self.groups.get_mut(&group).and_then(|p| p.get_mut(system)).expect("group rt");
        g.faulted = true;
        g.intent = Intent::None;
        g.then = Then::Nothing;
        self.out.push(Output::Notify(Notification::ResourceFaulted { resource: resource.into(), system: system.into(), critical: true }));
        self.out.push(Output::Notify(Notification::Stuck {
            group: group.clone(),
            why: format!("clean of {resource} failed on {system}: it may still be online there; the group stays until hares -clear"),
        }));
        let secs = self.conf.resources[resource].timing.monitor_interval;
        self.schedule_monitor(resource, system, secs);
    }

    /// `resource` is faulted on `system` (cleaned, or persistent).
    fn fault(&mut self, resource: &str, system: &str) {
        let conf = &self.conf.resources[resource];
        let (group, critical, secs) = (conf.group.clone(), conf.critical, conf.timing.offline_monitor_interval);
        let rt = self.res.get_mut(resource).and_then(|p| p.get_mut(system)).expect("resource rt");
        rt.faulted = true;
        rt.online_since = None;
        self.schedule_monitor(resource, system, secs);
        self.out.push(Output::Notify(Notification::ResourceFaulted { resource: resource.into(), system: system.into(), critical }));
        let g = &self.conf.groups[&group];
        // FaultPropagation: a fault reaches what requires the resource; a
        // critical resource among those that were up faults the group.
        let critical = critical || (g.fault_propagation && self.critical_above(resource, system));
        if !g.manage_faults || self.frozen(&group) {
            // Reported only: ManageFaults NONE, or a frozen group.
            return;
        }
        if !critical {
            // The group stays; what requires the resource cannot run on
            // without it and is taken offline, top-down (FaultPropagation).
            if g.fault_propagation {
                let mut stack: Vec<String> = self.idx.parents.get(resource).cloned().unwrap_or_default();
                while let Some(p) = stack.pop() {
                    if self.stopping.insert((p.clone(), system.to_string())) {
                        stack.extend(self.idx.parents.get(&p).cloned().unwrap_or_default());
                    }
                }
                self.dirty.insert(group);
            }
            return;
        }
        let fail_over = g.auto_fail_over && !g.parallel;
        let rt = self.groups.get_mut(&group).and_then(|p| p.get_mut(system)).expect("group rt");
        rt.faulted = true;
        // Take what is left of the group down here, then move it.
        rt.intent = Intent::Offline;
        rt.then = if fail_over { Then::FailOver } else { Then::Nothing };
    }

    /// Whether an enabled critical resource that is up (or coming up) on
    /// `system` requires `resource`, directly or not.
    fn critical_above(&self, resource: &str, system: &str) -> bool {
        let mut stack: Vec<&String> = self.idx.parents.get(resource).into_iter().flatten().collect();
        let mut seen = BTreeSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            let conf = &self.conf.resources[p];
            let rt = &self.res[p][system];
            let up = rt.is_online() || rt.state == ResState::GoingOnline;
            if conf.enabled && conf.critical && up {
                return true;
            }
            stack.extend(self.idx.parents.get(p).into_iter().flatten());
        }
        false
    }

    /// Whether every enabled resource of `group` on `system` was probed.
    pub(super) fn update_probed(&mut self, group: &str, system: &str) {
        let probed = self.idx.group_resources.get(group).into_iter().flatten().all(|r| {
            !self.conf.resources[r].enabled || self.res[r][system].state != ResState::Unknown
        });
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        if probed && !rt.probed {
            rt.probed = true;
            // Known again.
            rt.auto_disabled = false;
            self.dirty.insert(group.to_string());
        }
    }

    /// A failover group found running on `system` while it runs elsewhere:
    /// taken offline here (a concurrency violation).
    fn check_concurrency(&mut self, group: &str, system: &str) {
        if self.conf.groups[group].parallel {
            return;
        }
        let elsewhere: Vec<String> = self.active_on(group).into_iter().filter(|s| s != system).collect();
        if elsewhere.is_empty() {
            return;
        }
        self.out.push(Output::Notify(Notification::Stuck {
            group: group.to_string(),
            why: format!("concurrency violation: group {group} is up on {system} and on {}: taking it offline on {system}", elsewhere.join(",")),
        }));
        let rt = self.groups.get_mut(group).and_then(|p| p.get_mut(system)).expect("group rt");
        rt.intent = Intent::Offline;
        rt.then = Then::Nothing;
    }

    pub(super) fn notify_resource(&mut self, resource: &str, system: &str) {
        let name = self.res[resource][system].state_name();
        self.out.push(Output::Notify(Notification::ResourceState { resource: resource.into(), system: system.into(), state: name }));
    }
}
