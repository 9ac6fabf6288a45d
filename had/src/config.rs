//! The configuration the engine runs: validated, defaults applied, every
//! name resolved. Built from main.cf/types.cf by the validator, changed at
//! run time by configuration events (`hares -add`, `hagrp -modify`, ...).
//!
//! Everything is keyed by name in ordered maps: iteration order is the same
//! on every node, so the engine's decisions are too.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A value of a resource attribute as the agent receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Vectors and keylists.
    List(Vec<String>),
    Assoc(Vec<(String, String)>),
}

/// How a resource type's agent handles the resource (`Operations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operations {
    /// Brought online and taken offline.
    OnOff,
    /// Brought online, never taken offline (a file system the OS mounts...).
    OnOnly,
    /// Persistent: only monitored (NIC). Its fault still faults the group.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailOverPolicy {
    /// The lowest SystemList priority number among the eligible systems.
    Priority,
    /// The eligible system running the fewest groups (ties: priority).
    RoundRobin,
    /// The eligible system with the most AvailableCapacity (ties: priority).
    Load,
}

/// `requires group G online|offline local|global|remote soft|firm|hard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DepCategory {
    Online,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DepLocation {
    /// The parent runs where the child runs (offline: where it does not).
    Local,
    /// The parent needs the child online anywhere.
    Global,
    /// The parent needs the child online on another system.
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DepKind {
    /// The child's fault does not touch the parent.
    Soft,
    /// The child's fault takes the parent offline first.
    Firm,
    /// As firm, and the parent's fault fails the child over with it.
    Hard,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDep {
    /// The child group (the one required).
    pub child: String,
    pub category: DepCategory,
    pub location: DepLocation,
    pub kind: DepKind,
}

/// Limits and intervals of a resource, from its type's static attributes
/// (or the HAD defaults), possibly overridden per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds between monitors of an online resource (60).
    pub monitor_interval: u32,
    /// Seconds between monitors of an offline resource (300).
    pub offline_monitor_interval: u32,
    /// Monitors after an online that may still say offline (2).
    pub online_wait_limit: u32,
    /// Restarts in place before a fault fails the group over (0).
    pub restart_limit: u32,
    /// Offline monitors of an online resource tolerated before a fault (0).
    pub tolerance_limit: u32,
    /// Onlines tried again after an online that did not come up (0).
    pub online_retry_limit: u32,
    /// Seconds a resource must stay online for its counters to reset (600).
    pub conf_interval: u32,
    /// Seconds an entry point may take before it counts as hung.
    pub online_timeout: u32,
    pub offline_timeout: u32,
    pub monitor_timeout: u32,
    pub clean_timeout: u32,
    /// Monitor timeouts in a row that count as a fault (4; 0: never).
    pub fault_on_monitor_timeouts: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            monitor_interval: 60,
            offline_monitor_interval: 300,
            online_wait_limit: 2,
            restart_limit: 0,
            tolerance_limit: 0,
            online_retry_limit: 0,
            conf_interval: 600,
            online_timeout: 300,
            offline_timeout: 300,
            monitor_timeout: 60,
            clean_timeout: 60,
            fault_on_monitor_timeouts: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceConf {
    pub name: String,
    pub type_name: String,
    pub group: String,
    /// A fault of a critical resource faults the group (1).
    pub critical: bool,
    /// A disabled resource is neither probed nor brought online (1).
    pub enabled: bool,
    pub operations: Operations,
    pub timing: Timing,
    /// The resources this one requires (`self requires child`).
    pub children: BTreeSet<String>,
    /// The type's ArgList values handed to the agent: name, value for
    /// every system, and values localised per system.
    pub args: Vec<(String, Value)>,
    pub args_per_system: BTreeMap<String, Vec<(String, Value)>>,
}

impl ResourceConf {
    /// The ArgList values the agent on `system` gets.
    pub fn args_for(&self, system: &str) -> Vec<(String, Value)> {
        let mut args = self.args.clone();
        if let Some(local) = self.args_per_system.get(system) {
            for (name, v) in local {
                match args.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => args.push((name.clone(), v.clone())),
                }
            }
        }
        args
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConf {
    pub name: String,
    /// Parallel groups run on every system of their SystemList at once.
    pub parallel: bool,
    /// Systems the group may run on, with their priority (lower first).
    pub system_list: Vec<(String, u32)>,
    pub auto_start: bool,
    pub auto_start_list: Vec<String>,
    pub fail_over_policy: FailOverPolicy,
    /// A fault fails the group over by itself (1).
    pub auto_fail_over: bool,
    /// Persistent freeze (`hagrp -freeze -persistent`): saved in main.cf.
    pub frozen: bool,
    /// The group's load, for FailOverPolicy Load.
    pub load: i64,
    /// HAD acts on faults (ALL) or only reports them (NONE).
    pub manage_faults: bool,
    /// A resource fault takes its parents offline (1).
    pub fault_propagation: bool,
    pub deps: Vec<GroupDep>,
}

impl GroupConf {
    pub fn priority(&self, system: &str) -> Option<u32> {
        self.system_list.iter().find(|(s, _)| s == system).map(|&(_, p)| p)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemConf {
    pub name: String,
    /// For FailOverPolicy Load (100).
    pub capacity: i64,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterConf {
    pub name: String,
    pub systems: BTreeMap<String, SystemConf>,
    pub groups: BTreeMap<String, GroupConf>,
    pub resources: BTreeMap<String, ResourceConf>,
}

impl ClusterConf {
    /// The resources of `group`, in name order.
    pub fn resources_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a ResourceConf> + 'a {
        self.resources.values().filter(move |r| r.group == group)
    }

    /// The resources of the group that require `child`.
    pub fn parents_of<'a>(&'a self, child: &'a str) -> impl Iterator<Item = &'a ResourceConf> + 'a {
        self.resources.values().filter(move |r| r.children.contains(child))
    }
}
