//! Prints a model as `haconf -dump` lays configuration out: `include`
//! lines, then the cluster, the systems, the types and the groups, one
//! block each, separated by blank lines, attributes one per line indented
//! by four spaces. Inside a group: its attributes, its resources sorted by
//! (type, name) as VCS sorts them, its `requires group` lines, then its
//! resource dependencies sorted. Comments are not kept.
//!
//! Strings are quoted unless they are a plain identifier or decimal number
//! that reads back as the same string, so writing what was parsed and
//! parsing it again gives the same model, and writing that again gives
//! the same bytes.

use super::lexer::is_word_char;
use super::model::*;
use super::span::{FileId, Span};
use std::fmt::Write;

const INDENT: &str = "    ";

/// Every item of `config`, whatever file it came from.
pub fn write_config(config: &Config) -> String {
    write_where(config, |_| true)
}

/// The items read from one file: main.cf's groups, types.cf's types, and so
/// on, as `haconf -dump` writes each file back.
pub fn write_file(config: &Config, file: FileId) -> String {
    write_where(config, |s| s.file == file)
}

fn write_where(config: &Config, keep: impl Fn(Span) -> bool) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let includes: String = config
        .includes
        .iter()
        .filter(|i| keep(i.path.span))
        .map(|i| format!("include {}\n", quote(&i.path.node)))
        .collect();
    if !includes.is_empty() {
        blocks.push(includes);
    }
    if let Some(c) = config.cluster.as_ref().filter(|c| keep(c.name.span)) {
        blocks.push(header("", &format!("cluster {}", name(&c.name.node)), &c.attrs));
    }
    for s in config.systems.iter().filter(|s| keep(s.name.span)) {
        blocks.push(header("", &format!("system {}", name(&s.name.node)), &s.attrs));
    }
    for t in config.types.iter().filter(|t| keep(t.name.span)) {
        blocks.push(type_def(t));
    }
    for g in config.groups.iter().filter(|g| keep(g.name.span)) {
        blocks.push(header("", &format!("group {}", name(&g.name.node)), &g.attrs));
        let mut resources: Vec<&Resource> = g.resources.iter().collect();
        resources.sort_by(|a, b| (&a.type_name.node, &a.name.node).cmp(&(&b.type_name.node, &b.name.node)));
        for r in resources {
            blocks.push(header(INDENT, &format!("{} {}", name(&r.type_name.node), name(&r.name.node)), &r.attrs));
        }
        if !g.group_deps.is_empty() {
            let mut b = String::new();
            for d in &g.group_deps {
                let _ = write!(
                    b,
                    "{INDENT}requires group {} {} {}",
                    name(&d.group.node),
                    d.category.node.keyword(),
                    d.location.node.keyword()
                );
                if let Some(k) = &d.kind {
                    let _ = write!(b, " {}", k.node.keyword());
                }
                b.push('\n');
            }
            blocks.push(b);
        }
        if !g.resource_deps.is_empty() {
            let mut deps: Vec<(&str, &str)> =
                g.resource_deps.iter().map(|d| (d.parent.node.as_str(), d.child.node.as_str())).collect();
            deps.sort();
            let b: String =
                deps.iter().map(|(p, c)| format!("{INDENT}{} requires {}\n", name(p), name(c))).collect();
            blocks.push(b);
        }
    }
    blocks.join("\n")
}

/// `KEYWORD NAME (` attributes `)`, the closing parenthesis at attribute
/// indentation as VCS writes it.
fn header(indent: &str, head: &str, attrs: &[Attr]) -> String {
    let mut b = format!("{indent}{head} (\n");
    for a in attrs {
        let _ = write!(b, "{indent}{INDENT}{}", name(&a.name.node));
        if let Some(sys) = &a.system {
            // `Name@sys`; a system name that must be quoted goes after a
            // lone `@` word, which the parser accepts too.
            if is_bare_name(&sys.node) {
                let _ = write!(b, "@{}", sys.node);
            } else {
                let _ = write!(b, " @ {}", quote(&sys.node));
            }
        }
        b.push_str(" = ");
        value(&mut b, &a.value.node);
        b.push('\n');
    }
    let _ = writeln!(b, "{indent}{INDENT})");
    b
}

fn type_def(t: &TypeDef) -> String {
    let mut b = format!("type {} (\n", name(&t.name.node));
    for d in &t.attrs {
        b.push_str(INDENT);
        if d.is_static {
            b.push_str("static ");
        }
        if d.is_temp {
            b.push_str("temp ");
        }
        let kind = if d.dim == Dimension::Keylist { "keylist" } else { d.kind.node.keyword() };
        let _ = write!(b, "{kind} {}", name(&d.name.node));
        match d.dim {
            Dimension::Vector => b.push_str("[]"),
            Dimension::Association => b.push_str("{}"),
            Dimension::Scalar | Dimension::Keylist => {}
        }
        if let Some(v) = &d.default {
            b.push_str(" = ");
            value(&mut b, &v.node);
        }
        b.push('\n');
    }
    b.push_str(")\n");
    b
}

/// `{ }` for an empty list or association (the parser reads it back as an
/// empty list; the type tells them apart).
fn value(b: &mut String, v: &Value) {
    match v {
        Value::Scalar(s) => scalar(b, s),
        Value::List(items) if items.is_empty() => b.push_str("{ }"),
        Value::Assoc(items) if items.is_empty() => b.push_str("{ }"),
        Value::List(items) => {
            b.push_str("{ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    b.push_str(", ");
                }
                value(b, &item.node);
            }
            b.push_str(" }");
        }
        Value::Assoc(items) => {
            b.push_str("{ ");
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    b.push_str(", ");
                }
                scalar(b, &e.key.node);
                b.push_str(" = ");
                value(b, &e.value.node);
            }
            b.push_str(" }");
        }
    }
}

fn scalar(b: &mut String, s: &Scalar) {
    match s {
        Scalar::Int(i) => {
            let _ = write!(b, "{i}");
        }
        Scalar::Str(s) if is_bare_value(s) => b.push_str(s),
        Scalar::Str(s) => b.push_str(&quote(s)),
    }
}

/// Words written without quotes: identifiers (`eth0`, `Priority`) and
/// decimal numbers that do not read as integers (`1.5`); anything else —
/// paths, addresses, "10" that must stay a string — is quoted, as VCS does.
fn is_bare_value(s: &str) -> bool {
    let ident = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let decimal = s.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit())
    });
    ident || decimal
}

/// Keywords a bare name could be mistaken for where a declaration starts
/// or a type declaration reads its qualifiers.
const RESERVED: [&str; 13] = [
    "include", "cluster", "system", "group", "type", "requires", "static", "temp", "str", "int", "boolean", "float",
    "keylist",
];

fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !RESERVED.contains(&s)
        && s.chars().all(is_word_char)
}

fn name(s: &str) -> String {
    if is_bare_name(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert!(is_bare_value("eth0"));
        assert!(is_bare_value("1.5"));
        assert!(!is_bare_value("10"));
        assert!(!is_bare_value("10.0.0.5"));
        assert!(!is_bare_value("/usr/sbin/nginx"));
        assert!(!is_bare_value(""));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(name("web-ip"), "web-ip");
        assert_eq!(name("group"), "\"group\"");
        assert_eq!(name("a b"), "\"a b\"");
    }
}
