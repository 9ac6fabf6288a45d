//! The replicated run-time state: of systems, of each resource on each
//! system, of each group on each system. Serializable: a joining HAD takes
//! it as a snapshot (REMOTE_BUILD).

use super::event::{AgentOp, Millis};
use serde::{Deserialize, Serialize};

/// A system's HAD state, as `hasys -state` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SysState {
    /// Not seen yet, or its HAD is down while the node lives.
    Unknown,
    /// HAD joined with no system running: it builds the configuration
    /// from its own main.cf.
    LocalBuild,
    /// HAD joined while another builds from its main.cf: it waits for that
    /// build, then takes a snapshot.
    CurrentPeerWait,
    /// HAD joined a running cluster: it builds from a running system's
    /// snapshot.
    RemoteBuild,
    /// Its build failed (main.cf invalid) or lost its source: HAD runs
    /// nothing until the administrator fixes it and restarts it.
    AdminWait,
    Running,
    /// `hastop`: its groups are going offline (or elsewhere) before HAD exits.
    Leaving,
    /// Its groups are down: HAD is exiting.
    Exiting,
    Exited,
    /// The node left the cluster.
    Faulted,
}

impl SysState {
    pub fn name(self) -> &'static str {
        match self {
            SysState::Unknown => "UNKNOWN",
            SysState::LocalBuild => "LOCAL_BUILD",
            SysState::CurrentPeerWait => "CURRENT_PEER_WAIT",
            SysState::RemoteBuild => "REMOTE_BUILD",
            SysState::AdminWait => "ADMIN_WAIT",
            SysState::Running => "RUNNING",
            SysState::Leaving => "LEAVING",
            SysState::Exiting => "EXITING",
            SysState::Exited => "EXITED",
            SysState::Faulted => "FAULTED",
        }
    }

    /// HAD there runs with the cluster's configuration: it acts on its
    /// agents' results and can hand the configuration to a joiner.
    pub fn has_config(self) -> bool {
        matches!(self, SysState::Running | SysState::Leaving)
    }

    /// HAD there joined and is building.
    pub fn building(self) -> bool {
        matches!(self, SysState::LocalBuild | SysState::CurrentPeerWait | SysState::RemoteBuild)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRt {
    pub state: SysState,
    /// `hasys -freeze`: no group goes online there.
    pub frozen: bool,
    /// HAD stopped while the node lives: what runs there is unknown.
    pub had_down: bool,
    /// REMOTE_BUILD: the system sending it the snapshot.
    pub build_from: Option<String>,
}

impl SystemRt {
    pub fn new() -> Self {
        SystemRt { state: SysState::Unknown, frozen: false, had_down: false, build_from: None }
    }
}

impl Default for SystemRt {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a resource is on one system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResState {
    /// Not probed yet.
    Unknown,
    Offline,
    Online,
    /// online was called; waiting for it and the monitors after it.
    GoingOnline,
    /// offline was called; waiting for it and the monitor after it.
    GoingOffline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRt {
    pub state: ResState,
    /// Faulted on this system: not brought online here until cleared.
    pub faulted: bool,
    /// The entry point out with the agent, if any.
    pub busy: Option<AgentOp>,
    /// When the next monitor is due (none while busy), with the timer's
    /// sequence number (its key in the engine's timer queue).
    pub next_monitor: Option<(Millis, u64)>,
    /// When the entry point out times out (the agent says so itself; this
    /// is the engine's backstop).
    pub deadline: Option<Millis>,
    /// Monitors since online returned that still said offline.
    pub wait_monitors: u32,
    /// Offline monitors tolerated while online.
    pub tolerated: u32,
    /// Restarts in place since the counters last reset.
    pub restarts: u32,
    /// Onlines tried again after one that did not come up.
    pub online_retries: u32,
    /// When it was last seen coming online (for ConfInterval).
    pub online_since: Option<Millis>,
    /// What to do when the clean that is out succeeds.
    pub after_clean: AfterClean,
    /// Monitors in a row that timed out.
    pub monitor_timeouts: u32,
    /// ManageFaults NONE: HAD saw a failure and did nothing about it (no
    /// clean, no restart); the administrator decides (`hagrp -clear`).
    pub admin_wait: bool,
}

/// What follows a successful clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterClean {
    /// The resource is faulted here.
    Fault,
    /// Bring it online again (RestartLimit or OnlineRetryLimit).
    Online,
    /// It is offline (an offline that needed clean).
    Offline,
}

impl ResourceRt {
    pub fn new() -> Self {
        ResourceRt {
            state: ResState::Unknown,
            faulted: false,
            busy: None,
            next_monitor: None,
            deadline: None,
            wait_monitors: 0,
            tolerated: 0,
            restarts: 0,
            online_retries: 0,
            online_since: None,
            after_clean: AfterClean::Fault,
            admin_wait: false,
            monitor_timeouts: 0,
        }
    }

    /// As `hares -state` shows it.
    pub fn state_name(&self) -> String {
        let base = match self.state {
            ResState::Unknown => "OFFLINE|STATE UNKNOWN",
            ResState::Offline => "OFFLINE",
            ResState::Online => "ONLINE",
            ResState::GoingOnline => "WAITING TO GO ONLINE",
            ResState::GoingOffline => "WAITING TO GO OFFLINE",
        };
        let mut s = base.to_string();
        if self.faulted {
            s.push_str("|FAULTED");
        }
        if self.admin_wait {
            s.push_str("|ADMIN_WAIT");
        }
        s
    }

    pub fn is_online(&self) -> bool {
        self.state == ResState::Online
    }
}

impl Default for ResourceRt {
    fn default() -> Self {
        Self::new()
    }
}

/// What the engine is doing with a group on a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    None,
    /// Bringing it online here.
    Online,
    /// Taking it offline here.
    Offline,
}

/// Once a group is offline on a system, where it goes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Then {
    Nothing,
    /// A switch: online on this system.
    OnlineOn(String),
    /// A fault or an evacuation: wherever the policy says.
    FailOver,
    /// Taken down because a group it requires (firm or hard, local) goes:
    /// it follows that group wherever it comes up.
    FollowChild,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSysRt {
    pub intent: Intent,
    pub then: Then,
    /// The group faulted here: it does not come back here until cleared.
    pub faulted: bool,
    /// Unknown here (that system's HAD is down): the group goes online
    /// nowhere until it is known again or `hagrp -autoenable`.
    pub auto_disabled: bool,
    /// Every enabled resource of the group was probed here.
    pub probed: bool,
    /// The group was brought online here and not taken down since. Only
    /// consulted for a group with no On-Off resource, whose resources
    /// (On-Only, persistent) stay up whatever HAD does.
    pub onlined: bool,
    /// Last state told, to notify only changes.
    pub told: Option<GroupState>,
}

impl GroupSysRt {
    pub fn new() -> Self {
        GroupSysRt { intent: Intent::None, then: Then::Nothing, faulted: false, auto_disabled: false, probed: false, onlined: false, told: None }
    }
}

impl Default for GroupSysRt {
    fn default() -> Self {
        Self::new()
    }
}

/// A group's state on one system, computed from its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub online: bool,
    pub partial: bool,
    pub faulted: bool,
    pub starting: bool,
    pub stopping: bool,
    pub auto_disabled: bool,
}

impl GroupState {
    /// As `hagrp -state` shows it: ONLINE, OFFLINE, PARTIAL, with
    /// |FAULTED, |STARTING, |STOPPING, |AUTODISABLED.
    pub fn name(&self) -> String {
        let mut s = String::from(if self.online {
            "ONLINE"
        } else if self.partial {
            "PARTIAL"
        } else {
            "OFFLINE"
        });
        for (on, flag) in [(self.faulted, "FAULTED"), (self.starting, "STARTING"), (self.stopping, "STOPPING"), (self.auto_disabled, "AUTODISABLED")] {
            if on {
                s.push('|');
                s.push_str(flag);
            }
        }
        s
    }

    /// Online, partially online or on its way: it counts as running there.
    pub fn active(&self) -> bool {
        self.online || self.partial || self.starting
    }
}
