//! An SDK error as the contract's [`ProviderError`]: the call, the target, a kind the engine
//! can act on, and AWS's own code and message.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use intentwall_contract::live::{error_chain, ErrorKind, ProviderError};

/// What an AWS error code means for us.
pub fn kind_of(code: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "RequestThrottled"
        | "ServiceUnavailable"
        | "Unavailable"
        | "InternalError"
        | "InternalFailure" => ErrorKind::Unavailable,
        "AuthFailure"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "SignatureDoesNotMatch"
        | "OptInRequired" => ErrorKind::Auth,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => ErrorKind::Denied,
        "DependencyViolation" => ErrorKind::InUse,
        "InvalidGroup.Duplicate" | "InvalidPermission.Duplicate" | "EntityAlreadyExists" => {
            ErrorKind::Conflict
        }
        "RulesPerSecurityGroupLimitExceeded"
        | "SecurityGroupLimitExceeded"
        | "SecurityGroupsPerInstanceLimitExceeded"
        | "LimitExceeded" => ErrorKind::Quota,
        c if c.ends_with(".NotFound") || c == "NoSuchEntity" => ErrorKind::NotFound,
        c if c.starts_with("Invalid") || c.starts_with("Malformed") || c == "MissingParameter" => {
            ErrorKind::Invalid
        }
        // EC2 answers 400 for most refusals (a wrong state, a dry run), not only malformed
        // requests: an unknown code there is not known to be ours to fix
        _ if status == Some(400) => ErrorKind::Other,
        _ => ErrorKind::of_status(status),
    }
}

/// Classify any SDK error of any AWS client.
pub fn classify<E>(target: &str, call: &str, e: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::TimeoutError(_) => {
            ProviderError::new(ErrorKind::Unavailable, target, call, "timed out")
        }
        SdkError::DispatchFailure(_) => ProviderError::new(
            ErrorKind::Unavailable,
            target,
            call,
            format!("cannot reach the endpoint: {}", error_chain(e)),
        ),
        SdkError::ServiceError(s) => {
            let err = s.err();
            let code = err.code().unwrap_or("");
            let status = s.raw().status().as_u16();
            let message = match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => error_chain(e),
            };
            ProviderError::new(kind_of(code, Some(status)), target, call, message)
        }
        other => {
            let code = other.code().unwrap_or("");
            ProviderError::new(kind_of(code, None), target, call, error_chain(other))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_can_be_done() {
        assert_eq!(
            kind_of("RequestLimitExceeded", Some(503)),
            ErrorKind::Unavailable
        );
        assert_eq!(kind_of("DependencyViolation", Some(400)), ErrorKind::InUse);
        assert_eq!(
            kind_of("InvalidGroup.NotFound", Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of("InvalidParameterValue", Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(
            kind_of("UnauthorizedOperation", Some(403)),
            ErrorKind::Denied
        );
        assert_eq!(kind_of("", Some(502)), ErrorKind::Unavailable);
        assert_eq!(kind_of("Weird", Some(400)), ErrorKind::Other);
    }
}
