//! The compiled decision structure flow-log replay judges records with.
//!
//! Judging a record with the oracle (`judge`, a scan of every flow with string compares) and
//! with the lowered rules (`EvalPolicy::evaluate`, a scan of every rule) costs microseconds;
//! logs have millions of records. But a verdict depends on a record only through classes:
//! - an address through the elementary interval it falls in, cut at every boundary of every
//!   address set a target mentions (spaces, declared group ranges, network endpoints, rule
//!   ranges). Inside one interval every set membership is the same, and so is the group the
//!   address is attributed to (declared ranges are among the cuts);
//! - a packet through its protocol and the elementary port interval (cut at every port set
//!   a token of that protocol names) or the ICMP type/code when some token names them.
//!
//! So an address is classified by one binary search over sorted cut points (behind a small
//! cache of recent IPv4 addresses) and attributed by one array read; a port by one table
//! read; each target's rules and flows become class sets (sorted class-id intervals). Flows
//! are listed per packet class. Rules are listed per direction and protected group (a rule
//! under each group its protected side holds classes of, so the index grows with the rules,
//! not with rules x packet classes), in precedence order; the sublist of a (direction, group,
//! packet class) that records hit is built on first use and kept, up to a bounded total, so a
//! verdict walks only the rules that can match. A rule with an unknown match (its fields an
//! upper bound) is taken as matching or not: a direction's verdict is then one of allow,
//! deny, or either (`Maybe::Unknown`), and a record it decides is unverifiable;
//! and a record's outcome per (target, source class, destination class, packet class, reply
//! class) is memoised in a bounded direct-mapped cache, since logs repeat the same
//! conversations. Memory follows the estate (classes, rules), never the log.
//!
//! The property tests below hold the verdicts equal to `judge` and `EvalPolicy::evaluate` on
//! random intents and rule sets; those in `flowlog.rs` hold the whole replay equal to the
//! replay before this structure (`reference.rs`).

use intentwall_contract::net::Intervals;
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Direction, Endpoint, EvalPolicy, FlowIntent, HostMatch,
    Packet, Traffic,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
#[cfg(test)]
use std::net::{Ipv4Addr, Ipv6Addr};

/// What one target makes of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A member of the target's declared group with this index (into `Target::declared`).
    Member(u32),
    /// Inside the target's space but in no declared range: a member we cannot name.
    Unknown,
    /// Neither: a host outside the target's workloads.
    External,
}

/// A rule in a list of one (direction, group, packet class), with what a walk tests inline.
#[derive(Debug, Clone, Copy)]
struct Entry {
    rule: u32,
    /// The peer side's one class range, when `PEER_ONE`.
    lo: u32,
    hi: u32,
    flags: u8,
}

/// The rule allows.
const ALLOW: u8 = 4;
/// The rule's match is unknown.
const UNKNOWN: u8 = 8;

/// A multiplicative hash for the small integer keys of `TargetIndex::lists` (SipHash costs
/// more than the lookup).
#[derive(Debug, Clone, Copy, Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type BuildKeyHasher = std::hash::BuildHasherDefault<KeyHasher>;

/// A (direction, group, packet class) list, as built on first use.
#[derive(Debug, Clone)]
enum List {
    /// Rules in precedence order, walked to the first match.
    Walk(Box<[Entry]>),
    /// When every rule holds the whole group on its protected side, has one peer range and
    /// a known match, the verdict depends on the peer class alone: sorted cut points (from
    /// 0) and the verdict on each interval between them.
    Painted(Box<[u32]>, Box<[bool]>),
}

/// Paint a long list of simple rules (see `List::Painted`): every peer interval gets the
/// action of the first rule (in precedence order) covering it, deny when none does.
/// Verdict intervals: the first peer class of each interval, and its verdict.
type Painted = (Box<[u32]>, Box<[bool]>);

fn paint(entries: &[Entry]) -> Option<Painted> {
    let simple = LOCAL_ALL | PEER_ONE;
    // (short lists walk faster; the tests paint from two rules, to cover painting)
    if entries.len() < if cfg!(test) { 2 } else { 8 }
        || entries
            .iter()
            .any(|e| e.flags & simple != simple || e.flags & UNKNOWN != 0)
    {
        return None;
    }
    let mut cuts: Vec<u32> = vec![0];
    for e in entries {
        cuts.push(e.lo);
        cuts.push(e.hi.saturating_add(1));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let m = cuts.len();
    // per interval: unpainted, deny, allow
    let mut val = vec![0u8; m];
    // the first unpainted interval at or after i (path-compressed)
    let mut next: Vec<u32> = (0..=m as u32).collect();
    fn find(next: &mut [u32], mut i: u32) -> u32 {
        let mut root = i;
        while next[root as usize] != root {
            root = next[root as usize];
        }
        while next[i as usize] != root {
            let n = next[i as usize];
            next[i as usize] = root;
            i = n;
        }
        root
    }
    for e in entries {
        let a = cuts.partition_point(|&c| c < e.lo) as u32;
        // the interval starting at hi + 1 (past the last when hi is the largest class)
        let b = cuts.partition_point(|&c| c < e.hi.saturating_add(1)) as u32;
        let b = if e.hi == u32::MAX { m as u32 } else { b };
        let mut i = find(&mut next, a);
        while i < b {
            val[i as usize] = if e.flags & ALLOW != 0 { 2 } else { 1 };
            next[i as usize] = i + 1;
            i = find(&mut next, i + 1);
        }
    }
    let (mut out_cuts, mut out_val): (Vec<u32>, Vec<bool>) = (Vec::new(), Vec::new());
    for (i, &c) in cuts.iter().enumerate() {
        let v = val[i] == 2;
        if out_val.last() != Some(&v) {
            out_cuts.push(c);
            out_val.push(v);
        }
    }
    Some((out_cuts.into(), out_val.into()))
}

/// The rule's protected side holds every class of the group.
const LOCAL_ALL: u8 = 1;
/// The rule's peer side is the one range `lo..=hi`.
const PEER_ONE: u8 = 2;

/// What the compiler needs of one target.
pub struct Target<'a> {
    /// The resolved intent.
    pub intent: &'a DeploymentIntent,
    /// The provider's platform allowances (extra allow flows).
    pub allowances: &'a [FlowIntent],
    /// The native rules the target would hold, lowered.
    pub policy: &'a EvalPolicy,
    /// Leaf groups with declared addresses, in attribution order (the first range wins).
    pub declared: &'a [(&'a str, AddrSet)],
}

/// Elementary address intervals of both families, as sorted cut points (each family's list
/// starts at 0). Class ids: IPv4 intervals first, then IPv6.
#[derive(Debug, Clone)]
pub struct AddrClasses {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl AddrClasses {
    fn new<'a>(sets: impl Iterator<Item = &'a AddrSet>) -> Self {
        let (mut v4, mut v6) = (vec![0u32], vec![0u128]);
        for s in sets {
            v4.extend(s.v4.boundaries());
            v6.extend(s.v6.boundaries());
        }
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        AddrClasses { v4, v6 }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn of_v4(&self, a: u32) -> u32 {
        // cuts[0] == 0 <= a, so the count is at least 1
        (self.v4.partition_point(|&c| c <= a) - 1) as u32
    }

    fn of_v6(&self, a: u128) -> u32 {
        (self.v4.len() + self.v6.partition_point(|&c| c <= a) - 1) as u32
    }

    /// The class of an address: one binary search.
    pub fn of(&self, ip: IpAddr) -> u32 {
        match ip {
            IpAddr::V4(a) => self.of_v4(u32::from(a)),
            IpAddr::V6(a) => self.of_v6(u128::from(a)),
        }
    }

    /// The class ids of a set, as ranges (every boundary of the set is a cut, so its
    /// intervals map onto whole classes).
    fn ranges_of(&self, s: &AddrSet) -> impl Iterator<Item = (u32, u32)> + '_ {
        let v4: Vec<(u32, u32)> =
            s.v4.ranges()
                .iter()
                .map(|&(a, b)| (self.of_v4(a), self.of_v4(b)))
                .collect();
        let v6: Vec<(u32, u32)> =
            s.v6.ranges()
                .iter()
                .map(|&(a, b)| (self.of_v6(a), self.of_v6(b)))
                .collect();
        v4.into_iter().chain(v6)
    }

    /// The first address of a class.
    #[cfg(test)]
    pub fn rep(&self, c: u32) -> IpAddr {
        let c = c as usize;
        if c < self.v4.len() {
            IpAddr::V4(Ipv4Addr::from(self.v4[c]))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.v6[c - self.v4.len()]))
        }
    }
}

/// How one protocol's packets split into classes.
#[derive(Debug, Clone)]
enum ProtoKind {
    /// tcp/udp/sctp: each port's class (relative to the protocol's base), one read instead
    /// of a binary search over the port cut points (128 KiB per protocol).
    Ported(Box<[u16]>),
    /// icmp/icmpv6: each type maps to a slot (named types, then one for all others); each
    /// slot maps codes to classes (named codes, then one for all others).
    Icmp {
        slot_of_type: Box<[u16; 256]>,
        slots: Vec<IcmpSlot>,
    },
    /// Any other protocol: one class.
    Whole,
}

#[derive(Debug, Clone)]
struct IcmpSlot {
    /// The slot's first class, relative to the protocol's base.
    offset: u32,
    class_of_code: Box<[u16; 256]>,
}

/// Packet classes of every protocol, with dense ids and one representative packet each.
#[derive(Debug, Clone)]
pub struct PacketClasses {
    /// Per protocol: its first class id (protocols no token names share one class).
    base: [u32; 256],
    /// Per protocol: how many classes it has.
    count: [u32; 256],
    kind: Vec<ProtoKind>,
    /// One packet per class id.
    reps: Vec<Packet>,
}

impl PacketClasses {
    fn new(traffic: &[&Traffic]) -> Self {
        let mut named = [false; 256];
        for t in traffic {
            if let Some(p) = t.proto {
                named[p as usize] = true;
            }
        }
        let mut base = [0u32; 256];
        let mut count = [1u32; 256];
        let mut kind = Vec::with_capacity(256);
        let mut reps: Vec<Packet> = Vec::new();
        let mut shared: Option<u32> = None;
        for p in 0..=255u8 {
            let of_p = || traffic.iter().filter(move |t| t.proto == Some(p));
            if proto::has_ports(p) {
                let mut cuts: Vec<u16> = vec![0];
                for t in of_p() {
                    cuts.extend(t.ports.boundaries());
                }
                cuts.sort_unstable();
                cuts.dedup();
                base[p as usize] = reps.len() as u32;
                reps.extend(cuts.iter().map(|&c| Packet::ported(p, c)));
                count[p as usize] = cuts.len() as u32;
                let mut class_of_port = vec![0u16; 1 << 16].into_boxed_slice();
                for (i, &c) in cuts.iter().enumerate() {
                    let end = cuts.get(i + 1).map_or(1 << 16, |&n| n as usize);
                    class_of_port[c as usize..end].fill(i as u16);
                }
                kind.push(ProtoKind::Ported(class_of_port));
            } else if proto::is_icmp(p) {
                base[p as usize] = reps.len() as u32;
                let mut types = [false; 256];
                for t in of_p() {
                    if let Some(ty) = t.icmp_type {
                        types[ty as usize] = true;
                    }
                }
                let spare_type = (0..=255u8).find(|&ty| !types[ty as usize]);
                let mut slot_of_type = Box::new([0u16; 256]);
                let mut slots = Vec::new();
                let slot_types = (0..=255u8)
                    .filter(|&ty| types[ty as usize])
                    .chain(spare_type);
                for ty in slot_types {
                    let slot = slots.len() as u16;
                    if types[ty as usize] {
                        slot_of_type[ty as usize] = slot;
                    } else {
                        // the spare slot stands for every type no token names
                        for (x, s) in slot_of_type.iter_mut().enumerate() {
                            if !types[x] {
                                *s = slot;
                            }
                        }
                    }
                    // codes a token names for this type (or for any type)
                    let mut codes = [false; 256];
                    for t in of_p() {
                        let fits = t.icmp_type.is_none_or(|x| x == ty);
                        if let (true, Some(c)) = (fits, t.icmp_code) {
                            codes[c as usize] = true;
                        }
                    }
                    let spare_code = (0..=255u8).find(|&c| !codes[c as usize]);
                    let offset = reps.len() as u32 - base[p as usize];
                    let mut class_of_code = Box::new([0u16; 256]);
                    let classes = (0..=255u8).filter(|&c| codes[c as usize]).chain(spare_code);
                    for (n, c) in classes.enumerate() {
                        if codes[c as usize] {
                            class_of_code[c as usize] = n as u16;
                        } else {
                            // the spare class stands for every code no token names
                            for (x, k) in class_of_code.iter_mut().enumerate() {
                                if !codes[x] {
                                    *k = n as u16;
                                }
                            }
                        }
                        reps.push(Packet::icmp(p, ty, c));
                    }
                    slots.push(IcmpSlot {
                        offset,
                        class_of_code,
                    });
                }
                count[p as usize] = reps.len() as u32 - base[p as usize];
                kind.push(ProtoKind::Icmp {
                    slot_of_type,
                    slots,
                });
            } else if named[p as usize] {
                base[p as usize] = reps.len() as u32;
                reps.push(Packet::ported(p, 0));
                kind.push(ProtoKind::Whole);
            } else {
                // no token names it: every such protocol is matched alike (by `any` only)
                base[p as usize] = *shared.get_or_insert_with(|| {
                    reps.push(Packet::ported(p, 0));
                    reps.len() as u32 - 1
                });
                kind.push(ProtoKind::Whole);
            }
        }
        PacketClasses {
            base,
            count,
            kind,
            reps,
        }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.reps.len()
    }

    /// The class of a packet.
    pub fn of(&self, p: &Packet) -> u32 {
        let base = self.base[p.proto as usize];
        match &self.kind[p.proto as usize] {
            ProtoKind::Ported(class_of_port) => base + class_of_port[p.port as usize] as u32,
            ProtoKind::Icmp {
                slot_of_type,
                slots,
            } => {
                let s = &slots[slot_of_type[p.icmp_type as usize] as usize];
                base + s.offset + s.class_of_code[p.icmp_code as usize] as u32
            }
            ProtoKind::Whole => base,
        }
    }

    /// The classes a token matches, in id order.
    fn matched_by<'a>(&'a self, t: &'a Traffic) -> impl Iterator<Item = u32> + 'a {
        let range = match t.proto {
            None => 0..self.reps.len() as u32,
            Some(p) => {
                let b = self.base[p as usize];
                b..b + self.count[p as usize]
            }
        };
        // classes are homogeneous, so the representative decides for its class
        range.filter(move |&k| t.matches(&self.reps[k as usize]))
    }
}

/// Per packet class, a list of indices (compressed rows).
#[derive(Debug, Clone, Default)]
struct PerClass {
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl PerClass {
    /// From (item, classes it is listed under), items in the order they are to be listed.
    fn build(classes: usize, entries: &[(u32, Vec<u32>)]) -> Self {
        let mut counts = vec![0u32; classes + 1];
        for (_, ks) in entries {
            for &k in ks {
                counts[k as usize + 1] += 1;
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut next = counts.clone();
        let mut items = vec![0u32; counts[classes] as usize];
        for (item, ks) in entries {
            for &k in ks {
                items[next[k as usize] as usize] = *item;
                next[k as usize] += 1;
            }
        }
        PerClass {
            starts: counts,
            items,
        }
    }

    fn get(&self, k: u32) -> &[u32] {
        &self.items[self.starts[k as usize] as usize..self.starts[k as usize + 1] as usize]
    }
}

/// A native rule, compiled: which address classes its two sides match.
#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    /// The model does not know exactly what the rule matches (`EvalRule::unknown`): the
    /// sets here are an upper bound, so the rule may or may not match inside them.
    unknown: bool,
    local: Intervals<u32>,
    peer: Intervals<u32>,
    /// The packet classes its traffic matches.
    packets: Intervals<u32>,
}

/// A direction's decision when rules with an unknown match are in play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maybe {
    /// Decided, whatever the unknown rules match.
    Is(bool),
    /// Allowed if some unknown rule matches (or does not), denied otherwise.
    Unknown,
}

impl Maybe {
    fn and(self, o: Maybe) -> Maybe {
        match (self, o) {
            (Maybe::Is(false), _) | (_, Maybe::Is(false)) => Maybe::Is(false),
            (Maybe::Is(true), Maybe::Is(true)) => Maybe::Is(true),
            _ => Maybe::Unknown,
        }
    }

    fn or(self, o: Maybe) -> Maybe {
        match (self, o) {
            (Maybe::Is(true), _) | (_, Maybe::Is(true)) => Maybe::Is(true),
            (Maybe::Is(false), Maybe::Is(false)) => Maybe::Is(false),
            _ => Maybe::Unknown,
        }
    }

    /// Known to allow.
    pub fn allowed(self) -> bool {
        self == Maybe::Is(true)
    }
}

/// An intent flow, compiled.
#[derive(Debug, Clone)]
struct Flow {
    from: Intervals<u32>,
    to: Intervals<u32>,
    /// The ends are groups (the oracle's "flow from/to the member's group" tests).
    from_group: bool,
    to_group: bool,
}

/// One target, compiled.
#[derive(Debug, Clone)]
pub struct TargetIndex {
    /// Per address class: what the target makes of it.
    side: Vec<Side>,
    /// Per declared group: `egress: restricted`.
    restricted: Vec<bool>,
    rules: Vec<Rule>,
    /// Per direction (egress, ingress) and declared group, the rules whose protected side
    /// holds some class of the group, in precedence order (lowest priority number first,
    /// deny before allow at a tie). A rule is listed under the groups it protects, so the
    /// index follows the rules (not rules x classes).
    by_group: [Vec<Vec<u32>>; 2],
    /// Lists per (direction and group, packet class) that records hit, built on first use
    /// from `by_group` and kept while their total stays under `LISTS_CAP` entries.
    lists: HashMap<(u32, u32), List, BuildKeyHasher>,
    listed: usize,
    /// Per declared group, its classes.
    group_sets: Vec<Intervals<u32>>,
    flows: Vec<Flow>,
    /// Per packet class, the deny / allow flows whose traffic matches it.
    denies: PerClass,
    allows: PerClass,
}

impl TargetIndex {
    /// What the target makes of an address class.
    pub fn side(&self, c: u32) -> Side {
        self.side[c as usize]
    }

    fn member(&self, c: u32) -> Option<u32> {
        match self.side[c as usize] {
            Side::Member(g) => Some(g),
            _ => None,
        }
    }

    /// One direction's decision at a member `local` (of group `g`): the first matching rule
    /// in precedence order; none denies. A rule with an unknown match before the first
    /// known one may be the first match or not, so its action is one possible outcome.
    fn decide(&mut self, dir: usize, g: u32, k: u32, local: u32, peer: u32) -> Maybe {
        let key = (g << 1 | dir as u32, k);
        if !self.lists.contains_key(&key) {
            let rules = &self.rules;
            let group = &self.group_sets[g as usize];
            let list: Box<[Entry]> = self.by_group[dir][g as usize]
                .iter()
                .copied()
                .filter(|&i| rules[i as usize].packets.contains(k))
                .map(|i| {
                    let r = &rules[i as usize];
                    let mut flags = 0;
                    if r.allow {
                        flags |= ALLOW;
                    }
                    if r.unknown {
                        flags |= UNKNOWN;
                    }
                    if group.is_subset(&r.local) {
                        flags |= LOCAL_ALL;
                    }
                    let (mut lo, mut hi) = (0, 0);
                    if let [(a, b)] = r.peer.ranges() {
                        flags |= PEER_ONE;
                        (lo, hi) = (*a, *b);
                    }
                    Entry {
                        rule: i,
                        lo,
                        hi,
                        flags,
                    }
                })
                .collect();
            let list = match paint(&list) {
                Some((cuts, allow)) => List::Painted(cuts, allow),
                None => List::Walk(list),
            };
            let len = match &list {
                List::Walk(l) => l.len(),
                List::Painted(c, _) => c.len(),
            };
            if self.listed + len > LISTS_CAP {
                self.lists.clear();
                self.listed = 0;
            }
            self.listed += len;
            self.lists.insert(key, list);
        }
        let list = match &self.lists[&key] {
            List::Painted(cuts, allow) => {
                // cuts[0] == 0 <= peer
                return Maybe::Is(allow[cuts.partition_point(|&c| c <= peer) - 1]);
            }
            List::Walk(l) => l,
        };
        let (mut allow, mut deny, mut known) = (false, false, false);
        for e in list.iter() {
            let r = &self.rules[e.rule as usize];
            let peer_ok = if e.flags & PEER_ONE != 0 {
                e.lo <= peer && peer <= e.hi
            } else {
                r.peer.contains(peer)
            };
            if peer_ok && (e.flags & LOCAL_ALL != 0 || r.local.contains(local)) {
                if r.allow {
                    allow = true;
                } else {
                    deny = true;
                }
                if !r.unknown {
                    known = true;
                    break;
                }
                if allow && deny {
                    break;
                }
            }
        }
        // every unknown rule on the way may match nothing: then a later rule, or the
        // default (deny) when no known rule matches
        if !known {
            deny = true;
        }
        match (allow, deny) {
            (true, true) => Maybe::Unknown,
            (a, _) => Maybe::Is(a),
        }
    }

    /// The native verdict (as `EvalPolicy::evaluate`, rules with an unknown match taken as
    /// possibly matching or not): egress at a member source, ingress at a member destination.
    fn native(&mut self, s: u32, d: u32, k: u32) -> Maybe {
        let e = match self.member(s) {
            None => Maybe::Is(true),
            Some(g) => self.decide(0, g, k, s, d),
        };
        if e == Maybe::Is(false) {
            return e;
        }
        let i = match self.member(d) {
            None => Maybe::Is(true),
            Some(g) => self.decide(1, g, k, d, s),
        };
        e.and(i)
    }

    /// The intent's verdict (as `oracle::judge`): a matching deny wins; a restricted member
    /// source needs an allow from its group; a member destination needs an allow to its group.
    fn oracle(&self, s: u32, d: u32, k: u32) -> bool {
        let matches = |f: &Flow| f.from.contains(s) && f.to.contains(d);
        if self
            .denies
            .get(k)
            .iter()
            .any(|&i| matches(&self.flows[i as usize]))
        {
            return false;
        }
        let allowed_by = |want: fn(&Flow) -> bool| {
            self.allows.get(k).iter().any(|&i| {
                let f = &self.flows[i as usize];
                want(f) && matches(f)
            })
        };
        // a matching flow with a group end names exactly the member's group
        if self.member(s).is_some_and(|g| self.restricted[g as usize])
            && !allowed_by(|f| f.from_group)
        {
            return false;
        }
        if self.member(d).is_some() && !allowed_by(|f| f.to_group) {
            return false;
        }
        true
    }
}

/// Verdicts of one packet between two address classes on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdicts {
    /// The intent allows it.
    pub oracle: bool,
    /// The native rules allow it (or it depends on rules with an unknown match).
    pub native: Maybe,
}

/// Every target of a replay, compiled over shared address and packet classes.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Address classes.
    pub addrs: AddrClasses,
    /// Packet classes.
    pub packets: PacketClasses,
    /// Per target, in the order given.
    pub targets: Vec<TargetIndex>,
    memo: Memo,
    /// Recent IPv4 addresses and their classes, direct-mapped: logs name the same hosts
    /// over and over, and a hit is cheaper than the binary search.
    v4_seen: Vec<(u32, u32)>,
}

impl Compiled {
    /// Compile targets. The cost follows the size of the rules and flows, not of any log.
    pub fn new(targets: &[Target<'_>]) -> Self {
        let mut addr_sets: Vec<&AddrSet> = Vec::new();
        let mut traffic: Vec<&Traffic> = Vec::new();
        for t in targets {
            addr_sets.push(&t.intent.space);
            addr_sets.extend(t.declared.iter().map(|(_, a)| a));
            for f in t.intent.flows.iter().chain(t.allowances) {
                for e in [&f.from, &f.to] {
                    if let Endpoint::Network { addrs, .. } = e {
                        addr_sets.push(addrs);
                    }
                }
                traffic.extend(&f.traffic);
            }
            for r in &t.policy.rules {
                addr_sets.push(&r.local.addrs);
                addr_sets.push(&r.peer.addrs);
                traffic.extend(&r.traffic);
            }
        }
        let addrs = AddrClasses::new(addr_sets.into_iter());
        let packets = PacketClasses::new(&traffic);
        let targets = targets
            .iter()
            .map(|t| compile_target(&addrs, &packets, t))
            .collect();
        Compiled {
            addrs,
            packets,
            targets,
            memo: Memo::new(MEMO_BITS),
            v4_seen: vec![(0, u32::MAX); 1 << V4_SEEN_BITS],
        }
    }

    /// The class of an address (as `AddrClasses::of`).
    pub fn addr_class(&mut self, ip: IpAddr) -> u32 {
        let IpAddr::V4(a) = ip else {
            return self.addrs.of(ip);
        };
        let a = u32::from(a);
        let slot = &mut self.v4_seen[(a.wrapping_mul(0x9e37_79b1) >> (32 - V4_SEEN_BITS)) as usize];
        if slot.0 != a || slot.1 == u32::MAX {
            *slot = (a, self.addrs.of_v4(a));
        }
        slot.1
    }

    /// The verdicts of packet class `k` from address class `s` to `d` on target `t`.
    pub fn verdicts(&mut self, t: usize, s: u32, d: u32, k: u32) -> Verdicts {
        let ix = &mut self.targets[t];
        Verdicts {
            oracle: ix.oracle(s, d, k),
            native: ix.native(s, d, k),
        }
    }

    /// A record's outcome on target `t` (memoised): its packet (class `k`, from `s` to `d`)
    /// allowed as sent, or else as the reply (class `rk`, from `d` to `s`) of a flow the
    /// other way, on each side.
    pub fn outcome(&mut self, t: usize, s: u32, d: u32, k: u32, rk: Option<u32>) -> Outcome {
        let key = [t as u32, s, d, k, rk.unwrap_or(u32::MAX)];
        if let Some(o) = self.memo.get(&key) {
            return o;
        }
        let fwd = self.verdicts(t, s, d, k);
        let rev = match (fwd.oracle && fwd.native.allowed(), rk) {
            (false, Some(rk)) => self.verdicts(t, d, s, rk),
            _ => Verdicts {
                oracle: false,
                native: Maybe::Is(false),
            },
        };
        let native = fwd.native.or(rev.native);
        let o = Outcome {
            oracle: fwd.oracle || rev.oracle,
            oracle_reply: !fwd.oracle && rev.oracle,
            native: native.allowed(),
            native_reply: native.allowed() && !fwd.native.allowed(),
            unverifiable: native == Maybe::Unknown,
        };
        self.memo.put(key, o);
        o
    }
}

/// A record's verdicts, replies counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The intent allows it.
    pub oracle: bool,
    /// ... only as a reply.
    pub oracle_reply: bool,
    /// The native rules allow it.
    pub native: bool,
    /// ... only as a reply.
    pub native_reply: bool,
    /// The native verdict depends on what rules with an unknown match really match (then
    /// `native` and `native_reply` are false).
    pub unverifiable: bool,
}

fn compile_target<'a>(addrs: &AddrClasses, packets: &PacketClasses, t: &Target<'a>) -> TargetIndex {
    // attribution: the first declared group whose range holds a class, else space or outside
    let mut side = vec![Side::External; addrs.len()];
    for (gi, (_, a)) in t.declared.iter().enumerate() {
        for (lo, hi) in addrs.ranges_of(a) {
            for s in &mut side[lo as usize..=hi as usize] {
                if *s == Side::External {
                    *s = Side::Member(gi as u32);
                }
            }
        }
    }
    for (lo, hi) in addrs.ranges_of(&t.intent.space) {
        for s in &mut side[lo as usize..=hi as usize] {
            if *s == Side::External {
                *s = Side::Unknown;
            }
        }
    }
    // each declared group's classes, as runs
    let mut of_group: Vec<Vec<(u32, u32)>> = vec![Vec::new(); t.declared.len()];
    for (c, s) in side.iter().enumerate() {
        if let Side::Member(g) = *s {
            let runs = &mut of_group[g as usize];
            match runs.last_mut() {
                Some(last) if last.1 + 1 == c as u32 => last.1 = c as u32,
                _ => runs.push((c as u32, c as u32)),
            }
        }
    }
    let group_index: BTreeMap<&str, usize> = t
        .declared
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i))
        .collect();
    let group_classes = |name: &str| -> Vec<(u32, u32)> {
        group_index
            .get(name)
            .map(|&i| of_group[i].clone())
            .unwrap_or_default()
    };
    let host_set = |m: &HostMatch| -> Intervals<u32> {
        let mut v: Vec<(u32, u32)> = addrs.ranges_of(&m.addrs).collect();
        for g in &m.groups {
            v.extend(group_classes(g));
        }
        Intervals::from_ranges(v)
    };
    let end_set = |e: &Endpoint| -> Intervals<u32> {
        match e {
            Endpoint::Group(g) => Intervals::from_ranges(group_classes(g)),
            Endpoint::Network { addrs: a, .. } => Intervals::from_ranges(addrs.ranges_of(a)),
        }
    };
    // tokens repeat across rules (a service's tokens in every rule that names it)
    let mut token_classes: HashMap<&Traffic, Vec<u32>> = HashMap::new();
    let mut classes_of = |traffic: &'a [Traffic]| -> Vec<u32> {
        let mut ks: Vec<u32> = Vec::new();
        for t in traffic {
            ks.extend(
                token_classes
                    .entry(t)
                    .or_insert_with(|| packets.matched_by(t).collect())
                    .iter(),
            );
        }
        ks.sort_unstable();
        ks.dedup();
        ks
    };
    let runs_of = |ks: &[u32]| -> Intervals<u32> {
        let mut v: Vec<(u32, u32)> = Vec::new();
        for &k in ks {
            match v.last_mut() {
                Some(last) if last.1 + 1 == k => last.1 = k,
                _ => v.push((k, k)),
            }
        }
        Intervals::from_ranges(v)
    };

    let rules: Vec<Rule> = t
        .policy
        .rules
        .iter()
        .map(|r| Rule {
            allow: r.action == Action::Allow,
            unknown: r.unknown.is_some(),
            local: host_set(&r.local),
            peer: host_set(&r.peer),
            packets: runs_of(&classes_of(&r.traffic)),
        })
        .collect();
    // every group's class runs, by first class (runs of different groups are disjoint)
    let mut runs: Vec<(u32, u32, u32)> = of_group
        .iter()
        .enumerate()
        .flat_map(|(g, rs)| rs.iter().map(move |&(a, b)| (a, b, g as u32)))
        .collect();
    runs.sort_unstable();
    let by_dir = |dir: Direction| -> Vec<Vec<u32>> {
        let mut order: Vec<usize> = (0..t.policy.rules.len())
            .filter(|&i| t.policy.rules[i].direction == dir)
            .collect();
        // the winner of `EvalPolicy::decide`: lowest priority, deny at a tie, then index
        order.sort_by_key(|&i| {
            let r = &t.policy.rules[i];
            (r.priority, r.action == Action::Allow, i)
        });
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); t.declared.len()];
        for i in order {
            for &(lo, hi) in rules[i].local.ranges() {
                // the runs that end at or after `lo`, while they start at or before `hi`
                let first = runs.partition_point(|&(_, b, _)| b < lo);
                for &(a, _, g) in &runs[first..] {
                    if a > hi {
                        break;
                    }
                    let l = &mut lists[g as usize];
                    if l.last() != Some(&(i as u32)) {
                        l.push(i as u32);
                    }
                }
            }
        }
        lists
    };
    let by_group = [by_dir(Direction::Egress), by_dir(Direction::Ingress)];

    let all_flows: Vec<&FlowIntent> = t.intent.flows.iter().chain(t.allowances).collect();
    let flows: Vec<Flow> = all_flows
        .iter()
        .map(|f| Flow {
            from: end_set(&f.from),
            to: end_set(&f.to),
            from_group: f.from.group().is_some(),
            to_group: f.to.group().is_some(),
        })
        .collect();
    let mut by_action = |a: Action| -> PerClass {
        let entries: Vec<(u32, Vec<u32>)> = all_flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.action == a)
            .map(|(i, f)| (i as u32, classes_of(&f.traffic)))
            .collect();
        PerClass::build(packets.len(), &entries)
    };
    TargetIndex {
        side,
        restricted: t
            .declared
            .iter()
            .map(|(n, _)| t.intent.groups.get(*n).is_some_and(|g| g.egress_restricted))
            .collect(),
        rules,
        by_group,
        lists: HashMap::default(),
        listed: 0,
        group_sets: of_group
            .iter()
            .map(|rs| Intervals::from_ranges(rs.iter().copied()))
            .collect(),
        flows,
        denies: by_action(Action::Deny),
        allows: by_action(Action::Allow),
    }
}

/// At most this many rule entries (16 bytes each: 64 MiB) in the lists built on first use;
/// past it they are dropped and rebuilt as records need them.
const LISTS_CAP: usize = 1 << 22;

/// 4096 remembered IPv4 addresses (32 KiB).
const V4_SEEN_BITS: u32 = 12;

/// 2^16 memo entries (1.5 MiB): enough for the conversations of a busy estate; a collision
/// only costs a recomputation.
const MEMO_BITS: u32 = 16;

/// A bounded memo: a direct-mapped cache where a colliding key evicts the older one. Memory
/// is fixed whatever the log holds; a miss costs one walk of the class-indexed lists.
#[derive(Debug, Clone)]
struct Memo {
    /// Key and value side by side: one cache line per lookup.
    slots: Vec<([u32; 5], Outcome)>,
    shift: u32,
}

/// No target has this index: marks an empty slot.
const EMPTY: [u32; 5] = [u32::MAX; 5];

impl Memo {
    fn new(bits: u32) -> Self {
        let none = Outcome {
            oracle: false,
            oracle_reply: false,
            native: false,
            native_reply: false,
            unverifiable: false,
        };
        Memo {
            slots: vec![(EMPTY, none); 1 << bits],
            shift: 64 - bits,
        }
    }

    fn slot(&self, k: &[u32; 5]) -> usize {
        let a = (k[1] as u64) << 32 | k[2] as u64;
        let b = (k[3] as u64) << 32 | k[4] as u64;
        let h = (a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b ^ k[0] as u64)
            .wrapping_mul(0xff51_afd7_ed55_8ccd);
        (h >> self.shift) as usize
    }

    fn get(&self, k: &[u32; 5]) -> Option<Outcome> {
        let (key, v) = &self.slots[self.slot(k)];
        (key == k).then_some(*v)
    }

    fn put(&mut self, k: [u32; 5], v: Outcome) {
        let i = self.slot(&k);
        self.slots[i] = (k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intentwall_contract::eval::UNKNOWN_COMBINATIONS;
    use intentwall_contract::oracle::judge;
    use intentwall_contract::{EvalRule, GroupIntent, Host, Probe};
    use proptest::prelude::*;

    /// Deterministic scenario builder: proptest draws the seed, the scenario follows from it.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len())]
        }
    }

    /// Overlapping prefixes of both families, nested and disjoint.
    const PREFIXES: [&str; 14] = [
        "10.0.0.0/16",
        "10.0.1.0/24",
        "10.0.1.128/25",
        "10.0.2.0/24",
        "10.0.2.7/32",
        "192.0.2.0/24",
        "192.0.2.64/26",
        "203.0.113.0/24",
        "0.0.0.0/0",
        "2001:db8::/32",
        "2001:db8:1::/48",
        "2001:db8:1:2::/64",
        "2001:db8:2::/48",
        "::/0",
    ];

    const TOKENS: [&str; 18] = [
        "tcp/443",
        "tcp/80-90",
        "tcp/85",
        "tcp",
        "udp/53",
        "udp/1000-2000",
        "icmp",
        "icmp/8",
        "icmp/8/0",
        "icmp/3/4",
        "icmpv6",
        "icmpv6/128",
        "icmpv6/128/0",
        "esp",
        "ip/47",
        "any",
        "sctp/9",
        "sctp",
    ];

    fn addrs(g: &mut Gen, max: usize) -> AddrSet {
        let n = g.below(max + 1);
        let nets: Vec<ipnet::IpNet> = (0..n).map(|_| g.pick(&PREFIXES).parse().unwrap()).collect();
        AddrSet::from_nets(&nets)
    }

    fn traffic(g: &mut Gen) -> Vec<Traffic> {
        (0..1 + g.below(3))
            .map(|_| Traffic::parse(g.pick(&TOKENS)).unwrap())
            .collect()
    }

    const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];

    fn endpoint(g: &mut Gen) -> Endpoint {
        if g.chance(50) {
            Endpoint::Group(g.pick(&GROUPS).into())
        } else {
            Endpoint::Network {
                name: format!("n{}", g.below(100)),
                addrs: addrs(g, 2),
            }
        }
    }

    struct Scenario {
        intent: DeploymentIntent,
        allowances: Vec<FlowIntent>,
        policy: EvalPolicy,
        declared: Vec<(&'static str, AddrSet)>,
    }

    fn scenario(g: &mut Gen) -> Scenario {
        let mut groups = BTreeMap::new();
        let mut declared = Vec::new();
        for name in GROUPS {
            let addresses = g.chance(70).then(|| addrs(g, 2));
            if let Some(a) = &addresses {
                declared.push((name, a.clone()));
            }
            groups.insert(
                name.to_string(),
                GroupIntent {
                    name: name.into(),
                    description: None,
                    egress_restricted: g.chance(40),
                    sensitive: false,
                    addresses,
                    service_account: None,
                },
            );
        }
        let flow = |g: &mut Gen, i: usize| FlowIntent {
            name: format!("f{i}"),
            action: if g.chance(25) {
                Action::Deny
            } else {
                Action::Allow
            },
            from: endpoint(g),
            to: endpoint(g),
            traffic: traffic(g),
            guardrail: false,
        };
        let flows = (0..g.below(9)).map(|i| flow(g, i)).collect();
        let allowances = (0..g.below(2)).map(|i| flow(g, 100 + i)).collect();
        // hosts by address, by group, or anyone: members must be matched often enough for
        // the rules to decide both ways
        let host_match = |g: &mut Gen| match g.below(3) {
            0 => HostMatch::any(),
            1 => HostMatch {
                addrs: addrs(g, 2),
                groups: Default::default(),
            },
            _ => HostMatch {
                addrs: if g.chance(30) {
                    addrs(g, 1)
                } else {
                    AddrSet::empty()
                },
                groups: (0..1 + g.below(2))
                    .map(|_| g.pick(&GROUPS).to_string())
                    .collect(),
            },
        };
        let mut rules: Vec<EvalRule> = (0..g.below(14))
            .map(|i| EvalRule {
                id: format!("r{i}"),
                managed: g.chance(80),
                flow: None,
                direction: if g.chance(50) {
                    Direction::Ingress
                } else {
                    Direction::Egress
                },
                action: if g.chance(40) {
                    Action::Deny
                } else {
                    Action::Allow
                },
                priority: [0, 100, 100, 100, 200, 65535][g.below(6)],
                local: host_match(g),
                peer: host_match(g),
                traffic: traffic(g),
                unknown: None,
            })
            .collect();
        // often a cloud default: egress open at the lowest precedence
        if g.chance(60) {
            rules.push(EvalRule {
                id: "implied-egress".into(),
                managed: false,
                flow: None,
                direction: Direction::Egress,
                action: Action::Allow,
                priority: 65535,
                local: HostMatch::any(),
                peer: HostMatch::any(),
                traffic: vec![Traffic::any()],
                unknown: None,
            });
        }
        Scenario {
            intent: DeploymentIntent {
                deployment: "t".into(),
                provider: intentwall_contract::ProviderKind::Gcp,
                settings: BTreeMap::new(),
                space: addrs(g, 2),
                groups,
                flows,
            },
            allowances,
            policy: EvalPolicy { rules },
            declared,
        }
    }

    /// An address near a boundary of a pool prefix, or anywhere.
    fn address(g: &mut Gen, v4: bool) -> IpAddr {
        let nets: Vec<ipnet::IpNet> = PREFIXES
            .iter()
            .map(|p| p.parse::<ipnet::IpNet>().unwrap())
            .filter(|n| matches!(n, ipnet::IpNet::V4(_)) == v4)
            .collect();
        let n = nets[g.below(nets.len())];
        match n {
            ipnet::IpNet::V4(n) => {
                let base = match g.below(4) {
                    0 => u32::from(n.network()),
                    1 => u32::from(n.broadcast()),
                    2 => u32::from(n.network()).wrapping_add(g.below(300) as u32),
                    _ => g.next() as u32,
                };
                let a = base.wrapping_add(g.below(3) as u32).wrapping_sub(1);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            ipnet::IpNet::V6(n) => {
                let base = match g.below(4) {
                    0 => u128::from(n.network()),
                    1 => u128::from(n.broadcast()),
                    2 => u128::from(n.network()).wrapping_add(g.below(300) as u128),
                    _ => (g.next() as u128) << 64 | g.next() as u128,
                };
                let a = base.wrapping_add(g.below(3) as u128).wrapping_sub(1);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        }
    }

    fn packet(g: &mut Gen) -> Packet {
        let proto = [6, 6, 17, 132, 1, 58, 50, 47, 4, 0, 255][g.below(11)];
        let port = [
            0, 1, 53, 79, 80, 85, 90, 91, 443, 999, 1000, 2000, 2001, 65535,
        ][g.below(14)];
        if proto::is_icmp(proto) {
            let t = [0, 3, 8, 9, 128, 129, 255][g.below(7)];
            let c = [0, 1, 4, 5, 255][g.below(5)];
            Packet::icmp(proto, t, c)
        } else if proto::has_ports(proto) {
            Packet::ported(proto, port)
        } else {
            Packet::ported(proto, 0)
        }
    }

    /// Attribution as the first replay did it: a scan over the declared groups.
    fn side_by_scan(s: &Scenario, ip: IpAddr) -> Side {
        for (i, (_, a)) in s.declared.iter().enumerate() {
            if a.contains(ip) {
                return Side::Member(i as u32);
            }
        }
        if s.intent.space.contains(ip) {
            Side::Unknown
        } else {
            Side::External
        }
    }

    /// Run one random scenario: compiled attribution and verdicts against the scan, `judge`
    /// and `EvalPolicy::evaluate`. Returns how many probes had a member end (so a native
    /// decision) and how many of those the rules allowed.
    fn check(seed: u64, unknown: bool) -> Result<(u32, u32), TestCaseError> {
        let mut g = Gen(seed);
        let mut s = scenario(&mut g);
        if unknown {
            // some rules match an unknown part of their fields (few enough for
            // `possible_verdicts` to try every combination)
            for r in s.policy.rules.iter_mut().take(UNKNOWN_COMBINATIONS) {
                if g.chance(35) {
                    r.unknown = Some("test".into());
                }
            }
        }
        let mut c = Compiled::new(&[Target {
            intent: &s.intent,
            allowances: &s.allowances,
            policy: &s.policy,
            declared: &s.declared,
        }]);
        let (mut decided, mut allowed) = (0, 0);
        for _ in 0..150 {
            let v4 = g.chance(60);
            let (src, dst) = (address(&mut g, v4), address(&mut g, v4));
            let p = packet(&mut g);
            let (sc, dc) = (c.addrs.of(src), c.addrs.of(dst));
            let (ss, ds) = (side_by_scan(&s, src), side_by_scan(&s, dst));
            prop_assert_eq!(c.targets[0].side(sc), ss, "{}", src);
            prop_assert_eq!(c.targets[0].side(dc), ds, "{}", dst);
            // a class's first address is attributed like every address of the class
            prop_assert_eq!(side_by_scan(&s, c.addrs.rep(sc)), ss);
            let host = |ip: IpAddr, side: Side| Host {
                ip,
                group: match side {
                    Side::Member(i) => Some(s.declared[i as usize].0.to_string()),
                    _ => None,
                },
            };
            let probe = Probe {
                src: host(src, ss),
                dst: host(dst, ds),
                packet: p,
            };
            let want = Verdicts {
                oracle: judge(&s.intent, &s.allowances, &probe).allowed,
                native: if unknown {
                    let vs = s.policy.index().possible_verdicts(&probe);
                    if vs.iter().all(|v| v.allowed == vs[0].allowed) {
                        Maybe::Is(vs[0].allowed)
                    } else {
                        Maybe::Unknown
                    }
                } else {
                    Maybe::Is(s.policy.evaluate(&probe).allowed)
                },
            };
            let k = c.packets.of(&p);
            prop_assert_eq!(c.verdicts(0, sc, dc, k), want, "{}", probe);
            // the outcome counting replies, computed and then from the memo
            let rk = proto::has_ports(p.proto).then(|| c.packets.of(&Packet::ported(p.proto, 53)));
            let rev = Probe {
                src: probe.dst.clone(),
                dst: probe.src.clone(),
                packet: Packet::ported(p.proto, 53),
            };
            let rev = if rk.is_some() {
                rev
            } else {
                Probe { packet: p, ..rev }
            };
            let (o_r, n_r) = (
                judge(&s.intent, &s.allowances, &rev).allowed,
                s.policy.evaluate(&rev).allowed,
            );
            if unknown {
                // the outcome with unknown rules: the verdicts either way, or unverifiable
                let ps = s.policy.index();
                let rv = ps.possible_verdicts(&rev);
                let rev_n = if rv.iter().all(|v| v.allowed == rv[0].allowed) {
                    Maybe::Is(rv[0].allowed)
                } else {
                    Maybe::Unknown
                };
                let need = !(want.oracle && want.native.allowed());
                let n = want.native.or(if need { rev_n } else { Maybe::Is(false) });
                let o = c.outcome(0, sc, dc, k, rk.or(Some(k)));
                prop_assert_eq!(o.unverifiable, n == Maybe::Unknown, "{}", probe);
                prop_assert_eq!(o.native, n.allowed(), "{}", probe);
                continue;
            }
            let want_native = want.native.allowed();
            let need = !(want.oracle && want_native);
            let want = Outcome {
                oracle: want.oracle || (need && o_r),
                oracle_reply: !want.oracle && need && o_r,
                native: want_native || (need && n_r),
                native_reply: !want_native && need && n_r,
                unverifiable: false,
            };
            let rk = rk.or(Some(k));
            prop_assert_eq!(c.outcome(0, sc, dc, k, rk), want, "{}", probe);
            prop_assert_eq!(c.outcome(0, sc, dc, k, rk), want, "{} (memo)", probe);
            if probe.src.group.is_some() || probe.dst.group.is_some() {
                decided += 1;
                allowed += want.native as u32;
            }
        }
        Ok((decided, allowed))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The compiled structure gives exactly the attribution of a scan over the groups and
        /// the verdicts of `judge` and `EvalPolicy::evaluate`, on random intents and rule sets
        /// (overlapping IPv4 and IPv6 ranges, groups with and without addresses, restricted
        /// egress, deny flows, priorities with ties, ICMP types and codes, all protocols).
        #[test]
        fn compiled_verdicts_equal_the_oracle_and_the_evaluator(seed in any::<u64>()) {
            check(seed, false)?;
        }

        /// With rules whose match is unknown (their fields an upper bound), the native
        /// verdict is decided exactly when every combination of those rules matching or not
        /// gives the same verdict (`PolicyIndex::possible_verdicts`), else unverifiable.
        #[test]
        fn unknown_rules_make_exactly_the_undecidable_verdicts_unverifiable(seed in any::<u64>()) {
            check(seed, true)?;
        }
    }

    /// The random scenarios are not vacuous: members are hit and the rules decide both ways.
    #[test]
    fn the_random_scenarios_reach_native_decisions_both_ways() {
        let (mut decided, mut allowed) = (0, 0);
        for seed in 0..100 {
            let (d, a) = check(seed, false).unwrap();
            decided += d;
            allowed += a;
        }
        assert!(
            decided > 3000 && allowed > 300,
            "{decided} decided, {allowed} allowed"
        );
        assert!(
            decided - allowed > 300,
            "{decided} decided, {allowed} allowed"
        );
    }

    #[test]
    fn a_full_memo_evicts_and_stays_exact() {
        let mut m = Memo::new(2);
        let v = |o| Outcome {
            oracle: o,
            oracle_reply: false,
            native: !o,
            native_reply: o,
            unverifiable: false,
        };
        for i in 0..64u32 {
            m.put([0, i, i, i, 7], v(i % 2 == 0));
        }
        // at most 4 entries survive, and each one that does is exact
        let kept: Vec<u32> = (0..64)
            .filter(|&i| m.get(&[0, i, i, i, 7]).is_some())
            .collect();
        assert!(kept.len() <= 4 && !kept.is_empty());
        for i in kept {
            assert_eq!(m.get(&[0, i, i, i, 7]), Some(v(i % 2 == 0)));
        }
    }
}
