//! The reference checker: the enumerating equivalence-class comparison intentwall shipped
//! before the symbolic check. It is exact but its cost is the product of the source,
//! destination and packet partitions, so it lives here, for tests only: the differential
//! tests run it beside [`crate::check::check_exhaustive`] on random intents and rule sets
//! and require the same verdict.
//!
//! Every address set, port set, protocol and ICMP type/code mentioned by the intent or by any
//! rule cuts its dimension into elementary intervals; inside one interval no rule and no flow
//! can tell two values apart. So one representative per (source class, destination class,
//! packet class) decides the whole class, and checking every class checks every packet.

use crate::check::{addr_sets, cuts, packet_classes, reps, traffic_of, CheckReport, Mismatch};
use crate::eval::{Direction, EvalPolicy, EvalRule, Host, Probe};
use crate::intent::{DeploymentIntent, FlowIntent};
use crate::net::AddrSet;
use crate::oracle::judge;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
pub fn check_enumerating(
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
