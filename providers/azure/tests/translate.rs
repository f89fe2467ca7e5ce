//! Translation: golden snapshots, stable priorities (no churn), findings and limits.

mod common;

use common::*;
use intentwall_azure::AzureProvider;
use intentwall_contract::check::check_exhaustive;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{FindingKind, NativeObject, NativeState, Provider, Translation};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn tr(it: &intentwall_contract::DeploymentIntent, observed: &NativeState) -> Translation {
    AzureProvider.translate(it, observed)
}

fn as_state(t: &Translation) -> NativeState {
    NativeState {
        objects: t.objects.clone(),
        envelope: None,
    }
}

/// What the cloud would hold after an apply, read back from the rendered document.
fn applied(it: &intentwall_contract::DeploymentIntent, t: &Translation) -> NativeState {
    let text = AzureProvider.render_snapshot(&as_state(t));
    AzureProvider.parse_snapshot(&text, it).unwrap()
}

fn priorities(t: &Translation) -> BTreeMap<String, u64> {
    t.objects
        .iter()
        .filter(|o| !o.container)
        .map(|o| (o.key.clone(), o.body.value()["priority"].as_u64().unwrap()))
        .collect()
}

#[test]
fn golden_render_of_design_example() {
    let it = golden();
    let t = tr(&it, &NativeState::default());
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    insta::assert_snapshot!("golden_cli", AzureProvider.render_snapshot(&as_state(&t)));
    let arm = NativeState {
        objects: t.objects.clone(),
        envelope: Some("value+arm".into()),
    };
    insta::assert_snapshot!("golden_arm", AzureProvider.render_snapshot(&arm));
    let summaries: Vec<String> = t
        .objects
        .iter()
        .map(|o| format!("{} | {}", o.key, o.summary))
        .collect();
    insta::assert_json_snapshot!("golden_summaries", summaries);
    // the golden intent is exactly expressed
    let pol = AzureProvider.lower(&applied(&it, &t), &it);
    let r = check_exhaustive(&it, &AzureProvider.platform_allowances(&it), &pol, 5);
    assert_eq!(r.mismatch_count, 0, "{:#?}", r.mismatches);
}

#[test]
fn translating_against_own_output_is_stable() {
    let it = golden();
    let t1 = tr(&it, &NativeState::default());
    let t2 = tr(&it, &applied(&it, &t1));
    assert_eq!(t1.objects, t2.objects);
    let t3 = tr(&it, &applied(&it, &t2));
    assert_eq!(t2.objects, t3.objects);
}

#[test]
fn inserting_a_flow_does_not_renumber_the_others() {
    let it = golden();
    let t1 = tr(&it, &NativeState::default());
    let mut it2 = golden();
    it2.flows.insert(
        1,
        allow(
            "api-from-corp",
            net("corp", &["203.0.113.0/24"]),
            g("api"),
            &["tcp/22"],
        ),
    );
    it2.flows
        .insert(0, deny("no-web-to-db", g("web"), g("db"), &["any"]));
    let t2 = tr(&it2, &applied(&it, &t1));
    let (p1, p2) = (priorities(&t1), priorities(&t2));
    for (k, p) in &p1 {
        assert_eq!(p2.get(k), Some(p), "{k} moved");
    }
    // the new rules got free priorities in their bands, not colliding with anything
    assert!((2000..4000).contains(&p2["rule:iw-api-from-corp-in-1"]));
    assert!((100..2000).contains(&p2["rule:iw-no-web-to-db-in-1"]));
    let mut seen = std::collections::BTreeSet::new();
    for o in t2.objects.iter().filter(|o| !o.container) {
        assert!(
            seen.insert((
                o.body.value()["direction"].to_string(),
                o.body.value()["priority"].to_string()
            )),
            "collision at {}",
            o.key
        );
    }
}

#[test]
fn removing_a_flow_does_not_renumber_the_others() {
    let it = golden();
    let t1 = tr(&it, &NativeState::default());
    let mut it2 = golden();
    it2.flows.remove(1); // api-from-web
    let t2 = tr(&it2, &applied(&it, &t1));
    let (p1, p2) = (priorities(&t1), priorities(&t2));
    assert!(!p2.contains_key("rule:iw-api-from-web-in-1"));
    for (k, p) in &p2 {
        assert_eq!(p1.get(k), Some(p), "{k} moved");
    }
}

#[test]
fn new_rules_skip_priorities_held_by_unmanaged_and_stale_rules() {
    let it = golden();
    let doc = json!([{"name": "nsg-prod-us", "securityRules": [
        {"name": "legacy", "access": "Allow", "direction": "Inbound", "priority": 2000, "protocol": "Tcp",
         "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"},
        {"name": "iw-old-flow-in-1", "description": "intentwall:old-flow", "access": "Allow", "direction": "Inbound",
         "priority": 2001, "protocol": "Tcp", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "destinationPortRange": "23"},
        {"name": "out-2000", "access": "Deny", "direction": "Outbound", "priority": 100, "protocol": "*",
         "sourceAddressPrefix": "*", "destinationAddressPrefix": "192.0.2.0/24"}
    ]}]);
    let obs = AzureProvider.parse_snapshot(&doc.to_string(), &it).unwrap();
    let t = tr(&it, &obs);
    let p = priorities(&t);
    let inbound: Vec<u64> = t
        .objects
        .iter()
        .filter(|o| o.body.value()["direction"] == "Inbound")
        .map(|o| o.body.value()["priority"].as_u64().unwrap())
        .collect();
    assert!(!inbound.contains(&2001) && !inbound.contains(&2000));
    let inbound_allows: Vec<u64> = t
        .objects
        .iter()
        .filter(|o| {
            o.body.value()["direction"] == "Inbound"
                && o.body.value()["access"] == "Allow"
                && o.flow.is_some()
        })
        .map(|o| o.body.value()["priority"].as_u64().unwrap())
        .collect();
    assert_eq!(inbound_allows.iter().min(), Some(&2002));
    // inbound deny band: 100 is free inbound (the unmanaged 100 is outbound)
    assert_eq!(p["rule:iw-no-corp-to-db-in-1"], 100);
}

#[test]
fn observed_priority_outside_band_is_reallocated() {
    let it = golden();
    let doc = json!([{"name": "nsg-prod-us", "securityRules": [
        {"name": "iw-web-from-internet-in-1", "description": "intentwall:web-from-internet", "access": "Allow",
         "direction": "Inbound", "priority": 150, "protocol": "Tcp", "sourceAddressPrefix": "0.0.0.0/0",
         "destinationAddressPrefix": "*", "destinationPortRange": "443"}
    ]}]);
    let obs = AzureProvider.parse_snapshot(&doc.to_string(), &it).unwrap();
    let p = priorities(&tr(&it, &obs));
    assert!((2000..4000).contains(&p["rule:iw-web-from-internet-in-1"]));
}

#[test]
fn exhausted_band_is_a_limit_finding() {
    let flows = (0..1901)
        .map(|i| {
            deny(
                &format!("d{i}"),
                net("n", &["192.0.2.0/24"]),
                g("web"),
                &["tcp/22"],
            )
        })
        .collect();
    let it = intent(&[("web", false)], flows);
    let t = tr(&it, &NativeState::default());
    let lim: Vec<_> = t
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Limit)
        .collect();
    assert!(
        lim.iter().any(|f| f.flow.as_deref() == Some("d1900")
            && f.message.contains("no free Inbound priority")),
        "{lim:#?}"
    );
}

#[test]
fn too_many_rules_is_a_limit_finding() {
    let flows = (0..1000)
        .map(|i| {
            allow(
                &format!("a{i}"),
                net("n", &["192.0.2.0/24"]),
                g("web"),
                &["tcp/22"],
            )
        })
        .collect();
    let it = intent(&[("web", false)], flows);
    let t = tr(&it, &NativeState::default());
    assert!(
        t.findings.iter().any(|f| f.kind == FindingKind::Limit
            && f.message.contains("over quota `rules_per_nsg` = 1000")
            && f.message.contains("the cloud's maximum")),
        "{:#?}",
        &t.findings[..t.findings.len().min(3)]
    );
}

#[test]
fn too_many_prefixes_is_a_limit_finding() {
    let addrs: Vec<String> = (0..4001u32)
        .map(|i| format!("11.{}.{}.0/24", i / 128, (i % 128) * 2))
        .collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let it = intent(
        &[("web", false)],
        vec![allow("big", net("many", &refs), g("web"), &["tcp/443"])],
    );
    let t = tr(&it, &NativeState::default());
    assert!(t.findings.iter().any(|f| f.kind == FindingKind::Limit
        && f.flow.as_deref() == Some("big")
        && f.message.contains("4000")));
}

#[test]
fn too_many_asgs_is_a_limit_finding_and_restricted_egress_splits_by_ten() {
    let names: Vec<String> = (0..101).map(|i| format!("g{i:03}")).collect();
    let groups: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), true)).collect();
    let flows = names
        .iter()
        .map(|n| {
            allow(
                &format!("to-{n}"),
                net("n", &["192.0.2.0/24"]),
                g(n),
                &["tcp/22"],
            )
        })
        .collect();
    let it = intent(&groups, flows);
    let t = tr(&it, &NativeState::default());
    assert!(t
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Limit && f.message.contains("ASGs")));
    let restr: Vec<&NativeObject> = t
        .objects
        .iter()
        .filter(|o| o.key.starts_with("rule:iw-deny-restricted-egress"))
        .collect();
    assert_eq!(restr.len(), 11);
    assert!(restr
        .iter()
        .all(|o| o.body.value()["sourceApplicationSecurityGroups"]
            .as_array()
            .unwrap()
            .len()
            <= 10));
    let prios: Vec<u64> = restr
        .iter()
        .map(|o| o.body.value()["priority"].as_u64().unwrap())
        .collect();
    assert_eq!(*prios.iter().max().unwrap(), 4095);
    assert_eq!(*prios.iter().min().unwrap(), 4085);
}

#[test]
fn inexpressible_tokens_are_findings_never_widened() {
    let it = intent(
        &[("web", false), ("api", false)],
        vec![
            allow(
                "ping-typed",
                net("corp", &["203.0.113.0/24"]),
                g("web"),
                &["icmp/8", "tcp/443"],
            ),
            allow(
                "gre-in",
                net("corp", &["203.0.113.0/24"]),
                g("web"),
                &["gre"],
            ),
            allow("sctp-in", g("api"), g("web"), &["sctp/9899"]),
            allow("ping-groups", g("api"), g("web"), &["icmp"]),
            allow("ping-both", g("api"), g("web"), &["icmp", "icmpv6"]),
            allow(
                "ping-v4",
                net("corp", &["203.0.113.0/24"]),
                g("web"),
                &["icmp"],
            ),
            allow(
                "ping-dual",
                net("internet", &["0.0.0.0/0", "::/0"]),
                g("web"),
                &["icmp"],
            ),
        ],
    );
    let t = tr(&it, &NativeState::default());
    let flagged: Vec<&str> = t
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Inexpressible)
        .filter_map(|f| f.flow.as_deref())
        .collect();
    for f in ["ping-typed", "gre-in", "sctp-in", "ping-groups"] {
        assert!(flagged.contains(&f), "{f} not flagged: {:#?}", t.findings);
    }
    // `icmp` from a dual-stack network: ICMPv4 only comes from its IPv4 addresses, so the
    // IPv4 prefixes get an Icmp rule and the IPv6 ones need none
    for f in ["ping-both", "ping-v4", "ping-dual"] {
        assert!(!flagged.contains(&f), "{f} flagged: {:#?}", t.findings);
    }
    // the typed ICMP flow keeps its tcp part and gets no Icmp rule; never `*` with ports
    let protos: Vec<(String, Value)> = t
        .objects
        .iter()
        .filter(|o| o.flow.as_deref() == Some("ping-typed"))
        .map(|o| {
            let body = o.body.value();
            (
                body["protocol"].as_str().unwrap().to_string(),
                body["destinationPortRanges"].clone(),
            )
        })
        .collect();
    assert_eq!(protos, [("Tcp".to_string(), json!(["443"]))]);
    assert!(
        t.objects
            .iter()
            .filter(|o| o.flow.as_deref() == Some("ping-groups"))
            .count()
            == 0
    );
    for o in &t.objects {
        if o.body.value()["protocol"] == "*" {
            assert_eq!(
                o.body.value()["destinationPortRanges"],
                json!(["*"]),
                "{}",
                o.key
            );
        }
    }
}

#[test]
fn load_balancer_probes_deny_removes_rule_and_allowance() {
    let mut it = golden();
    assert_eq!(AzureProvider.platform_allowances(&it).len(), 3);
    assert!(tr(&it, &NativeState::default())
        .objects
        .iter()
        .any(|o| o.key == "rule:iw-allow-azure-lb-probes"));
    it.settings
        .insert("load_balancer_probes".into(), "deny".into());
    assert!(AzureProvider.platform_allowances(&it).is_empty());
    let t = tr(&it, &NativeState::default());
    assert!(!t
        .objects
        .iter()
        .any(|o| o.key == "rule:iw-allow-azure-lb-probes"));
    let pol = AzureProvider.lower(&applied(&it, &t), &it);
    let r = check_exhaustive(&it, &[], &pol, 5);
    assert_eq!(r.mismatch_count, 0, "{:#?}", r.mismatches);
}

#[test]
fn rule_names_are_valid_bounded_and_deterministic() {
    use intentwall_azure::model::Dir;
    use intentwall_azure::translate::rule_name;
    let long = "x".repeat(200);
    for flow in [
        "web-from-internet",
        long.as_str(),
        "has space/and:colon",
        "ünïcode",
    ] {
        let n = rule_name(flow, Dir::Outbound, 12);
        assert!(n.len() <= 80, "{n}");
        assert!(n.starts_with("iw-") && n.ends_with("-out-12"), "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{n}"
        );
        assert_eq!(n, rule_name(flow, Dir::Outbound, 12));
    }
    assert_ne!(
        rule_name("a b", Dir::Inbound, 1),
        rule_name("a-b", Dir::Inbound, 1)
    );
    assert_eq!(rule_name("web", Dir::Inbound, 1), "iw-web-in-1");
}

#[test]
fn in_place_is_always_update() {
    let t = tr(&golden(), &NativeState::default());
    assert_eq!(
        AzureProvider.in_place(&t.objects[1], &t.objects[2]),
        intentwall_contract::InPlace::Update
    );
}

#[test]
fn the_nsg_quotas_are_configuration() {
    let flows = (0..30)
        .map(|i| {
            allow(
                &format!("a{i}"),
                net("n", &["192.0.2.0/24"]),
                g("web"),
                &["tcp/22"],
            )
        })
        .collect();
    let mut it = intent(&[("web", false)], flows);
    let limits = |t: &Translation| -> Vec<String> {
        t.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Limit)
            .map(|f| f.message.clone())
            .collect()
    };
    // 30 flow rules + the baseline fit Azure's 1000
    assert!(limits(&tr(&it, &NativeState::default())).is_empty());
    // a lowered quota creates the finding, naming the configured value
    it.settings
        .insert("quotas.rules_per_nsg".into(), "20".into());
    let lowered = tr(&it, &NativeState::default());
    let l = limits(&lowered);
    assert!(
        !l.is_empty()
            && l.iter()
                .all(|m| m.contains("over quota `rules_per_nsg` = 20 (configured)")),
        "{l:#?}"
    );
    // raised back (at most Azure's fixed 1000), it goes away; the rules never change
    it.settings
        .insert("quotas.rules_per_nsg".into(), "1000".into());
    let raised = tr(&it, &NativeState::default());
    assert!(limits(&raised).is_empty());
    assert_eq!(raised.objects, lowered.objects);
    // prefixes per NSG and ASGs per NSG likewise
    it.settings
        .insert("quotas.prefixes_per_nsg".into(), "10".into());
    let l = limits(&tr(&it, &NativeState::default()));
    assert!(
        l.iter()
            .any(|m| m.contains("quota `prefixes_per_nsg` = 10")),
        "{l:#?}"
    );
    let mut two = intent(
        &[("web", false), ("api", false)],
        vec![allow("x", g("web"), g("api"), &["tcp/1"])],
    );
    assert!(limits(&tr(&two, &NativeState::default())).is_empty());
    two.settings
        .insert("quotas.asgs_per_nsg".into(), "1".into());
    let l = limits(&tr(&two, &NativeState::default()));
    assert!(
        l.iter().any(|m| m.contains("quota `asgs_per_nsg` = 1")),
        "{l:#?}"
    );
}
