//! Whole-pipeline property tests: random small but valid intent repositories, written as YAML
//! text (so the loader is under test too), loaded with `intent::load_files`, planned against a
//! scratch snapshot directory, applied, and planned again.
//!
//! Properties:
//! 1. loading generated valid input never fails, the effective flows per deployment are the
//!    ones the generator meant (restrictions, drops), and every flow resolves; (1b) each
//!    deployment's view of the service graph resolves to the providers' input read straight
//!    off the model (also on the example estate);
//! 2. convergence: plan -> apply -> plan is empty for every target that was not blocked, and a
//!    further apply writes no byte; also from another random intent's applied state (2b);
//!    blocked targets (own findings, or a guardrail finding of their deployment) are not
//!    written and make apply exit 3;
//! 3. proof or finding: every target is proven (no mismatch, no failed `expect`) or blocked by
//!    an inexpressible/limit finding; intents the generator knows to be expressible everywhere
//!    give no finding at all; the guardrail findings are exactly the predicted ones;
//! 4. unmanaged objects (one neutral, hand-made object per target, in the cloud CLI's shape,
//!    bare or in its envelope) come out of apply as equal JSON values, the envelope is kept,
//!    and the next plan is empty;
//! 5. Azure priorities are stable: adding an allow flow gives only creates, removing a flow
//!    only deletes (and the grown intent converges once applied);
//! 6. a plan whose snapshot files changed after planning is refused and writes nothing.
//!
//! The generator is a plain data model (`Repo`) rendered to YAML by small functions; every
//! strategy is built from shrinkable primitives, so a failure minimises to a small repository.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

#[path = "common/mod.rs"]
mod common;

use intentwall::apply::{self, ApplyOptions, Outcome};
use intentwall::diff::Action;
use intentwall::graph::ServiceGraph;
use intentwall::intent::guardrails::ADMIN_AND_DATA_PORTS;
use intentwall::intent::{load_files, Deployment, Intent, LoadOptions};
use intentwall::plan::{self, Plan, PlanOptions};
use intentwall_contract::{
    AddrSet, DeploymentIntent, FindingKind, FlowIntent, GroupIntent, ProviderKind,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// The model of a generated repository
// ---------------------------------------------------------------------------------------------

const DEPLOYMENTS: [&str; 2] = ["us", "eu"];
const LEAVES: [&str; 5] = ["web", "api", "db", "cache", "batch"];
const COMPOSITE: &str = "tier";
const CLOUDS: [ProviderKind; 3] = [ProviderKind::Aws, ProviderKind::Azure, ProviderKind::Gcp];
const EXPIRES_FAR: &str = "2099-12-31";

/// One cloud placement of a deployment. Its IPv4 space is `10.<octet>.0.0/16`, its IPv6 space
/// (if any) `fd00:<tag>::/48`; the octet and tag are unique per deployment and cloud.
#[derive(Debug, Clone)]
struct Cloud {
    /// 0..10, added to a base unique per (deployment, cloud).
    jitter: u8,
    v6: bool,
    /// Azure only: `load_balancer_probes`: None (unset), Some(true) allow, Some(false) deny.
    probes: Option<bool>,
}

#[derive(Debug, Clone)]
struct Dep {
    /// Which of aws/azure/gcp the deployment uses (bits 0..3, never 0).
    mask: u8,
    clouds: [Cloud; 3],
}

#[derive(Debug, Clone)]
struct Leaf {
    sensitive: bool,
    restricted: bool,
}

/// One prefix of a network, before truncation to its network address.
#[derive(Debug, Clone)]
enum Prefix {
    World4,
    World6,
    V4(u32, u8),
    V6(u128, u8),
    /// A /24 inside deployment `dep`'s cloud `cloud` IPv4 space: overlaps member addresses.
    InCloud {
        dep: u8,
        cloud: u8,
        sub: u8,
    },
    /// An earlier network by name (modulo this network's index); in the first network, a
    /// fixed documentation prefix.
    Include(u8),
}

/// One item of a network as written: a prefix or another network's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Prefix(IpNet),
    Net(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Tcp(u16, u16),
    Udp(u16, u16),
    Icmp,
    IcmpTyped(u8, Option<u8>),
    Icmp6,
    Icmp6Typed(u8),
    Any,
    Esp,
    Sctp(Option<u16>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowKind {
    AllowNetToGroup,
    AllowGroupToGroup,
    AllowGroupToNet,
    DenyNetToGroup,
    /// Inexpressible on AWS when it overlaps an allow: the test expects findings there.
    DenyGroupToGroup,
}

#[derive(Debug, Clone)]
struct FlowSpec {
    kind: FlowKind,
    /// Index into the endpoint list of the source's kind (groups or networks), modulo its length.
    from: u8,
    to: u8,
    services: Vec<Tok>,
    /// Restrict to one deployment (index modulo the number of deployments).
    only: Option<u8>,
    guardrail: bool,
    /// Write the services as a named service in `services:` instead of inline tokens.
    named: bool,
    /// Left out of the rendered repository (flow names stay tied to their index).
    removed: bool,
}

#[derive(Debug, Clone)]
struct Repo {
    deps: Vec<Dep>,
    leaves: Vec<Leaf>,
    /// Bit mask over the leaves; `Some` = there is a composite group `tier`.
    composite: Option<u8>,
    /// Give every leaf `addresses` (always done when a group is restricted).
    addresses: bool,
    networks: Vec<Vec<Prefix>>,
    flows: Vec<FlowSpec>,
    /// (deployment, flow) to drop in a region override, if that flow may be dropped there.
    drop: Option<(u8, u8)>,
    /// World-open allow flows carry a far exception; when false, guardrails must block.
    exceptions: bool,
}

// ---------------------------------------------------------------------------------------------
// Derived facts about the model
// ---------------------------------------------------------------------------------------------

impl Cloud {
    fn octet(dep: usize, cloud: usize, jitter: u8) -> u8 {
        (10 + 30 * dep + 10 * cloud) as u8 + jitter % 10
    }
}

impl Repo {
    fn dep_names(&self) -> Vec<&'static str> {
        DEPLOYMENTS[..self.deps.len()].to_vec()
    }

    /// Clouds of deployment `d`, as (cloud index, placement).
    fn clouds(&self, d: usize) -> Vec<(usize, &Cloud)> {
        let dep = &self.deps[d];
        (0..3)
            .filter(|k| dep.mask & (1 << k) != 0)
            .map(|k| (k, &dep.clouds[k]))
            .collect()
    }

    fn v4_space(&self, d: usize, k: usize) -> Ipv4Net {
        let o = Cloud::octet(d, k, self.deps[d].clouds[k].jitter);
        Ipv4Net::new(Ipv4Addr::new(10, o, 0, 0), 16).unwrap()
    }

    fn v6_tag(d: usize, k: usize) -> u16 {
        (16 * d + k + 1) as u16
    }

    fn v6_space(&self, d: usize, k: usize) -> Option<Ipv6Net> {
        self.deps[d].clouds[k].v6.then(|| {
            Ipv6Net::new(
                Ipv6Addr::new(0xfd00, Self::v6_tag(d, k), 0, 0, 0, 0, 0, 0),
                48,
            )
            .unwrap()
        })
    }

    /// Every cloud space of every deployment (for conservative overlap tests).
    fn all_spaces(&self) -> Vec<IpNet> {
        let mut out = Vec::new();
        for d in 0..self.deps.len() {
            for (k, _) in self.clouds(d) {
                out.push(IpNet::V4(self.v4_space(d, k)));
                if let Some(v6) = self.v6_space(d, k) {
                    out.push(IpNet::V6(v6));
                }
            }
        }
        out
    }

    fn restricted_any(&self) -> bool {
        self.leaves.iter().any(|l| l.restricted)
    }

    fn with_addresses(&self) -> bool {
        self.addresses || self.restricted_any()
    }

    fn leaf_names(&self) -> Vec<&'static str> {
        LEAVES[..self.leaves.len()].to_vec()
    }

    fn composite_leaves(&self) -> Option<Vec<usize>> {
        let mask = self.composite?;
        let mut v: Vec<usize> = (0..self.leaves.len())
            .filter(|i| mask & (1 << i) != 0)
            .collect();
        if v.is_empty() {
            v.push(0);
        }
        Some(v)
    }

    /// Group endpoints a flow may name: the leaves, then the composite.
    fn group_names(&self) -> Vec<&'static str> {
        let mut v = self.leaf_names();
        if self.composite.is_some() {
            v.push(COMPOSITE);
        }
        v
    }

    fn group(&self, i: u8) -> &'static str {
        let g = self.group_names();
        g[i as usize % g.len()]
    }

    /// Leaf indices a group endpoint name stands for.
    fn leaves_of(&self, name: &str) -> Vec<usize> {
        if name == COMPOSITE {
            return self.composite_leaves().unwrap_or_default();
        }
        LEAVES.iter().position(|l| *l == name).into_iter().collect()
    }

    fn net_name(i: usize) -> String {
        format!("net{i}")
    }

    fn net_index(&self, i: u8) -> usize {
        i as usize % self.networks.len()
    }

    /// Item of network `net` for a generated prefix.
    fn item(&self, net: usize, p: &Prefix) -> Item {
        Item::Prefix(match *p {
            Prefix::Include(j) if net > 0 => return Item::Net(j as usize % net),
            Prefix::Include(_) => "198.51.100.0/24".parse().unwrap(),
            Prefix::World4 => "0.0.0.0/0".parse().unwrap(),
            Prefix::World6 => "::/0".parse().unwrap(),
            Prefix::V4(a, l) => {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l.min(32)).unwrap().trunc())
            }
            Prefix::V6(a, l) => {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l.min(128)).unwrap().trunc())
            }
            Prefix::InCloud { dep, cloud, sub } => {
                let o = Cloud::octet(dep as usize % 2, cloud as usize % 3, 0);
                IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, o, sub, 0), 24).unwrap())
            }
        })
    }

    /// A network's items as written: prefixes truncated, duplicates removed, stable order.
    fn net_items(&self, i: usize) -> Vec<Item> {
        let set: BTreeSet<Item> = self.networks[i].iter().map(|p| self.item(i, p)).collect();
        set.into_iter().collect()
    }

    /// A network's prefixes with included networks expanded (they only name earlier ones).
    fn net_prefixes(&self, i: usize) -> Vec<IpNet> {
        let mut set = BTreeSet::new();
        for it in self.net_items(i) {
            match it {
                Item::Prefix(p) => {
                    set.insert(p);
                }
                Item::Net(j) => set.extend(self.net_prefixes(j)),
            }
        }
        set.into_iter().collect()
    }

    /// Holds all of `0.0.0.0/0` or all of `::/0` (two halves count too).
    fn world_open(&self, net: usize) -> bool {
        let a = AddrSet::from_nets(&self.net_prefixes(net));
        a.v4.is_full() || a.v6.is_full()
    }

    /// (from, to) names of a flow.
    fn ends(&self, f: &FlowSpec) -> (String, String) {
        use FlowKind::*;
        let net = |i: u8| Self::net_name(self.net_index(i));
        let grp = |i: u8| self.group(i).to_string();
        match f.kind {
            AllowNetToGroup | DenyNetToGroup => (net(f.from), grp(f.to)),
            AllowGroupToGroup | DenyGroupToGroup => (grp(f.from), grp(f.to)),
            AllowGroupToNet => (grp(f.from), net(f.to)),
        }
    }

    fn is_deny(f: &FlowSpec) -> bool {
        matches!(
            f.kind,
            FlowKind::DenyNetToGroup | FlowKind::DenyGroupToGroup
        )
    }

    fn flow_name(i: usize) -> String {
        format!("f{i}")
    }

    /// The deployment a flow is restricted to, if any.
    fn only(&self, f: &FlowSpec) -> Option<usize> {
        f.only.map(|d| d as usize % self.deps.len())
    }

    /// The effective drop: (deployment, flow) when the chosen flow may be dropped there.
    fn effective_drop(&self) -> Option<(usize, usize)> {
        let (d, f) = self.drop?;
        let d = d as usize % self.deps.len();
        let fi = f as usize % self.flows.len();
        let flow = &self.flows[fi];
        let applies = self.only(flow).is_none_or(|o| o == d);
        (!flow.guardrail && !flow.removed && applies).then_some((d, fi))
    }

    /// Flow names effective in deployment `d`, in intent order.
    fn effective_flows(&self, d: usize) -> Vec<String> {
        let drop = self.effective_drop();
        (0..self.flows.len())
            .filter(|&i| !self.flows[i].removed)
            .filter(|&i| self.only(&self.flows[i]).is_none_or(|o| o == d))
            .filter(|&i| drop != Some((d, i)))
            .map(Self::flow_name)
            .collect()
    }

    /// Allow flows from a world-open network get a far exception (unless the repository is
    /// generated without exceptions, to exercise the guardrails).
    fn needs_exception(&self, f: &FlowSpec) -> bool {
        self.exceptions
            && f.kind == FlowKind::AllowNetToGroup
            && self.world_open(self.net_index(f.from))
    }

    /// Does flow `f` break a built-in guardrail (world-open source, to an admin/data port or
    /// a sensitive group, no exception)?
    fn violates_guardrail(&self, f: &FlowSpec) -> bool {
        let (_, to) = self.ends(f);
        let sensitive = self
            .leaves_of(&to)
            .iter()
            .any(|&l| self.leaves[l].sensitive);
        let admin = f.services.iter().any(|t| match *t {
            Tok::Any => true,
            Tok::Tcp(a, b) => ADMIN_AND_DATA_PORTS.iter().any(|&(p, _)| a <= p && p <= b),
            _ => false,
        });
        f.kind == FlowKind::AllowNetToGroup
            && !self.needs_exception(f)
            && self.world_open(self.net_index(f.from))
            && (sensitive || admin)
    }

    /// (deployment, flow) of every guardrail finding the plan must carry.
    fn guardrail_violations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (d, dep) in self.dep_names().into_iter().enumerate() {
            let effective = self.effective_flows(d);
            for (i, f) in self.flows.iter().enumerate() {
                let name = Self::flow_name(i);
                if effective.contains(&name) && self.violates_guardrail(f) {
                    out.insert((dep.to_string(), name));
                }
            }
        }
        out
    }

    /// True when the generator knows every flow to be exactly expressible on every cloud, so
    /// the plan must carry no finding at all (see the provider READMEs for each exclusion).
    fn expressible_everywhere(&self) -> bool {
        if !self.tokens_expressible_everywhere()
            || self
                .flows
                .iter()
                .any(|f| f.kind == FlowKind::DenyGroupToGroup)
        {
            return false;
        }
        // AWS compiles a deny by subtraction from the allows it overlaps; it cannot subtract
        // from an SG-reference allow, nor "all protocols except X" from an `any` allow.
        let spaces = self.all_spaces();
        for d in self
            .flows
            .iter()
            .filter(|f| f.kind == FlowKind::DenyNetToGroup)
        {
            let (dn, dg) = self.ends(d);
            let dnets = self.net_prefixes(self.net_index(d.from));
            let dleaves: BTreeSet<usize> = self.leaves_of(&dg).into_iter().collect();
            for a in self.flows.iter().filter(|f| !Self::is_deny(f)) {
                let (an, ag) = self.ends(a);
                if a.kind == FlowKind::AllowGroupToNet
                    || !self.leaves_of(&ag).iter().any(|l| dleaves.contains(l))
                    || !toks_overlap(&a.services, &d.services)
                {
                    continue;
                }
                match a.kind {
                    FlowKind::AllowGroupToGroup => {
                        if nets_overlap(&dnets, &spaces) {
                            return false;
                        }
                    }
                    _ => {
                        let anets = self.net_prefixes(self.net_index(a.from));
                        if (an == dn || nets_overlap(&anets, &dnets))
                            && !aws_can_subtract(&a.services, &d.services)
                        {
                            return false;
                        }
                    }
                }
            }
        }
        self.aws_within_quota()
    }

    /// No typed ICMP, no SCTP (Azure and GCP cannot select them), no ICMP between groups
    /// (Azure's `Icmp` between ASGs cannot tell v4 from v6).
    fn tokens_expressible_everywhere(&self) -> bool {
        let groupish =
            |k: FlowKind| matches!(k, FlowKind::AllowGroupToGroup | FlowKind::DenyGroupToGroup);
        self.flows.iter().all(|f| {
            f.services.iter().all(|t| match t {
                Tok::IcmpTyped(..) | Tok::Icmp6Typed(_) | Tok::Sctp(_) => false,
                Tok::Icmp | Tok::Icmp6 => !groupish(f.kind),
                _ => true,
            })
        })
    }

    /// A generous over-estimate of the AWS ingress rules per leaf SG and address family
    /// (before merging): subtracting a deny prefix of length `n` from an allow prefix leaves up
    /// to `n` CIDRs. Within the default quota of 60, no limit finding is possible.
    fn aws_within_quota(&self) -> bool {
        let denies: Vec<(Vec<IpNet>, BTreeSet<usize>)> = self
            .flows
            .iter()
            .filter(|f| f.kind == FlowKind::DenyNetToGroup)
            .map(|d| {
                let (_, dg) = self.ends(d);
                let leaves = self.leaves_of(&dg).into_iter().collect();
                (self.net_prefixes(self.net_index(d.from)), leaves)
            })
            .collect();
        for leaf in 0..self.leaves.len() {
            for v4 in [true, false] {
                let mut rules = 0usize;
                for a in self.flows.iter().filter(|f| !Self::is_deny(f)) {
                    let (_, ag) = self.ends(a);
                    if !self.leaves_of(&ag).contains(&leaf) {
                        continue;
                    }
                    let per_peer = a.services.len();
                    match a.kind {
                        FlowKind::AllowNetToGroup => {
                            for p in self.net_prefixes(self.net_index(a.from)) {
                                if matches!(p, IpNet::V4(_)) != v4 {
                                    continue;
                                }
                                let cut: usize = denies
                                    .iter()
                                    .filter(|(_, ls)| ls.contains(&leaf))
                                    .flat_map(|(nets, _)| nets.iter())
                                    .filter(|d| nets_overlap(&[p], &[**d]))
                                    .map(|d| d.prefix_len() as usize)
                                    .sum();
                                rules += per_peer * (1 + cut);
                            }
                        }
                        FlowKind::AllowGroupToGroup => {
                            rules += per_peer * self.leaves.len();
                        }
                        _ => {}
                    }
                }
                if rules > 60 {
                    return false;
                }
            }
        }
        true
    }
}

fn nets_overlap(a: &[IpNet], b: &[IpNet]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| x.contains(&y.network()) || y.contains(&x.network()))
    })
}

/// Protocol of a token (None = any).
fn tok_proto(t: &Tok) -> Option<u8> {
    match t {
        Tok::Tcp(..) => Some(6),
        Tok::Udp(..) => Some(17),
        Tok::Icmp | Tok::IcmpTyped(..) => Some(1),
        Tok::Icmp6 | Tok::Icmp6Typed(_) => Some(58),
        Tok::Esp => Some(50),
        Tok::Sctp(_) => Some(132),
        Tok::Any => None,
    }
}

fn tok_overlap(a: &Tok, b: &Tok) -> bool {
    match (tok_proto(a), tok_proto(b)) {
        (None, _) | (_, None) => true,
        (Some(x), Some(y)) if x != y => false,
        _ => match (a, b) {
            (Tok::Tcp(a1, a2), Tok::Tcp(b1, b2)) | (Tok::Udp(a1, a2), Tok::Udp(b1, b2)) => {
                a1 <= b2 && b1 <= a2
            }
            (Tok::Sctp(Some(x)), Tok::Sctp(Some(y))) => x == y,
            _ => true,
        },
    }
}

fn toks_overlap(a: &[Tok], b: &[Tok]) -> bool {
    a.iter().any(|x| b.iter().any(|y| tok_overlap(x, y)))
}

/// Can AWS write `allow \ deny` with port arithmetic or whole protocols only?
fn aws_can_subtract(allow: &[Tok], deny: &[Tok]) -> bool {
    allow.iter().all(|a| {
        deny.iter()
            .filter(|d| tok_overlap(a, d))
            .all(|d| match (a, d) {
                (_, Tok::Any) => true,
                (Tok::Any, _) => false,
                (Tok::Tcp(..), Tok::Tcp(..)) | (Tok::Udp(..), Tok::Udp(..)) => true,
                (Tok::Icmp, Tok::Icmp) | (Tok::Icmp6, Tok::Icmp6) | (Tok::Esp, Tok::Esp) => true,
                _ => false,
            })
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering to YAML
// ---------------------------------------------------------------------------------------------

fn tok_text(t: &Tok) -> String {
    let ports = |p: &str, a: u16, b: u16| {
        if a == b {
            format!("{p}/{a}")
        } else {
            format!("{p}/{a}-{b}")
        }
    };
    match *t {
        Tok::Tcp(a, b) => ports("tcp", a, b),
        Tok::Udp(a, b) => ports("udp", a, b),
        Tok::Icmp => "icmp".into(),
        Tok::IcmpTyped(ty, None) => format!("icmp/{ty}"),
        Tok::IcmpTyped(ty, Some(c)) => format!("icmp/{ty}/{c}"),
        Tok::Icmp6 => "icmpv6".into(),
        Tok::Icmp6Typed(ty) => format!("icmpv6/{ty}"),
        Tok::Any => "any".into(),
        Tok::Esp => "esp".into(),
        Tok::Sctp(None) => "sctp".into(),
        Tok::Sctp(Some(p)) => format!("sctp/{p}"),
    }
}

fn quoted_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", q.join(", "))
}

fn render_placement(r: &Repo, d: usize, k: usize, c: &Cloud) -> String {
    let name = DEPLOYMENTS[d];
    let v4 = r.v4_space(d, k);
    let v6 = r.v6_space(d, k);
    match CLOUDS[k] {
        ProviderKind::Aws => {
            let mut s = format!(
                "aws: {{ account: \"111122223333\", region: {name}-east-1, vpc: vpc-0a1b2c{d}{k}, cidr: {v4}"
            );
            if let Some(v6) = v6 {
                s += &format!(", cidr6: \"{v6}\"");
            }
            s + " }"
        }
        ProviderKind::Azure => {
            let mut s = format!(
                "azure: {{ subscription: 00000000-0000-4000-8000-00000000000{d}, resource_group: rg-{name}, location: {name}east, nsg: nsg-{name}, vnet_cidr: {v4}"
            );
            if let Some(v6) = v6 {
                s += &format!(", vnet_cidr6: \"{v6}\"");
            }
            match c.probes {
                Some(true) => s += ", load_balancer_probes: allow",
                Some(false) => s += ", load_balancer_probes: deny",
                None => {}
            }
            s + " }"
        }
        ProviderKind::Gcp => {
            let mut s = format!("gcp: {{ project: proj-{name}, network: net-{name}, cidr: {v4}");
            if let Some(v6) = v6 {
                s += &format!(", cidr6: \"{v6}\"");
            }
            s + " }"
        }
    }
}

/// `addresses:` of leaf `i`: a /24 (and a /64) per deployment and cloud, inside its space.
fn render_addresses(r: &Repo, i: usize) -> String {
    let mut per_dep = Vec::new();
    for (d, dep) in r.dep_names().into_iter().enumerate() {
        let mut per_cloud = Vec::new();
        for (k, _) in r.clouds(d) {
            let v4 = r.v4_space(d, k);
            let o = v4.addr().octets()[1];
            let mut list = vec![format!("10.{o}.{}.0/24", i + 1)];
            if r.v6_space(d, k).is_some() {
                list.push(format!("fd00:{:x}:{:x}::/64", Repo::v6_tag(d, k), i + 1));
            }
            per_cloud.push(format!("{}: {}", CLOUDS[k], quoted_list(&list)));
        }
        per_dep.push(format!("{dep}: {{ {} }}", per_cloud.join(", ")));
    }
    format!("addresses: {{ {} }}", per_dep.join(", "))
}

fn render_flow(r: &Repo, i: usize, f: &FlowSpec) -> String {
    let (from, to) = r.ends(f);
    let services = if f.named {
        format!("[svc{i}]")
    } else {
        let t: Vec<String> = f.services.iter().map(tok_text).collect();
        format!("[{}]", t.join(", "))
    };
    let mut s = format!("  - {{ name: {}, ", Repo::flow_name(i));
    if Repo::is_deny(f) {
        s += "action: deny, ";
    }
    s += &format!("from: {from}, to: {to}, services: {services}");
    if let Some(d) = r.only(f) {
        s += &format!(", deployments: [{}]", DEPLOYMENTS[d]);
    }
    if f.guardrail {
        s += ", guardrail: true";
    }
    if r.needs_exception(f) {
        s += &format!(
            ", exception: {{ reason: \"property test: world-open on purpose\", expires: {EXPIRES_FAR} }}"
        );
    }
    s + " }\n"
}

/// The repository as files: one root file, and a region override when a flow is dropped.
fn render(r: &Repo) -> Vec<(String, String)> {
    let mut s = String::from("version: 1\ndeployments:\n");
    for (d, dep) in r.dep_names().into_iter().enumerate() {
        s += &format!("  {dep}:\n");
        for (k, c) in r.clouds(d) {
            s += &format!("    {}\n", render_placement(r, d, k, c));
        }
    }
    s += "networks:\n";
    for i in 0..r.networks.len() {
        let items: Vec<String> = r
            .net_items(i)
            .iter()
            .map(|it| match it {
                Item::Prefix(p) => format!("\"{p}\""),
                Item::Net(j) => Repo::net_name(*j),
            })
            .collect();
        s += &format!("  {}: [{}]\n", Repo::net_name(i), items.join(", "));
    }
    if r.flows.iter().any(|f| f.named && !f.removed) {
        s += "services:\n";
        for (i, f) in r
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.named && !f.removed)
        {
            let t: Vec<String> = f.services.iter().map(tok_text).collect();
            s += &format!("  svc{i}: [{}]\n", t.join(", "));
        }
    }
    s += "groups:\n";
    for (i, l) in r.leaves.iter().enumerate() {
        let mut attrs = vec![format!("description: leaf {i}")];
        if l.sensitive {
            attrs.push("sensitive: true".into());
        }
        if l.restricted {
            attrs.push("egress: restricted".into());
        }
        if r.with_addresses() {
            attrs.push(render_addresses(r, i));
        }
        s += &format!("  {}: {{ {} }}\n", LEAVES[i], attrs.join(", "));
    }
    if let Some(ls) = r.composite_leaves() {
        let names: Vec<&str> = ls.iter().map(|&i| LEAVES[i]).collect();
        s += &format!("  {COMPOSITE}: {{ includes: [{}] }}\n", names.join(", "));
    }
    s += "flows:\n";
    for (i, f) in r.flows.iter().enumerate().filter(|(_, f)| !f.removed) {
        s += &render_flow(r, i, f);
    }
    // expectations that hold by construction: a deny flow in force everywhere denies its
    // first token (a deny always beats an allow); only where every cloud has hosts of both
    // ends (an IPv4 source, a token of IPv4), since a case without probes fails by design
    let drop = r.effective_drop();
    let expects: Vec<String> = r
        .flows
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            f.kind == FlowKind::DenyNetToGroup
                && !f.removed
                && r.only(f).is_none()
                && drop.is_none_or(|(_, x)| x != *i)
                && r.net_prefixes(r.net_index(f.from))
                    .iter()
                    .any(|p| matches!(p, IpNet::V4(_)))
                && !matches!(f.services[0], Tok::Icmp6 | Tok::Icmp6Typed(_))
        })
        .map(|(_, f)| {
            let (from, to) = r.ends(f);
            format!(
                "  - {{ from: {from}, to: {to}, service: {}, verdict: deny }}\n",
                tok_text(&f.services[0])
            )
        })
        .collect();
    if !expects.is_empty() {
        s += "expect:\n";
        s += &expects.concat();
    }
    let mut files = vec![("intentwall.yaml".to_string(), s)];
    if let Some((d, f)) = r.effective_drop() {
        files.push((
            format!("regions/{}/override.yaml", DEPLOYMENTS[d]),
            format!("version: 1\ndrop: [{}]\n", Repo::flow_name(f)),
        ));
    }
    files
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn arb_cloud() -> impl Strategy<Value = Cloud> {
    (0u8..10, any::<bool>(), prop::option::of(any::<bool>()))
        .prop_map(|(jitter, v6, probes)| Cloud { jitter, v6, probes })
}

fn arb_dep() -> impl Strategy<Value = Dep> {
    (1u8..8, [arb_cloud(), arb_cloud(), arb_cloud()])
        .prop_map(|(mask, clouds)| Dep { mask, clouds })
}

fn arb_leaf() -> impl Strategy<Value = Leaf> {
    (prop::bool::weighted(0.2), prop::bool::weighted(0.2)).prop_map(|(sensitive, restricted)| {
        Leaf {
            sensitive,
            restricted,
        }
    })
}

fn arb_prefix() -> impl Strategy<Value = Prefix> {
    prop_oneof![
        3 => (any::<u32>(), 1u8..=32).prop_map(|(a, l)| Prefix::V4(a, l)),
        2 => (0u8..2, 0u8..3, any::<u8>()).prop_map(|(dep, cloud, sub)| Prefix::InCloud { dep, cloud, sub }),
        1 => (any::<u128>(), 1u8..=128).prop_map(|(a, l)| Prefix::V6(a, l)),
        1 => Just(Prefix::World4),
        1 => Just(Prefix::World6),
        1 => any::<u8>().prop_map(Prefix::Include),
    ]
}

fn arb_network() -> impl Strategy<Value = Vec<Prefix>> {
    prop::collection::vec(arb_prefix(), 1..=2)
}

/// A port range: common ports (so flows overlap), or any range.
fn arb_ports() -> impl Strategy<Value = (u16, u16)> {
    prop_oneof![
        3 => prop::sample::select(vec![
            (443, 443), (80, 80), (53, 53), (22, 22), (5432, 5432), (8080, 8080),
            (8000, 8099), (1, 1024), (0, 65535),
        ]),
        1 => (0u16..=65535, 0u16..200).prop_map(|(a, len)| (a, a.saturating_add(len))),
    ]
}

fn arb_tok() -> impl Strategy<Value = Tok> {
    // mostly tokens every cloud expresses; typed ICMP and SCTP (inexpressible somewhere) rarely
    prop_oneof![
        12 => arb_ports().prop_map(|(a, b)| Tok::Tcp(a, b)),
        4 => arb_ports().prop_map(|(a, b)| Tok::Udp(a, b)),
        2 => Just(Tok::Icmp),
        2 => Just(Tok::Icmp6),
        2 => Just(Tok::Any),
        1 => Just(Tok::Esp),
        1 => (prop::sample::select(vec![0u8, 3, 8, 11]), prop::option::of(0u8..4))
            .prop_map(|(t, c)| Tok::IcmpTyped(t, c)),
        1 => prop::sample::select(vec![128u8, 129, 135]).prop_map(Tok::Icmp6Typed),
        1 => prop::option::of(prop::sample::select(vec![9899u16, 2905, 36412])).prop_map(Tok::Sctp),
    ]
}

fn arb_flow_kind() -> impl Strategy<Value = FlowKind> {
    prop_oneof![
        5 => Just(FlowKind::AllowNetToGroup),
        4 => Just(FlowKind::AllowGroupToGroup),
        2 => Just(FlowKind::AllowGroupToNet),
        3 => Just(FlowKind::DenyNetToGroup),
        1 => Just(FlowKind::DenyGroupToGroup),
    ]
}

fn arb_flow_with(kind: impl Strategy<Value = FlowKind>) -> impl Strategy<Value = FlowSpec> {
    (
        kind,
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(arb_tok(), 1..=3),
        prop::option::weighted(0.2, any::<u8>()),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(kind, from, to, services, only, guardrail, named)| FlowSpec {
                kind,
                from,
                to,
                services,
                only,
                guardrail,
                named,
                removed: false,
            },
        )
}

fn arb_repo() -> impl Strategy<Value = Repo> {
    (
        prop::collection::vec(arb_dep(), 1..=2),
        prop::collection::vec(arb_leaf(), 1..=5),
        prop::option::weighted(0.3, any::<u8>()),
        prop::bool::weighted(0.3),
        prop::collection::vec(arb_network(), 1..=3),
        prop::collection::vec(arb_flow_with(arb_flow_kind()), 1..=6),
        prop::option::weighted(0.25, (any::<u8>(), any::<u8>())),
        prop::bool::weighted(0.85),
    )
        .prop_map(
            |(deps, leaves, composite, addresses, networks, flows, drop, exceptions)| Repo {
                deps,
                leaves,
                composite,
                addresses,
                networks,
                flows,
                drop,
                exceptions,
            },
        )
}

/// A repository whose first deployment is on Azure.
/// A repository whose first deployment is on Azure, with at least two flows, nothing Azure
/// cannot express and no guardrail violation: its Azure targets get applied.
fn arb_repo_on_azure() -> impl Strategy<Value = Repo> {
    arb_repo()
        .prop_map(|mut r| {
            r.deps[0].mask |= 2;
            r
        })
        .prop_filter("Azure target would be blocked", |r| {
            r.flows.len() >= 2
                && r.tokens_expressible_everywhere()
                && r.guardrail_violations().is_empty()
        })
}

/// A flow added in the Azure stability property: plain tcp, allow, network or group source.
fn arb_extra_flow() -> impl Strategy<Value = FlowSpec> {
    let kind = prop_oneof![
        Just(FlowKind::AllowNetToGroup),
        Just(FlowKind::AllowGroupToGroup)
    ];
    (arb_flow_with(kind), 10000u16..20000).prop_map(|(f, port)| FlowSpec {
        services: vec![Tok::Tcp(port, port)],
        only: None,
        guardrail: false,
        ..f
    })
}

// ---------------------------------------------------------------------------------------------
// Pipeline helpers
// ---------------------------------------------------------------------------------------------

fn load_opts() -> LoadOptions {
    LoadOptions {
        today: time::macros::date!(2026 - 11 - 22),
    }
}

fn load(files: &[(String, String)]) -> Result<Intent, TestCaseError> {
    load_files(files, &load_opts())
        .map(|l| l.intent)
        .map_err(|d| {
            TestCaseError::fail(format!(
                "generated intent did not load:\n{d}\n--- files ---\n{}",
                show(files)
            ))
        })
}

fn show(files: &[(String, String)]) -> String {
    files
        .iter()
        .map(|(p, t)| format!("# {p}\n{t}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn plan_opts(dir: &Path) -> PlanOptions {
    PlanOptions {
        backend: intentwall::backend::Backend::snapshots(dir.to_path_buf()),
        prune_unmanaged: false,
        deployment: None,
        provider: None,
        shard: None,
        keep_after: false,
    }
}

fn plan(intent: &Intent, dir: &Path) -> Plan {
    plan::build(intent, &plan_opts(dir)).expect("plan builds")
}

fn apply_opts(dir: &Path) -> ApplyOptions {
    ApplyOptions {
        backend: intentwall::backend::Backend::snapshots(dir.to_path_buf()),
        max_deletes: usize::MAX,
        parallelism: 4,
        force: true,
        preflight: false,
    }
}

/// Apply a fresh plan (forced, no delete limit): held targets come out blocked, the others
/// applied (or unchanged when they have no change); exit code 3 iff something was held.
fn apply_ok(p: &Plan, intent: &Intent, dir: &Path) -> Result<(), TestCaseError> {
    let report = apply::apply(p, intent, &apply_opts(dir))
        .map_err(|e| TestCaseError::fail(format!("apply of a fresh plan failed: {e:#}")))?;
    prop_assert_eq!(report.targets.len(), p.targets.len());
    for (t, o) in p.targets.iter().zip(&report.targets) {
        let want = if held(p, t) {
            Outcome::Blocked
        } else if t.changes.is_empty() {
            Outcome::NoChanges
        } else {
            Outcome::Applied
        };
        prop_assert_eq!(
            o.outcome,
            want,
            "{}/{}: {:?}; {}",
            o.deployment,
            o.provider,
            o.reason,
            describe(t)
        );
    }
    let any_held = p.targets.iter().any(|t| held(p, t));
    prop_assert_eq!(report.status().code(), if any_held { 3 } else { 0 });
    Ok(())
}

/// Every file under a directory with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn target_id(t: &plan::TargetPlan) -> (String, ProviderKind) {
    (t.deployment.clone(), t.provider)
}

/// Must not be applied: blocked by a finding of its own, or by a guardrail finding of its
/// deployment.
fn held(p: &Plan, t: &plan::TargetPlan) -> bool {
    t.blocked || p.guardrails.iter().any(|g| g.deployment == t.deployment)
}

/// The targets of a plan that apply may write.
fn applicable(p: &Plan) -> BTreeSet<(String, ProviderKind)> {
    p.targets
        .iter()
        .filter(|t| !held(p, t))
        .map(target_id)
        .collect()
}

/// Blocked by something the cloud cannot express (an inexpressible or limit finding).
fn excused(t: &plan::TargetPlan) -> bool {
    t.findings
        .iter()
        .any(|f| matches!(f.kind, FindingKind::Inexpressible | FindingKind::Limit))
}

fn describe(t: &plan::TargetPlan) -> String {
    let ch: Vec<String> = t
        .changes
        .iter()
        .map(|c| format!("{} {}", c.action.symbol(), c.key))
        .collect();
    let fi: Vec<String> = t.findings.iter().map(|f| f.to_string()).collect();
    format!(
        "{}/{}: changes [{}]; findings [{}]; sim {:?}",
        t.deployment,
        t.provider,
        ch.join(", "),
        fi.join(" | "),
        t.simulation
    )
}

// ---------------------------------------------------------------------------------------------
// Unmanaged seeds (property 4 and 6)
// ---------------------------------------------------------------------------------------------

const AWS_LEGACY: &str = "legacy";
const AZURE_LEGACY: &str = "AllowAzureLoadBalancerHealthProbe";
const GCP_LEGACY: &str = "legacy-allow-web";

/// One unmanaged, neutral object for deployment `d` on cloud `k`, as the list the cloud's CLI
/// prints (the Azure NSG holding the rule, for Azure).
fn seed_items(r: &Repo, d: usize, k: usize) -> Value {
    let name = DEPLOYMENTS[d];
    match CLOUDS[k] {
        ProviderKind::Aws => json!([{
            "Description": "Jenkins controller (pre-intentwall)",
            "GroupId": format!("sg-0abc{d}{k}def0123456789"),
            "GroupName": AWS_LEGACY,
            "IpPermissions": [{
                "FromPort": 8080, "IpProtocol": "tcp",
                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "office VPN"}],
                "Ipv6Ranges": [], "PrefixListIds": [], "ToPort": 8080, "UserIdGroupPairs": []
            }],
            "IpPermissionsEgress": [{
                "IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []
            }],
            "OwnerId": "111122223333",
            "Tags": [{"Key": "team", "Value": "build"}],
            "VpcId": format!("vpc-0a1b2c{d}{k}")
        }]),
        ProviderKind::Azure => {
            let sub = format!("00000000-0000-4000-8000-00000000000{d}");
            let nsg_id = format!(
                "/subscriptions/{sub}/resourceGroups/rg-{name}/providers/Microsoft.Network/networkSecurityGroups/nsg-{name}"
            );
            // with probes denied, an allow from the load balancer would widen the intent: a
            // deny at the same place is the neutral hand-made rule then
            let access = if r.deps[d].clouds[k].probes == Some(false) {
                "Deny"
            } else {
                "Allow"
            };
            json!([{
                "name": format!("nsg-{name}"),
                "id": nsg_id,
                "location": format!("{name}east"),
                "resourceGroup": format!("rg-{name}"),
                "type": "Microsoft.Network/networkSecurityGroups",
                "etag": "W/\"00000000-0000-0000-0000-000000000001\"",
                "provisioningState": "Succeeded",
                "tags": {"owner": "platform-security"},
                "securityRules": [{
                    "name": AZURE_LEGACY,
                    "id": format!("{nsg_id}/securityRules/{AZURE_LEGACY}"),
                    "type": "Microsoft.Network/networkSecurityGroups/securityRules",
                    "access": access,
                    "description": "platform team: LB probes",
                    "destinationAddressPrefix": "*",
                    "destinationAddressPrefixes": [],
                    "destinationPortRange": "*",
                    "destinationPortRanges": [],
                    "direction": "Inbound",
                    "priority": 4000,
                    "protocol": "*",
                    "sourceAddressPrefix": "AzureLoadBalancer",
                    "sourceAddressPrefixes": [],
                    "sourcePortRange": "*",
                    "sourcePortRanges": [],
                    "provisioningState": "Succeeded",
                    "resourceGroup": format!("rg-{name}")
                }],
                "defaultSecurityRules": []
            }])
        }
        ProviderKind::Gcp => json!([{
            "name": GCP_LEGACY,
            "description": "hand-made before intentwall",
            "network": format!("https://www.googleapis.com/compute/v1/projects/proj-{name}/global/networks/net-{name}"),
            "priority": 1000,
            "direction": "INGRESS",
            "sourceRanges": ["10.0.0.0/8"],
            "targetTags": ["legacy-web"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}],
            "disabled": false,
            "logConfig": {"enable": false},
            "id": format!("77{d}{k}1234567890"),
            "creationTimestamp": "2025-03-09T09:14:00.000-07:00",
            "selfLink": format!("https://www.googleapis.com/compute/v1/projects/proj-{name}/global/firewalls/{GCP_LEGACY}"),
            "kind": "compute#firewall"
        }]),
    }
}

fn snapshot_path(dir: &Path, d: usize, k: usize) -> PathBuf {
    intentwall::backend::snapshot::path(dir, DEPLOYMENTS[d], CLOUDS[k]).unwrap()
}

/// The document around the items: a bare list, or the CLI's object envelope
/// (`SecurityGroups`, ARM `value`, GCP `FirewallList` with its other fields).
fn envelope(d: usize, k: usize, items: Value, wrapped: bool) -> Value {
    let name = DEPLOYMENTS[d];
    match (CLOUDS[k], wrapped) {
        (_, false) => items,
        (ProviderKind::Aws, true) => json!({ "SecurityGroups": items }),
        (ProviderKind::Azure, true) => json!({ "value": items }),
        (ProviderKind::Gcp, true) => json!({
            "kind": "compute#firewallList",
            "id": format!("projects/proj-{name}/global/firewalls"),
            "items": items,
            "selfLink": format!("https://www.googleapis.com/compute/v1/projects/proj-{name}/global/firewalls")
        }),
    }
}

/// The envelope of a document without its object list: what a rewrite must keep.
fn envelope_shape(doc: &Value) -> Value {
    match doc {
        Value::Array(_) => json!("bare list"),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_array())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Seed every target with its neutral unmanaged object; `wrapped` picks the envelope.
fn seed(r: &Repo, dir: &Path, wrapped: bool) {
    for d in 0..r.deps.len() {
        for (k, _) in r.clouds(d) {
            let p = snapshot_path(dir, d, k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let doc = envelope(d, k, seed_items(r, d, k), wrapped);
            let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
            std::fs::write(&p, text).unwrap();
        }
    }
}

/// The unmanaged objects of a snapshot document, found by name: the whole object for AWS and
/// GCP; for Azure the rule, and the NSG without its `securityRules`.
fn unmanaged_objects(doc: &Value, k: usize) -> BTreeMap<String, Value> {
    let list = |v: &Value, key: &str| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            Value::Object(m) => m
                .get(key)
                .and_then(|x| x.as_array())
                .cloned()
                .unwrap_or_default(),
            _ => vec![],
        }
    };
    let mut out = BTreeMap::new();
    match CLOUDS[k] {
        ProviderKind::Aws => {
            for sg in list(doc, "SecurityGroups") {
                if sg["GroupName"] == AWS_LEGACY {
                    out.insert(format!("sg {AWS_LEGACY}"), sg);
                }
            }
        }
        ProviderKind::Azure => {
            for nsg in list(doc, "value") {
                for rule in list(&nsg["securityRules"], "") {
                    if rule["name"] == AZURE_LEGACY {
                        out.insert(format!("rule {AZURE_LEGACY}"), rule);
                    }
                }
                let mut shell = nsg.clone();
                if let Some(m) = shell.as_object_mut() {
                    m.remove("securityRules");
                }
                out.insert(format!("nsg {}", nsg["name"]), shell);
            }
        }
        ProviderKind::Gcp => {
            for rule in list(doc, "items") {
                if rule["name"] == GCP_LEGACY {
                    out.insert(format!("fw {GCP_LEGACY}"), rule);
                }
            }
        }
    }
    out
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Cases per property: the default keeps the file well under a minute in a debug build on two
/// cores; `PIPELINE_PROPS_CASES=N` overrides it for a soak run.
fn cases(default: u32) -> u32 {
    std::env::var("PIPELINE_PROPS_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The providers' input read straight off the model: the leaf groups with this cloud's
/// addresses, and every flow times the model's endpoints of its two ends. The service graph
/// derives it over its own nodes and nesting edges instead; the two must agree, since
/// simulation resolves `expect` ends with the model's endpoints.
fn model_resolve(dep: &Deployment, cloud: ProviderKind) -> Option<DeploymentIntent> {
    let place = dep.clouds.get(&cloud)?;
    let groups = dep
        .groups
        .values()
        .filter(|g| !g.is_composite())
        .map(|g| {
            let group = GroupIntent {
                name: g.name.clone(),
                description: g.description.clone(),
                egress_restricted: g.egress_restricted,
                sensitive: g.sensitive,
                addresses: g.addresses_for(cloud).cloned(),
                service_account: g
                    .cloud_settings
                    .get(&cloud)
                    .and_then(|s| s.get("service_account"))
                    .cloned(),
            };
            (g.name.clone(), group)
        })
        .collect();
    let mut flows = Vec::new();
    for f in &dep.flows {
        for from in dep.endpoints(&f.from) {
            for to in dep.endpoints(&f.to) {
                flows.push(FlowIntent {
                    name: f.name.clone(),
                    action: f.action,
                    from: from.clone(),
                    to,
                    traffic: f.traffic(),
                    guardrail: f.guardrail,
                });
            }
        }
    }
    Some(DeploymentIntent {
        deployment: dep.name.clone(),
        provider: cloud,
        settings: place.settings.clone(),
        space: place.space.clone(),
        groups,
        flows,
    })
}

/// 1b on the example estate.
#[test]
fn example_views_resolve_like_the_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let intent = intentwall::intent::load(&root.join("intents"), &load_opts())
        .unwrap()
        .intent;
    let graph = ServiceGraph::of(&intent);
    let mut resolved = 0;
    for dep in intent.deployments.values() {
        let view = graph.view(&dep.name).unwrap();
        for kind in ProviderKind::ALL {
            let want = model_resolve(dep, kind);
            resolved += usize::from(want.is_some());
            assert_eq!(view.resolve(kind), want, "{}/{kind}", dep.name);
        }
    }
    assert!(resolved >= 3, "the example estate uses every cloud");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// 1b. The providers' input derived from a deployment's view of the service graph is the
    /// one read straight off the model, on every cloud (absent clouds too).
    #[test]
    fn graph_views_resolve_like_the_model(r in arb_repo()) {
        let files = render(&r);
        let intent = load(&files)?;
        let graph = ServiceGraph::of(&intent);
        for dep in intent.deployments.values() {
            let view = graph.view(&dep.name).expect("every deployment has a view");
            for kind in ProviderKind::ALL {
                prop_assert_eq!(view.resolve(kind), model_resolve(dep, kind), "{}", show(&files));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// 1. Generated valid input always loads; each deployment holds exactly the flows the
    /// generator put in force there; every flow's ends resolve on every cloud.
    #[test]
    fn load_never_fails_and_every_flow_resolves(r in arb_repo()) {
        let files = render(&r);
        let intent = load(&files)?;
        prop_assert_eq!(intent.deployments.len(), r.deps.len());
        for (d, name) in r.dep_names().into_iter().enumerate() {
            let dep = &intent.deployments[name];
            let got: Vec<String> = dep.flows.iter().map(|f| f.name.clone()).collect();
            prop_assert_eq!(got, r.effective_flows(d), "{}", show(&files));
            let clouds: Vec<ProviderKind> = dep.clouds.keys().copied().collect();
            let want: Vec<ProviderKind> = r.clouds(d).iter().map(|(k, _)| CLOUDS[*k]).collect();
            prop_assert_eq!(clouds, want);
            for i in 0..r.networks.len() {
                let want = AddrSet::from_nets(&r.net_prefixes(i));
                prop_assert_eq!(&dep.networks[&Repo::net_name(i)].addrs, &want, "{}", show(&files));
            }
            for (i, l) in r.leaves.iter().enumerate() {
                let g = &dep.groups[LEAVES[i]];
                prop_assert_eq!((g.sensitive, g.egress_restricted), (l.sensitive, l.restricted));
            }
            if r.composite.is_some() {
                let mut want: Vec<String> =
                    r.leaves_of(COMPOSITE).iter().map(|&i| LEAVES[i].to_string()).collect();
                want.sort();
                prop_assert_eq!(dep.leaves(COMPOSITE), want);
            }
            for f in &dep.flows {
                prop_assert!(!dep.endpoints(&f.from).is_empty(), "flow {} from {}", f.name, f.from);
                prop_assert!(!dep.endpoints(&f.to).is_empty(), "flow {} to {}", f.name, f.to);
            }
            for &kind in dep.clouds.keys() {
                let di = intentwall::graph::resolve(dep, kind);
                prop_assert!(di.is_some(), "{}/{} does not resolve", name, kind);
                let di = di.unwrap();
                let want: usize = dep
                    .flows
                    .iter()
                    .map(|f| dep.endpoints(&f.from).len() * dep.endpoints(&f.to).len())
                    .sum();
                prop_assert_eq!(di.flows.len(), want);
                let leaves = dep.groups.values().filter(|g| !g.is_composite()).count();
                prop_assert_eq!(di.groups.len(), leaves);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(160)))]

    /// 2. plan (empty state) -> apply -> plan: every target that was not blocked has nothing
    /// left to do; applying once more writes no byte.
    #[test]
    fn plan_apply_plan_converges(r in arb_repo()) {
        let files_in = render(&r);
        let intent = load(&files_in)?;
        let dir = tempfile::tempdir().unwrap();
        let p1 = plan(&intent, dir.path());
        apply_ok(&p1, &intent, dir.path())?;
        // held targets (own findings, or a guardrail of their deployment) are not written
        for t in p1.targets.iter().filter(|t| held(&p1, t)) {
            prop_assert!(
                !t.snapshot.exists(),
                "a blocked target was applied: {}; guardrails {:?}\n{}",
                describe(t), p1.guardrails, show(&files_in)
            );
        }
        let p2 = plan(&intent, dir.path());
        let was_ok = applicable(&p1);
        for t in p2.targets.iter().filter(|t| was_ok.contains(&target_id(t))) {
            prop_assert!(!t.blocked, "blocked only after apply: {}\n{}", describe(t), show(&files_in));
            prop_assert!(t.changes.is_empty(), "not converged: {}\n{}", describe(t), show(&files_in));
        }
        let before = files(dir.path());
        apply_ok(&p2, &intent, dir.path())?;
        prop_assert!(files(dir.path()) == before, "second apply wrote bytes\n{}", show(&files_in));
    }

    /// 2b. Convergence from another intent's applied state: apply repository A, then plan and
    /// apply repository B over it (its rules replace A's in place, deletions forced), and B's
    /// next plan is empty wherever it was applied.
    #[test]
    fn converges_from_another_intents_state(a in arb_repo(), b in arb_repo()) {
        let dir = tempfile::tempdir().unwrap();
        let intent_a = load(&render(&a))?;
        apply_ok(&plan(&intent_a, dir.path()), &intent_a, dir.path())?;
        let files_b = render(&b);
        let intent_b = load(&files_b)?;
        let p1 = plan(&intent_b, dir.path());
        apply_ok(&p1, &intent_b, dir.path())?;
        let p2 = plan(&intent_b, dir.path());
        let was_ok = applicable(&p1);
        for t in p2.targets.iter().filter(|t| was_ok.contains(&target_id(t))) {
            prop_assert!(
                t.changes.is_empty(),
                "not converged: {}\nA:\n{}\nB:\n{}",
                describe(t), show(&render(&a)), show(&files_b)
            );
        }
    }

    /// 3. Every target is proven (0 mismatches, 0 failed expectations) or blocked by an
    /// inexpressible/limit finding; intents expressible everywhere give no finding at all.
    #[test]
    fn proof_or_finding(r in arb_repo()) {
        let files_in = render(&r);
        let intent = load(&files_in)?;
        let dir = tempfile::tempdir().unwrap();
        let p = plan(&intent, dir.path());
        for t in &p.targets {
            let proven = t.simulation.mismatches == 0 && t.simulation.expectations_failed == 0;
            let excused = excused(t);
            prop_assert!(proven || excused, "neither proven nor excused: {}\n{}", describe(t), show(&files_in));
            if excused {
                prop_assert!(t.blocked);
            }
        }
        let guardrails: BTreeSet<(String, String)> = p
            .guardrails
            .iter()
            .map(|f| (f.deployment.clone(), f.flow.clone().unwrap_or_default()))
            .collect();
        prop_assert_eq!(guardrails, r.guardrail_violations(), "{}", show(&files_in));
        if r.expressible_everywhere() {
            for t in &p.targets {
                prop_assert!(t.findings.is_empty(), "expressible intent has findings: {}\n{}", describe(t), show(&files_in));
            }
        }
    }

    /// 4. One neutral unmanaged object per target survives plan + apply as the same JSON, and
    /// the next plan is empty.
    #[test]
    fn unmanaged_objects_survive(r in arb_repo(), wrapped in any::<bool>()) {
        let files_in = render(&r);
        let intent = load(&files_in)?;
        let dir = tempfile::tempdir().unwrap();
        seed(&r, dir.path(), wrapped);
        let mut before = BTreeMap::new();
        for d in 0..r.deps.len() {
            for (k, _) in r.clouds(d) {
                let doc = read_json(&snapshot_path(dir.path(), d, k));
                let objs = unmanaged_objects(&doc, k);
                prop_assert!(!objs.is_empty());
                before.insert((d, k), (envelope_shape(&doc), objs));
            }
        }
        let p1 = plan(&intent, dir.path());
        // neutral relative to what the target expresses: where a flow is inexpressible (a
        // typed-ICMP deny from the load balancer's address on Azure), any allow may conflict
        for t in p1.targets.iter().filter(|t| !excused(t)) {
            prop_assert!(
                !t.findings.iter().any(|f| f.kind == FindingKind::Conflict),
                "a neutral unmanaged object is a conflict: {}\n{}", describe(t), show(&files_in)
            );
        }
        apply_ok(&p1, &intent, dir.path())?;
        for ((d, k), (shape, objs)) in &before {
            let doc = read_json(&snapshot_path(dir.path(), *d, *k));
            let at = format!("{}/{}", DEPLOYMENTS[*d], CLOUDS[*k]);
            prop_assert_eq!(&envelope_shape(&doc), shape, "envelope of {}\n{}", at, show(&files_in));
            prop_assert_eq!(&unmanaged_objects(&doc, *k), objs, "{}\n{}", at, show(&files_in));
        }
        let p2 = plan(&intent, dir.path());
        let was_ok = applicable(&p1);
        for t in p2.targets.iter().filter(|t| was_ok.contains(&target_id(t))) {
            prop_assert!(t.changes.is_empty(), "not converged: {}\n{}", describe(t), show(&files_in));
        }
    }

    /// 5. Azure: adding an allow flow only creates rules (no renumbering); removing a flow only
    /// deletes.
    #[test]
    fn azure_insertion_is_stable(r in arb_repo_on_azure(), extra in arb_extra_flow(), victim in any::<u8>()) {
        let files_in = render(&r);
        let intent = load(&files_in)?;
        let dir = tempfile::tempdir().unwrap();
        let p1 = plan(&intent, dir.path());
        apply_ok(&p1, &intent, dir.path())?;
        let applied: BTreeSet<_> = applicable(&p1)
            .into_iter()
            .filter(|(_, k)| *k == ProviderKind::Azure)
            .collect();
        prop_assume!(!applied.is_empty());

        let only = |a: Action, p: &Plan, what: &str, files: &[(String, String)]| -> Result<(), TestCaseError> {
            for t in p.targets.iter().filter(|t| applied.contains(&target_id(t))) {
                prop_assert!(
                    t.changes.iter().all(|c| c.action == a),
                    "{what}: expected only {:?}: {}\n{}", a, describe(t), show(files)
                );
            }
            Ok(())
        };

        // one more allow flow, appended
        let mut grown = r.clone();
        grown.drop = r.effective_drop().map(|(d, f)| (d as u8, f as u8));
        grown.flows.push(extra);
        let files_grown = render(&grown);
        let p2 = plan(&load(&files_grown)?, dir.path());
        only(Action::Create, &p2, "adding a flow", &files_grown)?;

        // one flow fewer (if it was the dropped one, its drop goes too)
        let mut shrunk = r.clone();
        let v = victim as usize % shrunk.flows.len();
        shrunk.flows[v].removed = true;
        prop_assume!(shrunk.flows.iter().any(|f| !f.removed));
        let files_shrunk = render(&shrunk);
        let p3 = plan(&load(&files_shrunk)?, dir.path());
        only(Action::Delete, &p3, "removing a flow", &files_shrunk)?;

        // and the grown intent converges from the applied one
        let grown_intent = load(&files_grown)?;
        apply_ok(&p2, &grown_intent, dir.path())?;
        let p4 = plan(&grown_intent, dir.path());
        let was_ok = applicable(&p2);
        for t in p4.targets.iter().filter(|t| was_ok.contains(&target_id(t))) {
            prop_assert!(
                t.changes.is_empty(),
                "not converged after growing: {}\n{}", describe(t), show(&files_grown)
            );
        }
    }

    /// 6. Changing the state of any one snapshot file after planning makes apply refuse the
    /// plan as stale, and nothing is written. (Bytes alone do not count: a file reformatted
    /// without changing its state leaves the plan fresh; `formatting_is_not_staleness`.)
    #[test]
    fn stale_plans_are_refused(r in arb_repo(), wrapped in any::<bool>(), pick in any::<prop::sample::Index>()) {
        let files_in = render(&r);
        let intent = load(&files_in)?;
        let dir = tempfile::tempdir().unwrap();
        seed(&r, dir.path(), wrapped);
        let p = plan(&intent, dir.path());
        let snaps: Vec<PathBuf> = files(dir.path()).into_keys().collect();
        let victim = pick.get(&snaps);
        common::change_state(victim);
        let before = files(dir.path());
        let res = apply::apply(&p, &intent, &apply_opts(dir.path()));
        match res {
            Ok(rep) => prop_assert!(false, "stale plan applied: {:?}", rep),
            Err(e) => prop_assert!(format!("{e:#}").contains("stale plan"), "{e:#}"),
        }
        prop_assert!(files(dir.path()) == before, "a refused apply wrote something");
    }
}
