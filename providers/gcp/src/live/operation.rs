//! Waiting for a global operation to be `DONE`, and reading its outcome.
//!
//! Every firewall write answers with an Operation; the change is made only when the operation
//! is `DONE`, and a `DONE` operation may still carry an `error`. So each write is waited on
//! (polled with `globalOperations.get`, backoff from `INTENTWALL_GCP_POLL_MS`, default 500 ms,
//! growing to 5 s) and bounded (`INTENTWALL_GCP_OPERATION_TIMEOUT` seconds, default 300): an
//! operation still running then fails the target as transient, and the next run's
//! observation shows what it did.

use super::{env_number, error, retrying, Target};
use intentwall_contract::live::{ErrorKind, ProviderError};
use serde_json::Value;
use std::time::{Duration, Instant};

/// An operation as JSON (the SDK model serialised), so reading its fields does not depend on
/// the SDK's enum types.
pub fn as_json(op: &google_cloud_compute_v1::model::Operation) -> Value {
    serde_json::to_value(op).unwrap_or(Value::Null)
}

/// The outcome of a `DONE` operation: `Ok` or the error it carries.
pub fn outcome(target: &str, call: &str, op: &Value) -> Result<(), ProviderError> {
    let Some(errors) = op
        .pointer("/error/errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    else {
        return Ok(());
    };
    let code = errors[0].get("code").and_then(Value::as_str).unwrap_or("");
    let status = op
        .get("httpErrorStatusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let messages: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("code").and_then(Value::as_str).unwrap_or("?"),
                e.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    Err(ProviderError::new(
        error::kind_of(code, status),
        target,
        call,
        format!("operation failed: {}", messages.join("; ")),
    ))
}

/// The operation's name (what `globalOperations.get` takes).
fn name_of(op: &Value) -> Option<String> {
    op.get("name").and_then(Value::as_str).map(str::to_string)
}

fn is_done(op: &Value) -> bool {
    op.get("status").and_then(Value::as_str) == Some("DONE")
}

/// Wait until `op` (the answer of `call`) is `DONE`; its error, if any, as a ProviderError.
pub async fn wait(t: &Target, call: &str, op: Value) -> Result<(), ProviderError> {
    let deadline = Duration::from_secs(env_number("INTENTWALL_GCP_OPERATION_TIMEOUT", 300));
    let mut delay = Duration::from_millis(env_number("INTENTWALL_GCP_POLL_MS", 500).max(1));
    let started = Instant::now();
    let mut op = op;
    while !is_done(&op) {
        let Some(name) = name_of(&op) else {
            return Err(ProviderError::new(
                ErrorKind::Other,
                &t.label,
                call,
                "the answer is not an operation (no name, not DONE)",
            ));
        };
        if started.elapsed() >= deadline {
            return Err(ProviderError::new(
                ErrorKind::Unavailable,
                &t.label,
                call,
                format!(
                    "operation {name} is still {} after {}s; the next run sees what it did",
                    op.get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown"),
                    deadline.as_secs()
                ),
            ));
        }
        tokio::time::sleep(
            super::jitter(delay * 2).min(deadline.saturating_sub(started.elapsed())),
        )
        .await;
        delay = (delay * 3 / 2).min(Duration::from_secs(5));
        let got = retrying(&t.label, "compute.globalOperations.get", || {
            t.clients
                .operations
                .get()
                .set_project(t.project.clone())
                .set_operation(name.clone())
                .send()
        })
        .await?;
        op = as_json(&got);
    }
    outcome(&t.label, call, &op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_done_operation_with_an_error_is_a_failure_of_its_kind() {
        let op = json!({"name": "operation-1", "status": "DONE", "httpErrorStatusCode": 409,
            "error": {"errors": [{"code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}]}});
        let e = outcome("us/gcp", "compute.firewalls.insert", &op).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(
            e.message.contains("RESOURCE_ALREADY_EXISTS: exists"),
            "{}",
            e.message
        );
        assert!(outcome("us/gcp", "x", &json!({"status": "DONE"})).is_ok());
    }

    #[test]
    fn the_sdk_reads_decimal_operation_ids_only() {
        // what the fake answers must be what the SDK reads: a uint64 id as a decimal string
        let ok: Result<google_cloud_compute_v1::model::Operation, _> = serde_json::from_value(
            json!({"id": "1234567890123", "name": "operation-1", "status": "RUNNING"}),
        );
        let op = as_json(&ok.unwrap());
        assert_eq!(op["status"], "RUNNING");
        assert_eq!(op["id"], "1234567890123");
        let hex: Result<google_cloud_compute_v1::model::Operation, _> =
            serde_json::from_value(json!({"id": "07add8ec", "name": "x"}));
        assert!(hex.is_err());
    }
}
