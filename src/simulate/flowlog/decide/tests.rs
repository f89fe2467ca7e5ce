//! Property tests: the compiled verdicts equal `judge` and `EvalPolicy::evaluate`.

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
