//! Test helpers: small intents and probes written by hand (tests never read ../shared).
#![allow(dead_code)]

use intentwall_aws::AwsProvider;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, FlowIntent, GroupIntent, Host, NativeState,
    Packet, Probe, Provider, ProviderKind, Traffic,
};
use std::collections::BTreeMap;

pub const VPC: &str = "vpc-0a1b2c3d";

pub fn addrs(cidrs: &[&str]) -> AddrSet {
    let nets: Vec<ipnet::IpNet> = cidrs.iter().map(|c| c.parse().unwrap()).collect();
    AddrSet::from_nets(&nets)
}

pub fn group(name: &str) -> GroupIntent {
    GroupIntent {
        name: name.into(),
        description: None,
        egress_restricted: false,
        sensitive: false,
        addresses: None,
        service_account: None,
    }
}

pub fn restricted(name: &str) -> GroupIntent {
    GroupIntent {
        egress_restricted: true,
        ..group(name)
    }
}

pub fn g(name: &str) -> Endpoint {
    Endpoint::Group(name.into())
}

pub fn n(name: &str, cidrs: &[&str]) -> Endpoint {
    Endpoint::Network {
        name: name.into(),
        addrs: addrs(cidrs),
    }
}

pub fn flow(
    name: &str,
    action: Action,
    from: Endpoint,
    to: Endpoint,
    tokens: &[&str],
) -> FlowIntent {
    FlowIntent {
        name: name.into(),
        action,
        from,
        to,
        traffic: tokens.iter().map(|t| Traffic::parse(t).unwrap()).collect(),
        guardrail: false,
    }
}

pub fn allow(name: &str, from: Endpoint, to: Endpoint, tokens: &[&str]) -> FlowIntent {
    flow(name, Action::Allow, from, to, tokens)
}

pub fn deny(name: &str, from: Endpoint, to: Endpoint, tokens: &[&str]) -> FlowIntent {
    flow(name, Action::Deny, from, to, tokens)
}

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

pub fn member(group: &str, ip: &str) -> Host {
    Host {
        ip: ip.parse().unwrap(),
        group: Some(group.into()),
    }
}

pub fn ext(ip: &str) -> Host {
    Host {
        ip: ip.parse().unwrap(),
        group: None,
    }
}

pub fn tcp(port: u16) -> Packet {
    Packet::ported(6, port)
}

pub fn udp(port: u16) -> Packet {
    Packet::ported(17, port)
}

pub fn probe(src: Host, dst: Host, packet: Packet) -> Probe {
    Probe { src, dst, packet }
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
