//! Built-in guardrails: no ingress from the whole internet (`0.0.0.0/0` or
//! `::/0`) to admin or data ports, or to any port of a `sensitive` group, unless the flow
//! carries an unexpired `exception`.
//!
//! An expired exception waives nothing: its flow is checked like any other and, if it
//! breaks a guardrail, the finding names the flow's `file:line`, the expiry date and where it
//! is written. It blocks (exit 3) like every guardrail finding rather than failing the load
//! (exit 1): the day an exception lapses, `validate` and `plan` still read the estate and the
//! reviewer sees exactly which waiver to renew. An expired exception on a flow that breaks
//! no guardrail waives nothing anyway and is not reported.
//!
//! Checked on the effective intent of every deployment, before any translation, so
//! `validate` reports them without state.

use super::model::{Deployment, Flow, Intent};
use intentwall_contract::traffic::proto;
use intentwall_contract::{Action, Finding, FindingKind, Traffic};

/// TCP ports that must never be open to the world: remote admin and data stores.
pub const ADMIN_AND_DATA_PORTS: &[(u16, &str)] = &[
    (22, "ssh"),
    (3389, "rdp"),
    (5432, "postgresql"),
    (3306, "mysql"),
    (1433, "sql server"),
    (6379, "redis"),
    (27017, "mongodb"),
    (9200, "elasticsearch"),
    (9300, "elasticsearch transport"),
    (11211, "memcached"),
    (2379, "etcd"),
    (5984, "couchdb"),
    (8086, "influxdb"),
    (9042, "cassandra"),
    (5601, "kibana"),
];

/// Guardrail findings for every deployment (deployment order, then flow order).
pub fn check(intent: &Intent) -> Vec<Finding> {
    intent
        .deployments
        .values()
        .flat_map(check_deployment)
        .collect()
}

/// Guardrail findings for one deployment.
pub fn check_deployment(dep: &Deployment) -> Vec<Finding> {
    dep.flows
        .iter()
        .filter(|f| f.action == Action::Allow && f.exception.as_ref().is_none_or(|e| e.expired))
        .filter_map(|f| {
            violation(dep, f).map(|message| Finding {
                message: match &f.exception {
                    Some(ex) => format!(
                        "{message}; its exception expired on {} ({}, reason given: {}): renew \
                         it with a later `expires` date after review, or remove it and narrow \
                         the source",
                        ex.expires, ex.at, ex.reason
                    ),
                    None => format!(
                        "{message}; narrow the source, or add \
                         `exception: {{ reason: \"...\", expires: YYYY-MM-DD }}` to the flow"
                    ),
                },
                kind: FindingKind::Guardrail,
                deployment: dep.name.clone(),
                provider: None,
                flow: Some(f.name.clone()),
            })
        })
        .collect()
}

/// Which admin/data ports a traffic list touches.
pub fn admin_ports(traffic: &[Traffic]) -> Vec<(u16, &'static str)> {
    ADMIN_AND_DATA_PORTS
        .iter()
        .copied()
        .filter(|(p, _)| {
            traffic.iter().any(|t| match t.proto {
                None => true,
                Some(x) => x == proto::TCP && t.ports.contains(*p),
            })
        })
        .collect()
}

fn violation(dep: &Deployment, f: &Flow) -> Option<String> {
    let src = dep.networks.get(&f.from)?;
    let world = if src.addrs.v4.is_full() {
        "0.0.0.0/0"
    } else if src.addrs.v6.is_full() {
        "::/0"
    } else {
        return None;
    };
    let mut reasons = Vec::new();
    let sensitive = sensitive_groups(dep, &f.to);
    if !sensitive.is_empty() {
        let list = sensitive
            .iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", ");
        reasons.push(format!("the sensitive group {list}"));
    }
    let ports = admin_ports(&f.traffic());
    if !ports.is_empty() {
        let list = ports
            .iter()
            .map(|(p, n)| format!("tcp/{p} ({n})"))
            .collect::<Vec<_>>()
            .join(", ");
        reasons.push(format!("admin/data port(s) {list}"));
    }
    if reasons.is_empty() {
        return None;
    }
    Some(format!(
        "flow `{}` ({}) opens {} from the whole internet (`{}` contains {world}) to {}",
        f.name,
        f.loc,
        f.to,
        f.from,
        reasons.join(" and ")
    ))
}

/// The sensitive groups a destination name stands for: itself, composites on the way, and
/// its leaves.
fn sensitive_groups(dep: &Deployment, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![name.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(g) = dep.groups.get(&n) {
            if g.sensitive {
                out.push(n.clone());
            }
            stack.extend(g.includes.iter().cloned());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{load_files, LoadOptions};

    fn intent(flows: &str) -> Intent {
        let base = r#"version: 1
deployments:
  us:
    aws: { account: "111122223333", region: us-east-1, vpc: vpc-0a1b2c3d, cidr: 10.0.0.0/16 }
networks:
  internet: [0.0.0.0/0, "::/0"]
  v6world: ["::/0"]
  corp: [203.0.113.0/24]
groups:
  web: {}
  db: { sensitive: true }
  bastion: {}
  data: { includes: [db] }
"#;
        let files = vec![
            ("a.yaml".to_string(), base.to_string()),
            ("f.yaml".to_string(), format!("version: 1\nflows:\n{flows}")),
        ];
        let opts = LoadOptions {
            today: time::macros::date!(2026 - 01 - 01),
        };
        load_files(&files, &opts)
            .map_err(|d| d.to_string())
            .unwrap()
            .intent
    }

    #[test]
    fn https_to_web_is_fine() {
        let i = intent("  - { name: w, from: internet, to: web, services: [tcp/443] }\n");
        assert!(check(&i).is_empty());
    }

    #[test]
    fn ssh_from_world_is_a_finding() {
        let i =
            intent("  - { name: s, from: internet, to: bastion, services: [tcp/22, tcp/443] }\n");
        let f = check(&i);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::Guardrail);
        assert_eq!(f[0].flow.as_deref(), Some("s"));
        assert!(f[0].message.contains("tcp/22 (ssh)"), "{}", f[0].message);
        assert!(!f[0].message.contains("443"));
        assert!(f[0].message.contains("exception"));
    }

    #[test]
    fn whole_tcp_and_any_cover_admin_ports() {
        let i = intent("  - { name: a, from: v6world, to: web, services: [tcp] }\n  - { name: b, from: internet, to: web, services: [any] }\n  - { name: c, from: internet, to: web, services: [udp, tcp/8443, tcp/8000-8080] }\n");
        let f = check(&i);
        assert_eq!(
            f.iter()
                .map(|x| x.flow.clone().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(f[0].message.contains("::/0"));
    }

    #[test]
    fn sensitive_destination_even_through_a_composite() {
        let i = intent("  - { name: d, from: internet, to: data, services: [tcp/443] }\n");
        let f = check(&i);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains("sensitive group `db`"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn exception_denies_and_narrow_sources_are_fine() {
        let i = intent(concat!(
            "  - { name: e, from: internet, to: bastion, services: [tcp/22], exception: { reason: vendor, expires: 2027-06-30 } }\n",
            "  - { name: n, action: deny, from: internet, to: db, services: [any] }\n",
            "  - { name: c, from: corp, to: db, services: [tcp/5432] }\n",
        ));
        assert!(check(&i).is_empty());
    }
}
