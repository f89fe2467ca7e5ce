//! The live state written down as the document `gcloud compute firewall-rules list
//! --format=json` prints (a bare JSON list of the API's firewall resources), and a planned
//! rule's canonical JSON as the SDK's request body.
//!
//! The document is what the snapshot loader reads, so a live observation and a recording of
//! it give the same state, fingerprint and plan; it is also what `snapshot` records.

use google_cloud_compute_v1::model::Firewall;
use serde_json::Value;

/// The rules as gcloud's list document (pretty JSON, trailing newline), in name order as
/// gcloud lists them.
pub fn document(rules: &[Value]) -> String {
    let mut rules = rules.to_vec();
    rules.sort_by(|a, b| {
        let n = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        n(a).cmp(&n(b))
    });
    let mut s =
        serde_json::to_string_pretty(&Value::Array(rules)).unwrap_or_else(|_| "[]".to_string());
    s.push('\n');
    s
}

/// A rule's canonical body (`model::Firewall::to_json`) as the request body. The canonical
/// form carries every field the API takes for a rule and no output-only one.
pub fn body(canonical: &Value) -> Result<Firewall, String> {
    serde_json::from_value(canonical.clone())
        .map_err(|e| format!("the planned rule is not a Compute firewall: {e}"))
}

/// The fields a canonical body sets that `after` no longer sets: a JSON merge PATCH built
/// by the SDK cannot clear them (it omits empty lists), so such a change is sent as a PUT.
pub fn cleared(before: &Value, after: &Value) -> Vec<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    b.keys().filter(|k| !a.contains_key(*k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule() -> Value {
        json!({
            "name": "iw-us-web-in-1",
            "description": "intentwall:web",
            "network": "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us",
            "direction": "INGRESS",
            "priority": 1000,
            "sourceRanges": ["10.30.0.0/16"],
            "targetTags": ["iw-web"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
            "disabled": false,
            "logConfig": {"enable": false}
        })
    }

    #[test]
    fn a_canonical_rule_round_trips_through_the_sdk_model() {
        let fw = body(&rule()).unwrap();
        assert_eq!(fw.name.as_deref(), Some("iw-us-web-in-1"));
        assert_eq!(fw.priority, Some(1000));
        assert_eq!(serde_json::to_value(&fw).unwrap(), rule());
    }

    #[test]
    fn the_document_reads_back_through_the_snapshot_loader() {
        let mut r2 = rule();
        r2["name"] = json!("a-hand-made");
        r2["id"] = json!("12345678901234567");
        r2["selfLink"] = json!("https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/firewalls/a-hand-made");
        let doc = document(&[rule(), r2]);
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v[0]["name"], "a-hand-made", "sorted by name");
        let intent = intentwall_contract::DeploymentIntent {
            deployment: "us".into(),
            provider: intentwall_contract::ProviderKind::Gcp,
            settings: [("project", "acme-prod-us"), ("network", "prod-us")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            space: intentwall_contract::AddrSet::default(),
            groups: Default::default(),
            flows: Vec::new(),
        };
        let state = crate::snapshot::parse(&doc, &intent).unwrap();
        assert_eq!(state.objects.len(), 2);
        assert!(state
            .objects
            .iter()
            .any(|o| o.key == "fw:iw-us-web-in-1" && o.managed));
        assert!(state
            .objects
            .iter()
            .any(|o| o.key == "fw:a-hand-made" && !o.managed));
    }

    #[test]
    fn clearing_a_field_is_seen() {
        let mut after = rule();
        after.as_object_mut().unwrap().remove("targetTags");
        assert_eq!(cleared(&rule(), &after), vec!["targetTags".to_string()]);
        assert!(cleared(&rule(), &rule()).is_empty());
    }
}
