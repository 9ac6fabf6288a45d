//! What goes into the engine (one ordered stream, as GAB delivers it on
//! port h) and what comes out of it.

use crate::config::Value;
use serde::{Deserialize, Serialize};

/// Milliseconds on the cluster clock: the time carried by [`Event::Tick`].
pub type Millis = u64;

/// One input. Every engine of the cluster gets the same events in the same
/// order; nothing else (no clock, no randomness) decides what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Time passed: monitors fall due, entry points time out.
    Tick { now: Millis },
    /// HAD on `system` joined port h and builds its configuration: from
    /// its own main.cf if no system runs (LOCAL_BUILD), else from a running
    /// system's snapshot (REMOTE_BUILD, see [`Output::SendSnapshot`]).
    SystemJoin { system: String },
    /// The host on `system` finished its build: it is RUNNING and its
    /// resources get probed.
    SystemBuilt { system: String },
    /// The host on `system` could not build (its main.cf does not verify):
    /// ADMIN_WAIT.
    BuildFailed { system: String, why: String },
    /// [`Event::SystemJoin`] and [`Event::SystemBuilt`] at once (a system
    /// whose build needs no transfer; tests and benchmarks).
    SystemUp { system: String },
    /// `system` left the cluster as a node (crash, fenced out): what ran
    /// there is gone; failover groups go elsewhere.
    SystemFaulted { system: String },
    /// HAD on `system` stopped while the node stays a member (daemon killed,
    /// `hastop -local -force`): what runs there runs on, unknown to us; its
    /// failover groups are auto-disabled elsewhere, not failed over.
    HadDown { system: String },
    /// An administrator's request, from the ha* command on `from`; the
    /// reply carries `id`.
    Admin { id: u64, from: String, request: Request },
    /// An agent on `system` finished an entry point for `resource`.
    Agent { system: String, resource: String, result: AgentResult },
}

/// What `hagrp`, `hares`, `hasys` and `hastop` ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// `hagrp -online G -sys S`.
    GroupOnline { group: String, system: String },
    /// `hagrp -offline G -sys S`.
    GroupOffline { group: String, system: String },
    /// `hagrp -switch G -to S` (None: `-any`, by FailOverPolicy).
    GroupSwitch { group: String, to: Option<String> },
    /// `hagrp -clear G [-sys S]`: forget the faults of its resources.
    GroupClear { group: String, system: Option<String> },
    /// `hagrp -flush G -sys S`: stop waiting for resources going online or
    /// offline; they are monitored again.
    GroupFlush { group: String, system: String },
    /// `hagrp -freeze G [-persistent]`.
    GroupFreeze { group: String, persistent: bool },
    GroupUnfreeze { group: String, persistent: bool },
    /// `hagrp -autoenable G -sys S`: the administrator vouches that the
    /// group is not running on S.
    GroupAutoEnable { group: String, system: String },
    /// `hares -online R -sys S` / `-offline`.
    ResourceOnline { resource: String, system: String },
    ResourceOffline { resource: String, system: String },
    /// `hares -clear R [-sys S]`.
    ResourceClear { resource: String, system: Option<String> },
    /// `hares -probe R -sys S`.
    ResourceProbe { resource: String, system: String },
    /// `hasys -freeze S` / `-unfreeze`.
    SystemFreeze { system: String },
    SystemUnfreeze { system: String },
    /// `hastop -sys S [-evacuate]` (`-local` is this with the local
    /// system): failover groups go elsewhere when evacuating, else offline;
    /// once nothing runs there, HAD on S exits.
    SystemStop { system: String, evacuate: bool },
    /// `haconf -makerw`: configuration commands are accepted.
    ConfMakeRw,
    /// `haconf -dump [-makero]`: main.cf is written out (every node writes
    /// its own copy, from [`Output::MainCf`]).
    ConfDump { makero: bool },
    /// A configuration command: `hagrp -add G`, `hagrp -modify G A V...`,
    /// `hagrp -link P C online local firm`, `hares -add R T G`, `hares
    /// -modify R A V... [-sys S]`, `hares -local R A`, `hares -link P C`,
    /// `hasys -add S`, `haclus -modify A V`. `words[0]` is the command.
    Config { words: Vec<String> },
}

/// How an entry point ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentResult {
    /// monitor (and probe): exit 110 / 101..109 online, 100 offline, other
    /// unknown.
    Monitor(Observed),
    /// online / offline returned (the monitor that follows decides).
    Done(AgentOp),
    /// clean returned: `ok` false when it failed.
    Cleaned { ok: bool },
    /// The entry point ran out of its timeout.
    TimedOut(AgentOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    Online,
    Offline,
    Unknown,
}

/// Why clean is called (the agent's CleanReason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CleanReason {
    OfflineHung,
    OfflineIneffective,
    OnlineHung,
    OnlineIneffective,
    UnexpectedOffline,
    MonitorHung,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentOp {
    Monitor,
    Online,
    Offline,
    Clean(CleanReason),
}

impl AgentOp {
    pub fn name(self) -> &'static str {
        match self {
            AgentOp::Monitor => "monitor",
            AgentOp::Online => "online",
            AgentOp::Offline => "offline",
            AgentOp::Clean(_) => "clean",
        }
    }
}

/// One output. Every engine emits the same outputs; the host on `system`
/// carries out the agent commands for `system`, the host on `from` sends
/// the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    Agent(AgentCommand),
    Reply { id: u64, to: String, result: Result<String, String> },
    /// `haconf -dump`: the configuration as main.cf, for the host to write.
    MainCf(String),
    /// HAD on `from` sends its engine's snapshot, as it stands right after
    /// the event that caused this, to `to` (REMOTE_BUILD); `to` applies
    /// the events after that one to it and reports [`Event::SystemBuilt`].
    SendSnapshot { from: String, to: String },
    Notify(Notification),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCommand {
    pub system: String,
    pub resource: String,
    pub type_name: String,
    pub op: AgentOp,
    /// The type's ArgList values for `system`.
    pub args: Vec<(String, Value)>,
    /// Seconds the entry point may take.
    pub timeout: u32,
}

/// What changed, for the log, `hastatus` and the notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notification {
    SystemState { system: String, state: String },
    GroupState { group: String, system: String, state: String },
    ResourceState { resource: String, system: String, state: String },
    /// A resource faulted on `system` (critical: the group faults there).
    ResourceFaulted { resource: String, system: String, critical: bool },
    /// `group` goes from `from` to `to` (None: nowhere it may go).
    Failover { group: String, from: String, to: Option<String> },
    /// The group could not be placed: why.
    Stuck { group: String, why: String },
    /// A system needs the administrator (ADMIN_WAIT): why.
    SystemStuck { system: String, why: String },
}
