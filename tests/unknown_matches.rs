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

#[test]
fn an_undeclared_azure_service_tag_into_db_is_unverifiable() {
    let t = scratch();
    let asg = {
        let s = std::fs::read_to_string(t.path().join("snapshots/us/azure.json")).unwrap();
        let i = s
            .find("/applicationSecurityGroups/iw-db")
            .expect("db ASG in the snapshot");
        let start = s[..i].rfind('"').unwrap() + 1;
        format!("{}/applicationSecurityGroups/iw-db", &s[start..i])
    };
    edit(t.path(), "us/azure.json", |v| {
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

#[test]
fn an_absent_aws_prefix_list_is_unverifiable() {
    let t = scratch();
    aws_db_ingress(t.path(), prefix_list_perm());
    let (code, fs, _) = plan_findings(t.path(), ("us", "aws"));
    assert_eq!(code, 3, "{fs:?}");
    assert!(
        fs.iter()
            .any(|(k, m)| k == "unverifiable" && m.contains("pl-0123456789abcdef0")),
        "{fs:?}"
    );
}

#[test]
fn an_aws_icmp_rule_with_type_minus_one_and_a_code_is_unverifiable() {
    let t = scratch();
    aws_db_ingress(
        t.path(),
        json!({
            "IpProtocol": "icmp", "FromPort": -1, "ToPort": 5,
            "IpRanges": [{ "CidrIp": "0.0.0.0/0" }], "Ipv6Ranges": [],
            "UserIdGroupPairs": [], "PrefixListIds": []
        }),
    );
    let (code, fs, _) = plan_findings(t.path(), ("us", "aws"));
    assert_eq!(code, 3, "{fs:?}");
    assert!(
        fs.iter()
            .any(|(k, m)| k == "unverifiable" && m.contains("ICMP type -1")),
        "{fs:?}"
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
fn a_declared_prefix_list_is_known_and_then_judged_exactly() {
    let t = scratch();
    aws_db_ingress(t.path(), prefix_list_perm());
    declare(
        t.path(),
        "aws",
        "prefix_lists: { pl-0123456789abcdef0: [192.0.2.0/24] }",
    );
    let (code, fs, sim) = plan_findings(t.path(), ("us", "aws"));
    // known now: it opens db to 192.0.2.0/24, which the intent denies
    assert_eq!(code, 3, "{fs:?}");
    assert!(fs.iter().all(|(k, _)| k != "unverifiable"), "{fs:?}");
    assert!(
        fs.iter()
            .any(|(_, m)| m.contains("192.0.2.0") && m.contains("pl-0123456789abcdef0")),
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
