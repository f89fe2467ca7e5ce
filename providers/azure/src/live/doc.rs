//! The NSGs an ARM listing returned, written down as `az network nsg list` prints them: each
//! NSG and rule flattened (`properties` merged into the object) with its `resourceGroup`. The
//! snapshot loader reads this document, so a live read and a recorded file normalise through
//! the same code, and `snapshot` records exactly what was read.

use crate::snapshot::rg_from_id;
use serde_json::{Map, Value};

/// An ARM resource (`{name, id, ..., properties: {...}}`) flattened the way the az CLI
/// prints it; `nested` names the list properties whose items are resources too.
fn flatten(v: Value, nested: &[&str]) -> Value {
    let Value::Object(mut m) = v else { return v };
    let mut out = Map::new();
    let props = match m.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    for (k, v) in m {
        out.insert(k, v);
    }
    if let Some(rg) = out.get("id").and_then(Value::as_str).and_then(rg_from_id) {
        out.insert("resourceGroup".into(), Value::String(rg));
    }
    for (k, v) in props {
        let v = match v {
            Value::Array(items) if nested.contains(&k.as_str()) => {
                Value::Array(items.into_iter().map(|i| flatten(i, &[])).collect())
            }
            v => v,
        };
        out.insert(k, v);
    }
    // the CLI prints the rule lists even when empty
    for k in nested {
        out.entry(k.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    Value::Object(out)
}

/// The document of the NSGs (each an ARM `networkSecurityGroups` resource, as the SDK
/// serialises it), sorted by name so two reads of the same state are the same text.
pub fn document(nsgs: Vec<Value>) -> String {
    let mut list: Vec<Value> = nsgs
        .into_iter()
        .map(|n| flatten(n, &["securityRules", "defaultSecurityRules"]))
        .map(|mut n| {
            for k in ["securityRules", "defaultSecurityRules"] {
                if let Some(Value::Array(rules)) = n.get_mut(k) {
                    rules.sort_by(|a, b| name(a).cmp(name(b)));
                }
            }
            n
        })
        .collect();
    list.sort_by_key(|n| name(n).to_ascii_lowercase());
    let mut s = serde_json::to_string_pretty(&Value::Array(list)).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

fn name(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arm_resources_read_as_the_cli_prints_them() {
        let arm = json!({
            "name": "nsg-a", "id": "/subscriptions/s/resourceGroups/rg-x/providers/Microsoft.Network/networkSecurityGroups/nsg-a",
            "etag": "W/\"1\"", "location": "eastus",
            "properties": {"securityRules": [
                {"name": "r2", "id": "/subscriptions/s/resourceGroups/rg-x/providers/Microsoft.Network/networkSecurityGroups/nsg-a/securityRules/r2",
                 "etag": "W/\"2\"", "properties": {"priority": 200, "direction": "Inbound"}},
                {"name": "r1", "properties": {"priority": 100}}
            ]}
        });
        let doc: Value = serde_json::from_str(&document(vec![arm])).unwrap();
        let nsg = &doc[0];
        assert_eq!(nsg["resourceGroup"], "rg-x");
        assert_eq!(nsg["location"], "eastus");
        assert_eq!(nsg["defaultSecurityRules"], json!([]));
        assert_eq!(nsg["securityRules"][0]["name"], "r1");
        assert_eq!(nsg["securityRules"][1]["priority"], 200);
        assert_eq!(nsg["securityRules"][1]["etag"], "W/\"2\"");
        assert_eq!(nsg["securityRules"][1]["resourceGroup"], "rg-x");
        assert!(nsg.get("properties").is_none());
    }
}
