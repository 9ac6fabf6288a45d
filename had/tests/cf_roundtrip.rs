//! The configuration language end to end: parsing the forms VCS writes,
//! diagnostics, includes, and the writer's round-trip guarantees.

use had::cf::*;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

const REFERENCE_MAIN: &str = r#"include "types.cf"
cluster demo ( UserNames = { admin = xxx } )
system north
system south
group web (
    SystemList = { north = 0, south = 1 }
    AutoStartList = { north }
    )
    IP web_ip ( Device = eth0  Address = "10.0.0.5"  NetMask = "255.255.255.0" )
    Process web_proc ( PathName = "/usr/sbin/nginx"  Arguments = "-g 'daemon off;'" )
    web_proc requires web_ip
    requires group db online local firm
"#;

const TYPES: &str = r#"
// Bundled agent types.
type Process (
    static keylist SupportedActions = { "program.vfd", getcksum }
    static str ArgList[] = { PathName, Arguments }
    static int RestartLimit = 0
    str PathName
    str Arguments
    int Priority = 10
    boolean CleanProcess = 1
    temp str LastError
    str Env{}
    str Keys[]
    keylist Members
    float Weight = 1.5
)

/* An IP address
   on a NIC. */
type IP (
    static str ArgList[] = { Device, Address, NetMask }
    str Device
    str Address
    str NetMask
    str Options{} = { mtu = 1500, "label" = "" }
)
"#;

fn parse(text: &str) -> Config {
    match parse_str(Path::new("main.cf"), text) {
        Ok(c) => c,
        Err(e) => panic!("parse failed:\n{e}\n--- input:\n{text}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    let (_, diags) = parse_str_with_diags(Path::new("main.cf"), text);
    diags.iter().map(|d| d.to_string()).collect()
}

fn s(v: &str) -> Value {
    Value::Scalar(Scalar::Str(v.into()))
}
fn i(v: i64) -> Value {
    Value::Scalar(Scalar::Int(v))
}

/// The properties the writer promises, checked on one text.
fn assert_round_trip(text: &str) -> String {
    let mut first = parse(text);
    let written = write_config(&first);
    // The writer orders resources as VCS does; compare in that order.
    first.sort_like_dump();
    let second = parse(&written);
    assert_eq!(first, second, "parse → write → parse changed the model; written:\n{written}");
    let rewritten = write_config(&second);
    assert_eq!(written, rewritten, "write → parse → write changed the bytes");
    written
}

#[test]
fn reference_example_parses() {
    let c = parse(REFERENCE_MAIN);
    assert_eq!(c.includes.len(), 1);
    assert_eq!(c.includes[0].path.node, "types.cf");
    let cluster = c.cluster.as_ref().unwrap();
    assert_eq!(cluster.name.node, "demo");
    assert_eq!(cluster.attrs[0].name.node, "UserNames");
    let names: Vec<&str> = c.systems.iter().map(|s| s.name.node.as_str()).collect();
    assert_eq!(names, ["north", "south"]);
    let g = c.group("web").unwrap();
    assert_eq!((g.name.span.line, g.name.span.column), (5, 7));
    assert_eq!(g.attrs.len(), 2);
    match &g.attrs[0].value.node {
        Value::Assoc(e) => {
            assert_eq!(e[0].key.node, Scalar::Str("north".into()));
            assert_eq!(e[1].value.node, i(1));
            assert_eq!((e[1].key.span.line, e[1].key.span.column), (6, 31));
        }
        other => panic!("SystemList: {other:?}"),
    }
    assert_eq!(g.resources.len(), 2);
    let ip = &g.resources[0];
    assert_eq!((ip.type_name.node.as_str(), ip.name.node.as_str()), ("IP", "web_ip"));
    let attrs: Vec<(&str, Value)> = ip.attrs.iter().map(|a| (a.name.node.as_str(), a.value.node.clone())).collect();
    assert_eq!(attrs, [("Device", s("eth0")), ("Address", s("10.0.0.5")), ("NetMask", s("255.255.255.0"))]);
    assert_eq!((ip.attrs[1].value.span.line, ip.attrs[1].value.span.column), (9, 42));
    assert_eq!(g.resources[1].attrs[1].value.node, s("-g 'daemon off;'"));
    assert_eq!(g.resource_deps[0].parent.node, "web_proc");
    assert_eq!(g.resource_deps[0].child.node, "web_ip");
    let d = &g.group_deps[0];
    assert_eq!(d.group.node, "db");
    assert_eq!(
        (d.category.node, d.location.node, d.kind.as_ref().map(|k| k.node)),
        (DepCategory::Online, DepLocation::Local, Some(DepKind::Firm))
    );
}

#[test]
fn reference_example_is_written_like_haconf_dump() {
    let out = assert_round_trip(REFERENCE_MAIN);
    let expected = r#"include "types.cf"

cluster demo (
    UserNames = { admin = xxx }
    )

system north (
    )

system south (
    )

group web (
    SystemList = { north = 0, south = 1 }
    AutoStartList = { north }
    )

    IP web_ip (
        Device = eth0
        Address = "10.0.0.5"
        NetMask = "255.255.255.0"
        )

    Process web_proc (
        PathName = "/usr/sbin/nginx"
        Arguments = "-g 'daemon off;'"
        )

    requires group db online local firm

    web_proc requires web_ip
"#;
    assert_eq!(out, expected);
}

#[test]
fn types_cf_declarations() {
    let c = parse(TYPES);
    assert_eq!(c.types.len(), 2);
    let p = c.type_def("Process").unwrap();
    let d = |n: &str| p.attrs.iter().find(|a| a.name.node == n).unwrap_or_else(|| panic!("{n}"));
    let sa = d("SupportedActions");
    assert!(sa.is_static && !sa.is_temp);
    assert_eq!((sa.kind.node, sa.dim), (AttrKind::Str, Dimension::Keylist));
    assert_eq!(
        sa.default.as_ref().unwrap().node,
        Value::List(vec![
            Spanned::new(s("program.vfd"), Span::default()),
            Spanned::new(s("getcksum"), Span::default())
        ])
    );
    assert_eq!((d("ArgList").dim, d("ArgList").is_static), (Dimension::Vector, true));
    assert_eq!(d("RestartLimit").default.as_ref().unwrap().node, i(0));
    assert_eq!((d("PathName").kind.node, d("PathName").dim, d("PathName").default.is_none()), (AttrKind::Str, Dimension::Scalar, true));
    assert_eq!(d("Priority").kind.node, AttrKind::Int);
    assert_eq!(d("CleanProcess").kind.node, AttrKind::Boolean);
    assert!(d("LastError").is_temp && !d("LastError").is_static);
    assert_eq!(d("Env").dim, Dimension::Association);
    assert_eq!(d("Keys").dim, Dimension::Vector);
    assert_eq!(d("Members").dim, Dimension::Keylist);
    assert_eq!((d("Weight").kind.node, &d("Weight").default.as_ref().unwrap().node), (AttrKind::Float, &s("1.5")));
    assert_eq!((d("Weight").name.span.line, d("Weight").name.span.column), (15, 11));
    let out = assert_round_trip(TYPES);
    assert!(out.starts_with("type Process (\n    static keylist SupportedActions = { \"program.vfd\", getcksum }\n"), "{out}");
    assert!(out.contains("    str Env{}\n    str Keys[]\n    keylist Members\n    float Weight = 1.5\n)\n"), "{out}");
}

#[test]
fn vector_and_association_suffixes_may_stand_apart() {
    let c = parse("type T (\n str A [] \n str B{ }\n str \"C[]\"\n)\n");
    let dims: Vec<(String, Dimension)> = c.types[0].attrs.iter().map(|a| (a.name.node.clone(), a.dim)).collect();
    assert_eq!(
        dims,
        [("A".into(), Dimension::Vector), ("B".into(), Dimension::Association), ("C[]".into(), Dimension::Scalar)]
    );
    assert_round_trip("type T (\n str A [] \n str B{ }\n str \"C[]\"\n)\n");
}

#[test]
fn every_value_form() {
    let text = r#"group g (
    Quoted = "a \"quoted\" \\ string"
    Bare = /usr/sbin/nginx
    Address = 10.0.0.5
    Int = 42
    Negative = -7
    QuotedNumber = "10"
    Float = 1.5
    Huge = 123456789012345678901234567890
    Empty = ""
    List = { a, "b c", 3 }
    NoCommas = { a b c }
    Assoc = { k = v, "k 2" = "v 2", n = 1 }
    AssocNoCommas = { k = v k2 = v2 }
    EmptyBraces = { }
    Nested = { a = { x, y }, b = { } }
    Utf8 = "grüße"
    )
"#;
    let c = parse(text);
    let g = &c.groups[0];
    let v = |n: &str| g.attrs.iter().find(|a| a.name.node == n).unwrap().value.node.clone();
    let l = |vs: Vec<Value>| Value::List(vs.into_iter().map(|v| Spanned::new(v, Span::default())).collect());
    let a = |vs: Vec<(&str, Value)>| {
        Value::Assoc(
            vs.into_iter()
                .map(|(k, v)| AssocEntry {
                    key: Spanned::new(Scalar::Str(k.into()), Span::default()),
                    value: Spanned::new(v, Span::default()),
                })
                .collect(),
        )
    };
    assert_eq!(v("Quoted"), s(r#"a "quoted" \ string"#));
    assert_eq!(v("Bare"), s("/usr/sbin/nginx"));
    assert_eq!(v("Address"), s("10.0.0.5"));
    assert_eq!(v("Int"), i(42));
    assert_eq!(v("Negative"), i(-7));
    assert_eq!(v("QuotedNumber"), s("10"));
    assert_eq!(v("Float"), s("1.5"));
    assert_eq!(v("Huge"), s("123456789012345678901234567890"));
    assert_eq!(v("Empty"), s(""));
    assert_eq!(v("List"), l(vec![s("a"), s("b c"), i(3)]));
    assert_eq!(v("NoCommas"), l(vec![s("a"), s("b"), s("c")]));
    assert_eq!(v("Assoc"), a(vec![("k", s("v")), ("k 2", s("v 2")), ("n", i(1))]));
    assert_eq!(v("AssocNoCommas"), a(vec![("k", s("v")), ("k2", s("v2"))]));
    assert_eq!(v("EmptyBraces"), l(vec![]));
    assert_eq!(v("Nested"), a(vec![("a", l(vec![s("x"), s("y")])), ("b", l(vec![]))]));
    assert_eq!(v("Utf8"), s("grüße"));
    let out = assert_round_trip(text);
    for line in [
        r#"    Quoted = "a \"quoted\" \\ string""#,
        r#"    Bare = "/usr/sbin/nginx""#,
        "    QuotedNumber = \"10\"",
        "    Float = 1.5",
        "    NoCommas = { a, b, c }",
        r#"    Assoc = { k = v, "k 2" = "v 2", n = 1 }"#,
        "    EmptyBraces = { }",
        "    Nested = { a = { x, y }, b = { } }",
    ] {
        assert!(out.contains(&format!("{line}\n")), "missing {line:?} in\n{out}");
    }
}

#[test]
fn per_system_values() {
    let text = "group g (\n    SystemList = { a = 0, b = 1 }\n)\n    IP ip (\n        Address@a = \"10.0.0.1\"\n        Address @b = \"10.0.0.2\"\n        Device @ \"odd sys\" = eth0\n        \"Odd Name\"@c = 1\n        Plain = x\n    )\n";
    let c = parse(text);
    let attrs = &c.groups[0].resources[0].attrs;
    let got: Vec<(&str, Option<&str>)> =
        attrs.iter().map(|a| (a.name.node.as_str(), a.system.as_ref().map(|s| s.node.as_str()))).collect();
    assert_eq!(
        got,
        [("Address", Some("a")), ("Address", Some("b")), ("Device", Some("odd sys")), ("Odd Name", Some("c")), ("Plain", None)]
    );
    let sys = attrs[0].system.as_ref().unwrap();
    assert_eq!((sys.span.line, sys.span.column), (5, 17));
    let sys = attrs[1].system.as_ref().unwrap();
    assert_eq!((sys.span.line, sys.span.column), (6, 18));
    let out = assert_round_trip(text);
    assert!(out.contains("        Address@a = \"10.0.0.1\"\n        Address@b = \"10.0.0.2\"\n"), "{out}");
    assert!(out.contains("        Device @ \"odd sys\" = eth0\n"), "{out}");
}

#[test]
fn group_dependencies_in_all_forms() {
    let mut text = String::from("group p (\n)\n");
    let mut want = Vec::new();
    for (cat, c) in [("online", DepCategory::Online), ("offline", DepCategory::Offline)] {
        for (loc, l) in [("local", DepLocation::Local), ("global", DepLocation::Global), ("remote", DepLocation::Remote)] {
            for (kind, k) in [("", None), (" soft", Some(DepKind::Soft)), (" firm", Some(DepKind::Firm)), (" hard", Some(DepKind::Hard))] {
                text.push_str(&format!("requires group c_{cat}_{loc} {cat} {loc}{kind}\n"));
                want.push((format!("c_{cat}_{loc}"), c, l, k));
            }
        }
    }
    let c = parse(&text);
    let got: Vec<_> = c.groups[0]
        .group_deps
        .iter()
        .map(|d| (d.group.node.clone(), d.category.node, d.location.node, d.kind.as_ref().map(|k| k.node)))
        .collect();
    assert_eq!(got, want);
    let out = assert_round_trip(&text);
    assert!(out.contains("    requires group c_online_local online local\n"), "no kind is written as none: {out}");
    assert!(out.contains("    requires group c_offline_remote offline remote hard\n"), "{out}");
}

#[test]
fn writer_sorts_resources_and_dependencies_but_keeps_group_order() {
    let text = "group zeta (\n)\nProcess p2\nIP ip1\nProcess p1\np2 requires ip1\np1 requires ip1\ngroup alpha\n";
    let out = assert_round_trip(text);
    assert_eq!(
        out,
        "group zeta (\n    )\n\n    IP ip1 (\n        )\n\n    Process p1 (\n        )\n\n    Process p2 (\n        )\n\n    p1 requires ip1\n    p2 requires ip1\n\ngroup alpha (\n    )\n"
    );
}

#[test]
fn names_that_read_as_keywords_are_quoted() {
    let text = "group \"group\" (\n)\n    \"requires\" \"type\" ( \"include\" = x )\n    \"requires\" requires \"static\"\ntype \"str\" (\n    str \"static\"\n    int \"temp\"[]\n)\n";
    let c = parse(text);
    let g = &c.groups[0];
    assert_eq!(g.name.node, "group");
    assert_eq!((g.resources[0].type_name.node.as_str(), g.resources[0].name.node.as_str()), ("requires", "type"));
    assert_eq!(g.resource_deps[0].child.node, "static");
    assert_eq!(c.types[0].attrs[1].dim, Dimension::Vector);
    assert_round_trip(text);
}

// ---------------------------------------------------------------------------
// Includes

fn loader(files: &[(&str, &str)]) -> impl FnMut(&Path) -> io::Result<String> {
    let map: BTreeMap<PathBuf, String> = files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    move |p: &Path| map.get(p).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
}

#[test]
fn includes_are_followed_relative_to_the_including_file() {
    let mut l = loader(&[
        ("/etc/VRTSvcs/conf/config/main.cf", REFERENCE_MAIN),
        ("/etc/VRTSvcs/conf/config/types.cf", "include \"./agents/../agents/more.cf\"\n"),
        ("/etc/VRTSvcs/conf/config/agents/more.cf", TYPES),
    ]);
    let c = load(Path::new("/etc/VRTSvcs/conf/config/main.cf"), &mut l).unwrap();
    assert_eq!(
        c.files,
        [
            "/etc/VRTSvcs/conf/config/main.cf",
            "/etc/VRTSvcs/conf/config/types.cf",
            "/etc/VRTSvcs/conf/config/agents/more.cf"
        ]
        .map(PathBuf::from)
    );
    assert_eq!(c.includes.len(), 2);
    assert_eq!(c.includes[0].file, Some(FileId(1)));
    assert_eq!(c.includes[1].file, Some(FileId(2)));
    let p = c.type_def("Process").unwrap();
    assert_eq!(p.name.span.file, FileId(2));
    assert_eq!(c.group("web").unwrap().name.span.file, FileId(0));
    // Each file is written back on its own.
    let main = write_file(&c, FileId(0));
    assert!(main.starts_with("include \"types.cf\"\n\ncluster demo (") && !main.contains("type "), "{main}");
    let more = write_file(&c, FileId(2));
    assert!(more.starts_with("type Process (") && !more.contains("group"), "{more}");
    assert_eq!(parse(&more).types, c.types);
}

#[test]
fn include_cycle_is_reported_at_the_include() {
    let mut l = loader(&[
        ("conf/main.cf", "include \"a.cf\"\ngroup g\n"),
        ("conf/a.cf", "// a\n  include \"b.cf\"\n"),
        ("conf/b.cf", "include \"main.cf\"\n"),
    ]);
    let err = load(Path::new("conf/main.cf"), &mut l).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.to_string(), "conf/b.cf:1:9: include cycle: conf/main.cf -> conf/a.cf -> conf/b.cf -> conf/main.cf");
}

#[test]
fn file_included_twice_is_read_once() {
    let mut l = loader(&[
        ("main.cf", "include \"a.cf\"\ninclude \"b.cf\"\n"),
        ("a.cf", "include \"types.cf\"\n"),
        ("b.cf", "include \"types.cf\"\n"),
        ("types.cf", "type T (\n)\n"),
    ]);
    let c = load(Path::new("main.cf"), &mut l).unwrap();
    assert_eq!(c.types.len(), 1);
    assert_eq!(c.files.len(), 4);
}

#[test]
fn missing_include_and_missing_main_cf() {
    let mut l = loader(&[("cf/main.cf", "cluster c\n\ninclude \"types.cf\"\ngroup g\n")]);
    let (c, diags) = load_with_diags(Path::new("cf/main.cf"), &mut l);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].to_string(), "cf/main.cf:3:9: cannot read included file cf/types.cf: no such file");
    assert_eq!(c.groups.len(), 1, "the rest of main.cf is still read");
    let err = load(Path::new("nowhere.cf"), &mut l).unwrap_err();
    assert_eq!(err.to_string(), "nowhere.cf:0:0: cannot read: no such file");
}

#[test]
fn endless_include_chains_stop() {
    // Every path exists and includes one deeper: no cycle, but no end.
    let mut l = |_: &Path| -> io::Result<String> { Ok("include \"d/x.cf\"\n".into()) };
    let (_, diags) = load_with_diags(Path::new("x.cf"), &mut l);
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.contains("deeper than"), "{diags:?}");
}

// ---------------------------------------------------------------------------
// Diagnostics

#[test]
fn several_syntax_errors_in_one_file_are_all_reported() {
    let text = r#"cluster demo (
    UserNames = { admin = xxx
    )
system north ( Foo bar )
group web (
    SystemList = { north = 0, south = 1 }
    = 3
    AutoStartList = { north }
    )
    IP web_ip ( Device = eth0 Address = )
    web_proc requires
    requires group db sideways local
    requires web
    Process p ( A = { a, b = c } )
type T (
    strng X
    int Y
)
)
"#;
    let got = errors(text);
    let want = [
        "main.cf:3:5: expected `}` closing the value opened at line 2, found `)`",
        "main.cf:4:20: expected `=` after the attribute name Foo, found `bar`",
        "main.cf:7:5: expected `)` or an attribute name, found `=`",
        "main.cf:10:41: expected a value (a word, a \"string\" or `{`), found `)`",
        "main.cf:12:5: expected the name of the resource web_proc requires, found `requires`",
        "main.cf:12:23: expected online or offline, found `sideways`",
        "main.cf:13:14: expected `group` after `requires` (a resource dependency is written PARENT requires CHILD), found `web`",
        "main.cf:14:21: expected either a list `{ a, b }` or an association `{ k = v }`, found both elements and `key = value` pairs",
        "main.cf:16:5: expected an attribute type (str, int, boolean, float or keylist), found `strng`",
        "main.cf:19:1: expected a declaration (include, cluster, system, group, type, a resource or a dependency), found `)`",
    ];
    assert_eq!(got, want, "got:\n{}", got.join("\n"));
}

#[test]
fn missing_parenthesis_ends_at_the_next_declaration() {
    let text = "group a (\n    X = 1\ngroup b (\n    Y = 2\n    )\n    Proc p (\n        Z = 3\n    web requires p\n";
    let (c, diags) = parse_str_with_diags(Path::new("m.cf"), text);
    let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        got,
        [
            "m.cf:3:1: expected `)` closing the attributes of group a opened at line 1, found `group`",
            "m.cf:8:9: expected `=` after the attribute name web, found `requires`",
            "m.cf:9:1: expected `)` closing the attributes of resource p opened at line 6, found end of file",
        ]
    );
    assert_eq!(c.groups.len(), 2);
    assert_eq!(c.groups[0].attrs.len(), 1);
    assert_eq!(c.groups[1].resources[0].attrs.len(), 1);
}

#[test]
fn misplaced_and_trailing_things() {
    let got = errors("IP lonely\nsystem a system b\nrequires group g online local firm\ninclude types.cf\nx requires y\n");
    assert_eq!(
        got,
        [
            "main.cf:1:1: a resource declaration outside a group: expected a `group` declaration before it",
            "main.cf:2:10: expected the end of the line, found `system`",
            "main.cf:3:1: a group dependency outside a group: expected a `group` declaration before it",
            "main.cf:4:9: expected a quoted file name after `include`, found `types.cf`",
            "main.cf:5:1: a resource dependency outside a group: expected a `group` declaration before it",
        ]
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing() {
    let ok = format!("group g (\n    A = {}x{}\n)\n", "{ ".repeat(8), " }".repeat(8));
    parse(&ok);
    let deep = format!("group g (\n    A = {}x{}\n    B = 1\n)\n", "{ ".repeat(9), " }".repeat(9));
    assert_eq!(errors(&deep), ["main.cf:2:25: values nest deeper than 8 levels of `{`"]);
    let abyss = format!("group g (\n    A = {}\n", "{".repeat(1_000_000));
    assert!(!errors(&abyss).is_empty());
}

#[test]
fn diagnostics_are_capped() {
    let text = ")\n".repeat(10_000);
    let got = errors(&text);
    assert_eq!(got.len(), 101);
    assert!(got[100].contains("too many problems"), "{}", got[100]);
}

// ---------------------------------------------------------------------------
// Robustness and round trips

/// A small deterministic generator: no dependency for a few random bytes.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whatever the text, parsing returns; when it parses cleanly, the
/// writer's promises hold.
fn check_any(text: &str) {
    let (mut config, diags) = parse_str_with_diags(Path::new("fuzz.cf"), text);
    if diags.is_empty() {
        let written = write_config(&config);
        config.sort_like_dump();
        let again = parse_str(Path::new("fuzz.cf"), &written)
            .unwrap_or_else(|e| panic!("written text does not parse: {e}\n--- input\n{text:?}\n--- written\n{written}"));
        assert_eq!(config, again, "model changed; input {text:?}\nwritten\n{written}");
        assert_eq!(written, write_config(&again), "bytes changed; input {text:?}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_any(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_token_soup_never_panics_and_round_trips_when_clean() {
    // Pieces of the language, shuffled: far more likely than random bytes
    // to get deep into the parser, and now and then a valid file.
    let pieces = [
        "group", "system", "cluster", "type", "include", "requires", "static", "temp", "str", "int", "keylist", "online",
        "local", "firm", "(", ")", "{", "}", "=", ",", "@", "A@s", "\"q\"", "\"a\\\"b\"", "x", "1", "-2", "1.5", "/p/q",
        "\n", "\n", "\n", " ", "//c\n", "/*c*/", "[]", "Keys[]", "\"",
    ];
    let mut rng = XorShift(42);
    let mut clean = 0;
    for _ in 0..20_000 {
        let n = rng.below(25);
        let text: String = (0..n).map(|_| format!("{} ", pieces[rng.below(pieces.len())])).collect();
        if parse_str_with_diags(Path::new("f"), &text).1.is_empty() {
            clean += 1;
        }
        check_any(&text);
    }
    assert!(clean > 50, "only {clean} clean inputs: the soup tests little");
}

#[test]
fn truncated_prefixes_never_panic() {
    let full = format!("{REFERENCE_MAIN}{TYPES}");
    for (cut, _) in full.char_indices() {
        check_any(&full[..cut]);
    }
}

#[test]
fn round_trips() {
    for text in [
        REFERENCE_MAIN,
        TYPES,
        "",
        "// only a comment\n",
        "cluster c\nsystem s1 ( )\nsystem s2 (\n  SysInfo = \"Linux\"\n  Capacity = 100\n)\n",
        "group g ( Parallel = 1 SystemList = { a, b } )\nNIC nic ( Device@a = eth0 Device@b = eth1 )\nIP ip ( Address = \"1.2.3.4\" )\nip requires nic\n",
        "group a\nrequires group b offline remote\nrequires group c online global soft\nFileOnOff f ( PathName = \"/tmp/f\" )\n",
        "type FileOnOff (\n static str ArgList[] = { PathName }\n str PathName\n)\ntype Phantom (\n)\n",
        "group g (\n UserStrGlobal = \"tab\\there \\\\n\"\n Empty = \"\"\n Weird = \"{}(),=\"\n)\n",
    ] {
        assert_round_trip(text);
    }
}
