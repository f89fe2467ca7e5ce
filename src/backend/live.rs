//! The live clouds (cargo feature `live`): each target read from and written to its cloud
//! through the official SDK, by the cloud's provider crate. AWS is live; Azure and GCP are
//! refused with a message until their clients land.
//!
//! The guarantees of the snapshot backend hold here too: the state is normalised by the
//! same loader, so its fingerprint means the same; right before writing a target its state is
//! read again and must still have the planned fingerprint (else nothing is written: "changed
//! under us"); what the writes meant is returned for the caller's convergence check, which
//! reads the cloud again rather than trusting any write's response.

use super::{changed_under_us, fingerprint, Executed, Observed, Target};
use crate::diff::{apply_changes, Action, Change};
use crate::error::Error;
use intentwall_contract::live::Op;
use intentwall_contract::{DeploymentIntent, ProviderKind};

/// The clients of one run (credentials cached per account); clones share them.
#[derive(Debug, Clone, Default)]
pub struct Live {
    aws: intentwall_aws::live::Aws,
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
        format!(
            "{}:{}/{}/{}",
            target.provider,
            get("account"),
            get("region"),
            get("vpc")
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
    ) -> Result<intentwall_aws::live::Observation, Error> {
        match target.provider {
            ProviderKind::Aws => Ok(self
                .aws
                .observe(&target.to_string(), &target.placement, intent)
                .await?),
            _ => Err(Self::unsupported(target)),
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
