//! Translation tests: deny compilation, findings, egress, stability, limits, goldens.
mod common;

use common::*;
use intentwall_aws::AwsProvider;
use intentwall_contract::check::check_exhaustive;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{
    DeploymentIntent, FindingKind, InPlace, NativeState, Provider, Translation,
};

fn tr(i: &DeploymentIntent) -> Translation {
    AwsProvider.translate(i, &NativeState::default())
}

fn rule_keys(t: &Translation) -> Vec<String> {
    t.objects
        .iter()
        .filter(|o| o.kind == "sg-rule")
        .map(|o| o.key.clone())
        .collect()
}

fn exact(i: &DeploymentIntent, t: &Translation) -> u64 {
    let st = NativeState {
        objects: t.objects.clone(),
        envelope: None,
    };
    let back = AwsProvider
        .parse_snapshot(&AwsProvider.render_snapshot(&st), i)
        .unwrap();
    check_exhaustive(i, &[], &AwsProvider.lower(&back, i), 5).mismatch_count
}

/// The golden intent (the README's example, us deployment on AWS).
fn golden() -> DeploymentIntent {
    let mut db = group("db");
    db.sensitive = true;
    db.addresses = Some(addrs(&["10.10.8.0/24"]));
    intent(
        vec![group("web"), restricted("api"), db],
        vec![
            allow(
                "web-from-internet",
                n("internet", &["0.0.0.0/0", "::/0"]),
                g("web"),
                &["tcp/443"],
            ),
            allow("api-from-web", g("web"), g("api"), &["tcp/8080"]),
            allow("db-from-api", g("api"), g("db"), &["tcp/5432"]),
            allow(
                "api-to-partners",
                g("api"),
                n(
                    "partners",
                    &["203.0.113.0/24", "2001:db8:100::/48", "198.51.100.0/24"],
                ),
                &["tcp/443"],
            ),
            allow(
                "ops-ssh",
                n("corp", &["203.0.113.0/24", "2001:db8:100::/48"]),
                g("web"),
                &["tcp/22", "icmp/8"],
            ),
            deny(
                "no-corp-to-db",
                n("corp", &["203.0.113.0/24", "2001:db8:100::/48"]),
                g("db"),
                &["any"],
            ),
        ],
    )
}

#[test]
fn golden_intent_renders_as_reviewed() {
    let i = golden();
    let t = tr(&i);
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    assert_eq!(exact(&i, &t), 0);
    let text = AwsProvider.render_snapshot(&NativeState {
        objects: t.objects.clone(),
        envelope: None,
    });
    insta::assert_snapshot!("golden_render", text);
    let summary: Vec<String> = t
        .objects
        .iter()
        .map(|o| format!("{}  |  {}", o.key, o.summary))
        .collect();
    insta::assert_snapshot!("golden_objects", summary.join("\n"));
}

#[test]
fn deny_is_compiled_by_cidr_and_port_subtraction() {
    // allow tcp/0-65535 from 0.0.0.0/0, deny tcp/22 from corp
    let i = intent(
        vec![group("web")],
        vec![
            allow("all-tcp", n("internet", &["0.0.0.0/0"]), g("web"), &["tcp"]),
            deny(
                "no-ssh-from-corp",
                n("corp", &["203.0.113.0/24"]),
                g("web"),
                &["tcp/22"],
            ),
        ],
    );
    let t = tr(&i);
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    let keys = rule_keys(&t);
    assert!(
        keys.contains(&"sg:iw-web/ingress/tcp/0-21/cidr:0.0.0.0/0".to_string()),
        "{keys:#?}"
    );
    assert!(keys.contains(&"sg:iw-web/ingress/tcp/23-65535/cidr:0.0.0.0/0".to_string()));
    assert!(keys.contains(&"sg:iw-web/ingress/tcp/22-22/cidr:0.0.0.0/1".to_string()));
    assert!(!keys
        .iter()
        .any(|k| k.contains("tcp/22-22/cidr:203.0.113.0")));
    assert_eq!(exact(&i, &t), 0);
}

#[test]
fn deny_from_a_group_with_addresses_is_subtracted() {
    let mut batch = group("batch");
    batch.addresses = Some(addrs(&["10.10.8.0/24"]));
    let i = intent(
        vec![group("db"), batch],
        vec![
            allow(
                "vpc-to-db",
                n("vpc", &["10.10.0.0/16"]),
                g("db"),
                &["tcp/5432"],
            ),
            deny("no-batch-to-db", g("batch"), g("db"), &["any"]),
        ],
    );
    let t = tr(&i);
    assert!(t.findings.is_empty(), "{:#?}", t.findings);
    assert!(!rule_keys(&t).iter().any(|k| k.contains("10.10.8.0")));
    assert_eq!(exact(&i, &t), 0);
}

#[test]
fn deny_from_a_group_without_addresses_against_a_cidr_allow_is_a_finding() {
    let i = intent(
        vec![group("db"), group("batch")],
        vec![
            allow(
                "vpc-to-db",
                n("vpc", &["10.10.0.0/16"]),
                g("db"),
                &["tcp/5432"],
            ),
            deny("no-batch-to-db", g("batch"), g("db"), &["any"]),
        ],
    );
    let t = tr(&i);
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].kind, FindingKind::Inexpressible);
    assert_eq!(t.findings[0].flow.as_deref(), Some("no-batch-to-db"));
    assert!(t.findings[0].message.contains("addresses"));
}

#[test]
fn deny_between_two_groups_over_an_sg_reference_is_a_finding() {
    let i = intent(
        vec![group("web"), group("api")],
        vec![
            allow("api-from-web", g("web"), g("api"), &["tcp/8000-8100"]),
            deny("no-web-admin", g("web"), g("api"), &["tcp/8081"]),
        ],
    );
    let t = tr(&i);
    assert_eq!(t.findings.len(), 1, "{:#?}", t.findings);
    assert_eq!(t.findings[0].flow.as_deref(), Some("no-web-admin"));
    // the allow is emitted as it is: the target is blocked anyway
    assert!(rule_keys(&t).contains(&"sg:iw-api/ingress/tcp/8000-8100/sg:iw-web".to_string()));
}

#[test]
fn deny_network_over_members_allowed_by_reference_is_a_finding() {
    let i = intent(
        vec![group("web"), group("api")],
        vec![
            allow("api-from-web", g("web"), g("api"), &["tcp/8080"]),
            deny(
                "no-subnet",
                n("subnet", &["10.10.0.0/24"]),
                g("api"),
                &["any"],
            ),
        ],
    );
    let t = tr(&i);
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].flow.as_deref(), Some("no-subnet"));
}

#[test]
fn deny_that_overlaps_nothing_needs_nothing() {
    let i = intent(
        vec![group("web"), group("api")],
        vec![
            allow("api-from-web", g("web"), g("api"), &["tcp/8080"]),
            deny(
                "no-udp",
                n("corp", &["203.0.113.0/24"]),
                g("api"),
                &["udp/53"],
            ),
        ],
    );
    let t = tr(&i);
    assert!(t.findings.is_empty());
    assert_eq!(exact(&i, &t), 0);
}

#[test]
fn egress_deny_of_everything_to_a_network_narrows_allow_all() {
    let i = intent(
        vec![group("web")],
        vec![deny(
            "no-metadata",
            g("web"),
            n("imds", &["169.254.169.254/32"]),
            &["any"],
        )],
    );
    let t = tr(&i);
    assert!(t.findings.is_empty());
    let keys = rule_keys(&t);
    assert!(keys.contains(&"sg:iw-web/egress/all/any/cidr6:::/0".to_string()));
    assert!(!keys.contains(&"sg:iw-web/egress/all/any/cidr:0.0.0.0/0".to_string()));
    assert_eq!(exact(&i, &t), 0);
}

#[test]
fn egress_deny_of_one_port_cannot_narrow_all_protocols() {
    let i = intent(
        vec![group("web")],
        vec![deny(
            "no-smtp",
            g("web"),
            n("internet", &["0.0.0.0/0"]),
            &["tcp/25"],
        )],
    );
    let t = tr(&i);
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].flow.as_deref(), Some("no-smtp"));
    assert!(t.findings[0].message.contains("cannot deny"));
}

#[test]
fn unrestricted_egress_covers_ipv4_and_ipv6() {
    let t = tr(&intent(vec![group("web")], vec![]));
    assert_eq!(
        rule_keys(&t),
        vec![
            "sg:iw-web/egress/all/any/cidr:0.0.0.0/0".to_string(),
            "sg:iw-web/egress/all/any/cidr6:::/0".to_string()
        ]
    );
}

#[test]
fn restricted_egress_has_only_declared_flows() {
    let i = intent(
        vec![restricted("api"), group("db")],
        vec![
            allow("db-from-api", g("api"), g("db"), &["tcp/5432"]),
            allow(
                "api-dns",
                g("api"),
                n("resolver", &["10.10.0.2/32"]),
                &["udp/53"],
            ),
        ],
    );
    let t = tr(&i);
    let eg: Vec<_> = rule_keys(&t)
        .into_iter()
        .filter(|k| k.starts_with("sg:iw-api/egress"))
        .collect();
    assert_eq!(
        eg,
        vec![
            "sg:iw-api/egress/udp/53-53/cidr:10.10.0.2/32".to_string(),
            "sg:iw-api/egress/tcp/5432-5432/sg:iw-db".to_string()
        ]
    );
    assert_eq!(exact(&i, &t), 0);
}

#[test]
fn ported_sctp_is_inexpressible_plain_sctp_is_fine() {
    let i = intent(
        vec![group("web")],
        vec![
            allow(
                "sig",
                n("peers", &["192.0.2.0/24"]),
                g("web"),
                &["sctp/9899"],
            ),
            allow(
                "sctp-all",
                n("peers2", &["198.51.100.0/24"]),
                g("web"),
                &["sctp"],
            ),
        ],
    );
    let t = tr(&i);
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].flow.as_deref(), Some("sig"));
    assert!(rule_keys(&t).contains(&"sg:iw-web/ingress/132/any/cidr:198.51.100.0/24".to_string()));
    assert!(
        !rule_keys(&t).iter().any(|k| k.contains("192.0.2.0")),
        "never widened"
    );
}

#[test]
fn icmp_and_protocol_tokens_map_to_aws_fields() {
    let i = intent(
        vec![group("web")],
        vec![allow(
            "t",
            n("x", &["192.0.2.0/24"]),
            g("web"),
            &["icmp/8/0", "icmp/3", "icmpv6", "esp", "ip/47", "any"],
        )],
    );
    let keys = rule_keys(&tr(&i));
    for k in [
        "sg:iw-web/ingress/icmp/8:0/cidr:192.0.2.0/24",
        "sg:iw-web/ingress/icmp/3:any/cidr:192.0.2.0/24",
        "sg:iw-web/ingress/50/any/cidr:192.0.2.0/24",
        "sg:iw-web/ingress/47/any/cidr:192.0.2.0/24",
        "sg:iw-web/ingress/all/any/cidr:192.0.2.0/24",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} not in {keys:#?}");
    }
    // ICMPv6 never comes from IPv4 addresses: no rule for it
    assert!(!keys.iter().any(|k| k.contains("icmpv6")), "{keys:#?}");
}

#[test]
fn ports_are_merged_and_cidrs_collapsed() {
    let i = intent(
        vec![group("web")],
        vec![
            allow("a", n("a", &["10.0.0.0/25"]), g("web"), &["tcp/80-90"]),
            allow("b", n("b", &["10.0.0.128/25"]), g("web"), &["tcp/80-90"]),
            allow("c", n("c", &["10.0.0.0/24"]), g("web"), &["tcp/91-100"]),
        ],
    );
    let keys: Vec<_> = rule_keys(&tr(&i))
        .into_iter()
        .filter(|k| k.contains("ingress"))
        .collect();
    assert_eq!(
        keys,
        vec!["sg:iw-web/ingress/tcp/80-100/cidr:10.0.0.0/24".to_string()],
        "{keys:#?}"
    );
}

#[test]
fn over_the_rule_quota_is_a_limit_finding() {
    let cidrs: Vec<String> = (0..61)
        .map(|k| format!("192.0.{}.{}/32", k / 2, (k % 2) * 2))
        .collect();
    let refs: Vec<&str> = cidrs.iter().map(String::as_str).collect();
    let i = intent(
        vec![group("web")],
        vec![allow("many", n("many", &refs), g("web"), &["tcp/443"])],
    );
    let t = tr(&i);
    assert_eq!(
        rule_keys(&t)
            .iter()
            .filter(|k| k.contains("ingress"))
            .count(),
        61
    );
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].kind, FindingKind::Limit);
    assert_eq!(t.findings[0].flow.as_deref(), Some("many"));
    // 60 fit
    let i = intent(
        vec![group("web")],
        vec![allow(
            "many",
            n("many", &refs[..60]),
            g("web"),
            &["tcp/443"],
        )],
    );
    assert!(tr(&i).findings.is_empty());
}

#[test]
fn the_rule_quota_is_configuration() {
    let cidrs: Vec<String> = (0..61)
        .map(|k| format!("192.0.{}.{}/32", k / 2, (k % 2) * 2))
        .collect();
    let refs: Vec<&str> = cidrs.iter().map(String::as_str).collect();
    let with_quota = |q: Option<&str>| {
        let mut i = intent(
            vec![group("web")],
            vec![allow("many", n("many", &refs), g("web"), &["tcp/443"])],
        );
        if let Some(q) = q {
            i.settings
                .insert("quotas.rules_per_sg".into(), q.to_string());
        }
        tr(&i)
    };
    // 61 rules: over the default of 60, and the finding says how to raise it
    let t = with_quota(None);
    assert_eq!(t.findings.len(), 1, "{:#?}", t.findings);
    let m = &t.findings[0].message;
    assert!(
        m.contains("quota `rules_per_sg` = 60 (the cloud's default)")
            && m.contains("Service Quotas")
            && m.contains("aws: { quotas: { rules_per_sg: N } }"),
        "{m}"
    );
    // a raised quota removes the finding; the rules are the same
    let raised = with_quota(Some("100"));
    assert!(raised.findings.is_empty(), "{:#?}", raised.findings);
    assert_eq!(rule_keys(&raised), rule_keys(&t));
    // a lowered one creates it where the default would not
    let small: Vec<&str> = refs[..10].to_vec();
    let mut i = intent(
        vec![group("web")],
        vec![allow("few", n("few", &small), g("web"), &["tcp/443"])],
    );
    assert!(tr(&i).findings.is_empty());
    i.settings.insert("quotas.rules_per_sg".into(), "5".into());
    let t = tr(&i);
    assert_eq!(t.findings.len(), 1, "{:#?}", t.findings);
    assert_eq!(t.findings[0].kind, FindingKind::Limit);
    assert!(
        t.findings[0]
            .message
            .contains("needs 10 IPv4 ingress rules, over quota `rules_per_sg` = 5 (configured)"),
        "{}",
        t.findings[0].message
    );
}

#[test]
fn long_flow_lists_are_cut_with_a_marker() {
    let flows: Vec<_> = (0..40)
        .map(|k| {
            allow(
                &format!("a-rather-long-flow-name-{k:02}"),
                n("x", &["192.0.2.0/24"]),
                g("web"),
                &["tcp/443"],
            )
        })
        .collect();
    let t = tr(&intent(vec![group("web")], flows));
    let r = t
        .objects
        .iter()
        .find(|o| o.key.contains("ingress"))
        .unwrap();
    let body = r.body.value();
    let d = body["Description"].as_str().unwrap();
    assert!(
        d.len() <= 255 && d.starts_with("intentwall:") && d.ends_with("more)"),
        "{d}"
    );
    assert!(r.managed);
}

#[test]
fn translate_against_its_own_output_is_stable() {
    let i = golden();
    let first = tr(&i);
    let text = AwsProvider.render_snapshot(&NativeState {
        objects: first.objects.clone(),
        envelope: None,
    });
    let observed = AwsProvider.parse_snapshot(&text, &i).unwrap();
    let second = AwsProvider.translate(&i, &observed);
    assert_eq!(first, second);
    let text2 = AwsProvider.render_snapshot(&NativeState {
        objects: second.objects,
        envelope: None,
    });
    let third = AwsProvider.translate(&i, &AwsProvider.parse_snapshot(&text2, &i).unwrap());
    assert_eq!(first, third);
    assert_eq!(text, text2);
}

/// A GroupId is the cloud's: an observed group keeps it beside its body, the translation
/// never writes one, so the desired group equals the observed one whatever id the cloud gave
/// it (a group apply creates converges), and a rendered document keeps the cloud's id.
#[test]
fn cloud_assigned_group_ids_stay_out_of_bodies() {
    let i = intent(vec![group("web")], vec![]);
    let d = doc(&[("web", "", "")]);
    let observed = parse(&d, &i);
    let t = AwsProvider.translate(&i, &observed);
    assert!(t.objects[0].body.value().get("GroupId").is_none());
    assert!(t.objects[0].raw.is_none() && t.objects[0].assigned.is_none());
    let o = observed.get(&t.objects[0].key).unwrap();
    assert_eq!(o.body, t.objects[0].body, "same group, whatever its id");
    assert_eq!(o.assigned.as_ref().unwrap().value()["GroupId"], sgid(0));
    // the translated group with the cloud's assignment renders with the cloud's id
    let mut with_id = t.objects[0].clone();
    with_id.assigned = o.assigned.clone();
    let text = AwsProvider.render_snapshot(&NativeState {
        objects: vec![with_id],
        envelope: None,
    });
    assert!(text.contains(&sgid(0)), "{text}");
}

#[test]
fn in_place_rules() {
    let i = golden();
    let t = tr(&i);
    let sg = t.objects[0].clone();
    let mut tags = sg.clone();
    tags.body = tags.body.with(|v| v["Tags"] = serde_json::json!([]));
    assert_eq!(AwsProvider.in_place(&sg, &tags), InPlace::Update);
    let mut desc = sg.clone();
    desc.body = desc.body.with(|v| v["Description"] = "other".into());
    assert_eq!(AwsProvider.in_place(&sg, &desc), InPlace::Replace);
    let r = t
        .objects
        .iter()
        .find(|o| o.kind == "sg-rule")
        .unwrap()
        .clone();
    let mut rd = r.clone();
    rd.body = rd
        .body
        .with(|v| v["Description"] = "intentwall:renamed".into());
    assert_eq!(AwsProvider.in_place(&r, &rd), InPlace::Update);
    let mut rp = r.clone();
    rp.body = rp.body.with(|v| v["IpProtocol"] = "udp".into());
    assert_eq!(AwsProvider.in_place(&r, &rp), InPlace::Replace);
}

#[test]
fn no_platform_allowances() {
    assert!(AwsProvider.platform_allowances(&golden()).is_empty());
}
