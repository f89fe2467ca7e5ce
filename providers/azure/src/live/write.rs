//! Writing one target's change set to ARM, make-before-break, one audit event per mutating
//! call.
//!
//! Order: NSGs to create; the `iw-<group>` ASGs the new or changed rules name, created where
//! missing (a rule naming an ASG that does not exist is refused by ARM); new and changed rules;
//! deleted rules; the rules that waited for a priority (below). NSGs are never deleted.
//!
//! **Priorities.** ARM refuses a rule whose priority and direction another rule of the NSG
//! holds (`SecurityRuleConflict`), so a rule whose new priority is still held (by a rule being
//! deleted, or moved later in the run) is first written at a free priority, nearest its own,
//! and moved to its place once that is free. No rule is ever absent in between: every move is
//! a PUT of a rule that exists, and a rule is deleted only after its successor is written.
//!
//! **Concurrency.** Every write carries the precondition of what was read right before
//! (ARM etags): a rule or NSG to create with `If-None-Match: *`, a rule to change or delete with
//! `If-Match` of its observed etag. A concurrent edit between that read and the write makes
//! ARM answer 412, and the target stops there with nothing overwritten.
//!
//! **Long-running operations.** A write answered with `Azure-AsyncOperation` (or 202 with
//! `Location`) is polled, honouring `Retry-After`, until it succeeds, fails or times out;
//! a failed operation is the failure of its call.
//!
//! Writes are idempotent (a PUT of a rule's whole body, a DELETE of what is already gone), so
//! a re-run after a crash converges. The responses of writes are never trusted for state: the
//! caller observes the target again and requires the result to equal what the changes meant.

use super::error::{classify, kind_of};
use super::wire::{Condition, CONDITION};
use super::{setting, Conn, Placement, CALL_TIMEOUT};
use crate::model::{AzRule, Dir};
use crate::{asg_id, nsg_name, KIND_NSG, KIND_RULE};
use azure_core::headers::{Headers, AZURE_ASYNCOPERATION, LOCATION, RETRY_AFTER};
use azure_core::{Context, Method, Request, Url};
use azure_mgmt_network::models;
use intentwall_contract::live::{ErrorKind, Op, ProviderError, Report};
use intentwall_contract::{DeploymentIntent, NativeObject, NativeState};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The API version of azure_mgmt_network's default tag (package-2024-03).
const API_VERSION: &str = "2024-03-01";

/// How long a long-running operation may take before the call is reported unavailable.
const LRO_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest wait between two polls, whatever `Retry-After` says.
const MAX_POLL_WAIT: Duration = Duration::from_secs(30);

/// Write the ops to the target. `observed` is the state read right before (etags, the
/// priorities rules hold); `_meant` the state the ops mean (checked by the caller).
pub async fn execute(
    conn: &Conn,
    target: &str,
    p: &Placement,
    intent: &DeploymentIntent,
    observed: &NativeState,
    ops: &[Op<'_>],
    _meant: &NativeState,
) -> Result<Report, ProviderError> {
    let mut w = Writer {
        conn,
        target,
        sub: setting(target, p, "subscription")?.to_string(),
        rg: setting(target, p, "resource_group")?.to_string(),
        location: setting(target, p, "location")?.to_string(),
        ours: nsg_name(intent),
        calls: 0,
        etags: HashMap::new(),
        slots: HashMap::new(),
        asgs: BTreeSet::new(),
    };
    for o in observed.objects.iter().filter(|o| o.kind == KIND_RULE) {
        let Some(r) = w.rule_of(o) else { continue };
        let id = (r.rg.to_ascii_lowercase(), r.nsg.to_ascii_lowercase());
        if let Some(etag) = o.raw.as_ref().and_then(|b| {
            b.value()
                .get("etag")
                .and_then(Value::as_str)
                .map(str::to_string)
        }) {
            w.etags
                .insert((id.0.clone(), id.1.clone(), r.rule.name.clone()), etag);
        }
        w.slots
            .insert(w.slot(&r, r.rule.priority), r.rule.name.clone());
    }
    // the ASGs of our groups, by the lowercased id rules carry
    let asg_ids: BTreeMap<String, String> = intent
        .groups
        .keys()
        .map(|g| (asg_id(intent, g).to_ascii_lowercase(), format!("iw-{g}")))
        .collect();

    for op in ops {
        if let Op::Create(o) = op {
            if o.kind == KIND_NSG {
                w.create_nsg(o).await?;
            }
        }
    }
    // rules to write: (object, observed rule if any)
    let mut writes: Vec<(&NativeObject, Option<&NativeObject>)> = Vec::new();
    for op in ops {
        match op {
            Op::Create(o) if o.kind == KIND_RULE => writes.push((o, None)),
            Op::Update { before, after } | Op::Replace { before, after }
                if after.kind == KIND_RULE =>
            {
                writes.push((after, Some(before)))
            }
            _ => {}
        }
    }
    let mut placed = Vec::new();
    for (after, _) in &writes {
        let r = w.rule_of(after).ok_or_else(|| invalid(target, after))?;
        for id in r.rule.src.asgs.iter().chain(&r.rule.dst.asgs) {
            if let Some(name) = asg_ids.get(id) {
                w.ensure_asg(name).await?;
            }
        }
        placed.push(r);
    }
    // every priority some write wants: never handed out as a temporary one
    let wanted: BTreeSet<(String, String, Dir, u32)> =
        placed.iter().map(|r| w.slot(r, r.rule.priority)).collect();
    let mut waiting: Vec<(Placed, &NativeObject, u32)> = Vec::new();
    for (r, (after, before)) in placed.into_iter().zip(&writes) {
        let old = before
            .and_then(|b| w.rule_of(b))
            .map(|b| w.slot(&b, b.rule.priority));
        let cond = w.condition(&r);
        match w.slots.get(&w.slot(&r, r.rule.priority)) {
            Some(holder) if holder != &r.rule.name => {
                let temp = w.free_priority(&r, &wanted).ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::Quota,
                        target,
                        "SecurityRules_CreateOrUpdate",
                        format!(
                            "rule {} needs priority {} ({}), held by {holder}, and no priority \
                             of the NSG is free to wait at",
                            r.rule.name,
                            r.rule.priority,
                            r.rule.dir.as_str()
                        ),
                    )
                })?;
                let mut at = r.rule.clone();
                at.priority = temp;
                tracing::debug!(target: "intentwall::azure", rule = %r.rule.name, want = r.rule.priority, temp, holder = %holder, "priority held: writing at a free one first");
                w.put_rule(
                    &r,
                    &at,
                    cond,
                    &after.key,
                    &before.map(|b| b.body.to_string()).unwrap_or_default(),
                )
                .await?;
                if let Some(old) = old {
                    w.slots.remove(&old);
                }
                let s = w.slot(&r, temp);
                w.slots.insert(s, r.rule.name.clone());
                waiting.push((r, after, temp));
            }
            _ => {
                w.put_rule(
                    &r,
                    &r.rule,
                    cond,
                    &after.key,
                    &before.map(|b| b.body.to_string()).unwrap_or_default(),
                )
                .await?;
                if let Some(old) = old {
                    w.slots.remove(&old);
                }
                let s = w.slot(&r, r.rule.priority);
                w.slots.insert(s, r.rule.name.clone());
            }
        }
    }
    for op in ops {
        if let Op::Delete(o) = op {
            if o.kind == KIND_RULE {
                w.delete_rule(o).await?;
            }
        }
    }
    // the rules that waited: each moves once its priority is free; one still held after a
    // pass with no move is written anyway, so ARM's error names the conflict
    while !waiting.is_empty() {
        let before = waiting.len();
        let mut still = Vec::new();
        for (r, after, temp) in std::mem::take(&mut waiting) {
            let free = w
                .slots
                .get(&w.slot(&r, r.rule.priority))
                .is_none_or(|h| h == &r.rule.name);
            if free {
                w.move_to_place(&r, after, temp).await?;
            } else {
                still.push((r, after, temp));
            }
        }
        if still.len() == before {
            for (r, after, temp) in still {
                w.move_to_place(&r, after, temp).await?;
            }
            break;
        }
        waiting = still;
    }
    for op in ops {
        if let Op::Delete(o) = op {
            if o.kind == KIND_NSG {
                w.delete_nsg(o)?;
            }
        }
    }
    Ok(Report { calls: w.calls })
}

/// A rule with the NSG it is in.
#[derive(Debug, Clone)]
struct Placed {
    rg: String,
    nsg: String,
    rule: AzRule,
}

struct Writer<'a> {
    conn: &'a Conn,
    target: &'a str,
    sub: String,
    rg: String,
    location: String,
    /// The NSG the deployment manages.
    ours: String,
    calls: usize,
    /// (rg, nsg, rule) lowercased but the rule -> the etag a write must match.
    etags: HashMap<(String, String, String), String>,
    /// (rg, nsg, direction, priority) -> the rule holding it.
    slots: HashMap<(String, String, Dir, u32), String>,
    /// ASGs known to exist.
    asgs: BTreeSet<String>,
}

fn invalid(target: &str, o: &NativeObject) -> ProviderError {
    ProviderError::new(
        ErrorKind::Invalid,
        target,
        "plan",
        format!(
            "{}: not a security rule of an NSG of the resource group",
            o.key
        ),
    )
}

/// `Retry-After` (seconds) of a poll answer, bounded; 1 s when absent.
fn poll_wait(headers: &Headers) -> Duration {
    headers
        .get_optional_str(&RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1))
        .min(MAX_POLL_WAIT)
}

impl Writer<'_> {
    /// One audit event per mutating call, made or failed.
    fn audit(&mut self, call: &str, object: &str, before: &str, after: &str, ok: bool) {
        self.calls += 1;
        tracing::info!(
            target: "audit",
            who = %self.conn.who,
            target = %self.target,
            call,
            object,
            before,
            after,
            outcome = if ok { "ok" } else { "failed" },
            "cloud write"
        );
    }

    fn slot(&self, r: &Placed, priority: u32) -> (String, String, Dir, u32) {
        (
            r.rg.to_ascii_lowercase(),
            r.nsg.to_ascii_lowercase(),
            r.rule.dir,
            priority,
        )
    }

    /// The NSG (resource group, name) a rule object is in, and the rule.
    fn rule_of(&self, o: &NativeObject) -> Option<Placed> {
        let parent = o.parent.as_deref()?.strip_prefix("nsg:")?;
        let (rg, nsg) = match parent.split_once('/') {
            Some((rg, nsg)) => (rg.to_string(), nsg.to_string()),
            None => (self.rg.clone(), parent.to_string()),
        };
        let rule = AzRule::from_json(&o.body.value(), &nsg).ok()?;
        Some(Placed { rg, nsg, rule })
    }

    /// The precondition of writing `r`: its observed etag, or "must not exist".
    fn condition(&self, r: &Placed) -> Condition {
        match self.etags.get(&(
            r.rg.to_ascii_lowercase(),
            r.nsg.to_ascii_lowercase(),
            r.rule.name.clone(),
        )) {
            Some(e) => Condition::IfMatch(e.clone()),
            None => Condition::IfNoneMatch,
        }
    }

    /// A priority of the rule's NSG and direction no rule holds and no write wants, nearest
    /// the rule's own.
    fn free_priority(
        &self,
        r: &Placed,
        wanted: &BTreeSet<(String, String, Dir, u32)>,
    ) -> Option<u32> {
        let p = r.rule.priority as i64;
        (1..=4000i64)
            .flat_map(|d| [p + d, p - d])
            .filter(|c| (100..=4096).contains(c))
            .map(|c| c as u32)
            .find(|c| {
                let s = self.slot(r, *c);
                !self.slots.contains_key(&s) && !wanted.contains(&s)
            })
    }

    /// Run one call under a precondition and the call timeout; its raw answer.
    async fn send<F>(
        &self,
        call: &str,
        cond: Option<Condition>,
        fut: F,
    ) -> Result<azure_core::Response, ProviderError>
    where
        F: Future<Output = azure_core::Result<azure_core::Response>>,
    {
        let r = match cond {
            Some(c) => tokio::time::timeout(CALL_TIMEOUT, CONDITION.scope(c, fut)).await,
            None => tokio::time::timeout(CALL_TIMEOUT, fut).await,
        };
        match r {
            Ok(r) => r.map_err(|e| classify(self.target, call, &e)),
            Err(_) => Err(ProviderError::new(
                ErrorKind::Unavailable,
                self.target,
                call,
                "timed out",
            )),
        }
    }

    /// A write to the resource at `rest` of resource group `rg`: sent under `cond`, its
    /// long-running operation waited for; the body it answered. A refusal of the kind
    /// `settled` means the write has nothing to do (`None`): the ASG already exists, the rule
    /// is already gone. Only the call's own answer counts so: a failed operation stays failed.
    async fn write<F>(
        &self,
        call: &str,
        cond: Option<Condition>,
        (rg, rest): (&str, &str),
        settled: Option<ErrorKind>,
        fut: F,
    ) -> Result<Option<Value>, ProviderError>
    where
        F: Future<Output = azure_core::Result<azure_core::Response>>,
    {
        match self.send(call, cond, fut).await {
            Ok(resp) => self
                .settle(call, &self.path(rg, rest), resp)
                .await
                .map(Some),
            Err(e) if Some(e.kind) == settled => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A request body as the SDK's model (a body it cannot take is ours to fix, not ARM's).
    fn model<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        body: &Value,
    ) -> Result<T, ProviderError> {
        serde_json::from_value(body.clone())
            .map_err(|e| ProviderError::new(ErrorKind::Invalid, self.target, call, e.to_string()))
    }

    /// An authenticated GET through the SDK's pipeline (retries, transport): status, headers,
    /// body.
    async fn get(&self, call: &str, url: &Url) -> Result<(u16, Headers, Value), ProviderError> {
        let scopes: Vec<&str> = self.conn.scopes.iter().map(String::as_str).collect();
        let token = self
            .conn
            .credential
            .get_token(&scopes)
            .await
            .map_err(|e| classify(self.target, call, &e))?;
        let mut req = Request::new(url.clone(), Method::Get);
        req.insert_header("authorization", format!("Bearer {}", token.token.secret()));
        let r = self
            .send(
                call,
                None,
                self.conn.pipeline.send(&Context::new(), &mut req),
            )
            .await?;
        let st = u16::from(r.status());
        let headers = r.headers().clone();
        let bytes = r
            .into_body()
            .collect()
            .await
            .map_err(|e| classify(self.target, call, &e))?;
        Ok((
            st,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// The answer of a write to `resource` (its ARM path), its long-running operation waited
    /// for; the body it answered.
    async fn settle(
        &self,
        call: &str,
        resource: &str,
        resp: azure_core::Response,
    ) -> Result<Value, ProviderError> {
        let status = u16::from(resp.status());
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| classify(self.target, call, &e))?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (url, by_status) = match (
            headers.get_optional_str(&AZURE_ASYNCOPERATION),
            headers
                .get_optional_str(&LOCATION)
                .filter(|_| status == 202),
        ) {
            (Some(u), _) => (u.to_string(), false),
            (None, Some(u)) => (u.to_string(), true),
            _ => return Ok(body),
        };
        let url = Url::parse(&url).map_err(|e| {
            ProviderError::new(
                ErrorKind::Other,
                self.target,
                call,
                format!("operation URL {url}: {e}"),
            )
        })?;
        let deadline = Instant::now() + LRO_TIMEOUT;
        let mut wait = poll_wait(&headers);
        loop {
            tokio::time::sleep(wait).await;
            // a resource's GET carries no Retry-After: the operation's last one stands
            let done = if self.conn.poll_resources.load(Ordering::Relaxed) {
                self.resource_state(call, resource).await?
            } else {
                match self.get(call, &url).await {
                    Ok((st, h, v)) => {
                        wait = poll_wait(&h);
                        if by_status {
                            st != 202
                        } else {
                            match v.get("status").and_then(Value::as_str) {
                                Some("Succeeded") => true,
                                Some(s @ ("Failed" | "Canceled" | "Cancelled")) => {
                                    let code = v["error"]["code"].as_str().unwrap_or("");
                                    let msg = v["error"]["message"].as_str().unwrap_or("");
                                    return Err(ProviderError::new(
                                        kind_of(code, None),
                                        self.target,
                                        call,
                                        format!("the operation {s}: {code}: {msg}"),
                                    ));
                                }
                                _ => false,
                            }
                        }
                    }
                    Err(e) if e.kind == ErrorKind::Denied => {
                        tracing::info!(target: "intentwall::azure", error = %e, "operation status not readable: polling the resources instead");
                        self.conn.poll_resources.store(true, Ordering::Relaxed);
                        self.resource_state(call, resource).await?
                    }
                    Err(e) => return Err(e),
                }
            };
            if done {
                return Ok(body);
            }
            if Instant::now() + wait > deadline {
                return Err(ProviderError::new(
                    ErrorKind::Unavailable,
                    self.target,
                    call,
                    format!("the operation did not finish within {LRO_TIMEOUT:?}"),
                ));
            }
        }
    }

    /// Polling the resource a write went to: done when it is gone (a delete) or its
    /// `provisioningState` is final (a failed one is the call's failure).
    async fn resource_state(&self, call: &str, resource: &str) -> Result<bool, ProviderError> {
        let mut url = self.conn.endpoint.clone();
        url.set_path(resource);
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        match self.get(call, &url).await {
            Ok((_, _, v)) => match v["properties"]["provisioningState"].as_str() {
                Some("Succeeded") | None => Ok(true),
                Some(s @ ("Failed" | "Canceled")) => Err(ProviderError::new(
                    ErrorKind::Other,
                    self.target,
                    call,
                    format!("the resource's provisioning state is {s}"),
                )),
                Some(_) => Ok(false),
            },
            Err(e) if e.kind == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The ARM path of a resource of the placement's resource group.
    fn path(&self, rg: &str, rest: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Network/{rest}",
            self.sub
        )
    }

    async fn create_nsg(&mut self, o: &NativeObject) -> Result<(), ProviderError> {
        let call = "NetworkSecurityGroups_CreateOrUpdate";
        let name = o
            .body
            .value()
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.ours.clone());
        let body = json!({
            "location": self.location,
            "tags": {"managed-by": "intentwall"},
            "properties": {"securityRules": []},
        });
        let model: models::NetworkSecurityGroup = self.model(call, &body)?;
        let fut = self
            .conn
            .client
            .network_security_groups_client()
            .create_or_update(&self.rg, &name, model, &self.sub)
            .send();
        let rest = format!("networkSecurityGroups/{name}");
        let r = self
            .write(
                call,
                Some(Condition::IfNoneMatch),
                (&self.rg, &rest),
                None,
                async move { fut.await.map(Into::into) },
            )
            .await
            .map(|_| ());
        self.audit(call, &o.key, "", &body.to_string(), r.is_ok());
        r
    }

    /// NSGs are never deleted live: the translation never plans it for ours, subnets and
    /// NICs may still use it, and the role of `permissions azure` does not grant it.
    fn delete_nsg(&self, o: &NativeObject) -> Result<(), ProviderError> {
        Err(ProviderError::new(
            ErrorKind::Invalid,
            self.target,
            "NetworkSecurityGroups_Delete",
            format!(
                "{}: intentwall does not delete NSGs; delete it by hand if it must go",
                o.key
            ),
        ))
    }

    /// The group's ASG exists, or is created (in the placement's resource group and location).
    async fn ensure_asg(&mut self, name: &str) -> Result<(), ProviderError> {
        if self.asgs.contains(name) {
            return Ok(());
        }
        let call = "ApplicationSecurityGroups_Get";
        let fut = self
            .conn
            .client
            .application_security_groups_client()
            .get(&self.rg, name, &self.sub)
            .send();
        match self
            .send(call, None, async move { fut.await.map(Into::into) })
            .await
        {
            Ok(_) => {
                self.asgs.insert(name.to_string());
                return Ok(());
            }
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let call = "ApplicationSecurityGroups_CreateOrUpdate";
        let body = json!({"location": self.location, "tags": {"managed-by": "intentwall"}, "properties": {}});
        let model: models::ApplicationSecurityGroup = self.model(call, &body)?;
        let fut = self
            .conn
            .client
            .application_security_groups_client()
            .create_or_update(&self.rg, name, model, &self.sub)
            .send();
        let rest = format!("applicationSecurityGroups/{name}");
        // a conflict: made by someone else (or a run that crashed) since the read, it exists
        let r = self
            .write(
                call,
                Some(Condition::IfNoneMatch),
                (&self.rg, &rest),
                Some(ErrorKind::Conflict),
                async move { fut.await.map(Into::into) },
            )
            .await
            .map(|_| ());
        self.audit(
            call,
            &format!("asg:{name}"),
            "",
            &body.to_string(),
            r.is_ok(),
        );
        r?;
        self.asgs.insert(name.to_string());
        Ok(())
    }

    /// PUT rule `at` (the rule `r` or it at a temporary priority) under `cond`; remembers
    /// the etag ARM gave it.
    async fn put_rule(
        &mut self,
        r: &Placed,
        at: &AzRule,
        cond: Condition,
        key: &str,
        before: &str,
    ) -> Result<(), ProviderError> {
        let call = "SecurityRules_CreateOrUpdate";
        let mut arm = at.to_arm(None);
        if let Some(m) = arm.as_object_mut() {
            m.remove("type");
        }
        let model: models::SecurityRule = self.model(call, &arm)?;
        let fut = self
            .conn
            .client
            .security_rules_client()
            .create_or_update(&r.rg, &r.nsg, &at.name, model, &self.sub)
            .send();
        let rest = format!("networkSecurityGroups/{}/securityRules/{}", r.nsg, at.name);
        let res = self
            .write(call, Some(cond), (&r.rg, &rest), None, async move {
                fut.await.map(Into::into)
            })
            .await
            .map(Option::unwrap_or_default);
        self.audit(call, key, before, &arm.to_string(), res.is_ok());
        let mut body = res?;
        // after a long-running operation the answer may predate it: read the rule's etag
        if body.get("etag").is_none() || body["properties"]["provisioningState"] != "Succeeded" {
            let get = "SecurityRules_Get";
            let fut = self
                .conn
                .client
                .security_rules_client()
                .get(&r.rg, &r.nsg, &at.name, &self.sub)
                .send();
            let resp = self
                .send(get, None, async move { fut.await.map(Into::into) })
                .await?;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| classify(self.target, get, &e))?;
            body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        }
        let id = (
            r.rg.to_ascii_lowercase(),
            r.nsg.to_ascii_lowercase(),
            at.name.clone(),
        );
        match body.get("etag").and_then(Value::as_str) {
            Some(e) => {
                self.etags.insert(id, e.to_string());
            }
            None => {
                self.etags.remove(&id);
            }
        }
        Ok(())
    }

    /// A rule written at a temporary priority, moved to its own.
    async fn move_to_place(
        &mut self,
        r: &Placed,
        o: &NativeObject,
        temp: u32,
    ) -> Result<(), ProviderError> {
        let cond = self.condition(r);
        let mut at_temp = r.rule.clone();
        at_temp.priority = temp;
        self.put_rule(r, &r.rule, cond, &o.key, &at_temp.body().to_string())
            .await?;
        let t = self.slot(r, temp);
        self.slots.remove(&t);
        let s = self.slot(r, r.rule.priority);
        self.slots.insert(s, r.rule.name.clone());
        Ok(())
    }

    async fn delete_rule(&mut self, o: &NativeObject) -> Result<(), ProviderError> {
        let call = "SecurityRules_Delete";
        let r = self.rule_of(o).ok_or_else(|| invalid(self.target, o))?;
        let cond = match self.condition(&r) {
            Condition::IfMatch(e) => Some(Condition::IfMatch(e)),
            Condition::IfNoneMatch => None,
        };
        let fut = self
            .conn
            .client
            .security_rules_client()
            .delete(&r.rg, &r.nsg, &r.rule.name, &self.sub)
            .send();
        let rest = format!(
            "networkSecurityGroups/{}/securityRules/{}",
            r.nsg, r.rule.name
        );
        // not found: already gone, done
        let res = self
            .write(
                call,
                cond,
                (&r.rg, &rest),
                Some(ErrorKind::NotFound),
                async move { fut.await.map(Into::into) },
            )
            .await
            .map(|_| ());
        self.audit(call, &o.key, &o.body.to_string(), "", res.is_ok());
        res?;
        let s = self.slot(&r, r.rule.priority);
        if self.slots.get(&s) == Some(&r.rule.name) {
            self.slots.remove(&s);
        }
        Ok(())
    }
}
