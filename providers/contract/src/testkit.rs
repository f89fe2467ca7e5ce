//! Builders for tests of intentwall and its provider plugins (feature `testkit`): small
//! intents, endpoints, flows, hosts and packets written in one line each, so every crate's
//! tests read the same way and none re-implements them.

use crate::{Action, AddrSet, Endpoint, FlowIntent, GroupIntent, Host, Packet, Probe, Traffic};

/// An address set from CIDR texts (panics on a typo: test data only).
pub fn addrs(cidrs: &[&str]) -> AddrSet {
    let nets: Vec<ipnet::IpNet> = cidrs
        .iter()
        .map(|c| c.parse().unwrap_or_else(|e| panic!("test CIDR `{c}`: {e}")))
        .collect();
    AddrSet::from_nets(&nets)
}

/// A plain leaf group.
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

/// A leaf group with `egress: restricted`.
pub fn restricted(name: &str) -> GroupIntent {
    GroupIntent {
        egress_restricted: true,
        ..group(name)
    }
}

/// A group endpoint.
pub fn g(name: &str) -> Endpoint {
    Endpoint::Group(name.into())
}

/// A network endpoint.
pub fn net(name: &str, cidrs: &[&str]) -> Endpoint {
    Endpoint::Network {
        name: name.into(),
        addrs: addrs(cidrs),
    }
}

/// A flow with service tokens.
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
        traffic: tokens
            .iter()
            .map(|t| Traffic::parse(t).unwrap_or_else(|e| panic!("test token: {e}")))
            .collect(),
        guardrail: false,
    }
}

/// An allow flow.
pub fn allow(name: &str, from: Endpoint, to: Endpoint, tokens: &[&str]) -> FlowIntent {
    flow(name, Action::Allow, from, to, tokens)
}

/// A deny flow.
pub fn deny(name: &str, from: Endpoint, to: Endpoint, tokens: &[&str]) -> FlowIntent {
    flow(name, Action::Deny, from, to, tokens)
}

/// A workload of `group` at `ip`.
pub fn member(group: &str, ip: &str) -> Host {
    Host {
        ip: ip.parse().unwrap_or_else(|e| panic!("test IP `{ip}`: {e}")),
        group: Some(group.into()),
    }
}

/// A host that is none of our workloads.
pub fn ext(ip: &str) -> Host {
    Host {
        ip: ip.parse().unwrap_or_else(|e| panic!("test IP `{ip}`: {e}")),
        group: None,
    }
}

/// A TCP packet to `port`.
pub fn tcp(port: u16) -> Packet {
    Packet::ported(crate::traffic::proto::TCP, port)
}

/// A UDP packet to `port`.
pub fn udp(port: u16) -> Packet {
    Packet::ported(crate::traffic::proto::UDP, port)
}

/// A probe.
pub fn probe(src: Host, dst: Host, packet: Packet) -> Probe {
    Probe { src, dst, packet }
}
