//! Where state comes from and where apply goes to, and which provider plugins are built in.
//!
//! This is the only module that names clouds: the closed set of provider plugins, each behind
//! its cargo feature. Everything else in the engine works through the contract's `Provider`.

pub mod lock;
pub mod snapshot;

use intentwall_contract::flowlog::{FlowRecord, ParseError};
use intentwall_contract::{Provider, ProviderKind};
use std::collections::BTreeMap;
use std::io::BufRead;

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
    match kind {
        #[cfg(feature = "aws")]
        ProviderKind::Aws => Ok(PermissionDocument {
            keys: intentwall_aws::permissions::PLACEMENT_KEYS,
            render: intentwall_aws::permissions::document,
        }),
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Ok(PermissionDocument {
            keys: intentwall_azure::permissions::PLACEMENT_KEYS,
            render: intentwall_azure::permissions::document,
        }),
        #[cfg(feature = "gcp")]
        ProviderKind::Gcp => Ok(PermissionDocument {
            keys: intentwall_gcp::permissions::PLACEMENT_KEYS,
            render: intentwall_gcp::permissions::document,
        }),
        #[allow(unreachable_patterns)]
        _ => Err(missing(kind)),
    }
}

/// Read a cloud's flow log with its plugin's parser, record by record (see
/// [`intentwall_contract::flowlog::read`]); a build without the cloud's feature gives an
/// error naming the feature.
pub fn read_flow_log<R: BufRead, E: From<ParseError>>(
    kind: ProviderKind,
    file: &str,
    reader: R,
    emit: impl FnMut(&FlowRecord) -> Result<(), E>,
) -> Result<BTreeMap<String, u64>, E> {
    match kind {
        #[cfg(feature = "aws")]
        ProviderKind::Aws => intentwall_contract::flowlog::read(
            intentwall_aws::flowlog::VpcFlowLog::new(),
            file,
            reader,
            emit,
        ),
        #[cfg(feature = "azure")]
        ProviderKind::Azure => intentwall_contract::flowlog::read(
            intentwall_azure::flowlog::NsgFlowLog,
            file,
            reader,
            emit,
        ),
        #[cfg(feature = "gcp")]
        ProviderKind::Gcp => intentwall_contract::flowlog::read(
            intentwall_gcp::flowlog::GcpFlowLog::default(),
            file,
            reader,
            emit,
        ),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (reader, emit);
            let why = missing(kind).to_string();
            Err(E::from(ParseError::new(file, 1, "format", why)))
        }
    }
}

/// Text only a cloud's flow log holds, for telling its files from other logs of the same
/// extension (`None`: the cloud's logs need no such mark, or its plugin is not built in).
pub fn flow_log_mark(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Some(intentwall_azure::flowlog::MARK),
        _ => None,
    }
}
