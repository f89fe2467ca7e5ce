//! `intentwall permissions aws|azure|gcp`: the least-privilege policy the job needs on one
//! cloud, scoped to the placements of the intents' deployments, printed as data on stdout.
//!
//! Why each permission is there:
//!
//! **AWS** (an IAM policy document):
//! - `ec2:DescribeSecurityGroups`, `ec2:DescribeSecurityGroupRules`: read the observed state
//!   (groups, and rules with their ids and tags). Describe calls do not support resource-level
//!   permissions, so they are scoped by `aws:RequestedRegion` only.
//! - `ec2:DescribeManagedPrefixLists`, `ec2:GetManagedPrefixListEntries`: expand prefix lists
//!   that rules reference (ours and AWS-managed ones in unmanaged rules) for the simulation.
//! - `sts:GetCallerIdentity`: check that the credentials belong to the planned account before
//!   any write.
//! - `ec2:CreateSecurityGroup`: a group `iw-<group>` missing in a VPC; only with the tag
//!   `managed-by=intentwall` in the request (`aws:RequestTag`), and only in the intents' VPCs.
//! - `ec2:CreateTags`: only as part of a create call (`ec2:CreateAction`), so the job cannot
//!   mark someone else's group as its own.
//! - `ec2:AuthorizeSecurityGroupIngress/Egress`, `ec2:RevokeSecurityGroupIngress/Egress`,
//!   `ec2:ModifySecurityGroupRules`, `ec2:UpdateSecurityGroupRuleDescriptionsIngress/Egress`,
//!   `ec2:DeleteSecurityGroup`: change rules of, and remove, groups carrying
//!   `managed-by=intentwall` (`aws:ResourceTag`); a new rule must carry the tag in the request.
//! - `ec2:CreateManagedPrefixList`, `ec2:ModifyManagedPrefixList`,
//!   `ec2:DeleteManagedPrefixList`: the customer prefix lists large address sets compile to,
//!   tagged like the groups.
//!
//! **Azure** (a custom role definition for `az role definition create`):
//! - `networkSecurityGroups/read`, `securityRules/read`: read the observed state;
//! - `networkSecurityGroups/write`: create the deployment's NSG in a new region (the NSG is a
//!   managed container of the translation);
//! - `securityRules/write`, `securityRules/delete`: create, update, remove rules;
//! - `applicationSecurityGroups/read`, `applicationSecurityGroups/write`: read and create the
//!   `iw-<group>` ASGs;
//! - `applicationSecurityGroups/joinNetworkSecurityRule/action`: a rule that names an ASG as
//!   source or destination needs it (Azure checks it on the ASG when the rule is written);
//! - `applicationSecurityGroups/joinIpConfiguration/action`: joins NICs to the groups' ASGs,
//!   the Azure side of group membership.
//!
//! Assignable scopes are the intents' resource groups (`/subscriptions/S/resourceGroups/RG`).
//!
//! **GCP** (a custom role for `gcloud iam roles create --file`):
//! - `compute.firewalls.list`, `compute.firewalls.get`: read the observed state;
//! - `compute.firewalls.create`, `compute.firewalls.update`, `compute.firewalls.delete`:
//!   change rules;
//! - `compute.networks.get`: check the network named by the placement exists;
//! - `compute.networks.updatePolicy`: GCP checks it on the network when a firewall rule of
//!   that network is created, changed or deleted;
//! - `compute.globalOperations.get`: wait for the firewall operations to finish.
//!
//! A GCP custom role lives in one project: the output names the projects of the intents and the
//! command that creates the role in each.

use crate::intent::Intent;
use intentwall_contract::ProviderKind;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The tag (key, value) that marks what intentwall owns on AWS.
pub const OWNER_TAG: (&str, &str) = ("managed-by", "intentwall");

/// Name of the Azure and GCP custom roles.
pub const ROLE_NAME: &str = "intentwall";

/// Values of a placement setting over every deployment on a cloud, in order, deduplicated.
///
/// The values become ARNs, scopes and comments of a policy someone will grant: each is
/// checked against its cloud's format again here (the loader already did), so an intent built
/// another way can never widen a grant with `*`, `..` or a line break.
fn placements(
    intent: &Intent,
    cloud: ProviderKind,
    keys: &[&str],
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut seen = BTreeSet::new();
    for d in intent.deployments.values() {
        if let Some(p) = d.clouds.get(&cloud) {
            let mut vals = Vec::new();
            for k in keys {
                let v = p.settings.get(*k).cloned().unwrap_or_default();
                if let Err(why) = crate::intent::names::check_setting(cloud, k, &v) {
                    anyhow::bail!(
                        "refusing to grant on `{k}` {} of deployment `{}`: {why}",
                        crate::intent::names::quote(&v),
                        d.name
                    );
                }
                vals.push(v);
            }
            seen.insert(vals);
        }
    }
    Ok(seen.into_iter().collect())
}

fn no_placements(cloud: ProviderKind) -> anyhow::Error {
    anyhow::anyhow!("no deployment of the intents is placed on {cloud}: nothing to grant")
}

/// AWS: an IAM policy document.
pub fn aws_policy(intent: &Intent) -> anyhow::Result<Value> {
    let places = placements(intent, ProviderKind::Aws, &["account", "region", "vpc"])?;
    if places.is_empty() {
        return Err(no_placements(ProviderKind::Aws));
    }
    let regions: BTreeSet<&str> = places.iter().map(|p| p[1].as_str()).collect();
    let arns = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = places
            .iter()
            .map(|p| format!("arn:aws:ec2:{}:{}:{kind}/*", p[1], p[0]))
            .collect();
        v.dedup();
        v
    };
    let vpcs: Vec<String> = places
        .iter()
        .map(|p| format!("arn:aws:ec2:{}:{}:vpc/{}", p[1], p[0], p[2]))
        .collect();
    let sgs = arns("security-group");
    let sg_rules = arns("security-group-rule");
    let pls = arns("prefix-list");
    let owned =
        json!({ "StringEquals": { format!("aws:ResourceTag/{}", OWNER_TAG.0): OWNER_TAG.1 } });
    let tagged_request =
        json!({ "StringEquals": { format!("aws:RequestTag/{}", OWNER_TAG.0): OWNER_TAG.1 } });
    let cat = |a: &[String], b: &[String]| -> Vec<String> { a.iter().chain(b).cloned().collect() };
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadState",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSecurityGroupRules",
                    "ec2:DescribeManagedPrefixLists",
                    "ec2:GetManagedPrefixListEntries"
                ],
                "Resource": "*",
                "Condition": { "StringEquals": { "aws:RequestedRegion": regions } }
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
                "Resource": cat(&cat(&sgs, &sg_rules), &pls),
                "Condition": {
                    "StringEquals": {
                        "ec2:CreateAction": [
                            "CreateSecurityGroup",
                            "AuthorizeSecurityGroupIngress",
                            "AuthorizeSecurityGroupEgress",
                            "CreateManagedPrefixList"
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
                    "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
                    "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
                    "ec2:DeleteSecurityGroup"
                ],
                "Resource": sgs,
                "Condition": owned
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
                    "ec2:ModifySecurityGroupRules",
                    "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
                    "ec2:UpdateSecurityGroupRuleDescriptionsEgress"
                ],
                "Resource": sg_rules,
                "Condition": owned
            },
            {
                "Sid": "CreateOwnedPrefixLists",
                "Effect": "Allow",
                "Action": ["ec2:CreateManagedPrefixList"],
                "Resource": pls,
                "Condition": tagged_request
            },
            {
                "Sid": "ChangeOwnedPrefixLists",
                "Effect": "Allow",
                "Action": ["ec2:ModifyManagedPrefixList", "ec2:DeleteManagedPrefixList"],
                "Resource": pls,
                "Condition": owned
            }
        ]
    }))
}

/// Azure: a custom role definition.
pub fn azure_role(intent: &Intent) -> anyhow::Result<Value> {
    let places = placements(
        intent,
        ProviderKind::Azure,
        &["subscription", "resource_group"],
    )?;
    if places.is_empty() {
        return Err(no_placements(ProviderKind::Azure));
    }
    let scopes: Vec<String> = places
        .iter()
        .map(|p| format!("/subscriptions/{}/resourceGroups/{}", p[0], p[1]))
        .collect();
    Ok(json!({
        "Name": ROLE_NAME,
        "IsCustom": true,
        "Description": "intentwall: read and change NSG rules and application security groups of the intents' resource groups",
        "Actions": [
            "Microsoft.Network/networkSecurityGroups/read",
            "Microsoft.Network/networkSecurityGroups/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/read",
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/delete",
            "Microsoft.Network/applicationSecurityGroups/read",
            "Microsoft.Network/applicationSecurityGroups/write",
            "Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action",
            "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action"
        ],
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": scopes
    }))
}

/// GCP: the permissions of the custom role, and the projects it is needed in.
pub fn gcp_role(intent: &Intent) -> anyhow::Result<(Vec<&'static str>, Vec<String>)> {
    let places = placements(intent, ProviderKind::Gcp, &["project"])?;
    if places.is_empty() {
        return Err(no_placements(ProviderKind::Gcp));
    }
    let projects = places.into_iter().map(|mut p| p.remove(0)).collect();
    Ok((
        vec![
            "compute.firewalls.create",
            "compute.firewalls.delete",
            "compute.firewalls.get",
            "compute.firewalls.list",
            "compute.firewalls.update",
            "compute.globalOperations.get",
            "compute.networks.get",
            "compute.networks.updatePolicy",
        ],
        projects,
    ))
}

/// The policy for one cloud as text: JSON for AWS and Azure, YAML for GCP.
pub fn render(intent: &Intent, cloud: ProviderKind) -> anyhow::Result<String> {
    Ok(match cloud {
        ProviderKind::Aws => serde_json::to_string_pretty(&aws_policy(intent)?)? + "\n",
        ProviderKind::Azure => serde_json::to_string_pretty(&azure_role(intent)?)? + "\n",
        ProviderKind::Gcp => {
            let (perms, projects) = gcp_role(intent)?;
            let mut s = String::from(
                "# intentwall custom role; create it in each project of the intents:\n",
            );
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
                "includedPermissions": perms,
            });
            s.push_str(&to_yaml(&role));
            s
        }
    })
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

    /// What the YAML text means, read back with the loader's YAML parser.
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
}
