//! `apply --preflight`: before any write, ask IAM (SimulatePrincipalPolicy) whether the
//! identity the job acts as in a target's account may make every call that target's changes
//! need, in the context those calls carry (the region, the `managed-by=intentwall` tag on the
//! groups and in create requests). A denied action stops the whole apply before anything is
//! written, naming the action, so a half-permitted role never leaves half an estate applied.

use super::{error, Placement};
use crate::model::{KIND_RULE, KIND_SG, TAG_MANAGED_KEY, TAG_MANAGED_VALUE};
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use intentwall_contract::live::{Op, ProviderError};
use std::collections::BTreeSet;

fn rule_action(
    o: &intentwall_contract::NativeObject,
    ingress: &'static str,
    egress: &'static str,
) -> &'static str {
    match o.body.value().get("Direction").and_then(|d| d.as_str()) {
        Some("egress") => egress,
        _ => ingress,
    }
}

/// The EC2 actions the writes of `ops` need (on security groups), and whether a group is
/// created (which also needs the VPC).
pub fn actions(ops: &[Op<'_>]) -> (BTreeSet<&'static str>, bool) {
    let mut a = BTreeSet::new();
    let mut creates = false;
    for op in ops {
        match op {
            Op::Create(o) if o.kind == KIND_SG => {
                creates = true;
                a.extend(["ec2:CreateSecurityGroup", "ec2:CreateTags"]);
                // a new group's default egress is revoked or described in the same run
                a.extend([
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:ModifySecurityGroupRules",
                ]);
            }
            Op::Create(o) if o.kind == KIND_RULE => {
                a.insert(rule_action(
                    o,
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:AuthorizeSecurityGroupEgress",
                ));
                a.insert("ec2:CreateTags");
            }
            Op::Update { before, .. } if before.kind == KIND_SG => {
                a.extend(["ec2:CreateTags", "ec2:DeleteTags"]);
            }
            Op::Update { before, .. } if before.kind == KIND_RULE => {
                a.insert("ec2:ModifySecurityGroupRules");
            }
            Op::Replace { before, .. } if before.kind == KIND_SG => {
                creates = true;
                a.extend([
                    "ec2:DeleteSecurityGroup",
                    "ec2:CreateSecurityGroup",
                    "ec2:CreateTags",
                ]);
            }
            Op::Replace { before, .. } if before.kind == KIND_RULE => {
                a.insert(rule_action(
                    before,
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                ));
                a.insert(rule_action(
                    before,
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:AuthorizeSecurityGroupEgress",
                ));
            }
            Op::Delete(o) if o.kind == KIND_RULE => {
                a.insert(rule_action(
                    o,
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                ));
            }
            Op::Delete(o) if o.kind == KIND_SG => {
                a.insert("ec2:DeleteSecurityGroup");
            }
            _ => {}
        }
    }
    (a, creates)
}

/// The IAM principal behind a caller identity: an assumed role's role (without its path,
/// which the STS ARN does not carry), else the ARN itself.
pub fn principal(caller: &str) -> String {
    if let Some((head, rest)) = caller.split_once(":assumed-role/") {
        let account = head.rsplit(':').next().unwrap_or("");
        let role = rest.split('/').next().unwrap_or("");
        return format!("arn:aws:iam::{account}:role/{role}");
    }
    caller.to_string()
}

/// Actions IAM would deny the principal for a target's writes (empty: all allowed).
pub async fn denied(
    iam: &aws_sdk_iam::Client,
    target: &str,
    principal: &str,
    p: &Placement,
    ops: &[Op<'_>],
) -> Result<Vec<String>, ProviderError> {
    let (writes, creates) = actions(ops);
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let (account, region, vpc) = (get("account"), get("region"), get("vpc"));
    let mut checks: Vec<(String, Vec<&str>)> = vec![
        (
            "*".into(),
            vec![
                "ec2:DescribeVpcs",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSecurityGroupRules",
            ],
        ),
        (
            format!("arn:aws:ec2:{region}:{account}:security-group/*"),
            writes.iter().copied().collect(),
        ),
    ];
    if creates {
        checks.push((
            format!("arn:aws:ec2:{region}:{account}:vpc/{vpc}"),
            vec!["ec2:CreateSecurityGroup"],
        ));
    }
    let entry = |k: &str, v: &str| {
        ContextEntry::builder()
            .context_key_name(k)
            .context_key_values(v)
            .context_key_type(ContextKeyTypeEnum::String)
            .build()
    };
    let context = vec![
        entry("aws:RequestedRegion", region),
        entry(
            &format!("aws:ResourceTag/{TAG_MANAGED_KEY}"),
            TAG_MANAGED_VALUE,
        ),
        entry(
            &format!("aws:RequestTag/{TAG_MANAGED_KEY}"),
            TAG_MANAGED_VALUE,
        ),
        entry("ec2:CreateAction", "CreateSecurityGroup"),
    ];
    let mut out = Vec::new();
    for (resource, actions) in checks {
        let call = "iam:SimulatePrincipalPolicy";
        let mut pages = iam
            .simulate_principal_policy()
            .policy_source_arn(principal)
            .set_action_names(Some(actions.iter().map(|a| a.to_string()).collect()))
            .resource_arns(&resource)
            .set_context_entries(Some(context.clone()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::classify(target, call, &e))?;
            for r in page.evaluation_results() {
                if *r.eval_decision() != PolicyEvaluationDecisionType::Allowed {
                    out.push(format!(
                        "{} on {resource} ({})",
                        r.eval_action_name(),
                        r.eval_decision().as_str()
                    ));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_map_to_their_role() {
        assert_eq!(
            principal("arn:aws:sts::111122223333:assumed-role/intentwall/job-1"),
            "arn:aws:iam::111122223333:role/intentwall"
        );
        assert_eq!(
            principal("arn:aws:iam::111122223333:user/ci"),
            "arn:aws:iam::111122223333:user/ci"
        );
    }
}
