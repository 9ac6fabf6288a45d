//! The configuration corpus (tests/corpus/README.md): every valid
//! configuration loads with no problem and survives the writer's round
//! trip; every invalid one reports exactly the problems its `expect` file
//! lists, at the same file:line:column, and the messages are kept as a
//! snapshot (tests/corpus/invalid/NAME/diagnostics: delete it to refresh).

use had::cf;
use had::validate;
use std::fs;
use std::path::{Path, PathBuf};

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(kind);
    let mut v: Vec<PathBuf> = fs::read_dir(&dir).expect("corpus dir").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

/// `FILE:LINE:COLUMN` of each problem, FILE relative to the case directory.
fn where_of(case: &Path, d: &cf::Diagnostic) -> String {
    let file = d.file.strip_prefix(case).unwrap_or(&d.file);
    format!("{}:{}:{}", file.display(), d.line, d.column)
}

fn diagnostics(case: &Path) -> Vec<cf::Diagnostic> {
    match validate::load(&case.join("main.cf")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

#[test]
fn valid_configurations_load_and_round_trip() {
    let mut failures = Vec::new();
    for case in cases("valid") {
        let main = case.join("main.cf");
        if let Err(e) = validate::load(&main) {
            failures.push(format!("{}: {e}", case.display()));
            continue;
        }
        // parse -> write -> parse: the same model; write twice: same bytes.
        let text = fs::read_to_string(&main).expect("main.cf");
        let mut first = cf::parse_str(&main, &text).expect("parses");
        // The writer puts resources in haconf -dump order.
        first.sort_like_dump();
        let written = cf::write_config(&first);
        let second = cf::parse_str(&main, &written).unwrap_or_else(|e| panic!("{}: written back does not parse: {e}\n{written}", case.display()));
        assert_eq!(first, second, "{}: round trip changed the model", case.display());
        assert_eq!(written, cf::write_config(&second), "{}: writer is not stable", case.display());
    }
    assert!(failures.is_empty(), "valid configurations with problems:\n{}", failures.join("\n"));
}

#[test]
fn invalid_configurations_report_what_expect_says() {
    let mut failures = Vec::new();
    for case in cases("invalid") {
        let expect = fs::read_to_string(case.join("expect")).expect("expect file");
        let mut want: Vec<String> =
            expect.lines().filter(|l| !l.trim().is_empty()).map(|l| l.splitn(4, ':').take(3).collect::<Vec<_>>().join(":")).collect();
        want.sort();
        let diags = diagnostics(&case);
        let mut got: Vec<String> = diags.iter().map(|d| where_of(&case, d)).collect();
        got.sort();
        if got != want {
            let said: Vec<String> = diags.iter().map(|d| format!("{}: {}", where_of(&case, d), d.message)).collect();
            failures.push(format!("{}:\n  expected {want:?}\n  got      {said:#?}", case.file_name().unwrap().to_string_lossy()));
            continue;
        }
        // The messages themselves, as a snapshot.
        // Paths in messages relative to the case, as on any checkout.
        let prefix = format!("{}/", case.display());
        let text: String = diags.iter().map(|d| format!("{}: {}\n", where_of(&case, d), d.message.replace(&prefix, ""))).collect();
        let snap = case.join("diagnostics");
        match fs::read_to_string(&snap) {
            Ok(old) if old == text => {}
            Ok(old) => failures.push(format!("{}: messages changed:\n--- was\n{old}--- now\n{text}", case.display())),
            Err(_) => fs::write(&snap, &text).expect("write snapshot"),
        }
    }
    assert!(failures.is_empty(), "{} invalid configuration(s) differ:\n{}", failures.len(), failures.join("\n"));
}
