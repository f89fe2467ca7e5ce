//! Loader tests: the snapshot shapes gcloud and the API print, normalisation of equivalent
//! spellings, errors that point at the problem, and no panic on any input.

mod common;

use common::*;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{InPlace, NativeState, Provider};
use intentwall_gcp::GcpProvider;
use proptest::prelude::*;
use serde_json::{json, Value};

fn read(text: &str) -> Result<NativeState, intentwall_contract::SnapshotError> {
    GcpProvider.parse_snapshot(text, &intent(vec![group("web")], vec![]))
}

fn keys_bodies(s: &NativeState) -> Vec<(String, Value)> {
    s.objects
        .iter()
        .map(|o| (o.key.clone(), o.body.value()))
        .collect()
}

/// Every optional field of the Firewall resource, in one document (cartography/forseti shape).
const FULL: &str = r#"[
  {
    "allowed": [
      {"IPProtocol": "tcp", "ports": ["443", "8000-8099"]},
      {"IPProtocol": "udp", "ports": ["53"]},
      {"IPProtocol": "icmp"},
      {"IPProtocol": "esp"}
    ],
    "creationTimestamp": "2018-05-10T17:33:45.769-07:00",
    "description": "Allow web from anywhere",
    "direction": "INGRESS",
    "disabled": false,
    "id": "121212",
    "kind": "compute#firewall",
    "logConfig": {"enable": true, "metadata": "EXCLUDE_ALL_METADATA"},
    "name": "allow-web",
    "network": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us",
    "priority": 900,
    "selfLink": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/firewalls/allow-web",
    "sourceRanges": ["0.0.0.0/0", "2001:db8::/32"],
    "sourceTags": ["lb"],
    "targetTags": ["iw-web", "http-server"]
  },
  {
    "denied": [{"IPProtocol": "all"}],
    "creationTimestamp": "2018-05-10T17:33:45.769-07:00",
    "description": "intentwall:no-smtp-out",
    "direction": "EGRESS",
    "disabled": true,
    "id": "131313",
    "kind": "compute#firewall",
    "logConfig": {"enable": false},
    "name": "iw-us-no-smtp-out-eg-1",
    "network": "projects/acme-prod-us/global/networks/prod-us",
    "priority": 1000,
    "selfLink": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/firewalls/iw-us-no-smtp-out-eg-1",
    "destinationRanges": ["198.51.100.0/24"],
    "targetServiceAccounts": ["batch@acme-prod-us.iam.gserviceaccount.com"]
  },
  {
    "allowed": [{"IPProtocol": "sctp", "ports": ["9899"]}],
    "name": "allow-sa",
    "network": "global/networks/prod-us",
    "sourceServiceAccounts": ["api@acme-prod-us.iam.gserviceaccount.com"],
    "targetServiceAccounts": ["db@acme-prod-us.iam.gserviceaccount.com"]
  }
]"#;

#[test]
fn every_optional_field_is_read_into_the_canonical_body() {
    let s = read(FULL).unwrap();
    assert_eq!(s.objects.len(), 3);
    let web = &s.objects[0];
    assert_eq!(web.key, "fw:allow-web");
    assert!(!web.managed && !web.foreign && web.flow.is_none());
    assert_eq!(
        web.body.value(),
        json!({
            "name": "allow-web",
            "description": "Allow web from anywhere",
            "network": NET,
            "direction": "INGRESS",
            "priority": 900,
            "sourceRanges": ["0.0.0.0/0", "2001:db8::/32"],
            "sourceTags": ["lb"],
            "targetTags": ["http-server", "iw-web"],
            "allowed": [
                {"IPProtocol": "icmp"},
                {"IPProtocol": "tcp", "ports": ["443", "8000-8099"]},
                {"IPProtocol": "udp", "ports": ["53"]},
                {"IPProtocol": "esp"}
            ],
            "disabled": false,
            "logConfig": {"enable": true, "metadata": "EXCLUDE_ALL_METADATA"}
        })
    );
    let eg = &s.objects[1];
    assert!(eg.managed);
    assert_eq!(eg.flow.as_deref(), Some("no-smtp-out"));
    assert_eq!(eg.body.value()["direction"], "EGRESS");
    assert_eq!(eg.body.value()["disabled"], true);
    assert_eq!(
        eg.body.value()["network"],
        NET,
        "partial URL completed with the project"
    );
    assert_eq!(
        eg.body.value()["destinationRanges"],
        json!(["198.51.100.0/24"])
    );
    let sa = &s.objects[2];
    assert_eq!(sa.body.value()["network"], NET);
    assert_eq!(sa.body.value()["priority"], 1000);
    assert_eq!(sa.body.value()["direction"], "INGRESS");
    assert!(
        sa.body.value().get("sourceRanges").is_none(),
        "a source SA is a source: nothing filled in"
    );
    for o in &s.objects {
        for k in ["id", "creationTimestamp", "selfLink", "kind"] {
            assert!(o.body.value().get(k).is_none(), "{k} is cloud-assigned");
        }
        assert!(o.raw.is_some());
        assert!(!o.summary.is_empty());
    }
}

#[test]
fn bare_list_and_firewall_list_envelopes_read_alike_and_keep_their_shape() {
    let rules: Value = serde_json::from_str(FULL).unwrap();
    let list = json!({
        "kind": "compute#firewallList",
        "id": "projects/acme-prod-us/global/firewalls",
        "items": rules,
        "selfLink": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/firewalls"
    });
    let a = read(FULL).unwrap();
    let b = read(&serde_json::to_string_pretty(&list).unwrap()).unwrap();
    assert_eq!(keys_bodies(&a), keys_bodies(&b));
    let out_a: Value = serde_json::from_str(&GcpProvider.render_snapshot(&a)).unwrap();
    let out_b: Value = serde_json::from_str(&GcpProvider.render_snapshot(&b)).unwrap();
    assert_eq!(out_a, rules, "bare list written back unchanged");
    assert_eq!(
        out_b, list,
        "FirewallList written back unchanged, kind/id/selfLink kept"
    );
    let keys: Vec<&String> = out_b.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["kind", "id", "items", "selfLink"],
        "field order kept"
    );
}

#[test]
fn an_empty_firewall_list_without_items_is_an_empty_state() {
    let s =
        read(r#"{"kind": "compute#firewallList", "id": "projects/p/global/firewalls"}"#).unwrap();
    assert!(s.objects.is_empty());
    let out = GcpProvider.render_snapshot(&s);
    assert!(!out.contains("items"));
    assert!(out.ends_with('\n'));
    assert!(read("[]").unwrap().objects.is_empty());
}

#[test]
fn network_url_forms_are_one_body() {
    let forms = [
        "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us",
        "https://www.googleapis.com/compute/beta/projects/acme-prod-us/global/networks/prod-us",
        "https://compute.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us",
        "projects/acme-prod-us/global/networks/prod-us",
        "global/networks/prod-us",
        "prod-us",
    ];
    for f in forms {
        let doc = json!([{"name": "r", "network": f, "allowed": [{"IPProtocol": "tcp"}]}]);
        let s = read(&doc.to_string()).unwrap();
        assert_eq!(s.objects[0].body.value()["network"], NET, "{f}");
        assert!(!s.objects[0].foreign, "{f}");
    }
    for f in [
        "https://www.googleapis.com/compute/v1/projects/other-project/global/networks/prod-us",
        "global/networks/default",
    ] {
        let doc = json!([{"name": "r", "network": f, "allowed": [{"IPProtocol": "tcp"}]}]);
        assert!(read(&doc.to_string()).unwrap().objects[0].foreign, "{f}");
    }
}

#[test]
fn equivalent_spellings_give_identical_keys_and_bodies() {
    let a = r#"[{
        "name": "iw-us-web-from-corp-in-1",
        "description": "  intentwall:web-from-corp \n",
        "network": "global/networks/prod-us",
        "sourceRanges": ["2001:0db8:0100:0000:0000:0000:0000:0000/48", "203.0.113.77/24", "198.51.100.7", "203.0.113.0/24"],
        "targetTags": ["iw-web", "iw-web"],
        "allowed": [
            {"IPProtocol": "6", "ports": ["80-80", "443", "81"]},
            {"IPProtocol": "UDP", "ports": ["0-65535"]},
            {"IPProtocol": "TCP", "ports": ["8080-8090", "8085"]}
        ]
    }]"#;
    let b = r#"[{
        "kind": "compute#firewall",
        "id": "999",
        "name": "iw-us-web-from-corp-in-1",
        "description": "intentwall:web-from-corp",
        "network": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us",
        "direction": "INGRESS",
        "priority": 1000,
        "disabled": false,
        "logConfig": {"enable": false},
        "sourceRanges": ["198.51.100.7/32", "203.0.113.0/24", "2001:db8:100::/48"],
        "targetTags": ["iw-web"],
        "allowed": [
            {"IPProtocol": "udp"},
            {"IPProtocol": "tcp", "ports": ["8080-8090", "80-81", "443"]}
        ]
    }]"#;
    let (sa, sb) = (read(a).unwrap(), read(b).unwrap());
    assert_eq!(keys_bodies(&sa), keys_bodies(&sb));
    assert_eq!(
        sa.objects[0].body.value()["sourceRanges"],
        json!(["198.51.100.7/32", "203.0.113.0/24", "2001:db8:100::/48"])
    );
    assert_eq!(
        sa.objects[0].body.value()["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["80-81", "443", "8080-8090"]}, {"IPProtocol": "udp"}])
    );
    assert!(sa.objects[0].managed);
}

#[test]
fn omitted_ingress_source_is_filled_with_ipv4_any_as_the_api_does() {
    let a = read(r#"[{"name": "r", "network": "prod-us", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}]"#).unwrap();
    let b = read(r#"[{"name": "r", "network": "prod-us", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}]"#).unwrap();
    assert_eq!(keys_bodies(&a), keys_bodies(&b));
    let c = read(r#"[{"name": "r", "network": "prod-us", "sourceRanges": ["0.0.0.0/0", "::/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}]"#).unwrap();
    assert_ne!(
        keys_bodies(&a),
        keys_bodies(&c),
        "omitted != both families (magic-modules#12612)"
    );
}

#[test]
fn logging_enabled_without_metadata_means_include_all() {
    let a = read(r#"[{"name": "r", "network": "prod-us", "logConfig": {"enable": true}, "allowed": [{"IPProtocol": "all"}]}]"#).unwrap();
    let b = read(r#"[{"name": "r", "network": "prod-us", "logConfig": {"enable": true, "metadata": "INCLUDE_ALL_METADATA"}, "allowed": [{"IPProtocol": "all"}]}]"#).unwrap();
    assert_eq!(keys_bodies(&a), keys_bodies(&b));
    let c = read(r#"[{"name": "r", "network": "prod-us", "logConfig": {"enable": false, "metadata": "INCLUDE_ALL_METADATA"}, "allowed": [{"IPProtocol": "all"}]}]"#).unwrap();
    let d = read(r#"[{"name": "r", "network": "prod-us", "allowed": [{"IPProtocol": "all"}]}]"#)
        .unwrap();
    assert_eq!(keys_bodies(&c), keys_bodies(&d));
}

#[test]
fn malformed_json_reports_line_and_column() {
    let e = read("[\n  {\"name\": \"r\",\n   \"allowed\": [}\n]").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.column.is_some());
    assert!(e.message.contains("invalid JSON"), "{e}");
    let e = read("").unwrap_err();
    assert_eq!(e.line, Some(1));
}

fn err(doc: &str) -> String {
    let e = read(doc).unwrap_err();
    // a shape error about one rule is at that rule (or the member it names); one about the
    // whole document carries no position
    if e.message.starts_with("firewall #") {
        assert!(e.line.is_some() && e.column.is_some(), "no position: {e}");
    }
    e.to_string()
}

#[test]
fn wrong_shapes_are_errors_that_name_the_object() {
    let cases: &[(&str, &[&str])] = &[
        (r#""firewalls""#, &["expected a list", "a string"]),
        (r#"{"name": "r"}"#, &["FirewallList"]),
        (r#"{"items": {"name": "r"}}"#, &["items", "an object"]),
        (r#"[42]"#, &["firewall #1", "object", "a number"]),
        (
            r#"[{"allowed": [{"IPProtocol": "tcp"}]}]"#,
            &["firewall #1", "`name` is missing"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}], "priority": 70000}]"#,
            &["firewall #1 `r`", "priority"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}], "priority": -1}]"#,
            &["`r`", "priority"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}], "direction": "SIDEWAYS"}]"#,
            &["`r`", "SIDEWAYS"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["10.0.0.0/33"]}]"#,
            &["`r`", "10.0.0.0/33", "sourceRanges"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": "10.0.0.0/8"}]"#,
            &["`r`", "sourceRanges", "list"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "bogus"}]}]"#,
            &["`r`", "allowed[0]", "bogus"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "icmp", "ports": ["8"]}]}]"#,
            &["`r`", "ports", "icmp"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp", "ports": ["90-80"]}]}]"#,
            &["`r`", "reversed"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp", "ports": ["70000"]}]}]"#,
            &["`r`", "70000"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"ports": ["1"]}]}]"#,
            &["`r`", "IPProtocol"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}], "denied": [{"IPProtocol": "tcp"}]}]"#,
            &["`r`", "both"],
        ),
        (r#"[{"name": "r"}]"#, &["`r`", "neither"]),
        (r#"[{"name": "r", "allowed": []}]"#, &["`r`", "empty"]),
        (
            r#"[{"name": "r", "direction": "EGRESS", "sourceTags": ["a"], "allowed": [{"IPProtocol": "tcp"}]}]"#,
            &["`r`", "EGRESS", "sourceTags"],
        ),
        (
            r#"[{"name": "r", "targetTags": ["a"], "targetServiceAccounts": ["x@y"], "allowed": [{"IPProtocol": "tcp"}]}]"#,
            &["`r`", "targetServiceAccounts"],
        ),
        (
            r#"[{"name": "r", "network": "a/b/c/d", "allowed": [{"IPProtocol": "tcp"}]}]"#,
            &["`r`", "network URL"],
        ),
        (
            r#"[{"name": "r", "disabled": "no", "allowed": [{"IPProtocol": "tcp"}]}]"#,
            &["`r`", "disabled"],
        ),
        (
            r#"[{"name": "r", "allowed": [{"IPProtocol": "tcp"}]}, {"name": "r", "allowed": [{"IPProtocol": "udp"}]}]"#,
            &["firewall #2 `r`", "twice"],
        ),
    ];
    for (doc, needles) in cases {
        let m = err(doc);
        for n in *needles {
            assert!(m.contains(n), "error for {doc} should mention `{n}`: {m}");
        }
    }
}

#[test]
fn ownership_goes_by_the_deployment_name_prefix_in_our_network_not_the_description() {
    let doc = r#"[
        {"name": "iw-us-a-in-1", "description": "intentwall:a", "allowed": [{"IPProtocol": "tcp"}], "network": "prod-us"},
        {"name": "iw-us-b-in-1", "description": "hand-made", "allowed": [{"IPProtocol": "tcp"}], "network": "prod-us"},
        {"name": "allow-c", "description": "intentwall:c", "allowed": [{"IPProtocol": "tcp"}], "network": "prod-us"},
        {"name": "iw-us-default-deny-in-v4-1", "description": "intentwall: default deny", "denied": [{"IPProtocol": "all"}], "network": "prod-us"},
        {"name": "iw-eu-d-in-1", "description": "intentwall:d", "allowed": [{"IPProtocol": "tcp"}], "network": "prod-us"},
        {"name": "iw-us-e-in-1", "description": "intentwall:e", "allowed": [{"IPProtocol": "tcp"}], "network": "other"}
    ]"#;
    let s = read(doc).unwrap();
    let m: Vec<(bool, bool, Option<&str>)> = s
        .objects
        .iter()
        .map(|o| (o.managed, o.foreign, o.flow.as_deref()))
        .collect();
    assert_eq!(
        m,
        [
            // ours, named for its flow
            (true, false, Some("a")),
            // ours with its description edited by hand: drift, planned back
            (true, false, None),
            // a marker-looking description on a rule not named for us: not ours
            (false, false, None),
            (true, false, None),
            // another deployment's name in our network: not ours
            (false, false, None),
            // our name in another network: foreign, not ours
            (false, true, None)
        ]
    );
}

#[test]
fn unmanaged_rules_survive_a_round_trip_byte_for_byte_as_json() {
    let odd = r#"[{"name": "odd", "network": "global/networks/prod-us", "sourceRanges": ["2001:0db8::/32", "10.1.2.3/8"], "allowed": [{"IPProtocol": "6", "ports": ["80-80"]}], "description": "  spaced  ", "x-unknown": {"kept": true}}]"#;
    let s = read(odd).unwrap();
    let out = GcpProvider.render_snapshot(&s);
    let back: Value = serde_json::from_str(&out).unwrap();
    let orig: Value = serde_json::from_str(odd).unwrap();
    assert_eq!(back, orig);
    let again = read(&out).unwrap();
    assert_eq!(keys_bodies(&again), keys_bodies(&s));
}

#[test]
fn in_place_replaces_on_direction_or_network_change_and_patches_otherwise() {
    let s = read(FULL).unwrap();
    let before = s.objects[0].clone();
    let mut after = before.clone();
    after.body = after.body.with(|v| v["priority"] = json!(901));
    assert_eq!(GcpProvider.in_place(&before, &after), InPlace::Update);
    let mut after = before.clone();
    after.body = after.body.with(|v| v["direction"] = json!("EGRESS"));
    assert_eq!(GcpProvider.in_place(&before, &after), InPlace::Replace);
    let mut after = before.clone();
    after.body = after
        .body
        .with(|v| v["network"] = json!("global/networks/other"));
    assert_eq!(GcpProvider.in_place(&before, &after), InPlace::Replace);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = read(&s);
    }

    #[test]
    fn never_panics_on_mangled_documents(cut in 0usize..FULL.len(), at in 0usize..FULL.len(), c in "[\\[\\]{}\",:0-9a-z -]") {
        let mut doc: String = FULL.chars().take(cut.max(1)).collect();
        let _ = read(&doc);
        doc = FULL.to_string();
        if FULL.is_char_boundary(at) && FULL.is_char_boundary(at + 1) {
            doc.replace_range(at..at + 1, &c);
        }
        if let Ok(s) = read(&doc) {
            let again = read(&GcpProvider.render_snapshot(&s)).expect("what was read can be read again");
            prop_assert_eq!(keys_bodies(&again), keys_bodies(&s));
        }
    }

    #[test]
    fn never_panics_on_wrongly_typed_fields(field in prop::sample::select(vec![
        "name", "network", "direction", "priority", "sourceRanges", "destinationRanges", "sourceTags",
        "targetTags", "sourceServiceAccounts", "targetServiceAccounts", "allowed", "denied", "disabled",
        "description", "logConfig"]),
        value in prop::sample::select(vec![json!(null), json!(1), json!(-3), json!(1.5), json!("x"), json!([1]), json!({"a": 1}), json!(true), json!([])])) {
        let mut doc: Value = serde_json::from_str(FULL).unwrap();
        doc[0][field] = value;
        let _ = read(&doc.to_string());
    }
}
