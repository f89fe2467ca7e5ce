//! Probes derived from the intent: for every expanded flow, a host on each end (IPv4 and
//! IPv6 where the end has such addresses) and packets at every port-range boundary (and just
//! outside it), each ICMP type named, and every protocol. These are the readable, sampled
//! cases; the exhaustive class check covers everything else.

use intentwall_contract::traffic::proto;
use intentwall_contract::{AddrSet, DeploymentIntent, Endpoint, Host, Packet, Probe, Traffic};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// First address of each family in a set.
fn firsts(s: &AddrSet) -> Vec<IpAddr> {
    let mut v = Vec::new();
    if let Some(&(a, _)) = s.v4.ranges().first() {
        v.push(IpAddr::V4(Ipv4Addr::from(a)));
    }
    if let Some(&(a, _)) = s.v6.ranges().first() {
        v.push(IpAddr::V6(Ipv6Addr::from(a)));
    }
    v
}

/// Representative hosts of an endpoint in a deployment: members of a group (where they can
/// live), or hosts of a network that are not some group's declared addresses.
pub fn hosts_of(intent: &DeploymentIntent, e: &Endpoint) -> Vec<Host> {
    match e {
        Endpoint::Group(g) => firsts(&intent.member_space(g))
            .into_iter()
            .map(|ip| Host {
                ip,
                group: Some(g.clone()),
            })
            .collect(),
        Endpoint::Network { addrs, .. } => firsts(&addrs.intersect(&intent.external_space()))
            .into_iter()
            .map(|ip| Host { ip, group: None })
            .collect(),
    }
}

/// Packets at the edges of one service token.
pub fn packets_of(t: &Traffic) -> Vec<Packet> {
    let mut out = BTreeSet::new();
    match t.proto {
        None => {
            for p in [proto::TCP, proto::UDP] {
                out.insert(Packet::ported(p, 443));
            }
            out.insert(Packet::icmp(proto::ICMP, 8, 0));
            out.insert(Packet::ported(proto::GRE, 0));
        }
        Some(p) if proto::has_ports(p) => {
            for &(a, b) in t.ports.ranges() {
                for x in [Some(a), Some(b), a.checked_sub(1), b.checked_add(1)]
                    .into_iter()
                    .flatten()
                {
                    out.insert(Packet::ported(p, x));
                }
            }
        }
        Some(p) if proto::is_icmp(p) => {
            let ty = t.icmp_type.unwrap_or(8);
            out.insert(Packet::icmp(p, ty, t.icmp_code.unwrap_or(0)));
            if t.icmp_type.is_some() {
                out.insert(Packet::icmp(p, ty.wrapping_add(1), 0));
            }
        }
        Some(p) => {
            out.insert(Packet::ported(p, 0));
        }
    }
    out.into_iter().collect()
}

/// All derived probes of a deployment, deduplicated, same-family pairs only.
pub fn derive(intent: &DeploymentIntent) -> Vec<Probe> {
    let mut out = BTreeSet::new();
    for f in &intent.flows {
        let srcs = hosts_of(intent, &f.from);
        let dsts = hosts_of(intent, &f.to);
        for s in &srcs {
            for d in &dsts {
                if s.ip.is_ipv4() != d.ip.is_ipv4() {
                    continue;
                }
                for t in &f.traffic {
                    for packet in packets_of(t)
                        .into_iter()
                        .filter(|p| p.fits_family(s.ip.is_ipv4()))
                    {
                        out.insert(Probe {
                            src: s.clone(),
                            dst: d.clone(),
                            packet,
                        });
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}
