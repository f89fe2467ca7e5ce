//! The oracle: the intent's reference semantics (README, "The intent language") evaluated
//! directly on the resolved intent.
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
use std::collections::HashMap;

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
    decide(
        intent,
        p,
        all().filter(|f| f.action == Action::Deny),
        all().filter(|f| f.action == Action::Allow),
        all().filter(|f| f.action == Action::Allow),
    )
}

/// The decision, given candidate deny flows and candidate allow flows from the source's and
/// to the destination's group (candidates may include flows that do not match).
fn decide<'f>(
    intent: &DeploymentIntent,
    p: &Probe,
    denies: impl Iterator<Item = &'f FlowIntent>,
    allows_from: impl Iterator<Item = &'f FlowIntent>,
    allows_to: impl Iterator<Item = &'f FlowIntent>,
) -> OracleVerdict {
    let denies: Vec<&FlowIntent> = denies.filter(|f| flow_matches(f, p)).collect();
    if !denies.is_empty() {
        return OracleVerdict {
            allowed: false,
            flows: names(denies.into_iter()),
            reason: "a deny flow matches".into(),
        };
    }
    let mut deciding = Vec::new();
    if let Some(g) = &p.src.group {
        let restricted = intent.groups.get(g).is_some_and(|g| g.egress_restricted);
        if restricted {
            let from_g: Vec<&FlowIntent> = allows_from
                .filter(|f| f.from.group() == Some(g.as_str()) && flow_matches(f, p))
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
        let to_g: Vec<&FlowIntent> = allows_to
            .filter(|f| f.to.group() == Some(g.as_str()) && flow_matches(f, p))
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

/// The flows of a target indexed by the groups they name, so judging one probe looks at the
/// flows that can decide it rather than at every flow. Judges exactly as [`judge`].
pub struct IntentIndex<'a> {
    intent: &'a DeploymentIntent,
    deny_to_group: HashMap<&'a str, Vec<&'a FlowIntent>>,
    /// deny flows toward a network: they can match any destination
    deny_to_net: Vec<&'a FlowIntent>,
    allow_from: HashMap<&'a str, Vec<&'a FlowIntent>>,
    allow_to: HashMap<&'a str, Vec<&'a FlowIntent>>,
}

impl<'a> IntentIndex<'a> {
    /// Index a target's flows and platform allowances.
    pub fn new(intent: &'a DeploymentIntent, allowances: &'a [FlowIntent]) -> Self {
        let mut ix = IntentIndex {
            intent,
            deny_to_group: HashMap::new(),
            deny_to_net: Vec::new(),
            allow_from: HashMap::new(),
            allow_to: HashMap::new(),
        };
        for f in intent.flows.iter().chain(allowances) {
            match (f.action, &f.to) {
                (Action::Deny, Endpoint::Group(g)) => {
                    ix.deny_to_group.entry(g).or_default().push(f)
                }
                (Action::Deny, Endpoint::Network { .. }) => ix.deny_to_net.push(f),
                (Action::Allow, _) => {
                    if let Some(g) = f.from.group() {
                        ix.allow_from.entry(g).or_default().push(f);
                    }
                    if let Some(g) = f.to.group() {
                        ix.allow_to.entry(g).or_default().push(f);
                    }
                }
            }
        }
        ix
    }

    /// Judge a probe by the intent alone.
    pub fn judge(&self, p: &Probe) -> OracleVerdict {
        fn of<'m, 'a>(
            map: &'m HashMap<&'a str, Vec<&'a FlowIntent>>,
            h: &Host,
        ) -> &'m [&'a FlowIntent] {
            h.group
                .as_deref()
                .and_then(|g| map.get(g))
                .map(Vec::as_slice)
                .unwrap_or_default()
        }
        let denies = of(&self.deny_to_group, &p.dst)
            .iter()
            .chain(&self.deny_to_net)
            .copied();
        decide(
            self.intent,
            p,
            denies,
            of(&self.allow_from, &p.src).iter().copied(),
            of(&self.allow_to, &p.dst).iter().copied(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_exhaustive;
    use crate::eval::{Direction, EvalPolicy, EvalRule, HostMatch};
    use crate::net::AddrSet;
    use crate::testkit::*;
    use crate::traffic::Traffic;
    use crate::ProviderKind;
    use std::collections::BTreeMap;

    fn net(s: &str) -> AddrSet {
        addrs(&[s])
    }

    fn intent() -> DeploymentIntent {
        let internet = Endpoint::Network {
            name: "internet".into(),
            addrs: AddrSet::any(),
        };
        let corp = Endpoint::Network {
            name: "corp".into(),
            addrs: net("203.0.113.0/24"),
        };
        DeploymentIntent {
            deployment: "t".into(),
            provider: ProviderKind::Gcp,
            settings: BTreeMap::new(),
            space: net("10.0.0.0/16"),
            groups: [group("web"), restricted("db")]
                .into_iter()
                .map(|g| (g.name.clone(), g))
                .collect(),
            flows: vec![
                allow("web-in", internet, g("web"), &["tcp/443"]),
                deny("no-corp", corp, g("web"), &["any"]),
                allow("db-from-web", g("web"), g("db"), &["tcp/5432"]),
            ],
        }
    }

    fn host(ip: &str, grp: Option<&str>) -> Host {
        match grp {
            Some(x) => member(x, ip),
            None => ext(ip),
        }
    }

    fn probe(src: Host, dst: Host, port: u16) -> Probe {
        crate::testkit::probe(src, dst, tcp(port))
    }

    #[test]
    fn deny_beats_allow_and_ingress_needs_a_flow_to_the_group() {
        let i = intent();
        let web = host("10.0.0.5", Some("web"));
        assert!(
            judge(
                &i,
                &[],
                &probe(host("198.51.100.1", None), web.clone(), 443)
            )
            .allowed
        );
        let v = judge(&i, &[], &probe(host("203.0.113.9", None), web.clone(), 443));
        assert!(!v.allowed);
        assert_eq!(v.flows, vec!["no-corp"]);
        assert!(!judge(&i, &[], &probe(host("198.51.100.1", None), web, 80)).allowed);
    }

    #[test]
    fn restricted_egress_needs_a_flow_from_the_group() {
        let i = intent();
        let db = host("10.0.0.9", Some("db"));
        assert!(!judge(&i, &[], &probe(db.clone(), host("198.51.100.1", None), 443)).allowed);
        // web's egress is open; db ingress from web is declared
        assert!(judge(&i, &[], &probe(host("10.0.0.5", Some("web")), db, 5432)).allowed);
    }

    #[test]
    fn exhaustive_check_finds_exactly_the_missing_rule() {
        let i = intent();
        let rule = |dir, action, prio, local: HostMatch, peer: HostMatch, t: &str| EvalRule {
            id: format!("r{prio}"),
            managed: true,
            flow: None,
            direction: dir,
            action,
            priority: prio,
            local,
            peer,
            traffic: vec![Traffic::parse(t).unwrap()],
            unknown: None,
        };
        let mut pol = EvalPolicy {
            rules: vec![
                rule(
                    Direction::Ingress,
                    Action::Deny,
                    1,
                    HostMatch::groups(["web"]),
                    HostMatch::addrs(net("203.0.113.0/24")),
                    "any",
                ),
                rule(
                    Direction::Ingress,
                    Action::Allow,
                    2,
                    HostMatch::groups(["web"]),
                    HostMatch::any(),
                    "tcp/443",
                ),
                rule(
                    Direction::Ingress,
                    Action::Allow,
                    2,
                    HostMatch::groups(["db"]),
                    HostMatch::groups(["web"]),
                    "tcp/5432",
                ),
                rule(
                    Direction::Egress,
                    Action::Allow,
                    2,
                    HostMatch::groups(["web"]),
                    HostMatch::any(),
                    "any",
                ),
            ],
        };
        let r = check_exhaustive(&i, &[], &pol, 5);
        assert_eq!(r.mismatch_count, 0, "{:?}", r.mismatches.first());
        assert!(r.classes > 100);
        // drop the deny: exactly the corp -> web https classes now differ
        pol.rules.remove(0);
        let r = check_exhaustive(&i, &[], &pol, 50);
        assert!(r.mismatch_count > 0);
        for m in &r.mismatches {
            assert!(m.native_allowed && !m.oracle.allowed);
            assert_eq!(m.oracle.flows, vec!["no-corp"]);
            assert_eq!(m.native_rule.as_deref(), Some("r2"));
        }
    }
}
