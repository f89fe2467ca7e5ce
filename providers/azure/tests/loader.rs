//! Loader tests: the az CLI and ARM document shapes, normalisation, write-back, errors.

mod common;

use common::*;
use intentwall_azure::AzureProvider;
use intentwall_contract::SnapshotFormat as _;
use intentwall_contract::{NativeState, Provider};
use proptest::prelude::*;
use serde_json::{json, Value};

const SUB: &str = "/subscriptions/0000-1111/resourceGroups/rg-prod-us/providers/Microsoft.Network";

fn it() -> intentwall_contract::DeploymentIntent {
    intent(&[("web", false), ("api", true)], vec![])
}

fn parse(doc: &str) -> Result<NativeState, intentwall_contract::SnapshotError> {
    AzureProvider.parse_snapshot(doc, &it())
}

fn kb(s: &NativeState) -> Vec<(String, Value)> {
    s.objects
        .iter()
        .map(|o| (o.key.clone(), o.body.value()))
        .collect()
}

/// `az network nsg list` output: flattened NSG and rules, every optional field used once.
fn cli_doc() -> Value {
    json!([{
        "defaultSecurityRules": [{
            "access": "Allow", "description": "Allow inbound traffic from all VMs in VNET",
            "destinationAddressPrefix": "VirtualNetwork", "destinationAddressPrefixes": [],
            "destinationPortRange": "*", "destinationPortRanges": [], "direction": "Inbound",
            "etag": "W/\"d1\"", "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us/defaultSecurityRules/AllowVnetInBound"),
            "name": "AllowVnetInBound", "priority": 65000, "protocol": "*", "provisioningState": "Succeeded",
            "resourceGroup": "rg-prod-us", "sourceAddressPrefix": "VirtualNetwork", "sourceAddressPrefixes": [],
            "sourcePortRange": "*", "sourcePortRanges": [], "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"
        }],
        "etag": "W/\"n1\"",
        "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us"),
        "location": "eastus",
        "name": "nsg-prod-us",
        "provisioningState": "Succeeded",
        "resourceGroup": "rg-prod-us",
        "resourceGuid": "11111111-2222-3333-4444-555555555555",
        "securityRules": [
            {
                "access": "Allow", "description": "intentwall:api-from-web",
                "destinationApplicationSecurityGroups": [{"id": format!("{SUB}/applicationSecurityGroups/iw-api"), "resourceGroup": "rg-prod-us"}],
                "destinationPortRange": null, "destinationPortRanges": ["8080", "8443-8444"],
                "direction": "Inbound", "etag": "W/\"r1\"",
                "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us/securityRules/iw-api-from-web-in-1"),
                "name": "iw-api-from-web-in-1", "priority": 2000, "protocol": "Tcp", "provisioningState": "Succeeded",
                "resourceGroup": "rg-prod-us",
                "sourceApplicationSecurityGroups": [{"id": format!("{SUB}/applicationSecurityGroups/iw-web")}],
                "sourcePortRange": "*", "sourcePortRanges": [],
                "type": "Microsoft.Network/networkSecurityGroups/securityRules"
            },
            {
                "access": "Deny", "description": "legacy block",
                "destinationAddressPrefix": "*", "destinationAddressPrefixes": [],
                "destinationPortRange": "3389", "destinationPortRanges": [],
                "direction": "Inbound", "etag": "W/\"r2\"",
                "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us/securityRules/block-rdp"),
                "name": "block-rdp", "priority": 300, "protocol": "Tcp", "provisioningState": "Succeeded",
                "resourceGroup": "rg-prod-us",
                "sourceAddressPrefix": null, "sourceAddressPrefixes": ["198.51.100.0/24", "203.0.113.0/24"],
                "sourcePortRange": "*", "sourcePortRanges": [],
                "type": "Microsoft.Network/networkSecurityGroups/securityRules"
            }
        ],
        "subnets": [{"id": format!("{SUB}/virtualNetworks/vnet/subnets/app"), "resourceGroup": "rg-prod-us"}],
        "tags": {"env": "prod"},
        "type": "Microsoft.Network/networkSecurityGroups"
    }])
}

/// The same NSG as an ARM list (`{"value": [...]}` with `properties`).
fn arm_doc() -> Value {
    json!({"value": [{
        "name": "nsg-prod-us",
        "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us"),
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": "eastus",
        "properties": {
            "provisioningState": "Succeeded",
            "securityRules": [
                {"name": "iw-api-from-web-in-1", "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us/securityRules/iw-api-from-web-in-1"),
                 "properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRanges": ["8080", "8443-8444"],
                   "sourceApplicationSecurityGroups": [{"id": format!("{SUB}/applicationSecurityGroups/iw-web")}],
                   "destinationApplicationSecurityGroups": [{"id": format!("{SUB}/applicationSecurityGroups/iw-api")}],
                   "access": "Allow", "priority": 2000, "direction": "Inbound", "description": "intentwall:api-from-web"}},
                {"name": "block-rdp", "id": format!("{SUB}/networkSecurityGroups/nsg-prod-us/securityRules/block-rdp"),
                 "properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "3389",
                   "sourceAddressPrefixes": ["198.51.100.0/24", "203.0.113.0/24"], "destinationAddressPrefix": "*",
                   "access": "Deny", "priority": 300, "direction": "Inbound", "description": "legacy block"}}
            ],
            "defaultSecurityRules": []
        }
    }]})
}

#[test]
fn cli_shape_reads_container_rules_and_markers() {
    let s = parse(&serde_json::to_string_pretty(&cli_doc()).unwrap()).unwrap();
    let keys: Vec<&str> = s.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "nsg:nsg-prod-us",
            "rule:iw-api-from-web-in-1",
            "rule:block-rdp"
        ]
    );
    let ours = &s.objects[1];
    assert!(ours.managed && !ours.foreign);
    assert_eq!(ours.flow.as_deref(), Some("api-from-web"));
    assert_eq!(ours.parent.as_deref(), Some("nsg:nsg-prod-us"));
    assert_eq!(
        ours.body.value()["destinationPortRanges"],
        json!(["8080", "8443-8444"])
    );
    assert_eq!(
        ours.body.value()["sourceApplicationSecurityGroups"],
        json!([{"id": format!("{SUB}/applicationSecurityGroups/iw-web").to_lowercase()}])
    );
    let theirs = &s.objects[2];
    assert!(!theirs.managed && theirs.flow.is_none());
    assert_eq!(s.envelope.as_deref(), Some("list"));
}

#[test]
fn arm_shape_gives_the_same_keys_and_bodies_as_cli_shape() {
    let a = parse(&cli_doc().to_string()).unwrap();
    let b = parse(&arm_doc().to_string()).unwrap();
    assert_eq!(kb(&a), kb(&b));
    assert_eq!(b.envelope.as_deref(), Some("value+arm"));
}

#[test]
fn write_back_keeps_both_shapes_byte_for_byte_as_json_values() {
    for doc in [cli_doc(), arm_doc()] {
        let s = parse(&doc.to_string()).unwrap();
        let out = AzureProvider.render_snapshot(&s);
        assert!(out.ends_with('\n'));
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, doc);
        // key order kept too
        assert_eq!(
            out,
            format!("{}\n", serde_json::to_string_pretty(&doc).unwrap())
        );
    }
}

#[test]
fn equivalent_spellings_normalise_to_identical_bodies() {
    let a = json!([{"name": "nsg-prod-us", "securityRules": [{
        "name": "r1", "access": "Allow", "direction": "Inbound", "priority": 200, "protocol": "Tcp",
        "description": "intentwall:x  two   spaces",
        "sourceAddressPrefixes": ["2001:db8:0:0::/64", "10.1.2.3/24", "198.51.100.7"],
        "sourcePortRange": "*", "destinationAddressPrefix": "*",
        "destinationPortRange": "80-80", "destinationPortRanges": ["81", "443"],
        "destinationApplicationSecurityGroups": null
    }]}]);
    let b = json!([{"name": "NSG-PROD-US", "properties": {"securityRules": [{
        "name": "r1", "properties": {
        "access": "allow", "direction": "inbound", "priority": "200", "protocol": "6",
        "description": " intentwall:x two spaces ",
        "sourceAddressPrefix": "198.51.100.7/32", "sourceAddressPrefixes": ["10.1.2.0/24", "2001:db8::/64"],
        "destinationAddressPrefixes": ["Any"],
        "destinationPortRanges": ["443", "80-81"]
    }}]}}]);
    let (sa, sb) = (
        parse(&a.to_string()).unwrap(),
        parse(&b.to_string()).unwrap(),
    );
    assert_eq!(kb(&sa), kb(&sb));
    let body = &sa.objects[1].body.value();
    assert_eq!(
        body["sourceAddressPrefixes"],
        json!(["10.1.2.0/24", "198.51.100.7/32", "2001:db8::/64"])
    );
    assert_eq!(body["destinationPortRanges"], json!(["80-81", "443"]));
    assert_eq!(body["sourcePortRanges"], json!(["*"]));
    assert_eq!(body["description"], json!("intentwall:x two spaces"));
}

#[test]
fn service_tag_aliases_and_full_port_range_normalise() {
    let a = json!([{"name": "nsg-prod-us", "securityRules": [{"name": "r", "access": "Allow", "direction": "Outbound",
        "priority": 100, "protocol": "*", "sourceAddressPrefix": "VIRTUAL_NETWORK", "destinationAddressPrefix": "internet",
        "destinationPortRange": "0-65535"}]}]);
    let b = json!([{"name": "nsg-prod-us", "securityRules": [{"name": "r", "access": "Allow", "direction": "Outbound",
        "priority": 100, "protocol": "Any", "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "Internet",
        "destinationPortRange": "*", "sourcePortRange": "*"}]}]);
    assert_eq!(
        kb(&parse(&a.to_string()).unwrap()),
        kb(&parse(&b.to_string()).unwrap())
    );
}

#[test]
fn python_sdk_snake_case_shape_is_accepted() {
    let doc = json!([{"id": format!("{SUB}/networkSecurityGroups/nsg-prod-us"), "name": "nsg-prod-us", "security_rules": [
        {"name": "allow-ssh", "protocol": "Tcp", "direction": "Inbound", "access": "Allow", "priority": 100,
         "source_port_range": "*", "destination_port_range": "22", "source_address_prefix": "*", "destination_address_prefix": "*"},
        {"name": "deny-rdp", "properties": {"protocol": "Tcp", "direction": "Inbound", "access": "Deny", "priority": 200,
         "source_port_range": "*", "destination_port_ranges": ["3389"], "source_address_prefix": "Internet", "destination_address_prefix": "*"}}
    ]}]);
    let s = parse(&doc.to_string()).unwrap();
    assert_eq!(s.objects.len(), 3);
    assert_eq!(
        s.objects[2].body.value()["destinationPortRanges"],
        json!(["3389"])
    );
    let out: Value = serde_json::from_str(&AzureProvider.render_snapshot(&s)).unwrap();
    assert_eq!(out, doc);
}

#[test]
fn other_nsgs_and_other_resource_groups_are_foreign() {
    let doc = json!([
        {"name": "nsg-prod-us", "resourceGroup": "rg-prod-us", "securityRules": [
            {"name": "r", "access": "Allow", "direction": "Inbound", "priority": 100, "protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*"}]},
        {"name": "nsg-prod-us", "resourceGroup": "rg-other", "securityRules": [
            {"name": "r", "access": "Allow", "direction": "Inbound", "priority": 100, "protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*"}]},
        {"name": "nsg-jump", "id": format!("{SUB}/networkSecurityGroups/nsg-jump"), "securityRules": []}
    ]);
    let s = parse(&doc.to_string()).unwrap();
    let f: Vec<(&str, bool)> = s
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.foreign))
        .collect();
    assert_eq!(
        f,
        [
            ("nsg:nsg-prod-us", false),
            ("rule:r", false),
            ("nsg:rg-other/nsg-prod-us", true),
            ("nsg:rg-other/nsg-prod-us/rule:r", true),
            ("nsg:nsg-jump", true)
        ]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&AzureProvider.render_snapshot(&s)).unwrap(),
        doc
    );
}

#[test]
fn new_rules_are_written_in_the_shape_of_the_document() {
    let t = AzureProvider.translate(&golden(), &NativeState::default());
    for (doc, arm) in [(cli_doc(), false), (arm_doc(), true)] {
        let mut s = parse(&doc.to_string()).unwrap();
        let new = t
            .objects
            .iter()
            .find(|o| o.key == "rule:iw-web-from-internet-in-1")
            .unwrap()
            .clone();
        s.objects.push(new);
        let out: Value = serde_json::from_str(&AzureProvider.render_snapshot(&s)).unwrap();
        let nsg = if arm {
            &out["value"][0]["properties"]
        } else {
            &out[0]
        };
        let r = nsg["securityRules"].as_array().unwrap().last().unwrap();
        assert_eq!(r["name"], "iw-web-from-internet-in-1");
        assert_eq!(r.get("properties").is_some(), arm, "{r}");
        assert_eq!(
            r["id"],
            format!(
                "{SUB}/networkSecurityGroups/nsg-prod-us/securityRules/iw-web-from-internet-in-1"
            )
        );
        let again = parse(&serde_json::to_string(&out).unwrap()).unwrap();
        assert_eq!(kb(&again), kb(&s));
    }
}

#[test]
fn malformed_json_reports_line_and_column() {
    let e = parse("[\n  {\"name\": \"nsg\",\n   \"securityRules\": [,]\n  }\n]").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.column.is_some());
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = parse("").unwrap_err();
    assert!(e.line.is_some());
}

fn err(doc: Value) -> String {
    parse(&doc.to_string()).unwrap_err().to_string()
}

#[test]
fn wrong_shapes_are_errors_that_name_the_object() {
    assert!(err(json!({"nsgs": []})).contains("az network nsg list"));
    assert!(err(json!("text")).contains("az network nsg list"));
    assert!(err(json!([42])).contains("item 1"));
    assert!(err(json!([{"securityRules": []}])).contains("no `name`"));
    assert!(err(json!([{"name": "n", "securityRules": {}}]))
        .contains("NSG `n`: `securityRules` must be a list"));
    let base = || {
        json!({"name": "r9", "access": "Allow", "direction": "Inbound", "priority": 100, "protocol": "Tcp",
        "sourceAddressPrefix": "*", "destinationAddressPrefix": "*"})
    };
    let with = |k: &str, v: Value| {
        let mut r = base();
        if v.is_null() {
            r.as_object_mut().unwrap().remove(k);
        } else {
            r[k] = v;
        }
        json!([{"name": "nsg-x", "securityRules": [r]}])
    };
    let m = err(with("access", Value::Null));
    assert!(
        m.contains("NSG `nsg-x`, security rule `r9`: missing required field `access`"),
        "{m}"
    );
    assert!(err(with("access", json!("Maybe"))).contains("Allow or Deny"));
    assert!(err(with("direction", json!("Sideways"))).contains("Inbound or Outbound"));
    assert!(err(with("priority", json!(1.5))).contains("`priority` must be a whole number"));
    assert!(err(with("protocol", json!("Gre"))).contains("`protocol` must be one of"));
    assert!(err(with("sourceAddressPrefix", json!("10.0.0.300/24")))
        .contains("invalid address prefix `10.0.0.300/24`"));
    assert!(err(with("sourceAddressPrefix", json!("bad tag!"))).contains("rule `r9`"));
    assert!(err(with("destinationPortRange", json!("90-80"))).contains("reversed"));
    assert!(err(with("destinationPortRange", json!("70000"))).contains("out of range"));
    assert!(err(with("sourceAddressPrefix", Value::Null)).contains("no source"));
    assert!(err(with(
        "sourceApplicationSecurityGroups",
        json!([{"name": "x"}])
    ))
    .contains("with an `id`"));
    let dup = json!([{"name": "n", "securityRules": [base(), base()]}]);
    assert!(err(dup).contains("appears twice"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Never panic: truncated or mutated documents give Ok or an error.
    #[test]
    fn never_panics_on_damaged_documents(cut in 0usize..4000, pos in 0usize..4000, byte in any::<u8>()) {
        let text = serde_json::to_string_pretty(&cli_doc()).unwrap();
        let mut bytes = text.clone().into_bytes();
        let p = pos % bytes.len();
        bytes[p] = byte;
        let mutated = String::from_utf8_lossy(&bytes).to_string();
        let _ = parse(&mutated);
        let _ = parse(&text[..cut.min(text.len())]);
    }

    #[test]
    fn never_panics_on_arbitrary_json(v in arb_json()) {
        if let Ok(s) = parse(&v.to_string()) {
            let _ = AzureProvider.render_snapshot(&s);
            let _ = AzureProvider.lower(&s, &it());
        }
        let _ = parse(&json!([{"name": "nsg-prod-us", "securityRules": [v.clone()]}]).to_string());
        let _ = parse(&json!([{"name": "nsg-prod-us", "securityRules": [{"name": "r", "access": "Allow",
            "direction": "Inbound", "priority": v.clone(), "protocol": v.clone(), "sourceAddressPrefix": v.clone(),
            "destinationPortRange": v.clone(), "destinationApplicationSecurityGroups": v}]}]).to_string());
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9*:./ -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_string()),
                    Just("securityRules".to_string()),
                    Just("properties".to_string()),
                    Just("value".to_string()),
                    "[a-z]{1,6}".prop_map(|s| s)
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn asg_ids_differing_in_case_and_order_normalise_to_one_body() {
    let r = |ids: Vec<String>| {
        json!([{"name": "nsg-prod-us", "securityRules": [{"name": "r", "access": "Allow", "direction": "Inbound",
            "priority": 100, "protocol": "Tcp", "sourceApplicationSecurityGroups": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>(),
            "destinationAddressPrefix": "*", "destinationPortRange": "443"}]}])
    };
    let a = format!("{SUB}/applicationSecurityGroups/iw-web");
    let b = format!("{SUB}/applicationSecurityGroups/iw-api");
    let x = parse(&r(vec![a.clone(), b.clone()]).to_string()).unwrap();
    let y =
        parse(&r(vec![b.to_uppercase(), a.to_lowercase(), a.to_uppercase()]).to_string()).unwrap();
    assert_eq!(kb(&x), kb(&y));
}

/// One flattened rule in the `az` CLI shape.
fn small_rule(name: &str, description: &str, priority: u32) -> Value {
    json!({
        "name": name, "access": "Allow", "description": description, "direction": "Inbound",
        "priority": priority, "protocol": "Tcp", "sourceAddressPrefix": "10.0.0.0/8",
        "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"
    })
}

#[test]
fn ownership_goes_by_the_iw_name_in_our_nsg_not_the_description() {
    let doc = json!([
        {"name": "nsg-prod-us", "resourceGroup": "rg-prod-us", "securityRules": [
            small_rule("iw-api-from-web-in-1", "intentwall:api-from-web", 2000),
            small_rule("iw-hand-made", "added by ops", 2001),
            small_rule("ops-ssh", "intentwall:api-from-web", 2002)
        ]},
        {"name": "nsg-other", "resourceGroup": "rg-prod-us", "securityRules": [
            small_rule("iw-theirs", "intentwall:api-from-web", 2000)
        ]}
    ]);
    let s = parse(&doc.to_string()).unwrap();
    let m: Vec<(&str, bool, bool, Option<&str>)> = s
        .objects
        .iter()
        .filter(|o| !o.container)
        .map(|o| (o.key.as_str(), o.managed, o.foreign, o.flow.as_deref()))
        .collect();
    assert_eq!(
        m,
        [
            (
                "rule:iw-api-from-web-in-1",
                true,
                false,
                Some("api-from-web")
            ),
            // the prefix is reserved in our NSG: ours, whoever made it, with no flow to name
            ("rule:iw-hand-made", true, false, None),
            // a marker-looking description does not make a rule ours
            ("rule:ops-ssh", false, false, None),
            // another NSG's `iw-` rules are that NSG's business
            ("nsg:nsg-other/rule:iw-theirs", false, true, None),
        ]
    );
}
