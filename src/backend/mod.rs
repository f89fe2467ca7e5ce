//! Where state comes from and where apply goes to, and which provider plugins are built in.
//!
//! This is the only module that names clouds: the closed set of provider plugins, each behind
//! its cargo feature. Everything else in the engine works through the contract's `Provider`.

pub mod lock;
pub mod snapshot;

use intentwall_contract::{Provider, ProviderKind};

/// The built-in plugin for a cloud, or `None` when this binary was built without its feature.
pub fn provider(kind: ProviderKind) -> Option<&'static dyn Provider> {
    match kind {
        #[cfg(feature = "aws")]
        ProviderKind::Aws => Some(&intentwall_aws::AwsProvider),
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Some(&intentwall_azure::AzureProvider),
        #[cfg(feature = "gcp")]
        ProviderKind::Gcp => Some(&intentwall_gcp::GcpProvider),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The plugin for a cloud, or an error saying how to get it.
pub fn require(kind: ProviderKind) -> anyhow::Result<&'static dyn Provider> {
    provider(kind).ok_or_else(|| {
        anyhow::anyhow!(
            "this intentwall was built without the `{kind}` feature; rebuild with `--features {kind}`"
        )
    })
}
