//! What the engine and a cloud's live backend exchange: the writes to make ([`Op`]), what a
//! run of them did ([`Report`]), and the one error type of every cloud call
//! ([`ProviderError`]), so the engine can decide (retry later, fail this target alone, stop)
//! without knowing any SDK's error types.

use crate::{NativeObject, NativeState};
use std::fmt;

/// What one observation of a target read.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The state, normalised by the cloud's snapshot loader (so a file and a cloud give the
    /// same state, and the same fingerprint, for the same rules).
    pub state: NativeState,
    /// The document it was read from, in the shape of the cloud CLI's listing (AWS
    /// `describe-security-groups`, Azure `az network nsg list`, GCP `gcloud compute
    /// firewall-rules list --format=json`): what `snapshot` records.
    pub document: String,
}

/// One write to a target, in the order the engine wants them made (make-before-break:
/// containers, then new rules, then updates, then deletions of rules, then of containers).
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Create the object.
    Create(&'a NativeObject),
    /// Change the object in place (same key).
    Update {
        /// As it is now.
        before: &'a NativeObject,
        /// As it must become.
        after: &'a NativeObject,
    },
    /// Replace the object (an immutable field changes): delete and create, in the order the
    /// cloud allows.
    Replace {
        /// As it is now.
        before: &'a NativeObject,
        /// As it must become.
        after: &'a NativeObject,
    },
    /// Delete the object.
    Delete(&'a NativeObject),
}

/// What a live run of writes did to one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Mutating API calls made (a second apply of the same intent makes none).
    pub calls: usize,
}

/// What kind of failure a cloud call had: what the engine and the user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No or bad credentials, or the identity is not the placement's account.
    Auth,
    /// The identity lacks a permission.
    Denied,
    /// The object is not there (any more).
    NotFound,
    /// The object exists already, or a concurrent change won (etag, duplicate).
    Conflict,
    /// Something still uses the object (a delete refused).
    InUse,
    /// A cloud limit (rules per group, groups per VPC).
    Quota,
    /// The cloud rejected the request as malformed.
    Invalid,
    /// Throttled, or the service failed (5xx, timeout, connection): retrying later may work.
    Unavailable,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// What an HTTP status alone says, when the cloud's own error code is not one a provider
    /// knows: throttling, timeouts and server failures are transient, the rest as HTTP means.
    pub fn of_status(status: Option<u16>) -> ErrorKind {
        match status {
            Some(429 | 408) => ErrorKind::Unavailable,
            Some(s) if s >= 500 => ErrorKind::Unavailable,
            Some(401) => ErrorKind::Auth,
            Some(403) => ErrorKind::Denied,
            Some(404) => ErrorKind::NotFound,
            Some(409 | 412) => ErrorKind::Conflict,
            Some(400) => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        }
    }

    /// The word for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "authentication",
            ErrorKind::Denied => "access denied",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InUse => "in use",
            ErrorKind::Quota => "limit exceeded",
            ErrorKind::Invalid => "invalid request",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "failed",
        }
    }
}

/// A failed cloud call: which call, on which target, what kind of failure, and the cloud's own
/// code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Whether the same call may succeed later unchanged (throttling, 5xx, timeouts). The SDK
    /// has already retried such calls with backoff; the engine reports, it does not loop.
    pub retryable: bool,
    /// The target (`deployment/cloud`, or the account and region).
    pub target: String,
    /// The API call (`ec2:AuthorizeSecurityGroupIngress`).
    pub call: String,
    /// The cloud's error code and message, or the transport's.
    pub message: String,
}

impl ProviderError {
    /// An error of `kind` for `call` on `target`.
    pub fn new(
        kind: ErrorKind,
        target: impl Into<String>,
        call: impl Into<String>,
        message: impl Into<String>,
    ) -> ProviderError {
        ProviderError {
            kind,
            retryable: kind == ErrorKind::Unavailable,
            target: target.into(),
            call: call.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}: {}{}",
            self.target,
            self.call,
            self.kind.as_str(),
            self.message,
            if self.retryable {
                " (transient: a re-run may succeed)"
            } else {
                ""
            }
        )
    }
}

impl std::error::Error for ProviderError {}

/// An error and its sources joined, each said once: an SDK's transport failure says little at
/// the top ("dispatch failure") and the cause below.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(c) = next {
        let s = c.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        next = c.source();
    }
    parts.join(": ")
}

/// The first `shown` of `items` joined, and how many more there are: messages name a few of
/// the objects a permission or a failure concerns, never thousands.
pub fn some_of(items: &[String], shown: usize) -> String {
    let mut s = items
        .iter()
        .take(shown)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > shown {
        s.push_str(&format!(", and {} more", items.len() - shown));
    }
    s
}

/// Is `url` an endpoint on this machine (`localhost`, `127.0.0.0/8`, `::1`)? Only there may a
/// live backend run without real credentials (an emulator); anywhere else that is an error.
pub fn is_loopback(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A placement's setting, or the error that names the missing key (the intent loader checks
/// placements, so this only fires on a placement built some other way).
pub fn setting<'a>(
    cloud: &str,
    target: &str,
    placement: &'a std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<&'a str, ProviderError> {
    placement.get(key).map(String::as_str).ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Invalid,
            target,
            "placement",
            format!("the {cloud} placement has no `{key}`"),
        )
    })
}

/// A number from the environment (a retry or timeout knob), or `default` when it is unset or
/// not a number.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        for u in [
            "http://127.0.0.1:5000",
            "http://localhost:1",
            "https://[::1]:443/x",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback(u), "{u}");
        }
        for u in [
            "https://ec2.us-east-1.amazonaws.com",
            "http://127.0.0.1.evil.com:5000",
            "http://user@127.0.0.1:5000",
            "http://10.0.0.1",
            "",
        ] {
            assert!(!is_loopback(u), "{u}");
        }
    }

    #[test]
    fn statuses_alone_map_to_what_can_be_done() {
        for (status, kind) in [
            (Some(429), ErrorKind::Unavailable),
            (Some(408), ErrorKind::Unavailable),
            (Some(500), ErrorKind::Unavailable),
            (Some(503), ErrorKind::Unavailable),
            (Some(401), ErrorKind::Auth),
            (Some(403), ErrorKind::Denied),
            (Some(404), ErrorKind::NotFound),
            (Some(409), ErrorKind::Conflict),
            (Some(412), ErrorKind::Conflict),
            (Some(400), ErrorKind::Invalid),
            (Some(418), ErrorKind::Other),
            (None, ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::of_status(status), kind, "{status:?}");
        }
    }

    #[test]
    fn some_of_names_a_few_and_counts_the_rest() {
        let items: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
        assert_eq!(some_of(&items[..2], 3), "r0, r1");
        assert_eq!(some_of(&items[..3], 3), "r0, r1, r2");
        assert_eq!(some_of(&items, 3), "r0, r1, r2, and 4 more");
        assert_eq!(some_of(&[], 3), "");
    }

    #[test]
    fn error_chains_say_each_cause_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "dispatch failure",
            Some(Box::new(E(
                "io error",
                Some(Box::new(E("io error", Some(Box::new(E("refused", None)))))),
            ))),
        );
        assert_eq!(error_chain(&e), "dispatch failure: io error: refused");
    }

    #[test]
    fn messages_name_target_call_and_kind() {
        let e = ProviderError::new(
            ErrorKind::Unavailable,
            "us/aws",
            "ec2:DescribeSecurityGroups",
            "RequestLimitExceeded: slow down",
        );
        assert!(e.retryable);
        assert_eq!(
            e.to_string(),
            "us/aws: ec2:DescribeSecurityGroups unavailable: RequestLimitExceeded: slow down \
             (transient: a re-run may succeed)"
        );
    }
}
