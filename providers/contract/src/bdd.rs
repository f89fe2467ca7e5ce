//! A small reduced ordered binary decision diagram (ROBDD) engine, the set representation
//! behind the symbolic check in [`crate::check`].
//!
//! Why our own: the check needs one shared node table (so the per-group functions it builds
//! share structure and cofactors are cheap), an apply cache that lives as long as one
//! target's check, and two queries crates rarely offer together: the lexicographically
//! smallest satisfying assignment (a concrete counterexample packet) and the values of a
//! block of variables under which a function is satisfiable (which groups a difference
//! touches). It is ~250 lines; every operation is the textbook one.
//!
//! Nodes are hash-consed, so two equal functions are the same [`Bdd`] id and equality,
//! emptiness and "is everything" are O(1).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A function, as the id of its root node in a [`Manager`].
pub type Bdd = u32;
/// The empty set / constant false.
pub const FALSE: Bdd = 0;
/// The full set / constant true.
pub const TRUE: Bdd = 1;

const TERMINAL: u32 = u32::MAX;

/// Multiply-rotate hashing (the Fx scheme): node keys are small integers, so SipHash's
/// DoS resistance buys nothing here and costs most of the check's time.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A hash map with the fast hasher, for the engine's tables and for callers' memo tables.
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    And,
    Or,
    Xor,
    Diff,
}

#[derive(Clone, Copy)]
struct Node {
    var: u32,
    lo: Bdd,
    hi: Bdd,
}

/// The node table and operation cache. Variables are numbered from 0 (the root side of the
/// order); a caller fixes the order by numbering.
pub struct Manager {
    nodes: Vec<Node>,
    unique: FxMap<(u32, Bdd, Bdd), Bdd>,
    cache: FxMap<(Op, Bdd, Bdd), Bdd>,
}

impl Default for Manager {
    fn default() -> Self {
        Self::new()
    }
}

impl Manager {
    /// An empty table holding the two terminals.
    pub fn new() -> Self {
        let t = Node {
            var: TERMINAL,
            lo: 0,
            hi: 0,
        };
        Manager {
            nodes: vec![t, t],
            unique: FxMap::default(),
            cache: FxMap::default(),
        }
    }

    /// Number of nodes made so far (terminals included): the check's memory figure.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The node `var ? hi : lo`, reduced and shared.
    pub fn mk(&mut self, var: u32, lo: Bdd, hi: Bdd) -> Bdd {
        if lo == hi {
            return lo;
        }
        if let Some(&id) = self.unique.get(&(var, lo, hi)) {
            return id;
        }
        let id = self.nodes.len() as Bdd;
        self.nodes.push(Node { var, lo, hi });
        self.unique.insert((var, lo, hi), id);
        id
    }

    /// The variable itself.
    pub fn literal(&mut self, var: u32, value: bool) -> Bdd {
        if value {
            self.mk(var, FALSE, TRUE)
        } else {
            self.mk(var, TRUE, FALSE)
        }
    }

    fn apply(&mut self, op: Op, a: Bdd, b: Bdd) -> Bdd {
        // terminal cases
        match op {
            Op::And => {
                if a == FALSE || b == FALSE {
                    return FALSE;
                }
                if a == TRUE || a == b {
                    return b;
                }
                if b == TRUE {
                    return a;
                }
            }
            Op::Or => {
                if a == TRUE || b == TRUE {
                    return TRUE;
                }
                if a == FALSE || a == b {
                    return b;
                }
                if b == FALSE {
                    return a;
                }
            }
            Op::Xor => {
                if a == b {
                    return FALSE;
                }
                if a == FALSE {
                    return b;
                }
                if b == FALSE {
                    return a;
                }
            }
            Op::Diff => {
                if a == FALSE || b == TRUE || a == b {
                    return FALSE;
                }
                if b == FALSE {
                    return a;
                }
            }
        }
        let (a, b) = if op != Op::Diff && a > b {
            (b, a)
        } else {
            (a, b)
        };
        if let Some(&r) = self.cache.get(&(op, a, b)) {
            return r;
        }
        let (na, nb) = (self.nodes[a as usize], self.nodes[b as usize]);
        let v = na.var.min(nb.var);
        let (a0, a1) = if na.var == v { (na.lo, na.hi) } else { (a, a) };
        let (b0, b1) = if nb.var == v { (nb.lo, nb.hi) } else { (b, b) };
        let lo = self.apply(op, a0, b0);
        let hi = self.apply(op, a1, b1);
        let r = self.mk(v, lo, hi);
        self.cache.insert((op, a, b), r);
        r
    }

    /// Intersection.
    pub fn and(&mut self, a: Bdd, b: Bdd) -> Bdd {
        self.apply(Op::And, a, b)
    }
    /// Union.
    pub fn or(&mut self, a: Bdd, b: Bdd) -> Bdd {
        self.apply(Op::Or, a, b)
    }
    /// Symmetric difference: where two functions disagree.
    pub fn xor(&mut self, a: Bdd, b: Bdd) -> Bdd {
        self.apply(Op::Xor, a, b)
    }
    /// `a` without `b`.
    pub fn diff(&mut self, a: Bdd, b: Bdd) -> Bdd {
        self.apply(Op::Diff, a, b)
    }
    /// Complement.
    pub fn not(&mut self, a: Bdd) -> Bdd {
        self.apply(Op::Diff, TRUE, a)
    }

    /// Union of many, pairwise as a balanced tree (a left fold re-walks the growing result
    /// once per operand).
    pub fn or_all(&mut self, mut fs: Vec<Bdd>) -> Bdd {
        self.reduce(&mut fs, Op::Or, FALSE)
    }
    /// Intersection of many, as a balanced tree.
    pub fn and_all(&mut self, mut fs: Vec<Bdd>) -> Bdd {
        self.reduce(&mut fs, Op::And, TRUE)
    }

    fn reduce(&mut self, fs: &mut Vec<Bdd>, op: Op, unit: Bdd) -> Bdd {
        fs.retain(|&f| f != unit);
        while fs.len() > 1 {
            let mut next = Vec::with_capacity(fs.len().div_ceil(2));
            for pair in fs.chunks(2) {
                next.push(match pair {
                    [a, b] => self.apply(op, *a, *b),
                    [a] => *a,
                    _ => unreachable!("chunks(2) yields one or two"),
                });
            }
            *fs = next;
        }
        fs.first().copied().unwrap_or(unit)
    }

    /// The unsigned number on `vars` (most significant first, ascending variable ids)
    /// equals `value`.
    pub fn equals(&mut self, vars: &[u32], value: u128) -> Bdd {
        let n = vars.len();
        let mut r = TRUE;
        for (i, &v) in vars.iter().enumerate().rev() {
            let bit = (value >> (n - 1 - i)) & 1 == 1;
            r = if bit {
                self.mk(v, FALSE, r)
            } else {
                self.mk(v, r, FALSE)
            };
        }
        r
    }

    /// The unsigned number on `vars` (most significant first, ascending ids) lies in
    /// `lo..=hi`. Built directly: at most two nodes per bit for each bound.
    pub fn range(&mut self, vars: &[u32], lo: u128, hi: u128) -> Bdd {
        let n = vars.len();
        let max = if n >= 128 {
            u128::MAX
        } else {
            (1u128 << n) - 1
        };
        if lo > hi {
            return FALSE;
        }
        if lo == 0 && hi >= max {
            return TRUE;
        }
        let (mut ge, mut le) = (TRUE, TRUE);
        for (i, &v) in vars.iter().enumerate().rev() {
            let shift = n - 1 - i;
            ge = if (lo >> shift) & 1 == 1 {
                self.mk(v, FALSE, ge)
            } else {
                self.mk(v, ge, TRUE)
            };
            le = if (hi >> shift) & 1 == 1 {
                self.mk(v, TRUE, le)
            } else {
                self.mk(v, le, FALSE)
            };
        }
        self.and(ge, le)
    }

    /// The unsigned number on `vars` (most significant first, ascending ids) lies in one of
    /// `ranges` (sorted, disjoint, inclusive). Built top-down by halving the value space, so
    /// it costs a few nodes per range boundary and bit, with no apply calls: the check builds
    /// an address set per rule and network, and this is where its time went.
    pub fn intervals(&mut self, vars: &[u32], ranges: &[(u128, u128)]) -> Bdd {
        self.intervals_rec(vars, 0, 0, ranges)
    }

    fn intervals_rec(
        &mut self,
        vars: &[u32],
        depth: usize,
        base: u128,
        ranges: &[(u128, u128)],
    ) -> Bdd {
        let free = vars.len() - depth; // bits below this node
        let top = if free >= 128 {
            u128::MAX
        } else {
            base | ((1u128 << free) - 1)
        };
        // ranges overlapping [base, top]
        let from = ranges.partition_point(|&(_, hi)| hi < base);
        let to = ranges.partition_point(|&(lo, _)| lo <= top);
        let here = &ranges[from..to.max(from)];
        match here {
            [] => return FALSE,
            [(lo, hi)] if *lo <= base && *hi >= top => return TRUE,
            _ => {}
        }
        if free == 0 {
            return TRUE; // a single value, overlapped
        }
        let mid = base | (1u128 << (free - 1));
        let lo = self.intervals_rec(vars, depth + 1, base, here);
        let hi = self.intervals_rec(vars, depth + 1, mid, here);
        self.mk(vars[depth], lo, hi)
    }

    /// `f` with the variables of `vars` (ascending ids) fixed to the bits of `value`.
    pub fn restrict(&mut self, f: Bdd, vars: &[u32], value: u128) -> Bdd {
        let n = vars.len();
        let Some(&last) = vars.last() else {
            return f;
        };
        let bit = |v: u32| -> Option<bool> {
            vars.iter()
                .position(|&x| x == v)
                .map(|i| (value >> (n - 1 - i)) & 1 == 1)
        };
        let mut memo: FxMap<Bdd, Bdd> = FxMap::default();
        self.restrict_rec(f, last, &bit, &mut memo)
    }

    fn restrict_rec(
        &mut self,
        f: Bdd,
        last: u32,
        bit: &dyn Fn(u32) -> Option<bool>,
        memo: &mut FxMap<Bdd, Bdd>,
    ) -> Bdd {
        let node = self.nodes[f as usize];
        if node.var == TERMINAL || node.var > last {
            return f;
        }
        if let Some(&r) = memo.get(&f) {
            return r;
        }
        let r = match bit(node.var) {
            Some(true) => self.restrict_rec(node.hi, last, bit, memo),
            Some(false) => self.restrict_rec(node.lo, last, bit, memo),
            None => {
                let lo = self.restrict_rec(node.lo, last, bit, memo);
                let hi = self.restrict_rec(node.hi, last, bit, memo);
                self.mk(node.var, lo, hi)
            }
        };
        memo.insert(f, r);
        r
    }

    /// `f` with the variables of `vars` (ascending ids) existentially quantified: true where
    /// some value of them makes `f` true.
    pub fn exists(&mut self, f: Bdd, vars: &[u32]) -> Bdd {
        let mut memo: FxMap<Bdd, Bdd> = FxMap::default();
        self.exists_rec(f, vars, &mut memo)
    }

    fn exists_rec(&mut self, f: Bdd, vars: &[u32], memo: &mut FxMap<Bdd, Bdd>) -> Bdd {
        let node = self.nodes[f as usize];
        let Some(&last) = vars.last() else {
            return f;
        };
        if node.var == TERMINAL || node.var > last {
            return f;
        }
        if let Some(&r) = memo.get(&f) {
            return r;
        }
        let lo = self.exists_rec(node.lo, vars, memo);
        let hi = self.exists_rec(node.hi, vars, memo);
        let r = if vars.binary_search(&node.var).is_ok() {
            self.or(lo, hi)
        } else {
            self.mk(node.var, lo, hi)
        };
        memo.insert(f, r);
        r
    }

    /// `exists vars. (f and g)` (`vars` ascending) without building `f and g`: the relational
    /// product. Where every variable still to come is quantified, a branch is only
    /// "satisfiable or not", so the walk stops at the first satisfying path and makes no node.
    ///
    /// Why: asking which values of a variable block (peer groups) reach a set, when every
    /// other variable is quantified, is a yes/no intersection per block value; a plain
    /// conjunction would build the whole product for each of them.
    pub fn and_exists(&mut self, f: Bdd, g: Bdd, vars: &[u32]) -> Bdd {
        let mut memo: FxMap<(Bdd, Bdd), Bdd> = FxMap::default();
        self.and_exists_rec(f, g, vars, &mut memo)
    }

    fn and_exists_rec(
        &mut self,
        f: Bdd,
        g: Bdd,
        vars: &[u32],
        memo: &mut FxMap<(Bdd, Bdd), Bdd>,
    ) -> Bdd {
        if f == FALSE || g == FALSE {
            return FALSE;
        }
        if f == TRUE && g == TRUE {
            return TRUE;
        }
        let (f, g) = if f > g { (g, f) } else { (f, g) };
        if let Some(&r) = memo.get(&(f, g)) {
            return r;
        }
        let (nf, ng) = (self.nodes[f as usize], self.nodes[g as usize]);
        let v = nf.var.min(ng.var);
        let (f0, f1) = if nf.var == v { (nf.lo, nf.hi) } else { (f, f) };
        let (g0, g1) = if ng.var == v { (ng.lo, ng.hi) } else { (g, g) };
        let quantified = vars.binary_search(&v).is_ok();
        let lo = self.and_exists_rec(f0, g0, vars, memo);
        // a quantified level is the union of its branches: a satisfied low branch decides it
        // (below the last unquantified variable every result is TRUE or FALSE)
        let r = if quantified && lo == TRUE {
            TRUE
        } else {
            let hi = self.and_exists_rec(f1, g1, vars, memo);
            if quantified {
                self.or(lo, hi)
            } else {
                self.mk(v, lo, hi)
            }
        };
        memo.insert((f, g), r);
        r
    }

    /// The smallest satisfying assignment in variable order (every variable the function
    /// does not test is 0), or `None` for the empty set. `nvars` is the number of variables.
    pub fn pick_min(&self, f: Bdd, nvars: usize) -> Option<Vec<bool>> {
        if f == FALSE {
            return None;
        }
        let mut out = vec![false; nvars];
        let mut n = f;
        while n != TRUE {
            let node = self.nodes[n as usize];
            if node.lo != FALSE {
                n = node.lo;
            } else {
                out[node.var as usize] = true;
                n = node.hi;
            }
        }
        Some(out)
    }

    /// The value of `f` under a full assignment.
    pub fn eval(&self, f: Bdd, assignment: &[bool]) -> bool {
        let mut n = f;
        while n > TRUE {
            let node = self.nodes[n as usize];
            n = if assignment[node.var as usize] {
                node.hi
            } else {
                node.lo
            };
        }
        n == TRUE
    }

    /// Every value of the number on `vars` (ascending, contiguous ids, most significant
    /// first) under which `f` is satisfiable, in ascending order. Variables before the block
    /// are branched over; the walk stops below the block.
    pub fn satisfiable_values(&self, f: Bdd, vars: &[u32]) -> Vec<u128> {
        let mut out = Vec::new();
        let (Some(&first), Some(&last)) = (vars.first(), vars.last()) else {
            return out;
        };
        let n = vars.len();
        // (node, bits fixed so far inside the block, mask of which bits are fixed)
        let mut stack = vec![(f, 0u128, 0u128)];
        let mut seen: FxMap<(Bdd, u128, u128), ()> = FxMap::default();
        while let Some((node, val, mask)) = stack.pop() {
            if node == FALSE || seen.insert((node, val, mask), ()).is_some() {
                continue;
            }
            let nd = self.nodes[node as usize];
            if nd.var == TERMINAL || nd.var > last {
                // every completion of the free bits of the block
                let free: Vec<usize> = (0..n).filter(|i| (mask >> (n - 1 - i)) & 1 == 0).collect();
                for combo in 0u128..(1u128 << free.len()) {
                    let mut v = val;
                    for (j, &i) in free.iter().enumerate() {
                        if (combo >> j) & 1 == 1 {
                            v |= 1 << (n - 1 - i);
                        }
                    }
                    out.push(v);
                }
                continue;
            }
            if nd.var < first {
                stack.push((nd.lo, val, mask));
                stack.push((nd.hi, val, mask));
                continue;
            }
            let i = (nd.var - first) as usize;
            let b = 1u128 << (n - 1 - i);
            stack.push((nd.lo, val, mask | b));
            stack.push((nd.hi, val | b, mask | b));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn num(a: &[bool], vars: &[u32]) -> u128 {
        vars.iter()
            .fold(0, |acc, &v| (acc << 1) | a[v as usize] as u128)
    }

    proptest! {
        #[test]
        fn range_is_exact(lo in 0u128..256, hi in 0u128..256, x in 0u128..256) {
            let mut m = Manager::new();
            let vars: Vec<u32> = (0..8).collect();
            let r = m.range(&vars, lo, hi);
            let a: Vec<bool> = (0..8).map(|i| (x >> (7 - i)) & 1 == 1).collect();
            prop_assert_eq!(m.eval(r, &a), lo <= x && x <= hi);
            if let Some(p) = m.pick_min(r, 8) {
                prop_assert_eq!(num(&p, &vars), lo); // the smallest member
            } else {
                prop_assert!(lo > hi);
            }
        }

        #[test]
        fn intervals_are_exact(raw in proptest::collection::vec((0u128..256, 0u128..256), 0..6), x in 0u128..256) {
            let ranges: Vec<(u128, u128)> = {
                let mut v: Vec<(u128, u128)> = raw.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
                v.sort();
                let mut out: Vec<(u128, u128)> = Vec::new();
                for (a, b) in v {
                    match out.last_mut() {
                        Some(l) if a <= l.1 + 1 => l.1 = l.1.max(b),
                        _ => out.push((a, b)),
                    }
                }
                out
            };
            let mut m = Manager::new();
            let vars: Vec<u32> = (0..8).collect();
            let f = m.intervals(&vars, &ranges);
            let a: Vec<bool> = (0..8).map(|i| (x >> (7 - i)) & 1 == 1).collect();
            prop_assert_eq!(m.eval(f, &a), ranges.iter().any(|&(lo, hi)| lo <= x && x <= hi));
            // canonical: the same set built as a union of ranges is the same node
            let parts: Vec<Bdd> = ranges.iter().map(|&(lo, hi)| m.range(&vars, lo, hi)).collect();
            let union = m.or_all(parts);
            prop_assert_eq!(f, union);
        }

        #[test]
        fn boolean_ops_agree_with_sets(xs in proptest::collection::vec(0u128..64, 0..8),
                                        ys in proptest::collection::vec(0u128..64, 0..8)) {
            let mut m = Manager::new();
            let vars: Vec<u32> = (0..6).collect();
            let set = |m: &mut Manager, s: &[u128]| {
                let parts: Vec<Bdd> = s.iter().map(|&v| m.equals(&vars, v)).collect();
                m.or_all(parts)
            };
            let (a, b) = (set(&mut m, &xs), set(&mut m, &ys));
            let (and, or, xor, diff, not) = (m.and(a, b), m.or(a, b), m.xor(a, b), m.diff(a, b), m.not(a));
            for v in 0u128..64 {
                let asg: Vec<bool> = (0..6).map(|i| (v >> (5 - i)) & 1 == 1).collect();
                let (ia, ib) = (xs.contains(&v), ys.contains(&v));
                prop_assert_eq!(m.eval(and, &asg), ia && ib);
                prop_assert_eq!(m.eval(or, &asg), ia || ib);
                prop_assert_eq!(m.eval(xor, &asg), ia != ib);
                prop_assert_eq!(m.eval(diff, &asg), ia && !ib);
                prop_assert_eq!(m.eval(not, &asg), !ia);
            }
            // canonical: equal sets are the same node
            let again = set(&mut m, &xs);
            prop_assert_eq!(again, a);
            // the block query finds exactly the members
            let mut want: Vec<u128> = xs.clone();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(m.satisfiable_values(a, &vars), want);
            // quantifying the high bit away: v is in it when v or v | 32 is a member
            let e = m.exists(a, &vars[..1]);
            for v in 0u128..64 {
                let asg: Vec<bool> = (0..6).map(|i| (v >> (5 - i)) & 1 == 1).collect();
                prop_assert_eq!(m.eval(e, &asg), xs.contains(&(v & 31)) || xs.contains(&(v | 32)));
            }
            // the relational product is the quantified conjunction, for any block quantified
            for q in [&vars[..0], &vars[..1], &vars[1..3], &vars[2..], &vars[..], &vars[3..4]] {
                let want = m.exists(and, q);
                prop_assert_eq!(m.and_exists(a, b, q), want, "quantifying {:?}", q);
            }
            // restrict to the high bit = 1 keeps the members >= 32, shifted into the rest
            let r = m.restrict(a, &vars[..1], 1);
            for v in 0u128..32 {
                let asg: Vec<bool> = (0..6).map(|i| i > 0 && ((v >> (5 - i)) & 1 == 1)).collect();
                prop_assert_eq!(m.eval(r, &asg), xs.contains(&(v | 32)));
            }
        }
    }
}
