//! GCP VPC firewall rules -> evaluation rules, with GCP's real semantics.
//!
//! - priority as stored (1000 when omitted); deny wins ties (the contract's algorithm);
//! - disabled rules are not enforced and foreign rules (another
//!   network) are not ours to simulate;
//! - implied rules at 65535: allow egress to 0.0.0.0/0 and ::/0, deny ingress from both;
//! - an ingress source is `sourceRanges` OR `sourceTags` OR `sourceServiceAccounts`
//!   (trap 2), and an ingress rule with no source at all matches IPv4 only (trap 3);
//! - tags match members only: `iw-<g>` is carried by the members of group `g` (unless `g` is
//!   identified by a service account); any other tag is carried by none of our workloads;
//!   a service account matches the groups that run as it;
//! - no target = every instance; egress peers are `destinationRanges`;
//! - protocols are matched by number: `icmp` is protocol 1 in either family, never ICMPv6.

use crate::model::{protocol_number, ranges_set, Act, Dir, Firewall};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Direction, EvalPolicy, EvalRule, HostMatch, NativeState,
    Traffic,
};
use std::collections::BTreeSet;

/// Priority of GCP's implied rules.
pub const IMPLIED_PRIORITY: u32 = 65535;

fn tag_groups(intent: &DeploymentIntent, tags: &[String]) -> BTreeSet<String> {
    intent
        .groups
        .values()
        .filter(|g| g.service_account.is_none())
        .filter(|g| {
            tags.iter()
                .any(|t| *t == crate::translate::group_tag(&g.name))
        })
        .map(|g| g.name.clone())
        .collect()
}

fn sa_groups(intent: &DeploymentIntent, sas: &[String]) -> BTreeSet<String> {
    intent
        .groups
        .values()
        .filter(|g| g.service_account.as_ref().is_some_and(|s| sas.contains(s)))
        .map(|g| g.name.clone())
        .collect()
}

/// The traffic of a rule's entries.
pub fn entries_traffic(fw: &Firewall) -> Vec<Traffic> {
    fw.entries
        .iter()
        .map(|e| match protocol_number(&e.protocol) {
            None => Traffic::any(),
            Some(p) if proto::has_ports(p) => match &e.ports {
                Some(ports) => Traffic::ports(p, ports.clone()),
                None => Traffic::proto(p),
            },
            Some(p) => Traffic::proto(p),
        })
        .collect()
}

/// Narrow the protected side by a range filter (`destinationRanges` on an ingress rule,
/// `sourceRanges` on an egress rule). Exact when the rule targets every instance; with
/// targets, a group counts only when all the addresses its members can have are inside the
/// filter (a group only partly inside is left out: documented limitation).
fn filter_local(
    local: HostMatch,
    filter: &AddrSet,
    intent: &DeploymentIntent,
    all: bool,
) -> HostMatch {
    if all {
        return HostMatch::addrs(filter.clone());
    }
    HostMatch {
        addrs: local.addrs.intersect(filter),
        groups: local
            .groups
            .into_iter()
            .filter(|g| intent.member_space(g).is_subset(filter))
            .collect(),
    }
}

/// Lower one canonical rule.
pub fn lower_rule(fw: &Firewall, managed: bool, intent: &DeploymentIntent) -> EvalRule {
    let all_targets = fw.target_tags.is_empty() && fw.target_service_accounts.is_empty();
    let mut local = if all_targets {
        HostMatch::any()
    } else {
        let mut g = tag_groups(intent, &fw.target_tags);
        g.extend(sa_groups(intent, &fw.target_service_accounts));
        HostMatch {
            addrs: AddrSet::empty(),
            groups: g,
        }
    };
    let peer = match fw.direction {
        Dir::Ingress => {
            if !fw.destination_ranges.is_empty() {
                local = filter_local(
                    local,
                    &ranges_set(&fw.destination_ranges),
                    intent,
                    all_targets,
                );
            }
            if fw.source_ranges.is_empty()
                && fw.source_tags.is_empty()
                && fw.source_service_accounts.is_empty()
            {
                HostMatch::addrs(AddrSet::any_v4())
            } else {
                let mut g = tag_groups(intent, &fw.source_tags);
                g.extend(sa_groups(intent, &fw.source_service_accounts));
                HostMatch {
                    addrs: ranges_set(&fw.source_ranges),
                    groups: g,
                }
            }
        }
        Dir::Egress => {
            if !fw.source_ranges.is_empty() {
                local = filter_local(local, &ranges_set(&fw.source_ranges), intent, all_targets);
            }
            if fw.destination_ranges.is_empty() {
                HostMatch::addrs(AddrSet::any_v4())
            } else {
                HostMatch::addrs(ranges_set(&fw.destination_ranges))
            }
        }
    };
    EvalRule {
        id: fw.name.clone(),
        managed,
        flow: if managed { fw.marker_flow() } else { None },
        direction: match fw.direction {
            Dir::Ingress => Direction::Ingress,
            Dir::Egress => Direction::Egress,
        },
        action: match fw.action {
            Act::Allow => Action::Allow,
            Act::Deny => Action::Deny,
        },
        priority: fw.priority,
        local,
        peer,
        traffic: entries_traffic(fw),
        unknown: None,
    }
}

/// GCP's implied rules (they never appear in list APIs, yet decide unmatched packets).
pub fn implied_rules() -> Vec<EvalRule> {
    let mk = |id: &str, direction, action, peer: AddrSet| EvalRule {
        id: id.into(),
        managed: false,
        flow: None,
        direction,
        action,
        priority: IMPLIED_PRIORITY,
        local: HostMatch::any(),
        peer: HostMatch::addrs(peer),
        traffic: vec![Traffic::any()],
        unknown: None,
    };
    vec![
        mk(
            "implied-allow-egress-ipv4",
            Direction::Egress,
            Action::Allow,
            AddrSet::any_v4(),
        ),
        mk(
            "implied-allow-egress-ipv6",
            Direction::Egress,
            Action::Allow,
            AddrSet::any_v6(),
        ),
        mk(
            "implied-deny-ingress-ipv4",
            Direction::Ingress,
            Action::Deny,
            AddrSet::any_v4(),
        ),
        mk(
            "implied-deny-ingress-ipv6",
            Direction::Ingress,
            Action::Deny,
            AddrSet::any_v6(),
        ),
    ]
}

/// Lower a whole state (foreign and disabled rules skipped) plus the implied rules.
pub fn lower(state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy {
    let project = intent.setting("project");
    let mut rules = Vec::new();
    for o in &state.objects {
        if o.foreign || o.kind != crate::KIND {
            continue;
        }
        // bodies are canonical rules we wrote or read; one that does not read is not a rule
        let Ok(fw) = Firewall::from_json(&o.body.value(), &o.key, project) else {
            continue;
        };
        if fw.disabled {
            continue;
        }
        rules.push(lower_rule(&fw, o.managed, intent));
    }
    rules.extend(implied_rules());
    EvalPolicy { rules }
}
