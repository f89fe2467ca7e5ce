//! Security Groups -> evaluation rules, with AWS's real semantics.
//!
//! AWS evaluates the union of the allow rules of every SG on an interface; there is no deny
//! and no order, and no match drops the packet. So every rule of a managed SG `iw-<g>`
//! becomes an allow at priority 0 whose local side is the members of `g` (SG membership);
//! the contract's no-match default is the implicit deny. Only rules present count: a new
//! SG's default egress rule shows up as a real rule in snapshots, nothing is implied.
//! Foreign objects (other VPCs, unmanaged SGs no workload of ours carries) are skipped.

use crate::model::*;
use intentwall_contract::net::parse_cidr_lenient;
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Direction, EvalPolicy, EvalRule, HostMatch, NativeState,
    Traffic,
};
use std::collections::BTreeMap;

/// The intent group a managed SG stands for: its `intentwall:group` tag, else its name
/// without `iw-`.
pub fn sg_group(body: &serde_json::Value) -> Option<String> {
    let name = body.get("GroupName")?.as_str()?;
    let tag = body
        .get("Tags")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .find(|t| t.get("Key").and_then(|k| k.as_str()) == Some(TAG_GROUP))
        .and_then(|t| t.get("Value"))
        .and_then(|v| v.as_str());
    Some(
        tag.map(str::to_string)
            .unwrap_or_else(|| name.strip_prefix("iw-").unwrap_or(name).to_string()),
    )
}

/// A prefix list's entries as the placement declares them (`prefix_lists: {pl-…: [cidr…]}`,
/// carried as the setting `prefix_lists.<id>` = comma-separated CIDRs).
fn declared_list(intent: &DeploymentIntent, id: &str) -> Option<AddrSet> {
    let text = intent.setting(&format!("prefix_lists.{id}"))?;
    let nets: Vec<_> = text
        .split(',')
        .filter_map(|c| parse_cidr_lenient(c.trim()).ok().map(|n| n.trunc()))
        .collect();
    Some(AddrSet::from_nets(&nets))
}

/// Lower a state; see the module docs.
pub fn lower(state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy {
    // managed SGs of our VPC: container key -> group, name -> group
    let mut by_key: BTreeMap<&str, String> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    // prefix lists (any, foreign included: they are only address books): name/id -> entries
    let mut lists: BTreeMap<String, AddrSet> = BTreeMap::new();
    for o in &state.objects {
        if o.kind == KIND_SG && !o.foreign && o.managed {
            let body = o.body.value();
            if let Some(g) = sg_group(&body) {
                by_key.insert(&o.key, g.clone());
                if let Some(n) = body.get("GroupName").and_then(|v| v.as_str()) {
                    by_name.insert(n.to_string(), g);
                }
            }
        } else if o.kind == KIND_PL {
            let body = o.body.value();
            let nets: Vec<_> = body
                .get("Entries")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("Cidr").and_then(|c| c.as_str()))
                .filter_map(|c| parse_cidr_lenient(c).ok().map(|n| n.trunc()))
                .collect();
            let set = AddrSet::from_nets(&nets);
            for k in ["PrefixListName", "PrefixListId"] {
                if let Some(n) = body.get(k).and_then(|v| v.as_str()) {
                    lists.insert(n.to_string(), set.clone());
                }
            }
        }
    }
    let mut rules = Vec::new();
    for o in &state.objects {
        if o.kind != KIND_RULE || o.foreign {
            continue;
        }
        let Some(g) = o.parent.as_deref().and_then(|p| by_key.get(p)) else {
            continue;
        };
        let Some(rule) = Rule::from_body("", &o.body.value()) else {
            continue;
        };
        let mut unknown = None;
        // ICMP type -1 with a code: AWS refuses to create it, so what a recorded one matches
        // is not known; it may match any packet of its protocol
        let traffic = match rule.perm.traffic() {
            Some(t) => t,
            None => {
                unknown =
                    Some("ICMP type -1 with a code: AWS does not define what it matches".into());
                Traffic::proto(rule.perm.proto.number().unwrap_or(proto::ICMP))
            }
        };
        let id = o.key.clone();
        let peer = match &rule.peer {
            Peer::CidrIp(c) | Peer::CidrIpv6(c) => match parse_cidr_lenient(c) {
                Ok(n) => HostMatch::addrs(AddrSet::from_net(n.trunc())),
                Err(_) => HostMatch::default(),
            },
            // members of the referenced managed SG; any other SG: no workload of ours
            Peer::GroupName(n) => match by_name.get(n) {
                Some(h) => HostMatch::groups([h.clone()]),
                None => HostMatch::default(),
            },
            Peer::GroupId { .. } => HostMatch::default(),
            Peer::PrefixListName(n) | Peer::PrefixListId(n) => {
                match lists.get(n).cloned().or_else(|| declared_list(intent, n)) {
                    Some(set) => HostMatch::addrs(set),
                    None => {
                        unknown = Some(format!(
                            "prefix list {n} is neither in the state nor declared under prefix_lists"
                        ));
                        HostMatch::any()
                    }
                }
            }
        };
        rules.push(EvalRule {
            id,
            managed: o.managed,
            flow: o.flow.clone(),
            direction: match rule.dir {
                Dir::Ingress => Direction::Ingress,
                Dir::Egress => Direction::Egress,
            },
            action: Action::Allow,
            priority: 0,
            local: HostMatch::groups([g.clone()]),
            peer,
            traffic: vec![traffic],
            unknown,
        });
    }
    EvalPolicy { rules }
}
