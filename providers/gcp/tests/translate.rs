//! Translation tests: a golden intent (insta snapshots of the rendered document), stable
//! re-translation, splitting at the per-rule limits, names and findings.

mod common;

use common::*;
use intentwall_contract::check::check_exhaustive;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{Action, DeploymentIntent, FindingKind, NativeState, Provider};
use intentwall_gcp::names::is_valid_name;
use intentwall_gcp::translate::{MAX_PORT_ENTRIES, MAX_RANGES_PER_RULE, MAX_TARGET_TAGS};
use intentwall_gcp::GcpProvider;

fn golden() -> DeploymentIntent {
    let mut api = group("api");
    api.egress_restricted = true;
    api.addresses = Some(addrs(&["10.30.4.0/24"]));
    let mut db = group("db");
    db.sensitive = true;
    db.addresses = Some(addrs(&["10.30.5.0/24", "fd00:30:0:5::/64"]));
    db.service_account = Some("db@acme-prod-us.iam.gserviceaccount.com".into());
    let internet = || net("internet", &["0.0.0.0/0", "::/0"]);
    let corp = || net("corp", &["203.0.113.0/24", "2001:db8:100::/48"]);
    let partners = || {
        net(
            "partners",
            &["203.0.113.0/24", "2001:db8:100::/48", "198.51.100.0/24"],
        )
    };
    intent(
        vec![group("web"), api, db],
        vec![
            flow(
                "web-from-internet",
                Action::Allow,
                internet(),
                g("web"),
                &["tcp/443", "tcp/80"],
            ),
            flow(
                "api-from-web",
                Action::Allow,
                g("web"),
                g("api"),
                &["tcp/8080"],
            ),
            flow(
                "db-from-api",
                Action::Allow,
                g("api"),
                g("db"),
                &["tcp/5432"],
            ),
            flow(
                "api-to-partners",
                Action::Allow,
                g("api"),
                partners(),
                &["tcp/443"],
            ),
            flow("no-corp-to-db", Action::Deny, corp(), g("db"), &["any"]),
            flow(
                "ping-web",
                Action::Allow,
                corp(),
                g("web"),
                &["icmp", "icmpv6"],
            ),
        ],
    )
}

#[test]
fn golden_intent_renders_as_reviewed() {
    let it = golden();
    let t = GcpProvider.translate(&it, &NativeState::default());
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    let state = NativeState {
        objects: t.objects.clone(),
        envelope: None,
    };
    let text = GcpProvider.render_snapshot(&state);
    insta::assert_snapshot!("golden_render", text);
    let summaries: Vec<String> = t
        .objects
        .iter()
        .map(|o| format!("{}: {}", o.key, o.summary))
        .collect();
    insta::assert_json_snapshot!("golden_summaries", summaries);
    // 6 flows -> 12 flow rules (one per family; db-from-api needs ingress and egress) + 6
    // default denies (ingress v4/v6 for the tags and for db's service account, egress v4/v6
    // for restricted api): see the snapshot
    assert_eq!(t.objects.iter().filter(|o| o.flow.is_some()).count(), 12);
    assert_eq!(t.objects.len(), 18);
    let pol = GcpProvider.lower(&GcpProvider.parse_snapshot(&text, &it).unwrap(), &it);
    let r = check_exhaustive(&it, &[], &pol, 3);
    assert_eq!(r.mismatch_count, 0, "{:#?}", r.mismatches);
}

#[test]
fn translating_against_its_own_rendered_output_changes_nothing() {
    let it = golden();
    let first = GcpProvider.translate(&it, &NativeState::default());
    let observed = GcpProvider
        .parse_snapshot(
            &GcpProvider.render_snapshot(&NativeState {
                objects: first.objects.clone(),
                envelope: None,
            }),
            &it,
        )
        .unwrap();
    let second = GcpProvider.translate(&it, &observed);
    assert_eq!(first, second);
    // and the observed objects equal the desired ones key by key, body by body
    for (d, o) in second.objects.iter().zip(&observed.objects) {
        assert_eq!((&d.key, &d.body), (&o.key, &o.body));
        assert!(o.managed);
        assert_eq!(d.flow, o.flow);
    }
}

#[test]
fn every_rule_is_managed_marked_and_at_its_priority() {
    let t = GcpProvider.translate(&golden(), &NativeState::default());
    for o in &t.objects {
        let body = o.body.value();
        let name = body["name"].as_str().unwrap();
        assert!(is_valid_name(name) && name.starts_with("iw-us-"), "{name}");
        assert_eq!(o.key, format!("fw:{name}"));
        assert!(o.managed && !o.foreign && o.raw.is_none() && !o.container);
        assert!(o.body.value()["description"]
            .as_str()
            .unwrap()
            .starts_with("intentwall:"));
        let prio = o.body.value()["priority"].as_u64().unwrap();
        match &o.flow {
            Some(f) => {
                assert_eq!(prio, 1000);
                assert_eq!(o.body.value()["description"], format!("intentwall:{f}"));
            }
            None => assert_eq!(prio, 65000),
        }
    }
}

#[test]
fn source_ranges_split_per_family_and_at_the_per_rule_limit() {
    let mut nets: Vec<String> = (0..300)
        .map(|i| format!("192.0.{}.{}/32", i / 128, (i % 128) * 2))
        .collect();
    nets.push("2001:db8::/32".into());
    let refs: Vec<&str> = nets.iter().map(String::as_str).collect();
    let it = intent(
        vec![group("web")],
        vec![flow(
            "many",
            Action::Allow,
            net("many", &refs),
            g("web"),
            &["tcp/443"],
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    assert!(t.findings.is_empty());
    let rules: Vec<_> = t
        .objects
        .iter()
        .filter(|o| o.flow.as_deref() == Some("many"))
        .collect();
    let sizes: Vec<usize> = rules
        .iter()
        .map(|o| o.body.value()["sourceRanges"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [MAX_RANGES_PER_RULE, 300 - MAX_RANGES_PER_RULE, 1]);
    let names: Vec<String> = rules
        .iter()
        .map(|o| o.body.value()["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["iw-us-many-in-1", "iw-us-many-in-2", "iw-us-many-in-3"]
    );
    assert_eq!(rules[2].body.value()["sourceRanges"][0], "2001:db8::/32");
}

#[test]
fn a_raised_ranges_per_rule_splits_later() {
    let nets: Vec<String> = (0..300)
        .map(|i| format!("192.0.{}.{}/32", i / 128, (i % 128) * 2))
        .collect();
    let refs: Vec<&str> = nets.iter().map(String::as_str).collect();
    let mut it = intent(
        vec![group("web")],
        vec![flow(
            "many",
            Action::Allow,
            net("many", &refs),
            g("web"),
            &["tcp/443"],
        )],
    );
    it.settings
        .insert("quotas.ranges_per_rule".into(), "5000".into());
    let t = GcpProvider.translate(&it, &NativeState::default());
    let sizes: Vec<usize> = t
        .objects
        .iter()
        .filter(|o| o.flow.as_deref() == Some("many"))
        .map(|o| o.body.value()["sourceRanges"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [300]);
}

#[test]
fn the_project_rule_quota_is_configuration() {
    let flows = (0..5)
        .map(|i| {
            flow(
                &format!("f{i}"),
                Action::Allow,
                net("corp", &["192.0.2.0/24"]),
                g("web"),
                &["tcp/443"],
            )
        })
        .collect();
    let mut it = intent(vec![group("web")], flows);
    // one hand-made rule of another network in the project counts too
    let observed = GcpProvider
        .parse_snapshot(
            &serde_json::json!([{
                "name": "by-hand",
                "network": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/other",
                "direction": "INGRESS",
                "priority": 1000,
                "sourceRanges": ["0.0.0.0/0"],
                "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]
            }])
            .to_string(),
            &it,
        )
        .unwrap();
    let limits = |it: &DeploymentIntent| -> Vec<String> {
        GcpProvider
            .translate(it, &observed)
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Limit)
            .map(|f| f.message.clone())
            .collect()
    };
    // GCP documents no default: unchecked unless configured
    assert!(limits(&it).is_empty());
    let ours = GcpProvider.translate(&it, &observed).objects.len();
    // a quota below ours + 1 other is a finding naming it and how to raise it
    it.settings
        .insert("quotas.firewall_rules".into(), ours.to_string());
    let l = limits(&it);
    assert!(!l.is_empty(), "{ours} rules");
    assert!(
        l.iter().all(|m| m.contains(&format!(
            "would hold {} firewall rules ({ours} of this deployment, 1 others), over quota `firewall_rules` = {ours} (configured)",
            ours + 1
        )) && m.contains("gcp: { quotas: { firewall_rules: N } }")),
        "{l:#?}"
    );
    // raised to fit, it goes away
    it.settings
        .insert("quotas.firewall_rules".into(), (ours + 1).to_string());
    assert!(limits(&it).is_empty());
}

#[test]
fn ports_split_at_256_entries_per_rule() {
    let tokens: Vec<String> = (0..300).map(|i| format!("tcp/{}", 1000 + i * 2)).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let it = intent(
        vec![group("web")],
        vec![flow(
            "ports",
            Action::Allow,
            net("any4", &["0.0.0.0/0"]),
            g("web"),
            &refs,
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    let counts: Vec<usize> = t
        .objects
        .iter()
        .filter(|o| o.flow.is_some())
        .map(|o| {
            o.body.value()["allowed"][0]["ports"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(counts, [MAX_PORT_ENTRIES, 300 - MAX_PORT_ENTRIES]);
}

#[test]
fn default_deny_target_tags_split_at_70() {
    let groups: Vec<_> = (0..75).map(|i| group(&format!("g{i}"))).collect();
    let it = intent(groups, vec![]);
    let t = GcpProvider.translate(&it, &NativeState::default());
    let tags: Vec<usize> = t
        .objects
        .iter()
        .map(|o| o.body.value()["targetTags"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        tags,
        [MAX_TARGET_TAGS, 5, MAX_TARGET_TAGS, 5],
        "v4 and v6 rules, each split"
    );
    assert_eq!(t.objects[0].body.value()["sourceRanges"][0], "0.0.0.0/0");
    assert_eq!(t.objects[2].body.value()["sourceRanges"][0], "::/0");
}

#[test]
fn typed_icmp_is_an_inexpressible_finding_and_never_widened() {
    let it = intent(
        vec![group("web")],
        vec![flow(
            "ping",
            Action::Allow,
            net("corp", &["203.0.113.0/24"]),
            g("web"),
            &["icmp/8", "tcp/22"],
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].kind, FindingKind::Inexpressible);
    assert_eq!(t.findings[0].flow.as_deref(), Some("ping"));
    let r: Vec<_> = t.objects.iter().filter(|o| o.flow.is_some()).collect();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].body.value()["allowed"],
        serde_json::json!([{"IPProtocol": "tcp", "ports": ["22"]}])
    );
}

#[test]
fn restricted_egress_to_a_group_without_addresses_names_the_group() {
    let mut api = group("api");
    api.egress_restricted = true;
    let it = intent(
        vec![api, group("db")],
        vec![flow(
            "db-from-api",
            Action::Allow,
            g("api"),
            g("db"),
            &["tcp/5432"],
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    assert_eq!(t.findings.len(), 1, "{:#?}", t.findings);
    assert_eq!(t.findings[0].flow.as_deref(), Some("db-from-api"));
    assert!(
        t.findings[0].message.contains("`db`"),
        "{}",
        t.findings[0].message
    );
    // the ingress half is still emitted
    assert!(t
        .objects
        .iter()
        .any(|o| o.body.value()["sourceTags"] == serde_json::json!(["iw-api"])));
}

#[test]
fn tags_and_service_accounts_do_not_mix_without_addresses() {
    let mut db = group("db");
    db.service_account = Some("db@p.iam.gserviceaccount.com".into());
    let it = intent(
        vec![group("web"), db.clone()],
        vec![flow(
            "db-from-web",
            Action::Allow,
            g("web"),
            g("db"),
            &["tcp/5432"],
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].kind, FindingKind::Inexpressible);
    let mut web = group("web");
    web.addresses = Some(addrs(&["10.30.1.0/24"]));
    let it = intent(
        vec![web, db],
        vec![flow(
            "db-from-web",
            Action::Allow,
            g("web"),
            g("db"),
            &["tcp/5432"],
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    assert!(t.findings.is_empty());
    let r = t.objects.iter().find(|o| o.flow.is_some()).unwrap();
    assert_eq!(
        r.body.value()["sourceRanges"],
        serde_json::json!(["10.30.1.0/24"])
    );
    assert_eq!(
        r.body.value()["targetServiceAccounts"],
        serde_json::json!(["db@p.iam.gserviceaccount.com"])
    );
}

#[test]
fn long_or_odd_flow_names_still_give_valid_unique_names() {
    let long =
        "a-very-long-flow-name-that-goes-on-and-on-well-past-the-sixty-three-character-limit";
    let it = intent(
        vec![group("web")],
        vec![
            flow(
                long,
                Action::Allow,
                net("n", &["0.0.0.0/0", "::/0"]),
                g("web"),
                &["tcp/443"],
            ),
            flow(
                "Odd_Name",
                Action::Allow,
                net("n", &["0.0.0.0/0"]),
                g("web"),
                &["tcp/80"],
            ),
        ],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    let names: Vec<String> = t
        .objects
        .iter()
        .map(|o| o.body.value()["name"].as_str().unwrap().to_string())
        .collect();
    for n in &names {
        assert!(is_valid_name(n), "{n}");
    }
    let mut dedup = names.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), names.len());
    // the marker still carries the flow's own name
    assert!(t
        .objects
        .iter()
        .any(|o| o.body.value()["description"] == format!("intentwall:{long}")));
}

#[test]
fn deny_from_a_group_to_a_network_is_an_egress_deny() {
    let it = intent(
        vec![group("web")],
        vec![flow(
            "no-smtp",
            Action::Deny,
            g("web"),
            net("internet", &["0.0.0.0/0"]),
            &["tcp/25"],
        )],
    );
    let t = GcpProvider.translate(&it, &NativeState::default());
    let r = t.objects.iter().find(|o| o.flow.is_some()).unwrap();
    assert_eq!(r.body.value()["direction"], "EGRESS");
    assert_eq!(
        r.body.value()["denied"],
        serde_json::json!([{"IPProtocol": "tcp", "ports": ["25"]}])
    );
    assert_eq!(
        r.body.value()["destinationRanges"],
        serde_json::json!(["0.0.0.0/0"])
    );
    assert_eq!(r.body.value()["targetTags"], serde_json::json!(["iw-web"]));
}

#[test]
fn default_network_rules_kept_unmanaged_are_neutralised_by_the_managed_default_deny() {
    let it = golden();
    let t = GcpProvider.translate(&it, &NativeState::default());
    let defaults = r#"[
      {"name": "default-allow-internal", "priority": 65534, "network": "prod-us", "sourceRanges": ["10.128.0.0/9", "10.30.0.0/16"],
       "allowed": [{"IPProtocol": "tcp", "ports": ["0-65535"]}, {"IPProtocol": "udp", "ports": ["0-65535"]}, {"IPProtocol": "icmp"}]},
      {"name": "default-allow-ssh", "priority": 65534, "network": "prod-us", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]},
      {"name": "default-allow-rdp", "priority": 65534, "network": "prod-us", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["3389"]}]},
      {"name": "default-allow-icmp", "priority": 65534, "network": "prod-us", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "icmp"}]}
    ]"#;
    let mut state = GcpProvider.parse_snapshot(defaults, &it).unwrap();
    assert!(state.objects.iter().all(|o| !o.managed && !o.foreign));
    state.objects.extend(t.objects);
    let text = GcpProvider.render_snapshot(&state);
    let back = GcpProvider.parse_snapshot(&text, &it).unwrap();
    let pol = GcpProvider.lower(&back, &it);
    let r = check_exhaustive(&it, &[], &pol, 3);
    assert_eq!(r.mismatch_count, 0, "{:#?}", r.mismatches);
    // without the managed default deny, default-allow-ssh would reach web
    let without: NativeState = NativeState {
        objects: back
            .objects
            .into_iter()
            .filter(|o| !o.key.contains("default-deny"))
            .collect(),
        envelope: None,
    };
    let r = check_exhaustive(&it, &[], &GcpProvider.lower(&without, &it), 3);
    assert!(r.mismatch_count > 0);
    assert!(r
        .mismatches
        .iter()
        .all(|m| m.native_allowed && !m.native_rule_managed));
}
