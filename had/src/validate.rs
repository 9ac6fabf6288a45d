//! From what main.cf and types.cf say ([`cf::Config`]) to the configuration
//! the engine runs ([`ClusterConf`]): every name resolved, every value
//! checked against its declared type, defaults applied. All problems of a
//! configuration come out in one pass, each with file:line:column and what
//! was expected; nothing panics.

use crate::cf::{self, AttrDecl, AttrKind, Diagnostic, Dimension, Scalar, Span, Spanned};
use crate::config::{
    ClusterConf, DepCategory, DepKind, DepLocation, FailOverPolicy, GroupConf, GroupDep, Operations, ResourceConf, SystemConf, Timing,
    Value,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Attributes HAD defines for every resource type (types.cf may set their
/// static values; a resource may override them): name, kind, shape.
const RESOURCE_ATTRS: &[(&str, AttrKind, Dimension)] = &[
    ("Critical", AttrKind::Boolean, Dimension::Scalar),
    ("Enabled", AttrKind::Boolean, Dimension::Scalar),
    ("Operations", AttrKind::Str, Dimension::Scalar),
    ("MonitorInterval", AttrKind::Int, Dimension::Scalar),
    ("OfflineMonitorInterval", AttrKind::Int, Dimension::Scalar),
    ("OnlineWaitLimit", AttrKind::Int, Dimension::Scalar),
    ("RestartLimit", AttrKind::Int, Dimension::Scalar),
    ("ToleranceLimit", AttrKind::Int, Dimension::Scalar),
    ("OnlineRetryLimit", AttrKind::Int, Dimension::Scalar),
    ("ConfInterval", AttrKind::Int, Dimension::Scalar),
    ("FaultOnMonitorTimeouts", AttrKind::Int, Dimension::Scalar),
    ("OnlineTimeout", AttrKind::Int, Dimension::Scalar),
    ("OfflineTimeout", AttrKind::Int, Dimension::Scalar),
    ("MonitorTimeout", AttrKind::Int, Dimension::Scalar),
    ("CleanTimeout", AttrKind::Int, Dimension::Scalar),
    ("NumThreads", AttrKind::Int, Dimension::Scalar),
    ("AgentPriority", AttrKind::Int, Dimension::Scalar),
    ("LogDbg", AttrKind::Str, Dimension::Keylist),
    ("ArgList", AttrKind::Str, Dimension::Vector),
    ("SupportedActions", AttrKind::Str, Dimension::Keylist),
    ("AgentFile", AttrKind::Str, Dimension::Scalar),
    ("AgentDirectory", AttrKind::Str, Dimension::Scalar),
    ("ResourceOwner", AttrKind::Str, Dimension::Scalar),
    ("ComputeStats", AttrKind::Boolean, Dimension::Scalar),
];

/// Service group attributes this HAD knows.
const GROUP_ATTRS: &[(&str, AttrKind, Dimension)] = &[
    ("SystemList", AttrKind::Int, Dimension::Association),
    ("AutoStartList", AttrKind::Str, Dimension::Keylist),
    ("AutoStart", AttrKind::Boolean, Dimension::Scalar),
    ("Parallel", AttrKind::Boolean, Dimension::Scalar),
    ("FailOverPolicy", AttrKind::Str, Dimension::Scalar),
    ("AutoFailOver", AttrKind::Boolean, Dimension::Scalar),
    ("Frozen", AttrKind::Boolean, Dimension::Scalar),
    ("TFrozen", AttrKind::Boolean, Dimension::Scalar),
    ("Load", AttrKind::Int, Dimension::Scalar),
    ("ManageFaults", AttrKind::Str, Dimension::Scalar),
    ("FaultPropagation", AttrKind::Boolean, Dimension::Scalar),
    ("OnlineRetryLimit", AttrKind::Int, Dimension::Scalar),
    ("OnlineRetryInterval", AttrKind::Int, Dimension::Scalar),
    ("Priority", AttrKind::Int, Dimension::Scalar),
    ("Evacuate", AttrKind::Boolean, Dimension::Scalar),
    ("AutoRestart", AttrKind::Boolean, Dimension::Scalar),
    ("Administrators", AttrKind::Str, Dimension::Keylist),
    ("Operators", AttrKind::Str, Dimension::Keylist),
    ("UserStrGlobal", AttrKind::Str, Dimension::Scalar),
    ("UserIntGlobal", AttrKind::Int, Dimension::Scalar),
    ("Guests", AttrKind::Str, Dimension::Keylist),
    ("Prerequisites", AttrKind::Int, Dimension::Association),
    ("PreOnline", AttrKind::Boolean, Dimension::Scalar),
    ("PrintTree", AttrKind::Boolean, Dimension::Scalar),
    ("SysDownPolicy", AttrKind::Str, Dimension::Keylist),
    ("TriggersEnabled", AttrKind::Str, Dimension::Keylist),
    ("TriggerPath", AttrKind::Str, Dimension::Scalar),
    ("ClusterList", AttrKind::Int, Dimension::Association),
    ("Authority", AttrKind::Int, Dimension::Scalar),
];

const SYSTEM_ATTRS: &[(&str, AttrKind, Dimension)] = &[
    ("Capacity", AttrKind::Int, Dimension::Scalar),
    ("Frozen", AttrKind::Boolean, Dimension::Scalar),
    ("TFrozen", AttrKind::Boolean, Dimension::Scalar),
    ("SystemLocation", AttrKind::Str, Dimension::Scalar),
    ("SystemOwner", AttrKind::Str, Dimension::Scalar),
    ("UserStr", AttrKind::Str, Dimension::Scalar),
    ("UserInt", AttrKind::Int, Dimension::Scalar),
    ("Limits", AttrKind::Int, Dimension::Association),
    ("DynamicLoad", AttrKind::Int, Dimension::Scalar),
    ("ShutdownTimeout", AttrKind::Int, Dimension::Scalar),
    ("SourceFile", AttrKind::Str, Dimension::Scalar),
];

const CLUSTER_ATTRS: &[(&str, AttrKind, Dimension)] = &[
    ("UserNames", AttrKind::Str, Dimension::Association),
    ("Administrators", AttrKind::Str, Dimension::Keylist),
    ("Operators", AttrKind::Str, Dimension::Keylist),
    ("Guests", AttrKind::Str, Dimension::Keylist),
    ("PrintMsg", AttrKind::Boolean, Dimension::Scalar),
    ("ClusterAddress", AttrKind::Str, Dimension::Scalar),
    ("UseFence", AttrKind::Str, Dimension::Scalar),
    ("SecureClus", AttrKind::Boolean, Dimension::Scalar),
    ("HacliUserLevel", AttrKind::Str, Dimension::Scalar),
    ("CounterInterval", AttrKind::Int, Dimension::Scalar),
    ("ClusterUUID", AttrKind::Str, Dimension::Scalar),
    ("EngineShutdown", AttrKind::Str, Dimension::Scalar),
];

/// Load main.cf (and what it includes) from the file system and validate.
pub fn load(main_cf: &Path) -> Result<ClusterConf, cf::CfError> {
    load_with(main_cf, &mut cf::FsLoader)
}

pub fn load_with(main_cf: &Path, loader: &mut dyn cf::Loader) -> Result<ClusterConf, cf::CfError> {
    let (config, diags) = cf::load_with_diags(main_cf, loader);
    if !diags.is_empty() {
        // Syntax first: names and values may be missing after an error.
        return Err(cf::CfError(diags));
    }
    validate(&config)
}

/// Check a parsed configuration and resolve it.
pub fn validate(config: &cf::Config) -> Result<ClusterConf, cf::CfError> {
    let mut v = Validator { config, diags: Vec::new() };
    let conf = v.run();
    if v.diags.is_empty() {
        Ok(conf)
    } else {
        v.diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Err(cf::CfError(v.diags))
    }
}

/// A type's attributes, HAD's own included: name -> (kind, shape, static
/// value or default).
struct TypeInfo<'a> {
    attrs: BTreeMap<&'a str, (AttrKind, Dimension, Option<&'a Spanned<cf::Value>>)>,
    arg_list: Vec<String>,
}

struct Validator<'a> {
    config: &'a cf::Config,
    diags: Vec<Diagnostic>,
}

impl<'a> Validator<'a> {
    fn err(&mut self, span: Span, message: impl Into<String>) {
        let file = self.config.file_path(span.file).cloned().unwrap_or_default();
        self.diags.push(Diagnostic { file, line: span.line, column: span.column, message: message.into() });
    }

    fn run(&mut self) -> ClusterConf {
        let types = self.types();
        let mut conf = ClusterConf::default();
        if let Some(c) = &self.config.cluster {
            conf.name = c.name.node.clone();
            for a in &c.attrs {
                self.check_known(a, CLUSTER_ATTRS, "cluster");
            }
        }
        for s in &self.config.systems {
            if conf.systems.contains_key(&s.name.node) {
                self.err(s.name.span, format!("system {} is declared twice", s.name.node));
                continue;
            }
            let mut capacity = 100;
            for a in &s.attrs {
                if let Some(v) = self.check_known(a, SYSTEM_ATTRS, "system") {
                    if a.name.node == "Capacity" {
                        capacity = int_of(&v.node).unwrap_or(capacity);
                    }
                }
            }
            conf.systems.insert(s.name.node.clone(), SystemConf { name: s.name.node.clone(), capacity });
        }
        let systems: BTreeSet<String> = conf.systems.keys().cloned().collect();
        // Groups, then resources (a resource name is unique cluster-wide).
        let mut resource_at: BTreeMap<&str, &str> = BTreeMap::new();
        for g in &self.config.groups {
            if conf.groups.contains_key(&g.name.node) {
                self.err(g.name.span, format!("group {} is declared twice", g.name.node));
                continue;
            }
            let gc = self.group(g, &systems);
            for r in &g.resources {
                if let Some(other) = resource_at.get(r.name.node.as_str()) {
                    let msg = if *other == g.name.node.as_str() {
                        format!("resource {} is declared twice in group {}", r.name.node, g.name.node)
                    } else {
                        format!("resource {} is already in group {other}: a resource belongs to one group", r.name.node)
                    };
                    self.err(r.name.span, msg);
                    continue;
                }
                resource_at.insert(&r.name.node, &g.name.node);
                if let Some(rc) = self.resource(r, &gc, &types, &systems) {
                    conf.resources.insert(rc.name.clone(), rc);
                }
            }
            conf.groups.insert(gc.name.clone(), gc);
        }
        self.resource_deps(&mut conf, &resource_at);
        self.group_deps(&mut conf);
        conf
    }

    /// Check an attribute against a fixed table; its value when known.
    fn check_known(&mut self, a: &'a cf::Attr, table: &[(&str, AttrKind, Dimension)], owner: &str) -> Option<&'a Spanned<cf::Value>> {
        let Some(&(_, kind, dim)) = table.iter().find(|(n, _, _)| *n == a.name.node) else {
            self.err(a.name.span, format!("unknown {owner} attribute {}", a.name.node));
            return None;
        };
        self.check_value(&a.value, kind, dim, &a.name.node);
        Some(&a.value)
    }

    fn types(&mut self) -> BTreeMap<&'a str, TypeInfo<'a>> {
        let mut out = BTreeMap::new();
        for t in &self.config.types {
            if out.contains_key(t.name.node.as_str()) {
                self.err(t.name.span, format!("type {} is declared twice", t.name.node));
                continue;
            }
            let mut info = TypeInfo { attrs: BTreeMap::new(), arg_list: Vec::new() };
            for &(n, k, d) in RESOURCE_ATTRS {
                info.attrs.insert(n, (k, d, None));
            }
            let mut declared: BTreeSet<&str> = BTreeSet::new();
            for d in &t.attrs {
                let AttrDecl { name, kind, dim, default, .. } = d;
                if !declared.insert(&name.node) {
                    self.err(name.span, format!("attribute {} is declared twice in type {}", name.node, t.name.node));
                    continue;
                }
                if let Some(&(_, hk, hd)) = RESOURCE_ATTRS.iter().find(|(n, _, _)| *n == name.node) {
                    if (hk, hd) != (kind.node, *dim) {
                        self.err(kind.span, format!("{} is a {} {} attribute of every type", name.node, kind_name(hk), dim_name(hd)));
                    }
                }
                if let Some(v) = default {
                    self.check_value(v, kind.node, *dim, &name.node);
                }
                info.attrs.insert(&name.node, (kind.node, *dim, default.as_ref()));
            }
            if let Some((_, _, Some(args))) = info.attrs.get("ArgList") {
                if let cf::Value::List(items) = &args.node {
                    for item in items {
                        if let cf::Value::Scalar(s) = &item.node {
                            let arg = s.text();
                            // `Attr:Key` names a key of another resource's
                            // attribute; the attribute part must exist here.
                            let base = arg.split(':').next().unwrap_or("").to_string();
                            if !info.attrs.contains_key(base.as_str()) {
                                self.err(item.span, format!("ArgList of type {} names {arg}, which is not an attribute of the type", t.name.node));
                            } else {
                                info.arg_list.push(arg);
                            }
                        }
                    }
                }
            }
            out.insert(t.name.node.as_str(), info);
        }
        out
    }

    fn group(&mut self, g: &'a cf::Group, systems: &BTreeSet<String>) -> GroupConf {
        let mut gc = GroupConf {
            name: g.name.node.clone(),
            parallel: false,
            system_list: Vec::new(),
            auto_start: true,
            auto_start_list: Vec::new(),
            fail_over_policy: FailOverPolicy::Priority,
            auto_fail_over: true,
            frozen: false,
            load: 0,
            manage_faults: true,
            fault_propagation: true,
            deps: Vec::new(),
        };
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut auto_start_at = None;
        for a in &g.attrs {
            if a.system.is_none() && !seen.insert(&a.name.node) {
                self.err(a.name.span, format!("attribute {} is set twice in group {}", a.name.node, g.name.node));
                continue;
            }
            if let Some(sys) = &a.system {
                self.err(sys.span, format!("group attribute {} cannot be set per system", a.name.node));
                continue;
            }
            // SystemList may be written as a list: numbered in order.
            if a.name.node == "SystemList" {
                gc.system_list = self.system_list(&a.value, systems);
                continue;
            }
            let Some(v) = self.check_known(a, GROUP_ATTRS, "group") else { continue };
            match a.name.node.as_str() {
                "AutoStartList" => {
                    auto_start_at = Some(v);
                }
                "AutoStart" => gc.auto_start = bool_of(&v.node).unwrap_or(true),
                "Parallel" => gc.parallel = bool_of(&v.node).unwrap_or(false),
                "AutoFailOver" => gc.auto_fail_over = bool_of(&v.node).unwrap_or(true),
                "Frozen" => gc.frozen = bool_of(&v.node).unwrap_or(false),
                "Load" => gc.load = int_of(&v.node).unwrap_or(0),
                "FaultPropagation" => gc.fault_propagation = bool_of(&v.node).unwrap_or(true),
                "FailOverPolicy" => match text_of(&v.node).as_deref() {
                    Some("Priority") => gc.fail_over_policy = FailOverPolicy::Priority,
                    Some("RoundRobin") => gc.fail_over_policy = FailOverPolicy::RoundRobin,
                    Some("Load") => gc.fail_over_policy = FailOverPolicy::Load,
                    _ => self.err(v.span, "FailOverPolicy: expected Priority, RoundRobin or Load"),
                },
                "ManageFaults" => match text_of(&v.node).as_deref() {
                    Some("ALL") => gc.manage_faults = true,
                    Some("NONE") => gc.manage_faults = false,
                    _ => self.err(v.span, "ManageFaults: expected ALL or NONE"),
                },
                _ => {}
            }
        }
        if let Some(v) = auto_start_at {
            if let cf::Value::List(items) = &v.node {
                for item in items {
                    let cf::Value::Scalar(s) = &item.node else { continue };
                    let name = s.text();
                    if !systems.contains(&name) {
                        self.err(item.span, format!("AutoStartList of group {} names {name}, which is not a system", g.name.node));
                    } else if gc.priority(&name).is_none() {
                        self.err(item.span, format!("AutoStartList of group {} names {name}, which is not in its SystemList", g.name.node));
                    } else {
                        gc.auto_start_list.push(name);
                    }
                }
            }
        }
        if gc.system_list.is_empty() && !g.resources.is_empty() {
            self.err(g.name.span, format!("group {} has no SystemList: it could run nowhere", g.name.node));
        }
        gc
    }

    /// `SystemList = { a = 0, b = 1 }` or `{ a, b }` (numbered in order).
    fn system_list(&mut self, v: &Spanned<cf::Value>, systems: &BTreeSet<String>) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = Vec::new();
        let mut add = |me: &mut Self, name: &Spanned<String>, prio: u32| {
            if !systems.contains(&name.node) {
                me.err(name.span, format!("SystemList names {}, which is not a system", name.node));
            } else if out.iter().any(|(s, _)| *s == name.node) {
                me.err(name.span, format!("SystemList names {} twice", name.node));
            } else {
                out.push((name.node.clone(), prio));
            }
        };
        match &v.node {
            cf::Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let cf::Value::Scalar(s) = &item.node {
                        add(self, &Spanned::new(s.text(), item.span), i as u32);
                    }
                }
            }
            cf::Value::Assoc(entries) => {
                for e in entries {
                    let prio = match &e.value.node {
                        cf::Value::Scalar(Scalar::Int(p)) if *p >= 0 => *p as u32,
                        _ => {
                            self.err(e.value.span, "SystemList priority: expected a number 0 or more");
                            continue;
                        }
                    };
                    add(self, &Spanned::new(e.key.node.text(), e.key.span), prio);
                }
            }
            cf::Value::Scalar(_) => self.err(v.span, "SystemList: expected { sys = priority, ... } or { sys, ... }, found a single value"),
        }
        out
    }

    fn resource(
        &mut self,
        r: &'a cf::Resource,
        g: &GroupConf,
        types: &BTreeMap<&'a str, TypeInfo<'a>>,
        systems: &BTreeSet<String>,
    ) -> Option<ResourceConf> {
        let Some(t) = types.get(r.type_name.node.as_str()) else {
            self.err(r.type_name.span, format!("unknown resource type {} (not declared in any included types.cf)", r.type_name.node));
            return None;
        };
        // Static values from the type, then what the resource says.
        let mut values: BTreeMap<&str, &Spanned<cf::Value>> = BTreeMap::new();
        for (n, (_, _, default)) in &t.attrs {
            if let Some(d) = default {
                values.insert(n, d);
            }
        }
        let mut local: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
        let mut seen: BTreeSet<(&str, Option<&str>)> = BTreeSet::new();
        for a in &r.attrs {
            let Some(&(kind, dim, _)) = t.attrs.get(a.name.node.as_str()) else {
                self.err(a.name.span, format!("type {} has no attribute {}", r.type_name.node, a.name.node));
                continue;
            };
            if !seen.insert((&a.name.node, a.system.as_ref().map(|s| s.node.as_str()))) {
                self.err(a.name.span, format!("attribute {} is set twice in resource {}", a.name.node, r.name.node));
                continue;
            }
            if !self.check_value(&a.value, kind, dim, &a.name.node) {
                continue;
            }
            match &a.system {
                None => {
                    values.insert(&a.name.node, &a.value);
                }
                Some(sys) => {
                    if !systems.contains(&sys.node) {
                        self.err(sys.span, format!("{}@{}: {} is not a system", a.name.node, sys.node, sys.node));
                    } else if g.priority(&sys.node).is_none() {
                        self.err(sys.span, format!("{}@{}: {} is not in the SystemList of group {}", a.name.node, sys.node, sys.node, g.name));
                    } else {
                        local.entry(sys.node.clone()).or_default().push((a.name.node.clone(), convert(&a.value.node, kind, dim)));
                    }
                }
            }
        }
        let int = |n: &str, d: u32| values.get(n).and_then(|v| int_of(&v.node)).map_or(d, |i| i.max(0) as u32);
        let def = Timing::default();
        let timing = Timing {
            monitor_interval: int("MonitorInterval", def.monitor_interval),
            offline_monitor_interval: int("OfflineMonitorInterval", def.offline_monitor_interval),
            online_wait_limit: int("OnlineWaitLimit", def.online_wait_limit),
            restart_limit: int("RestartLimit", def.restart_limit),
            tolerance_limit: int("ToleranceLimit", def.tolerance_limit),
            online_retry_limit: int("OnlineRetryLimit", def.online_retry_limit),
            conf_interval: int("ConfInterval", def.conf_interval),
            online_timeout: int("OnlineTimeout", def.online_timeout),
            offline_timeout: int("OfflineTimeout", def.offline_timeout),
            monitor_timeout: int("MonitorTimeout", def.monitor_timeout),
            clean_timeout: int("CleanTimeout", def.clean_timeout),
            fault_on_monitor_timeouts: int("FaultOnMonitorTimeouts", def.fault_on_monitor_timeouts),
        };
        let operations = match values.get("Operations").and_then(|v| text_of(&v.node)).as_deref() {
            None | Some("OnOff") => Operations::OnOff,
            Some("OnOnly") => Operations::OnOnly,
            Some("None") => Operations::None,
            Some(other) => {
                let span = values["Operations"].span;
                self.err(span, format!("Operations = {other}: expected OnOff, OnOnly or None"));
                Operations::OnOff
            }
        };
        let args = t
            .arg_list
            .iter()
            .filter_map(|name| {
                let base = name.split(':').next().unwrap_or("");
                let (kind, dim, _) = t.attrs.get(base)?;
                let v = values.get(base).map(|v| convert(&v.node, *kind, *dim)).unwrap_or_else(|| empty(*kind, *dim));
                Some((name.clone(), v))
            })
            .collect();
        Some(ResourceConf {
            name: r.name.node.clone(),
            type_name: r.type_name.node.clone(),
            group: g.name.clone(),
            critical: values.get("Critical").and_then(|v| bool_of(&v.node)).unwrap_or(true),
            enabled: values.get("Enabled").and_then(|v| bool_of(&v.node)).unwrap_or(true),
            operations,
            timing,
            children: BTreeSet::new(),
            args,
            args_per_system: local,
        })
    }

    fn resource_deps(&mut self, conf: &mut ClusterConf, resource_at: &BTreeMap<&str, &str>) {
        for g in &self.config.groups {
            for d in &g.resource_deps {
                let mut ok = true;
                for n in [&d.parent, &d.child] {
                    match resource_at.get(n.node.as_str()) {
                        None => {
                            self.err(n.span, format!("no resource {} (requires names resources of group {})", n.node, g.name.node));
                            ok = false;
                        }
                        Some(other) if *other != g.name.node.as_str() => {
                            self.err(n.span, format!("resource {} is in group {other}: requires links resources of one group ({})", n.node, g.name.node));
                            ok = false;
                        }
                        _ => {}
                    }
                }
                if !ok {
                    continue;
                }
                if d.parent.node == d.child.node {
                    self.err(d.parent.span, format!("resource {} cannot require itself", d.parent.node));
                    continue;
                }
                // A link that closes a cycle is reported where it is written.
                if reaches(conf, &d.child.node, &d.parent.node) {
                    self.err(d.parent.span, format!("{} requires {} closes a dependency cycle", d.parent.node, d.child.node));
                    continue;
                }
                if let Some(p) = conf.resources.get_mut(&d.parent.node) {
                    p.children.insert(d.child.node.clone());
                }
            }
        }
    }

    fn group_deps(&mut self, conf: &mut ClusterConf) {
        for g in &self.config.groups {
            for d in &g.group_deps {
                if !conf.groups.contains_key(&d.group.node) {
                    self.err(d.group.span, format!("group {} requires group {}, which does not exist", g.name.node, d.group.node));
                    continue;
                }
                if d.group.node == g.name.node {
                    self.err(d.group.span, format!("group {} cannot require itself", g.name.node));
                    continue;
                }
                let category = match d.category.node {
                    cf::DepCategory::Online => DepCategory::Online,
                    cf::DepCategory::Offline => DepCategory::Offline,
                };
                let location = match d.location.node {
                    cf::DepLocation::Local => DepLocation::Local,
                    cf::DepLocation::Global => DepLocation::Global,
                    cf::DepLocation::Remote => DepLocation::Remote,
                };
                let kind = match (category, d.kind.as_ref().map(|k| k.node)) {
                    (DepCategory::Offline, Some(_)) => {
                        let span = d.kind.as_ref().map_or(d.location.span, |k| k.span);
                        self.err(span, "an offline dependency takes no soft, firm or hard");
                        continue;
                    }
                    (DepCategory::Offline, None) => DepKind::Soft,
                    (_, None) | (_, Some(cf::DepKind::Firm)) => DepKind::Firm,
                    (_, Some(cf::DepKind::Soft)) => DepKind::Soft,
                    (_, Some(cf::DepKind::Hard)) => {
                        if location != DepLocation::Local {
                            let span = d.kind.as_ref().map_or(d.location.span, |k| k.span);
                            self.err(span, "hard dependencies are online local only");
                            continue;
                        }
                        DepKind::Hard
                    }
                };
                if category == DepCategory::Offline && location != DepLocation::Local {
                    self.err(d.location.span, "offline dependencies are local only");
                    continue;
                }
                // What VCS does not support between parallel and failover
                // groups (its dependency tables have no row for these).
                let parallel = |name: &str| conf.groups.get(name).is_some_and(|x| x.parallel);
                let (parent_par, child_par) = (parallel(&g.name.node), parallel(&d.group.node));
                let unsupported = match (parent_par, child_par) {
                    (true, false) if category == DepCategory::Online && location == DepLocation::Local => {
                        Some("online local dependencies of a parallel group on a failover group are not supported")
                    }
                    (true, true) if location != DepLocation::Local => Some("global and remote dependencies between parallel groups are not supported"),
                    (_, true) | (true, _) if kind == DepKind::Hard => Some("hard dependencies are between failover groups only"),
                    _ => None,
                };
                if let Some(why) = unsupported {
                    self.err(d.location.span, why);
                    continue;
                }
                if group_reaches(conf, &d.group.node, &g.name.node) {
                    self.err(d.group.span, format!("group {} requires group {} closes a dependency cycle", g.name.node, d.group.node));
                    continue;
                }
                if let Some(gc) = conf.groups.get_mut(&g.name.node) {
                    gc.deps.push(GroupDep { child: d.group.node.clone(), category, location, kind });
                }
            }
        }
    }

    /// Whether `v` has the declared kind and shape; says what is wrong if not.
    fn check_value(&mut self, v: &Spanned<cf::Value>, kind: AttrKind, dim: Dimension, name: &str) -> bool {
        let want = || format!("{name}: expected {}", describe(kind, dim));
        match (&v.node, dim) {
            (cf::Value::Scalar(s), Dimension::Scalar) => {
                if let Some(why) = scalar_problem(s, kind) {
                    self.err(v.span, format!("{}, found {why}", want()));
                    return false;
                }
                true
            }
            (cf::Value::List(items), Dimension::Vector | Dimension::Keylist) => {
                let mut ok = true;
                let mut keys = BTreeSet::new();
                for item in items {
                    match &item.node {
                        cf::Value::Scalar(s) => {
                            if let Some(why) = scalar_problem(s, kind) {
                                self.err(item.span, format!("{}, found {why}", want()));
                                ok = false;
                            } else if dim == Dimension::Keylist && !keys.insert(s.text()) {
                                self.err(item.span, format!("{name}: {} is listed twice in a keylist", s.text()));
                                ok = false;
                            }
                        }
                        _ => {
                            self.err(item.span, format!("{}, found a nested list", want()));
                            ok = false;
                        }
                    }
                }
                ok
            }
            // `{ }` is an empty association too.
            (cf::Value::List(items), Dimension::Association) if items.is_empty() => true,
            (cf::Value::Assoc(entries), Dimension::Association) => {
                let mut ok = true;
                for e in entries {
                    match &e.value.node {
                        cf::Value::Scalar(s) => {
                            if let Some(why) = scalar_problem(s, kind) {
                                self.err(e.value.span, format!("{}, found {why}", want()));
                                ok = false;
                            }
                        }
                        _ => {
                            self.err(e.value.span, format!("{}, found a nested value", want()));
                            ok = false;
                        }
                    }
                }
                ok
            }
            (found, _) => {
                let what = match found {
                    cf::Value::Scalar(_) => "a single value",
                    cf::Value::List(_) => "a list { ... }",
                    cf::Value::Assoc(_) => "an association { key = value ... }",
                };
                self.err(v.span, format!("{}, found {what}", want()));
                false
            }
        }
    }
}

/// Why a scalar is not of `kind`, or None.
fn scalar_problem(s: &Scalar, kind: AttrKind) -> Option<String> {
    match (kind, s) {
        (AttrKind::Str, _) => None,
        (AttrKind::Int, Scalar::Int(_)) => None,
        (AttrKind::Int, Scalar::Str(t)) => Some(format!("\"{t}\"")),
        (AttrKind::Boolean, Scalar::Int(0 | 1)) => None,
        (AttrKind::Boolean, other) => Some(format!("{} (a boolean is 0 or 1)", other.text())),
        (AttrKind::Float, Scalar::Int(_)) => None,
        (AttrKind::Float, Scalar::Str(t)) => t.parse::<f64>().err().map(|_| format!("\"{t}\"")),
    }
}

fn kind_name(k: AttrKind) -> &'static str {
    k.keyword()
}

fn dim_name(d: Dimension) -> &'static str {
    match d {
        Dimension::Scalar => "scalar",
        Dimension::Vector => "vector",
        Dimension::Keylist => "keylist",
        Dimension::Association => "association",
    }
}

fn describe(kind: AttrKind, dim: Dimension) -> String {
    match dim {
        Dimension::Scalar => format!("{} {}", if kind == AttrKind::Int { "an" } else { "a" }, kind.keyword()),
        Dimension::Vector => format!("a vector of {} {{ a, b }}", kind.keyword()),
        Dimension::Keylist => "a keylist { a, b }".to_string(),
        Dimension::Association => format!("an association of {} {{ key = value }}", kind.keyword()),
    }
}

fn int_of(v: &cf::Value) -> Option<i64> {
    match v {
        cf::Value::Scalar(Scalar::Int(i)) => Some(*i),
        _ => None,
    }
}

fn bool_of(v: &cf::Value) -> Option<bool> {
    int_of(v).map(|i| i != 0)
}

fn text_of(v: &cf::Value) -> Option<String> {
    match v {
        cf::Value::Scalar(s) => Some(s.text()),
        _ => None,
    }
}

/// The value as the agent gets it.
fn convert(v: &cf::Value, kind: AttrKind, dim: Dimension) -> Value {
    match (v, dim) {
        (cf::Value::Scalar(s), _) => match (kind, s) {
            (AttrKind::Int, Scalar::Int(i)) => Value::Int(*i),
            (AttrKind::Boolean, Scalar::Int(i)) => Value::Bool(*i != 0),
            (_, s) => Value::Str(s.text()),
        },
        (cf::Value::List(items), Dimension::Association) if items.is_empty() => Value::Assoc(Vec::new()),
        (cf::Value::List(items), _) => Value::List(items.iter().filter_map(|i| text_of(&i.node)).collect()),
        (cf::Value::Assoc(entries), _) => {
            Value::Assoc(entries.iter().map(|e| (e.key.node.text(), text_of(&e.value.node).unwrap_or_default())).collect())
        }
    }
}

/// The value of an attribute nobody set.
fn empty(kind: AttrKind, dim: Dimension) -> Value {
    match (dim, kind) {
        (Dimension::Scalar, AttrKind::Int) => Value::Int(0),
        (Dimension::Scalar, AttrKind::Boolean) => Value::Bool(false),
        (Dimension::Scalar, _) => Value::Str(String::new()),
        (Dimension::Association, _) => Value::Assoc(Vec::new()),
        _ => Value::List(Vec::new()),
    }
}

/// Whether `from` requires `to`, directly or not.
fn reaches(conf: &ClusterConf, from: &str, to: &str) -> bool {
    let mut stack = vec![from.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(r) = stack.pop() {
        if r == to {
            return true;
        }
        if !seen.insert(r.clone()) {
            continue;
        }
        if let Some(rc) = conf.resources.get(&r) {
            stack.extend(rc.children.iter().cloned());
        }
    }
    false
}

fn group_reaches(conf: &ClusterConf, from: &str, to: &str) -> bool {
    let mut stack = vec![from.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(g) = stack.pop() {
        if g == to {
            return true;
        }
        if !seen.insert(g.clone()) {
            continue;
        }
        if let Some(gc) = conf.groups.get(&g) {
            stack.extend(gc.deps.iter().map(|d| d.child.clone()));
        }
    }
    false
}
