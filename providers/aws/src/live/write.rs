//! Writing one target's change set to EC2, make-before-break, one audit event per mutating
//! call.
//!
//! Order: groups whose immutable fields change are replaced first (AWS allows one group of a
//! name per VPC, so that one case must break before it makes; every rule the group must hold
//! is authorised again on the new one); new groups; new rules (one `IpPermission` per call, so
//! a failure names the rule); updates (group tags; rule descriptions through
//! ModifySecurityGroupRules); revocations; group deletions. Then the creation defaults: a new
//! group comes with allow-all egress, which is revoked in the same run unless the intent
//! wants it. Writes are idempotent, so a re-run after a crash converges: a rule that is
//! already there, or already gone, counts as done.
//!
//! The responses of writes are never trusted for state: the caller observes the target again
//! and requires the result to equal what the changes meant.

use super::{doc, error, groups_of, observe_with, Ec2, Placement};
use crate::model::{
    Dir, Peer, Ports, Proto, Rule, KIND_PL, KIND_RULE, KIND_SG, TAG_MANAGED_KEY, TAG_MANAGED_VALUE,
};
use crate::snapshot::permission_from_body;
use aws_sdk_ec2::types::{
    Filter, ResourceType, SecurityGroupRuleRequest, SecurityGroupRuleUpdate, Tag, TagSpecification,
};
use intentwall_contract::live::{ErrorKind, Op, ProviderError, Report};
use intentwall_contract::{DeploymentIntent, NativeObject, NativeState};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Write the ops to the target, then converge what the cloud added to groups made here.
/// `observed` is the state read right before (for group ids); `meant` the state the ops mean.
pub async fn execute(
    ec2: &Ec2,
    p: &Placement,
    intent: &DeploymentIntent,
    observed: &NativeState,
    ops: &[Op<'_>],
    meant: &NativeState,
) -> Result<Report, ProviderError> {
    let mut w = Writer {
        ec2,
        ids: BTreeMap::new(),
        pl_ids: BTreeMap::new(),
        made: BTreeSet::new(),
        calls: 0,
    };
    for o in &observed.objects {
        if o.kind == KIND_SG && o.key.starts_with("sg:") {
            if let (Some(name), Some(id)) = (name_of(o), assigned_id(o)) {
                w.ids.insert(name, id);
            }
        }
        // rules name a prefix list the observation read by its name: calls need its id
        if o.kind == KIND_PL {
            let body = o.body.value();
            if let (Some(name), Some(id)) = (
                body.get("PrefixListName").and_then(Value::as_str),
                body.get("PrefixListId").and_then(Value::as_str),
            ) {
                w.pl_ids.insert(name.to_string(), id.to_string());
            }
        }
    }
    // replaced groups first (see the module docs)
    let mut replaced = Vec::new();
    for op in ops {
        if let Op::Replace { before, after } = op {
            if before.kind == KIND_SG {
                w.delete_group(before).await?;
                w.create_group(after).await?;
                replaced.push(after.key.clone());
            }
        }
    }
    for op in ops {
        match op {
            Op::Create(o) if o.kind == KIND_SG => w.create_group(o).await?,
            _ => {}
        }
    }
    let mut authorised = BTreeSet::new();
    for op in ops {
        match op {
            Op::Create(o) if o.kind == KIND_RULE => {
                w.authorize(o).await?;
                authorised.insert(o.key.clone());
            }
            // a rule's key holds all but its description, so this is rare: break, then make
            Op::Replace { before, after } if before.kind == KIND_RULE => {
                w.revoke(before).await?;
                w.authorize(after).await?;
                authorised.insert(after.key.clone());
            }
            _ => {}
        }
    }
    for o in &meant.objects {
        let under_replaced = o.parent.as_ref().is_some_and(|k| replaced.contains(k));
        if o.kind == KIND_RULE && under_replaced && !authorised.contains(&o.key) {
            w.authorize(o).await?;
        }
    }
    for op in ops {
        if let Op::Update { before, after } = op {
            match before.kind.as_str() {
                KIND_SG => w.retag(before, after).await?,
                KIND_RULE => w.describe_rule(before, after).await?,
                _ => {}
            }
        }
    }
    for op in ops {
        if let Op::Delete(o) = op {
            if o.kind == KIND_RULE {
                w.revoke(o).await?;
            }
        }
    }
    for op in ops {
        if let Op::Delete(o) = op {
            if o.kind == KIND_SG {
                w.delete_group(o).await?;
            }
        }
    }
    if !w.made.is_empty() {
        w.converge_defaults(p, intent, meant).await?;
    }
    Ok(Report { calls: w.calls })
}

struct Writer<'a> {
    ec2: &'a Ec2,
    /// Group name -> id, for the groups of the deployment's VPC (and those made here).
    ids: BTreeMap<String, String>,
    /// Prefix list name -> id, for the lists the observed rules name.
    pl_ids: BTreeMap<String, String>,
    /// Keys of groups created in this run.
    made: BTreeSet<String>,
    calls: usize,
}

fn name_of(o: &NativeObject) -> Option<String> {
    o.body
        .value()
        .get("GroupName")?
        .as_str()
        .map(str::to_string)
}

fn assigned_id(o: &NativeObject) -> Option<String> {
    o.assigned
        .as_ref()?
        .value()
        .get("GroupId")?
        .as_str()
        .map(str::to_string)
}

fn rule_of(o: &NativeObject) -> Option<(String, Rule)> {
    let group = o.parent.as_deref()?.strip_prefix("sg:")?.to_string();
    let rule = Rule::from_body(&group, &o.body.value())?;
    Some((group, rule))
}

fn invalid(target: &str, what: String) -> ProviderError {
    ProviderError::new(ErrorKind::Invalid, target, "plan", what)
}

impl Writer<'_> {
    fn target(&self) -> &str {
        &self.ec2.target
    }

    /// One audit event per mutating call, made or failed.
    fn audit(&mut self, call: &str, object: &str, before: &str, after: &str, ok: bool) {
        self.calls += 1;
        tracing::info!(
            target: "audit",
            who = %self.ec2.who,
            target = %self.ec2.target,
            call,
            object,
            before,
            after,
            outcome = if ok { "ok" } else { "failed" },
            "cloud write"
        );
    }

    /// A write's outcome: one audit event, then the cloud's error classified.
    fn written<T, E>(
        &mut self,
        call: &str,
        (object, before, after): (&str, &str, &str),
        r: Result<T, aws_sdk_ec2::error::SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
    ) -> Result<T, ProviderError>
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.audit(call, object, before, after, r.is_ok());
        r.map_err(|e| error::classify(self.target(), call, &e))
    }

    fn group_id(&self, group: &str) -> Result<String, ProviderError> {
        self.ids.get(group).cloned().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                self.target(),
                "plan",
                format!("security group {group} is not in the VPC"),
            )
        })
    }

    async fn create_group(&mut self, o: &NativeObject) -> Result<(), ProviderError> {
        let body = o.body.value();
        let name =
            name_of(o).ok_or_else(|| invalid(self.target(), format!("{}: no GroupName", o.key)))?;
        let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let call = "ec2:CreateSecurityGroup";
        let r = self
            .ec2
            .client
            .create_security_group()
            .group_name(&name)
            .set_description(s("Description"))
            .set_vpc_id(s("VpcId"))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .set_tags(Some(doc::body_tags(&body)))
                    .build(),
            )
            .send()
            .await;
        let out = self.written(call, (&o.key, "", &body.to_string()), r)?;
        let id = out.group_id().unwrap_or_default().to_string();
        self.ids.insert(name, id);
        self.made.insert(o.key.clone());
        Ok(())
    }

    async fn delete_group(&mut self, o: &NativeObject) -> Result<(), ProviderError> {
        let name = name_of(o).unwrap_or_default();
        let Some(id) = assigned_id(o).or_else(|| self.ids.get(&name).cloned()) else {
            return Ok(()); // never created: nothing to delete
        };
        let call = "ec2:DeleteSecurityGroup";
        let r = self
            .ec2
            .client
            .delete_security_group()
            .group_id(&id)
            .send()
            .await;
        self.audit(call, &o.key, &o.body.to_string(), "", r.is_ok());
        match r {
            Ok(_) => {
                self.ids.remove(&name);
                Ok(())
            }
            Err(e) => {
                let mut err = error::classify(self.target(), call, &e);
                match err.kind {
                    ErrorKind::NotFound => Ok(()),
                    ErrorKind::InUse => {
                        err.message.push_str(&self.users_of(&id).await);
                        Err(err)
                    }
                    _ => Err(err),
                }
            }
        }
    }

    /// What still uses a group, for a refused delete: groups whose rules name it and network
    /// interfaces that carry it (best effort: a failure to list says so).
    async fn users_of(&self, id: &str) -> String {
        let mut users = Vec::new();
        for f in ["ip-permission.group-id", "egress.ip-permission.group-id"] {
            match groups_of(self.ec2, vec![Filter::builder().name(f).values(id).build()]).await {
                Ok(gs) => users.extend(gs.iter().map(|g| {
                    format!(
                        "security group {} ({})",
                        g.group_name().unwrap_or("?"),
                        g.group_id().unwrap_or("?")
                    )
                })),
                Err(e) => users.push(format!("(cannot list referencing groups: {e})")),
            }
        }
        match self
            .ec2
            .client
            .describe_network_interfaces()
            .filters(Filter::builder().name("group-id").values(id).build())
            .send()
            .await
        {
            Ok(out) => users.extend(out.network_interfaces().iter().map(|n| {
                format!(
                    "network interface {}",
                    n.network_interface_id().unwrap_or("?")
                )
            })),
            Err(e) => users.push(format!(
                "(cannot list network interfaces: {})",
                error::classify(self.target(), "ec2:DescribeNetworkInterfaces", &e)
            )),
        }
        users.sort();
        users.dedup();
        if users.is_empty() {
            String::new()
        } else {
            format!("; still used by: {}", users.join(", "))
        }
    }

    /// The rule as one `IpPermission`, its peer group resolved to an id.
    fn permission(
        &self,
        o: &NativeObject,
    ) -> Result<(String, Dir, aws_sdk_ec2::types::IpPermission), ProviderError> {
        let (group, rule) = rule_of(o).ok_or_else(|| {
            invalid(
                self.target(),
                format!("{}: not a rule of a group of the VPC", o.key),
            )
        })?;
        let id = self.group_id(&group)?;
        if let Peer::GroupName(peer) = &rule.peer {
            self.group_id(peer)?;
        }
        let perm = permission_from_body(&rule, &self.ids, &self.pl_ids);
        Ok((id, rule.dir, doc::to_sdk(&perm)))
    }

    async fn authorize(&mut self, o: &NativeObject) -> Result<(), ProviderError> {
        let (id, dir, perm) = self.permission(o)?;
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroupRule)
            .tags(
                Tag::builder()
                    .key(TAG_MANAGED_KEY)
                    .value(TAG_MANAGED_VALUE)
                    .build(),
            )
            .build();
        let (call, r) = match dir {
            Dir::Ingress => (
                "ec2:AuthorizeSecurityGroupIngress",
                self.ec2
                    .client
                    .authorize_security_group_ingress()
                    .group_id(&id)
                    .ip_permissions(perm)
                    .tag_specifications(tags)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        error::classify(&self.ec2.target, "ec2:AuthorizeSecurityGroupIngress", &e)
                    }),
            ),
            Dir::Egress => (
                "ec2:AuthorizeSecurityGroupEgress",
                self.ec2
                    .client
                    .authorize_security_group_egress()
                    .group_id(&id)
                    .ip_permissions(perm)
                    .tag_specifications(tags)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        error::classify(&self.ec2.target, "ec2:AuthorizeSecurityGroupEgress", &e)
                    }),
            ),
        };
        self.audit(call, &o.key, "", &o.body.to_string(), r.is_ok());
        match r {
            // already there: the cloud's own default (a new group's allow-all egress) or a
            // re-run after a crash; AWS matches rules without their descriptions, so set the
            // description the rule must carry
            Err(e) if e.kind == ErrorKind::Conflict => self.describe_rule(o, o).await,
            r => r,
        }
    }

    async fn revoke(&mut self, o: &NativeObject) -> Result<(), ProviderError> {
        let (group, rule) = rule_of(o).ok_or_else(|| {
            invalid(
                self.target(),
                format!("{}: not a rule of a group of the VPC", o.key),
            )
        })?;
        let Some(id) = self.ids.get(&group).cloned() else {
            return Ok(()); // its group is gone, and the rule with it
        };
        let perm = doc::to_sdk(&permission_from_body(&rule, &self.ids, &self.pl_ids));
        let (call, r) = match rule.dir {
            Dir::Ingress => (
                "ec2:RevokeSecurityGroupIngress",
                self.ec2
                    .client
                    .revoke_security_group_ingress()
                    .group_id(&id)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        error::classify(&self.ec2.target, "ec2:RevokeSecurityGroupIngress", &e)
                    }),
            ),
            Dir::Egress => (
                "ec2:RevokeSecurityGroupEgress",
                self.ec2
                    .client
                    .revoke_security_group_egress()
                    .group_id(&id)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        error::classify(&self.ec2.target, "ec2:RevokeSecurityGroupEgress", &e)
                    }),
            ),
        };
        self.audit(call, &o.key, &o.body.to_string(), "", r.is_ok());
        match r {
            // already gone: done
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// Tags of a group: set what is new or changed, remove what went.
    async fn retag(
        &mut self,
        before: &NativeObject,
        after: &NativeObject,
    ) -> Result<(), ProviderError> {
        let id = match assigned_id(before) {
            Some(id) => id,
            None => self.group_id(&name_of(before).unwrap_or_default())?,
        };
        let map = |o: &NativeObject| -> BTreeMap<String, String> {
            doc::body_tags(&o.body.value())
                .into_iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect()
        };
        let (b, a) = (map(before), map(after));
        let set: Vec<Tag> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let gone: Vec<Tag> = b
            .keys()
            .filter(|k| !a.contains_key(*k))
            .map(|k| Tag::builder().key(k).build())
            .collect();
        if !set.is_empty() {
            let call = "ec2:CreateTags";
            let r = self
                .ec2
                .client
                .create_tags()
                .resources(&id)
                .set_tags(Some(set))
                .send()
                .await;
            let change = (before.body.to_string(), after.body.to_string());
            self.written(call, (&before.key, &change.0, &change.1), r)?;
        }
        if !gone.is_empty() {
            let call = "ec2:DeleteTags";
            let r = self
                .ec2
                .client
                .delete_tags()
                .resources(&id)
                .set_tags(Some(gone))
                .send()
                .await;
            let change = (before.body.to_string(), after.body.to_string());
            self.written(call, (&before.key, &change.0, &change.1), r)?;
        }
        Ok(())
    }

    /// A rule's description, changed in place by its rule id (found by matching the rule).
    async fn describe_rule(
        &mut self,
        before: &NativeObject,
        after: &NativeObject,
    ) -> Result<(), ProviderError> {
        let (group, rule) = rule_of(after).ok_or_else(|| {
            invalid(
                self.target(),
                format!("{}: not a rule of a group of the VPC", after.key),
            )
        })?;
        let id = self.group_id(&group)?;
        let rule_id = self.rule_id(&id, &rule).await?;
        let perm = permission_from_body(&rule, &self.ids, &self.pl_ids);
        let one = |list: &str, k: &str| -> Option<String> {
            perm.get(list)?
                .as_array()?
                .first()?
                .get(k)?
                .as_str()
                .map(str::to_string)
        };
        let req = SecurityGroupRuleRequest::builder()
            .ip_protocol(rule.perm.proto.api_text())
            // "all ports" is -1/-1 in this API (omitting them is refused)
            .from_port(rule.perm.ports.api().map_or(-1, |(a, _)| a as i32))
            .to_port(rule.perm.ports.api().map_or(-1, |(_, b)| b as i32))
            .set_cidr_ipv4(one("IpRanges", "CidrIp"))
            .set_cidr_ipv6(one("Ipv6Ranges", "CidrIpv6"))
            .set_prefix_list_id(one("PrefixListIds", "PrefixListId"))
            .set_referenced_group_id(one("UserIdGroupPairs", "GroupId"))
            .set_description(rule.description.clone())
            .build();
        let call = "ec2:ModifySecurityGroupRules";
        let r = self
            .ec2
            .client
            .modify_security_group_rules()
            .group_id(&id)
            .security_group_rules(
                SecurityGroupRuleUpdate::builder()
                    .security_group_rule_id(rule_id)
                    .security_group_rule(req)
                    .build(),
            )
            .send()
            .await;
        let change = (before.body.to_string(), after.body.to_string());
        self.written(call, (&after.key, &change.0, &change.1), r)
            .map(|_| ())
    }

    /// The `sgr-` id of the rule of group `id` equal to `rule` but for its description.
    async fn rule_id(&self, id: &str, rule: &Rule) -> Result<String, ProviderError> {
        let call = "ec2:DescribeSecurityGroupRules";
        let mut pages = self
            .ec2
            .client
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(id).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::classify(self.target(), call, &e))?;
            for r in page.security_group_rules() {
                let dir = if r.is_egress() == Some(true) {
                    Dir::Egress
                } else {
                    Dir::Ingress
                };
                let Ok(proto) = Proto::parse(r.ip_protocol().unwrap_or("-1")) else {
                    continue;
                };
                let Ok(ports) = Ports::from_api(
                    proto,
                    r.from_port().map(i64::from),
                    r.to_port().map(i64::from),
                ) else {
                    continue;
                };
                let peer_ok = match &rule.peer {
                    Peer::CidrIp(c) => r.cidr_ipv4() == Some(c.as_str()),
                    Peer::CidrIpv6(c) => r.cidr_ipv6() == Some(c.as_str()),
                    Peer::PrefixListId(p) => r.prefix_list_id() == Some(p.as_str()),
                    Peer::GroupName(n) => {
                        r.referenced_group_info().and_then(|g| g.group_id())
                            == self.ids.get(n).map(String::as_str)
                    }
                    Peer::GroupId { id, .. } => {
                        r.referenced_group_info().and_then(|g| g.group_id()) == Some(id.as_str())
                    }
                    Peer::PrefixListName(_) => false,
                };
                if dir == rule.dir
                    && proto == rule.perm.proto
                    && ports == rule.perm.ports
                    && peer_ok
                {
                    if let Some(rid) = r.security_group_rule_id() {
                        return Ok(rid.to_string());
                    }
                }
            }
        }
        Err(ProviderError::new(
            ErrorKind::NotFound,
            self.target(),
            call,
            format!("no rule of {id} matches {}", rule.summary()),
        ))
    }

    /// Revoke what the cloud put into groups made in this run that the intent does not want
    /// (a new group's allow-all egress).
    async fn converge_defaults(
        &mut self,
        p: &Placement,
        intent: &DeploymentIntent,
        meant: &NativeState,
    ) -> Result<(), ProviderError> {
        let now = observe_with(self.ec2, p, intent).await?;
        let wanted: BTreeSet<&str> = meant.objects.iter().map(|o| o.key.as_str()).collect();
        let extra: Vec<NativeObject> = now
            .state
            .objects
            .into_iter()
            .filter(|o| {
                o.kind == KIND_RULE
                    && o.parent.as_ref().is_some_and(|k| self.made.contains(k))
                    && !wanted.contains(o.key.as_str())
            })
            .collect();
        for o in &extra {
            tracing::debug!(target: "intentwall::aws", key = %o.key, "revoking a creation default");
            self.revoke(o).await?;
        }
        Ok(())
    }
}
