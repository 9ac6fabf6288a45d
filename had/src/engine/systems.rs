//! Systems joining and leaving. HAD on a node joins port h and builds its
//! configuration: from its own main.cf when no system runs (LOCAL_BUILD;
//! the cluster starts afresh and groups autostart again), from a running
//! system's snapshot otherwise (REMOTE_BUILD), or after another's local
//! build (CURRENT_PEER_WAIT); a build that fails or loses its source
//! leaves it in ADMIN_WAIT. Built, it is RUNNING and its resources are
//! probed. `hastop` takes it through LEAVING (admin.rs) and EXITING to
//! EXITED. A node lost is FAULTED (its groups fail over); a HAD lost with
//! its node alive is UNKNOWN (its groups are auto-disabled elsewhere).
//! Reading main.cf and carrying snapshots are the host's: the engine says
//! who sends to whom and hears when a build is done.

use super::state::*;
use super::*;

impl Engine {
    fn set_system_state(&mut self, system: &str, state: SysState) {
        let Some(sys) = self.systems.get_mut(system) else { return };
        sys.state = state;
        if state != SysState::RemoteBuild {
            sys.build_from = None;
        }
        self.out.push(Output::Notify(Notification::SystemState { system: system.to_string(), state: state.name().into() }));
    }

    /// The system a joiner takes its snapshot from: the first (by name)
    /// that holds the running configuration.
    fn snapshot_source(&self, except: &str) -> Option<String> {
        self.systems.iter().find(|(n, s)| n.as_str() != except && s.state.has_config()).map(|(n, _)| n.clone())
    }

    /// `system` builds from `from`'s snapshot; `announce`: the host is told
    /// to send it (not for [`Event::SystemUp`], which needs no transfer).
    fn remote_build(&mut self, system: &str, from: String, announce: bool) {
        if announce {
            self.out.push(Output::SendSnapshot { from: from.clone(), to: system.to_string() });
        }
        self.set_system_state(system, SysState::RemoteBuild);
        self.systems.get_mut(system).expect("system").build_from = Some(from);
    }

    pub(super) fn system_join(&mut self, system: &str, announce: bool) {
        let Some(sys) = self.systems.get(system) else { return };
        if sys.state.building() || sys.state.has_config() || sys.state == SysState::Exiting {
            return; // joined already: a repeated join changes nothing
        }
        if let Some(from) = self.snapshot_source(system) {
            self.remote_build(system, from, announce);
        } else if self.systems.values().any(|s| s.state == SysState::LocalBuild) {
            self.set_system_state(system, SysState::CurrentPeerWait);
        } else {
            self.local_build(system);
        }
    }

    /// No system holds the configuration: `system` builds from its main.cf,
    /// and the cluster starts afresh (groups autostart again).
    fn local_build(&mut self, system: &str) {
        self.autostarted.clear();
        self.set_system_state(system, SysState::LocalBuild);
    }

    pub(super) fn system_built(&mut self, system: &str) {
        let Some(was) = self.systems.get(system).map(|s| s.state) else { return };
        if !matches!(was, SysState::LocalBuild | SysState::RemoteBuild) {
            return; // a late or repeated report
        }
        self.system_up(system);
        if was == SysState::LocalBuild {
            // Those waiting for this build take it now.
            let waiting: Vec<String> = self.systems.iter().filter(|(_, s)| s.state == SysState::CurrentPeerWait).map(|(n, _)| n.clone()).collect();
            for w in waiting {
                self.remote_build(&w, system.to_string(), true);
            }
        }
    }

    pub(super) fn build_failed(&mut self, system: &str, why: &str) {
        let Some(was) = self.systems.get(system).map(|s| s.state) else { return };
        if !matches!(was, SysState::LocalBuild | SysState::RemoteBuild) {
            return;
        }
        self.admin_wait(system, why.to_string());
        self.next_local_builder();
    }

    fn admin_wait(&mut self, system: &str, why: String) {
        self.set_system_state(system, SysState::AdminWait);
        self.out.push(Output::Notify(Notification::SystemStuck {
            system: system.to_string(),
            why: format!("{why}: HAD there runs nothing until the configuration is fixed and HAD restarted"),
        }));
    }

    /// Nobody holds or builds the configuration: the first system waiting
    /// for a peer's build builds from its own main.cf instead.
    pub(super) fn next_local_builder(&mut self) {
        if self.systems.values().any(|s| s.state.has_config() || s.state == SysState::LocalBuild) {
            return;
        }
        if let Some(w) = self.systems.iter().find(|(_, s)| s.state == SysState::CurrentPeerWait).map(|(n, _)| n.clone()) {
            self.local_build(&w);
        }
    }

    /// `gone` no longer holds the configuration: systems building from its
    /// snapshot take another's, or, with none left, wait for the
    /// administrator (their own main.cf may be stale).
    pub(super) fn source_lost(&mut self, gone: &str) {
        let orphans: Vec<String> =
            self.systems.iter().filter(|(_, s)| s.state == SysState::RemoteBuild && s.build_from.as_deref() == Some(gone)).map(|(n, _)| n.clone()).collect();
        for o in orphans {
            match self.snapshot_source(&o) {
                Some(from) => self.remote_build(&o, from, true),
                None => self.admin_wait(&o, format!("lost {gone}, the system it was building from, and no other system runs")),
            }
        }
    }

    fn system_up(&mut self, system: &str) {
        let Some(sys) = self.systems.get_mut(system) else { return };
        sys.had_down = false;
        self.set_system_state(system, SysState::Running);
        // Probe every enabled resource of every group that may run here.
        let groups: Vec<String> = self.groups.iter().filter(|(_, p)| p.contains_key(system)).map(|(g, _)| g.clone()).collect();
        for g in groups {
            if let Some(rt) = self.groups.get_mut(&g).and_then(|p| p.get_mut(system)) {
                rt.probed = false;
                rt.intent = Intent::None;
                rt.then = Then::Nothing;
            }
            for r in self.idx.group_resources.get(&g).cloned().unwrap_or_default() {
                let enabled = self.conf.resources[&r].enabled;
                let rt = self.res.get_mut(&r).and_then(|p| p.get_mut(system)).expect("resource rt");
                *rt = ResourceRt::new();
                if enabled {
                    self.command(&r, system, AgentOp::Monitor);
                }
            }
            self.update_probed(&g, system);
            self.dirty.insert(g);
        }
    }

    /// The node left (`faulted`) or only its HAD did.
    pub(super) fn system_gone(&mut self, system: &str, faulted: bool) {
        let Some(sys) = self.systems.get_mut(system) else { return };
        let before = sys.state;
        match before {
            SysState::Exited if !faulted => return, // it stopped cleanly (hastop): nothing of it runs
            SysState::Exiting if !faulted => {
                self.set_system_state(system, SysState::Exited);
                return;
            }
            s if s.building() || s == SysState::AdminWait => {
                // It never ran anything under HAD.
                self.set_system_state(system, if faulted { SysState::Faulted } else { SysState::Unknown });
                self.next_local_builder();
                return;
            }
            _ => {}
        }
        let sys = self.systems.get_mut(system).expect("system");
        let was_running = sys.state.has_config();
        sys.state = if faulted { SysState::Faulted } else { SysState::Unknown };
        sys.had_down = !faulted;
        let state = if faulted { "FAULTED" } else { "UNKNOWN (HAD down, node up)" };
        self.out.push(Output::Notify(Notification::SystemState { system: system.to_string(), state: state.into() }));
        let groups: Vec<String> = self.groups.iter().filter(|(_, p)| p.contains_key(system)).map(|(g, _)| g.clone()).collect();
        // What ran there when the node went.
        let orphaned: BTreeSet<String> = if faulted && was_running {
            groups.iter().filter(|g| self.group_state(g, system).is_some_and(|s| s.online || s.partial)).cloned().collect()
        } else {
            BTreeSet::new()
        };
        for g in groups {
            let was_active = self.group_state(&g, system).is_some_and(|s| s.active());
            for r in self.idx.group_resources.get(&g).cloned().unwrap_or_default() {
                let rt = self.unwatch(&r, system).expect("resource rt");
                if faulted {
                    // The node is gone (fenced): nothing of it runs.
                    rt.state = ResState::Offline;
                }
            }
            let parallel = self.conf.groups[&g].parallel;
            let rt = self.groups.get_mut(&g).and_then(|p| p.get_mut(system)).expect("group rt");
            rt.intent = Intent::None;
            rt.then = Then::Nothing;
            if faulted {
                rt.onlined = false;
            } else {
                // Unknown there: no failover group starts anywhere else.
                rt.auto_disabled = true;
            }
            self.dirty.insert(g.clone());
            // Parents elsewhere that relied on it (firm or hard) go down, as
            // when a child faults; it fails over once they are down
            // (advance_offline).
            let parents_go = orphaned.contains(&g) && self.take_down_relying(&g, system, Some(system));
            if faulted && was_running && was_active && !parallel {
                if parents_go {
                    self.stop_then(&g, system, Then::FailOver);
                } else {
                    self.fail_over(&g, system);
                }
            }
        }
        if before.has_config() {
            self.source_lost(system);
        }
    }

    /// A leaving system whose groups are all down: its HAD exits
    /// (EXITING; EXITED once it has left port h, [`Event::HadDown`]).
    pub(super) fn check_leaving(&mut self) {
        let leaving: Vec<String> = self.systems.iter().filter(|(_, s)| s.state == SysState::Leaving).map(|(n, _)| n.clone()).collect();
        for s in leaving {
            let busy = self.groups.values().any(|per| per.get(&s).is_some_and(|r| r.intent != Intent::None));
            let up = self.conf.groups.keys().any(|g| self.group_state(g, &s).is_some_and(|st| st.online || st.partial));
            if busy || up {
                continue;
            }
            self.set_system_state(&s, SysState::Exiting);
            self.source_lost(&s);
            // Its resources are no longer watched.
            let resources: Vec<String> = self.res.keys().cloned().collect();
            for r in resources {
                self.unwatch(&r, &s);
            }
        }
    }

    /// HAD no longer watches `resource` on `system`: no monitor due, no
    /// entry point awaited. Its run-time state, for the caller to settle.
    fn unwatch(&mut self, resource: &str, system: &str) -> Option<&mut ResourceRt> {
        let rt = self.res.get_mut(resource)?.get_mut(system)?;
        if let Some((t, seq)) = rt.next_monitor.take() {
            self.timers.remove(&(t, seq, resource.to_string(), system.to_string()));
        }
        rt.busy = None;
        Some(rt)
    }
}
