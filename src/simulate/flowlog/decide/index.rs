//! Each target's rules and flows as class sets, listed per direction, protected group and
//! packet class in precedence order (see the parent module).

use super::*;

/// Per packet class, a list of indices (compressed rows).
#[derive(Debug, Clone, Default)]
pub(super) struct PerClass {
    pub(super) starts: Vec<u32>,
    pub(super) items: Vec<u32>,
}

impl PerClass {
    /// From (item, classes it is listed under), items in the order they are to be listed.
    pub(super) fn build(classes: usize, entries: &[(u32, Vec<u32>)]) -> Self {
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

    pub(super) fn get(&self, k: u32) -> &[u32] {
        &self.items[self.starts[k as usize] as usize..self.starts[k as usize + 1] as usize]
    }
}

/// A native rule, compiled: which address classes its two sides match.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) allow: bool,
    /// The model does not know exactly what the rule matches (`EvalRule::unknown`): the
    /// sets here are an upper bound, so the rule may or may not match inside them.
    pub(super) unknown: bool,
    pub(super) local: Intervals<u32>,
    pub(super) peer: Intervals<u32>,
    /// The packet classes its traffic matches.
    pub(super) packets: Intervals<u32>,
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
    pub(super) fn and(self, o: Maybe) -> Maybe {
        match (self, o) {
            (Maybe::Is(false), _) | (_, Maybe::Is(false)) => Maybe::Is(false),
            (Maybe::Is(true), Maybe::Is(true)) => Maybe::Is(true),
            _ => Maybe::Unknown,
        }
    }

    pub(super) fn or(self, o: Maybe) -> Maybe {
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
pub(super) struct Flow {
    pub(super) from: Intervals<u32>,
    pub(super) to: Intervals<u32>,
    /// The ends are groups (the oracle's "flow from/to the member's group" tests).
    pub(super) from_group: bool,
    pub(super) to_group: bool,
}

/// One target, compiled.
#[derive(Debug, Clone)]
pub struct TargetIndex {
    /// Per address class: what the target makes of it.
    pub(super) side: Vec<Side>,
    /// Per declared group: `egress: restricted`.
    pub(super) restricted: Vec<bool>,
    pub(super) rules: Vec<Rule>,
    /// Per direction (egress, ingress) and declared group, the rules whose protected side
    /// holds some class of the group, in precedence order (lowest priority number first,
    /// deny before allow at a tie). A rule is listed under the groups it protects, so the
    /// index follows the rules (not rules x classes).
    pub(super) by_group: [Vec<Vec<u32>>; 2],
    /// Lists per (direction and group, packet class) that records hit, built on first use
    /// from `by_group` and kept while their total stays under `LISTS_CAP` entries.
    pub(super) lists: HashMap<(u32, u32), List, BuildKeyHasher>,
    pub(super) listed: usize,
    /// Per declared group, its classes.
    pub(super) group_sets: Vec<Intervals<u32>>,
    pub(super) flows: Vec<Flow>,
    /// Per packet class, the deny / allow flows whose traffic matches it.
    pub(super) denies: PerClass,
    pub(super) allows: PerClass,
}

impl TargetIndex {
    /// What the target makes of an address class.
    pub fn side(&self, c: u32) -> Side {
        self.side[c as usize]
    }

    pub(super) fn member(&self, c: u32) -> Option<u32> {
        match self.side[c as usize] {
            Side::Member(g) => Some(g),
            _ => None,
        }
    }

    /// One direction's decision at a member `local` (of group `g`): the first matching rule
    /// in precedence order; none denies. A rule with an unknown match before the first
    /// known one may be the first match or not, so its action is one possible outcome.
    pub(super) fn decide(&mut self, dir: usize, g: u32, k: u32, local: u32, peer: u32) -> Maybe {
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
    pub(super) fn native(&mut self, s: u32, d: u32, k: u32) -> Maybe {
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
    pub(super) fn oracle(&self, s: u32, d: u32, k: u32) -> bool {
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

pub(super) fn compile_target<'a>(
    addrs: &AddrClasses,
    packets: &PacketClasses,
    t: &Target<'a>,
) -> TargetIndex {
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
