//! The custom role `intentwall permissions gcp` prints (for `gcloud iam roles create
//! --file`): the least privilege the job needs.
//!
//! Why each permission is there:
//! - `compute.firewalls.list`: read the observed state (one listing, filtered to the network;
//!   no rule is read alone, so `compute.firewalls.get` is not needed);
//! - `compute.firewalls.create` (insert), `compute.firewalls.update` (patch and update),
//!   `compute.firewalls.delete`: change rules;
//! - `compute.networks.get`: check the network named by the placement exists;
//! - `compute.networks.updatePolicy`: GCP checks it on the network when a firewall rule of
//!   that network is created, changed or deleted;
//! - `compute.globalOperations.get`: wait for the firewall operations to finish.
//!
//! `apply --preflight` asks IAM (`projects.testIamPermissions`, which itself needs no
//! permission) about these same permissions, as the changes need them; a unit test keeps every
//! permission it can ask about in this role.
//!
//! A GCP custom role lives in one project: the output names the projects of the intents and the
//! command that creates the role in each.

use intentwall_contract::ident::ROLE_NAME;
use serde_json::{json, Value};

/// The placement settings the role is scoped by, in the order [`document`] reads them.
pub const PLACEMENT_KEYS: &[&str] = &["project"];

/// The permissions of the custom role, sorted.
pub const PERMISSIONS: [&str; 7] = [
    "compute.firewalls.create",
    "compute.firewalls.delete",
    "compute.firewalls.list",
    "compute.firewalls.update",
    "compute.globalOperations.get",
    "compute.networks.get",
    "compute.networks.updatePolicy",
];

/// The role as YAML for the placements (each its [`PLACEMENT_KEYS`] values, already checked
/// against GCP's formats), after comments giving the command that creates it in each project.
pub fn document(places: &[Vec<String>]) -> String {
    let projects: Vec<&str> = places
        .iter()
        .map(|p| p.first().map(String::as_str).unwrap_or_default())
        .collect();
    let mut s =
        String::from("# intentwall custom role; create it in each project of the intents:\n");
    for p in &projects {
        // project ids are checked (lowercase letters, digits, `-`): safe in a comment
        s.push_str(&format!(
            "#   gcloud iam roles create {ROLE_NAME} --project={p} --file=intentwall-role.yaml\n"
        ));
    }
    let role = json!({
        "title": ROLE_NAME,
        "description": format!(
            "intentwall: read and change VPC firewall rules of the networks in projects {}",
            projects.join(", ")
        ),
        "stage": "GA",
        "includedPermissions": PERMISSIONS,
    });
    s.push_str(&to_yaml(&role));
    s
}

/// A JSON value as block YAML: mappings and lists as YAML blocks, every scalar written as
/// its JSON text (a JSON string is a valid YAML double-quoted scalar, escapes included), so
/// no value can end its line, start a key or change a type. Words that YAML reads as the
/// same string unquoted (`compute.firewalls.get`) are left plain, for readability.
fn to_yaml(v: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v.as_str() {
            Some(t) if plain(t) => t.to_string(),
            _ => v.to_string(),
        }
    }
    fn plain(t: &str) -> bool {
        t.starts_with(|c: char| c.is_ascii_alphabetic())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
            && !matches!(
                t.to_ascii_lowercase().as_str(),
                "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
            )
    }
    fn go(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let key = scalar(&Value::String(k.clone()));
                    match x {
                        Value::Object(c) if !c.is_empty() => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            go(x, indent + 2, out);
                        }
                        Value::Array(a) if !a.is_empty() => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            go(x, indent, out);
                        }
                        _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(x))),
                    }
                }
            }
            Value::Array(a) => {
                // items as JSON text (nested collections in flow style: JSON is valid YAML)
                for x in a {
                    out.push_str(&format!("{pad}- {}\n", scalar(x)));
                }
            }
            x => out.push_str(&format!("{pad}{}\n", scalar(x))),
        }
    }
    let mut out = String::new();
    go(v, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the YAML text means, read back with the YAML parser the engine loads intents with.
    fn read_back(text: &str) -> Value {
        fn conv(n: &marked_yaml::Node) -> Value {
            match n {
                marked_yaml::Node::Scalar(s) => Value::String(s.as_str().to_string()),
                marked_yaml::Node::Sequence(s) => Value::Array(s.iter().map(conv).collect()),
                marked_yaml::Node::Mapping(m) => Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.as_str().to_string(), conv(v)))
                        .collect(),
                ),
            }
        }
        conv(&marked_yaml::parse_yaml(0, text).unwrap())
    }

    #[test]
    fn yaml_values_cannot_break_out() {
        let hostile = "x\"\nstage: ALPHA\n- compute.*: yes # '";
        let v = json!({
            "title": hostile,
            "description": "a: b",
            "includedPermissions": ["compute.firewalls.get", hostile],
        });
        let text = to_yaml(&v);
        assert_eq!(read_back(&text), v, "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
        let words =
            json!({ "stage": "GA", "on": "no", "p": ["compute.firewalls.get", "true", "1"] });
        let text = to_yaml(&words);
        assert!(
            text.contains("stage: GA\n") && text.contains("- compute.firewalls.get\n"),
            "{text}"
        );
        assert!(
            text.contains("\"on\": \"no\"")
                && text.contains("- \"true\"")
                && text.contains("- \"1\""),
            "{text}"
        );
        assert_eq!(read_back(&text), words);
    }

    #[test]
    fn the_document_reads_back_as_the_role() {
        let places = vec![vec!["p-1".to_string()], vec!["p-2".to_string()]];
        let text = document(&places);
        assert!(text.contains("--project=p-2 "), "{text}");
        let v = read_back(&text);
        assert_eq!(v["title"], ROLE_NAME);
        assert_eq!(v["includedPermissions"], json!(PERMISSIONS));
    }
}
