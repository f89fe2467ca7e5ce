//! Translate -> render -> parse -> lower, checked against the oracle on every class.
mod common;

use common::*;
use intentwall_aws::AwsProvider;
use intentwall_contract::check::check_exhaustive;
use intentwall_contract::oracle::flow_matches;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{
    Action, DeploymentIntent, Endpoint, FindingKind, FlowIntent, GroupIntent, NativeState,
    Provider, Traffic,
};
use proptest::prelude::*;

const PREFIXES: &[&str] = &[
    "0.0.0.0/0",
    "::/0",
    "10.10.0.0/16",
    "10.10.1.0/24",
    "10.10.0.128/25",
    "203.0.113.0/24",
    "203.0.113.64/26",
    "198.51.100.7/32",
    "10.10.2.0/23",
    "2001:db8::/32",
    "2001:db8:1::/48",
    "2600:1f18:1234:5601::/64",
];

const TOKENS: &[&str] = &[
    "tcp/443",
    "tcp/80-90",
    "tcp/85",
    "tcp",
    "udp/53",
    "udp/1000-2000",
    "icmp",
    "icmp/8",
    "icmp/8/0",
    "icmpv6",
    "icmpv6/128",
    "any",
    "esp",
    "sctp",
    "sctp/9899",
    "ip/47",
];

#[derive(Debug, Clone)]
struct Gen {
    intent: DeploymentIntent,
    expressible: bool,
}

fn gen_intent() -> impl Strategy<Value = Gen> {
    let groups = prop::collection::vec((any::<bool>(), 0u8..10), 1..=5);
    let nets = prop::collection::vec(prop::collection::vec(0..PREFIXES.len(), 1..=3), 0..=4);
    (groups, nets).prop_flat_map(|(groups, nets)| {
        let ng = groups.len();
        let nn = nets.len();
        let flow = (
            0..ng + nn,
            0..ng + nn,
            0u8..10,
            prop::collection::vec(0..TOKENS.len(), 1..=2),
        );
        (Just(groups), Just(nets), prop::collection::vec(flow, 1..=8))
            .prop_map(move |(groups, nets, flows)| build(groups, nets, flows))
    })
}

fn build(
    groups: Vec<(bool, u8)>,
    nets: Vec<Vec<usize>>,
    flows: Vec<(usize, usize, u8, Vec<usize>)>,
) -> Gen {
    let gs: Vec<GroupIntent> = groups
        .iter()
        .enumerate()
        .map(|(i, &(restricted_egress, addr))| GroupIntent {
            egress_restricted: restricted_egress && addr % 2 == 0,
            // disjoint, exclusive addresses for some groups (v4, sometimes v6 too)
            addresses: match addr {
                0..=2 => Some(addrs(&[&format!("10.10.{}.0/25", 8 + i)])),
                3 => Some(addrs(&[
                    &format!("10.10.{}.0/25", 8 + i),
                    &format!("2600:1f18:1234:56{:x}0::/60", 8 + i),
                ])),
                _ => None,
            },
            ..group(&format!("g{i}"))
        })
        .collect();
    let ns: Vec<Endpoint> = nets
        .iter()
        .enumerate()
        .map(|(i, ps)| {
            let cidrs: Vec<&str> = ps.iter().map(|&p| PREFIXES[p]).collect();
            n(&format!("n{i}"), &cidrs)
        })
        .collect();
    let ng = gs.len();
    let end = |k: usize| {
        if k < ng {
            g(&format!("g{k}"))
        } else {
            ns[k - ng].clone()
        }
    };
    let mut fs: Vec<FlowIntent> = Vec::new();
    for (i, (a, b, act, toks)) in flows.into_iter().enumerate() {
        let (mut from, to) = (end(a), end(b));
        if from.group().is_none() && to.group().is_none() {
            from = g("g0"); // a flow needs a group end
        }
        fs.push(FlowIntent {
            name: format!("f{i}"),
            action: if act < 3 { Action::Deny } else { Action::Allow },
            from,
            to,
            traffic: toks
                .iter()
                .map(|&t| Traffic::parse(TOKENS[t]).unwrap())
                .collect(),
            guardrail: false,
        });
    }
    let expressible = fs.iter().all(|f| {
        f.action == Action::Allow
            && f.traffic
                .iter()
                .all(|t| !(t.proto == Some(132) && t.restricts_ports()))
    });
    Gen {
        intent: intent(gs, fs),
        expressible,
    }
}

fn run(gen: &Gen) -> Result<(), TestCaseError> {
    let intent = &gen.intent;
    let p = AwsProvider;
    let t = p.translate(intent, &NativeState::default());
    let state = NativeState {
        objects: t.objects.clone(),
        envelope: None,
    };
    let text = p.render_snapshot(&state);
    let back = p
        .parse_snapshot(&text, intent)
        .map_err(|e| TestCaseError::fail(format!("reparse: {e}\n{text}")))?;
    let kb = |s: &NativeState| {
        let mut v: Vec<(String, serde_json::Value)> = s
            .objects
            .iter()
            .map(|o| (o.key.clone(), o.body.value()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    prop_assert_eq!(kb(&state), kb(&back), "round trip changed keys or bodies");
    prop_assert!(back.objects.iter().all(|o| o.managed && !o.foreign));
    // stable allocation: translating against our own output gives the same objects
    let again = p.translate(intent, &back);
    prop_assert_eq!(&again.objects, &t.objects);

    let pol = p.lower(&back, intent);
    let allowances = p.platform_allowances(intent);
    let r = check_exhaustive(intent, &allowances, &pol, 10);
    let blocking: Vec<_> = t
        .findings
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Inexpressible | FindingKind::Limit))
        .collect();
    for m in &r.mismatches {
        let covered = blocking.iter().any(|f| {
            let name = f.flow.as_deref().unwrap_or("");
            let by_flow = intent
                .flows
                .iter()
                .any(|fl| fl.name == name && flow_matches(fl, &m.probe));
            let by_restricted = m.probe.src.group.as_ref().is_some_and(|sg| {
                intent.groups[sg].egress_restricted
                    && intent
                        .flows
                        .iter()
                        .any(|fl| fl.name == name && fl.from.group() == Some(sg.as_str()))
            });
            by_flow || by_restricted
        });
        prop_assert!(
            covered,
            "uncovered mismatch {} (oracle {:?}: {}, native {} by {:?})\nfindings: {:#?}\nintent: {:#?}\n{}",
            m.probe,
            m.oracle.allowed,
            m.oracle.reason,
            m.native_allowed,
            m.native_rule,
            t.findings,
            intent.flows,
            text
        );
    }
    if gen.expressible {
        prop_assert!(
            t.findings.is_empty(),
            "findings on an expressible intent: {:#?}",
            t.findings
        );
        prop_assert_eq!(r.mismatch_count, 0, "mismatches: {:#?}", r.mismatches);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn translated_rules_match_the_oracle_or_carry_a_finding(gen in gen_intent()) {
        run(&gen)?;
    }
}

/// Denies only from networks with `any` traffic against CIDR allows: always exact.
#[test]
fn network_any_deny_against_cidr_allow_is_exact() {
    let i = intent(
        vec![group("web")],
        vec![
            allow(
                "in",
                n("internet", &["0.0.0.0/0", "::/0"]),
                g("web"),
                &["tcp/443"],
            ),
            deny(
                "no-corp",
                n("corp", &["203.0.113.0/24", "2001:db8:100::/48"]),
                g("web"),
                &["any"],
            ),
        ],
    );
    let gen = Gen {
        intent: i,
        expressible: false,
    };
    run(&gen).unwrap();
    let t = AwsProvider.translate(&gen.intent, &NativeState::default());
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
}
