//! Reading and writing `az network nsg list` / ARM list documents.
//!
//! Envelope note kept in [`NativeState::envelope`]: `list` (bare JSON list, what the az CLI
//! prints) or `value` (ARM `{"value": [...]}`), followed by `+arm` when the NSGs carry their
//! fields under `properties` (ARM shape) rather than flattened (az CLI shape).

use crate::model::AzRule;
use crate::{nsg_key, rule_key, KIND_NSG, KIND_RULE};
use intentwall_contract::{Body, DeploymentIntent, NativeObject, NativeState, SnapshotError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn nsg_err(nsg: &str, msg: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::msg(format!("NSG `{nsg}`: {msg}"))
}

/// The resource group named in an ARM id, if any.
pub fn rg_from_id(id: &str) -> Option<String> {
    let mut parts = id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("resourcegroups") {
            return parts.next().map(str::to_string);
        }
    }
    None
}

fn rules_of<'a>(
    nsg: &'a Map<String, Value>,
    name: &str,
    key: &str,
) -> Result<&'a [Value], SnapshotError> {
    let snake = match key {
        "securityRules" => "security_rules",
        _ => "default_security_rules",
    };
    let found = nsg
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|p| p.get(key).or_else(|| p.get(snake)))
        .or_else(|| nsg.get(key))
        .or_else(|| nsg.get(snake));
    match found {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(v)) => Ok(v),
        Some(other) => Err(nsg_err(
            name,
            format!("`{key}` must be a list, found {other}"),
        )),
    }
}

/// Gives an error about `v` (a value inside `doc`, parsed from `text`) its position.
fn at<'a>(
    text: &'a str,
    doc: &'a Value,
    v: &'a Value,
) -> impl Fn(SnapshotError) -> SnapshotError + 'a {
    move |e| intentwall_contract::snapshot::locate_value(e, text, doc, v)
}

/// Parse a snapshot document; see the crate docs for the shapes accepted. An error about one
/// NSG or rule gets the line and column of that value (or of the member it names).
pub fn parse(text: &str, intent: &DeploymentIntent) -> Result<NativeState, SnapshotError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| SnapshotError::json(&e))?;
    let (list, mut envelope) = match &doc {
        Value::Array(v) => (v, "list".to_string()),
        Value::Object(m) => match m.get("value") {
            Some(Value::Array(v)) => (v, "value".to_string()),
            _ => {
                return Err(SnapshotError::msg(
                    "expected the output of `az network nsg list` (a JSON list of NSGs) or an ARM list (`{\"value\": [...]}`)",
                ))
            }
        },
        _ => {
            return Err(SnapshotError::msg(
                "expected the output of `az network nsg list` (a JSON list of NSGs) or an ARM list (`{\"value\": [...]}`)",
            ))
        }
    };
    let ours = crate::nsg_name(intent);
    let our_rg = intent
        .setting("resource_group")
        .map(str::to_ascii_lowercase);
    let mut objects: Vec<NativeObject> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, nsg) in list.iter().enumerate() {
        let m = nsg
            .as_object()
            .ok_or_else(|| {
                SnapshotError::msg(format!(
                    "item {} of the NSG list must be an object, found {nsg}",
                    i + 1
                ))
            })
            .map_err(at(text, &doc, nsg))?;
        let name = match m.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(at(text, &doc, nsg)(SnapshotError::msg(format!(
                    "item {} of the NSG list has no `name`",
                    i + 1
                ))))
            }
        };
        if i == 0 && matches!(m.get("properties"), Some(Value::Object(_))) {
            envelope.push_str("+arm");
        }
        let rg = m
            .get("resourceGroup")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| m.get("id").and_then(Value::as_str).and_then(rg_from_id));
        let same_rg = match (&rg, &our_rg) {
            (Some(a), Some(b)) => a.to_ascii_lowercase() == *b,
            _ => true,
        };
        let foreign = !(same_rg && name.eq_ignore_ascii_case(&ours));
        let key = if !foreign {
            nsg_key(&ours)
        } else if same_rg {
            nsg_key(&name)
        } else {
            nsg_key(&format!("{}/{}", rg.clone().unwrap_or_default(), name))
        };
        if !seen.insert(key.clone()) {
            return Err(nsg_err(
                &name,
                format!("appears twice in the document (key `{key}`)"),
            ));
        }
        let rules = rules_of(m, &name, "securityRules").map_err(at(text, &doc, nsg))?;
        // default rules are read-only; check their shape is a list, keep them in raw
        rules_of(m, &name, "defaultSecurityRules").map_err(at(text, &doc, nsg))?;
        objects.push(NativeObject {
            kind: KIND_NSG.into(),
            key: key.clone(),
            parent: None,
            container: true,
            managed: !foreign,
            foreign,
            flow: None,
            body: json!({ "name": if foreign { name.clone() } else { ours.clone() } }).into(),
            raw: Some(Body::new(nsg)),
            assigned: None,
            summary: format!(
                "network security group {name}{}",
                if foreign { " (foreign)" } else { "" }
            ),
        });
        for r in rules {
            let rule = AzRule::from_json(r, &name).map_err(at(text, &doc, r))?;
            let rkey = if foreign {
                format!("{key}/{}", rule_key(&rule.name))
            } else {
                rule_key(&rule.name)
            };
            if !seen.insert(rkey.clone()) {
                return Err(nsg_err(
                    &name,
                    format!("security rule `{}` appears twice", rule.name),
                ));
            }
            // ownership by name, and only in the NSG we manage: a foreign NSG's `iw-` rules
            // belong to whoever manages that NSG
            let managed = !foreign && rule.is_managed();
            objects.push(NativeObject {
                kind: KIND_RULE.into(),
                key: rkey,
                parent: Some(key.clone()),
                container: false,
                managed,
                foreign,
                flow: if managed { rule.flow() } else { None },
                body: rule.body().into(),
                raw: Some(Body::new(r)),
                assigned: None,
                summary: rule.summary(),
            });
        }
    }
    Ok(NativeState {
        objects,
        envelope: Some(envelope),
    })
}

/// The six default rules Azure creates in every NSG, in the shape asked for.
fn default_rules(arm: bool) -> Vec<Value> {
    let rows = [
        (
            "AllowVnetInBound",
            "Allow inbound traffic from all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Inbound",
        ),
        (
            "AllowAzureLoadBalancerInBound",
            "Allow inbound traffic from azure load balancer",
            "AzureLoadBalancer",
            "*",
            "Allow",
            65001,
            "Inbound",
        ),
        (
            "DenyAllInBound",
            "Deny all inbound traffic",
            "*",
            "*",
            "Deny",
            65500,
            "Inbound",
        ),
        (
            "AllowVnetOutBound",
            "Allow outbound traffic from all VMs to all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Outbound",
        ),
        (
            "AllowInternetOutBound",
            "Allow outbound traffic from all VMs to Internet",
            "*",
            "Internet",
            "Allow",
            65001,
            "Outbound",
        ),
        (
            "DenyAllOutBound",
            "Deny all outbound traffic",
            "*",
            "*",
            "Deny",
            65500,
            "Outbound",
        ),
    ];
    rows.iter()
        .map(|(name, desc, src, dst, access, prio, dir)| {
            let fields = json!({
                "access": access, "description": desc,
                "destinationAddressPrefix": dst, "destinationAddressPrefixes": [],
                "destinationPortRange": "*", "destinationPortRanges": [],
                "direction": dir, "priority": prio, "protocol": "*",
                "sourceAddressPrefix": src, "sourceAddressPrefixes": [],
                "sourcePortRange": "*", "sourcePortRanges": [],
            });
            if arm {
                json!({"name": name, "properties": fields})
            } else {
                let mut m = Map::new();
                m.insert("name".into(), json!(name));
                if let Value::Object(f) = fields {
                    m.extend(f);
                }
                Value::Object(m)
            }
        })
        .collect()
}

/// Write a state back in the shape it was read (new objects in the document's NSG shape).
pub fn render(state: &NativeState) -> String {
    let env = state.envelope.as_deref().unwrap_or("list");
    let arm_doc = env.ends_with("+arm");
    // containers in order, then parents named by rules but missing (they still get an NSG);
    // rules grouped by parent in one pass
    let mut keys: Vec<&str> = Vec::new();
    let mut containers: HashMap<&str, &NativeObject> = HashMap::new();
    let mut rules_of_key: HashMap<&str, Vec<&NativeObject>> = HashMap::new();
    for o in state.objects.iter().filter(|o| o.container) {
        if containers.insert(&o.key, o).is_none() {
            keys.push(&o.key);
        }
    }
    for o in &state.objects {
        if let Some(p) = &o.parent {
            if !containers.contains_key(p.as_str()) && !rules_of_key.contains_key(p.as_str()) {
                keys.push(p);
            }
            let rules = rules_of_key.entry(p).or_default();
            if !o.container {
                rules.push(o);
            }
        }
    }
    let mut nsgs = Vec::new();
    for key in keys {
        let c = containers.get(key);
        let rules: &[&NativeObject] = rules_of_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let raw = c.and_then(|c| c.raw.as_ref()).map(Body::value);
        let name = c
            .and_then(|c| {
                c.body
                    .value()
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| {
                key.trim_start_matches("nsg:")
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
        let arm = match &raw {
            Some(Value::Object(m)) => matches!(m.get("properties"), Some(Value::Object(_))),
            _ => arm_doc,
        };
        let (nsg_id, rg) = match &raw {
            Some(Value::Object(m)) => {
                let id = m.get("id").and_then(Value::as_str).map(str::to_string);
                let rg = m
                    .get("resourceGroup")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| id.as_deref().and_then(rg_from_id));
                (id, rg)
            }
            _ => (None, None),
        };
        let rule_values: Vec<Value> = rules
            .iter()
            .map(|r| match &r.raw {
                Some(v) => v.value(),
                None => {
                    let body = r.body.value();
                    let rule = AzRule::from_json(&body, &name).ok();
                    match rule {
                        Some(rule) => {
                            let id = nsg_id
                                .as_ref()
                                .map(|n| format!("{n}/securityRules/{}", rule.name));
                            if arm {
                                rule.to_arm(id)
                            } else {
                                rule.to_cli(id, rg.clone())
                            }
                        }
                        None => body,
                    }
                }
            })
            .collect();
        let nsg = match raw {
            Some(Value::Object(mut m)) => {
                let snake = !m.contains_key("securityRules")
                    && (m.contains_key("security_rules")
                        || m.get("properties")
                            .and_then(Value::as_object)
                            .is_some_and(|p| p.contains_key("security_rules")));
                let rk = if snake {
                    "security_rules"
                } else {
                    "securityRules"
                };
                let had_rules = m.contains_key(rk)
                    || m.get("properties")
                        .and_then(Value::as_object)
                        .is_some_and(|p| p.contains_key(rk));
                if rule_values.is_empty() && !had_rules {
                    nsgs.push(Value::Object(m));
                    continue;
                }
                match m.get_mut("properties") {
                    Some(Value::Object(p)) if arm => {
                        p.insert(rk.into(), Value::Array(rule_values));
                    }
                    _ => {
                        m.insert(rk.into(), Value::Array(rule_values));
                    }
                }
                Value::Object(m)
            }
            _ => {
                if arm {
                    json!({
                        "name": name,
                        "type": "Microsoft.Network/networkSecurityGroups",
                        "properties": {"securityRules": rule_values, "defaultSecurityRules": default_rules(true)}
                    })
                } else {
                    json!({
                        "name": name,
                        "type": "Microsoft.Network/networkSecurityGroups",
                        "securityRules": rule_values,
                        "defaultSecurityRules": default_rules(false)
                    })
                }
            }
        };
        nsgs.push(nsg);
    }
    let doc = if env.starts_with("value") {
        json!({ "value": nsgs })
    } else {
        Value::Array(nsgs)
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}
