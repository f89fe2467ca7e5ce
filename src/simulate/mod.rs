//! The traffic-simulation pass: each cloud's native rules, lowered with that cloud's real
//! semantics, must give the intent's verdict for every probe, every `expect` case and every
//! equivalence class of packets.
//!
//! The oracle and the exhaustive class check live in the contract crate so
//! provider plugins can run them in their own property tests; this module chooses what to
//! check for a target and turns disagreements into findings that name the deciding native
//! rule and the intent flow it contradicts.

pub mod flowlog;
pub mod probes;

use crate::intent::{Deployment, Expect};
use intentwall_contract::check::{check_exhaustive, Mismatch, Unverifiable};
use intentwall_contract::oracle::IntentIndex;
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, DeploymentIntent, EvalPolicy, Finding, FindingKind, FlowIntent, NativeState, Packet,
    Probe, Provider, Traffic,
};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How many mismatches are named per target (probes first, then one counterexample per
/// mismatching region; the count covers all of them, up to the region cap).
pub const MISMATCHES_SHOWN: usize = 10;

/// Figures of one target's simulation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimReport {
    /// Derived probes checked.
    pub probes: u64,
    /// Equivalence classes of packets the exhaustive pass proves (each class stands for
    /// every packet in it; the proof is symbolic, see the contract crate's `check` module).
    pub classes: u64,
    /// Mismatching probes + mismatching regions of the exhaustive pass.
    pub mismatches: u64,
    /// Probes + regions whose verdict depends on rules whose match the model does not know
    /// (an undeclared service tag or prefix list, a source-port condition). Non-zero means "not proven", never a guess.
    #[serde(default)]
    pub unverifiable: u64,
    /// `expect` cases checked (each case on each host family).
    pub expectations: u64,
    /// `expect` cases that failed.
    pub expectations_failed: u64,
    /// Wall time of the whole pass, milliseconds.
    pub millis: u64,
}

/// Result of simulating one target.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    /// Figures.
    pub report: SimReport,
    /// Mismatch, conflict and expectation findings.
    pub findings: Vec<Finding>,
}

/// Packets inside a service token (its edges), for expectations.
fn inside_packets(t: &Traffic) -> Vec<Packet> {
    match t.proto {
        None => vec![
            Packet::ported(proto::TCP, 443),
            Packet::ported(proto::UDP, 53),
            Packet::icmp(proto::ICMP, 8, 0),
        ],
        Some(p) if proto::has_ports(p) => t
            .ports
            .ranges()
            .iter()
            .flat_map(|&(a, b)| [Packet::ported(p, a), Packet::ported(p, b)])
            .collect(),
        Some(p) if proto::is_icmp(p) => vec![Packet::icmp(
            p,
            t.icmp_type.unwrap_or(8),
            t.icmp_code.unwrap_or(0),
        )],
        Some(p) => vec![Packet::ported(p, 0)],
    }
}

/// The probes that stand for one `expect` case in this deployment and cloud.
pub fn expect_probes(dep: &Deployment, intent: &DeploymentIntent, e: &Expect) -> Vec<Probe> {
    let mut out = Vec::new();
    let srcs: Vec<_> = dep
        .endpoints(&e.from)
        .iter()
        .flat_map(|ep| probes::hosts_of(intent, ep))
        .collect();
    let dsts: Vec<_> = dep
        .endpoints(&e.to)
        .iter()
        .flat_map(|ep| probes::hosts_of(intent, ep))
        .collect();
    for s in &srcs {
        for d in &dsts {
            if s.ip.is_ipv4() != d.ip.is_ipv4() {
                continue;
            }
            for t in &e.service.traffic {
                for packet in inside_packets(t)
                    .into_iter()
                    .filter(|p| p.fits_family(s.ip.is_ipv4()))
                {
                    out.push(Probe {
                        src: s.clone(),
                        dst: d.clone(),
                        packet,
                    });
                }
            }
        }
    }
    out
}

fn verdict_word(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

fn mismatch_finding(intent: &DeploymentIntent, m: &Mismatch) -> Finding {
    let rule = match &m.native_rule {
        Some(id) => format!(
            "rule `{id}`{}{}",
            if m.native_rule_managed {
                ""
            } else {
                " (unmanaged)"
            },
            m.native_rule_flow
                .as_ref()
                .map(|f| format!(" from flow `{f}`"))
                .unwrap_or_default()
        ),
        None => "the cloud's default (no rule matched)".to_string(),
    };
    let intent_why = if m.oracle.flows.is_empty() {
        m.oracle.reason.clone()
    } else {
        format!("{} ({})", m.oracle.reason, m.oracle.flows.join(", "))
    };
    let conflict = m.native_rule.is_some() && !m.native_rule_managed && m.native_allowed;
    Finding {
        kind: if conflict {
            FindingKind::Conflict
        } else {
            FindingKind::Mismatch
        },
        deployment: intent.deployment.clone(),
        provider: Some(intent.provider),
        flow: m
            .oracle
            .flows
            .first()
            .cloned()
            .or_else(|| m.native_rule_flow.clone()),
        message: format!(
            "{}: intent says {} [{}], {} says {} by {}",
            m.probe,
            verdict_word(m.oracle.allowed),
            intent_why,
            intent.provider,
            verdict_word(m.native_allowed),
            rule
        ),
    }
}

fn unverifiable_finding(intent: &DeploymentIntent, u: &Unverifiable) -> Finding {
    let rules: Vec<String> = u
        .rules
        .iter()
        .map(|(id, why)| format!("`{id}` ({why})"))
        .collect();
    Finding {
        kind: FindingKind::Unverifiable,
        deployment: intent.deployment.clone(),
        provider: Some(intent.provider),
        flow: u.oracle.flows.first().cloned(),
        message: format!(
            "{}: intent says deny [{}], but {} could allow it through {}: declare what the rule matches (service_tags / prefix_lists in the placement) or remove it",
            u.probe,
            u.oracle.reason,
            intent.provider,
            rules.join(", ")
        ),
    }
}

/// Simulate one target: `state` is what the target would hold (desired managed rules plus the
/// unmanaged rules kept), lowered by its provider.
pub fn simulate(
    provider: &dyn Provider,
    dep: &Deployment,
    intent: &DeploymentIntent,
    state: &NativeState,
) -> Simulation {
    let started = Instant::now();
    let policy: EvalPolicy = provider.lower(state, intent);
    let index = policy.index();
    let allowances: Vec<FlowIntent> = provider.platform_allowances(intent);
    let oracle_index = IntentIndex::new(intent, &allowances);
    let mut sim = Simulation::default();

    // 1. readable probes derived from the flows
    let mut shown = 0;
    for p in probes::derive(intent) {
        sim.report.probes += 1;
        let oracle = oracle_index.judge(&p);
        let verdicts = index.possible_verdicts(&p);
        if verdicts.len() > 1 {
            sim.report.unverifiable += 1;
            if !oracle.allowed && verdicts.iter().any(|v| v.allowed) && shown < MISMATCHES_SHOWN {
                shown += 1;
                let u = Unverifiable::new(p, oracle, &policy);
                sim.findings.push(unverifiable_finding(intent, &u));
            }
            continue;
        }
        let native = &verdicts[0];
        if oracle.allowed != native.allowed {
            sim.report.mismatches += 1;
            if shown < MISMATCHES_SHOWN {
                shown += 1;
                sim.findings.push(mismatch_finding(
                    intent,
                    &Mismatch::new(p, oracle, native, &policy),
                ));
            }
        }
    }

    // 2. every equivalence class
    let ex = check_exhaustive(
        intent,
        &allowances,
        &policy,
        MISMATCHES_SHOWN - shown.min(MISMATCHES_SHOWN),
    );
    sim.report.classes = ex.classes;
    sim.report.mismatches += ex.mismatch_count;
    sim.report.unverifiable += ex.unverifiable_widening + ex.unverifiable_narrowing;
    let widening: Vec<&Unverifiable> = ex
        .unverifiable
        .iter()
        .filter(|u| !u.oracle.allowed)
        .collect();
    sim.findings
        .extend(widening.iter().map(|u| unverifiable_finding(intent, u)));
    if ex.unverifiable_widening > widening.len() as u64 {
        sim.findings.push(Finding {
            kind: FindingKind::Unverifiable,
            deployment: intent.deployment.clone(),
            provider: Some(intent.provider),
            flow: None,
            message: format!(
                "{} more regions could be opened by rules whose match is unknown",
                ex.unverifiable_widening - widening.len() as u64
            ),
        });
    }
    sim.findings
        .extend(ex.mismatches.iter().map(|m| mismatch_finding(intent, m)));
    if ex.mismatch_count > ex.mismatches.len() as u64 {
        sim.findings.push(Finding {
            kind: FindingKind::Mismatch,
            deployment: intent.deployment.clone(),
            provider: Some(intent.provider),
            flow: None,
            message: format!(
                "{}{} more mismatching regions not shown",
                if ex.mismatch_count_capped {
                    "at least "
                } else {
                    ""
                },
                ex.mismatch_count - ex.mismatches.len() as u64
            ),
        });
    }

    // 3. expectations
    for e in &dep.expects {
        let probes = expect_probes(dep, intent, e);
        let want = e.verdict == Action::Allow;
        let case = format!(
            "expect {} -> {} {} {} ({})",
            e.from,
            e.to,
            e.service.text,
            verdict_word(want),
            e.loc
        );
        if probes.is_empty() {
            sim.report.expectations_failed += 1;
            sim.findings.push(Finding {
                kind: FindingKind::Expectation,
                deployment: intent.deployment.clone(),
                provider: Some(intent.provider),
                flow: None,
                message: format!("{case}: no hosts of both ends exist on this cloud"),
            });
            continue;
        }
        for p in probes {
            sim.report.expectations += 1;
            let oracle = oracle_index.judge(&p);
            let verdicts = index.possible_verdicts(&p);
            let native = &verdicts[0];
            let mut why = Vec::new();
            if oracle.allowed != want {
                why.push(format!("the intent gives {}", verdict_word(oracle.allowed)));
            }
            if verdicts.len() > 1 {
                why.push(format!(
                    "{} depends on rules whose match is unknown",
                    intent.provider
                ));
            } else if native.allowed != want {
                let rule = native
                    .deciding()
                    .and_then(|d| d.rule)
                    .map(|i| format!("rule `{}`", policy.rules[i].id))
                    .unwrap_or_else(|| "the cloud default".into());
                why.push(format!(
                    "{} gives {} by {rule}",
                    intent.provider,
                    verdict_word(native.allowed)
                ));
            }
            if !why.is_empty() {
                sim.report.expectations_failed += 1;
                sim.findings.push(Finding {
                    kind: FindingKind::Expectation,
                    deployment: intent.deployment.clone(),
                    provider: Some(intent.provider),
                    flow: oracle.flows.first().cloned(),
                    message: format!("{case} failed for {p}: {}", why.join("; ")),
                });
                break; // one failure per case is enough to read
            }
        }
    }
    sim.report.millis = started.elapsed().as_millis() as u64;
    sim
}
