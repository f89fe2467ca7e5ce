//! Lowering tests from the documentation: hand-written `gcloud compute firewall-rules list
//! --format=json` documents, read and lowered, then evaluated on probes whose verdicts come
//! from GCP's documented semantics. Each test is named after the fact or
//! trap it guards.

mod common;

use common::*;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{DeploymentIntent, EvalPolicy, Packet, Probe, Provider};
use intentwall_gcp::GcpProvider;
use serde_json::{json, Value};

const DB_SA: &str = "db@acme-prod-us.iam.gserviceaccount.com";

fn world() -> DeploymentIntent {
    let mut api = group("api");
    api.egress_restricted = true;
    let mut db = group("db");
    db.service_account = Some(DB_SA.into());
    intent(vec![group("web"), api, db], vec![])
}

/// A rule in the API's shape, with the fields every listed rule has.
fn rule(name: &str, extra: Value) -> Value {
    let mut r = json!({
        "kind": "compute#firewall",
        "id": "4242",
        "creationTimestamp": "2024-05-10T17:33:45.769-07:00",
        "name": name,
        "network": NET,
        "selfLink": format!("https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/firewalls/{name}"),
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn policy(rules: Vec<Value>) -> EvalPolicy {
    let it = world();
    let text = serde_json::to_string_pretty(&Value::Array(rules)).unwrap();
    let state = GcpProvider
        .parse_snapshot(&text, &it)
        .expect("valid document");
    GcpProvider.lower(&state, &it)
}

fn allowed(pol: &EvalPolicy, p: Probe) -> bool {
    pol.evaluate(&p).allowed
}

fn web_from(ip: &str, port: u16) -> Probe {
    probe(outside(ip), member("web", "10.30.1.5"), tcp(port))
}

#[test]
fn trap1_equal_priority_deny_beats_allow_whatever_the_order() {
    let allow = rule(
        "allow-https",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["0.0.0.0/0"], "priority": 1000}),
    );
    let deny = rule(
        "deny-https",
        json!({"denied": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["203.0.113.0/24"], "priority": 1000}),
    );
    for rules in [vec![allow.clone(), deny.clone()], vec![deny, allow]] {
        let pol = policy(rules);
        assert!(!allowed(&pol, web_from("203.0.113.9", 443)));
        assert!(allowed(&pol, web_from("198.51.100.1", 443)));
    }
}

#[test]
fn lower_priority_number_wins_even_over_a_deny() {
    let pol = policy(vec![
        rule(
            "allow-900",
            json!({"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["0.0.0.0/0"], "priority": 900}),
        ),
        rule(
            "deny-1000",
            json!({"denied": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"], "priority": 1000}),
        ),
    ]);
    assert!(allowed(&pol, web_from("203.0.113.9", 80)));
    assert!(!allowed(
        &pol,
        probe(
            outside("203.0.113.9"),
            member("web", "10.30.1.5"),
            Packet::ported(17, 53)
        )
    ));
}

#[test]
fn omitted_priority_is_1000() {
    let pol = policy(vec![
        rule(
            "allow-no-priority",
            json!({"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["0.0.0.0/0"]}),
        ),
        rule(
            "deny-1000",
            json!({"denied": [{"IPProtocol": "tcp"}], "sourceRanges": ["0.0.0.0/0"], "priority": 1000}),
        ),
    ]);
    assert!(
        !allowed(&pol, web_from("203.0.113.9", 80)),
        "deny at 1000 ties with the default 1000 and wins"
    );
    let pol = policy(vec![
        rule(
            "allow-no-priority",
            json!({"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["0.0.0.0/0"]}),
        ),
        rule(
            "deny-1001",
            json!({"denied": [{"IPProtocol": "tcp"}], "sourceRanges": ["0.0.0.0/0"], "priority": 1001}),
        ),
    ]);
    assert!(allowed(&pol, web_from("203.0.113.9", 80)));
}

#[test]
fn trap2_source_ranges_or_source_tags_not_and() {
    let pol = policy(vec![rule(
        "allow-ranges-or-tags",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["8080"]}], "sourceRanges": ["203.0.113.0/24"], "sourceTags": ["iw-api"], "targetTags": ["iw-web"]}),
    )]);
    // in the ranges, not tagged
    assert!(allowed(&pol, web_from("203.0.113.9", 8080)));
    // tagged, not in the ranges
    assert!(allowed(
        &pol,
        probe(
            member("api", "10.30.2.2"),
            member("web", "10.30.1.5"),
            tcp(8080)
        )
    ));
    // neither
    assert!(!allowed(
        &pol,
        probe(
            member("web", "10.30.2.3"),
            member("web", "10.30.1.5"),
            tcp(8080)
        )
    ));
}

#[test]
fn trap2_source_tags_never_match_hosts_outside_our_workloads() {
    let pol = policy(vec![rule(
        "allow-from-api-tag",
        json!({"allowed": [{"IPProtocol": "all"}], "sourceTags": ["iw-api"]}),
    )]);
    // same address as an api member, but not an instance carrying the tag
    assert!(!allowed(&pol, web_from("10.30.2.2", 22)));
    assert!(allowed(
        &pol,
        probe(
            member("api", "10.30.2.2"),
            member("web", "10.30.1.5"),
            tcp(22)
        )
    ));
}

#[test]
fn trap3_omitted_source_is_ipv4_any_only() {
    let pol = policy(vec![rule(
        "allow-ssh-no-source",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
    )]);
    assert!(allowed(&pol, web_from("203.0.113.9", 22)));
    assert!(!allowed(
        &pol,
        probe(outside("2001:db8::9"), member("web", "fd00:30::5"), tcp(22))
    ));
}

#[test]
fn trap6_implied_egress_allow_covers_ipv4_and_ipv6() {
    let pol = policy(vec![]);
    assert!(allowed(
        &pol,
        probe(member("web", "10.30.1.5"), outside("203.0.113.9"), tcp(443))
    ));
    assert!(allowed(
        &pol,
        probe(
            member("web", "fd00:30::5"),
            outside("2001:db8::9"),
            Packet::ported(17, 53)
        )
    ));
}

#[test]
fn trap6_implied_ingress_deny_when_no_rule_matches() {
    let pol = policy(vec![]);
    assert!(!allowed(&pol, web_from("203.0.113.9", 443)));
    assert!(!allowed(
        &pol,
        probe(
            outside("2001:db8::9"),
            member("web", "fd00:30::5"),
            tcp(443)
        )
    ));
    let v = pol.evaluate(&web_from("203.0.113.9", 443));
    let i = v.ingress.unwrap().rule.expect("the implied rule decides");
    assert_eq!(pol.rules[i].priority, 65535);
}

#[test]
fn trap7_disabled_rules_are_not_enforced() {
    let pol = policy(vec![rule(
        "allow-all-disabled",
        json!({"allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"], "disabled": true}),
    )]);
    assert!(!allowed(&pol, web_from("203.0.113.9", 443)));
}

#[test]
fn rules_of_another_network_are_foreign_and_not_simulated() {
    let other = rule(
        "allow-all-other-net",
        json!({"allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"],
               "network": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/default"}),
    );
    let it = world();
    let text = serde_json::to_string(&vec![other]).unwrap();
    let state = GcpProvider.parse_snapshot(&text, &it).unwrap();
    assert!(state.objects[0].foreign);
    let pol = GcpProvider.lower(&state, &it);
    assert!(!allowed(&pol, web_from("203.0.113.9", 443)));
}

#[test]
fn default_network_default_allow_rules_at_65534_still_grant() {
    let pol = policy(vec![rule(
        "default-allow-ssh",
        json!({"description": "Allow SSH from anywhere", "direction": "INGRESS", "priority": 65534,
               "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
    )]);
    assert!(
        allowed(&pol, web_from("203.0.113.9", 22)),
        "an unmanaged rule still grants traffic"
    );
}

#[test]
fn managed_default_deny_at_65000_neutralises_default_allow() {
    let pol = policy(vec![
        rule(
            "default-allow-ssh",
            json!({"priority": 65534, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]}),
        ),
        rule(
            "iw-us-default-deny-in-v4-1",
            json!({"description": "intentwall: default deny", "priority": 65000,
             "denied": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"], "targetTags": ["iw-web"]}),
        ),
    ]);
    assert!(!allowed(&pol, web_from("203.0.113.9", 22)));
    // an api member is not behind that deny
    assert!(allowed(
        &pol,
        probe(outside("203.0.113.9"), member("api", "10.30.2.2"), tcp(22))
    ));
}

#[test]
fn no_target_applies_to_every_instance() {
    let pol = policy(vec![rule(
        "allow-https-all",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["0.0.0.0/0"]}),
    )]);
    for g in ["web", "api", "db"] {
        assert!(
            allowed(
                &pol,
                probe(outside("203.0.113.9"), member(g, "10.30.1.5"), tcp(443))
            ),
            "{g}"
        );
    }
}

#[test]
fn decision_tags_other_than_iw_match_no_member() {
    let pol = policy(vec![rule(
        "allow-http-server",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["80"]}], "sourceRanges": ["0.0.0.0/0"], "targetTags": ["http-server", "web"]}),
    )]);
    assert!(!allowed(&pol, web_from("203.0.113.9", 80)));
}

#[test]
fn target_service_account_matches_the_groups_running_as_it() {
    let pol = policy(vec![rule(
        "allow-pg-to-db-sa",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["5432"]}], "sourceServiceAccounts": ["web@acme-prod-us.iam.gserviceaccount.com", DB_SA],
               "targetServiceAccounts": [DB_SA]}),
    )]);
    // db runs as DB_SA: a db member may reach another db member; web has no service account here
    assert!(allowed(
        &pol,
        probe(
            member("db", "10.30.3.3"),
            member("db", "10.30.3.4"),
            tcp(5432)
        )
    ));
    assert!(!allowed(
        &pol,
        probe(
            member("web", "10.30.1.5"),
            member("db", "10.30.3.4"),
            tcp(5432)
        )
    ));
    assert!(!allowed(
        &pol,
        probe(
            member("db", "10.30.3.3"),
            member("web", "10.30.1.5"),
            tcp(5432)
        )
    ));
}

#[test]
fn decision_iw_tag_of_a_service_account_group_matches_no_member() {
    let pol = policy(vec![rule(
        "allow-to-db-tag",
        json!({"allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"], "targetTags": ["iw-db"]}),
    )]);
    assert!(!allowed(
        &pol,
        probe(outside("203.0.113.9"), member("db", "10.30.3.3"), tcp(5432))
    ));
}

#[test]
fn egress_rules_match_destination_ranges_and_beat_the_implied_allow() {
    let pol = policy(vec![rule(
        "deny-dns-to-google",
        json!({"direction": "EGRESS", "denied": [{"IPProtocol": "udp", "ports": ["53"]}], "destinationRanges": ["8.8.8.8"], "targetTags": ["iw-web"]}),
    )]);
    let dns = Packet::ported(17, 53);
    assert!(!allowed(
        &pol,
        probe(member("web", "10.30.1.5"), outside("8.8.8.8"), dns)
    ));
    assert!(allowed(
        &pol,
        probe(member("web", "10.30.1.5"), outside("8.8.4.4"), dns)
    ));
    assert!(allowed(
        &pol,
        probe(member("api", "10.30.2.2"), outside("8.8.8.8"), dns)
    ));
}

#[test]
fn omitted_ports_and_0_65535_mean_every_port() {
    for ports in [json!(null), json!(["0-65535"])] {
        let mut entry = json!({"IPProtocol": "tcp"});
        if !ports.is_null() {
            entry["ports"] = ports;
        }
        let pol = policy(vec![rule(
            "allow-tcp",
            json!({"allowed": [entry], "sourceRanges": ["0.0.0.0/0"]}),
        )]);
        assert!(allowed(&pol, web_from("203.0.113.9", 0)));
        assert!(allowed(&pol, web_from("203.0.113.9", 65535)));
        assert!(!allowed(
            &pol,
            probe(
                outside("203.0.113.9"),
                member("web", "10.30.1.5"),
                Packet::ported(17, 53)
            )
        ));
    }
}

#[test]
fn port_ranges_are_inclusive_at_both_ends() {
    let pol = policy(vec![rule(
        "allow-range",
        json!({"allowed": [{"IPProtocol": "tcp", "ports": ["8000-8099", "443"]}], "sourceRanges": ["0.0.0.0/0"]}),
    )]);
    for (p, ok) in [
        (7999, false),
        (8000, true),
        (8099, true),
        (8100, false),
        (443, true),
        (444, false),
    ] {
        assert_eq!(allowed(&pol, web_from("203.0.113.9", p)), ok, "port {p}");
    }
}

#[test]
fn protocol_all_matches_every_protocol() {
    let pol = policy(vec![rule(
        "allow-all",
        json!({"allowed": [{"IPProtocol": "all"}], "sourceRanges": ["0.0.0.0/0"]}),
    )]);
    for p in [
        Packet::ported(6, 1),
        Packet::icmp(1, 8, 0),
        Packet::ported(47, 0),
        Packet::ported(132, 9),
    ] {
        assert!(
            allowed(
                &pol,
                probe(outside("203.0.113.9"), member("web", "10.30.1.5"), p)
            ),
            "{p}"
        );
    }
}

#[test]
fn protocol_numbers_mean_the_same_as_names() {
    let pol = policy(vec![rule(
        "allow-6",
        json!({"allowed": [{"IPProtocol": "6", "ports": ["443"]}, {"IPProtocol": "47"}], "sourceRanges": ["0.0.0.0/0"]}),
    )]);
    assert!(allowed(&pol, web_from("203.0.113.9", 443)));
    assert!(!allowed(&pol, web_from("203.0.113.9", 444)));
    assert!(allowed(
        &pol,
        probe(
            outside("203.0.113.9"),
            member("web", "10.30.1.5"),
            Packet::ported(47, 0)
        )
    ));
}

#[test]
fn icmp_does_not_match_icmpv6_which_is_protocol_58() {
    let pol = policy(vec![rule(
        "allow-icmp",
        json!({"allowed": [{"IPProtocol": "icmp"}], "sourceRanges": ["::/0", "0.0.0.0/0"]}),
    )]);
    assert!(allowed(
        &pol,
        probe(
            outside("203.0.113.9"),
            member("web", "10.30.1.5"),
            Packet::icmp(1, 8, 0)
        )
    ));
    assert!(!allowed(
        &pol,
        probe(
            outside("2001:db8::9"),
            member("web", "fd00:30::5"),
            Packet::icmp(58, 128, 0)
        )
    ));
    let pol = policy(vec![rule(
        "allow-icmp6",
        json!({"allowed": [{"IPProtocol": "58"}], "sourceRanges": ["::/0"]}),
    )]);
    assert!(allowed(
        &pol,
        probe(
            outside("2001:db8::9"),
            member("web", "fd00:30::5"),
            Packet::icmp(58, 128, 0)
        )
    ));
}

#[test]
fn icmp_types_cannot_be_selected_so_a_rule_admits_every_type() {
    let pol = policy(vec![rule(
        "allow-icmp",
        json!({"allowed": [{"IPProtocol": "icmp"}], "sourceRanges": ["0.0.0.0/0"]}),
    )]);
    for (t, c) in [(8, 0), (0, 0), (3, 4), (13, 0)] {
        assert!(allowed(
            &pol,
            probe(
                outside("203.0.113.9"),
                member("web", "10.30.1.5"),
                Packet::icmp(1, t, c)
            )
        ));
    }
}

#[test]
fn an_ipv6_range_rule_does_not_match_ipv4_sources() {
    let pol = policy(vec![rule(
        "allow-v6",
        json!({"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["::/0"]}),
    )]);
    assert!(!allowed(&pol, web_from("203.0.113.9", 443)));
    assert!(allowed(
        &pol,
        probe(
            outside("2001:db8::9"),
            member("web", "fd00:30::5"),
            tcp(443)
        )
    ));
}

#[test]
fn restricted_egress_needs_an_explicit_allow_above_the_default_deny() {
    let pol = policy(vec![
        rule(
            "iw-us-default-deny-eg-v4-1",
            json!({"direction": "EGRESS", "priority": 65000, "description": "intentwall: default deny",
             "denied": [{"IPProtocol": "all"}], "destinationRanges": ["0.0.0.0/0"], "targetTags": ["iw-api"]}),
        ),
        rule(
            "iw-us-api-to-partners-eg-1",
            json!({"direction": "EGRESS", "description": "intentwall:api-to-partners",
             "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "destinationRanges": ["198.51.100.0/24"], "targetTags": ["iw-api"]}),
        ),
    ]);
    assert!(allowed(
        &pol,
        probe(
            member("api", "10.30.2.2"),
            outside("198.51.100.7"),
            tcp(443)
        )
    ));
    assert!(!allowed(
        &pol,
        probe(member("api", "10.30.2.2"), outside("198.51.100.7"), tcp(80))
    ));
    assert!(!allowed(
        &pol,
        probe(member("api", "10.30.2.2"), outside("203.0.113.9"), tcp(443))
    ));
    let v = pol.evaluate(&probe(
        member("api", "10.30.2.2"),
        outside("198.51.100.7"),
        tcp(443),
    ));
    let r = &pol.rules[v.egress.unwrap().rule.unwrap()];
    assert_eq!(r.flow.as_deref(), Some("api-to-partners"));
    assert!(r.managed);
}

#[test]
fn ingress_destination_ranges_narrow_the_targets() {
    let pol = policy(vec![rule(
        "allow-to-subnet",
        json!({"allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["0.0.0.0/0"], "destinationRanges": ["10.30.1.0/24"]}),
    )]);
    assert!(allowed(&pol, web_from("203.0.113.9", 443)));
    assert!(!allowed(
        &pol,
        probe(outside("203.0.113.9"), member("web", "10.30.9.9"), tcp(443))
    ));
}
