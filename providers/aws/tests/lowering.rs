//! Lowering tests from the documentation: hand-written describe-security-groups documents,
//! parsed and lowered, then probed. Verdicts come from AWS's documented semantics (facts and
//! simulator traps) and Batfish's SecurityGroupsTest expectations. Each test is named after
//! the trap it guards.
mod common;

use common::*;
use intentwall_contract::traffic::proto;
use intentwall_contract::{Packet, Traffic};

fn web() -> intentwall_contract::DeploymentIntent {
    groups_only(&["web", "api"])
}

fn ingress_only(perms: &str) -> String {
    doc(&[("web", perms, ""), ("api", "", "")])
}

fn from_ext(ip: &str, p: Packet) -> intentwall_contract::Probe {
    probe(ext(ip), member("web", "10.10.0.10"), p)
}

#[test]
fn no_match_is_implicit_deny() {
    let d = ingress_only("");
    assert!(!allowed(&d, &web(), &from_ext("203.0.113.5", tcp(443))));
}

#[test]
fn rule_order_is_irrelevant_union_of_allows() {
    // trap 1: no ordering and no deny; any matching rule of any SG allows
    let a = r#"{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"203.0.113.0/24"}]},
               {"IpProtocol":"tcp","FromPort":0,"ToPort":65535,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#;
    let b = r#"{"IpProtocol":"tcp","FromPort":0,"ToPort":65535,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]},
               {"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"203.0.113.0/24"}]}"#;
    for d in [ingress_only(a), ingress_only(b)] {
        assert!(allowed(&d, &web(), &from_ext("198.51.100.1", tcp(22))));
        assert!(allowed(&d, &web(), &from_ext("203.0.113.7", tcp(22))));
        assert!(!allowed(&d, &web(), &from_ext("203.0.113.7", udp(22))));
    }
}

#[test]
fn protocol_minus_one_ignores_the_port_range() {
    // trap 2
    let d = ingress_only(
        r#"{"IpProtocol":"-1","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"203.0.113.0/24"}]}"#,
    );
    assert!(allowed(&d, &web(), &from_ext("203.0.113.9", tcp(80))));
    assert!(allowed(&d, &web(), &from_ext("203.0.113.9", udp(53))));
    assert!(allowed(
        &d,
        &web(),
        &from_ext("203.0.113.9", Packet::icmp(proto::ICMP, 8, 0))
    ));
    assert!(allowed(
        &d,
        &web(),
        &from_ext("203.0.113.9", Packet::ported(proto::ESP, 0))
    ));
    assert!(!allowed(&d, &web(), &from_ext("198.51.100.9", tcp(22))));
}

#[test]
fn other_protocol_numbers_ignore_the_port_range() {
    // trap 2: esp by number, and sctp (132) whose packets do carry ports AWS cannot select
    let d = ingress_only(
        r#"{"IpProtocol":"50","FromPort":500,"ToPort":500,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]},
           {"IpProtocol":"132","FromPort":9899,"ToPort":9899,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    assert!(allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::ported(proto::ESP, 0))
    ));
    assert!(allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::ported(proto::SCTP, 1))
    ));
    assert!(!allowed(&d, &web(), &from_ext("1.2.3.4", tcp(500))));
    assert!(!allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::ported(proto::AH, 0))
    ));
}

#[test]
fn protocol_number_6_is_tcp_and_keeps_its_ports() {
    let d = ingress_only(
        r#"{"IpProtocol":"6","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    assert!(allowed(&d, &web(), &from_ext("1.2.3.4", tcp(22))));
    assert!(!allowed(&d, &web(), &from_ext("1.2.3.4", tcp(23))));
    assert!(!allowed(&d, &web(), &from_ext("1.2.3.4", udp(22))));
}

#[test]
fn tcp_port_range_is_inclusive_at_both_ends() {
    // Batfish idx 1, 2, 5: half-open and closed intervals
    let d = ingress_only(
        r#"{"IpProtocol":"tcp","FromPort":45,"ToPort":50,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    for (p, ok) in [(44, false), (45, true), (50, true), (51, false)] {
        assert_eq!(
            allowed(&d, &web(), &from_ext("1.2.3.4", tcp(p))),
            ok,
            "port {p}"
        );
    }
}

#[test]
fn tcp_minus_one_port_ends_are_open_ends() {
    // Batfish idx 6 and 7: FromPort -1 reads as 0, ToPort -1 as 65535
    let d = ingress_only(
        r#"{"IpProtocol":"tcp","FromPort":-1,"ToPort":50,"IpRanges":[{"CidrIp":"1.0.0.0/8"}]},
           {"IpProtocol":"tcp","FromPort":30000,"ToPort":-1,"IpRanges":[{"CidrIp":"2.0.0.0/8"}]}"#,
    );
    assert!(allowed(&d, &web(), &from_ext("1.2.3.4", tcp(0))));
    assert!(!allowed(&d, &web(), &from_ext("1.2.3.4", tcp(51))));
    assert!(allowed(&d, &web(), &from_ext("2.2.3.4", tcp(65535))));
    assert!(!allowed(&d, &web(), &from_ext("2.2.3.4", tcp(29999))));
}

#[test]
fn icmp_ports_are_type_and_code_not_a_range_of_types() {
    // trap 3: FromPort 3, ToPort 4 is type 3 code 4, not types 3..4
    let d = ingress_only(
        r#"{"IpProtocol":"icmp","FromPort":3,"ToPort":4,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    assert!(allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 3, 4))
    ));
    assert!(!allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 4, 4))
    ));
    assert!(!allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 3, 0))
    ));
}

#[test]
fn icmp_type_with_code_minus_one_is_every_code() {
    // Batfish idx 9
    let d = ingress_only(
        r#"{"IpProtocol":"icmp","FromPort":8,"ToPort":-1,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    assert!(allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 8, 0))
    ));
    assert!(allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 8, 9))
    ));
    assert!(!allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 0, 0))
    ));
}

#[test]
fn icmp_minus_one_minus_one_is_all_icmp_but_not_icmpv6() {
    let d = ingress_only(
        r#"{"IpProtocol":"icmp","FromPort":-1,"ToPort":-1,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    assert!(allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 13, 0))
    ));
    assert!(!allowed(
        &d,
        &web(),
        &from_ext("1.2.3.4", Packet::icmp(proto::ICMPV6, 128, 0))
    ));
}

#[test]
fn icmp_type_minus_one_with_a_code_is_an_unknown_match() {
    // AWS refuses to create it, so a recorded one matches something nobody defines: the
    // model keeps it as an unknown match bounded by its protocol, never as matching nothing
    let d = ingress_only(
        r#"{"IpProtocol":"icmp","FromPort":-1,"ToPort":9,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
    );
    let i = web();
    let pol = intentwall_aws::lower::lower(&parse(&d, &i), &i);
    let r = &pol.rules[0];
    assert!(r
        .unknown
        .as_deref()
        .is_some_and(|w| w.contains("ICMP type -1")));
    assert_eq!(r.traffic, vec![Traffic::proto(proto::ICMP)]);
    let p = from_ext("1.2.3.4", Packet::icmp(proto::ICMP, 8, 9));
    let verdicts = pol.index().possible_verdicts(&p);
    assert_eq!(
        verdicts.len(),
        2,
        "allowed or not, depending on the unknown match"
    );
}

#[test]
fn icmpv6_port_range_is_optional_and_omitted_means_all() {
    let d = ingress_only(r#"{"IpProtocol":"58","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}"#);
    let p = probe(
        ext("2001:db8::1"),
        member("web", "2600:1f18:1234:5600::10"),
        Packet::icmp(proto::ICMPV6, 135, 0),
    );
    assert!(allowed(&d, &web(), &p));
}

#[test]
fn ipv4_rules_never_match_ipv6_packets() {
    let d = ingress_only(r#"{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#);
    assert!(allowed(&d, &web(), &from_ext("1.2.3.4", tcp(1))));
    let p = probe(
        ext("2001:db8::1"),
        member("web", "2600:1f18:1234:5600::10"),
        tcp(1),
    );
    assert!(!allowed(&d, &web(), &p));
}

#[test]
fn new_sg_default_egress_covers_ipv4_only() {
    // a new SG gets only `-1` to 0.0.0.0/0: IPv6 egress is dropped until ::/0 is added
    let d = doc(&[(
        "web",
        "",
        r#"{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}],"Ipv6Ranges":[],"PrefixListIds":[],"UserIdGroupPairs":[]}"#,
    )]);
    let i = groups_only(&["web"]);
    assert!(allowed(
        &d,
        &i,
        &probe(member("web", "10.10.0.10"), ext("8.8.8.8"), tcp(443))
    ));
    assert!(!allowed(
        &d,
        &i,
        &probe(
            member("web", "2600:1f18:1234:5600::10"),
            ext("2001:4860::8888"),
            tcp(443)
        )
    ));
}

#[test]
fn no_egress_rules_means_no_egress() {
    let d = doc(&[("web", "", "")]);
    let i = groups_only(&["web"]);
    assert!(!allowed(
        &d,
        &i,
        &probe(member("web", "10.10.0.10"), ext("8.8.8.8"), tcp(443))
    ));
    // and nothing is implied for replies or DNS in the model: only rules present count
    assert!(!allowed(
        &d,
        &i,
        &probe(member("web", "10.10.0.10"), ext("10.10.0.2"), udp(53))
    ));
}

#[test]
fn traffic_between_members_needs_egress_and_ingress() {
    let api_in = format!(
        r#"{{"IpProtocol":"tcp","FromPort":8080,"ToPort":8080,"UserIdGroupPairs":[{{"GroupId":"{}","UserId":"111122223333"}}]}}"#,
        sgid(0)
    );
    let i = groups_only(&["web", "api"]);
    let p = probe(
        member("web", "10.10.0.10"),
        member("api", "10.10.1.10"),
        tcp(8080),
    );
    // web has no egress at all: denied at the source
    let d = doc(&[("web", "", ""), ("api", &api_in, "")]);
    assert!(!allowed(&d, &i, &p));
    let d = doc(&[
        (
            "web",
            "",
            r#"{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}"#,
        ),
        ("api", &api_in, ""),
    ]);
    assert!(allowed(&d, &i, &p));
}

#[test]
fn sg_reference_matches_members_not_addresses() {
    // trap 4: an SG reference matches the members carrying the referenced SG, never a
    // non-member host at the same address
    let ing = format!(
        r#"{{"IpProtocol":"-1","UserIdGroupPairs":[{{"GroupId":"{}","UserId":"111122223333"}}]}}"#,
        sgid(1)
    );
    let d = doc(&[("web", &ing, ""), ("api", "", "")]);
    let i = web();
    // api has no egress in this document, so the whole probe is dropped at api's egress
    assert!(!allowed(
        &d,
        &i,
        &probe(
            member("api", "10.10.1.10"),
            member("web", "10.10.0.10"),
            tcp(1)
        )
    ));
    let st = parse(&d, &i);
    let pol = intentwall_aws::lower::lower(&st, &i);
    let v = pol.evaluate(&probe(
        member("api", "10.10.1.10"),
        member("web", "10.10.0.10"),
        tcp(1),
    ));
    assert!(
        v.ingress.unwrap().allowed,
        "api members reach web's ingress"
    );
    let v = pol.evaluate(&probe(
        ext("10.10.1.10"),
        member("web", "10.10.0.10"),
        tcp(1),
    ));
    assert!(!v.allowed, "a non-member at the same address does not");
}

#[test]
fn sg_reference_to_an_unmanaged_sg_matches_no_workload_of_ours() {
    // the VPC default SG self-references; web admits "members of default": nobody of ours
    let text = format!(
        r#"{{"SecurityGroups":[
          {{"GroupName":"default","GroupId":"sg-0def","VpcId":"{VPC}","Description":"default VPC security group",
            "IpPermissions":[{{"IpProtocol":"-1","UserIdGroupPairs":[{{"GroupId":"sg-0def"}}]}}],
            "IpPermissionsEgress":[{{"IpProtocol":"-1","IpRanges":[{{"CidrIp":"0.0.0.0/0"}}]}}]}},
          {{"GroupName":"iw-web","GroupId":"sg-0web","VpcId":"{VPC}","Description":"intentwall group web",
            "Tags":[{{"Key":"managed-by","Value":"intentwall"}},{{"Key":"intentwall:group","Value":"web"}}],
            "IpPermissions":[{{"IpProtocol":"-1","UserIdGroupPairs":[{{"GroupId":"sg-0def"}}]}}],
            "IpPermissionsEgress":[]}}]}}"#
    );
    let i = groups_only(&["web", "api"]);
    let st = parse(&text, &i);
    assert!(st
        .objects
        .iter()
        .filter(|o| o.key.starts_with("sg:default"))
        .all(|o| o.foreign));
    let pol = intentwall_aws::lower::lower(&st, &i);
    assert_eq!(
        pol.rules.len(),
        1,
        "the default SG's own rules are not simulated"
    );
    assert!(
        !pol.evaluate(&probe(
            member("api", "10.10.1.1"),
            member("web", "10.10.0.1"),
            tcp(1)
        ))
        .ingress
        .unwrap()
        .allowed
    );
    assert!(
        !pol.evaluate(&probe(
            member("api", "10.10.1.1"),
            member("api", "10.10.0.2"),
            tcp(1)
        ))
        .allowed
    );
}

#[test]
fn sg_reference_to_another_vpc_matches_nothing_here() {
    let ing = r#"{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"UserIdGroupPairs":[{"GroupId":"sg-0peer","UserId":"444455556666","VpcId":"vpc-0peer","VpcPeeringConnectionId":"pcx-1","PeeringStatus":"active"}]}"#;
    let d = ingress_only(ing);
    let st = parse(&d, &web());
    assert!(st.objects.iter().any(|o| o.key.ends_with("/sgid:sg-0peer")));
    assert!(!allowed(&d, &web(), &from_ext("10.99.0.1", tcp(443))));
}

#[test]
fn prefix_list_matches_its_entries() {
    // Batfish: egress -1 to pl-7ba54012 = [10.10.10.0/24]
    let text = format!(
        r#"{{"SecurityGroups":[{{"GroupName":"iw-web","GroupId":"sg-0web","VpcId":"{VPC}","Description":"x",
            "Tags":[{{"Key":"managed-by","Value":"intentwall"}}],
            "IpPermissions":[],
            "IpPermissionsEgress":[{{"IpProtocol":"-1","PrefixListIds":[{{"PrefixListId":"pl-7ba54012"}}]}}]}}],
          "ManagedPrefixLists":[{{"PrefixListId":"pl-7ba54012","PrefixListName":"office","AddressFamily":"IPv4","MaxEntries":5,
            "Entries":[{{"Cidr":"10.10.10.0/24"}}]}}]}}"#
    );
    let i = groups_only(&["web"]);
    assert!(allowed(
        &text,
        &i,
        &probe(member("web", "10.10.0.5"), ext("10.10.10.1"), tcp(10))
    ));
    assert!(!allowed(
        &text,
        &i,
        &probe(member("web", "10.10.0.5"), ext("1.1.1.1"), tcp(10))
    ));
}

#[test]
fn prefix_list_not_in_the_document_is_an_unknown_match() {
    let d = doc(&[(
        "web",
        "",
        r#"{"IpProtocol":"-1","PrefixListIds":[{"PrefixListId":"pl-00a54069"}]}"#,
    )]);
    let i = groups_only(&["web"]);
    let pol = intentwall_aws::lower::lower(&parse(&d, &i), &i);
    assert!(pol.rules[0]
        .unknown
        .as_deref()
        .is_some_and(|w| w.contains("pl-00a54069")));
    let p = probe(member("web", "10.10.0.5"), ext("52.94.28.1"), tcp(443));
    assert_eq!(pol.index().possible_verdicts(&p).len(), 2);
    // declared in the placement, it is known
    let mut known = i.clone();
    known
        .settings
        .insert("prefix_lists.pl-00a54069".into(), "52.94.0.0/16".into());
    let pol = intentwall_aws::lower::lower(&parse(&d, &known), &known);
    assert!(pol.rules[0].unknown.is_none());
    assert!(allowed(&d, &known, &p));
    let far = probe(member("web", "10.10.0.5"), ext("1.1.1.1"), tcp(443));
    assert!(!allowed(&d, &known, &far));
}

#[test]
fn hand_made_rule_in_a_managed_sg_is_ours_and_still_grants() {
    let d = ingress_only(
        r#"{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"hand-made by ops"}]}"#,
    );
    let st = parse(&d, &web());
    let r = st.objects.iter().find(|o| o.kind == "sg-rule").unwrap();
    // owned with its SG (so a plan deletes it), and until then it grants what it says
    assert!(r.managed && !r.foreign && r.flow.is_none());
    assert!(allowed(&d, &web(), &from_ext("1.2.3.4", tcp(22))));
}

#[test]
fn marker_description_in_an_untagged_sg_does_not_make_a_rule_ours() {
    let text = r#"{"SecurityGroups":[{"GroupName":"ops-tools","GroupId":"sg-2","VpcId":"vpc-0a1b2c3d","Description":"x",
        "IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"intentwall:web-ssh"}]}],
        "IpPermissionsEgress":[]}]}"#;
    let st = parse(text, &web());
    let r = st.objects.iter().find(|o| o.kind == "sg-rule").unwrap();
    assert!(!r.managed && r.flow.is_none());
}

#[test]
fn sg_in_another_vpc_is_foreign_and_not_simulated() {
    let text = r#"{"SecurityGroups":[{"GroupName":"iw-web","GroupId":"sg-1","VpcId":"vpc-other","Description":"x",
        "Tags":[{"Key":"managed-by","Value":"intentwall"}],
        "IpPermissions":[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}],"IpPermissionsEgress":[]}]}"#;
    let st = parse(text, &web());
    assert!(st.objects.iter().all(|o| o.foreign));
    // its tag is another VPC's business: not ours to change or delete
    assert!(st.objects.iter().all(|o| !o.managed));
    assert!(!allowed(text, &web(), &from_ext("1.2.3.4", tcp(1))));
}

#[test]
fn one_permission_with_several_cidrs_is_several_rules() {
    let d = ingress_only(
        r#"{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"1.0.0.0/8"},{"CidrIp":"2.0.0.0/8"}],
            "Ipv6Ranges":[{"CidrIpv6":"2001:db8::/32"}]}"#,
    );
    let st = parse(&d, &web());
    assert_eq!(st.objects.iter().filter(|o| o.kind == "sg-rule").count(), 3);
    assert!(allowed(&d, &web(), &from_ext("1.1.1.1", tcp(443))));
    assert!(allowed(&d, &web(), &from_ext("2.1.1.1", tcp(443))));
    assert!(!allowed(&d, &web(), &from_ext("3.1.1.1", tcp(443))));
}

#[test]
fn host_bits_in_a_cidr_are_cleared_as_aws_stores_it() {
    let d = ingress_only(
        r#"{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"203.0.113.77/24"}]}"#,
    );
    assert!(allowed(&d, &web(), &from_ext("203.0.113.1", tcp(443))));
    let st = parse(&d, &web());
    assert!(st
        .objects
        .iter()
        .any(|o| o.key.ends_with("cidr:203.0.113.0/24")));
}
