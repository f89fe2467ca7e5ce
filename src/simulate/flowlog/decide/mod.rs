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

mod classes;
pub use classes::{AddrClasses, PacketClasses};
mod index;
use index::*;
pub use index::{Maybe, TargetIndex};

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
mod tests;
