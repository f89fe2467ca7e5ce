//! The property test: for random small intents, the rules `translate` emits, rendered,
//! read back and lowered with GCP's semantics, give the oracle's verdict on every
//! equivalence class of (source, destination, packet), except where a finding names a
//! flow that covers the disagreement; and intents in GCP's expressible subset give no
//! finding and no mismatch at all.

mod common;

use common::*;
use intentwall_contract::check::check_exhaustive;
use intentwall_contract::oracle::flow_matches;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{
    Action, DeploymentIntent, Endpoint, FindingKind, FlowIntent, GroupIntent, NativeState,
    Provider, Traffic,
};
use intentwall_gcp::GcpProvider;
use proptest::prelude::*;

const GROUPS: [&str; 5] = ["web", "api", "db", "batch", "cache"];
const POOL: [&str; 10] = [
    "0.0.0.0/0",
    "::/0",
    "203.0.113.0/24",
    "10.30.0.0/20",
    "10.30.16.0/24",
    "2001:db8::/32",
    "198.51.100.0/25",
    "fd00:30::/64",
    "10.30.64.0/18",
    "10.30.32.7/32",
];
const TOKENS: [&str; 15] = [
    "tcp/443",
    "tcp/8000-8099",
    "udp/53",
    "tcp",
    "icmp",
    "icmp/8",
    "icmpv6",
    "esp",
    "gre",
    "sctp/9899",
    "any",
    "ip/99",
    "tcp/22",
    "udp/1000-2000",
    "icmpv6/128/0",
];

#[derive(Debug, Clone)]
struct GroupSpec {
    restricted: bool,
    addr: Option<bool>, // Some(v6 too)
    sa: bool,
}

#[derive(Debug, Clone)]
struct FlowSpec {
    from: (bool, usize), // (is group, index)
    to: (bool, usize),
    deny: bool,
    tokens: Vec<usize>,
}

fn group_spec() -> impl Strategy<Value = GroupSpec> {
    (
        prop::bool::weighted(0.35),
        prop::option::weighted(0.4, any::<bool>()),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(restricted, addr, sa)| GroupSpec {
            restricted,
            addr,
            sa,
        })
}

fn flow_spec() -> impl Strategy<Value = FlowSpec> {
    (
        (prop::bool::weighted(0.6), 0usize..5),
        (prop::bool::weighted(0.7), 0usize..5),
        prop::bool::weighted(0.25),
        prop::collection::vec(0usize..TOKENS.len(), 1..4),
    )
        .prop_map(|(from, to, deny, tokens)| FlowSpec {
            from,
            to,
            deny,
            tokens,
        })
}

/// `typed`: keep typed ICMP tokens (inexpressible on GCP); otherwise they become untyped.
fn build(
    groups: &[GroupSpec],
    nets: &[Vec<usize>],
    flows: &[FlowSpec],
    typed: bool,
) -> DeploymentIntent {
    let gs: Vec<GroupIntent> = groups
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut gi = group(GROUPS[i]);
            gi.egress_restricted = s.restricted;
            gi.addresses = s.addr.map(|v6| {
                let v4 = format!("10.30.{}.0/20", 128 + i * 16);
                let v6t = format!("fd00:30:0:{}::/64", 0x100 + i);
                if v6 {
                    addrs(&[&v4, &v6t])
                } else {
                    addrs(&[&v4])
                }
            });
            gi.service_account =
                s.sa.then(|| format!("{}@acme-prod-us.iam.gserviceaccount.com", GROUPS[i]));
            gi
        })
        .collect();
    let endpoint = |(is_group, idx): (bool, usize)| -> Endpoint {
        if is_group || nets.is_empty() {
            Endpoint::Group(GROUPS[idx % groups.len()].into())
        } else {
            let k = idx % nets.len();
            let texts: Vec<&str> = nets[k].iter().map(|&p| POOL[p]).collect();
            net(&format!("net{k}"), &texts)
        }
    };
    let fs: Vec<FlowIntent> = flows
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let from = endpoint(s.from);
            let mut to = endpoint(s.to);
            if from.group().is_none() && to.group().is_none() {
                to = Endpoint::Group(GROUPS[s.to.1 % groups.len()].into());
            }
            FlowIntent {
                name: format!("f{i}"),
                action: if s.deny { Action::Deny } else { Action::Allow },
                from,
                to,
                traffic: s
                    .tokens
                    .iter()
                    .map(|&t| {
                        let tok = TOKENS[t];
                        let tok = match tok {
                            "icmp/8" if !typed => "icmp",
                            "icmpv6/128/0" if !typed => "icmpv6",
                            other => other,
                        };
                        Traffic::parse(tok).unwrap()
                    })
                    .collect(),
                guardrail: false,
            }
        })
        .collect();
    intent(gs, fs)
}

/// GCP's expressible subset, decided from the intent alone.
fn expressible(intent: &DeploymentIntent) -> bool {
    let sa = |g: &str| intent.groups[g].service_account.is_some();
    let has_addr = |g: &str| intent.groups[g].addresses.is_some();
    intent.flows.iter().all(|f| {
        if f.traffic.iter().any(Traffic::restricts_icmp) {
            return false;
        }
        match (&f.from, &f.to) {
            (Endpoint::Group(s), Endpoint::Group(d)) => {
                let ingress_ok = sa(s) == sa(d) || has_addr(s);
                let ingress_ok = ingress_ok || (f.action == Action::Deny && has_addr(d));
                let egress_ok =
                    f.action == Action::Deny || !intent.groups[s].egress_restricted || has_addr(d);
                ingress_ok && egress_ok
            }
            _ => true,
        }
    })
}

fn run(intent: &DeploymentIntent, expect_exact: bool) -> Result<(), TestCaseError> {
    let p = GcpProvider;
    let t = p.translate(intent, &NativeState::default());
    let state = NativeState {
        objects: t.objects.clone(),
        envelope: None,
    };
    let text = p.render_snapshot(&state);
    let reparsed = p
        .parse_snapshot(&text, intent)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(reparsed.objects.len(), state.objects.len());
    for (a, b) in state.objects.iter().zip(&reparsed.objects) {
        prop_assert_eq!(&a.key, &b.key);
        prop_assert_eq!(&a.body, &b.body);
        prop_assert_eq!(a.managed, b.managed);
        prop_assert_eq!(&a.flow, &b.flow);
        prop_assert!(!b.foreign);
    }
    let pol = p.lower(&reparsed, intent);
    let r = check_exhaustive(intent, &p.platform_allowances(intent), &pol, 10);
    if expect_exact {
        prop_assert!(
            t.findings.is_empty(),
            "expressible intent got findings: {:#?}",
            t.findings
        );
        prop_assert!(
            r.mismatch_count == 0,
            "{} mismatches, e.g. {:#?}\nrules: {text}",
            r.mismatch_count,
            r.mismatches.first()
        );
    }
    let named: Vec<&FlowIntent> = t
        .findings
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Inexpressible | FindingKind::Limit))
        .filter_map(|f| f.flow.as_deref())
        .flat_map(|n| intent.flows.iter().filter(move |fl| fl.name == n))
        .collect();
    for m in &r.mismatches {
        let covered = named.iter().any(|f| flow_matches(f, &m.probe))
            || m.probe.src.group.as_ref().is_some_and(|g| {
                intent.groups[g].egress_restricted
                    && named.iter().any(|f| f.from.group() == Some(g.as_str()))
            });
        prop_assert!(
            covered,
            "mismatch not covered by a finding: {} oracle={:?} native={} rule={:?}\nfindings: {:#?}\nrules: {text}",
            m.probe,
            m.oracle,
            m.native_allowed,
            m.native_rule,
            t.findings
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn lowered_translation_matches_the_oracle(
        groups in prop::collection::vec(group_spec(), 1..=5),
        nets in prop::collection::vec(prop::collection::vec(0usize..POOL.len(), 1..=3), 0..=4),
        flows in prop::collection::vec(flow_spec(), 1..=8),
        typed in prop::bool::weighted(0.2),
    ) {
        let intent = build(&groups, &nets, &flows, typed);
        let exact = expressible(&intent);
        if std::env::var("IW_STATS").is_ok() {
            eprintln!("STAT exact={exact}");
        }
        run(&intent, exact)?;
    }
}
