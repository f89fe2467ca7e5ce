//! Writing one target's change set to Compute, make-before-break, one audit event per
//! mutating call.
//!
//! GCP rules are independent objects, evaluated together by priority (deny wins a tie), so
//! the order is chosen for what is enforced in between:
//!
//! 1. new **deny** rules are inserted, then new **allow** rules: in between, traffic is
//!    never allowed that neither the old nor the new rules allow (a new allow can be shadowed
//!    by a new deny, never the reverse);
//! 2. rules changed in place (PATCH; PUT when a field must be cleared, which a JSON merge
//!    PATCH from the SDK cannot express): each is one atomic change;
//! 3. rules whose direction or network changes are replaced: the name is the identity, so
//!    the old rule must go before the new one of the same name can be inserted (the one
//!    break-before-make, as with an AWS group replaced);
//! 4. old **allow** rules are deleted (only closing), then old **deny** rules: by then every
//!    rule of the new state is in force, so removing a deny never opens what the intent
//!    still denies.
//!
//! Each phase sends its calls, then waits for all their operations to be `DONE` before the
//! next phase starts (operations proceed in parallel on the server; the phase barrier keeps
//! the order above). Writes are idempotent: an insert answered "already exists" and a delete
//! answered "not found" count as done (a re-run after a crash, or a retry of a call that
//! succeeded unseen); the caller then observes the target again and requires it to equal what
//! the changes meant, so a rule that "already exists" with other content is caught there.

use super::{doc, operation, retrying, Target};
use crate::model::Act;
use intentwall_contract::live::{ErrorKind, Op, ProviderError, Report};
use intentwall_contract::NativeObject;
use serde_json::Value;

/// One mutating call.
#[derive(Debug, Clone, Copy)]
enum Call<'a> {
    Insert(&'a NativeObject),
    /// PATCH (`put` false) or PUT (`put` true) of `after` over `before`.
    Change {
        before: &'a NativeObject,
        after: &'a NativeObject,
        put: bool,
    },
    Delete(&'a NativeObject),
}

/// The rule's name, what the calls address it by.
pub(super) fn name_of(o: &NativeObject) -> String {
    o.body
        .value()
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| o.key.trim_start_matches("fw:").to_string())
}

fn is_deny(o: &NativeObject) -> bool {
    o.body.value().get("denied").is_some()
}

fn action(o: &NativeObject) -> Act {
    if is_deny(o) {
        Act::Deny
    } else {
        Act::Allow
    }
}

/// Write the ops to the target in the make-before-break order of the module docs.
pub async fn execute(t: &Target, ops: &[Op<'_>]) -> Result<Report, ProviderError> {
    let mut w = Writer { t, calls: 0 };
    let creates = |act: Act| -> Vec<Call<'_>> {
        ops.iter()
            .filter_map(|o| match o {
                Op::Create(x) if action(x) == act => Some(Call::Insert(x)),
                _ => None,
            })
            .collect()
    };
    w.phase(&creates(Act::Deny)).await?;
    w.phase(&creates(Act::Allow)).await?;
    let changes: Vec<Call<'_>> = ops
        .iter()
        .filter_map(|o| match o {
            Op::Update { before, after } => Some(Call::Change {
                before,
                after,
                put: !doc::cleared(&before.body.value(), &after.body.value()).is_empty(),
            }),
            _ => None,
        })
        .collect();
    w.phase(&changes).await?;
    for o in ops {
        if let Op::Replace { before, after } = o {
            w.phase(&[Call::Delete(before)]).await?;
            w.phase(&[Call::Insert(after)]).await?;
        }
    }
    let deletes = |act: Act| -> Vec<Call<'_>> {
        ops.iter()
            .filter_map(|o| match o {
                Op::Delete(x) if action(x) == act => Some(Call::Delete(x)),
                _ => None,
            })
            .collect()
    };
    w.phase(&deletes(Act::Allow)).await?;
    w.phase(&deletes(Act::Deny)).await?;
    Ok(Report { calls: w.calls })
}

struct Writer<'a> {
    t: &'a Target,
    calls: usize,
}

impl Writer<'_> {
    /// One audit event per mutating call, made or failed.
    fn audit(&self, call: &str, object: &str, before: &str, after: &str, outcome: &str) {
        tracing::info!(
            target: "audit",
            who = %self.t.clients.who,
            target = %self.t.label,
            call,
            object,
            before,
            after,
            outcome,
            "cloud write"
        );
    }

    /// Send every call, then wait for every operation; the first failure is returned after
    /// the operations already started have been waited on (so the audit log says how each
    /// ended).
    async fn phase(&mut self, calls: &[Call<'_>]) -> Result<(), ProviderError> {
        let mut started = Vec::new();
        let mut failed = None;
        for c in calls {
            match self.send(*c).await {
                Ok(Some(op)) => started.push((*c, op)),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        for (c, op) in started {
            let (call, object, before, after) = describe(c);
            let r = operation::wait(self.t, call, op).await;
            let r = match r {
                Err(e) if already_done(c, &e) => {
                    self.audit(call, &object, &before, &after, already(c));
                    Ok(())
                }
                Ok(()) => {
                    self.audit(call, &object, &before, &after, "ok");
                    Ok(())
                }
                Err(e) => {
                    self.audit(call, &object, &before, &after, "failed");
                    Err(e)
                }
            };
            if let (Err(e), None) = (r, &failed) {
                failed = Some(e);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Make one call; its operation, or `None` when there is nothing to wait for (already
    /// done).
    async fn send(&mut self, c: Call<'_>) -> Result<Option<Value>, ProviderError> {
        let t = self.t;
        let (call, object, before, after) = describe(c);
        self.calls += 1;
        let sent = match c {
            Call::Insert(o) => {
                let body = doc::body(&o.body.value()).map_err(|m| invalid(t, call, m))?;
                retrying(&t.label, call, || {
                    t.clients
                        .firewalls
                        .insert()
                        .set_project(t.project.clone())
                        .set_body(body.clone())
                        .send()
                })
                .await
            }
            Call::Change { after: o, put, .. } => {
                let body = doc::body(&o.body.value()).map_err(|m| invalid(t, call, m))?;
                let name = name_of(o);
                if put {
                    retrying(&t.label, call, || {
                        t.clients
                            .firewalls
                            .update()
                            .set_project(t.project.clone())
                            .set_firewall(name.clone())
                            .set_body(body.clone())
                            .send()
                    })
                    .await
                } else {
                    retrying(&t.label, call, || {
                        t.clients
                            .firewalls
                            .patch()
                            .set_project(t.project.clone())
                            .set_firewall(name.clone())
                            .set_body(body.clone())
                            .send()
                    })
                    .await
                }
            }
            Call::Delete(o) => {
                let name = name_of(o);
                retrying(&t.label, call, || {
                    t.clients
                        .firewalls
                        .delete()
                        .set_project(t.project.clone())
                        .set_firewall(name.clone())
                        .send()
                })
                .await
            }
        };
        match sent {
            Ok(op) => Ok(Some(operation::as_json(&op))),
            Err(e) if already_done(c, &e) => {
                self.audit(call, &object, &before, &after, already(c));
                Ok(None)
            }
            Err(e) => {
                self.audit(call, &object, &before, &after, "failed");
                Err(e)
            }
        }
    }
}

/// An insert of a rule that exists, a delete of one that is gone: the write was made
/// before (a retried call, a killed run).
fn already_done(c: Call<'_>, e: &ProviderError) -> bool {
    matches!(
        (c, e.kind),
        (Call::Insert(_), ErrorKind::Conflict) | (Call::Delete(_), ErrorKind::NotFound)
    )
}

fn already(c: Call<'_>) -> &'static str {
    match c {
        Call::Delete(_) => "already-gone",
        _ => "already-exists",
    }
}

/// The call's API name, the rule's name, and one line for before and after.
fn describe(c: Call<'_>) -> (&'static str, String, String, String) {
    match c {
        Call::Insert(o) => (
            "compute.firewalls.insert",
            name_of(o),
            String::new(),
            o.summary.clone(),
        ),
        Call::Change { before, after, put } => (
            if put {
                "compute.firewalls.update"
            } else {
                "compute.firewalls.patch"
            },
            name_of(after),
            before.summary.clone(),
            after.summary.clone(),
        ),
        Call::Delete(o) => (
            "compute.firewalls.delete",
            name_of(o),
            o.summary.clone(),
            String::new(),
        ),
    }
}

fn invalid(t: &Target, call: &str, m: String) -> ProviderError {
    ProviderError::new(ErrorKind::Invalid, &t.label, call, m)
}
