//! End-to-end tests of `intentwall audit` (the observed state judged against the intent) and
//! of `graph --format svg`: verdicts and exit codes on the recorded example estate, after
//! apply, and with drift made by hand in each direction; every format's shape.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The time every audit here states (INTENTWALL_NOW), so reports are reproducible.
const NOW: &str = "2026-11-22T09:30:00Z";

fn audit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intentwall"))
        .current_dir(dir)
        .env("INTENTWALL_TODAY", TODAY)
        .env("INTENTWALL_NOW", NOW)
        .env_remove("RUST_LOG")
        .arg("audit")
        .args(args)
        .output()
        .expect("run intentwall")
}

fn json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let o = audit(dir, &all);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&o.stdout), text(&o.stderr)));
    (code(&o), v)
}

fn target<'a>(v: &'a Value, dep: &str, cloud: &str) -> &'a Value {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["deployment"] == dep && t["provider"] == cloud)
        .unwrap_or_else(|| panic!("no target {dep}/{cloud}"))
}

fn verdict(t: &Value) -> Vec<&str> {
    t["verdict"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn differences<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}

/// The example estate applied in a scratch copy: every target holds what the intent says.
fn applied() -> tempfile::TempDir {
    let t = scratch();
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 0, "apply: {}", text(&o.stderr));
    t
}

#[test]
fn recorded_example_state_drifts_wider_and_narrower_exit_3() {
    let (rc, v) = json(&root(), &[]);
    assert_eq!(rc, 3);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["generated_at"], NOW);
    assert_eq!(v["compliant"], false);
    // every target plan knows, with the same intent digest and state fingerprints
    let p = iw(&root(), &["plan", "--format", "json"]);
    let plan: Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(v["intent_digest"], plan["intent_digest"]);
    let planned = plan["targets"].as_array().unwrap();
    assert_eq!(v["targets"].as_array().unwrap().len(), planned.len());
    for pt in planned {
        let t = target(
            &v,
            pt["deployment"].as_str().unwrap(),
            pt["provider"].as_str().unwrap(),
        );
        assert_eq!(t["fingerprint"], pt["fingerprint"]);
        assert!(t["classes"].as_u64().unwrap() > 0);
    }
    // the hand-kept legacy SFTP rule lets 198.51.100.0/25 reach batch on tcp/22: exposure,
    // named by the deciding native rule
    let t = target(&v, "us", "gcp");
    assert_eq!(verdict(t), ["drift-wider", "drift-narrower"]);
    let wider = differences(t, "wider");
    let sftp = wider
        .iter()
        .find(|d| d["native"]["rule"] == "iw-us-legacy-sftp-in-1")
        .expect("the legacy sftp rule is reported");
    assert_eq!(sftp["intent"]["allowed"], false);
    assert_eq!(sftp["native"]["allowed"], true);
    assert_eq!(sftp["probe"]["packet"]["port"], 22);
    assert_eq!(sftp["probe"]["dst"]["group"], "batch");
    // search-from-worker was never applied: an outage, decided by the managed default deny
    let narrower = differences(t, "narrower");
    assert_eq!(narrower.len(), 1);
    let n = narrower[0];
    assert_eq!(n["intent"]["allowed"], true);
    assert_eq!(n["intent"]["flows"][0], "search-from-worker");
    assert_eq!(n["native"]["allowed"], false);
    assert_eq!(n["probe"]["src"]["group"], "worker");
    assert_eq!(t["regions"]["wider"].as_u64(), Some(wider.len() as u64));
    assert_eq!(t["regions"]["narrower"], 1);
    // on AWS the same missing rule leaves the cloud's implicit deny deciding
    let aws = target(&v, "us", "aws");
    let n = differences(aws, "narrower");
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["native"]["rule"], Value::Null);
}

#[test]
fn after_apply_every_target_is_compliant_exit_0() {
    let t = applied();
    let (rc, v) = json(t.path(), &[]);
    assert_eq!(rc, 0, "{v:#}");
    assert_eq!(v["compliant"], true);
    for t in v["targets"].as_array().unwrap() {
        assert_eq!(verdict(t), ["compliant"], "{t:#}");
        assert!(t["differences"].as_array().unwrap().is_empty());
        assert_eq!(t["regions"]["wider"], 0);
        assert_eq!(t["regions"]["narrower"], 0);
    }
    let o = audit(t.path(), &[]);
    assert_eq!(code(&o), 0);
    assert!(
        text(&o.stdout).contains("Audit: all 9 target(s) compliant."),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn an_unmanaged_rule_that_opens_traffic_is_drift_wider_only_there() {
    let t = applied();
    add_unmanaged_gcp_allow(t.path(), "hand-made-redis", 6379);
    let (rc, v) = json(t.path(), &[]);
    assert_eq!(rc, 3);
    for x in v["targets"].as_array().unwrap() {
        let here = x["deployment"] == "us" && x["provider"] == "gcp";
        if !here {
            assert_eq!(verdict(x), ["compliant"], "{x:#}");
        }
    }
    let g = target(&v, "us", "gcp");
    assert_eq!(verdict(g), ["drift-wider"]);
    for d in differences(g, "wider") {
        assert_eq!(d["native"]["rule"], "hand-made-redis");
        assert_eq!(d["native"]["managed"], false);
        assert_eq!(d["probe"]["packet"]["port"], 6379);
    }
    assert!(g["unmanaged_rules"].as_u64().unwrap() > 0);
}

#[test]
fn a_deleted_managed_rule_is_drift_narrower_only() {
    let t = applied();
    let path = t.path().join("snapshots/us/gcp.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let list = match doc.as_array_mut() {
        Some(l) => l,
        None => doc["items"].as_array_mut().unwrap(),
    };
    let before = list.len();
    list.retain(|r| r["name"] != "iw-us-api-from-web-in-1");
    assert_eq!(list.len(), before - 1, "the rule exists after apply");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let (rc, v) = json(t.path(), &["--deployment", "us", "--provider", "gcp"]);
    assert_eq!(rc, 3);
    assert_eq!(v["targets"].as_array().unwrap().len(), 1);
    let g = target(&v, "us", "gcp");
    assert_eq!(verdict(g), ["drift-narrower"]);
    let n = differences(g, "narrower");
    assert!(!n.is_empty());
    for d in n {
        assert_eq!(d["probe"]["src"]["group"], "web");
        assert_eq!(d["probe"]["dst"]["group"], "api");
        assert_eq!(d["intent"]["allowed"], true);
    }
}

#[test]
fn missing_snapshot_root_and_bad_flags_are_errors_exit_1() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&root().join("intents"), &t.path().join("intents"));
    let o = audit(t.path(), &[]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stdout).is_empty());
    assert!(text(&o.stderr).contains("snapshots"), "{}", text(&o.stderr));
    let o = audit(&root(), &["--deployment", "nowhere"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("nowhere"), "{}", text(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_intentwall"))
        .current_dir(root())
        .env("INTENTWALL_NOW", "yesterday")
        .arg("audit")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("RFC 3339"), "{}", text(&o.stderr));
    let o = audit(&root(), &["--format", "junit"]);
    assert_eq!(code(&o), 1);
}

#[test]
fn human_report_names_verdicts_rules_and_the_time() {
    let o = audit(&root(), &["--deployment", "us"]);
    assert_eq!(code(&o), 3);
    let s = text(&o.stdout);
    assert!(
        s.starts_with(&format!("intentwall audit at {NOW}, intent sha256:")),
        "{s}"
    );
    assert!(
        s.contains("us / gcp  (snapshots/us/gcp.json, sha256:"),
        "{s}"
    );
    assert!(s.contains("DRIFT-WIDER, DRIFT-NARROWER"), "{s}");
    assert!(
        s.contains("gcp says allow by rule `iw-us-legacy-sftp-in-1`"),
        "{s}"
    );
    assert!(
        s.ends_with("Audit: 3 of 3 target(s) drifted (3 wider, 3 narrower, 0 unverified).\n"),
        "{s}"
    );
}

#[test]
fn markdown_report() {
    let o = audit(&root(), &["--format", "markdown", "--deployment", "us"]);
    assert_eq!(code(&o), 3);
    let (_, v) = json(&root(), &[]);
    // the intent digest follows every byte of the intent files: not what this snapshot is about
    let md = text(&o.stdout).replace(v["intent_digest"].as_str().unwrap(), "[intent digest]");
    insta::assert_snapshot!("audit_markdown_us", md);
}

/// Every attribute value of an element tree.
fn attributes<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<(&'a str, &'a str)> {
    doc.descendants()
        .flat_map(|n| n.attributes().map(|a| (a.name(), a.value())))
        .collect()
}

#[test]
fn html_evidence_page_is_self_contained_and_complete() {
    let o = audit(&root(), &["--format", "html"]);
    assert_eq!(code(&o), 3);
    let html = text(&o.stdout);
    let (_, v) = json(&root(), &[]);
    // well-formed: the page is also XML, so its structure can be checked here
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // nothing from elsewhere: no scripts, no sources, links only within the page, and a
    // policy that forbids any fetch
    assert!(!doc.descendants().any(|n| n.has_tag_name("script")));
    for (name, value) in attributes(&doc) {
        assert!(name != "src", "{name}={value}");
        if name == "href" {
            assert!(value.starts_with('#'), "{value}");
        }
    }
    // url() only names the picture's own markers
    for (at, _) in html.match_indices("url(") {
        assert!(html[at..].starts_with("url(#"), "{}", &html[at..at + 40]);
    }
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    // the evidence: time, digest, every target with its fingerprint and verdict
    let time = doc.descendants().find(|n| n.has_tag_name("time")).unwrap();
    assert_eq!(time.attribute("datetime"), Some(NOW));
    let digest = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("intent-digest"))
        .unwrap();
    assert_eq!(Some(digest.text().unwrap()), v["intent_digest"].as_str());
    let rows: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("data-target").is_some())
        .collect();
    assert_eq!(rows.len(), 9);
    for t in v["targets"].as_array().unwrap() {
        let key = format!(
            "{}/{}",
            t["deployment"].as_str().unwrap(),
            t["provider"].as_str().unwrap()
        );
        let row = rows
            .iter()
            .find(|r| r.attribute("data-target") == Some(key.as_str()))
            .unwrap_or_else(|| panic!("no row for {key}"));
        let row_text: String = row.descendants().filter_map(|n| n.text()).collect();
        assert!(
            row_text.contains(t["fingerprint"].as_str().unwrap()),
            "{row_text}"
        );
        assert!(row_text.contains("drift-wider"), "{row_text}");
    }
    assert!(html.contains("iw-us-legacy-sftp-in-1"));
    // the service graph, inline, with the drifted groups marked
    let svg = doc.descendants().find(|n| n.has_tag_name("svg")).unwrap();
    let drifted: Vec<&str> = svg
        .descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split(' ').any(|w| w == "drift"))
        })
        .filter_map(|n| n.attribute("data-name"))
        .collect();
    assert!(
        drifted.contains(&"batch") && drifted.contains(&"search"),
        "{drifted:?}"
    );
    // the exposed end is marked, not every group that can send to it
    assert!(!drifted.contains(&"bastion"), "{drifted:?}");
}

#[test]
fn compliant_html_page_says_so() {
    let t = applied();
    let o = audit(t.path(), &["--format", "html", "--deployment", "eu"]);
    assert_eq!(code(&o), 0);
    let html = text(&o.stdout);
    assert!(html.contains("id=\"result\">compliant</span>"), "{html}");
    assert!(html.contains("None: every packet of every target gets the intent's verdict."));
    assert!(!html.contains(" drift\""), "no group is marked");
}

#[test]
fn graph_svg_parses_and_names_every_node() {
    let o = iw(&root(), &["graph", "--format", "svg"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let svg = text(&o.stdout);
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}"));
    assert!(doc
        .root_element()
        .has_tag_name(("http://www.w3.org/2000/svg", "svg")));
    let j = iw(&root(), &["graph", "--format", "json"]);
    let graphs: Value = serde_json::from_slice(&j.stdout).unwrap();
    for g in graphs.as_array().unwrap() {
        let dep = g["deployment"].as_str().unwrap();
        let part = doc
            .descendants()
            .find(|n| n.attribute("data-deployment") == Some(dep))
            .unwrap_or_else(|| panic!("no picture of {dep}"));
        for node in g["nodes"].as_array().unwrap() {
            let name = node["name"].as_str().unwrap();
            let drawn = part
                .descendants()
                .find(|n| n.attribute("data-name") == Some(name))
                .unwrap_or_else(|| panic!("{dep}: node {name} not drawn"));
            let label: String = drawn
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text())
                .collect();
            assert!(label.starts_with(name), "{label}");
        }
        // one path per merged edge: at least one per distinct (from, to) pair
        let pairs: std::collections::BTreeSet<(String, String)> = g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["from"].to_string(), e["to"].to_string()))
            .collect();
        let paths = part
            .descendants()
            .filter(|n| n.has_tag_name("path"))
            .count();
        assert!(
            paths >= pairs.len(),
            "{dep}: {paths} paths for {} pairs",
            pairs.len()
        );
    }
    // deterministic: the same intent draws the same picture
    let again = iw(&root(), &["graph", "--format", "svg"]);
    assert_eq!(text(&again.stdout), svg);
}

#[test]
fn a_rule_of_unknown_match_makes_the_target_unverified_never_compliant() {
    let t = applied();
    let path = t.path().join("snapshots/us/azure.json");
    let s = std::fs::read_to_string(&path).unwrap();
    // the db ASG's id, as the snapshot records it
    let at = s.find("/applicationSecurityGroups/iw-db").unwrap();
    let start = s[..at].rfind('"').unwrap() + 1;
    let asg = format!("{}/applicationSecurityGroups/iw-db", &s[start..at]);
    let mut doc: Value = serde_json::from_str(&s).unwrap();
    let nsg = doc
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == "nsg-prod-us")
        .unwrap();
    // a hand-made allow from the AzureCloud service tag, whose ranges nobody declared
    nsg["securityRules"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "AllowAzureCloudToDb",
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "access": "Allow", "direction": "Inbound", "priority": 1500, "protocol": "Tcp",
            "sourceAddressPrefix": "AzureCloud", "sourceAddressPrefixes": [],
            "sourcePortRange": "*", "sourcePortRanges": [],
            "destinationAddressPrefix": "", "destinationAddressPrefixes": [],
            "destinationApplicationSecurityGroups": [{ "id": asg }],
            "destinationPortRange": "5432", "destinationPortRanges": []
        }));
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let (rc, v) = json(t.path(), &["--deployment", "us", "--provider", "azure"]);
    assert_eq!(rc, 3);
    let a = target(&v, "us", "azure");
    assert!(verdict(a).contains(&"unverified"), "{a:#}");
    assert!(!verdict(a).contains(&"compliant"));
    let u = differences(a, "unverifiable");
    assert!(!u.is_empty());
    assert_eq!(u[0]["native"]["allowed"], Value::Null);
    assert_eq!(u[0]["native"]["unknown"][0][0], "AllowAzureCloudToDb");
    assert_eq!(u[0]["probe"]["dst"]["group"], "db");
}

#[test]
fn a_target_without_recorded_state_is_judged_empty() {
    let t = applied();
    std::fs::remove_file(t.path().join("snapshots/eu/gcp.json")).unwrap();
    let (rc, v) = json(t.path(), &["--deployment", "eu"]);
    assert_eq!(rc, 3);
    let g = target(&v, "eu", "gcp");
    assert_eq!(g["existed"], false);
    // nothing of ours is there: the cloud's implied rules block every flow into our groups
    assert_eq!(g["rules"], g["unmanaged_rules"]);
    assert!(verdict(g).contains(&"drift-narrower"), "{g:#}");
    assert_eq!(verdict(target(&v, "eu", "aws")), ["compliant"]);
    let o = audit(t.path(), &["--deployment", "eu", "--provider", "gcp"]);
    assert!(
        text(&o.stdout).contains(": no recorded state"),
        "{}",
        text(&o.stdout)
    );
}
