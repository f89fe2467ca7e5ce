//! `intentwall bootstrap aws`: the role the job assumes in each account, created or brought
//! up to date idempotently: its trust policy (who may assume it) and one inline policy named
//! `intentwall` (what it may do: the least privilege of `intentwall permissions aws` for that
//! account's placements). Read first, compared as JSON, and only what differs is written, so a
//! second run makes no call that changes anything and a dry run shows the diff.

use super::error;
use intentwall_contract::live::{ErrorKind, ProviderError};
use serde_json::{json, Value};

/// The inline policy's name on the role.
pub const POLICY_NAME: &str = "intentwall";

/// What the role in one account must be.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// The account.
    pub account: String,
    /// The role's ARN (`arn:aws:iam::<account>:role/<path/><name>`).
    pub role_arn: String,
    /// Who may assume it.
    pub trust: Value,
    /// What it may do.
    pub policy: Value,
}

/// One write a role needs.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleChange {
    /// The role does not exist.
    Create,
    /// The trust policy differs (`None`: the role is new).
    Trust(Option<Value>),
    /// The inline policy differs or is missing (the one there now, if any).
    Policy(Option<Value>),
}

/// The trust policy letting `principal` (an IAM ARN: the job's own role or user) assume the
/// role, with an external id if the placement names one.
pub fn trust_policy(principal: &str, external_id: Option<&str>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "AWS": principal },
        "Action": "sts:AssumeRole"
    });
    if let Some(x) = external_id {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": x } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// `(path, name)` of a role ARN.
fn path_and_name(arn: &str) -> (String, String) {
    let full = arn.split_once(":role/").map_or(arn, |(_, r)| r);
    match full.rsplit_once('/') {
        Some((path, name)) => (format!("/{path}/"), name.to_string()),
        None => ("/".to_string(), full.to_string()),
    }
}

/// IAM returns policy documents URL-encoded; read either form.
fn document(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().or_else(|| {
        let mut bytes = Vec::with_capacity(text.len());
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                    bytes.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                }
                b'+' => {
                    bytes.push(b' ');
                    i += 1;
                }
                c => {
                    bytes.push(c);
                    i += 1;
                }
            }
        }
        serde_json::from_slice(&bytes).ok()
    })
}

/// Two policy documents mean the same: equal JSON, a lone string equal to a one-element list.
fn same(a: &Value, b: &Value) -> bool {
    fn norm(v: &Value) -> Value {
        match v {
            Value::Array(xs) if xs.len() == 1 => norm(&xs[0]),
            Value::Array(xs) => Value::Array(xs.iter().map(norm).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), norm(v))).collect())
            }
            v => v.clone(),
        }
    }
    norm(a) == norm(b)
}

/// What the role in `spec.account` needs (read only).
pub async fn diff(
    iam: &aws_sdk_iam::Client,
    spec: &RoleSpec,
) -> Result<Vec<RoleChange>, ProviderError> {
    let target = format!("aws account {}", spec.account);
    let (_, name) = path_and_name(&spec.role_arn);
    let role = match iam.get_role().role_name(&name).send().await {
        Ok(out) => out.role().cloned(),
        Err(e) => {
            let err = error::classify(&target, "iam:GetRole", &e);
            if err.kind != ErrorKind::NotFound {
                return Err(err);
            }
            None
        }
    };
    let Some(role) = role else {
        return Ok(vec![
            RoleChange::Create,
            RoleChange::Trust(None),
            RoleChange::Policy(None),
        ]);
    };
    let mut changes = Vec::new();
    let trust = role.assume_role_policy_document().and_then(document);
    if !trust.as_ref().is_some_and(|t| same(t, &spec.trust)) {
        changes.push(RoleChange::Trust(trust));
    }
    let policy = match iam
        .get_role_policy()
        .role_name(&name)
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => document(out.policy_document()),
        Err(e) => {
            let err = error::classify(&target, "iam:GetRolePolicy", &e);
            if err.kind != ErrorKind::NotFound {
                return Err(err);
            }
            None
        }
    };
    if !policy.as_ref().is_some_and(|p| same(p, &spec.policy)) {
        changes.push(RoleChange::Policy(policy));
    }
    Ok(changes)
}

/// Make the changes [`diff`] found; returns the mutating calls made (one audit event each).
pub async fn apply(
    iam: &aws_sdk_iam::Client,
    who: &str,
    spec: &RoleSpec,
    changes: &[RoleChange],
) -> Result<usize, ProviderError> {
    let target = format!("aws account {}", spec.account);
    let (path, name) = path_and_name(&spec.role_arn);
    let trust = spec.trust.to_string();
    let policy = spec.policy.to_string();
    let mut calls = 0;
    let audit = |call: &str, ok: bool| {
        tracing::info!(target: "audit", who, target = %target, call, object = %spec.role_arn,
            outcome = if ok { "ok" } else { "failed" }, "iam write");
    };
    let created = changes.contains(&RoleChange::Create);
    for c in changes {
        calls += 1;
        match c {
            RoleChange::Create => {
                let r = iam
                    .create_role()
                    .role_name(&name)
                    .path(&path)
                    .assume_role_policy_document(&trust)
                    .description(
                        "intentwall: keeps this account's security groups in line with the intents",
                    )
                    .send()
                    .await;
                audit("iam:CreateRole", r.is_ok());
                r.map_err(|e| error::classify(&target, "iam:CreateRole", &e))?;
            }
            RoleChange::Trust(_) if created => calls -= 1, // set by CreateRole
            RoleChange::Trust(_) => {
                let r = iam
                    .update_assume_role_policy()
                    .role_name(&name)
                    .policy_document(&trust)
                    .send()
                    .await;
                audit("iam:UpdateAssumeRolePolicy", r.is_ok());
                r.map_err(|e| error::classify(&target, "iam:UpdateAssumeRolePolicy", &e))?;
            }
            RoleChange::Policy(_) => {
                let r = iam
                    .put_role_policy()
                    .role_name(&name)
                    .policy_name(POLICY_NAME)
                    .policy_document(&policy)
                    .send()
                    .await;
                audit("iam:PutRolePolicy", r.is_ok());
                r.map_err(|e| error::classify(&target, "iam:PutRolePolicy", &e))?;
            }
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_split_into_path_and_name() {
        assert_eq!(
            path_and_name("arn:aws:iam::111122223333:role/intentwall"),
            ("/".into(), "intentwall".into())
        );
        assert_eq!(
            path_and_name("arn:aws:iam::111122223333:role/ops/net/intentwall"),
            ("/ops/net/".into(), "intentwall".into())
        );
    }

    #[test]
    fn documents_are_read_url_encoded_or_not_and_compared_by_meaning() {
        let p = trust_policy("arn:aws:iam::111122223333:role/job", Some("x-1"));
        let encoded: String = p
            .to_string()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        assert_eq!(document(&encoded), Some(p.clone()));
        assert_eq!(document(&p.to_string()), Some(p.clone()));
        let mut listed = p.clone();
        listed["Statement"][0]["Action"] = json!(["sts:AssumeRole"]);
        assert!(same(&p, &listed));
        assert!(!same(
            &p,
            &trust_policy("arn:aws:iam::111122223333:role/job", None)
        ));
    }
}
