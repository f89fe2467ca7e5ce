//! Test helpers: small intents and probes written by hand, so the tests carry their own data.
#![allow(dead_code, unused_imports)] // each test binary uses a subset

pub use intentwall_contract::testkit::net as n;
pub use intentwall_contract::testkit::*;

use intentwall_aws::AwsProvider;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, FlowIntent, GroupIntent, Host, NativeState,
    Packet, Probe, Provider, ProviderKind, Traffic,
};
use std::collections::BTreeMap;

pub const VPC: &str = "vpc-0a1b2c3d";

pub fn intent(groups: Vec<GroupIntent>, flows: Vec<FlowIntent>) -> DeploymentIntent {
    let mut settings = BTreeMap::new();
    for (k, v) in [
        ("account", "111122223333"),
        ("region", "us-east-1"),
        ("vpc", VPC),
        ("cidr", "10.10.0.0/16"),
        ("cidr6", "2600:1f18:1234:5600::/56"),
    ] {
        settings.insert(k.to_string(), v.to_string());
    }
    DeploymentIntent {
        deployment: "us".into(),
        provider: ProviderKind::Aws,
        settings,
        space: addrs(&["10.10.0.0/16", "2600:1f18:1234:5600::/56"]),
        groups: groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
        flows,
    }
}

/// An intent with the given groups and no flows (enough for parsing and lowering).
pub fn groups_only(names: &[&str]) -> DeploymentIntent {
    intent(names.iter().map(|n| group(n)).collect(), vec![])
}

pub fn parse(doc: &str, intent: &DeploymentIntent) -> NativeState {
    AwsProvider
        .parse_snapshot(doc, intent)
        .expect("document parses")
}

/// Is the probe delivered by the lowered document?
pub fn allowed(doc: &str, intent: &DeploymentIntent, p: &Probe) -> bool {
    let st = parse(doc, intent);
    AwsProvider.lower(&st, intent).evaluate(p).allowed
}

/// A describe-security-groups document with one managed SG per (group, ingress, egress).
pub fn doc(sgs: &[(&str, &str, &str)]) -> String {
    let items: Vec<String> = sgs
        .iter()
        .enumerate()
        .map(|(i, (grp, ing, eg))| {
            format!(
                r#"{{"Description": "intentwall group {grp}", "GroupName": "iw-{grp}", "IpPermissions": [{ing}], "OwnerId": "111122223333", "GroupId": "sg-0000000000000000{i}", "IpPermissionsEgress": [{eg}], "Tags": [{{"Key": "managed-by", "Value": "intentwall"}}, {{"Key": "intentwall:group", "Value": "{grp}"}}], "VpcId": "{VPC}"}}"#
            )
        })
        .collect();
    format!(r#"{{"SecurityGroups": [{}]}}"#, items.join(","))
}

/// The GroupId `doc` gives the i-th SG.
pub fn sgid(i: usize) -> String {
    format!("sg-0000000000000000{i}")
}
