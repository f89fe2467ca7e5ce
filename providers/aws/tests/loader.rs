//! Loader tests: real CLI shapes in, normalisation, errors with positions or object names,
//! and no panic on any input.
mod common;

use common::*;
use intentwall_aws::AwsProvider;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{NativeState, Provider};
use proptest::prelude::*;
use serde_json::Value;

/// Every optional field present at least once, as `aws ec2 describe-security-groups` prints.
const FULL: &str = r#"{
    "SecurityGroups": [
        {
            "Description": "intentwall group web",
            "GroupName": "iw-web",
            "IpPermissions": [
                {
                    "FromPort": 443,
                    "IpProtocol": "tcp",
                    "IpRanges": [
                        {"CidrIp": "0.0.0.0/0", "Description": "intentwall:web-from-internet"},
                        {"CidrIp": "198.51.100.0/24"}
                    ],
                    "Ipv6Ranges": [
                        {"CidrIpv6": "::/0", "Description": "intentwall:web-from-internet"}
                    ],
                    "PrefixListIds": [
                        {"PrefixListId": "pl-0123456789abcdef0", "Description": "partners"}
                    ],
                    "ToPort": 443,
                    "UserIdGroupPairs": [
                        {"Description": "peered api", "GroupId": "sg-0peer", "UserId": "444455556666",
                         "GroupName": "api", "VpcId": "vpc-0peer", "VpcPeeringConnectionId": "pcx-0123",
                         "PeeringStatus": "active"}
                    ]
                },
                {
                    "IpProtocol": "-1",
                    "IpRanges": [],
                    "Ipv6Ranges": [],
                    "PrefixListIds": [],
                    "UserIdGroupPairs": [{"GroupId": "sg-0api", "UserId": "111122223333"}]
                },
                {
                    "FromPort": 8,
                    "IpProtocol": "icmp",
                    "IpRanges": [{"CidrIp": "10.10.0.0/16"}],
                    "Ipv6Ranges": [],
                    "PrefixListIds": [],
                    "ToPort": -1,
                    "UserIdGroupPairs": []
                },
                {
                    "IpProtocol": "50",
                    "IpRanges": [{"CidrIp": "192.0.2.1/32"}],
                    "Ipv6Ranges": [],
                    "PrefixListIds": [],
                    "UserIdGroupPairs": []
                }
            ],
            "OwnerId": "111122223333",
            "GroupId": "sg-0web",
            "IpPermissionsEgress": [
                {
                    "IpProtocol": "-1",
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    "Ipv6Ranges": [],
                    "PrefixListIds": [],
                    "UserIdGroupPairs": []
                }
            ],
            "Tags": [
                {"Key": "managed-by", "Value": "intentwall"},
                {"Key": "intentwall:group", "Value": "web"}
            ],
            "VpcId": "vpc-0a1b2c3d"
        },
        {
            "Description": "intentwall group api",
            "GroupName": "iw-api",
            "IpPermissions": [],
            "OwnerId": "111122223333",
            "GroupId": "sg-0api",
            "IpPermissionsEgress": [],
            "Tags": [
                {"Key": "intentwall:group", "Value": "api"},
                {"Key": "managed-by", "Value": "intentwall"}
            ],
            "VpcId": "vpc-0a1b2c3d"
        },
        {
            "Description": "default VPC security group",
            "GroupName": "default",
            "IpPermissions": [
                {"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                 "UserIdGroupPairs": [{"GroupId": "sg-0def", "UserId": "111122223333"}]}
            ],
            "OwnerId": "111122223333",
            "GroupId": "sg-0def",
            "IpPermissionsEgress": [
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                 "PrefixListIds": [], "UserIdGroupPairs": []}
            ],
            "VpcId": "vpc-0a1b2c3d"
        }
    ],
    "ManagedPrefixLists": [
        {"PrefixListId": "pl-0123456789abcdef0", "PrefixListName": "partners", "AddressFamily": "IPv4",
         "MaxEntries": 10, "Entries": [{"Cidr": "198.51.100.0/24", "Description": "acme"}, {"Cidr": "192.0.2.0/24"}],
         "Tags": [{"Key": "team", "Value": "net"}]}
    ]
}"#;

fn i() -> intentwall_contract::DeploymentIntent {
    groups_only(&["web", "api"])
}

fn keys_bodies(s: &NativeState) -> Vec<(String, Value)> {
    let mut v: Vec<_> = s
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.body.value()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn full_cli_shape_parses_every_optional_field() {
    let st = parse(FULL, &i());
    let keys: Vec<&str> = st.objects.iter().map(|o| o.key.as_str()).collect();
    for k in [
        "sg:iw-web",
        "sg:iw-web/ingress/tcp/443-443/cidr:0.0.0.0/0",
        "sg:iw-web/ingress/tcp/443-443/cidr:198.51.100.0/24",
        "sg:iw-web/ingress/tcp/443-443/cidr6:::/0",
        "sg:iw-web/ingress/tcp/443-443/pl:partners",
        "sg:iw-web/ingress/tcp/443-443/sgid:sg-0peer",
        "sg:iw-web/ingress/all/any/sg:iw-api",
        "sg:iw-web/ingress/icmp/8:any/cidr:10.10.0.0/16",
        "sg:iw-web/ingress/50/any/cidr:192.0.2.1/32",
        "sg:iw-web/egress/all/any/cidr:0.0.0.0/0",
        "sg:iw-api",
        "sg:default",
        "sg:default/ingress/all/any/sg:default",
        "pl:partners",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:#?}");
    }
    let get = |k: &str| st.get(k).unwrap();
    let r = get("sg:iw-web/ingress/tcp/443-443/cidr:0.0.0.0/0");
    assert!(r.managed && !r.foreign);
    assert_eq!(r.flow.as_deref(), Some("web-from-internet"));
    // the SG is owned whole: a rule without the marker is still ours, with no flow to name
    let hand = get("sg:iw-web/ingress/tcp/443-443/cidr:198.51.100.0/24");
    assert!(hand.managed && !hand.foreign && hand.flow.is_none());
    let described = get("sg:iw-web/ingress/tcp/443-443/pl:partners");
    assert!(described.managed && described.flow.is_none());
    assert!(get("sg:default").foreign && get("sg:default/ingress/all/any/sg:default").foreign);
    assert!(
        get("pl:partners").foreign,
        "a prefix list we did not make is kept, never pruned"
    );
    let peer = &get("sg:iw-web/ingress/tcp/443-443/sgid:sg-0peer")
        .body
        .value()["Peer"];
    assert_eq!(peer["VpcPeeringConnectionId"], "pcx-0123");
    assert!(
        peer.get("PeeringStatus").is_none(),
        "status is not configuration"
    );
    assert_eq!(
        get("sg:iw-web").body.value()["Tags"][0]["Key"],
        "intentwall:group",
        "tags sorted"
    );
}

#[test]
fn render_writes_read_objects_back_unchanged() {
    let st = parse(FULL, &i());
    let out = AwsProvider.render_snapshot(&st);
    assert!(out.ends_with("}\n"));
    let a: Value = serde_json::from_str(FULL).unwrap();
    let b: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        a, b,
        "every object read is written back as the same JSON value"
    );
    assert_eq!(
        keys_bodies(&AwsProvider.parse_snapshot(&out, &i()).unwrap()),
        keys_bodies(&st)
    );
}

#[test]
fn foreign_rules_survive_next_to_translated_rules() {
    // the engine's apply: desired managed objects + unmanaged observed ones, rendered together;
    // the only unmanaged rules are those of SGs we do not own (the default SG)
    let observed = parse(FULL, &i());
    let t = AwsProvider.translate(
        &intent(
            vec![group("web"), group("api")],
            vec![allow(
                "web-from-internet",
                n("internet", &["0.0.0.0/0", "::/0"]),
                g("web"),
                &["tcp/443"],
            )],
        ),
        &observed,
    );
    // as the engine's diff does: a desired object equal to the observed one leaves the
    // observed one (with what the cloud assigned) in place
    let mut objects: Vec<_> = t
        .objects
        .iter()
        .map(|d| match observed.get(&d.key) {
            Some(o) if o.body == d.body => o.clone(),
            _ => d.clone(),
        })
        .collect();
    // unmanaged observed rules the translation does not take over (same key = adopted)
    let kept: Vec<_> = observed
        .objects
        .iter()
        .filter(|o| !o.managed && o.kind == "sg-rule")
        .filter(|o| !t.objects.iter().any(|d| d.key == o.key))
        .cloned()
        .collect();
    assert_eq!(kept.len(), 2, "the default SG's two rules");
    assert!(kept
        .iter()
        .all(|o| o.foreign && o.parent.as_deref() == Some("sg:default")));
    objects.extend(kept.clone());
    objects.extend(
        observed
            .objects
            .iter()
            .filter(|o| o.foreign && o.kind != "sg-rule")
            .cloned(),
    );
    let out = AwsProvider.render_snapshot(&NativeState {
        objects,
        envelope: None,
    });
    let back = AwsProvider.parse_snapshot(&out, &i()).unwrap();
    for k in kept {
        let b = back.get(&k.key).expect("unmanaged rule kept");
        assert_eq!(
            b.raw.as_ref().map(|r| r.value()),
            k.raw.as_ref().map(|r| r.value()),
            "{} written back as read",
            k.key
        );
        assert_eq!(b.body, k.body);
    }
    // the GroupId is the cloud's: never in a canonical body, kept beside the observed one
    // and written back
    assert!(t.objects[0].body.value().get("GroupId").is_none());
    assert_eq!(t.objects[0].body, observed.get("sg:iw-api").unwrap().body);
    assert_eq!(
        back.get("sg:iw-api")
            .unwrap()
            .assigned
            .as_ref()
            .unwrap()
            .value()["GroupId"],
        Value::String("sg-0api".into())
    );
}

#[test]
fn bare_list_envelope_is_kept() {
    let text = r#"[{"GroupName":"iw-web","GroupId":"sg-1","VpcId":"vpc-0a1b2c3d","Description":"d","IpPermissions":[],"IpPermissionsEgress":[]}]"#;
    let st = parse(text, &i());
    assert_eq!(st.envelope.as_deref(), Some("list"));
    let out = AwsProvider.render_snapshot(&st);
    assert!(out.trim_start().starts_with('['));
}

#[test]
fn ec2_classic_shape_without_vpc_egress_or_ipv6_lists() {
    let text = r#"{"SecurityGroups":[{"IpPermissionsEgress":[],"Description":"My security group",
        "IpPermissions":[{"PrefixListIds":[],"FromPort":22,"IpRanges":[{"CidrIp":"203.0.113.0/24"}],"ToPort":22,"IpProtocol":"tcp","UserIdGroupPairs":[]}],
        "GroupName":"MySecurityGroup","OwnerId":"123456789012","GroupId":"sg-903004f8"}]}"#;
    let st = parse(text, &i());
    assert!(
        st.objects.iter().all(|o| o.foreign),
        "no VpcId: not in our VPC"
    );
    let out: Value = serde_json::from_str(&AwsProvider.render_snapshot(&st)).unwrap();
    assert_eq!(out, serde_json::from_str::<Value>(text).unwrap());
}

#[test]
fn equivalent_documents_give_identical_keys_and_bodies() {
    let a = doc(&[(
        "web",
        r#"{"IpProtocol":"tcp","FromPort":80,"ToPort":80,"IpRanges":[{"CidrIp":"10.0.0.5/24","Description":"  intentwall:web  "}],
            "Ipv6Ranges":[{"CidrIpv6":"2001:0db8:0000::/48"}]},
           {"IpProtocol":"-1","IpRanges":[{"CidrIp":"192.0.2.0/24"}]},
           {"IpProtocol":"58","Ipv6Ranges":[{"CidrIpv6":"::/0"}]},
           {"IpProtocol":"icmp","FromPort":-1,"ToPort":-1,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
        "",
    )]);
    let b = doc(&[(
        "web",
        r#"{"IpProtocol":"icmp","IpRanges":[{"CidrIp":"0.0.0.0/0"}]},
           {"IpProtocol":"icmpv6","FromPort":-1,"ToPort":-1,"Ipv6Ranges":[{"CidrIpv6":"0::0/0"}],"IpRanges":[],"PrefixListIds":[],"UserIdGroupPairs":[]},
           {"IpProtocol":"6","FromPort":80,"ToPort":80,"Ipv6Ranges":[{"CidrIpv6":"2001:db8::/48"}],"IpRanges":[{"CidrIp":"10.0.0.0/24","Description":"intentwall:web"}]},
           {"IpProtocol":"all","FromPort":-1,"ToPort":-1,"IpRanges":[{"CidrIp":"192.0.2.0/24"}]}"#,
        "",
    )]);
    let (sa, sb) = (parse(&a, &i()), parse(&b, &i()));
    assert_eq!(keys_bodies(&sa), keys_bodies(&sb));
    assert_eq!(sa.objects.len(), 6);
}

#[test]
fn sg_tags_order_and_description_whitespace_are_normalised() {
    let a = r#"{"SecurityGroups":[{"GroupName":"iw-web","GroupId":"sg-1","VpcId":"vpc-0a1b2c3d","Description":"intentwall group web ",
        "Tags":[{"Key":"managed-by","Value":"intentwall"},{"Key":"intentwall:group","Value":"web"}]}]}"#;
    let b = r#"{"SecurityGroups":[{"GroupName":"iw-web","GroupId":"sg-1","VpcId":"vpc-0a1b2c3d","Description":"intentwall group web",
        "Tags":[{"Key":"intentwall:group","Value":"web"},{"Key":"managed-by","Value":"intentwall"}],"IpPermissions":[]}]}"#;
    assert_eq!(keys_bodies(&parse(a, &i())), keys_bodies(&parse(b, &i())));
}

#[test]
fn duplicate_atomic_rules_are_held_once() {
    let d = doc(&[(
        "web",
        r#"{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"10.0.0.1/24"}]},
           {"IpProtocol":"6","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"10.0.0.0/24"}]}"#,
        "",
    )]);
    let st = parse(&d, &i());
    assert_eq!(st.objects.iter().filter(|o| o.kind == "sg-rule").count(), 1);
}

fn error(text: &str) -> intentwall_contract::SnapshotError {
    AwsProvider
        .parse_snapshot(text, &i())
        .expect_err("must be rejected")
}

#[test]
fn malformed_json_reports_line_and_column() {
    let e = error("{\n  \"SecurityGroups\": [\n    {\"GroupName\": \"x\",,}\n  ]\n}");
    assert_eq!(e.line, Some(3));
    assert!(e.column.is_some());
    assert!(e.to_string().contains("line 3"), "{e}");
}

#[test]
fn wrong_shapes_name_the_object() {
    let cases: &[(&str, &str)] = &[
        (r#"{"SecurityGroups": {}}"#, "`SecurityGroups` must be a list"),
        (r#"{"Items": []}"#, "not a describe-security-groups document"),
        (r#""text""#, "not a describe-security-groups document"),
        (r#"{"SecurityGroups": [{"GroupId": "sg-1"}]}"#, "SecurityGroups[0] (sg-1): `GroupName` is missing"),
        (r#"{"SecurityGroups": [7]}"#, "SecurityGroups[0]: expected an object"),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"FromPort": 1}]}]}"#,
            "SecurityGroups[0] (web), IpPermissions[0]: `IpProtocol` is missing",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"IpProtocol": "foo"}]}]}"#,
            "IpProtocol `foo`",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 70000}]}]}"#,
            "ToPort 70000 is out of range",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": "x"}]}]}"#,
            "`FromPort` must be an integer",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissionsEgress": [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "::/0"}]}]}]}"#,
            "SecurityGroups[0] (web), IpPermissionsEgress[0], IpRanges[0]: `::/0` is not an IPv4 CIDR",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.300/8"}]}]}]}"#,
            "is not an IPv4 CIDR",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": [{"UserId": "1"}]}]}]}"#,
            "`GroupId` is missing",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "Tags": [{"Value": "x"}]}]}"#,
            "Tags[0]: `Key` is missing",
        ),
        (
            r#"{"SecurityGroups": [], "ManagedPrefixLists": [{"PrefixListId": "pl-1", "Entries": [{"Cidr": "nope"}]}]}"#,
            "ManagedPrefixLists[0] (pl-1), Entries[0]: `nope` is not a CIDR",
        ),
        (
            r#"{"SecurityGroups": [{"GroupName": "web", "IpPermissions": [{"IpProtocol": "icmp", "FromPort": 300, "ToPort": 0}]}]}"#,
            "ICMP type (FromPort) 300",
        ),
    ];
    for (text, want) in cases {
        let e = error(text);
        assert!(
            e.to_string().contains(want),
            "{text}\n -> {e}\n wanted: {want}"
        );
        // valid JSON, wrong shape: the error is at the offending value (one-line documents)
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.column.is_some(), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn never_panics_on_arbitrary_text(s in ".{0,200}") {
        let _ = AwsProvider.parse_snapshot(&s, &i());
    }

    #[test]
    fn never_panics_on_mangled_documents(cut in 0usize..4000, at in 0usize..4000, c in any::<char>()) {
        let mut s: Vec<char> = FULL.chars().collect();
        let at = at % s.len();
        s[at] = c;
        s.truncate(cut.max(1));
        let text: String = s.into_iter().collect();
        if let Ok(st) = AwsProvider.parse_snapshot(&text, &i()) {
            let out = AwsProvider.render_snapshot(&st);
            let back = AwsProvider.parse_snapshot(&out, &i()).unwrap();
            prop_assert_eq!(keys_bodies(&back), keys_bodies(&st));
            let _ = AwsProvider.lower(&st, &i());
        }
    }

    #[test]
    fn never_panics_on_wrong_json_types(v in prop::sample::select(vec![
        "null", "1", "true", "\"s\"", "[]", "{}", "[1]", "[{}]", "-1", "1.5", "99999999999999999999"
    ]), field in prop::sample::select(vec![
        "GroupName", "GroupId", "VpcId", "Description", "Tags", "IpPermissions", "IpPermissionsEgress",
        "IpProtocol", "FromPort", "ToPort", "IpRanges", "CidrIp", "Ipv6Ranges", "PrefixListIds",
        "UserIdGroupPairs", "GroupId", "Entries", "MaxEntries", "ManagedPrefixLists", "SecurityGroups"
    ])) {
        let text = FULL.replace(&format!("\"{field}\": "), &format!("\"{field}\": {v}, \"_was\": "));
        let _ = AwsProvider.parse_snapshot(&text, &i());
    }
}
