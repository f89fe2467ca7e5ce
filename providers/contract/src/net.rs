//! Address and port algebra: exact sets of IPv4/IPv6 addresses and of ports.
//!
//! Firewalls speak in prefixes and port ranges, but the questions we ask of them ("is this
//! deny fully subtracted from that allow?", "do these two rule sets cover the same packets?")
//! are set questions. So every address list becomes an [`AddrSet`] (sorted, disjoint, inclusive
//! intervals per family) and every port list a [`PortSet`]; translators turn sets back into the
//! fewest prefixes / ranges a cloud accepts.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address or port text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Not an IP address or CIDR at all.
    #[error("invalid CIDR or address `{0}`")]
    Invalid(String),
    /// A CIDR whose address has bits set below the prefix length (`10.0.0.5/24`).
    #[error("`{text}` has host bits set; the network is `{network}`")]
    HostBits {
        /// The text as written.
        text: String,
        /// The network it denotes once host bits are cleared.
        network: String,
    },
    /// A port that is not 0-65535 or a reversed range.
    #[error("{0}")]
    Port(String),
}

/// Sorted, disjoint, non-adjacent inclusive intervals over an ordered integer domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Intervals<T: Copy + Ord>(Vec<(T, T)>);

/// Append `r` to sorted disjoint intervals, merging it into the last one when they overlap or
/// touch (`r` must not start before the last interval does).
fn push_merged<T: Bound>(out: &mut Vec<(T, T)>, r: (T, T)) {
    if let Some(last) = out.last_mut() {
        if last.1 >= r.0 || last.1.succ() == Some(r.0) {
            if r.1 > last.1 {
                last.1 = r.1;
            }
            return;
        }
    }
    out.push(r);
}

/// Integer domains we keep intervals over (u16 ports, u32 IPv4, u128 IPv6).
pub trait Bound: Copy + Ord + fmt::Debug {
    /// Smallest value.
    const MIN: Self;
    /// Largest value.
    const MAX: Self;
    /// `self + 1`, or `None` at `MAX`.
    fn succ(self) -> Option<Self>;
    /// `self - 1`, or `None` at `MIN`.
    fn pred(self) -> Option<Self>;
}

macro_rules! bound {
    ($t:ty) => {
        impl Bound for $t {
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
            fn pred(self) -> Option<Self> {
                self.checked_sub(1)
            }
        }
    };
}
bound!(u8);
bound!(u16);
bound!(u32);
bound!(u128);

impl<T: Bound> Intervals<T> {
    /// The empty set.
    pub fn empty() -> Self {
        Intervals(Vec::new())
    }
    /// Every value of the domain.
    pub fn full() -> Self {
        Intervals(vec![(T::MIN, T::MAX)])
    }
    /// One inclusive range (swapped if reversed).
    pub fn range(a: T, b: T) -> Self {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        Intervals(vec![(a, b)])
    }
    /// Build from arbitrary (possibly overlapping) ranges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (T, T)>) -> Self {
        let mut v: Vec<(T, T)> = ranges
            .into_iter()
            .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
            .collect();
        v.sort_unstable();
        let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
        for r in v {
            push_merged(&mut out, r);
        }
        Intervals(out)
    }
    /// The intervals, sorted and disjoint.
    pub fn ranges(&self) -> &[(T, T)] {
        &self.0
    }
    /// True when no value is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// True when every value of the domain is in the set.
    pub fn is_full(&self) -> bool {
        self.0 == [(T::MIN, T::MAX)]
    }
    /// Membership test (binary search).
    pub fn contains(&self, x: T) -> bool {
        match self.0.binary_search_by(|&(a, _)| a.cmp(&x)) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => self.0[i - 1].1 >= x,
        }
    }
    /// Set union: one linear merge of the two sorted lists.
    pub fn union(&self, other: &Self) -> Self {
        let (a, b) = (&self.0, &other.0);
        let mut out: Vec<(T, T)> = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let next = if j >= b.len() || (i < a.len() && a[i].0 <= b[j].0) {
                i += 1;
                a[i - 1]
            } else {
                j += 1;
                b[j - 1]
            };
            push_merged(&mut out, next);
        }
        Intervals(out)
    }
    /// Union of many sets at once: their intervals are sorted once and merged, instead of
    /// folding pairwise unions (quadratic when one set keeps growing).
    pub fn union_all<'a>(sets: impl IntoIterator<Item = &'a Self>) -> Self
    where
        T: 'a,
    {
        Self::from_ranges(sets.into_iter().flat_map(|s| s.0.iter().copied()))
    }
    /// Set complement within the domain.
    pub fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = Some(T::MIN);
        for &(a, b) in &self.0 {
            if let Some(n) = next {
                if n < a {
                    out.push((n, a.pred().expect("a > MIN")));
                }
            }
            next = b.succ();
        }
        if let Some(n) = next {
            out.push((n, T::MAX));
        }
        Intervals(out)
    }
    /// Set intersection.
    pub fn intersect(&self, other: &Self) -> Self {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a1, b1) = self.0[i];
            let (a2, b2) = other.0[j];
            let lo = a1.max(a2);
            let hi = b1.min(b2);
            if lo <= hi {
                out.push((lo, hi));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Intervals(out)
    }
    /// Set difference `self \ other`: one linear sweep, each interval of `self` cut by the
    /// intervals of `other` that overlap it.
    pub fn subtract(&self, other: &Self) -> Self {
        let b = &other.0;
        let mut out = Vec::with_capacity(self.0.len());
        let mut j = 0;
        for &(lo, hi) in &self.0 {
            // skip cuts wholly below this interval; they are below every later one too
            while j < b.len() && b[j].1 < lo {
                j += 1;
            }
            let mut start = Some(lo);
            let mut k = j;
            while let Some(s) = start {
                if k >= b.len() || b[k].0 > hi {
                    out.push((s, hi));
                    break;
                }
                let (c_lo, c_hi) = b[k];
                if c_lo > s {
                    out.push((s, c_lo.pred().expect("c_lo > s >= MIN")));
                }
                // the cut may reach into the next interval of `self`: keep `j` at it
                start = if c_hi >= hi { None } else { c_hi.succ() };
                if c_hi < hi {
                    k += 1;
                }
            }
            j = k;
        }
        Intervals(out)
    }
    /// `self ⊆ other`, without building the difference.
    pub fn is_subset(&self, other: &Self) -> bool {
        let b = &other.0;
        let mut j = 0;
        self.0.iter().all(|&(lo, hi)| {
            while j < b.len() && b[j].1 < lo {
                j += 1;
            }
            // intervals are non-adjacent, so one interval of `other` must hold all of it
            j < b.len() && b[j].0 <= lo && hi <= b[j].1
        })
    }
    /// True when the two sets share a value, without building the intersection.
    pub fn overlaps(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].0.max(b[j].0) <= a[i].1.min(b[j].1) {
                return true;
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }
    /// Every interval start and every (end + 1): the points where membership can change.
    pub fn boundaries(&self) -> impl Iterator<Item = T> + '_ {
        self.0
            .iter()
            .flat_map(|&(a, b)| std::iter::once(a).chain(b.succ()))
    }
}

/// A set of destination ports (0-65535).
pub type PortSet = Intervals<u16>;

impl PortSet {
    /// Parse `443`, `8000-8099`. Errors name the problem (out of range, reversed).
    pub fn parse_range(text: &str) -> Result<(u16, u16), NetError> {
        let parse_one = |t: &str| -> Result<u16, NetError> {
            let t = t.trim();
            // plain digits only: Rust's integer parsing would also take `+443`
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NetError::Port(format!("`{t}` is not a port number")));
            }
            let n: u64 = t
                .parse()
                .map_err(|_| NetError::Port(format!("port {t} is out of range 0-65535")))?;
            u16::try_from(n)
                .map_err(|_| NetError::Port(format!("port {n} is out of range 0-65535")))
        };
        match text.split_once('-') {
            None => {
                let p = parse_one(text)?;
                Ok((p, p))
            }
            Some((a, b)) => {
                let (a, b) = (parse_one(a)?, parse_one(b)?);
                if a > b {
                    return Err(NetError::Port(format!(
                        "port range {a}-{b} is reversed (write {b}-{a})"
                    )));
                }
                Ok((a, b))
            }
        }
    }
    /// Render as `80`, `8000-8099` items (the form Azure and GCP accept).
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect()
    }
}

/// An exact set of IPv4 and IPv6 addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddrSet {
    /// IPv4 part, as u32 intervals.
    pub v4: Intervals<u32>,
    /// IPv6 part, as u128 intervals.
    pub v6: Intervals<u128>,
}

impl AddrSet {
    /// No address.
    pub fn empty() -> Self {
        Self::default()
    }
    /// Every IPv4 and IPv6 address (`0.0.0.0/0` + `::/0`).
    pub fn any() -> Self {
        AddrSet {
            v4: Intervals::full(),
            v6: Intervals::full(),
        }
    }
    /// All of IPv4 only.
    pub fn any_v4() -> Self {
        AddrSet {
            v4: Intervals::full(),
            v6: Intervals::empty(),
        }
    }
    /// All of IPv6 only.
    pub fn any_v6() -> Self {
        AddrSet {
            v4: Intervals::empty(),
            v6: Intervals::full(),
        }
    }
    /// One prefix.
    pub fn from_net(net: IpNet) -> Self {
        let mut s = Self::empty();
        match net {
            IpNet::V4(n) => {
                s.v4 = Intervals::range(u32::from(n.network()), u32::from(n.broadcast()))
            }
            IpNet::V6(n) => {
                s.v6 = Intervals::range(u128::from(n.network()), u128::from(n.broadcast()))
            }
        }
        s
    }
    /// Union of prefixes.
    pub fn from_nets<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        AddrSet {
            v4: Intervals::from_ranges(v4),
            v6: Intervals::from_ranges(v6),
        }
    }
    /// Parse a CIDR or a bare address, rejecting host bits (`10.0.0.5/24`) with the network
    /// it would denote, so a typo never silently widens or narrows a rule.
    pub fn parse_cidr_strict(text: &str) -> Result<IpNet, NetError> {
        let net = parse_cidr_lenient(text)?;
        if net.addr() != net.network() {
            return Err(NetError::HostBits {
                text: text.to_string(),
                network: net.trunc().to_string(),
            });
        }
        Ok(net)
    }
    /// True when no address is in the set.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
    /// Membership.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.contains(u32::from(a)),
            IpAddr::V6(a) => self.v6.contains(u128::from(a)),
        }
    }
    /// Union.
    pub fn union(&self, o: &Self) -> Self {
        AddrSet {
            v4: self.v4.union(&o.v4),
            v6: self.v6.union(&o.v6),
        }
    }
    /// Union of many sets, sorted once (see [`Intervals::union_all`]).
    pub fn union_all<'a>(sets: impl IntoIterator<Item = &'a AddrSet> + Clone) -> Self {
        AddrSet {
            v4: Intervals::union_all(sets.clone().into_iter().map(|s| &s.v4)),
            v6: Intervals::union_all(sets.into_iter().map(|s| &s.v6)),
        }
    }
    /// Intersection.
    pub fn intersect(&self, o: &Self) -> Self {
        AddrSet {
            v4: self.v4.intersect(&o.v4),
            v6: self.v6.intersect(&o.v6),
        }
    }
    /// Difference.
    pub fn subtract(&self, o: &Self) -> Self {
        AddrSet {
            v4: self.v4.subtract(&o.v4),
            v6: self.v6.subtract(&o.v6),
        }
    }
    /// Subset test.
    pub fn is_subset(&self, o: &Self) -> bool {
        self.v4.is_subset(&o.v4) && self.v6.is_subset(&o.v6)
    }
    /// Overlap test.
    pub fn overlaps(&self, o: &Self) -> bool {
        self.v4.overlaps(&o.v4) || self.v6.overlaps(&o.v6)
    }
    /// Only the IPv4 part.
    pub fn only_v4(&self) -> Self {
        AddrSet {
            v4: self.v4.clone(),
            v6: Intervals::empty(),
        }
    }
    /// Only the IPv6 part.
    pub fn only_v6(&self) -> Self {
        AddrSet {
            v4: Intervals::empty(),
            v6: self.v6.clone(),
        }
    }
    /// The fewest IPv4 prefixes covering exactly the IPv4 part.
    pub fn v4_prefixes(&self) -> Vec<Ipv4Net> {
        let mut out = Vec::new();
        for &(a, b) in self.v4.ranges() {
            let mut a = a as u64;
            let b = b as u64;
            while a <= b {
                let mut len = 32u8;
                // grow the block while aligned and inside [a, b]
                while len > 0 {
                    let size = 1u64 << (32 - (len - 1));
                    if a % size != 0 || a + size - 1 > b {
                        break;
                    }
                    len -= 1;
                }
                out.push(Ipv4Net::new(Ipv4Addr::from(a as u32), len).expect("len <= 32"));
                a += 1u64 << (32 - len);
            }
        }
        out
    }
    /// The fewest IPv6 prefixes covering exactly the IPv6 part.
    pub fn v6_prefixes(&self) -> Vec<Ipv6Net> {
        let mut out = Vec::new();
        for &(a, b) in self.v6.ranges() {
            let mut a = a;
            loop {
                let mut len = 128u8;
                while len > 0 {
                    let bits = 128 - (len - 1) as u32;
                    let size_m1: u128 = if bits == 128 {
                        u128::MAX
                    } else {
                        (1u128 << bits) - 1
                    };
                    if a & size_m1 != 0 || a.checked_add(size_m1).is_none_or(|end| end > b) {
                        break;
                    }
                    len -= 1;
                }
                out.push(Ipv6Net::new(Ipv6Addr::from(a), len).expect("len <= 128"));
                let bits = 128 - len as u32;
                let last = if bits == 128 {
                    u128::MAX
                } else {
                    a + ((1u128 << bits) - 1)
                };
                if last >= b {
                    break;
                }
                a = last + 1;
            }
        }
        out
    }
    /// All prefixes, IPv4 first, each family the fewest exact cover.
    pub fn prefixes(&self) -> Vec<IpNet> {
        self.v4_prefixes()
            .into_iter()
            .map(IpNet::V4)
            .chain(self.v6_prefixes().into_iter().map(IpNet::V6))
            .collect()
    }
    /// Canonical prefix texts (IPv6 in RFC 5952 form), for stable output and diffing.
    pub fn to_strings(&self) -> Vec<String> {
        self.prefixes().iter().map(|n| n.to_string()).collect()
    }
}

impl fmt::Display for AddrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&self.to_strings().join(", "))
    }
}

/// Parse a CIDR or bare address (a bare address is a /32 or /128), keeping host bits.
/// Clouds that normalise host bits away use this and then `trunc()`.
pub fn parse_cidr_lenient(text: &str) -> Result<IpNet, NetError> {
    let t = text.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n);
    }
    if let Ok(a) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    Err(NetError::Invalid(text.to_string()))
}

/// Canonical text of a CIDR as clouds store it: host bits cleared, IPv6 compressed, a bare
/// address given its full-length prefix. `None` if the text is not an address at all.
pub fn canonical_cidr(text: &str) -> Option<String> {
    parse_cidr_lenient(text).ok().map(|n| n.trunc().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(xs: &[&str]) -> AddrSet {
        let nets: Vec<IpNet> = xs.iter().map(|x| x.parse().unwrap()).collect();
        AddrSet::from_nets(&nets)
    }

    #[test]
    fn subtract_makes_exact_prefixes() {
        let s = set(&["0.0.0.0/0"]).subtract(&set(&["10.0.0.0/8"]));
        assert_eq!(s.to_strings().len(), 8);
        assert!(!s.contains("10.1.2.3".parse().unwrap()));
        assert!(s.contains("11.0.0.0".parse().unwrap()));
        assert!(s.contains("9.255.255.255".parse().unwrap()));
    }

    #[test]
    fn full_ranges_render_as_slash_zero() {
        assert_eq!(AddrSet::any().to_strings(), vec!["0.0.0.0/0", "::/0"]);
    }

    #[test]
    fn host_bits_are_rejected_with_the_network() {
        let e = AddrSet::parse_cidr_strict("10.0.0.5/24").unwrap_err();
        assert_eq!(
            e,
            NetError::HostBits {
                text: "10.0.0.5/24".into(),
                network: "10.0.0.0/24".into()
            }
        );
        assert_eq!(
            canonical_cidr("2001:0db8:0000::/48").unwrap(),
            "2001:db8::/48"
        );
    }

    #[test]
    fn port_parse_errors() {
        assert!(PortSet::parse_range("65536").is_err());
        assert!(PortSet::parse_range("+443").is_err());
        assert!(PortSet::parse_range("80-+90").is_err());
        assert!(PortSet::parse_range("99999999999999999999999").is_err());
        assert!(PortSet::parse_range("90-80").is_err());
        assert_eq!(PortSet::parse_range("80-80").unwrap(), (80, 80));
    }

    proptest! {
        #[test]
        fn prefixes_cover_exactly(a in any::<u32>(), b in any::<u32>(), c in any::<u128>(), d in any::<u128>()) {
            let s = AddrSet { v4: Intervals::range(a, b), v6: Intervals::range(c, d) };
            let back = AddrSet::from_nets(&s.prefixes());
            prop_assert_eq!(back, s);
        }

        #[test]
        fn interval_algebra_matches_membership(
            xs in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..6),
            ys in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..6),
            probe in any::<u16>())
        {
            let a = PortSet::from_ranges(xs.clone());
            let b = PortSet::from_ranges(ys.clone());
            let in_a = xs.iter().any(|&(x, y)| probe >= x.min(y) && probe <= x.max(y));
            let in_b = ys.iter().any(|&(x, y)| probe >= x.min(y) && probe <= x.max(y));
            prop_assert_eq!(a.contains(probe), in_a);
            prop_assert_eq!(a.union(&b).contains(probe), in_a || in_b);
            prop_assert_eq!(a.intersect(&b).contains(probe), in_a && in_b);
            prop_assert_eq!(a.subtract(&b).contains(probe), in_a && !in_b);
            prop_assert_eq!(a.complement().contains(probe), !in_a);
        }

        /// The linear merges give exactly what the old compositions gave (union by sorting
        /// the concatenation, difference as intersection with the complement, subset and
        /// overlap by building the sets), on random sets with adjacent and touching edges.
        #[test]
        fn linear_merges_equal_the_old_compositions(
            xs in proptest::collection::vec((0u16..64, 0u16..64), 0..8),
            ys in proptest::collection::vec((0u16..64, 0u16..64), 0..8),
            zs in proptest::collection::vec(proptest::collection::vec((0u16..64, 0u16..64), 0..4), 0..5),
            wide in any::<bool>())
        {
            // scale to the whole domain sometimes, so MIN and MAX edges are exercised
            let f = |v: &Vec<(u16, u16)>| -> Vec<(u16, u16)> {
                v.iter().map(|&(x, y)| if wide { (x.saturating_mul(1040), y.saturating_mul(1040).saturating_add(15)) } else { (x, y) }).collect()
            };
            let a = PortSet::from_ranges(f(&xs));
            let b = PortSet::from_ranges(f(&ys));
            let old_union = PortSet::from_ranges(a.ranges().iter().chain(b.ranges()).copied());
            prop_assert_eq!(a.union(&b), old_union);
            prop_assert_eq!(a.subtract(&b), a.intersect(&b.complement()));
            prop_assert_eq!(a.is_subset(&b), a.intersect(&b.complement()).is_empty());
            prop_assert_eq!(a.overlaps(&b), !a.intersect(&b).is_empty());
            let sets: Vec<PortSet> = zs.iter().map(|z| PortSet::from_ranges(f(z))).collect();
            let folded = sets.iter().fold(PortSet::empty(), |acc, s| acc.union(s));
            prop_assert_eq!(PortSet::union_all(&sets), folded);
        }

        #[test]
        fn port_range_text_roundtrip(a in any::<u16>(), b in any::<u16>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            let text = if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
            prop_assert_eq!(PortSet::parse_range(&text).unwrap(), (lo, hi));
            prop_assert_eq!(PortSet::range(lo, hi).to_strings(), vec![text]);
        }
    }
}
