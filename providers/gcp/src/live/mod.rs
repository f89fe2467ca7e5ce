//! The live GCP backend (cargo feature `live`): Google's official Compute client reading and
//! writing a deployment's VPC firewall rules.
//!
//! - **Credentials**: Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, the
//!   gcloud user's ADC file, workload identity, the metadata server). `INTENTWALL_GCP_ENDPOINT`
//!   overrides the Compute endpoint (an emulator), and Cloud Resource Manager's with it (an
//!   emulator serves both on one port); only when it is a loopback URL are anonymous
//!   credentials used, so an unauthenticated request never leaves the machine.
//! - **Retries**: the SDK's own retry loop is off; every call goes through [`retrying`]
//!   (exponential backoff with jitter on 429, 5xx and transport failures,
//!   `INTENTWALL_GCP_MAX_ATTEMPTS` attempts, default 5), so attempts are bounded in one place
//!   and a write retried after an ambiguous failure is handled by the writer (409 on insert,
//!   404 on delete mean "already done").
//! - **Observe** ([`Gcp::observe`]): the network must exist (a missing one would read as "no
//!   rules" and plan "create everything"); its rules are listed (filtered to the network, every
//!   page), written down as the `gcloud compute firewall-rules list --format=json` document
//!   ([`doc`]) and read by the snapshot loader, so live and recorded state normalise
//!   identically.
//! - **Execute**: see [`write`]; operations are waited on to `DONE` ([`operation`]).
//! - **Preflight** ([`Gcp::preflight`]): IAM is asked, through Cloud Resource Manager's
//!   `projects.testIamPermissions`, which permissions the changes need that the identity lacks
//!   ([`preflight`]).

pub mod doc;
pub mod error;
pub mod operation;
pub mod preflight;
pub mod write;

use google_cloud_auth::credentials::Credentials;
use google_cloud_compute_v1::client::{Firewalls, GlobalOperations, Networks};
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_resourcemanager_v3::client::Projects;
use intentwall_contract::live::{is_loopback, ErrorKind, Op, ProviderError};
use intentwall_contract::DeploymentIntent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

pub use intentwall_contract::live::Observation;
pub use write::execute;

/// A target's placement settings (`project`, `network`, ...).
pub type Placement = BTreeMap<String, String>;

/// The environment variable naming another Compute endpoint (an emulator).
pub const ENDPOINT_VAR: &str = "INTENTWALL_GCP_ENDPOINT";

/// The clients of one run; clones share them. Compute's endpoint is global and the project
/// is part of every request, so one set of clients serves every placement.
#[derive(Debug, Clone, Default)]
pub struct Gcp {
    inner: Arc<OnceCell<Clients>>,
}

/// Connected clients, for one target's calls.
#[derive(Debug, Clone)]
pub struct Clients {
    /// `compute.firewalls.*`.
    pub firewalls: Firewalls,
    /// `compute.globalOperations.get`.
    pub operations: GlobalOperations,
    /// `compute.networks.get`.
    pub networks: Networks,
    /// Who the calls are made as, for audit events.
    pub who: String,
    /// What the Compute clients were built with, for the Cloud Resource Manager client.
    credentials: Credentials,
    endpoint: Option<String>,
    /// Cloud Resource Manager's projects client (`apply --preflight` only): built on first
    /// use, so a run without preflight never makes it.
    projects: Arc<OnceCell<Projects>>,
}

impl Clients {
    /// The Cloud Resource Manager client, with the Compute clients' credentials and endpoint.
    pub async fn projects(&self, target: &str) -> Result<Projects, ProviderError> {
        self.projects
            .get_or_try_init(|| async {
                let mut b = Projects::builder()
                    .with_credentials(self.credentials.clone())
                    .with_retry_policy(NeverRetry);
                if let Some(e) = &self.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build().await.map_err(|e| {
                    ProviderError::new(
                        ErrorKind::Other,
                        target,
                        "client",
                        format!("cannot build the Cloud Resource Manager client: {e}"),
                    )
                })
            })
            .await
            .cloned()
    }
}

/// One target: the clients and where the rules live.
#[derive(Debug, Clone)]
pub struct Target {
    /// The clients.
    pub clients: Clients,
    /// `deployment/gcp`, for messages.
    pub label: String,
    /// The project id.
    pub project: String,
    /// The network's short name.
    pub network: String,
}

impl Target {
    /// The network's canonical URL (what rules of the network carry in `network`).
    pub fn network_url(&self) -> String {
        format!(
            "{}projects/{}/global/networks/{}",
            crate::model::API_PREFIX,
            self.project,
            self.network
        )
    }
}

fn setting<'a>(target: &str, p: &'a Placement, key: &str) -> Result<&'a str, ProviderError> {
    intentwall_contract::live::setting("gcp", target, p, key)
}

use intentwall_contract::live::env_number;

/// Attempts per call (`INTENTWALL_GCP_MAX_ATTEMPTS`, default 5, at least 1).
pub fn max_attempts() -> u32 {
    env_number("INTENTWALL_GCP_MAX_ATTEMPTS", 5).clamp(1, 20) as u32
}

/// First backoff delay (`INTENTWALL_GCP_BACKOFF_MS`, default 500 ms); doubled per attempt,
/// at most 20 s, with jitter.
fn first_backoff() -> Duration {
    Duration::from_millis(env_number("INTENTWALL_GCP_BACKOFF_MS", 500))
}

/// A delay in [d/2, d): spreads the retries of concurrent targets.
pub(crate) fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let half = d / 2;
    half + Duration::from_nanos(u64::from(nanos) % (half.as_nanos().max(1) as u64))
}

/// Run `f` until it succeeds, fails for good, or the attempts are spent; transient failures
/// (throttling, 5xx, transport) are retried with exponential backoff.
pub async fn retrying<T, F, Fut>(target: &str, call: &str, mut f: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
{
    let attempts = max_attempts();
    let mut delay = first_backoff();
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let err = error::classify(target, call, &e);
                if !err.retryable || attempt >= attempts {
                    return Err(err);
                }
                tracing::debug!(target: "intentwall::gcp", %target, call, attempt, error = %err.message, "retrying");
                tokio::time::sleep(jitter(delay)).await;
                delay = (delay * 2).min(Duration::from_secs(20));
                attempt += 1;
            }
        }
    }
}

impl Gcp {
    /// Clients are made on first use.
    pub fn new() -> Gcp {
        Gcp::default()
    }

    /// The clients: ADC, or anonymous credentials against a loopback endpoint only.
    pub async fn clients(&self, target: &str) -> Result<Clients, ProviderError> {
        self.inner
            .get_or_try_init(|| connect(target))
            .await
            .cloned()
    }

    /// The clients and where a target's rules live.
    pub async fn target(&self, label: &str, p: &Placement) -> Result<Target, ProviderError> {
        let project = setting(label, p, "project")?.to_string();
        let network = setting(label, p, "network")?.to_string();
        let network = crate::model::NetworkRef::parse(&network)
            .map(|n| n.name)
            .unwrap_or(network);
        Ok(Target {
            clients: self.clients(label).await?,
            label: label.to_string(),
            project,
            network,
        })
    }

    /// Read a target: its network's rules, normalised as a snapshot of them would be.
    pub async fn observe(
        &self,
        label: &str,
        p: &Placement,
        intent: &DeploymentIntent,
    ) -> Result<Observation, ProviderError> {
        let t = self.target(label, p).await?;
        observe_with(&t, intent).await
    }

    /// `apply --preflight`: the permissions a target's writes need that IAM says the identity
    /// lacks on the project (empty: all granted), each naming the permission and what needs
    /// it; an error when IAM could not be asked.
    pub async fn preflight(
        &self,
        label: &str,
        p: &Placement,
        ops: &[Op<'_>],
    ) -> Result<Vec<String>, ProviderError> {
        let t = self.target(label, p).await?;
        preflight::check(&t, ops).await
    }
}

async fn connect(target: &str) -> Result<Clients, ProviderError> {
    let endpoint = std::env::var(ENDPOINT_VAR).ok().filter(|e| !e.is_empty());
    let loopback = endpoint.as_deref().is_some_and(is_loopback);
    let credentials = if loopback {
        google_cloud_auth::credentials::anonymous::Builder::new().build()
    } else {
        google_cloud_auth::credentials::Builder::default()
            .build()
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Auth,
                    target,
                    "credentials",
                    format!(
                        "no Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, \
                         `gcloud auth application-default login`, workload identity or the \
                         metadata server): {e}"
                    ),
                )
            })?
    };
    let who = if loopback {
        "anonymous (loopback endpoint)".to_string()
    } else {
        "application-default-credentials".to_string()
    };
    let built = |what: &str, e: &dyn std::fmt::Display| {
        ProviderError::new(
            ErrorKind::Other,
            target,
            "client",
            format!("cannot build the {what} client: {e}"),
        )
    };
    // the SDK's retries are off: `retrying` is the one loop (bounded, and it knows which
    // writes may be repeated)
    let mut fb = Firewalls::builder()
        .with_credentials(credentials.clone())
        .with_retry_policy(NeverRetry);
    let mut ob = GlobalOperations::builder()
        .with_credentials(credentials.clone())
        .with_retry_policy(NeverRetry);
    let mut nb = Networks::builder()
        .with_credentials(credentials.clone())
        .with_retry_policy(NeverRetry);
    if let Some(e) = &endpoint {
        fb = fb.with_endpoint(e.clone());
        ob = ob.with_endpoint(e.clone());
        nb = nb.with_endpoint(e.clone());
    }
    let firewalls = fb.build().await.map_err(|e| built("firewalls", &e))?;
    let operations = ob
        .build()
        .await
        .map_err(|e| built("global operations", &e))?;
    let networks = nb.build().await.map_err(|e| built("networks", &e))?;
    tracing::debug!(target: "intentwall::gcp", endpoint = endpoint.as_deref().unwrap_or("default"), %who, "clients ready");
    Ok(Clients {
        firewalls,
        operations,
        networks,
        who,
        credentials,
        endpoint,
        projects: Arc::default(),
    })
}

/// [`Gcp::observe`] with the target in hand.
pub async fn observe_with(
    t: &Target,
    intent: &DeploymentIntent,
) -> Result<Observation, ProviderError> {
    // a network that does not exist would read as "no rules": planning would create
    // everything on a network no one can use, so its absence is an error
    let net = retrying(&t.label, "compute.networks.get", || {
        t.clients
            .networks
            .get()
            .set_project(t.project.clone())
            .set_network(t.network.clone())
            .send()
    })
    .await
    .map_err(|mut e| {
        if e.kind == ErrorKind::NotFound {
            e.message = format!(
                "network {} does not exist in project {}: {}",
                t.network, t.project, e.message
            );
        }
        e
    })?;
    let url = net.self_link.clone().unwrap_or_else(|| t.network_url());
    let rules = list(t, &url).await?;
    let document = doc::document(&rules);
    let state = crate::snapshot::parse(&document, intent).map_err(|e| {
        ProviderError::new(
            ErrorKind::Other,
            &t.label,
            "compute.firewalls.list",
            format!("the response does not read as a firewall rule list: {e}"),
        )
    })?;
    Ok(Observation { state, document })
}

/// Every rule of the network, over all pages, as the API's JSON.
pub async fn list(t: &Target, network_url: &str) -> Result<Vec<Value>, ProviderError> {
    let call = "compute.firewalls.list";
    let filter = format!("network = \"{network_url}\"");
    let mut token: Option<String> = None;
    let mut out = Vec::new();
    let mut pages = 0usize;
    loop {
        let page = retrying(&t.label, call, || {
            t.clients
                .firewalls
                .list()
                .set_project(t.project.clone())
                .set_filter(filter.clone())
                .set_max_results(500u32)
                .set_or_clear_page_token(token.clone())
                .send()
        })
        .await?;
        pages += 1;
        let page = serde_json::to_value(&page).map_err(|e| {
            ProviderError::new(
                ErrorKind::Other,
                &t.label,
                call,
                format!("unreadable page: {e}"),
            )
        })?;
        if let Some(items) = page.get("items").and_then(Value::as_array) {
            out.extend(items.iter().cloned());
        }
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => {
                if token.as_deref() == Some(next) || pages > 10_000 {
                    return Err(ProviderError::new(
                        ErrorKind::Other,
                        &t.label,
                        call,
                        "the listing does not end (the same page token again)",
                    ));
                }
                token = Some(next.to_string());
            }
            _ => break,
        }
    }
    tracing::debug!(target: "intentwall::gcp", target = %t.label, rules = out.len(), pages, "listed firewall rules");
    Ok(out)
}

/// Every method this backend calls, with the IAM permissions GCP checks for it: the custom
/// role of `intentwall permissions gcp` ([`crate::permissions::PERMISSIONS`]) must grant
/// exactly their union (tested). Cloud Resource Manager's `testIamPermissions` (preflight)
/// needs none.
pub const CALLS: &[(&str, &[&str])] = &[
    (preflight::CALL, &[]),
    ("compute.networks.get", &["compute.networks.get"]),
    ("compute.firewalls.list", &["compute.firewalls.list"]),
    (
        "compute.firewalls.insert",
        &["compute.firewalls.create", "compute.networks.updatePolicy"],
    ),
    (
        "compute.firewalls.patch",
        &["compute.firewalls.update", "compute.networks.updatePolicy"],
    ),
    (
        "compute.firewalls.update",
        &["compute.firewalls.update", "compute.networks.updatePolicy"],
    ),
    (
        "compute.firewalls.delete",
        &["compute.firewalls.delete", "compute.networks.updatePolicy"],
    ),
    (
        "compute.globalOperations.get",
        &["compute.globalOperations.get"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_permission_document_grants_exactly_the_calls_made() {
        let needed: BTreeSet<&str> = CALLS.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let granted: BTreeSet<&str> = crate::permissions::PERMISSIONS.iter().copied().collect();
        assert_eq!(needed, granted);
        // every call named in the backend's sources (their code, not their tests' messages)
        // is one of CALLS
        let sources = [
            include_str!("mod.rs"),
            include_str!("write.rs"),
            include_str!("operation.rs"),
            include_str!("preflight.rs"),
        ];
        let known: BTreeSet<&str> = CALLS.iter().map(|(c, _)| *c).collect();
        for src in sources {
            let code = src.split("#[cfg(test)]").next().unwrap_or(src);
            for part in code.split('"').skip(1).step_by(2) {
                if part.starts_with("compute.") && part.matches('.').count() == 2 {
                    let is_permission = granted.contains(part) && !known.contains(part);
                    assert!(
                        known.contains(part) || is_permission,
                        "call {part} is not in CALLS"
                    );
                }
            }
        }
    }

    #[test]
    fn jitter_stays_within_half_to_whole() {
        for ms in [1u64, 20, 500, 20_000] {
            let d = Duration::from_millis(ms);
            let j = jitter(d);
            assert!(j >= d / 2 && j <= d, "{ms}: {j:?}");
        }
    }
}
