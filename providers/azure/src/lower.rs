//! Native NSG rules -> evaluation rules with Azure's semantics: first match by priority
//! (priorities are unique per direction, so the contract's lowest-priority-wins algorithm is
//! first match), then the default rules at 65000/65001/65500.

use crate::model::{port_set, AzRule, Dir, Proto, Side};
use crate::{vnet_space, KIND_RULE, LB_PROBE_IP};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Direction, EvalPolicy, EvalRule, HostMatch, NativeState,
    Traffic,
};
use std::collections::BTreeSet;

/// Everything `lower` needs to know about the target.
pub struct Ctx<'a> {
    /// What `VirtualNetwork` means here.
    pub vnet: AddrSet,
    /// The intent (group names).
    pub intent: &'a DeploymentIntent,
}

impl Ctx<'_> {
    fn lb() -> AddrSet {
        AddrSet::from_net(LB_PROBE_IP.parse().expect("constant"))
    }

    /// The group behind an ASG id (`…/applicationSecurityGroups/iw-<group>`), if ours.
    pub fn asg_group(&self, id: &str) -> Option<String> {
        let name = id.rsplit('/').next()?;
        let g = name.strip_prefix("iw-")?;
        Some(
            self.intent
                .groups
                .keys()
                .find(|k| k.eq_ignore_ascii_case(g))
                .cloned()
                .unwrap_or_else(|| g.to_string()),
        )
    }

    /// A service tag's ranges as the placement declares them (`service_tags: {Tag: [cidr…]}`,
    /// carried as the setting `service_tags.<Tag>` = comma-separated CIDRs); tags compare
    /// case-insensitively, as Azure's do.
    fn declared_tag(&self, tag: &str) -> Option<AddrSet> {
        let key = self.intent.settings.keys().find(|k| {
            k.strip_prefix("service_tags.")
                .is_some_and(|t| t.eq_ignore_ascii_case(tag))
        })?;
        let nets: Vec<ipnet::IpNet> = self.intent.settings[key]
            .split(',')
            .filter_map(|c| c.trim().parse::<ipnet::IpNet>().ok().map(|n| n.trunc()))
            .collect();
        Some(AddrSet::from_nets(&nets))
    }

    /// The hosts one side of a rule names, notes on what was approximated, and why the match
    /// is not known (then the hosts are an upper bound).
    pub fn side(&self, s: &Side, notes: &mut Vec<String>, unknown: &mut Vec<String>) -> HostMatch {
        // prefixes are collected and united once: a rule may carry thousands of them
        let mut nets: Vec<ipnet::IpNet> = Vec::new();
        let mut tags: Vec<AddrSet> = Vec::new();
        for p in &s.prefixes {
            match p.as_str() {
                "*" => tags.push(AddrSet::any()),
                "VirtualNetwork" => tags.push(self.vnet.clone()),
                "AzureLoadBalancer" => tags.push(Self::lb()),
                "Internet" => tags.push(AddrSet::any().subtract(&self.vnet)),
                other => match other.parse::<ipnet::IpNet>() {
                    Ok(n) => nets.push(n),
                    Err(_) => match self.declared_tag(other) {
                        Some(set) => tags.push(set),
                        None => {
                            unknown.push(format!(
                                "service tag {other} is not declared under service_tags"
                            ));
                            tags.push(AddrSet::any());
                        }
                    },
                },
            }
        }
        tags.push(AddrSet::from_nets(&nets));
        let addrs = AddrSet::union_all(&tags);
        let mut groups = BTreeSet::new();
        for id in &s.asgs {
            match self.asg_group(id) {
                Some(g) => {
                    groups.insert(g);
                }
                None => notes.push(format!(
                    "ASG {} is not intentwall's; modelled as matching nothing",
                    id.rsplit('/').next().unwrap_or(id)
                )),
            }
        }
        HostMatch { addrs, groups }
    }
}

fn only(h: &HostMatch, v6: bool) -> HostMatch {
    HostMatch {
        addrs: if v6 {
            h.addrs.only_v6()
        } else {
            h.addrs.only_v4()
        },
        groups: BTreeSet::new(),
    }
}

/// Lower one rule to evaluation rules (Icmp may split by address family).
pub fn lower_rule(ctx: &Ctx<'_>, r: &AzRule, managed: bool, flow: Option<String>) -> Vec<EvalRule> {
    let mut notes = Vec::new();
    let mut unknown = Vec::new();
    let src = ctx.side(&r.src, &mut notes, &mut unknown);
    let dst = ctx.side(&r.dst, &mut notes, &mut unknown);
    let (direction, local, peer) = match r.dir {
        Dir::Inbound => (Direction::Ingress, dst, src),
        Dir::Outbound => (Direction::Egress, src, dst),
    };
    if r.src_ports != ["*"] {
        // probes carry no source port: which of them the rule matches is not known
        unknown.push(format!(
            "source ports {} restricted; the model does not see source ports",
            r.src_ports.join(",")
        ));
    }
    let ports = port_set(&r.dst_ports);
    // (local, peer, traffic) pieces
    let mut pieces: Vec<(HostMatch, HostMatch, Vec<Traffic>)> = Vec::new();
    match r.proto {
        Proto::Any => {
            let t = if ports.is_full() {
                vec![Traffic::any()]
            } else {
                notes.push("protocol * with ports modelled as Tcp+Udp on those ports".into());
                vec![
                    Traffic::ports(proto::TCP, ports.clone()),
                    Traffic::ports(proto::UDP, ports.clone()),
                ]
            };
            pieces.push((local, peer, t));
        }
        Proto::Tcp => pieces.push((local, peer, vec![Traffic::ports(proto::TCP, ports)])),
        Proto::Udp => pieces.push((local, peer, vec![Traffic::ports(proto::UDP, ports)])),
        Proto::Esp => pieces.push((local, peer, vec![Traffic::proto(proto::ESP)])),
        Proto::Ah => pieces.push((local, peer, vec![Traffic::proto(proto::AH)])),
        Proto::Icmp => {
            // Icmp is ICMP of the packet's IP version: where one side is addresses only,
            // the family decides; between ASGs it is ICMPv4 and ICMPv6 alike.
            let v4 = vec![Traffic::proto(proto::ICMP)];
            let v6 = vec![Traffic::proto(proto::ICMPV6)];
            if peer.groups.is_empty() {
                pieces.push((local.clone(), only(&peer, false), v4));
                pieces.push((local, only(&peer, true), v6));
            } else if local.groups.is_empty() {
                pieces.push((only(&local, false), peer.clone(), v4));
                pieces.push((only(&local, true), peer, v6));
            } else {
                pieces.push((
                    local,
                    peer,
                    vec![Traffic::proto(proto::ICMP), Traffic::proto(proto::ICMPV6)],
                ));
            }
        }
    }
    let id = if notes.is_empty() {
        r.name.clone()
    } else {
        format!("{} ({})", r.name, notes.join("; "))
    };
    pieces
        .into_iter()
        .map(|(local, peer, traffic)| EvalRule {
            id: id.clone(),
            managed,
            flow: flow.clone(),
            direction,
            action: r.access,
            priority: r.priority,
            local,
            peer,
            traffic,
            unknown: (!unknown.is_empty()).then(|| unknown.join("; ")),
        })
        .collect()
}

/// Azure's six default rules.
pub fn default_rules(ctx: &Ctx<'_>) -> Vec<EvalRule> {
    let any = HostMatch::any;
    let vnet = || HostMatch::addrs(ctx.vnet.clone());
    let mk = |id: &str, direction, action, priority, local: HostMatch, peer: HostMatch| EvalRule {
        id: id.to_string(),
        managed: false,
        flow: None,
        direction,
        action,
        priority,
        local,
        peer,
        traffic: vec![Traffic::any()],
        unknown: None,
    };
    use Action::*;
    use Direction::*;
    vec![
        mk("AllowVNetInBound (default; VirtualNetwork modelled as the VNet space)", Ingress, Allow, 65000, vnet(), vnet()),
        mk("AllowAzureLoadBalancerInBound (default)", Ingress, Allow, 65001, any(), HostMatch::addrs(Ctx::lb())),
        mk("DenyAllInBound (default)", Ingress, Deny, 65500, any(), any()),
        mk("AllowVnetOutBound (default; VirtualNetwork modelled as the VNet space)", Egress, Allow, 65000, vnet(), vnet()),
        mk(
            "AllowInternetOutBound (default; Internet modelled as everything outside the VNet space)",
            Egress,
            Allow,
            65001,
            any(),
            HostMatch::addrs(AddrSet::any().subtract(&ctx.vnet)),
        ),
        mk("DenyAllOutBound (default)", Egress, Deny, 65500, any(), any()),
    ]
}

/// Lower a whole state.
pub fn lower(state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy {
    let ctx = Ctx {
        vnet: vnet_space(intent),
        intent,
    };
    let mut rules = Vec::new();
    for o in &state.objects {
        if o.kind != KIND_RULE || o.foreign {
            continue;
        }
        if let Ok(r) = AzRule::from_json(&o.body.value(), "?") {
            rules.extend(lower_rule(&ctx, &r, o.managed, o.flow.clone()));
        }
    }
    rules.extend(default_rules(&ctx));
    EvalPolicy { rules }
}
