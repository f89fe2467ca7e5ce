//! The live clouds (cargo feature `live`): each target read from and written to its cloud
//! through the official SDK, by the cloud's provider crate. AWS and Azure are live; GCP is
//! refused with a message until its client lands.
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
use intentwall_contract::{DeploymentIntent, ProviderKind};

/// The clients of one run (credentials cached per account); clones share them.
#[derive(Debug, Clone, Default)]
pub struct Live {
    aws: intentwall_aws::live::Aws,
    azure: intentwall_azure::live::Azure,
}

impl Live {
    /// Clients are made on first use.
    pub fn new() -> Live {
        Live::default()
    }

    fn unsupported(target: &Target) -> Error {
        Error::usage(format!(
            "--state live: {} is not live in this build yet (AWS is); plan it against \
             snapshots (--state snapshots)",
            target.provider
        ))
    }

    /// Where a target lives, for messages and the plan's `source`.
    fn source(target: &Target) -> std::path::PathBuf {
        let p = &target.placement;
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("?");
        let keys = match target.provider {
            ProviderKind::Azure => ["subscription", "resource_group", "nsg"],
            _ => ["account", "region", "vpc"],
        };
        format!(
            "{}:{}/{}/{}",
            target.provider,
            get(keys[0]),
            get(keys[1]),
            get(keys[2])
        )
        .into()
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
        match target.provider {
            ProviderKind::Aws => Ok(self
                .aws
                .observe(&target.to_string(), &target.placement, intent)
                .await?),
            ProviderKind::Azure => Ok(self
                .azure
                .observe(&target.to_string(), &target.placement, intent)
                .await?),
            ProviderKind::Gcp => Err(Self::unsupported(target)),
        }
    }

    /// Read the target again, require the planned fingerprint, then write the changes.
    pub async fn execute(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
        expected: &str,
        changes: &[Change],
    ) -> Result<Executed, Error> {
        if target.provider == ProviderKind::Azure {
            return self.execute_azure(target, intent, expected, changes).await;
        }
        if target.provider != ProviderKind::Aws {
            return Err(Self::unsupported(target));
        }
        let label = target.to_string();
        let ec2 = self.aws.ec2(&label, &target.placement).await?;
        let now = intentwall_aws::live::observe_with(&ec2, &target.placement, intent).await?;
        let fp = fingerprint(&now.state);
        if fp != expected {
            return Err(changed_under_us(
                &Self::source(target).display().to_string(),
                expected,
                &fp,
            ));
        }
        let meant = apply_changes(&now.state, changes);
        let ops: Vec<Op<'_>> = changes.iter().filter_map(op).collect();
        let report = intentwall_aws::live::execute(
            &ec2,
            &target.placement,
            intent,
            &now.state,
            &ops,
            &meant,
        )
        .await?;
        Ok(Executed {
            writes: report.calls,
            meant,
        })
    }
}

impl Live {
    /// [`Live::execute`] on Azure: the same discipline (read again, same fingerprint, write,
    /// return what the writes meant), through the Azure crate.
    async fn execute_azure(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
        expected: &str,
        changes: &[Change],
    ) -> Result<Executed, Error> {
        let label = target.to_string();
        let conn = self.azure.conn(&label).await?;
        let now =
            intentwall_azure::live::observe_with(&conn, &label, &target.placement, intent).await?;
        let fp = fingerprint(&now.state);
        if fp != expected {
            return Err(changed_under_us(
                &Self::source(target).display().to_string(),
                expected,
                &fp,
            ));
        }
        let meant = apply_changes(&now.state, changes);
        let ops: Vec<Op<'_>> = changes.iter().filter_map(op).collect();
        let report = intentwall_azure::live::execute(
            &conn,
            &label,
            &target.placement,
            intent,
            &now.state,
            &ops,
            &meant,
        )
        .await?;
        Ok(Executed {
            writes: report.calls,
            meant,
        })
    }
}

impl Live {
    /// The calls a target's changes need that its identity may not make (`apply
    /// --preflight`); empty when all are allowed.
    pub async fn preflight(&self, target: &Target, changes: &[Change]) -> Result<Vec<String>, Error> {
        if target.provider == ProviderKind::Azure {
            return Err(intentwall_azure::live::preflight::unsupported(&target.to_string()).into());
        }
        if target.provider != ProviderKind::Aws {
            return Err(Self::unsupported(target));
        }
        let p = &target.placement;
        let label = target.to_string();
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
        let ops: Vec<Op<'_>> = changes.iter().filter_map(op).collect();
        Ok(intentwall_aws::live::preflight::denied(&iam, &label, &principal, p, &ops).await?)
    }
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
    /// The account.
    pub account: String,
    /// The role's ARN.
    pub role_arn: String,
    /// What differed, one line each (empty: nothing to do).
    pub changes: Vec<String>,
    /// Mutating calls made (0 in a dry run).
    pub calls: usize,
}

/// `bootstrap aws`: in every account of the intents' AWS placements, the role the job
/// assumes (the placements' `role`), trusted by `trust`, with the least-privilege policy of
/// that account's placements. Reads, diffs, and (unless `dry_run`) writes only what differs.
/// `via` names a role to act through in each account (an administrator role); without it the
/// job's own identity must be in the account.
pub fn bootstrap_aws(
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
        let Some(p) = d.clouds.get(&kind) else { continue };
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
            account,
            role_arn,
            changes: lines,
            calls,
        });
    }
    Ok(reports)
}
