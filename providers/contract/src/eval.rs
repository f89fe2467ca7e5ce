//! The evaluation model every provider lowers its native rules into.
//!
//! One algorithm decides every cloud: among the rules of the direction that match, the
//! lowest priority number wins, and at equal priority a deny beats an allow; no match denies.
//! Each cloud's real semantics are expressed by *how it lowers*, not by a special evaluator:
//! - AWS: every allow at priority 0 (a union), no deny rules, no match = implicit deny;
//! - Azure: rule priorities as they are (unique per direction), defaults at 65000-65500;
//! - GCP: rule priorities, deny wins ties, implied rules at 65535.
//!
//! A packet between two members must pass the source's egress and the destination's ingress;
//! a packet from or to a host outside the cloud's workloads is judged by one side only.

use crate::intent::Action;
use crate::net::AddrSet;
use crate::traffic::{Packet, Traffic};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

/// Which side of the workload a rule guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic arriving at a workload.
    Ingress,
    /// Traffic leaving a workload.
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// A host in a probe: an address, and the leaf group it is a member of in this cloud (if it
/// is one of our workloads).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Host {
    /// The host's (private, for members) address.
    pub ip: IpAddr,
    /// The leaf group, for a workload; `None` for any other host.
    pub group: Option<String>,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{g}[{}]", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// One packet from one host to another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Probe {
    /// Sender.
    pub src: Host,
    /// Receiver.
    pub dst: Host,
    /// What is sent.
    pub packet: Packet,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} {}", self.src, self.dst, self.packet)
    }
}

/// A set of hosts: those whose address is in `addrs` or that are members of one of `groups`
/// (a cloud's "ranges OR tags").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMatch {
    /// Addresses matched.
    pub addrs: AddrSet,
    /// Leaf groups whose members are matched.
    pub groups: BTreeSet<String>,
}

impl HostMatch {
    /// Every host.
    pub fn any() -> Self {
        HostMatch {
            addrs: AddrSet::any(),
            groups: BTreeSet::new(),
        }
    }
    /// Hosts by address.
    pub fn addrs(addrs: AddrSet) -> Self {
        HostMatch {
            addrs,
            groups: BTreeSet::new(),
        }
    }
    /// Members of some groups.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(gs: I) -> Self {
        HostMatch {
            addrs: AddrSet::empty(),
            groups: gs.into_iter().map(Into::into).collect(),
        }
    }
    /// Does the host belong to the set?
    pub fn matches(&self, h: &Host) -> bool {
        self.addrs.contains(h.ip) || h.group.as_ref().is_some_and(|g| self.groups.contains(g))
    }
}

/// One rule in evaluation form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalRule {
    /// The native rule's name or id, as a user finds it in the cloud (for reports).
    pub id: String,
    /// True when intentwall owns the native rule.
    pub managed: bool,
    /// The intent flow that produced it, if known (from the ownership marker).
    pub flow: Option<String>,
    /// Ingress or egress.
    pub direction: Direction,
    /// Allow or deny.
    pub action: Action,
    /// Lower wins; at equal priority deny wins.
    pub priority: u32,
    /// The protected side: destination for ingress, source for egress.
    pub local: HostMatch,
    /// The other side: source for ingress, destination for egress.
    pub peer: HostMatch,
    /// Packets matched (union).
    pub traffic: Vec<Traffic>,
    /// Set when the model does not know exactly what the rule matches (an Azure service tag
    /// nobody declared, an AWS prefix list absent from the state, a source-port condition):
    /// then the fields above are an upper bound, the rule matches some unknown part of it,
    /// and this says why. The check proves what holds whatever that part is, and reports
    /// the rest as unverifiable; a rule is never modelled as matching nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl EvalRule {
    /// Does the rule match this probe in its direction?
    pub fn matches(&self, p: &Probe) -> bool {
        let (local, peer) = match self.direction {
            Direction::Ingress => (&p.dst, &p.src),
            Direction::Egress => (&p.src, &p.dst),
        };
        self.local.matches(local)
            && self.peer.matches(peer)
            && self.traffic.iter().any(|t| t.matches(&p.packet))
    }
}

/// A cloud target's rules in evaluation form, implied and default rules included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalPolicy {
    /// All rules, both directions.
    pub rules: Vec<EvalRule>,
}

/// How one direction was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The outcome.
    pub allowed: bool,
    /// Index into [`EvalPolicy::rules`] of the deciding rule; `None` = nothing matched.
    pub rule: Option<usize>,
}

/// The verdict for a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Delivered?
    pub allowed: bool,
    /// The source's egress decision (members only).
    pub egress: Option<Decision>,
    /// The destination's ingress decision (members only).
    pub ingress: Option<Decision>,
}

impl Verdict {
    /// Combine the sides: egress at a member source, ingress at a member destination.
    fn of(p: &Probe, decide: impl Fn(Direction) -> Decision) -> Self {
        let egress = p.src.group.as_ref().map(|_| decide(Direction::Egress));
        let ingress = p.dst.group.as_ref().map(|_| decide(Direction::Ingress));
        let allowed =
            egress.as_ref().is_none_or(|d| d.allowed) && ingress.as_ref().is_none_or(|d| d.allowed);
        Verdict {
            allowed,
            egress,
            ingress,
        }
    }

    /// The decision that settled the verdict: the denying one, or else ingress, or egress.
    pub fn deciding(&self) -> Option<&Decision> {
        [self.egress.as_ref(), self.ingress.as_ref()]
            .into_iter()
            .flatten()
            .find(|d| !d.allowed)
            .or(self.ingress.as_ref())
            .or(self.egress.as_ref())
    }
}

impl EvalPolicy {
    /// Decide one direction for a probe.
    pub fn decide(&self, dir: Direction, p: &Probe) -> Decision {
        self.decide_among(0..self.rules.len(), dir, p, &|_| false)
    }

    /// Decide among some rules (ascending indices): lowest priority wins, at equal priority
    /// a deny beats an allow, and among equals the first rule is the one reported.
    fn decide_among(
        &self,
        candidates: impl Iterator<Item = usize>,
        dir: Direction,
        p: &Probe,
        off: &dyn Fn(usize) -> bool,
    ) -> Decision {
        let mut best: Option<(u32, Action, usize)> = None;
        for i in candidates {
            let r = &self.rules[i];
            if r.direction != dir || off(i) {
                continue;
            }
            if let Some((bp, ba, _)) = best {
                // only a better priority, or a deny at the same priority, can change it
                if r.priority > bp
                    || (r.priority == bp && !(r.action == Action::Deny && ba == Action::Allow))
                {
                    continue;
                }
            }
            if r.matches(p) {
                best = Some((r.priority, r.action, i));
            }
        }
        match best {
            Some((_, a, i)) => Decision {
                allowed: a == Action::Allow,
                rule: Some(i),
            },
            None => Decision {
                allowed: false,
                rule: None,
            },
        }
    }

    /// An index of the rules by what their protected side names, for deciding many probes.
    pub fn index(&self) -> PolicyIndex<'_> {
        let mut by_group: HashMap<(Direction, &str), Vec<usize>> = HashMap::new();
        let mut by_addr: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for (i, r) in self.rules.iter().enumerate() {
            for g in &r.local.groups {
                by_group
                    .entry((r.direction, g.as_str()))
                    .or_default()
                    .push(i);
            }
            if !r.local.addrs.is_empty() {
                by_addr[r.direction as usize].push(i);
            }
        }
        PolicyIndex {
            policy: self,
            by_group,
            by_addr,
        }
    }

    /// Evaluate a probe: egress at a member source, ingress at a member destination.
    /// Rules with an unknown match count as matching their whole upper bound.
    pub fn evaluate(&self, p: &Probe) -> Verdict {
        Verdict::of(p, |dir| self.decide(dir, p))
    }
}

/// A policy's rules indexed by the group or addresses of their protected side: a probe is
/// decided by the rules that can protect its hosts instead of a scan of every rule (a
/// target has tens of thousands of rules at estate scale; a host's side has a few dozen).
/// Decides exactly as [`EvalPolicy::evaluate`], deciding rule included.
pub struct PolicyIndex<'p> {
    policy: &'p EvalPolicy,
    by_group: HashMap<(Direction, &'p str), Vec<usize>>,
    /// rules whose protected side names addresses, per direction
    by_addr: [Vec<usize>; 2],
}

impl PolicyIndex<'_> {
    /// The indexed policy.
    pub fn policy(&self) -> &EvalPolicy {
        self.policy
    }

    /// Decide one direction for a probe.
    pub fn decide(&self, dir: Direction, p: &Probe) -> Decision {
        self.decide_with(dir, p, &|_| false)
    }

    /// Decide one direction with the rules for which `off` holds taken as not matching.
    fn decide_with(&self, dir: Direction, p: &Probe, off: &dyn Fn(usize) -> bool) -> Decision {
        let local = match dir {
            Direction::Ingress => &p.dst,
            Direction::Egress => &p.src,
        };
        let named = local
            .group
            .as_deref()
            .and_then(|g| self.by_group.get(&(dir, g)))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let addr = &self.by_addr[dir as usize];
        // ascending merge of the two lists, each rule once
        let (mut i, mut j) = (0, 0);
        let merged = std::iter::from_fn(move || {
            let next = match (named.get(i), addr.get(j)) {
                (Some(&a), Some(&b)) if a == b => {
                    i += 1;
                    j += 1;
                    a
                }
                (Some(&a), Some(&b)) if a < b => {
                    i += 1;
                    a
                }
                (_, Some(&b)) => {
                    j += 1;
                    b
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (None, None) => return None,
            };
            Some(next)
        });
        self.policy.decide_among(merged, dir, p, off)
    }

    /// Evaluate a probe: egress at a member source, ingress at a member destination.
    /// Rules with an unknown match count as matching their whole upper bound.
    pub fn evaluate(&self, p: &Probe) -> Verdict {
        Verdict::of(p, |dir| self.decide(dir, p))
    }

    /// Every verdict the probe can get, whatever the rules with an unknown match really
    /// match: one per subset of those that can match it (their upper bound does) taken as
    /// not matching. One verdict when no such rule can match. Beyond `UNKNOWN_COMBINATIONS`
    /// such rules the verdicts of all-on and all-off alone are returned, so callers must treat
    /// more than one distinct verdict as "cannot be decided", never pick one.
    pub fn possible_verdicts(&self, p: &Probe) -> Vec<Verdict> {
        let unknown: Vec<usize> = self
            .policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.unknown.is_some() && r.matches(p))
            .map(|(i, _)| i)
            .collect();
        if unknown.is_empty() {
            return vec![self.evaluate(p)];
        }
        let subsets: Vec<u64> = if unknown.len() <= UNKNOWN_COMBINATIONS {
            (0..1u64 << unknown.len()).collect()
        } else {
            vec![0, u64::MAX]
        };
        let mut out: Vec<Verdict> = Vec::new();
        for mask in subsets {
            let off = |i: usize| {
                unknown
                    .iter()
                    .position(|&u| u == i)
                    .is_some_and(|k| (mask >> k.min(63)) & 1 == 1)
            };
            let v = Verdict::of(p, |dir| self.decide_with(dir, p, &off));
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }
}

/// How many unknown-match rules on one probe are tried in every combination.
pub const UNKNOWN_COMBINATIONS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(dir: Direction, action: Action, priority: u32) -> EvalRule {
        EvalRule {
            id: format!("{action:?}-{priority}"),
            managed: true,
            flow: None,
            direction: dir,
            action,
            priority,
            local: HostMatch::any(),
            peer: HostMatch::any(),
            traffic: vec![Traffic::any()],
            unknown: None,
        }
    }

    fn probe() -> Probe {
        Probe {
            src: Host {
                ip: "203.0.113.9".parse().unwrap(),
                group: None,
            },
            dst: Host {
                ip: "10.0.0.4".parse().unwrap(),
                group: Some("web".into()),
            },
            packet: Packet::ported(6, 443),
        }
    }

    #[test]
    fn lowest_priority_wins_and_deny_wins_ties() {
        let mut pol = EvalPolicy {
            rules: vec![
                rule(Direction::Ingress, Action::Allow, 100),
                rule(Direction::Ingress, Action::Deny, 200),
            ],
        };
        assert!(pol.evaluate(&probe()).allowed);
        pol.rules.push(rule(Direction::Ingress, Action::Deny, 100));
        let v = pol.evaluate(&probe());
        assert!(!v.allowed);
        assert_eq!(v.ingress.unwrap().rule, Some(2));
    }

    #[test]
    fn no_match_denies_and_externals_are_not_checked() {
        let pol = EvalPolicy::default();
        assert!(!pol.evaluate(&probe()).allowed);
        let mut p = probe();
        p.dst.group = None;
        assert!(
            pol.evaluate(&p).allowed,
            "external to external is not ours to judge"
        );
    }
}
