//! An azure_core error as the contract's [`ProviderError`]: the call, the target, a kind the
//! engine can act on, and ARM's own error code and message.

use azure_core::error::ErrorKind as CoreKind;
use intentwall_contract::live::{error_chain as chain, ErrorKind, ProviderError};

/// What an ARM error code (or, without one, the HTTP status) means for us.
pub fn kind_of(code: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "TooManyRequests"
        | "RetryableError"
        | "InternalServerError"
        | "ServerTimeout"
        | "ServiceUnavailable"
        | "GatewayTimeout" => ErrorKind::Unavailable,
        "InvalidAuthenticationToken"
        | "InvalidAuthenticationTokenTenant"
        | "ExpiredAuthenticationToken"
        | "AuthenticationFailed"
        | "SubscriptionNotFound" => ErrorKind::Auth,
        "AuthorizationFailed" | "LinkedAuthorizationFailed" | "LinkedAccessCheckFailed" => {
            ErrorKind::Denied
        }
        "PreconditionFailed"
        | "SecurityRuleConflict"
        | "Conflict"
        | "AnotherOperationInProgress"
        | "ResourceAlreadyExists" => ErrorKind::Conflict,
        "InUseNetworkSecurityGroupCannotBeDeleted"
        | "InUseApplicationSecurityGroupCannotBeDeleted" => ErrorKind::InUse,
        "ResourceNotFound" | "NotFound" | "ResourceGroupNotFound" | "ParentResourceNotFound" => {
            ErrorKind::NotFound
        }
        c if c.contains("LimitReached") || c.contains("LimitExceeded") || c == "QuotaExceeded" => {
            ErrorKind::Quota
        }
        c if c.starts_with("Invalid") || c == "BadRequest" || c.starts_with("SecurityRule") => {
            ErrorKind::Invalid
        }
        _ => ErrorKind::of_status(status),
    }
}

/// Classify any error of the SDK's pipeline (after its retries).
pub fn classify(target: &str, call: &str, e: &azure_core::Error) -> ProviderError {
    if let Some(h) = e.as_http_error() {
        let status = u16::from(h.status());
        let code = h.error_code().unwrap_or("");
        let message = match (h.error_code(), h.error_message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => format!("HTTP {status}"),
        };
        let mut err = ProviderError::new(kind_of(code, Some(status)), target, call, message);
        if status == 412 {
            err.message.push_str(
                " (the object changed since it was read: nothing was overwritten; re-plan)",
            );
        }
        return err;
    }
    let kind = match e.kind() {
        CoreKind::Io => ErrorKind::Unavailable,
        CoreKind::Credential => ErrorKind::Auth,
        CoreKind::HttpResponse { status, error_code } => kind_of(
            error_code.as_deref().unwrap_or(""),
            Some(u16::from(*status)),
        ),
        _ => ErrorKind::Other,
    };
    ProviderError::new(kind, target, call, chain(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_can_be_done() {
        assert_eq!(
            kind_of("SecurityRuleConflict", Some(400)),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind_of("PreconditionFailed", Some(412)),
            ErrorKind::Conflict
        );
        assert_eq!(kind_of("", Some(412)), ErrorKind::Conflict);
        assert_eq!(kind_of("ResourceNotFound", Some(404)), ErrorKind::NotFound);
        assert_eq!(kind_of("AuthorizationFailed", Some(403)), ErrorKind::Denied);
        assert_eq!(
            kind_of("InvalidRequestFormat", Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(
            kind_of("SecurityRuleInvalidPriority", Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(kind_of("", Some(429)), ErrorKind::Unavailable);
        assert_eq!(kind_of("", Some(503)), ErrorKind::Unavailable);
        assert_eq!(
            kind_of("InUseNetworkSecurityGroupCannotBeDeleted", Some(400)),
            ErrorKind::InUse
        );
        assert_eq!(
            kind_of("SecurityRulesPerNsgLimitReached", Some(400)),
            ErrorKind::Quota
        );
        assert_eq!(kind_of("Weird", Some(418)), ErrorKind::Other);
    }
}
