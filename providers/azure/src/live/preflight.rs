//! `apply --preflight` on Azure: not a check this build can make yet. Azure has no policy
//! simulator like IAM's; the honest substitute (the caller's effective `actions` at each
//! resource group, `Microsoft.Authorization/permissions`) is not implemented, so preflight
//! refuses rather than reporting a pass it did not verify.

use intentwall_contract::live::{ErrorKind, ProviderError};

/// The refusal, naming the target.
pub fn unsupported(target: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Other,
        target,
        "preflight",
        "apply --preflight cannot check Azure permissions in this build (no check is made, so \
         none is claimed); run without --preflight, or grant the role of `intentwall \
         permissions azure`",
    )
}
