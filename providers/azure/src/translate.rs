//! Resolved intent -> managed NSG rules, with stable priorities and findings.
//!
//! Layout of one NSG:
//! - deny flows: priorities 100-1999 (inbound at a destination group, outbound at a source
//!   group, both when both ends are groups);
//! - allow flows: 2000-3999 (inbound to the destination group; outbound from a restricted
//!   source group);
//! - baseline: inbound 4095 `iw-allow-azure-lb-probes` (unless `load_balancer_probes: deny`)
//!   and 4096 `iw-default-deny-inbound`; outbound 4095 (4094, … per 10 restricted ASGs)
//!   `iw-deny-restricted-egress` and 4096 `iw-default-allow-outbound`.

use crate::model::{canonical_prefix_list, AzRule, Dir, Proto, Side};
use crate::{asg_id, nsg_key, nsg_name, rule_key, KIND_NSG, KIND_RULE, MARKER};
use intentwall_contract::quota::{explain, quota};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, DeploymentIntent, Endpoint, Finding, FindingKind, FlowIntent, NativeObject,
    NativeState, PortSet, ProviderKind, Translation,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Priority band for deny flows.
pub const DENY_BAND: (u32, u32) = (100, 1999);
/// Priority band for allow flows.
pub const ALLOW_BAND: (u32, u32) = (2000, 3999);
/// Azure's limits, the defaults of the placement's `quotas` (`rules_per_nsg`): rules per NSG.
pub const MAX_RULES: usize = 1000;
/// IPs/ranges per side across one NSG (`prefixes_per_nsg`).
pub const MAX_PREFIXES_PER_SIDE: usize = 4000;
/// ASGs referenced per rule side (fixed: only the restricted-egress baseline is split by it,
/// and more, smaller rules there would reach into the allow band).
pub const MAX_ASGS_PER_RULE: usize = 10;
/// ASGs across all rules of one NSG (`asgs_per_nsg`).
pub const MAX_ASGS_PER_NSG: usize = 100;

/// The limits in force for one target: the placement's `quotas`, else Azure's limits.
struct Limits {
    rules: usize,
    prefixes: usize,
    asgs: usize,
}

impl Limits {
    fn of(intent: &DeploymentIntent) -> Self {
        let q = |key: &str, default: usize| quota(intent, key).unwrap_or(default);
        Limits {
            rules: q("rules_per_nsg", MAX_RULES),
            prefixes: q("prefixes_per_nsg", MAX_PREFIXES_PER_SIDE),
            asgs: q("asgs_per_nsg", MAX_ASGS_PER_NSG),
        }
    }
}
/// Rule name length.
pub const MAX_NAME: usize = 80;
/// Description length.
pub const MAX_DESCRIPTION: usize = 140;

/// `iw-<flow>-<in|out>-<n>`: valid charset, ≤ 80 chars, deterministic; a flow name that
/// needs changing (invalid characters, too long) is cut and suffixed with a hash of itself.
pub fn rule_name(flow: &str, dir: Dir, n: usize) -> String {
    let suffix = format!("-{}-{n}", if dir == Dir::Inbound { "in" } else { "out" });
    let room = MAX_NAME - 3 - suffix.len();
    let valid = !flow.is_empty()
        && flow
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    let part = if valid && flow.len() <= room {
        flow.to_string()
    } else {
        let clean: String = flow
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let hash = format!(
            "{:012x}",
            intentwall_contract::fnv1a64(0, flow.bytes()) & 0xffff_ffff_ffff
        );
        let keep = room - hash.len() - 1;
        let cut: String = clean.chars().take(keep).collect();
        format!("{cut}-{hash}")
    };
    format!("iw-{part}{suffix}")
}

/// `intentwall:<flow>`, cut to 140 characters.
pub fn description(flow: &str) -> String {
    let d = format!("{MARKER}{flow}");
    d.chars().take(MAX_DESCRIPTION).collect()
}

/// What a flow's traffic becomes: Azure protocol + destination ports, and what could not be
/// expressed exactly.
#[derive(Debug, Default)]
struct Specs {
    any: bool,
    tcp: PortSet,
    udp: PortSet,
    esp: bool,
    ah: bool,
    icmp4: bool,
    icmp6: bool,
    problems: Vec<String>,
}

fn specs(traffic: &[intentwall_contract::Traffic]) -> Specs {
    let mut s = Specs::default();
    if traffic.iter().any(|t| t.proto.is_none()) {
        s.any = true;
        return s;
    }
    for t in traffic {
        match t.proto {
            None => {}
            Some(proto::TCP) => s.tcp = s.tcp.union(&t.ports),
            Some(proto::UDP) => s.udp = s.udp.union(&t.ports),
            Some(proto::ESP) => s.esp = true,
            Some(proto::AH) => s.ah = true,
            Some(p @ (proto::ICMP | proto::ICMPV6)) => {
                if t.icmp_type.is_some() {
                    s.problems.push(format!(
                        "`{t}`: Azure NSG rules cannot select ICMP types or codes; not emitted"
                    ));
                } else if p == proto::ICMP {
                    s.icmp4 = true;
                } else {
                    s.icmp6 = true;
                }
            }
            Some(_) => s.problems.push(format!(
                "`{t}`: Azure NSG rules only select Tcp, Udp, Icmp, Esp, Ah or * (any); not emitted"
            )),
        }
    }
    // ICMP problems are decided per peer (see `peer_protos`)
    s
}

/// The peer of one rule, as far as the protocol choice cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PeerKind {
    /// IPv4 prefixes only.
    V4,
    /// IPv6 prefixes only.
    V6,
    /// Both ends are ASGs.
    Asg,
}

/// (protocol, destination ports) of the rules for one peer, plus ICMP problems.
fn peer_protos(s: &Specs, peer: PeerKind) -> (Vec<(Proto, Vec<String>)>, Vec<String>) {
    let star = || vec!["*".to_string()];
    let ports = |p: &PortSet| if p.is_full() { star() } else { p.to_strings() };
    if s.any {
        return (vec![(Proto::Any, star())], vec![]);
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if !s.tcp.is_empty() {
        out.push((Proto::Tcp, ports(&s.tcp)));
    }
    if !s.udp.is_empty() {
        out.push((Proto::Udp, ports(&s.udp)));
    }
    let icmp = match peer {
        PeerKind::Asg => {
            if s.icmp4 != s.icmp6 {
                problems.push(format!(
                    "`{}` between application security groups: Azure's Icmp matches ICMPv4 and ICMPv6 alike, so it cannot select one of them; not emitted (write both icmp and icmpv6, or use address prefixes of one family)",
                    if s.icmp4 { "icmp" } else { "icmpv6" }
                ));
                false
            } else {
                s.icmp4
            }
        }
        // toward addresses of one family only that family's ICMP exists (ICMPv6 packets
        // never come from IPv4 addresses), so the other token needs no rule and no finding
        PeerKind::V4 => s.icmp4,
        PeerKind::V6 => s.icmp6,
    };
    if icmp {
        out.push((Proto::Icmp, star()));
    }
    if s.esp {
        out.push((Proto::Esp, star()));
    }
    if s.ah {
        out.push((Proto::Ah, star()));
    }
    (out, problems)
}

/// One rule the translation wants, before its priority is known.
struct Want {
    rule: AzRule,
    flow: Option<String>,
    band: Option<(u32, u32)>,
}

struct Builder<'a> {
    intent: &'a DeploymentIntent,
    wants: Vec<Want>,
    counters: BTreeMap<(String, Dir), usize>,
    /// A set: the same finding from several rules is reported once, without rescanning.
    findings: BTreeSet<Finding>,
}

impl Builder<'_> {
    fn finding(&mut self, kind: FindingKind, flow: Option<&str>, message: String) {
        let f = Finding {
            kind,
            deployment: self.intent.deployment.clone(),
            provider: Some(ProviderKind::Azure),
            flow: flow.map(str::to_string),
            message,
        };
        self.findings.insert(f);
    }

    fn asg_side(&self, g: &str) -> Side {
        Side {
            prefixes: vec![],
            asgs: vec![asg_id(self.intent, g).to_ascii_lowercase()],
        }
    }

    /// Rules for one direction of one flow: `local` is our group, `peer` the other end.
    fn emit(&mut self, f: &FlowIntent, dir: Dir, local: &str, peer: &Endpoint) {
        let s = specs(&f.traffic);
        let problems = s.problems.clone();
        for p in problems {
            self.finding(FindingKind::Inexpressible, Some(&f.name), p);
        }
        let mut peers: Vec<(Side, PeerKind)> = Vec::new();
        match peer {
            Endpoint::Group(g) => peers.push((self.asg_side(g), PeerKind::Asg)),
            Endpoint::Network { addrs, .. } => {
                let v4: Vec<String> = addrs.only_v4().to_strings();
                let v6: Vec<String> = addrs.only_v6().to_strings();
                if !v4.is_empty() {
                    peers.push((
                        Side {
                            prefixes: canonical_prefix_list(v4),
                            asgs: vec![],
                        },
                        PeerKind::V4,
                    ));
                }
                if !v6.is_empty() {
                    peers.push((
                        Side {
                            prefixes: canonical_prefix_list(v6),
                            asgs: vec![],
                        },
                        PeerKind::V6,
                    ));
                }
            }
        }
        let local_side = self.asg_side(local);
        for (peer_side, kind) in peers {
            let (protos, problems) = peer_protos(&s, kind);
            for p in problems {
                self.finding(FindingKind::Inexpressible, Some(&f.name), p);
            }
            for (proto, ports) in protos {
                let n = self.counters.entry((f.name.clone(), dir)).or_insert(0);
                *n += 1;
                let (src, dst) = match dir {
                    Dir::Inbound => (peer_side.clone(), local_side.clone()),
                    Dir::Outbound => (local_side.clone(), peer_side.clone()),
                };
                let rule = AzRule {
                    name: rule_name(&f.name, dir, *n),
                    dir,
                    access: f.action,
                    priority: 0,
                    proto,
                    description: description(&f.name),
                    src,
                    dst,
                    src_ports: vec!["*".into()],
                    dst_ports: ports,
                };
                let band = if f.action == Action::Deny {
                    DENY_BAND
                } else {
                    ALLOW_BAND
                };
                self.wants.push(Want {
                    rule,
                    flow: Some(f.name.clone()),
                    band: Some(band),
                });
            }
        }
    }

    fn baseline(
        &mut self,
        name: &str,
        dir: Dir,
        access: Action,
        priority: u32,
        src: Side,
        what: &str,
    ) {
        self.wants.push(Want {
            rule: AzRule {
                name: name.to_string(),
                dir,
                access,
                priority,
                proto: Proto::Any,
                description: format!("{MARKER} {what}"),
                src,
                dst: Side {
                    prefixes: vec!["*".into()],
                    asgs: vec![],
                },
                src_ports: vec!["*".into()],
                dst_ports: vec!["*".into()],
            },
            flow: None,
            band: None,
        });
    }
}

/// The observed rules of our NSG: name -> (direction, priority), and the priorities taken
/// per direction (managed or not).
struct Observed {
    by_name: BTreeMap<String, (Dir, u32)>,
    taken: [BTreeSet<u32>; 2],
    unmanaged: Vec<AzRule>,
}

fn observed(intent: &DeploymentIntent, state: &NativeState) -> Observed {
    let ours = nsg_key(&nsg_name(intent));
    let mut o = Observed {
        by_name: BTreeMap::new(),
        taken: [BTreeSet::new(), BTreeSet::new()],
        unmanaged: vec![],
    };
    for obj in &state.objects {
        if obj.kind != KIND_RULE || obj.foreign || obj.parent.as_deref() != Some(ours.as_str()) {
            continue;
        }
        let Ok(r) = AzRule::from_json(&obj.body.value(), "observed") else {
            continue;
        };
        o.taken[r.dir.idx()].insert(r.priority);
        o.by_name.insert(r.name.clone(), (r.dir, r.priority));
        if !obj.managed {
            o.unmanaged.push(r);
        }
    }
    o
}

/// Translate one deployment.
pub fn translate(intent: &DeploymentIntent, state: &NativeState) -> Translation {
    let mut b = Builder {
        intent,
        wants: vec![],
        counters: BTreeMap::new(),
        findings: BTreeSet::new(),
    };
    let limits = Limits::of(intent);
    // deny flows first (their own band), then allows; intent order inside each
    for f in intent.flows.iter().filter(|f| f.action == Action::Deny) {
        let (from, to) = (f.from.group(), f.to.group());
        if let Some(g) = to {
            b.emit(f, Dir::Inbound, g, &f.from);
        }
        if let Some(g) = from {
            b.emit(f, Dir::Outbound, g, &f.to);
        }
    }
    for f in intent.flows.iter().filter(|f| f.action == Action::Allow) {
        if let Some(g) = f.to.group() {
            b.emit(f, Dir::Inbound, g, &f.from);
        }
        if let Some(g) = f.from.group() {
            if intent.groups.get(g).is_some_and(|gi| gi.egress_restricted) {
                b.emit(f, Dir::Outbound, g, &f.to);
            }
        }
    }
    let star = || Side {
        prefixes: vec!["*".into()],
        asgs: vec![],
    };
    if !crate::lb_probes_denied(intent) {
        b.baseline(
            "iw-allow-azure-lb-probes",
            Dir::Inbound,
            Action::Allow,
            4095,
            Side {
                prefixes: vec!["AzureLoadBalancer".into()],
                asgs: vec![],
            },
            "allow Azure load balancer health probes (platform allowance)",
        );
    }
    b.baseline(
        "iw-default-deny-inbound",
        Dir::Inbound,
        Action::Deny,
        4096,
        star(),
        "deny all other inbound (neutralises AllowVnetInBound)",
    );
    let restricted: Vec<String> = intent
        .groups
        .values()
        .filter(|g| g.egress_restricted)
        .map(|g| asg_id(intent, &g.name).to_ascii_lowercase())
        .collect();
    for (i, chunk) in restricted.chunks(MAX_ASGS_PER_RULE).enumerate() {
        let name = if i == 0 {
            "iw-deny-restricted-egress".to_string()
        } else {
            format!("iw-deny-restricted-egress-{}", i + 1)
        };
        let mut asgs = chunk.to_vec();
        asgs.sort();
        b.baseline(
            &name,
            Dir::Outbound,
            Action::Deny,
            4095 - i as u32,
            Side {
                prefixes: vec![],
                asgs,
            },
            "deny undeclared egress of restricted groups",
        );
    }
    b.baseline(
        "iw-default-allow-outbound",
        Dir::Outbound,
        Action::Allow,
        4096,
        star(),
        "allow all other outbound (egress does not depend on the Internet tag)",
    );

    // priorities: keep observed ones in band, then allocate the lowest free
    let obs = observed(intent, state);
    let mut assigned: [BTreeSet<u32>; 2] = [BTreeSet::new(), BTreeSet::new()];
    let mut keep: Vec<Option<u32>> = vec![None; b.wants.len()];
    for (i, w) in b.wants.iter().enumerate() {
        if let Some((lo, hi)) = w.band {
            if let Some(&(d, p)) = obs.by_name.get(&w.rule.name) {
                let a = &mut assigned[d.idx()];
                if d == w.rule.dir && p >= lo && p <= hi && !a.contains(&p) {
                    a.insert(p);
                    keep[i] = Some(p);
                }
            }
        } else {
            assigned[w.rule.dir.idx()].insert(w.rule.priority);
        }
    }
    let mut rules: Vec<(AzRule, Option<String>)> = Vec::new();
    let wants = std::mem::take(&mut b.wants);
    // lowest free priority per (direction, band start): taken priorities only ever grow, so
    // the lowest free one never moves down and each search resumes where the last one ended
    let mut cursor: BTreeMap<(usize, u32), u32> = BTreeMap::new();
    for (i, mut w) in wants.into_iter().enumerate() {
        let d = w.rule.dir.idx();
        match (w.band, keep[i]) {
            (None, _) => {
                // fixed baseline priority: an unmanaged rule there would conflict
                if let Some(u) = obs.unmanaged.iter().find(|u| {
                    u.dir == w.rule.dir && u.priority == w.rule.priority && u.name != w.rule.name
                }) {
                    b.finding(
                        FindingKind::Limit,
                        None,
                        format!(
                            "baseline rule {} needs {} priority {}, taken by unmanaged rule {} (SecurityRuleConflict)",
                            w.rule.name,
                            w.rule.dir.as_str(),
                            w.rule.priority,
                            u.name
                        ),
                    );
                }
            }
            (Some(_), Some(p)) => w.rule.priority = p,
            (Some((lo, hi)), None) => {
                let from = cursor.get(&(d, lo)).copied().unwrap_or(lo);
                let free =
                    (from..=hi).find(|p| !obs.taken[d].contains(p) && !assigned[d].contains(p));
                if let Some(p) = free {
                    cursor.insert((d, lo), p);
                }
                match free {
                    Some(p) => {
                        assigned[d].insert(p);
                        w.rule.priority = p;
                    }
                    None => {
                        b.finding(
                            FindingKind::Limit,
                            w.flow.as_deref(),
                            format!(
                                "no free {} priority left in {lo}-{hi} for rule {}; not emitted",
                                w.rule.dir.as_str(),
                                w.rule.name
                            ),
                        );
                        continue;
                    }
                }
            }
        }
        rules.push((w.rule, w.flow));
    }

    check_limits(&mut b, &rules, &obs, &limits);

    let nsg = nsg_name(intent);
    let key = nsg_key(&nsg);
    let mut objects = vec![NativeObject {
        kind: KIND_NSG.into(),
        key: key.clone(),
        parent: None,
        container: true,
        managed: true,
        foreign: false,
        flow: None,
        body: json!({ "name": nsg }).into(),
        raw: None,
        assigned: None,
        summary: format!("network security group {nsg}"),
    }];
    // stable order: direction, then priority
    rules.sort_by_key(|(r, _)| (r.dir, r.priority));
    for (r, flow) in rules {
        objects.push(NativeObject {
            kind: KIND_RULE.into(),
            key: rule_key(&r.name),
            parent: Some(key.clone()),
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
    Translation {
        objects,
        findings: b.findings.into_iter().collect(),
    }
}

fn check_limits(
    b: &mut Builder<'_>,
    rules: &[(AzRule, Option<String>)],
    obs: &Observed,
    limits: &Limits,
) {
    let over = |b: &mut Builder<'_>, flow: Option<&str>, msg: String| {
        b.finding(FindingKind::Limit, flow, msg)
    };
    let intent = b.intent;
    let (why_rules, why_prefixes, why_asgs) = (
        explain(intent, "rules_per_nsg"),
        explain(intent, "prefixes_per_nsg"),
        explain(intent, "asgs_per_nsg"),
    );
    // rules per NSG
    let total = rules.len() + obs.unmanaged.len();
    if total > limits.rules {
        let room = limits.rules.saturating_sub(obs.unmanaged.len());
        let flows: BTreeSet<Option<String>> =
            rules.iter().skip(room).map(|(_, f)| f.clone()).collect();
        for f in flows {
            over(
                b,
                f.as_deref(),
                format!("the NSG would hold {total} rules, over {why_rules}"),
            );
        }
    }
    // prefixes per side, ASGs per NSG
    for (label, pick) in [
        ("source", (|r: &AzRule| &r.src) as fn(&AzRule) -> &Side),
        ("destination", |r: &AzRule| &r.dst),
    ] {
        let is_addr = |p: &&String| p.parse::<ipnet::IpNet>().is_ok();
        let mut count: usize = obs
            .unmanaged
            .iter()
            .map(|r| pick(r).prefixes.iter().filter(is_addr).count())
            .sum();
        for (r, f) in rules {
            count += pick(r).prefixes.iter().filter(is_addr).count();
            if count > limits.prefixes {
                over(
                    b,
                    f.as_deref(),
                    format!(
                        "{label} prefixes across the NSG exceed {why_prefixes} (rule {})",
                        r.name
                    ),
                );
            }
        }
    }
    let mut asgs: BTreeSet<&String> = BTreeSet::new();
    for r in &obs.unmanaged {
        asgs.extend(r.src.asgs.iter().chain(&r.dst.asgs));
    }
    for (r, f) in rules {
        asgs.extend(r.src.asgs.iter().chain(&r.dst.asgs));
        if asgs.len() > limits.asgs {
            over(
                b,
                f.as_deref(),
                format!(
                    "the NSG would reference {} ASGs, over {why_asgs} (rule {})",
                    asgs.len(),
                    r.name
                ),
            );
        }
    }
}
