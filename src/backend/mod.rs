//! Where state comes from and where apply goes to, and which provider plugins are built in.
//!
//! The seam between the pure engine and the world is [`Backend`]: `observe` a [`Target`]
//! (read its state, normalised by the cloud's plugin) and `execute` a change set on it. The
//! pipeline reads: observe every target (in one place, [`crate::plan::build_each`]) → plan
//! (pure, no I/O) → execute ([`crate::apply`]). A backend is a closed set: the recorded
//! snapshot files, and an in-memory store ([`memory`]) that proves the engine needs nothing
//! of a cloud but its plugin's pure half; the live clouds join as one more variant.
//!
//! This is the only module that names clouds: the closed set of provider plugins, each behind
//! its cargo feature. Everything else in the engine works through the contract's `Provider`.
//!
//! The plugins stay stateless (their pure half: semantics, snapshot format, placement schema),
//! so they are shared `'static` values. What a cloud needs at run time — SDK clients,
//! credentials per account, retry state, the typed errors of its calls — belongs to the backend
//! variant that talks to it, which is why the seam is async and owned by [`Backend`].

pub mod flowlog;
#[cfg(feature = "live")]
pub mod live;
pub mod lock;
pub mod memory;
pub mod snapshot;

use crate::diff::Change;
use crate::error::Error;
use intentwall_contract::flowlog::{FlowRecord, ParseError};
use intentwall_contract::{DeploymentIntent, NativeState, Provider, ProviderKind, SnapshotFormat};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

/// One target: a deployment on one cloud, with the placement it is planned for (the
/// placement's settings: VPC, region, account, NSG, network...). Carried by the plan, so a
/// reviewer sees where each change goes; apply still finds its targets from the intents, never
/// from a plan file's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: ProviderKind,
    /// The placement's settings, as the intents resolve them.
    #[serde(default)]
    pub placement: BTreeMap<String, String>,
}

impl Target {
    /// The target a resolved deployment intent is for.
    pub fn of(intent: &DeploymentIntent, provider: ProviderKind) -> Target {
        Target {
            deployment: intent.deployment.clone(),
            provider,
            placement: intent.settings.clone(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.deployment, self.provider)
    }
}

/// What was observed for one target.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The state, normalised by the cloud's plugin (empty for a new target).
    pub state: NativeState,
    /// [`fingerprint`] of the state, or `absent`: what a plan records to detect staleness.
    pub fingerprint: String,
    /// False when the target has no recorded state at all (a new region).
    pub existed: bool,
    /// Where it was read: the snapshot file, or the store's name for the target.
    pub source: PathBuf,
}

/// The fingerprint of an observed state: a digest of its normalised objects (key, kind,
/// parent, ownership, flow and canonical body), in key order. It ignores how the state was
/// written down (file layout, key order, a cloud's listing order, raw fields the plugin does
/// not normalise), so the same state gives the same fingerprint from a file or from a cloud,
/// and a plan is stale exactly when what it was computed from has changed.
pub fn fingerprint(state: &NativeState) -> String {
    let mut objects: Vec<_> = state.objects.iter().collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let mut h = Sha256::new();
    for o in objects {
        // length-prefixed fields: no separator inside a field can make two states collide
        for field in [
            o.key.as_str(),
            o.kind.as_str(),
            o.parent.as_deref().unwrap_or("\u{0}"),
            if o.container { "c" } else { "r" },
            if o.managed { "m" } else { "u" },
            if o.foreign { "f" } else { "o" },
            o.flow.as_deref().unwrap_or("\u{0}"),
            o.body.as_str(),
            o.assigned.as_ref().map_or("\u{0}", |a| a.as_str()),
        ] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
    }
    format!("sha256:{:x}", h.finalize())
}

/// What executing a change set did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Writes made to the target (one per changed object for the stores here; one per
    /// mutating API call for a cloud).
    pub writes: usize,
    /// The state the writes were meant to leave: the changes applied to the state read right
    /// before writing. The caller observes the target again and compares (convergence).
    pub meant: NativeState,
}

/// Where state comes from and where apply goes to (`--state`).
#[derive(Debug, Clone)]
pub enum Backend {
    /// Recorded snapshot files under a root directory (the default).
    Snapshots(snapshot::Snapshots),
    /// An in-memory store (tests, embedding).
    Memory(memory::Memory),
    /// The clouds themselves, through their SDKs (cargo feature `live`).
    #[cfg(feature = "live")]
    Live(live::Live),
}

impl Backend {
    /// The snapshot files under `root`.
    pub fn snapshots(root: impl Into<PathBuf>) -> Backend {
        Backend::Snapshots(snapshot::Snapshots::new(root))
    }

    /// Whether the backend can be read at all (the snapshot root exists): checked once,
    /// before any target is observed.
    pub fn check_ready(&self) -> Result<(), Error> {
        match self {
            Backend::Snapshots(s) => snapshot::check_root(s.root()),
            Backend::Memory(_) => Ok(()),
            #[cfg(feature = "live")]
            Backend::Live(_) => Ok(()),
        }
    }

    /// How many targets are read at once: one per core for files (parsing is the work), more
    /// for a cloud (the work is waiting; `INTENTWALL_CONCURRENCY`, default 8).
    pub fn concurrency(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self {
            Backend::Snapshots(_) | Backend::Memory(_) => cores,
            #[cfg(feature = "live")]
            Backend::Live(_) => std::env::var("INTENTWALL_CONCURRENCY")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n >= 1)
                .unwrap_or(8),
        }
    }

    /// Read one target's state, normalised by its cloud's plugin. Async, so a cloud's SDK
    /// calls can overlap; the snapshot files are read on the runtime's blocking pool.
    pub async fn observe(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
    ) -> Result<Observed, Error> {
        require(target.provider)?;
        tracing::debug!(
            deployment = %target.deployment, provider = %target.provider, "backend observe"
        );
        match self {
            Backend::Snapshots(s) => {
                let (s, kind, intent) = (s.clone(), target.provider, intent.clone());
                blocking(move || s.observe(kind, &intent)).await
            }
            Backend::Memory(m) => Ok(m.observe(target)),
            #[cfg(feature = "live")]
            Backend::Live(l) => l.observe(target, intent).await,
        }
    }

    /// Execute a change set on a target whose state must still have the fingerprint
    /// `expected` (else nothing is written: "changed under us"). The caller re-observes
    /// afterwards to check convergence; a backend never reports success from its own words.
    pub async fn execute(
        &self,
        target: &Target,
        intent: &DeploymentIntent,
        expected: &str,
        changes: &[Change],
    ) -> Result<Executed, Error> {
        require(target.provider)?;
        tracing::debug!(
            deployment = %target.deployment, provider = %target.provider,
            changes = changes.len(), expected, "backend execute"
        );
        match self {
            Backend::Snapshots(s) => {
                let (s, kind, intent) = (s.clone(), target.provider, intent.clone());
                let (expected, changes) = (expected.to_string(), changes.to_vec());
                blocking(move || s.execute(kind, &intent, &expected, &changes)).await
            }
            Backend::Memory(m) => m.execute(target, expected, changes),
            #[cfg(feature = "live")]
            Backend::Live(l) => l.execute(target, intent, expected, changes).await,
        }
    }

    /// The calls a target's changes need that the backend's identity may not make (`apply
    /// --preflight`, before any write): none for files and the store, IAM's answer for a
    /// cloud.
    pub async fn preflight(
        &self,
        target: &Target,
        changes: &[Change],
    ) -> Result<Vec<String>, Error> {
        let _ = (target, changes);
        match self {
            Backend::Snapshots(_) | Backend::Memory(_) => Ok(Vec::new()),
            #[cfg(feature = "live")]
            Backend::Live(l) => l.preflight(target, changes).await,
        }
    }

    /// Observe every target, at most `limit` at a time, the results in the targets' order:
    /// the one place the pipeline reads the world before planning.
    pub fn observe_all(
        &self,
        targets: Vec<(Target, DeploymentIntent)>,
        limit: usize,
    ) -> Vec<Result<Observed, Error>> {
        let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
        block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            let n = targets.len();
            for (i, (target, intent)) in targets.into_iter().enumerate() {
                let (backend, limit) = (self.clone(), limit.clone());
                tasks.spawn(async move {
                    // the semaphore is never closed, so a permit always comes
                    let _permit = limit.acquire_owned().await;
                    (i, backend.observe(&target, &intent).await)
                });
            }
            let mut out: Vec<Option<Result<Observed, Error>>> = (0..n).map(|_| None).collect();
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok((i, r)) => out[i] = Some(r),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => {}
                }
            }
            out.into_iter()
                .map(|r| r.unwrap_or(Err(Error::Internal("an observation was cancelled"))))
                .collect()
        })
    }
}

/// Run a backend call to completion from the engine's synchronous code, on the process's one
/// runtime: a cloud client's connection pool and cached credentials outlive each call, and
/// the work that blocks (files) goes to the runtime's blocking pool.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("intentwall-io")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                // building a runtime only allocates and starts threads: failing it means the
                // process cannot run at all
                Err(e) => panic!("cannot start the async runtime: {e}"),
            }
        })
        .block_on(f)
}

/// Blocking work (file reads and writes, parsing) on the runtime's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Internal("a backend task was cancelled")),
    }
}

/// The error for a target whose state changed between planning and writing.
pub fn changed_under_us(source: &str, planned: &str, now: &str) -> Error {
    Error::ChangedUnderUs {
        at: source.to_string(),
        planned: planned.to_string(),
        now: now.to_string(),
    }
}

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

/// A cloud's snapshot document format (the shape its CLI prints), or the error saying how to
/// get its plugin.
pub fn format(kind: ProviderKind) -> Result<&'static dyn SnapshotFormat, Error> {
    match kind {
        #[cfg(feature = "aws")]
        ProviderKind::Aws => Ok(&intentwall_aws::AwsProvider),
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Ok(&intentwall_azure::AzureProvider),
        #[cfg(feature = "gcp")]
        ProviderKind::Gcp => Ok(&intentwall_gcp::GcpProvider),
        #[allow(unreachable_patterns)]
        _ => Err(missing(kind)),
    }
}

/// The plugin for a cloud, or an error saying how to get it.
pub fn require(kind: ProviderKind) -> Result<&'static dyn Provider, Error> {
    provider(kind).ok_or_else(|| missing(kind))
}

/// The error for a cloud whose plugin this binary was built without (for the plugin's
/// provider, flow-log parser or permission document alike).
pub fn missing(kind: ProviderKind) -> Error {
    Error::MissingFeature(kind)
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
pub fn permissions(kind: ProviderKind) -> Result<PermissionDocument, Error> {
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

/// What a cloud's placement holds, as its plugin declares it, or the error saying how to get
/// the plugin (a build without a cloud can neither check nor plan its placements).
pub fn placement_schema(
    kind: ProviderKind,
) -> Result<&'static intentwall_contract::placement::PlacementSchema, Error> {
    match kind {
        #[cfg(feature = "aws")]
        ProviderKind::Aws => Ok(&intentwall_aws::placement::PLACEMENT),
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Ok(&intentwall_azure::placement::PLACEMENT),
        #[cfg(feature = "gcp")]
        ProviderKind::Gcp => Ok(&intentwall_gcp::placement::PLACEMENT),
        #[allow(unreachable_patterns)]
        _ => Err(missing(kind)),
    }
}

/// The clouds by their flag names, for messages: `aws, azure or gcp`.
pub fn cloud_names() -> String {
    let names: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}
