//! Intent -> GCP VPC firewall rules.
//!
//! - Every flow rule sits at priority [`FLOW_PRIORITY`] (1000), allows and denies alike: GCP
//!   lets a deny win at equal priority, which is exactly the intent's "deny always beats allow".
//! - One managed default deny per direction and family at [`DEFAULT_DENY_PRIORITY`] (65000),
//!   below our allows and above 65534, so `default-allow-*` never reaches our workloads:
//!   ingress for every group, egress for `egress: restricted` groups.
//! - A group is the network tag `iw-<group>`, or its service account when it has one.
//! - Egress rules can only name destinations by range (no destination tags), so an allow
//!   from a restricted group to a group needs that group's `addresses`.
//! - Nothing weaker or stronger than the intent is emitted without a finding naming the flow.

use crate::model::{
    canonical_ranges, merge_entries, protocol_text, Act, Dir, Entry, Firewall, NetworkRef,
};
use crate::names::{fit, is_valid_name};
use crate::MARKER;
use intentwall_contract::quota::{explain, quota};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, Finding, FindingKind, FlowIntent, NativeObject,
    NativeState, PortSet, ProviderKind, Translation,
};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Priority of every flow rule (the API default).
pub const FLOW_PRIORITY: u32 = 1000;
/// Priority of the managed default denies: after our allows, before 65534.
pub const DEFAULT_DENY_PRIORITY: u32 = 65000;
/// Source or destination ranges per rule. Aerleon and the older quota page say 256, the
/// newer quota page 5,000: we split at the conservative value unless the placement raises
/// `quotas.ranges_per_rule`.
pub const MAX_RANGES_PER_RULE: usize = 256;
/// Source tags per rule (we emit one, so never configurable).
pub const MAX_SOURCE_TAGS: usize = 30;
/// Target tags per rule (`quotas.target_tags_per_rule` may lower it).
pub const MAX_TARGET_TAGS: usize = 70;
/// Service accounts per rule (source or target). Not documented precisely: a conservative 10
/// (`quotas.service_accounts_per_rule` may lower it).
pub const MAX_SERVICE_ACCOUNTS: usize = 10;
/// Port entries per rule (`quotas.ports_per_rule` may lower it).
pub const MAX_PORT_ENTRIES: usize = 256;

/// How a group's members are named in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Tag(String),
    Sa(String),
}

/// The name prefix of this deployment's rules: `iw-<deployment>-`.
pub fn name_prefix(deployment: &str) -> String {
    format!("iw-{}-", crate::names::sanitize(deployment))
}

/// The network tag of a group.
pub fn group_tag(group: &str) -> String {
    format!("iw-{group}")
}

/// Target tags and target service accounts of one rule.
type Targets = (Vec<String>, Vec<String>);

/// The other side of a rule.
#[derive(Debug, Clone)]
enum Peer {
    Ranges(AddrSet),
    Tags(Vec<String>),
    Sas(Vec<String>),
}

/// The per-rule limits in force for one target: the placement's `quotas`, else GCP's.
struct Limits {
    ranges: usize,
    ports: usize,
    target_tags: usize,
    service_accounts: usize,
}

impl Limits {
    fn of(intent: &DeploymentIntent) -> Self {
        let q = |key: &str, default: usize| quota(intent, key).unwrap_or(default);
        Limits {
            ranges: q("ranges_per_rule", MAX_RANGES_PER_RULE),
            ports: q("ports_per_rule", MAX_PORT_ENTRIES),
            target_tags: q("target_tags_per_rule", MAX_TARGET_TAGS),
            service_accounts: q("service_accounts_per_rule", MAX_SERVICE_ACCOUNTS),
        }
    }
}

struct Ctx<'a> {
    intent: &'a DeploymentIntent,
    network: String,
    out: Vec<(Firewall, Option<String>)>,
    /// A set: the same finding from several rules is reported once, without rescanning.
    findings: BTreeSet<Finding>,
    counters: HashMap<(String, Dir), usize>,
    limits: Limits,
}

impl Ctx<'_> {
    fn finding(&mut self, kind: FindingKind, flow: Option<&str>, message: String) {
        let f = Finding {
            kind,
            deployment: self.intent.deployment.clone(),
            provider: Some(ProviderKind::Gcp),
            flow: flow.map(str::to_string),
            message,
        };
        self.findings.insert(f);
    }

    fn ident(&self, group: &str) -> Ident {
        match self
            .intent
            .groups
            .get(group)
            .and_then(|g| g.service_account.clone())
        {
            Some(sa) => Ident::Sa(sa),
            None => Ident::Tag(group_tag(group)),
        }
    }

    fn addresses(&self, group: &str) -> Option<AddrSet> {
        self.intent
            .groups
            .get(group)
            .and_then(|g| g.addresses.clone())
    }

    fn restricted(&self, group: &str) -> bool {
        self.intent
            .groups
            .get(group)
            .is_some_and(|g| g.egress_restricted)
    }

    #[allow(clippy::too_many_arguments)]
    fn rule(
        &self,
        name: String,
        description: String,
        dir: Dir,
        act: Act,
        priority: u32,
        targets: Targets,
        peer: &Peer,
        peer_ranges: Vec<String>,
        entries: Vec<Entry>,
    ) -> Firewall {
        let (mut source_ranges, mut destination_ranges) = (Vec::new(), Vec::new());
        let (mut source_tags, mut source_sas) = (Vec::new(), Vec::new());
        match (dir, peer) {
            (Dir::Ingress, Peer::Ranges(_)) => source_ranges = peer_ranges,
            (Dir::Ingress, Peer::Tags(t)) => source_tags = t.clone(),
            (Dir::Ingress, Peer::Sas(s)) => source_sas = s.clone(),
            (Dir::Egress, _) => destination_ranges = peer_ranges,
        }
        Firewall {
            name,
            network: self.network.clone(),
            direction: dir,
            priority,
            source_ranges,
            destination_ranges,
            source_tags,
            target_tags: targets.0,
            source_service_accounts: source_sas,
            target_service_accounts: targets.1,
            action: act,
            entries,
            disabled: false,
            description,
            log: None,
        }
    }

    /// Emit the rules of one leaf flow in one direction, split at the per-rule limits.
    fn emit(
        &mut self,
        flow: &str,
        dir: Dir,
        act: Act,
        target: &Ident,
        peer: Peer,
        entries: &[Entry],
    ) {
        let targets = match target {
            Ident::Tag(t) => (vec![t.clone()], vec![]),
            Ident::Sa(s) => (vec![], vec![s.clone()]),
        };
        let peer_chunks: Vec<Vec<String>> = match &peer {
            Peer::Ranges(a) => {
                let mut chunks = Vec::new();
                for fam in [a.only_v4(), a.only_v6()] {
                    let texts = canonical_ranges(&fam.prefixes());
                    chunks.extend(texts.chunks(self.limits.ranges).map(<[String]>::to_vec));
                }
                chunks
            }
            Peer::Tags(t) if t.len() > MAX_SOURCE_TAGS => {
                self.finding(
                    FindingKind::Limit,
                    Some(flow),
                    format!("more than {MAX_SOURCE_TAGS} source tags in one rule"),
                );
                return;
            }
            Peer::Sas(s) if s.len() > self.limits.service_accounts => {
                self.finding(
                    FindingKind::Limit,
                    Some(flow),
                    format!(
                        "{} source service accounts in one rule, over {}",
                        s.len(),
                        explain(self.intent, "service_accounts_per_rule")
                    ),
                );
                return;
            }
            _ => vec![Vec::new()],
        };
        let dir_word = match dir {
            Dir::Ingress => "in",
            Dir::Egress => "eg",
        };
        for ranges in peer_chunks {
            // ICMPv4 never comes from (or goes to) IPv6 addresses, nor ICMPv6 with IPv4 ones:
            // a ranged rule of one family carries only that family's ICMP
            let v6 = ranges.first().map(|r| r.contains(':'));
            let fam_entries: Vec<Entry> = entries
                .iter()
                .filter(|e| match v6 {
                    Some(true) => e.protocol != "icmp",
                    Some(false) => e.protocol != "58",
                    None => true,
                })
                .cloned()
                .collect();
            if fam_entries.is_empty() {
                continue;
            }
            for chunk in chunk_entries(&fam_entries, self.limits.ports) {
                let n = self
                    .counters
                    .entry((flow.to_string(), dir))
                    .and_modify(|n| *n += 1)
                    .or_insert(1);
                let name = fit(&format!(
                    "iw-{}-{flow}-{dir_word}-{n}",
                    self.intent.deployment
                ));
                let fw = self.rule(
                    name,
                    format!("{MARKER}{flow}"),
                    dir,
                    act,
                    FLOW_PRIORITY,
                    targets.clone(),
                    &peer,
                    ranges.clone(),
                    chunk,
                );
                self.out.push((fw, Some(flow.to_string())));
            }
        }
    }

    /// The source of an ingress rule at `dst` for a flow from `from`, or why GCP cannot name
    /// it together with that target.
    fn ingress_source(&self, from: &Endpoint, dst: &str) -> Result<Peer, String> {
        match from {
            Endpoint::Network { addrs, .. } => Ok(Peer::Ranges(addrs.clone())),
            Endpoint::Group(s) => match (self.ident(s), self.ident(dst)) {
                (Ident::Tag(t), Ident::Tag(_)) => Ok(Peer::Tags(vec![t])),
                (Ident::Sa(a), Ident::Sa(_)) => Ok(Peer::Sas(vec![a])),
                _ => self.addresses(s).map(Peer::Ranges).ok_or_else(|| {
                    format!(
                        "GCP cannot combine network tags and service accounts in one rule \
                         (`{s}` -> `{dst}`), and group `{s}` has no `addresses` to name it by range"
                    )
                }),
            },
        }
    }

    fn flow(&mut self, f: &FlowIntent) {
        let name = f.name.as_str();
        let typed: Vec<String> = f
            .traffic
            .iter()
            .filter(|t| t.restricts_icmp())
            .map(ToString::to_string)
            .collect();
        if !typed.is_empty() {
            self.finding(
                FindingKind::Inexpressible,
                Some(name),
                format!(
                    "GCP VPC firewall rules cannot select ICMP types or codes ({}); not emitted",
                    typed.join(", ")
                ),
            );
        }
        let entries = traffic_entries(f.traffic.iter().filter(|t| !t.restricts_icmp()));
        if entries.is_empty() {
            return;
        }
        let blocked: Vec<String> = [f.from.group(), f.to.group()]
            .into_iter()
            .flatten()
            .filter(|g| self.blocked_reason(g).is_some())
            .map(str::to_string)
            .collect();
        if let Some(g) = blocked.first() {
            let why = self.blocked_reason(g).unwrap_or_default();
            self.finding(FindingKind::Inexpressible, Some(name), why);
            return;
        }
        let act = match f.action {
            Action::Allow => Act::Allow,
            Action::Deny => Act::Deny,
        };
        match (&f.from, &f.to) {
            (Endpoint::Network { .. }, Endpoint::Network { .. }) => {
                self.finding(
                    FindingKind::Inexpressible,
                    Some(name),
                    "a flow needs at least one group end".into(),
                );
            }
            (from, Endpoint::Group(d)) => {
                // ingress at the destination
                match self.ingress_source(from, d) {
                    Ok(peer) => {
                        let target = self.ident(d);
                        self.emit(name, Dir::Ingress, act, &target, peer, &entries);
                    }
                    Err(why) => match (f.action, from, self.addresses(d)) {
                        // a deny between groups can also be enforced at the source's egress
                        (Action::Deny, Endpoint::Group(s), Some(da)) => {
                            let target = self.ident(s);
                            self.emit(
                                name,
                                Dir::Egress,
                                Act::Deny,
                                &target,
                                Peer::Ranges(da),
                                &entries,
                            );
                        }
                        _ => self.finding(FindingKind::Inexpressible, Some(name), why),
                    },
                }
                // egress at a restricted source
                if let (Action::Allow, Endpoint::Group(s)) = (f.action, from) {
                    if self.restricted(s) {
                        match self.addresses(d) {
                            Some(da) => {
                                let target = self.ident(s);
                                self.emit(name, Dir::Egress, Act::Allow, &target, Peer::Ranges(da), &entries);
                            }
                            None => self.finding(
                                FindingKind::Inexpressible,
                                Some(name),
                                format!(
                                    "group `{s}` has `egress: restricted` and GCP egress rules name destinations \
                                     by range only, but group `{d}` has no `addresses` in deployment `{}`",
                                    self.intent.deployment
                                ),
                            ),
                        }
                    }
                }
            }
            (Endpoint::Group(s), Endpoint::Network { addrs, .. }) => {
                if f.action == Action::Deny || self.restricted(s) {
                    let target = self.ident(s);
                    self.emit(
                        name,
                        Dir::Egress,
                        act,
                        &target,
                        Peer::Ranges(addrs.clone()),
                        &entries,
                    );
                }
            }
        }
    }

    /// Why flows touching this group cannot be translated at all, if they cannot.
    fn blocked_reason(&self, g: &str) -> Option<String> {
        match self.ident(g) {
            Ident::Tag(t) if !is_valid_name(&t) => Some(format!(
                "network tag `{t}` of group `{g}` is not a valid GCP tag (lowercase letters, digits, `-`, at most 63)"
            )),
            Ident::Tag(_) => None,
            Ident::Sa(sa) => {
                let sharing: Vec<&str> = self
                    .intent
                    .groups
                    .values()
                    .filter(|o| o.service_account.as_deref() == Some(sa.as_str()))
                    .map(|o| o.name.as_str())
                    .collect();
                (sharing.len() > 1).then(|| {
                    format!(
                        "groups {} share service account `{sa}`, so GCP rules cannot tell them apart",
                        sharing.join(", ")
                    )
                })
            }
        }
    }

    fn default_denies(&mut self) {
        let dep = self.intent.deployment.clone();
        let mut tags: BTreeSet<String> = BTreeSet::new();
        let mut sas: BTreeSet<String> = BTreeSet::new();
        let mut etags: BTreeSet<String> = BTreeSet::new();
        let mut esas: BTreeSet<String> = BTreeSet::new();
        for g in self.intent.groups.values() {
            let id = self.ident(&g.name);
            let (t, s) = (&mut tags, &mut sas);
            match &id {
                Ident::Tag(x) if is_valid_name(x) => {
                    t.insert(x.clone());
                    if g.egress_restricted {
                        etags.insert(x.clone());
                    }
                }
                Ident::Tag(_) => {}
                Ident::Sa(x) => {
                    s.insert(x.clone());
                    if g.egress_restricted {
                        esas.insert(x.clone());
                    }
                }
            }
        }
        let all = vec![Entry {
            protocol: "all".into(),
            ports: None,
        }];
        let mut plan: Vec<(Dir, Vec<Targets>)> = Vec::new();
        for (dir, t, s) in [(Dir::Ingress, &tags, &sas), (Dir::Egress, &etags, &esas)] {
            let mut targets = Vec::new();
            let tv: Vec<String> = t.iter().cloned().collect();
            for c in tv.chunks(self.limits.target_tags) {
                targets.push((c.to_vec(), Vec::new()));
            }
            let sv: Vec<String> = s.iter().cloned().collect();
            for c in sv.chunks(self.limits.service_accounts) {
                targets.push((Vec::new(), c.to_vec()));
            }
            plan.push((dir, targets));
        }
        for (dir, targets) in plan {
            let word = match dir {
                Dir::Ingress => "in",
                Dir::Egress => "eg",
            };
            for (fam, any) in [("v4", "0.0.0.0/0"), ("v6", "::/0")] {
                for (i, t) in targets.iter().enumerate() {
                    let name = fit(&format!("iw-{dep}-default-deny-{word}-{fam}-{}", i + 1));
                    let fw = self.rule(
                        name,
                        format!("{MARKER} default deny after intentwall allows (priority {DEFAULT_DENY_PRIORITY})"),
                        dir,
                        Act::Deny,
                        DEFAULT_DENY_PRIORITY,
                        t.clone(),
                        &Peer::Ranges(AddrSet::empty()),
                        vec![any.to_string()],
                        all.clone(),
                    );
                    self.out.push((fw, None));
                }
            }
        }
    }
}

/// Protocol entries of a flow's traffic (typed ICMP already filtered out).
fn traffic_entries<'a>(
    traffic: impl Iterator<Item = &'a intentwall_contract::Traffic>,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for t in traffic {
        match t.proto {
            None => entries.push(Entry {
                protocol: "all".into(),
                ports: None,
            }),
            Some(p) => entries.push(Entry {
                protocol: protocol_text(p),
                ports: (proto::has_ports(p) && !t.ports.is_full()).then(|| t.ports.clone()),
            }),
        }
    }
    merge_entries(entries)
}

/// Split entries so that no rule carries more than `max` (at least 1) port strings.
fn chunk_entries(entries: &[Entry], max: usize) -> Vec<Vec<Entry>> {
    let max = max.max(1);
    let mut out: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut count = 0usize;
    for e in entries {
        let Some(ports) = &e.ports else {
            out.last_mut().expect("non-empty").push(e.clone());
            continue;
        };
        let mut rest: Vec<(u16, u16)> = ports.ranges().to_vec();
        while !rest.is_empty() {
            let room = max.saturating_sub(count);
            if room == 0 {
                out.push(Vec::new());
                count = 0;
                continue;
            }
            let take: Vec<(u16, u16)> = rest.drain(..room.min(rest.len())).collect();
            count += take.len();
            out.last_mut().expect("non-empty").push(Entry {
                protocol: e.protocol.clone(),
                ports: Some(PortSet::from_ranges(take)),
            });
        }
    }
    out.retain(|c| !c.is_empty());
    out
}

/// The whole translation of one deployment.
pub fn translate(intent: &DeploymentIntent, observed: &NativeState) -> Translation {
    let project = intent.setting("project");
    let net_name = intent.setting("network");
    let unusable = |message: String| Translation {
        objects: vec![],
        findings: vec![Finding {
            kind: FindingKind::Inexpressible,
            deployment: intent.deployment.clone(),
            provider: Some(ProviderKind::Gcp),
            flow: None,
            message,
        }],
    };
    let network = match net_name {
        Some(n) => match NetworkRef::parse(n) {
            Ok(r) => r.canonical(project),
            Err(e) => return unusable(format!("setting `network`: {e}")),
        },
        None => {
            return unusable("the gcp placement has no `network`: nothing to translate into".into())
        }
    };
    let mut ctx = Ctx {
        intent,
        network,
        out: Vec::new(),
        findings: BTreeSet::new(),
        counters: HashMap::new(),
        limits: Limits::of(intent),
    };
    for f in &intent.flows {
        ctx.flow(f);
    }
    ctx.default_denies();
    for g in intent.groups.keys() {
        if let Some(why) = ctx.blocked_reason(g) {
            if matches!(ctx.ident(g), Ident::Tag(_)) {
                ctx.finding(FindingKind::Limit, None, why);
            }
        }
    }
    // names are unique per project: resolve any collision deterministically
    let mut seen: HashSet<String> = HashSet::new();
    let mut objects = Vec::with_capacity(ctx.out.len());
    for (mut fw, flow) in ctx.out {
        let mut k = 1;
        while seen.contains(&fw.name) {
            fw.name = fit(&format!("{}~{k}", fw.name));
            k += 1;
        }
        seen.insert(fw.name.clone());
        // one canonical pass, so the body equals what reading it back gives
        let body = Firewall::from_json(&fw.to_json(), "firewall", project)
            .map(|c| c.to_json())
            .unwrap_or_else(|_| fw.to_json());
        objects.push(NativeObject {
            kind: crate::KIND.into(),
            key: format!("fw:{}", fw.name),
            parent: None,
            container: false,
            managed: true,
            foreign: false,
            flow,
            body: body.into(),
            raw: None,
            assigned: None,
            summary: fw.summary(),
        });
    }
    // rules per project: ours plus every other rule the project's snapshot holds (other
    // networks and hand-made rules count against the same quota); checked when configured,
    // since GCP documents no default
    let mut findings = ctx.findings;
    if let Some(max) = quota(intent, "firewall_rules") {
        let others = observed.objects.iter().filter(|o| !o.managed).count();
        let total = objects.len() + others;
        if total > max {
            let why = explain(intent, "firewall_rules");
            let flows: BTreeSet<Option<&str>> = objects
                .iter()
                .skip(max.saturating_sub(others))
                .map(|o| o.flow.as_deref())
                .collect();
            for flow in flows {
                findings.insert(Finding {
                    kind: FindingKind::Limit,
                    deployment: intent.deployment.clone(),
                    provider: Some(ProviderKind::Gcp),
                    flow: flow.map(str::to_string),
                    message: format!(
                        "the project would hold {total} firewall rules ({} of this deployment, {others} others), over {why}",
                        objects.len()
                    ),
                });
            }
        }
    }
    Translation {
        objects,
        findings: findings.into_iter().collect(),
    }
}

/// Prefix texts of an address set, for tests and reports.
pub fn prefix_texts(a: &AddrSet) -> Vec<String> {
    let nets: Vec<IpNet> = a.prefixes();
    canonical_ranges(&nets)
}
