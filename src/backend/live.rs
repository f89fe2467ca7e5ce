//! The live clouds (cargo feature `live`): each target read from and written to its cloud
//! through the official SDK, by the cloud's provider crate (AWS, Azure and GCP).
//!
//! The guarantees of the snapshot backend hold here too: the state is normalised by the
//! same loader, so its fingerprint means the same; right before writing a target its state is
//! read again and must still have the planned fingerprint (else nothing is written: "changed
//! under us"); what the writes meant is returned for the caller's convergence check, which
//! reads the cloud again rather than trusting any write's response.

use super::{changed_under_us, fingerprint, Executed, Observed, Target};
use crate::diff::{apply_changes, Action, Change};
use crate::error::Error;
use intentwall_contract::live::{Observation, Op};
use intentwall_contract::{DeploymentIntent, NativeState, ProviderKind};

/// The clients of one run (credentials cached per account, subscription or project); clones
/// share them.
#[derive(Debug, Clone, Default)]
pub struct Live {
    aws: intentwall_aws::live::Aws,
    azure: intentwall_azure::live::Azure,
    gcp: intentwall_gcp::live::Gcp,
}

impl Live {
    /// Clients are made on first use.
    pub fn new() -> Live {
        Live::default()
    }

    /// Where a target lives, for messages and the plan's `source`.
    fn source(target: &Target) -> std::path::PathBuf {
        let p = &target.placement;
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("?");
        let keys: &[&str] = match target.provider {
            ProviderKind::Aws => &["account", "region", "vpc"],
            ProviderKind::Azure => &["subscription", "resource_group", "nsg"],
            ProviderKind::Gcp => &["project", "network"],
        };
        let at: Vec<&str> = keys.iter().map(|k| get(k)).collect();
        format!("{}:{}", target.provider, at.join("/")).into()
    }

    /// Read a target from its cloud.
    pub async fn observe(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
    ) -> Result<Observed, Error> {
        let o = self.document(target, intent).await?;
        Ok(Observed {
            fingerprint: fingerprint(&o.state),
            state: o.state,
            existed: true,
            source: Self::source(target),
        })
    }

    /// Read a target from its cloud, with the document it was read from (what `snapshot`
    /// records).
    pub async fn document(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
    ) -> Result<Observation, Error> {
        let label = target.to_string();
        let p = &target.placement;
        Ok(match target.provider {
            ProviderKind::Aws => self.aws.observe(&label, p, intent).await?,
            ProviderKind::Azure => self.azure.observe(&label, p, intent).await?,
            ProviderKind::Gcp => self.gcp.observe(&label, p, intent).await?,
        })
    }

    /// Read the target again, require the planned fingerprint, then write the changes through
    /// the cloud's client; returns what the writes meant.
    pub async fn execute(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
        expected: &str,
        changes: &[Change],
    ) -> Result<Executed, Error> {
        let label = target.to_string();
        let p = &target.placement;
        let ops: Vec<Op<'_>> = changes.iter().filter_map(op).collect();
        let (meant, report) = match target.provider {
            ProviderKind::Aws => {
                let ec2 = self.aws.ec2(&label, p).await?;
                let now = intentwall_aws::live::observe_with(&ec2, p, intent).await?;
                let meant = still_as_planned(target, expected, &now.state, changes)?;
                let report =
                    intentwall_aws::live::execute(&ec2, p, intent, &now.state, &ops, &meant)
                        .await?;
                (meant, report)
            }
            ProviderKind::Azure => {
                let conn = self.azure.conn(&label).await?;
                let now = intentwall_azure::live::observe_with(&conn, &label, p, intent).await?;
                let meant = still_as_planned(target, expected, &now.state, changes)?;
                let report = intentwall_azure::live::execute(
                    &conn, &label, p, intent, &now.state, &ops, &meant,
                )
                .await?;
                (meant, report)
            }
            ProviderKind::Gcp => {
                let t = self.gcp.target(&label, p).await?;
                let now = intentwall_gcp::live::observe_with(&t, intent).await?;
                let meant = still_as_planned(target, expected, &now.state, changes)?;
                let report = intentwall_gcp::live::execute(&t, &ops).await?;
                (meant, report)
            }
        };
        Ok(Executed {
            writes: report.calls,
            meant,
        })
    }

    /// The calls a target's changes need that its identity may not make (`apply
    /// --preflight`); empty when all are allowed. AWS asks IAM SimulatePrincipalPolicy for the
    /// role; Azure reads the caller's permissions at the target's resource group
    /// (Permissions_ListForResourceGroup) and evaluates the actions the writes make (deny
    /// assignments, Azure Policy and resource locks are out of its sight); GCP asks Cloud
    /// Resource Manager's projects.testIamPermissions for the project. A question that fails
    /// refuses: a preflight never passes unasked.
    pub async fn preflight(
        &self,
        target: &Target,
        changes: &[Change],
    ) -> Result<Vec<String>, Error> {
        let p = &target.placement;
        let label = target.to_string();
        let ops: Vec<Op<'_>> = changes.iter().filter_map(op).collect();
        let denied = match target.provider {
            ProviderKind::Aws => {
                let account = p.get("account").map(String::as_str).unwrap_or("");
                let role = p.get("role").map(String::as_str);
                let (iam, who) = self
                    .aws
                    .iam(account, role, p.get("external_id").map(String::as_str))
                    .await?;
                let principal = match role {
                    Some(r) => r.to_string(),
                    None => intentwall_aws::live::preflight::principal(&who),
                };
                intentwall_aws::live::preflight::denied(&iam, &label, &principal, p, &ops).await?
            }
            ProviderKind::Azure => {
                let conn = self.azure.conn(&label).await?;
                intentwall_azure::live::preflight::denied(&conn, &label, p, &ops).await?
            }
            ProviderKind::Gcp => self.gcp.preflight(&label, p, &ops).await?,
        };
        Ok(denied)
    }
}

/// The state read right before writing must be the one planned from (else nothing is
/// written); then what the changes make of it.
fn still_as_planned(
    target: &Target,
    expected: &str,
    now: &NativeState,
    changes: &[Change],
) -> Result<NativeState, Error> {
    let fp = fingerprint(now);
    if fp != expected {
        return Err(changed_under_us(
            &Live::source(target).display().to_string(),
            expected,
            &fp,
        ));
    }
    Ok(apply_changes(now, changes))
}

/// A planned change as the write the cloud's backend makes.
fn op(c: &Change) -> Option<Op<'_>> {
    Some(match c.action {
        Action::Create => Op::Create(c.after.as_ref()?),
        Action::Update => Op::Update {
            before: c.before.as_ref()?,
            after: c.after.as_ref()?,
        },
        Action::Replace => Op::Replace {
            before: c.before.as_ref()?,
            after: c.after.as_ref()?,
        },
        Action::Delete => Op::Delete(c.before.as_ref()?),
    })
}

/// One account's role, as `bootstrap` found and left it.
#[derive(Debug, Clone)]
pub struct RoleReport {
    /// The cloud.
    pub cloud: ProviderKind,
    /// The account.
    pub account: String,
    /// The role's ARN.
    pub role_arn: String,
    /// What differed, one line each (empty: nothing to do).
    pub changes: Vec<String>,
    /// Mutating calls made (0 in a dry run).
    pub calls: usize,
}

/// `bootstrap <cloud>`: the job's role in every account of the cloud's placements. Only AWS
/// has one: Azure and GCP identities are granted roles by their own tooling, from the custom
/// role `permissions` prints.
pub fn bootstrap(
    cloud: ProviderKind,
    intent: &crate::intent::Intent,
    trust: &str,
    via: Option<&str>,
    dry_run: bool,
) -> Result<Vec<RoleReport>, Error> {
    match cloud {
        ProviderKind::Aws => bootstrap_aws(intent, trust, via, dry_run),
        other => Err(Error::usage(format!(
            "bootstrap {other}: only aws has a bootstrap ({other} identities are granted \
             roles by the cloud's own tooling; `permissions {other}` prints the role to assign)"
        ))),
    }
}

/// `bootstrap aws`: in every account of the intents' AWS placements, the role the job
/// assumes (the placements' `role`), trusted by `trust`, with the least-privilege policy of
/// that account's placements. Reads, diffs, and (unless `dry_run`) writes only what differs.
/// `via` names a role to act through in each account (an administrator role); without it the
/// job's own identity must be in the account.
fn bootstrap_aws(
    intent: &crate::intent::Intent,
    trust: &str,
    via: Option<&str>,
    dry_run: bool,
) -> Result<Vec<RoleReport>, Error> {
    use intentwall_aws::live::iam;
    use std::collections::BTreeMap;
    let kind = ProviderKind::Aws;
    let keys = intentwall_aws::permissions::PLACEMENT_KEYS;
    let places = crate::permissions::placements(intent, kind, keys)?;
    // account -> (role, external id), one role per account
    let mut roles: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for d in intent.deployments.values() {
        let Some(p) = d.clouds.get(&kind) else {
            continue;
        };
        let account = p.settings.get("account").cloned().unwrap_or_default();
        let Some(role) = p.settings.get("role").cloned() else {
            return Err(Error::usage(format!(
                "bootstrap aws: deployment `{}` names no `role` in its aws placement: the \
                 role to create is the one the job will assume there",
                d.name
            )));
        };
        let x = p.settings.get("external_id").cloned();
        match roles.get(&account) {
            Some((r, e)) if r != &role || e != &x => {
                return Err(Error::usage(format!(
                    "bootstrap aws: account {account} is given two roles or external ids \
                     ({r} and {role}); one role per account"
                )))
            }
            _ => {
                roles.insert(account, (role, x));
            }
        }
    }
    let aws = intentwall_aws::live::Aws::new();
    let mut reports = Vec::new();
    for (account, (role_arn, external_id)) in roles {
        let mine: Vec<Vec<String>> = places.iter().filter(|p| p[0] == account).cloned().collect();
        let spec = iam::RoleSpec {
            account: account.clone(),
            role_arn: role_arn.clone(),
            trust: iam::trust_policy(trust, external_id.as_deref()),
            policy: intentwall_aws::permissions::policy(&mine),
        };
        let (client, who, changes) = super::block_on(async {
            let via = via.map(|v| format!("arn:aws:iam::{account}:role/{v}"));
            let (client, who) = aws.iam(&account, via.as_deref(), None).await?;
            let changes = iam::diff(&client, &spec).await?;
            Ok::<_, Error>((client, who, changes))
        })?;
        let lines = changes
            .iter()
            .map(|c| match c {
                iam::RoleChange::Create => format!("+ create role {role_arn}"),
                iam::RoleChange::Trust(None) => format!("+ trust policy: {}", spec.trust),
                iam::RoleChange::Trust(Some(b)) => {
                    format!("~ trust policy: {b} -> {}", spec.trust)
                }
                iam::RoleChange::Policy(None) => format!(
                    "+ inline policy {}: {} statements",
                    iam::POLICY_NAME,
                    spec.policy["Statement"].as_array().map_or(0, Vec::len)
                ),
                iam::RoleChange::Policy(Some(_)) => format!(
                    "~ inline policy {}: replaced ({} statements)",
                    iam::POLICY_NAME,
                    spec.policy["Statement"].as_array().map_or(0, Vec::len)
                ),
            })
            .collect();
        let calls = if dry_run || changes.is_empty() {
            0
        } else {
            super::block_on(iam::apply(&client, &who, &spec, &changes))?
        };
        reports.push(RoleReport {
            cloud: kind,
            account,
            role_arn,
            changes: lines,
            calls,
        });
    }
    Ok(reports)
}
