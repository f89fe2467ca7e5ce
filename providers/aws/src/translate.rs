//! Intent -> Security Groups.
//!
//! One SG `iw-<group>` per leaf group. Ingress rules sit on the destination group's SG
//! (group sources as SG references, network sources as CIDRs); egress is allow-all for IPv4
//! and IPv6 unless the group is `egress: restricted`, then only its declared flows.
//!
//! AWS has no deny: a deny flow is compiled by CIDR subtraction from the CIDR-peered allows
//! of the same SG and direction, per traffic class. Where that cannot be exact (an SG
//! reference cannot be narrowed; "all protocols except tcp/22" needs a rule per protocol),
//! an inexpressible finding names the deny flow and the allows stay as they are.

use crate::model::*;
use crate::snapshot::tags_json;
use intentwall_contract::quota::{explain, quota};
use intentwall_contract::traffic::{proto, Traffic};
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, Finding, FindingKind, NativeObject, NativeState,
    ProviderKind, Translation,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Pseudo flow name in the description of the allow-all egress of an unrestricted group.
pub const DEFAULT_EGRESS: &str = "egress-default";

#[derive(Debug, Clone)]
struct CidrPiece {
    addrs: AddrSet,
    traffic: Traffic,
    flows: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct RefPiece {
    group: String,
    traffic: Traffic,
    flows: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct DenyCut {
    /// The deny's peer is this group (its members).
    group: Option<String>,
    /// Addresses the deny's peer covers exactly: a network, or a group's declared addresses.
    addrs: Option<AddrSet>,
    traffic: Traffic,
    flow: String,
}

/// Do two packet sets share a packet?
pub fn t_overlap(a: &Traffic, b: &Traffic) -> bool {
    match (a.proto, b.proto) {
        (None, _) | (_, None) => true,
        (Some(x), Some(y)) if x != y => false,
        (Some(p), _) if proto::has_ports(p) => a.ports.overlaps(&b.ports),
        (Some(p), _) if proto::is_icmp(p) => match (a.icmp_type, b.icmp_type) {
            (Some(x), Some(y)) if x != y => false,
            (Some(_), Some(_)) => match (a.icmp_code, b.icmp_code) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            },
            _ => true,
        },
        _ => true,
    }
}

/// Is `t` a subset of `u`?
pub fn t_covers(u: &Traffic, t: &Traffic) -> bool {
    match (u.proto, t.proto) {
        (None, _) => true,
        (_, None) => false,
        (Some(x), Some(y)) if x != y => false,
        (Some(p), _) if proto::has_ports(p) => t.ports.is_subset(&u.ports),
        (Some(p), _) if proto::is_icmp(p) => match u.icmp_type {
            None => true,
            Some(ut) => {
                t.icmp_type == Some(ut) && (u.icmp_code.is_none() || t.icmp_code == u.icmp_code)
            }
        },
        _ => true,
    }
}

/// `t \ u` as packet sets AWS can write, or `None` when AWS cannot (all protocols but some,
/// ICMP but some types, SCTP but some ports).
pub fn t_sub(t: &Traffic, u: &Traffic) -> Option<Vec<Traffic>> {
    if !t_overlap(t, u) {
        return Some(vec![t.clone()]);
    }
    if t_covers(u, t) {
        return Some(vec![]);
    }
    match (t.proto, u.proto) {
        (Some(p), Some(q)) if p == q && (p == proto::TCP || p == proto::UDP) => {
            let rest = t.ports.subtract(&u.ports);
            Some(if rest.is_empty() {
                vec![]
            } else {
                vec![Traffic::ports(p, rest)]
            })
        }
        _ => None,
    }
}

/// `t ∩ u`, for the pairs [`t_sub`] can write (one covers the other, or same tcp/udp).
fn t_intersect(t: &Traffic, u: &Traffic) -> Traffic {
    if t_covers(u, t) {
        return t.clone();
    }
    if t_covers(t, u) {
        return u.clone();
    }
    match t.proto {
        Some(p) => Traffic::ports(p, t.ports.intersect(&u.ports)),
        None => u.clone(),
    }
}

/// The AWS protocol/ports that write exactly this packet set, or why none can.
pub fn atomize(t: &Traffic) -> Result<Vec<Perm>, String> {
    match t.proto {
        None => Ok(vec![Perm {
            proto: Proto::All,
            ports: Ports::None,
        }]),
        Some(p) if p == proto::TCP || p == proto::UDP => Ok(t
            .ports
            .ranges()
            .iter()
            .map(|&(a, b)| Perm {
                proto: Proto::from_number(p),
                ports: Ports::Range(a, b),
            })
            .collect()),
        Some(p) if proto::is_icmp(p) => {
            let (ty, code) = match t.icmp_type {
                None => (-1, -1),
                Some(ty) => (ty as i16, t.icmp_code.map_or(-1, |c| c as i16)),
            };
            Ok(vec![Perm {
                proto: Proto::from_number(p),
                ports: Ports::Icmp(ty, code),
            }])
        }
        Some(p) if proto::has_ports(p) && !t.ports.is_full() => Err(format!(
            "AWS security groups ignore ports for protocol {} (only tcp and udp rules select ports): `{t}` would allow every port",
            proto::name(p)
        )),
        Some(p) => Ok(vec![Perm {
            proto: Proto::Num(p),
            ports: Ports::None,
        }]),
    }
}

type Flows = BTreeSet<String>;

/// Merge CIDR pieces into (protocol/ports -> addresses): ports are merged per address set and
/// address sets per protocol/ports, alternately, until nothing changes. The result depends
/// only on the pieces as sets, never on flow order.
fn merge_cidr(cidr: &[CidrPiece]) -> BTreeMap<Perm, (AddrSet, Flows)> {
    // (addresses, traffic) pairs; ported traffic kept as one PortSet per protocol
    let mut items: Vec<(AddrSet, Traffic, Flows)> = cidr
        .iter()
        .filter(|p| !p.addrs.is_empty())
        .map(|p| (p.addrs.clone(), p.traffic.clone(), p.flows.clone()))
        .collect();
    let is_ported = |t: &Traffic| t.proto.is_some_and(|x| x == proto::TCP || x == proto::UDP);
    for _ in 0..4 {
        // ports per (addresses, protocol)
        let mut by_addr: BTreeMap<(AddrSet, u8), (intentwall_contract::PortSet, Flows)> =
            BTreeMap::new();
        let mut other: BTreeMap<(AddrSet, Traffic), Flows> = BTreeMap::new();
        for (a, t, f) in &items {
            if is_ported(t) {
                let e = by_addr
                    .entry((a.clone(), t.proto.unwrap_or(0)))
                    .or_default();
                e.0 = e.0.union(&t.ports);
                e.1.extend(f.iter().cloned());
            } else {
                other
                    .entry((a.clone(), t.clone()))
                    .or_default()
                    .extend(f.iter().cloned());
            }
        }
        // addresses per (protocol, one port range); each key's address sets are united once
        let mut by_perm: BTreeMap<Traffic, (Vec<AddrSet>, Flows)> = BTreeMap::new();
        for ((a, x), (ports, f)) in by_addr {
            for &(lo, hi) in ports.ranges() {
                let t = Traffic::ports(x, intentwall_contract::PortSet::range(lo, hi));
                let e = by_perm.entry(t).or_default();
                e.0.push(a.clone());
                e.1.extend(f.iter().cloned());
            }
        }
        for ((a, t), f) in other {
            let e = by_perm.entry(t).or_default();
            e.0.push(a);
            e.1.extend(f);
        }
        let next: Vec<(AddrSet, Traffic, Flows)> = by_perm
            .into_iter()
            .map(|(t, (a, f))| (AddrSet::union_all(&a), t, f))
            .collect();
        if next == items {
            break;
        }
        items = next;
    }
    let mut out: BTreeMap<Perm, (Vec<AddrSet>, Flows)> = BTreeMap::new();
    for (a, t, f) in items {
        for perm in atomize(&t).unwrap_or_default() {
            let e = out.entry(perm).or_default();
            e.0.push(a.clone());
            e.1.extend(f.iter().cloned());
        }
    }
    out.into_iter()
        .map(|(perm, (a, f))| (perm, (AddrSet::union_all(&a), f)))
        .collect()
}

struct Tx<'a> {
    intent: &'a DeploymentIntent,
    findings: BTreeSet<Finding>,
    /// Positions in `intent.flows` of the flows whose destination / source is each group, in
    /// intent order: each SG reads its own flows instead of rescanning all of them.
    flows_to: BTreeMap<&'a str, Vec<usize>>,
    flows_from: BTreeMap<&'a str, Vec<usize>>,
    /// Where members of a group without declared addresses live (computed once).
    free_space: AddrSet,
    /// Flow names of the intent, for the quota finding.
    flow_names: BTreeSet<&'a str>,
    /// The rules one SG may hold per direction and family (`quotas.rules_per_sg`).
    rules_per_sg: usize,
}

impl<'a> Tx<'a> {
    fn new(intent: &'a DeploymentIntent) -> Self {
        let mut flows_to: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut flows_from: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, f) in intent.flows.iter().enumerate() {
            if let Some(g) = f.to.group() {
                flows_to.entry(g).or_default().push(i);
            }
            if let Some(g) = f.from.group() {
                flows_from.entry(g).or_default().push(i);
            }
        }
        Tx {
            intent,
            findings: BTreeSet::new(),
            flows_to,
            flows_from,
            free_space: intent.space.subtract(&intent.declared_addresses()),
            flow_names: intent.flows.iter().map(|f| f.name.as_str()).collect(),
            rules_per_sg: quota(intent, "rules_per_sg").unwrap_or(MAX_RULES),
        }
    }

    /// [`DeploymentIntent::member_space`] without recomputing the declared addresses.
    fn member_space(&self, group: &str) -> &AddrSet {
        match self
            .intent
            .groups
            .get(group)
            .and_then(|g| g.addresses.as_ref())
        {
            Some(a) => a,
            None => &self.free_space,
        }
    }

    fn finding(&mut self, kind: FindingKind, flow: &str, message: String) {
        self.findings.insert(Finding {
            kind,
            deployment: self.intent.deployment.clone(),
            provider: Some(ProviderKind::Aws),
            flow: Some(flow.to_string()),
            message,
        });
    }

    /// Tokens of an allow flow AWS can write; a finding for each it cannot.
    fn writable(&mut self, flow: &str, traffic: &[Traffic]) -> Vec<Traffic> {
        let mut out = Vec::new();
        for t in traffic {
            match atomize(t) {
                Ok(_) => out.push(t.clone()),
                Err(e) => self.finding(FindingKind::Inexpressible, flow, e),
            }
        }
        out
    }

    fn inputs(&mut self, g: &str, dir: Dir) -> (Vec<CidrPiece>, Vec<RefPiece>, Vec<DenyCut>) {
        let intent = self.intent;
        let restricted = intent.groups.get(g).is_some_and(|x| x.egress_restricted);
        let mut cidr = Vec::new();
        let mut refs = Vec::new();
        let mut denies = Vec::new();
        if dir == Dir::Egress && !restricted {
            cidr.push(CidrPiece {
                addrs: AddrSet::any(),
                traffic: Traffic::any(),
                flows: [DEFAULT_EGRESS.to_string()].into(),
            });
        }
        let mine = match dir {
            Dir::Ingress => self.flows_to.get(g),
            Dir::Egress => self.flows_from.get(g),
        }
        .cloned()
        .unwrap_or_default();
        for i in mine {
            let f = &intent.flows[i];
            // the peer of this SG and direction
            let peer = match dir {
                Dir::Ingress => &f.from,
                Dir::Egress => &f.to,
            };
            match f.action {
                Action::Allow => {
                    if dir == Dir::Egress && !restricted {
                        continue; // covered by allow-all
                    }
                    let traffic = self.writable(&f.name, &f.traffic);
                    for t in traffic {
                        let flows: BTreeSet<String> = [f.name.clone()].into();
                        match peer {
                            Endpoint::Group(h) => refs.push(RefPiece {
                                group: h.clone(),
                                traffic: t,
                                flows,
                            }),
                            Endpoint::Network { addrs, .. } => cidr.push(CidrPiece {
                                addrs: addrs.clone(),
                                traffic: t,
                                flows,
                            }),
                        }
                    }
                }
                Action::Deny => {
                    // a deny to a group is enforced at that group's ingress only
                    if dir == Dir::Egress && peer.group().is_some() {
                        continue;
                    }
                    for t in &f.traffic {
                        denies.push(match peer {
                            Endpoint::Group(h) => DenyCut {
                                group: Some(h.clone()),
                                addrs: intent.groups.get(h).and_then(|x| x.addresses.clone()),
                                traffic: t.clone(),
                                flow: f.name.clone(),
                            },
                            Endpoint::Network { addrs, .. } => DenyCut {
                                group: None,
                                addrs: Some(addrs.clone()),
                                traffic: t.clone(),
                                flow: f.name.clone(),
                            },
                        });
                    }
                }
            }
        }
        (cidr, refs, denies)
    }

    fn apply_denies(
        &mut self,
        sg: &str,
        mut cidr: Vec<CidrPiece>,
        refs: &[RefPiece],
        denies: &[DenyCut],
    ) -> Vec<CidrPiece> {
        for d in denies {
            for r in refs {
                if !t_overlap(&r.traffic, &d.traffic) {
                    continue;
                }
                let allows = r.flows.iter().cloned().collect::<Vec<_>>().join(", ");
                if d.group.as_deref() == Some(r.group.as_str()) {
                    self.finding(
                        FindingKind::Inexpressible,
                        &d.flow,
                        format!(
                            "AWS security groups cannot deny: `{}` overlaps the allow `{allows}` from group `{}` on {sg}, which is an SG reference to iw-{} and cannot be narrowed",
                            d.traffic, r.group, r.group
                        ),
                    );
                } else if d.group.is_none()
                    && d.addrs
                        .as_ref()
                        .is_some_and(|a| a.overlaps(self.member_space(&r.group)))
                {
                    self.finding(
                        FindingKind::Inexpressible,
                        &d.flow,
                        format!(
                            "AWS security groups cannot deny: the denied addresses overlap where members of group `{}` live, and {sg} admits them by SG reference (allow `{allows}`, `{}`)",
                            r.group, d.traffic
                        ),
                    );
                }
            }
            let mut next = Vec::new();
            for p in cidr {
                if !t_overlap(&p.traffic, &d.traffic) {
                    next.push(p);
                    continue;
                }
                let Some(a) = &d.addrs else {
                    let g = d.group.clone().unwrap_or_default();
                    if p.addrs.overlaps(self.member_space(&g)) {
                        let allows = p.flows.iter().cloned().collect::<Vec<_>>().join(", ");
                        self.finding(
                            FindingKind::Inexpressible,
                            &d.flow,
                            format!(
                                "AWS security groups cannot deny: group `{g}` declares no `addresses` here, and the CIDR allow `{allows}` on {sg} covers where its members may live; declare the group's addresses so the deny can be subtracted"
                            ),
                        );
                    }
                    next.push(p);
                    continue;
                };
                if !p.addrs.overlaps(a) {
                    next.push(p);
                    continue;
                }
                match t_sub(&p.traffic, &d.traffic) {
                    None => {
                        let allows = p.flows.iter().cloned().collect::<Vec<_>>().join(", ");
                        self.finding(
                            FindingKind::Inexpressible,
                            &d.flow,
                            format!(
                                "AWS security groups cannot deny: `{}` minus `{}` (allow `{allows}` on {sg}) is not writable as a few allow rules",
                                p.traffic, d.traffic
                            ),
                        );
                        next.push(p);
                    }
                    Some(rest) => {
                        // the rest of the traffic from all of the allow's addresses, the
                        // denied traffic only from outside the deny's addresses
                        for t in rest {
                            next.push(CidrPiece {
                                addrs: p.addrs.clone(),
                                traffic: t,
                                flows: p.flows.clone(),
                            });
                        }
                        let outside = p.addrs.subtract(a);
                        if !outside.is_empty() {
                            next.push(CidrPiece {
                                addrs: outside,
                                traffic: t_intersect(&p.traffic, &d.traffic),
                                flows: p.flows.clone(),
                            });
                        }
                    }
                }
            }
            cidr = next;
        }
        cidr
    }

    fn compile(&mut self, g: &str, dir: Dir) -> Vec<Rule> {
        let sg = format!("iw-{g}");
        let (cidr, refs, denies) = self.inputs(g, dir);
        let cidr = self.apply_denies(&sg, cidr, &refs, &denies);

        let by_perm = merge_cidr(&cidr);
        let mut rules = Vec::new();
        let mk = |perm: Perm, peer: Peer, description: &str| Rule {
            group_name: sg.clone(),
            dir,
            perm,
            peer,
            description: Some(description.to_string()),
        };
        for (perm, (addrs, flows)) in &by_perm {
            // one description for all the prefixes of this protocol/ports
            let desc = &marker_description(flows.iter().map(String::as_str));
            // ICMPv4 never comes from IPv6 addresses, nor ICMPv6 from IPv4 ones: no rule needed
            let n = perm.proto.number();
            if n != Some(proto::ICMPV6) {
                for net in addrs.v4_prefixes() {
                    rules.push(mk(*perm, Peer::CidrIp(net.to_string()), desc));
                }
            }
            if n != Some(proto::ICMP) {
                for net in addrs.v6_prefixes() {
                    rules.push(mk(*perm, Peer::CidrIpv6(net.to_string()), desc));
                }
            }
        }

        // SG references: merge ports per (group, protocol)
        let mut rported: BTreeMap<(String, u8), (intentwall_contract::PortSet, BTreeSet<String>)> =
            BTreeMap::new();
        let mut rperm: BTreeMap<(String, Perm), BTreeSet<String>> = BTreeMap::new();
        for r in &refs {
            match r.traffic.proto {
                Some(x) if x == proto::TCP || x == proto::UDP => {
                    let e = rported
                        .entry((r.group.clone(), x))
                        .or_insert_with(|| (Default::default(), BTreeSet::new()));
                    e.0 = e.0.union(&r.traffic.ports);
                    e.1.extend(r.flows.iter().cloned());
                }
                _ => {
                    for perm in atomize(&r.traffic).unwrap_or_default() {
                        rperm
                            .entry((r.group.clone(), perm))
                            .or_default()
                            .extend(r.flows.iter().cloned());
                    }
                }
            }
        }
        for ((h, x), (ports, flows)) in rported {
            for perm in atomize(&Traffic::ports(x, ports)).unwrap_or_default() {
                rperm
                    .entry((h.clone(), perm))
                    .or_default()
                    .extend(flows.iter().cloned());
            }
        }
        for ((h, perm), flows) in &rperm {
            let desc = &marker_description(flows.iter().map(String::as_str));
            rules.push(mk(*perm, Peer::GroupName(format!("iw-{h}")), desc));
        }

        // quota: per direction and family; SG references count as IPv4
        let quota = self.rules_per_sg;
        for v6 in [false, true] {
            let n = rules.iter().filter(|r| r.peer.is_v6() == v6).count();
            if n <= quota {
                continue;
            }
            // many rules share one description: split each distinct one once
            let descriptions: HashSet<&str> = rules
                .iter()
                .filter(|r| r.peer.is_v6() == v6)
                .map(|r| r.description.as_deref().unwrap_or(""))
                .collect();
            let mut flows: BTreeSet<String> = descriptions
                .into_iter()
                .flat_map(|d| d.trim_start_matches(MARKER).split(','))
                .filter(|f| self.flow_names.contains(f))
                .map(str::to_string)
                .collect();
            flows.extend(denies.iter().map(|d| d.flow.clone()));
            let fam = if v6 { "IPv6" } else { "IPv4" };
            for f in flows {
                self.finding(
                    FindingKind::Limit,
                    &f,
                    format!(
                        "{sg} needs {n} {fam} {} rules, over {}; or simplify the intent",
                        dir.as_str(),
                        explain(self.intent, "rules_per_sg")
                    ),
                );
            }
        }
        rules
    }
}

/// The SG object of one group. Its body holds what intentwall decides (name, description,
/// VPC, tags), never the GroupId: that is the cloud's to assign on create, so it lives only in
/// an observed object's `raw` and a created group converges whatever id it gets.
pub fn sg_object(intent: &DeploymentIntent, g: &str) -> NativeObject {
    let name = format!("iw-{g}");
    let key = format!("sg:{name}");
    let mut tags = BTreeMap::new();
    tags.insert(TAG_GROUP.to_string(), g.to_string());
    tags.insert(TAG_MANAGED_KEY.to_string(), TAG_MANAGED_VALUE.to_string());
    let mut body = serde_json::Map::new();
    body.insert("GroupName".into(), name.clone().into());
    body.insert("Description".into(), format!("intentwall group {g}").into());
    if let Some(v) = intent.setting("vpc") {
        body.insert("VpcId".into(), v.into());
    }
    body.insert("Tags".into(), tags_json(&tags));
    NativeObject {
        kind: KIND_SG.into(),
        key,
        parent: None,
        container: true,
        managed: true,
        foreign: false,
        flow: None,
        body: serde_json::Value::Object(body).into(),
        raw: None,
        assigned: None,
        summary: format!("security group {name} (members of group {g})"),
    }
}

/// Translate one deployment; see the module docs.
pub fn translate(intent: &DeploymentIntent, _observed: &NativeState) -> Translation {
    let mut tx = Tx::new(intent);
    let mut objects = Vec::new();
    for g in intent.groups.keys() {
        let sg = sg_object(intent, g);
        let parent = sg.key.clone();
        objects.push(sg);
        for dir in [Dir::Ingress, Dir::Egress] {
            for r in tx.compile(g, dir) {
                let flow = r
                    .description
                    .as_deref()
                    .map(|d| d[MARKER.len()..].to_string());
                objects.push(NativeObject {
                    kind: KIND_RULE.into(),
                    key: r.key(),
                    parent: Some(parent.clone()),
                    container: false,
                    managed: true,
                    foreign: false,
                    flow,
                    body: r.body().into(),
                    raw: None,
                    assigned: None,
                    summary: r.summary(),
                });
            }
        }
    }
    Translation {
        objects,
        findings: tx.findings.into_iter().collect(),
    }
}
