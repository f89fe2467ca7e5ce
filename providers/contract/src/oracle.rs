//! The oracle: DESIGN.md §1 evaluated directly on the resolved intent.
//!
//! - ingress to a member is denied unless an allow flow *to its group* matches;
//! - egress from a member is allowed, unless its group is `egress: restricted`, in which case
//!   an allow flow *from its group* must match;
//! - a matching deny flow beats every allow;
//! - hosts outside the cloud's workloads are not ours to judge on their side.
//!
//! A group endpoint matches the members of that leaf group; a network endpoint matches any
//! host whose address is in it (members included). Platform allowances (Azure load-balancer
//! probes) are extra allow flows supplied by the provider.

use crate::eval::{Host, Probe};
use crate::intent::{Action, DeploymentIntent, Endpoint, FlowIntent};

/// The intent's verdict on a probe, with the flows that settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleVerdict {
    /// Delivered?
    pub allowed: bool,
    /// Names of the deciding flows: the matching deny flows if denied by one; else the allow
    /// flows that admitted it; empty when a default decided.
    pub flows: Vec<String>,
    /// In words: why.
    pub reason: String,
}

fn endpoint_matches(e: &Endpoint, h: &Host) -> bool {
    match e {
        Endpoint::Group(g) => h.group.as_deref() == Some(g.as_str()),
        Endpoint::Network { addrs, .. } => addrs.contains(h.ip),
    }
}

/// Does a flow cover this probe (ends and traffic)?
pub fn flow_matches(f: &FlowIntent, p: &Probe) -> bool {
    endpoint_matches(&f.from, &p.src)
        && endpoint_matches(&f.to, &p.dst)
        && f.traffic.iter().any(|t| t.matches(&p.packet))
}

fn names<'a>(fs: impl Iterator<Item = &'a FlowIntent>) -> Vec<String> {
    let mut v: Vec<String> = fs.map(|f| f.name.clone()).collect();
    v.sort();
    v.dedup();
    v
}

/// Judge a probe by the intent alone.
pub fn judge(intent: &DeploymentIntent, allowances: &[FlowIntent], p: &Probe) -> OracleVerdict {
    let all = || intent.flows.iter().chain(allowances.iter());
    let denies: Vec<&FlowIntent> = all()
        .filter(|f| f.action == Action::Deny && flow_matches(f, p))
        .collect();
    if !denies.is_empty() {
        return OracleVerdict {
            allowed: false,
            flows: names(denies.into_iter()),
            reason: "a deny flow matches".into(),
        };
    }
    let allows = || all().filter(|f| f.action == Action::Allow && flow_matches(f, p));
    let mut deciding = Vec::new();
    if let Some(g) = &p.src.group {
        let restricted = intent.groups.get(g).is_some_and(|g| g.egress_restricted);
        if restricted {
            let from_g: Vec<&FlowIntent> = allows()
                .filter(|f| f.from.group() == Some(g.as_str()))
                .collect();
            if from_g.is_empty() {
                return OracleVerdict {
                    allowed: false,
                    flows: vec![],
                    reason: format!("egress from restricted group `{g}` is not declared"),
                };
            }
            deciding.extend(from_g);
        }
    }
    if let Some(g) = &p.dst.group {
        let to_g: Vec<&FlowIntent> = allows()
            .filter(|f| f.to.group() == Some(g.as_str()))
            .collect();
        if to_g.is_empty() {
            return OracleVerdict {
                allowed: false,
                flows: vec![],
                reason: format!("no allow flow to group `{g}`"),
            };
        }
        deciding.extend(to_g);
    }
    OracleVerdict {
        allowed: true,
        flows: names(deciding.into_iter()),
        reason: "allowed".into(),
    }
}
