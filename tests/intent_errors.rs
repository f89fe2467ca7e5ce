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
    assert!(
        i.digest.starts_with("sha256:") && i.digest.len() == 71,
        "{}",
        i.digest
    );
    for d in i.deployments.values() {
        assert_eq!(d.clouds.len(), 3, "{}", d.name);
        let leaves = d.groups.values().filter(|g| !g.is_composite()).count();
        assert!(leaves >= 10, "{}: {leaves} leaf groups", d.name);
        assert!(d.flows.len() >= 25, "{}: {} flows", d.name, d.flows.len());
        assert!(d.expects.len() >= 8, "{}", d.name);
        for c in d.clouds.keys() {
            assert!(intentwall::graph::resolve(d, *c).is_some());
        }
    }
    let eu = &i.deployments["eu"];
    assert!(!eu.flows.iter().any(|f| f.name == "analytics-export-to-us"));
    assert!(eu.flows.iter().any(|f| f.name == "analytics-export-to-eu"));
    assert!(i.deployments["us"]
        .flows
        .iter()
        .any(|f| f.name == "analytics-export-to-us"));
    assert!(!i.deployments["ap"]
        .flows
        .iter()
        .any(|f| f.name == "partner-sftp"));
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
    let last = LoadOptions {
        today: time::macros::date!(2027 - 06 - 30),
    };
    let l = load(&root().join("intents"), &last).unwrap_or_else(|d| panic!("{d}"));
    assert!(guardrails::check(&l.intent).is_empty());
    // the day after, the intent still loads (not an error), but the flow the exception
    // covered is a guardrail finding in every deployment, naming the flow and the date
    let after = LoadOptions {
        today: time::macros::date!(2027 - 07 - 01),
    };
    let l = load(&root().join("intents"), &after).unwrap_or_else(|d| panic!("{d}"));
    let f = guardrails::check(&l.intent);
    assert_eq!(f.len(), l.intent.deployments.len(), "{f:?}");
    for f in &f {
        assert_eq!(f.kind, intentwall_contract::FindingKind::Guardrail);
        assert_eq!(f.flow.as_deref(), Some("bastion-ssh-break-glass"));
        assert!(f.message.contains("expired on 2027-06-30"), "{}", f.message);
        assert!(f.message.contains("(flows.yaml:53:9)"), "{}", f.message);
    }
}

// One defect per folder: the error must point at exactly this place.
#[test]
fn composite_with_addresses() {
    bad("composite_with_addresses", "more_groups.yaml:5:5");
}
#[test]
fn drop_guardrail() {
    bad("drop_guardrail", "regions/us/override.yaml:4:8");
}
#[test]
fn drop_unknown_flow() {
    bad("drop_unknown_flow", "regions/us/override.yaml:4:5");
}
#[test]
fn duplicate_group() {
    bad("duplicate_group", "more_groups.yaml:4:3");
}
#[test]
fn egress_invalid() {
    bad("egress_invalid", "groups.yaml:4:45");
}
/// An expired exception is no load error: its flow is a guardrail finding naming the flow's
/// place, the expiry date and where the date is written.
#[test]
fn expired_exception() {
    let dir = root().join("tests/bad_intents/expired_exception");
    let l = load(&dir, &today()).unwrap_or_else(|d| panic!("{d}"));
    let f = guardrails::check(&l.intent);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].flow.as_deref(), Some("bastion-ssh"));
    insta::assert_snapshot!("expired_exception_finding", f[0].message);
    // valid through its last day
    let last = LoadOptions {
        today: time::macros::date!(2025 - 12 - 31),
    };
    let l = load(&dir, &last).unwrap_or_else(|d| panic!("{d}"));
    assert!(guardrails::check(&l.intent).is_empty());
}
#[test]
fn group_network_clash() {
    bad("group_network_clash", "networks.yaml:4:3");
}
#[test]
fn host_bits() {
    bad("host_bits", "networks.yaml:4:10");
}
#[test]
fn include_cycle() {
    bad("include_cycle", "more_groups.yaml:3:13");
}
#[test]
fn invalid_cidr() {
    bad("invalid_cidr", "networks.yaml:4:10");
}
#[test]
fn network_to_network() {
    bad("network_to_network", "flows.yaml:7:37");
}
#[test]
fn port_out_of_range() {
    bad("port_out_of_range", "flows.yaml:4:58");
}
#[test]
fn port_reversed() {
    bad("port_reversed", "flows.yaml:4:58");
}
#[test]
fn quota_above_max() {
    let text = bad("quota_above_max", "intentwall.yaml:5:36");
    // both placements' excesses, and nothing about the valid `rules_per_nsg: 1000`
    assert!(text.contains("error: intentwall.yaml:14:27: "), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("error: ")).count(),
        2,
        "{text}"
    );
}
#[test]
fn quota_not_integer() {
    bad("quota_not_integer", "intentwall.yaml:9:33");
}
#[test]
fn quota_unknown_key() {
    bad("quota_unknown_key", "intentwall.yaml:5:22");
}
#[test]
fn quota_zero() {
    bad("quota_zero", "intentwall.yaml:5:36");
}
#[test]
fn region_no_deployment() {
    bad("region_no_deployment", "regions/mars/extra.yaml:1:1");
}
#[test]
fn unknown_deployment_addresses() {
    bad("unknown_deployment_addresses", "groups.yaml:4:50");
}
#[test]
fn unknown_deployment_flow() {
    bad("unknown_deployment_flow", "flows.yaml:4:87");
}
#[test]
fn unknown_group() {
    bad("unknown_group", "flows.yaml:5:41");
}
#[test]
fn unknown_key_exception() {
    bad("unknown_key_exception", "flows.yaml:11:41");
}
#[test]
fn unknown_key_flow() {
    bad("unknown_key_flow", "flows.yaml:4:47");
}
#[test]
fn unknown_key_group() {
    bad("unknown_key_group", "groups.yaml:4:10");
}
#[test]
fn unknown_key_placement() {
    bad("unknown_key_placement", "intentwall.yaml:4:56");
}
#[test]
fn unknown_key_top() {
    bad("unknown_key_top", "extra.yaml:2:1");
}
#[test]
fn unknown_network() {
    bad("unknown_network", "networks.yaml:4:20");
}
#[test]
fn unknown_protocol() {
    bad("unknown_protocol", "flows.yaml:4:58");
}
#[test]
fn unknown_service() {
    bad("unknown_service", "flows.yaml:3:68");
}
#[test]
fn version_missing() {
    bad("version_missing", "groups.yaml:1:1");
}
#[test]
fn version_unsupported() {
    bad("version_unsupported", "groups.yaml:1:10");
}
#[test]
fn wrong_type() {
    bad("wrong_type", "groups.yaml:5:45");
}
#[test]
fn yaml_syntax() {
    bad("yaml_syntax", "extra.yaml:3:55");
}

// Names (they reach file paths and cloud resource names): one defect per folder.
#[test]
fn name_path_traversal() {
    let t = bad("name_path_traversal", "intentwall.yaml:6:3");
    assert!(t.contains("invalid deployment name `../../etc`"), "{t}");
}
#[test]
fn name_newline() {
    let t = bad("name_newline", "flows.yaml:7:13");
    // the newline is shown escaped: it cannot forge an extra diagnostic line
    assert!(t.contains("invalid flow name `web-to-api\\nadmin`"), "{t}");
}
#[test]
fn name_nul() {
    let t = bad("name_nul", "groups.yaml:6:3");
    assert!(!t.contains('\0'), "{t}");
}
#[test]
fn name_quotes() {
    bad("name_quotes", "networks.yaml:5:3");
}
#[test]
fn name_too_long() {
    let t = bad("name_too_long", "groups.yaml:6:3");
    assert!(t.contains("is 300 characters long"), "{t}");
    assert!(
        t.lines().all(|l| l.len() < 300),
        "the name is cut in the message:\n{t}"
    );
}
#[test]
fn name_leading_dash() {
    bad("name_leading_dash", "networks.yaml:7:3");
}
#[test]
fn region_bad_name() {
    bad("region_bad_name", "regions/-us:1:1");
}

// Placement values go into IAM documents and scopes: each cloud's own format.
#[test]
fn aws_account_wildcard() {
    bad("aws_account_wildcard", "intentwall.yaml:4:21");
}
#[test]
fn gcp_project_newline() {
    bad("gcp_project_newline", "intentwall.yaml:5:21");
}
#[test]
fn azure_rg_traversal() {
    bad("azure_rg_traversal", "intentwall.yaml:6:82");
}

// Smaller input defects.
#[test]
fn version_string() {
    let t = bad("version_string", "groups.yaml:1:10");
    assert!(t.contains("must be the number 1"), "{t}");
}
#[test]
fn port_plus() {
    bad("port_plus", "flows.yaml:4:58");
}
#[test]
fn ipv4_mapped() {
    let t = bad("ipv4_mapped", "networks.yaml:4:10");
    assert!(t.contains("write the IPv4 form `203.0.113.0/24`"), "{t}");
}
#[test]
fn non_utf8() {
    // the first invalid byte: `caf\xe9` on line 3
    bad("non_utf8", "groups.yaml:3:26");
}
#[test]
fn syntax_error_no_cascade() {
    let t = bad("syntax_error_no_cascade", "groups.yaml:5:50");
    // the broken file defines web, api, db: no "unknown group" from the files naming them,
    // but the other files' own problems are still reported
    assert!(t.contains("error: networks.yaml:4:10: "), "{t}");
    assert_eq!(
        t.lines().filter(|l| l.starts_with("error: ")).count(),
        2,
        "{t}"
    );
}

#[test]
fn a_byte_order_mark_is_not_a_key() {
    let base = root().join("tests/bad_intents/yaml_syntax");
    let mut files = Vec::new();
    for f in ["flows", "groups", "intentwall", "networks"] {
        let text = std::fs::read_to_string(base.join(format!("{f}.yaml"))).unwrap();
        files.push((format!("{f}.yaml"), format!("\u{feff}{text}")));
    }
    let l = intentwall::intent::load_files(&files, &today()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(l.intent.deployments["us"].flows.len(), 4);
}

#[test]
fn ten_thousand_services_load() {
    // a flow of 10,000 tokens and a service of 10,000 tokens: loading must stay linear-ish
    // (the result is asserted here, not the time; see the figures in the README)
    let toks: Vec<String> = (0..10_000)
        .map(|i| format!("tcp/{}", 1000 + 2 * i))
        .collect();
    let text = format!(
        "version: 1\ndeployments:\n  us:\n    gcp: {{ project: acme-prod-us, network: prod-us, cidr: 10.30.0.0/16 }}\nservices:\n  many: [{}]\ngroups:\n  web: {{}}\n  api: {{}}\nflows:\n  - {{ name: big, from: web, to: api, services: [{}] }}\n  - {{ name: big2, from: api, to: web, services: [many] }}\n",
        toks.join(", "),
        toks.join(", ")
    );
    let start = std::time::Instant::now();
    let l = intentwall::intent::load_files(&[("a.yaml".into(), text)], &today())
        .unwrap_or_else(|d| panic!("{d}"));
    eprintln!("10,000-token intent loaded in {:?}", start.elapsed());
    let us = &l.intent.deployments["us"];
    assert_eq!(us.flows[0].traffic().len(), 10_000);
    assert_eq!(us.flows[1].traffic().len(), 10_000);
    assert_eq!(us.flows[0].traffic(), us.flows[1].traffic());
}

#[test]
fn many_defects_are_all_reported_in_one_run() {
    let text = bad("many_defects", "flows.yaml:4:58");
    for at in [
        "flows.yaml:4:58",
        "flows.yaml:5:41",
        "groups.yaml:4:10",
        "groups.yaml:5:45",
        "networks.yaml:4:10",
        "regions/eu/x.yaml:1:1",
    ] {
        assert!(
            text.contains(&format!("error: {at}: ")),
            "missing {at} in:\n{text}"
        );
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("error: ")).count(),
        6,
        "{text}"
    );
    // sorted by file, line, column
    let places: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted);
}

#[test]
fn every_bad_case_has_a_test() {
    let src = include_str!("intent_errors.rs");
    for e in std::fs::read_dir(root().join("tests/bad_intents")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            src.contains(&format!("bad(\"{name}\""))
                || src.contains(&format!("bad_intents/{name}\"")),
            "no test for bad_intents/{name}"
        );
    }
}
