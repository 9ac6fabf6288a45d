//! What main.cf and types.cf say, in the order they say it.
//!
//! Names and values are [`Spanned`] so a validator can point at them; the
//! file an item came from is the file of its name's span (types read from
//! an included types.cf carry types.cf's [`FileId`]). Equality ignores
//! spans (see [`Spanned`]).

use super::span::{FileId, Spanned};
use serde::Serialize;
use std::path::PathBuf;

pub type Name = Spanned<String>;

/// A whole configuration: main.cf and every file it includes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Config {
    /// The files read, indexed by [`FileId`]; the first is main.cf.
    pub files: Vec<PathBuf>,
    pub includes: Vec<Include>,
    pub cluster: Option<Cluster>,
    pub systems: Vec<System>,
    pub groups: Vec<Group>,
    pub types: Vec<TypeDef>,
}

impl Config {
    pub fn file_path(&self, id: FileId) -> Option<&PathBuf> {
        self.files.get(id.0 as usize)
    }
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name.node == name)
    }
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name.node == name)
    }

    /// Put resources in (type, name) order and resource dependencies in
    /// (parent, child) order, as the writer prints them: a model read back
    /// from written text equals the original after this.
    pub fn sort_like_dump(&mut self) {
        for g in &mut self.groups {
            g.resources.sort_by(|a, b| (&a.type_name.node, &a.name.node).cmp(&(&b.type_name.node, &b.name.node)));
            g.resource_deps.sort_by(|a, b| (&a.parent.node, &a.child.node).cmp(&(&b.parent.node, &b.child.node)));
        }
    }
}

/// `include "types.cf"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Include {
    /// As written, relative to the including file's directory.
    pub path: Spanned<String>,
    /// The file it was read as, once loaded ([`crate::cf::load`]); `None`
    /// when only one file was parsed or the include failed.
    pub file: Option<FileId>,
}

/// `cluster NAME ( attrs )`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    pub name: Name,
    pub attrs: Vec<Attr>,
}

/// `system NAME ( attrs )`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct System {
    pub name: Name,
    pub attrs: Vec<Attr>,
}

/// `group NAME ( attrs )` and everything up to the next top-level
/// declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: Name,
    pub attrs: Vec<Attr>,
    pub resources: Vec<Resource>,
    pub resource_deps: Vec<ResourceDep>,
    pub group_deps: Vec<GroupDep>,
}

/// `TYPE NAME ( attrs )` inside a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub type_name: Name,
    pub name: Name,
    pub attrs: Vec<Attr>,
}

/// `PARENT requires CHILD`: the parent comes online after the child and
/// goes offline before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDep {
    pub parent: Name,
    pub child: Name,
}

/// `requires group NAME online|offline local|global|remote [soft|firm|hard]`
/// inside the dependent (parent) group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDep {
    /// The group depended on (the child).
    pub group: Name,
    pub category: Spanned<DepCategory>,
    pub location: Spanned<DepLocation>,
    /// As written: VCS treats a missing kind of an online dependency as
    /// firm, which is the validator's business, not the writer's.
    pub kind: Option<Spanned<DepKind>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DepCategory {
    Online,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DepLocation {
    Local,
    Global,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DepKind {
    Soft,
    Firm,
    Hard,
}

impl DepCategory {
    pub fn keyword(self) -> &'static str {
        match self {
            DepCategory::Online => "online",
            DepCategory::Offline => "offline",
        }
    }
    pub fn from_keyword(w: &str) -> Option<Self> {
        [DepCategory::Online, DepCategory::Offline].into_iter().find(|c| c.keyword() == w)
    }
}

impl DepLocation {
    pub fn keyword(self) -> &'static str {
        match self {
            DepLocation::Local => "local",
            DepLocation::Global => "global",
            DepLocation::Remote => "remote",
        }
    }
    pub fn from_keyword(w: &str) -> Option<Self> {
        [DepLocation::Local, DepLocation::Global, DepLocation::Remote].into_iter().find(|c| c.keyword() == w)
    }
}

impl DepKind {
    pub fn keyword(self) -> &'static str {
        match self {
            DepKind::Soft => "soft",
            DepKind::Firm => "firm",
            DepKind::Hard => "hard",
        }
    }
    pub fn from_keyword(w: &str) -> Option<Self> {
        [DepKind::Soft, DepKind::Firm, DepKind::Hard].into_iter().find(|c| c.keyword() == w)
    }
}

/// `Name = value` or, localized to one system, `Name@sys = value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attr {
    pub name: Name,
    pub system: Option<Name>,
    pub value: Spanned<Value>,
}

/// A value as written. Lists and associations are kept general (nested
/// values are syntax; VCS uses one level) so the validator, which knows the
/// attribute's declared type, says what is wrong with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Value {
    Scalar(Scalar),
    /// `{ a, b }` (vector or keylist), and `{ }`, which may also stand for
    /// an empty association: only the attribute's type tells.
    List(Vec<Spanned<Value>>),
    /// `{ k = v, k2 = v2 }`.
    Assoc(Vec<AssocEntry>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssocEntry {
    pub key: Spanned<Scalar>,
    pub value: Spanned<Value>,
}

/// One word or string. A bare word that reads as a 64-bit integer is an
/// `Int`; everything else, quoted or not, is a `Str` (a quoted "10" stays
/// a string, and the writer quotes it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Scalar {
    Str(String),
    Int(i64),
}

impl Scalar {
    /// The text the agent would see.
    pub fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
        }
    }
}

/// `type NAME ( declarations )` from types.cf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeDef {
    pub name: Name,
    pub attrs: Vec<AttrDecl>,
}

/// `[static] [temp] str|int|boolean|float|keylist NAME[dim] [= default]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttrDecl {
    pub name: Name,
    /// Element type; a keylist's is always `Str`.
    pub kind: Spanned<AttrKind>,
    pub dim: Dimension,
    /// Same value for every resource of the type (set in types.cf or with
    /// `hatype -modify`), not per resource.
    pub is_static: bool,
    /// Not written to main.cf by `haconf -dump`.
    pub is_temp: bool,
    pub default: Option<Spanned<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrKind {
    Str,
    Int,
    Boolean,
    Float,
}

impl AttrKind {
    pub fn keyword(self) -> &'static str {
        match self {
            AttrKind::Str => "str",
            AttrKind::Int => "int",
            AttrKind::Boolean => "boolean",
            AttrKind::Float => "float",
        }
    }
    pub fn from_keyword(w: &str) -> Option<Self> {
        [AttrKind::Str, AttrKind::Int, AttrKind::Boolean, AttrKind::Float].into_iter().find(|k| k.keyword() == w)
    }
}

/// Shape of an attribute: `NAME`, `NAME[]`, `keylist NAME`, `NAME{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Scalar,
    /// Ordered, duplicates allowed.
    Vector,
    /// Unordered, unique keys.
    Keylist,
    /// Key/value pairs.
    Association,
}
