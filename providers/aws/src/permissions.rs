//! The IAM policy `intentwall permissions aws` prints: the least privilege the job needs,
//! scoped to the placements (account, region, VPC) of the intents' deployments.
//!
//! Why each permission is there:
//! - `ec2:DescribeVpcs`, `ec2:DescribeSecurityGroups`, `ec2:DescribeSecurityGroupRules`: read
//!   the observed state (the VPC must exist; groups; rules with their ids, to change a rule's
//!   description in place); `ec2:DescribeNetworkInterfaces`: name what still uses a group whose
//!   deletion AWS refused. Describe calls do not support resource-level
//!   permissions, so they are scoped by `aws:RequestedRegion` only.
//! - `ec2:DescribeManagedPrefixLists`, `ec2:GetManagedPrefixListEntries`: expand prefix lists
//!   that rules reference (AWS-managed ones and customer ones in unmanaged rules) for the
//!   simulation.
//! - `iam:SimulatePrincipalPolicy` on the accounts' roles: `apply --preflight` asks IAM, before
//!   any write, whether the job's role may make the calls its changes need (read-only).
//! - `sts:GetCallerIdentity`: check that the credentials belong to the planned account before
//!   any write.
//! - `ec2:CreateSecurityGroup`: a group `iw-<group>` missing in a VPC; only with the tag
//!   `managed-by=intentwall` in the request (`aws:RequestTag`), and only in the intents' VPCs.
//! - `ec2:CreateTags`: only as part of a create call (`ec2:CreateAction`), so the job cannot
//!   mark someone else's group as its own.
//! - `ec2:AuthorizeSecurityGroupIngress/Egress`, `ec2:RevokeSecurityGroupIngress/Egress`,
//!   `ec2:ModifySecurityGroupRules`, `ec2:DeleteSecurityGroup`: change rules of, and remove,
//!   groups carrying `managed-by=intentwall` (`aws:ResourceTag`); a new rule must carry the tag
//!   in the request.
//! - `ec2:CreateTags`, `ec2:DeleteTags` on owned groups, never on the `managed-by` key: an
//!   owned group's `intentwall:group` tag put back after a hand edit.
//! - `ec2:DeleteManagedPrefixList`: a prefix list tagged `managed-by=intentwall` is managed,
//!   and the translation never asks for one, so a plan removes it.
//!
//! No prefix list is ever created or changed (the translation writes address sets as rules),
//! so `ec2:CreateManagedPrefixList` and `ec2:ModifyManagedPrefixList` are not granted: a grant
//! for a call the job never makes is only a risk.

use crate::model::{TAG_MANAGED_KEY, TAG_MANAGED_VALUE};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The placement settings the policy is scoped by, in the order [`policy`] reads them.
pub const PLACEMENT_KEYS: &[&str] = &["account", "region", "vpc"];

/// The policy for the placements (each its [`PLACEMENT_KEYS`] values, in order, already
/// checked against AWS's formats: they become ARNs), as an IAM policy document.
pub fn policy(places: &[Vec<String>]) -> Value {
    let field = |p: &Vec<String>, i: usize| p.get(i).cloned().unwrap_or_default();
    let regions: BTreeSet<String> = places.iter().map(|p| field(p, 1)).collect();
    let arns = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = places
            .iter()
            .map(|p| format!("arn:aws:ec2:{}:{}:{kind}/*", field(p, 1), field(p, 0)))
            .collect();
        v.dedup();
        v
    };
    let vpcs: Vec<String> = places
        .iter()
        .map(|p| {
            let (account, region, vpc) = (field(p, 0), field(p, 1), field(p, 2));
            format!("arn:aws:ec2:{region}:{account}:vpc/{vpc}")
        })
        .collect();
    let mut roles: Vec<String> = places
        .iter()
        .map(|p| format!("arn:aws:iam::{}:role/*", field(p, 0)))
        .collect();
    roles.sort();
    roles.dedup();
    let sgs = arns("security-group");
    let sg_rules = arns("security-group-rule");
    let pls = arns("prefix-list");
    let owned = json!({ "StringEquals": { format!("aws:ResourceTag/{TAG_MANAGED_KEY}"): TAG_MANAGED_VALUE } });
    let tagged_request = json!({ "StringEquals": { format!("aws:RequestTag/{TAG_MANAGED_KEY}"): TAG_MANAGED_VALUE } });
    let cat = |a: &[String], b: &[String]| -> Vec<String> { a.iter().chain(b).cloned().collect() };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadState",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeVpcs",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSecurityGroupRules",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeManagedPrefixLists",
                    "ec2:GetManagedPrefixListEntries"
                ],
                "Resource": "*",
                "Condition": { "StringEquals": { "aws:RequestedRegion": regions } }
            },
            {
                // `apply --preflight`: ask IAM what the job's own roles may do (read-only)
                "Sid": "Preflight",
                "Effect": "Allow",
                "Action": ["iam:SimulatePrincipalPolicy"],
                "Resource": roles
            },
            {
                "Sid": "WhoAmI",
                "Effect": "Allow",
                "Action": ["sts:GetCallerIdentity"],
                "Resource": "*"
            },
            {
                "Sid": "CreateGroupsInIntentVpcs",
                "Effect": "Allow",
                "Action": ["ec2:CreateSecurityGroup"],
                "Resource": vpcs
            },
            {
                "Sid": "CreateOwnedGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateSecurityGroup"],
                "Resource": sgs,
                "Condition": tagged_request
            },
            {
                "Sid": "TagOnlyWhenCreating",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": cat(&sgs, &sg_rules),
                "Condition": {
                    "StringEquals": {
                        "ec2:CreateAction": [
                            "CreateSecurityGroup",
                            "AuthorizeSecurityGroupIngress",
                            "AuthorizeSecurityGroupEgress"
                        ]
                    }
                }
            },
            {
                "Sid": "ChangeOwnedGroups",
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:AuthorizeSecurityGroupEgress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:ModifySecurityGroupRules",
                    "ec2:DeleteSecurityGroup"
                ],
                "Resource": sgs,
                "Condition": owned
            },
            {
                "Sid": "RetagOwnedGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": sgs.clone(),
                "Condition": {
                    "StringEquals": { format!("aws:ResourceTag/{TAG_MANAGED_KEY}"): TAG_MANAGED_VALUE },
                    "ForAllValues:StringNotEquals": { "aws:TagKeys": [TAG_MANAGED_KEY] }
                }
            },
            {
                "Sid": "NewRulesCarryTheOwnerTag",
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:AuthorizeSecurityGroupEgress"
                ],
                "Resource": sg_rules,
                "Condition": tagged_request
            },
            {
                "Sid": "ChangeOwnedRules",
                "Effect": "Allow",
                "Action": [
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:ModifySecurityGroupRules"
                ],
                "Resource": sg_rules,
                "Condition": owned
            },
            {
                "Sid": "ChangeOwnedPrefixLists",
                "Effect": "Allow",
                "Action": ["ec2:DeleteManagedPrefixList"],
                "Resource": pls,
                "Condition": owned
            }
        ]
    })
}

/// [`policy`] as the command prints it: pretty JSON and a final newline.
pub fn document(places: &[Vec<String>]) -> String {
    format!("{:#}\n", policy(places))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Vec<Vec<String>> {
        [
            ["111122223333", "us-east-1", "vpc-1"],
            ["444455556666", "eu-west-1", "vpc-2"],
        ]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect()
    }

    #[test]
    fn no_prefix_list_is_created_or_modified() {
        let text = document(&places());
        for never in ["CreateManagedPrefixList", "ModifyManagedPrefixList"] {
            assert!(!text.contains(never), "{never} granted:\n{text}");
        }
        assert!(text.contains("\"ec2:DeleteManagedPrefixList\""), "{text}");
        assert!(text.ends_with("}\n"), "{text}");
    }

    #[test]
    fn every_write_is_scoped_by_tag_or_vpc() {
        let v = policy(&places());
        for s in v["Statement"].as_array().into_iter().flatten() {
            let reads = s["Action"].as_array().into_iter().flatten().all(|a| {
                let a = a.as_str().unwrap_or("");
                a.starts_with("ec2:Describe")
                    || a.starts_with("ec2:Get")
                    || a.starts_with("sts:")
                    || a == "iam:SimulatePrincipalPolicy"
            });
            let in_vpcs = s["Sid"] == "CreateGroupsInIntentVpcs";
            assert!(reads || in_vpcs || s["Condition"].is_object(), "{s}");
        }
    }
}
