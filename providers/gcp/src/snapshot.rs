//! Snapshot documents: `gcloud compute firewall-rules list --format=json` (a bare list) or
//! the API's `FirewallList` (`{"kind": ..., "id": ..., "items": [...], "selfLink": ...}`).
//! Written back in the shape read; rules read from a document are written back unchanged.

use crate::model::{Firewall, NetworkRef};
use intentwall_contract::native::json_kind;
use intentwall_contract::{DeploymentIntent, NativeObject, NativeState, SnapshotError};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Is a rule of the target network (and project, when both are known)?
fn in_target(network: &str, intent: &DeploymentIntent) -> bool {
    let Some(want) = intent.setting("network") else {
        return true;
    };
    let Ok(want) = NetworkRef::parse(want) else {
        return true;
    };
    let Ok(have) = NetworkRef::parse(network) else {
        return false;
    };
    let want_project = want.project.as_deref().or(intent.setting("project"));
    have.name == want.name
        && match (have.project.as_deref(), want_project) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

/// Read a snapshot document. An error about one rule gets the line and column of the rule's
/// member it names (`firewall #2 `x`: field `sourceRanges` ...`), else of the rule.
pub fn parse(text: &str, intent: &DeploymentIntent) -> Result<NativeState, SnapshotError> {
    use intentwall_contract::snapshot::{locate, Seg};
    let doc: Value = serde_json::from_str(text).map_err(|e| SnapshotError::json(&e))?;
    // the rules' path: a bare list, or a FirewallList's `items` (a key step on a list is skipped)
    let at = |i: usize| move |e| locate(e, text, &[Seg::Key("items".into()), Seg::Index(i)]);
    let (items, envelope) = match doc {
        Value::Array(items) => (items, None),
        Value::Object(mut o) => {
            let items = match o.get_mut("items") {
                Some(v @ Value::Array(_)) => match v.take() {
                    Value::Array(a) => a,
                    _ => unreachable!("matched an array"),
                },
                Some(other) => {
                    return Err(SnapshotError::msg(format!(
                        "`items` must be a list of firewall rules, found {}",
                        json_kind(other)
                    )))
                }
                None => {
                    let is_list =
                        o.get("kind").and_then(Value::as_str) == Some("compute#firewallList");
                    if !is_list {
                        return Err(SnapshotError::msg(
                            "expected a list of firewall rules (`gcloud compute firewall-rules list --format=json`) \
                             or a FirewallList object with `items`",
                        ));
                    }
                    Vec::new() // the API omits `items` when there are none
                }
            };
            let env = serde_json::to_string(&Value::Object(o)).expect("a JSON object serialises");
            (items, Some(env))
        }
        other => {
            return Err(SnapshotError::msg(format!(
                "expected a list of firewall rules or a FirewallList object, found {}",
                json_kind(&other)
            )))
        }
    };
    let project = intent.setting("project");
    let own_prefix = crate::translate::name_prefix(&intent.deployment);
    let mut seen = HashSet::new();
    let mut objects = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let who = format!("firewall #{}", i + 1);
        let fw = Firewall::from_json(&item, &who, project)
            .map_err(SnapshotError::msg)
            .map_err(at(i))?;
        if !seen.insert(fw.name.clone()) {
            return Err(at(i)(SnapshotError::msg(format!(
                "{who} `{}`: the name appears twice (names are unique per project)",
                fw.name
            ))));
        }
        // ours: a rule of the deployment's network named for this deployment (names are
        // project-wide, and a network may be shared by several deployments: their rules are
        // not ours to prune). The name alone decides: a hand edit of one of ours, its
        // description included, is drift planned back; the description only names the flow
        let foreign = !in_target(&fw.network, intent);
        let managed = !foreign && fw.name.starts_with(&own_prefix);
        objects.push(NativeObject {
            kind: crate::KIND.into(),
            key: format!("fw:{}", fw.name),
            parent: None,
            container: false,
            managed,
            foreign,
            flow: if managed { fw.marker_flow() } else { None },
            body: fw.to_json().into(),
            raw: Some(item.into()),
            assigned: None,
            summary: fw.summary(),
        });
    }
    Ok(NativeState { objects, envelope })
}

/// Write a snapshot document (pretty JSON, trailing newline).
pub fn render(state: &NativeState) -> String {
    let items: Vec<Value> = state
        .objects
        .iter()
        .map(|o| o.raw.as_ref().unwrap_or(&o.body).value())
        .collect();
    let envelope: Option<Map<String, Value>> = state
        .envelope
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .and_then(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        });
    let doc = match envelope {
        Some(mut o) => {
            if o.contains_key("items") || !items.is_empty() {
                o.insert("items".into(), Value::Array(items));
            }
            Value::Object(o)
        }
        None => Value::Array(items),
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    s.push('\n');
    s
}
