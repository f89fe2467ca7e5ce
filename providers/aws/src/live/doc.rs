//! The SDK's types to and from the `aws ec2 describe-security-groups` JSON shape.
//!
//! A live observation is written down as the very document the CLI prints and then read by
//! the snapshot loader ([`crate::snapshot::parse`]): one normaliser for files and the cloud,
//! so a live observation and a snapshot of the same state give the same objects, the same
//! fingerprint and the same plan, and `intentwall snapshot` records exactly what was read.

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, ManagedPrefixList, PrefixListEntry, PrefixListId,
    SecurityGroup, Tag, UserIdGroupPair,
};
use serde_json::{Map, Value};

fn put(m: &mut Map<String, Value>, k: &str, v: Option<&str>) {
    if let Some(v) = v {
        m.insert(k.into(), v.into());
    }
}

fn tags(t: &[Tag]) -> Value {
    Value::Array(
        t.iter()
            .map(|t| {
                let mut m = Map::new();
                put(&mut m, "Key", t.key());
                put(&mut m, "Value", t.value());
                Value::Object(m)
            })
            .collect(),
    )
}

fn permission(p: &IpPermission) -> Value {
    let mut m = Map::new();
    if let Some(f) = p.from_port() {
        m.insert("FromPort".into(), f.into());
    }
    put(&mut m, "IpProtocol", p.ip_protocol());
    let ranges = p
        .ip_ranges()
        .iter()
        .map(|r| {
            let mut e = Map::new();
            put(&mut e, "CidrIp", r.cidr_ip());
            put(&mut e, "Description", r.description());
            Value::Object(e)
        })
        .collect();
    m.insert("IpRanges".into(), Value::Array(ranges));
    let ranges6 = p
        .ipv6_ranges()
        .iter()
        .map(|r| {
            let mut e = Map::new();
            put(&mut e, "CidrIpv6", r.cidr_ipv6());
            put(&mut e, "Description", r.description());
            Value::Object(e)
        })
        .collect();
    m.insert("Ipv6Ranges".into(), Value::Array(ranges6));
    let pls = p
        .prefix_list_ids()
        .iter()
        .map(|r| {
            let mut e = Map::new();
            put(&mut e, "Description", r.description());
            put(&mut e, "PrefixListId", r.prefix_list_id());
            Value::Object(e)
        })
        .collect();
    m.insert("PrefixListIds".into(), Value::Array(pls));
    if let Some(t) = p.to_port() {
        m.insert("ToPort".into(), t.into());
    }
    let pairs = p
        .user_id_group_pairs()
        .iter()
        .map(|g| {
            let mut e = Map::new();
            put(&mut e, "Description", g.description());
            put(&mut e, "GroupId", g.group_id());
            put(&mut e, "UserId", g.user_id());
            put(&mut e, "VpcId", g.vpc_id());
            put(
                &mut e,
                "VpcPeeringConnectionId",
                g.vpc_peering_connection_id(),
            );
            put(&mut e, "PeeringStatus", g.peering_status());
            Value::Object(e)
        })
        .collect();
    m.insert("UserIdGroupPairs".into(), Value::Array(pairs));
    Value::Object(m)
}

/// One group in the CLI's shape (its key order too).
pub fn group(g: &SecurityGroup) -> Value {
    let mut m = Map::new();
    put(&mut m, "Description", g.description());
    put(&mut m, "GroupName", g.group_name());
    m.insert(
        "IpPermissions".into(),
        Value::Array(g.ip_permissions().iter().map(permission).collect()),
    );
    put(&mut m, "OwnerId", g.owner_id());
    put(&mut m, "GroupId", g.group_id());
    m.insert(
        "IpPermissionsEgress".into(),
        Value::Array(g.ip_permissions_egress().iter().map(permission).collect()),
    );
    if !g.tags().is_empty() {
        m.insert("Tags".into(), tags(g.tags()));
    }
    put(&mut m, "VpcId", g.vpc_id());
    put(&mut m, "SecurityGroupArn", g.security_group_arn());
    Value::Object(m)
}

/// A managed prefix list and its entries (two calls: DescribeManagedPrefixLists and
/// GetManagedPrefixListEntries).
#[derive(Debug, Clone)]
pub struct PrefixList {
    /// The list (id, name, address family, size, tags).
    pub list: ManagedPrefixList,
    /// Its entries at the version read.
    pub entries: Vec<PrefixListEntry>,
}

/// One prefix list in the snapshot format's shape.
fn prefix_list(l: &PrefixList) -> Value {
    let mut m = Map::new();
    put(&mut m, "PrefixListId", l.list.prefix_list_id());
    put(&mut m, "PrefixListName", l.list.prefix_list_name());
    put(&mut m, "AddressFamily", l.list.address_family());
    if let Some(n) = l.list.max_entries() {
        m.insert("MaxEntries".into(), n.into());
    }
    m.insert("Tags".into(), tags(l.list.tags()));
    let entries = l
        .entries
        .iter()
        .map(|e| {
            let mut v = Map::new();
            put(&mut v, "Cidr", e.cidr());
            put(&mut v, "Description", e.description());
            Value::Object(v)
        })
        .collect();
    m.insert("Entries".into(), Value::Array(entries));
    Value::Object(m)
}

/// The ids of the prefix lists the groups' rules name (either direction), sorted.
pub fn named_lists(groups: &[SecurityGroup]) -> Vec<String> {
    let ids: std::collections::BTreeSet<String> = groups
        .iter()
        .flat_map(|g| g.ip_permissions().iter().chain(g.ip_permissions_egress()))
        .flat_map(|p| p.prefix_list_ids())
        .filter_map(|p| p.prefix_list_id().map(str::to_string))
        .collect();
    ids.into_iter().collect()
}

/// The whole document: groups sorted by id, so two observations of the same state are the
/// same text (the API's listing order is not a promise).
///
/// The prefix lists the groups' rules name, with their entries, follow under
/// `ManagedPrefixLists` (sorted by id; absent when no rule names one): the CLI's
/// describe-security-groups has no such section, it is the snapshot format's, so what a rule
/// naming a list matches is known to the plan and `audit` as it is in the cloud.
pub fn document(groups: &[SecurityGroup], lists: &[PrefixList]) -> String {
    let mut gs: Vec<&SecurityGroup> = groups.iter().collect();
    gs.sort_by(|a, b| a.group_id().cmp(&b.group_id()));
    let mut doc =
        serde_json::json!({ "SecurityGroups": gs.into_iter().map(group).collect::<Vec<_>>() });
    if !lists.is_empty() {
        let mut ls: Vec<&PrefixList> = lists.iter().collect();
        ls.sort_by(|a, b| a.list.prefix_list_id().cmp(&b.list.prefix_list_id()));
        doc["ManagedPrefixLists"] = Value::Array(ls.into_iter().map(prefix_list).collect());
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn entries<'a>(m: &'a Map<String, Value>, k: &str) -> impl Iterator<Item = &'a Map<String, Value>> {
    m.get(k)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// An `IpPermission` in the CLI's shape (from [`crate::snapshot::permission_from_body`]) as
/// the SDK's type.
pub fn to_sdk(p: &Map<String, Value>) -> IpPermission {
    let port = |k: &str| {
        p.get(k)
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
    };
    let mut b = IpPermission::builder()
        .set_ip_protocol(s(p, "IpProtocol").map(str::to_string))
        .set_from_port(port("FromPort"))
        .set_to_port(port("ToPort"));
    for e in entries(p, "IpRanges") {
        b = b.ip_ranges(
            IpRange::builder()
                .set_cidr_ip(s(e, "CidrIp").map(str::to_string))
                .set_description(s(e, "Description").map(str::to_string))
                .build(),
        );
    }
    for e in entries(p, "Ipv6Ranges") {
        b = b.ipv6_ranges(
            Ipv6Range::builder()
                .set_cidr_ipv6(s(e, "CidrIpv6").map(str::to_string))
                .set_description(s(e, "Description").map(str::to_string))
                .build(),
        );
    }
    for e in entries(p, "PrefixListIds") {
        b = b.prefix_list_ids(
            PrefixListId::builder()
                .set_prefix_list_id(s(e, "PrefixListId").map(str::to_string))
                .set_description(s(e, "Description").map(str::to_string))
                .build(),
        );
    }
    for e in entries(p, "UserIdGroupPairs") {
        b = b.user_id_group_pairs(
            UserIdGroupPair::builder()
                .set_group_id(s(e, "GroupId").map(str::to_string))
                .set_user_id(s(e, "UserId").map(str::to_string))
                .set_vpc_id(s(e, "VpcId").map(str::to_string))
                .set_vpc_peering_connection_id(s(e, "VpcPeeringConnectionId").map(str::to_string))
                .set_description(s(e, "Description").map(str::to_string))
                .build(),
        );
    }
    b.build()
}

/// Tags from a canonical body's `Tags` list.
pub fn body_tags(body: &Value) -> Vec<Tag> {
    body.get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|t| {
            Tag::builder()
                .set_key(s(t, "Key").map(str::to_string))
                .set_value(s(t, "Value").map(str::to_string))
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_survives_the_round_trip_through_the_sdk_type() {
        let p = serde_json::json!({
            "FromPort": 443, "IpProtocol": "tcp",
            "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "intentwall:web"}],
            "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}],
            "PrefixListIds": [{"PrefixListId": "pl-0123456789abcdef0"}],
            "ToPort": 443,
            "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0", "UserId": "111122223333"}]
        });
        let sdk = to_sdk(p.as_object().unwrap());
        assert_eq!(permission(&sdk), p);
    }

    /// A rule naming a prefix list: the list is found in either direction, written under
    /// `ManagedPrefixLists`, and read back by the snapshot loader with its entries.
    #[test]
    fn named_prefix_lists_go_into_the_document_with_their_entries() {
        let ingress = to_sdk(
            serde_json::json!({"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23,
                "PrefixListIds": [{"PrefixListId": "pl-0000000000000000b"}]})
            .as_object()
            .unwrap(),
        );
        let egress = to_sdk(
            serde_json::json!({"IpProtocol": "-1",
                "PrefixListIds": [{"PrefixListId": "pl-0000000000000000a"},
                                  {"PrefixListId": "pl-0000000000000000b"}]})
            .as_object()
            .unwrap(),
        );
        let g = SecurityGroup::builder()
            .group_id("sg-1")
            .group_name("hand-made")
            .vpc_id("vpc-1")
            .ip_permissions(ingress)
            .ip_permissions_egress(egress)
            .build();
        let groups = [g];
        assert_eq!(
            named_lists(&groups),
            ["pl-0000000000000000a", "pl-0000000000000000b"]
        );
        let list = |id: &str, name: &str, cidrs: &[&str]| PrefixList {
            list: ManagedPrefixList::builder()
                .prefix_list_id(id)
                .prefix_list_name(name)
                .address_family("IPv4")
                .max_entries(5)
                .build(),
            entries: cidrs
                .iter()
                .map(|c| PrefixListEntry::builder().cidr(*c).build())
                .collect(),
        };
        // given in any order, written sorted by id
        let lists = [
            list("pl-0000000000000000b", "office", &["198.18.0.0/15"]),
            list(
                "pl-0000000000000000a",
                "vpn",
                &["203.0.113.0/24", "192.0.2.0/25"],
            ),
        ];
        let text = document(&groups, &lists);
        let v: Value = serde_json::from_str(&text).unwrap();
        let pls = v["ManagedPrefixLists"].as_array().unwrap();
        assert_eq!(pls.len(), 2);
        assert_eq!(pls[0]["PrefixListName"], "vpn");
        assert_eq!(pls[0]["Entries"][1]["Cidr"], "192.0.2.0/25");
        let intent = intentwall_contract::DeploymentIntent {
            deployment: "us".into(),
            provider: intentwall_contract::ProviderKind::Aws,
            settings: [("vpc".to_string(), "vpc-1".to_string())].into(),
            space: Default::default(),
            groups: Default::default(),
            flows: Vec::new(),
        };
        let state = crate::snapshot::parse(&text, &intent).unwrap();
        let office = state
            .objects
            .iter()
            .find(|o| o.kind == crate::model::KIND_PL && o.key == "pl:office")
            .expect("the list is an object of the state");
        assert_eq!(
            office.body.value()["Entries"],
            serde_json::json!([{"Cidr": "198.18.0.0/15"}])
        );
        // without a named list, the document is the CLI's and nothing more
        let plain = document(&[], &[]);
        assert!(!plain.contains("ManagedPrefixLists"), "{plain}");
    }
}
