//! Lowering tests from the documentation: hand-written `az network nsg list` documents ->
//! parse_snapshot -> lower -> evaluate, with verdicts from Azure's documented semantics (facts and
//! simulator traps). Each test is named after the fact or trap it guards.

mod common;

use common::*;
use intentwall_azure::AzureProvider;
use intentwall_contract::traffic::proto;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{DeploymentIntent, EvalPolicy, Host, Packet, Probe, Provider};
use serde_json::{json, Value};

const SUB: &str = "/subscriptions/0000-1111/resourceGroups/rg-prod-us/providers/Microsoft.Network";

fn asg(g: &str) -> Value {
    json!([{ "id": format!("{SUB}/applicationSecurityGroups/{g}") }])
}

/// A CLI-shaped rule with the usual fields; `extra` overrides/adds fields.
fn rule(name: &str, dir: &str, access: &str, prio: u32, protocol: &str, extra: Value) -> Value {
    let mut r = json!({
        "access": access,
        "description": null,
        "destinationAddressPrefix": "*",
        "destinationAddressPrefixes": [],
        "destinationPortRange": "*",
        "destinationPortRanges": [],
        "direction": dir,
        "etag": "W/\"00000000-0000-0000-0000-000000000000\"",
        "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us/securityRules/{name}"),
        "name": name,
        "priority": prio,
        "protocol": protocol,
        "provisioningState": "Succeeded",
        "resourceGroup": "rg-prod-us",
        "sourceAddressPrefix": "*",
        "sourceAddressPrefixes": [],
        "sourcePortRange": "*",
        "sourcePortRanges": [],
        "type": "Microsoft.Network/networkSecurityGroups/securityRules"
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut r, extra) {
        for (k, v) in e {
            m.insert(k, v);
        }
    }
    r
}

fn nsg(name: &str, rules: Vec<Value>) -> Value {
    json!({
        "defaultSecurityRules": [],
        "etag": "W/\"1\"",
        "id": format!("{SUB}/networkSecurityGroups/{name}"),
        "location": "eastus",
        "name": name,
        "provisioningState": "Succeeded",
        "resourceGroup": "rg-prod-us",
        "securityRules": rules,
        "type": "Microsoft.Network/networkSecurityGroups"
    })
}

fn the_intent() -> DeploymentIntent {
    intent(&[("web", false), ("api", false), ("db", false)], vec![])
}

fn lower_doc(doc: Value) -> EvalPolicy {
    lower_doc_with(doc, &the_intent())
}

fn lower_doc_with(doc: Value, it: &DeploymentIntent) -> EvalPolicy {
    let p = AzureProvider;
    let st = p
        .parse_snapshot(&serde_json::to_string_pretty(&doc).unwrap(), it)
        .unwrap();
    p.lower(&st, it)
}

fn lower_rules(rules: Vec<Value>) -> EvalPolicy {
    lower_doc(json!([nsg("nsg-prod-us", rules)]))
}

fn host(ip: &str, g: Option<&str>) -> Host {
    Host {
        ip: ip.parse().unwrap(),
        group: g.map(str::to_string),
    }
}

fn tcp(port: u16) -> Packet {
    Packet::ported(proto::TCP, port)
}

fn allowed(pol: &EvalPolicy, src: Host, dst: Host, packet: Packet) -> bool {
    pol.evaluate(&Probe { src, dst, packet }).allowed
}

const WEB: &str = "10.20.1.4";
const API: &str = "10.20.2.4";
const OUT: &str = "203.0.113.9";

#[test]
fn first_match_wins_lower_number_deny_before_allow() {
    let pol = lower_rules(vec![
        rule(
            "deny-443",
            "Inbound",
            "Deny",
            100,
            "Tcp",
            json!({"destinationPortRange": "443"}),
        ),
        rule(
            "allow-443",
            "Inbound",
            "Allow",
            200,
            "Tcp",
            json!({"destinationPortRange": "443"}),
        ),
    ]);
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(443)
    ));
}

#[test]
fn first_match_wins_allow_before_deny_no_deny_precedence() {
    let pol = lower_rules(vec![
        rule(
            "allow-443",
            "Inbound",
            "Allow",
            100,
            "Tcp",
            json!({"destinationPortRange": "443"}),
        ),
        rule("deny-all", "Inbound", "Deny", 200, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(443)
    ));
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(22)
    ));
}

#[test]
fn default_allow_vnet_inbound_admits_vnet_sources_when_no_rule_matches() {
    let pol = lower_rules(vec![]);
    assert!(allowed(
        &pol,
        host("10.20.9.9", None),
        host(WEB, Some("web")),
        tcp(22)
    ));
}

#[test]
fn default_deny_all_inbound_drops_internet_sources() {
    let pol = lower_rules(vec![]);
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(443)
    ));
}

#[test]
fn default_allow_azure_load_balancer_inbound_admits_168_63_129_16() {
    let pol = lower_rules(vec![]);
    assert!(allowed(
        &pol,
        host("168.63.129.16", None),
        host(WEB, Some("web")),
        tcp(80)
    ));
    assert!(!allowed(
        &pol,
        host("168.63.129.17", None),
        host(WEB, Some("web")),
        tcp(80)
    ));
}

#[test]
fn default_allow_internet_outbound_lets_members_reach_the_internet() {
    let pol = lower_rules(vec![]);
    assert!(allowed(
        &pol,
        host(WEB, Some("web")),
        host(OUT, None),
        tcp(443)
    ));
}

#[test]
fn explicit_deny_at_4096_neutralises_allow_vnet_inbound() {
    let pol = lower_rules(vec![rule(
        "iw-default-deny-inbound",
        "Inbound",
        "Deny",
        4096,
        "*",
        json!({}),
    )]);
    assert!(!allowed(
        &pol,
        host("10.20.9.9", None),
        host(WEB, Some("web")),
        tcp(22)
    ));
    assert!(!allowed(
        &pol,
        host(API, Some("api")),
        host(WEB, Some("web")),
        tcp(22)
    ));
}

#[test]
fn trap1_virtual_network_tag_modelled_as_vnet_space_only() {
    let pol = lower_rules(vec![
        rule(
            "vnet-in",
            "Inbound",
            "Allow",
            100,
            "Tcp",
            json!({"sourceAddressPrefix": "VirtualNetwork", "destinationPortRange": "22"}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host("10.20.200.1", None),
        host(WEB, Some("web")),
        tcp(22)
    ));
    // peered / on-prem space is not known to us: modelled outside VirtualNetwork
    assert!(!allowed(
        &pol,
        host("10.99.0.1", None),
        host(WEB, Some("web")),
        tcp(22)
    ));
}

#[test]
fn internet_tag_is_everything_outside_the_vnet() {
    let pol = lower_rules(vec![rule(
        "deny-internet-out",
        "Outbound",
        "Deny",
        100,
        "*",
        json!({"destinationAddressPrefix": "Internet"}),
    )]);
    assert!(!allowed(
        &pol,
        host(WEB, Some("web")),
        host(OUT, None),
        tcp(443)
    ));
    assert!(allowed(
        &pol,
        host(WEB, Some("web")),
        host("10.20.3.3", None),
        tcp(443)
    ));
}

#[test]
fn asg_source_matches_members_not_addresses() {
    let pol = lower_rules(vec![
        rule(
            "from-web",
            "Inbound",
            "Allow",
            100,
            "Tcp",
            json!({
            "sourceAddressPrefix": null, "sourceApplicationSecurityGroups": asg("iw-web"),
            "destinationAddressPrefix": null, "destinationApplicationSecurityGroups": asg("iw-api"),
            "destinationPortRange": "8080"}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(WEB, Some("web")),
        host(API, Some("api")),
        tcp(8080)
    ));
    assert!(!allowed(
        &pol,
        host(WEB, None),
        host(API, Some("api")),
        tcp(8080)
    ));
    assert!(!allowed(
        &pol,
        host(WEB, Some("web")),
        host("10.20.3.3", Some("db")),
        tcp(8080)
    ));
}

#[test]
fn asg_ids_compare_case_insensitively() {
    let id = format!("{SUB}/applicationSecurityGroups/IW-WEB").to_uppercase();
    let pol = lower_rules(vec![
        rule(
            "from-web",
            "Inbound",
            "Allow",
            100,
            "*",
            json!({
            "sourceAddressPrefix": null, "sourceApplicationSecurityGroups": [{"id": id}]}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(WEB, Some("web")),
        host(API, Some("api")),
        tcp(1)
    ));
}

#[test]
fn asg_not_named_iw_matches_no_workload() {
    let pol = lower_rules(vec![
        rule(
            "from-legacy",
            "Inbound",
            "Allow",
            100,
            "*",
            json!({
            "sourceAddressPrefix": null, "sourceApplicationSecurityGroups": asg("legacy-web")}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(!allowed(
        &pol,
        host(WEB, Some("web")),
        host(API, Some("api")),
        tcp(1)
    ));
    assert!(pol.rules.iter().any(|r| r.id.contains("not intentwall's")));
}

/// The verdicts a probe can get whatever the unknown matches are.
fn possible(pol: &EvalPolicy, src: Host, dst: Host, packet: Packet) -> Vec<bool> {
    let mut v: Vec<bool> = pol
        .index()
        .possible_verdicts(&Probe { src, dst, packet })
        .iter()
        .map(|v| v.allowed)
        .collect();
    v.sort();
    v
}

#[test]
fn undeclared_service_tags_are_unknown_matches_and_say_so() {
    let storage = || {
        rule(
            "storage",
            "Outbound",
            "Deny",
            100,
            "*",
            json!({"destinationAddressPrefix": "Storage.EastUS"}),
        )
    };
    let pol = lower_rules(vec![storage()]);
    // the deny may or may not match a given address: both verdicts are possible
    assert_eq!(
        possible(
            &pol,
            host(WEB, Some("web")),
            host("20.38.98.1", None),
            tcp(443)
        ),
        vec![false, true]
    );
    assert!(pol.rules.iter().any(|r| r
        .unknown
        .as_deref()
        .is_some_and(|w| w.contains("Storage.EastUS"))));
    // declared in the placement (`service_tags`), the tag is known
    let mut it = the_intent();
    it.settings
        .insert("service_tags.storage.eastus".into(), "20.38.96.0/19".into());
    let known = lower_doc_with(json!([nsg("nsg-prod-us", vec![storage()])]), &it);
    assert!(known.rules.iter().all(|r| r.unknown.is_none()));
    assert!(!allowed(
        &known,
        host(WEB, Some("web")),
        host("20.38.98.1", None),
        tcp(443)
    ));
    assert!(allowed(
        &known,
        host(WEB, Some("web")),
        host("20.39.0.1", None),
        tcp(443)
    ));
}

#[test]
fn trap7_icmp_between_asgs_matches_icmpv4_and_icmpv6() {
    let pol = lower_rules(vec![
        rule(
            "ping",
            "Inbound",
            "Allow",
            100,
            "Icmp",
            json!({
            "sourceAddressPrefix": null, "sourceApplicationSecurityGroups": asg("iw-web"),
            "destinationAddressPrefix": null, "destinationApplicationSecurityGroups": asg("iw-api")}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    let (s, d) = (|| host(WEB, Some("web")), || host(API, Some("api")));
    assert!(allowed(&pol, s(), d(), Packet::icmp(proto::ICMP, 8, 0)));
    assert!(allowed(&pol, s(), d(), Packet::icmp(proto::ICMPV6, 128, 0)));
    assert!(!allowed(&pol, s(), d(), tcp(80)));
}

#[test]
fn icmp_toward_ipv4_prefix_is_icmpv4_only() {
    let pol = lower_rules(vec![
        rule(
            "ping",
            "Inbound",
            "Allow",
            100,
            "Icmp",
            json!({"sourceAddressPrefix": "203.0.113.0/24"}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        Packet::icmp(proto::ICMP, 8, 0)
    ));
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        Packet::icmp(proto::ICMPV6, 128, 0)
    ));
}

#[test]
fn trap7_star_protocol_with_ports_is_tcp_and_udp_on_those_ports() {
    let pol = lower_rules(vec![
        rule(
            "star-80",
            "Inbound",
            "Allow",
            100,
            "*",
            json!({"destinationPortRange": "80"}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    let (s, d) = (|| host(OUT, None), || host(WEB, Some("web")));
    assert!(allowed(&pol, s(), d(), tcp(80)));
    assert!(allowed(&pol, s(), d(), Packet::ported(proto::UDP, 80)));
    assert!(!allowed(&pol, s(), d(), Packet::icmp(proto::ICMP, 8, 0)));
    assert!(!allowed(&pol, s(), d(), Packet::ported(proto::ESP, 0)));
}

#[test]
fn star_protocol_without_ports_matches_every_protocol() {
    let pol = lower_rules(vec![rule("all", "Inbound", "Allow", 100, "*", json!({}))]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        Packet::ported(47, 0)
    ));
    assert!(allowed(
        &pol,
        host("2001:db8::1", None),
        host("fd00:20::5", Some("web")),
        Packet::ported(132, 9)
    ));
}

#[test]
fn same_priority_in_each_direction_is_independent() {
    let pol = lower_rules(vec![
        rule("in-allow", "Inbound", "Allow", 100, "*", json!({})),
        rule("out-deny", "Outbound", "Deny", 100, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(1)
    ));
    assert!(!allowed(
        &pol,
        host(WEB, Some("web")),
        host(OUT, None),
        tcp(1)
    ));
    // member to member: egress at the source denies
    assert!(!allowed(
        &pol,
        host(WEB, Some("web")),
        host(API, Some("api")),
        tcp(1)
    ));
}

#[test]
fn outbound_rules_guard_the_source_side() {
    let pol = lower_rules(vec![rule(
        "web-out-deny",
        "Outbound",
        "Deny",
        100,
        "*",
        json!({
        "sourceAddressPrefix": null, "sourceApplicationSecurityGroups": asg("iw-web")}),
    )]);
    assert!(!allowed(
        &pol,
        host(WEB, Some("web")),
        host(OUT, None),
        tcp(443)
    ));
    assert!(allowed(
        &pol,
        host(API, Some("api")),
        host(OUT, None),
        tcp(443)
    ));
}

#[test]
fn unmanaged_rules_are_simulated_like_ours() {
    let pol = lower_rules(vec![
        rule(
            "legacy-ssh",
            "Inbound",
            "Allow",
            150,
            "Tcp",
            json!({"destinationPortRange": "22", "description": "hand-made"}),
        ),
        rule(
            "iw-default-deny-inbound",
            "Inbound",
            "Deny",
            4096,
            "*",
            json!({"description": "intentwall: default deny"}),
        ),
    ]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(22)
    ));
    let r = pol.rules.iter().find(|r| r.id == "legacy-ssh").unwrap();
    assert!(!r.managed);
    assert!(
        pol.rules
            .iter()
            .find(|r| r.id == "iw-default-deny-inbound")
            .unwrap()
            .managed
    );
}

#[test]
fn rules_of_other_nsgs_are_foreign_and_not_simulated() {
    let pol = lower_doc(json!([
        nsg(
            "nsg-prod-us",
            vec![rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({}))]
        ),
        nsg(
            "nsg-other",
            vec![rule("allow-all", "Inbound", "Allow", 100, "*", json!({}))]
        ),
    ]));
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(22)
    ));
    assert!(pol.rules.iter().all(|r| r.id != "allow-all"));
}

#[test]
fn augmented_rules_union_singular_and_plural_prefixes_and_ports() {
    let pol = lower_rules(vec![
        rule(
            "aug",
            "Inbound",
            "Allow",
            100,
            "Tcp",
            json!({
            "sourceAddressPrefix": "198.51.100.0/24", "sourceAddressPrefixes": ["203.0.113.0/24"],
            "destinationPortRange": "80", "destinationPortRanges": ["10000-10005"]}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    let d = || host(WEB, Some("web"));
    assert!(allowed(&pol, host("198.51.100.1", None), d(), tcp(80)));
    assert!(allowed(&pol, host(OUT, None), d(), tcp(10003)));
    assert!(!allowed(&pol, host(OUT, None), d(), tcp(10006)));
    assert!(!allowed(&pol, host("192.0.2.1", None), d(), tcp(80)));
}

#[test]
fn source_port_restricted_rules_are_unknown_matches() {
    let pol = lower_rules(vec![
        rule(
            "deny-from-port",
            "Inbound",
            "Deny",
            100,
            "Tcp",
            json!({"sourcePortRange": "1024"}),
        ),
        rule("allow", "Inbound", "Allow", 200, "Tcp", json!({})),
    ]);
    // probes carry no source port: the deny blocks some packets of the class and not others
    assert_eq!(
        possible(&pol, host(OUT, None), host(WEB, Some("web")), tcp(443)),
        vec![false, true]
    );
}

#[test]
fn esp_rule_matches_only_esp() {
    let pol = lower_rules(vec![
        rule("esp", "Inbound", "Allow", 100, "Esp", json!({})),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        Packet::ported(proto::ESP, 0)
    ));
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        Packet::ported(proto::AH, 0)
    ));
}

#[test]
fn destination_prefix_selects_members_by_address_inbound() {
    let pol = lower_rules(vec![
        rule(
            "to-subnet",
            "Inbound",
            "Allow",
            100,
            "*",
            json!({"destinationAddressPrefix": "10.20.1.0/24"}),
        ),
        rule("deny-rest", "Inbound", "Deny", 4096, "*", json!({})),
    ]);
    assert!(allowed(
        &pol,
        host(OUT, None),
        host(WEB, Some("web")),
        tcp(1)
    ));
    assert!(!allowed(
        &pol,
        host(OUT, None),
        host(API, Some("api")),
        tcp(1)
    ));
}
