//! Helpers shared by the integration tests: small intents and probes.
#![allow(dead_code)]

use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, FlowIntent, GroupIntent, Host, Packet, Probe,
    ProviderKind, Traffic,
};
use ipnet::IpNet;
use std::collections::BTreeMap;

pub fn addrs(xs: &[&str]) -> AddrSet {
    let nets: Vec<IpNet> = xs.iter().map(|x| x.parse().unwrap()).collect();
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

pub fn intent(groups: Vec<GroupIntent>, flows: Vec<FlowIntent>) -> DeploymentIntent {
    let mut settings = BTreeMap::new();
    settings.insert("project".into(), "acme-prod-us".into());
    settings.insert("network".into(), "prod-us".into());
    settings.insert("cidr".into(), "10.30.0.0/16".into());
    settings.insert("cidr6".into(), "fd00:30::/48".into());
    DeploymentIntent {
        deployment: "us".into(),
        provider: ProviderKind::Gcp,
        settings,
        space: addrs(&["10.30.0.0/16", "fd00:30::/48"]),
        groups: groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
        flows,
    }
}

pub fn g(name: &str) -> Endpoint {
    Endpoint::Group(name.into())
}

pub fn net(name: &str, xs: &[&str]) -> Endpoint {
    Endpoint::Network {
        name: name.into(),
        addrs: addrs(xs),
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

pub fn member(group: &str, ip: &str) -> Host {
    Host {
        ip: ip.parse().unwrap(),
        group: Some(group.into()),
    }
}

pub fn outside(ip: &str) -> Host {
    Host {
        ip: ip.parse().unwrap(),
        group: None,
    }
}

pub fn tcp(port: u16) -> Packet {
    Packet::ported(6, port)
}

pub fn probe(src: Host, dst: Host, packet: Packet) -> Probe {
    Probe { src, dst, packet }
}

/// The project's network URL, as the API prints it.
pub const NET: &str =
    "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us";
