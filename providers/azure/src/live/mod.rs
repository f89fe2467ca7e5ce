//! The live Azure backend (cargo feature `live`): azure_mgmt_network (API 2024-03-01) reading
//! and writing a deployment's NSG, its security rules and the groups' ASGs;
//! azure_mgmt_authorization (API 2022-04-01) reading the caller's permissions for preflight.
//!
//! - **Endpoint and credentials**: Azure Resource Manager (public cloud), or
//!   `INTENTWALL_AZURE_ENDPOINT`. The credential is azure_identity's chain (environment,
//!   workload identity, managed identity, Azure CLI; `AZURE_CREDENTIAL_KIND` picks one); a
//!   token is fetched before any call, so missing credentials stop the run with a clear
//!   message. Only when the endpoint override is a loopback URL (an emulator) is a fixed
//!   anonymous token used instead, never otherwise.
//! - **Retries**: the SDK pipeline's exponential policy on 408/429/5xx and transport
//!   failures, honouring `Retry-After` on 429/503, at most `INTENTWALL_AZURE_MAX_RETRIES`
//!   retries (default 5) within 3 minutes; every HTTP attempt times out after 30 s, every call
//!   after 5 minutes. The SDK's `log` records reach tracing through the binary's subscriber
//!   (tracing-subscriber's log bridge).
//! - **Observe** ([`Azure::observe`]): the NSGs of the placement's resource group (one ARM
//!   listing, rules and default rules inline), written down as the `az network nsg list`
//!   document ([`doc`]) and read by the snapshot loader, so live and recorded state normalise
//!   identically. A resource group that does not exist is an error, not an empty state.
//! - **Execute**: see [`write`].
//! - **Preflight** (`apply --preflight`): see [`preflight`].

pub mod doc;
pub mod error;
pub mod preflight;
pub mod wire;
pub mod write;

use azure_core::auth::TokenCredential;
use azure_core::{
    ClientOptions, ExponentialRetryOptions, Pipeline, RetryOptions, TransportOptions, Url,
};
use futures::StreamExt;
use intentwall_contract::live::{error_chain, is_loopback, ErrorKind, ProviderError};
use intentwall_contract::DeploymentIntent;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

pub use intentwall_contract::live::Observation;
pub use write::execute;

/// A target's placement settings (`subscription`, `resource_group`, `location`, `nsg`, ...).
pub type Placement = BTreeMap<String, String>;

/// The endpoint override (tests, sovereign or private clouds).
pub const ENDPOINT_VAR: &str = "INTENTWALL_AZURE_ENDPOINT";

/// How long one call (its retries included) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The Azure clients of one run; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Azure {
    conn: Arc<OnceCell<Result<Conn, (ErrorKind, String)>>>,
}

/// A connected client: the SDK client, the same pipeline for polling long-running
/// operations, the credential and who it is.
#[derive(Clone)]
pub struct Conn {
    /// The network client.
    pub client: azure_mgmt_network::Client,
    /// The authorization client (the caller's permissions, for `apply --preflight`): same
    /// endpoint, credential, retries and transport as the network client.
    pub authorization: azure_mgmt_authorization::Client,
    /// The SDK's pipeline (retries, transport) for requests the SDK has no builder for (the
    /// status of a long-running operation).
    pub pipeline: Pipeline,
    /// The credential, for those requests' tokens.
    pub credential: Arc<dyn TokenCredential>,
    /// The token scopes of the endpoint.
    pub scopes: Vec<String>,
    /// Who the token is for: the `who` of every audit event.
    pub who: String,
    /// The ARM endpoint.
    pub endpoint: Url,
    /// Set once reading an operation's status was refused (it lives at subscription scope,
    /// which a role assigned to resource groups does not reach): from then on the resource
    /// itself is polled.
    pub poll_resources: Arc<std::sync::atomic::AtomicBool>,
}

fn setting<'a>(target: &str, p: &'a Placement, key: &str) -> Result<&'a str, ProviderError> {
    intentwall_contract::live::setting("azure", target, p, key)
}

fn max_retries() -> u32 {
    intentwall_contract::live::env_number("INTENTWALL_AZURE_MAX_RETRIES", 5).min(20) as u32
}

async fn connect() -> Result<Conn, (ErrorKind, String)> {
    let endpoint = std::env::var(ENDPOINT_VAR)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let url = match &endpoint {
        Some(e) => Url::parse(e).map_err(|err| {
            (
                ErrorKind::Invalid,
                format!("{ENDPOINT_VAR}={e} is not a URL: {err}"),
            )
        })?,
        None => azure_core::resource_manager_endpoint::AZURE_PUBLIC_CLOUD.clone(),
    };
    let loopback = endpoint.as_deref().is_some_and(is_loopback);
    let credential: Arc<dyn TokenCredential> = if loopback {
        Arc::new(wire::LoopbackToken)
    } else {
        azure_identity::create_credential().map_err(|e| {
            (
                ErrorKind::Auth,
                format!("no Azure credential: {}", error_chain(&e)),
            )
        })?
    };
    let scope = url
        .join(azure_core::auth::DEFAULT_SCOPE_SUFFIX)
        .map_err(|e| (ErrorKind::Invalid, format!("endpoint {url}: {e}")))?
        .to_string();
    let token = credential.get_token(&[scope.as_str()]).await.map_err(|e| {
        (
            ErrorKind::Auth,
            format!(
                "no Azure credentials (environment, workload identity, managed identity, Azure \
                 CLI): {}",
                error_chain(&e)
            ),
        )
    })?;
    let who = wire::principal(token.token.secret()).unwrap_or_else(|| {
        if loopback {
            "loopback".into()
        } else {
            "azure-credential".into()
        }
    });
    let retry = RetryOptions::exponential(
        ExponentialRetryOptions::default()
            .max_retries(max_retries())
            .initial_delay(Duration::from_millis(200))
            .max_delay(Duration::from_secs(20))
            .max_total_elapsed(Duration::from_secs(180)),
    );
    let transport =
        TransportOptions::new_custom_policy(Arc::new(wire::Wire::new(Duration::from_secs(30))));
    let client = azure_mgmt_network::Client::builder(credential.clone())
        .endpoint(url.clone())
        .retry(retry.clone())
        .transport(transport.clone())
        .build()
        .map_err(|e| (ErrorKind::Other, error_chain(&e)))?;
    let authorization = azure_mgmt_authorization::Client::builder(credential.clone())
        .endpoint(url.clone())
        .retry(retry.clone())
        .transport(transport.clone())
        .build()
        .map_err(|e| (ErrorKind::Other, error_chain(&e)))?;
    let options = ClientOptions::default().retry(retry).transport(transport);
    let pipeline = Pipeline::new(
        Some("intentwall"),
        Some(env!("CARGO_PKG_VERSION")),
        options,
        Vec::new(),
        Vec::new(),
    );
    tracing::debug!(target: "intentwall::azure", endpoint = %url, %who, loopback, "connected");
    let url = url.clone();
    Ok(Conn {
        client,
        authorization,
        pipeline,
        credential,
        scopes: vec![scope],
        who,
        endpoint: url,
        poll_resources: Arc::default(),
    })
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

impl Azure {
    /// Clients are made on first use.
    pub fn new() -> Azure {
        Azure::default()
    }

    /// The connection (made once per run), or why there is none, as an error of `target`.
    pub async fn conn(&self, target: &str) -> Result<Conn, ProviderError> {
        match self.conn.get_or_init(connect).await {
            Ok(c) => Ok(c.clone()),
            Err((kind, why)) => Err(ProviderError::new(
                *kind,
                target,
                "credentials",
                why.clone(),
            )),
        }
    }

    /// Read a target: the NSGs of its resource group, normalised as a snapshot of them
    /// would be.
    pub async fn observe(
        &self,
        target: &str,
        p: &Placement,
        intent: &DeploymentIntent,
    ) -> Result<Observation, ProviderError> {
        let conn = self.conn(target).await?;
        observe_with(&conn, target, p, intent).await
    }
}

/// [`Azure::observe`] with a connection in hand.
pub async fn observe_with(
    conn: &Conn,
    target: &str,
    p: &Placement,
    intent: &DeploymentIntent,
) -> Result<Observation, ProviderError> {
    let sub = setting(target, p, "subscription")?;
    let rg = setting(target, p, "resource_group")?;
    let call = "NetworkSecurityGroups_List";
    let read = async {
        let mut pages = conn
            .client
            .network_security_groups_client()
            .list(rg, sub)
            .into_stream();
        let mut nsgs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::classify(target, call, &e))?;
            for n in page.value {
                let v = serde_json::to_value(&n).map_err(|e| {
                    ProviderError::new(ErrorKind::Other, target, call, e.to_string())
                })?;
                nsgs.push(v);
            }
        }
        Ok::<_, ProviderError>(nsgs)
    };
    let nsgs = tokio::time::timeout(CALL_TIMEOUT, read)
        .await
        .map_err(|_| ProviderError::new(ErrorKind::Unavailable, target, call, "timed out"))??;
    tracing::debug!(target: "intentwall::azure", target, nsgs = nsgs.len(), "listed network security groups");
    let document = doc::document(nsgs);
    let state = crate::snapshot::parse(&document, intent).map_err(|e| {
        ProviderError::new(
            ErrorKind::Other,
            target,
            call,
            format!("the response does not read as an NSG document: {e}"),
        )
    })?;
    Ok(Observation { state, document })
}
