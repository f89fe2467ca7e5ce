//! Address and packet classes: every address and packet a replay meets is mapped to the
//! elementary interval it falls in, so a verdict is computed once per class.

use super::*;

/// Elementary address intervals of both families, as sorted cut points (each family's list
/// starts at 0). Class ids: IPv4 intervals first, then IPv6.
#[derive(Debug, Clone)]
pub struct AddrClasses {
    pub(super) v4: Vec<u32>,
    pub(super) v6: Vec<u128>,
}

impl AddrClasses {
    pub(super) fn new<'a>(sets: impl Iterator<Item = &'a AddrSet>) -> Self {
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

    pub(super) fn of_v4(&self, a: u32) -> u32 {
        // cuts[0] == 0 <= a, so the count is at least 1
        (self.v4.partition_point(|&c| c <= a) - 1) as u32
    }

    pub(super) fn of_v6(&self, a: u128) -> u32 {
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
    pub(super) fn ranges_of(&self, s: &AddrSet) -> impl Iterator<Item = (u32, u32)> + '_ {
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
pub(super) enum ProtoKind {
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
pub(super) struct IcmpSlot {
    /// The slot's first class, relative to the protocol's base.
    pub(super) offset: u32,
    pub(super) class_of_code: Box<[u16; 256]>,
}

/// Packet classes of every protocol, with dense ids and one representative packet each.
#[derive(Debug, Clone)]
pub struct PacketClasses {
    /// Per protocol: its first class id (protocols no token names share one class).
    pub(super) base: [u32; 256],
    /// Per protocol: how many classes it has.
    pub(super) count: [u32; 256],
    pub(super) kind: Vec<ProtoKind>,
    /// One packet per class id.
    pub(super) reps: Vec<Packet>,
}

impl PacketClasses {
    pub(super) fn new(traffic: &[&Traffic]) -> Self {
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
    pub(super) fn matched_by<'a>(&'a self, t: &'a Traffic) -> impl Iterator<Item = u32> + 'a {
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
