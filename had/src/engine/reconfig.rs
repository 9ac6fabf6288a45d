//! Configuration changes at run time, as events in the stream: `haconf
//! -makerw`, configuration commands (`hagrp -add`, `hares -modify`, ...),
//! `haconf -dump [-makero]`. The engine keeps main.cf as text (and the files
//! it includes); a command is applied to the parsed text, the result is
//! validated like a main.cf at start, and only a valid configuration
//! replaces the running one. Every engine applies the same commands in the
//! same order, so every node holds the same configuration.

use super::state::*;
use super::*;
use crate::cf::{self, FileId};
use crate::{hacf, validate};
use std::io;
use std::path::Path;

/// main.cf as text and the files it includes, by the path it names them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub main_cf: String,
    pub includes: BTreeMap<String, String>,
    /// (object, attribute) made per-system with `-local`, no value yet.
    pub locals: BTreeSet<(String, String)>,
}

impl Source {
    /// main.cf's text and the files it includes: (path as named, text).
    pub fn new(main_cf: impl Into<String>, includes: impl IntoIterator<Item = (String, String)>) -> Source {
        Source { main_cf: main_cf.into(), includes: includes.into_iter().collect(), locals: BTreeSet::new() }
    }

    fn read(&self, p: &Path) -> io::Result<String> {
        let name = p.to_string_lossy();
        if name == "main.cf" {
            return Ok(self.main_cf.clone());
        }
        let rel = name.strip_prefix("./").unwrap_or(&name);
        self.includes.get(rel).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in this configuration"))
    }

    /// The parsed configuration, includes followed.
    fn load(&self) -> Result<cf::Config, String> {
        cf::load(Path::new("main.cf"), &mut |p: &Path| self.read(p)).map_err(|e| e.to_string())
    }

    /// Parsed and validated: what an engine runs.
    pub fn conf(&self) -> Result<ClusterConf, cf::CfError> {
        validate::load_with(Path::new("main.cf"), &mut |p: &Path| self.read(p))
    }
}

impl Engine {
    /// An engine that accepts configuration changes: `source` is the text
    /// `conf` was validated from.
    pub fn with_source(conf: ClusterConf, source: Source) -> Engine {
        let mut e = Engine::new(conf);
        e.source = Some(source);
        e
    }

    pub fn read_write(&self) -> bool {
        self.read_write
    }

    pub(super) fn conf_makerw(&mut self) -> Result<String, String> {
        if self.source.is_none() {
            return Err("this HAD has no configuration text: changes are not possible".into());
        }
        if self.read_write {
            return Err("the configuration is already read-write".into());
        }
        self.read_write = true;
        Ok("configuration read-write".into())
    }

    pub(super) fn conf_dump(&mut self, makero: bool) -> Result<String, String> {
        let Some(src) = &self.source else { return Err("this HAD has no configuration text".into()) };
        self.out.push(Output::MainCf(src.main_cf.clone()));
        if makero {
            self.read_write = false;
        }
        Ok(format!("configuration dumped{}", if makero { ", read-only" } else { "" }))
    }

    pub(super) fn conf_command(&mut self, words: &[String]) -> Result<String, String> {
        if !self.read_write {
            return Err("the configuration is read-only: haconf -makerw first".into());
        }
        let Some(src) = &self.source else { return Err("this HAD has no configuration text".into()) };
        // What runs is not deleted under HAD's feet.
        if let [cmd, op, name, ..] = words {
            match (cmd.as_str(), op.as_str()) {
                ("hares", "-delete") => {
                    if let Some((s, rt)) = self.res.get(name.as_str()).and_then(|p| p.iter().find(|(_, rt)| rt.is_online() || rt.busy.is_some())) {
                        return Err(format!("resource {name} is {} on {s}: take it offline first", rt.state_name()));
                    }
                }
                ("hagrp", "-delete") => {
                    if let Some(s) = self.active_on(name).first() {
                        return Err(format!("group {name} is online on {s}: take it offline first"));
                    }
                }
                _ => {}
            }
        }
        let mut locals = src.locals.clone();
        let config = src.load()?;
        let config = hacf::apply_words(config, words, &mut locals)?;
        let conf = validate::validate(&config).map_err(|e| e.to_string())?;
        let main_cf = cf::write_file(&config, FileId(0));
        let src = self.source.as_mut().expect("checked");
        src.main_cf = main_cf;
        src.locals = locals;
        self.set_conf(conf);
        Ok(format!("{} done", words.join(" ")))
    }

    /// Run the new configuration: new systems, groups and resources get
    /// their run-time state, new resources are probed where HAD runs, and
    /// what the configuration no longer names is forgotten.
    fn set_conf(&mut self, conf: ClusterConf) {
        let old_groups: BTreeSet<String> = self.conf.groups.keys().cloned().collect();
        self.conf = conf;
        self.idx = Index::build(&self.conf);
        for s in self.conf.systems.keys() {
            self.systems.entry(s.clone()).or_default();
        }
        // Forget what is gone (a system dropped from a SystemList, ...).
        let conf = &self.conf;
        self.groups.retain(|g, _| conf.groups.contains_key(g));
        for (g, per) in self.groups.iter_mut() {
            per.retain(|s, _| conf.groups[g].priority(s).is_some());
        }
        self.res.retain(|r, _| conf.resources.contains_key(r));
        for (r, per) in self.res.iter_mut() {
            let g = &conf.groups[&conf.resources[r].group];
            per.retain(|s, _| g.priority(s).is_some());
        }
        let timers: Vec<_> = self.timers.iter().filter(|(_, _, r, s)| self.res.get(r).is_none_or(|p| !p.contains_key(s))).cloned().collect();
        for t in timers {
            self.timers.remove(&t);
        }
        self.fill_runtime();
        // Groups added at run time are started by the administrator.
        for g in self.conf.groups.keys() {
            if !old_groups.contains(g) {
                self.autostarted.insert(g.clone());
            }
        }
        // Probe what was never probed where HAD runs.
        let mut probe = Vec::new();
        for (r, per) in &self.res {
            if !self.conf.resources[r].enabled {
                continue;
            }
            for (s, rt) in per {
                let running = self.systems.get(s).is_some_and(|x| x.state == SysState::Running);
                if running && rt.state == ResState::Unknown && rt.busy.is_none() && rt.next_monitor.is_none() && !rt.faulted {
                    probe.push((r.clone(), s.clone()));
                }
            }
        }
        for (r, s) in probe {
            self.command(&r, &s, AgentOp::Monitor);
        }
        let groups: Vec<(String, Vec<String>)> =
            self.groups.iter().map(|(g, per)| (g.clone(), per.keys().cloned().collect())).collect();
        for (g, systems) in groups {
            for s in systems {
                let probed = self.idx.group_resources.get(&g).into_iter().flatten().all(|r| {
                    !self.conf.resources[r].enabled || self.res[r][&s].state != ResState::Unknown
                });
                let rt = self.groups.get_mut(&g).and_then(|p| p.get_mut(&s)).expect("group rt");
                rt.probed = probed;
            }
            self.dirty.insert(g);
        }
    }
}
