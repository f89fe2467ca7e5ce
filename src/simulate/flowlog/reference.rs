//! The replay as it was before the compiled decision structure: every record judged by
//! `oracle::judge` and `EvalPolicy::evaluate`, groups attributed by a scan, verdicts cached
//! without bound. Kept (in tests only) as the reference the differential tests hold the
//! streaming, compiled replay equal to.

use super::replay::{mismatch_finding, Judged};
use super::*;
use intentwall_contract::oracle::judge;
use intentwall_contract::Host;
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Index into `Ctx::declared`.
    Member(usize),
    Unknown,
    External,
}

struct Ctx<'a> {
    intent: DeploymentIntent,
    policy: EvalPolicy,
    allowances: Vec<FlowIntent>,
    declared: Vec<(&'a str, AddrSet)>,
    reach: AddrSet,
    icmp_classes: Vec<Packet>,
    stats: TargetReplay,
}

impl Ctx<'_> {
    fn side(&self, ip: IpAddr) -> Side {
        for (i, (_, a)) in self.declared.iter().enumerate() {
            if a.contains(ip) {
                return Side::Member(i);
            }
        }
        if self.intent.space.contains(ip) {
            Side::Unknown
        } else {
            Side::External
        }
    }
}

fn host(c: &Ctx<'_>, ip: IpAddr, s: Side) -> Host {
    Host {
        ip,
        group: match s {
            Side::Member(i) => Some(c.declared[i].0.to_string()),
            _ => None,
        },
    }
}

/// The packets a record stands for (ICMP without type/code: every class of its protocol).
fn candidates(r: &FlowRecord, icmp_classes: &[Packet]) -> Vec<Packet> {
    let p = r.proto;
    if proto::has_ports(p) {
        return vec![Packet::ported(p, r.dst_port.unwrap_or(0))];
    }
    if !proto::is_icmp(p) {
        return vec![Packet::ported(p, 0)];
    }
    match (r.icmp_type, r.icmp_code) {
        (Some(t), Some(c)) => vec![Packet::icmp(p, t, c)],
        (t, _) => {
            let v: Vec<Packet> = icmp_classes
                .iter()
                .filter(|k| k.proto == p && t.is_none_or(|t| t == k.icmp_type))
                .copied()
                .collect();
            if v.is_empty() {
                vec![Packet::icmp(p, t.unwrap_or(0), 0)]
            } else {
                v
            }
        }
    }
}

fn word(a: bool) -> &'static str {
    if a {
        "allow"
    } else {
        "deny"
    }
}

/// Replay a parsed log against the targets of a plan (the state each would hold after apply).
pub fn replay(
    intent: &Intent,
    plan: &Plan,
    file: &str,
    format: FlowFormat,
    log: &FlowLog,
) -> Result<Replay, Error> {
    let started = Instant::now();
    let mut ctxs: Vec<Ctx<'_>> = Vec::new();
    let graph = crate::graph::ServiceGraph::of(intent);
    for t in &plan.targets {
        let dep = intent
            .deployments
            .get(&t.deployment)
            .ok_or_else(|| Error::PlanDeployment(t.deployment.clone()))?;
        let di = graph.view(&dep.name).and_then(|v| v.resolve(t.provider));
        let di = di.ok_or_else(|| Error::NoPlacement {
            deployment: dep.name.clone(),
            provider: t.provider,
        })?;
        let provider = crate::backend::require(t.provider)?;
        let policy = provider.lower(&t.after, &di);
        let allowances = provider.platform_allowances(&di);
        let declared: Vec<(&str, AddrSet)> = dep
            .groups
            .values()
            .filter(|g| !g.is_composite())
            .filter_map(|g| {
                g.addresses_for(t.provider)
                    .map(|a| (g.name.as_str(), a.clone()))
            })
            .collect();
        let reach = declared
            .iter()
            .fold(di.space.clone(), |acc, (_, a)| acc.union(a));
        let traffic: Vec<Traffic> = di
            .flows
            .iter()
            .chain(&allowances)
            .flat_map(|f| f.traffic.iter().cloned())
            .chain(policy.rules.iter().flat_map(|r| r.traffic.iter().cloned()))
            .filter(|t| t.proto.is_none_or(proto::is_icmp))
            .collect();
        let icmp_classes: Vec<Packet> = packet_classes(&traffic)
            .into_iter()
            .filter(|p| proto::is_icmp(p.proto))
            .collect();
        ctxs.push(Ctx {
            stats: TargetReplay {
                deployment: t.deployment.clone(),
                provider: Some(t.provider),
                ..Default::default()
            },
            intent: di,
            policy,
            allowances,
            declared,
            reach,
            icmp_classes,
        });
    }

    let skipped: u64 = log.skipped.values().sum();
    let mut out = Replay {
        file: file.to_string(),
        format,
        records: log.records.len() as u64 + skipped,
        skipped,
        skipped_by_reason: log.skipped.clone(),
        outside: 0,
        outside_examples: vec![],
        unattributed: 0,
        checked: 0,
        unverifiable: 0,
        mismatches: 0,
        expectations_failed: 0,
        drift: 0,
        targets: vec![],
        millis: 0,
    };
    // (target, src, dst, packet, src port) -> (oracle, native) effective verdicts
    type Key = (usize, IpAddr, IpAddr, Packet, Option<u16>);
    let mut cache: HashMap<Key, (Judged, Judged)> = HashMap::new();

    for r in &log.records {
        if let Some(d) = &r.deployment {
            if !intent.deployments.contains_key(d) {
                return Err(ParseError::new(
                    file,
                    r.line,
                    "deployment",
                    format!("unknown deployment `{d}`"),
                )
                .into());
            }
        }
        let mut belongs = false;
        for (ti, c) in ctxs.iter_mut().enumerate() {
            if r.provider.is_some_and(|p| p != c.intent.provider)
                || r.deployment
                    .as_ref()
                    .is_some_and(|d| d != &c.intent.deployment)
            {
                continue;
            }
            if !c.reach.contains(r.src) && !c.reach.contains(r.dst) {
                continue;
            }
            belongs = true;
            c.stats.records += 1;
            let (ss, ds) = (c.side(r.src), c.side(r.dst));
            if ss == Side::Unknown || ds == Side::Unknown {
                c.stats.unattributed += 1;
                if c.stats.unattributed_examples.len() < EXAMPLES_SHOWN {
                    c.stats
                        .unattributed_examples
                        .push(format!("{file}:{}: {r}", r.line));
                }
                continue;
            }
            c.stats.checked += 1;
            let (src, dst) = (host(c, r.src, ss), host(c, r.dst, ds));
            let mut verdicts: Vec<(Probe, bool, bool, bool)> = Vec::new(); // probe, oracle, native, reply-only?
            let mut first_bad: Option<(Probe, Judged, Judged)> = None;
            for packet in candidates(r, &c.icmp_classes) {
                if !packet.fits_family(r.src.is_ipv4()) {
                    continue;
                }
                let fwd = Probe {
                    src: src.clone(),
                    dst: dst.clone(),
                    packet,
                };
                let rev = if proto::has_ports(packet.proto) {
                    r.src_port.map(|sp| Probe {
                        src: dst.clone(),
                        dst: src.clone(),
                        packet: Packet::ported(packet.proto, sp),
                    })
                } else {
                    Some(Probe {
                        src: dst.clone(),
                        dst: src.clone(),
                        packet,
                    })
                };
                let key = (ti, r.src, r.dst, packet, r.src_port);
                let (o, n) = cache.entry(key).or_insert_with(|| {
                    let o_f = judge(&c.intent, &c.allowances, &fwd).allowed;
                    let n_f = c.policy.evaluate(&fwd).allowed;
                    let o_r = !o_f
                        && rev
                            .as_ref()
                            .is_some_and(|p| judge(&c.intent, &c.allowances, p).allowed);
                    let n_r = !n_f && rev.as_ref().is_some_and(|p| c.policy.evaluate(p).allowed);
                    (
                        Judged {
                            allowed: o_f || o_r,
                            as_reply: o_r,
                        },
                        Judged {
                            allowed: n_f || n_r,
                            as_reply: n_r,
                        },
                    )
                });
                if o.allowed != n.allowed && first_bad.is_none() {
                    first_bad = Some((
                        fwd.clone(),
                        Judged {
                            allowed: o.allowed,
                            as_reply: o.as_reply,
                        },
                        Judged {
                            allowed: n.allowed,
                            as_reply: n.as_reply,
                        },
                    ));
                }
                verdicts.push((fwd, o.allowed, n.allowed, o.as_reply));
            }
            if verdicts.is_empty() {
                continue;
            }
            // the intent's verdict, when every candidate packet agrees
            let intent_verdict = if verdicts.iter().all(|v| v.1 == verdicts[0].1) {
                Some(verdicts[0].1)
            } else {
                None
            };
            let native_verdict = if verdicts.iter().all(|v| v.2 == verdicts[0].2) {
                Some(verdicts[0].2)
            } else {
                None
            };
            if let Some((fwd, o, n)) = first_bad {
                c.stats.mismatches += 1;
                if c.stats.findings.len() < MISMATCHES_SHOWN {
                    let f = mismatch_finding(
                        &c.intent,
                        &c.allowances,
                        &c.policy,
                        file,
                        r,
                        &fwd,
                        &o,
                        &n,
                    );
                    c.stats.findings.push(f);
                }
            }
            if let (Some(obs), Some(iv)) = (r.observed, intent_verdict) {
                if obs != iv {
                    c.stats.drift += 1;
                    if c.stats.drift_examples.len() < EXAMPLES_SHOWN {
                        c.stats.drift_examples.push(format!(
                            "{file}:{}: {r}: the log shows {}, the intent says {}",
                            r.line,
                            if obs { "accepted" } else { "rejected" },
                            word(iv)
                        ));
                    }
                }
            }
            if let Some(want) = r.expected {
                let mut why = Vec::new();
                match intent_verdict {
                    Some(v) if v == want => {}
                    Some(v) => why.push(format!("the intent gives {}", word(v))),
                    None => why.push("the intent's verdict depends on the ICMP type".into()),
                }
                match native_verdict {
                    Some(v) if v == want => {}
                    Some(v) => why.push(format!("{} gives {}", c.intent.provider, word(v))),
                    None => why.push(format!(
                        "{}'s verdict depends on the ICMP type",
                        c.intent.provider
                    )),
                }
                if !why.is_empty() {
                    c.stats.expectations_failed += 1;
                    if c.stats.findings.len() < MISMATCHES_SHOWN {
                        c.stats.findings.push(Finding {
                            kind: FindingKind::Expectation,
                            deployment: c.intent.deployment.clone(),
                            provider: Some(c.intent.provider),
                            flow: None,
                            message: format!(
                                "{file}:{}: {}: expected {}, but {}",
                                r.line,
                                verdicts[0].0,
                                word(want),
                                why.join("; ")
                            ),
                        });
                    }
                }
            }
        }
        if !belongs {
            out.outside += 1;
            if out.outside_examples.len() < EXAMPLES_SHOWN {
                out.outside_examples.push(format!("{file}:{}: {r}", r.line));
            }
        }
    }
    for c in ctxs {
        let mut t = c.stats;
        let shown = t
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Mismatch)
            .count() as u64;
        let shown_e = t.findings.len() as u64 - shown;
        let hidden = (t.mismatches - shown.min(t.mismatches))
            + (t.expectations_failed - shown_e.min(t.expectations_failed));
        if hidden > 0 {
            t.findings.push(Finding {
                kind: FindingKind::Mismatch,
                deployment: t.deployment.clone(),
                provider: t.provider,
                flow: None,
                message: format!("{file}: {hidden} more disagreeing flow-log records not shown"),
            });
        }
        out.unattributed += t.unattributed;
        out.checked += t.checked;
        out.mismatches += t.mismatches;
        out.expectations_failed += t.expectations_failed;
        out.drift += t.drift;
        out.targets.push(t);
    }
    out.millis = started.elapsed().as_millis() as u64;
    Ok(out)
}
