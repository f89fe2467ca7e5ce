//! Rules whose match the model cannot know are never modelled as matching nothing: what they
//! could open is an `unverifiable` finding (exit 3) and the target is never called proven.
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

fn plan_findings(dir: &Path, target: (&str, &str)) -> (i32, Vec<(String, String)>, Value) {
    let o = iw(dir, &["plan", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("plan json: {e}\n{}", text(&o.stderr));
    });
    let t = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["deployment"] == target.0 && t["provider"] == target.1)
        .unwrap()
        .clone();
    let fs = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (code(&o), fs, t["simulation"].clone())
}

fn aws_db_ingress(dir: &Path, perm: Value) {
    edit(dir, "us/aws.json", |v| {
        let sg = v["SecurityGroups"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|g| g["GroupName"] == "iw-db")
            .unwrap();
        sg["IpPermissions"].as_array_mut().unwrap().push(perm);
    });
}

/// db ingress on tcp/5432 from prefix list pl-0123456789abcdef0.
fn prefix_list_perm() -> Value {
    json!({
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "IpRanges": [], "Ipv6Ranges": [], "UserIdGroupPairs": [],
        "PrefixListIds": [{ "PrefixListId": "pl-0123456789abcdef0" }]
    })
}

/// A hand-made rule (not named `iw-`) in our NSG: tcp/5432 from the AzureCloud service tag
/// into db.
fn add_azure_cloud_to_db(dir: &Path) {
    let asg = {
        let s = std::fs::read_to_string(dir.join("snapshots/us/azure.json")).unwrap();
        let i = s
            .find("/applicationSecurityGroups/iw-db")
            .expect("db ASG in the snapshot");
        let start = s[..i].rfind('"').unwrap() + 1;
        format!("{}/applicationSecurityGroups/iw-db", &s[start..i])
    };
    edit(dir, "us/azure.json", |v| {
        let nsg = v
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|n| n["name"] == "nsg-prod-us")
            .unwrap();
        nsg["securityRules"].as_array_mut().unwrap().push(json!({
            "name": "AllowAzureCloudToDb",
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "access": "Allow",
            "direction": "Inbound",
            "priority": 1500,
            "protocol": "Tcp",
            "sourceAddressPrefix": "AzureCloud",
            "sourceAddressPrefixes": [],
            "sourcePortRange": "*",
            "sourcePortRanges": [],
            "destinationAddressPrefix": "",
            "destinationAddressPrefixes": [],
            "destinationApplicationSecurityGroups": [{ "id": asg }],
            "destinationPortRange": "5432",
            "destinationPortRanges": []
        }));
    });
}

#[test]
fn an_undeclared_azure_service_tag_into_db_is_unverifiable() {
    let t = scratch();
    add_azure_cloud_to_db(t.path());
    let (code, fs, sim) = plan_findings(t.path(), ("us", "azure"));
    assert_eq!(code, 3, "{fs:?}");
    assert!(
        fs.iter().any(|(k, m)| k == "unverifiable"
            && m.contains("AllowAzureCloudToDb")
            && m.contains("AzureCloud")),
        "{fs:?}"
    );
    assert!(sim["unverifiable"].as_u64().unwrap() > 0);
    // the human report never calls the target proven
    let o = iw(
        t.path(),
        &["plan", "--deployment", "us", "--provider", "azure"],
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("unverifiable (depend on unknown matches)"),
        "{out}"
    );
    assert!(!out.contains("simulation: proven"), "{out}");
}

/// The keys of the changes planned for one target, with their actions.
fn planned(dir: &Path, target: (&str, &str)) -> Vec<(String, String)> {
    let o = iw(dir, &["plan", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["deployment"] == target.0 && t["provider"] == target.1)
        .unwrap()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A rule of unknown match added by hand to an SG intentwall owns is drift: the plan deletes
/// it, so nothing after apply depends on it and the target is not blocked.
fn hand_added_unknown_rule_is_healed(perm: Value, key: &str) {
    let t = scratch();
    aws_db_ingress(t.path(), perm);
    let (code, fs, sim) = plan_findings(t.path(), ("us", "aws"));
    assert_eq!(code, 2, "{fs:?}");
    assert!(fs.is_empty(), "{fs:?}");
    assert_eq!(sim["unverifiable"].as_u64().unwrap_or(0), 0);
    assert!(
        planned(t.path(), ("us", "aws")).contains(&("delete".to_string(), key.to_string())),
        "{key} not planned for deletion"
    );
}

#[test]
fn an_absent_aws_prefix_list_in_our_sg_is_deleted_not_trusted() {
    hand_added_unknown_rule_is_healed(
        prefix_list_perm(),
        "sg:iw-db/ingress/tcp/5432-5432/pl:pl-0123456789abcdef0",
    );
}

#[test]
fn an_aws_icmp_rule_with_type_minus_one_and_a_code_in_our_sg_is_deleted() {
    hand_added_unknown_rule_is_healed(
        json!({
            "IpProtocol": "icmp", "FromPort": -1, "ToPort": 5,
            "IpRanges": [{ "CidrIp": "0.0.0.0/0" }], "Ipv6Ranges": [],
            "UserIdGroupPairs": [], "PrefixListIds": []
        }),
        "sg:iw-db/ingress/icmp/any:5/cidr:0.0.0.0/0",
    );
}

/// Add the line `extra` (a `key: value` in YAML flow style) to the placement of `cloud` for
/// deployment `us`.
fn declare(dir: &Path, cloud: &str, extra: &str) {
    let p = dir.join("intents/intentwall.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let us = text.find("\n  us:\n").expect("deployment us");
    let at = us
        + text[us..]
            .find(&format!("\n    {cloud}:\n"))
            .expect("placement");
    let line_end = at + 1 + text[at + 1..].find('\n').unwrap();
    let text = format!("{}\n      {extra}{}", &text[..line_end], &text[line_end..]);
    std::fs::write(&p, text).unwrap();
}

#[test]
fn a_declared_service_tag_is_known_and_then_judged_exactly() {
    let t = scratch();
    add_azure_cloud_to_db(t.path());
    declare(
        t.path(),
        "azure",
        "service_tags: { AzureCloud: [192.0.2.0/24] }",
    );
    let (code, fs, sim) = plan_findings(t.path(), ("us", "azure"));
    // known now: it opens db to 192.0.2.0/24, which the intent denies; the rule is not ours
    // (no `iw-` name), so it is kept and the widening is a conflict
    assert_eq!(code, 3, "{fs:?}");
    assert!(fs.iter().all(|(k, _)| k != "unverifiable"), "{fs:?}");
    assert!(
        fs.iter().any(|(k, m)| k == "conflict"
            && m.contains("192.0.2.")
            && m.contains("AllowAzureCloudToDb")),
        "{fs:?}"
    );
    assert_eq!(sim["unverifiable"].as_u64().unwrap_or(0), 0);
}

#[test]
fn a_malformed_address_book_is_an_intent_error() {
    let t = scratch();
    declare(t.path(), "aws", "prefix_lists: { office: [10.0.0.5/24] }");
    let o = iw(t.path(), &["validate"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("is not a prefix list id"), "{err}");
    let t = scratch();
    declare(
        t.path(),
        "azure",
        "service_tags: { AzureMonitor: [10.0.0.5/24] }",
    );
    let o = iw(t.path(), &["validate"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("host bits"), "{err}");
}
