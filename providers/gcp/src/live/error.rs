//! An SDK error (or a failed operation) as the contract's [`ProviderError`]: the call, the
//! target, a kind the engine can act on, and Google's own reason and message.
//!
//! Compute answers errors as `{"error": {"code": 409, "message": ..., "errors": [{"reason":
//! "alreadyExists", ...}]}}`; the SDK keeps the HTTP status and turns each `errors[]` item into
//! an `ErrorInfo` detail whose `reason` is Compute's reason word.

use google_cloud_gax::error::rpc::StatusDetails;
use google_cloud_gax::error::Error;
use intentwall_contract::live::{error_chain as chain, ErrorKind, ProviderError};

/// What a Compute reason word (or operation error code) and HTTP status mean for us.
pub fn kind_of(reason: &str, status: Option<u16>) -> ErrorKind {
    match reason {
        "rateLimitExceeded"
        | "userRateLimitExceeded"
        | "backendError"
        | "internalError"
        | "RATE_LIMIT_EXCEEDED"
        | "INTERNAL_ERROR"
        | "UNAVAILABLE" => ErrorKind::Unavailable,
        "alreadyExists"
        | "RESOURCE_ALREADY_EXISTS"
        | "conditionNotMet"
        | "resourceNotReady"
        | "RESOURCE_NOT_READY" => ErrorKind::Conflict,
        "notFound" | "RESOURCE_NOT_FOUND" => ErrorKind::NotFound,
        "forbidden" | "insufficientPermissions" | "accessNotConfigured" | "PERMISSION_DENIED" => {
            ErrorKind::Denied
        }
        "authError" | "required" if status == Some(401) => ErrorKind::Auth,
        "quotaExceeded" | "limitExceeded" | "QUOTA_EXCEEDED" => ErrorKind::Quota,
        "resourceInUseByAnotherResource" | "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" => {
            ErrorKind::InUse
        }
        "invalid"
        | "badRequest"
        | "invalidParameter"
        | "required"
        | "INVALID_FIELD_VALUE"
        | "INVALID_USAGE" => ErrorKind::Invalid,
        _ => ErrorKind::of_status(status),
    }
}

/// The first `reason` of a service error's details.
fn reason(e: &Error) -> Option<String> {
    e.status()?.details.iter().find_map(|d| match d {
        StatusDetails::ErrorInfo(i) if !i.reason.is_empty() => Some(i.reason.clone()),
        _ => None,
    })
}

/// Classify any error of the Compute clients.
pub fn classify(target: &str, call: &str, e: &Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::new(ErrorKind::Unavailable, target, call, "timed out");
    }
    if e.is_io() || e.is_connect() {
        return ProviderError::new(
            ErrorKind::Unavailable,
            target,
            call,
            format!("cannot reach the endpoint: {}", chain(e)),
        );
    }
    if e.is_authentication() {
        return ProviderError::new(ErrorKind::Auth, target, call, chain(e));
    }
    if e.is_deserialization() || e.is_serialization() || e.is_binding() {
        return ProviderError::new(ErrorKind::Other, target, call, chain(e));
    }
    let status = e.http_status_code();
    let why = reason(e);
    let message = match (e.status(), &why) {
        (Some(s), Some(r)) => format!("{r}: {}", s.message),
        (Some(s), None) => s.message.clone(),
        _ => chain(e),
    };
    let message = match status {
        Some(c) => format!("HTTP {c} {message}"),
        None => message,
    };
    let kind = kind_of(why.as_deref().unwrap_or(""), status);
    // 429 and 5xx are transient whatever the reason word says
    let mut err = ProviderError::new(kind, target, call, message);
    if matches!(status, Some(429) | Some(500..=599)) {
        err.retryable = true;
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_to_what_can_be_done() {
        assert_eq!(
            kind_of("rateLimitExceeded", Some(429)),
            ErrorKind::Unavailable
        );
        assert_eq!(kind_of("alreadyExists", Some(409)), ErrorKind::Conflict);
        assert_eq!(kind_of("notFound", Some(404)), ErrorKind::NotFound);
        assert_eq!(
            kind_of("RESOURCE_ALREADY_EXISTS", None),
            ErrorKind::Conflict
        );
        assert_eq!(kind_of("QUOTA_EXCEEDED", None), ErrorKind::Quota);
        assert_eq!(kind_of("invalid", Some(400)), ErrorKind::Invalid);
        assert_eq!(kind_of("forbidden", Some(403)), ErrorKind::Denied);
        assert_eq!(kind_of("conditionNotMet", Some(412)), ErrorKind::Conflict);
        assert_eq!(kind_of("", Some(503)), ErrorKind::Unavailable);
        assert_eq!(kind_of("", Some(429)), ErrorKind::Unavailable);
        assert_eq!(kind_of("weird", Some(418)), ErrorKind::Other);
    }
}
