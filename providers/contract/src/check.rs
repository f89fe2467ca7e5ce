//! The exhaustive check: compare lowered native rules with the oracle on *every* packet.
//!
//! Every address set, port set, protocol and ICMP type/code mentioned by the intent or by any
//! rule cuts its dimension into elementary intervals; inside one interval no rule and no flow
//! can tell two values apart. So one representative per (source class, destination class,
//! packet class) decides the whole class, and checking every class checks every packet.
//! Host classes are further split by membership (each leaf group, or none), and a member's
//! address ranges only over where the intent says members live.

use crate::eval::{Direction, EvalPolicy, EvalRule, Host, Probe, Verdict};
use crate::intent::{DeploymentIntent, Endpoint, FlowIntent};
use crate::net::{AddrSet, Intervals};
use crate::oracle::{judge, OracleVerdict};
use crate::traffic::{proto, Packet, Traffic};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One class where the native rules and the intent disagree.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The class representative.
    pub probe: Probe,
    /// What the intent says.
    pub oracle: OracleVerdict,
    /// What the native rules do.
    pub native_allowed: bool,
    /// The native rule that decided (id), or `None` for the cloud's no-match default.
    pub native_rule: Option<String>,
    /// Whether that rule is managed by intentwall.
    pub native_rule_managed: bool,
    /// The intent flow behind that rule, if it carries a marker.
    pub native_rule_flow: Option<String>,
}

impl Mismatch {
    /// The disagreement between the oracle and the native verdict of `policy` on a probe,
    /// naming the native rule that decided.
    pub fn new(probe: Probe, oracle: OracleVerdict, native: &Verdict, policy: &EvalPolicy) -> Self {
        let rule = native
            .deciding()
            .and_then(|d| d.rule)
            .map(|i| &policy.rules[i]);
        Mismatch {
            probe,
            oracle,
            native_allowed: native.allowed,
            native_rule: rule.map(|r| r.id.clone()),
            native_rule_managed: rule.is_some_and(|r| r.managed),
            native_rule_flow: rule.and_then(|r| r.flow.clone()),
        }
    }
}

/// Result of an exhaustive check of one target.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Number of (source, destination, packet) classes checked.
    pub classes: u64,
    /// Total mismatching classes.
    pub mismatch_count: u64,
    /// The first mismatches found (up to the limit asked for).
    pub mismatches: Vec<Mismatch>,
}

/// Cut points of one family: every boundary of every set, plus the domain's minimum.
fn cuts<T: crate::net::Bound>(sets: &[&Intervals<T>]) -> Vec<T> {
    let mut pts: BTreeSet<T> = sets.iter().flat_map(|s| s.boundaries()).collect();
    pts.insert(T::MIN);
    pts.into_iter().collect()
}

/// Representatives of each elementary interval that intersects `space`.
fn reps<T: crate::net::Bound>(cuts: &[T], space: &Intervals<T>) -> Vec<T> {
    let mut out = Vec::new();
    for (i, &lo) in cuts.iter().enumerate() {
        let hi = cuts.get(i + 1).and_then(|n| n.pred()).unwrap_or(T::MAX);
        let part = Intervals::range(lo, hi).intersect(space);
        if let Some(&(a, _)) = part.ranges().first() {
            out.push(a);
        }
    }
    out
}

fn traffic_of(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    pol: &EvalPolicy,
) -> Vec<Traffic> {
    intent
        .flows
        .iter()
        .chain(allowances)
        .flat_map(|f| f.traffic.iter().cloned())
        .chain(pol.rules.iter().flat_map(|r| r.traffic.iter().cloned()))
        .collect()
}

/// Representative packets: one per class of (protocol, port or ICMP type/code).
pub fn packet_classes(traffic: &[Traffic]) -> Vec<Packet> {
    let mut protos: BTreeSet<u8> = [proto::TCP, proto::UDP, proto::ICMP, proto::ICMPV6]
        .into_iter()
        .collect();
    protos.extend(traffic.iter().filter_map(|t| t.proto));
    // one protocol nobody mentions stands for all the others
    if let Some(other) = (0..=255u8).find(|p| !protos.contains(p) && *p != 0) {
        protos.insert(other);
    }
    let mut out = Vec::new();
    for p in protos {
        let relevant = || {
            traffic
                .iter()
                .filter(move |t| t.proto.is_none_or(|x| x == p))
        };
        if proto::has_ports(p) {
            let sets: Vec<&Intervals<u16>> = relevant().map(|t| &t.ports).collect();
            for port in reps(&cuts(&sets), &Intervals::full()) {
                out.push(Packet::ported(p, port));
            }
        } else if proto::is_icmp(p) {
            let types: BTreeSet<u8> = relevant().filter_map(|t| t.icmp_type).collect();
            let spare_type = (0..=255u8).find(|t| !types.contains(t));
            for ty in types.iter().copied().chain(spare_type) {
                let codes: BTreeSet<u8> = relevant()
                    .filter(|t| t.icmp_type == Some(ty))
                    .filter_map(|t| t.icmp_code)
                    .collect();
                let spare_code = (0..=255u8).find(|c| !codes.contains(c));
                for c in codes.iter().copied().chain(spare_code) {
                    out.push(Packet::icmp(p, ty, c));
                }
            }
        } else {
            out.push(Packet::ported(p, 0));
        }
    }
    out
}

fn addr_sets<'a>(
    intent: &'a DeploymentIntent,
    allowances: &'a [FlowIntent],
    pol: &'a EvalPolicy,
) -> Vec<&'a AddrSet> {
    let mut v: Vec<&AddrSet> = vec![&intent.space];
    v.extend(intent.groups.values().filter_map(|g| g.addresses.as_ref()));
    for f in intent.flows.iter().chain(allowances) {
        for e in [&f.from, &f.to] {
            if let Endpoint::Network { addrs, .. } = e {
                v.push(addrs);
            }
        }
    }
    for r in &pol.rules {
        v.push(&r.local.addrs);
        v.push(&r.peer.addrs);
    }
    v
}

/// Representative hosts: for each membership (each leaf group, or none), one address per
/// elementary address class where such a host can be.
pub fn host_classes(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    pol: &EvalPolicy,
) -> Vec<Host> {
    let sets = addr_sets(intent, allowances, pol);
    let v4cuts = cuts(&sets.iter().map(|s| &s.v4).collect::<Vec<_>>());
    let v6cuts = cuts(&sets.iter().map(|s| &s.v6).collect::<Vec<_>>());
    let mut out = Vec::new();
    let mut add = |space: &AddrSet, group: Option<&String>| {
        for a in reps(&v4cuts, &space.v4) {
            out.push(Host {
                ip: IpAddr::V4(Ipv4Addr::from(a)),
                group: group.cloned(),
            });
        }
        for a in reps(&v6cuts, &space.v6) {
            out.push(Host {
                ip: IpAddr::V6(Ipv6Addr::from(a)),
                group: group.cloned(),
            });
        }
    };
    add(&intent.external_space(), None);
    for g in intent.groups.keys() {
        add(&intent.member_space(g), Some(g));
    }
    out
}

fn host_rule_match(r: &EvalRule, src: &Host, dst: &Host) -> bool {
    let (local, peer) = match r.direction {
        Direction::Ingress => (dst, src),
        Direction::Egress => (src, dst),
    };
    r.local.matches(local) && r.peer.matches(peer)
}

/// Check every class of one target; keep at most `keep` mismatches.
pub fn check_exhaustive(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    pol: &EvalPolicy,
    keep: usize,
) -> CheckReport {
    let hosts = host_classes(intent, allowances, pol);
    let packets = packet_classes(&traffic_of(intent, allowances, pol));
    let mut report = CheckReport::default();
    for src in &hosts {
        for dst in &hosts {
            if src.group.is_none() && dst.group.is_none() {
                continue; // neither end is ours
            }
            if src.ip.is_ipv4() != dst.ip.is_ipv4() {
                continue;
            }
            // rules and flows whose host parts match this pair: only their traffic can differ
            let sub = EvalPolicy {
                rules: pol
                    .rules
                    .iter()
                    .filter(|r| host_rule_match(r, src, dst))
                    .cloned()
                    .collect(),
            };
            for packet in &packets {
                // ICMPv4 only travels over IPv4 and ICMPv6 over IPv6: no other such packet exists
                if !packet.fits_family(src.ip.is_ipv4()) {
                    continue;
                }
                let probe = Probe {
                    src: src.clone(),
                    dst: dst.clone(),
                    packet: *packet,
                };
                report.classes += 1;
                let native = sub.evaluate(&probe);
                let oracle = judge(intent, allowances, &probe);
                if native.allowed != oracle.allowed {
                    report.mismatch_count += 1;
                    if report.mismatches.len() < keep {
                        report
                            .mismatches
                            .push(Mismatch::new(probe, oracle, &native, &sub));
                    }
                }
            }
        }
    }
    report
}
