//! The exhaustive check: do the lowered native rules give the oracle's verdict on *every*
//! packet of one target? Proven symbolically, not by enumeration.
//!
//! # Algorithm
//!
//! Sets of probes are binary decision diagrams ([`crate::bdd`]) over one variable order:
//! address family, source membership, destination membership (0 = no workload of ours,
//! `1..=G` = a leaf group), protocol (8 bits), destination port or ICMP type·code (16 bits),
//! source address (128 bits; IPv4 uses the first 32), destination address (128 bits).
//!
//! The verdict of a probe between members factors into two sides (DESIGN §1 and each
//! cloud's evaluation model both do): native = egress(src) ∧ ingress(dst), and the intent's
//! = (¬deny ∧ egress-allowed) ∧ (¬deny ∧ ingress-allowed). So the check is decomposed by the
//! group each side protects:
//!
//! 1. for every group `g` and direction, the *side*: the native decision of the rules whose
//!    protected side can hold a member of `g` (a priority cascade: per priority level,
//!    `result = (allows ∨ result) ∧ ¬denies`, rules of one level with the same protected
//!    side and traffic merged into one), and the oracle's side (the flows *to* `g` or, for a
//!    restricted group, *from* `g`, minus the deny flows that can touch `g`). Both come from
//!    an index by group; no flow or rule is ever scanned per packet.
//! 2. where a side's two functions differ (XOR, restricted to real hosts and real packets):
//!    differences with an outside peer are mismatches as they stand (one side decides);
//!    differences toward member peers name the (source group, destination group) pairs to
//!    recheck with the whole verdict, `egress ∧ ingress` against `oracle_e ∧ oracle_i`,
//!    because one side may rightly leave to the other what it does not enforce (a deny
//!    compiled on the receiving side only).
//! 3. every non-empty difference is split into *regions*, packets treated alike by every
//!    rule and flow involved: the smallest packet of a region is its counterexample, judged
//!    again concretely by [`EvalPolicy::evaluate`] and [`judge`] so that the reported rule
//!    and flows are the ones a reader can re-check by hand.
//!
//! # Complexity
//!
//! With `R` rules, `F` flows and `G` groups of one target: step 1 costs one BDD operation
//! per (rule or flow, group whose side it can touch), so `O((R + F) · t)` where `t` is the
//! number of groups a rule's protected side reaches (1 for rules on a group; all groups for
//! the few address-based baseline rules), each operation bounded by the size of the
//! address sets involved (≤ 2 nodes per prefix bit). Step 2 costs, per differing side, one
//! quantification of the packet and local address and one relational product
//! ([`Manager::and_exists`]) with the member spaces that stops at the first common address
//! of each peer group (a plain conjunction built the difference once per peer group: `O(G)`
//! products per side, quadratic in the estate), plus one product per group pair that
//! actually differs, which in a correct translation are only pairs a deny flow separates. Nothing is proportional to the product of source
//! and destination partitions, which is what the enumerating checker (kept as
//! [`crate::reference`] for differential tests) paid.
//!
//! `classes` still reports the size of the partition the enumerating checker would have
//! walked, computed arithmetically: every one of those classes is covered by the proof.

use crate::bdd::{Bdd, FxMap, Manager, FALSE, TRUE};
use crate::eval::{Direction, EvalPolicy, Probe, Verdict};
use crate::intent::{Action, DeploymentIntent, Endpoint, FlowIntent};
use crate::net::{AddrSet, Intervals};
use crate::oracle::{judge, OracleVerdict};
use crate::traffic::{proto, Packet, Traffic};
use crate::{Host, HostMatch};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One class where the native rules and the intent disagree.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The class representative.
    pub probe: Probe,
    /// What the intent says.
    pub oracle: OracleVerdict,
    /// What the native rules do.
    pub native_allowed: bool,
    /// The native rule that decided (id), or `None` for the cloud's no-match default.
    pub native_rule: Option<String>,
    /// Whether that rule is managed by intentwall.
    pub native_rule_managed: bool,
    /// The intent flow behind that rule, if it carries a marker.
    pub native_rule_flow: Option<String>,
}

impl Mismatch {
    /// The disagreement between the oracle and the native verdict of `policy` on a probe,
    /// naming the native rule that decided.
    pub fn new(probe: Probe, oracle: OracleVerdict, native: &Verdict, policy: &EvalPolicy) -> Self {
        let rule = native
            .deciding()
            .and_then(|d| d.rule)
            .map(|i| &policy.rules[i]);
        Mismatch {
            probe,
            oracle,
            native_allowed: native.allowed,
            native_rule: rule.map(|r| r.id.clone()),
            native_rule_managed: rule.is_some_and(|r| r.managed),
            native_rule_flow: rule.and_then(|r| r.flow.clone()),
        }
    }
}

/// How many mismatching regions are counted per target before the count says "at least".
pub const REGIONS_COUNTED: u64 = 256;

/// Result of an exhaustive check of one target.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Number of (source, destination, packet) equivalence classes the proof covers: the
    /// partition by every boundary of every address, port and ICMP set of the target.
    pub classes: u64,
    /// Mismatching regions (packets between two memberships that every rule and flow
    /// involved treats alike), counted up to [`REGIONS_COUNTED`].
    pub mismatch_count: u64,
    /// True when counting stopped at [`REGIONS_COUNTED`] with regions left.
    pub mismatch_count_capped: bool,
    /// Decision-diagram nodes built: the proof's memory figure.
    pub nodes: u64,
    /// One counterexample per region, for the first regions (up to the limit asked for).
    pub mismatches: Vec<Mismatch>,
    /// Regions whose verdict depends on what rules with an unknown match really match, where
    /// they could open traffic the intent denies (counted up to [`REGIONS_COUNTED`]).
    pub unverifiable_widening: u64,
    /// Regions whose verdict depends on unknown matches, where they could only block
    /// traffic the intent allows.
    pub unverifiable_narrowing: u64,
    /// One example per unverifiable region, widening ones first (up to the limit asked for).
    pub unverifiable: Vec<Unverifiable>,
}

/// A packet whose verdict depends on rules whose match the model does not know.
#[derive(Debug, Clone)]
pub struct Unverifiable {
    /// The example packet.
    pub probe: Probe,
    /// What the intent says.
    pub oracle: OracleVerdict,
    /// The rules with an unknown match that can match it: id and why it is unknown.
    pub rules: Vec<(String, String)>,
}

impl Unverifiable {
    /// A probe the intent judges `oracle`, naming the unknown-match rules of `policy` that
    /// can match it.
    pub fn new(probe: Probe, oracle: OracleVerdict, policy: &EvalPolicy) -> Self {
        let rules = policy
            .rules
            .iter()
            .filter(|r| r.unknown.is_some() && r.matches(&probe))
            .filter_map(|r| r.unknown.as_ref().map(|w| (r.id.clone(), w.clone())))
            .collect();
        Unverifiable {
            probe,
            oracle,
            rules,
        }
    }
}

/// Cut points of one family: every boundary of every set, plus the domain's minimum.
pub(crate) fn cuts<T: crate::net::Bound>(sets: &[&Intervals<T>]) -> Vec<T> {
    let mut pts: Vec<T> = sets.iter().flat_map(|s| s.boundaries()).collect();
    pts.push(T::MIN);
    pts.sort_unstable();
    pts.dedup();
    pts
}

/// Representatives of each elementary interval that intersects `space`.
pub(crate) fn reps<T: crate::net::Bound>(cuts: &[T], space: &Intervals<T>) -> Vec<T> {
    let mut out = Vec::new();
    for (i, &lo) in cuts.iter().enumerate() {
        let hi = cuts.get(i + 1).and_then(|n| n.pred()).unwrap_or(T::MAX);
        let part = Intervals::range(lo, hi).intersect(space);
        if let Some(&(a, _)) = part.ranges().first() {
            out.push(a);
        }
    }
    out
}

/// How many elementary intervals of `cuts` intersect `space`, by binary search.
fn rep_count<T: crate::net::Bound>(cuts: &[T], space: &Intervals<T>) -> u64 {
    let idx = |x: T| cuts.partition_point(|&c| c <= x);
    let mut count = 0u64;
    let mut last: Option<usize> = None; // highest interval index counted so far
    for &(a, b) in space.ranges() {
        let (i, j) = (idx(a), idx(b));
        let from = match last {
            Some(l) if l >= i => l + 1,
            _ => i,
        };
        if j >= from {
            count += (j - from + 1) as u64;
        }
        last = Some(last.map_or(j, |l| l.max(j)));
    }
    count
}

pub(crate) fn traffic_of(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    pol: &EvalPolicy,
) -> Vec<Traffic> {
    intent
        .flows
        .iter()
        .chain(allowances)
        .flat_map(|f| f.traffic.iter().cloned())
        .chain(pol.rules.iter().flat_map(|r| r.traffic.iter().cloned()))
        .collect()
}

/// Representative packets: one per class of (protocol, port or ICMP type/code).
pub fn packet_classes(traffic: &[Traffic]) -> Vec<Packet> {
    let mut protos: BTreeSet<u8> = [proto::TCP, proto::UDP, proto::ICMP, proto::ICMPV6]
        .into_iter()
        .collect();
    protos.extend(traffic.iter().filter_map(|t| t.proto));
    // one protocol nobody mentions stands for all the others
    if let Some(other) = (0..=255u8).find(|p| !protos.contains(p) && *p != 0) {
        protos.insert(other);
    }
    let mut out = Vec::new();
    for p in protos {
        let relevant = || {
            traffic
                .iter()
                .filter(move |t| t.proto.is_none_or(|x| x == p))
        };
        if proto::has_ports(p) {
            let sets: Vec<&Intervals<u16>> = relevant().map(|t| &t.ports).collect();
            for port in reps(&cuts(&sets), &Intervals::full()) {
                out.push(Packet::ported(p, port));
            }
        } else if proto::is_icmp(p) {
            let types: BTreeSet<u8> = relevant().filter_map(|t| t.icmp_type).collect();
            let spare_type = (0..=255u8).find(|t| !types.contains(t));
            for ty in types.iter().copied().chain(spare_type) {
                let codes: BTreeSet<u8> = relevant()
                    .filter(|t| t.icmp_type == Some(ty))
                    .filter_map(|t| t.icmp_code)
                    .collect();
                let spare_code = (0..=255u8).find(|c| !codes.contains(c));
                for c in codes.iter().copied().chain(spare_code) {
                    out.push(Packet::icmp(p, ty, c));
                }
            }
        } else {
            out.push(Packet::ported(p, 0));
        }
    }
    out
}

pub(crate) fn addr_sets<'a>(
    intent: &'a DeploymentIntent,
    allowances: &'a [FlowIntent],
    pol: &'a EvalPolicy,
) -> Vec<&'a AddrSet> {
    let mut v: Vec<&AddrSet> = vec![&intent.space];
    v.extend(intent.groups.values().filter_map(|g| g.addresses.as_ref()));
    for f in intent.flows.iter().chain(allowances) {
        for e in [&f.from, &f.to] {
            if let Endpoint::Network { addrs, .. } = e {
                v.push(addrs);
            }
        }
    }
    for r in &pol.rules {
        v.push(&r.local.addrs);
        v.push(&r.peer.addrs);
    }
    v
}

/// The number of (source, destination, packet) classes of the partition by every boundary
/// of the target: what an enumeration would have to walk, and what the proof covers.
pub fn class_count(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    pol: &EvalPolicy,
    spaces: &[AddrSet],
) -> u64 {
    let sets = addr_sets(intent, allowances, pol);
    let v4cuts = cuts(&sets.iter().map(|s| &s.v4).collect::<Vec<_>>());
    let v6cuts = cuts(&sets.iter().map(|s| &s.v6).collect::<Vec<_>>());
    let packets = packet_classes(&traffic_of(intent, allowances, pol));
    let mut total = 0u64;
    for v4 in [true, false] {
        let per: Vec<u64> = spaces
            .iter()
            .map(|s| {
                if v4 {
                    rep_count(&v4cuts, &s.v4)
                } else {
                    rep_count(&v6cuts, &s.v6)
                }
            })
            .collect();
        let all: u64 = per.iter().sum();
        let ext = per.first().copied().unwrap_or(0);
        let pk = packets.iter().filter(|p| p.fits_family(v4)).count() as u64;
        // every ordered pair of hosts but outside -> outside
        total = total.saturating_add(pk.saturating_mul(all * all - ext * ext));
    }
    total
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Src,
    Dst,
}

impl Role {
    /// (protected host, other host) of a direction: ingress protects the destination.
    fn sides(dir: Direction) -> (Role, Role) {
        match dir {
            Direction::Ingress => (Role::Dst, Role::Src),
            Direction::Egress => (Role::Src, Role::Dst),
        }
    }
}

/// Variable numbering; see the module docs for the order.
struct Layout {
    family: u32,
    src_mem: Vec<u32>,
    dst_mem: Vec<u32>,
    proto: Vec<u32>,
    port: Vec<u32>,
    src_ip: Vec<u32>,
    dst_ip: Vec<u32>,
    /// one per rule with an unknown match: "the rule matches this packet"
    unknown: Vec<u32>,
    count: usize,
}

impl Layout {
    fn new(groups: usize, unknown: usize) -> Self {
        let bits = (usize::BITS - groups.leading_zeros()).max(1);
        let mut next = 0u32;
        let mut take = |n: u32| -> Vec<u32> {
            let v: Vec<u32> = (next..next + n).collect();
            next += n;
            v
        };
        let family = take(1)[0];
        let src_mem = take(bits);
        let dst_mem = take(bits);
        let proto = take(8);
        let port = take(16);
        let src_ip = take(128);
        let dst_ip = take(128);
        let unknown = take(unknown as u32);
        Layout {
            family,
            src_mem,
            dst_mem,
            proto,
            port,
            src_ip,
            dst_ip,
            unknown,
            count: next as usize,
        }
    }
    fn mem(&self, r: Role) -> &[u32] {
        match r {
            Role::Src => &self.src_mem,
            Role::Dst => &self.dst_mem,
        }
    }
    fn ip(&self, r: Role) -> &[u32] {
        match r {
            Role::Src => &self.src_ip,
            Role::Dst => &self.dst_ip,
        }
    }
}

fn number(a: &[bool], vars: &[u32]) -> u128 {
    vars.iter()
        .fold(0u128, |acc, &v| (acc << 1) | u128::from(a[v as usize]))
}

/// One protected side (a group, in one direction): native and oracle decisions as sets of
/// probes, and the rule and flow match sets that split differences into regions.
struct Side {
    oracle: Bdd,
    native: Bdd,
    items: Vec<Bdd>,
}

/// A non-empty set of mismatching probes between two memberships.
struct Difference<'s> {
    src: Option<usize>,
    dst: Option<usize>,
    set: Bdd,
    /// the oracle's verdict over the same probes
    oracle: Bdd,
    items: Vec<&'s [Bdd]>,
}

struct Checker<'a> {
    m: Manager,
    l: Layout,
    /// group names by id - 1
    names: Vec<&'a str>,
    ids: BTreeMap<&'a str, usize>,
    /// where hosts of each membership live: 0 = outside, i = group i
    spaces: Vec<AddrSet>,
    space_sets: FxMap<(Role, usize), Bdd>,
    addr_cache: FxMap<(Role, &'a AddrSet), Bdd>,
    traffic_cache: FxMap<&'a [Traffic], Bdd>,
    /// groups whose space an address set overlaps
    overlap_cache: FxMap<&'a AddrSet, Vec<usize>>,
    /// real packets: ICMP over its own family; protocol 0 only if something names it
    packet_domain: Bdd,
    /// per rule: its "matches" variable when its match is unknown
    unknown_var: Vec<Option<u32>>,
}

impl<'a> Checker<'a> {
    fn new(intent: &'a DeploymentIntent, traffic: &[Traffic], pol: &EvalPolicy) -> Self {
        let names: Vec<&str> = intent.groups.keys().map(String::as_str).collect();
        let ids = names.iter().enumerate().map(|(i, n)| (*n, i + 1)).collect();
        let declared = intent.declared_addresses();
        let shared = intent.space.subtract(&declared);
        let mut spaces = vec![AddrSet::any().subtract(&declared)];
        spaces.extend(
            intent
                .groups
                .values()
                .map(|g| g.addresses.clone().unwrap_or_else(|| shared.clone())),
        );
        let unknowns = pol.rules.iter().filter(|r| r.unknown.is_some()).count();
        let l = Layout::new(names.len(), unknowns);
        let mut next = l.unknown.iter().copied();
        let unknown_var = pol
            .rules
            .iter()
            .map(|r| r.unknown.as_ref().and_then(|_| next.next()))
            .collect();
        let mut m = Manager::new();
        let v6 = m.literal(l.family, true);
        let v4 = m.literal(l.family, false);
        let icmp = m.equals(&l.proto, u128::from(proto::ICMP));
        let icmp6 = m.equals(&l.proto, u128::from(proto::ICMPV6));
        let bad4 = m.and(icmp, v6);
        let bad6 = m.and(icmp6, v4);
        let mut bad = m.or(bad4, bad6);
        if !traffic.iter().any(|t| t.proto == Some(0)) {
            let zero = m.equals(&l.proto, 0);
            bad = m.or(bad, zero);
        }
        let packet_domain = m.not(bad);
        Checker {
            m,
            l,
            names,
            ids,
            spaces,
            space_sets: FxMap::default(),
            addr_cache: FxMap::default(),
            traffic_cache: FxMap::default(),
            overlap_cache: FxMap::default(),
            packet_domain,
            unknown_var,
        }
    }

    fn groups(&self) -> usize {
        self.names.len()
    }

    fn build_addrs(&mut self, set: &AddrSet, role: Role) -> Bdd {
        let vars = self.l.ip(role).to_vec();
        let v4: Vec<(u128, u128)> = set
            .v4
            .ranges()
            .iter()
            .map(|&(a, b)| (u128::from(a), u128::from(b)))
            .collect();
        let v4 = self.m.intervals(&vars[..32], &v4);
        let v6 = self.m.intervals(&vars, set.v6.ranges());
        // the family is the first variable: no apply needed
        self.m.mk(self.l.family, v4, v6)
    }

    fn addrs(&mut self, set: &'a AddrSet, role: Role) -> Bdd {
        if let Some(&b) = self.addr_cache.get(&(role, set)) {
            return b;
        }
        let b = self.build_addrs(set, role);
        self.addr_cache.insert((role, set), b);
        b
    }

    /// Hosts of membership `id` (0 = outside) at the addresses they can have.
    fn space(&mut self, id: usize, role: Role) -> Bdd {
        if let Some(&b) = self.space_sets.get(&(role, id)) {
            return b;
        }
        let space = self.spaces[id].clone();
        let a = self.build_addrs(&space, role);
        let mem = self.mem(role, id);
        let b = self.m.and(mem, a);
        self.space_sets.insert((role, id), b);
        b
    }

    fn mem(&mut self, role: Role, id: usize) -> Bdd {
        let vars = self.l.mem(role).to_vec();
        self.m.equals(&vars, id as u128)
    }

    fn group(&mut self, name: &str, role: Role) -> Bdd {
        match self.ids.get(name) {
            Some(&id) => self.mem(role, id),
            None => FALSE, // no workload carries a group the intent does not have
        }
    }

    fn token(&mut self, t: &Traffic) -> Bdd {
        let Some(p) = t.proto else {
            return TRUE;
        };
        let proto_vars = self.l.proto.clone();
        let port_vars = self.l.port.clone();
        let is_p = self.m.equals(&proto_vars, u128::from(p));
        if proto::has_ports(p) {
            let ranges: Vec<(u128, u128)> = t
                .ports
                .ranges()
                .iter()
                .map(|&(a, b)| (u128::from(a), u128::from(b)))
                .collect();
            let ports = self.m.intervals(&port_vars, &ranges);
            self.m.and(is_p, ports)
        } else if proto::is_icmp(p) {
            let mut r = is_p;
            if let Some(ty) = t.icmp_type {
                let b = self.m.equals(&port_vars[..8], u128::from(ty));
                r = self.m.and(r, b);
            }
            if let Some(c) = t.icmp_code {
                let b = self.m.equals(&port_vars[8..], u128::from(c));
                r = self.m.and(r, b);
            }
            r
        } else {
            is_p
        }
    }

    fn traffic(&mut self, ts: &'a [Traffic]) -> Bdd {
        if let Some(&b) = self.traffic_cache.get(ts) {
            return b;
        }
        let parts: Vec<Bdd> = ts.iter().map(|t| self.token(t)).collect();
        let b = self.m.or_all(parts);
        self.traffic_cache.insert(ts, b);
        b
    }

    fn endpoint(&mut self, e: &'a Endpoint, role: Role) -> Bdd {
        match e {
            Endpoint::Group(g) => self.group(g, role),
            Endpoint::Network { addrs, .. } => self.addrs(addrs, role),
        }
    }

    /// Groups whose hosts can have an address of `set`.
    fn overlapping(&mut self, set: &'a AddrSet) -> Vec<usize> {
        if set.is_empty() {
            return Vec::new();
        }
        if let Some(v) = self.overlap_cache.get(set) {
            return v.clone();
        }
        // groups without declared addresses share one space: test each distinct space once
        let mut by_space: BTreeMap<&AddrSet, bool> = BTreeMap::new();
        let mut v = Vec::new();
        for id in 1..self.spaces.len() {
            let s = &self.spaces[id];
            let hit = *by_space.entry(s).or_insert_with(|| s.overlaps(set));
            if hit {
                v.push(id);
            }
        }
        self.overlap_cache.insert(set, v.clone());
        v
    }

    /// A peer host set merged from several rules of one level (their union).
    fn peers(&mut self, peers: &[&'a HostMatch], role: Role) -> Bdd {
        let addrs = match peers {
            [one] => self.addrs(&one.addrs, role),
            _ => {
                let merged = AddrSet {
                    v4: Intervals::from_ranges(
                        peers
                            .iter()
                            .flat_map(|p| p.addrs.v4.ranges().iter().copied()),
                    ),
                    v6: Intervals::from_ranges(
                        peers
                            .iter()
                            .flat_map(|p| p.addrs.v6.ranges().iter().copied()),
                    ),
                };
                self.build_addrs(&merged, role)
            }
        };
        let names: BTreeSet<&str> = peers
            .iter()
            .flat_map(|p| p.groups.iter().map(String::as_str))
            .collect();
        let mut parts = vec![addrs];
        for n in names {
            parts.push(self.group(n, role));
        }
        self.m.or_all(parts)
    }

    /// The native decision of one side: the cascade of the rules that can protect a member
    /// of group `id` in direction `dir`.
    fn native_side(
        &mut self,
        pol: &'a EvalPolicy,
        rules: &[usize],
        dir: Direction,
        id: usize,
        items: &mut Vec<Bdd>,
    ) -> Bdd {
        let (local_role, peer_role) = Role::sides(dir);
        let name = self.names[id - 1];
        // (priority, deny?, local, traffic, unknown var) -> peers; a bucket is one union
        type Key = (u32, bool, Bdd, Bdd, Option<u32>);
        let mut buckets: BTreeMap<Key, Vec<&'a HostMatch>> = BTreeMap::new();
        for &i in rules {
            let r = &pol.rules[i];
            let local = if r.local.groups.contains(name) {
                TRUE
            } else {
                self.addrs(&r.local.addrs, local_role)
            };
            let traffic = self.traffic(&r.traffic);
            if local == FALSE || traffic == FALSE {
                continue;
            }
            buckets
                .entry((
                    r.priority,
                    r.action == Action::Deny,
                    local,
                    traffic,
                    self.unknown_var[i],
                ))
                .or_default()
                .push(&r.peer);
        }
        // per priority level: (allows, denies)
        let mut levels: BTreeMap<u32, (Vec<Bdd>, Vec<Bdd>)> = BTreeMap::new();
        for ((prio, deny, local, traffic, unknown), peers) in buckets {
            let peer = self.peers(&peers, peer_role);
            let lt = self.m.and(local, traffic);
            let mut item = self.m.and(lt, peer);
            if item == FALSE {
                continue;
            }
            // regions are cut by what a rule can match, not by the unknown part of it
            items.push(item);
            if let Some(u) = unknown {
                let matches = self.m.literal(u, true);
                item = self.m.and(item, matches);
            }
            let level = levels.entry(prio).or_default();
            if deny {
                level.1.push(item);
            } else {
                level.0.push(item);
            }
        }
        let mut result = FALSE; // no match denies
        for (_, (allows, denies)) in levels.into_iter().rev() {
            let a = self.m.or_all(allows);
            let d = self.m.or_all(denies);
            let up = self.m.or(a, result);
            result = self.m.diff(up, d);
        }
        result
    }

    /// The oracle's decision of one side: `allow-flows-of-the-side ∧ ¬deny-flows`.
    fn oracle_side(
        &mut self,
        allows: Option<&[&'a FlowIntent]>,
        denies: &[&'a FlowIntent],
        dir: Direction,
        items: &mut Vec<Bdd>,
    ) -> Bdd {
        let (local_role, peer_role) = Role::sides(dir);
        let ends = |f: &'a FlowIntent| match dir {
            Direction::Ingress => (&f.to, &f.from),
            Direction::Egress => (&f.from, &f.to),
        };
        let mut flow_set = |c: &mut Self, f: &'a FlowIntent| {
            let (local, peer) = ends(f);
            let local = match local {
                Endpoint::Group(_) => TRUE, // indexed under this group
                Endpoint::Network { addrs, .. } => c.addrs(addrs, local_role),
            };
            let peer = c.endpoint(peer, peer_role);
            let t = c.traffic(&f.traffic);
            let lp = c.m.and(local, peer);
            let s = c.m.and(lp, t);
            items.push(s);
            s
        };
        let allowed = match allows {
            None => TRUE, // egress of an unrestricted group
            Some(fs) => {
                let parts: Vec<Bdd> = fs.iter().map(|f| flow_set(self, f)).collect();
                self.m.or_all(parts)
            }
        };
        let parts: Vec<Bdd> = denies.iter().map(|f| flow_set(self, f)).collect();
        let denied = self.m.or_all(parts);
        self.m.diff(allowed, denied)
    }

    fn probe(&self, a: &[bool], src: Option<usize>, dst: Option<usize>) -> Probe {
        let v6 = a[self.l.family as usize];
        let ip = |vars: &[u32]| -> IpAddr {
            if v6 {
                IpAddr::V6(Ipv6Addr::from(number(a, vars)))
            } else {
                IpAddr::V4(Ipv4Addr::from(number(a, &vars[..32]) as u32))
            }
        };
        let p = number(a, &self.l.proto) as u8;
        let port = number(a, &self.l.port) as u16;
        let packet = if proto::has_ports(p) {
            Packet::ported(p, port)
        } else if proto::is_icmp(p) {
            Packet::icmp(p, (port >> 8) as u8, port as u8)
        } else {
            Packet::ported(p, 0)
        };
        let host = |id: Option<usize>, vars: &[u32]| Host {
            ip: ip(vars),
            group: id.map(|i| self.names[i - 1].to_string()),
        };
        Probe {
            src: host(src, &self.l.src_ip),
            dst: host(dst, &self.l.dst_ip),
            packet,
        }
    }
}

/// Flows indexed by the group side they can touch.
#[derive(Default)]
struct FlowIndex<'a> {
    in_allow: Vec<Vec<&'a FlowIntent>>,
    in_deny: Vec<Vec<&'a FlowIntent>>,
    eg_allow: Vec<Vec<&'a FlowIntent>>,
    eg_deny: Vec<Vec<&'a FlowIntent>>,
}

impl<'a> Checker<'a> {
    /// Rules by the group whose members their protected side can hold: ingress, egress.
    fn index_rules(&mut self, pol: &'a EvalPolicy) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        let c = self;
        let g = c.groups();
        let mut rules_in: Vec<Vec<usize>> = vec![Vec::new(); g + 1];
        let mut rules_eg: Vec<Vec<usize>> = vec![Vec::new(); g + 1];
        for (i, r) in pol.rules.iter().enumerate() {
            let mut ids: Vec<usize> = r
                .local
                .groups
                .iter()
                .filter_map(|n| c.ids.get(n.as_str()).copied())
                .collect();
            ids.extend(c.overlapping(&r.local.addrs));
            ids.sort_unstable();
            ids.dedup();
            let table = match r.direction {
                Direction::Ingress => &mut rules_in,
                Direction::Egress => &mut rules_eg,
            };
            for id in ids {
                table[id].push(i);
            }
        }
        (rules_in, rules_eg)
    }

    /// Flows by the group side they can touch.
    fn index_flows(
        &mut self,
        intent: &'a DeploymentIntent,
        allowances: &'a [FlowIntent],
    ) -> FlowIndex<'a> {
        let c = self;
        let g = c.groups();
        let mut fx = FlowIndex {
            in_allow: vec![Vec::new(); g + 1],
            in_deny: vec![Vec::new(); g + 1],
            eg_allow: vec![Vec::new(); g + 1],
            eg_deny: vec![Vec::new(); g + 1],
        };
        for f in intent.flows.iter().chain(allowances) {
            let deny = f.action == Action::Deny;
            let touched = |c: &Checker<'_>, e: &Endpoint| -> Option<usize> {
                e.group().and_then(|n| c.ids.get(n).copied())
            };
            if let Some(id) = touched(c, &f.to) {
                if deny {
                    fx.in_deny[id].push(f);
                } else {
                    fx.in_allow[id].push(f);
                }
            }
            if let Some(id) = touched(c, &f.from) {
                if deny {
                    fx.eg_deny[id].push(f);
                } else {
                    fx.eg_allow[id].push(f);
                }
            }
            // a deny toward or from a network touches every group living there; an allow does
            // not: ingress needs a flow *to the group*, restricted egress one *from* it
            if deny {
                if let Endpoint::Network { addrs, .. } = &f.to {
                    for id in c.overlapping(addrs) {
                        fx.in_deny[id].push(f);
                    }
                }
                if let Endpoint::Network { addrs, .. } = &f.from {
                    for id in c.overlapping(addrs) {
                        fx.eg_deny[id].push(f);
                    }
                }
            }
        }

        fx
    }
}

/// Prove one target: compare the lowered rules with the oracle on every packet; report the
/// mismatching regions with one counterexample each, the first `keep` of them in full.
pub fn check_exhaustive(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    pol: &EvalPolicy,
    keep: usize,
) -> CheckReport {
    let traffic = traffic_of(intent, allowances, pol);
    let mut c = Checker::new(intent, &traffic, pol);
    let mut report = CheckReport {
        classes: class_count(intent, allowances, pol, &c.spaces),
        ..CheckReport::default()
    };
    let g = c.groups();

    // index rules by (direction, group) and flows by group side
    let (rules_in, rules_eg) = c.index_rules(pol);
    let fx = c.index_flows(intent, allowances);

    // 1. every side
    let mut ins: Vec<Side> = Vec::with_capacity(g + 1);
    let mut egs: Vec<Side> = Vec::with_capacity(g + 1);
    ins.push(Side {
        oracle: TRUE,
        native: TRUE,
        items: Vec::new(),
    });
    egs.push(Side {
        oracle: TRUE,
        native: TRUE,
        items: Vec::new(),
    });
    for id in 1..=g {
        let restricted = intent
            .groups
            .get(c.names[id - 1])
            .is_some_and(|gr| gr.egress_restricted);
        for dir in [Direction::Ingress, Direction::Egress] {
            let mut items = Vec::new();
            let (rules, allows, denies) = match dir {
                Direction::Ingress => (&rules_in[id], Some(&fx.in_allow[id][..]), &fx.in_deny[id]),
                Direction::Egress => (
                    &rules_eg[id],
                    restricted.then_some(&fx.eg_allow[id][..]),
                    &fx.eg_deny[id],
                ),
            };
            let native = c.native_side(pol, rules, dir, id, &mut items);
            let oracle = c.oracle_side(allows, denies, dir, &mut items);
            let side = Side {
                oracle,
                native,
                items,
            };
            match dir {
                Direction::Ingress => ins.push(side),
                Direction::Egress => egs.push(side),
            }
        }
    }

    // 2. where a side differs: outside peers directly, member peers as pairs to recheck
    let mut diffs: Vec<Difference<'_>> = Vec::new();
    let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    // members where they can be, per role: a difference at addresses no member of a group
    // can have names no pair to recheck
    let mut members = [FALSE, FALSE];
    for (k, role) in [Role::Src, Role::Dst].into_iter().enumerate() {
        let parts: Vec<Bdd> = (1..=g).map(|id| c.space(id, role)).collect();
        members[k] = c.m.or_all(parts);
    }
    for dir in [Direction::Ingress, Direction::Egress] {
        let (local_role, peer_role) = Role::sides(dir);
        for id in 1..=g {
            let side = match dir {
                Direction::Ingress => &ins[id],
                Direction::Egress => &egs[id],
            };
            let x = c.m.xor(side.oracle, side.native);
            if x == FALSE {
                continue;
            }
            let local = c.space(id, local_role);
            let x = c.m.and_all(vec![x, local, c.packet_domain]);
            if x == FALSE {
                continue;
            }
            let outside = c.space(0, peer_role);
            let ext = c.m.and(x, outside);
            if ext != FALSE {
                let (src, dst) = match dir {
                    Direction::Ingress => (None, Some(id)),
                    Direction::Egress => (Some(id), None),
                };
                diffs.push(Difference {
                    src,
                    dst,
                    set: ext,
                    oracle: side.oracle,
                    items: vec![&side.items],
                });
            }
            let peer_vars = c.l.mem(peer_role).to_vec();
            let peer_members = members[usize::from(peer_role == Role::Dst)];
            // which peer groups the difference reaches at their members' addresses: every
            // variable but the family and the peer's membership is quantified, so each peer
            // group is a yes/no intersection that stops at its first common packet (a plain
            // conjunction would build the difference once per peer group: quadratic)
            // (the packet and the local side go first: peer_members does not test them, and
            // walking them once per peer group is what made this quadratic)
            let peer_ip = c.l.ip(peer_role);
            let (packet_and_local, at_peer): (Vec<u32>, Vec<u32>) = (0..c.l.count as u32)
                .filter(|v| *v != c.l.family && !peer_vars.contains(v))
                .partition(|v| !peer_ip.contains(v));
            let at_peers = c.m.exists(x, &packet_and_local);
            let toward_members = c.m.and_exists(at_peers, peer_members, &at_peer);
            for v in c.m.satisfiable_values(toward_members, &peer_vars) {
                let v = v as usize;
                if (1..=g).contains(&v) {
                    pairs.insert(match dir {
                        Direction::Ingress => (v, id),
                        Direction::Egress => (id, v),
                    });
                }
            }
        }
    }
    for &(gs, gd) in &pairs {
        let s = c.space(gs, Role::Src);
        let d = c.space(gd, Role::Dst);
        let cell = c.m.and_all(vec![s, d, c.packet_domain]);
        let oracle = c.m.and_all(vec![cell, egs[gs].oracle, ins[gd].oracle]);
        let native = c.m.and_all(vec![cell, egs[gs].native, ins[gd].native]);
        let set = c.m.xor(oracle, native);
        if set != FALSE {
            diffs.push(Difference {
                src: Some(gs),
                dst: Some(gd),
                set,
                oracle,
                items: vec![&egs[gs].items, &ins[gd].items],
            });
        }
    }

    // 3. regions and counterexamples. With rules of unknown match, a probe mismatches
    // *definitely* when it does whatever they match, and is *unverifiable* when it depends
    // on it; unverifiable regions are split by whether they could widen the intent.
    let index = pol.index();
    let uvars = c.l.unknown.clone();
    let mut definite = Vec::new();
    let mut widening = Vec::new();
    let mut narrowing = Vec::new();
    for d in &diffs {
        if uvars.is_empty() {
            definite.push(d.set);
            widening.push(FALSE);
            narrowing.push(FALSE);
            continue;
        }
        let possible = c.m.exists(d.set, &uvars);
        let not_set = c.m.not(d.set);
        let escapes = c.m.exists(not_set, &uvars);
        let sure = c.m.diff(possible, escapes);
        let open = c.m.diff(possible, sure);
        // oracle is u-free: where it denies, a possible difference is a possible allow
        let wide = c.m.diff(open, d.oracle);
        definite.push(sure);
        narrowing.push(c.m.diff(open, wide));
        widening.push(wide);
    }
    // split a difference into regions, counting them (up to the cap across the target) and
    // returning the first `want` counterexamples
    let mut counted = 0u64;
    let mut regions = |c: &mut Checker<'_>, d: &Difference<'_>, set: Bdd, want: usize| {
        let (mut n, mut capped, mut examples) = (0u64, false, Vec::new());
        let mut set = set;
        while set != FALSE {
            if counted >= REGIONS_COUNTED {
                capped = true;
                break;
            }
            let Some(a) = c.m.pick_min(set, c.l.count) else {
                break;
            };
            counted += 1;
            n += 1;
            if examples.len() < want {
                examples.push(c.probe(&a, d.src, d.dst));
            }
            // the region: everything every involved rule and flow treats like this packet
            let mut lits = Vec::new();
            for items in &d.items {
                for &it in items.iter() {
                    lits.push(if c.m.eval(it, &a) { it } else { c.m.not(it) });
                }
            }
            let region = c.m.and_all(lits);
            let next = c.m.diff(set, region);
            debug_assert_ne!(next, set, "a region always holds its own counterexample");
            if next == set {
                break;
            }
            set = next;
        }
        (n, capped, examples)
    };
    for (k, d) in diffs.iter().enumerate() {
        let want = keep.saturating_sub(report.mismatches.len());
        let (n, capped, examples) = regions(&mut c, d, definite[k], want);
        report.mismatch_count += n;
        report.mismatch_count_capped |= capped;
        for probe in examples {
            let oracle = judge(intent, allowances, &probe);
            let native = index.evaluate(&probe);
            debug_assert_ne!(
                oracle.allowed, native.allowed,
                "symbolic counterexample {probe} is not one"
            );
            report
                .mismatches
                .push(Mismatch::new(probe, oracle, &native, pol));
        }
    }
    for (wide, sets) in [(true, &widening), (false, &narrowing)] {
        for (k, d) in diffs.iter().enumerate() {
            let want = keep.saturating_sub(report.unverifiable.len());
            let (n, capped, examples) = regions(&mut c, d, sets[k], want);
            report.mismatch_count_capped |= capped;
            if wide {
                report.unverifiable_widening += n;
            } else {
                report.unverifiable_narrowing += n;
            }
            for probe in examples {
                let oracle = judge(intent, allowances, &probe);
                report
                    .unverifiable
                    .push(Unverifiable::new(probe, oracle, pol));
            }
        }
    }
    report.nodes = c.m.size() as u64;
    report
}

#[cfg(test)]
mod tests {
    //! Differential tests: the symbolic check against the enumerating reference on random
    //! intents and rule sets, including rule sets made wrong on purpose.
    use super::*;
    use crate::eval::{EvalRule, HostMatch};
    use crate::intent::GroupIntent;
    use crate::reference::check_enumerating;
    use crate::testkit::{addrs, group};
    use crate::ProviderKind;
    use proptest::prelude::*;

    const PREFIXES: &[&str] = &[
        "10.0.0.0/16",
        "10.0.1.0/24",
        "10.0.2.0/25",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "203.0.113.0/24",
        "203.0.113.128/25",
        "198.51.100.7/32",
        "::/0",
        "2001:db8:1::/48",
        "2001:db8:1:2::/64",
        "2001:db8:ff::/48",
    ];
    const TOKENS: &[&str] = &[
        "tcp/443",
        "tcp/80-90",
        "tcp",
        "udp/53",
        "udp/50-60",
        "icmp",
        "icmp/8",
        "icmp/8/0",
        "icmp/3",
        "icmpv6",
        "icmpv6/128",
        "esp",
        "gre",
        "any",
        "sctp/9899",
        "ip/0",
    ];
    const GROUPS: &[&str] = &["app", "db", "web"];

    fn addr_set() -> impl Strategy<Value = AddrSet> {
        proptest::sample::subsequence(PREFIXES, 1..3).prop_map(|v| addrs(&v))
    }

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        prop_oneof![
            3 => proptest::sample::select(GROUPS).prop_map(|g| Endpoint::Group(g.into())),
            1 => Just(Endpoint::Group("ghost".into())),
            3 => addr_set().prop_map(|a| Endpoint::Network { name: "n".into(), addrs: a }),
        ]
    }

    fn traffic() -> impl Strategy<Value = Vec<Traffic>> {
        proptest::sample::subsequence(TOKENS, 1..3)
            .prop_map(|v| v.iter().map(|t| Traffic::parse(t).unwrap()).collect())
    }

    fn flow() -> impl Strategy<Value = FlowIntent> {
        (any::<bool>(), endpoint(), endpoint(), traffic()).prop_map(|(deny, from, to, traffic)| {
            FlowIntent {
                name: format!(
                    "{}-{}-{}",
                    if deny { "deny" } else { "allow" },
                    from.name(),
                    to.name()
                ),
                action: if deny { Action::Deny } else { Action::Allow },
                from,
                to,
                traffic,
                guardrail: false,
            }
        })
    }

    fn intent() -> impl Strategy<Value = DeploymentIntent> {
        let grp = (
            any::<bool>(),
            proptest::option::weighted(
                0.3,
                proptest::sample::select(
                    &[
                        "10.0.1.0/24",
                        "10.0.2.0/25",
                        "2001:db8:1:2::/64",
                        "203.0.113.128/25",
                    ][..],
                ),
            ),
        );
        (
            proptest::collection::vec(grp, GROUPS.len()),
            proptest::sample::subsequence(&["10.0.0.0/16", "2001:db8:1::/48"][..], 1..=2),
            proptest::collection::vec(flow(), 0..6),
        )
            .prop_map(|(gs, space, flows)| DeploymentIntent {
                deployment: "t".into(),
                provider: ProviderKind::Gcp,
                settings: Default::default(),
                space: addrs(&space),
                groups: GROUPS
                    .iter()
                    .zip(gs)
                    .map(|(n, (restricted, a))| {
                        let g = GroupIntent {
                            egress_restricted: restricted,
                            addresses: a.map(|c| addrs(&[c])),
                            ..group(n)
                        };
                        (n.to_string(), g)
                    })
                    .collect(),
                flows,
            })
    }

    fn host_match(e: &Endpoint) -> HostMatch {
        match e {
            Endpoint::Group(g) => HostMatch::groups([g.clone()]),
            Endpoint::Network { addrs, .. } => HostMatch::addrs(addrs.clone()),
        }
    }

    /// A faithful translation in the GCP style: every flow at 1000 (deny wins ties), a
    /// default deny for ingress, allow-all egress below for unrestricted groups.
    fn faithful(i: &DeploymentIntent, allowances: &[FlowIntent]) -> EvalPolicy {
        let mut rules = Vec::new();
        let mut push =
            |id: String, flow: Option<&str>, dir, action, prio, local, peer, t: Vec<Traffic>| {
                rules.push(EvalRule {
                    id,
                    managed: true,
                    flow: flow.map(str::to_string),
                    direction: dir,
                    action,
                    priority: prio,
                    local,
                    peer,
                    traffic: t,
                    unknown: None,
                })
            };
        for (k, f) in i.flows.iter().chain(allowances).enumerate() {
            let deny = f.action == Action::Deny;
            if deny || f.to.group().is_some() {
                push(
                    format!("in{k}"),
                    Some(&f.name),
                    Direction::Ingress,
                    f.action,
                    1000,
                    host_match(&f.to),
                    host_match(&f.from),
                    f.traffic.clone(),
                );
            }
            let restricted_from = f
                .from
                .group()
                .is_some_and(|g| i.groups.get(g).is_some_and(|g| g.egress_restricted));
            if deny || restricted_from {
                push(
                    format!("eg{k}"),
                    Some(&f.name),
                    Direction::Egress,
                    f.action,
                    1000,
                    host_match(&f.from),
                    host_match(&f.to),
                    f.traffic.clone(),
                );
            }
        }
        let open: Vec<String> = i
            .groups
            .values()
            .filter(|g| !g.egress_restricted)
            .map(|g| g.name.clone())
            .collect();
        push(
            "egress-open".into(),
            None,
            Direction::Egress,
            Action::Allow,
            65000,
            HostMatch::groups(open),
            HostMatch::any(),
            vec![Traffic::any()],
        );
        EvalPolicy { rules }
    }

    fn random_rule() -> impl Strategy<Value = EvalRule> {
        (
            any::<bool>(),
            any::<bool>(),
            proptest::sample::select(&[0u32, 900, 1000, 65000][..]),
            endpoint(),
            endpoint(),
            traffic(),
            any::<bool>(),
        )
            .prop_map(|(ingress, deny, priority, local, peer, traffic, managed)| {
                EvalRule {
                    id: "extra".into(),
                    managed,
                    flow: None,
                    direction: if ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    action: if deny { Action::Deny } else { Action::Allow },
                    priority,
                    local: host_match(&local),
                    peer: host_match(&peer),
                    traffic,
                    unknown: None,
                }
            })
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        None,
        Drop(usize),
        Add(Box<EvalRule>),
        Flip(usize),
        Reprioritise(usize, u32),
        Unknown(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            2 => Just(Mutation::None),
            2 => any::<usize>().prop_map(Mutation::Drop),
            2 => random_rule().prop_map(|r| Mutation::Add(Box::new(r))),
            1 => any::<usize>().prop_map(Mutation::Flip),
            1 => (any::<usize>(), proptest::sample::select(&[0u32, 1000, 70000][..]))
                .prop_map(|(i, p)| Mutation::Reprioritise(i, p)),
            2 => any::<usize>().prop_map(Mutation::Unknown),
        ]
    }

    fn mutate(pol: &mut EvalPolicy, m: &Mutation) {
        let n = pol.rules.len();
        match m {
            Mutation::None => {}
            Mutation::Drop(i) if n > 0 => {
                pol.rules.remove(i % n);
            }
            Mutation::Add(r) => pol.rules.push((**r).clone()),
            Mutation::Flip(i) if n > 0 => {
                let r = &mut pol.rules[i % n];
                r.action = if r.action == Action::Allow {
                    Action::Deny
                } else {
                    Action::Allow
                };
            }
            Mutation::Reprioritise(i, p) if n > 0 => pol.rules[i % n].priority = *p,
            Mutation::Unknown(i) if n > 0 => {
                pol.rules[i % n].unknown = Some("test: match not known".into())
            }
            _ => {}
        }
    }

    fn cases() -> u32 {
        std::env::var("CHECK_DIFF_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1500)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        /// Same verdict as the reference; every counterexample is a real disagreement; the
        /// proof covers exactly the reference's classes; no region is counted twice.
        #[test]
        fn symbolic_agrees_with_enumeration(
            i in intent(),
            lb in proptest::option::weighted(0.2, addr_set()),
            muts in proptest::collection::vec(mutation(), 0..3),
        ) {
            let allowances: Vec<FlowIntent> = lb
                .map(|a| vec![FlowIntent {
                    name: "platform".into(),
                    action: Action::Allow,
                    from: Endpoint::Network { name: "lb".into(), addrs: a },
                    to: Endpoint::Group("web".into()),
                    traffic: vec![Traffic::parse("tcp/80-90").unwrap()],
                    guardrail: false,
                }])
                .unwrap_or_default();
            let mut pol = faithful(&i, &allowances);
            for m in &muts {
                mutate(&mut pol, m);
            }
            let reference = check_enumerating(&i, &allowances, &pol, 0);
            let new = check_exhaustive(&i, &allowances, &pol, 5);
            prop_assert_eq!(new.classes, reference.classes);
            prop_assert!(!new.mismatch_count_capped);
            if pol.rules.iter().any(|r| r.unknown.is_some()) {
                // reference for unknown matches: every class, every combination of them
                let index = pol.index();
                let (mut definite, mut wide, mut narrow) = (0u64, 0u64, 0u64);
                let hosts = crate::reference::host_classes(&i, &allowances, &pol);
                let packets = packet_classes(&traffic_of(&i, &allowances, &pol));
                for s in &hosts {
                    for d in &hosts {
                        if (s.group.is_none() && d.group.is_none()) || s.ip.is_ipv4() != d.ip.is_ipv4() {
                            continue;
                        }
                        for pk in packets.iter().filter(|p| p.fits_family(s.ip.is_ipv4())) {
                            let p = Probe { src: s.clone(), dst: d.clone(), packet: *pk };
                            let want = judge(&i, &allowances, &p).allowed;
                            let vs = index.possible_verdicts(&p);
                            let bad = vs.iter().filter(|v| v.allowed != want).count();
                            if bad == vs.len() {
                                definite += 1;
                            } else if bad > 0 && !want {
                                wide += 1;
                            } else if bad > 0 {
                                narrow += 1;
                            }
                        }
                    }
                }
                prop_assert_eq!(new.mismatch_count == 0, definite == 0, "definite {} vs {}", new.mismatch_count, definite);
                prop_assert_eq!(new.unverifiable_widening == 0, wide == 0, "widening {} vs {}", new.unverifiable_widening, wide);
                prop_assert_eq!(new.unverifiable_narrowing == 0, narrow == 0, "narrowing {} vs {}", new.unverifiable_narrowing, narrow);
                for u in &new.unverifiable {
                    let vs = index.possible_verdicts(&u.probe);
                    prop_assert!(vs.len() > 1, "{} is decided", u.probe);
                    prop_assert!(!u.rules.is_empty());
                }
                for m in &new.mismatches {
                    let want = judge(&i, &allowances, &m.probe).allowed;
                    prop_assert!(index.possible_verdicts(&m.probe).iter().all(|v| v.allowed != want));
                }
                return Ok(());
            }
            prop_assert_eq!(
                new.mismatch_count == 0,
                reference.mismatch_count == 0,
                "symbolic {} regions vs reference {} classes; first: {:?}",
                new.mismatch_count, reference.mismatch_count, new.mismatches.first()
            );
            prop_assert!(new.mismatch_count <= reference.mismatch_count);
            for m in &new.mismatches {
                let oracle = judge(&i, &allowances, &m.probe);
                let native = pol.evaluate(&m.probe);
                prop_assert_ne!(oracle.allowed, native.allowed, "not a counterexample: {}", m.probe);
                prop_assert_eq!(native.allowed, m.native_allowed);
                // the probe is a real host pair of the target
                for h in [&m.probe.src, &m.probe.dst] {
                    let space = match &h.group {
                        Some(g) => i.member_space(g),
                        None => i.external_space(),
                    };
                    prop_assert!(space.contains(h.ip), "{} outside its space", h);
                }
                prop_assert!(m.probe.src.group.is_some() || m.probe.dst.group.is_some());
                prop_assert_eq!(m.probe.src.ip.is_ipv4(), m.probe.dst.ip.is_ipv4());
                prop_assert!(m.probe.packet.fits_family(m.probe.src.ip.is_ipv4()));
            }
        }
    }

    proptest! {
        /// The rule index and the flow index decide every probe exactly as the scans do,
        /// deciding rule and flows included.
        #[test]
        fn indexes_decide_like_the_scans(
            i in intent(),
            extra in proptest::collection::vec(random_rule(), 0..6),
            shuffle in any::<u64>(),
        ) {
            let mut pol = faithful(&i, &[]);
            pol.rules.extend(extra);
            // move rules around so indices of equal-priority rules interleave
            let n = pol.rules.len();
            if n > 1 {
                pol.rules.swap(shuffle as usize % n, (shuffle >> 32) as usize % n);
            }
            let index = pol.index();
            let allowances = vec![crate::testkit::allow(
                "lb", crate::testkit::net("lb", &["203.0.113.0/24"]), crate::testkit::g("web"), &["tcp/80"],
            )];
            let oracle = crate::oracle::IntentIndex::new(&i, &allowances);
            let hosts = crate::reference::host_classes(&i, &allowances, &pol);
            let packets = packet_classes(&traffic_of(&i, &[], &pol));
            for s in hosts.iter().step_by(3) {
                for d in hosts.iter().step_by(2) {
                    for pk in packets.iter().step_by(5) {
                        let p = Probe { src: s.clone(), dst: d.clone(), packet: *pk };
                        prop_assert_eq!(index.evaluate(&p), pol.evaluate(&p), "{}", p);
                        prop_assert_eq!(oracle.judge(&p), judge(&i, &allowances, &p), "{}", p);
                    }
                }
            }
        }
    }

    #[test]
    fn region_counting_stops_at_the_cap_and_says_so() {
        // 300 flows on 300 ports and no rule at all: one missing region per flow at least
        let flows = (0..300u16)
            .map(|i| {
                crate::testkit::allow(
                    &format!("f{i}"),
                    crate::testkit::net("internet", &["0.0.0.0/0"]),
                    crate::testkit::g("web"),
                    &[&format!("tcp/{}", 1000 + i)],
                )
            })
            .collect();
        let i = DeploymentIntent {
            deployment: "t".into(),
            provider: ProviderKind::Gcp,
            settings: Default::default(),
            space: addrs(&["10.0.0.0/16"]),
            groups: [("web".to_string(), group("web"))].into_iter().collect(),
            flows,
        };
        let r = check_exhaustive(&i, &[], &EvalPolicy::default(), 3);
        assert_eq!(r.mismatch_count, REGIONS_COUNTED);
        assert!(r.mismatch_count_capped);
        assert_eq!(r.mismatches.len(), 3);
        // under the cap the count is complete
        let few = DeploymentIntent {
            flows: i.flows[..5].to_vec(),
            ..i.clone()
        };
        let r = check_exhaustive(&few, &[], &EvalPolicy::default(), 3);
        assert!(!r.mismatch_count_capped);
        assert!(
            r.mismatch_count >= 5,
            "at least one region per missing flow"
        );
    }

    #[test]
    fn faithful_translation_is_proven_and_a_dropped_deny_is_found() {
        let i = DeploymentIntent {
            deployment: "t".into(),
            provider: ProviderKind::Gcp,
            settings: Default::default(),
            space: addrs(&["10.0.0.0/16"]),
            groups: GROUPS.iter().map(|n| (n.to_string(), group(n))).collect(),
            flows: vec![
                crate::testkit::allow(
                    "web-in",
                    crate::testkit::net("internet", &["0.0.0.0/0"]),
                    crate::testkit::g("web"),
                    &["tcp/443"],
                ),
                crate::testkit::deny(
                    "no-corp",
                    crate::testkit::net("corp", &["203.0.113.0/24"]),
                    crate::testkit::g("web"),
                    &["any"],
                ),
            ],
        };
        let mut pol = faithful(&i, &[]);
        let r = check_exhaustive(&i, &[], &pol, 5);
        assert_eq!(r.mismatch_count, 0, "{:?}", r.mismatches);
        assert_eq!(r.classes, check_enumerating(&i, &[], &pol, 0).classes);
        pol.rules.retain(|r| r.action == Action::Allow);
        let r = check_exhaustive(&i, &[], &pol, 5);
        assert_eq!(r.mismatch_count, 1, "one region: corp -> web tcp/443");
        let m = &r.mismatches[0];
        assert_eq!(m.probe.to_string(), "203.0.113.0 -> web[10.0.0.0] tcp/443");
        assert_eq!(m.native_rule.as_deref(), Some("in0"));
        assert_eq!(m.oracle.flows, vec!["no-corp"]);
    }
}
