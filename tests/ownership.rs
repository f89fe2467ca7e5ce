//! What intentwall owns, it heals: hand edits of owned rules on every cloud are drift the plan
//! puts back (never a conflict that blocks the target), owned rules the intent does not produce
//! are deleted, and rules outside the owned perimeter are kept whatever their description says.
//! Run end to end through the binary on a scratch copy of the example estate.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use serde_json::{json, Value};
use std::path::Path;
mod common;
use common::*;

fn edit(dir: &Path, file: &str, f: impl FnOnce(&mut Value)) {
    let p = dir.join("snapshots").join(file);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn read(dir: &Path, file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("snapshots").join(file)).unwrap()).unwrap()
}

fn aws_sg<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    doc["SecurityGroups"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|g| g["GroupName"] == name)
        .unwrap()
}

fn azure_rules(doc: &mut Value) -> &mut Vec<Value> {
    doc.as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == "nsg-prod-us")
        .unwrap()["securityRules"]
        .as_array_mut()
        .unwrap()
}

fn gcp_rules(doc: &mut Value) -> &mut Vec<Value> {
    match doc {
        Value::Array(a) => a,
        v => v["items"].as_array_mut().unwrap(),
    }
}

/// A GCP rule of the deployment's network, shaped like the recorded ones.
fn gcp_rule(name: &str, description: &str, priority: u32, port: &str, disabled: bool) -> Value {
    json!({
        "name": name,
        "description": description,
        "network": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us",
        "direction": "INGRESS",
        "priority": priority,
        "sourceRanges": ["0.0.0.0/0"],
        "allowed": [{"IPProtocol": "tcp", "ports": [port]}],
        "disabled": disabled,
        "kind": "compute#firewall"
    })
}

/// An Azure rule in the `az` CLI shape.
fn azure_rule(
    name: &str,
    description: &str,
    direction: &str,
    access: &str,
    priority: u32,
    source: &str,
    port: &str,
) -> Value {
    json!({
        "name": name,
        "type": "Microsoft.Network/networkSecurityGroups/securityRules",
        "description": description,
        "access": access,
        "direction": direction,
        "priority": priority,
        "protocol": "Tcp",
        "sourceAddressPrefix": source,
        "sourceAddressPrefixes": [],
        "sourcePortRange": "*",
        "sourcePortRanges": [],
        "destinationAddressPrefix": "*",
        "destinationAddressPrefixes": [],
        "destinationPortRange": port,
        "destinationPortRanges": []
    })
}

/// The hand edits of deployment `us`, one per kind of drift and cloud:
/// - AWS: a rule added by hand to the owned SG `iw-db` (no marker), and the description of an
///   owned rule edited;
/// - Azure: an owned rule widened and its marker removed, an `iw-` rule made by someone else,
///   and a rule of another name carrying a marker-looking description (harmless: an outbound
///   deny from an address no workload has);
/// - GCP: an owned rule widened and its marker removed, an `iw-us-` rule made by hand, and a
///   disabled rule of another name carrying a marker-looking description.
fn hand_edit(dir: &Path) {
    edit(dir, "us/aws.json", |v| {
        let db = aws_sg(v, "iw-db");
        db["IpPermissions"].as_array_mut().unwrap().push(json!({
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ops debugging, by hand"}],
            "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []
        }));
        db["IpPermissions"][0]["UserIdGroupPairs"][0]["Description"] = json!("edited by hand");
    });
    edit(dir, "us/azure.json", |v| {
        let rules = azure_rules(v);
        let r = rules
            .iter_mut()
            .find(|r| r["name"] == "iw-web-from-edge-in-1")
            .unwrap();
        r["destinationPortRange"] = json!("3000-3010");
        r["description"] = json!("widened by hand for INC-4711");
        rules.push(azure_rule(
            "iw-ops-debug",
            "intentwall:ops-debug",
            "Inbound",
            "Allow",
            2500,
            "*",
            "22",
        ));
        rules.push(azure_rule(
            "ops-egress-guard",
            "intentwall:web-from-edge",
            "Outbound",
            "Deny",
            3500,
            "192.0.2.250/32",
            "1",
        ));
    });
    edit(dir, "us/gcp.json", |v| {
        let rules = gcp_rules(v);
        let r = rules
            .iter_mut()
            .find(|r| r["name"] == "iw-us-web-from-edge-in-1")
            .unwrap();
        r["allowed"] = json!([{"IPProtocol": "tcp", "ports": ["3000-3010"]}]);
        r["description"] = json!("widened by hand");
        rules.push(gcp_rule(
            "iw-us-ops-debug",
            "temporary, by hand",
            900,
            "22",
            false,
        ));
        rules.push(gcp_rule(
            "ops-copied-marker",
            "intentwall:web-from-edge",
            900,
            "22",
            true,
        ));
    });
}

/// The plan JSON's target `us/<provider>`.
fn target(plan: &Value, provider: &str) -> Value {
    plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["deployment"] == "us" && t["provider"] == provider)
        .unwrap()
        .clone()
}

fn change<'a>(t: &'a Value, key: &str) -> Option<&'a Value> {
    t["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
}

fn action(t: &Value, key: &str) -> Option<String> {
    change(t, key).map(|c| c["action"].as_str().unwrap().to_string())
}

fn plan_json(dir: &Path) -> (i32, Value) {
    let o = iw(dir, &["plan", "--deployment", "us", "--format", "json"]);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("plan json: {e}\n{}", text(&o.stderr)));
    (code(&o), v)
}

#[test]
fn hand_edits_of_owned_rules_are_planned_back_and_never_block() {
    let t = scratch();
    hand_edit(t.path());
    let (code, plan) = plan_json(t.path());
    assert_eq!(code, 2, "{plan:#}");
    for p in ["aws", "azure", "gcp"] {
        let tp = target(&plan, p);
        assert_eq!(tp["blocked"], false, "{p}: {:#}", tp["findings"]);
        assert_eq!(tp["findings"], json!([]), "{p}");
    }

    let aws = target(&plan, "aws");
    let added = "sg:iw-db/ingress/tcp/22-22/cidr:0.0.0.0/0";
    assert_eq!(action(&aws, added).as_deref(), Some("delete"));
    assert_eq!(change(&aws, added).unwrap()["before"]["managed"], true);
    assert_eq!(change(&aws, added).unwrap()["before"]["flow"], Value::Null);
    let edited: Vec<&Value> = aws["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["before"]["body"]["Description"] == "edited by hand")
        .collect();
    assert_eq!(edited.len(), 1, "{:#}", aws["changes"]);
    assert_eq!(edited[0]["action"], "update");
    assert!(edited[0]["after"]["body"]["Description"]
        .as_str()
        .unwrap()
        .starts_with("intentwall:"));

    let azure = target(&plan, "azure");
    assert_eq!(
        action(&azure, "rule:iw-web-from-edge-in-1").as_deref(),
        Some("update")
    );
    let back = &change(&azure, "rule:iw-web-from-edge-in-1").unwrap()["after"]["body"];
    assert_eq!(back["destinationPortRanges"], json!(["3000"]));
    assert_eq!(back["description"], "intentwall:web-from-edge");
    assert_eq!(
        action(&azure, "rule:iw-ops-debug").as_deref(),
        Some("delete")
    );
    assert_eq!(action(&azure, "rule:ops-egress-guard"), None);

    let gcp = target(&plan, "gcp");
    assert_eq!(
        action(&gcp, "fw:iw-us-web-from-edge-in-1").as_deref(),
        Some("update")
    );
    assert_eq!(
        action(&gcp, "fw:iw-us-ops-debug").as_deref(),
        Some("delete")
    );
    assert_eq!(action(&gcp, "fw:ops-copied-marker"), None);
}

#[test]
fn plan_apply_replan_heals_hand_edits_and_keeps_what_is_not_ours() {
    let t = scratch();
    hand_edit(t.path());
    let o = iw(
        t.path(),
        &["plan", "--deployment", "us", "--out", "plan.json"],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stdout));
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(
        code(&o),
        0,
        "stdout {}\nstderr {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let o = iw(t.path(), &["plan", "--deployment", "us"]);
    assert_eq!(code(&o), 0, "converged:\n{}", text(&o.stdout));

    // healed: the hand-added rules are gone and the edited ones are back to the intent
    let mut aws = read(t.path(), "us/aws.json");
    let db = aws_sg(&mut aws, "iw-db");
    let text_db = db.to_string();
    assert!(!text_db.contains("ops debugging, by hand"), "{text_db}");
    assert!(!text_db.contains("edited by hand"), "{text_db}");
    let mut azure = read(t.path(), "us/azure.json");
    let rules = azure_rules(&mut azure);
    assert!(rules.iter().all(|r| r["name"] != "iw-ops-debug"));
    let web = rules
        .iter()
        .find(|r| r["name"] == "iw-web-from-edge-in-1")
        .unwrap();
    assert_eq!(web["description"], "intentwall:web-from-edge");
    assert!(!web.to_string().contains("3000-3010"), "{web}");
    // not ours: kept exactly as it was, marker-looking description and all
    let kept = rules
        .iter()
        .find(|r| r["name"] == "ops-egress-guard")
        .unwrap();
    assert_eq!(kept["description"], "intentwall:web-from-edge");
    let mut gcp = read(t.path(), "us/gcp.json");
    let rules = gcp_rules(&mut gcp);
    assert!(rules.iter().all(|r| r["name"] != "iw-us-ops-debug"));
    let web = rules
        .iter()
        .find(|r| r["name"] == "iw-us-web-from-edge-in-1")
        .unwrap();
    assert_eq!(web["description"], "intentwall:web-from-edge");
    assert_eq!(
        web["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["3000"]}])
    );
    assert!(rules.iter().any(|r| r["name"] == "ops-copied-marker"));
}

#[test]
fn a_rule_not_ours_with_a_marker_description_that_widens_is_a_conflict_and_kept() {
    let t = scratch();
    edit(t.path(), "us/gcp.json", |v| {
        gcp_rules(v).push(gcp_rule(
            "ops-copied-marker",
            "intentwall:bastion-from-vpn",
            900,
            "22",
            false,
        ));
    });
    let (code, plan) = plan_json(t.path());
    assert_eq!(code, 3, "{plan:#}");
    let gcp = target(&plan, "gcp");
    assert_eq!(gcp["blocked"], true);
    assert!(
        gcp["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "conflict"
                && f["message"].as_str().unwrap().contains("ops-copied-marker")),
        "{:#}",
        gcp["findings"]
    );
    assert_eq!(
        action(&gcp, "fw:ops-copied-marker"),
        None,
        "never ours to delete"
    );
    // pruning unmanaged rules is the way to remove it
    let o = iw(
        t.path(),
        &[
            "plan",
            "--deployment",
            "us",
            "--prune-unmanaged",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        action(&target(&v, "gcp"), "fw:ops-copied-marker").as_deref(),
        Some("delete")
    );
}
