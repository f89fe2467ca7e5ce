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
    provider(kind).ok_or_else(|| missing(kind))
}

/// The error for a cloud whose plugin this binary was built without (for the plugin's
/// provider, flow-log parser or permission document alike).
pub fn missing(kind: ProviderKind) -> anyhow::Error {
    anyhow::anyhow!(
        "this intentwall was built without the `{kind}` feature; rebuild with `--features {kind}`"
    )
}

/// A cloud's least-privilege document for `intentwall permissions`: the placement settings it
/// is scoped by, and the document as text for their values (one list per distinct placement,
/// values in key order, each already checked against the cloud's formats).
pub struct PermissionDocument {
    /// Placement settings, in the order `render` reads them.
    pub keys: &'static [&'static str],
    /// The document, for at least one placement.
    pub render: fn(&[Vec<String>]) -> String,
}

/// The permission document of a cloud's plugin, or the error saying how to get the plugin.
pub fn permissions(kind: ProviderKind) -> anyhow::Result<PermissionDocument> {
    Ok(match kind {
        #[cfg(feature = "aws")]
        ProviderKind::Aws => PermissionDocument {
            keys: intentwall_aws::permissions::PLACEMENT_KEYS,
            render: intentwall_aws::permissions::document,
        },
        #[cfg(feature = "azure")]
        ProviderKind::Azure => PermissionDocument {
            keys: intentwall_azure::permissions::PLACEMENT_KEYS,
            render: intentwall_azure::permissions::document,
        },
        #[cfg(feature = "gcp")]
        ProviderKind::Gcp => PermissionDocument {
            keys: intentwall_gcp::permissions::PLACEMENT_KEYS,
            render: intentwall_gcp::permissions::document,
        },
        #[allow(unreachable_patterns)]
        _ => return Err(missing(kind)),
    })
}
