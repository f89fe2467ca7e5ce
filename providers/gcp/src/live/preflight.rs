//! `apply --preflight` on GCP: before any write, ask IAM whether the identity the job runs as
//! holds every permission the target's changes need, so a role missing one permission stops
//! the whole apply before anything is written instead of leaving half an estate applied.
//!
//! IAM is asked through Cloud Resource Manager's `projects.testIamPermissions` on
//! `projects/{project}`: it answers the subset of the listed permissions the caller has on the
//! project (a custom role of `intentwall permissions gcp` is granted there). The call itself
//! needs no permission. What it cannot see is documented in docs/live.md: IAM deny policies,
//! organisation policy constraints, VPC Service Controls perimeters and conditions on
//! resources below the project may still refuse a write it reported as granted, and Google
//! documents the method as one that may "fail open". So a pass is evidence, not a guarantee;
//! a refusal stops before any write (wrong only for a grant conditioned on particular
//! resources, which a question about the project may not match).
//!
//! Any failure of the call itself (403, unknown project, 5xx after the bounded retries, no
//! connection) refuses: a preflight that could not ask never passes.

use super::write::name_of;
use super::{retrying, Target};
use intentwall_contract::live::{some_of, ErrorKind, Op, ProviderError};
use std::collections::{BTreeMap, BTreeSet};

/// The API call preflight makes (as errors and logs name it).
pub const CALL: &str = "cloudresourcemanager.projects.testIamPermissions";

/// Read on every run that writes: the network must exist, its rules are listed, and every
/// write's operation is polled until `DONE`.
const READS: [(&str, &str); 3] = [
    ("compute.networks.get", "check that the network exists"),
    ("compute.firewalls.list", "list the network's rules"),
    (
        "compute.globalOperations.get",
        "wait for each write's operation",
    ),
];

/// Google checks this on the network for every firewall rule of it created, changed or
/// deleted (not on reads).
const NETWORK_POLICY: &str = "compute.networks.updatePolicy";

/// What a change does to a rule, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Create,
    Update,
    Replace,
    Delete,
}

impl Change {
    /// The Compute permissions the change's calls need (see `write`: insert; patch or update;
    /// delete then insert; delete).
    fn permissions(self) -> &'static [&'static str] {
        match self {
            Change::Create => &["compute.firewalls.create", NETWORK_POLICY],
            Change::Update => &["compute.firewalls.update", NETWORK_POLICY],
            // the name is the rule's identity: the old rule is deleted, then the new one of
            // the same name inserted
            Change::Replace => &[
                "compute.firewalls.delete",
                "compute.firewalls.create",
                NETWORK_POLICY,
            ],
            Change::Delete => &["compute.firewalls.delete", NETWORK_POLICY],
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "change in place",
            Change::Replace => {
                "replace (direction or network changes: delete, then insert under the same name)"
            }
            Change::Delete => "delete",
        }
    }
}

/// Why each permission is needed: the reads, and per kind of change the rules it touches.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// permission -> what reads need it.
    reads: BTreeMap<&'static str, &'static str>,
    /// permission -> kind of change -> rule names.
    writes: BTreeMap<&'static str, BTreeMap<Change, Vec<String>>>,
}

impl Needs {
    /// Every permission needed, sorted.
    pub fn permissions(&self) -> Vec<&'static str> {
        let all: BTreeSet<&'static str> = self
            .reads
            .keys()
            .chain(self.writes.keys())
            .copied()
            .collect();
        all.into_iter().collect()
    }

    /// One line saying what needs `permission` (empty when nothing does).
    pub fn why(&self, permission: &str) -> String {
        let mut parts = Vec::new();
        if let Some(read) = self.reads.get(permission) {
            parts.push((*read).to_string());
        }
        for (change, rules) in self.writes.get(permission).into_iter().flatten() {
            parts.push(format!(
                "{} {} {} ({})",
                change.verb(),
                rules.len(),
                if rules.len() == 1 { "rule" } else { "rules" },
                some_of(rules, 5)
            ));
        }
        parts.join("; ")
    }
}

/// The permissions the writes of `ops` need, with the reads every run makes, and why.
pub fn needs(ops: &[Op<'_>]) -> Needs {
    let mut n = Needs::default();
    for (permission, why) in READS {
        n.reads.insert(permission, why);
    }
    for op in ops {
        let (change, rule) = match op {
            Op::Create(o) => (Change::Create, o),
            Op::Update { after, .. } => (Change::Update, after),
            Op::Replace { before, .. } => (Change::Replace, before),
            Op::Delete(o) => (Change::Delete, o),
        };
        for p in change.permissions() {
            n.writes
                .entry(p)
                .or_default()
                .entry(change)
                .or_default()
                .push(name_of(rule));
        }
    }
    n
}

/// Every permission preflight may ask about, whatever the changes (the role document must
/// grant each: tested).
pub fn askable() -> BTreeSet<&'static str> {
    let mut all: BTreeSet<&'static str> = READS.iter().map(|(p, _)| *p).collect();
    for c in [
        Change::Create,
        Change::Update,
        Change::Replace,
        Change::Delete,
    ] {
        all.extend(c.permissions());
    }
    all
}

/// The permissions the answer does not grant, each as a line naming the permission, the
/// project and what needs it (empty: all granted). Anything granted that was not asked is
/// ignored.
pub fn denied(needs: &Needs, project: &str, granted: &[String]) -> Vec<String> {
    let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    needs
        .permissions()
        .into_iter()
        .filter(|p| !granted.contains(p))
        .map(|p| {
            format!(
                "{p} is not granted on projects/{project}; needed to {}",
                needs.why(p)
            )
        })
        .collect()
}

/// Ask IAM which of the permissions the target's changes need the caller holds on its
/// project; the ones it does not, as [`denied`] words them. An error of the call is returned
/// as the call's error (the caller refuses the apply), never as a pass.
pub async fn check(t: &Target, ops: &[Op<'_>]) -> Result<Vec<String>, ProviderError> {
    let needs = needs(ops);
    let permissions: Vec<String> = needs.permissions().iter().map(|p| p.to_string()).collect();
    let projects = t.clients.projects(&t.label).await?;
    let resource = format!("projects/{}", t.project);
    let answer = retrying(&t.label, CALL, || {
        projects
            .test_iam_permissions()
            .set_resource(resource.clone())
            .set_permissions(permissions.clone())
            .send()
    })
    .await
    .map_err(|mut e| {
        e.message = format!(
            "cannot ask IAM which permissions the identity holds on {resource}, so the \
             preflight refuses: {}",
            e.message
        );
        match e.kind {
            ErrorKind::Denied => e.message.push_str(
                " (Google answers so for a project that does not exist or that the identity \
                 cannot see, and when the Cloud Resource Manager API is not enabled for the \
                 credentials' project)",
            ),
            ErrorKind::NotFound => e.message.push_str(" (the project does not exist)"),
            _ => {}
        }
        e
    })?;
    let out = denied(&needs, &t.project, &answer.permissions);
    tracing::debug!(
        target: "intentwall::gcp",
        target = %t.label,
        project = %t.project,
        asked = permissions.len(),
        granted = answer.permissions.len(),
        denied = out.len(),
        "preflight: asked IAM (testIamPermissions)"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use intentwall_contract::{Body, NativeObject};
    use serde_json::json;

    fn rule(name: &str, direction: &str) -> NativeObject {
        NativeObject {
            kind: crate::KIND.into(),
            key: format!("fw:{name}"),
            parent: None,
            container: false,
            managed: true,
            foreign: false,
            flow: None,
            body: Body::new(&json!({"name": name, "direction": direction})),
            raw: None,
            assigned: None,
            summary: String::new(),
        }
    }

    const READ_ONLY: [&str; 3] = [
        "compute.firewalls.list",
        "compute.globalOperations.get",
        "compute.networks.get",
    ];

    fn asked(ops: &[Op<'_>]) -> Vec<&'static str> {
        needs(ops).permissions()
    }

    fn with_reads(mut writes: Vec<&'static str>) -> Vec<&'static str> {
        writes.extend(READ_ONLY);
        writes.sort_unstable();
        writes
    }

    #[test]
    fn every_permission_preflight_asks_for_is_in_the_role_document() {
        let role: BTreeSet<&str> = crate::permissions::PERMISSIONS.iter().copied().collect();
        let askable = askable();
        assert!(askable.is_subset(&role), "{askable:?} vs {role:?}");
        // and the role grants nothing preflight would not ask about: the two stay one list
        assert_eq!(askable, role);
        // the role document itself (what `permissions gcp` prints) lists each
        let doc = crate::permissions::document(&[vec!["p-1".to_string()]]);
        for p in askable {
            assert!(doc.contains(&format!("- {p}\n")), "{p} not in\n{doc}");
        }
    }

    #[test]
    fn reads_are_always_asked() {
        assert_eq!(asked(&[]), READ_ONLY.to_vec());
    }

    #[test]
    fn create_needs_create_and_the_network_policy() {
        let a = rule("iw-us-a", "INGRESS");
        assert_eq!(
            asked(&[Op::Create(&a)]),
            with_reads(vec![
                "compute.firewalls.create",
                "compute.networks.updatePolicy"
            ])
        );
    }

    #[test]
    fn update_needs_update_and_the_network_policy() {
        let (a, b) = (rule("iw-us-a", "INGRESS"), rule("iw-us-a", "INGRESS"));
        assert_eq!(
            asked(&[Op::Update {
                before: &a,
                after: &b
            }]),
            with_reads(vec![
                "compute.firewalls.update",
                "compute.networks.updatePolicy"
            ])
        );
    }

    #[test]
    fn delete_needs_delete_and_the_network_policy() {
        let a = rule("iw-us-a", "INGRESS");
        assert_eq!(
            asked(&[Op::Delete(&a)]),
            with_reads(vec![
                "compute.firewalls.delete",
                "compute.networks.updatePolicy"
            ])
        );
    }

    #[test]
    fn a_direction_change_is_delete_then_insert_and_needs_both() {
        let (a, b) = (rule("iw-us-a", "INGRESS"), rule("iw-us-a", "EGRESS"));
        let ops = [Op::Replace {
            before: &a,
            after: &b,
        }];
        assert_eq!(
            asked(&ops),
            with_reads(vec![
                "compute.firewalls.create",
                "compute.firewalls.delete",
                "compute.networks.updatePolicy"
            ])
        );
        let n = needs(&ops);
        assert!(n.why("compute.firewalls.delete").contains("replace"));
        assert!(n.why("compute.firewalls.delete").contains("iw-us-a"));
    }

    #[test]
    fn denied_lines_name_permission_project_and_the_changes_that_need_it() {
        let rules: Vec<NativeObject> = (0..7)
            .map(|i| rule(&format!("iw-us-r{i}"), "INGRESS"))
            .collect();
        let gone = rule("iw-us-old", "INGRESS");
        let mut ops: Vec<Op<'_>> = rules.iter().map(Op::Create).collect();
        ops.push(Op::Delete(&gone));
        let n = needs(&ops);
        let all: Vec<String> = n.permissions().iter().map(|p| p.to_string()).collect();
        assert!(denied(&n, "acme-prod-us", &all).is_empty());
        let granted: Vec<String> = all
            .iter()
            .filter(|p| {
                !matches!(
                    p.as_str(),
                    "compute.firewalls.create" | "compute.networks.updatePolicy"
                )
            })
            .cloned()
            .chain(["storage.buckets.list".to_string()]) // not asked: ignored
            .collect();
        let d = denied(&n, "acme-prod-us", &granted);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(
            d[0],
            "compute.firewalls.create is not granted on projects/acme-prod-us; needed to \
             create 7 rules (iw-us-r0, iw-us-r1, iw-us-r2, iw-us-r3, iw-us-r4, and 2 more)"
        );
        assert!(
            d[1].starts_with("compute.networks.updatePolicy is not granted")
                && d[1].contains("create 7 rules")
                && d[1].contains("delete 1 rule (iw-us-old)"),
            "{}",
            d[1]
        );
        // nothing granted: every permission is named, the reads with what they are for
        let d = denied(&n, "acme-prod-us", &[]);
        assert_eq!(d.len(), n.permissions().len());
        assert!(d
            .iter()
            .any(|l| l.starts_with("compute.networks.get is not granted")
                && l.ends_with("check that the network exists")));
    }
}
