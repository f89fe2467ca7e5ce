//! The HTTP end of the Azure clients: the transport under the SDK's retry policy, and the
//! credential used against a loopback endpoint.
//!
//! azure_mgmt_network 0.21 builds its requests without conditional headers, and its request
//! builders take no per-call context. ARM's optimistic concurrency needs them (`If-Match` on
//! the etag a write was planned against, `If-None-Match: *` on a create), so the transport
//! adds the condition the calling task has put in [`CONDITION`]: every attempt of one call
//! (the retry policy re-sends through here) carries the same condition, and nothing else
//! (reads, operation polls) carries any.

use azure_core::auth::{AccessToken, TokenCredential};
use azure_core::error::ErrorKind as CoreKind;
use azure_core::{Context, HttpClient, Policy, PolicyResult, Request};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The precondition of one write.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The resource must still have this etag (an update or delete of what was observed).
    IfMatch(String),
    /// The resource must not exist (a create: never overwrite what someone else made).
    IfNoneMatch,
}

tokio::task_local! {
    /// The condition of the write the current task is making (see the module docs).
    pub static CONDITION: Condition;
}

/// The transport policy: conditions, a per-attempt timeout, a debug line per HTTP exchange.
#[derive(Debug)]
pub struct Wire {
    http: Arc<dyn HttpClient>,
    attempt_timeout: Duration,
}

impl Wire {
    /// Over azure_core's own HTTP client (reqwest, rustls).
    pub fn new(attempt_timeout: Duration) -> Wire {
        Wire {
            http: azure_core::new_http_client(),
            attempt_timeout,
        }
    }
}

#[async_trait::async_trait]
impl Policy for Wire {
    async fn send(
        &self,
        _ctx: &Context,
        request: &mut Request,
        _next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        match CONDITION.try_with(Clone::clone) {
            Ok(Condition::IfMatch(etag)) => request.insert_header("if-match", etag),
            Ok(Condition::IfNoneMatch) => request.insert_header("if-none-match", "*"),
            Err(_) => {}
        }
        let started = Instant::now();
        let r =
            tokio::time::timeout(self.attempt_timeout, self.http.execute_request(request)).await;
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(azure_core::Error::new(
                CoreKind::Io,
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", self.attempt_timeout),
                ),
            )),
        };
        tracing::debug!(
            target: "intentwall::azure",
            method = %request.method(),
            path = request.url().path(),
            status = r.as_ref().map(|x| u16::from(x.status())).unwrap_or(0),
            ms = started.elapsed().as_millis() as u64,
            "http"
        );
        r
    }
}

/// A fixed token for an emulator on loopback (never used for any other endpoint).
#[derive(Debug)]
pub struct LoopbackToken;

#[async_trait::async_trait]
impl TokenCredential for LoopbackToken {
    async fn get_token(&self, _scopes: &[&str]) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            "intentwall-loopback",
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        Ok(())
    }
}

/// Who a bearer token is for (`upn`, `appid` or `oid` of its claims), for audit events; the
/// token's kind when it carries no readable claims.
pub fn principal(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    ["upn", "unique_name", "appid", "oid"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string))
}

/// RFC 4648 §5 without padding (JWT segments).
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_principal_is_read_from_its_claims() {
        // {"alg":"none"} . {"oid":"0000-1","appid":"app-9"}
        let t = "eyJhbGciOiJub25lIn0.eyJvaWQiOiIwMDAwLTEiLCJhcHBpZCI6ImFwcC05In0.";
        assert_eq!(principal(t).as_deref(), Some("app-9"));
        assert_eq!(principal("intentwall-loopback"), None);
    }
}
