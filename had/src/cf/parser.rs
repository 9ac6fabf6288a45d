//! main.cf / types.cf parser.
//!
//! Grammar (one declaration per line; attributes inside parentheses may
//! share lines):
//!
//! ```text
//! file      := decl*
//! decl      := "include" STRING
//!            | ("cluster" | "system" | "group") name attrs?
//!            | "type" name "(" attrdecl* ")"
//!            | "requires" "group" name (online|offline) (local|global|remote) (soft|firm|hard)?
//!            | name "requires" name              -- inside a group
//!            | name name attrs?                  -- resource TYPE NAME, inside a group
//! attrs     := "(" (attrname "=" value)* ")"
//! attrname  := name | name "@" name              -- localized to a system
//! attrdecl  := ("static" | "temp")* (str|int|boolean|float|keylist) name ("[]" | "{}")? ("=" value)?
//! value     := WORD | STRING | "{" (value ","?)* "}" | "{" (scalar "=" value ","?)* "}"
//! name      := WORD | STRING
//! ```
//!
//! A group owns everything after its `group` line up to the next top-level
//! declaration. Errors are recorded and parsing resumes at the next line,
//! closing parenthesis or top-level keyword, so one pass reports every
//! problem. Nothing recurses deeper than [`MAX_NESTING`] values, whatever
//! the input.

use super::diag::{CfError, Diagnostic};
use super::lexer::{describe, lex, Tok, Token};
use super::model::*;
use super::span::{FileId, Span, Spanned};
use std::io;
use std::path::{Component, Path, PathBuf};

/// Deepest `{` nesting accepted; VCS values use one level, two at most.
pub const MAX_NESTING: usize = 8;
/// Deepest include chain accepted (a loader could invent endless paths).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Past this many problems in one file the rest add nothing but noise.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// Words that start declarations. Met at the start of a line where an
/// attribute was expected, one of them means a `)` is missing.
const TOP_KEYWORDS: [&str; 6] = ["include", "cluster", "system", "group", "type", "requires"];

/// Reads the files that `include` names. Implemented for closures so tests
/// can serve files from memory.
pub trait Loader {
    fn read(&mut self, path: &Path) -> io::Result<String>;
}

impl<F: FnMut(&Path) -> io::Result<String>> Loader for F {
    fn read(&mut self, path: &Path) -> io::Result<String> {
        self(path)
    }
}

/// Reads from the file system.
pub struct FsLoader;

impl Loader for FsLoader {
    fn read(&mut self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Parse one file's text without following its includes (their
/// [`Include::file`] stay `None`).
pub fn parse_str(path: &Path, text: &str) -> Result<Config, CfError> {
    let (config, diags) = parse_str_with_diags(path, text);
    finish(config, diags)
}

/// [`parse_str`], returning what could be parsed along with the problems.
pub fn parse_str_with_diags(path: &Path, text: &str) -> (Config, Vec<Diagnostic>) {
    let mut config = Config::default();
    let mut diags = Vec::new();
    config.files.push(path.to_path_buf());
    parse_into(&mut config, FileId(0), text, &mut diags);
    (config, diags)
}

/// Read `path` (main.cf) and every file it includes, nested, through
/// `loader`. Include paths are relative to the including file's directory.
/// A file included twice is read once; a cycle, a missing file or too deep
/// a chain is a diagnostic at the `include` line.
pub fn load(path: &Path, loader: &mut dyn Loader) -> Result<Config, CfError> {
    let (config, diags) = load_with_diags(path, loader);
    finish(config, diags)
}

/// [`load`], returning what could be parsed along with the problems.
pub fn load_with_diags(path: &Path, loader: &mut dyn Loader) -> (Config, Vec<Diagnostic>) {
    let mut config = Config::default();
    let mut diags = Vec::new();
    let path = normalize(path);
    match loader.read(&path) {
        Ok(text) => {
            let mut stack = vec![path.clone()];
            load_file(&mut config, &mut diags, loader, path, &text, &mut stack);
        }
        Err(e) => diags.push(Diagnostic { file: path, line: 0, column: 0, message: format!("cannot read: {e}") }),
    }
    (config, diags)
}

fn finish(config: Config, diags: Vec<Diagnostic>) -> Result<Config, CfError> {
    if diags.is_empty() {
        Ok(config)
    } else {
        Err(CfError(diags))
    }
}

/// Parse one file into `config`, then the files it includes, depth first.
/// `stack` holds the chain of files being read, for cycle detection.
fn load_file(
    config: &mut Config,
    diags: &mut Vec<Diagnostic>,
    loader: &mut dyn Loader,
    path: PathBuf,
    text: &str,
    stack: &mut Vec<PathBuf>,
) {
    let id = FileId(config.files.len() as u32);
    config.files.push(path.clone());
    let first_include = config.includes.len();
    parse_into(config, id, text, diags);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for idx in first_include..config.includes.len() {
        if config.includes[idx].path.span.file != id {
            continue; // added by a nested file already loaded below
        }
        let inc = config.includes[idx].path.clone();
        let target = normalize(&dir.join(&inc.node));
        let err = |message: String| Diagnostic {
            file: path.clone(),
            line: inc.span.line,
            column: inc.span.column,
            message,
        };
        if let Some(pos) = stack.iter().position(|p| *p == target) {
            let chain: Vec<String> =
                stack[pos..].iter().chain(std::iter::once(&target)).map(|p| p.display().to_string()).collect();
            diags.push(err(format!("include cycle: {}", chain.join(" -> "))));
            continue;
        }
        if let Some(existing) = config.files.iter().position(|p| *p == target) {
            config.includes[idx].file = Some(FileId(existing as u32));
            continue;
        }
        if stack.len() >= MAX_INCLUDE_DEPTH {
            diags.push(err(format!("includes nest deeper than {MAX_INCLUDE_DEPTH} files")));
            continue;
        }
        match loader.read(&target) {
            Err(e) => diags.push(err(format!("cannot read included file {}: {e}", target.display()))),
            Ok(text) => {
                config.includes[idx].file = Some(FileId(config.files.len() as u32));
                stack.push(target.clone());
                load_file(config, diags, loader, target, &text, stack);
                stack.pop();
            }
        }
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (the loader may
/// not be one), so the same file is recognised however it is named.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn parse_into(config: &mut Config, file: FileId, text: &str, diags: &mut Vec<Diagnostic>) {
    let path = config.files.get(file.0 as usize).cloned().unwrap_or_default();
    let mut lex_errs = Vec::new();
    let toks = lex(file, text, &mut lex_errs);
    let mut p = Parser { toks, pos: 0, path, diags: Vec::new(), config, group: None };
    for (span, msg) in lex_errs {
        p.err(span, msg);
    }
    p.file();
    let mut found = p.diags;
    // Lexer problems were recorded first; show everything in file order.
    found.sort_by_key(|d| (d.line, d.column));
    if found.len() > MAX_DIAGNOSTICS_PER_FILE {
        let last = found[MAX_DIAGNOSTICS_PER_FILE - 1].clone();
        found.truncate(MAX_DIAGNOSTICS_PER_FILE);
        found.push(Diagnostic {
            message: "too many problems; the rest of the file is not reported".into(),
            ..last
        });
    }
    diags.extend(found);
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    path: PathBuf,
    diags: Vec<Diagnostic>,
    config: &'a mut Config,
    /// Index in `config.groups` of the group being filled.
    group: Option<usize>,
}

/// Parsing of the current declaration failed; it was reported.
type Res<T> = Result<T, ()>;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // lex() always ends with Eof and bump() never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.toks[(self.pos + ahead).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn at_eof(&self) -> bool {
        self.peek().tok == Tok::Eof
    }

    fn err(&mut self, span: Span, message: impl Into<String>) {
        // Past the limit, keep parsing (cheap) but stop collecting.
        if self.diags.len() <= MAX_DIAGNOSTICS_PER_FILE {
            self.diags.push(Diagnostic {
                file: self.path.clone(),
                line: span.line,
                column: span.column,
                message: message.into(),
            });
        }
    }

    /// Report "expected WHAT, found TOKEN" at the next token.
    fn expected<T>(&mut self, what: &str) -> Res<T> {
        let t = self.peek().clone();
        self.err(t.span, format!("expected {what}, found {}", describe(&t.tok)));
        Err(())
    }

    /// Skip the rest of the current line.
    fn skip_line(&mut self) {
        while !self.at_eof() && !self.peek().line_start {
            self.bump();
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(x) if x == w)
    }

    fn top_keyword_at_line_start(&self) -> Option<String> {
        let t = self.peek();
        match &t.tok {
            Tok::Word(w) if t.line_start && TOP_KEYWORDS.contains(&w.as_str()) => Some(w.clone()),
            _ => None,
        }
    }

    /// A name: a bare word or a quoted string. A top-level keyword opening
    /// the next line is the next declaration, not a missing name.
    fn name(&mut self, what: &str) -> Res<Spanned<String>> {
        if self.top_keyword_at_line_start().is_none() {
            let t = self.peek().clone();
            if let Tok::Word(s) | Tok::Str(s) = t.tok {
                self.bump();
                return Ok(Spanned::new(s, t.span));
            }
        }
        self.expected(what)
    }

    fn file(&mut self) {
        let mut first = true;
        while !self.at_eof() {
            let t = self.peek().clone();
            if !t.line_start && !first {
                self.err(t.span, format!("expected the end of the line, found {}", describe(&t.tok)));
                self.skip_line();
                continue;
            }
            first = false;
            let res = match &t.tok {
                Tok::Word(w) if w == "include" => self.include(),
                Tok::Word(w) if w == "cluster" => self.cluster(),
                Tok::Word(w) if w == "system" => self.system(),
                Tok::Word(w) if w == "group" => self.group(),
                Tok::Word(w) if w == "type" => self.type_def(),
                Tok::Word(w) if w == "requires" => self.group_dep(),
                Tok::Word(_) | Tok::Str(_) => self.resource_or_dep(),
                _ => {
                    self.bump();
                    self.err(
                        t.span,
                        format!(
                            "expected a declaration (include, cluster, system, group, type, a resource or a dependency), found {}",
                            describe(&t.tok)
                        ),
                    );
                    Err(())
                }
            };
            if res.is_err() {
                self.skip_line();
            }
        }
    }

    fn include(&mut self) -> Res<()> {
        self.bump();
        self.group = None;
        let t = self.peek().clone();
        match t.tok {
            Tok::Str(s) if !t.line_start => {
                self.bump();
                self.config.includes.push(Include { path: Spanned::new(s, t.span), file: None });
                Ok(())
            }
            _ => self.expected("a quoted file name after `include`"),
        }
    }

    fn cluster(&mut self) -> Res<()> {
        self.bump();
        self.group = None;
        let name = self.name("a cluster name after `cluster`")?;
        let attrs = self.attrs(&format!("cluster {}", name.node))?;
        if let Some(first) = &self.config.cluster {
            let at = first.name.span;
            self.err(
                name.span,
                format!("a second cluster declaration; cluster {} is declared at line {}", first.name.node, at.line),
            );
        } else {
            self.config.cluster = Some(Cluster { name, attrs });
        }
        Ok(())
    }

    fn system(&mut self) -> Res<()> {
        self.bump();
        self.group = None;
        let name = self.name("a system name after `system`")?;
        let attrs = self.attrs(&format!("system {}", name.node))?;
        self.config.systems.push(System { name, attrs });
        Ok(())
    }

    fn group(&mut self) -> Res<()> {
        self.bump();
        self.group = None;
        let name = self.name("a group name after `group`")?;
        let attrs = self.attrs(&format!("group {}", name.node))?;
        self.config.groups.push(Group {
            name,
            attrs,
            resources: Vec::new(),
            resource_deps: Vec::new(),
            group_deps: Vec::new(),
        });
        self.group = Some(self.config.groups.len() - 1);
        Ok(())
    }

    /// The group a resource or dependency at `span` belongs to.
    fn current_group(&mut self, span: Span, what: &str) -> Res<usize> {
        match self.group {
            Some(g) => Ok(g),
            None => {
                self.err(span, format!("{what} outside a group: expected a `group` declaration before it"));
                Err(())
            }
        }
    }

    fn group_dep(&mut self) -> Res<()> {
        let req = self.bump();
        if !self.is_word("group") {
            return self.expected("`group` after `requires` (a resource dependency is written PARENT requires CHILD)");
        }
        self.bump();
        let group = self.name("the name of the group depended on")?;
        let category = self.keyword("online or offline", DepCategory::from_keyword)?;
        let location = self.keyword("local, global or remote", DepLocation::from_keyword)?;
        let kind = if matches!(self.peek().tok, Tok::Word(_)) && !self.peek().line_start {
            Some(self.keyword("soft, firm or hard", DepKind::from_keyword)?)
        } else {
            None
        };
        let g = self.current_group(req.span, "a group dependency")?;
        self.config.groups[g].group_deps.push(GroupDep { group, category, location, kind });
        Ok(())
    }

    /// One of a set of keywords on the current line.
    fn keyword<K>(&mut self, what: &str, read: impl Fn(&str) -> Option<K>) -> Res<Spanned<K>> {
        let t = self.peek().clone();
        if let Tok::Word(w) = &t.tok {
            if !t.line_start {
                if let Some(k) = read(w) {
                    self.bump();
                    return Ok(Spanned::new(k, t.span));
                }
            }
        }
        self.expected(what)
    }

    fn resource_or_dep(&mut self) -> Res<()> {
        let first = self.name("a name")?;
        if self.is_word("requires") && !self.peek().line_start {
            self.bump();
            let child = self.name(&format!("the name of the resource {} requires", first.node))?;
            let g = self.current_group(first.span, "a resource dependency")?;
            self.config.groups[g].resource_deps.push(ResourceDep { parent: first, child });
            return Ok(());
        }
        if self.peek().line_start {
            return self.expected(&format!("a resource name after the type {}, or `requires`", first.node));
        }
        let name = self.name(&format!("a resource name after the type {}, or `requires`", first.node))?;
        let attrs = self.attrs(&format!("resource {}", name.node))?;
        let g = self.current_group(first.span, "a resource declaration")?;
        self.config.groups[g].resources.push(Resource { type_name: first, name, attrs });
        Ok(())
    }

    fn type_def(&mut self) -> Res<()> {
        self.bump();
        self.group = None;
        let name = self.name("a type name after `type`")?;
        if self.peek().tok != Tok::LParen {
            return self.expected(&format!("`(` opening the attributes of type {}", name.node));
        }
        let open = self.bump().span;
        let owner = format!("type {}", name.node);
        let mut attrs = Vec::new();
        while self.block_continues(&owner, open)? {
            let before = self.pos;
            match self.attr_decl() {
                Ok(d) => attrs.push(d),
                Err(()) => self.recover_in_block(before),
            }
        }
        self.config.types.push(TypeDef { name, attrs });
        Ok(())
    }

    /// Optional `( attr = value ... )`.
    fn attrs(&mut self, owner: &str) -> Res<Vec<Attr>> {
        let mut attrs = Vec::new();
        if self.peek().tok != Tok::LParen {
            return Ok(attrs);
        }
        let open = self.bump().span;
        while self.block_continues(owner, open)? {
            let before = self.pos;
            match self.attr() {
                Ok(a) => attrs.push(a),
                Err(()) => self.recover_in_block(before),
            }
        }
        Ok(attrs)
    }

    /// Inside `( ... )`: true when an entry follows, false after the closing
    /// `)`. A missing `)` is reported (the block keeps what it read).
    fn block_continues(&mut self, owner: &str, open: Span) -> Res<bool> {
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::RParen => {
                    self.bump();
                    return Ok(false);
                }
                Tok::Eof => {
                    self.expected::<()>(&format!(
                        "`)` closing the attributes of {owner} opened at line {}",
                        open.line
                    ))
                    .ok();
                    return Ok(false);
                }
                Tok::Word(w) if t.line_start && TOP_KEYWORDS.contains(&w.as_str()) => {
                    self.err(
                        t.span,
                        format!("expected `)` closing the attributes of {owner} opened at line {}, found `{w}`", open.line),
                    );
                    // Not consumed: the keyword starts the next declaration.
                    return Ok(false);
                }
                Tok::Word(_) | Tok::Str(_) => return Ok(true),
                other => {
                    let found = describe(other);
                    self.bump();
                    self.err(t.span, format!("expected `)` or an attribute name, found {found}"));
                    self.sync_in_block();
                }
            }
        }
    }

    /// After a failed entry that started at token `before`: always move on
    /// (an entry that failed on its first token would be retried forever),
    /// then resume at the next line or `)`.
    fn recover_in_block(&mut self, before: usize) {
        if self.pos == before {
            self.bump();
        }
        self.sync_in_block();
    }

    /// After an error inside `( ... )`: resume at the next line or `)`.
    fn sync_in_block(&mut self) {
        while !self.at_eof() && !self.peek().line_start && self.peek().tok != Tok::RParen {
            self.bump();
        }
    }

    fn attr(&mut self) -> Res<Attr> {
        let t = self.bump();
        let (raw, quoted) = match t.tok {
            Tok::Word(w) => (w, false),
            Tok::Str(s) => (s, true),
            _ => unreachable!("block_continues only lets names through"),
        };
        let mut system = None;
        let name = match raw.find('@').filter(|_| !quoted) {
            Some(at) => {
                let before = raw[..at].to_string();
                let rest = &raw[at + 1..];
                if before.is_empty() {
                    self.err(t.span, "expected an attribute name before `@`");
                    return Err(());
                }
                system = Some(if rest.is_empty() {
                    self.name("a system name after `@`")?
                } else {
                    let col = t.span.column.saturating_add(before.chars().count() as u32 + 1);
                    Spanned::new(rest.to_string(), Span { column: col, ..t.span })
                });
                Spanned::new(before, t.span)
            }
            None => Spanned::new(raw, t.span),
        };
        // `Name @sys` and `Name @ sys`.
        if system.is_none() {
            let at = self.peek().clone();
            if let Tok::Word(w) = &at.tok {
                if let Some(rest) = w.strip_prefix('@') {
                    if !at.line_start {
                        self.bump();
                        system = Some(if rest.is_empty() {
                            self.name("a system name after `@`")?
                        } else {
                            Spanned::new(rest.to_string(), Span { column: at.span.column + 1, ..at.span })
                        });
                    }
                }
            }
        }
        if self.peek().tok != Tok::Eq {
            return self.expected(&format!("`=` after the attribute name {}", name.node));
        }
        self.bump();
        let value = self.value(0)?;
        Ok(Attr { name, system, value })
    }

    fn attr_decl(&mut self) -> Res<AttrDecl> {
        let (mut is_static, mut is_temp) = (false, false);
        loop {
            let t = self.peek().clone();
            let flag = match &t.tok {
                Tok::Word(w) if w == "static" => &mut is_static,
                Tok::Word(w) if w == "temp" => &mut is_temp,
                _ => break,
            };
            if *flag {
                self.err(t.span, format!("{} written twice", describe(&t.tok)));
            }
            *flag = true;
            self.bump();
        }
        let t = self.peek().clone();
        let (kind, keylist) = match &t.tok {
            Tok::Word(w) if w == "keylist" => (AttrKind::Str, true),
            Tok::Word(w) => match AttrKind::from_keyword(w) {
                Some(k) => (k, false),
                None => return self.expected("an attribute type (str, int, boolean, float or keylist)"),
            },
            _ => return self.expected("an attribute type (str, int, boolean, float or keylist)"),
        };
        self.bump();
        let kind = Spanned::new(kind, t.span);
        if self.peek().line_start {
            return self.expected("an attribute name after its type");
        }
        let bare = matches!(self.peek().tok, Tok::Word(_));
        let mut name = self.name("an attribute name after its type")?;
        let mut dim = if keylist { Dimension::Keylist } else { Dimension::Scalar };
        let mut suffix = None;
        if let Some(stem) = name.node.strip_suffix("[]").filter(|s| bare && !s.is_empty()) {
            suffix = Some((Dimension::Vector, "[]"));
            name.node = stem.to_string();
        } else if self.is_word("[]") && !self.peek().line_start {
            self.bump();
            suffix = Some((Dimension::Vector, "[]"));
        } else if self.peek().tok == Tok::LBrace && !self.peek().line_start && self.peek_at(1).tok == Tok::RBrace {
            self.bump();
            self.bump();
            suffix = Some((Dimension::Association, "{}"));
        }
        if let Some((d, text)) = suffix {
            if keylist {
                self.err(name.span, format!("a keylist is already a list: expected no `{text}` after {}", name.node));
                return Err(());
            }
            dim = d;
        }
        let default = if self.peek().tok == Tok::Eq && !self.peek().line_start {
            self.bump();
            Some(self.value(0)?)
        } else {
            None
        };
        Ok(AttrDecl { name, kind, dim, is_static, is_temp, default })
    }

    fn value(&mut self, depth: usize) -> Res<Spanned<Value>> {
        let t = self.peek().clone();
        // `A =` followed by `B = 1` on the next line: A's value is missing,
        // B is not it.
        // Inside `{ }` lines do not matter: a list may span several.
        if depth == 0 && t.line_start && self.peek_at(1).tok == Tok::Eq {
            return self.expected("a value after `=`");
        }
        match t.tok {
            Tok::Str(s) => {
                self.bump();
                Ok(Spanned::new(Value::Scalar(Scalar::Str(s)), t.span))
            }
            Tok::Word(w) => {
                self.bump();
                Ok(Spanned::new(Value::Scalar(scalar_from_word(w)), t.span))
            }
            Tok::LBrace if depth >= MAX_NESTING => {
                self.err(t.span, format!("values nest deeper than {MAX_NESTING} levels of `{{`"));
                self.skip_braces();
                Err(())
            }
            Tok::LBrace => self.braces(depth),
            _ => self.expected("a value (a word, a \"string\" or `{`)"),
        }
    }

    /// Past a `{ ... }` without recursing, however deep it goes.
    fn skip_braces(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.bump().tok {
                Tok::LBrace => depth += 1,
                Tok::RBrace => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                Tok::Eof => return,
                _ => {}
            }
        }
    }

    fn braces(&mut self, depth: usize) -> Res<Spanned<Value>> {
        let open = self.bump().span;
        let mut list = Vec::new();
        let mut assoc = Vec::new();
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                Tok::Comma => {
                    self.bump();
                }
                Tok::Eof | Tok::RParen => {
                    return self.expected(&format!("`}}` closing the value opened at line {}", open.line));
                }
                Tok::Word(w) if t.line_start && TOP_KEYWORDS.contains(&w.as_str()) => {
                    return self.expected(&format!("`}}` closing the value opened at line {}", open.line));
                }
                _ => {
                    let elem = self.value(depth + 1)?;
                    if self.peek().tok == Tok::Eq {
                        self.bump();
                        let Value::Scalar(key) = elem.node else {
                            self.err(elem.span, "expected a word or a \"string\" as association key, found a `{ }` value");
                            return Err(());
                        };
                        let value = self.value(depth + 1)?;
                        assoc.push(AssocEntry { key: Spanned::new(key, elem.span), value });
                    } else {
                        list.push(elem);
                    }
                }
            }
        }
        if !list.is_empty() && !assoc.is_empty() {
            self.err(
                open,
                "expected either a list `{ a, b }` or an association `{ k = v }`, found both elements and `key = value` pairs",
            );
            return Err(());
        }
        let value = if assoc.is_empty() { Value::List(list) } else { Value::Assoc(assoc) };
        Ok(Spanned::new(value, open))
    }
}

/// A bare word is an integer when it reads as one; `1.5`, `10.0.0.5` and
/// numbers too large for 64 bits stay text.
pub fn scalar_from_word(w: String) -> Scalar {
    match w.parse::<i64>() {
        Ok(i) => Scalar::Int(i),
        Err(_) => Scalar::Str(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/etc/VRTSvcs/conf/config/./x/../types.cf")), PathBuf::from("/etc/VRTSvcs/conf/config/types.cf"));
        assert_eq!(normalize(Path::new("../a")), PathBuf::from("../a"));
    }

    #[test]
    fn plus_sign_integers_and_big_numbers() {
        assert_eq!(scalar_from_word("-5".into()), Scalar::Int(-5));
        assert_eq!(scalar_from_word("99999999999999999999".into()), Scalar::Str("99999999999999999999".into()));
        assert_eq!(scalar_from_word("1.5".into()), Scalar::Str("1.5".into()));
    }
}
