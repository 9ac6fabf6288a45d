//! `hacf`: check a configuration directory, and turn main.cf into the ha*
//! commands that would build it (main.cmd) and back, as VCS's hacf does.
//!
//! - [`verify`]: load `DIR/main.cf` and what it includes, and validate.
//! - [`cf_to_cmd`] / [`config_to_cmd`]: main.cf → main.cmd. The commands
//!   come in the order VCS writes them: `haclus -modify ClusterName NAME`
//!   and the other cluster attributes; `hasys -add` and `hasys -modify` for
//!   each system; `hagrp -add` and `hagrp -modify` for each group (SystemList
//!   first, AutoStartList next, then the others as written); then, group by
//!   group, `hares -add R TYPE G` and `hares -modify` (resources in the
//!   order main.cf is dumped: by type, then name); then `hares -link`;
//!   last `hagrp -link PARENT CHILD online local firm`. Every group exists
//!   before any dependency names it.
//! - [`cmd_to_cf`] / [`cmd_to_config`]: main.cmd → main.cf, every bad line
//!   reported (`main.cmd:LINE: message`), nothing written if any.
//!
//! Values on a command line: a scalar is one word; a vector or keylist its
//! elements, one word each; an association its keys and values, in pairs;
//! an empty list or association `-delete -keys`. A per-system value is
//! `hares -local R Attr` once, then `hares -modify R Attr VALUE -sys SYS` for
//! each system (`hagrp`, `hasys` and `haclus` alike). Words are quoted as a
//! shell needs them (`"..."` with `"`, `\`, `$` and `` ` `` escaped); a
//! string that reads as an integer is quoted too, so `"10"` stays a string
//! and `10` an integer, as in main.cf.
//!
//! Types are not converted: main.cf's `include` lines become
//! `# include "types.cf"` comment lines at the top of main.cmd, and
//! cmdtocf writes them back as include lines. cmdtocf reads those files
//! (relative to the directory) to learn each attribute's shape: whether
//! `hares -modify r Ports 8080` sets a scalar or a one-element keylist.
//! An attribute no type and no HAD table declares is read as a scalar when
//! given one word and as a vector otherwise.
//!
//! The round trip: for a valid configuration C, `cmd_to_config(config_to_cmd(C))`
//! equals [`canonical`]`(C)`, which differs from C only in what does not
//! change its meaning (resources in dump order, SystemList and
//! AutoStartList first among a group's attributes, `SystemList = { a, b }`
//! numbered as `{ a = 0, b = 1 }`).

use crate::cf::{self, parser::scalar_from_word, Attr, AssocEntry, CfError, Config, Diagnostic, Dimension, FileId, Scalar, Span, Spanned, Value};
use crate::config::ClusterConf;
use crate::validate;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub const MAIN_CF: &str = "main.cf";
pub const MAIN_CMD: &str = "main.cmd";

/// What went wrong, for the command to print one problem a line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// main.cf or a file it includes (or, for cmdtocf, a type file named by
    /// a `# include` line) has problems.
    #[error("{0}")]
    Config(#[from] CfError),
    /// Lines of main.cmd that cannot be turned into a configuration.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Commands(Vec<CmdDiagnostic>),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl Error {
    /// One line per problem, as printed on stderr.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Error::Config(e) => e.0.iter().map(|d| d.to_string()).collect(),
            Error::Commands(ds) => ds.iter().map(|d| d.to_string()).collect(),
            Error::Io { .. } => vec![self.to_string()],
        }
    }
}

/// A bad line of main.cmd: `main.cmd:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdDiagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub message: String,
}

impl fmt::Display for CmdDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// `hacf -verify DIR`: load DIR/main.cf and its includes and validate.
pub fn verify(dir: &Path) -> Result<ClusterConf, CfError> {
    validate::load(&dir.join(MAIN_CF))
}

/// `hacf -cftocmd DIR`: verify DIR/main.cf, then write DIR/main.cmd.
/// Returns the path written.
pub fn cf_to_cmd(dir: &Path) -> Result<PathBuf, Error> {
    let main_cf = dir.join(MAIN_CF);
    let config = cf::load(&main_cf, &mut cf::FsLoader)?;
    validate::validate(&config)?;
    let text = config_to_cmd(&config)?;
    let out = dir.join(MAIN_CMD);
    write_atomically(&out, &text)?;
    Ok(out)
}

/// `hacf -cmdtocf DIR`: read DIR/main.cmd and write DIR/main.cf. Nothing is
/// written when a line is bad. Returns the path written.
pub fn cmd_to_cf(dir: &Path) -> Result<PathBuf, Error> {
    let main_cmd = dir.join(MAIN_CMD);
    let text = std::fs::read_to_string(&main_cmd).map_err(|source| Error::Io { path: main_cmd.clone(), source })?;
    let main_cf = dir.join(MAIN_CF);
    let config = cmd_to_config(&main_cmd, &text, &main_cf, &mut cf::FsLoader)?;
    let out = cf::write_config(&config);
    write_atomically(&main_cf, &out)?;
    Ok(main_cf)
}

fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.hacf-tmp"));
    let io_err = |source| Error::Io { path: path.to_path_buf(), source };
    std::fs::write(&tmp, text).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { path: path.to_path_buf(), source }
    })
}

// ---------------------------------------------------------------- cf → cmd

/// The commands that build main.cf's own cluster, systems and groups (items
/// read from included files stay there; main.cf's includes become
/// `# include` comment lines). A type defined in main.cf itself, or a value
/// nested deeper than a command line can say (`{ a = { b } }`), is a
/// problem at its place in main.cf.
pub fn config_to_cmd(config: &Config) -> Result<String, CfError> {
    let main = FileId(0);
    let mut w = CmdWriter { config, diags: Vec::new(), out: String::new() };
    for i in config.includes.iter().filter(|i| i.path.span.file == main) {
        w.out.push_str(&format!("# include {}\n", quote(&i.path.node)));
    }
    for t in config.types.iter().filter(|t| t.name.span.file == main) {
        w.err(
            t.name.span,
            format!("type {} is defined in main.cf: hacf -cftocmd does not convert types; move it to an included file such as types.cf", t.name.node),
        );
    }
    if let Some(c) = config.cluster.as_ref().filter(|c| c.name.span.file == main) {
        w.line(&["haclus", "-modify", "ClusterName", &word(&c.name.node)]);
        w.attrs(&["haclus"], &c.attrs.iter().collect::<Vec<_>>(), false);
    }
    for s in config.systems.iter().filter(|s| s.name.span.file == main) {
        let n = word(&s.name.node);
        w.line(&["hasys", "-add", &n]);
        w.attrs(&["hasys", &n], &s.attrs.iter().collect::<Vec<_>>(), false);
    }
    // Resources and their dependencies in the order haconf -dump writes
    // them, so converting the main.cf written back gives the same commands.
    let mut sorted = config.clone();
    sorted.sort_like_dump();
    let groups: Vec<&cf::Group> = sorted.groups.iter().filter(|g| g.name.span.file == main).collect();
    for g in &groups {
        let n = word(&g.name.node);
        w.line(&["hagrp", "-add", &n]);
        w.attrs(&["hagrp", &n], &group_attr_order(&g.attrs), true);
    }
    for g in &groups {
        let gn = word(&g.name.node);
        for r in &g.resources {
            let n = word(&r.name.node);
            w.line(&["hares", "-add", &n, &word(&r.type_name.node), &gn]);
            w.attrs(&["hares", &n], &r.attrs.iter().collect::<Vec<_>>(), false);
        }
    }
    for g in &groups {
        for d in &g.resource_deps {
            w.line(&["hares", "-link", &word(&d.parent.node), &word(&d.child.node)]);
        }
    }
    for g in &groups {
        for d in &g.group_deps {
            let (p, c) = (word(&g.name.node), word(&d.group.node));
            let mut l = vec!["hagrp", "-link", &p, &c, d.category.node.keyword(), d.location.node.keyword()];
            if let Some(k) = &d.kind {
                l.push(k.node.keyword());
            }
            w.line(&l);
        }
    }
    if w.diags.is_empty() {
        Ok(w.out)
    } else {
        Err(CfError(w.diags))
    }
}

/// A group's attributes in the order commands set them: SystemList, then
/// AutoStartList (which must name systems of the SystemList), then the rest
/// as written.
fn group_attr_order(attrs: &[Attr]) -> Vec<&Attr> {
    let rank = |a: &Attr| match a.name.node.as_str() {
        "SystemList" => 0,
        "AutoStartList" => 1,
        _ => 2,
    };
    let mut v: Vec<&Attr> = attrs.iter().collect();
    v.sort_by_key(|a| rank(a));
    v
}

struct CmdWriter<'a> {
    config: &'a Config,
    diags: Vec<Diagnostic>,
    out: String,
}

impl CmdWriter<'_> {
    fn err(&mut self, span: Span, message: String) {
        let file = self.config.file_path(span.file).cloned().unwrap_or_default();
        self.diags.push(Diagnostic { file, line: span.line, column: span.column, message });
    }

    fn line(&mut self, words: &[&str]) {
        self.out.push_str(&words.join(" "));
        self.out.push('\n');
    }

    /// `CMD -modify [OBJ] Attr VALUE...`, `-local` before the first
    /// per-system value of an attribute. `cmd` is the command and, except
    /// for haclus, the object's name.
    fn attrs(&mut self, cmd: &[&str], attrs: &[&Attr], is_group: bool) {
        let (prog, obj) = (cmd[0], &cmd[1..]);
        let mut local: BTreeSet<&str> = BTreeSet::new();
        for a in attrs {
            let Some(values) = self.value_words(a, is_group && a.name.node == "SystemList") else { continue };
            let name = word(&a.name.node);
            if let Some(sys) = &a.system {
                if local.insert(&a.name.node) {
                    let mut l = vec![prog, "-local"];
                    l.extend_from_slice(obj);
                    l.push(&name);
                    self.line(&l);
                }
                let sys = word(&sys.node);
                let mut l = vec![prog, "-modify"];
                l.extend_from_slice(obj);
                l.push(&name);
                l.extend(values.iter().map(String::as_str));
                l.extend(["-sys", &sys]);
                self.line(&l);
            } else {
                let mut l = vec![prog, "-modify"];
                l.extend_from_slice(obj);
                l.push(&name);
                l.extend(values.iter().map(String::as_str));
                self.line(&l);
            }
        }
    }

    /// The words of a value; `None` (and a diagnostic) when it cannot be
    /// said on a command line.
    fn value_words(&mut self, a: &Attr, system_list: bool) -> Option<Vec<String>> {
        let nested = |v: &Spanned<Value>| match &v.node {
            Value::Scalar(s) => Ok(scalar_word(s)),
            _ => Err(v.span),
        };
        let words: Result<Vec<String>, Span> = match &a.value.node {
            Value::Scalar(s) => Ok(vec![scalar_word(s)]),
            Value::List(items) if items.is_empty() => Ok(vec!["-delete".into(), "-keys".into()]),
            Value::Assoc(items) if items.is_empty() => Ok(vec!["-delete".into(), "-keys".into()]),
            // `SystemList = { a, b }` is `{ a = 0, b = 1 }`.
            Value::List(items) if system_list => items
                .iter()
                .enumerate()
                .map(|(i, v)| nested(v).map(|w| [w, i.to_string()]))
                .collect::<Result<Vec<_>, _>>()
                .map(|pairs| pairs.concat()),
            Value::List(items) => items.iter().map(nested).collect(),
            Value::Assoc(items) => items
                .iter()
                .map(|e| nested(&e.value).map(|v| [scalar_word(&e.key.node), v]))
                .collect::<Result<Vec<_>, _>>()
                .map(|pairs| pairs.concat()),
        };
        match words {
            Ok(w) => Some(w),
            Err(span) => {
                self.err(span, format!("value of {} is nested too deep for a command line: hacf -cftocmd converts one level of {{ }}", a.name.node));
                None
            }
        }
    }
}

/// Words a shell takes as they are; anything else is quoted.
fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | ':' | '@' | '%' | '+' | ',' | '-' | '='))
}

/// A name or string: quoted when the shell needs it, when it starts with
/// `-` (it is not an option) or when it would read back as an integer.
fn word(s: &str) -> String {
    if is_plain(s) && !s.starts_with('-') && s.parse::<i64>().is_err() {
        s.to_string()
    } else {
        quote(s)
    }
}

fn scalar_word(s: &Scalar) -> String {
    match s {
        Scalar::Int(i) => i.to_string(),
        Scalar::Str(s) => word(s),
    }
}

/// `"..."` with what a shell expands inside double quotes escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

// ---------------------------------------------------------------- canonical

/// `config` as [`cmd_to_config`] gives it back after [`config_to_cmd`]:
/// resources and resource dependencies in dump order, a group's
/// SystemList and AutoStartList before its other attributes, and a
/// SystemList without priorities numbered in order. Same meaning.
pub fn canonical(config: &Config) -> Config {
    let mut c = config.clone();
    c.sort_like_dump();
    for g in &mut c.groups {
        g.attrs = group_attr_order(&g.attrs).into_iter().cloned().collect();
        for a in &mut g.attrs {
            if a.name.node != "SystemList" {
                continue;
            }
            if let Value::List(items) = &a.value.node {
                if items.iter().all(|v| matches!(v.node, Value::Scalar(_))) {
                    let entries = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let Value::Scalar(s) = &v.node else { unreachable!("checked above") };
                            AssocEntry { key: Spanned::new(s.clone(), v.span), value: Spanned::new(Value::Scalar(Scalar::Int(i as i64)), v.span) }
                        })
                        .collect();
                    a.value.node = Value::Assoc(entries);
                }
            }
        }
    }
    c
}

// ---------------------------------------------------------------- cmd → cf

/// Shapes of attributes HAD itself defines, where not scalar (the shape
/// decides how a command's words are read).
const CLUSTER_SHAPES: &[(&str, Dimension)] = &[
    ("UserNames", Dimension::Association),
    ("Administrators", Dimension::Keylist),
    ("Operators", Dimension::Keylist),
    ("Guests", Dimension::Keylist),
];
const SYSTEM_SHAPES: &[(&str, Dimension)] = &[("Limits", Dimension::Association), ("DynamicLoad", Dimension::Scalar)];
const GROUP_SHAPES: &[(&str, Dimension)] = &[
    ("SystemList", Dimension::Association),
    ("AutoStartList", Dimension::Keylist),
    ("Administrators", Dimension::Keylist),
    ("Operators", Dimension::Keylist),
    ("Prerequisites", Dimension::Association),
    ("TriggersEnabled", Dimension::Keylist),
];
const RESOURCE_SHAPES: &[(&str, Dimension)] =
    &[("ArgList", Dimension::Vector), ("LogDbg", Dimension::Keylist), ("SupportedActions", Dimension::Keylist)];

/// A word of a command line and whether any of it was quoted (a quoted
/// number is a string).
#[derive(Debug, Clone)]
struct Word {
    text: String,
    quoted: bool,
}

impl Word {
    fn scalar(&self) -> Scalar {
        if self.quoted {
            Scalar::Str(self.text.clone())
        } else {
            scalar_from_word(self.text.clone())
        }
    }
    fn is(&self, option: &str) -> bool {
        !self.quoted && self.text == option
    }
}

/// Split a line as a shell would (blanks, `"..."` with `\"`, `\\`, `\$`,
/// `` \` ``, `'...'`, `\x`, `#` starting a comment). `Ok(None)` for a blank
/// or comment line.
fn split_line(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => break,
            _ => {}
        }
        let mut w = Word { text: String::new(), quoted: false };
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => {
                    w.quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err("unterminated \"quoted string\"".into()),
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(e @ ('"' | '\\' | '$' | '`')) => w.text.push(e),
                                Some(e) => {
                                    w.text.push('\\');
                                    w.text.push(e);
                                }
                                None => return Err("unterminated \"quoted string\"".into()),
                            },
                            Some(o) => w.text.push(o),
                        }
                    }
                }
                '\'' => {
                    w.quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err("unterminated 'quoted string'".into()),
                            Some('\'') => break,
                            Some(o) => w.text.push(o),
                        }
                    }
                }
                '\\' => match chars.next() {
                    Some(e) => {
                        w.quoted = true;
                        w.text.push(e);
                    }
                    None => return Err("backslash at the end of the line: a command takes one line".into()),
                },
                o => w.text.push(o),
            }
        }
        words.push(w);
    }
    Ok(words)
}

/// `# include "FILE"` (the quotes may be left out).
fn include_comment(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start().strip_prefix("include")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let words = split_line(rest).ok()?;
    match words.as_slice() {
        [w] => Some(w.text.clone()),
        _ => None,
    }
}

/// Build main.cf's model from main.cmd's text. `main_cmd` names the
/// commands' file in diagnostics; `main_cf` is the file the model stands
/// for: `# include` lines are read relative to its directory, through
/// `loader`, for the shapes their types declare.
pub fn cmd_to_config(main_cmd: &Path, text: &str, main_cf: &Path, loader: &mut dyn cf::Loader) -> Result<Config, Error> {
    let mut b = Builder {
        main_cmd: main_cmd.to_path_buf(),
        config: Config { files: vec![main_cf.to_path_buf()], ..Config::default() },
        diags: Vec::new(),
        resource_group: BTreeMap::new(),
        resource_type: BTreeMap::new(),
        local: BTreeSet::new(),
        shapes: BTreeMap::new(),
        line: 0,
    };
    // Includes first: the types they declare say how values are read.
    let dir = main_cf.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut type_diags = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(file) = include_comment(line) else { continue };
        let span = Span { file: FileId(0), line: i as u32 + 1, column: 1 };
        b.config.includes.push(cf::Include { path: Spanned::new(file.clone(), span), file: None });
        match cf::load(&dir.join(&file), loader) {
            Ok(types) => {
                for t in &types.types {
                    let decls = t.attrs.iter().map(|d| (d.name.node.clone(), d.dim)).collect::<BTreeMap<_, _>>();
                    b.shapes.entry(t.name.node.clone()).or_insert(decls);
                }
            }
            Err(e) => type_diags.extend(e.0),
        }
    }
    if !type_diags.is_empty() {
        return Err(Error::Config(CfError(type_diags)));
    }
    for (i, line) in text.lines().enumerate() {
        b.line = i as u32 + 1;
        match split_line(line) {
            Ok(words) if words.is_empty() => {}
            Ok(words) => b.command(&words),
            Err(msg) => b.err(msg),
        }
    }
    if b.diags.is_empty() {
        Ok(b.config)
    } else {
        Err(Error::Commands(b.diags))
    }
}

/// Apply one configuration command (`hagrp -add G`, `hares -modify R A
/// V...`, `hares -link P C`, ...; `words[0]` is the command) to a loaded
/// configuration, as HAD does at run time between `haconf -makerw` and
/// `haconf -dump`. The words come as the command line gave them: a number
/// is a number. New items are placed in main.cf (file 0). `locals` holds
/// the (object, attribute) pairs made per-system with `-local` and not yet
/// given a value: kept by the caller between commands.
pub fn apply_words(config: Config, words: &[String], locals: &mut BTreeSet<(String, String)>) -> Result<Config, String> {
    if words.is_empty() {
        return Err("empty command".into());
    }
    let mut b = Builder {
        main_cmd: PathBuf::from("command"),
        config,
        diags: Vec::new(),
        resource_group: BTreeMap::new(),
        resource_type: BTreeMap::new(),
        local: BTreeSet::new(),
        shapes: BTreeMap::new(),
        line: 1,
    };
    for t in &b.config.types {
        let decls = t.attrs.iter().map(|d| (d.name.node.clone(), d.dim)).collect::<BTreeMap<_, _>>();
        b.shapes.entry(t.name.node.clone()).or_insert(decls);
    }
    let mut local = BTreeSet::new();
    for g in &b.config.groups {
        for a in g.attrs.iter().filter(|a| a.system.is_some()) {
            local.insert((Obj::Group(g.name.node.clone()), a.name.node.clone()));
        }
        for r in &g.resources {
            b.resource_group.insert(r.name.node.clone(), g.name.node.clone());
            b.resource_type.insert(r.name.node.clone(), r.type_name.node.clone());
            for a in r.attrs.iter().filter(|a| a.system.is_some()) {
                local.insert((Obj::Resource(r.name.node.clone()), a.name.node.clone()));
            }
        }
    }
    for (obj, attr) in locals.iter() {
        let o = if obj.is_empty() {
            Obj::Cluster
        } else if b.resource_group.contains_key(obj) {
            Obj::Resource(obj.clone())
        } else if b.config.group(obj).is_some() {
            Obj::Group(obj.clone())
        } else {
            Obj::System(obj.clone())
        };
        local.insert((o, attr.clone()));
    }
    b.local = local;
    let words: Vec<Word> = words.iter().map(|w| Word { text: w.clone(), quoted: false }).collect();
    b.command(&words);
    if b.diags.is_empty() {
        for (o, attr) in &b.local {
            let name = match o {
                Obj::Cluster => String::new(),
                Obj::System(n) | Obj::Group(n) | Obj::Resource(n) => n.clone(),
            };
            locals.insert((name, attr.clone()));
        }
        Ok(b.config)
    } else {
        Err(b.diags.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))
    }
}

/// What an attribute belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Obj {
    Cluster,
    System(String),
    Group(String),
    Resource(String),
}

struct Builder {
    main_cmd: PathBuf,
    config: Config,
    diags: Vec<CmdDiagnostic>,
    resource_group: BTreeMap<String, String>,
    resource_type: BTreeMap<String, String>,
    /// Attributes made per-system with `-local`.
    local: BTreeSet<(Obj, String)>,
    /// Type name → attribute → shape, from the included type files.
    shapes: BTreeMap<String, BTreeMap<String, Dimension>>,
    line: u32,
}

const USAGE_HACLUS: &str = "haclus -modify ATTR VALUE... [-sys SYS] | haclus -local ATTR";
const USAGE_HASYS: &str = "hasys -add SYS | hasys -modify SYS ATTR VALUE... [-sys SYS] | hasys -local SYS ATTR";
const USAGE_HAGRP: &str =
    "hagrp -add GROUP | hagrp -modify GROUP ATTR VALUE... [-sys SYS] | hagrp -local GROUP ATTR | hagrp -link PARENT CHILD online|offline local|global|remote [soft|firm|hard] | hagrp -unlink PARENT CHILD | hagrp -delete GROUP";
const USAGE_HARES: &str =
    "hares -add RES TYPE GROUP | hares -modify RES ATTR VALUE... [-sys SYS] | hares -local RES ATTR | hares -link PARENT CHILD | hares -unlink PARENT CHILD | hares -delete RES";

impl Builder {
    fn err(&mut self, message: impl Into<String>) {
        self.diags.push(CmdDiagnostic { file: self.main_cmd.clone(), line: self.line, message: message.into() });
    }

    fn span(&self) -> Span {
        Span { file: FileId(0), line: self.line, column: 1 }
    }

    fn name(&self, w: &Word) -> Spanned<String> {
        Spanned::new(w.text.clone(), self.span())
    }

    fn command(&mut self, words: &[Word]) {
        let prog = words[0].text.as_str();
        let op = words.get(1).filter(|w| !w.quoted).map(|w| w.text.as_str()).unwrap_or("");
        let args = words.get(2..).unwrap_or(&[]);
        let usage = match prog {
            "haclus" => USAGE_HACLUS,
            "hasys" => USAGE_HASYS,
            "hagrp" => USAGE_HAGRP,
            "hares" => USAGE_HARES,
            _ => return self.err(format!("unknown command {prog}: main.cmd holds haclus, hasys, hagrp and hares commands")),
        };
        let ok = match (prog, op) {
            ("haclus", "-modify") => self.modify(Obj::Cluster, args),
            ("haclus", "-local") => self.local(Obj::Cluster, args),
            ("hasys", "-add") => self.add_system(args),
            ("hasys", "-modify") => self.with_object(args, |b, n| b.system_obj(n), Self::modify),
            ("hasys", "-local") => self.with_object(args, |b, n| b.system_obj(n), Self::local),
            ("hagrp", "-add") => self.add_group(args),
            ("hagrp", "-modify") => self.with_object(args, |b, n| b.group_obj(n), Self::modify),
            ("hagrp", "-local") => self.with_object(args, |b, n| b.group_obj(n), Self::local),
            ("hagrp", "-link") => self.link_groups(args),
            ("hares", "-add") => self.add_resource(args),
            ("hares", "-modify") => self.with_object(args, |b, n| b.resource_obj(n), Self::modify),
            ("hares", "-local") => self.with_object(args, |b, n| b.resource_obj(n), Self::local),
            ("hares", "-link") => self.link_resources(args),
            ("hares", "-unlink") => self.unlink_resources(args),
            ("hares", "-delete") => self.delete_resource(args),
            ("hagrp", "-unlink") => self.unlink_groups(args),
            ("hagrp", "-delete") => self.delete_group(args),
            _ => {
                let shown = words.get(1).map(|w| w.text.as_str()).unwrap_or("");
                let what = if shown.is_empty() { "missing option".to_string() } else { format!("unknown option {shown}") };
                return self.err(format!("{prog}: {what}; expected {usage}"));
            }
        };
        if let Err(msg) = ok {
            self.err(format!("{prog} {op}: {msg}"));
        }
    }

    fn count(args: &[Word], n: usize, usage: &str) -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("wrong number of arguments ({} given): {usage}", args.len()))
        }
    }

    /// `OBJ REST...`: resolve OBJ, then run `f` on the rest.
    fn with_object(
        &mut self,
        args: &[Word],
        resolve: impl Fn(&Self, &str) -> Result<Obj, String>,
        f: impl Fn(&mut Self, Obj, &[Word]) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(first) = args.first() else { return Err("wrong number of arguments (0 given): name the object first".into()) };
        let obj = resolve(self, &first.text)?;
        f(self, obj, &args[1..])
    }

    fn system_obj(&self, n: &str) -> Result<Obj, String> {
        if self.config.systems.iter().any(|s| s.name.node == n) {
            Ok(Obj::System(n.into()))
        } else {
            Err(format!("unknown system {n} (no hasys -add {n} before)"))
        }
    }
    fn group_obj(&self, n: &str) -> Result<Obj, String> {
        if self.config.group(n).is_some() {
            Ok(Obj::Group(n.into()))
        } else {
            Err(format!("unknown group {n} (no hagrp -add {n} before)"))
        }
    }
    fn resource_obj(&self, n: &str) -> Result<Obj, String> {
        if self.resource_group.contains_key(n) {
            Ok(Obj::Resource(n.into()))
        } else {
            Err(format!("unknown resource {n} (no hares -add {n} before)"))
        }
    }

    fn add_system(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 1, "hasys -add SYS")?;
        let n = &args[0].text;
        if self.system_obj(n).is_ok() {
            return Err(format!("system {n} already exists"));
        }
        let name = self.name(&args[0]);
        self.config.systems.push(cf::System { name, attrs: Vec::new() });
        Ok(())
    }

    fn add_group(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 1, "hagrp -add GROUP")?;
        let n = &args[0].text;
        if self.group_obj(n).is_ok() {
            return Err(format!("group {n} already exists"));
        }
        let name = self.name(&args[0]);
        self.config.groups.push(cf::Group { name, attrs: Vec::new(), resources: Vec::new(), resource_deps: Vec::new(), group_deps: Vec::new() });
        Ok(())
    }

    fn add_resource(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 3, "hares -add RES TYPE GROUP")?;
        let (r, t, g) = (&args[0].text, &args[1].text, &args[2].text);
        if let Some(other) = self.resource_group.get(r) {
            return Err(format!("resource {r} already exists (in group {other})"));
        }
        self.group_obj(g)?;
        let (name, type_name) = (self.name(&args[0]), self.name(&args[1]));
        let group = self.config.groups.iter_mut().find(|x| x.name.node == *g).expect("group checked");
        group.resources.push(cf::Resource { type_name, name, attrs: Vec::new() });
        self.resource_group.insert(r.clone(), g.clone());
        self.resource_type.insert(r.clone(), t.clone());
        Ok(())
    }

    fn link_resources(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 2, "hares -link PARENT CHILD")?;
        self.resource_obj(&args[0].text)?;
        self.resource_obj(&args[1].text)?;
        let g = self.resource_group[&args[0].text].clone();
        let (parent, child) = (self.name(&args[0]), self.name(&args[1]));
        let group = self.config.groups.iter_mut().find(|x| x.name.node == g).expect("resource's group exists");
        group.resource_deps.push(cf::ResourceDep { parent, child });
        Ok(())
    }

    fn unlink_resources(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 2, "hares -unlink PARENT CHILD")?;
        self.resource_obj(&args[0].text)?;
        let g = self.resource_group[&args[0].text].clone();
        let group = self.config.groups.iter_mut().find(|x| x.name.node == g).expect("resource's group exists");
        let before = group.resource_deps.len();
        group.resource_deps.retain(|d| !(d.parent.node == args[0].text && d.child.node == args[1].text));
        if group.resource_deps.len() == before {
            return Err(format!("{} does not require {}", args[0].text, args[1].text));
        }
        Ok(())
    }

    /// A resource goes, with its links and its per-system attributes.
    fn delete_resource(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 1, "hares -delete RES")?;
        let r = args[0].text.clone();
        self.resource_obj(&r)?;
        let g = self.resource_group.remove(&r).expect("resolved");
        self.resource_type.remove(&r);
        let group = self.config.groups.iter_mut().find(|x| x.name.node == g).expect("resource's group exists");
        group.resources.retain(|x| x.name.node != r);
        group.resource_deps.retain(|d| d.parent.node != r && d.child.node != r);
        self.local.retain(|(o, _)| *o != Obj::Resource(r.clone()));
        Ok(())
    }

    fn unlink_groups(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 2, "hagrp -unlink PARENT CHILD")?;
        self.group_obj(&args[0].text)?;
        let group = self.config.groups.iter_mut().find(|x| x.name.node == args[0].text).expect("group checked");
        let before = group.group_deps.len();
        group.group_deps.retain(|d| d.group.node != args[1].text);
        if group.group_deps.len() == before {
            return Err(format!("group {} does not require group {}", args[0].text, args[1].text));
        }
        Ok(())
    }

    /// An empty group goes (its resources must go first, as in VCS), and
    /// with it the dependencies on it.
    fn delete_group(&mut self, args: &[Word]) -> Result<(), String> {
        Self::count(args, 1, "hagrp -delete GROUP")?;
        let g = args[0].text.clone();
        self.group_obj(&g)?;
        if self.resource_group.values().any(|x| *x == g) {
            return Err(format!("group {g} still has resources: hares -delete them first"));
        }
        if let Some(p) = self.config.groups.iter().find(|x| x.group_deps.iter().any(|d| d.group.node == g)) {
            return Err(format!("group {} requires group {g}: hagrp -unlink {} {g} first", p.name.node, p.name.node));
        }
        self.config.groups.retain(|x| x.name.node != g);
        self.local.retain(|(o, _)| *o != Obj::Group(g.clone()));
        Ok(())
    }

    fn link_groups(&mut self, args: &[Word]) -> Result<(), String> {
        if !(4..=5).contains(&args.len()) {
            return Self::count(args, 5, "hagrp -link PARENT CHILD online|offline local|global|remote [soft|firm|hard]");
        }
        self.group_obj(&args[0].text)?;
        self.group_obj(&args[1].text)?;
        let category = cf::DepCategory::from_keyword(&args[2].text).ok_or_else(|| format!("{} is not online or offline", args[2].text))?;
        let location =
            cf::DepLocation::from_keyword(&args[3].text).ok_or_else(|| format!("{} is not local, global or remote", args[3].text))?;
        let kind = match args.get(4) {
            Some(w) => Some(Spanned::new(
                cf::DepKind::from_keyword(&w.text).ok_or_else(|| format!("{} is not soft, firm or hard", w.text))?,
                self.span(),
            )),
            None => None,
        };
        let dep = cf::GroupDep {
            group: self.name(&args[1]),
            category: Spanned::new(category, self.span()),
            location: Spanned::new(location, self.span()),
            kind,
        };
        let group = self.config.groups.iter_mut().find(|x| x.name.node == args[0].text).expect("group checked");
        group.group_deps.push(dep);
        Ok(())
    }

    fn local(&mut self, obj: Obj, args: &[Word]) -> Result<(), String> {
        Self::count(args, 1, "-local [OBJECT] ATTR")?;
        self.local.insert((obj, args[0].text.clone()));
        Ok(())
    }

    fn shape(&self, obj: &Obj, attr: &str) -> Option<Dimension> {
        let table = |t: &[(&str, Dimension)]| t.iter().find(|(n, _)| *n == attr).map(|(_, d)| *d);
        match obj {
            Obj::Cluster => table(CLUSTER_SHAPES),
            Obj::System(_) => table(SYSTEM_SHAPES),
            Obj::Group(_) => table(GROUP_SHAPES),
            Obj::Resource(r) => self
                .resource_type
                .get(r)
                .and_then(|t| self.shapes.get(t))
                .and_then(|decls| decls.get(attr).copied())
                .or_else(|| table(RESOURCE_SHAPES)),
        }
    }

    /// `ATTR VALUE... [-sys SYS]`.
    fn modify(&mut self, obj: Obj, args: &[Word]) -> Result<(), String> {
        let Some(attr) = args.first() else { return Err("wrong number of arguments: no attribute".into()) };
        let mut values = &args[1..];
        let mut system = None;
        if values.len() >= 2 && values[values.len() - 2].is("-sys") {
            let sys = &values[values.len() - 1];
            self.system_obj(&sys.text)?;
            system = Some(self.name(sys));
            values = &values[..values.len() - 2];
        }
        if obj == Obj::Cluster && attr.text == "ClusterName" && system.is_none() {
            Self::count(values, 1, "haclus -modify ClusterName NAME")?;
            let name = self.name(&values[0]);
            match &mut self.config.cluster {
                Some(c) => c.name = name,
                None => self.config.cluster = Some(cf::Cluster { name, attrs: Vec::new() }),
            }
            return Ok(());
        }
        let is_local = self.local.contains(&(obj.clone(), attr.text.clone()));
        match (&system, is_local) {
            (Some(_), false) => return Err(format!("attribute {} is not local: make it so with -local first", attr.text)),
            (None, true) => return Err(format!("attribute {} is local: give its value for one system with -sys SYS", attr.text)),
            _ => {}
        }
        if let Some(w) = values.first().filter(|w| w.is("-add") || w.is("-update") || w.is("-delete")) {
            if !(values.len() == 2 && w.is("-delete") && values[1].is("-keys")) {
                return Err(format!("{} is not supported in main.cmd: give the whole value (or -delete -keys for an empty one)", w.text));
            }
        }
        let value = self.value(&obj, &attr.text, values)?;
        let new = Attr { name: self.name(attr), system, value: Spanned::new(value, self.span()) };
        let attrs = match &obj {
            Obj::Cluster => match &mut self.config.cluster {
                Some(c) => &mut c.attrs,
                None => return Err("no cluster yet: haclus -modify ClusterName NAME comes first".into()),
            },
            Obj::System(n) => &mut self.config.systems.iter_mut().find(|s| s.name.node == *n).expect("resolved").attrs,
            Obj::Group(n) => &mut self.config.groups.iter_mut().find(|g| g.name.node == *n).expect("resolved").attrs,
            Obj::Resource(n) => {
                let g = self.resource_group[n].clone();
                let group = self.config.groups.iter_mut().find(|x| x.name.node == g).expect("resource's group exists");
                &mut group.resources.iter_mut().find(|r| r.name.node == *n).expect("resolved").attrs
            }
        };
        // Set again: the new value replaces the old one, where it was.
        match attrs.iter_mut().find(|a| a.name.node == new.name.node && a.system == new.system) {
            Some(old) => *old = new,
            None => attrs.push(new),
        }
        Ok(())
    }

    fn value(&self, obj: &Obj, attr: &str, values: &[Word]) -> Result<Value, String> {
        let empty = values.len() == 2 && values[0].is("-delete") && values[1].is("-keys");
        let scalar = |w: &Word| Spanned::new(Value::Scalar(w.scalar()), self.span());
        let shape = self.shape(obj, attr).unwrap_or(if values.len() == 1 { Dimension::Scalar } else { Dimension::Vector });
        match shape {
            _ if values.is_empty() => Err(format!("no value for {attr} (an empty list or association is -delete -keys)")),
            Dimension::Scalar if empty => Err(format!("{attr} is a scalar: -delete -keys empties lists and associations only")),
            Dimension::Scalar if values.len() != 1 => {
                Err(format!("wrong number of arguments: {attr} is a scalar and takes one value, {} given", values.len()))
            }
            Dimension::Scalar => Ok(Value::Scalar(values[0].scalar())),
            _ if empty => Ok(Value::List(Vec::new())),
            Dimension::Vector | Dimension::Keylist => Ok(Value::List(values.iter().map(scalar).collect())),
            Dimension::Association if !values.len().is_multiple_of(2) => {
                Err(format!("wrong number of arguments: {attr} is an association and takes key value pairs, {} words given", values.len()))
            }
            Dimension::Association => Ok(Value::Assoc(
                values
                    .chunks(2)
                    .map(|kv| AssocEntry { key: Spanned::new(kv[0].scalar(), self.span()), value: scalar(&kv[1]) })
                    .collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_for_the_shell() {
        assert_eq!(word("eth0"), "eth0");
        assert_eq!(word("/usr/sbin/nginx"), "/usr/sbin/nginx");
        assert_eq!(word("10.0.0.5"), "10.0.0.5");
        assert_eq!(word("10"), "\"10\"");
        assert_eq!(word(""), "\"\"");
        assert_eq!(word("-Xmx2g"), "\"-Xmx2g\"");
        assert_eq!(word("-c 'exec sleep'"), "\"-c 'exec sleep'\"");
        assert_eq!(word(r#"a"b\c$d`e"#), r#""a\"b\\c\$d\`e""#);
        assert_eq!(scalar_word(&Scalar::Int(-5)), "-5");
    }

    #[test]
    fn splitting_like_a_shell() {
        let w = split_line(r#"hares -modify r A "x \"y\" \\ \$" 'a b' c\ d 10 "10" # note"#).unwrap();
        let texts: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["hares", "-modify", "r", "A", r#"x "y" \ $"#, "a b", "c d", "10", "10"]);
        assert!(!w[7].quoted && w[8].quoted);
        assert_eq!(w[7].scalar(), Scalar::Int(10));
        assert_eq!(w[8].scalar(), Scalar::Str("10".into()));
        assert!(split_line("# comment").unwrap().is_empty());
        assert!(split_line(r#"hagrp -add "g"#).is_err());
        for s in ["plain", "", "-x", "10", "a b", r#"q"\$`"#, "tab\there"] {
            let w = split_line(&word(s)).unwrap();
            assert_eq!(w.len(), 1, "{s:?}");
            assert_eq!(w[0].text, s);
        }
    }

    #[test]
    fn include_comments() {
        assert_eq!(include_comment(r#"# include "types.cf""#).as_deref(), Some("types.cf"));
        assert_eq!(include_comment("#include Site.cf").as_deref(), Some("Site.cf"));
        assert_eq!(include_comment("# included by hand"), None);
        assert_eq!(include_comment("hagrp -add g"), None);
    }
}
