//! The intent loader on bad input: one folder per defect under `tests/bad_intents/<case>/`,
//! each loaded through the library API with a fixed clock. Every case asserts the exact
//! `file:line:col` of its diagnostic and snapshots the rendered diagnostics (insta).
//! Also: the example estate in `intents/` loads clean and passes the guardrails.

use intentwall::intent::{guardrails, load, LoadOptions};
use std::path::{Path, PathBuf};

fn today() -> LoadOptions {
    LoadOptions {
        today: time::macros::date!(2026 - 03 - 15),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Load a bad case; it must fail; the rendering must contain `at` (`file:line:col`) on an
/// error line; snapshot the whole rendering.
fn bad(case: &str, at: &str) -> String {
    let dir = root().join("tests/bad_intents").join(case);
    let diags = match load(&dir, &today()) {
        Ok(l) => panic!("{case}: loaded without errors (warnings: {})", l.warnings),
        Err(d) => d,
    };
    assert!(diags.has_errors(), "{case}");
    let text = diags.to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("error: {at}: "))),
        "{case}: expected an error at {at}, got:\n{text}"
    );
    insta::assert_snapshot!(case, text);
    text
}

#[test]
fn example_estate_loads_clean() {
    let l = load(&root().join("intents"), &today()).unwrap_or_else(|d| panic!("{d}"));
    assert!(l.warnings.is_empty(), "{}", l.warnings);
    let i = &l.intent;
    assert!(i.deployments.len() >= 3);
    assert_eq!(i.digest.len(), 64);
    for d in i.deployments.values() {
        assert_eq!(d.clouds.len(), 3, "{}", d.name);
        let leaves = d.groups.values().filter(|g| !g.is_composite()).count();
        assert!(leaves >= 10, "{}: {leaves} leaf groups", d.name);
        assert!(d.flows.len() >= 25, "{}: {} flows", d.name, d.flows.len());
        assert!(d.expects.len() >= 8, "{}", d.name);
        for c in d.clouds.keys() {
            assert!(d.resolve(*c).is_some());
        }
    }
    let eu = &i.deployments["eu"];
    assert!(!eu.flows.iter().any(|f| f.name == "analytics-export-to-us"));
    assert!(eu.flows.iter().any(|f| f.name == "analytics-export-to-eu"));
    assert!(i.deployments["us"].flows.iter().any(|f| f.name == "analytics-export-to-us"));
    assert!(!i.deployments["ap"].flows.iter().any(|f| f.name == "partner-sftp"));
    assert!(i.deployments["ap"].groups.contains_key("settlement"));
    assert!(!i.deployments["us"].groups.contains_key("settlement"));
}

#[test]
fn example_estate_passes_guardrails() {
    let l = load(&root().join("intents"), &today()).unwrap();
    let f = guardrails::check(&l.intent);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn example_exception_expires_after_the_last_valid_day() {
    let last = LoadOptions { today: time::macros::date!(2027 - 06 - 30) };
    assert!(load(&root().join("intents"), &last).is_ok());
    let after = LoadOptions { today: time::macros::date!(2027 - 07 - 01) };
    let d = load(&root().join("intents"), &after).unwrap_err();
    assert!(d.to_string().contains("expired on 2027-06-30"), "{d}");
}
